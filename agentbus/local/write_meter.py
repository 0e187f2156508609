"""Write request units, measured on the local endpoint the way DynamoDB charges them (the benchmark reads them).

moto does not count capacity (its ``ConsumedCapacity`` is a constant), so the endpoint process wraps its
DynamoDB backend: every write is charged, per table, what DynamoDB on-demand would charge for it:

- ``PutItem``, ``UpdateItem``, ``DeleteItem``: one unit per started KB of the larger of the item's size before
  and after the write (moto's ``Item.size()``: attribute names plus values, as DynamoDB counts them);
- a write whose condition fails still costs: the item's size as it is (at least one unit);
- ``TransactWriteItems``: twice that, for each item it writes (a ``ConditionCheck`` writes nothing);
- a global secondary index (keys only): one unit when a write puts the item in it or takes it out (its key
  attributes appear or go), two when it moves it (their values change), none when they stay as they were.

Measured, not modelled: a workflow record's layout can change (one item, or a header and an item per result)
and the figure follows it. moto runs under the endpoint's lock, one request at a time, so the size read before a
write is the size the write replaces.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

UNIT_BYTES = 1024
_inside = threading.local()


def write_units(size_bytes: float) -> int:
    """Write request units of one standard write of an item this big (1 KB each, rounded up)."""
    return max(1, math.ceil(size_bytes / UNIT_BYTES))


class Tally:
    """A counter that several server threads add to."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[key] += amount

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class WriteMeter(Tally):
    """Write units charged so far, by table name."""

    def install(self) -> None:
        """Wrap moto's DynamoDB backend (once per process)."""
        from moto.dynamodb.models import DynamoDBBackend

        if getattr(DynamoDBBackend, "_agentbus_meter", None) is not None:
            DynamoDBBackend._agentbus_meter = self  # type: ignore[attr-defined]
            return
        DynamoDBBackend._agentbus_meter = self  # type: ignore[attr-defined]

        def metered(name: str, key_of: Callable[[Any, str, tuple[Any, ...], dict[str, Any]], dict[str, Any]]
                    ) -> None:
            original = getattr(DynamoDBBackend, name)

            def write(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
                meter: WriteMeter = DynamoDBBackend._agentbus_meter  # type: ignore[attr-defined]
                if getattr(_inside, "transaction", False):  # moto writes a transaction's items one by one
                    return original(backend, table_name, *args, **kwargs)
                key = key_of(backend, table_name, args, kwargs)
                before, indexed_before = _state(backend, table_name, key)
                try:
                    result = original(backend, table_name, *args, **kwargs)
                except Exception:
                    meter.add(table_name, write_units(before))
                    raise
                after, indexed_after = _state(backend, table_name, key)
                meter.add(table_name, write_units(max(before, after)) + _index_units(indexed_before, indexed_after))
                return result

            setattr(DynamoDBBackend, name, write)

        metered("put_item", _put_key)
        metered("update_item", _key_argument)
        metered("delete_item", _key_argument)

        transact = DynamoDBBackend.transact_write_items

        def transact_write(backend: Any, transact_items: list[dict[str, Any]]) -> Any:
            meter: WriteMeter = DynamoDBBackend._agentbus_meter  # type: ignore[attr-defined]
            writes = []
            for action in transact_items:
                (kind, body), = action.items()
                if kind == "ConditionCheck":
                    continue
                table = body["TableName"]
                key = _put_key(backend, table, (body["Item"],), {}) if kind == "Put" else body["Key"]
                writes.append((table, key, *_state(backend, table, key)))
            _inside.transaction = True
            try:
                return transact(backend, transact_items)
            finally:
                _inside.transaction = False
                for table, key, before, indexed_before in writes:
                    after, indexed_after = _state(backend, table, key)
                    meter.add(table, 2 * (write_units(max(before, after))
                                          + _index_units(indexed_before, indexed_after)))

        DynamoDBBackend.transact_write_items = transact_write  # type: ignore[method-assign,assignment]


def _key_argument(_backend: Any, _table_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The key an UpdateItem or DeleteItem names (moto passes it second, after the table's name)."""
    key: dict[str, Any] = kwargs.get("key") or args[0]
    return key


def _put_key(backend: Any, table_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    item = kwargs.get("item_attrs") or args[0]
    table = backend.get_table(table_name)
    names = [table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])]
    return {name: item[name] for name in names if name in item}


def _state(backend: Any, table_name: str, key: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The item's size (0: none) and, per global secondary index holding it, its key values there."""
    try:
        item = backend.get_item(table_name, key)
        indexes = backend.get_table(table_name).global_indexes
    except Exception:  # noqa: BLE001 - no such table or a malformed key: the write itself reports it
        return 0, {}
    if item is None:
        return 0, {}
    held = {}
    for index in indexes:
        values = [item.attrs.get(name) for name in index.schema_key_attrs]
        if all(value is not None for value in values):
            held[index.name] = tuple(str(value.value) for value in values)
    return int(item.size()), held


def _index_units(before: dict[str, Any], after: dict[str, Any]) -> int:
    """Write units of the index entries a write adds (1), removes (1) or moves (2): keys-only entries are small."""
    return sum((name in before) + (name in after) for name in {*before, *after} if before.get(name) != after.get(name))
