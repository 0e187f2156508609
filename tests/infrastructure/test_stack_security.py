"""Issue 5, security: least-privilege roles, reserved sources, a rotated CMK everywhere, TLS only."""

from __future__ import annotations

import json

import pytest

from functions.manifest import DEADLINE_SOURCE, MANIFEST
from tests.infrastructure.template import ConsumerView, Synth, as_list, ref_id, statements

CONSUMERS = [consumer.name for consumer in MANIFEST.consumers]


def _key_id(synth: Synth) -> str:
    return synth.one("AWS::KMS::Key")[0]


def coordinator_env_var(synth: Synth, name: str) -> object:
    (coordinator,) = [f for f in synth.of_type("AWS::Lambda::Function").values()
                      if f["Properties"]["Handler"] == MANIFEST.coordinator.handler]
    return coordinator["Properties"]["Environment"]["Variables"][name]


def bus_policy(synth: Synth) -> list[dict]:
    """The statements of the one policy on the bus (its ``Policy`` property)."""
    _, bus = synth.one("AWS::Events::EventBus")
    return statements(bus["Properties"]["Policy"])


def _actions(statement: dict) -> list[str]:
    return as_list(statement.get("Action", []))


def _is_account_root(principal: object) -> bool:
    aws = principal.get("AWS") if isinstance(principal, dict) else None
    parts = aws.get("Fn::Join", ["", []])[1] if isinstance(aws, dict) else []
    return any(isinstance(p, str) and p.endswith(":root") for p in parts) and {"Ref": "AWS::AccountId"} in parts


def _all_policy_documents(synth: Synth) -> list[tuple[str, dict]]:
    """Every policy in the template: identity, queue, topic, bus and key policies."""
    documents: list[tuple[str, dict]] = []
    for resource_id, resource in synth.resources.items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind in ("AWS::IAM::Policy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            documents.append((resource_id, props["PolicyDocument"]))
        elif kind == "AWS::IAM::Role":
            documents += [(resource_id, p["PolicyDocument"]) for p in props.get("Policies", [])]
        elif kind == "AWS::Events::EventBus":
            documents.append((resource_id, props["Policy"]))
        elif kind == "AWS::KMS::Key":
            documents.append((resource_id, props["KeyPolicy"]))
    return documents


def test_no_wildcard_actions_in_any_policy(synth: Synth) -> None:
    offenders = []
    for resource_id, document in _all_policy_documents(synth):
        for statement in statements(document):
            if statement["Effect"] != "Allow":
                continue  # Deny guards (e.g. TLS-only "sqs:*" denies) restrict, they grant nothing
            kind = synth.resources[resource_id]["Type"]
            if kind == "AWS::KMS::Key" and _is_account_root(statement["Principal"]):
                # The default key policy statement: delegates the key to IAM policies in this account
                # (without it the key becomes unmanageable); every IAM policy is checked above.
                continue
            for action in _actions(statement):
                if action == "*" or action.endswith(":*"):
                    offenders.append((resource_id, action))
    assert not offenders


def test_identity_policies_name_their_resources(consumers: dict[str, ConsumerView]) -> None:
    for view in consumers.values():
        for document in view.policies:
            for statement in statements(document):
                if statement["Resource"] == "*":
                    # Only X-Ray, which has no resource-level permissions.
                    assert set(_actions(statement)) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


@pytest.mark.parametrize("name", CONSUMERS)
def test_put_events_only_on_the_bus_and_only_with_the_consumers_own_source(
        synth: Synth, consumers: dict[str, ConsumerView], name: str) -> None:
    view = consumers[name]
    bus_id = synth.one("AWS::Events::EventBus")[0]
    put_events = [s for d in view.policies for s in statements(d) if "events:PutEvents" in _actions(s)]
    assert put_events, f"{name} cannot publish"
    for statement in put_events:
        assert _actions(statement) == ["events:PutEvents"]
        assert ref_id(statement["Resource"]) == bus_id
        assert statement["Condition"] == {"StringEquals": {"events:source": view.spec.source}}


def test_scheduler_role_only_puts_deadline_events_and_trusts_only_this_accounts_scheduler(synth: Synth) -> None:
    bus_id = synth.one("AWS::Events::EventBus")[0]
    group_id = synth.one("AWS::Scheduler::ScheduleGroup")[0]
    scheduler_roles = {
        role_id: role for role_id, role in synth.of_type("AWS::IAM::Role").items()
        if any(s["Principal"] == {"Service": "scheduler.amazonaws.com"}
               for s in statements(role["Properties"]["AssumeRolePolicyDocument"]))
    }
    (role_id, role) = next(iter(scheduler_roles.items()))
    assert len(scheduler_roles) == 1
    (trust,) = statements(role["Properties"]["AssumeRolePolicyDocument"])
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    by_sid = {s["Sid"]: s for d in synth.role_policies(role_id) for s in statements(d)}
    statement = by_sid.pop("PutDeadlineEvents")
    assert _actions(statement) == ["events:PutEvents"]
    assert ref_id(statement["Resource"]) == bus_id
    assert statement["Condition"] == {"StringEquals": {"events:source": DEADLINE_SOURCE}}
    # Besides that, only what sending an undelivered deadline to its (encrypted) DLQ takes.
    dlq_id = ref_id(coordinator_env_var(synth, "DEADLINE_DEAD_LETTER_ARN"))
    assert synth.resources[dlq_id]["Type"] == "AWS::SQS::Queue"
    send = by_sid.pop("DeadLetterUndeliveredDeadlines")
    assert _actions(send) == ["sqs:SendMessage"] and ref_id(send["Resource"]) == dlq_id
    key = by_sid.pop("EncryptedDeadLetterQueue")
    assert ref_id(key["Resource"]) == _key_id(synth)
    assert set(_actions(key)) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert not by_sid

    coordinator_env = [v for v in synth.of_type("AWS::Lambda::Function").values()
                       if v["Properties"]["Handler"] == MANIFEST.coordinator.handler][0]
    assert ref_id(coordinator_env["Properties"]["Environment"]["Variables"]["SCHEDULER_ROLE_ARN"]) == role_id
    assert ref_id(coordinator_env["Properties"]["Environment"]["Variables"]["SCHEDULE_GROUP"]) == group_id


@pytest.mark.parametrize("name", CONSUMERS)
def test_only_the_scheduling_consumer_manages_schedules_and_passes_only_the_scheduler_role(
        synth: Synth, consumers: dict[str, ConsumerView], name: str) -> None:
    view = consumers[name]
    found = [s for d in view.policies for s in statements(d)
             if any(a.startswith(("scheduler:", "iam:")) for a in _actions(s))]
    if not view.spec.schedules:
        assert not found
        return
    group_id = synth.one("AWS::Scheduler::ScheduleGroup")[0]
    scheduler_role_id = ref_id(view.function["Properties"]["Environment"]["Variables"]["SCHEDULER_ROLE_ARN"])
    schedules = [s for s in found if _actions(s) == [
        "scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule", "scheduler:GetSchedule"]]
    (schedules,) = schedules
    parts = schedules["Resource"]["Fn::Join"][1]
    assert {"Ref": group_id} in parts and parts[-1] == "/*" and ":schedule/" in parts
    (passing,) = [s for s in found if _actions(s) == ["iam:PassRole"]]
    assert ref_id(passing["Resource"]) == scheduler_role_id
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    assert len(found) == 2


@pytest.mark.parametrize("name", CONSUMERS)
def test_table_access_only_to_the_manifests_tables_for_that_consumer(
        synth: Synth, consumers: dict[str, ConsumerView], name: str) -> None:
    view = consumers[name]
    table_ids = {logical: synth.stack.get_logical_id(table.node.default_child)
                 for logical, table in synth.stack.state.tables.items()}
    granted = {ref_id(resource) for d in view.policies for s in statements(d)
               if any(a.startswith("dynamodb:") for a in _actions(s)) for resource in as_list(s["Resource"])}
    assert granted == {table_ids[logical] for logical in view.spec.tables}
    # A table the consumer only reads (read_only): reads, never a write or a delete (black-box pass 7C, F6: the
    # agents that only read the employee directory could rewrite it).
    read_only = {table_ids[logical] for logical in view.spec.read_only}
    for statement in (s for d in view.policies for s in statements(d)):
        if {ref_id(r) for r in as_list(statement["Resource"])} & read_only:
            assert set(_actions(statement)) == {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}


def test_the_agents_that_only_read_the_directory_cannot_write_it() -> None:
    readers = [c.name for c in MANIFEST.consumers if "directory" in c.tables]
    assert readers and all("directory" in MANIFEST.consumer(name).read_only for name in readers)


def test_each_function_has_a_role_of_its_own(consumers: dict[str, ConsumerView]) -> None:
    roles = [view.role_id for view in consumers.values()]
    assert len(set(roles)) == len(roles)


def test_bus_policy_allows_only_this_account(synth: Synth) -> None:
    allows = [s for s in bus_policy(synth) if s["Effect"] == "Allow"]
    (allow,) = allows
    assert _is_account_root(allow["Principal"])
    assert allow["Action"] == "events:PutEvents"


def test_one_policy_on_the_bus_and_no_event_bus_policy_resources(synth: Synth) -> None:
    """AWS::Events::EventBusPolicy takes its statement id as physical id, unique per account and region
    (a second stack or a renamed bus failed to deploy), and several of them race on one bus policy."""
    assert not synth.of_type("AWS::Events::EventBusPolicy")
    policy = bus_policy(synth)
    # The allow, one deny per reserved source, one deny of answers and cancels to other accounts.
    assert len(policy) == 1 + len(MANIFEST.consumers) + 1 + 1
    _, bus = synth.one("AWS::Events::EventBus")
    name = bus["Properties"]["Name"]
    for statement in policy:
        # The bus's own ARN built from its name, not Fn::GetAtt on itself (that would be circular).
        assert name in json.dumps(statement["Resource"]), statement


def test_fault_forged_reserved_source_is_denied_to_every_principal_but_its_owner(
        synth: Synth, consumers: dict[str, ConsumerView]) -> None:
    """Another function (or user) of the account must not publish a result, outcome or deadline."""
    scheduler_role = ref_id(consumers[MANIFEST.coordinator.name].function["Properties"]["Environment"]
                            ["Variables"]["SCHEDULER_ROLE_ARN"])
    owners = {view.spec.source: view.role_id for view in consumers.values()}
    owners[DEADLINE_SOURCE] = scheduler_role
    denies = {}
    for statement in bus_policy(synth):
        if statement["Effect"] == "Deny" and statement["Sid"].startswith("ReservedSource"):
            assert statement["Principal"] == {"AWS": "*"}
            assert statement["Action"] == "events:PutEvents"
            source = statement["Condition"]["StringEquals"]["events:source"]
            denies[source] = ref_id(statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
    assert denies == owners


def test_fault_forged_approval_or_cancel_from_another_account_is_denied_by_the_bus_policy(synth: Synth) -> None:
    """A person's answer and an operator's cancel come from any principal of the account, nobody else's: an
    explicit deny, so that a cross-account allow added to the bus later cannot let another account approve."""
    (deny,) = [s for s in bus_policy(synth) if s.get("Sid") == "OnlyThisAccountAnswersAndCancels"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert deny["Action"] == "events:PutEvents"
    external = {agent.source for w in MANIFEST.coordinated for agent in w.external}
    cancels = {source for w in MANIFEST.coordinated if w.cancellable for source in w.cancel_sources}
    assert "agentbus.approvals" in external and "agentbus.operator" in cancels  # and any a user's workflow adds
    assert deny["Condition"] == {
        "StringEquals": {"events:source": sorted(external | cancels)},
        "StringNotEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}},
    }
    # Neither is a reserved source: any role or user of the account keeps its right to send them.
    reserved = {s["Condition"]["StringEquals"]["events:source"] for s in bus_policy(synth)
                if s["Effect"] == "Deny" and s["Sid"].startswith("ReservedSource")}
    assert not reserved & (external | cancels)


def test_without_approver_arns_anyone_of_the_account_may_answer(synth: Synth) -> None:
    assert not [s for s in bus_policy(synth) if s.get("Sid") == "OnlyApproversAnswerAndCancel"]


def test_approver_arns_deny_answers_and_cancels_to_every_other_principal(tmp_path) -> None:
    """Black-box pass 7C, F1: anyone of the account could approve (a requester their own access, under any name);
    -c approver_arns names who may."""
    from app import create_app
    from tests.infrastructure.template import synthesize

    approvers = "arn:aws:iam::123456789012:role/approvers, arn:aws:iam::123456789012:role/oncall-*"
    app, stack = create_app(context={"approver_arns": approvers}, outdir=str(tmp_path))
    synthesized = synthesize(app, stack, tmp_path)
    assert synthesized.error is None  # cdk-nag and the policy-size check pass with it
    (deny,) = [s for s in bus_policy(synthesized) if s.get("Sid") == "OnlyApproversAnswerAndCancel"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"} and deny["Action"] == "events:PutEvents"
    answers_and_cancels = {agent.source for w in MANIFEST.coordinated for agent in w.external}
    answers_and_cancels |= {source for w in MANIFEST.coordinated if w.cancellable for source in w.cancel_sources}
    assert {"agentbus.approvals", "agentbus.operator"} <= answers_and_cancels
    assert deny["Condition"] == {
        "StringEquals": {"events:source": sorted(answers_and_cancels)},
        "ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::123456789012:role/approvers",
                                            "arn:aws:iam::123456789012:role/oncall-*"]},
    }
    for bad in ("approvers", "arn:aws:sts::123456789012:assumed-role/approvers/ann", "arn:aws:iam::1:role/x"):
        with pytest.raises(ValueError, match="approver_arns: .* is not an IAM role or user ARN"):
            create_app(context={"approver_arns": bad}, outdir=str(tmp_path / "bad"))


def test_one_rotated_customer_managed_key_encrypts_bus_archive_queues_tables_and_topic(synth: Synth) -> None:
    key_id = _key_id(synth)
    key = synth.resources[key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    # Retained with the orders table it encrypts, but deleted when a failed first deploy rolls back (9B, F12).
    assert key["DeletionPolicy"] == "RetainExceptOnCreate", "the retained orders table is encrypted with it"
    assert key["UpdateReplacePolicy"] == "Retain"
    _, bus = synth.one("AWS::Events::EventBus")
    _, archive = synth.one("AWS::Events::Archive")
    assert ref_id(bus["Properties"]["KmsKeyIdentifier"]) == key_id
    assert ref_id(archive["Properties"]["KmsKeyIdentifier"]) == key_id
    # But the bus's own DLQ (SSE-SQS): it takes what the bus could not encrypt or decrypt with this key.
    bus_dlq_id = ref_id(bus["Properties"]["DeadLetterConfig"]["Arn"])
    assert synth.resources[bus_dlq_id]["Properties"]["SqsManagedSseEnabled"] is True
    for queue_id, queue in synth.of_type("AWS::SQS::Queue").items():
        if queue_id != bus_dlq_id:
            assert ref_id(queue["Properties"].get("KmsMasterKeyId")) == key_id, queue_id
    for table_id, table in synth.of_type("AWS::DynamoDB::Table").items():
        sse = table["Properties"]["SSESpecification"]
        assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS", table_id
        assert ref_id(sse["KMSMasterKeyId"]) == key_id, table_id
    _, topic = synth.one("AWS::SNS::Topic")
    assert ref_id(topic["Properties"]["KmsMasterKeyId"]) == key_id


def test_key_policy_lets_eventbridge_and_cloudwatch_use_the_key(synth: Synth) -> None:
    policy = synth.resources[_key_id(synth)]["Properties"]["KeyPolicy"]
    by_service: dict[str, set[str]] = {}
    for statement in statements(policy):
        service = statement["Principal"].get("Service") if isinstance(statement["Principal"], dict) else None
        if service:
            by_service.setdefault(service, set()).update(_actions(statement))
    # EventBridge: encrypted bus and archive, and delivery to the encrypted queues and DLQs.
    assert {"kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"} <= by_service["events.amazonaws.com"]
    # CloudWatch: alarm notifications to the encrypted topic.
    assert {"kms:GenerateDataKey", "kms:Decrypt"} <= by_service["cloudwatch.amazonaws.com"]


def test_eventbridge_may_encrypt_for_the_queues_in_the_form_sqs_documents(synth: Synth) -> None:
    """AWS documents aws:SourceAccount as unsupported for EventBridge delivering to an encrypted SNS topic;
    the SQS developer guide's form for an AWS service sending to an encrypted queue has no such condition.
    Under the condition alone, no event might ever reach a queue on AWS."""
    policy = synth.resources[_key_id(synth)]["Properties"]["KeyPolicy"]
    unconditioned = [s for s in statements(policy)
                     if s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}
                     and "Condition" not in s and "kms:DescribeKey" not in _actions(s)]
    (statement,) = unconditioned
    assert set(_actions(statement)) == {"kms:GenerateDataKey", "kms:Decrypt"}


def test_eventbridge_may_describe_the_key_without_condition_as_aws_documents(synth: Synth) -> None:
    """EventBridge checks the key with DescribeKey when it creates the bus and the archive; AWS's example key
    policies for both allow it with no condition (a DescribeKey has no encryption context, and need not carry
    aws:SourceAccount). Only metadata, and nothing else allowed without a condition beyond the queues' grant."""
    policy = synth.resources[_key_id(synth)]["Properties"]["KeyPolicy"]
    describe = [s for s in statements(policy)
                if s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}
                and "Condition" not in s and "kms:DescribeKey" in _actions(s)]
    (statement,) = describe
    assert _actions(statement) == ["kms:DescribeKey"]


def test_the_archive_may_use_the_key_under_the_buss_encryption_context_as_aws_documents(synth: Synth) -> None:
    """AWS's example key policy for an encrypted archive conditions the data-key operations and re-encryption on
    the encryption context alone (the bus's ARN); aws:SourceAccount is not part of it."""
    policy = synth.resources[_key_id(synth)]["Properties"]["KeyPolicy"]
    _, bus = synth.one("AWS::Events::EventBus")
    context_key = "kms:EncryptionContext:aws:events:event-bus:arn"
    archive = [s for s in statements(policy)
               if s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}
               and set(s.get("Condition", {}).get("StringEquals", {})) == {context_key}]
    (statement,) = archive
    assert set(_actions(statement)) == {"kms:GenerateDataKey", "kms:Decrypt", "kms:ReEncryptFrom",
                                        "kms:ReEncryptTo"}
    arn = statement["Condition"]["StringEquals"][context_key]
    assert arn["Fn::Join"][1][-1] == f":event-bus/{bus['Properties']['Name']}"


def test_every_queue_and_the_topic_refuse_requests_without_tls(synth: Synth) -> None:
    def denies_plain_http(document: dict) -> bool:
        return any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in statements(document))

    for queue_id in synth.of_type("AWS::SQS::Queue"):
        assert denies_plain_http(synth.queue_policy(queue_id)), queue_id
    (topic_policy,) = synth.of_type("AWS::SNS::TopicPolicy").values()
    assert denies_plain_http(topic_policy["Properties"]["PolicyDocument"])


def test_point_in_time_recovery_on_every_table_and_keys_from_the_manifest(synth: Synth) -> None:
    tables = {synth.stack.get_logical_id(table.node.default_child): logical
              for logical, table in synth.stack.state.tables.items()}
    specs = {t.logical_name: t for t in MANIFEST.all_tables}
    assert set(tables) == set(synth.of_type("AWS::DynamoDB::Table"))
    for table_id, table in synth.of_type("AWS::DynamoDB::Table").items():
        props = table["Properties"]
        spec = specs[tables[table_id]]
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        keys = [(spec.partition_key, "HASH")] + ([(spec.sort_key, "RANGE")] if spec.sort_key else [])
        assert props["KeySchema"] == [{"AttributeName": k, "KeyType": kind} for k, kind in keys]
        indexed = [key for index in spec.indexes for key in (index.partition_key, index.sort_key) if key]
        assert props["AttributeDefinitions"] == [{"AttributeName": k, "AttributeType": "S"}
                                                 for k in dict.fromkeys([k for k, _ in keys] + indexed)]
        assert [i["IndexName"] for i in props.get("GlobalSecondaryIndexes", [])] == [i.name for i in spec.indexes]


def test_retained_tables_have_deletion_protection_and_retain_policies(synth: Synth) -> None:
    tables = {synth.stack.get_logical_id(table.node.default_child): logical
              for logical, table in synth.stack.state.tables.items()}
    retained = {t.logical_name for t in MANIFEST.tables if MANIFEST.retains(t)}
    assert "orders" in retained
    for table_id, table in synth.of_type("AWS::DynamoDB::Table").items():
        if tables[table_id] in retained:
            assert table["Properties"]["DeletionProtectionEnabled"] is True
            assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
        else:
            assert table["DeletionPolicy"] == "Delete"
