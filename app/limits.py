"""The request-body limit (MAX_UPLOAD_MB), enforced while the body streams in, not after.

A declared Content-Length over the limit is refused before a byte is read; a body without one
(chunked) is counted as it arrives and refused as soon as it passes the limit, so a huge upload never
fills the disk or the memory of the server. Either way: 413 naming the limit, JSON for the API and
scripts, the error page for a browser.
"""

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge, render_error

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class _TooLarge(PayloadTooLarge):
    """An AppError, so whichever handler sees it first answers quietly (no "unhandled error" log)."""


def limit_message(limit_mb: float) -> str:
    return f"The upload is larger than the limit of {limit_mb:g} MB (MAX_UPLOAD_MB)"


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send)
        limit_mb = scope["app"].state.settings.MAX_UPLOAD_MB
        limit = int(limit_mb * 1024 * 1024)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await self._refuse(scope, send, limit_mb)

        received = 0
        exceeded = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _TooLarge(limit_message(limit_mb))  # whoever is reading the body stops here
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded and not response_started:
                return  # the app's answer to a cut-off body (a 400 from the form parser, say) is replaced below
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _TooLarge:
            pass
        if exceeded and not response_started:
            await self._refuse(scope, send, limit_mb)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, limit_mb: float) -> None:
        async def no_body() -> Message:
            return {"type": "http.disconnect"}

        request = Request(scope, no_body)
        response = render_error(request, 413, limit_message(limit_mb))
        response.headers["Connection"] = "close"
        await response(scope, no_body, send)
