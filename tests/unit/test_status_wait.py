"""`agentbus status ID --wait SECONDS`: looks again until the workflow has its outcome, on a clock of the test's."""

from __future__ import annotations

import json

import pytest

from agentbus import cli, discovery
from agentbus import operations as ops
from tests.unit.test_cli import _resources, _run, _view, deployment  # noqa: F401 - deployment is a fixture
from tests.unit.test_reasoner import FakeTime


def _looks(*answers):
    """A ``workflow_status`` answering each look with the next of ``answers`` (an exception is raised), the last
    one again and again; the ids it was asked for are in ``.asked``."""
    remaining = list(answers)

    def workflow_status(_deployment, workflow_id, _workflow=None, _manifest=None, **options):
        workflow_status.asked.append(workflow_id)
        workflow_status.resolved.append(options.get("resolve_claim_checks", True))
        answer = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    workflow_status.asked = []
    workflow_status.resolved = []  # whether each look fetched claim-checked data
    return workflow_status


# What the claim-check step reads at the end of a wait; the views here hold no claim-checked result.
DEPLOYMENT = discovery.Deployment(session=None, endpoint_url="http://127.0.0.1:9", resources=_resources())
UNKNOWN = ops.UnknownWorkflowId("unknown workflow id 'ord-1': no such workflow in w")


def test_an_id_with_no_record_yet_is_looked_for_again_until_its_outcome(monkeypatch):
    looks = _looks(UNKNOWN, UNKNOWN, _view(status="RUNNING"), _view(status="COMPLETED"))
    monkeypatch.setattr(ops, "workflow_status", looks)
    clock, seen = FakeTime(), []
    waited = ops.wait_for_outcome(DEPLOYMENT, "ord-1", None, 60, clock=clock.clock, sleep=clock.sleep,
                                  on_view=lambda last, elapsed: seen.append((last.view is None, round(elapsed, 2))))
    assert waited.ended and waited.view["status"] == "COMPLETED" and waited.error is None
    assert looks.resolved == [False] * 4  # claim-checked data is fetched once, for the view returned
    assert len(looks.asked) == 4 and seen == [(True, 0.0), (True, 0.25), (False, 0.62), (False, 1.19)]


def test_the_looks_get_further_apart_up_to_two_seconds_and_stop_at_the_timeout(monkeypatch):
    monkeypatch.setattr(ops, "workflow_status", _looks(_view(status="RUNNING")))
    clock = FakeTime()
    waited = ops.wait_for_outcome(DEPLOYMENT, "ord-1", None, 20, clock=clock.clock, sleep=clock.sleep)
    assert not waited.ended and waited.view["status"] == "RUNNING"
    assert clock.slept[:4] == [0.25, 0.375, 0.5625, 0.84375] and max(clock.slept) == ops.WAIT_MAX_POLL_S
    assert clock.now == 1020  # the last sleep is cut to the time left, and a last look is taken then


def test_a_timeout_with_no_record_keeps_the_reason(monkeypatch):
    monkeypatch.setattr(ops, "workflow_status", _looks(UNKNOWN))
    clock = FakeTime()
    waited = ops.wait_for_outcome(DEPLOYMENT, "ord-1", None, 3, clock=clock.clock, sleep=clock.sleep)
    assert (waited.view, waited.ended, waited.error) == (None, False, UNKNOWN)


@pytest.mark.parametrize("error", [ops.OperationError("id 'x' is used by several workflows (a, b): pass --workflow"),
                                   ops.OperationError("ID must be 1 to 128 characters: no workflow can have this id"),
                                   ConnectionError("cannot reach the endpoint")])
def test_any_other_error_ends_the_wait_at_once(monkeypatch, error):
    looks = _looks(error)
    monkeypatch.setattr(ops, "workflow_status", looks)
    clock = FakeTime()
    with pytest.raises(type(error)):
        ops.wait_for_outcome(DEPLOYMENT, "x", None, 60, clock=clock.clock, sleep=clock.sleep)
    assert len(looks.asked) == 1 and clock.slept == []


def _no_sleep(monkeypatch):
    clock = FakeTime()
    monkeypatch.setattr(ops.time, "monotonic", clock.clock)
    monkeypatch.setattr(ops.time, "sleep", clock.sleep)


def test_the_cli_prints_the_outcome_once_it_is_in(deployment, monkeypatch, capsys):  # noqa: F811
    _no_sleep(monkeypatch)
    monkeypatch.setattr(ops, "workflow_status", _looks(UNKNOWN, _view(status="RUNNING"), _view(status="REJECTED")))
    code, out, err = _run(capsys, "status", "ord-1", "--wait", "30", "--json")
    assert (code, err) == (0, "") and json.loads(out)["status"] == "REJECTED"


def test_the_cli_shows_a_still_running_workflow_and_exits_3(deployment, monkeypatch, capsys):  # noqa: F811
    _no_sleep(monkeypatch)
    monkeypatch.setattr(ops, "workflow_status", _looks(_view(status="RUNNING", workflow_id="ord-1")))
    code, out, err = _run(capsys, "status", "ord-1", "--wait", "5")
    assert code == 3
    assert "workflow ord-1: RUNNING" in out
    assert err.strip() == "agentbus status: ord-1 is still RUNNING after 5 s"


def test_the_cli_names_an_id_never_found_and_exits_3(deployment, monkeypatch, capsys):  # noqa: F811
    _no_sleep(monkeypatch)
    monkeypatch.setattr(ops, "workflow_status", _looks(UNKNOWN))
    code, out, err = _run(capsys, "status", "ord-1", "--wait", "2.5")
    assert (code, out) == (3, "")
    assert err.strip() == f"agentbus status: {UNKNOWN} (after waiting 2.5 s)"


def test_the_cli_fails_at_once_on_another_error(deployment, monkeypatch, capsys):  # noqa: F811
    _no_sleep(monkeypatch)
    monkeypatch.setattr(ops, "workflow_status", _looks(ops.OperationError("this deployment coordinates no workflow")))
    code, _, err = _run(capsys, "status", "ord-1", "--wait", "30")
    assert code == 2 and "coordinates no workflow" in err


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "31622401", "soon"])
def test_a_wait_that_is_no_time_or_more_than_a_workflow_can_last_is_a_usage_error(capsys, value):
    with pytest.raises(SystemExit) as usage_error:
        cli.main(["status", "ord-1", "--wait", value])
    err = capsys.readouterr().err
    assert usage_error.value.code == 2 and "argument --wait" in err and value in err
    # Black-box pass 20A, F4: -1 and nan said "must be >= 0", which 0 is too.
    assert ("not a number" if value == "soon" else "must be more than 0 and at most 31622400 (366 days)") in err


def test_the_help_says_what_the_exit_code_3_means(capsys):
    with pytest.raises(SystemExit):
        cli.main(["status", "--help"])
    status_help = " ".join(capsys.readouterr().out.split())
    assert "--wait SECONDS" in status_help and "exit code 3" in status_help


def test_each_look_gives_up_on_an_endpoint_that_does_not_answer_sooner_than_other_operations(monkeypatch):
    import boto3

    given = []

    def workflow_status(looking, *_args, **_options):
        given.append(looking)
        return _view(status="COMPLETED")

    monkeypatch.setattr(ops, "workflow_status", workflow_status)
    session = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    given_deployment = discovery.Deployment(session, "http://127.0.0.1:9", _resources())
    ops.wait_for_outcome(given_deployment, "ord-1", None, 60)
    [looking] = given
    look_config = looking.client("dynamodb").meta.config
    assert (look_config.read_timeout, look_config.retries["total_max_attempts"]) == (10, 2)
    operation_config = given_deployment.client("dynamodb").meta.config  # the deployment given is left as it was
    assert (operation_config.read_timeout, operation_config.retries["total_max_attempts"]) == (30, 4)
