"""Atomic writes: all or nothing, and the same permissions as a plain write."""

import stat

import pytest

from liqheat_pipeline.lib.atomic_file import atomic_output, write_bytes_atomically


def test_a_written_file_has_the_mode_of_a_plain_write(tmp_path):
    plain = tmp_path / "plain.html"
    plain.write_bytes(b"page")
    atomic = tmp_path / "atomic.html"
    write_bytes_atomically(atomic, b"page")
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "latest.html"
    write_bytes_atomically(target, b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as handle:
        handle.write(b"new, half written")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["latest.html"]
