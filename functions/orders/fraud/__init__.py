"""The fraud agent."""
