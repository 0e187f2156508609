"""The policy agent: the employee's role permits the level asked on the resource."""
