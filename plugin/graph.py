"""Graph files: ComfyUI's API format, and the UI format it saves, turned into one API graph.

API format: ``{"3": {"class_type": "LM_OCIOTransform", "inputs": {"image": ["1", 0], ...}}}``.
UI format: ``{"nodes": [...], "links": [[id, from_node, from_slot, to_node, to_slot, type]]}``,
widget values as a list in the order of the node's widget inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..core.errors import error

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
# Frontend-only or display-only nodes: resolved (Reroute, PrimitiveNode) or left out.
UI_ONLY_TYPES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
DISPLAY_ONLY_TYPES = {"PreviewImage", "PreviewAny"}
MUTED, BYPASSED = 2, 4


@dataclass
class GraphNode:
    id: str
    class_type: str
    inputs: dict  # name -> literal value, or [node id, output index] for a link
    title: str = ""


def load_graph(path: str, node_classes: dict) -> dict[str, GraphNode]:
    """Read a graph file in either format."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except FileNotFoundError:
        raise error("graph file does not exist", file=path) from None
    except json.JSONDecodeError as exc:
        raise error(f"not a JSON graph: {exc}", file=path) from None
    try:
        if isinstance(data, dict) and isinstance(data.get("nodes"), list):
            return from_ui_format(data, node_classes)
        return from_api_format(data.get("prompt", data) if isinstance(data, dict) else data)
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise error(f"malformed graph ({type(exc).__name__}: {exc})", file=path) from None


def from_api_format(data: dict) -> dict[str, GraphNode]:
    if not isinstance(data, dict) or not all(
        isinstance(n, dict) and "class_type" in n for n in data.values()
    ):
        raise ValueError(
            "expected ComfyUI API format (node id -> {class_type, inputs}) or the "
            "UI format (nodes, links)"
        )
    return {
        str(node_id): GraphNode(
            id=str(node_id),
            class_type=node["class_type"],
            inputs={k: _api_input(v) for k, v in node.get("inputs", {}).items()},
            title=node.get("_meta", {}).get("title", ""),
        )
        for node_id, node in data.items()
    }


def _api_input(value):
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
        return [str(value[0]), value[1]]
    return value


def from_ui_format(data: dict, node_classes: dict) -> dict[str, GraphNode]:
    nodes = {str(n["id"]): n for n in data["nodes"]}
    links = {link[0]: link for link in data.get("links", [])}
    graph = {}
    for node_id, node in nodes.items():
        if node.get("mode", 0) in (MUTED, BYPASSED) or node["type"] in UI_ONLY_TYPES:
            continue
        inputs = _widget_inputs(node, node_classes.get(node["type"]))
        for slot in node.get("inputs", []):
            if slot.get("link") is None:
                continue
            origin = _follow_link(links[slot["link"]], nodes, links)
            if origin is not None:
                inputs[slot["name"]] = origin
        graph[node_id] = GraphNode(node_id, node["type"], inputs, node.get("title", ""))
    return graph


def _follow_link(link: list, nodes: dict, links: dict) -> list | None:
    """The real producer of a link, through Reroutes and bypassed nodes.

    None when the value comes from a PrimitiveNode (the target keeps it as a widget value) or a
    muted node (the input is then left unset).
    """
    _link_id, origin_id, origin_slot, _target, _slot, link_type = link[:6]
    origin = nodes[str(origin_id)]
    if origin["type"] == "PrimitiveNode" or origin.get("mode", 0) == MUTED:
        return None
    if origin["type"] == "Reroute" or origin.get("mode", 0) == BYPASSED:
        upstream = _pass_through_input(origin, origin_slot, link_type)
        if upstream is None or upstream.get("link") is None:
            return None
        return _follow_link(links[upstream["link"]], nodes, links)
    return [str(origin_id), origin_slot]


def _pass_through_input(node: dict, output_slot: int, link_type: str) -> dict | None:
    """The input a bypassed node (or Reroute) passes to ``output_slot``: same type, same slot
    first, as ComfyUI's frontend does."""
    inputs = node.get("inputs", [])
    if node["type"] == "Reroute":
        return inputs[0] if inputs else None
    matching = [i for i in inputs if i.get("type") == link_type]
    same_slot = [i for i in matching if inputs.index(i) == output_slot]
    return (same_slot or matching or [None])[0]


def _widget_inputs(node: dict, node_class) -> dict:
    values = node.get("widgets_values", [])
    if isinstance(values, dict):  # some frontends save widgets by name
        return dict(values)
    if node_class is None:
        return {}
    inputs = {}
    queue = list(values)
    for name, spec in iter_input_specs(node_class):
        if not is_widget(spec) or not queue:
            continue
        inputs[name] = queue.pop(0)
        if has_control_widget(name, spec) and queue and queue[0] in CONTROL_VALUES:
            queue.pop(0)  # the frontend's "control after generate" value that follows a seed
    return inputs


CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}


def iter_input_specs(node_class):
    """(name, spec) of every input in declaration order: required, then optional."""
    types = node_class.INPUT_TYPES()
    for section in ("required", "optional"):
        yield from types.get(section, {}).items()


def input_kind(spec) -> str:
    """INT, FLOAT, STRING, BOOLEAN, COMBO, or a link type such as IMAGE."""
    kind = spec[0]
    return "COMBO" if isinstance(kind, (list, tuple)) else str(kind)


def input_options(spec) -> dict:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def is_widget(spec) -> bool:
    return input_kind(spec) in WIDGET_TYPES and not input_options(spec).get("forceInput")


def has_control_widget(name: str, spec) -> bool:
    options = input_options(spec)
    return input_kind(spec) == "INT" and (
        options.get("control_after_generate") or name in ("seed", "noise_seed")
    )
