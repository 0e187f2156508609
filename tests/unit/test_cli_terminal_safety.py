"""Data never acts on the operator's terminal (hostile findings D5).

A SKU holding ``ESC[2J`` (clear screen) and U+202E (right-to-left override) reached the inventory reason, and
`agentbus status` / `trace` printed both raw; `agentbus dead-letters` printed a hostile order id raw in its header
line (ESC sequences, NUL, a carriage return, newlines that split the one-letter-per-line layout). Every human-readable
output now shows such characters as the escapes ``repr`` gives them; ``--json`` stays exact JSON; ordinary text
(accents, CJK, emoji with their joiners) prints as it is.
"""

from __future__ import annotations

import json

import pytest

from agentbus import approvals, discovery
from agentbus import operations as ops
from agentbus.resources import ConsumerResources, Resources
from agentbus.terminal import UNSAFE, shown, terminal_safe
from tests.unit.test_cli import _run

SKU = "SKU-\x1b[2J\x1b[31mEVIL\x1b[0m\u202e"
SKU_SHOWN = "SKU-\\x1b[2J\\x1b[31mEVIL\\x1b[0m\\u202e"
ID = "h-b01\x1b[31mFAKE\x1b[0m\rinventory OK\x00\u202ex\n"
ID_SHOWN = "h-b01\\x1b[31mFAKE\\x1b[0m\\rinventory OK\\x00\\u202ex\\n"
PLAIN = "café 東京 👩‍👩‍👧 naïve"  # the emoji is three people joined by U+200D: kept


def assert_safe(text: str) -> None:
    """Nothing in ``text`` a terminal acts on, but the newlines that lay out the output's own lines."""
    assert [c for c in UNSAFE.findall(text) if c != "\n"] == []


def _resources() -> Resources:
    queue = ConsumerResources(queue_url="http://q", queue_arn="arn:q", dlq_url="http://dlq", dlq_arn="arn:dlq")
    return Resources(bus_name="agentbus", bus_arn="arn:bus", archive_name="a", schedule_group="g",
                     scheduler_role_arn="arn:role", tables={"workflows": "w", "orders": "o", "inventory": "i"},
                     consumers={"fraud": queue}, local=True)


@pytest.fixture
def deployment(monkeypatch):
    deployment = discovery.Deployment(session=None, endpoint_url="http://127.0.0.1:9", resources=_resources())
    monkeypatch.setattr(discovery, "find_deployment", lambda *_: deployment)
    return deployment


def _view() -> dict:
    reason = f"inventory: unknown SKU {SKU}"
    return {
        "workflow_id": "h-e1", "workflow": "order-fulfillment", "status": "REJECTED", "reason": reason,
        "results": {
            "inventory": {"detail_type": "Items Unavailable", "outcome": "failure", "duration_ms": 3, "reason": reason,
                          "started_at": "2026-11-26T10:00:00+00:00",
                          "finished_at": "2026-11-26T10:00:00.003000+00:00"},
            "fraud": {"detail_type": "Order Verified", "outcome": "success", "duration_ms": 2, "reason": PLAIN,
                      "started_at": "2026-11-26T10:00:00+00:00", "finished_at": "2026-11-26T10:00:00.002000+00:00"},
        },
        "missing": ["shipping"], "timings": {"duration_ms": 12}, "trigger": {"order_id": "h-e1"},
        "trigger_received_at": "2026-11-26T10:00:00+00:00", "finished_at": "2026-11-26T10:00:00.012000+00:00",
        "published": True, "late_results": [
            {"agent": "shipping", "detail_type": "Shipping Quoted", "received_at": "2026-11-26T10:00:01+00:00",
             "finished_at": "2026-11-26T10:00:01+00:00", "late_reason": f"arrived after the finish\r{SKU}"}],
        "cancel": {"by": "ops\x1b]0;pwned\x07", "received_at": "2026-11-26T10:00:00+00:00", "reason": "x\u2066y"},
        "outcome": {},
    }


def test_shown_escapes_what_a_terminal_acts_on_and_nothing_else():
    assert shown(SKU) == SKU_SHOWN
    assert shown(ID) == ID_SHOWN
    assert shown("\t\x7f\x85\x9b\u2028\u2029\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069") == (
        "\\t\\x7f\\x85\\x9b\\u2028\\u2029\\u200e\\u200f\\u061c\\u202a\\u202b\\u202c\\u202d\\u2066\\u2067\\u2068\\u2069")
    assert shown(PLAIN) == PLAIN
    assert shown("ord-[/bold] :x: C:\\temp") == "ord-[/bold] :x: C:\\temp"


def test_terminal_safe_copies_any_json_like_value_keys_included_without_recursion():
    deep: list = []
    inner = deep
    for _ in range(5000):
        inner.append([])
        inner = inner[0]
    inner.append(SKU)
    value = {"a\x1b": [SKU, 1, 2.5, None, True, (ID,)], "deep": deep, "plain": PLAIN}
    safe = terminal_safe(value)
    assert list(safe) == ["a\\x1b", "deep", "plain"]
    assert safe["a\\x1b"] == [SKU_SHOWN, 1, 2.5, None, True, [ID_SHOWN]] and safe["plain"] == PLAIN
    inner = safe["deep"]
    for _ in range(5000):
        inner = inner[0]
    assert inner == [SKU_SHOWN]
    assert value["a\x1b"][0] == SKU  # the value itself is left as it was


def test_status_and_trace_show_control_characters_of_the_data_as_escapes(deployment, monkeypatch, capsys):
    monkeypatch.setattr(ops, "workflow_status", lambda *_args, **_options: _view())
    for verb in ("status", "trace"):
        code, out, err = _run(capsys, verb, "h-e1")
        assert (code, err) == (0, "")
        assert_safe(out)
        assert SKU_SHOWN in out, verb
        assert PLAIN in out or verb == "trace" and "fraud" in out
    code, out, _ = _run(capsys, "status", "h-e1")
    assert f"workflow h-e1: REJECTED — inventory: unknown SKU {SKU_SHOWN}" in out
    assert "cancel asked by ops\\x1b]0;pwned\\x07 at 2026-11-26T10:00:00+00:00: x\\u2066y" in out
    assert f"arrived after the finish\\r{SKU_SHOWN}" in out


def test_status_json_stays_exact_json(deployment, monkeypatch, capsys):
    monkeypatch.setattr(ops, "workflow_status", lambda *_args, **_options: _view())
    code, out, _ = _run(capsys, "status", "h-e1", "--json")
    assert code == 0
    assert_safe(out)  # json.dumps writes control characters and (ensure_ascii) U+202E as \u escapes
    assert json.loads(out)["reason"] == f"inventory: unknown SKU {SKU}"
    assert json.loads(out)["results"]["fraud"]["reason"] == PLAIN


def test_a_hostile_id_keeps_each_dead_letter_on_its_two_lines(deployment, monkeypatch, capsys):
    letters = [
        ops.DeadLetter(agent="fraud", message_id="m-1\x1b[2J", reason=f"invalid Order Placed: order_id: {ID!r}",
                       event={"detail-type": "Order Placed", "source": "agentbus.orders", "detail": {"order_id": ID}},
                       receive_count=1),
        ops.DeadLetter(agent="fraud\u202e", message_id="m-2", reason="body is not JSON\r\n", event=f"not json {ID}",
                       receive_count=1),
        ops.DeadLetter(agent="fraud", message_id="m-3", reason=PLAIN, event=ID, receive_count=1,
                       unreadable="nested deeper\x00", body_bytes=12_000),
    ]
    monkeypatch.setattr(ops, "dead_letters", lambda *_: letters)
    code, out, err = _run(capsys, "dead-letters")
    assert (code, err) == (0, "")
    assert_safe(out)
    lines = out.splitlines()
    assert len(lines) == 2 * len(letters) + 1  # a header line and a reason line each, then the count
    assert lines[0] == f"fraud m-1\\x1b[2J  Order Placed {ID_SHOWN}"
    assert lines[2].startswith("fraud\\u202e m-2  not json h-b01\\x1b[31mFAKE")
    assert lines[3] == "  reason: body is not JSON\\r\\n"
    assert lines[4] == "fraud m-3  unreadable body (12,000 bytes): nested deeper\\x00"
    assert lines[5] == f"  reason: {PLAIN}"

    code, out, _ = _run(capsys, "dead-letters", "--json")
    assert code == 0 and json.loads(out)[0]["event"]["detail"]["order_id"] == ID  # exact


def test_pending_and_agent_list_show_hostile_cells_as_escapes(deployment, monkeypatch, capsys):
    monkeypatch.setattr(approvals, "pending", lambda *_args, **_kw: [
        {"workflow": "access-request", "workflow_id": "r-1\x1b[2J", "agent": "manager-approval",
         "kind": "a person\u202e", "asked_at": "2026-11-26T10:00:00Z", "waiting_s": 60,
         "wait_until": "2026-11-27T10:00:00Z\r"}])
    code, out, err = _run(capsys, "pending")
    assert (code, err) == (0, "")
    assert_safe(out)
    assert "r-1\\x1b[2J" in out and "a person\\u202e" in out

    monkeypatch.setattr(ops, "agent_list", lambda *_: [
        {"agent": "fraud\x1b[2J", "state": "paused", "waiting": 1, "in_flight": 0, "dead_letters": 0}])
    code, out, _ = _run(capsys, "agent", "list")
    assert code == 0
    assert_safe(out)
    assert "fraud\\x1b[2J" in out


@pytest.mark.parametrize("verb", ["approve", "decline", "cancel"])
def test_what_approve_decline_and_cancel_sent_is_shown_safely(deployment, monkeypatch, capsys, verb):
    sent = approvals.Sent("access-request", "r-1\u202e", "agentbus.operator", "Cancel Requested",
                          {"workflow_id": "r-1\u202e", "by": "me", "reason": "x\x1b[2J"}, "e-1\x1b")
    monkeypatch.setattr(approvals, "answer", lambda *_args, **_kw: sent)
    monkeypatch.setattr(approvals, "cancel", lambda *_args, **_kw: sent)
    code, out, err = _run(capsys, verb, "r-1")
    assert (code, err) == (0, "")
    assert_safe(out)
    assert "for access-request r-1\\u202e (event e-1\\x1b)" in out
    assert "`agentbus status 'r-1\\u202e' --workflow access-request`" in out


def test_the_status_hint_after_an_answer_is_a_command_a_shell_runs_as_is(deployment, monkeypatch, capsys):
    """An id may hold ``#`` (a comment at the start of a shell word) and ``:`` ``@`` ``/`` ``+`` ``=``."""
    sent = approvals.Sent("access-request", "#7/a+b=c", "agentbus.approvals", "Access Approved", {"by": "me"}, "e-1")
    monkeypatch.setattr(approvals, "answer", lambda *_args, **_kw: sent)
    code, out, _ = _run(capsys, "approve", "#7/a+b=c")
    assert code == 0
    assert "`agentbus status '#7/a+b=c' --workflow access-request`" in out


def test_the_status_hint_for_an_id_starting_with_a_dash_puts_it_after_the_double_dash(deployment, monkeypatch,
                                                                                         capsys):
    """Black-box pass 11B, F2: the hint after `approve -- -ID` was `agentbus status -ID ...`, a usage error."""
    sent = approvals.Sent("access-request", "-r-1", "agentbus.approvals", "Access Approved", {"by": "me"}, "e-1")
    monkeypatch.setattr(approvals, "answer", lambda *_args, **_kw: sent)
    code, out, _ = _run(capsys, "approve", "--", "-r-1")
    assert code == 0
    assert "`agentbus status --workflow access-request -- -r-1`" in out


def test_what_was_sent_prints_accents_cjk_and_emoji_as_they_are(deployment, monkeypatch, capsys):
    """Black-box pass 11B, F3: the detail was echoed as ASCII JSON (``Gr\\u00e2ce \\ud83d\\ude80``)."""
    sent = approvals.Sent("order-fulfillment", "o-1", "agentbus.operator", "Workflow Cancel Requested",
                          {"by": "Grâce 🚀", "reason": "客户取消\nnow\u202e"}, "e-1")
    monkeypatch.setattr(approvals, "cancel", lambda *_args, **_kw: sent)
    code, out, _ = _run(capsys, "cancel", "o-1")
    assert code == 0
    assert_safe(out)
    assert '"by": "Grâce 🚀", "reason": "客户取消\\nnow\\u202e"' in out


def test_a_refusal_quoting_the_workflows_reason_is_one_safe_line(deployment, monkeypatch, capsys):
    def refused(*_args, **_kw):
        raise approvals.Refused(f"order-fulfillment h-e1 is already REJECTED (inventory: unknown SKU {SKU}\n"
                                "second line): cancel changed nothing, nothing sent")

    monkeypatch.setattr(approvals, "cancel", refused)
    code, out, err = _run(capsys, "cancel", "h-e1")
    assert (code, out) == (1, "")
    assert_safe(err)
    assert err == (f"agentbus cancel: order-fulfillment h-e1 is already REJECTED (inventory: unknown SKU {SKU_SHOWN} "
                   "second line): cancel changed nothing, nothing sent\n")


def test_the_demo_summary_shows_control_characters_of_the_data_as_escapes():
    from rich.console import Console

    from agentbus.demo import RequestSummary, print_summary
    from functions.manifest import MANIFEST

    console = Console(record=True, width=300)
    summary = RequestSummary(workflow="order-fulfillment", workflow_id="h-e1\u202e", status="REJECTED",
                             reason=f"inventory: unknown SKU {SKU}", agent_ms={"fraud": 1.0}, end_to_end_ms=5.0,
                             put_to_outcome_ms=5.0, timings={}, results={})
    print_summary(console, MANIFEST.workflow("order-fulfillment"), [summary])
    text = console.export_text()
    assert_safe(text)
    assert "h-e1\\u202e" in text and SKU_SHOWN in text
