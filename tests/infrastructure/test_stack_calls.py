"""Every AWS operation a function's code calls is allowed by its role in the synthesized template.

moto allows every call, so a missing IAM action passes every local and integration test and fails only on AWS
(AccessDenied). The operations are read from the code itself: the boto3 client methods (``client.put_item``,
``get_paginator("scan")``) of the services the functions use, in ``functions/common`` (every function runs it)
and in the package of the consumer's handler, mapped to IAM actions through botocore's service models.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from botocore import xform_name
from botocore.session import get_session

from functions.common.spec import WAITING_ATTRIBUTE, WAITING_INDEX
from functions.manifest import MANIFEST, Consumer
from tests.infrastructure.template import ConsumerView, Synth, as_list, statements

REPO_ROOT = Path(__file__).resolve().parents[2]
# The services the functions call with their role (bedrock-runtime only with -c reasoner=bedrock: its own tests).
SERVICES = ("dynamodb", "scheduler", "s3", "sqs", "events")
# DynamoDB authorizes a transaction by the item-level actions of its parts (DynamoDB developer guide,
# "Using IAM with DynamoDB transactions"); there is no TransactWriteItems action to grant.
COMPOSITE = {
    "dynamodb:TransactWriteItems": ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                                    "dynamodb:ConditionCheckItem"),
    "dynamodb:TransactGetItems": ("dynamodb:GetItem",),
}
_ATTRIBUTE = re.compile(r"\.([a-z][a-z0-9_]*)\b")
_PAGINATOR = re.compile(r"get_paginator\(\s*[\"']([a-z_]+)[\"']")


def _operations() -> dict[str, list[str]]:
    """``put_item`` -> ``["dynamodb:PutItem"]``: every operation of SERVICES by its boto3 method name."""
    session = get_session()
    found: dict[str, list[str]] = {}
    for service in SERVICES:
        model = session.get_service_model(service)
        for operation in model.operation_names:
            found.setdefault(xform_name(operation), []).append(f"{model.signing_name}:{operation}")
    return found


OPERATIONS = _operations()


def code_of(consumer: Consumer) -> list[Path]:
    package = REPO_ROOT.joinpath(*consumer.handler.split(".")[:-2])
    return sorted((REPO_ROOT / "functions" / "common").glob("*.py")) + sorted(package.rglob("*.py"))


def called_actions(consumer: Consumer) -> dict[str, set[str]]:
    """IAM action -> the files whose code calls it."""
    actions: dict[str, set[str]] = {}
    for path in code_of(consumer):
        text = path.read_text(encoding="utf-8")
        for method in _ATTRIBUTE.findall(text) + _PAGINATOR.findall(text):
            for action in OPERATIONS.get(method, []):
                actions.setdefault(action, set()).add(str(path.relative_to(REPO_ROOT)))
    return actions


def allowed_actions(view: ConsumerView) -> set[str]:
    return {action for document in view.policies for statement in statements(document)
            if statement.get("Effect") == "Allow" for action in as_list(statement["Action"])}


def test_the_code_is_read_the_coordinator_queries_and_schedules() -> None:
    """The reading above finds what it must (a regression of the reader would make the next test vacuous)."""
    called = called_actions(MANIFEST.coordinator)
    assert {"dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:UpdateItem", "scheduler:CreateSchedule",
            "scheduler:DeleteSchedule", "events:PutEvents", "s3:GetObject", "sqs:SendMessage"} <= set(called)


@pytest.mark.parametrize("name", [consumer.name for consumer in MANIFEST.consumers])
def test_every_operation_the_code_calls_is_allowed_by_the_functions_role(
        consumers: dict[str, ConsumerView], name: str) -> None:
    view = consumers[name]
    allowed = allowed_actions(view)
    missing = {action: sorted(files) for action, files in called_actions(view.spec).items()
               if not set(COMPOSITE.get(action, (action,))) <= allowed}
    assert not missing, f"{name}: its code calls these, its role does not allow them: {missing}"


def test_no_function_may_scan_and_the_census_queries_the_waiting_index(consumers: dict[str, ConsumerView]) -> None:
    """The census (functions/coordinator/census.py) queries the workflow table's waiting index; scanning a table
    that grows with every request, every 5 minutes, is what it must not do, and no function may."""
    assert "dynamodb:Scan" not in called_actions(MANIFEST.coordinator)
    scanned = {name: [s for d in view.policies for s in statements(d) if "dynamodb:Scan" in as_list(s["Action"])]
               for name, view in consumers.items()}
    assert not any(scanned.values()), scanned
    [census] = [s for d in consumers[MANIFEST.coordinator.name].policies for s in statements(d)
                if s.get("Sid") == "CensusQueriesWaitingWorkflows"]
    assert as_list(census["Action"]) == ["dynamodb:Query"]
    [resource] = as_list(census["Resource"])
    assert f"/index/{WAITING_INDEX}" in json.dumps(resource)


def test_the_workflow_table_has_the_sparse_waiting_index(synth: Synth) -> None:
    table = synth.stack.state.tables["workflows"].node.default_child
    [index] = synth.resources[synth.stack.get_logical_id(table)]["Properties"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == WAITING_INDEX and index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert index["KeySchema"][0] == {"AttributeName": WAITING_ATTRIBUTE, "KeyType": "HASH"}


def test_the_census_may_read_the_waiting_headers_in_bulk_from_the_workflow_table(
        synth: Synth, consumers: dict[str, ConsumerView]) -> None:
    """The census reads the headers the waiting index names with BatchGetItem (code review bb10d, finding 3): the
    coordinator's role allows it on the workflow table itself (the index holds keys only)."""
    table = synth.stack.get_logical_id(synth.stack.state.tables["workflows"].node.default_child)
    granted = [s for d in consumers[MANIFEST.coordinator.name].policies for s in statements(d)
               if s.get("Effect") == "Allow" and "dynamodb:BatchGetItem" in as_list(s["Action"])]
    assert any({"Fn::GetAtt": [table, "Arn"]} in as_list(s["Resource"]) for s in granted), granted
