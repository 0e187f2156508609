"""The custom event bus, its archive (every event, for replay) and its resource policy.

The policy is one document on the bus itself (``AWS::Events::EventBus`` ``Policy``), not one
``AWS::Events::EventBusPolicy`` per statement: those take their statement id as physical id, unique per
account and region (a second stack, or a renamed bus, failed to deploy), and several of them update the
one bus policy in parallel through PutPermission, which is not safe concurrently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.common.spec import QUEUE_MAX_MESSAGE_BYTES

from .consumer import RETENTION
from .limits import DeployLimit, longest

ARCHIVE_RETENTION = Duration.days(365)
# EventBridge refuses a bus policy over 10 KB (AWS::Events::EventBus Policy: "The permission policy on the event bus
# cannot exceed 10 KB in size"): the deploy would fail and roll back. The synth checks the size first.
POLICY_MAX_BYTES = 10 * 1024


class PolicyTooLarge(DeployLimit):
    """The bus policy would be over EventBridge's limit once deployed (one line: the size and the limit)."""


class Bus(Construct):
    def __init__(self, scope: Construct, id: str, *, bus_name: str, key: kms.IKey) -> None:
        super().__init__(scope, id)
        # The bus's own ARN from its name: Fn::GetAtt on the bus inside its own policy would be circular.
        self._own_arn = Stack.of(self).format_arn(service="events", resource="event-bus", resource_name=bus_name)
        # What EventBridge cannot encrypt or decrypt on the bus itself (the key disabled, scheduled for deletion or
        # its policy broken: a non-retriable error) lands here as an "Encrypted Events" wrapper, instead of being
        # lost before any rule (and any rule DLQ or alarm) sees it (EventBridge user guide, "Using dead-letter
        # queues to capture encrypted event errors"). Encrypted by SQS, not with the stack's key: the queue must
        # take messages exactly when that key cannot be used; each wrapper's payload stays encrypted with the key.
        self.dead_letter_queue = sqs.Queue(
            self, "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, retention_period=RETENTION,
            max_message_size_bytes=QUEUE_MAX_MESSAGE_BYTES,
        )
        self.dead_letter_queue.add_to_resource_policy(iam.PolicyStatement(
            sid="EventBridgeBusDeadLetters",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["sqs:SendMessage"],
            resources=[self.dead_letter_queue.queue_arn],
            conditions={"ArnEquals": {"aws:SourceArn": self._own_arn}},
        ))
        self.event_bus = events.EventBus(
            self, "EventBus",
            event_bus_name=bus_name,
            description="agentbus: business events, agent results, workflow outcomes and deadlines",
            kms_key=key,
            dead_letter_queue=self.dead_letter_queue,
        )
        # No event pattern: the archive keeps every event on the bus, whatever its source.
        self.archive = events.CfnArchive(
            self, "Archive",
            source_arn=self.event_bus.event_bus_arn,
            description="every event on the agentbus bus, for replay",
            retention_days=int(ARCHIVE_RETENTION.to_days()),
            kms_key_identifier=key.key_arn,
        )
        # The archive's use of the key, in the form of AWS's example key policy for an encrypted archive (EventBridge
        # user guide, "Encrypting EventBridge archives with AWS KMS keys"): the data-key operations and re-encryption,
        # conditioned on the encryption context EventBridge binds to every archive operation (the bus's ARN), not on
        # aws:SourceAccount alone (infrastructure/security.py), which the archive's example does not use.
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="EventBridgeArchiveOfThisBus",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:GenerateDataKey", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo"],
            resources=["*"],
            conditions={"StringEquals": {"kms:EncryptionContext:aws:events:event-bus:arn": self._own_arn}},
        ))
        self.policy = iam.PolicyDocument()
        self._reserved = 0
        # The statement naming -c approver_arns (account_only_sources), and how many it names.
        self._approvers: iam.PolicyStatement | None = None
        self._approver_count = 0
        # Resolved at synth time, so statements added later (reserve_sources) are in it.
        bus = self.event_bus.node.default_child
        assert isinstance(bus, events.CfnEventBus)
        bus.policy = self.policy
        # Only this account may put events on the bus.
        self.policy.add_statements(iam.PolicyStatement(
            sid="OnlyThisAccountPutsEvents",
            principals=[iam.AccountRootPrincipal()],
            actions=["events:PutEvents"],
            resources=[self._own_arn],
        ))

    def policy_bytes(self) -> int:
        """The policy's size once deployed, at most: compact JSON, every name and ARN at its longest."""
        stack = Stack.of(self)
        document = longest(stack, stack.resolve(self.policy.to_json()))
        return len(json.dumps(document, separators=(",", ":")).encode())

    def approvers_bytes(self) -> int:
        """The share of the policy (at its longest) of the statement naming ``-c approver_arns``; 0 without."""
        if self._approvers is None:
            return 0
        stack = Stack.of(self)
        statement = longest(stack, stack.resolve(self._approvers.to_statement_json()))
        return len(json.dumps(statement, separators=(",", ":")).encode()) + 1  # and its comma

    def check_policy_size(self) -> None:
        """Fail the synth, not the deploy, when the policy would pass EventBridge's 10 KB: each consumer adds a
        statement reserving its source (reserve_sources), about 400 bytes, and ``-c approver_arns`` one listing
        them (account_only_sources). The message names what fills it: the approvers when the policy would fit
        without them, else the consumers."""
        size = self.policy_bytes()
        if size <= POLICY_MAX_BYTES:
            return
        over = (f"the event bus policy would be up to {size} bytes, over EventBridge's limit of {POLICY_MAX_BYTES} "
                "bytes (10 KB)")
        approvers = self.approvers_bytes()
        named = (f"-c approver_arns takes {approvers} of them ({self._approver_count} ARNs, in one statement)"
                 if approvers else "")
        if approvers and size - approvers <= POLICY_MAX_BYTES:
            raise PolicyTooLarge(f"{over}: {named}; name fewer principals, several roles in one with a * wildcard "
                                 "(e.g. arn:aws:iam::<account>:role/approvers-*)")
        raise PolicyTooLarge(
            f"{over}: each of the {self._reserved} reserved sources (one per consumer) adds a statement"
            + (f", and {named}" if named else "")
            + "; put fewer consumers on one bus (the others in a second stage, deployed from another manifest)")

    @property
    def archive_name(self) -> str:
        return self.archive.ref

    def reserve_sources(self, owners: Mapping[str, iam.IRole]) -> None:
        """Deny putting events with a reserved ``source`` to every principal but the role that owns it.

        Keeps a result, outcome or deadline from being forged by any other function or user of the
        account, even one whose identity policy allows ``events:PutEvents``.
        """
        self._reserved += len(owners)
        for index, (source, role) in enumerate(sorted(owners.items())):
            self._deny_put_events(f"ReservedSource{index}", {
                "StringEquals": {"events:source": source},
                "ArnNotEquals": {"aws:PrincipalArn": role.role_arn},
            })

    def account_only_sources(self, sources: Iterable[str], approvers: Sequence[str] = ()) -> None:
        """Deny putting events with these sources to every principal of another account, and, when ``approvers``
        are named (``-c approver_arns``), to every principal but those.

        For what a person of the account sends (an approval, an operator's cancel: the manifest's external agents'
        sources and its workflows' cancel sources). The allow above already names only this account; this deny
        holds even if someone adds a cross-account allow to the bus later. Without ``approvers`` anyone of the
        account may answer for the person: the answer's ``by`` is what its sender wrote.
        """
        sources = sorted(set(sources))
        if not sources:
            return
        if approvers:
            self._approvers = self._deny_put_events("OnlyApproversAnswerAndCancel", {
                "StringEquals": {"events:source": sources},
                "ArnNotLike": {"aws:PrincipalArn": list(approvers)},
            })
            self._approver_count = len(approvers)
        self._deny_put_events("OnlyThisAccountAnswersAndCancels", {
            "StringEquals": {"events:source": sources},
            "StringNotEquals": {"aws:PrincipalAccount": Aws.ACCOUNT_ID},
        })

    def _deny_put_events(self, sid: str, conditions: dict[str, Any]) -> iam.PolicyStatement:
        """A statement of the bus policy denying PutEvents on this bus to any principal ``conditions`` match."""
        statement = iam.PolicyStatement(
            sid=sid, effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()], actions=["events:PutEvents"],
            resources=[self._own_arn], conditions=conditions,
        )
        self.policy.add_statements(statement)
        return statement
