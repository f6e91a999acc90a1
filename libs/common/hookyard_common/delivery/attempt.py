"""One delivery attempt: build the signed request, POST it, classify the answer.

Shared by the dispatcher (first attempts) and the retrier (later ones), so
both sign, time out and judge answers the same way. Redirects are not
followed (a 3xx is a failure), and only the first bytes of a response are
read and kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime

import aiohttp
import orjson
from opentelemetry.trace import SpanKind, StatusCode

from hookyard_common.core import tracing
from hookyard_common.delivery import chat_formats, signing
from hookyard_common.delivery.endpoints import RESERVED_HEADERS, ApiKeyAuth, Endpoint, auth_headers
from hookyard_common.delivery.ssrf import DestinationNotAllowed
from hookyard_common.header_rules import check_headers
from hookyard_common.schemas import DeliveryTask

USER_AGENT = "Hookyard/0.1"


@dataclass(frozen=True)
class AttemptResult:
    # success: 2xx. gone: 410, the endpoint is to be disabled. failure: anything
    # else, retried per the endpoint's policy.
    outcome: str
    reason: str
    status: int | None = None
    latency_ms: float = 0.0
    response_body: str | None = None
    retry_after_seconds: float | None = None
    request_headers: dict[str, str] = field(default_factory=dict)

    @property
    def slow_down(self) -> bool:
        """Timeouts and 429s earn at least the minimum penalty before the next try."""
        return self.reason in ("timeout", "http_429")


def build_request(endpoint: Endpoint, task: DeliveryTask, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers of an attempt, signed with every current secret of the endpoint."""
    event = task.event
    if endpoint.payload_format != "standard":
        body = chat_formats.body(endpoint.payload_format, event)
        content_type = "application/json"
    elif event.inbound is not None:
        # A provider's webhook is forwarded as it came: same body, same content type.
        body = event.inbound.raw_body
        content_type = next(
            (v for k, v in event.inbound.headers if k.lower() == "content-type"), "application/octet-stream"
        )
    else:
        envelope = {"type": event.event_type, "timestamp": event.occurred_at.isoformat(), "data": event.payload}
        if event.severity is not None:
            envelope["severity"] = event.severity.value
        if event.context:
            envelope["context"] = event.context
        body = orjson.dumps(envelope)
        content_type = "application/json"
    timestamp = int(now.timestamp())
    shaped = {**endpoint.headers, **{k: v for k, v in event.headers.items() if k.lower() not in RESERVED_HEADERS}}
    shaped.update(auth_headers(endpoint.auth))
    # Again here: stored before the API's rules, or published straight onto the broker.
    check_headers(shaped.items())
    headers = {"User-Agent": USER_AGENT, "Content-Type": content_type, **shaped}
    secrets = endpoint.signing_secrets(now)
    if endpoint.signature_format == "legacy":
        headers.update(
            signing.legacy_headers(
                secrets[0],
                event_id=event.id,
                event_type=event.event_type,
                tenant_id=event.tenant_id,
                timestamp=timestamp,
                body=body,
            )
        )
    else:
        headers.update(signing.standard_headers(secrets, task.message_id, timestamp, body))
    return body, headers


def _recordable(endpoint: Endpoint, headers: dict[str, str]) -> dict[str, str]:
    """Request headers as stored with the attempt: credentials removed."""
    hidden = {"authorization"}
    if isinstance(endpoint.auth, ApiKeyAuth):
        hidden.add(endpoint.auth.header_name.lower())
    return {k: v for k, v in headers.items() if k.lower() not in hidden}


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    chunks, size = [], 0
    while size < cap:
        chunk = await response.content.read(cap - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class Deliverer:
    def __init__(self, session: aiohttp.ClientSession, response_max_bytes: int):
        self.session = session
        self.response_max_bytes = response_max_bytes

    async def attempt(self, endpoint: Endpoint, task: DeliveryTask, now: datetime) -> AttemptResult:
        """One POST to the endpoint; when tracing, in a span of its own whose context it carries."""
        if not tracing.ENABLED:
            return await self._attempt(endpoint, task, now)
        ids: dict[str, str | int] = {
            "hookyard.tenant_id": endpoint.tenant_id,
            "hookyard.endpoint_id": endpoint.id,
            "hookyard.event_id": task.event.id,
            "hookyard.attempt": task.attempt,
        }
        with tracing.span("deliver", SpanKind.CLIENT, attributes=ids) as current:
            result = await self._attempt(endpoint, task, now)
            if current is not None:
                current.set_attribute("hookyard.outcome", result.reason)
                if result.outcome != "success":
                    current.set_status(StatusCode.ERROR, result.reason)
            return result

    async def _attempt(self, endpoint: Endpoint, task: DeliveryTask, now: datetime) -> AttemptResult:
        try:
            body, headers = build_request(endpoint, task, now)
        except Exception as exc:  # a refused header, a secret of another format, an unencodable payload
            reason = f"{type(exc).__name__}: {exc}"[:500]
            return AttemptResult("failure", "request_not_built", response_body=reason)
        tracing.inject(headers)  # the subscriber may continue the trace
        recorded = _recordable(endpoint, headers)
        started = time.perf_counter()

        def elapsed() -> float:
            return round((time.perf_counter() - started) * 1000, 2)

        try:
            async with self.session.post(
                endpoint.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=endpoint.timeout_seconds),
            ) as response:
                content = await _read_capped(response, self.response_max_bytes)
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except DestinationNotAllowed as exc:
            return AttemptResult(
                "failure",
                "destination_not_allowed",
                latency_ms=elapsed(),
                response_body=str(exc),
                request_headers=recorded,
            )
        except (TimeoutError, aiohttp.ServerTimeoutError):
            return AttemptResult("failure", "timeout", latency_ms=elapsed(), request_headers=recorded)
        except aiohttp.ClientError as exc:
            return AttemptResult(
                "failure",
                "connection_error",
                latency_ms=elapsed(),
                response_body=repr(exc)[:500],
                request_headers=recorded,
            )
        except (ValueError, TypeError, UnicodeError) as exc:  # the client refused to write the request
            return AttemptResult(
                "failure",
                "request_not_sent",
                latency_ms=elapsed(),
                response_body=repr(exc)[:500],
                request_headers=recorded,
            )
        text = content.decode("utf-8", errors="replace")
        if 200 <= status < 300:
            outcome = "success"
        elif status == 410:
            outcome = "gone"
        else:
            outcome = "failure"
        return AttemptResult(
            outcome,
            f"http_{status}",
            status=status,
            latency_ms=elapsed(),
            response_body=text,
            retry_after_seconds=retry_after,
            request_headers=recorded,
        )
