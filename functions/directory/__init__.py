"""The new-user-audit workflow: a standalone security audit of every created user; nothing waits for it."""
