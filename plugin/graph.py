"""Graph files: ComfyUI's API format, and the UI format it saves, turned into one API graph.

API format: ``{"3": {"class_type": "LM_OCIOTransform", "inputs": {"image": ["1", 0], ...}}}``.
UI format: ``{"nodes": [...], "links": [[id, from_node, from_slot, to_node, to_slot, type]]}``,
widget values as a list in the order of the node's widget inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..core.errors import LatentmirrorError, context, error, raise_all
from ..core.frames.ranges import format_frame_ranges
from ..core.storage import require_regular_file

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
    """Read a graph file in either format; anything that is not a readable JSON graph (a
    folder, a FIFO, binary or non-UTF-8 content, JSON of another shape) is refused naming it."""
    require_regular_file(path, "graph file")
    with context(file=path):
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except UnicodeDecodeError as exc:
            raise error(
                f"the graph file is not UTF-8 text (byte {exc.start}): not a JSON graph"
            ) from None
        except OSError as exc:
            raise error(f"the graph file cannot be read: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"not a JSON graph: {exc}") from None
        except (ValueError, RecursionError) as exc:  # 5000-digit numbers, nesting too deep
            raise error(f"not a JSON graph: {exc}") from None
        return graph_from_json(data, node_classes)


def graph_from_json(data, node_classes: dict) -> dict[str, GraphNode]:
    """A graph from parsed JSON in either format; a wrong shape is refused, every problem
    found listed at once."""
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        return from_ui_format(data, node_classes)
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict):
        data = data["prompt"]
    return from_api_format(data)


def from_api_format(data) -> dict[str, GraphNode]:
    if not isinstance(data, dict) or not data:
        raise error(
            "expected a ComfyUI graph: the API format (node id -> {class_type, inputs}) or the "
            "UI format (nodes, links)"
        )
    graph, problems = {}, []
    for node_id, node in data.items():
        node_id = str(node_id)
        where = f"{node_id} (in the API format)"
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            problems.append(error("expected {class_type, inputs} with class_type text", node=where))
            continue
        inputs = node.get("inputs", {})
        if not isinstance(inputs, dict):
            problems.append(
                error(
                    f"'inputs' is a {type(inputs).__name__}; expected an object "
                    "(input name -> value, or [node id, output slot] for a link)",
                    node=f"{node_id} ({node['class_type']})",
                )
            )
            continue
        meta = node.get("_meta")
        title = meta.get("title", "") if isinstance(meta, dict) else ""
        graph[node_id] = GraphNode(
            node_id, node["class_type"], dict(inputs), title if isinstance(title, str) else ""
        )
    raise_all(problems, "the graph")
    return graph


def from_ui_format(data: dict, node_classes: dict) -> dict[str, GraphNode]:
    problems: list[LatentmirrorError] = []
    nodes = _ui_nodes(data["nodes"], problems)
    links = _ui_links(data.get("links", []), problems)
    raise_all(problems, "the graph")
    graph = {}
    for node_id, node in nodes.items():
        if node.get("mode", 0) in (MUTED, BYPASSED) or node["type"] in UI_ONLY_TYPES:
            continue
        label = f"{node_id} ({node.get('title') or node['type']})"
        try:
            inputs = _widget_inputs(node, node_classes.get(node["type"]))
            for slot in node.get("inputs") or []:
                if not isinstance(slot, dict) or not isinstance(slot.get("name"), str):
                    raise error("an entry of its 'inputs' is not {name, link}")
                if slot.get("link") is None:
                    continue
                origin = _follow_link(slot["link"], nodes, links, set())
                if origin is not None:
                    inputs[slot["name"]] = origin
        except LatentmirrorError as exc:
            problems.append(exc.at(node=label))
            continue
        title = node.get("title")
        graph[node_id] = GraphNode(
            node_id, node["type"], inputs, title if isinstance(title, str) else ""
        )
    raise_all(problems, "the graph")
    return graph


def _ui_nodes(entries: list, problems: list) -> dict[str, dict]:
    """The UI format's nodes by id; entries without an id and a type are problems."""
    nodes = {}
    for index, node in enumerate(entries):
        valid = (
            isinstance(node, dict)
            and isinstance(node.get("id"), (int, str))
            and not isinstance(node.get("id"), bool)
            and isinstance(node.get("type"), str)
        )
        if not valid:
            problems.append(error(f"entry {index} of 'nodes' is not a node with an id and a type"))
        elif not isinstance(node.get("inputs") or [], list):
            where = f"{node['id']} ({node['type']})"
            problems.append(error("its 'inputs' is not a list", node=where))
        else:
            nodes[str(node["id"])] = node
    return nodes


def _ui_links(entries, problems: list) -> dict:
    """Link id -> (from node id, from slot, type), from the list form
    ``[id, from_node, from_slot, to_node, to_slot, type]`` or the object form newer frontends
    save (``{id, origin_id, origin_slot, ..., type}``)."""
    if not isinstance(entries, list):
        problems.append(error("'links' is not a list"))
        return {}
    links = {}
    for index, link in enumerate(entries):
        if isinstance(link, list) and len(link) >= 6:
            link_id, origin, slot, link_type = link[0], link[1], link[2], link[5]
        elif isinstance(link, dict):
            link_id, origin, slot = link.get("id"), link.get("origin_id"), link.get("origin_slot")
            link_type = link.get("type")
        else:
            link_id = origin = slot = link_type = None
        if not (_is_id(link_id) and _is_id(origin) and _is_slot(slot)):
            problems.append(
                error(f"entry {index} of 'links' is not [id, from_node, from_slot, to_node, "
                      "to_slot, type]")
            )  # fmt: skip
            continue
        links[link_id] = (str(origin), slot, link_type)
    return links


def _is_id(value) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _is_slot(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _follow_link(link_id, nodes: dict, links: dict, seen: set) -> list | None:
    """The real producer of a link, through Reroutes and bypassed nodes.

    None when the value comes from a PrimitiveNode (the target keeps it as a widget value) or a
    muted node (the input is then left unset).
    """
    if not _is_id(link_id) or link_id not in links:
        raise error(f"its input refers to link {link_id!r}, which is not in the graph's 'links'")
    if link_id in seen:
        raise error("its input's link goes round in a loop through Reroute or bypassed nodes")
    seen.add(link_id)
    origin_id, origin_slot, link_type = links[link_id]
    origin = nodes.get(origin_id)
    if origin is None:
        raise error(f"its input is linked to node {origin_id}, which is not in the graph")
    if origin["type"] == "PrimitiveNode" or origin.get("mode", 0) == MUTED:
        return None
    if origin["type"] == "Reroute" or origin.get("mode", 0) == BYPASSED:
        upstream = _pass_through_input(origin, origin_slot, link_type)
        if upstream is None or upstream.get("link") is None:
            return None
        return _follow_link(upstream["link"], nodes, links, seen)
    return [origin_id, origin_slot]


def _pass_through_input(node: dict, output_slot: int, link_type: str) -> dict | None:
    """The input a bypassed node (or Reroute) passes to ``output_slot``: same type, same slot
    first, as ComfyUI's frontend does."""
    inputs = [i for i in node.get("inputs") or [] if isinstance(i, dict)]
    if node["type"] == "Reroute":
        return inputs[0] if inputs else None
    matching = [i for i in inputs if i.get("type") == link_type]
    same_slot = [i for i in matching if inputs.index(i) == output_slot]
    return (same_slot or matching or [None])[0]


def _widget_inputs(node: dict, node_class) -> dict:
    values = node.get("widgets_values") or []
    if isinstance(values, dict):  # some frontends save widgets by name
        return dict(values)
    if not isinstance(values, list):
        raise error("its 'widgets_values' is neither a list nor an object")
    if node_class is None:
        return {}
    inputs = {}
    queue = list(values)
    for name, spec in iter_input_specs(node_class):
        if not is_widget(spec) or not queue:
            continue
        inputs[name] = queue.pop(0)
        if has_control_widget(name, spec) and queue and _is_control_value(queue[0]):
            queue.pop(0)  # the frontend's "control after generate" value that follows a seed
    return inputs


CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}


def _is_control_value(value) -> bool:
    return isinstance(value, str) and value in CONTROL_VALUES


def is_link(value) -> bool:
    """A link is exactly ``["node id", output slot]``; any other list is a (bad) value."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
        and value[1] >= 0
    )


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


def api_prompt(graph: dict[str, GraphNode], frames_as_text: bool = False) -> dict:
    """The graph in ComfyUI's API format (``{id: {"class_type", "inputs", "_meta"}}``, links as
    ``[node id, slot]``), as ComfyUI passes it to nodes asking for ``PROMPT``.
    ``frames_as_text``: a chunk's frames (tuples) as the text a user would type, for a graph sent
    to a ComfyUI server."""

    def value(v):
        return format_frame_ranges(list(v)) if frames_as_text and isinstance(v, tuple) else v

    return {
        node.id: {
            "class_type": node.class_type,
            "inputs": {name: value(v) for name, v in node.inputs.items()},
            "_meta": {"title": node.title},
        }
        for node in graph.values()
    }
