"""The inventory agent."""
