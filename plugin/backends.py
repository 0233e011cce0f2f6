"""Where ``latentmirror render`` can run a shot's chunks: the one list of shot backends.

Adding a backend: a module with a `shot.ShotBackend` subclass, and its entry here; the entry's
option (with its metavar and help) becomes the render command's flag, its value the backend's
address. A backend's module is imported only when it is chosen, so ``latentmirror --help`` and
``info`` do not load the render machinery.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

# Measured (tests/benchmarks/bench_preroll.py, README): in one process the carried latent alone is
# as close to a single pass as any pre-roll; a chunk that starts without it (a farm task, a Ray
# task, the chunk after a resumed one) needs about 8 frames of pre-roll to get as close. Kept
# here, with the options, so ``--help`` shows it without loading the render machinery.
DEFAULT_PREROLL = 8


@dataclass(frozen=True)
class BackendEntry:
    module: str  # in latentmirror.plugin
    class_name: str
    option: str | None = None  # the render command's flag; None: the default, no flag
    metavar: str = ""
    help: str = ""

    def load(self):
        """The backend class (a `shot.ShotBackend` subclass)."""
        return getattr(importlib.import_module(f".{self.module}", __package__), self.class_name)


SHOT_BACKENDS: dict[str, BackendEntry] = {
    "local": BackendEntry("local_backend", "LocalBackend"),
    "ray": BackendEntry(
        "ray_backend",
        "RayBackend",
        option="--ray",
        metavar="ADDRESS",
        help="run the chunks as Ray tasks on a cluster (its address, or auto for a local one)",
    ),
    "server": BackendEntry(
        "server",
        "ServerBackend",
        option="--server",
        metavar="URL",
        help="queue the chunks on a running ComfyUI (http://host:8188) instead of rendering here",
    ),
}
