"""OpenTelemetry traces across the broker: off and costless unless an operator asks for them.

Tracing is on when the standard variables ask for an exporter (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_TRACES_EXPORTER=otlp`): `configure` then sets up
the SDK with an OTLP/HTTP exporter that reads every other `OTEL_*` variable itself. Otherwise
no SDK is set up and every helper here returns at its first line, so the hot paths pay one
attribute read. The context travels as W3C `traceparent`/`tracestate`: from the sender's
request, in the broker message's headers, and on every delivery to the subscriber.

Turning tracing on also installs OpenTelemetry's maintained instrumentation of the libraries
underneath (`_instrument`): each MongoDB command (pymongo's command listener, AsyncMongoClient
included) and each aio-pika publish and receive becomes a child span of the span it runs in.
The aiohttp server and client are not instrumented by package: the ingest's request span
(edge/request_spans.py) and the `deliver` span (delivery/attempt.py) are those spans already,
named by route and endpoint, and a package's would be a second one beside each.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

__all__ = ["SpanKind", "configure", "disable", "enable", "ids", "inject", "span", "wanted"]

#: Whether spans are made and contexts carried (set by `configure` or `enable`).
ENABLED = False
_TRACER: trace.Tracer = trace.NoOpTracer()
#: The library instrumentors `enable` installed, which `disable` removes.
_INSTRUMENTED: list[Any] = []

#: The variables that ask for traces to be exported.
_EXPORT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return any(environ.get(name) for name in _EXPORT_VARIABLES) or environ.get("OTEL_TRACES_EXPORTER") == "otlp"


def configure(service: str) -> None:
    """Set up the SDK and the OTLP exporter when the environment asks for traces."""
    if not wanted():
        return
    # Imported here: a process that does not trace never loads the SDK.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", f"hookyard-{service}")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    enable(provider)


def enable(provider: trace.TracerProvider) -> None:
    """Trace with `provider` (configure's, or a test's with an in-memory exporter)."""
    global ENABLED, _TRACER
    _TRACER = provider.get_tracer("hookyard")
    ENABLED = True
    _instrument(provider)


def disable() -> None:
    global ENABLED, _TRACER
    _TRACER, ENABLED = trace.NoOpTracer(), False
    while _INSTRUMENTED:
        _INSTRUMENTED.pop().uninstrument()


def _instrument(provider: trace.TracerProvider) -> None:
    # Imported here: a process that does not trace never loads them. pymongo's listener joins
    # the clients made after this, and aio-pika's wrappers the queues consumed after it:
    # services start tracing before they connect (runtime/runner.py). pymongo's keeps the first
    # provider it was given for the life of the process, as a service has one.
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    for instrumentor in (PymongoInstrumentor(), AioPikaInstrumentor()):
        if instrumentor not in _INSTRUMENTED:
            instrumentor.instrument(tracer_provider=provider)
            _INSTRUMENTED.append(instrumentor)


def inject(headers: MutableMapping[str, Any]) -> None:
    """Write the current context (`traceparent`) into message or request headers."""
    if ENABLED:
        propagate.inject(headers)


@contextlib.contextmanager
def span(
    name: str,
    kind: SpanKind,
    carrier: Mapping[str, Any] | None = None,
    attributes: Mapping[str, str | int] | None = None,
) -> Iterator[Span | None]:
    """A span; given a `carrier` (a request's or message's headers) it continues the trace the
    carrier's `traceparent` names, or starts a new one. None when tracing is off."""
    if not ENABLED:
        yield None
        return
    parent = None
    if carrier is not None and not trace.get_current_span().get_span_context().is_valid:
        # Outside any span: continue the carrier's trace. Inside one (aio-pika's receive span,
        # which continued the same carrier), be its child.
        parent = propagate.extract(_text_values(carrier))
    with _TRACER.start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as current:
        yield current


def ids() -> dict[str, str]:
    """The current trace and span ids, for a log record; empty when tracing is off or outside a span."""
    if not ENABLED:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


def _text_values(carrier: Mapping[str, Any]) -> dict[str, str]:
    # Broker headers may hold bytes or numbers; only the propagation headers matter.
    found = {}
    for key in ("traceparent", "tracestate"):
        value = carrier.get(key)
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        if isinstance(value, str):
            found[key] = value
    return found
