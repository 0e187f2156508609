"""Issue 13, operations of people in the loop: the census schedule, its metrics on the dashboard, the alarm when
a workflow waits too long for a person, and the rules that let answers and cancels reach the coordinator."""

from __future__ import annotations

import json

import pytest

from functions.common.spec import CANCEL_DETAIL_TYPE, CENSUS_DETAIL_TYPE, DEADLINE_SOURCE
from functions.coordinator import census
from functions.manifest import MANIFEST
from infrastructure import observability
from infrastructure.stack import StackConfig
from tests.infrastructure.template import ConsumerView, Synth, ref_id
from tests.pinned import MANIFEST as PINNED

WAITING_WORKFLOWS = [w.name for w in MANIFEST.coordinated if w.external]


class FakeNode:
    def __init__(self, **context: str) -> None:
        self.context = context

    def try_get_context(self, name: str) -> str | None:
        return self.context.get(name)


def _alarms(synth: Synth, metric: str) -> list[dict]:
    return [a["Properties"] for a in synth.of_type("AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("MetricName") == metric and a["Properties"].get("Namespace") == "agentbus"]


def test_a_census_schedule_puts_census_due_on_the_bus_every_five_minutes(synth: Synth) -> None:
    group_id, _ = synth.one("AWS::Scheduler::ScheduleGroup")
    bus_id, _ = synth.one("AWS::Events::EventBus")
    (schedule,) = synth.of_type("AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "rate(5 minutes)"
    assert props["State"] == "ENABLED" and props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert ref_id(props["GroupName"]) == group_id
    # Not a deadline's name (those are <workflow>-<id> or <id>-<hash>): the coordinator never deletes it.
    assert "-" not in props["Name"]
    target = props["Target"]
    assert ref_id(target["Arn"]) == bus_id
    assert target["EventBridgeParameters"] == {"DetailType": CENSUS_DETAIL_TYPE, "Source": DEADLINE_SOURCE}
    # The scheduler role that puts deadlines (only the deadline source, which the census uses too).
    (coordinator,) = [f for f in synth.of_type("AWS::Lambda::Function").values()
                      if f["Properties"]["Handler"] == MANIFEST.coordinator.handler]
    assert ref_id(target["RoleArn"]) == ref_id(coordinator["Properties"]["Environment"]["Variables"]
                                                ["SCHEDULER_ROLE_ARN"])
    assert isinstance(json.loads(target["Input"]), dict)


def _coordinator_patterns(synth: Synth, consumers: dict[str, ConsumerView]) -> list[dict]:
    queue_id = consumers["coordinator"].queue_id
    return [rule["Properties"]["EventPattern"] for rule in synth.of_type("AWS::Events::Rule").values()
            if [ref_id(t["Arn"]) for t in rule["Properties"]["Targets"]] == [queue_id]]


def test_the_census_reaches_the_coordinator_through_its_deadline_rule(
        synth: Synth, consumers: dict[str, ConsumerView]) -> None:
    patterns = _coordinator_patterns(synth, consumers)
    assert any(p.get("source") == [DEADLINE_SOURCE] and CENSUS_DETAIL_TYPE in p["detail-type"] for p in patterns)


def test_answers_and_cancels_reach_the_coordinator_from_any_source(
        synth: Synth, consumers: dict[str, ConsumerView]) -> None:
    """Rules without `source`: a forgery reaches the coordinator, which refuses it with the reason (its DLQ)."""
    sourceless = [p for p in _coordinator_patterns(synth, consumers) if "source" not in p]
    assert {"detail-type": [CANCEL_DETAIL_TYPE]} in sourceless
    assert {"detail-type": ["Access Approved", "Access Declined"]} in sourceless
    # Nothing else comes from any source (a user's workflow may add its own people's answers).
    answers = {r.detail_type for w in MANIFEST.coordinated for agent in w.external for r in agent.results}
    assert all(set(p) == {"detail-type"} and set(p["detail-type"]) <= answers | {CANCEL_DETAIL_TYPE}
               for p in sourceless), sourceless


@pytest.mark.parametrize("workflow", WAITING_WORKFLOWS)
def test_an_alarm_when_a_workflow_has_waited_four_hours_for_a_person(synth: Synth, workflow: str) -> None:
    (alarm,) = [a for a in _alarms(synth, census.OLDEST_WAIT_METRIC)
                if {d["Name"]: d["Value"] for d in a["Dimensions"]}.get("workflow") == workflow]
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"service": "coordinator", "workflow": workflow}
    assert alarm["Threshold"] == 4 * 60 * 60 == observability.DEFAULT_APPROVAL_ALARM_S
    assert alarm["Statistic"] == "Maximum" and alarm["Period"] == 300
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    topic_id, _ = synth.one("AWS::SNS::Topic")
    assert [ref_id(action) for action in alarm["AlarmActions"]] == [topic_id]
    assert "agentbus pending" in alarm["AlarmDescription"]


def test_only_workflows_with_external_agents_have_a_waiting_alarm(synth: Synth) -> None:
    dimensions = [{d["Name"]: d["Value"] for d in a["Dimensions"]} for a in _alarms(synth, census.OLDEST_WAIT_METRIC)]
    assert sorted(d["workflow"] for d in dimensions) == sorted(WAITING_WORKFLOWS)


def test_the_dashboard_shows_who_waits_and_the_oldest_wait_per_workflow(synth: Synth) -> None:
    _, dashboard = synth.one("AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "Waiting for a person" in body
    for workflow in WAITING_WORKFLOWS:
        for metric in (census.WAITING_METRIC, census.OLDEST_WAIT_METRIC):
            # A graph metric is ["namespace", "name", "dim", "value", "dim", "value", ...] in the body's JSON text.
            assert f'\\"{metric}\\",\\"service\\",\\"coordinator\\",\\"workflow\\",\\"{workflow}\\"' in body


def test_the_census_and_the_dashboard_name_the_same_metrics() -> None:
    assert (observability.WAITING_METRIC, observability.OLDEST_WAIT_METRIC) == (census.WAITING_METRIC,
                                                                                census.OLDEST_WAIT_METRIC)


def test_the_coordinator_waits_the_manifests_time_for_a_person_unless_context_says(synth: Synth) -> None:
    (coordinator,) = [f for f in synth.of_type("AWS::Lambda::Function").values()
                      if f["Properties"]["Handler"] == MANIFEST.coordinator.handler]
    assert "EXTERNAL_WAIT_SECONDS" not in coordinator["Properties"]["Environment"]["Variables"]
    assert StackConfig.from_context(FakeNode(approval_wait_seconds="3600")).approval_wait_seconds == 3600
    with pytest.raises(ValueError, match="approval_wait_seconds"):
        StackConfig.from_context(FakeNode(approval_wait_seconds="0"))


def test_the_approval_alarm_threshold_comes_from_context() -> None:
    assert StackConfig.from_context(FakeNode()).approval_alarm_s(PINNED) == 4 * 60 * 60
    assert StackConfig.from_context(FakeNode(approval_alarm_seconds="600")).approval_alarm_s(PINNED) == 600
    for bad in ("0", "soon", str(366 * 24 * 60 * 60 + 1), "9" * 400):
        with pytest.raises(ValueError, match="approval_alarm_seconds"):
            StackConfig.from_context(FakeNode(approval_alarm_seconds=bad))


def test_an_approval_alarm_no_wait_can_reach_is_refused_and_the_default_follows_a_shorter_wait() -> None:
    """Black-box pass 7C, F2: with -c approval_wait_seconds=3600 the WaitsForAPerson alarm stayed at 4 h (or an
    explicit 7200) and could never fire: a workflow times out after the person's wait."""
    shorter = StackConfig.from_context(FakeNode(approval_wait_seconds="3600"), PINNED)
    assert shorter.longest_person_wait_s(PINNED) == 3600 and shorter.approval_alarm_s(PINNED) == 1800
    with pytest.raises(ValueError, match=r"approval_alarm_seconds=7200 can never fire: a workflow waits for a person "
                                         r"at most 3600 s here .*give at most 3300"):
        StackConfig.from_context(FakeNode(approval_wait_seconds="3600", approval_alarm_seconds="7200"), PINNED)
    assert StackConfig.from_context(FakeNode(approval_wait_seconds="3600", approval_alarm_seconds="3300"),
                                    PINNED).approval_alarm_s(PINNED) == 3300
    # Black-box pass 9B, F10: under the census' 5 minutes no threshold can fire, and the error said "give at most
    # -180"; the default (half the wait) broke the rule a given value must keep between 5 and 10 minutes.
    with pytest.raises(ValueError, match=r"approval_alarm_seconds=30 can never fire: .*at most 120 s here.*no "
                                         r"threshold can fire while a person is waited for 300 s or less") as refused:
        StackConfig.from_context(FakeNode(approval_wait_seconds="60", deadline_seconds="120",
                                          approval_alarm_seconds="30"), PINNED)
    assert "-180" not in str(refused.value)
    for wait in (360, 420, 599, 600, 900):
        config = StackConfig.from_context(FakeNode(approval_wait_seconds=str(wait), deadline_seconds="60"), PINNED)
        assert config.longest_person_wait_s(PINNED) == wait
        alarm = config.approval_alarm_s(PINNED)
        assert 0 < alarm <= wait - 300 and alarm <= wait // 2, (wait, alarm)
        StackConfig.from_context(FakeNode(approval_wait_seconds=str(wait), deadline_seconds="60",
                                          approval_alarm_seconds=str(alarm)), PINNED)  # the default passes as given
    # The shipped manager waits 24 h (longer than any deadline): the default 4 h stays.
    assert StackConfig.from_context(FakeNode(), PINNED).longest_person_wait_s(PINNED) == 24 * 3600
