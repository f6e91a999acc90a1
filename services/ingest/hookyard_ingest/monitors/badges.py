"""`GET /badge/{badge_key}.svg|.json`: a monitor's state for a README or a status page, as healthchecks offers.

The badge key is its own 256-bit secret, apart from the ping token, so a
published badge can show the state but never ping. A badge on a busy page is
fetched by everyone who opens it, and nothing limits who does, so each
replica keeps what it read for HOOKYARD_MONITOR_CACHE_SECONDS (as it keeps
a monitor's ping settings): a flood of one badge costs one read per replica
and period, and the state shown is at most that old. `regenerate-badge-key`
kills the old URL at once on the replica that made the change, and within
that period on the others. Unknown keys spend the caller's failure budget
like unknown tokens, and are remembered as unknown. The
SVG is the shields.io flat style: the monitor's name on grey, its state on
the state's colour, every tenant-given character escaped.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from aiohttp import web

from hookyard_common.core.cache import RefreshingCache
from hookyard_common.core.settings import Settings
from hookyard_common.monitors.model import COLLECTION, TOKEN_HEX_LENGTH
from hookyard_common.store.client import Store
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.limits import FailureThrottle, client_ip, parse_networks

COLOURS = {
    "up": "#4c1",
    "late": "#fe7d37",
    "degraded": "#dfb317",
    "down": "#e05d44",
}
#: new and paused: not watched.
IDLE_COLOUR = "#9f9f9f"
#: The longest label drawn; longer names are cut.
MAX_LABEL = 40
#: Pixels per character of 11px Verdana, near enough for a badge.
CHAR_WIDTH = 7
PADDING = 10
# Badges are fetched by READMEs and proxies that cache: the state must be fresh.
HEADERS = {"Cache-Control": "no-cache, max-age=0"}


def svg(label: str, status: str) -> str:
    """A shields-like flat badge: `label | status`."""
    label = label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"
    left, right = len(label) * CHAR_WIDTH + PADDING, len(status) * CHAR_WIDTH + PADDING
    width = left + right
    colour = COLOURS.get(status, IDLE_COLOUR)
    text, shown = escape(label, {'"': "&quot;"}), escape(status)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{text}: {shown}"><title>{text}: {shown}</title>'
        f'<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        f'<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2}" y="14">{text}</text><text x="{left + right / 2}" y="14">{shown}</text></g></svg>'
    )


class BadgeRoutes:
    def __init__(self, settings: Settings, store: Store, failures: FailureThrottle):
        monitors = store[COLLECTION]
        self.failures = failures
        self.trusted = parse_networks(settings.trusted_proxies)

        async def load(key: str) -> dict | None:
            return await monitors.find_one({"badge_key": key}, {"name": 1, "state": 1})

        self.cache: RefreshingCache[str, dict | None] = RefreshingCache(
            load, settings.monitor_cache_seconds, stale_seconds=0, absent_seconds=settings.negative_cache_seconds
        )

    def forget(self, badge_key: str) -> None:
        """A key replaced (or its monitor gone): no longer answered from this replica's memory."""
        self.cache.invalidate(badge_key)

    async def svg(self, request: web.Request) -> web.Response:
        doc = await self._monitor(request)
        return web.Response(text=svg(doc["name"], doc["state"]), content_type="image/svg+xml", headers=HEADERS)

    async def json(self, request: web.Request) -> web.Response:
        doc = await self._monitor(request)
        return web.json_response({"status": doc["state"], "label": doc["name"]}, headers=HEADERS)

    async def _monitor(self, request: web.Request) -> dict:
        key = request.match_info["badge_key"]
        ip = client_ip(request, self.trusted)
        if len(key) != TOKEN_HEX_LENGTH:
            raise _unknown()
        doc = await self.failures.look_up(self.cache, key, ip)
        if doc is None:
            raise _unknown()
        return doc


def _unknown() -> ApiError:
    return ApiError(404, "unknown_badge", "no monitor has this badge key (it may have been regenerated)")
