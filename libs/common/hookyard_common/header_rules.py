"""Which headers a tenant may shape on a delivery, checked at the API and again when sending.

Deliveries of every tenant share pooled connections. A header that frames
the message (`Content-Length`, `Transfer-Encoding`) or governs the
connection (`Connection`, `Upgrade`, `Proxy-*`, ...) would let one tenant
shape what the next request on that connection means, and a control
character in a name or value could end a header early and start another.
So both are refused: at the API with a 4xx naming the header, and again
when a request is built, for events published straight onto the broker and
for values stored before these rules existed; there the attempt fails
with the reason instead of the request going out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Hop-by-hop and framing headers (RFC 9110 §7.6.1, RFC 9112 §6): only the HTTP client sets these.
FRAMING_HEADERS = frozenset(
    {"connection", "content-length", "host", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
)
#: Any header starting with this governs a proxy hop (`Proxy-Authorization`, `Proxy-Connection`).
PROXY_PREFIX = "proxy-"
#: An HTTP header name (RFC 9110's token).
HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
_NAME = re.compile(HEADER_NAME_PATTERN)
# C0 controls other than tab, and DEL: a value may hold spaces and tabs, nothing that ends a line.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class HeaderRefused(ValueError):
    """A header a tenant may not send; the message names it."""


def framing(name: str) -> bool:
    lowered = name.lower()
    return lowered in FRAMING_HEADERS or lowered.startswith(PROXY_PREFIX)


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def header_problem(name: str, value: str) -> str | None:
    """Why this header may not be sent, or None when it may."""
    if not _NAME.fullmatch(name):  # fullmatch: `$` alone would let a trailing newline through
        return f"not a header name: {name!r}"
    if framing(name):
        return f"{name} frames the request or governs the connection; only Hookyard's HTTP client sets it"
    if has_control(value):
        return f"the value of {name} holds a control character"
    return None


def check_headers(headers: Iterable[tuple[str, str]]) -> None:
    """Raise HeaderRefused for the first header that may not be sent."""
    for name, value in headers:
        problem = header_problem(name, value)
        if problem is not None:
            raise HeaderRefused(problem)


def check_credential(value: str) -> str:
    """An auth field (token, user name, password) ends up in a header: no control characters."""
    if has_control(value):
        raise HeaderRefused("credentials may not hold control characters")
    return value
