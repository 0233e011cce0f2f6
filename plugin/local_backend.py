"""A shot's chunks rendered here, in this process (the default shot backend).

Each Invert node's last solved latent carries from a chunk to the next one, which then needs no
pre-roll; after a chunk skipped as up to date on disk the next one starts from its pre-roll. A
Ray task renders its one chunk with `render_chunk` too.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from ..core.errors import error
from ..host import Host, PlainHost, ShotState, current_host
from .runner import RunReport, node_classes, run_graph
from .shot import Chunk, ShotBackend, ShotJob, ShotReport, chunk_graph

log = logging.getLogger("latentmirror")


class LocalBackend(ShotBackend):
    """The chunks one after another in this process, the warm start carried between them."""

    def render(
        self, job: ShotJob, chunks: list[Chunk], report: ShotReport, done: Callable[[Chunk], None]
    ) -> None:
        host = current_host()
        if not isinstance(host, PlainHost):
            raise error("chunked renders run on the headless host")
        with _shot_state(host) as shot:
            after = None  # the index of the chunk rendered last
            for chunk in chunks:
                if after is None or chunk.index != after + 1:
                    shot.carried.clear()  # a chunk up to date on disk between: start from pre-roll
                if shot.carried:  # warm start carried over: no pre-roll needed
                    chunk = Chunk(chunk.index, chunk.frames)
                run = render_chunk(job.graph, job.overrides, chunk, job.log_json)
                report.rendered.append(chunk)
                report.files += run.files
                report.plots += run.plots
                done(chunk)
                after = chunk.index


@contextmanager
def _shot_state(host: Host) -> Iterator[ShotState]:
    """``host.shot`` while chunks render: the shot's own when one is rendering (warm starts carry
    between its chunks), else a new one for a lone chunk (a Ray task), removed afterwards."""
    if host.shot is not None:
        yield host.shot
        return
    host.shot = ShotState()
    try:
        yield host.shot
    finally:
        host.shot = None


def render_chunk(path: str, overrides, chunk: Chunk, log_json: TextIO | None = None) -> RunReport:
    """One chunk on the current host: load its frames and pre-roll, run the graph, write the
    chunk's frames; JSON log lines for the frames written."""
    log.info(
        "chunk %d (%s) with %d pre-roll frame(s)",
        chunk.index + 1,
        chunk.label(),
        len(chunk.preroll),
    )
    graph = chunk_graph(path, overrides, chunk)
    with _shot_state(current_host()) as shot:
        shot.frame_log.clear()
        began = time.perf_counter()
        # each chunk keeps its own loss curve: obscura.invert_loss_7.1001-1008.png
        run = run_graph(graph, node_classes(), plot_suffix=f"{chunk.frames[0]}-{chunk.frames[-1]}")
    seconds = (time.perf_counter() - began) / len(chunk.frames)
    if log_json is not None:
        for frame in chunk.frames:
            entry = shot.frame_log.get(frame, {})
            if not entry.get("output"):
                continue  # up to date on disk (existing=skip): kept, not rendered again
            line = {"frame": frame, "seconds": round(seconds, 4), "loss": entry.get("loss"),
                    "output": entry.get("output"), "chunk": chunk.index + 1}  # fmt: skip
            log_json.write(json.dumps(line) + "\n")
        log_json.flush()
    return run
