"""The server's HTTP hardening: security headers on every response (CSP, no-store for the
API), the bearer token scheme the OpenAPI document declares, and a redacting access log."""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "BEARER",
    "CSP",
    "Credentials",
    "HardenedApp",
    "RedactToken",
    "SecurityHeaders",
    "redact_access_log",
]

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'self'"
)
# Swagger UI's assets are served from the fastapi-offline wheel (no CDN: air-gapped installs
# get working docs); its page starts Swagger UI with an inline script.
_DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'self'"
)
_DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect"})
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="The server's API token (FAKESCOPE_API_TOKEN), sent as "
    "'Authorization: Bearer <token>'. Needed only when the server was started with one; "
    "/api/people always needs it.",
)
"""The API's security scheme: declared in the OpenAPI document (the docs page's Authorize
button), checked by the routes' token dependencies."""
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


class RedactToken(logging.Filter):
    """Masks ``token=...`` query parameters (image URLs) in uvicorn's access log."""

    pattern = re.compile(r"([?&]token=)[^&\s]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.pattern.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactToken) for f in access.filters):
        access.addFilter(RedactToken())


class SecurityHeaders:
    """Pure ASGI middleware: security headers on every HTTP response (``no-store`` for the
    API); streaming responses pass through untouched. :class:`HardenedApp` wraps its whole stack in
    it, so the 500 of Starlette's ServerErrorMiddleware gets the headers too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = _DOCS_CSP if path in _DOCS_PATHS else CSP
                for name, value in _SECURITY_HEADERS.items():
                    headers[name] = value
                if path.startswith("/api/"):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HardenedApp(FastAPI):
    """FastAPI with :class:`SecurityHeaders` outside every layer, ServerErrorMiddleware
    included (``add_middleware`` would put it inside, missing unhandled-exception 500s)."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())
