"""The shipping agent."""
