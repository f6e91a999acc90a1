"""`make bench`: the CPU a hostile sender can make the ingest spend, against a valid request.

A source URL is not a secret, so anyone can send a request that the verifiers must
refuse. For every provider scheme this builds a normal, validly signed request of
`--body-bytes` (1 MiB: the default body limit) and the worst requests we know how to
construct with a body of the same size within aiohttp's limits (8190 bytes per header
line, 128 headers, 8190 bytes of request line): headers full of signature entries, empty
and wrongly sized entries, huge ids and tokens, forms of many tiny or repeated fields.

Each request is run in-process exactly as the ingest does after reading the body: the
body parsed (`bodies.parse`) and the provider's `verify`. CPU time is measured with
`time.process_time`, best of `--rounds`. Printed per scheme: the normal request's CPU,
the worst request's (and which it was), and worst/normal, once for the verifier alone and
once with the parsing; the run fails when a verifier ratio exceeds 2.0 (`none` verifies
nothing, so its microseconds are shown, not judged).

With `--http` the same requests are then sent, `--requests` of each kind, to a real
`hookyard-ingest` (with a local broker and database, as `ingest_bench.py` starts them),
and the ingest process's CPU per request is read from /proc: everything a request costs,
aiohttp's parsing and, for the valid ones, the confirmed publish included.

    python bench/edge_cpu_bench.py [--body-bytes 1048576] [--secrets 1] [--rounds 3]
                                   [--http] [--requests 100]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hmac
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

import orjson
from multidict import CIMultiDict

from hookyard_ingest.edge import bodies
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.receiving.providers import PROVIDERS, InboundRequest, VerificationError
from hookyard_ingest.receiving.providers.mailgun import MAILGUN_TOKEN_MAX
from hookyard_ingest.receiving.providers.twilio import MAX_FORM_FIELDS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_bench import _start_ingest, api, local_infra, stop  # noqa: E402

NOW = int(time.time())  # real time: the ingest checks timestamps against its clock
TOLERANCE = 300
HEADER_VALUE = 8_100  # what fits one header line of 8190 bytes, with the name
URL = "https://hooks.example.com/in/src_bench"
JSON = "application/json"
LIMIT = 2.0


@dataclass
class Case:
    """One scheme: a valid request and the hostile ones, as (content type, headers, body, url)."""

    provider: str
    secrets: list[str]
    normal: tuple
    hostile: dict[str, tuple] = field(default_factory=dict)
    options: dict = field(default_factory=dict)


def json_body(size: int, **fields: object) -> bytes:
    """A JSON object of exactly `size` bytes holding `fields` and padding."""
    bare = orjson.dumps({**fields, "pad": ""})
    return orjson.dumps({**fields, "pad": "x" * max(0, size - len(bare))})


def sign(key: bytes, *parts: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, b"".join(parts), algorithm).digest()


def wrong(encoding: str, size: int = 32) -> str:
    raw = bytes(range(size))
    return raw.hex() if encoding == "hex" else base64.b64encode(raw).decode()


def fill(entry: str, separator: str, prefix: str = "") -> str:
    """A header value of HEADER_VALUE characters made of `entry` repeated."""
    count = (HEADER_VALUE - len(prefix)) // (len(entry) + len(separator))
    return prefix + separator.join([entry] * count)


def single_header(provider: str, name: str, encoding: str, prefix: str, size: int, url: str) -> Case:
    """Schemes with one signature of the raw body in one header (hmac, GitHub, Meta, Shopify)."""
    body = json_body(size, type="bench.event", id="evt_1", object="page", action="opened")
    digest = sign(b"secret-0", body)
    value = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    garbage = "ab" * (HEADER_VALUE // 2) if encoding == "hex" else "QUJD" * (HEADER_VALUE // 4)
    return Case(
        provider,
        ["secret-0"],
        (JSON, {name: prefix + value}, body, url),
        {
            "wrong signature": (JSON, {name: prefix + wrong(encoding)}, body, url),
            "8 KB signature": (JSON, {name: prefix + garbage}, body, url),
        },
        {"verify_token": "tok"} if provider == "meta" else {},
    )


def standard_webhooks(size: int, url: str) -> Case:
    key = b"standard-webhooks-secret-key-32b"
    secret = "whsec_" + base64.b64encode(key).decode()
    body = json_body(size, type="invoice.paid")
    good = base64.b64encode(sign(key, b"msg_1.", str(NOW).encode(), b".", body)).decode()

    def headers(signature: str, msg_id: str = "msg_1") -> dict:
        return {"webhook-id": msg_id, "webhook-timestamp": str(NOW), "webhook-signature": signature}

    return Case(
        "standard_webhooks",
        [secret],
        (JSON, headers(f"v1,{good}"), body, url),
        {
            "8 KB of v1 entries": (JSON, headers(fill(f"v1,{wrong('base64')}", " ")), body, url),
            "8 KB of empty entries": (JSON, headers(fill("v1,", " ")), body, url),
            "8 KB id": (JSON, headers(f"v1,{wrong('base64')}", "m" * HEADER_VALUE), body, url),
        },
    )


def stripe(size: int, url: str) -> Case:
    body = json_body(size, id="evt_1", type="payment_intent.succeeded")
    good = sign(b"whsec_bench", str(NOW).encode(), b".", body).hex()
    ts = f"t={NOW},"
    return Case(
        "stripe",
        ["whsec_bench"],
        (JSON, {"Stripe-Signature": f"{ts}v1={good}"}, body, url),
        {
            "8 KB of v1 entries": (JSON, {"Stripe-Signature": fill(f"v1={wrong('hex')}", ",", ts)}, body, url),
            "8 KB of empty entries": (JSON, {"Stripe-Signature": fill("v1=", ",", ts)}, body, url),
        },
    )


def twilio_form(fields: list[tuple[str, str]], size: int) -> tuple[bytes, list[tuple[str, str]]]:
    """`fields` plus a Body padded so the urlencoded form is `size` bytes."""
    bare = urlencode([*fields, ("Body", "")])
    padded = [*fields, ("Body", "x" * max(0, size - len(bare)))]
    return urlencode(padded).encode(), padded


def twilio_signature(url: str, fields: list[tuple[str, str]]) -> str:
    params = "".join(k + v for k, v in sorted(fields))
    return base64.b64encode(sign(b"twilio-token", (url + params).encode(), algorithm="sha1")).decode()


def twilio(size: int, url: str) -> Case:
    form = "application/x-www-form-urlencoded"
    inbound = [("MessageSid", "SM1"), ("From", "+14155550100"), ("To", "+14155550199")]
    body, fields = twilio_form(inbound, size)
    repeats, _ = twilio_form([*inbound, *[("Tag", "same")] * 20], size)
    at_cap, _ = twilio_form([("F", str(i % 2)) for i in range(MAX_FORM_FIELDS - 1)], size)
    tiny = ("a=&" * (size // 3)).encode()[:size]
    long_url = url + "?" + "a=1&" * ((8_000 - len(url)) // 4)
    bad = {"X-Twilio-Signature": wrong("base64", 20)}
    return Case(
        "twilio",
        ["twilio-token"],
        (form, {"X-Twilio-Signature": twilio_signature(url, fields)}, body, url),
        {
            "wrong signature": (form, bad, body, url),
            "repeated fields": (form, bad, repeats, url),
            f"{MAX_FORM_FIELDS} fields, repeated": (form, bad, at_cap, url),
            "tiny fields past the cap": (form, bad, tiny, url),
            "8 KB URL": (form, bad, body, long_url),
        },
    )


def mailgun(size: int, url: str) -> Case:
    def request(token: str, signature: str) -> tuple:
        block = {"timestamp": str(NOW), "token": token, "signature": signature}
        body = json_body(size, signature=block, **{"event-data": {"event": "delivered"}})
        return JSON, {}, body, url

    good = sign(b"mailgun-key", f"{NOW}tok_1".encode()).hex()
    return Case(
        "mailgun",
        ["mailgun-key"],
        request("tok_1", good),
        {
            "wrong signature": request("tok_1", wrong("hex")),
            "longest token": request("t" * MAILGUN_TOKEN_MAX, wrong("hex")),
            "100 KB token": request("t" * 100_000, wrong("hex")),
        },
    )


def slack(size: int, url: str) -> Case:
    body = json_body(size, type="event_callback", event_id="Ev1")
    good = sign(b"slack-secret", f"v0:{NOW}:".encode(), body).hex()

    def headers(signature: str) -> dict:
        return {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(NOW)}

    return Case(
        "slack",
        ["slack-secret"],
        (JSON, headers(f"v0={good}"), body, url),
        {
            "wrong signature": (JSON, headers(f"v0={wrong('hex')}"), body, url),
            "8 KB signature": (JSON, headers("v0=" + "ab" * (HEADER_VALUE // 2)), body, url),
        },
    )


def unsigned(size: int, url: str) -> Case:
    body = json_body(size, type="bench.event")
    return Case(
        "none",
        [],
        (JSON, {"Idempotency-Key": "key-1"}, body, url),
        {"8 KB Idempotency-Key": (JSON, {"Idempotency-Key": "k" * HEADER_VALUE}, body, url)},
    )


BUILDERS: dict[str, Callable[[int, str], Case]] = {
    "hmac": partial(single_header, "hmac", "X-Webhook-Signature", "hex", ""),
    "standard_webhooks": standard_webhooks,
    "stripe": stripe,
    "github": partial(single_header, "github", "X-Hub-Signature-256", "hex", "sha256="),
    "twilio": twilio,
    "mailgun": mailgun,
    "slack": slack,
    "shopify": partial(single_header, "shopify", "X-Shopify-Hmac-Sha256", "base64", ""),
    "meta": partial(single_header, "meta", "X-Hub-Signature-256", "hex", "sha256="),
    "none": unsigned,
}


def with_secrets(case: Case, count: int) -> Case:
    """The case's source with `count` active secrets (rotation): the valid one and others."""
    if not case.secrets:
        return case
    others = [f"{case.secrets[0]}-old{i}" for i in range(1, count)]
    if case.provider == "standard_webhooks":
        others = ["whsec_" + base64.b64encode(bytes([i]) * 32).decode() for i in range(1, count)]
    case.secrets = [*others, case.secrets[0]]  # the valid secret last: no order helps
    return case


def build(media: str, headers: dict, body: bytes, url: str) -> InboundRequest:
    """The InboundRequest receive.py builds, parsing included."""
    json_value, form = bodies.parse(body, media, media)
    return InboundRequest("POST", url, CIMultiDict(headers), body, media, json_value, form, NOW)


def cpu_seconds(run: Callable[[], object], rounds: int, min_seconds: float = 0.05) -> float:
    """CPU time of one call, best of `rounds` rounds of at least `min_seconds` each."""
    best = float("inf")
    for _ in range(rounds):
        calls, started = 0, time.process_time()
        while (spent := time.process_time() - started) < min_seconds:
            run()
            calls += 1
        best = min(best, spent / calls)
    return best


def costs(case: Case, parts: tuple, rounds: int) -> tuple[float, float]:
    """(verify alone, parse + verify) CPU seconds of one request."""
    provider = PROVIDERS[case.provider]

    def verify(request: InboundRequest | None) -> None:
        if request is None:
            return  # refused while parsing: the verifier never runs
        with contextlib.suppress(VerificationError):  # a refusal costs what it costs
            provider.verify(request, case.secrets, case.options, TOLERANCE)

    request = parsed(parts)
    return cpu_seconds(lambda: verify(request), rounds), cpu_seconds(lambda: verify(parsed(parts)), rounds)


def parsed(parts: tuple) -> InboundRequest | None:
    """The request as the verifier sees it, or None when parsing already refuses it (a 400)."""
    try:
        return build(*parts)
    except ApiError:
        return None


def in_process(args: argparse.Namespace) -> int:
    print(f"body {args.body_bytes} bytes, {args.secrets} secret(s), CPU ms per request")
    print(
        f"{'scheme':18} {'normal':>8} {'worst':>8} {'ratio':>6} {'+parse':>8} {'+parse':>8} {'ratio':>6}  worst request"
    )
    failed = False
    for build_case in BUILDERS.values():
        case = with_secrets(build_case(args.body_bytes, URL), args.secrets)
        PROVIDERS[case.provider].verify(build(*case.normal), case.secrets, case.options, TOLERANCE)
        normal = costs(case, case.normal, args.rounds)
        hostile = {name: costs(case, parts, args.rounds) for name, parts in case.hostile.items()}
        worst = max(hostile, key=lambda name: hostile[name][0])
        worst_parsed = max(hostile, key=lambda name: hostile[name][1])
        ratio = hostile[worst][0] / normal[0]
        parsed_ratio = hostile[worst_parsed][1] / normal[1]
        failed |= ratio > LIMIT and bool(case.secrets)  # `none` verifies nothing: not gated
        print(
            f"{case.provider:18} {normal[0] * 1e3:8.3f} {hostile[worst][0] * 1e3:8.3f} "
            f"{ratio:6.2f} {normal[1] * 1e3:8.3f} {hostile[worst_parsed][1] * 1e3:8.3f} "
            f"{parsed_ratio:6.2f}  {worst}; with parsing: {worst_parsed}"
        )
    print(f"verifier ratios {'exceed' if failed else 'within'} {LIMIT}")
    return 1 if failed else 0


# ---------------------------------------------------------------- through a real ingest (--http)


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def served_cost(session, pid: int, parts: tuple, count: int) -> tuple[float, set[int]]:
    """The ingest's CPU seconds per request over `count` requests, and the statuses answered."""
    media, headers, body, url = parts
    statuses = set()
    started = process_cpu_seconds(pid)
    for _ in range(count):
        async with session.post(url, data=body, headers={**headers, "Content-Type": media}) as sent:
            await sent.read()
            statuses.add(sent.status)
    return (process_cpu_seconds(pid) - started) / count, statuses


async def through_ingest(args: argparse.Namespace, amqp_url: str, pid: int, base: str) -> int:
    import aio_pika
    import aiohttp

    from hookyard_common.broker import topology

    admin = api(base, "POST", "/v1/tenants", "bench-admin", {"name": "edge"})["api_key"]
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    queue = await channel.get_queue(topology.DISPATCH_QUEUE)
    print(
        f"through hookyard-ingest: body {args.body_bytes} bytes, {args.secrets} secret(s), "
        f"ingest CPU ms per request over {args.requests} requests"
    )
    print(f"{'scheme':18} {'valid':>8} {'worst':>8} {'ratio':>6}  worst request")
    async with connection, aiohttp.ClientSession() as session:
        for name, build_case in BUILDERS.items():
            case = with_secrets(build_case(args.body_bytes, URL), args.secrets)
            fields = {"name": name, "provider": name, "secrets": case.secrets, "options": case.options}
            source = api(base, "POST", "/v1/sources", admin, {k: v for k, v in fields.items() if v})
            # Again with the source's own URL, which Twilio signs.
            case = with_secrets(build_case(args.body_bytes, source["url"]), args.secrets)
            normal, answered = await served_cost(session, pid, case.normal, args.requests)
            await queue.purge()
            hostile = {}
            for kind, parts in case.hostile.items():
                hostile[kind], refused = await served_cost(session, pid, parts, args.requests)
                if any(status >= 500 or (status < 400 and case.secrets) for status in refused):
                    print(f"  {name} {kind}: answered {sorted(refused)}")
            worst = max(hostile, key=hostile.__getitem__)
            note = "" if answered == {200} else f"  (valid answered {sorted(answered)})"
            print(
                f"{name:18} {normal * 1e3:8.2f} {hostile[worst] * 1e3:8.2f} "
                f"{hostile[worst] / normal:6.2f}  {worst}{note}"
            )
    return 0


def served(args: argparse.Namespace) -> int:
    with local_infra("edge") as (amqp_url, mongo_uri, tmp_path):
        ingest = _start_ingest(amqp_url, mongo_uri, tmp_path)
        try:
            base = ingest.in_url.split("/in/")[0]
            return asyncio.run(through_ingest(args, amqp_url, ingest.process.pid, base))
        finally:
            stop(ingest.process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--body-bytes", type=int, default=1_048_576)
    parser.add_argument("--secrets", type=int, default=1, help="active secrets per source (1-5)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--http", action="store_true", help="also through a real hookyard-ingest")
    parser.add_argument("--requests", type=int, default=100, help="per request kind, with --http")
    args = parser.parse_args()
    failed = in_process(args)
    return served(args) or failed if args.http else failed


if __name__ == "__main__":
    sys.exit(main())
