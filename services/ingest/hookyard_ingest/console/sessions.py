"""Console sessions: a key traded once for an HttpOnly cookie, and the cookie honoured by the public API.

The browser never keeps the key: `POST /console/session` checks it as the
API would (`edge/auth.py`) and answers with a random session token in a
cookie (HttpOnly, SameSite=Strict) and a CSRF token in the body. From then
on the page calls the public API itself; the tenant and admin wings ask
`tenant` / `admin` here before they look for a bearer header, so a session
can do exactly what its key can, and no more: a tenant session re-checks
its key on every call (revoked or expired key, disabled or deleted tenant:
refused like the key), an admin session that the admin token no longer
matches ends. A cookie is ambient (the browser sends it whatever page asks),
so every cookie call that is not GET or HEAD must carry the session's CSRF
token in `X-CSRF-Token`, which a cross-site page cannot read; a bearer call
needs none. An admin may act as a tenant (`PUT /console/session`), and the
tenant routes then answer for that tenant: each change is logged.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hookyard_common.records import console_sessions
from hookyard_common.records.api_keys import hash_key
from hookyard_common.records.tenants import COLLECTION as TENANTS
from hookyard_common.schemas import utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.edge.auth import Auth
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.limits import client_ip
from hookyard_ingest.edge.request_io import parse_body

log = logging.getLogger(__name__)

#: The cookie that holds the session token.
COOKIE = "hookyard_console"
#: The header a cookie call that changes anything carries the session's CSRF token in.
CSRF_HEADER = "X-CSRF-Token"
#: Methods a cookie call may use without the CSRF token: they change nothing.
SAFE_METHODS = frozenset({"GET", "HEAD"})


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=1024, description="A tenant's API key, or the admin token.")


class ActAs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str | None = Field(
        max_length=128, description="The tenant the tenant routes answer for; null: stop acting as one."
    )


def _ended() -> ApiError:
    return ApiError(401, "unauthorized", "the console session has ended: sign in again")


class ConsoleSessions:
    def __init__(
        self, store: Store, auth: Auth, idle_seconds: float, https: Callable[[web.Request], bool], clock=utcnow
    ):
        self.store = store
        self.auth = auth
        self.idle = timedelta(seconds=idle_seconds)
        self.https = https  # whether the browser reached us over https (behind a proxy too): the cookie's Secure
        self.clock: Callable[[], datetime] = clock

    # The session routes.

    async def open(self, request: web.Request) -> web.StreamResponse:
        # JSON only: a cross-site form cannot send it without a preflight we never answer.
        if request.content_type != "application/json":
            raise ApiError(
                415, "unsupported_media_type", "send the key as application/json", accepted=["application/json"]
            )
        key = (await parse_body(request, SignIn)).key
        role: console_sessions.Role
        tenant_id: str | None
        if self.auth.admin_token and hmac.compare_digest(key.encode(), self.auth.admin_token.encode()):
            role, tenant_id = "admin", None
        else:
            role, tenant_id = "tenant", (await self.auth.tenant_of_key(hash_key(key), request))["_id"]
        doc, token = await console_sessions.open_session(
            self.store, role, hash_key(key), tenant_id, self.clock(), self.idle
        )
        response = web.json_response(self._view(doc))
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/", secure=self.https(request))
        return response

    async def read(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._view(await self._required(request)))

    async def act(self, request: web.Request) -> web.StreamResponse:
        session = await self._required(request)
        if session["role"] != "admin":
            raise ApiError(403, "admin_only", "only an admin session may act as a tenant")
        self._check_admin(session)
        tenant_id = (await parse_body(request, ActAs)).tenant_id
        if tenant_id is not None and await self.store[TENANTS].find_one({"_id": tenant_id}, {"_id": 1}) is None:
            raise ApiError(404, "unknown_tenant", "no such tenant", field="tenant_id")
        updated = await console_sessions.act_as(self.store, session["_id"], tenant_id)
        if updated is None:
            raise _ended()
        log.warning("console: the admin acts as a tenant", extra={"tenant_id": tenant_id})
        return web.json_response(self._view(updated))

    async def close(self, request: web.Request) -> web.StreamResponse:
        """Signs out; answered 204 (the cookie cleared) with or without a live session."""
        try:
            session = await self.session(request)
        except ApiError as exc:
            if exc.status != 401:
                raise
            session = None
        if session is not None:
            await console_sessions.close_session(self.store, session["_id"])
        response = web.Response(status=204)
        response.del_cookie(COOKIE, path="/")
        return response

    # What the API's wings ask.

    async def session(self, request: web.Request) -> dict | None:
        """The live session the request's cookie names (CSRF checked), None when it brings no cookie or
        a bearer header; a 401 for a session that has ended, a 403 for a missing or wrong CSRF token."""
        headers = request.headers
        if "Authorization" in headers or "Cookie" not in headers:  # bearer calls parse no cookies
            return None
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        # Within the caller's failure budget, as keys are: made-up cookies cannot drive one query each.
        ip = client_ip(request, self.auth.trusted)
        self.auth.failures.check(ip)
        session = await console_sessions.find_live(self.store, token, self.clock(), self.idle)
        if session is None:
            self.auth.failures.failed(ip)
            raise _ended()
        if request.method not in SAFE_METHODS and not hmac.compare_digest(
            request.headers.get(CSRF_HEADER, "").encode(), session["csrf"].encode()
        ):
            raise ApiError(403, "csrf_failed", f"a console call that changes anything needs the `{CSRF_HEADER}` header")
        return session

    async def tenant(self, request: web.Request) -> dict | None:
        """The tenant a cookie call answers for, None without a console cookie."""
        session = await self.session(request)
        if session is None:
            return None
        if session["role"] == "tenant":
            return await self.auth.tenant_of_key(session["credential_hash"], request)
        self._check_admin(session)
        if session["tenant_id"] is None:
            raise ApiError(403, "not_acting", "an admin session acts as a tenant first: PUT /console/session")
        return await self.auth.tenant_by_id(session["tenant_id"])

    async def admin(self, request: web.Request) -> bool:
        """Whether a cookie call is the admin's; False without a console cookie, a 403 for a tenant's."""
        session = await self.session(request)
        if session is None:
            return False
        if session["role"] != "admin":
            raise ApiError(403, "admin_only", "this is the operator's: sign in with the admin token")
        self._check_admin(session)
        return True

    async def _required(self, request: web.Request) -> dict:
        session = await self.session(request)
        if session is None:
            raise ApiError(401, "unauthorized", "not signed in to the console")
        return session

    def _check_admin(self, session: dict) -> None:
        """An admin session lasts only while the admin token it was opened with is the admin token."""
        current = hash_key(self.auth.admin_token) if self.auth.admin_token else ""
        if not hmac.compare_digest(session["credential_hash"].encode(), current.encode()):
            raise _ended()

    @staticmethod
    def _view(session: dict) -> dict:
        return {
            "role": session["role"],
            "tenant_id": session["tenant_id"],
            "csrf": session["csrf"],
            "expires_at": session["expires_at"].isoformat(),
        }
