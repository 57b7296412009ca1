"""What the two browser panels' HTTP servers share: the ATM's front panel (``atm.web``, in
the device process) and the bank's admin panel (``host.admin``, in the host). Both serve a
folder of packaged static files and both refuse a request a page of another site made.

It imports aiohttp and nothing of ours (tests/test_architecture.py), so the device process
can use it without loading the host, and the host without loading the ATM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from urllib.parse import urlsplit

from aiohttp import web

__all__ = ["CONTENT_TYPES", "StaticFiles", "cross_site"]

CONTENT_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".png": "image/png",
}


@dataclass(frozen=True)
class StaticFiles:
    """The files directly in ``folder`` (a package's ``static``), served by name with
    ``headers``; a subfolder, an unknown suffix or a missing file is 404."""

    folder: Traversable
    headers: Mapping[str, str]

    def response(self, name: str) -> web.Response:
        suffix = name[name.rfind(".") :] if "." in name else ""
        if "/" in name or "\\" in name or suffix not in CONTENT_TYPES:
            raise web.HTTPNotFound()
        item = self.folder / name
        if not item.is_file():
            raise web.HTTPNotFound()
        return web.Response(
            body=item.read_bytes(), content_type=CONTENT_TYPES[suffix], headers=self.headers
        )

    async def index(self, request: web.Request) -> web.StreamResponse:
        """A handler: ``index.html``."""
        return self.response("index.html")

    async def named(self, request: web.Request) -> web.StreamResponse:
        """A handler for a route with a ``{name}`` part."""
        return self.response(request.match_info["name"])


def cross_site(request: web.Request, *, origin_required: bool) -> str:
    """Why ``request`` did not come from a page of this server, or "" when it did.

    A browser says where a request comes from. ``Sec-Fetch-Site`` is set by the browser
    itself (no page can forge it, no proxy rewrites the answer): when present, only
    ``same-origin`` passes. Otherwise ``Origin`` must name this server (its host and port
    as the request's ``Host``; the scheme is left out, as TLS may end at a proxy). With
    neither header the request came from no browser (a script, curl): it passes unless
    ``origin_required`` (a WebSocket handshake always carries Origin)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return "" if site == "same-origin" else f"Sec-Fetch-Site: {site[:40]}"
    origin = request.headers.get("Origin")
    if origin is None:
        return "no Origin header" if origin_required else ""
    parts = urlsplit(origin)
    if parts.scheme in ("http", "https") and parts.netloc == request.host:
        return ""
    return f"Origin {origin[:100]} is not this server"
