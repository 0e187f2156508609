"""Adapters of the employee directory (the ``Directory`` port of ``functions/access/models.py``).

``DynamoDirectory``: the directory table on the low-level DynamoDB client, partition key ``employee_id``
(S); one item per employee with the attributes of ``Employee`` (``is_admin`` a BOOL, ``inactive_since``
an ISO date, absent for active employees). ``events/seed-directory.json`` is a list of such items.
Read by the identity and policy agents (access request) and the security-audit agent (new user audit).

``MemoryDirectory``: the same port over a list of employees (tests, a run on the seed file).

``seed_items``: the seed file (``{"items": [{employee}, ...]}``) as DynamoDB items, each validated as an
``Employee`` first, so a bad seed fails naming the item and the field instead of reaching the agents.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from pydantic import ValidationError

from functions.access.models import Employee
from functions.common.models import describe_validation_error

KEY = "employee_id"

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


class DirectoryError(Exception):
    """The directory holds an item that is not a valid employee."""


def to_item(employee: Employee) -> dict[str, Any]:
    plain = employee.model_dump(mode="json", exclude_none=True)
    return {name: _serialize(value) for name, value in plain.items()}


def from_item(raw: dict[str, Any]) -> Employee:
    item = {name: _deserialize(value) for name, value in raw.items()}
    try:
        return Employee.model_validate(item)
    except ValidationError as error:
        raise DirectoryError(
            f"directory item {item.get(KEY)!r} is not a valid employee: {describe_validation_error(error)}"
        ) from None


def seed_items(seed: Any) -> list[dict[str, Any]]:
    """The directory items of a seed file's JSON (``{"items": [...]}``); ValueError names a bad item."""
    items = seed.get("items") if isinstance(seed, dict) else None
    if not isinstance(items, list) or not items:
        raise ValueError('a directory seed file looks like {"items": [{"employee_id": ...}, ...]}')
    employees: dict[str, Employee] = {}
    for index, item in enumerate(items):
        try:
            employee = Employee.model_validate(item)
        except ValidationError as error:
            raise ValueError(f"items[{index}] is not a valid employee: {describe_validation_error(error)}") from None
        if employee.employee_id in employees:
            raise ValueError(f"items[{index}]: employee {employee.employee_id} appears twice")
        employees[employee.employee_id] = employee
    return [to_item(employee) for employee in employees.values()]


class DynamoDirectory:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def get(self, employee_id: str) -> Employee | None:
        response = self.client.get_item(TableName=self.table_name, Key={KEY: {"S": employee_id}})
        item = response.get("Item")
        return from_item(item) if item else None

    def put(self, employee: Employee) -> None:
        """Create or replace the employee's item (seeding, tests)."""
        self.client.put_item(TableName=self.table_name, Item=to_item(employee))


class MemoryDirectory:
    def __init__(self, employees: Iterable[Employee] = ()) -> None:
        self.employees = {employee.employee_id: employee for employee in employees}

    def get(self, employee_id: str) -> Employee | None:
        return self.employees.get(employee_id)
