"""Per-user flood control: a sliding window of recent photos per user."""

from __future__ import annotations

import time
from collections import defaultdict, deque


class RateLimiter:
    def __init__(self, max_events: int = 12, per_seconds: float = 60.0):  # an album is <= 10
        self.max_events = max_events
        self.per_seconds = per_seconds
        self._events: dict[int, deque[float]] = defaultdict(deque)
        self._warned: set[int] = set()

    def allow(self, key: int, now: float | None = None) -> bool:
        """Count one event for ``key``; False when it is over the limit."""
        now = time.monotonic() if now is None else now
        events = self._events[key]
        while events and events[0] <= now - self.per_seconds:
            events.popleft()
        if len(events) >= self.max_events:
            return False
        events.append(now)
        self._warned.discard(key)
        return True

    def first_refusal(self, key: int) -> bool:
        """True once per flood, so the user is told politely but not spammed."""
        if key in self._warned:
            return False
        self._warned.add(key)
        return True
