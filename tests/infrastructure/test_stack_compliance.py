"""cdk-nag (AwsSolutions + Serverless) and cfn-lint on the synthesized stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.stack import STACK_NAME
from tests.infrastructure.template import Synth


def _violations(report: object) -> list[str]:
    found = []
    for violation in report.violations:
        for resource in violation.violating_resources:
            found.append(f"{violation.rule_name} at {resource.construct_path}: {violation.description}")
    return found


@pytest.mark.parametrize("pack_name", ["AwsSolutionsChecks", "ServerlessChecks"])
def test_cdk_nag_pack_has_no_unacknowledged_finding(synth: Synth, pack_name: str) -> None:
    import cdk_nag

    report = getattr(cdk_nag, pack_name)().validate_scope(synth.app)
    assert _violations(report) == []
    assert report.success


def test_synth_with_nag_plugins_succeeds_and_cdk_annotates_no_error(synth: Synth) -> None:
    from aws_cdk.assertions import Annotations, Match

    # The app registers both packs as validation plugins: a finding would have failed the synth.
    assert synth.error is None, f"synth failed: {synth.error}"
    errors = Annotations.from_stack(synth.stack).find_error("*", Match.any_value())
    assert errors == []


def test_every_acknowledgement_names_a_rule_and_gives_a_reason(synth: Synth) -> None:
    from aws_cdk import Validations

    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    acknowledged = {}
    for construct in synth.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key:
                for rule, reason in entry.data.items():
                    acknowledged[(construct.node.path, rule)] = reason
    assert acknowledged, "the stack has findings to acknowledge; none recorded"
    for (path, rule), reason in acknowledged.items():
        rule_id = rule.removeprefix("Annotation::")  # how aws-cdk-lib stores an acknowledged id
        assert rule_id.startswith(("AwsSolutions-", "Serverless-")), (path, rule)
        assert len(reason.split()) >= 8, f"{path} {rule}: say why ({reason!r})"


def test_cfn_lint_passes_on_the_synthesized_template(synth: Synth) -> None:
    from cfnlint.api import ManualArgs, lint_file

    template = Path(synth.outdir) / f"{STACK_NAME}.template.json"
    matches = lint_file(template, config=ManualArgs(
        regions=["us-east-1", "eu-west-1"],
        # W3005: CDK makes each function depend on its role *and* the role's policy; the explicit
        # DependsOn on the role is redundant but harmless, and comes from aws-cdk-lib, not from here.
        ignore_checks=["W3005"],
    ))
    assert [str(match) for match in matches] == []
