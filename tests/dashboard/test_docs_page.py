"""``/docs``: the REST API's reference, readable offline under the page's content
security policy (it was blank: Swagger UI's CDN assets were blocked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from live.dashboard import RunSource, read_run, start_dashboard

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:playwright")


def test_docs_page_lists_every_endpoint_offline(run_dir: Path, page: Any) -> None:
    server = start_dashboard(RunSource(read_run(run_dir)), port=0)
    try:
        pg = page.page
        response = pg.goto(server.url + "docs")
        assert response.status == 200
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        text = pg.inner_text("body")
        schema = pg.evaluate("fetch('/openapi.json').then(r => r.json())")
        paths = schema["paths"]
        assert "/api/kpis" in paths and "/api/intervals/{t}/book" in paths
        for path, item in paths.items():
            assert path in text, path
            for op in item.values():
                assert op["summary"] in text, op["summary"]
                for p in op.get("parameters", []):
                    assert p["name"] in text, (path, p["name"])
        assert "?format=csv" in text
        assert not page.blocked, page.blocked  # nothing from outside this server
        assert not [m for m in page.console if m.startswith(("pageerror", "error"))]
    finally:
        server.stop()
