"""The manifest the core's tests were written for: the shipped one, each shipped workflow with only the agents
those tests name.

The coordinator's, the demo's and the benchmark's tests drive the shipped workflows (their triggers, sample
events and tables) and expect their agents: an order completes once fraud, inventory and shipping have
answered. A user adds agents to those workflows (README "Add an agent"); the core's tests should not change
with it, so they load this manifest instead of ``functions.manifest``: the shipped workflows as they are
(built from the same ``workflow.py`` files, nothing copied), less any agent a user added. An agent of
``AGENTS`` gone from the shipped workflow (renamed or removed) fails at import, naming it.

Functions built from it find it again through ``AGENTBUS_MANIFEST`` (``IMPORT_PATH``). Tests of one agent
(its handler on moto) keep the shipped manifest, which has that agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from functions.common.spec import Manifest
from functions.manifest import MANIFEST as SHIPPED

IMPORT_PATH = "tests.pinned:MANIFEST"

# Per shipped workflow, the agents the core's tests were written for, in the manifest's order.
AGENTS: Mapping[str, tuple[str, ...]] = {
    "order-fulfillment": ("fraud", "inventory", "shipping"),
    "access-request": ("identity", "policy", "risk"),
    "new-user-audit": ("security-audit",),
}


def pinned(manifest: Manifest, agents: Mapping[str, tuple[str, ...]] = AGENTS,
           import_path: str = IMPORT_PATH) -> Manifest:
    """``manifest`` with each workflow named in ``agents`` cut down to those agents (any other workflow as is)."""
    missing = sorted(set(agents) - {w.name for w in manifest.workflows})
    if missing:
        raise RuntimeError(f"tests/pinned.py: the manifest has no workflow {', '.join(missing)} any more; the core's "
                           "tests were written for it: update AGENTS and the tests that name it")
    workflows = []
    for workflow in manifest.workflows:
        keep = agents.get(workflow.name)
        if keep is None:
            workflows.append(workflow)
            continue
        gone = [name for name in keep if name not in {a.name for a in workflow.agents}]
        if gone:
            raise RuntimeError(f"tests/pinned.py: workflow {workflow.name!r} has no agent {', '.join(gone)} any more; "
                               f"the core's tests were written for its agents {', '.join(keep)}: update AGENTS "
                               "and the tests that name them")
        workflows.append(replace(workflow, agents=tuple(a for a in workflow.agents if a.name in keep)))
    return replace(manifest, workflows=tuple(workflows), import_path=import_path)


MANIFEST = pinned(SHIPPED)
