"""The local runtime: plays Lambda's SQS poller for every function of the manifest, and EventBridge
Scheduler's firing of one-time schedules, against a local AWS endpoint.

Everything else is the real thing on the emulator: rules deliver to queues, queues redrive to DLQs after
``maxReceiveCount`` receives, functions write DynamoDB and publish to the bus. The poller emulates what
Lambda's event source mapping does: batches of up to ``batch_size`` messages, bounded concurrency per
function, partial batch responses (successes deleted, failures left for another receive), and honours the
agent's paused state (``agentbus agent pause``) from the moment it is set. Each function, and the scheduler's
firing, calls the endpoint with an access key id of its own (``principals.py``), as each runs under its own
role on AWS: the endpoint refuses a reserved source from anyone else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import boto3
from botocore.config import Config

from agentbus.control import PAUSED_TAG
from agentbus.local.chaos import COPY_ATTRIBUTES, Chaos, InjectedCrash, is_copy
from agentbus.local.lambda_events import LambdaContext, sqs_event_from_messages
from agentbus.local.principals import LocalPrincipals
from agentbus.local.server import wake_polls
from agentbus.resources import Resources
from functions.common.clients import LOCAL_CLIENT_CONFIG, MAX_POOL_CONNECTIONS, Clients
from functions.common.observability import metrics
from functions.common.settings import CLAIM_CHECK_THRESHOLD_BYTES, SIMULATED_WORK_MS, Settings
from functions.common.spec import Consumer, Manifest, handler_problem
from functions.manifest import MANIFEST

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]  # (event, context) -> response

log = logging.getLogger("agentbus.runtime")


@dataclass
class RuntimeOptions:
    deadline_seconds: int | None = None
    # How long a workflow waits for a person (every external agent's wait_s); None: the manifest's.
    external_wait_seconds: int | None = None
    simulated_work_ms: dict[str, int] | None = None
    # Manifest parameters by environment variable name (``Parameter.env``), over the manifest's defaults.
    parameters: dict[str, str] = field(default_factory=dict)
    chaos: Chaos | None = None
    # Long-poll wait of each receive, as Lambda's pollers wait (20 s): a receive comes back empty only after that
    # long without a message, so empty receives are as few as on AWS. The endpoint spends it outside its lock;
    # ``stop`` ends the waiting polls at once (``server.wake_polls``).
    poll_wait_s: int = 20
    # Locally a failed message comes back after this many seconds (on AWS: after the function's retry back-off,
    # functions/common/consumer.py, which also sets it locally: this runtime's call comes after it and wins).
    retry_after_s: int = 1
    schedule_poll_s: float = 0.25
    pause_check_s: float = 0.5
    # Entry size above which a detail goes to the claim-check bucket (None: the functions' default, 200 KB).
    claim_check_threshold_bytes: int | None = None


@dataclass
class ConsumerStats:
    invocations: int = 0
    records: int = 0
    failed_records: int = 0
    crashed_invocations: int = 0
    busy_ms: float = 0.0
    # CPU time of the invoking thread: all of the handler's when its records run in that thread (one record,
    # or ``record_concurrency`` 1), a lower bound otherwise (concurrent records run in pool threads).
    cpu_ms: float = 0.0
    # ``ceil(records / record_concurrency)`` per invocation: how many records' times an invocation lasts.
    rounds: int = 0
    # Records received again (``ApproximateReceiveCount`` > 1): retried after a failure, or visible again after
    # the visibility timeout while the first receive was still being handled.
    redelivered: int = 0


class FunctionStartError(RuntimeError):
    """A function's handler could not be imported, or built from its settings (a parameter its code cannot read)."""


@dataclass
class LocalRuntime:
    endpoint_url: str
    resources: Resources
    manifest: Manifest = MANIFEST
    options: RuntimeOptions = field(default_factory=RuntimeOptions)
    session: boto3.session.Session | None = None
    # The access key ids the functions and the scheduler call with (the endpoint's SourceGuard knows them).
    principals: LocalPrincipals = field(default_factory=LocalPrincipals)

    def __post_init__(self) -> None:
        self.session = self.session or boto3.session.Session()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._executors: list[ThreadPoolExecutor] = []
        self.stats: dict[str, ConsumerStats] = {c.name: ConsumerStats() for c in self.manifest.consumers}
        self.fired_deadlines = 0
        self._stats_lock = threading.Lock()
        self.sqs = self._client("sqs")
        # The scheduler's firing publishes the deadline source, which only the scheduler's key may use.
        self.events = self._client("events", self.principals.scheduler_key)
        self.scheduler = self._client("scheduler")

    def _client(self, service: str, access_key: str | None = None) -> Any:
        # A boto3 Session or a KeyedSession; the service name is not a literal boto3-stubs can resolve.
        session: Any = self.principals.session(self.session, access_key) if access_key else self.session
        return session.client(service, endpoint_url=self.endpoint_url, config=LOCAL_CLIENT_CONFIG)

    # -- wiring -------------------------------------------------------------------------------------

    def environment_for(self, consumer: Consumer) -> dict[str, str]:
        """The function's Lambda environment, as the stack would set it, with the local run's options."""
        environment = self.resources.function_environment(
            consumer.name, self.manifest, parameters=self.options.parameters,
            deadline_seconds=self.options.deadline_seconds,
            external_wait_seconds=self.options.external_wait_seconds)
        if self.options.claim_check_threshold_bytes is not None:
            environment[CLAIM_CHECK_THRESHOLD_BYTES] = str(self.options.claim_check_threshold_bytes)
        if self.options.simulated_work_ms:
            environment[SIMULATED_WORK_MS] = ",".join(f"{k}={v}" for k, v in self.options.simulated_work_ms.items())
        return environment

    def settings_for(self, consumer: Consumer) -> Settings:
        """What the function parses from its Lambda environment at cold start."""
        return Settings.from_env(self.environment_for(consumer))

    def clients_for(self, consumer: Consumer) -> Clients:
        """The function's clients, signing with its own access key id (as its own role does on AWS)."""
        keyed = self.principals.session(self.session, self.principals.function_key(consumer.name))
        # KeyedSession stands in for a Session: Clients.create only calls its client(). On Lambda each concurrent
        # invocation has clients of its own; here one set serves all of them, so its pool holds a connection per
        # record that may be in flight at once (else urllib3 discards connections and says so, under load).
        in_flight = consumer.max_concurrency * max(1, consumer.record_concurrency)
        config = LOCAL_CLIENT_CONFIG.merge(Config(max_pool_connections=max(in_flight, MAX_POOL_CONNECTIONS)))
        clients = Clients.create(cast(boto3.session.Session, keyed), self.endpoint_url, config=config)
        if self.options.chaos:
            flaky = self.options.chaos.wrap_events_client(clients.events, consumer.name)
            clients = dataclasses.replace(clients, events=flaky)
        return clients

    def build_handler(self, consumer: Consumer) -> LambdaHandler:
        # The manifest's handler path must resolve, as Lambda resolves it: its module and its entry point (the
        # runtime calls the module's ``build`` itself, to give the function its own clients).
        problem = handler_problem(consumer.handler)
        if problem:
            raise FunctionStartError(f"function {consumer.name} cannot start: {problem}")
        module_name = consumer.handler.rpartition(".")[0]
        module = importlib.import_module(module_name)
        try:
            handler: LambdaHandler = module.build(self.settings_for(consumer), self.clients_for(consumer))
        except Exception as error:  # its cold start failed: on Lambda every invocation would fail the same way
            parameters = ", ".join(f"{p.env}={self.options.parameters[p.env]!r}" for p in consumer.parameters
                                   if p.env in (self.options.parameters or {}))
            raise FunctionStartError(
                f"function {consumer.name} cannot start ({type(error).__name__}: {error})"
                + (f" with {parameters}: check the values given with --param" if parameters else "")) from error
        return handler

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> LocalRuntime:
        for consumer in self.manifest.consumers:
            handler = self.build_handler(consumer)
            executor = ThreadPoolExecutor(max_workers=consumer.max_concurrency,
                                          thread_name_prefix=f"lambda-{consumer.name}")
            self._executors.append(executor)
            thread = threading.Thread(target=self._poll, args=(consumer, handler, executor),
                                      name=f"poller-{consumer.name}", daemon=True)
            self._threads.append(thread)
        self._threads.append(threading.Thread(target=self._fire_schedules, name="scheduler", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop polling, let running invocations finish (their messages are acknowledged or retried), within
        ``timeout_s`` in all; an invocation still running then is abandoned and SQS redelivers its messages."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        # A poller may be in a long poll, or about to start one: wake the endpoint's waiting polls until it left.
        while any(t.is_alive() for t in self._threads) and time.monotonic() < deadline:
            self._wake_polls()
            for thread in self._threads:
                thread.join(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
        for executor in self._executors:
            executor.shutdown(wait=False, cancel_futures=True)
        for executor in self._executors:
            for worker in list(getattr(executor, "_threads", ())):
                worker.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            log.warning("stopped without waiting for %s", ", ".join(stuck))

    def _wake_polls(self) -> None:
        """Ask the endpoint to end the receives waiting now (an endpoint that is not ``agentbus.local.server``,
        or is gone, is left alone: its polls end within ``poll_wait_s``)."""
        with contextlib.suppress(OSError):
            wake_polls(self.endpoint_url)

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- Lambda's SQS poller ------------------------------------------------------------------------

    def _paused_checker(self, consumer: Consumer) -> Callable[..., bool]:
        """``paused()``: the agent's state, cached ``pause_check_s`` (to idle while paused without asking the
        endpoint all the time); ``paused(fresh=True)``: asked now, one call (what every receive is checked with)."""
        queue_url = self.resources.consumers[consumer.name].queue_url
        state = {"paused": False, "checked": float("-inf")}  # mypy: dict[str, float], bool being an int

        def paused(fresh: bool = False) -> bool:
            now = time.monotonic()
            if fresh or now - state["checked"] >= self.options.pause_check_s:
                tags = self.sqs.list_queue_tags(QueueUrl=queue_url).get("Tags", {})
                state["paused"], state["checked"] = tags.get(PAUSED_TAG) == "true", now
            return bool(state["paused"])

        return paused

    def _poll(self, consumer: Consumer, handler: LambdaHandler, executor: ThreadPoolExecutor) -> None:
        queue = self.resources.consumers[consumer.name]
        slots = threading.BoundedSemaphore(consumer.max_concurrency)
        paused = self._paused_checker(consumer)
        while not self._stop.is_set():
            try:
                if paused():
                    self._stop.wait(self.options.pause_check_s)
                    continue
                if not slots.acquire(timeout=0.5):
                    continue
                messages = self.sqs.receive_message(
                    QueueUrl=queue.queue_url, MaxNumberOfMessages=consumer.batch_size,
                    WaitTimeSeconds=self.options.poll_wait_s, AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                # Pause holds from the moment `agentbus agent pause` returns: a long poll that was already
                # waiting then may still return a message, so the state is asked again (not from the cache)
                # after every receive, and what came while paused goes back to the queue unprocessed, at once.
                # The endpoint serializes requests, so a receive that follows the pause sees it here.
                if messages and paused(fresh=True):
                    self._give_back(queue.queue_url, messages)
                    messages = []
                messages = self._inject_delivery_faults(consumer, messages)
                if not messages:
                    slots.release()
                    continue
                future = executor.submit(self._invoke, consumer, handler, messages)
                future.add_done_callback(lambda _f: slots.release())
            except Exception:  # the endpoint going away at shutdown, mostly
                if self._stop.is_set():
                    return
                log.exception("poller for %s failed; retrying", consumer.name)
                self._stop.wait(0.5)

    def _give_back(self, queue_url: str, messages: list[dict[str, Any]]) -> None:
        """Make received messages visible again at once, unprocessed (each keeps this receive in its count)."""
        self.sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages)])

    def _inject_delivery_faults(self, consumer: Consumer, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        chaos = self.options.chaos
        if not chaos or not messages:
            return messages
        queue = self.resources.consumers[consumer.name]
        kept = []
        for message in messages:
            if is_copy(message):  # a copy chaos sent is delivered as it is (see chaos.py)
                kept.append(message)
                continue
            if chaos.roll("duplicate"):
                self.sqs.send_message(QueueUrl=queue.queue_url, MessageBody=message["Body"],
                                      MessageAttributes=COPY_ATTRIBUTES)
            if chaos.roll("delay"):
                # A late delivery: the same event arrives again 1-3 s from now. Re-sent rather than hidden, so
                # the delay does not use up one of the message's receives (which would dead-letter it).
                self.sqs.send_message(QueueUrl=queue.queue_url, MessageBody=message["Body"],
                                      MessageAttributes=COPY_ATTRIBUTES, DelaySeconds=int(chaos.uniform(1, 3)))
                self.sqs.delete_message(QueueUrl=queue.queue_url, ReceiptHandle=message["ReceiptHandle"])
                continue
            kept.append(message)
        return kept

    def _invoke(self, consumer: Consumer, handler: LambdaHandler, messages: list[dict[str, Any]]) -> None:
        queue = self.resources.consumers[consumer.name]
        chaos = self.options.chaos
        started = time.perf_counter()
        cpu_started = time.thread_time()
        event = sqs_event_from_messages(messages, queue.queue_arn)
        context = LambdaContext(function_name=queue.function_name or f"agentbus-{consumer.name}",
                                memory_limit_in_mb=consumer.memory_mb, timeout_s=consumer.timeout_s)
        crashable = chaos is not None and all(_receive_count(m) < consumer.max_receive_count - 1 for m in messages)
        try:
            if crashable and chaos is not None and chaos.roll("crash_before"):
                raise InjectedCrash("injected crash before the handler ran")
            last = chaos is not None and any(_receive_count(m) >= consumer.max_receive_count for m in messages)
            with chaos.calm(consumer.name, last) if chaos is not None else contextlib.nullcontext():
                response = handler(event, context) or {}
            if crashable and chaos is not None and chaos.roll("crash_after"):
                raise InjectedCrash("injected crash after the handler ran")
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            crashed = False
        except Exception as error:
            if not isinstance(error, InjectedCrash):
                log.exception("%s invocation failed; its %d message(s) will be retried", consumer.name, len(messages))
            failed = {m["MessageId"] for m in messages}
            crashed = True
        cpu_ms = (time.thread_time() - cpu_started) * 1000
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        try:
            if done:
                self.sqs.delete_message_batch(QueueUrl=queue.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
            if retry:
                self.sqs.change_message_visibility_batch(QueueUrl=queue.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.options.retry_after_s}
                    for i, m in enumerate(retry)])
        except Exception:
            if not self._stop.is_set():
                log.exception("acknowledging %s messages failed", consumer.name)
        # Lambda flushes the functions' EMF metrics at the end of each invocation (log_metrics); locally
        # there is no CloudWatch to read them, so drop them instead of letting them pile up and print.
        metrics.clear_metrics()
        with self._stats_lock:
            stats = self.stats[consumer.name]
            stats.invocations += 1
            stats.records += len(messages)
            stats.failed_records += len(retry)
            stats.crashed_invocations += crashed
            stats.busy_ms += (time.perf_counter() - started) * 1000
            stats.cpu_ms += cpu_ms
            stats.rounds += consumer.rounds(len(messages))
            stats.redelivered += sum(1 for m in messages if _receive_count(m) > 1)

    # -- EventBridge Scheduler: fire due one-time schedules -----------------------------------------

    def _fire_schedules(self) -> None:
        """Fire each due one-time schedule of the group once, as EventBridge Scheduler does.

        A schedule is read (``get_schedule``) when it is first listed and again whenever its
        ``LastModificationDate`` changes (``aws scheduler update-schedule``, or deleted and created again under its
        name). It fires once, at its ``at(...)`` time in its ``ScheduleExpressionTimezone``, only while
        ``ENABLED``; afterwards it is deleted if its ``ActionAfterCompletion`` is ``DELETE`` (the coordinator's
        deadlines) and otherwise stays, fired, as on AWS (black-box pass 9A, F1: a user's schedule with the
        default ``NONE`` fired on every tick, forever). A schedule this cannot fire (a ``rate(...)`` or
        ``cron(...)``, an unknown time zone, a target that is neither an event bus nor a queue) is skipped, said once
        in one line, and the others still fire: one foreign schedule must not stop every deadline listed after it."""
        known: dict[str, _KnownSchedule] = {}
        group = self.resources.schedule_group
        while not self._stop.wait(self.options.schedule_poll_s):
            try:
                listed = self._schedules_listed(group)
                if listed is None:
                    continue
                for gone in set(known) - set(listed):
                    known.pop(gone)
                now = datetime.now(UTC)
                for name, version in listed.items():
                    entry = known.get(name)
                    if entry is None or entry.version != version:
                        entry = self._read_schedule(group, name, version)
                        if entry is None:
                            continue  # its workflow finished and the coordinator deleted it since the listing
                        known[name] = entry
                    if entry.fired or entry.due_at is None or entry.due_at > now or entry.retry_at > now:
                        continue
                    try:
                        self._fire(entry.schedule)
                    except Exception as error:
                        # One schedule's target failing (a queue that does not exist) must not stop the others:
                        # the whole pass started over on it, every deadline listed after it never fired (black-box
                        # pass 9D, F4). It is tried again, backing off, as Scheduler retries; said once.
                        entry.failures += 1
                        entry.retry_at = now + timedelta(seconds=min(60.0, 0.5 * 2 ** entry.failures))
                        if entry.failures == 1:
                            log.warning("schedule %r of group %s could not be fired (tried again, backing off): %s",
                                        name, group, error)
                        continue
                    entry.fired = True
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("firing schedules failed; retrying")

    def _read_schedule(self, group: str, name: str, version: Any) -> _KnownSchedule | None:
        """The schedule as it is now: when it is due (None: never, said once why), or None if it is gone."""
        try:
            schedule = self.scheduler.get_schedule(GroupName=group, Name=name)
        except self.scheduler.exceptions.ResourceNotFoundException:
            return None
        state = schedule.get("State", "ENABLED")
        if state != "ENABLED":
            log.info("schedule %r of group %s is %s: not fired", name, group, state)
            return _KnownSchedule(version, None, schedule)
        try:
            due_at = parse_at_expression(schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone"))
            _target_kind(schedule["Target"]["Arn"])
        except ValueError as error:
            log.warning("schedule %r of group %s is not fired locally: %s", name, group, error)
            return _KnownSchedule(version, None, schedule)
        return _KnownSchedule(version, due_at, schedule)

    def _schedules_listed(self, group: str) -> dict[str, Any] | None:
        """Every schedule in ``group`` with what changes when it is updated or made again; None when the listing
        must start over (a page token went stale)."""
        try:
            return {s["Name"]: (s.get("CreationDate"), s.get("LastModificationDate"))
                    for page in self.scheduler.get_paginator("list_schedules").paginate(GroupName=group)
                    for s in page.get("Schedules", [])}
        except self.scheduler.exceptions.ClientError as error:
            # moto's page token names the last schedule listed: when the coordinator deletes that schedule
            # between two pages, the next page is refused. Nothing is lost: list again on the next tick.
            if error.response.get("Error", {}).get("Code") == "InvalidToken":
                log.debug("schedule listing restarted: %s", error)
                return None
            raise

    def _fire(self, schedule: dict[str, Any]) -> None:
        target = schedule["Target"]
        arn = target["Arn"]
        if _target_kind(arn) == "queue":
            queue_url = self.sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
            self.sqs.send_message(QueueUrl=queue_url, MessageBody=target.get("Input", "{}"))
        else:
            parameters = target.get("EventBridgeParameters", {})
            self.events.put_events(Entries=[{
                "EventBusName": arn.rsplit("/", 1)[-1], "Source": parameters.get("Source", "aws.scheduler"),
                "DetailType": parameters.get("DetailType", "Scheduled Event"), "Detail": target.get("Input", "{}"),
            }])
        self.fired_deadlines += 1
        if schedule.get("ActionAfterCompletion", "NONE") == "DELETE":
            # The coordinator may have finished the workflow and deleted the schedule first.
            with contextlib.suppress(self.scheduler.exceptions.ResourceNotFoundException):
                self.scheduler.delete_schedule(GroupName=schedule["GroupName"], Name=schedule["Name"])


@dataclass
class _KnownSchedule:
    version: Any  # what the listing says of it (created, last modified): another value means read it again
    due_at: datetime | None  # None: never fired here (disabled, or not a one-time schedule this can fire)
    schedule: dict[str, Any]
    fired: bool = False
    failures: int = 0
    retry_at: datetime = datetime.min.replace(tzinfo=UTC)


def _target_kind(arn: str) -> str:
    """``bus`` or ``queue``: the targets the local scheduler fires (PutEvents, SendMessage)."""
    if re.fullmatch(r"arn:[\w-]+:events:[^:]*:\d*:event-bus/.+", arn):
        return "bus"
    if re.fullmatch(r"arn:[\w-]+:sqs:[^:]*:\d*:[\w-]+(\.fifo)?", arn):
        return "queue"
    raise ValueError(f"only an event bus or an SQS queue target is fired locally, got {arn!r}")


def parse_at_expression(expression: str, timezone: str | None = None) -> datetime:
    """``at(2026-11-26T11:07:08)`` in ``timezone`` (an IANA name, UTC when None, as the coordinator writes
    it) -> an aware datetime."""
    if not (expression.startswith("at(") and expression.endswith(")")):
        raise ValueError(f"only one-time at(...) schedules are fired locally, got {expression!r}")
    try:
        zone = ZoneInfo(timezone) if timezone and timezone != "UTC" else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown ScheduleExpressionTimezone {timezone!r}") from None
    try:
        return datetime.fromisoformat(expression[3:-1]).replace(tzinfo=zone).astimezone(UTC)
    except ValueError:
        raise ValueError(f"not a time in at(yyyy-mm-ddThh:mm:ss): {expression!r}") from None


def _receive_count(message: dict[str, Any]) -> int:
    """How many times SQS has handed out this message, this receive included."""
    return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
