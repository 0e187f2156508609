"""A lone surrogate in the data (``"sur-6\\ud800"``: valid JSON, no UTF-8 form; such triggers are dead-lettered
naming the field) is shown as its escape: printed raw, it failed the whole `agentbus dead-letters` listing with a
UnicodeEncodeError traceback, the other letters unlisted."""

from __future__ import annotations

from agentbus import operations as ops
from agentbus.terminal import shown, terminal_safe
from tests.unit.test_cli import _run
from tests.unit.test_cli_terminal_safety import deployment  # noqa: F401 - the fixture


def test_a_lone_surrogate_is_shown_as_its_escape_and_can_be_printed():
    assert shown("sur-6\ud800") == "sur-6\\ud800"
    assert terminal_safe({"k\udfff": ["x\ud800"]}) == {"k\\udfff": ["x\\ud800"]}
    assert shown("café 😀").encode("utf-8")  # a pair of surrogates is one character already: untouched


def test_dead_letters_lists_a_letter_holding_one(deployment, monkeypatch, capsys):  # noqa: F811 - the fixture
    letters = [ops.DeadLetter(agent="fraud", message_id="m-1", reason="invalid Order Placed: order_id: ...",
                              event={"detail-type": "Order Placed", "detail": {"order_id": "sur-6\ud800"}},
                              receive_count=1)]
    monkeypatch.setattr(ops, "dead_letters", lambda *_: letters)
    code, out, err = _run(capsys, "dead-letters")
    assert (code, err) == (0, "")
    assert "sur-6\\ud800" in out
    out.encode("utf-8")  # what a UTF-8 terminal takes
