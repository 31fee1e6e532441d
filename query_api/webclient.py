"""`GET /app/`: the reference web client (plain HTML, CSS and ES modules in `webapp/`), served
as files, with headers that let the page reach only this API, its `/ws` and the storage.

The client reads its API address from `?api=`; the same files served from another origin (a
frontend's dev server, the browser tests' static server) get a policy naming that API
(`WebClientFiles(api_origin=...)`).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from shared.settings import Settings

FILES = Path(__file__).parent / "webapp"
# A Host header that can be written into a CSP source as it is (no spaces, quotes, `;`).
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL ('' for none)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(api_origin: str, storage_origin: str) -> str:
    """Scripts, styles and images from the page's own origin only (no inline code, no CDN);
    requests to the API and its `/ws` (CSP3 browsers also count a `ws:` of the page's own
    host as 'self'; it is named for the others) and uploads to the storage; voice played
    from the storage's presigned URLs."""
    ws = api_origin.replace("http", "ws", 1) + "/ws" if api_origin else ""
    connect = " ".join(filter(None, ("'self'", api_origin, ws, storage_origin)))
    media = storage_origin or "'self'"
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect}; media-src {media}; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


class WebClientFiles:
    """The client's files with their security headers; `api_origin` None: the API is the
    origin the page was requested from (as `parley up` and the compose proxy serve it)."""

    def __init__(self, storage_origin: str, api_origin: str | None = None) -> None:
        self.files = StaticFiles(directory=FILES, html=True)
        self.storage_origin = storage_origin
        self.api_origin = api_origin

    def _api_origin(self, scope: Scope) -> str:
        if self.api_origin is not None:
            return self.api_origin
        host = Headers(scope=scope).get("host", "")
        scheme = "https" if scope.get("scheme") == "https" else "http"
        return f"{scheme}://{host}" if _HOST.fullmatch(host) else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = content_security_policy(self._api_origin(scope), self.storage_origin)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = policy
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Cache-Control"] = "no-cache"  # revalidate (ETag): a deploy shows at once
            await send(message)

        await self.files(scope, receive, with_headers)


def routes(settings: Settings) -> list[BaseRoute]:
    storage = origin_of(settings.s3_public_endpoint)
    return [Mount("/app", app=WebClientFiles(storage), name="webclient")]
