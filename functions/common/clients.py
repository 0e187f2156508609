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
# A call that stalls (a half-open connection, a slow endpoint) is cut short and retried on a new connection
# within the invocation. botocore's defaults (60 s to connect, 60 s per read, each attempt) outlast a 30 s
# function: the invocation timed out, its whole batch failed without the retry back-off and came back after
# the 180 s visibility timeout, past a 120 s deadline. Every call the functions make (DynamoDB, EventBridge, SQS,
# Scheduler, S3 objects up to a few MB) answers in well under READ_TIMEOUT_S on AWS; standard retry mode still
# retries throttling and transient errors, with jittered back-off, in CALL_ATTEMPTS attempts in all (botocore's
# default was 5 retries, 6 attempts): a record whose call still fails gets its own back-off (consumer.RetryBackoff,
# 2 to 16 s) and up to maxReceiveCount receives, rather than spending the invocation's time.
CONNECT_TIMEOUT_S = 2
READ_TIMEOUT_S = 5
CALL_ATTEMPTS = 3
# The longest one call can take, attempts and standard mode's back-off (at most 2**attempt s) included: it must
# leave the function time to report the record's failure (tests/unit/test_clients.py checks the default timeout).
CALL_BOUND_S = CALL_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + sum(2 ** n for n in range(CALL_ATTEMPTS - 1))
CLIENT_CONFIG = Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S, tcp_keepalive=True,
                       retries={"total_max_attempts": CALL_ATTEMPTS, "mode": "standard"},
                       max_pool_connections=MAX_POOL_CONNECTIONS)
# The local runtime's endpoint (moto on one process) queues requests under load, and its poller long-polls for
# up to 20 s: there a slow answer is a busy emulator, not a stalled connection, and is waited for.
LOCAL_CLIENT_CONFIG = CLIENT_CONFIG.merge(Config(connect_timeout=60, read_timeout=60,
                                                 retries={"total_max_attempts": 6, "mode": "standard"}))


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
