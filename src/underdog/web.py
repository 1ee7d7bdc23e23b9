"""What the project's web pages share to keep strangers out: security headers, the organiser token and the
same-origin check for forms (the arena's voting app and the studio).

    app.add_middleware(SecurityHeaders, headers=security_headers(scripts=True))
    token_ok(request, token)        # `?token=` or `Authorization: Bearer` holds the token printed at start
    same_origin(request)            # False when the browser says a POST came from another site
    derived_key(token, "purpose")   # an HMAC of the token: a judge link, a session cookie, a CSRF field
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'{images}; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'{scripts}")


def security_headers(scripts: bool = False, data_images: bool = False) -> dict[str, str]:
    """The headers of every page: a Content-Security-Policy allowing only this site's own styles (and, with
    `scripts`, its own script files and event streams: never inline script), no framing, no sniffing."""
    return {
        "Content-Security-Policy": CSP.format(images=" data:" if data_images else "",
                                              scripts="; script-src 'self'; connect-src 'self'" if scripts else ""),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",  # "no-referrer" would make Chromium send `Origin: null`
        "Cache-Control": "no-store",
    }


SECURITY_HEADERS = security_headers()


class SecurityHeaders:
    """Adds `headers` (default SECURITY_HEADERS) to every response: plain ASGI, not `@app.middleware("http")`,
    whose per-request task and body streaming cost more than the vote itself (issue 11: arena votes/s)."""

    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None):
        self.app = app
        self.headers = headers or SECURITY_HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(self.headers)
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def given_token(request: Request) -> str:
    """The token a request presents: `?token=` or `Authorization: Bearer ...` ("" for none)."""
    return request.query_params.get("token") or request.headers.get("authorization", "").removeprefix("Bearer ")


def token_ok(request: Request, token: str) -> bool:
    """Whether the request presents `token` (compared in constant time)."""
    return hmac.compare_digest(given_token(request).encode(), token.encode())


def derived_key(token: str, purpose: str, length: int = 24) -> str:
    """An HMAC of `token` for one purpose: unguessable without the token, the same for the server's life."""
    return hmac.new(token.encode(), purpose.encode(), hashlib.sha256).hexdigest()[:length]


def same_origin(request: Request) -> bool:
    """False when the browser says the POST came from another site (Origin / Sec-Fetch-Site headers)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")
