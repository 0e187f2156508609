"""Deadlines: one EventBridge Scheduler one-time schedule per workflow, putting
``Workflow Deadline Reached`` on the bus when it fires, named apart from every other workflow's (``schedule_name``).

moto stores these schedules but never fires them; the local runtime fires due ones itself from the
same fields (expression, target, input), so the shape below is the contract.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from functions.common.observability import logger
from functions.common.spec import DEADLINE_DETAIL_TYPE, DEADLINE_SOURCE

SCHEDULE_NAME_MAX = 64
_SCHEDULE_NAME_OK = re.compile(r"[0-9A-Za-z_.-]+")
HASHED_SCHEDULE_PREFIX = "_"


def at_expression(moment: datetime) -> str:
    """``at(2026-11-26T11:12:08)``: Scheduler's one-time expression, in UTC, to the second."""
    return f"at({moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec='seconds')})"


def schedule_name(workflow: str, workflow_id: str, workflows: Iterable[str] = ()) -> str:
    """The deadline schedule's name: readable when it can be, hashed when the id is long or has odd characters,
    or when the readable name could be another workflow's too (``workflows``: the manifest's names). With workflows
    ``a`` and ``a-b``, ``a`` + ``b-1`` and ``a-b`` + ``1`` both read ``a-b-1``: the second create found the
    first's schedule (a duplicate, it thought), which then fired for the first workflow only and was deleted by
    its finish, leaving the second without a deadline."""
    candidate = f"{workflow}-{workflow_id}"
    shared = any(other != workflow and candidate.startswith(f"{other}-") for other in workflows)
    if not shared and len(candidate) <= SCHEDULE_NAME_MAX and _SCHEDULE_NAME_OK.fullmatch(candidate):
        return candidate
    # A hashed name starts with "_", which no readable one does (it starts with the workflow's name, a lowercase
    # letter first): without it, an id whose readable name equalled another id's hashed name (``victim_1-<digest>``
    # of ``<workflow>-victim/1``, which anyone can compute) shared that request's schedule, and the first to
    # finish deleted the other's deadline (black-box pass 7B, F1).
    digest = hashlib.sha256(f"{workflow}\x00{workflow_id}".encode()).hexdigest()[:24]
    readable = re.sub(r"[^0-9A-Za-z_.-]+", "_", workflow_id)[: SCHEDULE_NAME_MAX - len(digest) - 2]
    return f"{HASHED_SCHEDULE_PREFIX}{readable}-{digest}"


def refire_name(name: str, at: datetime) -> str:
    """The name of the schedule that fires ``name``'s deadline again at ``at``, after it fired early: never ``name``
    itself. Scheduler deletes a one-time schedule with ``ActionAfterCompletion: DELETE`` "shortly after its last
    target invocation", and a schedule may be changed only before that: an update of the schedule that just fired
    could be deleted with it, and the workflow would never time out (review rev20b, M1). One name per firing time,
    so a schedule that fires early again is not updated either; a duplicate delivery of the early deadline finds
    the schedule it made (``create``). Hashed like a long id's name (``schedule_name``): it starts with ``_`` and
    cannot be a readable name."""
    digest = hashlib.sha256(f"{name}\x00{at_expression(at)}".encode()).hexdigest()[:24]
    readable = name.removeprefix(HASHED_SCHEDULE_PREFIX)[: SCHEDULE_NAME_MAX - len(digest) - 4]
    return f"{HASHED_SCHEDULE_PREFIX}{readable}-r-{digest}"


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class DeadlineScheduler:
    def __init__(self, client: Any, group_name: str, target_arn: str | Callable[[], str], role_arn: str,
                 dead_letter_arn: str | None = None):
        """``target_arn`` is the bus ARN, or a function that finds it (called once, when first needed).

        ``dead_letter_arn``: an SQS queue where Scheduler puts a deadline it could not deliver to the bus
        (the deployed stack's ``DEADLINE_DEAD_LETTER_ARN``); without it such a deadline is dropped.
        """
        self.client = client
        self.group_name = group_name
        self._target_arn = target_arn
        self.role_arn = role_arn
        self.dead_letter_arn = dead_letter_arn

    @property
    def target_arn(self) -> str:
        if callable(self._target_arn):
            self._target_arn = self._target_arn()
        return self._target_arn

    def request(self, name: str, at: datetime, detail: dict[str, Any]) -> dict[str, Any]:
        target: dict[str, Any] = {
            "Arn": self.target_arn,
            "RoleArn": self.role_arn,
            "Input": json.dumps(detail, separators=(",", ":")),
            "EventBridgeParameters": {"DetailType": DEADLINE_DETAIL_TYPE, "Source": DEADLINE_SOURCE},
        }
        if self.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self.dead_letter_arn}
        return {
            "Name": name,
            "GroupName": self.group_name,
            "ScheduleExpression": at_expression(at),
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "State": "ENABLED",
            "Description": f"deadline of workflow {detail.get('workflow')} {detail.get('workflow_id')}"[:512],
            "Target": target,
        }

    def create(self, name: str, at: datetime, detail: dict[str, Any]) -> bool:
        """Create the schedule; False if it exists already (a duplicate trigger). A schedule of that name that is
        not this deadline (someone's own, created in the group under the name; black-box pass 9D, F7: the
        workflow then never timed out, and its finish deleted the other's schedule) is replaced by the deadline."""
        request = self.request(name, at, detail)
        try:
            self.client.create_schedule(**request)
        except ClientError as error:
            if _code(error) != "ConflictException":
                raise
            if self._is_this_deadline(name, request["Target"]):
                return False
            logger.warning("a schedule that is not this deadline had its name: replaced by the deadline",
                           extra={"schedule": name})
            self.client.update_schedule(**request)
        logger.info("deadline scheduled", extra={"schedule": name, "at": at_expression(at)})
        return True

    def _is_this_deadline(self, name: str, target: dict[str, Any]) -> bool:
        try:
            existing = self.client.get_schedule(Name=name, GroupName=self.group_name)
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                return True  # fired and deleted itself since: nothing to replace
            raise
        theirs = existing.get("Target") or {}
        return bool(theirs.get("Arn") == target["Arn"] and theirs.get("Input") == target["Input"]
                and theirs.get("EventBridgeParameters") == target["EventBridgeParameters"]
                and existing.get("State", "ENABLED") == "ENABLED")

    def rearm(self, name: str, at: datetime, detail: dict[str, Any]) -> None:
        """Fire at ``at`` instead: a deadline moved out before its schedule fired (a person was asked for). Updated
        if it still exists, created again if it is gone (it fired early and deleted itself: ``refire`` made
        another, which then fires, finds the deadline moved out, and fires again at it)."""
        request = self.request(name, at, detail)
        try:
            self.client.update_schedule(**request)
        except ClientError as error:
            if _code(error) != "ResourceNotFoundException":
                raise
            self.create(name, at, detail)
        logger.info("deadline re-armed", extra={"schedule": name, "at": at_expression(at)})

    def refire(self, name: str, at: datetime, detail: dict[str, Any]) -> str:
        """Fire again at ``at``: schedule ``name`` fired before the deadline (Scheduler fires a one-time schedule
        anywhere in its minute). A new schedule (``refire_name``), not an update of the one that fired; returns its
        name. The finish does not delete it: it fires, finds the workflow finished, and changes nothing."""
        again = refire_name(name, at)
        self.create(again, at, detail)
        logger.info("deadline fired early: fires again", extra={"schedule": name, "again": again,
                                                                 "at": at_expression(at)})
        return again

    def delete(self, name: str) -> bool:
        """Delete the schedule; False if it is gone already (fired, or deleted by an earlier attempt)."""
        try:
            self.client.delete_schedule(Name=name, GroupName=self.group_name)
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                return False
            raise
        return True
