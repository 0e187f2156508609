"""What the CLI says about models: ``agentbus status`` shows a result's model tokens (data is never markup), and
``agentbus demo`` names the agents that could use a model."""

from __future__ import annotations

from agentbus import operations as ops
from agentbus.reasoners import could_use_a_model, model_usage
from functions.manifest import MANIFEST
from tests.unit.test_cli import _run, _view, deployment  # noqa: F401 - the fixture

MODEL = "anthropic.claude-3-5-haiku-[/bold]v1:0"  # markup in data must print as it is


def reasoner_result(**model) -> dict:
    data = {"score": 85, "reasoner": {"model_id": MODEL, "used": True, "fallback": None, "input_tokens": 1034,
                                      "output_tokens": 57, "raised_by": 70, **model}}
    return {"detail_type": "Risk Too High", "outcome": "failure", "duration_ms": 1300, "reason": "score 85 >= 70",
            "data": data}


def test_model_usage_names_the_tokens_and_whether_the_answer_was_used():
    view = {"results": {"risk": reasoner_result(), "identity": {"data": {"employee": "e"}},
                        "policy": reasoner_result(used=False, fallback="refused", raised_by=0, input_tokens=900,
                                                  output_tokens=3)}}
    assert model_usage(view) == [
        f"policy: model {MODEL}, 900 input + 3 output tokens, not used (refused): rules only",
        f"risk: model {MODEL}, 1034 input + 57 output tokens, answer used, raised the score by 70",
    ]
    assert model_usage({"results": {"fraud": {"data": {"omitted": "too big"}}}}) == []


def test_status_shows_the_model_tokens(deployment, monkeypatch, capsys):  # noqa: F811
    view = _view(results={"risk": reasoner_result()})
    monkeypatch.setattr(ops, "workflow_status", lambda _d, _id, _workflow=None: view)
    code, out, err = _run(capsys, "status", "acc-1")
    assert (code, err) == (0, "")
    assert f"risk: model {MODEL}, 1034 input + 57 output tokens" in out.replace("\n", "")


def test_the_demo_line_names_the_agents_that_could_use_a_model():
    line = could_use_a_model(MANIFEST.agents)
    assert line is not None and line.startswith("could use a model: risk (off here: rules only")
    assert could_use_a_model(MANIFEST.workflow("order-fulfillment").agents) is None
