"""A real ``liqheat serve`` process on a free loopback port, for API and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

START_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(db_path: Path, extra_env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start ``python -m liqheat_pipeline.cli serve`` over ``db_path``; yield its base URL."""
    port = free_port()
    env = {**os.environ, "LIQHEAT_DB": str(db_path), **(extra_env or {})}
    command = [sys.executable, "-m", "liqheat_pipeline.cli", "serve", "--port", str(port)]
    # The server's log goes to a file: an unread pipe would fill up and stall the server.
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_listening(base_url, process, log)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_listening(base_url: str, process: subprocess.Popen, log: IO[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"liqheat serve exited early:\n{log.read()}")
        try:
            httpx.get(f"{base_url}/openapi.json", timeout=2.0, trust_env=False)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"liqheat serve did not listen on {base_url} within the timeout")


def client(base_url: str) -> httpx.Client:
    """A client that never goes through a proxy (the server is on loopback)."""
    return httpx.Client(base_url=base_url, timeout=30.0, trust_env=False)
