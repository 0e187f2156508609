"""The synthesized template, indexed: what tests/infrastructure reads (conftest.py synthesizes it).

Each consumer is found from the manifest, not from the constructs: its function by the manifest's
handler, its queue by the function's event source mapping, its DLQ by the queue's redrive policy. Tests
then check that everything around them matches the manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.common.settings import FUNCTION
from functions.manifest import Consumer

# Context for the session's synth: every optional value set, so the optional paths are checked too
# (the default context is synthesized by the real CLI in test_cli_synth.py).
CONTEXT = {"alarm_email": "ops@example.com", "deadline_seconds": "45", "fraud_limit": "2500.50",
           "claim_check_threshold_bytes": "150000"}


def ref_id(value: Any) -> str | None:
    """The logical id behind ``{"Ref": id}`` or ``{"Fn::GetAtt": [id, attr]}``, or behind an ARN joined onto one
    (``<table ARN>/index/<name>``: a table's index is the table's data), else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
        if "Fn::Join" in value:
            parts = value["Fn::Join"][1]
            return ref_id(parts[0]) if parts and all(isinstance(p, str) for p in parts[1:]) else None
    return None


def join(value: Any) -> str:
    """``{"Fn::Join": ["", [...]]}`` as text, a pseudo parameter or reference shown as ``<Name>``."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(join(part) for part in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    raise AssertionError(f"unexpected intrinsic {value}")


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def statements(document: dict) -> list[dict]:
    return as_list(document.get("Statement", []))


@dataclass
class ConsumerView:
    spec: Consumer
    function_id: str
    function: dict
    role_id: str
    esm: dict
    queue_id: str
    queue: dict
    dlq_id: str
    dlq: dict
    policies: list[dict] = field(default_factory=list)  # identity policy documents attached to the role


@dataclass
class Synth:
    app: Any
    stack: Any
    outdir: Path
    template: dict
    error: Exception | None

    @property
    def resources(self) -> dict[str, dict]:
        return self.template["Resources"]

    def of_type(self, cfn_type: str) -> dict[str, dict]:
        return {k: r for k, r in self.resources.items() if r["Type"] == cfn_type}

    def one(self, cfn_type: str) -> tuple[str, dict]:
        found = self.of_type(cfn_type)
        assert len(found) == 1, f"expected one {cfn_type}, found {sorted(found)}"
        return next(iter(found.items()))

    def role_policies(self, role_id: str) -> list[dict]:
        documents = [p["PolicyDocument"] for p in self.resources[role_id]["Properties"].get("Policies", [])]
        for policy in self.of_type("AWS::IAM::Policy").values():
            if role_id in [ref_id(r) for r in policy["Properties"].get("Roles", [])]:
                documents.append(policy["Properties"]["PolicyDocument"])
        return documents

    def consumer(self, spec: Consumer) -> ConsumerView:
        # Agents may share a handler module (it reads its name from AGENTBUS_FUNCTION): match both.
        functions = {k: r for k, r in self.of_type("AWS::Lambda::Function").items()
                     if r["Properties"].get("Handler") == spec.handler
                     and r["Properties"].get("Environment", {}).get("Variables", {}).get(FUNCTION) == spec.name}
        assert len(functions) == 1, f"{spec.name}: expected one function with handler {spec.handler}"
        function_id, function = next(iter(functions.items()))
        mappings = [r for r in self.of_type("AWS::Lambda::EventSourceMapping").values()
                    if ref_id(r["Properties"]["FunctionName"]) == function_id]
        assert len(mappings) == 1, f"{spec.name}: expected one event source mapping"
        esm = mappings[0]
        queue_id = ref_id(esm["Properties"]["EventSourceArn"])
        queue = self.resources[queue_id]
        dlq_id = ref_id(queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        role_id = ref_id(function["Properties"]["Role"])
        return ConsumerView(spec=spec, function_id=function_id, function=function, role_id=role_id, esm=esm,
                            queue_id=queue_id, queue=queue, dlq_id=dlq_id, dlq=self.resources[dlq_id],
                            policies=self.role_policies(role_id))

    def queue_policy(self, queue_id: str) -> dict:
        found = [p["Properties"]["PolicyDocument"] for p in self.of_type("AWS::SQS::QueuePolicy").values()
                 if queue_id in [ref_id(q) for q in p["Properties"]["Queues"]]]
        assert len(found) == 1, f"expected one queue policy for {queue_id}, found {len(found)}"
        return found[0]


def synthesize(app: Any, stack: Any, outdir: Path) -> Synth:
    """Synthesize ``app`` into ``outdir``. cdk-nag findings fail the synth after the template is written, so the
    error is kept beside the template (the tests assert on it) rather than raised."""
    from infrastructure.stack import STACK_NAME

    error: Exception | None = None
    try:
        app.synth()
    except Exception as exc:  # kept for the tests to assert on
        error = exc
    template_path = outdir / f"{STACK_NAME}.template.json"
    assert template_path.exists(), f"synth wrote no template: {error}"
    return Synth(app=app, stack=stack, outdir=outdir, template=json.loads(template_path.read_text()), error=error)
