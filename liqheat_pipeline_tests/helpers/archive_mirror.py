"""A real HTTP server on 127.0.0.1 serving an archive mirror, with scripted faults."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, used once before the mirror answers normally."""

    status: int | None = None  # send this HTTP status with an empty body
    stall: bool = False  # accept the request and say nothing until the test ends
    truncate_after: int | None = None  # send headers and this many body bytes, then stall
    close_after: int | None = None  # send headers and this many body bytes, then hang up
    drip_seconds: float | None = None  # send the body one byte per this many seconds
    declared_length: int | None = None  # announce this Content-Length instead of the real one
    no_length: bool = False  # announce no length: the body ends when the connection closes


class ArchiveMirror:
    """Serves files under ``directory`` at ``/data/<relative path>``, after any scripted faults."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.hits: Counter[str] = Counter()
        self.release = threading.Event()
        self.base_url = ""

    def publish(self, relative: str, content: bytes, *, checksum_of: bytes | None = None) -> None:
        """Put ``content`` and its CHECKSUM (of ``checksum_of`` when given) on the mirror."""
        path = self.directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        digest = hashlib.sha256(content if checksum_of is None else checksum_of).hexdigest()
        Path(f"{path}.CHECKSUM").write_text(f"{digest}  {path.name}\n")

    def publish_checksums(self) -> None:
        """Add the CHECKSUM of every zip already under the mirror's directory."""
        for path in self.directory.rglob("*.zip"):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            Path(f"{path}.CHECKSUM").write_text(f"{digest}  {path.name}\n")

    def fail(self, relative: str, *faults: Fault) -> None:
        self.faults[f"/data/{relative}"].extend(faults)


class _Handler(BaseHTTPRequestHandler):
    server: _MirrorServer

    def do_GET(self) -> None:
        mirror = self.server.mirror
        mirror.hits[self.path] += 1
        pending = mirror.faults[self.path]
        fault = pending.pop(0) if pending else None
        file = mirror.directory / self.path.removeprefix("/data/")
        if fault is not None and fault.stall:
            mirror.release.wait(10)
            return
        if fault is not None and fault.status is not None:
            self._send_headers(fault.status, 0)
            return
        if not file.is_file():
            self._send_headers(404, 0)
            return
        body = file.read_bytes()
        fault = fault or Fault()
        length = len(body) if fault.declared_length is None else fault.declared_length
        self._send_headers(200, None if fault.no_length else length)
        # The client hanging up early is what some tests provoke.
        with contextlib.suppress(ConnectionError):
            self._send_body(body, fault)

    def _send_body(self, body: bytes, fault: Fault) -> None:
        mirror = self.server.mirror
        if fault.truncate_after is not None:
            self.wfile.write(body[: fault.truncate_after])
            self.wfile.flush()
            mirror.release.wait(10)
        elif fault.close_after is not None:
            # HTTP/1.0: returning from the handler closes the connection.
            self.wfile.write(body[: fault.close_after])
        elif fault.drip_seconds is not None:
            for offset in range(len(body)):
                if mirror.release.wait(fault.drip_seconds):
                    return
                self.wfile.write(body[offset : offset + 1])
                self.wfile.flush()
        else:
            self.wfile.write(body)

    def _send_headers(self, status: int, length: int | None) -> None:
        self.send_response(status)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


class _MirrorServer(ThreadingHTTPServer):
    daemon_threads = True
    mirror: ArchiveMirror


@contextmanager
def serve_mirror(directory: Path) -> Iterator[ArchiveMirror]:
    """Serve ``directory`` at ``<mirror.base_url>`` until the block ends."""
    archive = ArchiveMirror(directory)
    server = _MirrorServer(("127.0.0.1", 0), _Handler)
    server.mirror = archive
    archive.base_url = f"http://127.0.0.1:{server.server_address[1]}/data/"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield archive
    finally:
        archive.release.set()
        server.shutdown()
        server.server_close()
