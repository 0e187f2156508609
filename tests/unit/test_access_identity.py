"""Identity check and the employee directory: unknown / inactive / active employees, the seed file, and the
DynamoDB adapter on moto (round trip of every seed employee, a missing employee, a malformed item)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from functions.access.directory import (
    KEY,
    DirectoryError,
    DynamoDirectory,
    MemoryDirectory,
    from_item,
    seed_items,
    to_item,
)
from functions.access.identity.logic import REJECTED, VERIFIED, IdentityCheck
from functions.access.models import Employee
from tests.unit.access_samples import SEED_DIRECTORY, access_request, seed_directory, seed_employees

TABLE = "agentbus-directory"


def seed_file() -> dict:
    return json.loads(SEED_DIRECTORY.read_text())


def employee(**overrides) -> Employee:
    fields = {"employee_id": "emp-1", "name": "Test Person", "email": "test.person@agentbus.example",
              "role": "engineer", "department": "Engineering", "status": "active", "is_admin": False}
    return Employee.model_validate({**fields, **overrides})


def check(*employees: Employee) -> IdentityCheck:
    return IdentityCheck(MemoryDirectory(employees))


def test_active_employee_is_verified_with_role_and_department():
    decision = check(employee()).decide(access_request(employee_id="emp-1"))
    assert decision.detail_type == VERIFIED
    assert decision.reason == "employee emp-1 is active (engineer, Engineering)"
    assert decision.data == {"employee_id": "emp-1", "status": "active", "role": "engineer",
                             "department": "Engineering"}


def test_unknown_employee_is_rejected_naming_it():
    decision = check(employee()).decide(access_request(employee_id="emp-404"))
    assert decision.detail_type == REJECTED
    assert decision.reason == "employee emp-404 is not in the directory"
    assert decision.data == {"employee_id": "emp-404", "status": "unknown"}


def test_inactive_employee_is_rejected_with_the_date():
    decision = check(employee(status="inactive", inactive_since="2026-06-30")).decide(
        access_request(employee_id="emp-1"))
    assert decision.detail_type == REJECTED
    assert decision.reason == "employee emp-1 is inactive since 2026-06-30"
    assert decision.data == {"employee_id": "emp-1", "status": "inactive", "inactive_since": "2026-06-30"}


def test_inactive_employee_without_a_date_is_rejected_all_the_same():
    decision = check(employee(status="inactive")).decide(access_request(employee_id="emp-1"))
    assert (decision.detail_type, decision.reason) == (REJECTED, "employee emp-1 is inactive")


def test_admin_rights_do_not_make_an_inactive_employee_active():
    decision = check(employee(status="inactive", is_admin=True)).decide(access_request(employee_id="emp-1"))
    assert decision.detail_type == REJECTED


def test_employee_model_rejects_an_active_employee_with_an_inactive_date_and_bad_fields():
    with pytest.raises(ValidationError, match="active but has inactive_since"):
        employee(inactive_since="2026-01-01")
    with pytest.raises(ValidationError, match="status"):
        employee(status="suspended")
    with pytest.raises(ValidationError, match="email"):
        employee(email="not-an-address")
    assert employee(email="  Test.Person@AgentBus.Example ").email == "test.person@agentbus.example"


def test_seed_directory_is_valid_and_covers_the_cases():
    employees = seed_employees()
    ids = [e.employee_id for e in employees]
    assert len(ids) == len(set(ids)) >= 10
    assert any(e.active and e.is_admin for e in employees)
    assert any(e.active and not e.is_admin for e in employees)
    assert any(not e.active and e.is_admin for e in employees)
    assert any(not e.active and not e.is_admin for e in employees)
    assert {"engineer", "contractor"} <= {e.role for e in employees}
    # Each seed item is exactly what the table holds: the file can be put item by item.
    for raw in seed_file()["items"]:
        assert set(raw) <= set(Employee.model_fields)
        assert raw[KEY].startswith("emp-")


def test_sample_requests_meet_the_identity_their_names_promise():
    identity = IdentityCheck(seed_directory())
    assert identity.decide(access_request("access-requested.json")).detail_type == VERIFIED
    assert identity.decide(access_request("access-requested-contractor-admin.json")).detail_type == VERIFIED
    assert identity.decide(access_request("access-requested-risky.json")).detail_type == VERIFIED
    inactive = identity.decide(access_request("access-requested-inactive.json"))
    assert inactive.detail_type == REJECTED and "inactive since" in inactive.reason


# --- the DynamoDB adapter, on moto -----------------------------------------------------------------------


@pytest.fixture
def dynamodb():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}])
        yield client


def test_dynamo_directory_round_trips_every_seed_employee(dynamodb):
    directory = DynamoDirectory(dynamodb, TABLE)
    for person in seed_employees():
        directory.put(person)
    for person in seed_employees():
        assert directory.get(person.employee_id) == person
    assert directory.get("emp-404") is None


def test_dynamo_directory_items_are_plain_attributes(dynamodb):
    directory = DynamoDirectory(dynamodb, TABLE)
    directory.put(employee(status="inactive", inactive_since="2026-06-30", is_admin=True))
    item = dynamodb.get_item(TableName=TABLE, Key={KEY: {"S": "emp-1"}})["Item"]
    assert item["is_admin"] == {"BOOL": True}
    assert item["inactive_since"] == {"S": "2026-06-30"}
    assert item["status"] == {"S": "inactive"}
    assert "inactive_since" not in to_item(employee())  # active: no attribute, not a NULL


def test_seed_file_items_put_as_they_are_read_back_as_employees(dynamodb):
    """A generic seeder may put the file's objects as they are (TypeSerializer), without the model."""
    from boto3.dynamodb.types import TypeSerializer

    serialize = TypeSerializer().serialize
    for raw in seed_file()["items"]:
        dynamodb.put_item(TableName=TABLE, Item={name: serialize(value) for name, value in raw.items()})
    directory = DynamoDirectory(dynamodb, TABLE)
    assert [directory.get(e.employee_id) for e in seed_employees()] == seed_employees()


def test_seeder_validates_and_converts_the_seed_file(dynamodb):
    items = seed_items(seed_file())
    assert items == [to_item(e) for e in seed_employees()]
    for item in items:
        dynamodb.put_item(TableName=TABLE, Item=item)
    assert DynamoDirectory(dynamodb, TABLE).get("emp-1005") == seed_directory().get("emp-1005")


@pytest.mark.parametrize(("seed", "message"), [
    ([], "a directory seed file looks like"),
    ({"items": []}, "a directory seed file looks like"),
    ({"employees": [{"employee_id": "emp-1"}]}, "a directory seed file looks like"),
    ({"items": [{"employee_id": "emp-1", "name": "A", "email": "a@agentbus.example", "role": "r",
                 "department": "d", "status": "retired"}]}, r"^items\[0\] is not a valid employee: status: "),
])
def test_seeder_refuses_a_bad_seed_naming_what_is_wrong(seed, message):
    with pytest.raises(ValueError, match=message):
        seed_items(seed)


def test_seeder_refuses_an_employee_twice():
    first = seed_file()["items"][0]
    with pytest.raises(ValueError, match=rf"items\[1\]: employee {first['employee_id']} appears twice"):
        seed_items({"items": [first, first]})


def test_identity_check_on_the_dynamo_directory(dynamodb):
    directory = DynamoDirectory(dynamodb, TABLE)
    for person in seed_employees():
        directory.put(person)
    assert IdentityCheck(directory).decide(access_request()).detail_type == VERIFIED
    assert IdentityCheck(directory).decide(access_request("access-requested-inactive.json")).detail_type == REJECTED


def test_malformed_directory_item_fails_naming_the_employee_and_field(dynamodb):
    dynamodb.put_item(TableName=TABLE, Item={KEY: {"S": "emp-bad"}, "name": {"S": "No Status"},
                                             "email": {"S": "x@agentbus.example"}, "role": {"S": "engineer"},
                                             "department": {"S": "Engineering"}})
    with pytest.raises(DirectoryError, match=r"directory item 'emp-bad' is not a valid employee: status: Field req"):
        DynamoDirectory(dynamodb, TABLE).get("emp-bad")


def test_from_item_reads_what_to_item_writes():
    person = employee(status="inactive", inactive_since="2026-02-01")
    assert from_item(to_item(person)) == person
