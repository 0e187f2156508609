"""Batches an AWS batch call takes: at most so many items and so many bytes in all (PutEvents: 10 entries and
256 KB; SendMessageBatch: 10 messages and 1 MiB)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")


def batched(items: Iterable[Item], size: Callable[[Item], int], max_count: int,
            max_bytes: int) -> Iterator[list[Item]]:
    """Consecutive batches of ``items``, in order, of at most ``max_count`` items whose ``size`` adds up to at most
    ``max_bytes``; an item larger than ``max_bytes`` goes alone (the call then refuses it, not its neighbours)."""
    batch: list[Item] = []
    total = 0
    for item in items:
        item_bytes = size(item)
        if batch and (len(batch) == max_count or total + item_bytes > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += item_bytes
    if batch:
        yield batch
