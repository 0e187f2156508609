"""The local runtime's emulation of EventBridge Scheduler, on stubbed clients (no endpoint)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from agentbus.local.runtime import LocalRuntime


def _runtime_with_stubbed_scheduler() -> tuple[LocalRuntime, Stubber]:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    runtime = LocalRuntime.__new__(LocalRuntime)  # only the scheduler client is needed here
    runtime.scheduler = session.client("scheduler", endpoint_url="http://127.0.0.1:9")
    return runtime, Stubber(runtime.scheduler)


def _page(*names: str, token: str | None = None) -> dict:
    page = {"Schedules": [{"Name": name} for name in names]}
    return {**page, "NextToken": token} if token else page


def test_schedule_listing_reads_every_page():
    runtime, stub = _runtime_with_stubbed_scheduler()
    stub.add_response("list_schedules", _page("a", "b", token="t"), {"GroupName": "g"})
    stub.add_response("list_schedules", _page("c"), {"GroupName": "g", "NextToken": "t"})
    with stub:
        assert list(runtime._schedules_listed("g") or {}) == ["a", "b", "c"]


def test_a_stale_page_token_restarts_the_listing_instead_of_failing():
    """moto's token names the last schedule listed; the coordinator may delete it between two pages."""
    runtime, stub = _runtime_with_stubbed_scheduler()
    stub.add_response("list_schedules", _page("a", token="a"), {"GroupName": "g"})
    stub.add_client_error("list_schedules", service_error_code="InvalidToken",
                          service_message="Invalid Token: Resource not found!")
    with stub:
        assert runtime._schedules_listed("g") is None


def test_other_listing_errors_are_not_swallowed():
    runtime, stub = _runtime_with_stubbed_scheduler()
    stub.add_client_error("list_schedules", service_error_code="AccessDeniedException")
    with stub, pytest.raises(runtime.scheduler.exceptions.ClientError, match="AccessDenied"):
        runtime._schedules_listed("g")


class AcknowledgingQueue:
    """The SQS client an invocation acknowledges its messages with."""

    def delete_message_batch(self, **_):
        return {}

    def change_message_visibility_batch(self, **_):
        return {}


def _runtime_for_invocations():
    from agentbus.local.runtime import ConsumerStats, RuntimeOptions
    from agentbus.resources import ConsumerResources, Resources
    from functions.manifest import MANIFEST

    resources = Resources(bus_name="agentbus", bus_arn="arn:bus", archive_name="a", schedule_group="g",
                          scheduler_role_arn="arn:role", tables={}, local=True,
                          consumers={c.name: ConsumerResources("q", "arn:aws:sqs:us-east-1:1:q", "d", "da")
                                     for c in MANIFEST.consumers})
    runtime = LocalRuntime.__new__(LocalRuntime)
    runtime.resources, runtime.options, runtime.sqs = resources, RuntimeOptions(), AcknowledgingQueue()
    runtime.stats = {c.name: ConsumerStats() for c in MANIFEST.consumers}
    import threading
    runtime._stats_lock, runtime._stop = threading.Lock(), threading.Event()
    return runtime, MANIFEST


def _messages(count, received=1):
    return [{"MessageId": str(i), "ReceiptHandle": f"r{i}", "Body": "{}",
             "Attributes": {"ApproximateReceiveCount": str(received)}} for i in range(count)]


def test_an_invocation_counts_its_rounds_and_the_cpu_time_of_the_thread_it_ran_in():
    """What the cost model bills: the records an invocation handled ``record_concurrency`` at a time (rounds),
    and how much of its time was CPU rather than waiting."""
    import time

    runtime, manifest = _runtime_for_invocations()
    import dataclasses

    concurrent = next(a for w in manifest.workflows for a in w.agents if a.record_concurrency == 10)
    one_at_a_time = dataclasses.replace(next(a for w in manifest.workflows for a in w.agents if a != concurrent),
                                        record_concurrency=1)

    def waits(event, context):
        time.sleep(0.05)
        return {"batchItemFailures": []}

    def computes(event, context):
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass
        return {"batchItemFailures": []}

    runtime._invoke(concurrent, waits, _messages(10))
    runtime._invoke(concurrent, waits, _messages(11))
    runtime._invoke(one_at_a_time, computes, _messages(3, received=2))
    agent, coordinator = runtime.stats[concurrent.name], runtime.stats[one_at_a_time.name]
    assert (agent.invocations, agent.records, agent.rounds) == (2, 21, 1 + 2)
    assert (coordinator.invocations, coordinator.records, coordinator.rounds) == (1, 3, 3)
    assert (agent.redelivered, coordinator.redelivered) == (0, 3)  # received before: counted again
    assert agent.busy_ms >= 100 and agent.cpu_ms < 50  # waiting is not CPU
    assert coordinator.cpu_ms >= 49 and coordinator.busy_ms >= coordinator.cpu_ms


def test_a_functions_clients_keep_a_connection_for_every_record_that_may_be_in_flight_at_once():
    """On Lambda each invocation has clients of its own; locally one set serves every concurrent invocation."""
    import dataclasses

    from agentbus.resources import ConsumerResources, Resources
    from functions.common.clients import MAX_POOL_CONNECTIONS
    from functions.manifest import MANIFEST

    resources = Resources(bus_name="agentbus", bus_arn="arn:bus", archive_name="a", schedule_group="g",
                          scheduler_role_arn="arn:role", tables={}, local=True,
                          consumers={c.name: ConsumerResources("q", "qa", "d", "da") for c in MANIFEST.consumers})
    runtime = LocalRuntime("http://127.0.0.1:9", resources)
    agent = next(a for w in MANIFEST.workflows for a in w.agents if a.record_concurrency == 10)
    wide = dataclasses.replace(agent, max_concurrency=20)
    assert runtime.clients_for(wide).dynamodb.meta.config.max_pool_connections == 200
    narrow = dataclasses.replace(agent, max_concurrency=1, record_concurrency=1)
    assert runtime.clients_for(narrow).sqs.meta.config.max_pool_connections == MAX_POOL_CONNECTIONS
    assert runtime.clients_for(narrow).sqs.meta.config.retries["mode"] == "standard"  # the rest as on Lambda


def test_a_function_that_cannot_start_with_a_parameter_is_one_error_naming_it():
    # A parameter without a check reached the function as is, and `agentbus up` died with a 26-line traceback.
    from agentbus.local.runtime import FunctionStartError, RuntimeOptions
    from agentbus.resources import ConsumerResources, Resources
    from functions.manifest import MANIFEST

    resources = Resources(bus_name="agentbus", bus_arn="arn:bus", archive_name="a", schedule_group="g",
                          scheduler_role_arn="arn:role", tables={}, local=True,
                          consumers={c.name: ConsumerResources("q", "qa", "d", "da") for c in MANIFEST.consumers})
    runtime = LocalRuntime("http://127.0.0.1:9", resources, options=RuntimeOptions(parameters={"FRAUD_LIMIT": "abc"}))
    with pytest.raises(FunctionStartError, match=r"function fraud cannot start \(.*\) with FRAUD_LIMIT='abc': "
                                                 r"check the values given with --param"):
        runtime.build_handler(MANIFEST.consumer("fraud"))


@pytest.mark.parametrize(("handler", "error"), [
    ("functions.orders.taxx.handler.handler", r"function fraud cannot start: its handler "
     r"'functions.orders.taxx.handler.handler' \(manifest\) cannot be imported \(ModuleNotFoundError: No module "
     r"named 'functions.orders.taxx'\)"),
    ("functions.orders.fraud.handler.handlr", r"function fraud cannot start: its handler "
     r"'functions.orders.fraud.handler.handlr' \(manifest\) names 'handlr', which functions.orders.fraud.handler "
     r"does not define"),
])
def test_a_handler_path_of_the_manifest_that_does_not_resolve_is_one_error_naming_it(handler, error):
    # A typo in the module killed `agentbus up` and the demo with a 20-line ImportError traceback; one in the entry
    # point started them as if nothing were wrong (Lambda would fail every invocation: handler not found).
    import dataclasses

    from agentbus.local.runtime import FunctionStartError
    from agentbus.resources import ConsumerResources, Resources
    from functions.manifest import MANIFEST

    resources = Resources(bus_name="agentbus", bus_arn="arn:bus", archive_name="a", schedule_group="g",
                          scheduler_role_arn="arn:role", tables={}, local=True,
                          consumers={c.name: ConsumerResources("q", "qa", "d", "da") for c in MANIFEST.consumers})
    runtime = LocalRuntime("http://127.0.0.1:9", resources)
    with pytest.raises(FunctionStartError, match=f"^{error}$"):
        runtime.build_handler(dataclasses.replace(MANIFEST.consumer("fraud"), handler=handler))


class RecordingQueue:
    def __init__(self):
        self.sent, self.deleted = [], []

    def send_message(self, **kwargs):
        self.sent.append(kwargs)
        return {}

    def delete_message(self, **kwargs):
        self.deleted.append(kwargs["ReceiptHandle"])
        return {}


def test_chaos_copies_a_delivery_once_and_never_copies_a_copy():
    """A duplicate or delayed delivery is sent marked as chaos's copy; a copy is delivered untouched, so copies
    cannot breed copies (which once flooded the coordinator's queue under load)."""
    from agentbus.local.chaos import COPY_ATTRIBUTE, Chaos, is_copy

    runtime, manifest = _runtime_for_invocations()
    runtime.options.chaos = Chaos(1.0, seed=1)  # every roll hits: duplicate and delay each original
    runtime.sqs = RecordingQueue()
    consumer = manifest.consumers[0]
    [original] = _messages(1)
    kept = runtime._inject_delivery_faults(consumer, [original])
    assert kept == []  # delayed: re-sent for later, this delivery deleted
    assert runtime.sqs.deleted == ["r0"]
    assert len(runtime.sqs.sent) == 2 and all(
        sent["MessageAttributes"][COPY_ATTRIBUTE]["StringValue"] == "true" for sent in runtime.sqs.sent)
    assert "DelaySeconds" in runtime.sqs.sent[1]

    copy = {**_messages(1)[0], "MessageAttributes": runtime.sqs.sent[0]["MessageAttributes"]}
    assert is_copy(copy) and not is_copy(original)
    runtime.sqs = RecordingQueue()
    assert runtime._inject_delivery_faults(consumer, [copy]) == [copy]
    assert runtime.sqs.sent == [] and runtime.sqs.deleted == []
    assert runtime.options.chaos.injected == {"duplicate": 1, "delay": 1}


def test_chaos_without_a_seed_draws_one_that_replays_the_same_faults():
    """Black-box pass 8A, 7: the soak printed "seed None", so a failing run could not be replayed."""
    from agentbus.local.chaos import Chaos

    drawn = Chaos(0.5)
    assert isinstance(drawn.seed, int)
    rolls = [drawn.roll("x") for _ in range(50)]
    replay = Chaos(0.5, seed=drawn.seed)
    assert [replay.roll("x") for _ in range(50)] == rolls


class _AcceptingEvents:
    def put_events(self, Entries: list[dict]) -> dict:  # noqa: N803 - boto3's parameter name
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}


@pytest.mark.parametrize(("received", "fails"), [(4, True), (5, False)])  # 1 to 3: crashes come first
def test_chaos_fails_no_putevents_while_a_function_works_on_a_messages_last_receive(received, fails):
    """Black-box pass 9C, F6: PutEvents failures were injected on a message's last allowed receive too, so at rate
    0.9 the publisher's four attempts all failed about two times in three and most healthy messages were
    dead-lettered, while the docs say chaos alone never dead-letters one."""
    from agentbus.local.chaos import Chaos

    runtime, manifest = _runtime_for_invocations()
    runtime.options.chaos = Chaos(1.0, seed=1)  # every roll hits
    consumer = next(c for c in manifest.consumers if c.max_receive_count == 5)
    events = runtime.options.chaos.wrap_events_client(_AcceptingEvents(), consumer.name)
    answers: list[int] = []

    def handler(event, context):
        answers.append(events.put_events(Entries=[{"Source": "s"}])["FailedEntryCount"])
        return {}

    runtime._invoke(consumer, handler, _messages(1, received=received))
    assert answers == [1 if fails else 0]
    other = runtime.options.chaos.wrap_events_client(_AcceptingEvents(), "another-function")
    assert other.put_events(Entries=[{"Source": "s"}])["FailedEntryCount"] == 1  # calm ends with the invocation
