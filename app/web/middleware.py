"""ASGI middleware of every request: security headers, the session cookie, redirects to the public URL.
The request-body limits are app.web.limits; main.create_app stacks them all, in order."""

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = {
    # No inline script anywhere: everything the pages run comes from /static.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class SessionCookieMiddleware(SessionMiddleware):
    """Starlette's signed-cookie sessions (HttpOnly, SameSite=lax), with the cookie also marked Secure on
    any request that arrived over HTTPS, not only when SESSION_HTTPS_ONLY says so. Behind a TLS-terminating
    proxy the scheme comes from its X-Forwarded-Proto: `preflab serve` runs uvicorn with --proxy-headers and
    trusts the addresses in FORWARDED_ALLOW_IPS (127.0.0.1 by default)."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https" or "secure" in self.security_flags:
            return await super().__call__(scope, receive, send)
        prefix = self.session_cookie.encode() + b"="

        async def send_secure(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (name, value + b"; secure" if name == b"set-cookie" and value.startswith(prefix) else value)
                    for name, value in message["headers"]
                ]
            await send(message)

        await super().__call__(scope, receive, send_secure)


class PublicUrlMiddleware:
    """Redirects never point at the Host header a client sent (README, "Security"): a Location on the
    request's own origin (what `request.url_for` and Starlette's slash redirects build from Host) becomes
    PUBLIC_BASE_URL + path, or a relative path when that is unset. Templates link by path alone
    (app.web.templating), so no page carries the Host either."""

    def __init__(self, app: ASGIApp, base_url: str | None) -> None:
        self.app = app
        self.base_url = base_url or ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_public(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                location = headers.get("location")
                if location and "://" in location:
                    own = str(Request(scope).base_url).rstrip("/")
                    if location == own or location.startswith(own + "/"):
                        headers["location"] = self.base_url + (location[len(own) :] or "/")
            await send(message)

        await self.app(scope, receive, send_public)


class SecurityHeadersMiddleware:
    """Adds SECURITY_HEADERS to every response that does not set its own. Plain ASGI rather than
    `@app.middleware("http")`: that wraps each response in another streaming layer and costs CPU on
    every request, and the exports stream large bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
