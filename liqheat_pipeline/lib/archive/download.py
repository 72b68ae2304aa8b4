"""Checksum-verified, atomic downloads of daily files from the Binance public data archive."""

from __future__ import annotations

import hashlib
import http.client
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

from liqheat_pipeline.lib.archive.layout import daily_relative_path
from liqheat_pipeline.lib.atomic_file import atomic_output

DEFAULT_BASE_URL = "https://data.binance.vision/data/"
_CHUNK_BYTES = 1 << 16
_MAX_CHECKSUM_BYTES = 4096
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# 408/429 and 5xx are the server saying "not now"; every other HTTP error is final.
_RETRYABLE_STATUS = frozenset({408, 429})
_USER_AGENT = "liqheat-pipeline (+https://data.binance.vision archive mirror)"

T = TypeVar("T")


class ArchiveFetchError(RuntimeError):
    """A daily archive file could not be fetched; the local mirror is unchanged."""


class NotPublishedError(ArchiveFetchError):
    """The archive answered 404: the file does not exist (yet)."""


class ChecksumMismatchError(ArchiveFetchError):
    """The downloaded bytes do not match the published sha256; they were discarded."""


class DownloadError(ArchiveFetchError):
    """Transient failures outlasted every retry, or the server gave a non-retryable answer."""


@dataclass(frozen=True)
class _RetryPolicy:
    timeout_seconds: float
    retries: int
    backoff_seconds: float


def fetch_daily_file(
    root: str | Path,
    dataset: str,
    symbol: str,
    day: date,
    *,
    interval: str = "5m",
    base_url: str = DEFAULT_BASE_URL,
    timeout_seconds: float = 30,
    retries: int = 3,
    backoff_seconds: float = 1.0,
) -> Path:
    """Download one daily zip into ``root`` (archive layout), verified against its ``.CHECKSUM``.

    ``timeout_seconds`` bounds each network operation (connect, each read); ``retries`` is the
    number of extra attempts after the first for connection errors, timeouts and HTTP 5xx/408/429,
    waiting ``backoff_seconds × 2^k`` before retry k+1. A local file that already matches the
    published checksum is kept without downloading it again. Whatever fails, the destination keeps
    its previous content (or stays absent).
    """
    if timeout_seconds <= 0:
        raise ValueError(f"timeout_seconds={timeout_seconds!r}: must be positive")
    if retries < 0:
        raise ValueError(f"retries={retries!r}: must be zero or more")
    if backoff_seconds < 0:
        raise ValueError(f"backoff_seconds={backoff_seconds!r}: must be zero or more")
    policy = _RetryPolicy(timeout_seconds, retries, backoff_seconds)

    relative = daily_relative_path(dataset, symbol, day, interval=interval, suffix=".zip")
    url = base_url.rstrip("/") + "/" + relative
    checksum_url = url + ".CHECKSUM"
    destination = Path(root) / relative
    label = f"{dataset} {symbol} {day.isoformat()}"

    checksum_text = _with_retries(
        checksum_url, label, policy, lambda: _read_small(checksum_url, policy)
    )
    expected = _parse_checksum(checksum_text, destination.name, checksum_url)
    if destination.is_file() and _sha256_of_file(destination) == expected:
        return destination

    _with_retries(
        url, label, policy, lambda: _download_to(url, destination, expected, checksum_url, policy)
    )
    return destination


def _open(url: str, policy: _RetryPolicy) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    return urllib.request.urlopen(request, timeout=policy.timeout_seconds)


def _read_small(url: str, policy: _RetryPolicy) -> str:
    with _open(url, policy) as response:
        return response.read(_MAX_CHECKSUM_BYTES).decode("ascii", errors="replace")


def _download_to(
    url: str, destination: Path, expected: str, checksum_url: str, policy: _RetryPolicy
) -> None:
    # The response is opened first so that an HTTP error never creates a temporary file.
    with _open(url, policy) as response, atomic_output(destination) as handle:
        digest = hashlib.sha256()
        while chunk := response.read(_CHUNK_BYTES):
            digest.update(chunk)
            handle.write(chunk)
        actual = digest.hexdigest()
        if actual != expected:
            raise ChecksumMismatchError(
                f"{destination.name}: downloaded from {url} has sha256 {actual}, but "
                f"{checksum_url} publishes {expected}; the download was discarded"
            )


def _with_retries(url: str, label: str, policy: _RetryPolicy, attempt: Callable[[], T]) -> T:
    last_error: BaseException | None = None
    for attempt_index in range(policy.retries + 1):
        if attempt_index:
            time.sleep(policy.backoff_seconds * 2 ** (attempt_index - 1))
        try:
            return attempt()
        except urllib.error.HTTPError as error:
            error.close()
            if error.code == 404:
                raise NotPublishedError(f"{label} is not published (yet) at {url}") from None
            if error.code < 500 and error.code not in _RETRYABLE_STATUS:
                raise DownloadError(f"{url}: {_describe(error)} (not retried)") from error
            last_error = error
        except (OSError, http.client.HTTPException) as error:
            # OSError covers URLError (connect failures), timeouts and resets while reading the
            # body; local disk errors are OSErrors too, and retrying those is harmless.
            last_error = error
    raise DownloadError(
        f"{url}: failed after {policy.retries + 1} attempts; last error: {_describe(last_error)}"
    ) from last_error


def _describe(error: BaseException | None) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"{type(error.reason).__name__}: {error.reason}"
    return f"{type(error).__name__}: {error}"


def _parse_checksum(text: str, file_name: str, checksum_url: str) -> str:
    """``<sha256 hex>  <file name>`` → the hex digest, refusing a checksum of another file."""
    parts = text.split()
    digest = parts[0].lower() if parts else ""
    named = parts[1].lstrip("*") if len(parts) > 1 else file_name
    if not _SHA256_HEX.match(digest) or named != file_name:
        raise DownloadError(
            f"{checksum_url}: expected '<sha256 hex>  {file_name}', got {text[:200]!r}"
        )
    return digest


def _sha256_of_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
