"""Seed data: the items a table of the manifest starts with (``Table.seed_file``), put once.

A seed file is JSON. By default it holds ``{"items": [{...}, ...]}``, plain JSON objects written as they are;
a table with a ``seeder`` (an import path) turns its own file format into DynamoDB items (the order
workflow's stock file: ``{"stock": {"SKU": units}}``). Seeding puts only items whose key is new, so seeding
twice never overwrites live data (stock levels, reservations).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from functions.common.dead_letters import UnreadableJson, read_json
from functions.common.spec import Manifest, Table, resolve

REPO_ROOT = Path(__file__).resolve().parents[1]
_serializer = TypeSerializer()


class SeedError(ValueError):
    """A seed file cannot be read or does not fit its table; the message names the file."""


def seeded_tables(manifest: Manifest) -> tuple[Table, ...]:
    return tuple(table for table in manifest.tables if table.seed_file)


def read_utf8_text(file: Path) -> str:
    """A user's file as text: UTF-8, a leading BOM (as Windows tools write) skipped; ``ValueError`` naming the first
    byte that is not UTF-8, whose message reads after "is" ("not UTF-8 text (byte 0xe9 at offset 12): ...")."""
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start}): "
                         "save it as UTF-8") from None


def seed_items(table: Table, path: str | Path | None = None) -> list[dict[str, Any]]:
    """The DynamoDB items of ``table``'s seed file (or of ``path``)."""
    file = Path(path) if path else REPO_ROOT / str(table.seed_file)
    try:
        data = read_json(read_utf8_text(file), parse_float=Decimal)
    except (OSError, json.JSONDecodeError) as error:
        raise SeedError(f"cannot read seed file {file}: {error}") from None
    except UnreadableJson as error:
        raise SeedError(f"cannot read seed file {file}: not readable JSON: {error}") from None
    except ValueError as error:
        raise SeedError(f"cannot read seed file {file}: it is {error}") from None
    try:
        if table.seeder:
            try:
                return list(resolve(table.seeder)(data))
            except (TypeError, AttributeError, KeyError, IndexError) as error:  # a seeder that did not expect this
                raise ValueError(f"{table.seeder} cannot read it ({type(error).__name__}: {error})") from None
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise ValueError('a seed file looks like {"items": [{...}, ...]}')
        missing = [i for i, item in enumerate(items) if table.partition_key not in item]
        if missing:
            raise ValueError(f"items {missing[:5]} have no {table.partition_key!r} (the table's key)")
        return [{key: _serializer.serialize(value) for key, value in item.items()} for item in items]
    except ValueError as error:
        raise SeedError(f"{file}: {error}") from None


def put_new(dynamodb: Any, table_name: str, table: Table, items: list[dict[str, Any]],
            progress: Callable[[int], None] | None = None) -> int:
    """Put each item whose key is not in the table yet; returns how many were new."""
    written = 0
    for count, item in enumerate(items, start=1):
        try:
            dynamodb.put_item(TableName=table_name, Item=item, ConditionExpression="attribute_not_exists(#pk)",
                              ExpressionAttributeNames={"#pk": table.partition_key})
            written += 1
        except dynamodb.exceptions.ConditionalCheckFailedException:
            pass
        if progress:
            progress(count)
    return written
