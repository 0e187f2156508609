"""Each function's environment contract, written and read here only.

``function_environment(...)`` is the one writer: the CDK stack (``infrastructure/``) and the local runtime
(``agentbus/local``) both call it, so a function gets the same variables on AWS and on a laptop, and only
those it uses: its tables (``TABLE_<LOGICAL_NAME>``), its manifest parameters, for the coordinator the
scheduler's settings, and, only when a model is turned on and only for an agent that declares a reasoner,
``REASONER`` and ``MODEL_ID``. ``Settings.from_env`` is the one reader, at cold start: a missing or malformed variable
fails there, with a message naming it. Nothing has a placeholder default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from functions.common.spec import (
    DEFAULT_MANIFEST,
    MANIFEST_VARIABLE,
    MAX_WAIT_S,
    Agent,
    Consumer,
    Manifest,
    check_model_id,
    load_manifest,
)

FUNCTION = "AGENTBUS_FUNCTION"
EVENT_BUS_NAME = "EVENT_BUS_NAME"
EVENT_BUS_ARN = "EVENT_BUS_ARN"
DEAD_LETTER_QUEUE_URL = "DEAD_LETTER_QUEUE_URL"
RECORD_CONCURRENCY = "RECORD_CONCURRENCY"
MAX_RECEIVE_COUNT = "MAX_RECEIVE_COUNT"
SCHEDULE_GROUP = "SCHEDULE_GROUP"
SCHEDULER_ROLE_ARN = "SCHEDULER_ROLE_ARN"
SCHEDULE_DEAD_LETTER_ARN = "DEADLINE_DEAD_LETTER_ARN"
DEADLINE_SECONDS = "DEADLINE_SECONDS"
EXTERNAL_WAIT_SECONDS = "EXTERNAL_WAIT_SECONDS"
SIMULATED_WORK_MS = "SIMULATED_WORK_MS"
TABLE_PREFIX = "TABLE_"
# The stack's claim-check bucket, and the entry size above which a detail goes there (functions/common/
# claim_check.py); the threshold defaults to claim_check.DEFAULT_THRESHOLD_BYTES.
CLAIM_CHECK_BUCKET = "CLAIM_CHECK_BUCKET"
CLAIM_CHECK_THRESHOLD_BYTES = "CLAIM_CHECK_THRESHOLD_BYTES"
DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES = 200 * 1024
# EventBridge's PutEvents entry limit: a threshold above it would never offload anything in time.
MAX_CLAIM_CHECK_THRESHOLD_BYTES = 256 * 1024
# The one switch that turns a model on (functions/common/reasoner.py), and the model or inference profile.
REASONER = "REASONER"
MODEL_ID = "MODEL_ID"
REASONERS = ("bedrock",)
SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
# Set by the stack (infrastructure/stack.py), per stage; the local runtime leaves Powertools' default.
METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
# Every variable function_environment (and the stack) writes: a manifest parameter of one of these names would
# override it or be overridden (Manifest.check refuses them, and any TABLE_... name).
OWN_VARIABLES = frozenset({
    FUNCTION, MANIFEST_VARIABLE, EVENT_BUS_NAME, EVENT_BUS_ARN, DEAD_LETTER_QUEUE_URL, RECORD_CONCURRENCY,
    MAX_RECEIVE_COUNT, SCHEDULE_GROUP, SCHEDULER_ROLE_ARN, SCHEDULE_DEAD_LETTER_ARN, DEADLINE_SECONDS,
    EXTERNAL_WAIT_SECONDS, SIMULATED_WORK_MS, CLAIM_CHECK_BUCKET, CLAIM_CHECK_THRESHOLD_BYTES, REASONER, MODEL_ID,
    SERVICE_NAME, METRICS_NAMESPACE,
})


class SettingsError(ValueError):
    """A function's environment is missing or malforms a variable; the message names it."""


def table_variable(logical_name: str) -> str:
    """``"main-records"`` -> ``"TABLE_MAIN_RECORDS"``."""
    return TABLE_PREFIX + logical_name.upper().replace("-", "_")


def reasoner_environment(consumer: Consumer, reasoner: str | None, model_id: str | None) -> dict[str, str]:
    """``REASONER`` and ``MODEL_ID`` for an agent that declares a reasoner, when ``reasoner`` turns models on;
    nothing otherwise. The agent's own ``model_id`` wins over the deployment's."""
    if reasoner is None:
        if model_id:
            raise SettingsError(f"a model_id ({model_id!r}) without a reasoner turns nothing on: "
                                f"give reasoner={REASONERS[0]} too")
        return {}
    if reasoner not in REASONERS:
        raise SettingsError(f"unknown reasoner {reasoner!r}: the one known is {', '.join(REASONERS)} "
                            "(leave it out for rules only)")
    if not isinstance(consumer, Agent) or consumer.reasoner is None:
        return {}
    chosen = consumer.reasoner.model_id or model_id
    if not chosen:
        raise SettingsError(f"{consumer.name}: reasoner={reasoner} needs a model_id (a Bedrock model id or "
                            "inference profile id), and its manifest entry names none")
    try:
        check_model_id(chosen)
    except ValueError as error:
        raise SettingsError(str(error)) from None
    return {REASONER: reasoner, MODEL_ID: chosen}


def function_environment(
    consumer: Consumer,
    manifest: Manifest,
    *,
    bus_name: str,
    bus_arn: str,
    tables: Mapping[str, str],
    dead_letter_queue_url: str,
    schedule_group: str | None = None,
    scheduler_role_arn: str | None = None,
    schedule_dead_letter_arn: str | None = None,
    parameters: Mapping[str, str] | None = None,
    deadline_seconds: int | None = None,
    external_wait_seconds: int | None = None,
    claim_check_bucket: str | None = None,
    claim_check_threshold: int | None = None,
    reasoner: str | None = None,
    model_id: str | None = None,
) -> dict[str, str]:
    """The variables ``consumer``'s function gets (values may be CDK tokens). ``tables`` maps every logical
    table name to its physical name; ``parameters`` overrides the manifest's parameter defaults by env name;
    ``claim_check_bucket`` is the stack's claim-check bucket (every function reads it, each writes its own
    prefix), ``claim_check_threshold`` overrides the default threshold in bytes; ``reasoner`` (``"bedrock"``)
    and ``model_id`` turn a model on for the agents that declare a reasoner."""
    environment = {
        FUNCTION: consumer.name,
        MANIFEST_VARIABLE: manifest.import_path,
        EVENT_BUS_NAME: bus_name,
        DEAD_LETTER_QUEUE_URL: dead_letter_queue_url,
        RECORD_CONCURRENCY: str(consumer.record_concurrency),
        MAX_RECEIVE_COUNT: str(consumer.max_receive_count),
        SERVICE_NAME: consumer.name,
    }
    if claim_check_bucket:
        environment[CLAIM_CHECK_BUCKET] = claim_check_bucket
    if claim_check_threshold is not None:
        environment[CLAIM_CHECK_THRESHOLD_BYTES] = str(claim_check_threshold)
    for logical_name in consumer.tables:
        environment[table_variable(logical_name)] = tables[logical_name]
    overrides = parameters or {}
    for parameter in consumer.parameters:
        environment[parameter.env] = str(overrides.get(parameter.env, parameter.default))
    if consumer.schedules:
        if not (schedule_group and scheduler_role_arn):
            raise SettingsError(f"{consumer.name}: a scheduling function needs a schedule group and a scheduler role")
        environment.update({EVENT_BUS_ARN: bus_arn, SCHEDULE_GROUP: schedule_group,
                            SCHEDULER_ROLE_ARN: scheduler_role_arn})
        if schedule_dead_letter_arn:
            environment[SCHEDULE_DEAD_LETTER_ARN] = schedule_dead_letter_arn
        if deadline_seconds is not None:
            environment[DEADLINE_SECONDS] = str(deadline_seconds)
        if external_wait_seconds is not None:
            environment[EXTERNAL_WAIT_SECONDS] = str(external_wait_seconds)
    environment.update(reasoner_environment(consumer, reasoner, model_id))
    return environment


@dataclass(frozen=True)
class Settings:
    function: str
    event_bus_name: str
    manifest_path: str = DEFAULT_MANIFEST
    # This function's own dead-letter queue: poison messages go there with their reason.
    dead_letter_queue_url: str | None = None
    # How many records of one SQS batch are processed at once (the manifest's record_concurrency).
    record_concurrency: int = 1
    # The queue's maxReceiveCount: on the last receive a failing record is dead-lettered with its error.
    max_receive_count: int | None = None
    tables: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)
    # The coordinator's (a function with ``schedules``).
    event_bus_arn: str | None = None
    schedule_group: str | None = None
    scheduler_role_arn: str | None = None
    schedule_dead_letter_arn: str | None = None
    # Overrides every workflow's deadline (local runs, tests).
    deadline_seconds: int | None = None
    # Overrides every external agent's wait (a person's time to answer), e.g. shorter locally.
    external_wait_seconds: int | None = None
    # Benchmark-only: simulated work time per agent, e.g. "checker=300,scorer=100".
    simulated_work_ms: dict[str, int] | None = None
    # The stack's claim-check bucket (None: nothing is offloaded, and a reference cannot be resolved).
    claim_check_bucket: str | None = None
    # An entry larger than this (bytes, as EventBridge measures it) has its detail stored as a claim check.
    claim_check_threshold: int = DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES
    # A model this agent consults ("bedrock"), and which: None = rules only (the default).
    reasoner: str | None = None
    model_id: str | None = None

    @property
    def manifest(self) -> Manifest:
        return load_manifest(self.manifest_path)

    @property
    def consumer(self) -> Consumer:
        return self.manifest.consumer(self.function)

    def table(self, logical_name: str) -> str:
        try:
            return self.tables[logical_name]
        except KeyError:
            raise SettingsError(f"{self.function}: no table {logical_name!r} in its environment "
                                f"({table_variable(logical_name)}); declare it in the manifest's tables "
                                "of this function") from None

    def parameter(self, env: str) -> str:
        try:
            return self.parameters[env]
        except KeyError:
            raise SettingsError(f"{self.function}: no parameter {env} in its environment; declare it in the "
                                "manifest's parameters of this function") from None

    def require(self, attribute: str) -> Any:
        value = getattr(self, attribute)
        if value in (None, ""):
            raise SettingsError(f"{self.function}: {attribute.upper()} is not set")
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Parse and validate the environment of the function it names (``AGENTBUS_FUNCTION``)."""
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = (env.get(name) or "").strip()
            if not value:
                raise SettingsError(f"{name} is not set: every agentbus function needs it "
                                    "(the CDK stack and the local runtime set it)")
            return value

        def integer(name: str, minimum: int = 1, maximum: int | None = None) -> int | None:
            value = (env.get(name) or "").strip()
            if not value:
                return None
            try:
                number = int(value)
            except ValueError:
                raise SettingsError(f"{name} must be a whole number, got {value!r}") from None
            if number < minimum:
                raise SettingsError(f"{name} must be >= {minimum}, got {value!r}")
            if maximum is not None and number > maximum:
                raise SettingsError(f"{name} must be <= {maximum}, got {value!r}")
            return number

        function = required(FUNCTION)
        manifest_path = (env.get(MANIFEST_VARIABLE) or "").strip() or DEFAULT_MANIFEST
        try:
            manifest = load_manifest(manifest_path)
            consumer = manifest.consumer(function)
        except (ValueError, KeyError) as error:
            raise SettingsError(f"{FUNCTION}={function!r} / {MANIFEST_VARIABLE}={manifest_path!r}: "
                                f"{str(error).strip(chr(34) + chr(39))}") from None
        tables = {logical: required(table_variable(logical)) for logical in consumer.tables}
        parameters: dict[str, str] = {}
        for parameter in consumer.parameters:
            value = required(parameter.env)
            try:
                parameter.validate(value)
            except ValueError as error:
                raise SettingsError(str(error)) from None
            parameters[parameter.env] = value
        try:
            work = parse_work_profile(env.get(SIMULATED_WORK_MS, ""))
        except ValueError as error:
            raise SettingsError(str(error)) from None
        bucket = (env.get(CLAIM_CHECK_BUCKET) or "").strip() or None
        if bucket is not None and (any(c.isspace() for c in bucket) or "/" in bucket or ":" in bucket):
            raise SettingsError(f"{CLAIM_CHECK_BUCKET} must be a bucket name (not an ARN or s3:// URL), "
                                f"got {bucket!r}")
        threshold = integer(CLAIM_CHECK_THRESHOLD_BYTES) or DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES
        if threshold > MAX_CLAIM_CHECK_THRESHOLD_BYTES:
            raise SettingsError(f"{CLAIM_CHECK_THRESHOLD_BYTES} must be <= {MAX_CLAIM_CHECK_THRESHOLD_BYTES} "
                                f"(EventBridge's entry limit), got {threshold}")
        reasoner = (env.get(REASONER) or "").strip() or None
        model_id = (env.get(MODEL_ID) or "").strip() or None
        if reasoner is not None or model_id is not None:
            if reasoner not in REASONERS:
                raise SettingsError(f"{REASONER} must be one of {', '.join(REASONERS)} when set, got {reasoner!r}"
                                    + (f" (with {MODEL_ID}={model_id!r})" if reasoner is None else ""))
            if not isinstance(consumer, Agent) or consumer.reasoner is None:
                raise SettingsError(f"{REASONER}={reasoner}: {function!r} declares no reasoner in the manifest")
            if model_id is None:
                raise SettingsError(f"{MODEL_ID} is not set: {REASONER}={reasoner} needs the model or inference "
                                    "profile id")
            try:
                check_model_id(model_id)
            except ValueError as error:
                raise SettingsError(f"{MODEL_ID}: {error}") from None
        settings = cls(
            function=function,
            event_bus_name=required(EVENT_BUS_NAME),
            manifest_path=manifest_path,
            dead_letter_queue_url=(env.get(DEAD_LETTER_QUEUE_URL) or "").strip() or None,
            record_concurrency=integer(RECORD_CONCURRENCY) or 1,
            max_receive_count=integer(MAX_RECEIVE_COUNT),
            tables=tables,
            parameters=parameters,
            # Bounded as the CLI and the context keys are: a deadline past what dates can hold fails every record.
            deadline_seconds=integer(DEADLINE_SECONDS, maximum=MAX_WAIT_S),
            external_wait_seconds=integer(EXTERNAL_WAIT_SECONDS, maximum=MAX_WAIT_S),
            simulated_work_ms=work,
            claim_check_bucket=bucket,
            claim_check_threshold=threshold,
            reasoner=reasoner,
            model_id=model_id,
        )
        if consumer.schedules:
            from dataclasses import replace

            settings = replace(
                settings,
                event_bus_arn=required(EVENT_BUS_ARN),
                schedule_group=required(SCHEDULE_GROUP),
                scheduler_role_arn=required(SCHEDULER_ROLE_ARN),
                schedule_dead_letter_arn=(env.get(SCHEDULE_DEAD_LETTER_ARN) or "").strip() or None,
            )
        return settings


def parse_work_profile(text: str) -> dict[str, int] | None:
    """``"checker=300,scorer=100"`` -> ``{"checker": 300, "scorer": 100}``; empty -> None."""
    if not text.strip():
        return None
    profile: dict[str, int] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise ValueError(f"SIMULATED_WORK_MS entries look like name=milliseconds, got {part!r}")
        profile[name.strip()] = int(value)
    return profile


@cache
def settings() -> Settings:
    return Settings.from_env()
