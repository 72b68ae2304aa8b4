"""fetch_daily_file against a real HTTP server on 127.0.0.1 that serves an archive mirror."""

from __future__ import annotations

import hashlib
import io
import random
import socket
import time
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from liqheat_pipeline.lib.archive.download import (
    DEFAULT_MAX_BYTES,
    ChecksumMismatchError,
    DownloadError,
    NotPublishedError,
    fetch_daily_file,
)
from liqheat_pipeline.lib.archive.layout import daily_relative_path
from liqheat_pipeline_tests.helpers.archive_mirror import ArchiveMirror, Fault, serve_mirror

DAY = date(2025, 12, 1)
SYMBOL = "BTCUSDT"
RELATIVE = daily_relative_path("klines", SYMBOL, DAY, interval="5m", suffix=".zip")
FAST = {"timeout_seconds": 0.2, "retries": 2, "backoff_seconds": 0.01, "deadline_seconds": 5}


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[ArchiveMirror]:
    with serve_mirror(tmp_path / "remote") as archive:
        yield archive


@pytest.fixture
def local_root(tmp_path: Path) -> Path:
    return tmp_path / "local"


def _zip_of(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(Path(RELATIVE).with_suffix(".csv").name, text)
    return buffer.getvalue()


ZIP = _zip_of("open_time,open,high,low,close\n1764547200000,90320.5,90396.9,89228.0,89771.4\n")
NEWER_ZIP = _zip_of(
    "open_time,open,high,low,close\n1764547200000,90320.5,90400.0,89228.0,89771.4\n"
)


def _fetch(mirror: ArchiveMirror, root: Path, **overrides: object) -> Path:
    options = {**FAST, **overrides}
    return fetch_daily_file(root, "klines", SYMBOL, DAY, base_url=mirror.base_url, **options)


def _all_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def test_downloads_and_verifies_into_the_archive_layout(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)

    path = _fetch(mirror, local_root)

    assert path == local_root / RELATIVE
    assert path.read_bytes() == ZIP
    assert _all_files(local_root) == [path]  # no temporary file left beside it
    assert zipfile.ZipFile(path).testzip() is None


def test_checksum_mismatch_names_the_file_and_leaves_nothing(mirror, local_root):
    mirror.publish(RELATIVE, ZIP, checksum_of=b"something else")

    with pytest.raises(ChecksumMismatchError) as raised:
        _fetch(mirror, local_root)

    message = str(raised.value)
    assert Path(RELATIVE).name in message
    assert hashlib.sha256(b"something else").hexdigest() in message
    assert hashlib.sha256(ZIP).hexdigest() in message
    assert _all_files(local_root) == []


def test_missing_file_is_not_published_and_leaves_nothing(mirror, local_root):
    with pytest.raises(NotPublishedError) as raised:
        _fetch(mirror, local_root)

    message = str(raised.value)
    assert "klines BTCUSDT 2025-12-01 is not published (yet)" in message
    assert f"{mirror.base_url}{RELATIVE}" in message
    assert _all_files(local_root) == []
    assert mirror.hits[f"/data/{RELATIVE}.CHECKSUM"] == 1  # a 404 is final, not retried


def test_zip_missing_after_checksum_is_not_published(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)
    (mirror.directory / RELATIVE).unlink()

    with pytest.raises(NotPublishedError):
        _fetch(mirror, local_root)
    assert _all_files(local_root) == []


def test_stalling_server_times_out_retries_then_gives_up(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)
    mirror.fail(RELATIVE, *[Fault(stall=True)] * 3)

    with pytest.raises(DownloadError) as raised:
        _fetch(mirror, local_root, retries=2)

    message = str(raised.value)
    assert f"{mirror.base_url}{RELATIVE}" in message
    assert "after 3 attempts" in message
    assert "timed out" in message
    assert mirror.hits[f"/data/{RELATIVE}"] == 3
    assert _all_files(local_root) == []


def test_transient_500_is_retried_then_succeeds(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)
    mirror.fail(RELATIVE, Fault(status=500))
    mirror.fail(f"{RELATIVE}.CHECKSUM", Fault(status=503))

    path = _fetch(mirror, local_root)

    assert path.read_bytes() == ZIP
    assert mirror.hits[f"/data/{RELATIVE}"] == 2
    assert mirror.hits[f"/data/{RELATIVE}.CHECKSUM"] == 2


def test_truncated_body_is_discarded_and_retried(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)
    mirror.fail(RELATIVE, Fault(truncate_after=len(ZIP) // 2))

    path = _fetch(mirror, local_root)

    assert path.read_bytes() == ZIP
    assert _all_files(local_root) == [path]
    assert mirror.hits[f"/data/{RELATIVE}"] == 2


def test_client_error_other_than_404_is_not_retried(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)
    mirror.fail(RELATIVE, Fault(status=403))

    with pytest.raises(DownloadError, match="HTTP 403"):
        _fetch(mirror, local_root)
    assert mirror.hits[f"/data/{RELATIVE}"] == 1


def test_connection_refused_gives_up_after_retries(local_root):
    with socket.socket() as probe:  # a port nobody listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(DownloadError, match="after 2 attempts") as raised:
        fetch_daily_file(
            local_root, "klines", SYMBOL, DAY, base_url=f"http://127.0.0.1:{port}/data/",
            **{**FAST, "retries": 1},
        )  # fmt: skip
    assert "Connection" in str(raised.value)
    assert _all_files(local_root) == []


def test_checksum_of_another_file_is_refused(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)
    Path(f"{mirror.directory / RELATIVE}.CHECKSUM").write_text(
        f"{hashlib.sha256(ZIP).hexdigest()}  ETHUSDT-5m-2025-12-01.zip\n"
    )

    with pytest.raises(DownloadError, match=r"ETHUSDT-5m-2025-12-01\.zip"):
        _fetch(mirror, local_root)
    assert _all_files(local_root) == []


@pytest.mark.parametrize(
    ("checksum_of", "faults"),
    [
        (None, [Fault(status=503)] * 3),
        (None, [Fault(stall=True), Fault(truncate_after=10), Fault(status=502)]),
        (b"corrupt upstream", []),
    ],
    ids=["server-errors", "stall-and-truncation", "checksum-mismatch"],
)
def test_failed_redownload_keeps_the_existing_file(mirror, local_root, checksum_of, faults):
    mirror.publish(RELATIVE, ZIP)
    existing = _fetch(mirror, local_root)
    mirror.publish(RELATIVE, NEWER_ZIP, checksum_of=checksum_of)  # the archive republished it
    mirror.fail(RELATIVE, *faults)

    with pytest.raises((DownloadError, ChecksumMismatchError)):
        _fetch(mirror, local_root)

    assert existing.read_bytes() == ZIP
    assert _all_files(local_root) == [existing]


def test_republished_file_replaces_the_old_one(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)
    existing = _fetch(mirror, local_root)
    mirror.publish(RELATIVE, NEWER_ZIP)

    assert _fetch(mirror, local_root).read_bytes() == NEWER_ZIP
    assert _all_files(local_root) == [existing]


def test_file_matching_the_checksum_is_not_downloaded_again(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)
    _fetch(mirror, local_root)

    _fetch(mirror, local_root)

    assert mirror.hits[f"/data/{RELATIVE}"] == 1
    assert mirror.hits[f"/data/{RELATIVE}.CHECKSUM"] == 2


@pytest.mark.parametrize("relative", [RELATIVE, f"{RELATIVE}.CHECKSUM"], ids=["zip", "checksum"])
def test_dripping_server_fails_at_the_deadline(mirror, local_root, relative):
    # One byte every 50 ms never trips the 200 ms read timeout: only the deadline ends this.
    mirror.publish(RELATIVE, ZIP)
    mirror.fail(relative, Fault(drip_seconds=0.05))

    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"not done within the 0\.6 s deadline") as raised:
        _fetch(mirror, local_root, deadline_seconds=0.6)
    elapsed = time.monotonic() - started

    assert 0.6 <= elapsed < 0.6 + 0.2 + 1.0  # the deadline, at most one read timeout, slack
    assert f"{mirror.base_url}{relative}" in str(raised.value)
    assert mirror.hits[f"/data/{relative}"] == 1  # the deadline is final, not retried
    assert _all_files(local_root) == []


def test_deadline_bounds_retries_and_backoff(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)
    mirror.fail(RELATIVE, *[Fault(stall=True)] * 6)

    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"not done within the 0\.5 s deadline") as raised:
        _fetch(mirror, local_root, retries=5, backoff_seconds=0.3, deadline_seconds=0.5)
    elapsed = time.monotonic() - started

    assert elapsed < 0.5 + 1.0  # without the deadline: 6 timeouts and 9.3 s of backoff
    assert "timed out" in str(raised.value)  # the last error before giving up is kept
    assert mirror.hits[f"/data/{RELATIVE}"] < 6
    assert _all_files(local_root) == []


def test_default_cap_refuses_an_oversized_content_length_before_writing(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)
    mirror.fail(RELATIVE, Fault(declared_length=DEFAULT_MAX_BYTES + 1))

    with pytest.raises(DownloadError, match="Content-Length") as raised:
        fetch_daily_file(local_root, "klines", SYMBOL, DAY, base_url=mirror.base_url)

    message = str(raised.value)
    assert f"{DEFAULT_MAX_BYTES + 1} bytes" in message
    assert f"{DEFAULT_MAX_BYTES}-byte cap" in message
    assert mirror.hits[f"/data/{RELATIVE}"] == 1  # a too large file is final, not retried
    assert _all_files(local_root) == []


def test_body_streamed_past_the_cap_is_discarded_while_writing(mirror, local_root):
    # No Content-Length: only counting the bytes as they arrive can stop this one.
    big = random.Random(9).randbytes(4 << 20)
    mirror.publish(RELATIVE, big)
    mirror.fail(RELATIVE, Fault(no_length=True))

    with pytest.raises(DownloadError, match=r"more than the 65536-byte cap") as raised:
        _fetch(mirror, local_root, max_bytes=1 << 16)

    assert f"{mirror.base_url}{RELATIVE}" in str(raised.value)
    assert mirror.hits[f"/data/{RELATIVE}"] == 1
    assert _all_files(local_root) == []


def test_body_without_content_length_within_the_cap_is_accepted(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)
    mirror.fail(RELATIVE, Fault(no_length=True))

    assert _fetch(mirror, local_root, max_bytes=len(ZIP)).read_bytes() == ZIP


def test_short_body_is_a_short_read_and_is_retried(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)
    mirror.fail(RELATIVE, Fault(close_after=len(ZIP) // 2))

    path = _fetch(mirror, local_root)

    assert path.read_bytes() == ZIP
    assert _all_files(local_root) == [path]
    assert mirror.hits[f"/data/{RELATIVE}"] == 2


def test_short_body_every_time_names_the_short_read(mirror, local_root):
    mirror.publish(RELATIVE, ZIP)
    mirror.fail(RELATIVE, *[Fault(close_after=10)] * 3)

    with pytest.raises(DownloadError) as raised:
        _fetch(mirror, local_root)

    message = str(raised.value)
    assert "after 3 attempts" in message
    assert f"short read: 10 of the {len(ZIP)} bytes announced by Content-Length" in message
    assert "sha256" not in message
    assert mirror.hits[f"/data/{RELATIVE}"] == 3
    assert _all_files(local_root) == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("timeout_seconds", 0),
        ("retries", -1),
        ("backoff_seconds", -0.5),
        ("deadline_seconds", 0),
        ("max_bytes", 0),
    ],
)
def test_invalid_options_are_named(local_root, option, value):
    with pytest.raises(ValueError, match=option):
        fetch_daily_file(local_root, "klines", SYMBOL, DAY, **{option: value})
