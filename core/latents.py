"""GAN_LATENT: solved latents of a plate, their files, and the latent cache.

A :class:`GanLatent` holds ``ws [B, num_ws, w_dim]`` (float32, CPU), optional per-frame noise
maps, the frame numbers, the model's content hash, the :class:`~.fit.Fit`, and how the latents
were made (space, schedule, steps, seed, loss mix, references) with the loss history.

Files are ``.safetensors``: tensors ``ws`` and ``noise.<layer>``, and the rest as JSON under the
metadata key ``latentmirror`` (readable by any safetensors tool).

The :class:`LatentCache` keeps results on disk by a key of everything that determines them, so
re-running a graph with unchanged frames, model, loss mix and steps loads instead of optimising.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field, replace

import torch

from .errors import LatentmirrorError, error
from .fit import Fit
from .storage import (
    WriteFailed,
    is_abandoned,
    require_regular_file,
    temporaries_in,
    tensor_digest,
    write_atomically,
)

log = logging.getLogger("latentmirror")

SPACES = ("w", "w_plus", "w_plus_noise")
METADATA_KEY = "latentmirror"
FORMAT_VERSION = 1


@dataclass
class GanLatent:
    """Latents of ``B`` frames. ``noise``: layer name -> ``[B, 1, R, R]`` (space w_plus_noise or
    the classic schedule), else None. ``history``: per-step loss values by label (``total`` and
    each term), over the whole run in order; ``frame_loss``: each frame's final total loss."""

    ws: torch.Tensor
    space: str
    model_hash: str
    frames: list[int]
    fit: Fit
    noise: dict[str, torch.Tensor] | None = None
    schedule: str = "fast"
    steps: int = 0
    seed: int = 0
    loss_mix: list[dict] = field(default_factory=list)
    reference: list[dict] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)
    frame_loss: list[float] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # timings, steps per frame, settings

    def __post_init__(self) -> None:
        if self.ws.ndim != 3:
            raise error(f"latents must be [frames, num_ws, w_dim], got {list(self.ws.shape)}")
        if len(self.frames) != self.ws.shape[0]:
            raise error(f"{self.ws.shape[0]} latents but {len(self.frames)} frame numbers")
        if self.space not in SPACES:
            raise error(f"unknown latent space {self.space!r}; expected one of {SPACES}")

    def __len__(self) -> int:
        return int(self.ws.shape[0])

    @property
    def num_ws(self) -> int:
        return int(self.ws.shape[1])

    @property
    def w_dim(self) -> int:
        return int(self.ws.shape[2])

    def select(self, indices: list[int]) -> GanLatent:
        """The latents of some frames (by position), with their noise and losses."""
        noise = {k: v[indices] for k, v in self.noise.items()} if self.noise else None
        losses = [self.frame_loss[i] for i in indices] if self.frame_loss else []
        frames = [self.frames[i] for i in indices]
        return replace(self, ws=self.ws[indices], noise=noise, frames=frames, frame_loss=losses)

    def metadata(self) -> dict:
        """Everything but the tensors, JSON-able."""
        return {
            "format": FORMAT_VERSION,
            "space": self.space,
            "model_hash": self.model_hash,
            "frames": list(self.frames),
            "fit": self.fit.to_dict(),
            "schedule": self.schedule,
            "steps": self.steps,
            "seed": self.seed,
            "loss_mix": self.loss_mix,
            "reference": self.reference,
            "history": self.history,
            "frame_loss": self.frame_loss,
            "info": self.info,
            "num_ws": self.num_ws,
            "w_dim": self.w_dim,
        }


def save_latents(latent: GanLatent, path: str) -> str:
    """Write ``latent`` to ``path`` (.safetensors) atomically: a temp file renamed into place.
    An existing file is replaced only when it is a latent file latentmirror wrote."""
    from safetensors.torch import save_file

    if os.path.lexists(path) and not _is_our_latent_file(path):
        raise error(
            "a file that is not a latent file latentmirror wrote is in the way; latentmirror "
            "replaces only files it wrote. Move or remove it, or choose another path",
            file=path,
        )

    tensors = {"ws": latent.ws.detach().float().cpu().contiguous()}
    for name, maps in (latent.noise or {}).items():
        tensors[f"noise.{name}"] = maps.detach().float().cpu().contiguous()
    metadata = {**latent.metadata(), "tensor_digests": _digests(tensors)}
    meta = {METADATA_KEY: json.dumps(metadata)}
    return write_atomically(path, lambda temporary: save_file(tensors, temporary, metadata=meta))


def _is_our_latent_file(path: str) -> bool:
    """A .safetensors file with our metadata key (only its header is read)."""
    from safetensors import safe_open

    if not os.path.isfile(path):
        return False
    try:
        with safe_open(path, framework="pt") as f:
            return METADATA_KEY in (f.metadata() or {})
    except Exception:  # safetensors raises several types for what is not its format
        return False


def _digests(tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    """Each tensor's :func:`~.storage.tensor_digest`, by name: stored with the tensors so that
    altered or damaged bytes are found on loading."""
    return {name: tensor_digest(tensor) for name, tensor in sorted(tensors.items())}


def load_latents(path: str, require_digests: bool = False) -> GanLatent:
    """Read a file written by :func:`save_latents`; errors name the file.

    The tensors must match the digests stored with them (files from before digests have none:
    accepted unless ``require_digests``, as the latent cache asks)."""
    from safetensors import safe_open

    if not os.path.exists(path):
        raise error("no latent file here", file=path)
    require_regular_file(path, "latent file")
    try:
        with safe_open(path, framework="pt") as f:
            meta = (f.metadata() or {}).get(METADATA_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise error(f"not a readable .safetensors latent file ({exc})", file=path) from None
    if meta is None or "ws" not in tensors:
        raise error("not a latentmirror latent file (no 'latentmirror' metadata or ws)", file=path)
    try:
        data = json.loads(meta)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise error("damaged latent file: its metadata is not a JSON object", file=path)
    if data.get("format", 0) > FORMAT_VERSION:
        raise error(
            f"latent file format {data['format']} is newer than this latentmirror", file=path
        )
    _check_digests(tensors, data.get("tensor_digests"), require_digests, path)
    noise = {k[len("noise.") :]: v for k, v in tensors.items() if k.startswith("noise.")} or None
    try:
        return _latent_from(tensors["ws"].float(), noise, data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise error(
            f"damaged latent file: its metadata lacks or mangles {exc}", file=path
        ) from None


def _latent_from(ws: torch.Tensor, noise: dict | None, data: dict) -> GanLatent:
    return GanLatent(
        ws=ws,
        space=data["space"],
        model_hash=data["model_hash"],
        frames=[int(f) for f in data["frames"]],
        fit=Fit.from_dict(data["fit"]),
        noise=noise,
        schedule=data.get("schedule", "fast"),
        steps=int(data.get("steps", 0)),
        seed=int(data.get("seed", 0)),
        loss_mix=data.get("loss_mix", []),
        reference=data.get("reference", []),
        history=data.get("history", {}),
        frame_loss=data.get("frame_loss", []),
        info=data.get("info", {}),
    )


def _check_digests(tensors: dict, stored: object, required: bool, path: str) -> None:
    if stored is None and not required:
        return
    if stored is None:
        raise error("latent file without tensor digests (written before they existed)", file=path)
    actual = _digests(tensors)
    stored = stored if isinstance(stored, dict) else {}
    changed = sorted(n for n in set(stored) | set(actual) if stored.get(n) != actual.get(n))
    if changed:
        raise error(
            f"damaged latent file: tensors {', '.join(changed)} do not match their stored digests",
            file=path,
        )


# ----------------------------------------------------------------------------------------------
# The cache.


def cache_key(**parts) -> str:
    """A stable key from JSON-able parts (tensors are passed as their digests)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def default_cache_folder() -> str:
    """``$LATENTMIRROR_CACHE``, else ``$XDG_CACHE_HOME/latentmirror/latents`` (~/.cache/...)."""
    if os.environ.get("LATENTMIRROR_CACHE"):
        return os.path.expanduser(os.environ["LATENTMIRROR_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "latentmirror", "latents")


class LatentCache:
    """Solved latents on disk, one file per key; the least recently used go beyond ``max_bytes``.

    An entry is used only when its tensors match their stored digests: a damaged, altered or
    unreadable entry is a miss (warned once, removed where the folder allows). A read-only
    folder serves its entries and skips writes (warned once). Temporaries of killed writers
    count toward ``max_bytes`` and are removed once abandoned (:func:`~.storage.is_abandoned`:
    their process is gone, or they are old).
    """

    def __init__(self, folder: str | None = None, max_bytes: int = 2 * 1024**3):
        self.folder = folder or default_cache_folder()
        self.max_bytes = max_bytes

    def _path(self, key: str) -> str:
        return os.path.join(self.folder, f"{key}.safetensors")

    def get(self, key: str) -> GanLatent | None:
        path = self._path(key)
        if not os.path.isfile(path):
            return None
        try:
            latent = load_latents(path, require_digests=True)
        except LatentmirrorError as exc:
            message = f"latent cache entry {path} is not used ({exc.message}); solving again"
            self._warn_once(path, message)
            _remove_quietly(path)  # a read-only cache keeps it; it stays a miss
            return None
        try:
            os.utime(path)  # recently used
        except OSError:
            pass
        return latent

    def put(self, key: str, latent: GanLatent) -> None:
        try:
            save_latents(latent, self._path(key))
            self._prune()
        except (OSError, WriteFailed) as exc:  # a full or read-only cache must not fail a render
            reason = exc.reason if isinstance(exc, WriteFailed) else exc.strerror or str(exc)
            message = f"latent cache folder {self.folder} cannot be written ({reason}); not cached"
            self._warn_once(self.folder, message)

    @staticmethod
    def _warn_once(subject: str, message: str) -> None:
        """Once per process for each entry or folder (a shot render makes a cache per chunk)."""
        if subject not in _warned:
            _warned.add(subject)
            log.warning("%s", message)

    def _prune(self) -> None:
        """Abandoned temporaries go first, then the least recently used entries."""
        temporaries = {os.path.basename(path) for path in temporaries_in(self.folder)}
        entries, total = [], 0
        for name in os.listdir(self.folder):
            path = os.path.join(self.folder, name)
            try:
                stat = os.stat(path)
            except FileNotFoundError:  # another process's writer renamed or removed it
                continue
            if name in temporaries:
                if is_abandoned(path):
                    _remove_quietly(path)
                else:  # perhaps being written now: left alone, but it takes room
                    total += stat.st_size
            elif name.endswith(".safetensors"):
                entries.append((stat.st_mtime, stat.st_size, path))
                total += stat.st_size
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            _remove_quietly(path)
            total -= size


_warned: set[str] = set()


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
