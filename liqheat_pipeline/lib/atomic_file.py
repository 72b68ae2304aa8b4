"""Write a file so that readers only ever see the old complete file or the new complete one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# Read once at import (reading it means setting it, which is not thread-safe later on).
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[BinaryIO]:
    """Yield a binary handle to a temporary file that replaces ``path`` when the block succeeds.

    The temporary file lives in the same directory so the final rename is atomic; it is
    fsynced first so a crash cannot leave a renamed but empty file. If the block raises, the
    temporary file is removed and ``path`` keeps its previous content (or stays absent).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed explicitly below
        dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
    )
    temporary = Path(handle.name)
    # The temporary file is created private (0600); the result gets the mode a plain write
    # would give it (0666 minus the umask), so pages and downloads stay readable as before.
    temporary.chmod(0o666 & ~_UMASK)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def write_bytes_atomically(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with atomic_output(path) as handle:
        handle.write(data)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; directories cannot be opened this way on Windows.
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
