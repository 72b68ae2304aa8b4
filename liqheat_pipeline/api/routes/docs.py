"""The API documentation, offline: Swagger UI at /docs and ReDoc at /redoc load their JavaScript,
CSS and icon from this server (FastAPI's defaults fetch them from a CDN, so /docs was blank
without network). The files come from the ``fastapi-offline`` package, which ships both UIs."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
# The files of fastapi_offline/static: swagger-ui-bundle.js, swagger-ui.css,
# redoc.standalone.js, favicon.png.
ASSETS_PACKAGE = ("fastapi_offline", "static")
# FastAPI's own docs routes answer HEAD too.
METHODS = ["GET", "HEAD"]

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    """The path prefix the app is served under (empty unless behind a proxy that sets it)."""
    return request.scope.get("root_path", "").rstrip("/")


@router.api_route("/docs", methods=METHODS)
def swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=root + app.openapi_url,
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
        init_oauth=app.swagger_ui_init_oauth,
        swagger_ui_parameters=app.swagger_ui_parameters,
    )


@router.api_route(OAUTH2_REDIRECT_URL, methods=METHODS)
def swagger_ui_oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.api_route("/redoc", methods=METHODS)
def redoc(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = _root(request)
    return get_redoc_html(
        openapi_url=root + app.openapi_url,
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )


def add_docs(app: FastAPI) -> None:
    """Serve the documentation pages and their files; the app must have ``docs_url=None`` and
    ``redoc_url=None`` so that FastAPI does not add its CDN-based ones."""
    app.include_router(router)
    app.mount(ASSETS_URL, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")
