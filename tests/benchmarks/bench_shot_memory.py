"""Benchmark: peak memory of chunked renders does not grow with the shot's length.

Renders the identity template headless (5 inversion steps: memory, not quality, is measured) over
a 96-frame and a 24-frame plate (256x144, a camera move over a real photo) with the same chunk
size, each in its own process, and reads each process's peak RSS. The last line is
``rss_ratio=<peak RSS for 96 frames / peak RSS for 24 frames>`` (target <= 1.25).

Run: ``.venv/bin/python tests/benchmarks/bench_shot_memory.py [--chunk 8]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(ROOT, "example_workflows", "identity.json")


def write_plate(folder: str, frames: int) -> str:
    spec = importlib.util.spec_from_file_location("demo_plate", f"{ROOT}/installers/demo_plate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_plate(folder, frames, 256, 144, "china.jpg")


def peak_rss_mb(args: list[str]) -> float:
    """Run the CLI in a child process; its peak resident set size in MB (Linux: ru_maxrss KB)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "latentmirror", "render", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"render failed: {args}")
    return usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--preroll", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        plate = write_plate(os.path.join(work, "plate"), 96)
        results = {}
        for frames in (24, 96):
            out = os.path.join(work, f"out{frames}", "r.####.exr")
            rss = peak_rss_mb([
                TEMPLATE, "--frames", f"1001-{1000 + frames}", "--chunk", str(args.chunk),
                "--preroll", str(args.preroll), "--set", f"1.path={plate}",
                "--set", f"10.path={out}", "--set", "7.steps=5", "--set", "7.cache=false",
                "--quiet",
            ])  # fmt: skip
            results[frames] = rss
            setup = f"chunk {args.chunk}, pre-roll {args.preroll}"
            print(f"{frames} frames, {setup}: peak RSS {rss:.0f} MB")
    print(f"rss_ratio={results[96] / results[24]:.3f}")


if __name__ == "__main__":
    main()
