"""Plain test helpers (no fixtures: those are in conftest.py): EXR files written and read with
OpenImageIO directly (not through our writer), installers/ scripts as modules, and shot renders
of the identity template."""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import OpenImageIO as oiio

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
IDENTITY = str(PACKAGE_ROOT / "example_workflows" / "identity.json")


# ------------------------------------------------------------------------------ EXR files


def write_raw_exr(
    path,
    pixels,
    channels,
    pixel_type="half",
    data_origin=(0, 0),
    display=None,
    compression="zip",
    attributes=(),
):
    """Write an EXR with OIIO alone, so reader tests do not depend on our writer."""
    height, width, count = pixels.shape
    spec = oiio.ImageSpec(width, height, count, pixel_type)
    spec.x, spec.y = data_origin
    if display is not None:
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = display
    spec.channelnames = tuple(channels)
    spec.attribute("compression", compression)
    for name, type_name, value in attributes:
        spec.attribute(name, oiio.TypeDesc(type_name), value)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), out.geterror()
    assert out.write_image(np.ascontiguousarray(pixels, np.float32)), out.geterror()
    out.close()
    return str(path)


def read_raw_exr(path):
    """(pixels float32 [h, w, c], spec) read with OIIO alone."""
    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    spec = inp.spec()
    pixels = inp.read_image(0, 0, 0, spec.nchannels, "float")
    inp.close()
    return np.asarray(pixels), spec


# ------------------------------------------------------------------------------ installers


def installers_module(name: str) -> ModuleType:
    """An installers/ script as a module (registered in sys.modules, as dataclasses need)."""
    key = f"latentmirror_installers_{name}"
    if key not in sys.modules:
        path = PACKAGE_ROOT / "installers" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


# ------------------------------------------------------------------------------ shot renders


def frames_on_disk(pattern: str) -> list[int]:
    """Output frames, read with OIIO alone (loading them as a plate would protect them)."""
    return sorted(int(p.split(".")[-2]) for p in glob.glob(pattern.replace("####", "*")))


def pixels(pattern: str) -> np.ndarray:
    """Every frame of a #### pattern, stacked: [frames, h, w, c]."""
    paths = sorted(glob.glob(pattern.replace("####", "*")))
    return np.stack([read_raw_exr(p)[0] for p in paths])


def overrides(plate: str, out: str, steps: int = 20) -> list[str]:
    """--set values for the identity template: plate in, frames out, a short inversion."""
    return [f"1.path={plate}", f"10.path={out}", f"7.steps={steps}", "7.batch_size=2"]


def curve_graph(path, chan: str) -> str:
    """A graph every curve input drives, chunk-independent by construction: each frame is
    solved on its own (no warm start, batches of one, started from the anchor: no random
    exploration), resynthesised one at a time. The w_prior weight comes from ``chan``."""
    make = installers_module("make_templates")
    node = make.Node
    nodes = make.plate_nodes()
    nodes += [
        node(16, "LM_Curve", "pull", 2, {"keys": "1001:0, 1004:0.5 smooth"}),
        node(17, "LM_Curve", "anchor", 2, {"keys": "{curve x1001 0 x1004 0.3}"}),
        node(18, "LM_Curve", "style mix", 2, {"keys": "ease, 1001:0, 1002:0.2, 1004:0.9"}),
        node(19, "LM_Curve", "truncation", 2, {"keys": "1001:1, 1002:1, 1004:0.5 linear"}),
        node(21, "LM_Curve", "w_prior", 2, {"keys": chan, "column": 1}),
        node(4, "LM_LossMix", "l1", 1, {"term": "l1", "weight": 1.0}),
        node(5, "LM_LossMix", "w_prior", 1, {"term": "w_prior", "weight": 0.0},
             {"loss_mix": (4, 0), "weight_curve": (21, 0)}),
        node(11, "LM_SampleGAN", "face", 1, {"seed": 7, "count": 1, "truncation": 0.6},
             {"model": (3, 0)}),
        node(20, "LM_ReferenceBlend", "pull", 3,
             {"mode": "loss_pull", "strength": 0.0, "layers": "all", "distance": "l2"},
             {"references": (11, 0), "strength_curve": (16, 0)}),
        node(12, "LM_ReferenceBlend", "anchor", 3,
             {"mode": "latent_anchor", "strength": 0.0, "layers": "coarse", "start": True},
             {"references": (11, 0), "reference": (20, 0), "strength_curve": (17, 0)}),
        node(13, "LM_ReferenceBlend", "style", 3,
             {"mode": "style_mix", "strength": 0.0, "layers": "coarse"},
             {"references": (11, 0), "reference": (12, 0), "strength_curve": (18, 0)}),
        node(7, "LM_Invert", "invert", 4,
             {"space": "w_plus", "steps": 6, "schedule": "fast", "seed": 0, "batch_size": 1,
              "warm_start": False, "cache": False},
             {"model": (3, 0), "images": (2, 0), "loss_mix": (5, 0), "reference": (13, 0),
              "plate_info": (1, 2)}),
        node(8, "LM_Resynthesize", "resynth", 5,
             {"truncation": 1.0, "noise_mode": "const", "batch_size": 1, "reference_steps": 6},
             {"model": (3, 0), "latent": (7, 0), "reference": (13, 0), "loss_mix": (5, 0),
              "truncation_curve": (19, 0)}),
    ]  # fmt: skip
    nodes += make.output_nodes(9, (8, 0), "curves", 6, "EXR")
    graph = make.ui_graph(nodes, "curve test")
    with open(path, "w") as stream:
        json.dump(graph, stream)
    return str(path)


# ------------------------------------------------------------------------------ bad input


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd, timeout: float = 300, env: dict | None = None) -> CliResult:
    """``latentmirror <args>`` in a fresh process (as a user types it), without $OCIO."""
    environment = {k: v for k, v in os.environ.items() if k != "OCIO"}
    environment.update({"OMP_NUM_THREADS": "1", **(env or {})})
    done = subprocess.run(
        [sys.executable, "-m", "latentmirror", *args],
        cwd=str(cwd),
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def assert_clean_refusal(result: CliResult, *mentions: str) -> None:
    """Exit 1, no traceback, and the message names each of ``mentions`` (node, input, file...)."""
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    for mention in mentions:
        assert mention in result.stderr, (mention, result.stderr[-2000:])


def folder_state(folder) -> dict[str, tuple[int, str]]:
    """Every file under ``folder`` with its size and sha256: compare before/after to prove that
    nothing was written, removed or changed (plates stay untouched)."""
    state = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            state[str(path)] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return state
