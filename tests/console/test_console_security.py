"""The console's security model, attacked over real HTTP: cookie, CSRF, expiry, revocation, headers,
tenant isolation and act-as (docs/console.md#security-model)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from hookyard_common.records.console_sessions import COLLECTION as SESSIONS
from hookyard_ingest.console import shell

STATIC = Path(shell.STATIC)
#: What would parse a string as HTML or run one as code: the console never does either.
HTML_SINKS = re.compile(r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function|srcdoc)")
ENDPOINT = {"url": "http://127.0.0.1:9/hooks"}


class Session:
    """A console session seen from outside: its cookie header, its answer, and calls that carry it."""

    def __init__(self, ingest, token: str, body: dict, set_cookie: str):
        self.ingest, self.token, self.body, self.set_cookie = ingest, token, body, set_cookie

    async def call(self, method: str, path: str, csrf: str | None = "session", **kwargs):
        headers = {"Cookie": f"hookyard_console={self.token}", **kwargs.pop("headers", {})}
        if csrf is not None:
            headers["X-CSRF-Token"] = self.body["csrf"] if csrf == "session" else csrf
        return await self.ingest.call(method, path, headers=headers, **kwargs)


async def sign_in(ingest, key: str, **kwargs) -> Session:
    status, body, headers = await ingest.call("POST", "/console/session", json={"key": key}, **kwargs)
    assert status == 200, body
    set_cookie = headers["Set-Cookie"]
    return Session(ingest, SimpleCookie(set_cookie)["hookyard_console"].value, body, set_cookie)


async def sessions_stored(ingest) -> list[dict]:
    client = AsyncMongoClient(ingest.settings.mongo_uri)
    try:
        return await client[ingest.settings.mongo_db][SESSIONS].find().to_list()
    finally:
        await client.close()


async def test_the_cookie_is_httponly_strict_random_and_only_its_hash_is_stored(start_ingest):
    ingest = await start_ingest(trusted_proxies=("127.0.0.1/32",))
    key = await ingest.tenant()
    session = await sign_in(ingest, key)
    attributes = [part.strip().lower() for part in session.set_cookie.split(";")]
    assert {"httponly", "samesite=strict", "path=/"} <= set(attributes)
    assert "secure" not in attributes  # plain http here; behind https below
    assert key not in session.set_cookie and key not in str(session.body)
    assert session.token != key and len(session.token) >= 40
    assert session.body["role"] == "tenant" and session.body["tenant_id"] == ingest.tenant_ids[-1]
    stored = await sessions_stored(ingest)
    assert [doc["_id"] for doc in stored] == [hashlib.sha256(session.token.encode()).hexdigest()]
    assert session.token not in str(stored) and key not in str(stored)
    behind_https = await sign_in(ingest, key, headers={"X-Forwarded-Proto": "https"})
    assert "secure" in [part.strip().lower() for part in behind_https.set_cookie.split(";")]


async def test_a_cookie_call_that_changes_anything_needs_the_sessions_csrf_token(start_ingest):
    ingest = await start_ingest()
    session = await sign_in(ingest, await ingest.tenant())
    for csrf in (None, "", "not-the-token", session.body["csrf"][:-1]):
        status, body, _ = await session.call("POST", "/v1/endpoints", csrf=csrf, json=ENDPOINT)
        assert (status, body["error"]["code"]) == (403, "csrf_failed"), csrf
    status, listed, _ = await session.call("GET", "/v1/endpoints", csrf=None)  # reading needs none
    assert status == 200 and listed["data"] == []  # nothing was made by the refused calls
    status, made, _ = await session.call("POST", "/v1/endpoints", json=ENDPOINT)
    assert status == 201, made
    status, body, _ = await session.call("DELETE", "/console/session", csrf="forged")
    assert (status, body["error"]["code"]) == (403, "csrf_failed")


async def test_a_cross_site_form_post_is_refused(start_ingest):
    ingest = await start_ingest()
    key = await ingest.tenant()
    session = await sign_in(ingest, key)
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"}
    status, body, _ = await session.call("POST", "/v1/endpoints", csrf=None, data="url=http://evil", headers=form)
    assert (status, body["error"]["code"]) == (403, "csrf_failed")
    # Signing in takes JSON only: a form (or text/plain dressed as JSON) cannot log a browser in.
    for media, data in (("application/x-www-form-urlencoded", f"key={key}"), ("text/plain", f'{{"key": "{key}"}}')):
        status, body, headers = await ingest.call(
            "POST", "/console/session", data=data, headers={"Content-Type": media}
        )
        assert status == 415 and "Set-Cookie" not in headers, body


async def test_an_idle_session_ends_and_a_used_one_slides_on(start_ingest):
    ingest = await start_ingest(console_session_idle_seconds=1.5)
    key = await ingest.tenant()
    used, idle = await sign_in(ingest, key), await sign_in(ingest, key)
    for _ in range(5):  # 2.5 s in all, a call every 0.5 s: past the idle period, never idle that long
        await asyncio.sleep(0.5)
        status, body, _ = await used.call("GET", "/v1/endpoints")
        assert status == 200, body
    status, body, _ = await idle.call("GET", "/v1/endpoints")
    assert status == 401, body
    status, body, _ = await idle.call("GET", "/console/session")
    assert status == 401, body


async def test_made_up_cookies_spend_the_callers_failure_budget(start_ingest):
    ingest = await start_ingest(failure_limit_per_ip=3)
    key = await ingest.tenant()
    real = await sign_in(ingest, key)
    assert (await real.call("GET", "/v1/endpoints"))[0] == 200
    forged = [Session(ingest, f"made-up-{n}", real.body, "") for n in range(4)]
    answers = [await session.call("GET", "/v1/endpoints") for session in forged]
    assert [status for status, _, _ in answers] == [401, 401, 401, 429], answers
    assert answers[-1][1]["error"]["code"] == "too_many_failures"


async def test_revoking_the_key_or_disabling_the_tenant_ends_its_sessions(start_ingest):
    ingest = await start_ingest()
    first = await ingest.tenant()
    status, made, _ = await ingest.call("POST", "/v1/api-keys", token=first, json={"name": "console"})
    assert status == 201, made
    revoked, kept = await sign_in(ingest, made["key"]), await sign_in(ingest, first)
    status, _, _ = await ingest.call("DELETE", f"/v1/api-keys/{made['id']}", token=first)
    assert status == 204
    status, body, _ = await revoked.call("GET", "/v1/endpoints")
    assert status == 401, body
    status, _, _ = await kept.call("GET", "/v1/endpoints")
    assert status == 200
    admin = ingest.settings.admin_token
    status, _, _ = await ingest.call("POST", f"/v1/tenants/{ingest.tenant_ids[-1]}/disable", token=admin)
    assert status == 200
    status, body, _ = await kept.call("GET", "/v1/endpoints")
    assert (status, body["error"]["code"]) == (403, "tenant_disabled")


async def test_every_console_answer_carries_the_security_headers(start_ingest):
    ingest = await start_ingest()
    answers = [
        await ingest.call("GET", "/console/"),
        await ingest.call("GET", "/console/static/app.js"),
        await ingest.call("GET", "/console/static/style.css"),
        await ingest.call("GET", "/console/static/../shell.py"),
        await ingest.call("GET", "/console/static/nothing.js"),
        await ingest.call("GET", "/console/session"),
        await ingest.call("POST", "/console/session", json={"key": "hy_wrong"}),
        await ingest.call("GET", "/console", allow_redirects=False),
    ]
    assert [status for status, _, _ in answers] == [200, 200, 200, 404, 404, 401, 401, 308]
    for status, _, headers in answers:
        assert headers["Content-Security-Policy"] == shell.CONTENT_SECURITY_POLICY, status
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Cache-Control"] == "no-store"
    csp = shell.CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in csp and "unsafe" not in csp and "frame-ancestors 'none'" in csp
    assert answers[1][2]["Content-Type"].startswith("text/javascript")


def test_the_console_has_no_inline_script_or_style_and_never_parses_html():
    files = sorted(path for path in STATIC.rglob("*") if path.is_file())
    assert {path.name for path in files} >= {"index.html", "app.js", "api.js", "dom.js", "style.css", "sign-in.js"}
    for path in files:
        text = path.read_text()
        assert not HTML_SINKS.search(text), f"{path.name}: {HTML_SINKS.search(text).group(0)}"
        if path.suffix == ".html":
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"{path.name}: an inline script"
            assert not re.search(r"<style|\sstyle=|\son\w+=", text, re.I), f"{path.name}: inline style or handler"
        if path.suffix == ".js":
            assert not re.search(r"""["']style["']\s*:|setAttribute\(\s*["']style|\bstyle\s*:""", text), path.name


async def test_a_tenant_session_reads_only_its_own_data_and_no_admin_route(start_ingest):
    ingest = await start_ingest()
    mine, theirs = await ingest.tenant("mine"), await ingest.tenant("theirs")
    victim = ingest.tenant_ids[-1]
    status, their_endpoint, _ = await ingest.call("POST", "/v1/endpoints", token=theirs, json=ENDPOINT)
    assert status == 201
    attacker = await sign_in(ingest, mine)
    status, listed, _ = await attacker.call("GET", "/v1/endpoints")
    assert status == 200 and listed["data"] == []
    for method, path in (
        ("GET", f"/v1/endpoints/{their_endpoint['id']}"),
        ("DELETE", f"/v1/endpoints/{their_endpoint['id']}"),
    ):
        status, body, _ = await attacker.call(method, path)
        assert status == 404, (method, body)
    for method, path in (
        ("GET", "/v1/tenants"),
        ("GET", "/v1/admin/overview"),
        ("POST", f"/v1/tenants/{victim}/disable"),
    ):
        status, body, _ = await attacker.call(method, path)
        assert (status, body["error"]["code"]) == (403, "admin_only"), (method, path)
    status, body, _ = await attacker.call("PUT", "/console/session", json={"tenant_id": victim})
    assert (status, body["error"]["code"]) == (403, "admin_only")
    forged = Session(ingest, "x" * 43, {"csrf": "x"}, "")
    status, _, _ = await forged.call("GET", "/v1/endpoints")
    assert status == 401
    status, kept, _ = await ingest.call("GET", f"/v1/endpoints/{their_endpoint['id']}", token=theirs)
    assert status == 200 and kept["id"] == their_endpoint["id"]


async def test_only_an_admin_session_acts_as_a_tenant_and_only_while_its_token_holds(start_ingest, settings):
    ingest = await start_ingest()
    theirs = await ingest.tenant("theirs")
    tenant_id = ingest.tenant_ids[-1]
    status, endpoint, _ = await ingest.call("POST", "/v1/endpoints", token=theirs, json=ENDPOINT)
    admin = await sign_in(ingest, ingest.settings.admin_token)
    assert admin.body["role"] == "admin" and admin.body["tenant_id"] is None
    status, body, _ = await admin.call("GET", "/v1/endpoints")
    assert (status, body["error"]["code"]) == (403, "not_acting")
    status, body, _ = await admin.call("GET", "/v1/admin/overview")
    assert status == 200, body
    status, body, _ = await admin.call("PUT", "/console/session", json={"tenant_id": "ten_nobody"})
    assert (status, body["error"]["code"]) == (404, "unknown_tenant")
    status, body, _ = await admin.call("PUT", "/console/session", csrf=None, json={"tenant_id": tenant_id})
    assert (status, body["error"]["code"]) == (403, "csrf_failed")
    status, acting, _ = await admin.call("PUT", "/console/session", json={"tenant_id": tenant_id})
    assert status == 200 and acting["tenant_id"] == tenant_id and acting["role"] == "admin"
    status, listed, _ = await admin.call("GET", "/v1/endpoints")
    assert status == 200 and [e["id"] for e in listed["data"]] == [endpoint["id"]]
    status, stopped, _ = await admin.call("PUT", "/console/session", json={"tenant_id": None})
    assert status == 200 and stopped["tenant_id"] is None
    # The same database behind an ingest whose admin token changed: the old admin session is over.
    from hookyard_cli.devstack import free_port

    rotated = await start_ingest(ingest_port=free_port(), admin_token="a-new-admin-token")
    status, body, _ = await Session(rotated, admin.token, admin.body, "").call("GET", "/v1/admin/overview")
    assert status == 401, body


@pytest.mark.parametrize("key", ["", "x" * 2000])
async def test_a_malformed_sign_in_is_a_named_400(ingest, key):
    status, body, headers = await ingest.call("POST", "/console/session", json={"key": key})
    assert status == 400 and body["error"]["field"] == "key" and "Set-Cookie" not in headers
