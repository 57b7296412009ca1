"""The panels' shared HTTP part on a real socket: packaged static files served by name with
the caller's headers, and the cross-site check on every combination of what browsers send
(Sec-Fetch-Site first, then Origin against Host)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib import resources

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from webpanel import StaticFiles, cross_site

FILES = StaticFiles(resources.files("host.admin") / "static", {"X-Test": "yes"})


async def check(request: web.Request) -> web.Response:
    required = request.query.get("required") == "1"
    return web.Response(text=cross_site(request, origin_required=required) or "ok")


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_get("/", FILES.index)
    app.router.add_get("/static/{name}", FILES.named)
    app.router.add_post("/check", check)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield test_server
    finally:
        await test_server.close()


async def test_static_files_by_name_with_the_callers_headers(server: TestServer):
    async with aiohttp.ClientSession() as http:
        for path, kind in (("/", "text/html"), ("/static/admin.js", "text/javascript")):
            async with http.get(server.make_url(path)) as response:
                assert (response.status, response.content_type) == (200, kind)
                assert response.headers["X-Test"] == "yes"
                assert await response.read() == (FILES.folder / (
                    "index.html" if path == "/" else "admin.js")).read_bytes()  # fmt: skip
        for path in ("/static/nope.js", "/static/README", "/static/..%2Fweb.py",
                     "/static/..%5Cweb.py", "/static/admin.py"):  # fmt: skip
            async with http.get(server.make_url(path)) as response:
                assert response.status == 404, path


@pytest.mark.parametrize(
    ("headers", "required", "answer"),
    [
        ({}, False, "ok"),  # a script or curl: no browser, no CSRF
        ({}, True, "no Origin header"),
        ({"Origin": "http://{host}"}, True, "ok"),
        ({"Origin": "https://{host}"}, True, "ok"),  # TLS ended at a proxy
        ({"Origin": "http://evil.example"}, False, "Origin http://evil.example is not this server"),
        ({"Origin": "null"}, False, "Origin null is not this server"),
        ({"Origin": "http://{host}.evil.example"}, False, "is not this server"),
        ({"Sec-Fetch-Site": "same-origin"}, True, "ok"),
        # The browser's own word wins over an Origin a proxy's Host rewrite no longer matches.
        ({"Sec-Fetch-Site": "same-origin", "Origin": "https://admin.bank.example"}, True, "ok"),
        ({"Sec-Fetch-Site": "cross-site", "Origin": "http://{host}"}, False,
         "Sec-Fetch-Site: cross-site"),
        ({"Sec-Fetch-Site": "same-site"}, False, "Sec-Fetch-Site: same-site"),
        ({"Sec-Fetch-Site": "none"}, False, "Sec-Fetch-Site: none"),
    ],
)  # fmt: skip
async def test_cross_site(server: TestServer, headers: dict[str, str], required: bool, answer: str):
    host = f"{server.host}:{server.port}"
    sent = {name: value.format(host=host) for name, value in headers.items()}
    url = server.make_url("/check").with_query(required="1" if required else "0")
    async with aiohttp.ClientSession() as http, http.post(url, headers=sent) as response:
        text = await response.text()
    assert answer in text
    assert (text == "ok") is (answer == "ok")
