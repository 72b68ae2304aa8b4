"""Checksum-verified, atomic downloads of daily files from the Binance public data archive."""

from __future__ import annotations

import hashlib
import http.client
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

from liqheat_pipeline.lib.archive.layout import PUBLIC_ARCHIVE_URL, daily_relative_path
from liqheat_pipeline.lib.atomic_file import atomic_output

# Long enough for a daily zip over a slow link (they are tens of KB), short enough that a server
# dripping bytes cannot hold a run for long.
DEFAULT_DEADLINE_SECONDS = 120.0
# A daily file of the datasets fetched here is tens of KB zipped (5m klines or metrics: 288 rows;
# the sample's gzip CSVs are about 7 KB) and 1m klines stay under 1 MB, so 64 MiB leaves a margin
# of more than 60 times the largest while keeping a hostile body off the disk.
DEFAULT_MAX_BYTES = 64 << 20
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
    """Retries or the deadline ran out, the body was too large, or the answer was final."""


class _ShortRead(Exception):
    """The connection ended before the body announced by Content-Length was complete."""


@dataclass(frozen=True)
class _RetryPolicy:
    timeout_seconds: float
    retries: int
    backoff_seconds: float
    deadline_seconds: float
    gives_up_at: float  # time.monotonic() value at which the whole fetch gives up

    def remaining_seconds(self, url: str, last_error: BaseException | None = None) -> float:
        """Seconds left before the deadline; past it, raises ``deadline_error``."""
        remaining = self.gives_up_at - time.monotonic()
        if remaining <= 0:
            raise self.deadline_error(url, last_error) from last_error
        return remaining

    def deadline_error(self, url: str, last_error: BaseException | None) -> DownloadError:
        cause = f"; last error: {_describe(last_error)}" if last_error is not None else ""
        return DownloadError(
            f"{url}: not done within the {self.deadline_seconds:g} s deadline{cause}"
        )


def fetch_daily_file(
    root: str | Path,
    dataset: str,
    symbol: str,
    day: date,
    *,
    interval: str = "5m",
    base_url: str = PUBLIC_ARCHIVE_URL,
    timeout_seconds: float = 30,
    retries: int = 3,
    backoff_seconds: float = 1.0,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Path:
    """Download one daily zip into ``root`` (archive layout), verified against its ``.CHECKSUM``.

    ``timeout_seconds`` bounds each network operation (connect, each read); ``retries`` is the
    number of extra attempts after the first for connection errors, timeouts and HTTP 5xx/408/429,
    waiting ``backoff_seconds × 2^k`` before retry k+1; a body shorter than its Content-Length
    counts as such a transient error. ``deadline_seconds`` bounds the whole call, retries and
    waits included (a stalled read may overrun it by at most one ``timeout_seconds``). A body
    larger than ``max_bytes`` (announced or streamed) is refused without retrying. A local file
    that already matches the published checksum is kept without downloading it again. Whatever
    fails, the destination keeps its previous content (or stays absent).
    """
    if timeout_seconds <= 0:
        raise ValueError(f"timeout_seconds={timeout_seconds!r}: must be positive")
    if retries < 0:
        raise ValueError(f"retries={retries!r}: must be zero or more")
    if backoff_seconds < 0:
        raise ValueError(f"backoff_seconds={backoff_seconds!r}: must be zero or more")
    if deadline_seconds <= 0:
        raise ValueError(f"deadline_seconds={deadline_seconds!r}: must be positive")
    if max_bytes <= 0:
        raise ValueError(f"max_bytes={max_bytes!r}: must be positive")
    policy = _RetryPolicy(
        timeout_seconds,
        retries,
        backoff_seconds,
        deadline_seconds,
        gives_up_at=time.monotonic() + deadline_seconds,
    )

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
        url,
        label,
        policy,
        lambda: _download_to(url, destination, expected, checksum_url, policy, max_bytes),
    )
    return destination


def _open(url: str, policy: _RetryPolicy) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    timeout = min(policy.timeout_seconds, policy.remaining_seconds(url))
    return urllib.request.urlopen(request, timeout=timeout)


def _read_small(url: str, policy: _RetryPolicy) -> str:
    with _open(url, policy) as response:
        body = b"".join(_body_chunks(response, url, policy, _MAX_CHECKSUM_BYTES))
    return body.decode("ascii", errors="replace")


def _download_to(
    url: str,
    destination: Path,
    expected: str,
    checksum_url: str,
    policy: _RetryPolicy,
    max_bytes: int,
) -> None:
    # The response is opened and its announced length checked first, so that an HTTP error or
    # an announced oversized body never creates a temporary file.
    with _open(url, policy) as response:
        chunks = _body_chunks(response, url, policy, max_bytes)
        with atomic_output(destination) as handle:
            digest = hashlib.sha256()
            for chunk in chunks:
                digest.update(chunk)
                handle.write(chunk)
            actual = digest.hexdigest()
            if actual != expected:
                raise ChecksumMismatchError(
                    f"{destination.name}: downloaded from {url} has sha256 {actual}, but "
                    f"{checksum_url} publishes {expected}; the download was discarded"
                )


def _body_chunks(
    response: http.client.HTTPResponse, url: str, policy: _RetryPolicy, max_bytes: int
) -> Iterator[bytes]:
    """The body in chunks, within the deadline and ``max_bytes``, refusing a short body.

    The announced length is checked when this is called, before the first chunk is asked for.
    """
    announced = _announced_length(response, url, max_bytes)
    return _checked_chunks(response, url, policy, max_bytes, announced)


def _announced_length(response: http.client.HTTPResponse, url: str, max_bytes: int) -> int | None:
    # http.client's parse of Content-Length; None when absent (or chunked).
    announced = response.length
    if announced is not None and announced > max_bytes:
        raise DownloadError(
            f"{url}: Content-Length announces {announced} bytes, more than the "
            f"{max_bytes}-byte cap; not downloaded"
        )
    return announced


def _checked_chunks(
    response: http.client.HTTPResponse,
    url: str,
    policy: _RetryPolicy,
    max_bytes: int,
    announced: int | None,
) -> Iterator[bytes]:
    received = 0
    # read1 makes one socket read per call (read() loops until its size is filled), so a
    # dripping server cannot keep one call alive past the deadline.
    while chunk := response.read1(_CHUNK_BYTES):
        received += len(chunk)
        if received > max_bytes:
            raise DownloadError(
                f"{url}: body is more than the {max_bytes}-byte cap; the download was discarded"
            )
        policy.remaining_seconds(url)
        yield chunk
    # http.client reports a connection closed early as a normal end of the body.
    if announced is not None and received < announced:
        raise _ShortRead(
            f"short read: {received} of the {announced} bytes announced by Content-Length"
        )


def _with_retries(url: str, label: str, policy: _RetryPolicy, attempt: Callable[[], T]) -> T:
    last_error: BaseException | None = None
    for attempt_index in range(policy.retries + 1):
        if attempt_index:
            backoff = policy.backoff_seconds * 2 ** (attempt_index - 1)
            if backoff >= policy.remaining_seconds(url, last_error):
                # Waking up past the deadline would be pointless: give up now.
                raise policy.deadline_error(url, last_error) from last_error
            time.sleep(backoff)
        try:
            return attempt()
        except urllib.error.HTTPError as error:
            error.close()
            if error.code == 404:
                raise NotPublishedError(f"{label} is not published (yet) at {url}") from None
            if error.code < 500 and error.code not in _RETRYABLE_STATUS:
                raise DownloadError(f"{url}: {_describe(error)} (not retried)") from error
            last_error = error
        except (OSError, http.client.HTTPException, _ShortRead) as error:
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
    if isinstance(error, _ShortRead):
        return str(error)
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
