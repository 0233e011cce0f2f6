"""Benchmark: the faults a farm meets, then a resume; nothing lost, stale, partial or ugly.

Renders the identity template headless (12 frames of the demo's photo plate, 256x144, a short
inversion) through the CLI, each run in its own process, and injects faults:

- SIGKILL at a random moment, 20 times in a row (each run resumes the previous one), then a
  clean resume;
- a truncated output frame, then a resume;
- a look change (Resynthesize truncation), then a resume with ``existing=skip``, chunked and not;
- two renders writing the same frames at once (``existing=overwrite``);
- a full disk at five sizes: a small tmpfs where one can be mounted (root), else a file-size
  limit (EFBIG).

Outputs are checked with OpenImageIO alone (every pixel decoded). Counted: ``frames_lost``
(a frame missing or undecodable after the resume), ``stale_kept`` (a frame bit-identical to the
old look after a look change), ``partial_left`` (an undecodable file under a final name, or a
temporary left after a run that ended), ``tracebacks`` (any Python traceback on stderr).
The last line is ``faults_tried=<n> frames_lost=<n> stale_kept=<n> partial_left=<n>
tracebacks=<n>``.

Run: ``.venv/bin/python tests/benchmarks/bench_faults.py [--kills 20] [--seed 1]``.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import OpenImageIO as oiio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(ROOT, "example_workflows", "identity.json")
FRAMES = list(range(1001, 1013))
FRAME_RANGE = f"{FRAMES[0]}-{FRAMES[-1]}"


@dataclass
class Tally:
    faults_tried: int = 0
    frames_lost: int = 0
    stale_kept: int = 0
    partial_left: int = 0
    tracebacks: int = 0

    def line(self) -> str:
        return " ".join(f"{name}={value}" for name, value in vars(self).items())


def write_plate(folder: str) -> str:
    spec = importlib.util.spec_from_file_location("demo_plate", f"{ROOT}/installers/demo_plate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_plate(folder, len(FRAMES), 256, 144, "china.jpg")


def render_command(plate: str, out: str, *extra: str, sets: tuple[str, ...] = ()) -> list[str]:
    settings = [f"1.path={plate}", f"10.path={out}", "7.steps=20", "7.cache=false", *sets]
    return [
        sys.executable, "-m", "latentmirror", "render", TEMPLATE, "--frames", FRAME_RANGE,
        *[a for s in settings for a in ("--set", s)], "--quiet", *extra,
    ]  # fmt: skip


def start(command: list[str], limit_file_size: int | None = None) -> subprocess.Popen:
    def limit() -> None:  # Python ignores SIGXFSZ, so writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        preexec_fn=limit if limit_file_size else None,
    )  # fmt: skip


def finish(process: subprocess.Popen, tally: Tally, what: str) -> tuple[int, str]:
    """Wait for ``process``; its exit code and stderr (a traceback in it is counted)."""
    _, stderr = process.communicate()
    if "Traceback" in stderr:
        tally.tracebacks += 1
        print(f"  traceback in {what}:\n{stderr[-1500:]}")
    return process.returncode, stderr


def run(command: list[str], tally: Tally, what: str, **options) -> tuple[int, str]:
    return finish(start(command, **options), tally, what)


def decoded(path: str) -> np.ndarray | None:
    """Every pixel of an EXR, read with OIIO alone; None when it does not decode."""
    image = oiio.ImageInput.open(path)
    if image is None:
        return None
    try:
        pixels = image.read_image(0, 0, 0, image.spec().nchannels, "float")
        return None if pixels is None else np.asarray(pixels)
    finally:
        image.close()


def frame_path(out: str, frame: int) -> str:
    return out.replace("####", f"{frame:04d}")


def temporaries(out: str) -> list[str]:
    """Hidden files beside the frames: what an atomic writer leaves when it is killed."""
    return glob.glob(os.path.join(os.path.dirname(out), ".*"))


def partial_frames(out: str) -> list[str]:
    """Files under a final frame name that do not decode completely."""
    return [p for p in sorted(glob.glob(out.replace("####", "*"))) if decoded(p) is None]


def check_resumed(out: str, tally: Tally, what: str) -> None:
    """After a run that ended by itself: every frame there and whole, no temporary left."""
    lost = [f for f in FRAMES if decoded(frame_path(out, f)) is None]
    left = partial_frames(out) + temporaries(out)
    tally.frames_lost += len(lost)
    tally.partial_left += len(left)
    if lost or left:
        print(f"  {what}: lost {lost}, left {left}")


# ----------------------------------------------------------------------------------------------
# The faults.


def sigkill_runs(plate: str, work: str, kills: int, rng: random.Random, tally: Tally) -> None:
    out = os.path.join(work, "killed", "k.####.exr")
    command = render_command(plate, out, "--chunk", "2", "--preroll", "1")
    started = time.perf_counter()
    run(command, tally, "first full render")
    full = time.perf_counter() - started
    for attempt in range(kills):
        for frame in rng.sample(FRAMES, 4):  # frames to render again, so kills land mid-write
            if os.path.exists(frame_path(out, frame)):
                os.remove(frame_path(out, frame))
        process = start(command)
        time.sleep(rng.uniform(0.3, full))
        process.send_signal(signal.SIGKILL)
        finish(process, tally, f"killed run {attempt + 1}")
        tally.faults_tried += 1
        partial = partial_frames(out)  # a killed writer may leave temporaries, never a torn frame
        tally.partial_left += len(partial)
        if partial:
            print(f"  kill {attempt + 1}: torn frames under final names {partial}")
    code, stderr = run(command, tally, "resume after kills")
    if code != 0:
        print(f"  resume after kills failed ({code}): {stderr[-800:]}")
    check_resumed(out, tally, "after kills")
    print(f"{kills} SIGKILLs at random points (a full render takes {full:.1f} s), then a resume")


def truncated_frame(plate: str, work: str, tally: Tally) -> None:
    out = os.path.join(work, "truncated", "t.####.exr")
    command = render_command(plate, out, "--chunk", "4")
    run(command, tally, "render before truncation")
    for frame in (1003, 1010):
        path = frame_path(out, frame)
        with open(path, "r+b") as file:
            file.truncate(os.path.getsize(path) // 2)
    tally.faults_tried += 1
    run(command, tally, "resume after truncation")
    check_resumed(out, tally, "after truncation")
    print("truncated two output frames, then a resume")


def look_change(plate: str, work: str, tally: Tally, chunked: bool) -> None:
    out = os.path.join(work, f"look{int(chunked)}", "l.####.exr")
    extra = ("--chunk", "3") if chunked else ()
    run(render_command(plate, out, *extra), tally, "render of the first look")
    before = {f: decoded(frame_path(out, f)) for f in FRAMES}
    tally.faults_tried += 1
    new_look = ("8.truncation=0.6",)
    code, stderr = run(render_command(plate, out, *extra, sets=new_look), tally, "look change")
    if code != 0:
        print(f"  look change render failed ({code}): {stderr[-800:]}")
    stale = [
        f for f in FRAMES if (now := decoded(frame_path(out, f))) is not None
        and before[f] is not None and np.array_equal(now, before[f])
    ]  # fmt: skip
    tally.stale_kept += len(stale)
    how = "--chunk 3" if chunked else "one pass"
    if stale:
        print(f"  look change ({how}): old frames kept {stale}")
    check_resumed(out, tally, "after the look change")
    print(f"changed the look, then a resume with existing=skip ({how})")


def concurrent_writers(plate: str, work: str, tally: Tally) -> None:
    out = os.path.join(work, "concurrent", "c.####.exr")
    command = render_command(plate, out, sets=("10.existing=overwrite",))
    first, second = start(command), start(command)
    codes = [finish(first, tally, "writer 1")[0], finish(second, tally, "writer 2")[0]]
    tally.faults_tried += 1
    if codes != [0, 0]:
        print(f"  concurrent writers exited {codes}")
        tally.frames_lost += sum(1 for c in codes if c != 0)
    check_resumed(out, tally, "after two concurrent writers")
    print("two renders writing the same frames at once")


def full_disk(plate: str, work: str, tally: Tally, size_kb: int) -> None:
    """The volume fills part-way through the shot: the render must fail (never exit 0) and
    leave no torn frame and no temporary. Several sizes, so the disk fills at different points
    of a frame (its last flush included)."""
    folder = os.path.join(work, f"small-disk-{size_kb}")
    os.makedirs(folder)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", folder]
    mounted = subprocess.run(mount, capture_output=True).returncode == 0
    out = os.path.join(folder, "d.####.exr")
    try:
        limit = None if mounted else size_kb * 1024
        code, stderr = run(render_command(plate, out), tally, "full disk", limit_file_size=limit)
        tally.faults_tried += 1
        how = f"a {size_kb} KB tmpfs" if mounted else f"a {size_kb} KB file-size limit (EFBIG)"
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        print(f"full disk on {how}: exit {code}; {last[:160]}")
        left = partial_frames(out) + temporaries(out)
        tally.partial_left += len(left)
        if left:
            print(f"  full disk left {left}")
        if code == 0:  # a full disk must never look like a finished render
            tally.frames_lost += sum(1 for f in FRAMES if decoded(frame_path(out, f)) is None)
    finally:
        if mounted:
            subprocess.run(["umount", folder], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    tally = Tally()
    with tempfile.TemporaryDirectory() as work:
        plate = write_plate(os.path.join(work, "plate"))
        sigkill_runs(plate, work, args.kills, random.Random(args.seed), tally)
        truncated_frame(plate, work, tally)
        look_change(plate, work, tally, chunked=False)
        look_change(plate, work, tally, chunked=True)
        concurrent_writers(plate, work, tally)
        for size_kb in (250, 300, 350, 400, 600):
            full_disk(plate, work, tally, size_kb)
    print(tally.line())


if __name__ == "__main__":
    main()
