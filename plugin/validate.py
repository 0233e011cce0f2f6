"""The whole graph checked before anything runs, as ComfyUI's ``execution.validate_inputs`` does.

Every node that will run (those feeding an output node) is checked, and every problem found is
reported at once, each naming the node's id and title and the input:

- the node type is one of the pack's (the headless runner runs nothing else);
- every required input is present (a missing one is an error, never its default);
- a link is exactly ``["node id", output slot]``, to a node that runs, to an output slot it has,
  of a matching type (``*`` and comma-separated types as ComfyUI allows);
- a value is of the input's type (INT, FLOAT, BOOLEAN, STRING, a choice), finite, within its
  bounds; a list where a value is expected is refused;
- the node's own checks (``input_problems``, which ComfyUI reaches through ``VALIDATE_INPUTS``):
  frame ranges are bounded and readable, Save EXR Sequence writes ``.exr`` files whose names and
  paths fit the file system, in a folder it may and can write.

`coerce_input` is also what the runner converts each value with, so what is checked is what runs.
"""

from __future__ import annotations

import logging
import re

from ..core.errors import LatentmirrorError, error, raise_all
from ..nodes.common import require_finite
from .graph import (
    DISPLAY_ONLY_TYPES,
    UI_ONLY_TYPES,
    GraphNode,
    input_kind,
    input_options,
    is_link,
    iter_input_specs,
)

log = logging.getLogger("latentmirror")


def validate_graph(graph: dict[str, GraphNode], classes: dict, local_paths: bool = True) -> None:
    """Raise one LatentmirrorError listing every problem of the nodes that will run.

    ``local_paths``: output paths are checked against this machine's file system (not when the
    graph is sent to a ComfyUI server, whose storage may differ; names are still checked)."""
    problems = _unknown_nodes(graph, classes)
    outputs = [
        n.id for n in graph.values() if getattr(classes.get(n.class_type), "OUTPUT_NODE", False)
    ]
    if not outputs:
        problems.append(
            error("the graph has no output node (such as Save EXR Sequence): nothing to render")
        )
    for node in (graph[node_id] for node_id in nodes_that_run(graph, outputs)):
        node_class = classes.get(node.class_type)
        if node_class is None:
            continue  # reported above
        node_problems = _input_problems(node, node_class, graph, classes)
        reported = {p.where.input for p in node_problems}
        check = getattr(node_class, "input_problems", None)  # the node's own checks
        if check is not None:
            found = check(node.inputs, local_paths=local_paths)
            node_problems += [p for p in found if p.where.input not in reported]
        problems += [p.at(node=node_label(node, classes)) for p in node_problems]
    raise_all(problems, "the graph")


def nodes_that_run(graph: dict[str, GraphNode], outputs: list[str]) -> list[str]:
    """The outputs and every node they take inputs from (through links to nodes in the graph),
    in id order; loops and dangling links are left to the checks that report them."""
    found: set[str] = set()
    todo = list(outputs)
    while todo:
        node_id = todo.pop()
        if node_id in found or node_id not in graph:
            continue
        found.add(node_id)
        todo += [v[0] for v in graph[node_id].inputs.values() if is_link(v)]
    return sorted(found, key=id_sort_key)


def node_label(node: GraphNode, classes: dict) -> str:
    """``7 (Resynthesize)``: the id and the title (else the display name) errors name."""
    name = node.title or getattr(classes.get(node.class_type), "DISPLAY_NAME", node.class_type)
    return f"{node.id} ({name})"


def id_sort_key(node_id: str):
    return (0, int(node_id)) if node_id.isdigit() else (1, node_id)


def _unknown_nodes(graph: dict[str, GraphNode], classes: dict) -> list[LatentmirrorError]:
    problems = []
    for node in graph.values():
        if node.class_type in DISPLAY_ONLY_TYPES:
            log.info("node %s (%s) only displays in ComfyUI; skipped", node.id, node.class_type)
        elif node.class_type not in classes and node.class_type not in UI_ONLY_TYPES:
            problems.append(
                error(
                    "latentmirror does not provide this node type; the headless runner runs "
                    "only latentmirror's nodes: run this graph in ComfyUI",
                    node=f"{node.id} ({node.class_type})",
                )
            )
    return problems


# ----------------------------------------------------------------------------------------------
# Inputs


def _input_problems(
    node: GraphNode, node_class, graph: dict[str, GraphNode], classes: dict
) -> list[LatentmirrorError]:
    types = node_class.INPUT_TYPES()
    declared = dict(iter_input_specs(node_class))
    problems = [
        error(f"there is no such input; the node's inputs: {', '.join(declared)}", input=name)
        for name in node.inputs
        if name not in declared
    ]
    for name, spec in declared.items():
        if name not in node.inputs:
            if name in types.get("required", {}):
                problems.append(error("required input is missing", input=name))
            continue
        value = node.inputs[name]
        try:
            if is_link(value):
                _check_link(name, spec, value, graph, classes)
            else:
                coerce_input(name, value, spec)
        except LatentmirrorError as exc:
            problems.append(exc.at(input=name))
    return problems


def _check_link(name: str, spec, link: list, graph: dict[str, GraphNode], classes: dict) -> None:
    upstream = graph.get(link[0])
    if upstream is None:
        raise error(f"it is linked to node {link[0]}, which is not in the graph", input=name)
    upstream_class = classes.get(upstream.class_type)
    if upstream_class is None:
        raise error(
            f"it is linked to node {link[0]} ({upstream.class_type}), which the headless runner "
            "does not run",
            input=name,
        )
    returns = tuple(getattr(upstream_class, "RETURN_TYPES", ()))
    label = node_label(upstream, classes)
    if link[1] >= len(returns):
        outputs = ", ".join(f"{slot}: {kind}" for slot, kind in enumerate(returns)) or "none"
        raise error(
            f"it is linked to output slot {link[1]} of node {label}, which has "
            f"{len(returns)} output(s) ({outputs})",
            input=name,
        )
    if not types_match(str(returns[link[1]]), input_kind(spec)):
        raise error(
            f"it expects {input_kind(spec)} but is linked to output slot {link[1]} of node "
            f"{label}, which gives {returns[link[1]]}",
            input=name,
        )


def types_match(received: str, expected: str) -> bool:
    """ComfyUI's rule: ``*`` matches anything, else the comma-separated type sets overlap."""
    if "*" in (received, expected):
        return True
    split = lambda types: {t.strip() for t in types.split(",")}  # noqa: E731
    return bool(split(received) & split(expected))


def coerce_input(name: str, value, spec):
    """A literal input converted and checked the way ComfyUI validates widget values, stricter
    where ComfyUI lets a mistake through: NaN and Inf, a list, a bool given for a number, 2.5
    for an INT."""
    kind, options = input_kind(spec), input_options(spec)
    if isinstance(value, dict) and set(value) == {"__value__"}:  # ComfyUI's wrapped list value
        value = value["__value__"]
    if isinstance(value, (list, dict)):
        raise error(
            f'{_shown(value)} is not a valid {kind} value (a link is ["node id", output slot])',
            input=name,
        )
    if kind == "COMBO":
        choices = list(spec[0])
        if value not in choices:
            raise error(f"'{value}' is not one of: {', '.join(map(str, choices))}", input=name)
        return value
    if kind == "BOOLEAN":
        return value if isinstance(value, bool) else _parse_bool(value, name)
    if kind == "STRING":
        # a frame list a shot render set (a tuple of frames) stays one; typed values are text
        if isinstance(value, tuple) or isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise error(f"{_shown(value)} is not text", input=name)
    if kind not in ("INT", "FLOAT"):
        raise error(f"a {kind} input must be connected to a node, not given a value", input=name)
    value = _number(value, kind, name)
    if "min" in options and value < options["min"]:
        raise error(f"{value} is below the minimum {options['min']}", input=name)
    if "max" in options and value > options["max"]:
        raise error(f"{value} is above the maximum {options['max']}", input=name)
    return value


def _number(value, kind: str, name: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise error(f"{_shown(value)} is not a valid {kind}", input=name)
    try:
        number = _int_or_float(value)
    except (ValueError, OverflowError):
        raise error(f"'{value}' is not a valid {kind}", input=name) from None
    require_finite(number, name)
    if kind == "FLOAT":
        return float(number)
    if isinstance(number, float) and not number.is_integer():
        raise error(f"{value} is not a whole number (an INT)", input=name)
    return int(number)


def _int_or_float(value: int | float | str) -> int | float:
    """A number as given, or as ``--set`` text: ``12`` stays an int, ``12.5`` and ``nan``
    become floats."""
    if isinstance(value, str):
        text = value.strip()
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    return value


def _parse_bool(value, name: str) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise error(f"'{value}' is not true or false", input=name)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
