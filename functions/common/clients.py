"""AWS clients, created once per process (cold start) and reused: connection reuse matters.

Functions take a ``Clients`` in ``build(settings, clients)``, so the local runtime and tests can hand
in clients bound to their own endpoint (or wrapped to inject faults). Only low-level clients are used:
they are thread-safe, boto3 resources are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Connections kept per client: more than the records one invocation handles at once (record_concurrency).
MAX_POOL_CONNECTIONS = 50
# Standard retry mode retries throttling and transient errors with backoff.
CLIENT_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=MAX_POOL_CONNECTIONS)


@dataclass(frozen=True)
class Clients:
    events: Any
    sqs: Any
    dynamodb: Any
    scheduler: Any
    # The claim-check bucket's (functions/common/claim_check.py); None where a test needs no S3.
    s3: Any = None

    @classmethod
    def create(cls, session: boto3.session.Session | None = None, endpoint_url: str | None = None,
               config: Config = CLIENT_CONFIG) -> Clients:
        """Clients for ``endpoint_url``, or for AWS_ENDPOINT_URL / the real services when it is None."""
        session = session or boto3.session.Session()
        kwargs: dict[str, Any] = {"config": config}
        if endpoint_url:
            kwargs["endpoint_url"] = endpoint_url
        return cls(
            events=session.client("events", **kwargs),
            sqs=session.client("sqs", **kwargs),
            dynamodb=session.client("dynamodb", **kwargs),
            scheduler=session.client("scheduler", **kwargs),
            s3=session.client("s3", **kwargs),
        )


@cache
def default_clients() -> Clients:
    return Clients.create()
