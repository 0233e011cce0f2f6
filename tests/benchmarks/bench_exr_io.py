"""Benchmark: what Load / Save EXR Sequence (the nodes, as a graph runs them) cost over a bare
OpenImageIO loop, for zip and DWAA, at 1920x1080 and 256x144.

The comparison is like for like: the same frames (plate-like RGBA, half), the same compression,
the same four channels. The bare write hands OpenImageIO each frame as one float32 RGBA array
(ImageOutput create / open / write_image / close); the bare read asks for float RGBA
(ImageInput open / read_image / close). The nodes do what a graph needs on top: Load EXR
Sequence reads the same files into IMAGE (RGB) and MASK (alpha) tensors, checks for NaN/Inf and
keeps the plate's windows and headers; Save EXR Sequence writes IMAGE + MASK from those tensors
under a temporary name, decodes the last rows of each frame before renaming it into place (a
full disk could tear it), and records the plate's headers. Neither node makes previews here
(the headless host shows none).

Ours decodes and encodes on worker threads ($LATENTMIRROR_IO_THREADS, default the CPU count up
to 4); the bare loop is serial, as a script would be (OpenEXR still uses its own threads inside
each file, for both). The 1-thread figure of ours is printed too: that is the per-frame overhead.
Each figure is the best of ``REPEATS`` runs, the cases interleaved so that load from other
processes falls on all alike; CPU seconds (this process, all threads) are printed beside wall
seconds, as they move less on a busy machine.

Run: ``PYTHONPATH=<folder holding latentmirror> .venv/bin/python tests/benchmarks/bench_exr_io.py
[frames]`` (default 8). Last line (1920x1080, with threads, wall time):
``exr_read_overhead_zip=<r> exr_write_overhead_zip=<r> exr_read_overhead_dwaa=<r>
exr_write_overhead_dwaa=<r>`` (ours / bare).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import OpenImageIO as oiio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(os.path.dirname(ROOT))  # last: never hides an installed package

from latentmirror.core.frames.exr import ExrWriteOptions  # noqa: E402
from latentmirror.core.frames.overlap import IO_THREADS_VARIABLE, io_threads  # noqa: E402
from latentmirror.host import set_host  # noqa: E402
from latentmirror.nodes.exr_nodes import LoadEXRSequence, SaveEXRSequence  # noqa: E402
from latentmirror.plugin.headless import HeadlessHost  # noqa: E402

SIZES = ((1920, 1080), (256, 144))
REPEATS = 3
COMPRESSIONS = ("zip", "dwaa")


def plate_pixels(frames: int, width: int, height: int) -> np.ndarray:
    """Plate-like RGBA: smooth gradients, a moving shape and grain, in 0..4 (half's range)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    batch = np.empty((frames, height, width, 4), np.float32)
    for i in range(frames):
        shape = np.exp(
            -(
                ((x - width / 5 - 20 * i) / (width / 6)) ** 2
                + ((y - height / 2) / (height / 5)) ** 2
            )
        )
        for c in range(3):
            batch[i, ..., c] = 0.2 + 0.3 * (x / width) * (c + 1) + 3 * shape
        batch[i, ..., :3] += rng.normal(0, 0.02, (height, width, 3)).astype(np.float32)
        batch[i, ..., 3] = np.clip(shape * 1.5, 0, 1)
    return batch


def bare_spec(width: int, height: int, options: ExrWriteOptions) -> oiio.ImageSpec:
    spec = oiio.ImageSpec(width, height, 4, options.pixel_type)
    spec.channelnames = ("R", "G", "B", "A")
    spec.alpha_channel = 3
    spec.attribute("compression", options.compression_attribute())
    if options.compression == "dwaa":
        spec.attribute("openexr:dwaCompressionLevel", float(options.dwa_level))
    return spec


def bare_write(folder: str, batch: np.ndarray, options: ExrWriteOptions) -> None:
    spec = bare_spec(batch.shape[2], batch.shape[1], options)
    for i, pixels in enumerate(batch):
        path = os.path.join(folder, f"bare.{1001 + i}.exr")
        out = oiio.ImageOutput.create(path)
        assert out.open(path, spec) and out.write_image(pixels) and out.close(), out.geterror()


def bare_read(pattern: str, frames: int) -> None:
    for i in range(frames):
        inp = oiio.ImageInput.open(pattern.replace("####", str(1001 + i)))
        assert inp.read_image(0, 0, 0, 4, "float") is not None, inp.geterror()
        inp.close()


def with_threads(threads: int, run: Callable[..., object], *args) -> Callable[[], object]:
    """``run(*args)`` with ours on ``threads`` I/O threads."""

    def run_with() -> object:
        os.environ[IO_THREADS_VARIABLE] = str(threads)
        try:
            return run(*args)
        finally:
            os.environ.pop(IO_THREADS_VARIABLE)

    return run_with


def nodes_read(pattern: str):
    return LoadEXRSequence().load(pattern, "", "error")


def nodes_write(pattern: str, loaded, compression: str) -> None:
    images, mask, info = loaded
    SaveEXRSequence().save(images, pattern, "half", compression, "overwrite", info, mask=mask)


def best_times(cases: dict, repeats: int = REPEATS) -> dict[str, tuple[float, float]]:
    """Each case's best (wall, CPU) seconds; the cases run interleaved, ``repeats`` rounds."""
    best = dict.fromkeys(cases, (float("inf"), float("inf")))
    for _ in range(repeats):
        for name, run in cases.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            took = (time.perf_counter() - wall, time.process_time() - cpu)
            best[name] = tuple(min(a, b) for a, b in zip(best[name], took, strict=True))
    return best


def compare(what: str, cases: dict) -> float:
    """Print ours (threads, 1 thread) against bare; returns ours (threads) / bare, wall."""
    times = best_times(cases)
    bare_wall, bare_cpu = times["bare"]
    parts = [f"{what}: bare {bare_wall:.2f} s ({bare_cpu:.2f} CPU s)"]
    for name in ("ours", "ours_1"):
        wall, cpu = times[name]
        parts.append(
            f"{name} {wall:.2f} s = {wall / bare_wall:.3f}x ({cpu:.2f} CPU s = "
            f"{cpu / bare_cpu:.3f}x)"
        )
    print(", ".join(parts), flush=True)
    return times["ours"][0] / bare_wall


def bench_size(folder: str, frames: int, width: int, height: int, threads: int) -> dict:
    batch = plate_pixels(frames, width, height)
    ratios = {}
    for compression in COMPRESSIONS:
        options = ExrWriteOptions("half", compression)
        bare_folder = os.path.join(folder, f"{compression}-{width}", "bare")
        ours_pattern = os.path.join(folder, f"{compression}-{width}", "ours", "ours.####.exr")
        os.makedirs(bare_folder)
        bare_write(bare_folder, batch, options)  # the plate both reads decode
        plate = os.path.join(bare_folder, "bare.####.exr")
        ratios[f"read_{compression}"] = compare(
            f"{width}x{height} read  {compression:4}",
            {
                "bare": partial(bare_read, plate, frames),
                "ours": with_threads(threads, nodes_read, plate),
                "ours_1": with_threads(1, nodes_read, plate),
            },
        )
        loaded = nodes_read(plate)
        ratios[f"write_{compression}"] = compare(
            f"{width}x{height} write {compression:4}",
            {
                "bare": partial(bare_write, bare_folder, batch, options),
                "ours": with_threads(threads, nodes_write, ours_pattern, loaded, compression),
                "ours_1": with_threads(1, nodes_write, ours_pattern, loaded, compression),
            },
        )
    return ratios


def main() -> None:
    logging.getLogger("latentmirror").setLevel(logging.ERROR)
    set_host(HeadlessHost(show_progress=False))
    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    threads = io_threads()
    folder = tempfile.mkdtemp(prefix="bench_exr_io-")
    print(f"{frames} frames, RGBA half; ours: {threads} I/O threads; {os.cpu_count()} CPUs; "
          f"OpenImageIO {oiio.VERSION_STRING} ({oiio.get_int_attribute('threads')} threads); "
          f"best of {REPEATS}")  # fmt: skip
    try:
        found = {size: bench_size(folder, frames, *size, threads) for size in SIZES}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    hd = found[SIZES[0]]
    print(
        " ".join(
            f"exr_{kind}_overhead_{c}={hd[f'{kind}_{c}']:.3f}"
            for c in COMPRESSIONS
            for kind in ("read", "write")
        )
    )


if __name__ == "__main__":
    main()
