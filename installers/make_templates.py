"""Write the graph templates in example_workflows/ (ComfyUI's UI format) and their thumbnails.

The graphs are described compactly below; widget order, sockets and links are derived from the
node classes, so a template always matches the nodes it uses. Thumbnails are rendered: each
template runs headless on a short demo plate and the middle frame is shown as plate | result.

Run: ``python installers/make_templates.py [NAME ...] [--no-thumbnails]`` (default: all).
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
# The GAN's near-white display values would come back as hot pixels (scene 128 from a plate
# that peaks at 1): the way back limits them to the view's reference white instead, which keeps
# every tone the plate had (up to scene-linear 1) exactly; soft clip would darken its brightest.
BACK_TO_SCENE_HIGHLIGHTS = "limit"
PLATE_USAGE = "To use: set 'path' on the Plate node to your scene-linear ACEScg EXR sequence."
MODEL_USAGE = (
    "Pick a model: the bundled demo model makes small, rough faces; an FFHQ StyleGAN pickle in "
    "models/gan makes real ones."
)
OUTPUT_USAGE = "Results go to ComfyUI's output folder as EXR frames numbered like the plate."


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
        Node(first_id, "LM_OCIOTransform", "Back to ACEScg (highlights limited)", column,
             {"src": "ACEScg", "dst": DISPLAY_VIEW, "direction": "inverse",
              "highlights": BACK_TO_SCENE_HIGHLIGHTS}, {"image": image}),
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
        # Off by default (steps 0: the model passes through, and shot renders may run it): the
        # recipe that reaches 29 dB costs about 50 s per frame on one CPU thread (README:
        # "Tuning the GAN to a shot"); the other widgets are that recipe, so only steps and
        # Invert's fit and steps need setting.
        Node(11, "LM_TuneGAN", "Tune GAN to Shot (off: set steps)", 3,
             {"steps": 0, "learning_rate": 0.01, "pivot_frames": 0, "locality": 0.0, "seed": 0,
              "batch_size": 3, "lr_schedule": "cosine"},
             {"model": (3, 0), "latent": (7, 0), "images": (2, 0), "loss_mix": (6, 0)}),
        Node(8, "LM_Resynthesize", "Resynthesize (faithful)", 4,
             {"truncation": 1.0, "noise_mode": "const"}, {"model": (11, 0), "latent": (7, 0)}),
    ]  # fmt: skip
    nodes += output_nodes(9, (8, 0), "identity", 5, "Reconstruction EXR")
    return (
        "The baseline: a faithful reconstruction of the plate through the model. For a far more "
        "faithful one, tune the model to the shot: Invert fit tiles and steps 30, Tune GAN to "
        "Shot steps 625 per frame (frames x tiles x 125 / batch_size: every tile seen 125 "
        "times). On the demo plate (24 frames, 15000 steps) that gives 29.1 dB instead of 19.5, "
        "with a warping error 1.22x the plate's own (untuned tiles: 5.8x), at about 53 s per "
        "frame on one CPU thread; locality 1 (twice the time) keeps the model's faces for the "
        "obscura look. Render chunks from a saved tuned model (README: Tuning for a farm).",
        nodes,
    )


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


def plate_to_display() -> tuple[str, list[Node]]:
    """A colour check, no model: ids 1-3 as in the other templates' start (tests --set them)."""
    nodes = plate_nodes()[:2] + [
        Node(3, "LM_SaveEXRSequence", "Display-referred EXR (colour check)", 2,
             {"path": "latentmirror/plate_to_display.####.exr", "pixel_type": "half",
              "compression": "zip", "existing": "skip", "colorspace": "sRGB - Display"},
             {"images": (2, 0), "plate_info": (1, 2), "mask": (1, 1)}),
    ]  # fmt: skip
    return (
        "Colour check, no model: the plate as the GAN templates show it to the model (ACEScg "
        "to the ACES 2.0 SDR display), written as display-referred EXR. Run it first on a new "
        "plate: if this looks wrong in your viewer (its colour space is recorded in the file), "
        "fix the plate's colour space before inverting.",
        nodes,
    )


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
    "plate_to_display": plate_to_display,
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


# Node sizes as ComfyUI's frontend computes them (litegraph's LGraphNode.computeSize, frontend
# 1.27). On loading a workflow it grows every node to at least that size, so a layout made with
# smaller sizes lets a node's last widgets hide under the node below it.
TITLE_HEIGHT = 30  # LiteGraph.NODE_TITLE_HEIGHT: the title bar, drawn above the node's pos
SLOT_HEIGHT = 20  # NODE_SLOT_HEIGHT: one row per link input or output, whichever are more
WIDGET_ROW = 20 + 4  # NODE_WIDGET_HEIGHT and the spacing below each widget
WIDGETS_PAD, BOTTOM_PAD = 8, 6  # below the last widget; below everything
NODE_TEXT_SIZE, TEXT_WIDTH = 14, 0.6  # its text width estimate: size * characters * 0.6
WIDGET_PADDING = 42 + 2 * (15 + 6 + 10)  # minValueWidth + 2 * (margin + arrow margin + arrow)
NOTE_MIN_HEIGHT = 50  # a Note's text box (a DOM widget's default minimum height)
NODE_WIDTH, COLUMN_GAP, ROW_GAP, TOP = 380, 40, 30, 80


def frontend_size(title: str, inputs: list[dict], outputs: list[dict], widgets: list[str]) -> list:
    """[width, height] of a node's body as the frontend computes it (the title bar not included):
    ``inputs`` are its link inputs, ``outputs`` its outputs, ``widgets`` its widgets' labels (a
    seed's control widget too). The width is the frontend's own estimate from text lengths."""
    rows = max(len(inputs), len(outputs), 1)
    height = rows * SLOT_HEIGHT + (len(widgets) * WIDGET_ROW + WIDGETS_PAD if widgets else 0)
    inputs_text = max((len(slot["name"]) for slot in inputs), default=0)
    outputs_text = max((len(slot["name"]) for slot in outputs), default=0)
    width = max(
        TITLE_HEIGHT * 1.33 + _text_width(len(title)),
        _text_width(inputs_text + outputs_text) + 2 * SLOT_HEIGHT + 5,
        _text_width(max(map(len, widgets), default=0)) + WIDGET_PADDING if widgets else 0,
        140 * (1.5 if widgets else 1),  # LiteGraph.NODE_WIDTH, half as wide again with widgets
    )
    return [round(width), height + BOTTOM_PAD]


def _text_width(characters: int) -> float:
    return characters * NODE_TEXT_SIZE * TEXT_WIDTH


def ui_graph(nodes: list[Node], description: str) -> dict:
    from latentmirror.nodes import NODE_CLASS_MAPPINGS
    from latentmirror.plugin.graph import has_control_widget, is_widget, iter_input_specs

    by_id = {n.id: n for n in nodes}
    links, sockets = [], {}
    ui_nodes, labels = [], {}
    order = _execution_order(nodes)
    for node in sorted(nodes, key=lambda n: order.index(n.id)):
        cls = NODE_CLASS_MAPPINGS[node.type]
        widgets, inputs, labels[node.id] = [], [], []
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
                labels[node.id].append(name)
                if has_control_widget(name, spec):
                    widgets.append("fixed")
                    labels[node.id].append("control_after_generate")
        ui_nodes.append({
            "id": node.id, "type": node.type, "pos": [0, 0], "flags": {},
            "order": order.index(node.id), "mode": 0, "inputs": inputs, "outputs": [],
            "properties": {"Node name for S&R": node.type}, "widgets_values": widgets,
            "title": node.title,
        })  # fmt: skip
    for ui in ui_nodes:
        cls = NODE_CLASS_MAPPINGS[ui["type"]]
        names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
        ui["outputs"] = [
            {"name": n, "type": t, "links": sockets.get((ui["id"], i), [])}
            for i, (n, t) in enumerate(zip(names, cls.RETURN_TYPES, strict=True))
        ]
        ui["size"] = frontend_size(ui["title"], ui["inputs"], ui["outputs"], labels[ui["id"]])
    uses_model = any(n.type == "LM_LoadGAN" for n in nodes)
    usage = " ".join([PLATE_USAGE, *([MODEL_USAGE] if uses_model else []), OUTPUT_USAGE])
    note = note_node(max(by_id) + 1, len(ui_nodes), f"{description}\n\n{usage}")
    _lay_out([note] + ui_nodes, {n.id: n.column for n in nodes} | {note["id"]: 0})
    return {
        "id": "00000000-0000-0000-0000-" + hashlib.sha1(description.encode()).hexdigest()[:12],
        "revision": 0, "last_node_id": note["id"], "last_link_id": len(links),
        "nodes": sorted([*ui_nodes, note], key=lambda n: n["id"]), "links": links, "groups": [],
        "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]},
                                "latentmirror": {"description": description}},
        "version": 0.4,
    }  # fmt: skip


def note_node(node_id: int, order: int, text: str) -> dict:
    """A Note with the template's description and use: this frontend's template browser shows a
    custom pack's templates by file name only, so the description travels in the workflow."""
    lines = sum(1 + len(paragraph) // 48 for paragraph in text.split("\n"))  # ~48 chars a line
    height = max(NOTE_MIN_HEIGHT, 18 * lines) + SLOT_HEIGHT + WIDGETS_PAD + BOTTOM_PAD
    return {
        "id": node_id, "type": "Note", "pos": [0, 0], "size": [NODE_WIDTH, height], "flags": {},
        "order": order, "mode": 0, "inputs": [], "outputs": [], "properties": {},
        "widgets_values": [text], "title": "About this template", "color": "#432",
        "bgcolor": "#653",
    }  # fmt: skip


def _lay_out(ui_nodes: list[dict], columns: dict[int, int]) -> None:
    """Columns left to right, each as wide as its widest node; in a column, nodes stacked in
    the order given with their title bars and a gap between them, so nothing covers a widget."""
    widths: dict[int, int] = {}
    for ui in ui_nodes:
        ui["size"][0] = max(NODE_WIDTH, ui["size"][0])
        column = columns[ui["id"]]
        widths[column] = max(widths.get(column, 0), ui["size"][0])
    lefts, x = {}, 40
    for column in sorted(widths):
        lefts[column], x = x, x + widths[column] + COLUMN_GAP
    tops: dict[int, int] = {}
    for ui in ui_nodes:
        column = columns[ui["id"]]
        top = tops.get(column, TOP)
        ui["pos"] = [lefts[column], top]
        tops[column] = top + ui["size"][1] + TITLE_HEIGHT + ROW_GAP


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
    """``--set`` values that run a template on ``plate``: the result (the first EXR saver, by
    id) to ``out``, any other saver beside it, existing frames overwritten."""
    with open(graph_path) as f:
        graph = json.load(f)
    sets = [f"1.path={plate}"]
    result = min(n["id"] for n in graph["nodes"] if n["type"] == "LM_SaveEXRSequence")
    for node in graph["nodes"]:
        if node["type"] in ("LM_SaveEXRSequence", "LM_SaveLatents"):
            name = node["widgets_values"][0].split("/")[-1]
            target = out if node["id"] == result else os.path.join(os.path.dirname(out), name)
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
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(TEMPLATES)}")
    parser.add_argument("--no-thumbnails", action="store_true")
    args = parser.parse_args()
    if unknown := sorted(set(args.names) - set(TEMPLATES)):
        parser.error(f"no template {', '.join(unknown)}; the templates: {', '.join(TEMPLATES)}")
    with tempfile.TemporaryDirectory() as work:
        for name in args.names or TEMPLATES:
            make = TEMPLATES[name]
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
