"""The headless runner: executes a graph of the pack's own nodes without ComfyUI.

Only nodes that feed an output node run, each once, in dependency order. The whole graph is
validated first (plugin/validate.py), as ComfyUI does: every problem is reported, naming the node
id, title and input, before any node runs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace

from ..core.errors import LatentmirrorError, error
from ..core.frames.patterns import sequence_name
from ..host import PlainHost, current_host, file_stem
from .graph import GraphNode, api_prompt, is_link, iter_input_specs, load_graph
from .validate import coerce_input, id_sort_key, node_label, validate_graph

log = logging.getLogger("latentmirror")


@dataclass
class RunReport:
    executed: list[str] = field(default_factory=list)  # node ids in the order they ran
    ui: dict[str, dict] = field(default_factory=dict)  # node id -> what it showed
    plots: list[str] = field(default_factory=list)  # PNGs of the plots nodes showed (loss curves)

    @property
    def files(self) -> list[str]:
        return [f for shown in self.ui.values() for f in shown.get("files", [])]

    @property
    def skipped_files(self) -> list[str]:
        return [f for shown in self.ui.values() for f in shown.get("skipped", [])]


def node_classes() -> dict:
    from ..nodes import NODE_CLASS_MAPPINGS

    return NODE_CLASS_MAPPINGS


def nodes_of(graph: dict[str, GraphNode], classes: dict, node_class: type) -> list[GraphNode]:
    """The graph's nodes of ``node_class`` (found by class, whatever id the pack gives it)."""
    return [n for n in graph.values() if classes.get(n.class_type) is node_class]


def run_graph_file(path: str, frames: str | None = None, overrides: list[str] = ()) -> RunReport:
    classes = node_classes()
    graph = load_graph(path, classes)
    apply_frames(graph, frames, classes)
    apply_overrides(graph, overrides, classes)
    return run_graph(graph, classes)


def apply_frames(graph: dict[str, GraphNode], frames: str | None, classes: dict) -> None:
    """``--frames``: the frame range of every Load EXR Sequence."""
    from ..nodes.exr_nodes import LoadEXRSequence

    if frames is None:
        return
    for node in nodes_of(graph, classes, LoadEXRSequence):
        node.inputs[LoadEXRSequence.FRAMES_INPUT] = frames


def apply_overrides(graph: dict[str, GraphNode], overrides, classes: dict) -> None:
    """``--set NODE_ID.INPUT=VALUE``; the value is converted to the input's type when run."""
    for override in overrides:
        target, equals, value = override.partition("=")
        node_id, dot, name = target.rpartition(".")
        if not equals or not dot:
            raise error(f"--set '{override}' is not NODE_ID.INPUT=VALUE")
        if node_id not in graph:
            raise error(
                f"--set '{override}': no node {node_id}; the graph's nodes: "
                + ", ".join(f"{n.id} ({n.class_type})" for n in graph.values())
            )
        node = graph[node_id]
        known = (
            [n for n, _ in iter_input_specs(classes[node.class_type])]
            if (node.class_type in classes)
            else [name]
        )
        if name not in known:
            raise error(
                f"--set '{override}': node {node_id} ({node.class_type}) has no input "
                f"'{name}'; its inputs: {', '.join(known)}"
            )
        node.inputs[name] = value


def run_graph(graph: dict[str, GraphNode], classes: dict, plot_suffix: str = "") -> RunReport:
    """Run the nodes that feed output nodes, in dependency order. Plots the nodes showed are
    written beside the first output as ``<sequence>.<name>.png`` (``obscura.invert_loss_7.png``),
    or ``<sequence>.<name>.<plot_suffix>.png`` (a shot's chunk names its own, so chunks rendered
    at once never share a file)."""
    validate_graph(graph, classes)
    runnable = {k: n for k, n in graph.items() if n.class_type in classes}
    outputs = [
        k for k, n in runnable.items() if getattr(classes[n.class_type], "OUTPUT_NODE", False)
    ]
    host = current_host()
    if isinstance(host, PlainHost):
        host.plots.clear()  # left by a run that failed: they belong to no output of this one
    report = RunReport()
    results: dict[str, tuple] = {}
    prompt = api_prompt(graph)
    for node_id in execution_order(runnable, outputs):
        node = runnable[node_id]
        try:
            results[node_id], shown = _execute(node, classes[node.class_type], results, prompt)
        except LatentmirrorError as exc:
            exc.where = replace(exc.where, node=node_label(node, classes))
            raise
        report.executed.append(node_id)
        if shown:
            report.ui[node_id] = shown
    if isinstance(host, PlainHost) and host.plots:
        report.plots = write_pending_plots(
            host, plot_folder(report), plot_suffix, plot_sequence(report)
        )
    return report


def plot_folder(report: RunReport) -> str:
    """Where a run's plots go: beside the first file it wrote (or found complete), else the cwd."""
    first = _first_output(report)
    return os.path.dirname(os.path.abspath(first)) if first else os.getcwd()


def plot_sequence(report: RunReport) -> str:
    """The sequence a run's plots are named after: that of its first file (two graphs rendering
    into one folder keep their own plots), or '' when it wrote none."""
    first = _first_output(report)
    return sequence_name(first) if first else ""


def _first_output(report: RunReport) -> str | None:
    written = report.files or report.skipped_files
    return written[0] if written else None


def write_pending_plots(
    host: PlainHost, folder: str, suffix: str = "", sequence: str = ""
) -> list[str]:
    """Write the host's pending plots as ``[<sequence>.]<name>[.<suffix>].png`` into ``folder``
    (``obscura.invert_loss_7.png``), forget them, and return the paths written (a plot that
    cannot be written is logged, not fatal: the frames are done)."""
    written = []
    for name, image in host.plots.items():
        parts = (file_stem(sequence) if sequence else "", file_stem(name), suffix)
        path = os.path.join(folder, ".".join(filter(None, parts)) + ".png")
        if _imwrite_rgb(path, image):
            written.append(path)
        else:
            log.warning("could not write the plot %s", path)
    host.plots.clear()
    return written


def _imwrite_rgb(path: str, image) -> bool:
    import cv2
    import numpy as np

    try:
        return bool(cv2.imwrite(path, np.ascontiguousarray(image[..., ::-1])))
    except cv2.error:
        return False


def execution_order(graph: dict[str, GraphNode], outputs: list[str]) -> list[str]:
    """Every node the outputs need, each after its inputs (depth-first, cycle-checked)."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(node_id: str, path: tuple) -> None:
        if state.get(node_id) == "done":
            return
        if state.get(node_id) == "visiting":
            raise error("the graph has a cycle: " + " -> ".join([*path, node_id]))
        if node_id not in graph:
            raise error(
                f"node {path[-1]} takes an input from node {node_id}, which the graph "
                "does not run (missing, muted, or not a latentmirror node)"
            )
        state[node_id] = "visiting"
        for value in graph[node_id].inputs.values():
            if is_link(value):
                visit(value[0], (*path, node_id))
        state[node_id] = "done"
        order.append(node_id)

    for output in sorted(outputs, key=id_sort_key):
        visit(output, ())
    return order


def _execute(node: GraphNode, node_class, results: dict, prompt: dict) -> tuple[tuple, dict | None]:
    kwargs = {}
    for name, spec in iter_input_specs(node_class):
        required = name in node_class.INPUT_TYPES().get("required", {})
        if name in node.inputs:
            value = node.inputs[name]
            if is_link(value):
                kwargs[name] = results[value[0]][value[1]]
            else:
                kwargs[name] = coerce_input(name, value, spec)
        elif required:
            raise error("required input is not set or connected", input=name)
    for name, kind in node_class.INPUT_TYPES().get("hidden", {}).items():
        if kind == "UNIQUE_ID":  # as ComfyUI passes it: the node's id in the graph
            kwargs[name] = node.id
        elif kind == "PROMPT":  # as ComfyUI passes it: the whole graph, API format
            kwargs[name] = prompt
    instance = node_class()
    returned = getattr(instance, node_class.FUNCTION)(**kwargs)
    if isinstance(returned, dict):
        return tuple(returned.get("result", ())), returned.get("ui")
    return tuple(returned or ()), None
