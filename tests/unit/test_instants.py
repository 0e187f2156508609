"""Times with an offset that Python cannot turn into UTC are refused at validation, naming the field.

``0001-01-01T00:00:00+14:00`` and ``9999-12-31T23:59:59-14:00`` are valid ISO-8601 with an offset, but their
UTC falls outside years 1 to 9999: the risk and security-audit agents (business hours, in UTC) raised
OverflowError on every receive, were retried 5 times and dead-lettered with a reason naming no field, and the
access request timed out instead of being REJECTED naming ``requested_at`` (found by a black-box run).
"""

from __future__ import annotations

import json

import pytest

from functions.access.business_hours import outside_business_hours
from functions.access.models import AccessRequested
from functions.common.dead_letters import PoisonMessage
from functions.common.models import validate
from functions.directory.models import UserCreated
from tests.conftest import load_entries

OUT_OF_UTC = ["0001-01-01T00:00:00+14:00", "0001-01-01T13:59:59+14:00", "9999-12-31T23:59:59-14:00",
              "9999-12-31T10:00:01-14:00"]
EDGES = ["0001-01-01T00:00:00+00:00", "0001-01-01T14:00:00+14:00", "9999-12-31T23:59:59Z",
         "9999-12-31T09:59:59-14:00"]


def sample(name: str) -> dict:
    [entry] = load_entries(name)
    return json.loads(entry["Detail"])


@pytest.mark.parametrize(("model", "file", "field"), [(AccessRequested, "access-requested.json", "requested_at"),
                                                      (UserCreated, "user-created.json", "created_at")])
@pytest.mark.parametrize("moment", OUT_OF_UTC)
def test_a_time_whose_utc_is_outside_the_calendar_is_refused_naming_the_field(model, file, field, moment):
    with pytest.raises(PoisonMessage, match=f"{field}.*exists in UTC"):
        validate(model, {**sample(file), field: moment})


@pytest.mark.parametrize(("model", "file", "field"), [(AccessRequested, "access-requested.json", "requested_at"),
                                                      (UserCreated, "user-created.json", "created_at")])
@pytest.mark.parametrize("moment", EDGES)
def test_the_calendars_edges_are_accepted_and_judged_in_business_hours(model, file, field, moment):
    parsed = validate(model, {**sample(file), field: moment})
    outside_business_hours(getattr(parsed, field))  # no OverflowError
