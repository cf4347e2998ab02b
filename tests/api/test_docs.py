"""The interactive API docs work offline: /docs loads every script, style and icon from the
server itself (Swagger UI ships in the fastapi-offline package), never from a CDN, and renders
the API in a browser that reaches no other address."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from tests.api.conftest import Server, ServerFactory
from tests.reports.chromium import visit

# Every reference the page makes: attributes, and the spec URL in Swagger UI's set-up script.
REFERENCE = re.compile(r"""(?:src|href)=["']([^"']+)["']|\burl:\s*'([^']+)'""")
ASSET_TYPES = {
    "/docs-assets/swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "/docs-assets/swagger-ui.css": "text/css; charset=utf-8",
    "/docs-assets/favicon.png": "image/png",
    "/openapi.json": "application/json",
}
OPERATIONS = 8  # as test_openapi_describes_every_endpoint lists them


@pytest.fixture(scope="module")
def server(servers: ServerFactory) -> Server:
    return servers()


def references(page: str) -> list[str]:
    return [a or b for a, b in REFERENCE.findall(page)]


def test_the_docs_page_references_only_the_server_itself(server: Server) -> None:
    expected = [
        "/docs-assets/swagger-ui.css",
        "/docs-assets/favicon.png",
        "/docs-assets/swagger-ui-bundle.js",
        "/openapi.json",
    ]
    with server.client() as client:
        html = client.get("/docs")
        assert html.status_code == 200
        assert html.headers["content-type"] == "text/html; charset=utf-8"
        # Nothing that could reach another host: no absolute URL at all, nor a protocol-relative one.
        assert (
            "http://" not in html.text and "https://" not in html.text and "//cdn" not in html.text
        )
        found = references(html.text)
        assert found == expected
        for reference in found:
            url = urljoin(f"{server.url}/docs", reference)
            assert urlsplit(url).netloc == urlsplit(server.url).netloc, reference
            asset = client.get(url)
            assert asset.status_code == 200, reference
            assert asset.headers["content-type"] == ASSET_TYPES[reference], reference
            assert len(asset.content) > 1000, reference
        # ReDoc's page would fetch a logo from its vendor's CDN: it is not served.
        assert client.get("/redoc").status_code == 404


SWAGGER_PROBE = """new Promise(resolve => {
  const started = Date.now();
  const look = () => {
    const title = document.querySelector('.swagger-ui .info .title');
    const operations = document.querySelectorAll('.swagger-ui .opblock').length;
    if ((title && operations) || Date.now() - started > 20000) {
      resolve(JSON.stringify({title: title ? title.textContent : null, operations}));
    } else {
      setTimeout(look, 50);
    }
  };
  look();
})"""


def test_swagger_ui_renders_from_the_server_alone(
    server: Server, browser: Path, tmp_path: Path
) -> None:
    seen = visit(browser, f"{server.url}/docs", SWAGGER_PROBE, tmp_path / "docs.png")
    assert seen.console_errors == []
    assert seen.failed == []
    assert [url for url in seen.requests if not url.startswith(f"{server.url}/")] == []
    assert sorted({urlsplit(url).path for url in seen.requests}) == [
        "/docs",
        "/docs-assets/favicon.png",
        "/docs-assets/swagger-ui-bundle.js",
        "/docs-assets/swagger-ui.css",
        "/openapi.json",
    ]
    assert json.loads(seen.result) == {
        "title": "ingest-engine API 1 OAS 3.1",
        "operations": OPERATIONS,
    }
