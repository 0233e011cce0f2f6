"""The graph templates in example_workflows/: each runs unchanged through the headless runner on a
short demo plate made from a real photo, with the bundled model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from latentmirror.core.frames.sequence import load_sequence
from latentmirror.nodes import NODE_CLASS_MAPPINGS
from latentmirror.plugin.runner import run_graph_file

from .support import installers_module

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ["identity", "obscura", "reference_steer", "dissolve"]


_module = installers_module


@pytest.fixture(scope="module")
def photo_plate(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("plate")
    return _module("demo_plate").write_plate(str(folder), 3, 96, 54, "flower.jpg")


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_is_current_ui_json_with_a_thumbnail(name):
    path = ROOT / "example_workflows" / f"{name}.json"
    graph = json.loads(path.read_text())
    assert (ROOT / "example_workflows" / f"{name}.jpg").is_file()
    assert {n["type"] for n in graph["nodes"]} <= set(NODE_CLASS_MAPPINGS) | {"Note"}
    # the file is what the generator writes now: no template lags behind its nodes
    description, nodes = _module("make_templates").TEMPLATES[name]()
    assert graph == json.loads(json.dumps(_module("make_templates").ui_graph(nodes, description)))


@pytest.mark.parametrize("name", TEMPLATES)
@pytest.mark.slow
def test_template_runs_headless_on_a_photo_plate(name, photo_plate, tmp_path):
    graph = str(ROOT / "example_workflows" / f"{name}.json")
    out = str(tmp_path / "out" / "result.####.exr")
    sets = _module("make_templates").headless_overrides(graph, photo_plate, out)
    report = run_graph_file(graph, None, sets)
    result = load_sequence(out)
    plate = load_sequence(photo_plate)
    assert result.info.frames == [1001, 1002, 1003]
    assert result.rgb.shape == plate.rgb.shape and np.isfinite(result.rgb).all()
    assert np.abs(result.rgb - plate.rgb).mean() > 1e-3  # the GAN really made these frames
    assert report.plots and os.path.isfile(report.plots[0])


@pytest.mark.slow
def test_the_dissolve_holds_the_plate_then_turns_into_faces(photo_plate, tmp_path):
    graph = str(ROOT / "example_workflows" / "dissolve.json")
    out = str(tmp_path / "out" / "result.####.exr")
    make = _module("make_templates")
    sets = make.headless_overrides(graph, photo_plate, out) + make.dissolve_over(1001, 1003)
    run_graph_file(graph, None, sets)
    result, plate = load_sequence(out).rgb, load_sequence(photo_plate).rgb
    away = [float(np.abs(result[i] - plate[i]).mean()) for i in range(3)]
    assert away[0] < away[2]  # the last frame is further from the plate than the first
