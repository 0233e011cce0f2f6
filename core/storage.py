"""Writing files so that nothing half-written is ever seen, and content digests for caches.

Every file the pack writes (EXR frames, latents, models, checkpoints) goes through
:func:`write_atomically`: it is written under a hidden temporary name in the same folder and
renamed into place, so a reader or a crash (even SIGKILL) never meets a partial file.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import socket
import stat
import tempfile
import time
from collections.abc import Callable

import torch

from .errors import LatentmirrorError, Where, error


class WriteFailed(LatentmirrorError):
    """The file system refused a write (read-only or full volume, a folder we may not write):
    said plainly with the file; ``reason`` is the system's (callers such as caches that must
    not fail a render catch this type)."""

    def __init__(self, cause: OSError, path: str):
        self.reason = cause.strerror or str(cause)
        super().__init__(f"cannot write here: {self.reason} ({cause.filename})", Where(file=path))


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


# A temporary's name: ``.lm-<digest of the target's name>-<host>-<pid>-<random>.tmp<ext>``. It is
# short whatever the target's name (any legal name of 255 bytes can be written) and says who
# made it, so a writer removes only its own temporaries or provably abandoned ones.
_TEMPORARY_PREFIX = ".lm-"
_NAME_DIGEST_CHARS = 16
ABANDONED_AFTER_SECONDS = 3600  # another host's temporary this old is a dead writer's


def _name_digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:_NAME_DIGEST_CHARS]


def _host_name() -> str:
    """This machine's name as it goes into temporaries: letters, digits and dots, at most 32."""
    return re.sub(r"[^A-Za-z0-9.]", "", socket.gethostname())[:32] or "host"


def temporary_glob(path: str) -> str:
    """The glob of :func:`write_atomically`'s temporary files for ``path`` (every writer's)."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f"{_TEMPORARY_PREFIX}{_name_digest(name)}-*.tmp*")


def temporaries_in(folder: str) -> list[str]:
    """Every temporary file of :func:`write_atomically` in ``folder``, whatever it was for."""
    return glob.glob(
        os.path.join(glob.escape(os.path.abspath(folder)), f"{_TEMPORARY_PREFIX}*.tmp*")
    )


def temporary_owner(temporary: str) -> tuple[str, int] | None:
    """(host, pid) of the process that made ``temporary``, or None when the name is not ours."""
    name = os.path.basename(temporary)
    if not name.startswith(_TEMPORARY_PREFIX) or ".tmp" not in name:
        return None
    fields = name[len(_TEMPORARY_PREFIX) : name.rindex(".tmp")].split("-")
    if len(fields) != 4 or not fields[2].isdigit():
        return None
    return fields[1], int(fields[2])


def is_abandoned(temporary: str, now: float | None = None) -> bool:
    """A temporary no live writer will rename: its process (on this host) is gone, or it is
    older than :data:`ABANDONED_AFTER_SECONDS` (another host's writer cannot be asked)."""
    owner = temporary_owner(temporary)
    try:
        age = (now or time.time()) - os.stat(temporary).st_mtime
    except OSError:
        return False  # renamed or removed meanwhile: nothing to clean
    if age > ABANDONED_AFTER_SECONDS:
        return True
    if owner is None or owner[0] != _host_name():
        return False
    return not _process_alive(owner[1])


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_leftover_temporaries(path: str) -> list[str]:
    """Delete the temporaries of ``path`` that killed writers left behind (never a live
    writer's: two renders writing the same frames must not break each other); returns them."""
    removed = []
    for leftover in glob.glob(temporary_glob(path)):
        if is_abandoned(leftover):
            try:
                os.unlink(leftover)
                removed.append(leftover)
            except OSError:
                pass
    return removed


def write_atomically(path: str, write: Callable[[str], None]) -> str:
    """``write(temporary)`` then rename the temporary to ``path``; returns the absolute path.

    The temporary lies beside ``path`` under a short hidden name that keeps the extension (so
    writers that choose the format by it still work) and names this host and process. It is
    removed if ``write`` fails; abandoned temporaries of ``path`` are removed first. The file
    gets the permissions a plain ``open`` would (the umask), not mkstemp's 0600.
    """
    path = os.path.abspath(path)
    folder, name = os.path.split(path)
    try:  # a read-only or full volume, a folder we may not write: said plainly, with the file
        os.makedirs(folder, exist_ok=True)
        remove_leftover_temporaries(path)
        handle, temporary = tempfile.mkstemp(
            prefix=f"{_TEMPORARY_PREFIX}{_name_digest(name)}-{_host_name()}-{os.getpid()}-",
            suffix=f".tmp{os.path.splitext(name)[1][:16]}",
            dir=folder,
        )
    except OSError as exc:
        raise WriteFailed(exc, path) from None
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
