"""The API documentation works offline: /docs (Swagger UI) and /redoc load every file from the
server itself, checked over a real ``liqheat serve`` on loopback and in headless Chromium with
every request to another host refused.

The documentation needs no database (only /openapi.json), so the server runs over an absent
DuckDB file and these tests do not wait for the demo pipeline.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from liqheat_pipeline_tests.helpers.api_server import client, running_server
from liqheat_pipeline_tests.helpers.browser import open_offline

API_PATHS = {
    "/",
    "/health",
    "/heatmap",
    "/liquidations/heatmap-timeseries",
    "/liquidations/map",
    "/liquidations/realized",
}
# What each documentation page loads, with its content type and a size only the real
# distribution files reach (the bundles are about a megabyte).
DOC_ASSETS = {
    "/docs": {
        "swagger-ui-bundle.js": ("text/javascript", 500_000),
        "swagger-ui.css": ("text/css", 50_000),
        "favicon.png": ("image/png", 1_000),
    },
    "/redoc": {
        "redoc.standalone.js": ("text/javascript", 500_000),
        "favicon.png": ("image/png", 1_000),
    },
}
_URL_ATTRIBUTE = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']""")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("docs") / "absent.duckdb") as url:
        yield url


@pytest.mark.parametrize("page", sorted(DOC_ASSETS))
def test_docs_page_loads_only_files_of_this_server(base_url, page):
    with client(base_url) as http:
        html = http.get(page)
        assert html.status_code == 200
        assert html.headers["content-type"].startswith("text/html")
        assert "://" not in html.text  # no absolute URL at all, so no other host
        urls = _URL_ATTRIBUTE.findall(html.text)
        assert {Path(url).name for url in urls} >= set(DOC_ASSETS[page])
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
        for url in urls:
            name = Path(urlsplit(url).path).name
            if name not in DOC_ASSETS[page]:
                continue  # the OpenAPI document (ReDoc's spec-url)
            content_type, min_size = DOC_ASSETS[page][name]
            asset = http.get(urljoin(base_url, url))
            assert asset.status_code == 200, url
            assert asset.headers["content-type"].split(";")[0] == content_type, url
            assert len(asset.content) > min_size, url


def test_docs_routes_stay_out_of_the_schema(base_url):
    with client(base_url) as http:
        schema = http.get("/openapi.json").json()
        redirect = http.get("/docs/oauth2-redirect")
        missing_asset = http.get("/docs/assets/no-such-file.js")
    assert set(schema["paths"]) == API_PATHS
    assert redirect.status_code == 200
    assert redirect.headers["content-type"].startswith("text/html")
    assert missing_asset.status_code == 404


@pytest.mark.browser
def test_swagger_ui_renders_every_operation_offline(browser, base_url):
    page, refused, errors = open_offline(browser, f"{base_url}/docs", base_url)
    try:
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = page.eval_on_selector_all(
            ".opblock-summary-path", "elements => elements.map(e => e.dataset.path)"
        )
        # The operation's parameters render when it is opened.
        page.click('[data-path="/liquidations/heatmap-timeseries"]')
        page.wait_for_selector(".parameters-container .parameter__name", timeout=10_000)
        parameters = page.eval_on_selector_all(
            ".parameters-container .parameter__name",
            "elements => elements.map(e => e.textContent)",
        )
    finally:
        page.close()
    assert sorted(paths) == sorted(API_PATHS)
    assert any(name.startswith("symbol") for name in parameters), parameters
    assert (refused, errors) == ([], [])


# ReDoc's "API docs by Redocly" badge is an image its script fetches from Redocly's CDN; it
# hides the image when that fails, and nothing else goes out.
REDOC_BADGE = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.mark.browser
def test_redoc_renders_the_operations_offline(browser, base_url):
    page, refused, errors = open_offline(browser, f"{base_url}/redoc", base_url)
    try:
        page.wait_for_function(
            "document.body.innerText.includes('/liquidations/heatmap-timeseries')",
            timeout=30_000,
        )
        text = page.inner_text("body")
        page.wait_for_selector(f'img[src="{REDOC_BADGE}"]', state="detached", timeout=10_000)
    finally:
        page.close()
    assert all(path in text for path in API_PATHS - {"/"})
    assert refused == [REDOC_BADGE]
    assert all("ERR_FAILED" in error for error in errors), errors
