"""What every agent of the manifest owes, whatever its workflow: a Lambda entry point wired from its
environment, and a sample of each result it may emit that is a valid `aws events put-events --entries` file
the bus routes, answering a trigger sample of `events/` (same id, and the digest of that trigger's detail)."""

from __future__ import annotations

import importlib
import json

import pytest

from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from agentbus.local.provision import REPO_ROOT
from functions.common.digest import trigger_digest
from functions.common.models import AgentResult, CancelRequested, ExternalResult, WorkflowOutcome
from functions.common.spec import CANCEL_DETAIL_TYPE, COORDINATOR_SOURCE, OPERATOR_SOURCE, Manifest, Workflow
from functions.manifest import MANIFEST, Outcome
from tests.conftest import EVENTS_DIR, delivered_to_coordinator, load_entries, tap, tapped

AGENTS = MANIFEST.agents
RESULTS = [(agent, result) for agent in AGENTS for result in agent.results]


def sample_file(detail_type: str) -> str:
    return detail_type.lower().replace(" ", "-") + ".json"


def trigger_samples(workflow) -> dict[str, dict]:
    """Every trigger detail of ``workflow`` in `events/`, by workflow id."""
    found: dict[str, dict] = {}
    for path in sorted(EVENTS_DIR.glob("*.json")):
        entries = json.loads(path.read_text())
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and workflow.trigger.matches(entry.get("Source"), entry.get("DetailType")):
                detail = json.loads(entry["Detail"])
                found.setdefault(str(detail.get(workflow.id_field)), detail)
    return found


def _sample_entries(paths) -> list[dict]:
    entries: list[dict] = []
    for path in paths:
        loaded = json.loads((REPO_ROOT / path).read_text())
        entries += loaded if isinstance(loaded, list) else [loaded]
    return [e for e in entries if isinstance(e, dict)]


def _own_trigger(workflow: Workflow, paths) -> tuple[str, str, dict] | None:
    """The first entry of the files ``paths`` that is ``workflow``'s trigger, with its id."""
    for entry in _sample_entries(paths):
        if workflow.trigger.matches(entry.get("Source", ""), entry.get("DetailType", "")):
            detail = json.loads(entry["Detail"])
            if isinstance(detail, dict) and detail.get(workflow.id_field) is not None:
                return entry["DetailType"], entry["Source"], detail
    return None


def agent_trigger(manifest: Manifest, workflow: Workflow) -> tuple[str, str, dict]:
    """(detail-type, source, detail) of a trigger an agent of ``workflow`` really receives: a sample of its
    trigger in its ``samples`` (else in another workflow's, on the same trigger); for a workflow started by
    another's outcome (its trigger from the coordinator; README: its sample is then that other workflow's
    trigger), that other workflow's outcome for that request, as the coordinator publishes it (a
    ``WorkflowOutcome`` with the other workflow's id field). Fails naming the problem when there is neither."""
    every_sample = [path for w in manifest.workflows for path in w.samples]
    own = _own_trigger(workflow, (*workflow.samples, *every_sample))
    if own is not None:
        return own
    trigger = workflow.trigger.subscription
    if COORDINATOR_SOURCE in trigger.sources:
        for other in manifest.coordinated:
            for status, detail_type in other.terminal_detail_types.items():
                if other is workflow or detail_type not in trigger.detail_types:
                    continue
                started = _own_trigger(other, (*workflow.samples, *other.samples, *every_sample))
                if started is None:
                    continue
                workflow_id = str(started[2][other.id_field])
                outcome = WorkflowOutcome(workflow=other.name, workflow_id=workflow_id, status=status.value,
                                          results={}, timings={}, idempotency_key=f"{workflow_id}:{status.value}")
                return detail_type, COORDINATOR_SOURCE, {**outcome.model_dump(mode="json"),
                                                         other.id_field: workflow_id}
    pytest.fail(f"workflow {workflow.name!r}: no sample of its trigger ({'/'.join(trigger.detail_types)} from "
                f"{'/'.join(trigger.sources)}) in the manifest's samples (its own: {list(workflow.samples)}), "
                "and no workflow of the manifest whose outcome is that trigger has a sample: add a sample of the "
                "trigger (or, for a workflow started by an outcome, of the trigger of the workflow whose outcome "
                "starts it)")


def check_entry_point(manifest: Manifest, agent, session, resources, monkeypatch) -> None:
    """The agent's Lambda entry point, built from the environment its function gets, answers a real trigger of
    its workflow (``agent_trigger``) with its first success result."""
    workflow = manifest.workflow_of(agent.name)
    detail_type, source, detail = agent_trigger(manifest, workflow)
    url = tap(session, resources, agent.source)
    for key, value in resources.function_environment(agent.name, manifest).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RECORD_CONCURRENCY", "1")  # moto in-process is not thread-safe
    # The entry point the manifest names, as Lambda resolves it (a typo there failed only on AWS).
    module_name, _, entry_point = agent.handler.rpartition(".")
    handler = getattr(importlib.import_module(module_name), entry_point, None)
    assert handler is not None, f"{module_name} has no {entry_point!r}: the manifest's handler {agent.handler!r}"
    handler.reset()
    try:
        body = eventbridge_envelope(detail_type, source, detail)
        event = sqs_event([sqs_record(body, resources.consumers[agent.name].queue_arn)])
        assert handler(event, LambdaContext(agent.name)) == {"batchItemFailures": []}, \
            f"agent {agent.name!r} did not accept {detail_type!r} from {source!r} (its log says why)"
    finally:
        handler.reset()
    published = tapped(session, url)
    assert len(published) == 1, (f"agent {agent.name!r} published {len(published)} events for {detail_type!r} "
                                 f"from {source!r}, expected its one result (its log says why)")
    success = next(r.detail_type for r in agent.results if r.outcome is Outcome.SUCCESS)
    assert (published[0]["source"], published[0]["detail-type"]) == (agent.source, success)
    assert published[0]["detail"]["workflow"] == workflow.name
    assert published[0]["detail"]["trigger_digest"] == trigger_digest(detail)


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_lambda_entry_point_builds_from_its_environment(agent, aws, monkeypatch):
    session, resources = aws
    check_entry_point(MANIFEST, agent, session, resources, monkeypatch)


@pytest.mark.parametrize(("agent", "result"), RESULTS, ids=lambda x: getattr(x, "detail_type", getattr(x, "name", "")))
def test_each_result_has_a_valid_put_events_sample(agent, result, aws):
    session, resources = aws
    workflow = MANIFEST.workflow_of(agent.name)
    url = tap(session, resources, agent.source)
    entries = json.loads((EVENTS_DIR / sample_file(result.detail_type)).read_text())
    [entry] = entries
    assert (entry["EventBusName"], entry["Source"], entry["DetailType"]) == ("agentbus", agent.source,
                                                                            result.detail_type)
    detail = AgentResult.model_validate(json.loads(entry["Detail"]))
    assert (detail.workflow, detail.agent, detail.outcome) == (workflow.name, agent.name, result.outcome.value)
    triggers = trigger_samples(workflow)
    assert detail.workflow_id in triggers, f"no trigger sample in events/ for {detail.workflow_id}"
    assert detail.trigger_digest == trigger_digest(triggers[detail.workflow_id]), \
        "the sample answers its trigger sample: its trigger_digest is that trigger's"
    assert detail.idempotency_key == f"{detail.workflow_id}:{agent.name}:{detail.trigger_digest}"
    # What `aws events put-events --entries file://events/<sample>` does: the bus routes it (to the coordinator
    # when the workflow is coordinated; a standalone result is only there for whoever listens).
    assert session.client("events").put_events(Entries=entries)["FailedEntryCount"] == 0
    [heard] = tapped(session, url)
    assert (heard["detail-type"], heard["detail"]) == (entry["DetailType"], json.loads(entry["Detail"]))
    delivered = delivered_to_coordinator(session, resources)
    if workflow.coordinated:
        assert [(d["detail-type"], d["detail"]) for d in delivered] == [(entry["DetailType"], heard["detail"])]
    else:
        assert delivered == [], "a standalone result never reaches the coordinator"


# --- what comes from outside: external agents' results and cancel requests ----------------------------------

EXTERNAL_RESULTS = [(workflow, agent, result) for workflow in MANIFEST.coordinated for agent in workflow.external
                    for result in agent.results]


@pytest.mark.parametrize(("workflow", "agent", "result"), EXTERNAL_RESULTS,
                         ids=lambda x: getattr(x, "detail_type", getattr(x, "name", "")))
def test_each_external_result_has_a_put_events_sample_that_reaches_the_coordinator(workflow, agent, result, aws):
    """`aws events put-events --entries file://events/access-approved.json` is how a person's answer arrives
    without the CLI: its detail names the request version (trigger_digest) of a trigger sample of events/."""
    session, resources = aws
    entries = load_entries(sample_file(result.detail_type))
    [entry] = entries
    assert (entry["EventBusName"], entry["Source"], entry["DetailType"]) == ("agentbus", agent.source,
                                                                            result.detail_type)
    detail = ExternalResult.model_validate(json.loads(entry["Detail"]))
    assert (detail.workflow, detail.agent) == (workflow.name, agent.name)
    assert detail.by and detail.note
    triggers = trigger_samples(workflow)
    assert detail.workflow_id in triggers, f"no trigger sample in events/ for {detail.workflow_id}"
    assert detail.trigger_digest == trigger_digest(triggers[detail.workflow_id])
    assert session.client("events").put_events(Entries=entries)["FailedEntryCount"] == 0
    delivered = delivered_to_coordinator(session, resources)
    assert [(d["source"], d["detail-type"]) for d in delivered] == [(agent.source, result.detail_type)]


def test_a_forged_external_result_still_reaches_the_coordinator_which_refuses_it(aws):
    """The coordinator's rule for external results has no source: a forgery reaches it (and its DLQ, with the
    reason), rather than vanishing unseen."""
    session, resources = aws
    [entry] = load_entries("access-approved.json")
    forged = {**entry, "Source": "evil.approvals"}
    assert session.client("events").put_events(Entries=[forged])["FailedEntryCount"] == 0
    [delivered] = delivered_to_coordinator(session, resources)
    assert delivered["source"] == "evil.approvals"


def test_the_cancel_sample_asks_an_operator_cancel_of_a_sample_order(aws):
    session, resources = aws
    entries = load_entries("workflow-cancel-requested.json")
    [entry] = entries
    assert (entry["EventBusName"], entry["Source"], entry["DetailType"]) == ("agentbus", OPERATOR_SOURCE,
                                                                            CANCEL_DETAIL_TYPE)
    cancel = CancelRequested.model_validate(json.loads(entry["Detail"]))
    workflow = MANIFEST.workflow(cancel.workflow)
    assert workflow.cancellable and entry["Source"] in workflow.cancel_sources
    assert cancel.workflow_id in trigger_samples(workflow)
    assert cancel.by and cancel.reason
    assert session.client("events").put_events(Entries=entries)["FailedEntryCount"] == 0
    delivered = delivered_to_coordinator(session, resources)
    assert [(d["source"], d["detail-type"]) for d in delivered] == [(OPERATOR_SOURCE, CANCEL_DETAIL_TYPE)]
