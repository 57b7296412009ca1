"""The panel's files as the ops app serves them (no browser): the page under /admin/, its
CSS and script, security headers, nothing from another site, and what is refused."""

from __future__ import annotations

import re
from importlib import resources

import aiohttp

from tests.host.admin.conftest import AdminRig

STATIC = resources.files("host.admin") / "static"


async def test_the_panel_is_served_with_its_security_headers(admin: AdminRig):
    async with aiohttp.ClientSession() as http:
        async with http.get(admin.base + "/admin", allow_redirects=False) as response:
            assert response.status == 302 and response.headers["Location"] == "/admin/"
        for path, kind in (
            ("/admin/", "text/html"),
            ("/admin/static/admin.css", "text/css"),
            ("/admin/static/admin.js", "text/javascript"),
        ):
            async with http.get(admin.base + path) as response:
                assert response.status == 200, path
                assert response.content_type == kind
                assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
                assert response.headers["X-Frame-Options"] == "DENY"
                assert response.headers["X-Content-Type-Options"] == "nosniff"
        for path in (
            "/admin/static/nope.js",
            "/admin/static/admin.py",
            "/admin/static/..%2Fweb.py",
        ):
            async with http.get(admin.base + path) as response:
                assert response.status == 404, path
        async with http.get(admin.base + "/admin/api/no-such-route") as response:
            assert response.status == 404
            assert "error" in await response.json()


def test_nothing_comes_from_another_site():
    for name in ("index.html", "admin.css", "admin.js"):
        text = (STATIC / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), name
        assert "<script>" not in text and " style=" not in text and "onclick=" not in text, name
    # Every element the script looks up exists in the page.
    page = (STATIC / "index.html").read_text()
    script = (STATIC / "admin.js").read_text()
    ids = set(re.findall(r'\$\("([a-z0-9-]+)"\)', script))
    dynamic = {"audit-action", "audit-actor", "audit-subject", "audit-since", "audit-until"}
    missing = {i for i in ids if f'id="{i}"' not in page} - dynamic
    assert missing == set()
    assert all(f'id="{i}"' in page for i in dynamic)
