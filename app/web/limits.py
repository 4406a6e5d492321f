"""Request-body limits, enforced while the body streams in, not after (docs/security.md).

Every request may send at most MAX_REQUEST_KB. Only upload routes take more, up to MAX_UPLOAD_MB, and only once
the caller is known and allowed: such a route declares `UploadForm` after its user and permission dependencies
(FastAPI solves them in order), and `upload_form` raises this request's limit before it reads the multipart
body. Nothing else reads an upload route's body (`is_upload_route` tells `csrf_protect` to want the header).

A declared Content-Length over the limit is refused before a byte is read; a body without one (chunked) is
counted as it arrives and refused as soon as it passes the limit. Either way: 413 naming the limit, JSON for
the API and scripts, the error page for a browser.
"""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData, UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.errors import BadRequest, PayloadTooLarge
from app.web.dependencies import SettingsDep
from app.web.errors import render_error

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SCOPE_KEY = "preflab.body_limit"
UPLOAD_FIELDS = 10  # the upload form's own fields (file, format, ...); more is not our form
UPLOAD_FIELD_BYTES = 64 * 1024  # each non-file field


class _TooLarge(PayloadTooLarge):
    """An AppError, so whichever handler sees it first answers quietly (no "unhandled error" log)."""


@dataclass
class BodyLimit:
    bytes: int
    message: str

    @classmethod
    def request(cls, settings: Settings) -> "BodyLimit":
        kb = settings.MAX_REQUEST_KB
        return cls(int(kb * 1024), f"The request body is larger than the limit of {kb:g} KB (MAX_REQUEST_KB)")

    @classmethod
    def upload(cls, settings: Settings) -> "BodyLimit":
        mb = settings.MAX_UPLOAD_MB
        return cls(int(mb * 1024 * 1024), f"The upload is larger than the limit of {mb:g} MB (MAX_UPLOAD_MB)")


async def upload_form(request: Request, settings: SettingsDep) -> AsyncIterator[FormData]:
    """The multipart body of an upload route, read only when the dependencies before this one have passed.
    Files are spooled to disk past 1 MB (Starlette), so memory stays small whatever the upload's size."""
    limit, upload = request.scope[SCOPE_KEY], BodyLimit.upload(settings)
    limit.bytes, limit.message = upload.bytes, upload.message  # the middleware counts against this object
    form = await request.form(max_files=1, max_fields=UPLOAD_FIELDS, max_part_size=UPLOAD_FIELD_BYTES)
    try:
        yield form
    finally:
        await form.close()


UploadForm = Annotated[FormData, Depends(upload_form)]


def uploaded_file(form: FormData) -> tuple[UploadFile, str]:
    """The upload route's file (multipart field `file`) and its name, or the 400 naming the field."""
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        message = "Choose a file to upload (multipart field `file`)"
        raise BadRequest(message, details=[{"field": "file", "message": message}])
    return file, file.filename


def is_upload_route(request: Request) -> bool:
    route = request.scope.get("route")
    pending = list(getattr(getattr(route, "dependant", None), "dependencies", ()))
    while pending:
        dependant = pending.pop()
        if dependant.call is upload_form:
            return True
        pending.extend(dependant.dependencies)
    return False


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send)
        settings = scope["app"].state.settings  # a middleware runs before any dependency
        limit = scope[SCOPE_KEY] = BodyLimit.request(settings)  # upload_form raises it
        declared_header = dict(scope["headers"]).get(b"content-length", b"")
        declared = int(declared_header) if declared_header.isdigit() else 0
        largest = max(limit, BodyLimit.upload(settings), key=lambda candidate: candidate.bytes)
        if declared > largest.bytes:  # no route takes that much
            return await self._refuse(scope, send, largest.message)

        received = 0
        exceeded: str | None = None
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if declared > limit.bytes:  # refused before reading: a route without upload_form keeps the small limit
                exceeded = limit.message
                raise _TooLarge(exceeded)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.bytes:
                    exceeded = limit.message
                    raise _TooLarge(exceeded)  # whoever is reading the body stops here
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded and not response_started:
                return  # the app's answer to a cut-off body (a 400 from the form parser, say) is replaced below
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, counting_receive, guarded_send)
        if exceeded and not response_started:
            await self._refuse(scope, send, exceeded)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, message: str) -> None:
        async def no_body() -> Message:
            return {"type": "http.disconnect"}

        request = Request(scope, no_body)
        response = render_error(request, 413, message)
        response.headers["Connection"] = "close"
        await response(scope, no_body, send)
