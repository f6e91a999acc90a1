"""Dropping repeats: ids already handled, the most recent ones kept."""

from __future__ import annotations

from collections import OrderedDict


class SeenIds:
    """Event ids already handled, the most recent `capacity` of them."""

    def __init__(self, capacity: int = 100_000):
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, event_id: str) -> bool:
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True
