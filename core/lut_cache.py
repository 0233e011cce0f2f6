"""Baked colour LUTs on disk, so that a second process loads in milliseconds what took seconds.

One ``.safetensors`` file per key (``<key>.safetensors``) in ``$LATENTMIRROR_LUT_CACHE``, else
``$XDG_CACHE_HOME/latentmirror/luts`` (~/.cache/...). The key is a digest of everything the
baked values depend on (see :func:`lut_key`). Each file carries its key and its tensors'
digests: an entry that does not match them (damaged, truncated, altered) is a miss, warned once
and replaced. Entries are written atomically (:func:`~.storage.write_atomically`); a folder that
cannot be written only costs the next process a bake (warned once), never the render.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os

import torch

from .storage import WriteFailed, tensor_digest, write_atomically

log = logging.getLogger("latentmirror")

METADATA_KEY = "latentmirror_lut"


def lut_key(**parts) -> str:
    """A stable digest of JSON-able parts (what the baked values depend on)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def lut_cache_folder() -> str:
    """``$LATENTMIRROR_LUT_CACHE``, else ``$XDG_CACHE_HOME/latentmirror/luts``."""
    if os.environ.get("LATENTMIRROR_LUT_CACHE"):
        return os.path.expanduser(os.environ["LATENTMIRROR_LUT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "latentmirror", "luts")


def entry_path(key: str) -> str:
    return os.path.join(lut_cache_folder(), f"{key}.safetensors")


def load_entry(key: str) -> dict[str, torch.Tensor] | None:
    """The tensors stored under ``key``, or None when there is no usable entry."""
    from safetensors import safe_open

    path = entry_path(key)
    if not os.path.isfile(path):
        return None
    try:
        with safe_open(path, framework="pt") as f:
            stored = json.loads((f.metadata() or {}).get(METADATA_KEY, "null"))
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 - not a dict
    except Exception as exc:  # safetensors and json raise several types for a damaged file
        _warn_once(path, f"LUT cache entry {path} is not readable ({exc}); baking again")
        return None
    digests = {name: tensor_digest(tensor) for name, tensor in tensors.items()}
    if not isinstance(stored, dict) or stored.get("key") != key or stored.get("digests") != digests:
        _warn_once(path, f"LUT cache entry {path} does not match its digests; baking again")
        return None
    return tensors


def store_entry(key: str, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tensors`` under ``key``; a folder that cannot be written is warned about once."""
    from safetensors.torch import save_file

    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    digests = {name: tensor_digest(tensor) for name, tensor in tensors.items()}
    metadata = {METADATA_KEY: json.dumps({"key": key, "digests": digests})}
    try:
        write_atomically(entry_path(key), lambda temporary: save_file(tensors, temporary, metadata))
    except WriteFailed as exc:  # a read-only or full cache folder must not fail a render
        message = f"LUT cache folder {lut_cache_folder()} cannot be written ({exc.reason})"
        _warn_once(lut_cache_folder(), f"{message}; the LUT is baked again in each process")


_warned: set[str] = set()


def _warn_once(subject: str, message: str) -> None:
    if subject not in _warned:
        _warned.add(subject)
        log.warning("%s", message)
