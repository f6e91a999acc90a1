"""A job's runs: a `start` ping opens one, the success that follows closes it and records its duration.

Like healthchecks, a monitor keeps one open run that its deadline watches
(`run_started_at`, `run_rid`, `run_deadline`: the latest start) and, to
pair concurrent runs by the `rid` they carry, the starts still open
(`open_runs`, the newest `MAX_OPEN_RUNS`). A finish closes the starts of
its rid (no rid is a rid of its own); a success records the run here,
with its duration. A run must finish within the monitor's
`max_run_seconds`, or within its grace when it declares none: past that
deadline the heartbeat marks it `down`, "started but did not finish".

Records expire HOOKYARD_MONITOR_HISTORY_RETENTION_DAYS after they finished;
the stats read the last `STATS_WINDOW` of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.monitors.model import COLLECTION as MONITORS
from hookyard_common.monitors.states import RUN_IGNORED, Snapshot
from hookyard_common.schemas import sortable_id
from hookyard_common.store.client import CollectionIndexes, Store
from hookyard_common.store.retention import Retention

COLLECTION = "monitor_runs"
INDEXES = CollectionIndexes(
    COLLECTION,
    (IndexModel([("monitor_id", ASCENDING), ("finished_at", DESCENDING), ("_id", DESCENDING)], name="monitor_recent"),),
    retention=Retention("finished_at", "monitor_history_retention_days"),
)

#: Starts kept for pairing by rid; a job that starts more than this many runs at once loses the oldest durations.
MAX_OPEN_RUNS = 20
#: The runs the stats describe, back from now.
STATS_WINDOW = timedelta(days=7)
#: The most runs the stats read (a job every minute runs 10,080 times a week).
MAX_STATS_RUNS = 20_000
#: The open run, as the monitor document holds it; cleared when it finishes.
SLOT_FIELDS = ("run_started_at", "run_rid", "run_deadline")
#: What the status message of an overrun says first.
OVERRUN = "started but did not finish"
#: The ping kinds that finish a run, and whether they record its duration (a success does).
FINISHING = {"success": True, "up": True, "fail": False, "down": False}
#: What the ping's write must return for `RunLog.finish`.
FIELDS = {"tenant_id": 1, "open_runs": 1, "run_started_at": 1, "run_rid": 1, "run_deadline": 1}


def deadline(started_at: datetime, grace_seconds: int, max_run_seconds: int | None) -> datetime:
    """When a run started at `started_at` must have finished."""
    return started_at + timedelta(seconds=max_run_seconds if max_run_seconds is not None else grace_seconds)


def overdue(snapshot: Snapshot, now: datetime) -> bool:
    """Whether the monitor's open run is past its deadline: one failure (the heartbeat's `_overrun`)."""
    return snapshot.run_deadline is not None and snapshot.run_deadline <= now and snapshot.state not in RUN_IGNORED


def overrun_message(snapshot: Snapshot) -> str:
    started = snapshot.run_started_at.isoformat() if snapshot.run_started_at else "?"
    due = snapshot.run_deadline.isoformat() if snapshot.run_deadline else "?"
    return f"{OVERRUN}: started at {started}, due to finish by {due}"


def started_at(open_runs: Sequence[dict], rid: str | None) -> datetime | None:
    """When the latest open start of `rid` began; None if it has none open."""
    for run in reversed(open_runs):
        if run.get("rid") == rid:
            return run["started_at"]
    return None


def record(monitor: dict, rid: str | None, started: datetime, finished: datetime) -> dict:
    return {
        "_id": sortable_id("run"),
        "monitor_id": monitor["_id"],
        "tenant_id": monitor["tenant_id"],
        "rid": rid,
        "started_at": started,
        "finished_at": finished,
        "seconds": round(max(0.0, (finished - started).total_seconds()), 3),
    }


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values (the value at or below which `fraction` of them lie)."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def duration_stats(newest_first: Sequence[float]) -> dict:
    """Last, median and p95 duration of runs (seconds), newest first; nulls with no run."""
    if not newest_first:
        return {"runs": 0, "last_seconds": None, "median_seconds": None, "p95_seconds": None}
    ordered = sorted(newest_first)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {
        "runs": len(ordered),
        "last_seconds": newest_first[0],
        "median_seconds": round(median, 3),
        "p95_seconds": percentile(ordered, 0.95),
    }


def opening(now: datetime, rid: str | None, grace_seconds: int, max_run_seconds: int | None) -> dict:
    """The parts of a `start` ping's write: the open run, its deadline (due no later), its start kept for rid."""
    due = deadline(now, grace_seconds, max_run_seconds)
    return {
        "$set": {"run_started_at": now, "run_rid": rid, "run_deadline": due},
        "$min": {"due_at": due},
        "$push": {"open_runs": {"$each": [{"rid": rid, "started_at": now}], "$slice": -MAX_OPEN_RUNS}},
    }


def closing(rid: str | None) -> dict:
    """The part of a finishing ping's write: its rid's starts are no longer open."""
    return {"$pull": {"open_runs": {"rid": rid}}}


class RunLog:
    """What a finishing ping does after its write: the open run closed, the duration recorded."""

    def __init__(self, store: Store):
        self.monitors = store[MONITORS]
        self.runs = store[COLLECTION]

    async def finish(self, before: dict, rid: str | None, kind: str, now: datetime) -> float | None:
        """Close what `before` (the monitor as the ping found it) had open for `rid`; the run's seconds."""
        slot_started = before.get("run_started_at")
        started = started_at(before.get("open_runs") or [], rid)
        if started is None and slot_started is not None and before.get("run_rid") == rid:
            started = slot_started  # pushed out of open_runs by newer starts
        seconds = None
        if started is not None and FINISHING[kind]:
            run = record(before, rid, started, now)
            await self.runs.insert_one(run)
            seconds = run["seconds"]
            await self.monitors.update_one({"_id": before["_id"]}, {"$set": {"last_run_seconds": seconds}})
        if slot_started is None:
            return seconds
        unchanged = {"_id": before["_id"], "run_started_at": slot_started, "run_rid": before.get("run_rid")}
        if before.get("run_rid") == rid:
            await self.monitors.update_one(
                unchanged, {"$set": {"run_started_at": None, "run_rid": None}, "$unset": {"run_deadline": ""}}
            )
        elif before.get("run_deadline") is not None:
            # Another run is still open: the ping's new deadlines must not hide its own.
            await self.monitors.update_one(unchanged, {"$min": {"due_at": before["run_deadline"]}})
        return seconds
