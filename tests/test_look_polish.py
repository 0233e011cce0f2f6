"""Look polish found by trying the templates in ComfyUI (issue 14, item 4): a highlight-safe way
back from the display, the templates' notes and layout (with the frontend's node sizes), loss
plots named after their output sequence, the ComfyUI installer, and short error type names."""

from __future__ import annotations

import itertools
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from latentmirror.core import color
from latentmirror.core.errors import LatentmirrorError, error
from latentmirror.core.frames.patterns import sequence_name
from latentmirror.core.storage import WriteFailed
from latentmirror.nodes.color_nodes import OCIOTransform
from latentmirror.plugin.headless import Interrupted
from latentmirror.plugin.runner import run_graph_file

from .support import PACKAGE_ROOT, assert_clean_refusal, folder_state, installers_module

VIEW = "sRGB - Display/ACES 2.0 - SDR 100 nits (Rec.709)"
TEMPLATES = installers_module("make_templates").TEMPLATES


def _cfg() -> color.ColorConfig:
    return color.resolve_config("")


def _grey(*values: float) -> np.ndarray:
    return np.array([[v, v, v] for v in values], np.float32)


def _back_to_scene(display: np.ndarray, highlights: str, src: str = "ACEScg", dst=VIEW):
    image = torch.from_numpy(display.reshape(1, 1, -1, display.shape[-1]).copy())
    (out,) = OCIOTransform().transform(image, src, dst, "inverse", highlights=highlights)
    return out.numpy().reshape(display.shape)


# ------------------------------------------------------------------------------ highlights


def test_the_exact_inverse_makes_hot_pixels_the_safe_ones_do_not():
    """Display 0.98 is scene 19.7 under ACES 2.0 SDR (obscura's hot pixels); limit and soft clip
    bring nothing back brighter than scene-linear white."""
    near_white = _grey(0.9, 0.98, 1.0)
    assert _back_to_scene(near_white, "keep").min() > 3.9
    for highlights in ("limit", "soft clip"):
        assert _back_to_scene(near_white, highlights).max() <= 1.0 + 1e-3, highlights


@pytest.mark.parametrize("highlights", color.HIGHLIGHTS)
def test_tones_below_the_knee_come_back_exactly(highlights):
    """A plate's own tones (it peaks at 0.99 scene-linear in the demo) survive the round trip:
    only display values the plate never produced are limited."""
    cfg = _cfg()
    target = color.parse_target(cfg, VIEW)
    scene = _grey(0.0, 0.01, 0.18, 0.4)
    display = color.apply_transform(scene, cfg, "ACEScg", target)
    np.testing.assert_allclose(_back_to_scene(display, highlights), scene, atol=2e-4)


@pytest.mark.parametrize("highlights", ["keep", "limit"])
def test_limit_keeps_every_tone_up_to_white(highlights):
    """Why the templates limit: the plate's own tones up to scene-linear 1 come back as they
    were (soft clip would darken the brightest of them)."""
    cfg = _cfg()
    scene = _grey(0.5, 0.9, 0.99, 1.0)
    display = color.apply_transform(scene, cfg, "ACEScg", color.parse_target(cfg, VIEW))
    np.testing.assert_allclose(_back_to_scene(display, highlights), scene, rtol=2e-3)


def test_soft_clip_keeps_the_order_of_tones_and_has_no_kink():
    cfg = _cfg()
    white = color.reference_white(cfg, "ACEScg", color.parse_target(cfg, VIEW))
    ramp = np.linspace(0.0, 1.0, 2001, dtype=np.float32)[:, None].repeat(3, axis=1)
    out = color.limit_highlights(ramp, white, "soft clip")[:, 0]
    steps = np.diff(out)
    assert (steps > 0).all()  # strictly increasing: gradation kept
    assert steps.max() <= np.diff(ramp[:, 0]).max() * (1 + 1e-3)  # slope never above 1
    assert out.max() < white[0]


@pytest.mark.parametrize("highlights", ["limit", "soft clip"])
def test_alpha_passes_through_a_safe_inverse(highlights):
    rgba = np.array([[1.0, 1.0, 1.0, 0.25], [0.2, 0.3, 0.4, 1.0]], np.float32)
    out = _back_to_scene(rgba, highlights)
    np.testing.assert_array_equal(out[:, 3], rgba[:, 3])


# Bad input: highlights set where it means nothing. Outcome: refused, the node and input named.
MISPLACED_HIGHLIGHTS = [
    # (direction, dst, highlights, what the message must also name)
    ("forward", VIEW, "limit", "direction inverse"),
    ("inverse", "sRGB Encoded Rec.709 (sRGB)", "soft clip", "display/view dst"),
    ("forward", "lin_rec709", "soft clip", "set highlights to keep"),
    (
        "inverse",
        VIEW,
        "clamp",
        "not one of keep, limit, soft clip",
    ),  # any direction: the choice first
    ("forward", VIEW, "exact", "not one of keep, limit, soft clip"),
]


@pytest.mark.parametrize(("direction", "dst", "highlights", "mention"), MISPLACED_HIGHLIGHTS)
def test_highlights_where_they_mean_nothing_are_refused(direction, dst, highlights, mention):
    image = torch.full((1, 2, 2, 3), 0.5)
    with pytest.raises(LatentmirrorError) as caught:
        OCIOTransform().transform(image, "ACEScg", dst, direction, highlights=highlights)
    message = str(caught.value)
    assert "node OCIO Transform" in message and "input 'highlights'" in message
    assert mention in message


def test_an_unknown_highlights_mode_is_refused():
    with pytest.raises(LatentmirrorError, match="not one of keep, limit, soft clip"):
        color.limit_highlights(_grey(0.5), np.ones(3, np.float32), "clamp")


# ------------------------------------------------------------------------------ templates


def _frontend_body(node: dict) -> tuple[float, float]:
    """The body size ComfyUI's frontend gives a node on load: at least its computeSize (slot
    rows of 20 px, 24 px per widget, 8 + 6 px padding), restated here from the frontend rules."""
    if node["type"] == "Note":
        return tuple(node["size"])
    links = [i for i in node["inputs"] if "widget" not in i]
    rows = max(len(links), len(node["outputs"]), 1)
    widgets = len(node["widgets_values"])
    height = rows * 20 + (widgets * 24 + 8 if widgets else 0) + 6
    return max(node["size"][0], 140), max(node["size"][1], height)


def _boxes(graph: dict) -> dict[int, tuple[float, float, float, float]]:
    """Each node's box on the canvas, title bar (30 px above its pos) included."""
    boxes = {}
    for node in graph["nodes"]:
        width, height = _frontend_body(node)
        x, y = node["pos"]
        boxes[node["id"]] = (x, y - 30, x + width, y + height)
    return boxes


def _generated(name: str) -> dict:
    description, nodes = TEMPLATES[name]()
    return installers_module("make_templates").ui_graph(nodes, description)


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_node_covers_another_at_the_frontend_sizes(name):
    graph = _generated(name)
    boxes = _boxes(graph)
    for (a, box_a), (b, box_b) in itertools.combinations(boxes.items(), 2):
        apart = box_a[2] <= box_b[0] or box_b[2] <= box_a[0]
        apart = apart or box_a[3] <= box_b[1] or box_b[3] <= box_a[1]
        assert apart, f"{name}: node {a} {box_a} overlaps node {b} {box_b}"
    # the serialized size is already the frontend's: loading grows nothing into a neighbour
    for node in graph["nodes"]:
        assert tuple(node["size"]) == _frontend_body(node), node["id"]


def test_the_obscura_saver_is_tall_enough_for_write_frames():
    """The case found in ComfyUI: 3 link inputs, 9 widgets (write_frames last) need 290 px."""
    saver = next(n for n in _generated("obscura")["nodes"] if n["id"] == 10)
    assert len(saver["widgets_values"]) == 9 and saver["size"][1] == 3 * 20 + 9 * 24 + 8 + 6


@pytest.mark.parametrize("name", TEMPLATES)
def test_each_template_carries_its_description_in_a_note(name):
    """This frontend's template browser shows a pack's templates by file name only, so the
    description is a Note in the workflow (and in extra.latentmirror for tools)."""
    graph = _generated(name)
    description = graph["extra"]["latentmirror"]["description"]
    (note,) = [n for n in graph["nodes"] if n["type"] == "Note"]
    assert (
        note["widgets_values"][0].startswith(description) and "Plate" in note["widgets_values"][0]
    )
    assert graph["last_node_id"] == max(n["id"] for n in graph["nodes"])


def test_plate_to_display_is_a_current_template_with_a_thumbnail():
    folder = PACKAGE_ROOT / "example_workflows"
    graph = json.loads((folder / "plate_to_display.json").read_text())
    assert graph == json.loads(json.dumps(_generated("plate_to_display")))
    assert (folder / "plate_to_display.jpg").stat().st_size > 1000


@pytest.mark.parametrize("name", ["identity", "obscura", "reference_steer"])
def test_gan_templates_come_back_to_scene_linear_highlight_safe(name):
    backs = [
        n for n in _generated(name)["nodes"]
        if n["type"] == "LM_OCIOTransform" and "inverse" in n["widgets_values"]
    ]  # fmt: skip
    assert backs and all(n["widgets_values"][-1] == "limit" for n in backs)


def test_plate_to_display_renders_the_display_transform_of_the_plate(plate, tmp_path):
    from latentmirror.core.frames.sequence import load_sequence

    graph = str(PACKAGE_ROOT / "example_workflows" / "plate_to_display.json")
    out = str(tmp_path / "out" / "check.####.exr")
    sets = installers_module("make_templates").headless_overrides(graph, plate, out)
    run_graph_file(graph, "1001-1002", sets)
    result, source = load_sequence(out), load_sequence(plate, frames="1001-1002")
    assert result.info.colorspace == "sRGB - Display"
    cfg = _cfg()
    expected = color.apply_transform(source.rgb, cfg, "ACEScg", color.parse_target(cfg, VIEW))
    np.testing.assert_allclose(result.rgb, expected, atol=2e-3)  # half floats


# ------------------------------------------------------------------------------ loss plots


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/r/obscura.1001.exr", "obscura"),
        ("/r/obscura_1001.exr", "obscura"),
        ("/r/obscura.-005.exr", "obscura"),
        ("/r/obscura_reconstruction.1001.exr", "obscura_reconstruction"),
        ("/r/still.exr", "still"),
        ("/r/1001.exr", "1001"),
    ],
)
def test_sequence_name(path, name):
    assert sequence_name(path) == name


# ------------------------------------------------------------------------------ error names


def _comfyui_type_name(kind: type) -> str:
    """What ComfyUI's execution.py (full_type_name) shows as an error's exception_type."""
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


@pytest.mark.parametrize(
    "raised",
    [
        error("no such file", file="/x.exr", frame=1001),
        WriteFailed(OSError(28, "No space left on device", "/out/a.exr"), "/out/a.exr"),
        Interrupted("stopped"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_error_types_have_short_names_and_are_still_caught(raised):
    kind = type(raised)
    assert _comfyui_type_name(kind) == f"latentmirror.{kind.__name__}"
    import latentmirror

    assert getattr(latentmirror, kind.__name__) is kind  # the name shown leads to the class
    with pytest.raises(LatentmirrorError):
        raise raised


def test_an_error_survives_pickling_by_its_short_name():
    """Ray sends a worker's error back pickled: it must come back as the same class."""
    again = pickle.loads(pickle.dumps(error("bad frame", frame=1003)))
    assert type(again) is LatentmirrorError and str(again) == "[frame 1003] bad frame"


# ------------------------------------------------------------------------------ installer

INSTALLER = str(PACKAGE_ROOT / "installers" / "install_comfyui.py")


def _comfyui(tmp_path, requirements: str, venv: bool = False) -> Path:
    folder = tmp_path / "ComfyUI"
    (folder / "custom_nodes").mkdir(parents=True)
    (folder / "main.py").write_text("")
    (folder / "requirements.txt").write_text(requirements)
    if venv:
        (folder / ".venv" / "bin").mkdir(parents=True)
        python = folder / ".venv" / "bin" / "python"  # stands for its own: runs ours
        python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        python.chmod(0o755)
    return folder


# (case, ComfyUI's requirements.txt, a venv in its folder, extra args, exit code, must name)
INSTALLER_CASES = [
    ("env outside, this Python has its requirements", "torch\nnumpy>=1.25.0\n# x\nsafetensors\n",
     False, [], 0, f"its Python: {sys.executable}"),
    ("venv inside its folder", "torch\n", True, [], 0, "ComfyUI/.venv/bin/python"),
    ("--python wins", "torch\n", True, ["--python", sys.executable], 0,
     f"its Python: {sys.executable}"),
    ("env outside, this Python lacks a requirement", "torch\nno-such-package-lm\n", False, [], 1,
     "no-such-package-lm"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("requirements", "venv", "args", "code", "mention"),
    [case[1:] for case in INSTALLER_CASES],
    ids=[case[0] for case in INSTALLER_CASES],
)
def test_installer_finds_comfyuis_python(tmp_path, requirements, venv, args, code, mention):
    folder = _comfyui(tmp_path, requirements, venv)
    before = folder_state(folder)
    done = subprocess.run(
        [sys.executable, INSTALLER, str(folder), "--dry-run", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if code:
        assert_clean_refusal(done, mention, "--python")
    else:
        assert done.returncode == 0, done.stderr
        assert mention in done.stdout
    assert folder_state(folder) == before  # a dry run writes nothing


def test_installer_help_is_whole():
    done = subprocess.run([sys.executable, INSTALLER, "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for line in ("without touching its torch", "else", "two OpenCV wheels in one environment"):
        assert line in done.stdout
    assert "--python PYTHON" in done.stdout


def test_comfyui_loads_the_pack_and_shows_short_error_types(tmp_path):
    """As ComfyUI loads a pack (nodes.load_custom_node): a module named after the folder's path,
    no module called ``latentmirror``; a node's error then shows as ``latentmirror.<type>``."""
    script = f"""
import importlib.util, sys
folder = {str(PACKAGE_ROOT)!r}
name = folder.replace(".", "_x_")
spec = importlib.util.spec_from_file_location(name, folder + "/__init__.py")
pack = importlib.util.module_from_spec(spec)
sys.modules[name] = pack
spec.loader.exec_module(pack)
assert "latentmirror" not in sys.modules
node = pack.NODE_CLASS_MAPPINGS["LM_OCIOTransform"]()
import torch
try:
    node.transform(torch.zeros(1, 2, 2, 3), "No Such Space", "ACEScg", "forward")
except Exception as exc:
    kind = type(exc)
    print(kind.__module__ + "." + kind.__qualname__)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "latentmirror.LatentmirrorError"
