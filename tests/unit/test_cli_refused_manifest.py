"""A manifest its own check refuses (two agents on one source, two workflows publishing one outcome) raises where
``functions/manifest.py`` is imported; the CLI's error handler imported modules that import it again, so every verb
ended in a double traceback instead of one line."""

from __future__ import annotations

import sys

from agentbus import cli


def test_a_refused_manifest_is_one_line(monkeypatch, capsys):
    refusal = ValueError("invalid manifest: workflows 'a' and 'b' both publish the outcome 'Rejected'")

    def dispatch(args):
        raise refusal

    monkeypatch.setattr(cli, "_dispatch", dispatch)
    monkeypatch.setitem(sys.modules, "agentbus.approvals", None)  # importing it raises, as the manifest's import does
    assert cli.main(["catalogue"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"agentbus catalogue: {refusal}\n"
