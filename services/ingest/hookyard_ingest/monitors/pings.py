"""`GET|HEAD|POST /ping/{token}[/{status}]`, `/ping/{ping_key}/{slug}[/{status}]`: a monitored system reports in.

Seed 004's `POST /webhooks/{token}` (a status push) and `GET /webhooks/{token}/heartbeat`
are the same pings under its URLs (`seed_ping`): a push is `POST /ping/{token}`, a heartbeat
a bare `GET /ping/{token}`, signed and limited alike.

Cheapest refusal first: token (or ping key) shape (404), the monitor (404;
a lookup only within the caller's failure budget), the per-IP,
per-monitor-per-IP and per-monitor limits, body size (1 MiB, while
reading; the first 100 KB are kept), its HMAC (401), what the ping says
(400). Then one write records the ping and returns the state it found;
only a ping that changes the state writes again (a conditional update,
exactly once, see `hookyard_common.monitors.changes`), and one that
finishes a run closes it (`hookyard_common.monitors.runs`).

The token is looked up in a short per-replica cache, but the cache is never
the authority: the ping's write matches the token *and* the monitor's
`config_rev`, so a regenerated token or deleted monitor stops at once on
every replica (the write matches nothing, a fresh read finds nothing: 404),
and a changed secret, mapping or interval is noticed at once too (the write
matches nothing, the settings are read again and the ping re-checked).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from aiohttp import web
from prometheus_client import Counter
from pymongo import ReturnDocument

from hookyard_common.core import logs
from hookyard_common.core.cache import RefreshingCache
from hookyard_common.core.settings import Settings
from hookyard_common.monitors import ping_keys, runs, schedule, thresholds
from hookyard_common.monitors.changes import MonitorChanges
from hookyard_common.monitors.model import COLLECTION, SLUG_PATTERN, TOKEN_HEX_LENGTH
from hookyard_common.monitors.payload_mapping import PayloadMapping
from hookyard_common.monitors.schedule import Cron
from hookyard_common.monitors.states import Snapshot, deadlines, ping_target
from hookyard_common.schemas import MonitorState, utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.edge import bodies
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.limits import FailureThrottle, client_ip, client_key, parse_networks
from hookyard_ingest.edge.rate_leases import LeasedLimiter, enforce_edge
from hookyard_ingest.monitors import ping_auth, ping_signal
from hookyard_ingest.monitors.checks import CheckLog, stored_body

log = logging.getLogger(__name__)

PING_BODY_LIMIT = 1_048_576
TOKEN_SHAPE = re.compile(f"^[0-9a-f]{{{TOKEN_HEX_LENGTH}}}$")
SLUG_SHAPE = re.compile(SLUG_PATTERN)
# Attempts at a ping whose monitor keeps changing under it (settings edited, state raced).
ATTEMPTS = 5

PINGS = Counter(
    "hookyard_monitor_pings_total",
    "Pings received, by outcome (accepted, paused, unmapped or the error code).",
    ["outcome"],
)


@dataclass(frozen=True)
class PingSettings:
    """What answering a ping needs of its monitor: cached per replica, checked by `config_rev`."""

    monitor_id: str
    tenant_id: str
    name: str
    token: str
    secret: bytes | None
    mapping: PayloadMapping | None
    interval_seconds: int | None
    cron: Cron | None
    grace_seconds: int
    max_run_seconds: int | None
    config_rev: int
    legacy_signature: bool = False
    unsigned_heartbeats: bool = False

    FIELDS = {
        "tenant_id": 1,
        "name": 1,
        "token": 1,
        "secret": 1,
        "payload_mapping": 1,
        "heartbeat_interval_seconds": 1,
        "schedule": 1,
        "tz": 1,
        "grace_seconds": 1,
        "max_run_seconds": 1,
        "config_rev": 1,
        "legacy_signature": 1,
        "unsigned_heartbeats": 1,
    }

    @classmethod
    def of(cls, doc: dict) -> PingSettings:
        mapping = doc.get("payload_mapping")
        return cls(
            monitor_id=doc["_id"],
            tenant_id=doc["tenant_id"],
            name=doc["name"],
            token=doc["token"],
            secret=doc["secret"].encode() if doc.get("secret") else None,
            mapping=PayloadMapping.model_validate(mapping) if mapping else None,
            interval_seconds=doc.get("heartbeat_interval_seconds"),
            cron=schedule.of(doc),
            grace_seconds=doc.get("grace_seconds", 0),
            max_run_seconds=doc.get("max_run_seconds"),
            config_rev=doc.get("config_rev", 0),
            # A monitor stored before signed timestamps existed keeps taking its senders' body-only signatures.
            legacy_signature=doc.get("legacy_signature", True),
            unsigned_heartbeats=doc.get("unsigned_heartbeats", False),
        )


class PingSettingsCache(RefreshingCache[str, "PingSettings | None"]):
    """Monitors' ping settings by token; unknown tokens are remembered for `absent_seconds`."""

    def __init__(self, store: Store, ttl_seconds: float, absent_seconds: float):
        async def load(token: str) -> PingSettings | None:
            doc = await store[COLLECTION].find_one({"token": token}, PingSettings.FIELDS)
            return PingSettings.of(doc) if doc is not None else None

        super().__init__(load, ttl_seconds, absent_seconds=absent_seconds)

    async def fresh(self, token: str) -> PingSettings | None:
        self.invalidate(token)
        return await self.get(token)


@dataclass(frozen=True)
class Recorded:
    state: MonitorState
    changed: bool
    run: float | None = None  # the seconds of the run this ping finished


class PingRoutes:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        cache: PingSettingsCache,
        changes: MonitorChanges,
        checks: CheckLog,
        limiter: LeasedLimiter,
        failures: FailureThrottle,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.settings = settings
        self.store = store
        self.monitors = store[COLLECTION]
        self.runs = runs.RunLog(store)
        self.cache = cache
        self.changes = changes
        self.checks = checks
        self.limiter = limiter
        self.failures = failures
        self.clock = clock
        self.trusted = parse_networks(settings.trusted_proxies)
        self._settling: set[asyncio.Task] = set()

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response(await self._counted(request))

    async def seed_ping(self, request: web.Request) -> web.Response:
        """`POST /webhooks/{token}` and `GET /webhooks/{token}/heartbeat`, seed 004's URLs: a ping like
        any other, answered with the seed's `success`, `monitor.status` and `monitor.lastHeartbeat` too."""
        answer = await self._counted(request)
        monitor = answer["monitor"]
        # In the seed's spelling, to the millisecond as stored: `2026-01-20T10:30:00.000Z`.
        at = datetime.fromisoformat(answer["at"]).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        seed = {"status": monitor["state"], "lastHeartbeat": at}
        return web.json_response({"success": True, **answer, "monitor": {**monitor, **seed}})

    async def _counted(self, request: web.Request) -> dict:
        try:
            return await self._ping(request)
        except ApiError as exc:
            PINGS.labels(exc.code).inc()
            raise

    async def _ping(self, request: web.Request) -> dict:
        ip = client_ip(request, self.trusted)
        token, kind = await self._address(request, ip)
        monitor = await self.failures.look_up(self.cache, token, ip)
        if monitor is None:
            raise _unknown()
        logs.bind(tenant_id=monitor.tenant_id)
        await self._limit(monitor, client_key(ip))
        body = await bodies.read_bounded(request, PING_BODY_LIMIT)
        for _ in range(ATTEMPTS):
            if monitor is None:
                raise _unknown()
            monitor = await self._verified(request, monitor, body, ip, kind)
            now = self.clock()
            try:
                said = ping_signal.read(kind, request.query, body, bodies.media_type(request), monitor.mapping)
                signal = replace(said, rid=ping_signal.run_id(request.query))
            except ping_signal.SignalError as exc:
                await self._check(request, monitor, now, body, ip, outcome=exc.code, error=exc.message)
                raise ApiError(400, exc.code, exc.message, field=exc.field) from None
            recorded = await self._record(monitor, signal, now, body)
            if recorded is not None:
                break
            monitor = await self.cache.fresh(token)  # changed or gone since cached: read it again
        else:
            raise ApiError(503, "monitor_busy", "the monitor kept changing; retry", headers={"Retry-After": "1"})

        outcome = (
            "paused" if recorded.state == MonitorState.paused else "unmapped" if signal.status is None else "accepted"
        )
        check_id = await self._check(
            request, monitor, now, body, ip, outcome=outcome, signal=signal, state=recorded.state, run=recorded.run
        )
        PINGS.labels(outcome).inc()
        return {
            "ok": True,
            "monitor": {"id": monitor.monitor_id, "name": monitor.name, "state": recorded.state.value},
            "status": signal.status.value if signal.status else None,
            "kind": signal.kind,
            "changed": recorded.changed,
            "run_seconds": recorded.run,
            "check_id": check_id,
            "at": now.isoformat(),
        }

    async def _address(self, request: web.Request, ip: str) -> tuple[str, str | None]:
        """The monitor's token and the ping's kind (the path's `{status}`), from `/{token}[/{status}]`
        or `/{ping_key}/{slug}[/{status}]`."""
        info = request.match_info
        slug: str | None
        if "ping_key" in info:
            key, slug, kind = info["ping_key"], info["slug"], info.get("status")
        elif TOKEN_SHAPE.match(info["token"]):
            return info["token"], info.get("status")
        else:  # `/{ping_key}/{slug}`: the same shape as `/{token}/{status}`, told apart by the key's
            key, slug, kind = info["token"], info.get("status"), None
        if not ping_keys.SHAPE.match(key) or slug is None or not SLUG_SHAPE.match(slug):
            raise _unknown()
        # Looked up afresh each time (a replaced key stops at once), within the caller's failure budget.
        self.failures.check(ip)
        tenant_id = await ping_keys.tenant_of(self.store, key)
        doc = await self.monitors.find_one({"tenant_id": tenant_id, "slug": slug}, {"token": 1}) if tenant_id else None
        if doc is None:
            self.failures.failed(ip)
            raise _unknown()
        return doc["token"], kind

    async def _limit(self, monitor: PingSettings, client: str) -> None:
        """Per monitor, so one sender pinging many monitors gets each monitor's allowance."""
        settings = self.settings
        await enforce_edge(
            self.limiter,
            f"ping:{monitor.monitor_id}",
            "monitor",
            client,
            ceiling=settings.rate_limit_per_ip_total,
            per_client=settings.ping_rate_limit_per_ip,
            per_target=settings.ping_rate_limit_per_token,
        )

    async def _verified(
        self, request: web.Request, monitor: PingSettings, body: bytes, ip: str, kind: str | None
    ) -> PingSettings:
        """The monitor's settings once the ping is signed as they ask (ping_auth.py); else a 401."""
        refused = self._refusal(request, monitor, body, kind)
        if refused is None:
            return monitor
        # The secret may have changed since it was cached: judge with the current one.
        current = await self.cache.fresh(monitor.token)
        if current is None:
            raise _unknown()
        if current.config_rev != monitor.config_rev:
            refused = self._refusal(request, current, body, kind)
            if refused is None:
                return current
        await self._check(request, current, self.clock(), body, ip, outcome=refused.code)
        raise ApiError(401, refused.code, refused.message)

    def _refusal(
        self, request: web.Request, monitor: PingSettings, body: bytes, kind: str | None
    ) -> ping_auth.Refusal | None:
        """Why the ping is refused (ping_auth.py), None if not; a slug ping is judged like a token ping."""
        if monitor.secret is None:
            return None
        presented = ping_auth.Presented.of(request.headers)
        if (
            monitor.unsigned_heartbeats
            and presented == ping_auth.Presented(None, None)
            and ping_auth.bare_heartbeat(kind, request.query, body)  # the kind, not a slug in its place
        ):
            return None
        return ping_auth.refusal(
            monitor.secret,
            ping_auth.what_it_says(kind, request.rel_url.raw_query_string),
            body,
            presented,
            self.clock().timestamp(),
            self.settings.signature_tolerance_seconds,
            legacy=monitor.legacy_signature,
        )

    async def _record(
        self, monitor: PingSettings, signal: ping_signal.Signal, now: datetime, body: bytes
    ) -> Recorded | None:
        """Store the ping and the change it makes; None when the monitor's settings are stale."""
        last = {"last_ping_at": now, "last_ping_kind": signal.kind, "last_body": stored_body(body)[0]}
        update = self._update(monitor, signal, now, last)
        before = await self.monitors.find_one_and_update(
            {"token": monitor.token, "config_rev": monitor.config_rev, "state": {"$ne": MonitorState.paused.value}},
            update,
            projection={**Snapshot.FIELDS, **runs.FIELDS},
            return_document=ReturnDocument.BEFORE,
        )
        if before is None:
            # Paused (recorded, state kept), or changed since cached (None: read again).
            paused = await self.monitors.update_one(
                {"token": monitor.token, "config_rev": monitor.config_rev, "state": MonitorState.paused.value},
                {"$set": last, "$inc": {"pings_received": 1}},
            )
            return Recorded(MonitorState.paused, False) if paused.modified_count else None
        run = await self.runs.finish(before, signal.rid, signal.kind, now) if signal.kind in runs.FINISHING else None
        found = Snapshot.of(before)
        snapshot = replace(found, last_ping_at=now, alerting=thresholds.counted(found.alerting, signal.status))
        for _ in range(ATTEMPTS):
            target = ping_target(snapshot.state, signal.status)
            if target is None or not thresholds.confirmed(snapshot.state, target, snapshot.alerting):
                return Recorded(snapshot.state, False, run)
            entry = await self.changes.apply(
                snapshot, target, now, reason="ping", message=signal.message, metadata=signal.metadata
            )
            if entry is not None:
                self._settle_soon(snapshot.id)
                return Recorded(target, True, run)
            # Someone changed the state meanwhile (the scanner, another ping, a pause): decide again.
            current = await self.monitors.find_one({"_id": snapshot.id}, Snapshot.FIELDS)
            if current is None:
                return None
            snapshot = replace(Snapshot.of(current), last_ping_at=now)
        raise ApiError(503, "monitor_busy", "the monitor kept changing; retry", headers={"Retry-After": "1"})

    @staticmethod
    def _update(monitor: PingSettings, signal: ping_signal.Signal, now: datetime, last: dict) -> dict:
        """The ping's write: what it said, the deadlines it refreshes, the run it opens or closes."""
        fields = dict(last)
        if signal.alive:
            fields.update(deadlines(now, monitor.interval_seconds, monitor.grace_seconds, monitor.cron))
        if signal.status is not None:
            fields["status_message"] = signal.message
        # A fail or non-zero exit counts as a failure, an exit 0 as a success, start and log as neither:
        # counted in this same write, so exact under races (thresholds.py).
        streaks = thresholds.streak_update(signal.status)
        fields.update(streaks.get("$set", {}))
        update: dict = {"$inc": {"pings_received": 1, **streaks.get("$inc", {})}}
        if signal.kind == "start":
            update.update(runs.opening(now, signal.rid, monitor.grace_seconds, monitor.max_run_seconds))
            fields.update(update["$set"])
        elif signal.kind in runs.FINISHING:
            update.update(runs.closing(signal.rid))
        update["$set"] = fields
        return update

    def _settle_soon(self, monitor_id: str) -> None:
        """Flip record, incident and alert, after the answer; the heartbeat's sweep covers a crash."""

        async def settle() -> None:
            try:
                await self.changes.settle(monitor_id)
            except Exception:
                log.warning(
                    "could not settle a monitor change; the heartbeat will",
                    extra={"monitor_id": monitor_id},
                    exc_info=True,
                )

        task = asyncio.create_task(settle())
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def drain(self) -> None:
        """At shutdown: let changes being settled finish."""
        if self._settling:
            await asyncio.wait(self._settling, timeout=self.settings.shutdown_deadline_seconds)
        await self.checks.flush()

    async def _check(
        self,
        request: web.Request,
        monitor: PingSettings,
        at: datetime,
        body: bytes,
        ip: str,
        *,
        outcome: str,
        signal: ping_signal.Signal | None = None,
        state: MonitorState | None = None,
        error: str | None = None,
        run: float | None = None,
    ) -> str:
        text, truncated = stored_body(body)
        return await self.checks.record(
            monitor.monitor_id,
            monitor.tenant_id,
            at,
            outcome=outcome,
            error=error,
            source=signal.source if signal else None,
            status=signal.status.value if signal and signal.status else None,
            state=state.value if state else None,
            message=signal.message if signal else None,
            metadata=signal.metadata if signal else {},
            mapped_value=signal.mapped_value if signal else None,
            method=request.method,
            client_ip=ip,
            user_agent=request.headers.get("User-Agent"),
            content_type=request.headers.get("Content-Type"),
            kind=signal.kind if signal else None,
            exit_status=signal.exit_status if signal else None,
            rid=signal.rid if signal else None,
            run_seconds=run,
            body=text or "",
            body_size=len(body),
            body_truncated=truncated,
        )


def _unknown() -> ApiError:
    return ApiError(
        404,
        "unknown_monitor",
        "no monitor has this token, or this slug under this ping key (either may have been replaced or deleted)",
    )
