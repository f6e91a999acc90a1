"""The heartbeat's scan: monitors past their deadline go down, overdue ones go late.

Every HOOKYARD_MONITOR_SCAN_SECONDS it reads the monitors whose `due_at`
has passed — an indexed range read, never a walk over every monitor — and
decides each: first `runs.overdue` (a job that started and did not finish
in time), then `monitor_states.expiry`. The flip is a conditional update on
the version and deadlines it read, so any number of replicas scanning at
once flip (and alert) each monitor once, and a ping that lands meanwhile
wins (its new deadline no longer matches). Then it sweeps the outbox:
changes whose consequences (flip record, incident, event) a crashed process
left undone, and runs the alert sweeps (reminders while down,
`monitor.stable`: monitors/alert_sweeps.py). A missed deadline, or an
overrun, is one failure: short of the monitor's `down_after` it leaves the
monitor late, a missed period waiting one more period (monitors/thresholds.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Gauge, Histogram

from hookyard_common.monitors import runs, thresholds
from hookyard_common.monitors.alert_sweeps import AlertSweeps
from hookyard_common.monitors.changes import MonitorChanges
from hookyard_common.monitors.model import COLLECTION
from hookyard_common.monitors.states import DEADLINE_FIELDS, WATCHED, Snapshot, expiry, next_due
from hookyard_common.schemas import MonitorState, utcnow
from hookyard_common.store.client import Store

log = logging.getLogger(__name__)

SCAN_SECONDS = Histogram(
    "hookyard_heartbeat_scan_seconds",
    "Duration of one heartbeat scan (due monitors and the outbox sweep).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LAST_SCAN = Gauge(
    "hookyard_heartbeat_last_scan_timestamp_seconds",
    "Unix time the last heartbeat scan completed; alert when it falls behind.",
    multiprocess_mode="max",
)
MONITORS = Gauge(
    "hookyard_monitors", "Monitors by state, counted by the heartbeat.", ["state"], multiprocess_mode="max"
)

# Due monitors decided at once (each is one or two database round trips and maybe a publish).
CONCURRENCY = 16


@dataclass
class ScanResult:
    flipped: int = 0
    rescheduled: int = 0
    settled: int = 0
    reminded: int = 0
    stabilized: int = 0
    after_maintenance: int = 0


class Scanner:
    def __init__(
        self,
        store: Store,
        changes: MonitorChanges,
        *,
        batch: int,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.monitors = store[COLLECTION]
        self.changes = changes
        self.sweeps = AlertSweeps(store, changes, clock)
        self.batch = batch
        self.clock = clock

    async def run(self, period_seconds: float) -> None:
        """Scan every `period_seconds` until cancelled; a failed scan is logged and retried next period."""
        while True:
            started = time.monotonic()
            try:
                result = await self.scan_once()
            except Exception:
                log.warning("heartbeat scan failed", exc_info=True)
            else:
                LAST_SCAN.set(time.time())
                if any(count for name, count in vars(result).items() if name != "rescheduled"):
                    log.info("heartbeat scan", extra=vars(result))
            elapsed = time.monotonic() - started
            SCAN_SECONDS.observe(elapsed)
            await asyncio.sleep(max(0.0, period_seconds - elapsed))

    async def scan_once(self) -> ScanResult:
        now = self.clock()
        result = ScanResult()
        limit = asyncio.Semaphore(CONCURRENCY)

        async def decide(doc: dict) -> None:
            async with limit:
                await self._expire(doc, now, result)

        while True:
            due = (
                await self.monitors.find({"due_at": {"$lte": now}}, {**Snapshot.FIELDS, "due_at": 1})
                .sort("due_at", 1)
                .limit(self.batch)
                .to_list()
            )
            progress = result.flipped + result.rescheduled
            await asyncio.gather(*(decide(doc) for doc in due))
            # A full batch may hide more behind it; go on while this round moved something.
            if len(due) < self.batch or result.flipped + result.rescheduled == progress:
                break
        result.settled = await self.changes.settle_due(self.batch)
        result.reminded = await self.sweeps.remind(self.batch)
        result.stabilized = await self.sweeps.stabilize(self.batch)
        result.after_maintenance = await self.sweeps.after_maintenance(self.batch)
        await self._count_states()
        return result

    async def _expire(self, doc: dict, now: datetime, result: ScanResult) -> None:
        snapshot = Snapshot.of(doc)
        # The deadlines read are part of every write's condition: a ping since then moved them.
        unchanged = {"deadline": snapshot.deadline, "run_deadline": snapshot.run_deadline}
        if runs.overdue(snapshot, now):
            await self._overrun(snapshot, now, result, unchanged)
            return
        to = expiry(snapshot, now)
        if to is not None:
            deadline = snapshot.deadline
            if deadline is None:  # a ping writes late_at and deadline together (states.deadlines)
                raise ValueError(f"monitor {snapshot.id} is due to flip but has no deadline")
            last = snapshot.last_ping_at.isoformat() if snapshot.last_ping_at else "never"
            misses = snapshot.alerting.failure_streak + 1
            waiting = thresholds.further_period(snapshot.alerting, deadline) if to == MonitorState.down else None
            details: dict[str, object]
            if waiting is not None:
                of = f"missed {misses} of {snapshot.alerting.down_after} periods"
                if snapshot.state != MonitorState.up:  # already late: one more period, silently
                    match = {"_id": snapshot.id, "version": snapshot.version, **unchanged}
                    result.rescheduled += (await self.monitors.update_one(match, {"$set": waiting})).modified_count
                    return
                to, message = MonitorState.late, f"no ping since {last}; {of}"
                details = {"also_set": waiting}
            elif to == MonitorState.down:
                message = f"no ping since {last}; the deadline was {deadline.isoformat()}"
                details = {"also_unset": DEADLINE_FIELDS, "also_set": {"failure_streak": misses}}
            else:
                message = f"no ping since {last}; down at {deadline.isoformat()} unless one arrives"
                # Looked at again when down is due, or the open run's deadline if that comes first.
                details = {"also_set": {"due_at": min(filter(None, (deadline, snapshot.run_deadline)))}}
            await self._flip(
                snapshot, to, now, result, reason="no_ping", message=message, also_match=unchanged, **details
            )
            return
        due = next_due(snapshot, now)
        update = {"$set": {"due_at": due}} if due is not None else {"$unset": {name: "" for name in DEADLINE_FIELDS}}
        moved = await self.monitors.update_one(
            {"_id": snapshot.id, "version": snapshot.version, "due_at": doc["due_at"], **unchanged}, update
        )
        result.rescheduled += moved.modified_count

    async def _overrun(self, snapshot: Snapshot, now: datetime, result: ScanResult, unchanged: dict) -> None:
        """An unfinished run is one failure: down at `down_after`, else late (or, late already, counted)."""
        misses = snapshot.alerting.failure_streak + 1
        message = f"{runs.overrun_message(snapshot)}; failure {misses} of {snapshot.alerting.down_after}"
        counted = {"failure_streak": misses, "success_streak": 0}
        if misses >= snapshot.alerting.down_after:
            await self._flip(
                snapshot,
                MonitorState.down,
                now,
                result,
                reason="run_overdue",
                message=message,
                also_set=counted,
                also_unset=(*DEADLINE_FIELDS, "run_deadline"),
                also_match=unchanged,
            )
            return
        # Short of down_after: the run no longer holds a deadline; the regular one (if any) still does.
        due = {"due_at": snapshot.deadline} if snapshot.deadline and snapshot.state in WATCHED else {}
        unset: tuple[str, ...] = ("run_deadline",) if due else ("run_deadline", *DEADLINE_FIELDS)
        if snapshot.state != MonitorState.up:
            match = {"_id": snapshot.id, "version": snapshot.version, **unchanged}
            update = {"$set": {**counted, **due}, "$unset": dict.fromkeys(unset, "")}
            result.rescheduled += (await self.monitors.update_one(match, update)).modified_count
            return
        await self._flip(
            snapshot,
            MonitorState.late,
            now,
            result,
            reason="run_overdue",
            message=message,
            also_set={**counted, **due},
            also_unset=unset,
            also_match=unchanged,
        )

    async def _flip(self, snapshot: Snapshot, to: MonitorState, now: datetime, result: ScanResult, **details) -> None:
        """Make the change (`MonitorChanges.apply`'s details) and settle it, if still undecided."""
        entry = await self.changes.apply(snapshot, to, now, **details)
        if entry is not None:
            result.flipped += 1
            try:
                await self.changes.settle(snapshot.id)
            except Exception:  # the flip stands; the outbox sweep publishes its alert later
                log.warning("could not settle a flip yet", extra={"monitor_id": snapshot.id}, exc_info=True)

    async def _count_states(self) -> None:
        """The per-state gauge: one count per state, each read from the state index alone."""
        for state in MonitorState:
            MONITORS.labels(state.value).set(await self.monitors.count_documents({"state": state.value}))
