"""boto3 clients, created once per process (cold start) and reused: connection reuse matters."""

from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

# Standard retry mode retries throttling and transient errors with backoff; the endpoint comes from
# AWS_ENDPOINT_URL when set (the local runtime), else the real service.
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=50)


@cache
def client(service: str):
    return boto3.session.Session().client(service, config=_CONFIG)


@cache
def resource(service: str):
    return boto3.session.Session().resource(service, config=_CONFIG)
