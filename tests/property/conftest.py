"""The property tests' environment: one in-process moto with the topology provisioned, for the whole module.

Provisioning takes 0.2-0.9 s, so it is done once and every example works in its own namespace (its own
order ids and SKUs); the checks read only that namespace. moto's performance patches (the ones the local
endpoint applies, ``agentbus/local/moto_speedups.py``: same responses, same state) are applied too: the
workflow records are large, and moto's generic serializer spends ~10 ms on each read of one.
"""

from __future__ import annotations

import boto3
import pytest


@pytest.fixture(scope="module")
def topology():
    """(session, resources) of a moto backend with the whole topology provisioned; shared by a module."""
    from moto import mock_aws

    from agentbus.local import moto_speedups
    from agentbus.local.provision import provision

    moto_speedups.apply()
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        # The shipped workflows and the test-only ones (a k-of-n quorum among them).
        from tests.workflows.manifest import MANIFEST

        yield session, provision(session, manifest=MANIFEST)
