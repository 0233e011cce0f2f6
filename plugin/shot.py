"""Shot renders: a long frame range as chunks, with pre-roll, carried warm starts and resume.

Each chunk loads only its own frames, so memory follows the chunk size, not the shot length.
Within one process the last solved latent of every Invert node carries into the next chunk; a
chunk that starts without it (the first one of a process, a farm or Ray task, the one after a
chunk skipped as complete) also loads ``preroll`` frames before it, solved but not written, to
rebuild the warm start. Before a chunk runs, its frames are looked up on
disk: a chunk whose every output frame is complete is skipped, so a killed render resumes where
it stopped (frames are written to a temporary name and renamed, so none is ever half-written).

The same chunk plan serves the local loop, Ray tasks and a ComfyUI server.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.errors import error
from ..core.frames import parse_pattern
from ..core.frames.exr import read_headers
from ..core.frames.ranges import format_frame_ranges, parse_frame_range
from .graph import GraphNode, load_graph
from .runner import RunReport, apply_overrides, node_classes, run_graph

log = logging.getLogger("latentmirror")

LOADER, SAVER = "LM_LoadEXRSequence", "LM_SaveEXRSequence"
# Measured (tests/benchmarks/bench_preroll.py, README): in one process the carried latent alone is
# as close to a single pass as any pre-roll; a chunk that starts without it (a farm task, a Ray
# task, the chunk after a resumed one) needs about 8 frames of pre-roll to get as close.
DEFAULT_PREROLL = 8


@dataclass(frozen=True)
class Chunk:
    index: int
    frames: tuple[int, ...]  # written
    preroll: tuple[int, ...] = ()  # loaded and solved before them, not written

    @property
    def loaded(self) -> tuple[int, ...]:
        return self.preroll + self.frames

    def label(self) -> str:
        return format_frame_ranges(list(self.frames))


def plan_chunks(
    frames: list[int], size: int, preroll: int = 0, before: list[int] = ()
) -> list[Chunk]:
    """The shot's frames in chunks of ``size``; each with up to ``preroll`` frames before it.
    ``before``: plate frames preceding the range (a farm task's range starts mid-shot: its first
    chunk takes its pre-roll from them).

    >>> [c.label() for c in plan_chunks(list(range(1001, 1011)), 4, 2)]
    ['1001-1004', '1005-1008', '1009-1010']
    >>> plan_chunks(list(range(1001, 1011)), 4, 2)[1].preroll
    (1003, 1004)
    """
    if size < 1 or preroll < 0:
        raise error(f"--chunk must be >= 1 and --preroll >= 0, got {size} and {preroll}")
    chunks = []
    earlier = [f for f in before if f < frames[0]] if frames else []
    available = earlier + list(frames)
    for index, start in enumerate(range(0, len(frames), size)):
        at = start + len(earlier)
        chunks.append(
            Chunk(
                index,
                tuple(frames[start : start + size]),
                tuple(available[max(0, at - preroll) : at]),
            )
        )
    return chunks


# ----------------------------------------------------------------------------------------------
# What a graph reads and writes.


def loaders(graph: dict[str, GraphNode]) -> list[GraphNode]:
    return [n for n in graph.values() if n.class_type == LOADER]


def savers(graph: dict[str, GraphNode]) -> list[GraphNode]:
    return [n for n in graph.values() if n.class_type == SAVER]


def shot_frames(graph: dict[str, GraphNode], frames: str | None, host) -> list[int]:
    """The frames to render: ``--frames``, else the first loader's ``frames``, else every frame
    of its plate on disk."""
    if frames:
        return parse_frame_range(frames)
    plates = loaders(graph)
    if not plates:
        raise error("a chunked render needs a Load EXR Sequence (or --frames)")
    text = str(plates[0].inputs.get("frames", "") or "")
    if text.strip():
        return parse_frame_range(text)
    path = plates[0].inputs.get("path")
    if not isinstance(path, str):
        raise error("the plate's path is connected from another node: give --frames")
    found = sorted(parse_pattern(host.input_path(path)).frames_on_disk())
    if not found:
        raise error(f"no frames of {path} on disk", file=path)
    return list(range(found[0], found[-1] + 1))


def plate_frames_on_disk(graph: dict[str, GraphNode], host) -> list[int]:
    """Frames of the first loader's plate on disk (for pre-roll before a range), or []."""
    plates = loaders(graph)
    path = plates[0].inputs.get("path") if plates else None
    if not isinstance(path, str) or not path.strip():
        return []
    try:
        return sorted(parse_pattern(host.input_path(path)).frames_on_disk())
    except Exception:  # the render itself reports a bad pattern
        return []


def output_paths(graph: dict[str, GraphNode], frame: int, host) -> list[str]:
    """Where the graph's savers write ``frame``."""
    out = []
    for node in savers(graph):
        path = node.inputs.get("path")
        if isinstance(path, str) and path.strip():
            out.append(parse_pattern(host.output_path(path)).path_for(frame))
    return out


def frame_complete(path: str) -> bool:
    """A finished EXR: present and with a readable header (renames make it all or nothing)."""
    if not os.path.isfile(path):
        return False
    try:
        read_headers(path)
    except Exception:
        return False
    return True


def chunk_complete(graph: dict[str, GraphNode], chunk: Chunk, host) -> bool:
    paths = [p for f in chunk.frames for p in output_paths(graph, f, host)]
    return bool(paths) and all(frame_complete(p) for p in paths)


def chunk_graph(path: str, overrides, chunk: Chunk) -> dict[str, GraphNode]:
    """The graph for one chunk: every loader reads the chunk's frames with its pre-roll."""
    classes = node_classes()
    graph = load_graph(path, classes)
    apply_overrides(graph, overrides, classes)
    for node in loaders(graph):
        node.inputs["frames"] = format_frame_ranges(list(chunk.loaded))
    for node in savers(graph):
        node.inputs["write_frames"] = format_frame_ranges(list(chunk.frames))
        if "plate_info" not in node.inputs:  # number frames from the first one loaded
            node.inputs["start_frame"] = chunk.loaded[0]
    return graph


@dataclass
class ShotReport:
    """How a shot's chunks went, wherever they ran (here, on Ray, on a ComfyUI server)."""

    chunks: int = 0
    rendered: list[Chunk] = field(default_factory=list)
    skipped: list[Chunk] = field(default_factory=list)  # complete on disk
    failed: list[tuple[Chunk, str]] = field(default_factory=list)  # chunk, what went wrong
    files: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)  # --log-json lines made by workers
    seconds: float = 0.0


def start_shot(
    path: str,
    frames: str | None,
    overrides,
    chunk_size: int,
    preroll: int,
    host,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Chunk], ShotReport, Callable[[Chunk], None]]:
    """What every shot backend does first: plan the chunks, find those complete on disk (in the
    report's ``skipped``, counted done), and give the function that counts a chunk done."""
    classes = node_classes()
    graph = load_graph(path, classes)
    apply_overrides(graph, overrides, classes)
    before = plate_frames_on_disk(graph, host)
    chunks = plan_chunks(shot_frames(graph, frames, host), chunk_size, preroll, before)
    report = ShotReport(chunks=len(chunks))
    for chunk in chunks:
        if chunk_complete(graph, chunk, host):
            log.info("chunk %d (%s): complete on disk, skipped", chunk.index + 1, chunk.label())
            report.skipped.append(chunk)
    total, done = sum(len(c.frames) for c in chunks), 0

    def count_done(chunk: Chunk) -> None:
        nonlocal done
        done += len(chunk.frames)
        if progress:
            progress(done, total)

    for chunk in report.skipped:
        count_done(chunk)
    return chunks, report, count_done


# ----------------------------------------------------------------------------------------------
# The local loop.


def render_shot(
    path: str,
    frames: str | None,
    overrides,
    chunk_size: int,
    preroll: int = DEFAULT_PREROLL,
    log_json=None,
    progress: Callable[[int, int], None] | None = None,
) -> ShotReport:
    """Render a graph's shot chunk by chunk in this process (see the module docstring).

    ``log_json``: a text stream that gets one JSON line per written frame (frame, seconds, loss,
    output). ``progress(done_frames, total_frames)`` after each chunk.
    """
    from .headless import HeadlessHost
    from .host import current_host

    host = current_host()
    if not isinstance(host, HeadlessHost):
        raise error("chunked renders run on the headless host")
    started = time.perf_counter()
    chunks, report, count_done = start_shot(
        path, frames, overrides, chunk_size, preroll, host, progress
    )
    host.carried = {}  # carry warm starts from chunk to chunk
    try:
        for chunk in chunks:
            if chunk in report.skipped:
                host.carried = {}  # the next chunk starts from its pre-roll instead
                continue
            if host.carried:  # warm start carried over: no pre-roll needed
                chunk = Chunk(chunk.index, chunk.frames)
            run = render_chunk(path, overrides, chunk, log_json)
            report.rendered.append(chunk)
            report.files += run.files
            report.plots += run.plots
            count_done(chunk)
    finally:
        host.carried = None
    report.seconds = time.perf_counter() - started
    return report


def render_chunk(path: str, overrides, chunk: Chunk, log_json=None) -> RunReport:
    """One chunk on the current (headless) host: load its frames and pre-roll, run the graph,
    write the chunk's frames; JSON log lines for the frames written."""
    from .host import current_host

    host = current_host()
    log.info(
        "chunk %d (%s) with %d pre-roll frame(s)",
        chunk.index + 1,
        chunk.label(),
        len(chunk.preroll),
    )
    graph = chunk_graph(path, overrides, chunk)
    host.frame_log = {}
    began = time.perf_counter()
    run = run_graph(graph, node_classes())
    seconds = (time.perf_counter() - began) / len(chunk.frames)
    run.plots = [_name_by_chunk(plot, chunk) for plot in run.plots]
    if log_json is not None:
        for frame in chunk.frames:
            entry = host.frame_log.get(frame, {})
            if not entry.get("output"):
                continue  # complete on disk already (existing=skip): not rendered again
            line = {"frame": frame, "seconds": round(seconds, 4), "loss": entry.get("loss"),
                    "output": entry.get("output"), "chunk": chunk.index + 1}  # fmt: skip
            log_json.write(json.dumps(line) + "\n")
        log_json.flush()
    return run


def _name_by_chunk(plot: str, chunk: Chunk) -> str:
    """``invert_loss_7.png`` -> ``invert_loss_7.1001-1008.png``: each chunk keeps its curve."""
    base, ext = os.path.splitext(plot)
    named = f"{base}.{chunk.frames[0]}-{chunk.frames[-1]}{ext}"
    os.replace(plot, named)
    return named


def open_log(target: str | None):
    """``--log-json``: ``-`` for stdout, else a file appended to (a farm task's log)."""
    if not target:
        return None
    if target == "-":
        return sys.stdout
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    return open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed by the CLI
