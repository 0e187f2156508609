"""An ``id_field`` its trigger model lacks is refused where a manifest is first read: synth and the coordinator's
cold start too, not only the agents' (they would otherwise dead-letter every request, blaming the event)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from functions.common.clients import Clients
from functions.coordinator.handler import build
from infrastructure.stack import StackConfig
from tests.conftest import settings_for
from tests.pinned import MANIFEST

ORDERS = MANIFEST.workflow("order-fulfillment")
WRONG = replace(MANIFEST, workflows=tuple(replace(w, trigger=replace(w.trigger, id_field="orderId")) if w is ORDERS
                                          else w for w in MANIFEST.workflows))
NAMED = "workflow 'order-fulfillment': id_field 'orderId' is not a field of its trigger model OrderPlaced"


def test_synth_refuses_it_naming_the_workflow_and_the_field():
    StackConfig(bus_name="agentbus").validate(MANIFEST)
    with pytest.raises(ValueError, match=NAMED):
        StackConfig(bus_name="agentbus").validate(WRONG)


def test_the_coordinator_refuses_it_at_cold_start(aws):
    session, resources = aws
    settings = settings_for(resources, "coordinator", MANIFEST)
    build(settings, Clients.create(session))
    wrong = replace(settings, manifest_path=f"{__name__}:WRONG")
    with pytest.raises(ValueError, match=NAMED):
        build(wrong, Clients.create(session))
