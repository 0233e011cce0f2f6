"""Write the graph templates in example_workflows/ (ComfyUI's UI format) and their thumbnails.

The graphs are described compactly below; widget order, sockets and links are derived from the
node classes, so a template always matches the nodes it uses. Thumbnails are rendered: each
template runs headless on a short demo plate and the middle frame is shown as plate | result.

Run: ``python installers/make_templates.py [--no-thumbnails]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field

# the checkout's parent, last: `latentmirror` resolves when the pack is not installed, and no
# sibling folder (another node pack, a checkout named like a library) hides an installed package
sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDER = os.path.join(ROOT, "example_workflows")
DISPLAY_VIEW = "sRGB - Display/ACES 2.0 - SDR 100 nits (Rec.709)"
DEMO_MODEL = "latentmirror-demo-faces-64.safetensors"


@dataclass
class Node:
    id: int
    type: str
    title: str
    column: int
    widgets: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)  # input name -> (node id, output index)


def plate_nodes() -> list[Node]:
    """Plate -> display, and the model: the start of every template."""
    return [
        Node(1, "LM_LoadEXRSequence", "Plate (scene-linear EXR)", 0,
             {"path": "plate/plate.####.exr", "frames": "", "missing": "error"}),
        Node(2, "LM_OCIOTransform", "To display (the GAN's sRGB)", 1,
             {"src": "ACEScg", "dst": DISPLAY_VIEW, "direction": "forward"}, {"image": (1, 0)}),
        Node(3, "LM_LoadGAN", "Model (demo; use an FFHQ pickle)", 0,
             {"model_name": DEMO_MODEL, "dtype": "auto"}),
    ]  # fmt: skip


def output_nodes(first_id: int, image: tuple, name: str, column: int, title: str) -> list[Node]:
    """Display -> the plate's ACEScg -> EXR with the plate's frames, windows and metadata."""
    return [
        Node(first_id, "LM_OCIOTransform", "Back to ACEScg", column,
             {"src": "ACEScg", "dst": DISPLAY_VIEW, "direction": "inverse"}, {"image": image}),
        Node(first_id + 1, "LM_SaveEXRSequence", title, column + 1,
             {"path": f"latentmirror/{name}.####.exr", "pixel_type": "half",
              "compression": "zip", "existing": "skip"},
             {"images": (first_id, 0), "plate_info": (1, 2), "mask": (1, 1)}),
    ]  # fmt: skip


def loss_chain(first_id: int, terms: list[tuple[str, float]], column: int) -> list[Node]:
    nodes = []
    for i, (term, weight) in enumerate(terms):
        links = {"loss_mix": (first_id + i - 1, 0)} if i else {}
        title = f"Loss: {term}"
        nodes.append(
            Node(first_id + i, "LM_LossMix", title, column, {"term": term, "weight": weight}, links)
        )
    return nodes


def identity() -> tuple[str, list[Node]]:
    nodes = plate_nodes() + loss_chain(4, [("l1", 1.0), ("ssim", 0.5), ("w_prior", 0.001)], 1)
    nodes += [
        Node(7, "LM_Invert", "Invert (fast, W+)", 2,
             {"space": "w_plus", "steps": 150, "schedule": "fast", "seed": 0},
             {"model": (3, 0), "images": (2, 0), "loss_mix": (6, 0), "plate_info": (1, 2)}),
        Node(8, "LM_Resynthesize", "Resynthesize (faithful)", 3,
             {"truncation": 1.0, "noise_mode": "const"}, {"model": (3, 0), "latent": (7, 0)}),
    ]  # fmt: skip
    nodes += output_nodes(9, (8, 0), "identity", 4, "Reconstruction EXR")
    return "The baseline: a faithful reconstruction of the plate through the model.", nodes


def obscura() -> tuple[str, list[Node]]:
    terms = [("d_features", 1.0), ("l1", 1.0), ("w_prior", 0.005)]
    nodes = plate_nodes() + loss_chain(4, terms, 1)
    nodes += [
        Node(11, "LM_SampleGAN", "Reference face", 1,
             {"seed": 7, "count": 1, "truncation": 0.6}, {"model": (3, 0)}),
        Node(12, "LM_ReferenceBlend", "Anchor: face structure", 2,
             {"mode": "latent_anchor", "strength": 0.1, "layers": "coarse"},
             {"references": (11, 0)}),
        Node(13, "LM_ReferenceBlend", "Style mix: face shapes", 2,
             {"mode": "style_mix", "strength": 0.4, "layers": "coarse"},
             {"references": (11, 0), "reference": (12, 0)}),
        Node(7, "LM_Invert", "Invert (faces take over)", 3,
             {"space": "w_plus", "steps": 150, "schedule": "fast", "seed": 0},
             {"model": (3, 0), "images": (2, 0), "loss_mix": (6, 0), "reference": (13, 0),
              "plate_info": (1, 2)}),
        Node(8, "LM_Resynthesize", "Resynthesize (truncated, boiling)", 4,
             {"truncation": 0.7, "noise_mode": "random", "temporal_smoothing": 1.0},
             {"model": (3, 0), "latent": (7, 0), "reference": (13, 0), "loss_mix": (6, 0)}),
    ]  # fmt: skip
    nodes += output_nodes(9, (8, 0), "obscura", 5, "Obscura EXR")
    nodes += output_nodes(14, (7, 1), "obscura_reconstruction", 5, "Reconstruction EXR")
    return (
        "The look of '4104 frames': the model's own critic and a pull toward the average face "
        "let faces take over the plate; truncation and boiling noise finish it.",
        nodes,
    )


def reference_steer() -> tuple[str, list[Node]]:
    nodes = plate_nodes() + loss_chain(4, [("l1", 1.0), ("ssim", 0.5), ("w_prior", 0.005)], 1)
    nodes += [
        Node(11, "LM_SampleGAN", "Reference face", 1,
             {"seed": 3, "count": 1, "truncation": 0.5}, {"model": (3, 0)}),
        Node(12, "LM_ReferenceBlend", "Pull toward the face", 2,
             {"mode": "loss_pull", "strength": 0.3, "layers": "all", "distance": "d_features"},
             {"references": (11, 0)}),
        Node(13, "LM_ReferenceBlend", "Style mix: its features", 2,
             {"mode": "style_mix", "strength": 0.3, "layers": "middle"},
             {"references": (11, 0), "reference": (12, 0)}),
        Node(7, "LM_Invert", "Invert (steered)", 3,
             {"space": "w_plus", "steps": 150, "schedule": "fast", "seed": 0},
             {"model": (3, 0), "images": (2, 0), "loss_mix": (6, 0), "reference": (13, 0),
              "plate_info": (1, 2)}),
        Node(8, "LM_Resynthesize", "Resynthesize (style mixed)", 4,
             {"truncation": 1.0, "noise_mode": "const"},
             {"model": (3, 0), "latent": (7, 0), "reference": (13, 0), "loss_mix": (6, 0)}),
    ]  # fmt: skip
    nodes += output_nodes(9, (8, 0), "reference_steer", 5, "Steered EXR")
    return "A reference face pulls the plate toward it while it is inverted.", nodes


DISSOLVE_FRAMES = (1001, 1024)  # the demo plate's; edit the keys to your shot's frames
DISSOLVE_CURVES = {  # Curve node id -> (title, value at the start, value at the end)
    16: ("Curve: pull toward the face", 0.0, 0.5),
    17: ("Curve: anchor strength", 0.0, 0.2),
    18: ("Curve: style mix strength", 0.0, 0.8),
    19: ("Curve: truncation", 1.0, 0.6),
}


def dissolve_keys(start: float, end: float, first: int, last: int) -> str:
    """Keys that hold ``start`` over the first eighth of frames ``first``-``last``, ease to
    ``end`` and hold it over the last eighth."""
    hold = (last - first) // 8
    if hold == 0:
        return f"{first}:{start}, {last}:{end} ease"
    return f"{first}:{start}, {first + hold}:{start}, {last - hold}:{end} ease, {last}:{end}"


def dissolve_curves() -> list[Node]:
    return [
        Node(node_id, "LM_Curve", title, 2, {"keys": dissolve_keys(start, end, *DISSOLVE_FRAMES)})
        for node_id, (title, start, end) in DISSOLVE_CURVES.items()
    ]


def dissolve() -> tuple[str, list[Node]]:
    terms = [("l1", 1.0), ("ssim", 0.5), ("w_prior", 0.001)]  # identity's: the plate first
    nodes = plate_nodes() + loss_chain(4, terms, 1)
    nodes += [
        Node(11, "LM_SampleGAN", "Reference face", 1,
             {"seed": 7, "count": 1, "truncation": 0.6}, {"model": (3, 0)}),
        *dissolve_curves(),
        Node(20, "LM_ReferenceBlend", "Pull toward the face (animated)", 3,
             {"mode": "loss_pull", "strength": 0.0, "layers": "all", "distance": "d_features"},
             {"references": (11, 0), "strength_curve": (16, 0)}),
        Node(12, "LM_ReferenceBlend", "Anchor: face structure (animated)", 3,
             {"mode": "latent_anchor", "strength": 0.0, "layers": "coarse"},
             {"references": (11, 0), "reference": (20, 0), "strength_curve": (17, 0)}),
        Node(13, "LM_ReferenceBlend", "Style mix: face shapes (animated)", 3,
             {"mode": "style_mix", "strength": 0.0, "layers": "coarse,middle"},
             {"references": (11, 0), "reference": (12, 0), "strength_curve": (18, 0)}),
        Node(7, "LM_Invert", "Invert (the face pulls harder over the shot)", 4,
             {"space": "w_plus", "steps": 150, "schedule": "fast", "seed": 0},
             {"model": (3, 0), "images": (2, 0), "loss_mix": (6, 0), "reference": (13, 0),
              "plate_info": (1, 2)}),
        Node(8, "LM_Resynthesize", "Resynthesize (truncation animated)", 5,
             {"truncation": 1.0, "noise_mode": "const"},
             {"model": (3, 0), "latent": (7, 0), "reference": (13, 0), "loss_mix": (6, 0),
              "truncation_curve": (19, 0)}),
    ]  # fmt: skip
    nodes += output_nodes(9, (8, 0), "dissolve", 6, "Dissolve EXR")
    return (
        "The plate holds at the start and dissolves into faces by the end: Curve nodes animate "
        f"the reference pull, the anchor, the style mix and the truncation over frames "
        f"{DISSOLVE_FRAMES[0]}-{DISSOLVE_FRAMES[1]} (edit their keys to your shot).",
        nodes,
    )


TEMPLATES = {
    "identity": identity,
    "obscura": obscura,
    "reference_steer": reference_steer,
    "dissolve": dissolve,
}


def dissolve_over(first: int, last: int) -> list[str]:
    """``--set`` values that put the dissolve on frames ``first``-``last`` (a short plate)."""
    return [
        f"{node_id}.keys={dissolve_keys(start, end, first, last)}"
        for node_id, (_title, start, end) in DISSOLVE_CURVES.items()
    ]


# Templates whose look changes over the shot: their thumbnail squeezes the change onto the
# 3-frame thumbnail plate and shows the result's first and last frame.
ANIMATED = {"dissolve": dissolve_over}


# ----------------------------------------------------------------------------------------------
# UI format.


def ui_graph(nodes: list[Node], description: str) -> dict:
    from latentmirror.nodes import NODE_CLASS_MAPPINGS
    from latentmirror.plugin.graph import has_control_widget, is_widget, iter_input_specs

    by_id = {n.id: n for n in nodes}
    links, sockets = [], {}
    ui_nodes = []
    order = _execution_order(nodes)
    rows: dict[int, int] = {}
    for node in sorted(nodes, key=lambda n: order.index(n.id)):
        cls = NODE_CLASS_MAPPINGS[node.type]
        widgets, inputs = [], []
        for name, spec in iter_input_specs(cls):
            if name in node.links:
                src, slot = node.links[name]
                link_id = len(links) + 1
                kind = NODE_CLASS_MAPPINGS[by_id[src].type].RETURN_TYPES[slot]
                links.append([link_id, src, slot, node.id, len(inputs), kind])
                sockets.setdefault((src, slot), []).append(link_id)
                inputs.append({"name": name, "type": kind, "link": link_id})
            elif is_widget(spec):
                default = spec[1].get("default", spec[0][0] if isinstance(spec[0], list) else "")
                widgets.append(node.widgets.get(name, default))
                if has_control_widget(name, spec):
                    widgets.append("fixed")
        row = rows.get(node.column, 0)
        rows[node.column] = row + 1
        ui_nodes.append({
            "id": node.id, "type": node.type, "pos": [40 + 420 * node.column, 80 + 300 * row],
            "size": [380, 260], "flags": {}, "order": order.index(node.id), "mode": 0,
            "inputs": inputs, "outputs": [], "properties": {"Node name for S&R": node.type},
            "widgets_values": widgets, "title": node.title,
        })  # fmt: skip
    for ui in ui_nodes:
        cls = NODE_CLASS_MAPPINGS[ui["type"]]
        names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
        ui["outputs"] = [
            {"name": n, "type": t, "links": sockets.get((ui["id"], i), [])}
            for i, (n, t) in enumerate(zip(names, cls.RETURN_TYPES, strict=True))
        ]
    return {
        "id": "00000000-0000-0000-0000-" + hashlib.sha1(description.encode()).hexdigest()[:12],
        "revision": 0, "last_node_id": max(by_id), "last_link_id": len(links),
        "nodes": sorted(ui_nodes, key=lambda n: n["id"]), "links": links, "groups": [],
        "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]},
                                "latentmirror": {"description": description}},
        "version": 0.4,
    }  # fmt: skip


def _execution_order(nodes: list[Node]) -> list[int]:
    by_id, order = {n.id: n for n in nodes}, []

    def visit(node_id: int) -> None:
        if node_id in order:
            return
        for src, _slot in by_id[node_id].links.values():
            visit(src)
        order.append(node_id)

    for node in nodes:
        visit(node.id)
    return order


# ----------------------------------------------------------------------------------------------
# Thumbnails.


def headless_overrides(graph_path: str, plate: str, out: str) -> list[str]:
    """``--set`` values that run a template on ``plate``: the result to ``out``, any other
    saver beside it, existing frames overwritten."""
    with open(graph_path) as f:
        graph = json.load(f)
    sets = [f"1.path={plate}"]
    for node in graph["nodes"]:
        if node["type"] in ("LM_SaveEXRSequence", "LM_SaveLatents"):
            name = node["widgets_values"][0].split("/")[-1]
            target = out if node["id"] == 10 else os.path.join(os.path.dirname(out), name)
            sets.append(f"{node['id']}.path={target}")
            if node["type"] == "LM_SaveEXRSequence":
                sets.append(f"{node['id']}.existing=overwrite")
    return sets


def render_thumbnail(name: str, graph_path: str, work: str) -> str:
    """Run the template on 3 frames of the demo plate; plate | result of the middle frame."""
    import cv2
    import numpy as np

    from latentmirror.plugin.runner import run_graph_file

    sys.path.insert(0, os.path.join(ROOT, "installers"))
    from contact_sheet import display_frames
    from demo_plate import write_plate

    plate = write_plate(os.path.join(work, "plate"), 3, 192, 108, "china.jpg")
    out = os.path.join(work, name, "out.####.exr")
    sets = headless_overrides(graph_path, plate, out)
    shown = [(plate, "1002"), (out, "1002")]
    if name in ANIMATED:  # plate | the result at the start | at the end
        sets += ANIMATED[name](1001, 1003)
        shown = [(plate, "1001"), (out, "1001"), (out, "1003")]
    run_graph_file(graph_path, None, sets)
    tiles = [display_frames(pattern, frames=frame)[1][0] for pattern, frame in shown]
    image = np.concatenate(tiles, axis=1)
    path = os.path.join(FOLDER, f"{name}.jpg")
    size = (256 * len(tiles), 144)
    cv2.imwrite(path, cv2.resize(image[..., ::-1], size, interpolation=cv2.INTER_AREA))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-thumbnails", action="store_true")
    parser.add_argument("names", nargs="*", help="templates to write (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        for name, make in TEMPLATES.items():
            if args.names and name not in args.names:
                continue
            description, nodes = make()
            path = os.path.join(FOLDER, f"{name}.json")
            with open(path, "w") as f:
                json.dump(ui_graph(nodes, description), f, indent=1)
                f.write("\n")
            print(path)
            if not args.no_thumbnails:
                print(render_thumbnail(name, path, work))


if __name__ == "__main__":
    main()
