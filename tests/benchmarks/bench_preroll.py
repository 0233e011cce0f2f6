"""Benchmark: how close chunked renders come to a single pass, for a few pre-roll lengths.

A 24-frame shot (a camera move over a real photo, 128x72) through the identity template
(60 steps), rendered in one pass, then in chunks of 6 frames two ways: in one process (the last
solved latent carries into the next chunk) and as independent farm tasks (a fresh process per
chunk: nothing carries, only the pre-roll warms up). Reported per pre-roll: the mean absolute
difference to the single pass (scene-linear, relative to the single pass's mean), the worst
frame's, and the seconds.

Run: ``.venv/bin/python tests/benchmarks/bench_preroll.py``.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
import tempfile
import time

import numpy as np
import OpenImageIO as oiio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(os.path.dirname(ROOT))  # last: never hides an installed package
TEMPLATE = os.path.join(ROOT, "example_workflows", "identity.json")
FRAMES, CHUNK = 24, 6


def write_plate(folder: str) -> str:
    spec = importlib.util.spec_from_file_location("demo_plate", f"{ROOT}/installers/demo_plate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_plate(folder, FRAMES, 128, 72, "china.jpg")


def read(pattern: str) -> np.ndarray:
    frames = []
    for path in sorted(glob.glob(pattern.replace("####", "*"))):
        image = oiio.ImageInput.open(path)
        frames.append(image.read_image(0, 0, 0, 3, "float"))
        image.close()
    return np.stack(frames)


def render(plate: str, out: str, chunk: int, preroll: int, ranges=None) -> float:
    from latentmirror.host import set_host
    from latentmirror.plugin.headless import HeadlessHost
    from latentmirror.plugin.local_backend import LocalBackend
    from latentmirror.plugin.shot import ShotJob, render_shot

    sets = [f"1.path={plate}", f"10.path={out}", "7.steps=60", "7.cache=false"]
    began = time.perf_counter()
    for frames in ranges or [None]:
        set_host(HeadlessHost(show_progress=False))  # a farm task: a fresh process, no carry
        render_shot(ShotJob(TEMPLATE, frames, tuple(sets), chunk, preroll), LocalBackend())
    return time.perf_counter() - began


def main() -> None:
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work:
        plate = write_plate(os.path.join(work, "plate"))
        seconds = render(plate, f"{work}/single/s.####.exr", FRAMES, 0)
        single = read(f"{work}/single/s.####.exr")
        scale = np.abs(single).mean()
        print(f"single pass: {seconds:.1f} s")
        tasks = [f"{1001 + i}-{1000 + i + CHUNK}" for i in range(0, FRAMES, CHUNK)]
        for mode in ("one process", "farm tasks"):
            for preroll in (0, 2, 4, 8):
                out = f"{work}/{mode[:4]}{preroll}/c.####.exr"
                ranges = tasks if mode == "farm tasks" else None
                seconds = render(plate, out, CHUNK, preroll, ranges)
                diff = np.abs(read(out) - single).mean(axis=(1, 2, 3)) / scale
                print(
                    f"{mode}, chunk {CHUNK}, pre-roll {preroll}: mean difference "
                    f"{diff.mean():.4f}, worst frame {diff.max():.4f}, {seconds:.1f} s"
                )


if __name__ == "__main__":
    main()
