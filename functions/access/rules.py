"""The access policy as data: ``rules.json`` beside this module, validated when it is loaded (cold start).

- ``resources``: each resource's sensitivity (``low|medium|high``) — the risk agent scores it;
- ``roles``: role -> resource -> the highest access level the role may be granted there — the policy agent
  checks it. Levels are ordered ``read < write < admin``; a role allowed ``write`` may also ``read``.

Changing who may access what is an edit of ``rules.json``, not of code.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from functions.access.models import ACCESS_LEVELS, AccessLevel
from functions.common.models import NonEmpty, describe_validation_error

RULES_FILE = Path(__file__).with_name("rules.json")

Sensitivity = Literal["low", "medium", "high"]


class Resource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sensitivity: Sensitivity


class AccessRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    resources: dict[NonEmpty, Resource]
    roles: dict[NonEmpty, dict[NonEmpty, AccessLevel]]

    @model_validator(mode="after")
    def _roles_name_known_resources(self) -> AccessRules:
        for role, grants in self.roles.items():
            unknown = sorted(set(grants) - set(self.resources))
            if unknown:
                raise ValueError(f"role {role!r} names unknown resource(s) {', '.join(unknown)}")
        return self

    def sensitivity(self, resource: str) -> Sensitivity | None:
        """The resource's sensitivity, None for a resource the policy does not know."""
        known = self.resources.get(resource)
        return known.sensitivity if known else None

    def highest_level(self, role: str, resource: str) -> AccessLevel | None:
        """The highest level ``role`` may have on ``resource``; None when it may have none."""
        return self.roles.get(role, {}).get(resource)

    @staticmethod
    def permits(allowed: AccessLevel | None, requested: AccessLevel) -> bool:
        return allowed is not None and ACCESS_LEVELS.index(requested) <= ACCESS_LEVELS.index(allowed)


def parse_rules(text: str, origin: str = "rules") -> AccessRules:
    try:
        return AccessRules.model_validate_json(text)
    except ValidationError as error:
        raise ValueError(f"{origin} is not a valid access policy: {describe_validation_error(error)}") from None


@cache
def load_rules(path: Path = RULES_FILE) -> AccessRules:
    return parse_rules(path.read_text(encoding="utf-8"), str(path))
