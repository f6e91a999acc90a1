"""The tenant API for monitors:
`/v1/monitors[/{id}[/pause|/resume|/regenerate-token|/regenerate-badge-key|/checks|/flips|/incidents|/stats]]`.

The ping token is part of the monitor (it is the ping URL's credential and
the tenant needs it to configure the sender), and so is the badge key; the
HMAC secret is write-only. A slug is unique within the tenant (409).
Pausing and resuming are state changes like any other (conditional, with a
flip record); they raise no `monitor.*` event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from aiohttp import web
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from hookyard_common.monitors import maintenance, runs, schedule, uptime
from hookyard_common.monitors.alerting import AlertState
from hookyard_common.monitors.changes import MonitorChanges
from hookyard_common.monitors.history import CHECKS, FLIPS, INCIDENTS
from hookyard_common.monitors.model import (
    COLLECTION,
    NOT_NULL,
    PING_SETTINGS,
    TIMINGS,
    MonitorCreate,
    MonitorFields,
    new_badge_key,
    new_monitor,
    new_token,
)
from hookyard_common.monitors.states import DEADLINE_FIELDS, WATCHED, Snapshot, deadlines
from hookyard_common.schemas import MonitorState, utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.request_io import list_page, parse_body
from hookyard_ingest.monitors.checks import render_check
from hookyard_ingest.monitors.pings import PingSettingsCache

log = logging.getLogger(__name__)

# Conditional writes retried this often when pings keep changing the monitor underneath.
ATTEMPTS = 5
# The most flips read for a monitor's 30-day uptime (a monitor flapping every minute has 43,200).
MAX_FLIPS = 50_000
# What a list of monitors leaves out of each.
LISTED = {"last_body": 0}
# The query parameter the monitor and incident lists filter by.
STATE_FILTER = frozenset({"state"})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def render(doc: dict, base_url: str, now: datetime, with_body: bool = True) -> dict:
    """A monitor as the API shows it; a list leaves out `last_body`."""
    badge = doc.get("badge_key")
    shown = {
        "id": doc["_id"],
        "name": doc["name"],
        "state": doc["state"],
        "status_message": doc.get("status_message"),
        "token": doc["token"],
        "ping_url": f"{base_url}/ping/{doc['token']}",
        **seed_urls(doc["token"], base_url),
        "type": "webhook",
        "url": doc.get("url"),
        "slug": doc.get("slug"),
        "badge_key": badge,
        "badge_url": f"{base_url}/badge/{badge}.svg" if badge else None,
        "heartbeat_interval_seconds": doc["heartbeat_interval_seconds"],
        "schedule": doc.get("schedule"),
        "tz": doc.get("tz") or "UTC",
        "grace_seconds": doc["grace_seconds"],
        "max_run_seconds": doc.get("max_run_seconds"),
        "alerts_enabled": doc["alerts_enabled"],
        "has_secret": bool(doc.get("secret")),
        "payload_mapping": doc.get("payload_mapping"),
        "pings_received": doc.get("pings_received", 0),
        "last_ping_at": _iso(doc.get("last_ping_at")),
        "last_ping_kind": doc.get("last_ping_kind"),
        "run_started_at": _iso(doc.get("run_started_at")),
        "run_deadline": _iso(doc.get("run_deadline")),
        "last_run_seconds": doc.get("last_run_seconds"),
        "late_at": _iso(doc.get("late_at")),
        "deadline": _iso(doc.get("deadline")),
        "state_changed_at": _iso(doc.get("state_changed_at")),
        "open_incident_id": doc.get("open_incident_id"),
        **render_alerting(doc, now),
        "created_at": doc["created_at"].isoformat(),
        "updated_at": doc["updated_at"].isoformat(),
    }
    if with_body:
        shown["last_body"] = doc.get("last_body")
    return shown


def seed_urls(token: str, base_url: str) -> dict:
    """Seed 004's names of the token and its URLs (docs/migrating.md): the same monitor, pinged at its paths."""
    webhook_url = f"{base_url}/webhooks/{token}"
    return {"webhookToken": token, "webhookUrl": webhook_url, "heartbeatUrl": f"{webhook_url}/heartbeat"}


def render_alerting(doc: dict, now: datetime) -> dict:
    """The alert rules' settings and where the monitor stands with them (monitors/alerting.py)."""
    alert = AlertState.of(doc)
    window = maintenance.active(list(alert.maintenance), now)
    return {
        "down_after": alert.down_after,
        "up_after": alert.up_after,
        "renotify_seconds": alert.renotify_seconds,
        "flap_threshold": alert.flap_threshold,
        "flap_window_seconds": alert.flap_window_seconds,
        "maintenance": [_window(w) for w in alert.maintenance],
        "in_maintenance": window is not None,
        "maintenance_ends_at": _iso(maintenance.ends(window, now)) if window is not None else None,
        "flapping": alert.flapping_since is not None,
        "flapping_since": _iso(alert.flapping_since),
        "consecutive_failures": alert.failure_streak,
        "consecutive_successes": alert.success_streak,
        "legacy_signature": doc.get("legacy_signature", True),
        "unsigned_heartbeats": doc.get("unsigned_heartbeats", False),
    }


def _window(window: dict) -> dict:
    return {name: _iso(value) if isinstance(value, datetime) else value for name, value in window.items()}


def render_flip(doc: dict) -> dict:
    return {
        "id": doc["_id"],
        "at": doc["at"].isoformat(),
        "from": doc["from"],
        "to": doc["to"],
        "reason": doc["reason"],
        "message": doc.get("message"),
        "maintenance": doc.get("maintenance", False),
    }


def render_incident(doc: dict) -> dict:
    resolved_at = doc.get("resolved_at")
    return {
        "id": doc["_id"],
        "state": doc["state"],
        "status": doc["status"],
        "worst_status": doc["worst_status"],
        "opened_at": doc["opened_at"].isoformat(),
        "resolved_at": _iso(resolved_at),
        "resolution": doc.get("resolution"),
        "duration_seconds": (resolved_at - doc["opened_at"]).total_seconds() if resolved_at else None,
        "reason": doc["reason"],
        "message": doc.get("message"),
    }


class MonitorRoutes:
    def __init__(
        self,
        store: Store,
        changes: MonitorChanges,
        cache: PingSettingsCache,
        base_url: Callable[[web.Request], str],
        clock: Callable[[], datetime] = utcnow,
        forget_badge: Callable[[str], None] = lambda _: None,
    ):
        self.forget_badge = forget_badge  # the badges' cache (badges.py), told of a replaced key
        self.store = store
        self.monitors = store[COLLECTION]
        self.changes = changes
        self.cache = cache
        self.base_url = base_url
        self.clock = clock

    async def _own(self, request: web.Request) -> dict:
        tenant = request[TENANT]
        doc = await self.monitors.find_one({"_id": request.match_info["monitor_id"], "tenant_id": tenant["_id"]})
        if doc is None:
            raise ApiError(404, "unknown_monitor", "no such monitor")
        return doc

    def _shown(self, request: web.Request, doc: dict, status: int = 200) -> web.Response:
        return web.json_response(render(doc, self.base_url(request), self.clock()), status=status)

    async def create(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        body: MonitorCreate = await parse_body(request, MonitorCreate)
        doc = new_monitor(tenant["_id"], body, self.clock())
        try:
            await self.monitors.insert_one(doc)
        except DuplicateKeyError:
            raise _slug_taken(body.slug) from None
        self.cache.invalidate(doc["token"])  # a probe of this token before now is no longer true
        return self._shown(request, doc, 201)

    async def list(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        query: dict = {"tenant_id": tenant["_id"]}
        if "state" in request.query:
            state = request.query["state"]
            if state not in MonitorState.__members__:
                raise ApiError(
                    400, "invalid_state", f"state must be one of {', '.join(MonitorState.__members__)}", field="state"
                )
            query["state"] = state
        base, now = self.base_url(request), self.clock()
        # Without the last bodies (up to 100 KB each): a page of monitors stays small.
        return await list_page(
            request,
            self.monitors,
            query,
            "created_at",
            lambda d: render(d, base, now, with_body=False),
            filters=STATE_FILTER,
            projection=LISTED,
        )

    async def get(self, request: web.Request) -> web.Response:
        return self._shown(request, await self._own(request))

    async def update(self, request: web.Request) -> web.Response:
        doc = await self._own(request)
        body: MonitorFields = await parse_body(request, MonitorFields)
        fields = body.model_dump(exclude_unset=True)
        for required in ("name", "grace_seconds", "alerts_enabled", *NOT_NULL):
            if required in fields and fields[required] is None:
                raise ApiError(400, "invalid_request", f"{required} cannot be null", field=required)
        # One way of expecting pings replaces the other.
        if fields.get("schedule") is not None and "heartbeat_interval_seconds" not in fields:
            fields["heartbeat_interval_seconds"] = None
        if fields.get("heartbeat_interval_seconds") is not None and "schedule" not in fields:
            fields["schedule"] = None
        for _ in range(ATTEMPTS):
            try:
                updated = await self._patch(doc, fields)
            except DuplicateKeyError:
                raise _slug_taken(fields.get("slug")) from None
            if updated is not None:
                self.cache.invalidate(doc["token"])
                return self._shown(request, updated)
            doc = await self._own(request)
        raise ApiError(409, "monitor_busy", "the monitor kept changing under this update; retry")

    async def _patch(self, doc: dict, fields: dict) -> dict | None:
        """Apply `fields` if the monitor is unchanged since `doc` was read (else None)."""
        updates = dict(fields)
        unset: dict = {}
        merged = {**doc, **updates}
        if TIMINGS & fields.keys() and doc["state"] in {s.value for s in WATCHED}:
            # The deadlines follow the new timings from the last ping.
            due = deadlines(
                doc["last_ping_at"], merged["heartbeat_interval_seconds"], merged["grace_seconds"], schedule.of(merged)
            )
            if due and merged.get("run_deadline"):  # an open run's deadline may come first
                due["due_at"] = min(due["due_at"], merged["run_deadline"])
            updates.update(due)
            unset = {name: "" for name in DEADLINE_FIELDS if name not in due}
        if "renotify_seconds" in fields and doc["state"] == MonitorState.down.value:
            # A down monitor's reminders follow the new interval from now (alert_sweeps.py).
            every = fields["renotify_seconds"]
            if every:
                updates["renotify_at"] = self.clock() + timedelta(seconds=every)
            else:
                unset["renotify_at"] = ""
        update: dict = {"$set": {**updates, "updated_at": self.clock()}}
        if unset:
            update["$unset"] = unset
        if PING_SETTINGS & fields.keys():
            update["$inc"] = {"config_rev": 1}
        return await self.monitors.find_one_and_update(
            {
                "_id": doc["_id"],
                "config_rev": doc["config_rev"],
                "last_ping_at": doc["last_ping_at"],
                "version": doc["version"],
            },
            update,
            return_document=ReturnDocument.AFTER,
        )

    async def delete(self, request: web.Request) -> web.Response:
        doc = await self._own(request)
        await self.monitors.delete_one({"_id": doc["_id"]})
        self.cache.invalidate(doc["token"])
        if doc.get("badge_key"):
            self.forget_badge(doc["badge_key"])
        for collection in (CHECKS, FLIPS, INCIDENTS, runs.COLLECTION):
            await self.store[collection].delete_many({"monitor_id": doc["_id"]})
        return web.Response(status=204)

    async def regenerate_token(self, request: web.Request) -> web.Response:
        doc = await self._own(request)
        # The old token is dead from this write on: every ping's write matches the token.
        updated = await self.monitors.find_one_and_update(
            {"_id": doc["_id"]},
            {"$set": {"token": new_token(), "updated_at": self.clock()}, "$inc": {"config_rev": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if updated is None:
            raise ApiError(404, "unknown_monitor", "no such monitor")
        self.cache.invalidate(doc["token"])
        self.cache.invalidate(updated["token"])
        return self._shown(request, updated)

    async def regenerate_badge_key(self, request: web.Request) -> web.Response:
        doc = await self._own(request)
        # The old badge URL is dead from this write on (here at once, elsewhere once cached copies expire).
        updated = await self.monitors.find_one_and_update(
            {"_id": doc["_id"]},
            {"$set": {"badge_key": new_badge_key(), "updated_at": self.clock()}},
            return_document=ReturnDocument.AFTER,
        )
        if updated is None:
            raise ApiError(404, "unknown_monitor", "no such monitor")
        if doc.get("badge_key"):
            self.forget_badge(doc["badge_key"])
        return self._shown(request, updated)

    async def pause(self, request: web.Request) -> web.Response:
        return await self._move(request, MonitorState.paused, lambda state: state != MonitorState.paused)

    async def resume(self, request: web.Request) -> web.Response:
        return await self._move(request, MonitorState.new, lambda state: state == MonitorState.paused)

    async def _move(
        self, request: web.Request, to: MonitorState, applies: Callable[[MonitorState], bool]
    ) -> web.Response:
        """Pause or resume: idempotent (a paused monitor stays paused), conditional like every change."""
        doc = await self._own(request)
        for _ in range(ATTEMPTS):
            snapshot = Snapshot.of(doc)
            if not applies(snapshot.state):
                return self._shown(request, doc)
            entry = await self.changes.apply(snapshot, to, self.clock(), reason="api", also_unset=DEADLINE_FIELDS)
            if entry is not None:
                try:
                    await self.changes.settle(snapshot.id)
                except Exception:
                    log.warning(
                        "could not settle a pause/resume; the heartbeat will",
                        extra={"monitor_id": snapshot.id},
                        exc_info=True,
                    )
                return self._shown(request, await self._own(request))
            doc = await self._own(request)
        raise ApiError(409, "monitor_busy", "the monitor kept changing; retry")

    async def checks(self, request: web.Request) -> web.Response:
        doc = await self._own(request)
        return await list_page(
            request, self.store[CHECKS], {"monitor_id": doc["_id"]}, "at", render_check, time_window=True
        )

    async def flips(self, request: web.Request) -> web.Response:
        doc = await self._own(request)
        return await list_page(
            request, self.store[FLIPS], {"monitor_id": doc["_id"]}, "at", render_flip, time_window=True
        )

    async def incidents(self, request: web.Request) -> web.Response:
        doc = await self._own(request)
        query: dict = {"monitor_id": doc["_id"]}
        if "state" in request.query:
            if request.query["state"] not in ("open", "resolved"):
                raise ApiError(400, "invalid_state", "state must be open or resolved", field="state")
            query["state"] = request.query["state"]
        return await list_page(
            request, self.store[INCIDENTS], query, "opened_at", render_incident, filters=STATE_FILTER
        )

    async def stats(self, request: web.Request) -> web.Response:
        doc = await self._own(request)
        now = self.clock()
        oldest = now - max(uptime.WINDOWS.values())
        flips_collection = self.store[FLIPS]
        projection = {"at": 1, "from": 1, "to": 1, "maintenance": 1, "_id": 0}
        # The last flip before the longest window says which state it starts in.
        before = (
            await flips_collection.find({"monitor_id": doc["_id"], "at": {"$lte": oldest}}, projection)
            .sort("at", -1)
            .limit(1)
            .to_list()
        )
        within = (
            await flips_collection.find({"monitor_id": doc["_id"], "at": {"$gt": oldest}}, projection)
            .sort("at", 1)
            .limit(MAX_FLIPS)
            .to_list()
        )
        if not before:
            # That flip may be past its retention: the state then is the next flip's `from`, or, with none since,
            # the monitor's own (a monitor up for months keeps its uptime).
            before = [{"at": oldest, "to": within[0]["from"] if within else doc["state"]}]
        flips = [uptime.Flip(f["at"], MonitorState(f["to"])) for f in before + within]
        incidents = await self.store[INCIDENTS].count_documents(
            {"monitor_id": doc["_id"], "opened_at": {"$gt": oldest}}
        )
        recent_runs = (
            await self.store[runs.COLLECTION]
            .find({"monitor_id": doc["_id"], "finished_at": {"$gt": now - runs.STATS_WINDOW}}, {"seconds": 1, "_id": 0})
            .sort([("finished_at", -1), ("_id", -1)])
            .limit(runs.MAX_STATS_RUNS)
            .to_list()
        )
        return web.json_response(
            {
                "monitor_id": doc["_id"],
                "state": doc["state"],
                "pings_received": doc.get("pings_received", 0),
                "last_ping_at": _iso(doc.get("last_ping_at")),
                "uptime": uptime.uptime(flips, doc["created_at"], now),
                "incidents_30d": incidents,
                "runs_7d": runs.duration_stats([run["seconds"] for run in recent_runs]),
                "open_incident_id": doc.get("open_incident_id"),
                # Changes recorded in a maintenance window, and so not alerted (their flips say `maintenance`).
                "maintenance_flips_30d": sum(1 for f in within if f.get("maintenance")),
                "in_maintenance": maintenance.active(doc.get("maintenance") or [], now) is not None,
            }
        )


def _slug_taken(slug: str | None) -> ApiError:
    return ApiError(409, "slug_taken", f"another of your monitors has the slug {slug!r}", field="slug")
