"""Bodies for chat webhooks: an endpoint with `payload_format` `slack` or `discord`
receives a message those services display, instead of the event envelope.

Slack incoming webhooks take `{"text", "blocks"}`; Discord webhooks take
`{"content", "embeds"}`. `monitor.*` events read as alerts ("🔴 checkout-api
is DOWN" and the monitor's message); any other event shows its type and its
data as JSON. Text from outside (monitor messages, payloads) is escaped for
Slack and may not mention anyone on Discord.
"""

from __future__ import annotations

from typing import Any

import orjson

from hookyard_common.operational_events import (
    MONITOR_DEGRADED,
    MONITOR_DOWN,
    MONITOR_FLAPPING,
    MONITOR_LATE,
    MONITOR_STABLE,
    MONITOR_UP,
)
from hookyard_common.schemas import Event

MONITOR_LOOK = {
    MONITOR_DOWN: ("🔴", "DOWN", 0xE01E5A),
    MONITOR_DEGRADED: ("🟠", "DEGRADED", 0xF2A03D),
    MONITOR_LATE: ("🟡", "LATE", 0xECB22E),
    MONITOR_UP: ("🟢", "UP", 0x2EB67D),
    MONITOR_FLAPPING: ("🔁", "FLAPPING", 0xF2A03D),
    MONITOR_STABLE: ("✅", "STABLE", 0x2EB67D),
}
OTHER_COLOR = 0x4A90D9
DETAILS_LIMIT = 1_500


def _details(event: Event) -> str:
    payload: Any = event.payload
    if event.inbound is not None:
        text = event.inbound.raw_body.decode("utf-8", errors="replace")
    elif event.event_type in MONITOR_LOOK and isinstance(payload, dict):
        # The monitor's own message; else the alert's sentence (a flapping change may have no message).
        return (payload.get("message") or payload.get("why") or "")[:DETAILS_LIMIT]
    else:
        text = orjson.dumps(payload).decode()
    if len(text) > DETAILS_LIMIT:
        text = text[:DETAILS_LIMIT] + "…"
    return f"```{text}```"


def _headline(event: Event) -> tuple[str, int]:
    look = MONITOR_LOOK.get(event.event_type)
    payload = event.payload if isinstance(event.payload, dict) else {}
    if look is None:
        return f"Event {event.event_type}", OTHER_COLOR
    icon, word, color = look
    name = payload.get("monitor_name") or payload.get("monitor_id") or "monitor"
    return f"{icon} {name} is {word}", color


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(event: Event) -> dict:
    headline, _ = _headline(event)
    details = _details(event)
    text = f"{headline}: {details}" if details else headline
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(f"*{headline}*\n{details}".strip())}},
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": _slack_escape(f"{event.event_type} · {event.occurred_at.isoformat()}")}
            ],
        },
    ]
    return {"text": _slack_escape(text), "blocks": blocks}


def discord(event: Event) -> dict:
    headline, color = _headline(event)
    embed = {
        "title": headline[:256],
        "description": _details(event)[:4_096],
        "color": color,
        "timestamp": event.occurred_at.isoformat(),
        "footer": {"text": event.event_type},
    }
    # Nothing from a monitor's message or a payload may ping @everyone.
    return {"content": headline[:2_000], "embeds": [embed], "allowed_mentions": {"parse": []}}


FORMATTERS = {"slack": slack, "discord": discord}


def body(payload_format: str, event: Event) -> bytes:
    return orjson.dumps(FORMATTERS[payload_format](event))
