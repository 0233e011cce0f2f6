"""The headless CLI's host: the plain host with progress bars on stderr, Ctrl-C, and ``--roots``."""

from __future__ import annotations

import os
import signal
import sys
import threading

from tqdm import tqdm

from ..core.errors import LatentmirrorError
from ..host import PathRoots, PlainHost, Progress


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


class HeadlessHost(PlainHost):
    """``--device`` and ``--models-dir`` as the plain host takes them, progress bars when
    stderr is a terminal (``show_progress``), and Ctrl-C between steps. ``roots`` (``--roots``):
    nodes read and write only inside these folders, as in a shared ComfyUI; None: anywhere."""

    name = "headless"

    def __init__(
        self,
        device: str = "auto",
        models_dir: str | None = None,
        show_progress: bool | None = None,
        roots: list[str] | None = None,
    ):
        super().__init__(device, models_dir)
        self._roots = None if roots is None else tuple(os.path.abspath(r) for r in roots)
        self._show_progress = sys.stderr.isatty() if show_progress is None else show_progress
        self.quiet_progress = not self._show_progress
        self.interrupt_requested = threading.Event()

    def path_roots(self) -> PathRoots:
        if self._roots is None:
            return PathRoots()
        given = f"--roots {os.pathsep.join(self._roots)}"
        return PathRoots(
            readable=self._roots,
            writable=self._roots,
            described_as={"read": given, "write": given},
        )

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
