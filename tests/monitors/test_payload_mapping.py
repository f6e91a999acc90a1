"""Payload mapping's edge cases, as docs/monitors.md#payload-mapping-the-senders-own-json states them:
floats, explicit nulls, list positions out of range or oddly spelt, non-ASCII case folding, and what a
check keeps of a long value or message. The rules directly, then once through a real ping."""

import pytest

from hookyard_common.monitors import payload_mapping
from hookyard_common.monitors.payload_mapping import MAX_MESSAGE, MAX_VALUE, PayloadMapping
from monitor_helpers import create_monitor, listed, ping


def mapped(document, status_field: str = "s", **values: str):
    return payload_mapping.apply(PayloadMapping(status_field=status_field, values=values or {"x": "up"}), document)


@pytest.mark.parametrize(
    ("value", "key", "matches"),
    [
        (2.0, "2", True),  # a number matches its shortest spelling
        (2, "2", True),
        (-0.0, "0", True),
        (1.5, "1.5", True),
        (1.50, "1.5", True),
        (1.5, "1.50", False),  # a key is text: "1.50" is no number's shortest spelling
        (0.1, "0.1", True),
        (1e300, "1e+300", True),  # too large to be an exact integer: its JSON spelling
        (2.0, "2.0", False),
        ("2.0", "2.0", True),  # a string is matched as it is
    ],
)
def test_numbers_match_their_shortest_json_spelling(value, key, matches):
    assert (mapped({"s": value}, **{key: "down"}).status == "down") is matches


def test_an_explicit_null_is_the_value_null_and_a_missing_field_is_no_value():
    mapping = PayloadMapping(status_field="s", values={"null": "degraded"}, message_field="m")
    found = payload_mapping.apply(mapping, {"s": None, "m": None})
    assert (found.status, found.value, found.message, found.matched) == ("degraded", "null", None, True)
    absent = payload_mapping.apply(mapping, {"m": "why"})
    assert (absent.status, absent.value, absent.message, absent.matched) == (None, None, "why", False)
    # A null on the way is not a field to go through.
    through = payload_mapping.apply(mapping.model_copy(update={"status_field": "a.s"}), {"a": None})
    assert (through.value, through.matched) == (None, False)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("l.0", "a"),
        ("l.2", "c"),
        ("l.3", None),  # past the end
        ("l.99999999999999999999", None),
        ("l.-1", None),  # no counting from the end
        ("l.01", None),  # no leading zeros
        ("l.+1", None),
        ("l.²", None),  # a digit to str.isdigit, not a position
        ("l.١", None),  # an Arabic-Indic one
        ("d.0", "zero"),  # in an object, a digit is a key like any other
        ("l.0.x", None),  # through a string
    ],
)
def test_list_positions_are_plain_decimals_inside_the_list(path, value):
    document = {"l": ["a", "b", "c"], "d": {"0": "zero"}}
    assert mapped(document, path).value == value


def test_matching_ignores_case_and_unicode_normalization():
    mapping = PayloadMapping(status_field="s", values={"ÉCHEC": "down", "straße": "degraded", "Å": "up"})
    for sent, status in [
        ("échec", "down"),
        ("e\u0301chec", "down"),  # decomposed: e and a combining acute accent
        ("E\u0301CHEC", "down"),
        ("STRASSE", "degraded"),  # full case folding, not lower()
        ("\u212b", "up"),  # the Angstrom sign is canonically Å
        ("å", "up"),
        ("echec", None),  # an accent is not a case
    ]:
        assert payload_mapping.apply(mapping, {"s": sent}).status == status, sent
    with pytest.raises(ValueError, match="twice"):
        PayloadMapping(status_field="s", values={"é": "up", "E\u0301": "down"})


def test_a_check_keeps_a_bounded_value_and_message():
    mapping = PayloadMapping(status_field="s", values={"ok": "up"}, message_field="m")
    long = payload_mapping.apply(mapping, {"s": "é" * 5_000, "m": "ü" * 5_000})
    assert (long.value, long.message) == ("é" * MAX_VALUE, "ü" * MAX_MESSAGE)
    # A value is matched whole before it is cut: a key as long as keys may be still matches.
    at_limit = PayloadMapping(status_field="s", values={"k" * MAX_VALUE: "down"})
    assert payload_mapping.apply(at_limit, {"s": "K" * MAX_VALUE}).status == "down"
    assert payload_mapping.apply(at_limit, {"s": "k" * (MAX_VALUE + 1)}).status is None
    # A message that is not text is its JSON, cut alike.
    shown = payload_mapping.apply(mapping, {"s": "ok", "m": {"why": ["x" * 2_000]}})
    assert shown.message == ('{"why":["' + "x" * 2_000)[:MAX_MESSAGE]


async def test_the_edge_cases_over_a_real_ping(ingest):
    key = await ingest.tenant()
    mapping = {
        "status_field": "run.steps.1.code",
        "values": {"0": "up", "1.5": "degraded", "ÉCHEC": "down"},
        "message_field": "run.note",
    }
    created = await create_monitor(ingest, key, heartbeat_interval_seconds=None, payload_mapping=mapping)
    states = []
    for code, note in [(0.0, None), (1.5, "é" * 3_000), ("e\u0301chec", "x"), ("ok", "y")]:
        status, body = await ping(
            ingest, created["token"], method="POST", json={"run": {"steps": [{}, {"code": code}], "note": note}}
        )
        assert status == 200, body
        states.append(body["monitor"]["state"])
    # A position past the end or spelt oddly is no value: the ping is unmapped, never a 5xx.
    for steps in ([{"code": 0}], "not a list"):
        status, body = await ping(ingest, created["token"], method="POST", json={"run": {"steps": steps}})
        assert (status, body["monitor"]["state"]) == (200, "down"), body
    assert states == ["up", "degraded", "down", "down"]
    # A position no list has (a superscript two is a digit to Python, not a number).
    odd = {**mapping, "status_field": "run.steps.²"}
    status, _, _ = await ingest.call("PATCH", f"/v1/monitors/{created['id']}", token=key, json={"payload_mapping": odd})
    assert status == 200
    status, body = await ping(ingest, created["token"], method="POST", json={"run": {"steps": [0, 0, 0]}})
    assert (status, body["monitor"]["state"]) == (200, "down"), body
    checks = await listed(ingest, key, f"/v1/monitors/{created['id']}/checks", 7)
    shown = [(c["outcome"], c["mapped_value"], c["message"]) for c in reversed(checks)]
    assert shown == [
        ("accepted", "0", None),
        ("accepted", "1.5", "é" * MAX_MESSAGE),
        ("accepted", "e\u0301chec", "x"),
        ("unmapped", "ok", "y"),
        ("unmapped", None, None),
        ("unmapped", None, None),
        ("unmapped", None, None),
    ]
