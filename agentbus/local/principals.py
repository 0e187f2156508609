"""Who calls the local endpoint: each local function, and the scheduler, with an access key id of its own.

On AWS each function runs under its own role, and the bus policy denies ``PutEvents`` with a reserved
``source`` (each consumer's own; the deadline source, the scheduler's) to every principal but its owner, so
nobody can forge a result, an outcome or a deadline. Locally the same rule holds: the runtime gives each
function (and the scheduler's firing) clients that sign with an access key id of their own, and the
endpoint (``server.SourceGuard``) refuses a reserved source from any other key. The key ids carry a random
token made per local stack, so they cannot be guessed from outside (moto checks no secret key: the key id is
what identifies a caller here).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from functions.common.spec import DEADLINE_SOURCE, Manifest


@dataclass(frozen=True)
class LocalPrincipals:
    token: str = field(default_factory=lambda: secrets.token_hex(8))

    def function_key(self, consumer_name: str) -> str:
        return f"agentbus-fn-{consumer_name}-{self.token}"

    @property
    def scheduler_key(self) -> str:
        return f"agentbus-scheduler-{self.token}"

    def reserved_sources(self, manifest: Manifest) -> dict[str, str]:
        """Each reserved ``source`` -> the only access key id that may publish under it (as the stack's
        ``reserve_sources``: every consumer's source is its own, the deadline source is the scheduler's)."""
        owners = {consumer.source: self.function_key(consumer.name) for consumer in manifest.consumers}
        owners[DEADLINE_SOURCE] = self.scheduler_key
        return owners

    def session(self, session: Any, access_key: str) -> KeyedSession:
        return KeyedSession(session, access_key)


@dataclass(frozen=True)
class KeyedSession:
    """``session.client(...)`` signing with ``access_key``. The clients stay the session's own (its event
    hooks, such as the benchmark's call counter, see their calls); only their credentials differ."""

    session: Any
    access_key: str

    def client(self, service: str, **kwargs: Any) -> Any:
        return self.session.client(service, aws_access_key_id=self.access_key,
                                   aws_secret_access_key=self.access_key, **kwargs)
