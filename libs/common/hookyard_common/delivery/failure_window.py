"""An endpoint's recent attempts, counted over a sliding time window: the circuit breaker's input.

A run of failures in a row is a poor trip wire: an endpoint failing half
its requests strings five together often enough to be paused again and
again, while a failure rate over a window with a minimum volume (as
Convoy's breaker does) tells "mostly down" from "flaky" and ignores a few
failures of an endpoint that hardly gets traffic. The window is a ring of
time buckets, so memory per endpoint is fixed whatever its traffic, and it
lives in memory: counting costs no database write.
"""

from __future__ import annotations

#: Buckets a window is split into: it slides by a tenth of its length.
BUCKETS = 10


class FailureWindow:
    def __init__(self, seconds: float):
        self.bucket_seconds = seconds / BUCKETS
        # Per bucket: its index in time (which slice of the clock it counts), requests, failures.
        self._slots: list[list[int]] = [[-1, 0, 0] for _ in range(BUCKETS)]

    def record(self, now: float, failed: bool) -> None:
        index = int(now // self.bucket_seconds)
        slot = self._slots[index % BUCKETS]
        if slot[0] != index:  # a bucket last used a whole window ago: start it afresh
            slot[:] = [index, 0, 0]
        slot[1] += 1
        slot[2] += int(failed)

    def counts(self, now: float) -> tuple[int, int]:
        """Requests and failures within the last window."""
        oldest = int(now // self.bucket_seconds) - BUCKETS + 1
        live = [slot for slot in self._slots if slot[0] >= oldest]
        return sum(s[1] for s in live), sum(s[2] for s in live)

    def trips(self, now: float, failure_rate: float, minimum_requests: int) -> bool:
        """Enough attempts lately, and at least `failure_rate` of them failed."""
        requests, failures = self.counts(now)
        return requests >= minimum_requests and failures >= failure_rate * requests

    def is_empty(self, now: float) -> bool:
        return self.counts(now)[0] == 0

    def clear(self) -> None:
        for slot in self._slots:
            slot[:] = [-1, 0, 0]
