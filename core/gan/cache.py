"""Loaded models, kept by content hash so that graphs re-running with the same file reuse them.

Hashing a 300 MB pickle takes a second, so the hash of a file is remembered by (path, size,
mtime); the models themselves are kept per (hash, device, dtype) until released.
"""

from __future__ import annotations

import hashlib
import os
import threading

import torch

from ..caches import register_cache
from ..storage import require_regular_file
from .model import GanModel

DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}

_lock = threading.Lock()
_hashes: dict[tuple[str, int, int], str] = {}
_models: dict[tuple[str, str, str], GanModel] = {}


def file_hash(path: str) -> str:
    """sha256 of the file's bytes (hex), remembered while the file is unchanged."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` is float32: the networks run in float32 and callers add autocast where it pays."""
    return torch.float32 if name == "auto" else DTYPES[name]


def get_model(path: str, device: torch.device | str = "cpu", dtype: str = "auto") -> GanModel:
    """The model in ``path`` on ``device`` in ``dtype``, loaded once per content."""
    from .loading import load_gan

    device = torch.device(device)
    require_regular_file(path, "GAN model file")  # hashing a FIFO or /dev/zero never ends
    content_hash = file_hash(path)
    key = (content_hash, str(device), str(resolve_dtype(dtype, device)))
    with _lock:
        if key not in _models:
            model = load_gan(path, device=device, content_hash=content_hash)
            _models[key] = model.to(device, resolve_dtype(dtype, device))
        return _models[key]


def release_gan_models(content_hash: str | None = None) -> int:
    """Forget loaded models (all, or those of one file's hash); returns how many went.

    :func:`latentmirror.core.caches.release_models` calls this with the other caches."""
    with _lock:
        keys = [k for k in _models if content_hash is None or k[0] == content_hash]
        for key in keys:
            del _models[key]
    if keys and torch.cuda.is_available():
        torch.cuda.empty_cache()
    return len(keys)


def loaded_models() -> list[GanModel]:
    return list(_models.values())


register_cache("GAN models", _models, clear=release_gan_models)
register_cache("GAN file hashes", _hashes)
