"""`agentbus bench`'s entry point: what it refuses before starting anything."""

from __future__ import annotations

import pytest

from agentbus import bench
from agentbus.bench import (
    coordinated_workflows,
)
from functions.manifest import MANIFEST


def test_bench_takes_coordinated_workflows_only_with_a_clear_error():
    assert [w.name for w in coordinated_workflows(MANIFEST)] == ["order-fulfillment", "access-request"]
    assert [w.name for w in coordinated_workflows(MANIFEST, ["access-request"])] == ["access-request"]
    with pytest.raises(ValueError, match="'new-user-audit' is standalone.*order-fulfillment, access-request"):
        coordinated_workflows(MANIFEST, ["new-user-audit"])
    with pytest.raises(ValueError, match="unknown workflow 'nope'"):
        coordinated_workflows(MANIFEST, ["nope"])
    with pytest.raises(SystemExit, match="agentbus bench: unknown workflow 'nope'"):
        bench.run_bench(workflows=["nope"])
