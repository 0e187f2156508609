"""Stack context parsing and the local bundler: fast, no synth."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.bundling import CopyPackage
from infrastructure.stack import POWERTOOLS_LAYER_VERSION, StackConfig


class FakeNode:
    def __init__(self, **context: object) -> None:
        self.context = context

    def try_get_context(self, name: str) -> object:
        return self.context.get(name)


def test_defaults_when_context_is_empty() -> None:
    config = StackConfig.from_context(FakeNode())
    assert config == StackConfig(bus_name="agentbus", parameters={}, alarm_email=None,
                                 deadline_seconds=None, powertools_layer_version=POWERTOOLS_LAYER_VERSION)
    assert (config.stack_name, config.qualified_bus_name) == ("AgentbusStack", "agentbus")


def test_a_stage_prefixes_the_stack_bus_and_schedule_group_names() -> None:
    config = StackConfig.from_context(FakeNode(stage="dev"))
    assert (config.stack_name, config.qualified_bus_name) == ("dev-AgentbusStack", "dev-agentbus")


def test_two_stages_synthesize_with_no_physical_name_in_common(tmp_path: Path) -> None:
    """Names unique per account and region carry the stage; the rest CloudFormation derives from the
    stack name. Two stages must not share one, or the second deploy fails."""
    from app import create_app

    names: dict[str, set[str]] = {}
    for stage in ("blue", "green"):
        app, stack = create_app(context={"stage": stage}, outdir=str(tmp_path / stage))
        assert stack.stack_name == f"{stage}-AgentbusStack"
        template = app.synth().get_stack_by_name(stack.stack_name).template
        found = set()
        for resource in template["Resources"].values():
            props = resource.get("Properties", {})
            if resource["Type"] in ("AWS::Events::Rule", "AWS::Scheduler::Schedule"):
                continue  # rule names are per bus, schedule names per group, and each stage has its own of both
            for key in ("Name", "QueueName", "TableName", "TopicName", "RoleName", "LogGroupName",
                        "FunctionName", "AlarmName", "DashboardName", "ArchiveName"):
                if isinstance(props.get(key), str):
                    found.add(props[key])
        names[stage] = found
        prefixed = {r["Type"] for r in template["Resources"].values()
                    if r.get("Properties", {}).get("Name") == f"{stage}-agentbus"}
        assert {"AWS::Events::EventBus", "AWS::Scheduler::ScheduleGroup"} <= prefixed
    assert names["blue"] and not names["blue"] & names["green"]


def test_context_values_arrive_as_strings_from_the_cli() -> None:
    config = StackConfig.from_context(FakeNode(bus_name="orders-bus", fraud_limit="250", alarm_email="a@b.io",
                                               deadline_seconds="30", powertools_layer_version="28"))
    assert (config.bus_name, config.parameters["FRAUD_LIMIT"], config.alarm_email) == ("orders-bus", "250", "a@b.io")
    assert (config.deadline_seconds, config.powertools_layer_version) == (30, 28)


@pytest.mark.parametrize(("name", "value"), [
    ("stage", "has space"),
    ("stage", "1st"),
    ("bus_name", "has space"),
    ("fraud_limit", "lots"),
    ("fraud_limit", "-1"),
    ("fraud_limit", "NaN"),
    ("deadline_seconds", "0"),
    ("deadline_seconds", "ten"),
    ("alarm_email", "not-an-address"),
])
def test_bad_context_fails_the_synth_with_the_name_of_the_value(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        StackConfig.from_context(FakeNode(**{name: value}))


def test_the_bus_and_schedule_group_name_fits_the_schedule_groups_64_characters() -> None:
    """The schedule group is named like the bus; Scheduler refuses a group name over 64 characters at deploy
    time (CreateScheduleGroup), so a longer bus name or stage must fail the synth, naming the value."""
    StackConfig.from_context(FakeNode(bus_name="b" * 64))
    StackConfig.from_context(FakeNode(stage="s" * 32, bus_name="b" * 31))
    with pytest.raises(ValueError, match="bus_name .*65 characters.* at most 64"):
        StackConfig.from_context(FakeNode(bus_name="b" * 65))
    with pytest.raises(ValueError, match="bus_name .* with stage .*64"):
        StackConfig.from_context(FakeNode(stage="s" * 32, bus_name="b" * 32))


def test_default_is_refused_as_the_bus_and_schedule_group_name() -> None:
    """Every account has an event bus and a schedule group named default: creating either fails."""
    with pytest.raises(ValueError, match="bus_name 'default'"):
        StackConfig.from_context(FakeNode(bus_name="default"))


def test_local_bundler_copies_the_package_without_caches(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg" / "__pycache__").mkdir(parents=True)
    (source / "__init__.py").write_text("")
    (source / "pkg" / "mod.py").write_text("X = 1\n")
    (source / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (source / "pkg" / "stale.pyc").write_bytes(b"\0")
    out = tmp_path / "out"
    out.mkdir()

    assert CopyPackage(source, "functions").try_bundle(str(out), object()) is True

    shipped = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert shipped == ["functions/__init__.py", "functions/pkg/mod.py"]


def test_local_bundler_refuses_a_missing_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        CopyPackage(tmp_path / "missing", "functions").try_bundle(str(tmp_path))


def test_the_claim_check_threshold_comes_from_the_context_and_is_bounded_by_the_entry_limit() -> None:
    assert StackConfig.from_context(FakeNode(claim_check_threshold_bytes="65536")).claim_check_threshold_bytes == 65536
    assert StackConfig.from_context(FakeNode()).claim_check_threshold_bytes is None
    with pytest.raises(ValueError, match="claim_check_threshold_bytes must be <= 262144"):
        StackConfig.from_context(FakeNode(claim_check_threshold_bytes="300000"))
    # Black-box pass 7C, F9: 10 was accepted, and every event crossed the bus as a reference.
    with pytest.raises(ValueError, match="claim_check_threshold_bytes must be >= 16384"):
        StackConfig.from_context(FakeNode(claim_check_threshold_bytes="10"))
    assert StackConfig.from_context(FakeNode(claim_check_threshold_bytes="16384")).claim_check_threshold_bytes == 16384
    with pytest.raises(ValueError, match="claim_check_threshold_bytes must be a whole number"):
        StackConfig.from_context(FakeNode(claim_check_threshold_bytes="200KB"))


def test_a_powertools_layer_of_another_region_than_the_deploys_is_refused(monkeypatch) -> None:
    """Black-box pass 7C, F5: a layer ARN of eu-west-1 synthesized for a deploy to another region, which then failed
    at CreateFunction after the tables, key and bus were made."""
    arn = "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"
    monkeypatch.setenv("CDK_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")  # configured: the CLI's region is where the stack deploys
    with pytest.raises(ValueError, match=r"powertools_layer_arn is a layer of eu-west-1, but the stack deploys to "
                                         r"us-east-1 \(AWS_REGION\)"):
        StackConfig.from_context(FakeNode(powertools_layer_arn=arn))
    monkeypatch.setenv("CDK_DEFAULT_REGION", "eu-west-1")
    assert StackConfig.from_context(FakeNode(powertools_layer_arn=arn)).powertools_layer_arn == arn
    monkeypatch.delenv("CDK_DEFAULT_REGION")  # a synth without a region in view: nothing to compare with
    assert StackConfig.from_context(FakeNode(powertools_layer_arn=arn)).powertools_layer_arn == arn


def test_a_powertools_layer_of_another_region_than_the_clis_unconfigured_default_only_warns(monkeypatch,
                                                                                             tmp_path) -> None:
    """Black-box pass 9B, F10: with no region configured the CDK CLI sets CDK_DEFAULT_REGION to us-east-1 anyway,
    and a correct eu-west-1 layer was refused although nothing said where the stack would deploy."""
    from infrastructure.stack import configured_region

    arn = "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"
    for variable in ("AWS_REGION", "AMAZON_REGION", "AWS_DEFAULT_REGION", "AMAZON_DEFAULT_REGION", "AWS_PROFILE",
                     "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    config_file = tmp_path / "config"
    config_file.write_text("[profile other]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("CDK_DEFAULT_REGION", "us-east-1")
    assert configured_region() is None
    config = StackConfig.from_context(FakeNode(powertools_layer_arn=arn))
    warning = config.layer_region_warning()
    assert warning is not None and "a layer of eu-west-1" in warning and "says us-east-1" in warning
    # The profile's region in the shared config file is configured: refused, naming where it was found.
    config_file.write_text("[default]\nregion = us-east-1\n[profile other]\nregion = ap-south-1\n")
    assert configured_region() == ("us-east-1", f"{config_file} [default]")
    with pytest.raises(ValueError, match="the stack deploys to us-east-1"):
        StackConfig.from_context(FakeNode(powertools_layer_arn=arn))
    monkeypatch.setenv("AWS_PROFILE", "other")
    monkeypatch.setenv("CDK_DEFAULT_REGION", "ap-south-1")
    with pytest.raises(ValueError, match=r"deploys to ap-south-1 \(.* \[profile other\]\)"):
        StackConfig.from_context(FakeNode(powertools_layer_arn=arn))
    monkeypatch.setenv("CDK_DEFAULT_REGION", "eu-west-1")
    assert StackConfig.from_context(FakeNode(powertools_layer_arn=arn)).layer_region_warning() is None
