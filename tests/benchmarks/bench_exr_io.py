"""Benchmark: what Load/Save EXR Sequence cost over a bare OpenImageIO loop.

N frames of 1920x1080 RGBA half, written with zip and with DWAA through ``save_sequence`` and
through a bare loop (ImageOutput open / write_image / close per frame, the same spec), then read
through ``load_sequence`` and a bare loop (ImageInput open / read_image / close per frame). Ours
decodes and encodes on worker threads ($LATENTMIRROR_IO_THREADS, default the CPU count up to 4),
so it may beat the bare serial loop (a ratio below 1); the 1-thread figure of ours is printed
too. Each figure is the best of ``REPEATS`` runs, the runs of one case interleaved with the
bare loop's so that load from other processes falls on both alike.

Run: ``PYTHONPATH=<folder holding latentmirror> .venv/bin/python tests/benchmarks/bench_exr_io.py
[frames]``. The last line: ``exr_write_overhead_zip=<r> exr_write_overhead_dwaa=<r>
exr_read_overhead=<r>`` (ours / bare, with threads).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from functools import partial

import numpy as np
import OpenImageIO as oiio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(os.path.dirname(ROOT))  # last: never hides an installed package

from latentmirror.core.frames.exr import ExrWriteOptions  # noqa: E402
from latentmirror.core.frames.overlap import io_threads  # noqa: E402
from latentmirror.core.frames.sequence import load_sequence, save_sequence  # noqa: E402

WIDTH, HEIGHT = 1920, 1080
REPEATS = 3
COMPRESSIONS = {"zip": ExrWriteOptions("half", "zip"), "dwaa": ExrWriteOptions("half", "dwaa")}


def plate_pixels(frames: int) -> np.ndarray:
    """Plate-like RGBA: smooth gradients, a moving shape and grain, in 0..4 (half's range)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    batch = np.empty((frames, HEIGHT, WIDTH, 4), np.float32)
    for i in range(frames):
        shape = np.exp(-(((x - 400 - 20 * i) / 300) ** 2 + ((y - 540) / 200) ** 2))
        for c in range(3):
            batch[i, ..., c] = 0.2 + 0.3 * (x / WIDTH) * (c + 1) + 3 * shape
        batch[i, ..., :3] += rng.normal(0, 0.02, (HEIGHT, WIDTH, 3)).astype(np.float32)
        batch[i, ..., 3] = np.clip(shape * 1.5, 0, 1)
    return batch


def bare_spec(options: ExrWriteOptions) -> oiio.ImageSpec:
    spec = oiio.ImageSpec(WIDTH, HEIGHT, 4, options.pixel_type)
    spec.channelnames = ("R", "G", "B", "A")
    spec.alpha_channel = 3
    spec.attribute("compression", options.compression_attribute())
    if options.compression == "dwaa":
        spec.attribute("openexr:dwaCompressionLevel", float(options.dwa_level))
    return spec


def bare_write(folder: str, batch: np.ndarray, options: ExrWriteOptions) -> None:
    spec = bare_spec(options)
    for i, pixels in enumerate(batch):
        path = os.path.join(folder, f"bare.{1001 + i}.exr")
        out = oiio.ImageOutput.create(path)
        assert out.open(path, spec) and out.write_image(pixels) and out.close(), out.geterror()


def ours_write(folder: str, images: tuple, options: ExrWriteOptions, threads: int) -> None:
    rgb, alpha = images  # separate contiguous arrays, as Save EXR Sequence gets IMAGE and MASK
    save_sequence(
        os.path.join(folder, "ours.####.exr"),
        rgb,
        alpha,
        write_options=options,
        existing="overwrite",
        io_threads=threads,
    )


def bare_read(pattern: str, frames: int) -> None:
    for i in range(frames):
        inp = oiio.ImageInput.open(pattern.replace("####", str(1001 + i)))
        assert inp.read_image(0, 0, 0, 4, "float") is not None, inp.geterror()
        inp.close()


def ours_read(pattern: str, threads: int) -> None:
    load_sequence(pattern, io_threads=threads)


def best_times(cases: dict, repeats: int = REPEATS) -> dict[str, float]:
    """The best wall time of each case; the cases run interleaved, ``repeats`` rounds."""
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeats):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    logging.getLogger("latentmirror").setLevel(logging.ERROR)
    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    threads = io_threads()
    batch = plate_pixels(frames)
    images = (np.ascontiguousarray(batch[..., :3]), np.ascontiguousarray(batch[..., 3]))
    folder = tempfile.mkdtemp(prefix="bench_exr_io-")
    print(f"{frames} frames of {WIDTH}x{HEIGHT} RGBA half; {threads} I/O threads; "
          f"{os.cpu_count()} CPUs; best of {REPEATS}")  # fmt: skip
    ratios = {}
    try:
        for name, options in COMPRESSIONS.items():
            out = os.path.join(folder, name)
            os.makedirs(out)
            times = best_times(
                {
                    "bare": partial(bare_write, out, batch, options),
                    "ours": partial(ours_write, out, images, options, threads),
                    "ours_1": partial(ours_write, out, images, options, 1),
                }
            )
            ratios[name] = times["ours"] / times["bare"]
            print(
                f"write {name:4}: bare {times['bare']:.2f} s, ours {times['ours']:.2f} s "
                f"({threads} threads, {ratios[name]:.3f}x), ours 1 thread {times['ours_1']:.2f} s "
                f"({times['ours_1'] / times['bare']:.3f}x)"
            )
        pattern = os.path.join(folder, "zip", "bare.####.exr")
        times = best_times(
            {
                "bare": lambda: bare_read(pattern, frames),
                "ours": lambda: ours_read(pattern, threads),
                "ours_1": lambda: ours_read(pattern, 1),
            }
        )
        ratios["read"] = times["ours"] / times["bare"]
        print(
            f"read zip  : bare {times['bare']:.2f} s, ours {times['ours']:.2f} s "
            f"({threads} threads, {ratios['read']:.3f}x), ours 1 thread {times['ours_1']:.2f} s "
            f"({times['ours_1'] / times['bare']:.3f}x)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"exr_write_overhead_zip={ratios['zip']:.3f} exr_write_overhead_dwaa={ratios['dwaa']:.3f} "
        f"exr_read_overhead={ratios['read']:.3f}"
    )


if __name__ == "__main__":
    main()
