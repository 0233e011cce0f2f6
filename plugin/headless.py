"""The headless host: progress bars on stderr, Ctrl-C, ``--device`` and ``--models-dir``."""

from __future__ import annotations

import os
import signal
import sys
import threading

import numpy as np
from tqdm import tqdm

from ..core.errors import LatentmirrorError
from .host import BUNDLED_MODELS, Host, Progress


class Interrupted(LatentmirrorError):
    """The user pressed Ctrl-C; work stopped between steps."""


class _BarProgress(Progress):
    def __init__(self, total: int, description: str, enabled: bool):
        self._bar = tqdm(
            total=total,
            desc=description,
            file=sys.stderr,
            disable=not enabled,
            unit="step",
            dynamic_ncols=True,
            leave=False,
        )

    def update(self, done: int, total: int) -> None:
        if self._bar.total != total:
            self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


class HeadlessHost(Host):
    name = "headless"

    def __init__(
        self, device: str = "auto", models_dir: str | None = None, show_progress: bool | None = None
    ):
        self._device_name = device
        self._models_dir = models_dir
        self._show_progress = sys.stderr.isatty() if show_progress is None else show_progress
        self.quiet_progress = not self._show_progress
        self.interrupt_requested = threading.Event()
        # Invert node id -> last solved frame's latent; a dict only during a chunked shot render
        self.carried: dict[str, object] | None = None
        self.frame_log: dict[int, dict] = {}  # frame -> loss, output, ...
        self.plots: dict[str, np.ndarray] = {}  # name -> RGB image, written after the run

    def show_plot(self, image: np.ndarray, name: str) -> list[dict]:
        """Keep the plot; the runner writes it as ``<name>.png`` beside the outputs."""
        self.plots[name] = image
        return []

    def progress(self, total: int, description: str) -> Progress:
        return _BarProgress(total, description, self._show_progress)

    def check_interrupt(self) -> None:
        if self.interrupt_requested.is_set():
            raise Interrupted("interrupted (Ctrl-C); stopped between steps, nothing half-written")

    def install_interrupt_handler(self) -> None:
        """First Ctrl-C: stop at the next step boundary. Second: stop at once."""

        def handle(signum, frame):
            if self.interrupt_requested.is_set():
                raise KeyboardInterrupt
            print(
                "\n[latentmirror] stopping after the current step (Ctrl-C again to abort)",
                file=sys.stderr,
            )
            self.interrupt_requested.set()

        signal.signal(signal.SIGINT, handle)

    def previous_latent(self, node_id):
        return self.carried.get(str(node_id)) if self.carried is not None else None

    def keep_latent(self, node_id, latent) -> None:
        if self.carried is not None:
            self.carried[str(node_id)] = latent

    def record_frame(self, frame: int, **values) -> None:
        self.frame_log.setdefault(int(frame), {}).update(values)

    def device(self):
        import torch

        if self._device_name in ("", "auto"):
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self._device_name)

    def model_folders(self, kind: str) -> list[str]:
        """The pack's bundled models, ``--models-dir`` (or $LATENTMIRROR_MODELS), then ./models;
        each holds ``<kind>/``."""
        roots = [BUNDLED_MODELS, self._models_dir, os.environ.get("LATENTMIRROR_MODELS"), "models"]
        folders = []
        for root in filter(None, roots):
            folder = os.path.abspath(os.path.join(os.path.expanduser(root), kind))
            if os.path.isdir(folder) and folder not in folders:
                folders.append(folder)
        return folders
