"""Rules, queues, event source mappings and functions: each exactly as the manifest says."""

from __future__ import annotations

import pytest

from agentbus.resources import ConsumerResources, Resources
from functions.common.settings import Settings, table_variable
from functions.manifest import MANIFEST
from tests.infrastructure.template import CONTEXT, ConsumerView, Synth, ref_id, statements

FOURTEEN_DAYS_S = 14 * 24 * 3600
CONSUMERS = [consumer.name for consumer in MANIFEST.consumers]


def test_every_manifest_rule_exists_with_its_exact_pattern_and_targets_its_consumers_queue(
        synth: Synth, consumers: dict[str, ConsumerView]) -> None:
    bus_id, _ = synth.one("AWS::Events::EventBus")
    rules = synth.of_type("AWS::Events::Rule")
    unmatched = dict(rules)
    for consumer, subscription in MANIFEST.rules():
        view = consumers[consumer.name]
        matching = [rule_id for rule_id, rule in unmatched.items()
                    if rule["Properties"]["EventPattern"] == subscription.pattern()
                    and [ref_id(t["Arn"]) for t in rule["Properties"]["Targets"]] == [view.queue_id]]
        assert len(matching) == 1, f"{consumer.name}/{subscription.name}: no rule with pattern {subscription.pattern()}"
        rule = unmatched.pop(matching[0])["Properties"]
        assert ref_id(rule["EventBusName"]) == bus_id
        assert rule["State"] == "ENABLED"
        (target,) = rule["Targets"]
        assert ref_id(target["DeadLetterConfig"]["Arn"]) == view.dlq_id, "undeliverable events go to the DLQ"
    assert not unmatched, f"rules the manifest does not define: {sorted(unmatched)}"


@pytest.mark.parametrize("name", CONSUMERS)
def test_queue_policy_lets_only_the_consumers_own_rules_send(
        synth: Synth, consumers: dict[str, ConsumerView], name: str) -> None:
    view = consumers[name]
    own_rules = sorted(rule_id for rule_id, rule in synth.of_type("AWS::Events::Rule").items()
                       if view.queue_id in [ref_id(t["Arn"]) for t in rule["Properties"]["Targets"]])
    assert len(own_rules) == len(MANIFEST.subscriptions(view.spec))
    for queue_id in (view.queue_id, view.dlq_id):
        allows = [s for s in statements(synth.queue_policy(queue_id)) if s["Effect"] == "Allow"]
        assert len(allows) == 1, f"{queue_id}: exactly one allow statement expected, got {allows}"
        (allow,) = allows
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert allow["Action"] == "sqs:SendMessage"
        source_arns = allow["Condition"]["ArnEquals"]["aws:SourceArn"]
        assert sorted(ref_id(arn) for arn in source_arns) == own_rules


@pytest.mark.parametrize("name", CONSUMERS)
def test_queue_has_a_dlq_with_the_manifests_max_receive_count_and_14_day_retention(
        consumers: dict[str, ConsumerView], name: str) -> None:
    view = consumers[name]
    queue = view.queue["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == view.spec.max_receive_count
    assert queue["VisibilityTimeout"] == view.spec.visibility_timeout_s
    assert queue["MessageRetentionPeriod"] == FOURTEEN_DAYS_S
    assert view.dlq["Properties"]["MessageRetentionPeriod"] == FOURTEEN_DAYS_S
    assert view.dlq_id != view.queue_id


def test_every_queue_takes_the_largest_message_sqs_allows(synth: Synth) -> None:
    """EventBridge takes entries up to 1 MiB: a queue left at SQS's old 256 KiB default would refuse a trigger near
    256 KiB once wrapped in its envelope, so it would never reach the agent that answers it REJECTED."""
    queues = synth.of_type("AWS::SQS::Queue")
    assert queues
    assert {queue_id: queue["Properties"].get("MaximumMessageSize") for queue_id, queue in queues.items()} == {
        queue_id: 1024 * 1024 for queue_id in queues}


@pytest.mark.parametrize("name", CONSUMERS)
def test_source_queue_allows_at_least_five_receives(consumers: dict[str, ConsumerView], name: str) -> None:
    """AWS recommends maxReceiveCount >= 5 for a queue feeding Lambda: a throttled batch returns to the queue
    and counts as a receive (Lambda developer guide, "SQS retries"); lower, valid events reach the DLQ."""
    assert consumers[name].queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] >= 5


@pytest.mark.parametrize("name", CONSUMERS)
def test_event_source_mapping_reports_batch_item_failures_with_manifest_batch_and_concurrency(
        consumers: dict[str, ConsumerView], name: str) -> None:
    view = consumers[name]
    esm = view.esm["Properties"]
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["BatchSize"] == view.spec.batch_size
    assert esm["ScalingConfig"]["MaximumConcurrency"] == view.spec.max_concurrency >= 2
    assert esm.get("Enabled", True) is True
    window = esm.get("MaximumBatchingWindowInSeconds", 0)
    assert window == view.spec.max_batching_window_s


@pytest.mark.parametrize("name", CONSUMERS)
def test_function_is_python313_arm64_traced_with_manifest_sizes_and_powertools_layer(
        consumers: dict[str, ConsumerView], name: str) -> None:
    view = consumers[name]
    function = view.function["Properties"]
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == view.spec.handler
    assert function["Timeout"] == view.spec.timeout_s
    assert function["MemorySize"] == view.spec.memory_mb
    assert function["TracingConfig"] == {"Mode": "Active"}
    (layer,) = function["Layers"]
    # The publisher account depends on the partition and region (test_deploy_review.py).
    arn = "".join(part if isinstance(part, str) else "<token>" for part in layer["Fn::Join"][1])
    assert arn.endswith(":<token>:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27")


@pytest.mark.parametrize("name", CONSUMERS)
def test_function_environment_is_what_settings_parses(
        synth: Synth, consumers: dict[str, ConsumerView], name: str) -> None:
    view = consumers[name]
    env = view.function["Properties"]["Environment"]["Variables"]
    consumer = MANIFEST.consumer(name)
    local_like = Resources(bus_name="b", bus_arn="a", archive_name="r", schedule_group="g", scheduler_role_arn="s",
                           tables={t.logical_name: t.logical_name for t in MANIFEST.all_tables},
                           consumers={name: ConsumerResources("q", "qa", "d", "da")}, deadline_dlq_arn="dl",
                           claim_check_bucket="c")
    # The same variables the local runtime sets (one contract: functions/common/settings.py), plus the
    # deployment's configuration; only the tables and parameters this function uses.
    expected = set(local_like.function_environment(name, MANIFEST, deadline_seconds=1)) | {
        "POWERTOOLS_METRICS_NAMESPACE", "CLAIM_CHECK_THRESHOLD_BYTES"}
    assert set(env) == expected
    assert {v for v in env if v.startswith("TABLE_")} == {table_variable(t) for t in consumer.tables}
    assert env["POWERTOOLS_SERVICE_NAME"] == name == env["AGENTBUS_FUNCTION"]
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "agentbus"
    if consumer.schedules:  # a deadline Scheduler cannot deliver goes to the deadline DLQ
        dlq_id = synth.stack.get_logical_id(synth.stack.state.deadline_dlq.node.default_child)
        assert ref_id(env["DEADLINE_DEAD_LETTER_ARN"]) == dlq_id
    assert ref_id(env["DEAD_LETTER_QUEUE_URL"]) == view.dlq_id, "poison messages go to the consumer's own DLQ"
    assert ref_id(env["EVENT_BUS_NAME"]) == synth.one("AWS::Events::EventBus")[0]
    tables = synth.of_type("AWS::DynamoDB::Table")
    assert all(ref_id(env[table_variable(t)]) in tables for t in consumer.tables)
    if consumer.schedules:
        assert ref_id(env["SCHEDULE_GROUP"]) == synth.one("AWS::Scheduler::ScheduleGroup")[0]

    # Tokens resolve to strings on AWS; stand-ins must parse the way settings.py parses the real values.
    parsed = Settings.from_env({k: v if isinstance(v, str) else f"<{ref_id(v)}>" for k, v in env.items()})
    if "FRAUD_LIMIT" in env:
        assert parsed.parameter("FRAUD_LIMIT") == CONTEXT["fraud_limit"]
    if consumer.schedules:
        assert parsed.deadline_seconds == int(CONTEXT["deadline_seconds"])
    assert parsed.claim_check_threshold == int(CONTEXT["claim_check_threshold_bytes"])


def test_one_lambda_code_asset_shared_by_every_function(consumers: dict[str, ConsumerView]) -> None:
    keys = {view.function["Properties"]["Code"]["S3Key"] for view in consumers.values()}
    assert len(keys) == 1


def test_lambda_asset_is_the_functions_tree_without_caches(synth: Synth) -> None:
    from infrastructure.bundling import FUNCTIONS_DIR

    (asset_dir,) = [p for p in synth.outdir.iterdir() if p.is_dir() and p.name.startswith("asset.")]
    shipped = {p.relative_to(asset_dir).as_posix() for p in asset_dir.rglob("*") if p.is_file()}
    source = {f"functions/{p.relative_to(FUNCTIONS_DIR).as_posix()}" for p in FUNCTIONS_DIR.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert "functions/manifest.py" in shipped
    assert shipped == source
    for consumer in MANIFEST.consumers:
        module = consumer.handler.rsplit(".", 1)[0].replace(".", "/") + ".py"
        if module in source:  # a handler the repository has must be in the asset at the handler's path
            assert module in shipped
