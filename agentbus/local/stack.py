"""One local deployment: the endpoint, the provisioned topology and the runtime, started and stopped together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3

from agentbus.discovery import endpoint_session
from agentbus.local.principals import LocalPrincipals
from agentbus.local.provision import provision
from agentbus.local.runtime import LocalRuntime, RuntimeOptions
from agentbus.local.server import LocalEndpoint, SourceGuard
from agentbus.resources import LOCAL_REGION, Resources
from functions.common.spec import Manifest
from functions.manifest import MANIFEST


def local_session() -> boto3.session.Session:
    """A session in the local stack's region with the environment's keys or dummy ones, and no profile: the local
    endpoint accepts any keys, and no real account is touched (``discovery.endpoint_session``)."""
    return endpoint_session(LOCAL_REGION)


@dataclass
class LocalStack:
    port: int = 0
    host: str = "127.0.0.1"
    manifest: Manifest = MANIFEST
    options: RuntimeOptions = field(default_factory=RuntimeOptions)
    # The endpoint measures DynamoDB write units (``write_meter``): for the benchmark.
    meter_writes: bool = False
    # The endpoint is forked from the fork server (``LocalEndpoint``'s ``fork``): for a process starting many stacks.
    fork_endpoint: bool = False

    def __post_init__(self) -> None:
        self.session = local_session()
        # Each function and the scheduler call with keys of their own; the endpoint refuses a reserved
        # source from anyone else, as the bus policy does on AWS.
        self.principals = LocalPrincipals()
        guard = SourceGuard(self.manifest.bus_name, self.principals.reserved_sources(self.manifest))
        self.endpoint = LocalEndpoint(self.host, self.port, guard=guard, meter_writes=self.meter_writes,
                                      fork=self.fork_endpoint)
        self.resources: Resources | None = None
        self.runtime: LocalRuntime | None = None

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def started_resources(self) -> Resources:
        """``resources``, provisioned by ``start()``; RuntimeError before."""
        if self.resources is None:
            raise RuntimeError("the local stack is not started: it has no resources yet")
        return self.resources

    @property
    def started_runtime(self) -> LocalRuntime:
        """``runtime``, running since ``start()``; RuntimeError before."""
        if self.runtime is None:
            raise RuntimeError("the local stack is not started: it has no runtime yet")
        return self.runtime

    def client(self, service: str) -> Any:
        session: Any = self.session  # boto3-stubs resolve only a literal service name
        return session.client(service, endpoint_url=self.url)

    def start(self) -> LocalStack:
        self.endpoint.start()
        try:
            self.resources = provision(self.session, manifest=self.manifest, endpoint_url=self.url)
            self.runtime = LocalRuntime(self.url, self.resources, self.manifest, self.options, self.session,
                                        self.principals).start()
        except BaseException:
            self.endpoint.stop()
            raise
        return self

    def stop(self) -> None:
        if self.runtime:
            self.runtime.stop()
        self.endpoint.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
