"""core/storage: atomic writes give files the permissions a plain write would (not mkstemp's)."""

from __future__ import annotations

import os
import stat

import pytest

from latentmirror.core.storage import write_atomically


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        path = write_atomically(str(tmp_path / "frame.1001.exr"), lambda t: open(t, "wb").close())
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["frame.1001.exr"]  # no temporary left beside it
