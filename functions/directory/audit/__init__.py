"""The security-audit agent: findings on a newly created user."""
