"""The host interface: what a node may ask of whoever runs it (ComfyUI, the headless runner).

Nodes never import ComfyUI modules or the plugin; they call `current_host()` for progress,
interruption, the torch device, model folders, path resolution, previews and plots, and, during
a shot render, `host.shot` for the state that carries from chunk to chunk.

This module sits in the package root, below both ``nodes`` and ``plugin`` (the layers in
pyproject's import contracts): the nodes call it, the plugin's hosts implement it. It is not in
``nodes/`` because importing anything there loads every node class (torch, OIIO); the CLI and
the tests reach the host without that. It imports nothing of the package at import time.

Where nodes may read and write files is one policy, ``PathRoots``: every host resolves the paths
nodes are given through it (``input_path``/``output_path``), ComfyUI with its folders and
``LATENTMIRROR_ROOTS``, the headless runner unrestricted unless given ``--roots``.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

MODEL_EXTENSIONS = {
    "gan": (".pkl", ".pt", ".pth", ".safetensors"),
    "lpips": (".pth", ".pt", ".safetensors"),
}
# Models that ship with the pack (the demo face generator) live in the pack's own models/<kind>/.
BUNDLED_MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
PREVIEW_MAX_FRAMES = 16  # a long plate previews a few frames spread over it, not all of them
ROOTS_ENV = "LATENTMIRROR_ROOTS"  # extra folders nodes may read and write (os.pathsep-separated)


@dataclass(frozen=True)
class PathRoots:
    """Where nodes may read and write files, and where relative paths start.

    ``readable``/``writable`` None: anywhere (the headless default: it is the user's own
    command). Otherwise a path is accepted only if its real path (symlinks and ``..`` resolved)
    lies inside one of those folders, and that real path (no links left) is what the node then
    opens. A sequence pattern is checked on its folder here; the nodes check each frame file
    they open too (a frame can be a link: nodes/common.py ``sequence_to_read``).
    ``read_base``/``write_base``: where relative paths start (None: the current folder).
    ``described_as``: how refusals name the allowed folders and their setting, per direction.
    """

    readable: tuple[str, ...] | None = None
    writable: tuple[str, ...] | None = None
    read_base: str | None = None
    write_base: str | None = None
    described_as: dict[str, str] = field(default_factory=dict)  # "read"/"write" -> text

    def for_reading(self, path: str) -> str:
        """``path`` as a node typed it, resolved for reading; refused outside the roots."""
        return self._resolve(path, self.read_base, self.readable, "read")

    def for_writing(self, path: str) -> str:
        """``path`` as a node typed it, resolved for writing; refused outside the roots."""
        return self._resolve(path, self.write_base, self.writable, "write")

    def _resolve(self, typed: str, base: str | None, allowed, verb: str) -> str:
        path = os.path.expanduser(typed)
        if base is not None and not os.path.isabs(path):
            path = os.path.join(base, path)
        if allowed is None:
            return os.path.abspath(path)
        real = os.path.realpath(path)
        if not any(is_inside(real, root) for root in allowed):
            from .core.errors import error  # here: importing the host loads no core module

            # the typed path only: where links lead, and what exists out there, stays unsaid
            raise error(
                f"'{typed}' is outside the folders nodes may {verb} "
                f"({self.described_as.get(verb, 'the allowed folders')}); add it there"
            )
        return real


def is_inside(real_path: str, folder: str) -> bool:
    """``real_path`` (already a realpath) is ``folder`` or lies under it (whose links resolve)."""
    root = os.path.normcase(os.path.realpath(folder))
    path = os.path.normcase(real_path)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def roots_from_env() -> list[str]:
    """The folders in $LATENTMIRROR_ROOTS (os.pathsep-separated; empty entries ignored)."""
    value = os.environ.get(ROOTS_ENV, "")
    return [os.path.expanduser(p) for p in value.split(os.pathsep) if p.strip()]


class Progress(ABC):
    @abstractmethod
    def update(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` steps (absolute, not an increment)."""

    def close(self) -> None:  # noqa: B027 - optional to override
        pass


class SilentProgress(Progress):
    def update(self, done: int, total: int) -> None:
        pass


@dataclass
class ShotState:
    """What a shot render carries between the chunks it runs (see plugin/shot.py).

    A host has one only while a shot renders (``host.shot``); ComfyUI renders everything it is
    given at once and never has one.
    """

    carried: dict[str, object] = field(default_factory=dict)  # Invert node id -> last latent
    frame_log: dict[int, dict] = field(default_factory=dict)  # frame -> loss, output, ...

    def previous_latent(self, node_id):
        """The last solved frame of the previous chunk for Invert ``node_id``, or None."""
        return self.carried.get(str(node_id))

    def keep_latent(self, node_id, latent) -> None:
        """Remember ``latent`` (the last frame) for the next chunk."""
        self.carried[str(node_id)] = latent

    def record_frame(self, frame: int, **values) -> None:
        """Per-frame facts for the render log (loss, output path)."""
        self.frame_log.setdefault(int(frame), {}).update(values)


class Host(ABC):
    """Services a node can use. Implementations: PlainHost (below), the headless runner's
    HeadlessHost and ComfyUIHost (plugin/)."""

    name = "abstract"
    shot: ShotState | None = None  # set by the shot renderer while a shot renders

    @abstractmethod
    def progress(self, total: int, description: str) -> Progress: ...

    @abstractmethod
    def check_interrupt(self) -> None:
        """Raise the host's interrupt exception if the user asked to stop."""

    @abstractmethod
    def device(self):
        """The torch device work should run on."""

    @abstractmethod
    def model_folders(self, kind: str) -> list[str]: ...

    def list_models(self, kind: str) -> list[str]:
        """Model files of ``kind`` (relative names) in this host's folders, bundled ones first."""
        names = set()
        for folder in self.model_folders(kind):
            for root, _dirs, files in os.walk(folder, followlinks=True):
                for file in files:
                    if file.lower().endswith(MODEL_EXTENSIONS.get(kind, ())):
                        names.add(os.path.relpath(os.path.join(root, file), folder))
        return bundled_first(kind, names)

    def model_path(self, kind: str, name: str) -> str | None:
        for folder in self.model_folders(kind):
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return candidate
        return None

    def path_roots(self) -> PathRoots:
        """Where this host lets nodes read and write (default: anywhere, relative to the cwd)."""
        return PathRoots()

    def input_path(self, path: str) -> str:
        """A path as the user typed it, for reading; refused outside ``path_roots()``."""
        return self.path_roots().for_reading(path)

    def output_path(self, path: str) -> str:
        """A path as the user typed it, for writing; refused outside ``path_roots()``."""
        return self.path_roots().for_writing(path)

    def preview_images(self, images: np.ndarray, prefix: str) -> list[dict] | None:
        """Show display-referred images ([frames, H, W, 3] in 0..1); returns UI entries or None."""
        return None

    def show_plot(self, image: np.ndarray, name: str) -> list[dict]:
        """Show an RGB uint8 plot ([H, W, 3], e.g. a loss curve) under ``name``.

        ComfyUI shows it in the node (returns the UI entries to put under ``"images"``); the
        plain and headless hosts keep it to be written as ``<name>.png`` beside the run's outputs.
        """
        return []

    @property
    def wants_previews(self) -> bool:
        return False


class PlainHost(Host):
    """Nodes run in this process with no user watching: no progress bars, no interrupt, the
    ``device`` given (auto: CUDA when there is one), models from the pack, ``models_dir``,
    $LATENTMIRROR_MODELS and ./models. The host when none was set (nodes called directly, as
    tests and scripts do); the headless CLI's host adds progress bars and Ctrl-C to it."""

    name = "plain"

    def __init__(self, device: str = "auto", models_dir: str | None = None):
        self._device_name = device
        self._models_dir = models_dir
        self.plots: dict[str, np.ndarray] = {}  # name -> RGB image, written after the run

    def progress(self, total: int, description: str) -> Progress:
        return SilentProgress()

    def check_interrupt(self) -> None:
        pass

    def device(self):
        import torch  # here, not at the top: the host interface stays light to import

        if self._device_name in ("", "auto"):
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self._device_name)

    def model_folders(self, kind: str) -> list[str]:
        """The pack's bundled models, ``models_dir`` (or $LATENTMIRROR_MODELS), then ./models;
        each holds ``<kind>/``."""
        roots = [BUNDLED_MODELS, self._models_dir, os.environ.get("LATENTMIRROR_MODELS"), "models"]
        folders = []
        for root in filter(None, roots):
            folder = os.path.abspath(os.path.join(os.path.expanduser(root), kind))
            if os.path.isdir(folder) and folder not in folders:
                folders.append(folder)
        return folders

    def show_plot(self, image: np.ndarray, name: str) -> list[dict]:
        """Keep the plot; the runner writes it as ``<name>.png`` beside the outputs."""
        self.plots[name] = image
        return []


def bundled_first(kind: str, names) -> list[str]:
    """Sorted names, those shipped with the pack first."""
    bundled = os.path.join(BUNDLED_MODELS, kind)
    return sorted(names, key=lambda n: (not os.path.isfile(os.path.join(bundled, n)), n.lower()))


def file_stem(name: str) -> str:
    """``name`` made safe as a file name: anything but letters, digits, ``.``, ``_`` and ``-``
    becomes ``_`` (a plot's name never picks a folder)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "plot"


def preview_indices(count: int) -> list[int]:
    """Which frames of a batch to preview: all of a short one, evenly spread over a long one."""
    if count <= PREVIEW_MAX_FRAMES:
        return list(range(count))
    step = (count - 1) / (PREVIEW_MAX_FRAMES - 1)
    return sorted({round(i * step) for i in range(PREVIEW_MAX_FRAMES)})


_current: Host | None = None


def current_host() -> Host:
    """The host set by ComfyUI's registration or the headless CLI, else a PlainHost."""
    global _current
    if _current is None:
        _current = PlainHost()
    return _current


def set_host(host: Host | None) -> Host | None:
    """Make ``host`` the current one (None: back to a fresh PlainHost when next asked)."""
    global _current
    _current = host
    return host
