"""Benchmark: a 1080p resynthesis graph from latents, its stages' shares, and colour accuracy.

Load Latents -> Resynthesize (1920x1080) -> OCIO Transform (inverse ACES 2.0 SDR display) ->
Save EXR Sequence (half, zip), on the bundled demo model, run through the node classes in chunks
of frames (each chunk's batches let go before the next chunk's, as the headless runner's), once
with the OCIO Transform's ``lut`` precision and once with ``exact``; each stage's share of the
wall time and its CPU seconds per frame. The LUT's bake is timed apart: cold (an empty disk
cache) and warm (read from it). Then an EXR copy of the rendered plate's first 24 frames (Load
EXR Sequence -> Save EXR Sequence, the plate's RGB as it is) against a bare OpenImageIO
read/write loop, the best of 9 runs of each, interleaved; and the LUT's display-space error
against OCIO's exact processor for ACES 2.0 SDR and sRGB, both directions, over the full range
(scene-linear magnitudes 1e-4..100 with saturated and out-of-gamut hues, or uniform display
values and the cube's faces) and over a photo plate's pixels (china.jpg, 256x144). The last
line's errors are those of the graph's transform (inverse ACES 2.0 SDR). The machine may be
shared: compare the ratios within one run.

Run: ``.venv/bin/python tests/benchmarks/bench_pipeline.py [--frames 96] [--chunk 8]``.
Last line: ``resynth_fps_1080=... colour_share=... exr_overhead=... colour_p99_error=...
colour_max_error=... colour_plate_max_error=...``.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import sys
import tempfile
import time
from collections import defaultdict
from functools import partial

import numpy as np
import OpenImageIO as oiio
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(os.path.dirname(ROOT))  # last: never hides an installed package
sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # the benchmarks beside this one
from bench_exr_io import best_times  # noqa: E402

DEMO_MODEL = "latentmirror-demo-faces-64.safetensors"
DISPLAY_VIEW = "sRGB - Display/ACES 2.0 - SDR 100 nits (Rec.709)"
WIDTH, HEIGHT = 1920, 1080
COPY_FRAMES, COPY_REPEATS = 24, 9  # the EXR copy: frames, and repeats of which the best counts


def demo_model():
    from latentmirror.nodes.gan_nodes import LoadGAN

    return LoadGAN().load(DEMO_MODEL, "float32")[0]


def write_latents(folder: str, frames: int, model=None, size=(WIDTH, HEIGHT)) -> str:
    """A shot of ``frames`` latents of ``model`` (default: the demo model) whose plate is
    ``size`` (width, height): Resynthesize makes frames of that size."""
    from latentmirror.core.fit import plan_fit
    from latentmirror.core.latents import GanLatent, save_latents

    model = model or demo_model()
    z = torch.randn(frames, model.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ws = model.mapping(z.to(model.device), 0.7).cpu()
    fit = plan_fit("stretch", size[1], size[0], model.resolution)
    latent = GanLatent(ws, "w_plus", model.content_hash, list(range(1001, 1001 + frames)), fit)
    return save_latents(latent, os.path.join(folder, "shot.safetensors"))


def render(latents: str, out: str, precision: str, chunk: int, model=None) -> dict[str, Stage]:
    """Wall and CPU seconds per stage for the whole shot, the graph run on ``chunk`` frames at a
    time (CPU seconds: the process's, all threads; the machine may be shared). ``model``: the
    latents' (default: the demo model)."""
    from latentmirror.nodes.color_nodes import OCIOTransform
    from latentmirror.nodes.exr_nodes import SaveEXRSequence
    from latentmirror.nodes.invert_nodes import LoadLatentsNode
    from latentmirror.nodes.resynth_nodes import ResynthesizeNode

    stages: dict[str, Stage] = defaultdict(Stage)
    model = model or demo_model()
    with stages["load latents"]:
        (latent,) = LoadLatentsNode().load(latents)
    for start in range(0, len(latent), chunk):
        part = latent.select(list(range(start, min(start + chunk, len(latent)))))
        with stages["resynthesize"]:
            (images,) = ResynthesizeNode().run(model, part, 1.0, "const", batch_size=chunk)
        with stages["colour"]:
            (scene,) = OCIOTransform().transform(
                images, "ACEScg", DISPLAY_VIEW, "inverse", "", precision
            )
        with stages["save exr"]:
            SaveEXRSequence().save(scene, out, "half", "zip", "overwrite", start_frame=1001 + start)
        del images, scene  # a chunk's batches go before the next chunk's, as the headless runner's
    return dict(stages)


def graph_fps(model, frames: int, size: tuple[int, int], chunk: int) -> float:
    """Frames/s of the graph (LUT colour) on ``model``'s latents rendered at ``size``
    (width, height), after one chunk to warm up (the LUT's bake, the device's first kernels)."""
    from latentmirror.host import set_host
    from latentmirror.plugin.headless import HeadlessHost

    set_host(HeadlessHost(model.device.type, show_progress=False))
    with tempfile.TemporaryDirectory() as folder:
        for run, count in (("warm-up", chunk), ("timed", frames)):
            os.makedirs(os.path.join(folder, run))
            latents = write_latents(os.path.join(folder, run), count, model, size)
            out = os.path.join(folder, run, "frame.####.exr")
            stages = render(latents, out, "lut", chunk, model)
    return frames / sum(stage.wall for stage in stages.values())


class Stage:
    """Wall and process CPU seconds spent inside ``with stage:`` blocks."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Stage:
        self._began = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc) -> None:
        self.wall += time.perf_counter() - self._began[0]
        self.cpu += time.process_time() - self._began[1]


def copy_seconds(plate: str, folder: str, chunk: int, frames: int) -> tuple[float, float]:
    """The best wall seconds of ``COPY_REPEATS`` copies of the plate's first ``frames`` frames,
    through the nodes and by a bare OpenImageIO loop, interleaved so that load from other
    processes falls on both alike (bench_exr_io's ``best_times``)."""
    bare_out = os.path.join(folder, "bare")
    os.makedirs(bare_out)
    cases = {
        "nodes": partial(
            copy_through_nodes, plate, os.path.join(folder, "copy", "frame.####.exr"), chunk,
            frames,
        ),
        "bare": partial(copy_bare_oiio, plate, bare_out, frames),
    }  # fmt: skip
    best = best_times(cases, COPY_REPEATS)
    return best["nodes"][0], best["bare"][0]


def copy_through_nodes(plate: str, out: str, chunk: int, frames: int) -> float:
    from latentmirror.nodes.exr_nodes import LoadEXRSequence, SaveEXRSequence

    began = time.perf_counter()
    for start in range(0, frames, chunk):
        wanted = f"{1001 + start}-{1000 + min(start + chunk, frames)}"
        images, mask, info = LoadEXRSequence().load(plate, wanted, "error")
        SaveEXRSequence().save(images, out, "half", "zip", "overwrite", info, mask=mask)
        del images, mask, info  # before the next chunk's, as the headless runner lets them go
    return time.perf_counter() - began


def copy_bare_oiio(plate: str, out: str, frames: int) -> float:
    began = time.perf_counter()
    for path in sorted(glob.glob(plate.replace("####", "*")))[:frames]:
        pixels = oiio.ImageBuf(path).get_pixels(oiio.FLOAT)
        spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], oiio.HALF)
        spec.attribute("compression", "zip")
        target = oiio.ImageOutput.create(path)
        target.open(os.path.join(out, os.path.basename(path)), spec)
        target.write_image(pixels)
        target.close()
    return time.perf_counter() - began


TRANSFORMS = {"ACES 2.0 SDR": DISPLAY_VIEW, "sRGB": "sRGB Encoded Rec.709 (sRGB)"}


def colour_errors(dst: str, inverse: bool) -> tuple[float, float, float]:
    """p99 and max over the full range, and max over a photo plate, of the LUT against OCIO's
    exact processor, in display space (see color_lut.display_error)."""
    from latentmirror.core import color, color_lut

    cfg = color.resolve_config("")
    target = color.parse_target(cfg, dst)
    full = color_lut.full_range_samples(cfg, target if inverse else "ACEScg", 200_000)
    full_error = color_lut.lut_error(full, cfg, "ACEScg", target, inverse)
    spec = importlib.util.spec_from_file_location("demo_plate", f"{ROOT}/installers/demo_plate.py")
    demo_plate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_plate)
    photo = demo_plate.photo_frames("china.jpg", 1, 256, 144).reshape(-1, 3)
    plate = color.apply_transform(photo, cfg, "ACEScg", target) if inverse else photo
    plate_error = color_lut.lut_error(plate, cfg, "ACEScg", target, inverse)
    return float(np.percentile(full_error, 99)), float(full_error.max()), float(plate_error.max())


def setup_seconds(folder: str) -> tuple[float, float, float]:
    """The graph's LUT baked into an empty disk cache (cold), then read from it (warm), then
    the first frame's extra cost: building OCIO's processors of the LUT (once per process)."""
    from latentmirror.core import caches, color, color_lut

    os.environ["LATENTMIRROR_LUT_CACHE"] = os.path.join(folder, "luts")
    cfg = color.resolve_config("")
    view = color.parse_target(cfg, DISPLAY_VIEW)
    seconds = []
    for _ in ("cold", "warm"):
        caches.release_models()  # the in-process caches: the second bake reads the disk
        began = time.perf_counter()
        color_lut.baked_lut(cfg, "ACEScg", view, True)
        seconds.append(time.perf_counter() - began)
    began = time.perf_counter()
    color_lut.apply_lut_transform(torch.zeros(1, 1, 1, 3), cfg, "ACEScg", view, True)
    return seconds[0], seconds[1], time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--chunk", type=int, default=8)
    args = parser.parse_args()

    from latentmirror.host import set_host
    from latentmirror.plugin.headless import HeadlessHost

    set_host(HeadlessHost(show_progress=False))
    os.environ.pop("OCIO", None)
    with tempfile.TemporaryDirectory() as folder:
        latents = write_latents(folder, args.frames)
        cold, warm, processors = setup_seconds(folder)
        print(
            f"LUT bake (once per transform and machine): cold {cold:.1f} s, read back "
            f"{warm:.2f} s; OCIO processors built (once per process) {processors:.2f} s"
        )
        totals = {}
        for precision in ("lut", "exact"):
            out = os.path.join(folder, precision, "frame.####.exr")
            stages = render(latents, out, precision, args.chunk)
            totals[precision] = sum(stage.wall for stage in stages.values())
            shares = ", ".join(
                f"{name} {stage.wall / totals[precision]:.0%} "
                f"({stage.cpu / args.frames:.3f} cpu s/frame)"
                for name, stage in stages.items()
            )
            cpu = sum(stage.cpu for stage in stages.values()) / args.frames
            print(
                f"{precision}: {args.frames / totals[precision]:.2f} fps, "
                f"{cpu:.3f} cpu s/frame ({shares})"
            )
            if precision == "lut":
                lut_stages = stages
        print(
            f"colour lut vs exact: {lut_stages['colour'].wall:.1f} s vs "
            f"{stages['colour'].wall:.1f} s"
        )
        plate = os.path.join(folder, "exact", "frame.####.exr")
        nodes, bare = copy_seconds(plate, folder, args.chunk, min(args.frames, COPY_FRAMES))
        print(
            f"EXR copy of {min(args.frames, COPY_FRAMES)} frames (best of {COPY_REPEATS}): "
            f"nodes {nodes:.2f} s, bare OIIO {bare:.2f} s"
        )
        print("colour error (display space): transform, direction: full p99, full max, plate max")
        errors = {}
        for name, dst in TRANSFORMS.items():
            for inverse in (False, True):
                errors[name, inverse] = colour_errors(dst, inverse)
                direction = "inverse" if inverse else "forward"
                print(
                    f"  {name}, {direction}: "
                    + ", ".join(f"{e:.2e}" for e in errors[name, inverse])
                )
    p99, worst, plate_worst = errors["ACES 2.0 SDR", True]  # the graph's transform
    print(
        f"resynth_fps_1080={args.frames / totals['lut']:.3f} "
        f"colour_share={lut_stages['colour'].wall / totals['lut']:.3f} "
        f"exr_overhead={nodes / bare:.3f} "
        f"colour_p99_error={p99:.2e} colour_max_error={worst:.2e} "
        f"colour_plate_max_error={plate_worst:.2e}"
    )


if __name__ == "__main__":
    main()
