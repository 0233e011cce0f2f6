"""What made a frame: the fingerprint Save EXR Sequence records in each frame's header.

A frame's fingerprint is a sha256 of
- the part of the graph upstream of the saver: each node's id, class type and input values
  (links followed, numbers compared as numbers so ``--set 7.steps=20`` and a typed 20 agree),
  leaving out the inputs that only choose frames (``FRAME_SELECTING_INPUTS`` of the loader and
  the saver, and ``existing``), so a chunked and a single-pass render of one look agree;
- the content hash (sha256) of every model file a Load GAN upstream reads, and of every other
  file an upstream node reads as part of the look (a node class's ``source_digest``: a Curve's
  ``.chan`` file);
- the identity of the plate file each upstream loader gives that frame (size, mtime in ns and
  inode: cheap for any plate size, and any rewrite or re-delivery of the file changes it);
- the frame number and the pack's version.

It is computed from the API-format graph (``prompt``, as ComfyUI passes it to nodes that ask
for it, and as the headless runner passes it too) and files on disk, so the saver computes it
as it writes and a shot render computes the same before a chunk runs (plugin/shot.py), to know
which chunks are up to date.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

from ..core import __version__
from ..core.errors import LatentmirrorError, error
from ..core.frames import parse_pattern
from ..core.frames.sequence import plan_frame
from ..core.gan.cache import file_hash
from ..host import Host


@dataclass(frozen=True)
class _Roles:
    """The node classes the fingerprint treats specially (imported when first needed: their
    modules import this one)."""

    classes: dict  # class type name -> node class
    loader: type  # reads plates: its path's files identify each frame
    saver: type  # writes sequences
    model_loader: type  # reads a model file: its content hash counts
    # inputs that only choose frames or the existing-file policy: not part of the look
    frame_selecting: dict  # node class -> input names


def _roles() -> _Roles:
    from . import NODE_CLASS_MAPPINGS
    from .exr_nodes import LoadEXRSequence, SaveEXRSequence
    from .gan_nodes import LoadGAN

    return _Roles(
        classes=NODE_CLASS_MAPPINGS,
        loader=LoadEXRSequence,
        saver=SaveEXRSequence,
        model_loader=LoadGAN,
        frame_selecting={
            LoadEXRSequence: {LoadEXRSequence.FRAMES_INPUT},
            SaveEXRSequence: {
                SaveEXRSequence.WRITE_FRAMES_INPUT,
                SaveEXRSequence.START_FRAME_INPUT,
                SaveEXRSequence.EXISTING_INPUT,
            },
        },
    )


def frame_fingerprints(
    prompt: dict, saver_id: str, frames: Iterable[int], host: Host
) -> dict[int, str]:
    """The fingerprint of each of ``frames`` as the saver ``saver_id`` of ``prompt`` writes it."""
    roles = _roles()
    upstream = upstream_nodes(prompt, str(saver_id))
    graph_part = {node_id: _node_identity(prompt[node_id], roles) for node_id in upstream}
    models = {node_id: _model_hash(prompt[node_id], roles, host) for node_id in upstream}
    identity = {"graph": graph_part, "models": models, "version": __version__}
    sources = {node_id: _source_digest(prompt[node_id], roles, host) for node_id in upstream}
    sources = {node_id: digest for node_id, digest in sources.items() if digest is not None}
    if sources:  # only graphs that read such files: other fingerprints stay as they were
        identity["sources"] = sources
    base = _digest(identity)
    plates = [
        _plate_files(prompt[node_id], roles, host)
        for node_id in upstream
        if roles.classes.get(prompt[node_id].get("class_type")) is roles.loader
    ]
    return {
        int(frame): _digest(
            {"base": base, "frame": int(frame), "plates": [p.identity(int(frame)) for p in plates]}
        )
        for frame in frames
    }


def upstream_nodes(prompt: dict, node_id: str) -> list[str]:
    """``node_id`` and every node it takes an input from, directly or not (sorted ids)."""
    seen: set[str] = set()
    todo = [node_id]
    while todo:
        current = todo.pop()
        if current in seen or current not in prompt:
            continue
        seen.add(current)
        todo += [str(v[0]) for v in prompt[current].get("inputs", {}).values() if _is_link(v)]
    return sorted(seen)


def refuse_outputs_over_plates(prompt: dict, host: Host) -> None:
    """Refuse, before anything runs, a graph whose sequence saver would write a file of a plate
    that one of its loaders reads (any frame on disk, not only those this run reads)."""
    roles = _roles()
    plates = [
        (node_id, _plate_files(node, roles, host))
        for node_id, node in prompt.items()
        if roles.classes.get(node.get("class_type")) is roles.loader
    ]
    for saver_id, node in prompt.items():
        if roles.classes.get(node.get("class_type")) is not roles.saver:
            continue
        path = node.get("inputs", {}).get(roles.saver.PATH_INPUT)
        if not isinstance(path, str) or not path.strip():
            continue
        try:
            pattern = parse_pattern(host.output_path(path))
        except LatentmirrorError:
            continue  # the saver reports a bad pattern itself
        for loader_id, plate in plates:
            for frame, source in plate.on_disk.items():
                if os.path.realpath(pattern.path_for(frame)) == os.path.realpath(source):
                    raise error(
                        f"the output path of node {saver_id} ({roles.saver.DISPLAY_NAME}) is "
                        f"a frame of the plate node {loader_id} reads; latentmirror never writes "
                        "over a plate. Choose another output path",
                        node=f"{saver_id} ({roles.saver.DISPLAY_NAME})",
                        input=roles.saver.PATH_INPUT,
                        file=source,
                        frame=frame,
                    )


def _node_identity(node: dict, roles: _Roles) -> dict:
    ignored = roles.frame_selecting.get(roles.classes.get(node.get("class_type")), set())
    inputs = {
        name: _canonical(value)
        for name, value in sorted(node.get("inputs", {}).items())
        if name not in ignored
    }
    return {"class_type": node.get("class_type"), "inputs": inputs}


def _canonical(value):
    """One spelling per value: links as ["link", id, slot], numbers (typed or as text) as
    floats, so the same look gives the same digest however its values were given."""
    if _is_link(value):
        return ["link", str(value[0]), int(value[1])]
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return repr(value)


def _model_hash(node: dict, roles: _Roles, host: Host) -> str | None:
    """sha256 of the model file a Load GAN reads (cached per file while it is unchanged)."""
    if roles.classes.get(node.get("class_type")) is not roles.model_loader:
        return None
    name = node.get("inputs", {}).get(roles.model_loader.MODEL_INPUT)
    path = host.model_path("gan", name) if isinstance(name, str) else None
    return file_hash(path) if path else f"missing:{name}"


def _source_digest(node: dict, roles: _Roles, host: Host) -> str | None:
    """The digest of a file the node reads as part of the look (None: it reads none)."""
    digest = getattr(roles.classes.get(node.get("class_type")), "source_digest", None)
    return digest(node.get("inputs", {}), host) if digest is not None else None


class _PlateFiles:
    """A loader's plate on disk: the file (and its identity) that gives each frame number."""

    def __init__(self, on_disk: dict[int, str], missing: str):
        self.on_disk = on_disk
        self.missing = missing

    def identity(self, frame: int) -> str:
        """size:mtime_ns:inode of the file that gives ``frame`` (after the loader's missing
        policy), or "absent"."""
        if not self.on_disk or (frame not in self.on_disk and self.missing == "error"):
            return "absent"  # the load itself refuses such a frame
        path = plan_frame(frame, self.on_disk, self.missing).path
        if path is None:  # black
            return "absent"
        try:
            stat = os.stat(path)
        except OSError:
            return "absent"
        return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"


def _plate_files(node: dict, roles: _Roles, host: Host) -> _PlateFiles:
    inputs = node.get("inputs", {})
    path = inputs.get(roles.loader.PATH_INPUT)
    missing = str(inputs.get(roles.loader.MISSING_INPUT, "error"))
    if not isinstance(path, str) or not path.strip():  # connected or empty: the load says so
        return _PlateFiles({}, missing)
    try:
        return _PlateFiles(parse_pattern(host.input_path(path)).frames_on_disk(), missing)
    except LatentmirrorError:  # a bad pattern: the loader itself reports it, with context
        return _PlateFiles({}, missing)


def _is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def _digest(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
