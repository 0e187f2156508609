"""The custom event bus, its archive (every event, for replay) and its resource policy."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

ARCHIVE_RETENTION = Duration.days(365)


class Bus(Construct):
    def __init__(self, scope: Construct, id: str, *, bus_name: str, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.event_bus = events.EventBus(
            self, "EventBus",
            event_bus_name=bus_name,
            description="agentbus: business events, agent results, workflow outcomes and deadlines",
            kms_key=key,
        )
        # No event pattern: the archive keeps every event on the bus, whatever its source.
        self.archive = events.CfnArchive(
            self, "Archive",
            source_arn=self.event_bus.event_bus_arn,
            description="every event on the agentbus bus, for replay",
            retention_days=int(ARCHIVE_RETENTION.to_days()),
            kms_key_identifier=key.key_arn,
        )
        # Only this account may put events on the bus.
        self._add_statement(iam.PolicyStatement(
            sid="OnlyThisAccountPutsEvents",
            principals=[iam.AccountRootPrincipal()],
            actions=["events:PutEvents"],
            resources=[self.event_bus.event_bus_arn],
        ))

    @property
    def archive_name(self) -> str:
        return self.archive.ref

    def reserve_sources(self, owners: Mapping[str, iam.IRole]) -> None:
        """Deny putting events with a reserved ``source`` to every principal but the role that owns it.

        Keeps a result, outcome or deadline from being forged by any other function or user of the
        account, even one whose identity policy allows ``events:PutEvents``.
        """
        for index, (source, role) in enumerate(sorted(owners.items())):
            self._add_statement(iam.PolicyStatement(
                sid=f"ReservedSource{index}",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[self.event_bus.event_bus_arn],
                conditions={
                    "StringEquals": {"events:source": source},
                    "ArnNotEquals": {"aws:PrincipalArn": role.role_arn},
                },
            ))

    def _add_statement(self, statement: iam.PolicyStatement) -> events.CfnEventBusPolicy:
        # One AWS::Events::EventBusPolicy per statement, as CDK's EventBus.add_to_resource_policy does,
        # written at the L1 level to keep the statement exactly as given.
        return events.CfnEventBusPolicy(
            self, statement.sid,
            event_bus_name=self.event_bus.event_bus_name,
            statement_id=statement.sid,
            statement=statement.to_statement_json(),
        )
