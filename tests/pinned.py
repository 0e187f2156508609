"""The manifest the core's tests were written for: the shipped workflows, each with only the agents those tests
name (a workflow a user added is left out).

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
    """``manifest``'s workflows named in ``agents``, each cut down to those agents, and the tables they use. A
    workflow a user added (README "Add a workflow") is left out with the tables only it uses: the core's tests do
    not change with it either, and the test-only workflows added to this manifest (``tests/workflows``) cannot
    clash with its names (a user's ``expense`` workflow with a ``budget`` agent made the test-only manifest
    invalid, failing tests the user never touched). One test still needs the user's names apart from the
    test-only ones: ``tests/integration/test_cli_other_manifest.py`` runs the shipped CLI against a stack of them,
    and says so, naming the clash, when the shipped manifest uses one of their names."""
    missing = sorted(set(agents) - {w.name for w in manifest.workflows})
    if missing:
        raise RuntimeError(f"tests/pinned.py: the manifest has no workflow {', '.join(missing)} any more; the core's "
                           "tests were written for it: update AGENTS and the tests that name it")
    workflows = []
    for workflow in manifest.workflows:
        keep = agents.get(workflow.name)
        if keep is None:
            continue
        gone = [name for name in keep if name not in {a.name for a in workflow.agents}]
        if gone:
            raise RuntimeError(f"tests/pinned.py: workflow {workflow.name!r} has no agent {', '.join(gone)} any more; "
                               f"the core's tests were written for its agents {', '.join(keep)}: update AGENTS "
                               "and the tests that name them")
        workflows.append(replace(workflow, agents=tuple(a for a in workflow.agents if a.name in keep)))
    used = {table for workflow in workflows for agent in workflow.agents for table in agent.tables}
    used |= {workflow.projection.table for workflow in workflows if workflow.projection}
    return replace(manifest, workflows=tuple(workflows), tables=tuple(t for t in manifest.tables
                                                                     if t.logical_name in used),
                   import_path=import_path)


MANIFEST = pinned(SHIPPED)
