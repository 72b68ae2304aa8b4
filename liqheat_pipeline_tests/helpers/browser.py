"""Headless Debian Chromium for the browser tests (driven by playwright; no browser download)."""

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def open_offline(browser, url: str, allowed: str, *, height: int = 900) -> tuple:
    """A page showing ``url`` where any request not starting with ``allowed`` is refused (the
    page must work offline), with the refused URLs and the console and script errors."""
    page = browser.new_page(viewport={"width": 1400, "height": height})
    refused: list[str] = []
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(allowed)
            else (refused.append(route.request.url), route.abort())
        ),
    )
    page.goto(url)
    return page, refused, errors
