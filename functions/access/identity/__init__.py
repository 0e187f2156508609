"""The identity agent: the employee exists in the directory and is active."""
