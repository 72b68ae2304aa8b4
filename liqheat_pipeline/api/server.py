"""``liqheat serve``: the API on uvicorn, loopback by default."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import uvicorn

from liqheat_pipeline.api.app import create_app

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the API on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def serve(db_path: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the API over ``db_path`` until interrupted (one process; requests in threads)."""
    uvicorn.run(create_app(db_path), host=host, port=port, log_level="info")
