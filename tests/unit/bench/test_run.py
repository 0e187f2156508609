"""`agentbus bench`'s entry point: what it refuses before starting anything."""

from __future__ import annotations

import re

import pytest

from agentbus import bench
from agentbus.bench import (
    coordinated_workflows,
)
from agentbus.operations import OperationError
from functions.manifest import MANIFEST


def test_bench_takes_coordinated_workflows_only_with_a_clear_error():
    # By default every coordinated workflow of the manifest, in its order: the shipped samples and any a user
    # adds (README "Add a workflow"); never a standalone one.
    coordinated = [w.name for w in MANIFEST.workflows if w.coordinated]
    assert [w.name for w in coordinated_workflows(MANIFEST)] == coordinated
    assert {"order-fulfillment", "access-request"} <= set(coordinated) and "new-user-audit" not in coordinated
    assert [w.name for w in coordinated_workflows(MANIFEST, ["access-request"])] == ["access-request"]
    assert [w.name for w in coordinated_workflows(MANIFEST, coordinated[::-1] * 2)] == coordinated[::-1]
    listed = re.escape(", ".join(coordinated))
    with pytest.raises(ValueError, match=f"'new-user-audit' is standalone.*: {listed}$"):
        coordinated_workflows(MANIFEST, ["new-user-audit"])
    with pytest.raises(ValueError, match=f"unknown workflow 'nope'.*: {listed}$"):
        coordinated_workflows(MANIFEST, ["nope"])
    with pytest.raises(OperationError, match="^unknown workflow 'nope'"):
        bench.run_bench(workflows=["nope"])


def test_bench_refuses_a_model_without_a_price_and_a_sweep_only_run_without_a_sweep(tmp_path):
    with pytest.raises(OperationError, match="^no price for model 'nope'"):
        bench.run_bench(model_id="nope", output=str(tmp_path / "r.json"))
    with pytest.raises(OperationError, match="--sweep-only needs --agents and/or --payload"):
        bench.run_bench(sweep_only=True, output=str(tmp_path / "r.json"))
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--agents", "3,x"], "agentbus bench: agent count 'x' in '3,x': a whole number from 1 to 99"),
    (["--payload", "1KB,2GB"], "agentbus bench: payload size '2GB': give bytes or a number with KB or MB"),
])
def test_the_cli_names_a_bad_sweep_value_in_one_line(argv, message, capsys):
    from agentbus.cli import main

    assert main(["bench", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_level_of_one_request_runs_several_rounds_and_any_other_level_once():
    from agentbus.bench.run import QUICK_SINGLE_ROUNDS, SINGLE_ROUNDS, single_rounds, task_name

    assert single_rounds(1, quick=False) == SINGLE_ROUNDS > 1
    assert single_rounds(1, quick=True) == QUICK_SINGLE_ROUNDS > 1
    assert single_rounds(10, quick=False) == single_rounds(50, quick=True) == 1
    assert task_name("order-fulfillment", "parallel", 1, 9).endswith("(9 rounds, one at a time)")
    assert "rounds" not in task_name("order-fulfillment", "parallel", 10, 1)


def test_a_level_given_twice_is_a_usage_error(capsys):
    """Black-box pass 8A, 1: a level given twice reused its request ids, and the run died at its end."""
    from agentbus.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["bench", "--levels", "1,10,1"])
    assert exited.value.code == 2
    assert "argument --levels: each level once: 1 given twice" in capsys.readouterr().err


def test_an_output_or_chart_that_cannot_be_written_is_refused_before_the_run(tmp_path, monkeypatch):
    """Black-box pass 8A, 2: a folder, an unwritable path or a results file that is no JSON object was found only
    after the whole run, with a traceback, and its figures were lost."""
    from agentbus.bench import run

    monkeypatch.setattr(run, "run_levels", lambda *a, **k: pytest.fail("the run started"))
    monkeypatch.setattr(run.sweep, "run_sweep", lambda *a, **k: pytest.fail("the sweep started"))
    with pytest.raises(OperationError, match="--output .*: is a folder"):
        bench.run_bench(output=str(tmp_path))
    with pytest.raises(OperationError, match="--chart /proc/agentbus-chart.html: cannot be written here"):
        bench.run_bench(output=str(tmp_path / "r.json"), chart="/proc/agentbus-chart.html")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(OperationError, match="not a results file to update \\(a JSON list, not an object\\)"):
        bench.run_bench(sweep_only=True, agents=[1], output=str(listed))
    prose = tmp_path / "README.json"
    prose.write_text("# not json")
    with pytest.raises(OperationError, match="not a results file to update \\(not JSON"):
        bench.run_bench(sweep_only=True, agents=[1], output=str(prose))
