"""One provider webhook retried once is one trace: the ingest's request span, the dispatcher's
and the retrier's consume spans, both deliveries; the receiver continues the same trace."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys

import pytest
from opentelemetry.trace import SpanKind

from helpers import Lines, endpoint
from hookyard_common.core import logs, tracing

SENDER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_a_retried_webhook_is_one_trace_the_receiver_continues(spans, platform, receiver):
    key = await platform.tenant()
    source = await platform.source(key, "none")
    url = receiver.behave("/flaky", [(500, 0), (200, 0)])
    await endpoint(platform, key, url, event_types=["ping"], retry_policy={"schedule_seconds": [0.05]})
    parent = f"00-{SENDER_TRACE}-00f067aa0ba902b7-01"
    status, body, _ = await platform.call(
        "POST", f"/in/{source['id']}", json={"type": "ping"}, headers={"traceparent": parent}
    )
    assert status == 200, body
    first, second = (await receiver.wait_for("/flaky", 2))[:2]
    for _ in range(100):  # the retrier's span ends once its delivery is recorded
        if sum(s.name == "deliver" for s in spans.get_finished_spans()) == 2 and any(
            s.name.startswith("hookyard.retry.due") for s in spans.get_finished_spans()
        ):
            break
        await asyncio.sleep(0.05)
    finished = spans.get_finished_spans()
    mine = [s for s in finished if format(s.context.trace_id, "032x") == SENDER_TRACE]
    names = sorted(s.name for s in mine)
    assert "POST /in/{source_id}" in names, names
    assert names.count("deliver") == 2, names
    assert any(n.startswith("hookyard.dispatch") for n in names), names
    assert any(n.startswith("hookyard.retry.due") for n in names), names
    for request in (first, second):
        assert request["headers"]["traceparent"].split("-")[1] == SENDER_TRACE
    ingest_span = next(s for s in mine if s.name == "POST /in/{source_id}")
    assert ingest_span.parent.span_id == 0x00F067AA0BA902B7  # continues the sender's span
    assert json.loads(first["body"])["type"] == "ping"
    by_id = {s.context.span_id: s for s in mine}
    # The libraries' own spans, children of ours: the ingest's confirmed publish ...
    [publish] = [s for s in mine if s.kind == SpanKind.PRODUCER and s.parent.span_id == ingest_span.context.span_id]
    assert publish.name == f"hookyard.events,{platform.tenant_ids[-1]}.ping send", publish.name
    # ... which the dispatcher's receive span continues, and MongoDB commands inside a consume.
    assert any(s.kind == SpanKind.CONSUMER and s.parent.span_id == publish.context.span_id for s in mine), names
    commands = [s for s in mine if s.attributes.get("db.system") == "mongodb"]
    assert any(by_id[s.parent.span_id].name.endswith(" process") for s in commands if s.parent), names


def test_tracing_off_loads_no_sdk_and_no_instrumentation():
    probe = (
        "import sys; from hookyard_common.core import tracing; tracing.configure('probe'); "
        "import hookyard_ingest.app, hookyard_dispatcher.main; "
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'opentelemetry.instrumentation'))))"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    loaded = subprocess.run([sys.executable, "-c", probe], env=environ, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout


def test_logs_carry_the_span_ids_and_nothing_when_off(spans):
    formatter = logs.JsonFormatter("test")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    assert "trace_id" not in json.loads(formatter.format(record))  # outside any span
    with tracing.span("work", tracing.SpanKind.INTERNAL) as current:
        entry = json.loads(formatter.format(record))
    assert entry["trace_id"] == format(current.get_span_context().trace_id, "032x")
    assert entry["span_id"] == format(current.get_span_context().span_id, "016x")
    tracing.disable()
    with tracing.span("work", tracing.SpanKind.INTERNAL) as nothing:
        assert nothing is None and "trace_id" not in json.loads(formatter.format(record))


def test_tracing_is_wanted_only_when_an_exporter_is_asked_for():
    assert not tracing.wanted({})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"})


async def test_a_tenants_event_continues_the_trace_it_was_published_in(spans, platform, receiver):
    key = await platform.tenant()
    await endpoint(platform, key, receiver.url("/ok"), event_types=["user.*"])
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    status, body, _ = await platform.call(
        "POST",
        "/v1/events",
        token=key,
        json={"event_type": "user.created", "payload": {}},
        headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
    )
    assert status == 202, body
    [request] = await receiver.wait_for("/ok", 1)
    assert request["headers"]["traceparent"].split("-")[1] == trace_id
    assert any(
        s.name == "POST /v1/events" and format(s.context.trace_id, "032x") == trace_id
        for s in spans.get_finished_spans()
    )


@pytest.fixture
def lines():
    """Every record from INFO up, and the delivery worker's per-attempt debug line."""
    handler, root, worker = (
        Lines(logging.DEBUG),
        logging.getLogger(),
        logging.getLogger("hookyard_common.delivery.worker"),
    )
    levels = root.level, worker.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    worker.setLevel(logging.DEBUG)
    yield handler.entries
    root.removeHandler(handler)
    root.setLevel(levels[0])
    worker.setLevel(levels[1])


def attempt_lines(lines: list[dict]) -> list[dict]:
    """The line each delivery attempt writes (`worker.log_attempt`)."""
    return [e for e in lines if e["message"].startswith("webhook delivered")]


async def test_log_lines_carry_the_trace_and_the_ids_in_hand(spans, lines, start_platform, receiver):
    platform = await start_platform(access_log=True)
    keys = [await platform.tenant("one"), await platform.tenant("two")]
    sources = [await platform.source(key, "none") for key in keys]
    endpoints = [await endpoint(platform, key, receiver.url("/ok"), event_types=["ping"]) for key in keys]
    traces = ["5bf92f3577b34da6a3ce929d0e0e4731", "5bf92f3577b34da6a3ce929d0e0e4732"]
    # Two tenants' webhooks at once: neither request's ids may land on the other's lines.
    answers = await asyncio.gather(
        *(
            platform.call(
                "POST",
                f"/in/{source['id']}",
                json={"type": "ping"},
                headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01", "X-Request-Id": f"req-{n}"},
            )
            for n, (source, trace) in enumerate(zip(sources, traces, strict=True))
        )
    )
    assert [status for status, _, _ in answers] == [200, 200], answers
    await receiver.wait_for("/ok", 2)
    await platform.call("GET", "/healthz")  # a later request on the same client: no ids of its own
    for _ in range(100):
        if len(attempt_lines(lines)) == 2:
            break
        await asyncio.sleep(0.05)
    finished = spans.get_finished_spans()
    for n, ((_, body, _), trace) in enumerate(zip(answers, traces, strict=True)):
        tenant_id, event_id = platform.tenant_ids[n], body["id"]
        [request] = [e for e in lines if e.get("route") == "/in/{source_id}" and e["request_id"] == f"req-{n}"]
        [server] = [s for s in finished if s.name == "POST /in/{source_id}" and s.context.trace_id == int(trace, 16)]
        assert (request["tenant_id"], request["event_id"], request["trace_id"]) == (tenant_id, event_id, trace)
        assert request["span_id"] == format(server.context.span_id, "016x")
        [delivery] = [e for e in attempt_lines(lines) if e.get("event_id") == event_id]
        [consume] = [s for s in finished if format(s.context.span_id, "016x") == delivery["span_id"]]
        assert consume.name.endswith(" process") and delivery["trace_id"] == trace
        assert (delivery["tenant_id"], delivery["endpoint_id"]) == (tenant_id, endpoints[n]["id"])
        assert "request_id" not in delivery  # the ingest's request ids stay in the ingest
    [health] = [e for e in lines if e.get("route") == "/healthz"]
    assert not {"request_id", "tenant_id", "event_id"} & set(health), health
