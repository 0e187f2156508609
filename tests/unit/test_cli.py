"""The CLI as an operator meets it: data is never markup, errors are one line, every verb and option has help."""

from __future__ import annotations

import argparse
import http.server
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agentbus import cli, discovery
from agentbus import operations as ops
from agentbus.resources import ConsumerResources, Resources

BIN = Path(sys.executable).parent
HOSTILE = "ord-[/bold]"  # closes a tag nobody opened: rich.markup raises MarkupError on it


def _resources() -> Resources:
    queue = ConsumerResources(queue_url="http://q", queue_arn="arn:q", dlq_url="http://dlq", dlq_arn="arn:dlq")
    return Resources(bus_name="agentbus", bus_arn="arn:bus", archive_name="a", schedule_group="g",
                     scheduler_role_arn="arn:role", tables={"workflows": "w", "orders": "o", "inventory": "i"},
                     consumers={"fraud": queue}, local=True)


def _view(**changes) -> dict:
    view = {
        "workflow_id": HOSTILE, "workflow": "orders", "status": "REJECTED", "reason": "fraud: [red]x[/] [/bold]",
        "results": {"fraud": {"detail_type": "Order Flagged [/i]", "outcome": "failure", "duration_ms": 3,
                              "reason": "score [/bold] >= 100", "started_at": "2026-11-26T10:00:00+00:00",
                              "finished_at": "2026-11-26T10:00:00.003000+00:00"}},
        "missing": ["[/shipping]"], "timings": {"duration_ms": 12}, "trigger": {"order_id": HOSTILE},
        "trigger_error": None, "trigger_received_at": "2026-11-26T10:00:00+00:00",
        "finished_at": "2026-11-26T10:00:00.012000+00:00", "published": True, "late_results": [], "outcome": {},
    }
    return {**view, **changes}


@pytest.fixture
def deployment(monkeypatch):
    """The CLI's verbs against a fake deployment: only what each verb reads is faked."""
    deployment = discovery.Deployment(session=None, endpoint_url="http://127.0.0.1:9", resources=_resources())
    monkeypatch.setattr(discovery, "find_deployment", lambda *_: deployment)
    return deployment


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", [["status", HOSTILE], ["status", HOSTILE, "--json"], ["trace", HOSTILE]])
def test_markup_in_a_workflow_never_crashes_status_or_trace(deployment, monkeypatch, capsys, argv):
    monkeypatch.setattr(ops, "workflow_status", lambda _d, _id, _workflow=None, **_options: _view())
    code, out, err = _run(capsys, *argv)
    assert (code, err) == (0, "")
    assert HOSTILE in out
    if "--json" not in argv and argv[0] == "status":
        assert "score [/bold] >= 100" in out and "fraud: [red]x[/] [/bold]" in out and "[/shipping]" in out


def test_markup_in_an_error_prints_as_it_is(deployment, monkeypatch, capsys):
    def unknown(_d, workflow_id, _workflow=None):
        raise ops.OperationError(f"unknown workflow id {workflow_id!r}: no such workflow in w")

    monkeypatch.setattr(ops, "workflow_status", unknown)
    code, _, err = _run(capsys, "status", HOSTILE)
    assert code == 2 and f"unknown workflow id '{HOSTILE}'" in err


@pytest.mark.parametrize(("raised", "says"), [
    # A manifest's lookup of a name it does not know (black-box pass 2, F8: a traceback, exit 1).
    (KeyError("unknown agent 'classifier'; known: fraud, coordinator"),
     "agentbus dead-letters: unknown agent 'classifier'; known: fraud, coordinator\n"),
    (KeyError("Attributes"), "agentbus dead-letters: unexpected KeyError: 'Attributes'\n"),
])
def test_a_key_error_is_one_line_never_a_traceback(deployment, monkeypatch, capsys, raised, says):
    def lookup(_d, _agent=None):
        raise raised

    monkeypatch.setattr(ops, "dead_letters", lookup)
    assert _run(capsys, "dead-letters") == (2, "", says)


@pytest.mark.parametrize(("url", "says"), [
    ("http://127.0.0.1:5041/", "cannot reach http://127.0.0.1:5041: is `agentbus up` (or the emulator) running there?"),
    ("https://dynamodb.us-east-1.amazonaws.com/", "cannot reach https://dynamodb.us-east-1.amazonaws.com"),
    # botocore names the request's URL: the endpoint is what the operator gave (21E).
    ("http://127.0.0.1:5041/2019-09-30/functions/f/concurrency",
     "cannot reach http://127.0.0.1:5041: is `agentbus up` (or the emulator) running there?"),
])
def test_an_endpoint_gone_after_discovery_is_the_line_discovery_gives(deployment, monkeypatch, capsys, url, says):
    # 21A F2: `status --wait` on an `agentbus up` stopped during the wait printed botocore's raw message.
    from botocore.exceptions import EndpointConnectionError

    def gone(*_args, **_options):
        raise EndpointConnectionError(endpoint_url=url)

    monkeypatch.setattr(ops, "workflow_status", gone)
    assert _run(capsys, "status", "ord-1001") == (2, "", f"agentbus status: {says}\n")


def test_markup_in_a_dead_letter_never_crashes_the_listing(deployment, monkeypatch, capsys):
    letters = [ops.DeadLetter(agent="fraud", message_id="m-1", reason="invalid [/bold] order_id",
                              event={"detail-type": "Order Placed", "detail": {"order_id": HOSTILE}}, receive_count=1),
               ops.DeadLetter(agent="fraud", message_id="m-2", reason="fine", event="[/oops] not JSON",
                              receive_count=3)]
    monkeypatch.setattr(ops, "dead_letters", lambda _d, _agent=None: letters)
    code, out, err = _run(capsys, "dead-letters")
    assert (code, err) == (0, "")
    assert f"Order Placed {HOSTILE}" in out and "reason: invalid [/bold] order_id" in out and "[/oops]" in out
    assert "2 dead letter(s)" in out


def test_a_dead_letter_that_is_json_but_no_event_says_so_not_none(deployment, monkeypatch, capsys):
    letters = [ops.DeadLetter(agent="fraud", message_id="m-1", reason="by hand", event={"x": 1}, receive_count=1)]
    monkeypatch.setattr(ops, "dead_letters", lambda _d, _agent=None: letters)
    code, out, _ = _run(capsys, "dead-letters")
    assert code == 0 and 'fraud m-1  not an event: {"x": 1}' in out and "None" not in out


def test_markup_in_the_agent_list_never_crashes(deployment, monkeypatch, capsys):
    monkeypatch.setattr(ops, "agent_list", lambda _d, _name=None: [
        {"agent": "[/b]", "state": "paused", "waiting": 1, "in_flight": 0, "dead_letters": 0}])
    code, out, _ = _run(capsys, "agent", "list")
    assert code == 0 and "[/b]" in out


class _Control:
    def is_paused(self, name: str) -> bool:
        return name == "fraud"

    def queue_depth(self, name: str) -> dict:
        return {"waiting": 3, "in_flight": 0, "dead_letters": 0}


def test_agent_list_with_a_name_lists_that_agent_and_refuses_one_it_does_not_have(deployment, monkeypatch, capsys):
    # `agent list NAME` ignored its NAME: every agent was listed, and a typo said nothing.
    deployment.resources.consumers["shipping"] = deployment.resources.consumers["fraud"]
    monkeypatch.setattr(ops, "control", lambda _d: _Control())
    code, out, _ = _run(capsys, "agent", "list", "fraud")
    assert code == 0 and "fraud" in out and "paused" in out and "shipping" not in out
    code, out, _ = _run(capsys, "agent", "list")
    assert code == 0 and "fraud" in out and "shipping" in out
    code, out, err = _run(capsys, "agent", "list", "fruad")
    assert (code, out) == (2, "") and "unknown agent 'fruad'; known: fraud, shipping" in err
    # A person of a workflow has no queue: say so, and how to answer for them, instead of "unknown agent".
    for argv in (["agent", "list", "manager-approval"], ["dead-letters", "--agent", "manager-approval"]):
        code, out, err = _run(capsys, *argv)
        assert (code, out) == (2, "")
        assert "'manager-approval' is an external agent of access-request (a person" in " ".join(err.split())
        assert "agentbus approve" in err


def test_emoji_codes_in_data_print_as_they_are(deployment, monkeypatch, capsys):
    monkeypatch.setattr(ops, "workflow_status", lambda _d, _id, _workflow=None: _view(workflow_id="ord-:smile:"))
    code, out, _ = _run(capsys, "status", "ord-:smile:")
    assert code == 0 and "ord-:smile:" in out


def test_a_standalone_workflows_demo_row_says_its_agents_answered_in_no_workflows_own_word():
    # Every standalone workflow's row said AUDITED, the new-user audit's word: "loyalty-points ord-1001 AUDITED".
    from agentbus.demo import summarize_standalone
    from agentbus.observe import ObservedEvent
    from functions.manifest import MANIFEST

    audit = MANIFEST.workflow("new-user-audit")
    [agent] = audit.agents
    answer = ObservedEvent("User Audit Completed", agent.source, {
        "agent": agent.name, "outcome": "success", "reason": "clean: no findings", "duration_ms": 3,
        "started_at": "2026-11-26T10:00:00.000Z", "finished_at": "2026-11-26T10:00:00.003Z"}, received_at=2.0)
    assert summarize_standalone(audit, "usr-5001", [answer], put_at=1.0).status == "ANSWERED"
    assert summarize_standalone(audit, "usr-5001", [], put_at=1.0).status == "RUNNING"


def test_the_demo_summary_prints_markup_in_data_as_it_is():
    from rich.console import Console

    from agentbus.demo import RequestSummary, print_summary
    from functions.manifest import MANIFEST

    console = Console(record=True, width=200)
    summary = RequestSummary(workflow="order-fulfillment", workflow_id=HOSTILE, status="REJECTED",
                             reason="[/bold] reason", agent_ms={"fraud": 1.0}, end_to_end_ms=5.0,
                             put_to_outcome_ms=5.0, timings={}, results={})
    print_summary(console, MANIFEST.workflow("order-fulfillment"), [summary])
    text = console.export_text()
    assert HOSTILE in text and "[/bold] reason" in text


@pytest.mark.parametrize(("agent_ms", "expected", "absent"), [
    # Agents with no simulated work: once "e2e ÷ sum 4153.85" and "parallel is 0.0× faster".
    ({"fraud": 0.1, "inventory": 0.2, "shipping": 0.1}, "of which the agents worked 0 ms in all", "faster"),
    ({"fraud": 300.0, "inventory": 100.0, "shipping": 200.0}, "→ parallel is 1.5× faster", "in all"),
])
def test_the_demo_compares_parallel_with_chained_only_when_the_agents_work(agent_ms, expected, absent):
    from rich.console import Console

    from agentbus.demo import RequestSummary, print_summary
    from tests.pinned import MANIFEST  # the order workflow with the agents of agent_ms (not any a user adds)

    console = Console(record=True, width=250)
    summary = RequestSummary(workflow="order-fulfillment", workflow_id="ord-1", status="COMPLETED", reason=None,
                             agent_ms=agent_ms, end_to_end_ms=400.0, put_to_outcome_ms=400.0, timings={}, results={})
    print_summary(console, MANIFEST.workflow("order-fulfillment"), [summary])
    text = console.export_text()
    assert expected in text and absent not in text
    assert ("4000.00" not in text) and ("1000.00" not in text)
    assert "mean over 1 request:" in text or "mean over 1 request with" in text


@pytest.mark.parametrize(("options", "expected"), [
    # Black-box pass 10B, F6: the advice to add simulated work, printed under chaos and when work was declared.
    ({}, "in all: give them simulated work (--work NAME=MS) to compare parallel with chained"),
    ({"chaos": True, "work_ms": {"fraud": 300}},
     "in all: the injected faults (delays, crashes, redeliveries) dominate: run without --chaos"),
    ({"work_ms": {"fraud": 300, "shipping": 200, "risk": 50}},
     "in all: the local bus, queues and coordinator on this machine dominate over the simulated work (fraud 300 "
     "ms, shipping 200 ms): give the agents more (--work NAME=MS)"),
])
def test_the_demo_says_what_dominates_when_end_to_end_outlasts_the_agents_work(options, expected):
    from rich.console import Console

    from agentbus.demo import RequestSummary, print_summary
    from tests.pinned import MANIFEST

    console = Console(record=True, width=400)
    summary = RequestSummary(workflow="order-fulfillment", workflow_id="ord-1", status="COMPLETED", reason=None,
                             agent_ms={"fraud": 300.0, "inventory": 10.0, "shipping": 200.0}, end_to_end_ms=900.0,
                             put_to_outcome_ms=900.0, timings={}, results={})
    print_summary(console, MANIFEST.workflow("order-fulfillment"), [summary], **options)
    text = " ".join(console.export_text().split())
    assert "end-to-end 900 ms, of which the agents worked 510 ms " + expected in text
    assert "faster" not in text


def test_the_demo_and_the_soak_count_one_request_in_the_singular():
    # Black-box pass 10B, F7: "put 1 requests on the bus", "invariants held for 1 requests".
    from agentbus.demo import counted

    assert [counted(n, "request") for n in (0, 1, 2)] == ["0 requests", "1 request", "2 requests"]
    assert counted(1, "duplicate delivery", "duplicate deliveries") == "1 duplicate delivery"
    assert counted(3, "duplicate delivery", "duplicate deliveries") == "3 duplicate deliveries"


# -- what status says beyond the status -------------------------------------------------------------------

def test_status_says_when_the_trigger_never_arrived(deployment, monkeypatch, capsys):
    monkeypatch.setattr(ops, "workflow_status",
                        lambda _d, _id, _workflow=None: _view(status="RUNNING", trigger=None, reason=None))
    code, out, _ = _run(capsys, "status", HOSTILE)
    assert code == 0 and "the trigger never arrived" in out


@pytest.mark.parametrize("verb", ["status", "trace"])
def test_status_of_a_standalone_workflow_says_it_keeps_no_record(deployment, capsys, verb):
    # It said "workflow 'new-user-audit' has no request with this id", as if another id could have one.
    code, _, err = _run(capsys, verb, "usr-5001", "--workflow", "new-user-audit")
    assert code == 2
    assert err == (f"agentbus {verb}: workflow 'new-user-audit' is standalone: it keeps no record of its "
                   "requests (its agents' results are events on the bus)\n")


def test_status_notes_a_missing_or_invalid_trigger():
    assert cli.status_notes({**_view(), "trigger": {"order_id": "x"}}) == []
    assert any("never arrived" in n for n in cli.status_notes({**_view(), "trigger": None}))
    assert cli.status_notes({**_view(), "trigger": {}, "trigger_error": "items: empty"}) == [
        "the trigger was invalid: items: empty"]


def test_status_of_a_timed_out_workflow_says_where_a_missing_agents_failure_is_kept():
    [note] = cli.status_notes(_view(status="TIMED_OUT", missing=["budget", "policy-check"]))
    assert note.startswith("no result from budget, policy-check: an agent that failed on the request keeps its trigger "
                           "in its dead-letter queue with the reason (`agentbus dead-letters --agent budget`)")
    assert cli.status_notes(_view(status="TIMED_OUT", missing=[])) == []
    assert cli.status_notes(_view(status="REJECTED", missing=["budget"])) == []  # decided without it


def test_status_of_a_request_timed_out_waiting_for_a_person_names_no_dead_letter_queue_for_the_person():
    # Black-box pass 21B, F3: the hint sent the operator to `dead-letters --agent manager-approval`, which fails
    # (a person has no queue).
    view = _view(workflow_id="acc-1", workflow="access-request", status="TIMED_OUT",
                 missing=["manager-approval", "policy"])
    assert cli.status_notes(view) == [
        "no result from policy: an agent that failed on the request keeps its trigger in its dead-letter queue with "
        "the reason (`agentbus dead-letters --agent policy`); a paused one keeps it in its queue (`agentbus agent "
        "list`)",
        "no answer from manager-approval (a person or another system, with no queue of its own): none came before "
        "the deadline"]
    [only] = cli.status_notes({**view, "missing": ["manager-approval"]})
    assert only.startswith("no answer from manager-approval")


def test_status_says_when_the_outcome_was_not_published(deployment, monkeypatch, capsys):
    monkeypatch.setattr(ops, "workflow_status", lambda _d, _id, _workflow=None: _view(published=False))
    code, out, _ = _run(capsys, "status", HOSTILE)
    assert code == 0 and "the outcome was not published" in out
    assert "not published" not in " ".join(cli.status_notes(_view(status="RUNNING", published=False)))
    assert cli.status_notes(_view()) == []


# -- errors are one line -----------------------------------------------------------------------------------

def _one_line(text: str) -> str:
    assert "Traceback" not in text and "<html" not in text.lower()
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_a_reader_that_stops_reading_ends_the_verb_quietly_as_sigpipe_would():
    # `agentbus catalogue | head -1`: the reader is gone before the verb writes; no error line, no traceback.
    reader = subprocess.Popen([str(BIN / "agentbus"), "catalogue"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()
    assert reader.wait(timeout=60) == 141
    assert reader.stderr.read() == b""
    reader.stderr.close()


def test_a_port_out_of_range_is_one_line():
    result = subprocess.run([str(BIN / "agentbus"), "up", "--port", "99999"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "--port" in _one_line(result.stderr) and "99999" in result.stderr


@pytest.mark.parametrize("port", ["0", "45679"])  # 0: the CLI picks a free port; else the endpoint process binds
def test_a_host_that_does_not_resolve_is_one_line(port):
    result = subprocess.run([str(BIN / "agentbus"), "up", "--host", "nohost.invalid", "--port", port],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "agentbus up: cannot listen on nohost.invalid" in _one_line(result.stderr)


@pytest.mark.parametrize("url", ["notaurl", "http://127.0.0.1:99999", "ftp://127.0.0.1:4566", "http://"])
def test_an_endpoint_url_that_is_not_a_url_is_one_line(capsys, url):
    code, _, err = _run(capsys, "status", "x", "--endpoint-url", url)
    assert code == 2
    assert f"endpoint URL {url!r} is not a URL" in _one_line(err)


@pytest.mark.parametrize("verb", [["agent", "list"], ["agent", "pause", "fraud"], ["status", "x"]])
def test_an_error_names_the_verb_as_typed(capsys, verb):
    # black-box pass 12C, F4: `agent list` said "agentbus agent: ..."
    code, _, err = _run(capsys, *verb, "--endpoint-url", "notaurl")
    assert code == 2 and err.startswith(f"agentbus {' '.join(verb[:2] if verb[0] == 'agent' else verb[:1])}: ")


def test_main_gives_the_environment_back_after_a_verb_that_ignores_the_profile(capsys, monkeypatch):
    # Code review bb12e, F9: the profile and config variables were changed for good in the calling process.
    monkeypatch.setenv("AWS_PROFILE", "mine")
    monkeypatch.delenv("AWS_CONFIG_FILE", raising=False)
    code, _, _ = _run(capsys, "status", "x", "--endpoint-url", "notaurl")
    assert code == 2
    assert os.environ.get("AWS_PROFILE") == "mine" and "AWS_CONFIG_FILE" not in os.environ


class _NotAws(http.server.SimpleHTTPRequestHandler):
    """A web server on the port: answers POST with 501 (http.server's own), or with a page when ``page`` is set."""

    page = False

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        if not self.page:
            return super().send_error(501, "Unsupported method ('POST')")
        body = b"<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class _Page(_NotAws):
    page = True


@pytest.mark.parametrize("handler, status", [(_NotAws, 501), (_Page, 200)])
def test_an_endpoint_where_another_http_server_answers_is_one_line(capsys, handler, status):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for verb in (["status", "x"], ["dead-letters"], ["agent", "list"]):
            code, _, err = _run(capsys, *verb, "--endpoint-url", url)
            assert code == 2
            assert f"{url} answers HTTP {status} but is not an AWS endpoint" in _one_line(err)
    finally:
        server.shutdown()
        server.server_close()


# -- help on every verb and option ---------------------------------------------------------------------------

def _verbs() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def test_every_verb_and_every_option_has_help():
    verbs = _verbs()
    assert {"demo", "up", "bench", "soak", "catalogue", "status", "replay"} <= set(verbs)
    for name, sub in verbs.items():
        assert sub.description, f"agentbus {name} --help has no description"
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if action.help == argparse.SUPPRESS and action.option_strings == ["--orders"]:
                # An old name kept unshown (demo --orders, soak --orders): the option it stands for has help.
                assert any(a.help and a.help != argparse.SUPPRESS for a in sub._actions if a.dest == action.dest)
                continue
            assert action.help and action.help != argparse.SUPPRESS, f"agentbus {name}: {action.dest} has no help"


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["up", "--help"])
    out = capsys.readouterr().out
    assert "(default: 4566)" in " ".join(out.split())
    with pytest.raises(SystemExit):
        cli.main(["soak", "--help"])
    soak_help = " ".join(capsys.readouterr().out.split())
    assert "(default: 1000)" in soak_help
    from agentbus.bench.soak import DEFAULT_IN_FLIGHT
    assert f"as outcomes come in (default: {DEFAULT_IN_FLIGHT})" in soak_help


def test_json_output_is_strict_json_whatever_numbers_a_request_carried():
    import math
    from decimal import Decimal

    from agentbus.operations import as_json

    view = {"trigger": {"items": [{"quantity": math.inf, "unit_price": -math.inf, "weight": math.nan}]},
            "totals": [Decimal("Infinity"), Decimal("NaN"), Decimal("1E+338"), Decimal("2.5"), Decimal("7")],
            "tiny": Decimal("1E-400")}
    text = as_json(view)
    # Every strict reader takes it (Python's own reader with the non-finite tokens refused stands in for them).
    def refuse(token):
        raise ValueError(f"bare {token} in the output")

    parsed = json.loads(text, parse_constant=refuse)
    assert parsed["trigger"]["items"][0] == {"quantity": "Infinity", "unit_price": "-Infinity", "weight": "NaN"}
    assert parsed["totals"][:2] == ["Infinity", "NaN"] and parsed["totals"][2] == 10 ** 338
    assert parsed["totals"][3:] == [2.5, 7] and parsed["tiny"] == "1E-400"


@pytest.mark.parametrize(("value", "message"), [
    ("nosuch=100", "unknown agent 'nosuch'; known: fraud"),
    ("fraud=abc", "a work profile looks like NAME=MS,NAME=MS (e.g. checker=300), got 'fraud=abc'"),
])
def test_a_work_profile_naming_no_agent_or_malformed_is_a_usage_error(value, message, capsys):
    # An unknown name was accepted and silently did nothing (a typo in an agent's name).
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["up", "--work", value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_work_profile_of_known_agents_is_taken():
    assert cli._profile("fraud=300, shipping=0") == {"fraud": 300, "shipping": 0}
    assert cli._profile("") == {}


def test_status_names_each_refused_version_of_the_request():
    # The README says a refused version is named in `agentbus status`; only --json showed it.
    view = {"workflow_id": "ord-1", "status": "COMPLETED", "trigger": {"order_id": "ord-1"}, "trigger_digest": "a" * 32,
            "published": True, "refused": [{"trigger_digest": "b" * 32, "event_id": "ev-2",
                                            "received_at": "2026-12-02T04:30:00.000Z"}]}
    [note] = cli.status_notes(view)
    assert note == (f"another version of the request was refused ({'b' * 32}, event ev-2, 2026-12-02T04:30:00.000Z): "
                    f"only version {'a' * 32} counts; the refused one is in the coordinator's dead letters")


def test_version_prints_the_installed_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"agentbus {version('agentbus')}"


def _order_entries(count: int) -> list[dict]:
    return [{"Source": "agentbus.orders", "DetailType": "Order Placed", "Detail": json.dumps({"order_id": f"o-{i}"})}
            for i in range(count)]


@pytest.fixture
def stubbed_events(deployment, monkeypatch):
    """The deployment's EventBridge client with botocore's Stubber: the calls `put` makes, answered as scripted."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x",
                                   region_name="us-east-1").client("events", endpoint_url="http://127.0.0.1:9")
    monkeypatch.setattr(deployment, "client", lambda _service: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_put_of_an_entry_put_events_would_refuse_is_one_line_and_puts_nothing(stubbed_events, capsys, tmp_path):
    # Entry 12 goes in the second call of 10: the first call was made before boto3 refused it (the orders of the
    # first ten were on the bus), and the error was two lines ("Parameter validation failed:\nUnknown ...").
    entries = _order_entries(13)
    entries[12]["Foo"] = 1
    path = tmp_path / "entries.json"
    path.write_text(json.dumps(entries))
    code, out, err = _run(capsys, "put", str(path))  # the stubber has no response: any call would fail the test
    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err
    assert 'Parameter validation failed: Unknown parameter in Entries[12]: "Foo"' in err


def test_put_of_several_calls_answers_for_every_entry_when_a_later_call_is_refused_whole(stubbed_events, capsys,
                                                                                         tmp_path):
    # The second call of three is over the size limit: the first was put, so an error (exit 2, no response) hid the
    # ten entries on the bus; its own entries fail in the one response, and the third call is put.
    path = tmp_path / "entries.json"
    path.write_text(json.dumps(_order_entries(25)))
    stubbed_events.add_response("put_events", {"FailedEntryCount": 0,
                                               "Entries": [{"EventId": f"e-{i}"} for i in range(10)]})
    stubbed_events.add_client_error("put_events", service_error_code="ValidationException", http_status_code=400,
                                    service_message="Total size of the entries in the request is over the limit.")
    stubbed_events.add_response("put_events", {"FailedEntryCount": 0,
                                               "Entries": [{"EventId": f"e-{i}"} for i in range(20, 25)]})
    code, out, err = _run(capsys, "put", str(path))
    assert (code, err) == (1, "")
    response = json.loads(out)
    assert response["FailedEntryCount"] == 10 and len(response["Entries"]) == 25
    assert response["Entries"][10:20] == [{"ErrorCode": "ValidationException", "ErrorMessage":
                                           "Total size of the entries in the request is over the limit."}] * 10
    assert [e["EventId"] for e in response["Entries"][:10] + response["Entries"][20:]] == \
        [f"e-{i}" for i in [*range(10), *range(20, 25)]]


def test_put_of_a_first_call_refused_whole_is_the_error_and_puts_nothing_more(stubbed_events, capsys, tmp_path):
    path = tmp_path / "entries.json"
    path.write_text(json.dumps(_order_entries(15)))
    stubbed_events.add_client_error("put_events", service_error_code="AccessDeniedException", http_status_code=400,
                                    service_message="not allowed")
    code, out, err = _run(capsys, "put", str(path))
    assert (code, out) == (2, "")
    assert "AccessDeniedException" in err and err.count("\n") == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["demo", "--workflow", "nope"], "agentbus demo: unknown workflow 'nope'; known: order-fulfillment"),
    (["demo", "--orders", "{tmp}/missing.json"], "agentbus demo: cannot read {tmp}/missing.json: No such file"),
    (["demo", "--events", "{tmp}/numbers.json"], "must hold a list of PutEvents entries"),  # was a traceback
    (["demo", "--interval", "-1"], "argument --interval: must be >= 0, got -1"),  # was taken
    # Black-box pass 20E: an interval of inf overflowed after the stack had started (F2); a timeline that cannot be
    # written failed with a traceback after the whole run (F3); a soak of 10^9 requests or a level of 10^8 went
    # on, building them all, without a line (F4).
    (["demo", "--interval", "inf"], "argument --interval: must be at most 31622400 (366 days), got inf"),
    (["demo", "--timeline", "{tmp}"], "agentbus demo: --timeline {tmp}: is a folder; give a file path"),
    (["demo", "--timeline", "{tmp}/numbers.json/page.html"], "agentbus demo: --timeline {tmp}/numbers.json/page.html:"
                                                             " cannot be written here"),
    (["soak", "--requests", "1000000000"], "argument --requests: must be at most 100,000 on a local stack, got "
                                           "1,000,000,000"),
    (["bench", "--levels", "1,99999999"], "argument --levels: must be at most 10,000 on a local stack, got 99,999,999"),
    (["bench", "--workflow", "nope"], "agentbus bench: unknown workflow 'nope'"),
    (["bench", "--sweep-only"], "agentbus bench: --sweep-only needs --agents and/or --payload"),
])
def test_a_usage_error_of_demo_or_bench_exits_2_in_one_line_before_any_stack_starts(capsys, tmp_path, argv, message):
    # They exited 1, the code the README keeps for a refusal, through a SystemExit with the message.
    (tmp_path / "numbers.json").write_text("[1, 2]")
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    try:
        code = cli.main(argv)
    except SystemExit as exit_info:  # argparse's usage errors
        code = exit_info.code
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert message.format(tmp=tmp_path) in err and err.count("\n") == 1, err


def test_a_png_chart_without_matplotlib_is_refused_before_the_bench_runs(capsys, monkeypatch):
    # matplotlib is a development dependency: an installed agentbus ran the whole bench, then failed at the chart.
    import importlib.util

    import agentbus.bench

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "matplotlib" else real_find_spec(name, *rest))
    monkeypatch.setattr(agentbus.bench, "run_bench", lambda **kwargs: pytest.fail("the bench ran"))
    code = cli.main(["bench", "--quick", "--chart", "out/chart.PNG"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert "--chart out/chart.PNG: a PNG chart needs matplotlib, which is not installed" in err
    assert err.count("\n") == 1, err


def test_put_of_a_sample_goes_on_the_bus_of_the_deployment_the_cli_found(deployment, stubbed_events, capsys,
                                                                          tmp_path):
    # A staged stack's bus is dev-agentbus; the samples name agentbus, the unstaged stack's bus: `agentbus put
    # events/order-placed.json --stack dev-AgentbusStack` put the order on the other stack's bus.
    from dataclasses import replace

    deployment.resources = replace(deployment.resources, bus_name="dev-agentbus")
    [sample] = json.loads((Path(__file__).parents[2] / "events" / "order-placed.json").read_text())
    assert sample["EventBusName"] == "agentbus"
    elsewhere = {**sample, "EventBusName": "audit-bus"}  # a bus of its own, named: kept
    answer = {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}, {"EventId": "e-2"}]}
    expected = {"Entries": [{**sample, "EventBusName": "dev-agentbus"}, elsewhere]}
    stubbed_events.add_response("put_events", answer, expected)
    path = tmp_path / "entries.json"
    path.write_text(json.dumps([sample, elsewhere]))
    code, out, err = _run(capsys, "put", str(path))
    assert (code, err) == (0, "") and json.loads(out)["FailedEntryCount"] == 0


def test_put_of_an_empty_file_is_refused_as_aws_events_put_events_refuses_it(stubbed_events, capsys, tmp_path):
    """Black-box pass 11B, F6: it answered an empty response and exit 0, where the aws CLI refuses the file."""
    path = tmp_path / "entries.json"
    path.write_text("[]")
    code, out, err = _run(capsys, "put", str(path))  # the stubber has no response: any call would fail the test
    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err
    assert "Parameter validation failed: Invalid length for parameter Entries, value: 0, valid min length: 1" in err


def test_the_trace_of_a_finished_workflow_names_the_agents_it_never_counted(deployment, monkeypatch, capsys):
    # `status` named what a timed-out workflow missed; the trace said it only while the workflow ran.
    view = _view(workflow_id="ord-1", status="TIMED_OUT", reason="deadline reached", missing=["shipping", "tax"])
    monkeypatch.setattr(ops, "workflow_status", lambda *_a, **_k: view)
    code, out, _ = _run(capsys, "trace", "ord-1")
    assert code == 0 and "never counted: shipping, tax" in out and "waiting for" not in out
    monkeypatch.setattr(ops, "workflow_status", lambda *_a, **_k: {**view, "status": "RUNNING"})
    code, out, _ = _run(capsys, "trace", "ord-1")
    assert code == 0 and "waiting for: shipping, tax" in out


def test_status_says_when_a_running_workflows_deadline_has_passed():
    """Black-box pass 7B, F5: a request left without its deadline schedule showed RUNNING long after deadline_at,
    and nothing in the human view said so."""
    now = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    view = _view(status="RUNNING", deadline_at="2026-12-03T05:50:00.000Z")
    [note] = [n for n in cli.status_notes(view, now) if "deadline" in n]
    assert note.startswith("its deadline 2026-12-03T05:50:00.000Z passed 10 min ago and it still runs")
    # Within Scheduler's minute, before the deadline, or finished: nothing to say.
    for quiet in (_view(status="RUNNING", deadline_at="2026-12-03T05:59:30.000Z"),
                  _view(status="RUNNING", deadline_at="2026-12-03T06:10:00.000Z"),
                  _view(status="TIMED_OUT", deadline_at="2026-12-03T05:50:00.000Z")):
        assert not [n for n in cli.status_notes(quiet, now) if "deadline" in n]


def test_trace_keeps_its_bars_aligned_for_agent_names_longer_than_12_characters():
    """Black-box pass 7A, F9: ``{who:<12}`` pushed the bar of every longer name (the shipped security-audit, 14)."""
    view = {"workflow_id": "x", "status": "COMPLETED", "trigger_received_at": "2026-12-03T06:00:00.000Z",
            "finished_at": "2026-12-03T06:00:01.000Z",
            "results": {"finance-approval": {"started_at": "2026-12-03T06:00:00.100Z",
                                             "finished_at": "2026-12-03T06:00:00.900Z", "detail_type": "Approved"},
                        "fraud": {"started_at": "2026-12-03T06:00:00.000Z",
                                  "finished_at": "2026-12-03T06:00:00.500Z", "detail_type": "Order Verified"}}}
    lines = ops.render_trace(view).splitlines()[1:]
    assert len(lines) == 4
    width = len("finance-approval")
    for line in lines:
        who = next(name for name in ("finance-approval", "coordinator", "fraud") if f" {name} " in f"{line} ")
        column = line[line.index(" ms  ") + 5:]
        assert column.startswith(who.ljust(width) + " "), line  # the bar starts at the same column on every line


def _usage_error(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(argv))
    out, err = capsys.readouterr()
    assert (exit_info.value.code, out) == (2, "") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("verb", ["status", "trace", "cancel", "approve"])
def test_an_unrecognized_argument_is_named_with_its_verb(capsys, verb):
    # Black-box pass 10B, F7: "agentbus: unrecognized arguments: --bogus (see `agentbus --help`)", no verb.
    assert _usage_error(capsys, verb, "ord-1001", "--bogus") == (
        f"agentbus {verb}: unrecognized arguments: --bogus (see `agentbus {verb} --help`)\n")


@pytest.mark.parametrize(("argv", "hint"), [
    # Black-box pass 10A, F3: "the following arguments are required: ID", although an id was given.
    (["status", "-p1"], "agentbus status -- -p1"),
    (["trace", "--p2"], "agentbus trace -- --p2"),
    (["status", "--workflow", "order-fulfillment", "-p1"], "agentbus status --workflow order-fulfillment -- -p1"),
    (["approve", "-x", "--by", "ann lee"], "agentbus approve --by 'ann lee' -- -x"),
    (["cancel", "--reason=too early", "-p=1"], "agentbus cancel '--reason=too early' -- -p=1"),
])
def test_an_id_starting_with_a_dash_is_shown_after_double_dash(capsys, argv, hint):
    verb = argv[0]
    assert _usage_error(capsys, *argv) == (
        f"agentbus {verb}: the following arguments are required: ID; an ID that starts with '-' goes after `--`: "
        f"{hint} (see `agentbus {verb} --help`)\n")


@pytest.mark.parametrize("argv", [["status"], ["status", "--json"], ["status", "--work", "x"], ["trace", "--"]])
def test_a_missing_id_gets_no_dash_hint_when_every_dash_word_is_an_option(capsys, argv):
    assert "goes after" not in _usage_error(capsys, *argv)


def test_an_id_starting_with_a_dash_is_taken_after_double_dash():
    args = cli.build_parser().parse_args(["status", "--json", "--", "-p1"])
    assert (args.verb, args.workflow_id, args.json) == ("status", "-p1", True)


def test_demo_and_soak_take_request_and_event_words_and_their_old_order_flags_unshown(capsys):
    # The core names no workflow: the demo's files are events, the soak's count requests; --orders still works.
    parser = cli.build_parser()
    demo = parser.parse_args(["demo", "--events", "a.json", "--orders", "b.json"])
    assert demo.event_files == ["a.json", "b.json"] and not hasattr(demo, "orders")
    assert parser.parse_args(["soak", "--orders", "7"]).requests == 7
    assert parser.parse_args(["soak", "--requests", "8"]).requests == 8
    assert parser.parse_args(["soak"]).requests == 1000
    for verb in ("demo", "soak"):
        with pytest.raises(SystemExit):
            cli.main([verb, "--help"])
        assert "--orders" not in capsys.readouterr().out
