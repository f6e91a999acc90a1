"""Monitors' pure rules: state machine, deadlines, payload mapping, ping parsing, uptime, chat bodies."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pydantic import ValidationError

from hookyard_common.delivery import chat_formats
from hookyard_common.monitors import payload_mapping, uptime
from hookyard_common.monitors.payload_mapping import PayloadMapping
from hookyard_common.monitors.states import Snapshot, deadlines, expiry, next_due, ping_target, plan
from hookyard_common.schemas import Event, MonitorState
from hookyard_ingest.monitors import ping_signal
from hookyard_ingest.monitors.ping_auth import mac_ok as signature_ok

T0 = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)
S = MonitorState


def snap(state: S, *, incident: str | None = None, pinged: datetime | None = T0, interval=300, grace=60) -> Snapshot:
    due = deadlines(pinged, interval, grace) if pinged else {}
    return Snapshot("mon_1", "ten_1", state, 7, incident, pinged, due.get("late_at"), due.get("deadline"))


# ---------------------------------------------------------------- deadlines and expiry


def test_a_ping_sets_late_at_and_deadline_and_due_at():
    assert deadlines(T0, 300, 60) == {
        "late_at": T0 + timedelta(seconds=300),
        "deadline": T0 + timedelta(seconds=360),
        "due_at": T0 + timedelta(seconds=300),
    }
    assert deadlines(T0, None, 60) == {}  # push-only: never due


@pytest.mark.parametrize(
    ("state", "seconds_after_ping", "expected"),
    [
        (S.up, 299, None),
        (S.up, 300, S.late),  # the interval has passed: late, within grace
        (S.up, 359, S.late),
        (S.up, 360, S.down),  # interval + grace: down
        (S.late, 330, None),
        (S.late, 360, S.down),
        (S.degraded, 330, None),  # degraded is not marked late
        (S.degraded, 360, S.down),
        (S.down, 3600, None),  # already down
        (S.new, 3600, None),
        (S.paused, 3600, None),
    ],
)
def test_expiry_marks_late_within_grace_and_down_after(state, seconds_after_ping, expected):
    assert expiry(snap(state), T0 + timedelta(seconds=seconds_after_ping)) == expected


def test_no_grace_goes_straight_from_up_to_down():
    assert expiry(snap(S.up, grace=0), T0 + timedelta(seconds=300)) == S.down


def test_a_due_monitor_that_does_not_flip_is_looked_at_again_at_its_deadline_or_never():
    at = T0 + timedelta(seconds=300)
    assert next_due(snap(S.degraded), at) == T0 + timedelta(seconds=360)
    assert next_due(snap(S.down), at) is None
    assert next_due(snap(S.new), at) is None


# ---------------------------------------------------------------- what pings do


@pytest.mark.parametrize(
    ("current", "requested", "expected"),
    [
        (S.new, S.up, S.up),
        (S.up, S.up, None),
        (S.late, S.up, S.up),
        (S.down, S.up, S.up),
        (S.up, S.degraded, S.degraded),
        (S.degraded, S.down, S.down),
        (S.down, S.degraded, S.degraded),
        (S.up, None, None),  # unmapped payload: alive, state kept
        (S.paused, S.down, None),  # paused ignores pings
    ],
)
def test_ping_targets(current, requested, expected):
    assert ping_target(current, requested) == expected


# ---------------------------------------------------------------- planned changes


def test_a_change_is_conditional_on_the_state_and_version_it_was_decided_on():
    planned = plan(snap(S.up), S.down, T0, reason="no_ping", also_match={"deadline": T0})
    assert planned.filter == {"_id": "mon_1", "version": 7, "state": "up", "deadline": T0}
    assert planned.update["$inc"] == {"version": 1}
    assert planned.update["$set"]["state"] == "down"
    assert planned.update["$push"] == {"pending": planned.entry}
    assert planned.update["$min"] == {"outbox_at": T0}
    assert planned.entry["event_type"] == "monitor.down"
    assert planned.entry["event_id"].startswith("evt_")


def test_incidents_open_on_trouble_span_degraded_and_down_and_resolve_on_up_or_pause():
    opened = plan(snap(S.up), S.degraded, T0, reason="ping")
    incident = opened.entry["incident"]
    assert incident["op"] == "open" and opened.update["$set"]["open_incident_id"] == incident["id"]

    worse = plan(snap(S.degraded, incident="inc_1"), S.down, T0, reason="ping")
    assert worse.entry["incident"] == {"op": "update", "id": "inc_1"}
    assert worse.update["$set"]["open_incident_id"] == "inc_1"

    for end in (S.up, S.paused):
        resolved = plan(snap(S.down, incident="inc_1"), end, T0, reason="ping")
        assert resolved.entry["incident"] == {"op": "resolve", "id": "inc_1"}
        assert resolved.update["$set"]["open_incident_id"] is None

    late = plan(snap(S.up), S.late, T0, reason="no_ping")
    assert late.entry["incident"] is None and late.entry["event_type"] == "monitor.late"


def test_pause_and_resume_raise_no_event():
    assert plan(snap(S.up), S.paused, T0, reason="api").entry["event_type"] is None
    assert plan(snap(S.paused), S.new, T0, reason="api").entry["event_type"] is None


def test_a_change_to_the_same_state_is_a_bug():
    with pytest.raises(ValueError):
        plan(snap(S.up), S.up, T0, reason="ping")


# ---------------------------------------------------------------- payload mapping

STATUSPAGE = PayloadMapping(
    status_field="component.status",
    values={
        "operational": "up",
        "degraded_performance": "degraded",
        "partial_outage": "degraded",
        "major_outage": "down",
    },
    message_field="component.name",
)


def test_mapping_reads_a_field_path_and_looks_it_up():
    mapped = payload_mapping.apply(STATUSPAGE, {"component": {"status": "major_outage", "name": "API"}})
    assert (mapped.status, mapped.value, mapped.message, mapped.matched) == ("down", "major_outage", "API", True)


def test_mapping_ignores_case_and_matches_json_spellings_and_list_positions():
    ci = PayloadMapping(status_field="builds.0.passed", values={"TRUE": "up", "false": "down"})
    assert payload_mapping.apply(ci, {"builds": [{"passed": True}]}).status == "up"
    assert payload_mapping.apply(ci, {"builds": [{"passed": False}]}).status == "down"
    numeric = PayloadMapping(status_field="code", values={"0": "up"})
    assert payload_mapping.apply(numeric, {"code": 0}).status == "up"


def test_unmapped_or_missing_values_use_the_default_or_keep_the_state():
    for document in ({"component": {"status": "under_maintenance"}}, {"other": 1}, [1, 2], {"component": "x"}):
        mapped = payload_mapping.apply(STATUSPAGE, document)
        assert mapped.status is None and not mapped.matched
    with_default = STATUSPAGE.model_copy(update={"default_status": "degraded"})
    assert payload_mapping.apply(with_default, {"component": {"status": "?"}}).status == "degraded"


def test_mapping_is_validated():
    with pytest.raises(ValidationError):
        PayloadMapping(status_field="a..b", values={"x": "up"})
    with pytest.raises(ValidationError):
        PayloadMapping(status_field="a", values={"x": "sideways"})
    with pytest.raises(ValidationError):
        PayloadMapping(status_field="a", values={})
    with pytest.raises(ValidationError, match="twice"):
        PayloadMapping(status_field="a", values={"OK": "up", "ok": "down"})


# ---------------------------------------------------------------- reading a ping


def read(path=None, query=None, body=b"", media="", mapping=None):
    return ping_signal.read(path, query or {}, body, media, mapping)


def test_a_bare_ping_is_a_heartbeat():
    signal = read()
    assert (signal.status, signal.source) == (S.up, "heartbeat")
    assert read(body=b"backup done in 3 min", media="text/plain").status == S.up


def test_status_from_path_query_or_body_in_that_order():
    assert read("down", {"status": "up"}, b'{"status": "up"}').status == S.down
    signal = read(None, {"status": "degraded", "msg": "slow"})
    assert (signal.status, signal.source, signal.message) == (S.degraded, "query", "slow")
    body = orjson.dumps({"status": "down", "message": "db gone", "metadata": {"region": "us-east-1"}})
    signal = read(body=body, media="application/json")
    assert (signal.status, signal.source, signal.message, signal.metadata) == (
        S.down,
        "body",
        "db gone",
        {"region": "us-east-1"},
    )
    # curl -d sends form encoding: a body starting with { is still read as JSON.
    assert read(body=b'{"status":"DOWN"}', media="application/x-www-form-urlencoded").status == S.down


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"path": "sideways"}, "invalid_status"),
        ({"query": {"status": "ok"}}, "invalid_status"),
        ({"body": b'{"status": "broken"}', "media": "application/json"}, "invalid_status"),
        ({"body": b'{"status": "up", "metadata": [1]}', "media": "application/json"}, "invalid_metadata"),
        ({"body": b'{"status": "up", "message": 5}', "media": "application/json"}, "invalid_message"),
        (
            {"body": b'{"status": "up", "message": "' + b"x" * 1001 + b'"}', "media": "application/json"},
            "invalid_message",
        ),
        ({"body": b"{nope", "media": "application/json"}, "malformed_json"),
    ],
)
def test_bad_pings_name_the_problem(kwargs, code):
    with pytest.raises(ping_signal.SignalError) as caught:
        read(**kwargs)
    assert caught.value.code == code


def test_a_mapping_reads_the_providers_body_but_an_explicit_status_wins():
    body = orjson.dumps({"component": {"status": "partial_outage", "name": "Checkout"}})
    signal = read(body=body, media="application/json", mapping=STATUSPAGE)
    assert (signal.status, signal.source, signal.message, signal.mapped_value) == (
        S.degraded,
        "mapping",
        "Checkout",
        "partial_outage",
    )
    assert read("up", body=body, media="application/json", mapping=STATUSPAGE).status == S.up
    unmapped = read(
        body=b'{"component": {"status": "under_maintenance"}}', media="application/json", mapping=STATUSPAGE
    )
    assert unmapped.status is None and unmapped.source == "mapping"


def test_signature_is_hex_hmac_of_the_raw_body_with_optional_prefix():
    import hashlib
    import hmac

    digest = hmac.new(b"shared-secret-123", b'{"status":"up"}', hashlib.sha256).hexdigest()
    assert signature_ok(b"shared-secret-123", b'{"status":"up"}', digest)
    assert signature_ok(b"shared-secret-123", b'{"status":"up"}', "sha256=" + digest.upper())
    assert not signature_ok(b"shared-secret-123", b'{"status":"up"} ', digest)
    assert not signature_ok(b"other-secret-4567", b'{"status":"up"}', digest)
    assert not signature_ok(b"shared-secret-123", b"", None)
    assert not signature_ok(b"shared-secret-123", b"", "ünïcode")


# ---------------------------------------------------------------- uptime


def test_uptime_counts_down_time_and_leaves_out_new_and_paused():
    created = T0 - timedelta(days=40)
    flips = [
        uptime.Flip(created + timedelta(minutes=1), S.up),  # before every window: the starting state
        uptime.Flip(T0 - timedelta(hours=2), S.down),
        uptime.Flip(T0 - timedelta(hours=1), S.up),
        uptime.Flip(T0 - timedelta(minutes=30), S.degraded),
        uptime.Flip(T0 - timedelta(minutes=20), S.up),
        uptime.Flip(T0 - timedelta(minutes=10), S.paused),
    ]
    result = uptime.uptime(flips, created, T0)
    day = result["24h"]
    monitored = 24 * 3600 - 600
    assert day["monitored_seconds"] == monitored
    assert day["down_seconds"] == 3600 and day["degraded_seconds"] == 600
    assert day["percent"] == round(100 * (monitored - 3600) / monitored, 3)
    assert result["30d"]["down_seconds"] == 3600


def test_uptime_starts_when_the_monitor_was_created_and_is_unknown_before_a_ping():
    created = T0 - timedelta(hours=1)
    assert uptime.uptime([], created, T0)["24h"]["percent"] is None
    flips = [uptime.Flip(created + timedelta(minutes=30), S.up)]
    day = uptime.uptime(flips, created, T0)["24h"]
    assert day["monitored_seconds"] == 1800 and day["percent"] == 100.0


# ---------------------------------------------------------------- chat bodies


def monitor_event(event_type="monitor.down", message="no ping since 10:00 <script>"):
    payload = {"monitor_id": "mon_1", "monitor_name": "checkout-api", "status": "down", "message": message}
    return Event(tenant_id="ten_1", event_type=event_type, payload=payload, occurred_at=T0)


def test_slack_alert_has_text_and_blocks_with_escaped_outside_text():
    body = chat_formats.slack(monitor_event())
    assert body["text"].startswith("🔴 checkout-api is DOWN")
    assert "&lt;script&gt;" in body["text"] and "<script>" not in orjson.dumps(body).decode()
    assert body["blocks"][0]["type"] == "section"


def test_discord_alert_has_content_and_an_embed_and_mentions_nobody():
    body = chat_formats.discord(monitor_event("monitor.up", "@everyone back"))
    assert body["content"] == "🟢 checkout-api is UP"
    assert body["embeds"][0]["color"] == 0x2EB67D and body["embeds"][0]["description"] == "@everyone back"
    assert body["allowed_mentions"] == {"parse": []}


def test_other_events_show_their_type_and_data():
    event = Event(tenant_id="t", event_type="user.created", payload={"user_id": "usr_1"})
    assert chat_formats.slack(event)["text"] == 'Event user.created: ```{"user_id":"usr_1"}```'
    assert '"user_id"' in chat_formats.discord(event)["embeds"][0]["description"]
