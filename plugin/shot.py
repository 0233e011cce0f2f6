"""Shot renders: a long frame range as chunks, with pre-roll, carried warm starts and resume.

Each chunk loads only its own frames, so memory follows the chunk size, not the shot length.
Within one process the last solved latent of every Invert node carries into the next chunk; a
chunk that starts without it (the first one of a process, a farm or Ray task, the one after a
chunk skipped as complete) also loads ``preroll`` frames before it, solved but not written, to
rebuild the warm start. Before the chunks run, their output frames are looked up on disk under
each saver's ``existing`` policy, with the check the saver itself makes: a chunk is skipped only
when every frame it writes is up to date (its fingerprint, nodes/provenance.py, matches what the
graph, model and plate make now, and it decodes completely), so a killed render resumes where it
stopped and a changed look renders again; ``overwrite`` renders every chunk, ``error`` refuses
before anything runs when an output frame exists, and an output path over a plate is refused.

The same chunk plan serves every backend (`ShotBackend`): this process (local_backend.py), Ray
tasks and a ComfyUI server; plugin/backends.py lists them. Within a local run a chunk's frames
go to the plate loaders and savers as parsed frames (tuples), never as text again.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from ..core.errors import context, error
from ..core.frames import parse_pattern
from ..core.frames.ranges import format_frame_ranges, parse_frame_range
from ..core.frames.sequence import check_existing
from ..host import Host, current_host
from ..nodes.exr_nodes import LoadEXRSequence, SaveEXRSequence
from ..nodes.provenance import frame_fingerprints, refuse_outputs_over_plates
from .backends import DEFAULT_PREROLL
from .graph import GraphNode, api_prompt, load_graph
from .runner import apply_overrides, node_classes, nodes_of
from .validate import node_label, validate_graph

log = logging.getLogger("latentmirror")


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


@dataclass(frozen=True)
class ShotJob:
    """A shot render as asked for: the graph file, ``--frames``, ``--set``, the chunk size, the
    pre-roll, and the ``--log-json`` stream (one JSON line per frame written)."""

    graph: str
    frames: str | None = None  # as typed; None: the plate loader's, else the plate on disk
    overrides: tuple[str, ...] = ()
    chunk_size: int = 10**9  # no --chunk: the whole shot in one chunk
    preroll: int = DEFAULT_PREROLL
    log_json: TextIO | None = None


# ----------------------------------------------------------------------------------------------
# What a graph reads and writes.


def graph_with_overrides(path: str, overrides) -> dict[str, GraphNode]:
    """The graph file with the ``--set`` overrides applied."""
    classes = node_classes()
    graph = load_graph(path, classes)
    apply_overrides(graph, overrides, classes)
    return graph


def loaders(graph: dict[str, GraphNode]) -> list[GraphNode]:
    return nodes_of(graph, node_classes(), LoadEXRSequence)


def savers(graph: dict[str, GraphNode]) -> list[GraphNode]:
    return nodes_of(graph, node_classes(), SaveEXRSequence)


def shot_frames(graph: dict[str, GraphNode], frames: str | None, host: Host) -> list[int]:
    """The frames to render: ``--frames``, else the first loader's ``frames``, else every frame
    of its plate on disk."""
    if frames:
        return parse_frame_range(frames)
    plates = loaders(graph)
    if not plates:
        raise error("a chunked render needs a Load EXR Sequence (or --frames)")
    text = str(plates[0].inputs.get(LoadEXRSequence.FRAMES_INPUT, "") or "")
    if text.strip():
        return parse_frame_range(text)
    path = plates[0].inputs.get(LoadEXRSequence.PATH_INPUT)
    if not isinstance(path, str):
        raise error("the plate's path is connected from another node: give --frames")
    found = sorted(parse_pattern(host.input_path(path)).frames_on_disk())
    if not found:
        raise error(f"no frames of {path} on disk", file=path)
    return list(range(found[0], found[-1] + 1))


def plate_frames_on_disk(graph: dict[str, GraphNode], host: Host) -> list[int]:
    """Frames of the first loader's plate on disk (for pre-roll before a range), or []."""
    plates = loaders(graph)
    path = plates[0].inputs.get(LoadEXRSequence.PATH_INPUT) if plates else None
    if not isinstance(path, str) or not path.strip():
        return []
    try:
        return sorted(parse_pattern(host.input_path(path)).frames_on_disk())
    except Exception:  # the render itself reports a bad pattern
        return []


def frames_to_render(graph: dict[str, GraphNode], frames: list[int], host: Host) -> set[int]:
    """The shot's frames that some saver must write, by the check the saver makes as it writes
    (core save side's ``check_existing``, with the fingerprints the saver will record). Refuses,
    before anything runs, an output path over a plate, existing frames under ``existing=error``
    and files latentmirror did not write."""
    prompt = api_prompt(graph)
    refuse_outputs_over_plates(prompt, host)
    todo: set[int] = set()
    counts = {"kept": 0, "stale": 0, "damaged": 0}
    for node in savers(graph):
        path = node.inputs.get(SaveEXRSequence.PATH_INPUT)
        existing = node.inputs.get(SaveEXRSequence.EXISTING_INPUT, "skip")
        if not isinstance(path, str) or not path.strip() or not isinstance(existing, str):
            todo |= set(frames)  # nothing to look up: the saver reports what is wrong
            continue
        with context(node=node_label(node, node_classes())):
            with context(input=SaveEXRSequence.PATH_INPUT):
                pattern = parse_pattern(host.output_path(path))
            made_by = frame_fingerprints(prompt, node.id, frames, host)
            with context(input=SaveEXRSequence.EXISTING_INPUT):
                found = check_existing(
                    [pattern.path_for(f) for f in frames],
                    frames,
                    existing,
                    [made_by[f] for f in frames],
                )
        todo |= {frames[i] for i in found.write}
        for kind in counts:
            counts[kind] += len(getattr(found, kind))
    if any(counts.values()):  # say what resuming does with the frames found on disk
        log.info(
            "output frames on disk: %d up to date (kept), %d stale and %d damaged (rendered again)",
            counts["kept"],
            counts["stale"],
            counts["damaged"],
        )
    return todo


def chunk_graph(path: str, overrides, chunk: Chunk) -> dict[str, GraphNode]:
    """The graph for one chunk: every loader reads the chunk's frames with its pre-roll, every
    saver writes the chunk's frames only. The frames go in as tuples of ints (the ComfyUI server
    backend writes them as text, in its API JSON)."""
    graph = graph_with_overrides(path, overrides)
    for node in loaders(graph):
        node.inputs[LoadEXRSequence.FRAMES_INPUT] = chunk.loaded
    for node in savers(graph):
        node.inputs[SaveEXRSequence.WRITE_FRAMES_INPUT] = chunk.frames
        if SaveEXRSequence.PLATE_INFO_INPUT not in node.inputs:  # number from the first loaded
            node.inputs[SaveEXRSequence.START_FRAME_INPUT] = chunk.loaded[0]
    return graph


# ----------------------------------------------------------------------------------------------
# Backends: where the chunks run.


@dataclass
class ShotReport:
    """How a shot's chunks went, wherever they ran (here, on Ray, on a ComfyUI server)."""

    chunks: int = 0
    rendered: list[Chunk] = field(default_factory=list)
    skipped: list[Chunk] = field(default_factory=list)  # every frame up to date on disk
    failed: list[tuple[Chunk, str]] = field(default_factory=list)  # chunk, what went wrong
    files: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    seconds: float = 0.0


class ShotBackend(ABC):
    """Where a shot's chunks run. `render_shot` plans the chunks and skips those up to date on
    disk; the backend renders the rest. A new backend: a module with a subclass, and its entry
    in plugin/backends.py (which gives the render command its option)."""

    def __init__(self, address: str | None = None):
        self.address = address  # the option's value: a cluster or server address

    @property
    def where(self) -> str | None:
        """Where the chunks ran, for the summary; None: here, in this process."""
        return self.address

    @abstractmethod
    def render(
        self, job: ShotJob, chunks: list[Chunk], report: ShotReport, done: Callable[[Chunk], None]
    ) -> None:
        """Render ``chunks`` in order of index: each one ends in ``report.rendered`` or
        ``report.failed`` (with what went wrong), then ``done(chunk)`` counts it. Log lines go
        to ``job.log_json`` as chunks finish."""


def render_shot(
    job: ShotJob, backend: ShotBackend, progress: Callable[[int, int], None] | None = None
) -> ShotReport:
    """Render a shot chunk by chunk on ``backend`` (see the module docstring).

    ``progress(done_frames, total_frames)`` after each chunk (those up to date on disk first).
    """
    started = time.perf_counter()
    host = current_host()
    graph = graph_with_overrides(job.graph, job.overrides)
    # every problem of the graph, before the first chunk (or a Ray task) runs
    validate_graph(graph, node_classes(), local_paths=backend.where is None)
    refuse_whole_shot_nodes(graph)
    before = plate_frames_on_disk(graph, host)
    frames = shot_frames(graph, job.frames, host)
    chunks = plan_chunks(frames, job.chunk_size, job.preroll, before)
    todo_frames = frames_to_render(graph, frames, host) if savers(graph) else set(frames)
    report = ShotReport(chunks=len(chunks))
    for chunk in chunks:
        if not todo_frames & set(chunk.frames):
            log.info("chunk %d (%s): up to date on disk, skipped", chunk.index + 1, chunk.label())
            report.skipped.append(chunk)
    total, done = sum(len(c.frames) for c in chunks), 0

    def count_done(chunk: Chunk) -> None:
        nonlocal done
        done += len(chunk.frames)
        if progress:
            progress(done, total)

    for chunk in report.skipped:
        count_done(chunk)
    todo = [chunk for chunk in chunks if chunk not in report.skipped]
    if todo:
        backend.render(job, todo, report, count_done)
    report.seconds = time.perf_counter() - started
    return report


def refuse_whole_shot_nodes(graph: dict[str, GraphNode]) -> None:
    """Refuse, before any chunk runs, a node that must see the whole shot at once (its class's
    ``whole_shot_refusal(inputs)`` says why, e.g. Tune GAN to Shot): every chunk would run it
    on its own frames and get another result."""
    classes = node_classes()
    for node in graph.values():
        check = getattr(classes.get(node.class_type), "whole_shot_refusal", None)
        reason = check(node.inputs) if check is not None else None
        if reason:
            raise error(
                f"a shot render runs the graph chunk by chunk: {reason}",
                node=node_label(node, classes),
            )


def open_log(target: str | None):
    """``--log-json``: ``-`` for stdout, else a file appended to (a farm task's log)."""
    if not target:
        return None
    if target == "-":
        return sys.stdout
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    return open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed by the CLI
