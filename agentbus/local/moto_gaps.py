"""Behaviour patches for moto (5.2.x): where moto differs from AWS in a way an agentbus user relies on.

Unlike ``moto_speedups.py`` (same behaviour, less cost), each patch here changes what moto does, to what
AWS does:

1. ``StartReplay`` honours its time window. moto replays every archived event whatever
   ``EventStartTime`` / ``EventEndTime`` say; EventBridge replays only the events whose time lies in the
   window (``EventStartTime`` <= time < ``EventEndTime``). An operator replaying "the last hour" must not
   re-publish last week's outcomes or re-dead-letter old poison messages.

``apply()`` is idempotent and process-wide; the local endpoint calls it when it starts.
"""

from __future__ import annotations

import threading
from datetime import datetime
from types import SimpleNamespace
from typing import Any

_applied = False
_apply_lock = threading.Lock()


def apply() -> None:
    global _applied
    with _apply_lock:
        if _applied:
            return
        _patch_replay_window()
        _applied = True


def epoch_seconds(value: Any) -> float:
    """A timestamp as moto holds it (epoch seconds as a number or numeric string, or ISO-8601) -> seconds."""
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def in_window(event: dict[str, Any], start: Any, end: Any) -> bool:
    return epoch_seconds(start) <= epoch_seconds(event["time"]) < epoch_seconds(end)


def _patch_replay_window() -> None:
    from moto.events.models import Replay

    replay_every_event = Replay.replay_events

    def replay_events(self: Replay, archive: Any) -> None:
        # moto's replay reads only ``archive.events``: hand it the archived events inside the window.
        window = [e for e in archive.events if in_window(e, self.event_start_time, self.event_end_time)]
        replay_every_event(self, SimpleNamespace(events=window))  # type: ignore[arg-type]  # moto reads only .events

    Replay.replay_events = replay_events  # type: ignore[method-assign]  # patching moto
