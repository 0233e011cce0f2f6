"""Writing files so that nothing half-written is ever seen, and content digests for caches.

Every file the pack writes (EXR frames, latents, models, checkpoints) goes through
:func:`write_atomically`: it is written under a hidden temporary name in the same folder and
renamed into place, so a reader or a crash (even SIGKILL) never meets a partial file.
"""

from __future__ import annotations

import glob
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable

import torch

from .errors import error


def require_regular_file(path: str, what: str) -> None:
    """Refuse, before opening it, what is not a plain file: a folder, a FIFO (reading it would
    wait forever) or a device such as /dev/zero (it never ends). ``what`` names it for the
    user ("graph file", "model", "frame")."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{what} does not exist", file=path) from None
    except OSError as exc:
        raise error(f"{what} cannot be read: {exc.strerror}", file=path) from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a pipe or a device)"
        raise error(f"{what} is {kind}", file=path)


def temporary_glob(path: str) -> str:
    """The glob of :func:`write_atomically`'s temporary files for ``path``."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{glob.escape(name)}.*.tmp*")


def temporaries_in(folder: str) -> list[str]:
    """Every temporary file of :func:`write_atomically` in ``folder``, whatever it was for."""
    return glob.glob(os.path.join(glob.escape(os.path.abspath(folder)), ".*.tmp*"))


def remove_leftover_temporaries(path: str) -> None:
    """Delete temporary files a killed writer of ``path`` left behind (one writer per file:
    chunks, farm tasks and Ray tasks own disjoint frames)."""
    for leftover in glob.glob(temporary_glob(path)):
        try:
            os.unlink(leftover)
        except OSError:
            pass


def write_atomically(path: str, write: Callable[[str], None]) -> str:
    """``write(temporary)`` then rename the temporary to ``path``; returns the absolute path.

    The temporary is ``.<name>.<random>.tmp<ext>`` beside ``path`` (keeping the extension, so
    writers that choose the format by it still work); it is removed if ``write`` fails, and
    leftovers of an earlier killed writer of ``path`` are removed first.
    """
    path = os.path.abspath(path)
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    remove_leftover_temporaries(path)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{name}.", suffix=f".tmp{os.path.splitext(name)[1]}", dir=folder
    )
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 would hide frames from the team
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def _umask() -> int:
    """The process's umask (the permissions a plain ``open`` would give a new file)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:  # Linux: read without setting
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def tensor_digest(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's shape and float32 bytes (for cache keys and metadata)."""
    data = tensor.detach().to("cpu", torch.float32).contiguous()
    digest = hashlib.sha256(str(list(data.shape)).encode())
    digest.update(data.numpy().tobytes())
    return digest.hexdigest()
