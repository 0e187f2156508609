"""Performance patches for moto (5.2.x) under the local endpoint's load, found with the benchmark.

Every request to the local endpoint runs under one lock (see ``server.py``), so each millisecond moto
spends on a request is a millisecond every other client waits. Profiling ``agentbus bench`` showed moto
spending most of that time on work whose cost grows with the data or is repeated for nothing. Each
patch below keeps moto's observable behaviour (same responses, same state) and removes only that cost:

1. ``Message.visible`` / ``Message.delayed``: moto computes "now" through naive-datetime arithmetic for
   every message on every scan (receive, send, attribute counts); ``time.time()`` gives the same epoch
   milliseconds at a fraction of the cost.
2. ``SQSBackend.is_message_valid_based_on_retention_period``: moto rebuilt every queue attribute
   (three full scans of the queue for the approximate counts) for each message it returned, to read
   one setting; the patch reads the setting directly.
3. ``jsonpath_ng.ext.parse``: moto's EventBridge builds a fresh PLY parser for 8 JSONPath expressions per
   matched target of every event (~12 ms per target); parses are memoized (they are immutable).
4. DynamoDB attribute values in JSON responses: moto's generic response serializer walks every
   ``AttributeValue`` member by member through alias lookups (~30 ms for a 4 KB item); the values are
   already in wire format, so they are passed through as they are (binary values keep the slow path).
5. ``TransactWriteItems``: moto deep-copied each whole table a transaction touches (once per action)
   to be able to roll back, so each transaction cost grew with the table; the patch snapshots only the
   items the transaction touches and restores those on failure, as moto's rollback would.
6. ``DomainDispatcherApplication.get_backend_for_host``: to route each request, moto listed its own
   package directory from disk (``list_of_moto_modules``) and then tried ~400 URL patterns in turn; the
   answer for a host never changes, so it is remembered per host.
7. DynamoDB update expressions: moto parsed each ``UpdateExpression`` twice per ``UpdateItem`` (handler
   and backend), then deep-copied the tree for each validation and rebuilt each AST processor's tuple of
   node classes for every node it visited. The functions send the same few expression strings (values
   are placeholders), so parses are memoized (the parse tree is never mutated: validation works on a
   copy), the copy is made by unpickling the parse tree pickled once, and the node classes are kept per
   processor class.
8. ``BaseResponse.call_action`` listed the handler class's methods with ``inspect.getmembers`` on every
   request; a class's methods do not change, so the list is kept per class.
9. ``SQSBackend.send_message`` (and every EventBridge delivery to a queue, which goes through it) read
   ``queue.attributes`` to look up ``ContentBasedDeduplication``; that property rebuilds every attribute,
   counting the queue's messages three times over (so each send cost grew with the backlog). Within a
   send, the lookup reads the one setting instead.

10. DynamoDB ``Query`` of a table (not an index): moto listed and sorted every item of the table
   (``Table.all_items``) to keep those of the one partition asked for, so each query cost grew with the
   table (the coordinator reads a workflow's items with one query). Within such a query, ``all_items``
   returns that partition's items only, in the same order.

``apply()`` is idempotent and process-wide; the local endpoint calls it when it starts. Each patch
replaces moto internals as they are in ``MOTO_VERSION`` (pinned in pyproject.toml): ``apply()`` refuses
any other version, so an upgrade cannot silently change what the local endpoint does.
"""

from __future__ import annotations

import copy
import functools
import pickle
import threading
import time
import types
from typing import Any

MOTO_VERSION = "5.2.5"

_applied = False
_apply_lock = threading.Lock()


class UnsupportedMotoVersion(RuntimeError):
    """The installed moto is not the one these patches were written for."""


def check_moto_version(installed: str | None = None) -> None:
    if installed is None:
        from importlib.metadata import version

        installed = version("moto")
    if installed != MOTO_VERSION:
        raise UnsupportedMotoVersion(
            f"agentbus/local/moto_speedups.py patches moto {MOTO_VERSION} internals, but moto {installed} is "
            f"installed: run `make setup` (uv.lock pins moto {MOTO_VERSION}), or re-check every patch "
            "against the new moto, then update MOTO_VERSION and the pin in pyproject.toml")


def apply() -> None:
    global _applied
    with _apply_lock:
        if _applied:
            return
        check_moto_version()
        _patch_sqs_message_times()
        _patch_sqs_retention_check()
        _patch_jsonpath_parse()
        _patch_dynamodb_attribute_serialization()
        _patch_dynamodb_transactions()
        _patch_backend_routing()
        _patch_update_expressions()
        _patch_action_lookup()
        _patch_sqs_send_attribute_lookup()
        _patch_dynamodb_query_partition()
        _applied = True


# 1 ------------------------------------------------------------------------------------------------

def _patch_sqs_message_times() -> None:
    from moto.sqs.models import Message

    Message.visible = property(lambda self: time.time() * 1000.0 > self.visible_at)  # type: ignore[method-assign,assignment]  # moto's method becomes a property
    Message.delayed = property(lambda self: time.time() * 1000.0 < self.delayed_until)  # type: ignore[method-assign,assignment]  # moto's method becomes a property


# 2 ------------------------------------------------------------------------------------------------

def _patch_sqs_retention_check() -> None:
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        queue = self.get_queue(queue_name)
        valid: bool = int(queue.message_retention_period) + message.sent_timestamp / 1000 > time.time()
        return valid

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]  # patching moto


# 3 ------------------------------------------------------------------------------------------------

def _patch_jsonpath_parse() -> None:
    import jsonpath_ng.ext

    parse = jsonpath_ng.ext.parse  # type: ignore[attr-defined]  # jsonpath_ng re-exports parse implicitly
    if not hasattr(parse, "cache_info"):
        jsonpath_ng.ext.parse = functools.lru_cache(maxsize=512)(parse)  # type: ignore[attr-defined]  # jsonpath_ng re-exports parse implicitly


# 4 ------------------------------------------------------------------------------------------------

def _wire_ready(value: Any) -> bool:
    """True if an attribute value holds no binary (``B``/``BS``), which the serializer must base64."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("B", "BS"):
                return False
            if isinstance(item, dict | list) and not _wire_ready(item):
                return False
        return True
    if isinstance(value, list):
        return all(_wire_ready(item) for item in value if isinstance(item, dict | list))
    return True


def _patch_dynamodb_attribute_serialization() -> None:
    from moto.core.serialize import BaseJSONSerializer

    original = BaseJSONSerializer._serialize_type_structure

    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and isinstance(value, dict) and _wire_ready(value):
            serialized[key] = value
            return
        original(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = _serialize_type_structure  # type: ignore[method-assign]  # patching moto


# 5 ------------------------------------------------------------------------------------------------

def _deepcopy_except_tables(value: Any, memo: Any = None) -> Any:
    from moto.dynamodb.models.table import Table

    if isinstance(value, Table):
        return value  # the patched transaction below snapshots the touched items instead
    return copy.deepcopy(value, memo)


def _patch_dynamodb_transactions() -> None:
    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType

    original = models.DynamoDBBackend.transact_write_items
    models.copy = types.SimpleNamespace(deepcopy=_deepcopy_except_tables, copy=copy.copy)  # type: ignore[attr-defined,assignment]  # the module's copy, swapped for one namespace

    def touched(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any]]:
        keys = []
        for entry in transact_items:
            try:
                _, op = next(iter(entry.items()))
                table = backend.tables.get(op.get("TableName"))
                attrs = op["Item"] if "Item" in op else op["Key"]
                hash_key = DynamoType(attrs[table.hash_key_attr])
                range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
            except Exception:  # noqa: BLE001 - malformed: moto's own validation rejects it before any write
                continue
            keys.append((table, hash_key, range_key))
        return keys

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        snapshot = [(table, h, r, copy.deepcopy(table.get_item(h, r))) for table, h, r in touched(self, transact_items)]
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(snapshot):
                if item is None:
                    if range_key is not None:
                        table.items.get(hash_key, {}).pop(range_key, None)
                    else:
                        table.items.pop(hash_key, None)
                elif range_key is not None:
                    table.items[hash_key][range_key] = item
                else:
                    table.items[hash_key] = item
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]  # patching moto


# 6 ------------------------------------------------------------------------------------------------

def _patch_backend_routing() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    routes: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        try:
            return routes[host]
        except KeyError:
            backend = routes[host] = original(self, host)
            return backend

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]  # patching moto


# 7 ------------------------------------------------------------------------------------------------

_PICKLED = "_agentbus_pickled"


def _patch_update_expressions() -> None:
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]  # moto marks ast_nodes '# type: ignore'
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]  # moto marks ast_nodes '# type: ignore'

    parse = UpdateExpressionParser.make  # bound to the class

    @functools.lru_cache(maxsize=1024)
    def make(expression: str) -> Any:
        tree = parse(expression)
        pickled = pickle.dumps(tree, pickle.HIGHEST_PROTOCOL)
        setattr(tree, _PICKLED, pickled)  # after pickling: copies do not carry it
        return tree

    UpdateExpressionParser.make = staticmethod(make)

    def fast_copy(tree: Any) -> Any:
        pickled = getattr(tree, _PICKLED, None)
        return pickle.loads(pickled if pickled is not None else pickle.dumps(tree, pickle.HIGHEST_PROTOCOL))

    def validator_init(self: Any, expression: Any, expression_attribute_names: Any,
                       expression_attribute_values: Any, item: Any, table: Any) -> None:
        # moto's Validator.__init__, with the tree copied by fast_copy instead of copy.deepcopy
        self.expression_attribute_names = expression_attribute_names
        self.expression_attribute_values = expression_attribute_values
        self.item = item
        self.table = table
        self.processors = self.get_ast_processors()
        self.node_to_validate = fast_copy(expression)

    validators.Validator.__init__ = validator_init  # type: ignore[method-assign]  # patching moto

    node_classes: dict[type, tuple[type, ...]] = {}

    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        cls = type(self)
        classes = node_classes.get(cls)
        if classes is None:
            classes = node_classes[cls] = tuple(self._processing_map())
        return classes

    DepthFirstTraverser.nodes_to_be_processed = nodes_to_be_processed


# 8 ------------------------------------------------------------------------------------------------

def _patch_action_lookup() -> None:
    import moto.core.responses as responses

    responses.method_names_from_class = functools.lru_cache(maxsize=None)(responses.method_names_from_class)  # type: ignore[attr-defined]  # moto imports it from moto.core.utils


# 9 ------------------------------------------------------------------------------------------------

_sending = threading.local()


class _SettingsOnly:
    """``queue.attributes`` as ``send_message`` reads it (``.get(name)``), without the message counts."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def get(self, name: str, default: Any = None) -> Any:
        value = getattr(self._queue, _attribute_name(name), default)
        return str(value).lower() if isinstance(value, bool) else value


@functools.cache
def _attribute_name(name: str) -> str:
    from moto.core.utils import camelcase_to_underscores

    return camelcase_to_underscores(name)


def _patch_sqs_send_attribute_lookup() -> None:
    from moto.sqs.models import Queue, SQSBackend

    full_attributes = Queue.attributes.fget  # type: ignore[attr-defined]  # a property in moto, typed as its getter

    def attributes(self: Any) -> Any:
        return _SettingsOnly(self) if getattr(_sending, "active", False) else full_attributes(self)

    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]  # patching moto's property
    send_message = SQSBackend.send_message

    @functools.wraps(send_message)
    def send_message_reading_settings_only(self: Any, *args: Any, **kwargs: Any) -> Any:
        outer = getattr(_sending, "active", False)
        _sending.active = True
        try:
            return send_message(self, *args, **kwargs)
        finally:
            _sending.active = outer

    SQSBackend.send_message = send_message_reading_settings_only  # type: ignore[method-assign]  # patching moto


# 10 -----------------------------------------------------------------------------------------------

def _patch_dynamodb_query_partition() -> None:
    from moto.dynamodb.models.table import Table

    query, all_items = Table.query, Table.all_items
    partition = threading.local()  # the query being served (moto runs under the endpoint's lock anyway)

    def query_one_partition(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        one = index_name is None and hash_key is not None
        partition.table_id, partition.key = (id(self), hash_key) if one else (None, None)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            partition.table_id = partition.key = None

    def items_of_the_partition(self: Any) -> list[Any]:
        if getattr(partition, "table_id", None) != id(self):
            return all_items(self)
        held = self.items.get(partition.key)
        if held is None:
            return []
        items = list(held.values()) if self.range_key_attr else [held]
        return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    Table.query = query_one_partition  # type: ignore[method-assign]  # patching moto
    Table.all_items = items_of_the_partition  # type: ignore[method-assign]  # patching moto
