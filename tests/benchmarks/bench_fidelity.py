"""Benchmark: how faithful the `identity` template is on the demo's photo plate, with and without
tuning the GAN to the shot.

The demo plate (installers/demo_plate.py: a camera move over assets/photos/china.jpg, scene-linear
ACEScg EXRs, 256x144, 24 frames) goes through the identity template as users get it: the graph
that installers/make_templates.py builds, run by the headless runner with the bundled 64 px model,
written to EXR and read back. Runs:

- the template without tuning, fit ``stretch`` (the plate squeezed into the model's 64 px square)
  and fit ``tiles`` (64 px tiles at the plate's own scale);
- the template with tuning: a ``LM_TuneGAN`` ("Tune GAN to Shot") node between Invert and
  Resynthesize (the template's own when it has one, else one added: model, the Invert's latents
  as pivots, the Invert's images, the template's loss mix). When the pack has no such node,
  ``tuned_psnr=nan`` and the line says so.

Every result is scored against the plate in display space (both EXRs through the templates'
OCIO display/view, clipped to 0..1, as the eye sees them): PSNR (mean over frames of each frame's
PSNR), and the warping error (core/temporal.py: the output's previous frame warped by the plate's
optical flow, over reliable pixels) as a ratio to the plate's own. Seconds per frame are the whole
graph's wall time (read, invert, tune, resynthesize, write) over the frames. The ceiling of a
perfect reconstruction at the model's size, stretched back to the plate, is printed too. The last
line is::

    identity_psnr=<dB> tuned_psnr=<dB> warp_ratio=<output / plate warping error>
    seconds_per_frame=<s>

where ``identity_psnr`` is the template's own fit without tuning, and ``warp_ratio`` and
``seconds_per_frame`` are of the tuned run when tuning ran, else of the untuned template.

Each run also prints the seconds per frame Invert and Tune GAN to Shot took on their own.

Run: ``.venv/bin/python tests/benchmarks/bench_fidelity.py [--frames 24] [--steps 150]
[--tune-steps N] [--tune-lr R] [--tune-batch N] [--tune-locality W] [--tune-schedule cosine]
[--tune-pivot-frames N] [--tuned-fit tiles] [--threads 1] [--device auto] [--skip-tiles]``
(``--steps``: Invert's; the --tune-* flags set the Tune GAN to Shot node's inputs). Latent and
tuned-model caches are off (the timing is of real work) and point at a temporary folder.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(os.path.dirname(ROOT))  # last: never hides an installed package

TUNE_NODE = "LM_TuneGAN"
TUNE_FLAGS = {  # flag -> (Tune GAN to Shot's input, type)
    "--tune-steps": ("steps", int),
    "--tune-lr": ("learning_rate", float),
    "--tune-batch": ("batch_size", int),
    "--tune-locality": ("locality", float),
    "--tune-schedule": ("lr_schedule", str),
    "--tune-pivot-frames": ("pivot_frames", int),
}
WIDTH, HEIGHT = 256, 144


def installer(name: str):
    """An installers/ script as a module (registered in sys.modules, as dataclasses need)."""
    key = f"latentmirror_installers_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, f"{ROOT}/installers/{name}.py")
        sys.modules[key] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[key])
    return sys.modules[key]


# ----------------------------------------------------------------------------------------------
# The identity graph and its variants, as make_templates describes them.


def only(nodes: list, node_type: str):
    found = [n for n in nodes if n.type == node_type]
    if len(found) != 1:
        raise SystemExit(f"the identity template has {len(found)} {node_type} nodes, expected 1")
    return found[0]


def identity_variant(plate: str, out: str, fit: str, steps: int, tune: bool, tuning: dict) -> list:
    """The identity template's nodes reading ``plate``, writing ``out``, inverting with ``fit``
    and ``steps``, with a Tune GAN to Shot node (its inputs overridden by ``tuning``) or without
    any; caches off; no other outputs."""
    templates = installer("make_templates")
    nodes = copy.deepcopy(templates.identity()[1])
    invert, resynthesize = only(nodes, "LM_Invert"), only(nodes, "LM_Resynthesize")
    invert.widgets.update(fit=fit, steps=steps, cache=False)
    only(nodes, "LM_LoadEXRSequence").widgets["path"] = plate
    tuners = [n for n in nodes if n.type == TUNE_NODE]
    if tune and not tuners:
        tuners = [add_tuner(nodes, invert, resynthesize)]
    for tuner in tuners:
        tuner.widgets.update(cache=False, **tuning)
        if not tune:
            bypass(nodes, tuner)
    saver = [
        n for n in nodes if n.type == "LM_SaveEXRSequence" and is_fed_by(n, resynthesize, nodes)
    ]
    saver[0].widgets.update(path=out, existing="overwrite")
    keep = {n.id for n in nodes if not is_output(n) or n is saver[0]}
    return [n for n in nodes if n.id in keep]


def add_tuner(nodes: list, invert, resynthesize):
    """Tune GAN to Shot between Invert and Resynthesize, fed as the node contract says."""
    templates = installer("make_templates")
    links = {"model": invert.links["model"], "latent": (invert.id, 0)}
    links["images"] = invert.links["images"]
    if "loss_mix" in invert.links:
        links["loss_mix"] = invert.links["loss_mix"]
    tuner = templates.Node(
        max(n.id for n in nodes) + 1, TUNE_NODE, "Tune GAN to Shot", resynthesize.column, {}, links
    )
    nodes.append(tuner)
    resynthesize.links["model"] = (tuner.id, 0)
    return tuner


def bypass(nodes: list, tuner) -> None:
    """Remove ``tuner``; what it fed takes the model it was given."""
    for node in nodes:
        for name, link in node.links.items():
            if link == (tuner.id, 0):
                node.links[name] = tuner.links["model"]
    nodes.remove(tuner)


def is_fed_by(node, source, nodes: list) -> bool:
    """Whether ``source``'s output reaches ``node``, directly or through other nodes."""
    by_id = {n.id: n for n in nodes}
    return any(
        src == source.id or is_fed_by(by_id[src], source, nodes) for src, _ in node.links.values()
    )


def is_output(node) -> bool:
    from latentmirror.nodes import NODE_CLASS_MAPPINGS

    return bool(getattr(NODE_CLASS_MAPPINGS.get(node.type), "OUTPUT_NODE", False))


TIMED_NODES = ("LM_Invert", TUNE_NODE)  # the seconds each of these spent are reported


def timed(node_type: str, node_class, seconds: dict):
    """``node_class`` whose function adds its wall time to ``seconds[node_type]``."""

    def function(self, *args, **kwargs):
        began = time.perf_counter()
        try:
            return getattr(super(subclass, self), node_class.FUNCTION)(*args, **kwargs)
        finally:
            seconds[node_type] = seconds.get(node_type, 0.0) + time.perf_counter() - began

    subclass = type(node_class.__name__, (node_class,), {node_class.FUNCTION: function})
    return subclass


def render(nodes: list) -> tuple[float, dict]:
    """Run the graph headless as `latentmirror render` would: its wall time in seconds, and the
    seconds Invert and Tune GAN to Shot took (by node type)."""
    from latentmirror.nodes import NODE_CLASS_MAPPINGS
    from latentmirror.plugin.graph import graph_from_json
    from latentmirror.plugin.runner import run_graph

    by_node: dict[str, float] = {}
    classes = dict(NODE_CLASS_MAPPINGS)
    for name in TIMED_NODES:
        if name in classes:
            classes[name] = timed(name, classes[name], by_node)
    graph = graph_from_json(installer("make_templates").ui_graph(nodes, "bench"), classes)
    began = time.perf_counter()
    run_graph(graph, classes)
    return time.perf_counter() - began, by_node


# ----------------------------------------------------------------------------------------------
# Scores, in display space.


@dataclass
class Result:
    name: str
    psnr: float  # mean over frames, dB
    worst_psnr: float
    warp_ratio: float
    seconds_per_frame: float
    node_seconds_per_frame: dict  # node type -> its seconds per frame

    def __str__(self) -> str:
        nodes = ", ".join(f"{k} {v:.2f}" for k, v in self.node_seconds_per_frame.items())
        return (
            f"{self.name}: PSNR {self.psnr:.2f} dB (worst frame {self.worst_psnr:.2f}), warp ratio "
            f"{self.warp_ratio:.3f}, {self.seconds_per_frame:.2f} s/frame ({nodes} s/frame)"
        )


def display(pattern: str) -> np.ndarray:
    """An EXR sequence as the templates' display shows it, float ``[T, H, W, 3]`` in 0..1."""
    return installer("contact_sheet").display_referred(pattern)[1]


def psnr_per_frame(output: np.ndarray, plate: np.ndarray) -> np.ndarray:
    mse = ((output - plate) ** 2).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10 * np.log10(1.0 / mse)


def stretch_ceiling(plate: np.ndarray, resolution: int) -> float:
    """PSNR of a perfect reconstruction at the model's size, stretched back (fit stretch)."""
    from latentmirror.core.fit import apply_fit, plan_fit, undo_fit

    images = torch.from_numpy(plate).permute(0, 3, 1, 2)
    fit = plan_fit("stretch", plate.shape[1], plate.shape[2], resolution)
    back = undo_fit(apply_fit(images, fit), fit).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return float(psnr_per_frame(back, plate).mean())


def score(name: str, pattern: str, plate: np.ndarray, flows, timing: tuple) -> Result:
    from latentmirror.core.temporal import temporal_score

    output = display(pattern)
    psnr = psnr_per_frame(output, plate)
    warp = temporal_score(output, plate, "display", flows)
    wall, by_node = timing
    per_node = {k: v / len(plate) for k, v in by_node.items()}
    result = Result(
        name, float(psnr.mean()), float(psnr.min()), warp.ratio, wall / len(plate), per_node
    )
    print(f"{result}; {warp}", flush=True)
    return result


# ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--steps", type=int, default=0, help="Invert steps (0: the template's)")
    group = parser.add_argument_group("the tuned run's Tune GAN to Shot (default: the template's)")
    for flag, (node_input, kind) in TUNE_FLAGS.items():
        group.add_argument(flag, type=kind, dest=f"tune_{node_input}")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tuned-fit", default="", help="fit of the tuned run (the template's)")
    parser.add_argument("--skip-tiles", action="store_true", help="no untuned tiles run")
    args = parser.parse_args()
    given = {k: getattr(args, f"tune_{k}") for k, _ in TUNE_FLAGS.values()}
    tuning = {k: v for k, v in given.items() if v is not None}
    if args.threads:
        torch.set_num_threads(args.threads)

    from latentmirror.core.temporal import plate_flows
    from latentmirror.host import set_host
    from latentmirror.nodes import NODE_CLASS_MAPPINGS
    from latentmirror.plugin.headless import HeadlessHost

    with tempfile.TemporaryDirectory() as work:
        os.environ["LATENTMIRROR_CACHE"] = os.path.join(work, "cache")
        set_host(HeadlessHost(args.device, show_progress=False))
        pattern = installer("demo_plate").write_plate(
            os.path.join(work, "plate"), args.frames, WIDTH, HEIGHT, "china.jpg"
        )
        plate = display(pattern)
        flows = plate_flows(plate, "display")
        template = installer("make_templates").identity()[1]
        template_fit = only(template, "LM_Invert").widgets.get("fit", "stretch")
        steps = args.steps or only(template, "LM_Invert").widgets["steps"]
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, device "
            f"{args.device}; plate: {args.frames} frames of china.jpg, {WIDTH}x{HEIGHT}, display "
            f"space; identity template: fit {template_fit}, {steps} Invert steps",
            flush=True,
        )
        ceiling = stretch_ceiling(plate, 64)
        print(f"ceiling: a perfect 64 px reconstruction, stretched back: {ceiling:.2f} dB")

        def run(name: str, fit: str, tune: bool) -> Result:
            out = os.path.join(work, name, "out.####.exr")
            nodes = identity_variant(pattern, out, fit, steps, tune, tuning)
            return score(name, out, plate, flows, render(nodes))

        fits = [template_fit] + [f for f in ("stretch", "tiles") if f != template_fit]
        if args.skip_tiles:
            fits = [f for f in fits if f != "tiles" or f == template_fit]
        untuned = {fit: run(f"identity, fit {fit}", fit, tune=False) for fit in fits}
        identity = untuned[template_fit]
        if TUNE_NODE in NODE_CLASS_MAPPINGS:
            tuned_fit = args.tuned_fit or template_fit
            settings = ", ".join(f"{k} {v}" for k, v in tuning.items()) or "the template's"
            tuned = run(f"identity tuned ({settings}), fit {tuned_fit}", tuned_fit, tune=True)
        else:
            tuned = None
            print(f"no {TUNE_NODE} node in this pack: the tuned run is skipped, tuned_psnr=nan")
        shown = tuned or identity
        print(
            f"identity_psnr={identity.psnr:.2f} "
            f"tuned_psnr={tuned.psnr if tuned else math.nan:.2f} "
            f"warp_ratio={shown.warp_ratio:.3f} seconds_per_frame={shown.seconds_per_frame:.2f}"
        )


if __name__ == "__main__":
    main()
