"""Shared fixtures. No test talks to real AWS: credentials are fake and every endpoint is moto."""

from __future__ import annotations

import contextlib
import functools
import json
import os
from pathlib import Path

import boto3
import botocore.loaders
import botocore.session
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = REPO_ROOT / "events"

for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
})

# Each boto3 Session reads botocore's service models (megabytes of JSON) again, and the tests create thousands of
# sessions (a moto backend per test, a client per function per property example): one loader for the process
# reads each model once. A Loader caches the files it has read, and its search paths: every boto3 Session appends
# boto3's data directory to them, so the shared loader keeps each path once (else the list grew by one a session
# and every miss searched it all).


class _SearchPaths(list[str]):
    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)

    def extend(self, paths) -> None:  # type: ignore[override]
        for path in paths:
            self.append(path)


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    loader = botocore.loaders.create_loader(search_path_string)
    loader._search_paths = _SearchPaths(loader.search_paths)
    return loader


botocore.session.create_loader = _shared_loader

# Test files that take minutes, longest first: pytest-xdist (``--dist loadfile``) hands files out in collection
# order, and one of these handed out near the end keeps a worker busy for minutes while the other has nothing
# left to do. Going first, the many short files fill in around them instead.
SLOW_FIRST = (
    "tests/property/",
    "tests/e2e/test_local_stack.py",
    "tests/e2e/test_people_in_the_loop.py",
    "tests/integration/test_pipeline.py",
    "tests/integration/test_request_edges.py",
    "tests/functions/test_coordinator_handler.py",
    "tests/e2e/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(SLOW_FIRST) if item.nodeid.startswith(prefix)), len(SLOW_FIRST))

    items.sort(key=rank)  # stable: within a rank, the collection order


def load_entries(name: str) -> list[dict]:
    """The PutEvents entries of an `events/` file."""
    return json.loads((EVENTS_DIR / name).read_text())


def load_detail(name: str, index: int = 0) -> dict:
    return json.loads(load_entries(name)[index]["Detail"])


@pytest.fixture
def aws():
    """An in-process moto backend with the whole topology provisioned; yields (session, resources)."""
    from moto import mock_aws

    from agentbus.local.provision import provision

    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        yield session, provision(session)


def order_entry(order_id: str, base: str = "order-placed.json", **overrides) -> dict:
    """A PutEvents entry for `base`'s order under a new id (and any detail fields overridden)."""
    entry = dict(load_entries(base)[0])
    detail = json.loads(entry["Detail"])
    detail.update(order_id=order_id, **overrides)
    entry["Detail"] = json.dumps(detail)
    return entry


def drain_queue(sqs, url: str) -> list[dict]:
    """Receive and delete every message of a queue (with its message attributes)."""
    messages = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                     MessageAttributeNames=["All"]).get("Messages", []):
        messages += got
        for message in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def delivered_to_coordinator(session, resources) -> list[dict]:
    """Events the bus delivered to the coordinator's queue so far (agent results, triggers), drained."""
    url = resources.consumers["coordinator"].queue_url
    return [json.loads(m["Body"]) for m in drain_queue(session.client("sqs"), url)]


def tap(session, resources, source: str) -> str:
    """A queue of our own that receives whatever ``source`` publishes on the bus (a standalone agent's results
    reach no other queue); returns its URL. Read it with ``tapped``."""
    name = f"tap-{source.replace('.', '-')}"
    sqs, events = session.client("sqs"), session.client("events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=resources.bus_name, EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=name, EventBusName=resources.bus_name, Targets=[{"Id": "tap", "Arn": arn}])
    return url


def tapped(session, url: str) -> list[dict]:
    """The events a ``tap`` queue received so far, drained."""
    return [json.loads(m["Body"]) for m in drain_queue(session.client("sqs"), url)]


ORDERS = "order-fulfillment"


def agents_of(workflow: str = ORDERS) -> tuple[str, ...]:
    """The agents of one of the shipped manifest's workflows, in its order, any agent a user added included
    (README "Add an agent"): those a whole local stack of the shipped manifest runs. Tests that drive the
    coordinator or the benchmark themselves pin the agents they were written for instead (``tests/pinned.py``)."""
    from functions.manifest import MANIFEST

    return tuple(agent.name for agent in MANIFEST.workflow(workflow).agents)


def settings_for(resources, consumer: str, manifest=None, **overrides):
    """The settings ``consumer``'s function parses from the environment the stack / local runtime give it."""
    import dataclasses

    from functions.common.settings import Settings
    from functions.manifest import MANIFEST

    settings = Settings.from_env(resources.function_environment(consumer, manifest or MANIFEST))
    return dataclasses.replace(settings, **overrides) if overrides else settings


def workflow_store(client, resources, manifest=None):
    """The coordinator's store on a provisioned deployment (its table and the main tables)."""
    from functions.coordinator.store import WorkflowStore
    from functions.manifest import MANIFEST

    return WorkflowStore(client, resources.tables["workflows"], manifest or MANIFEST, resources.tables)


@contextlib.contextmanager
def observed_stack(manifest=None, options=None):
    """A local stack (moto's server on a free port, the runtime running) of ``manifest`` with a ``BusObserver`` on
    its bus (``stack.observer_``) and the agents' pause control (``stack.control``); both stopped on exit."""
    from agentbus.control import AgentControl
    from agentbus.local.runtime import RuntimeOptions
    from agentbus.local.stack import LocalStack
    from agentbus.observe import BusObserver
    from functions.manifest import MANIFEST

    manifest = manifest or MANIFEST
    # fork_endpoint: a test process starts many stacks; each endpoint is forked with moto already imported.
    with LocalStack(manifest=manifest, options=options or RuntimeOptions(deadline_seconds=60),
                    fork_endpoint=True) as stack:
        observer = BusObserver(stack.client("events"), stack.client("sqs"), stack.resources.bus_name,
                               manifest=manifest).start()
        stack.observer_ = observer
        stack.control = AgentControl(stack.resources, stack.client("sqs"))
        try:
            yield stack
        finally:
            observer.stop()
