"""Benchmark: the fast inversion schedule against NVlabs' classic projector, in one process.

A 16-frame shot (a camera move over a real photo, assets/photos/china.jpg) is inverted with the
bundled 64 px demo model by both schedules, each with its default loss mix:

- classic: W, 1000 steps per frame, one frame at a time, noise optimised per frame;
- fast: W+ with a prior, 300 steps for the first frame, then batches of 8 warm-started from the
  previous frame's solution (60 steps, fewer when the loss stalls), noise fixed.

Both results are scored with the same measure, LPIPS-VGG at the model's size (the classic
recipe's loss without its regulariser), and for temporal stability by the warping error
(core/temporal.py, in display space: the frames are sRGB as the model sees them): the output's
previous frame warped by the plate's optical flow against its frame, where the flow is reliable,
divided by the plate's own warping error (1: moves exactly as the plate; above: flickers, swims or
lags). The last line is::

    speedup_vs_classic=<classic s/frame / fast s/frame> classic_loss=<x> fast_loss=<y>
    warp_ratio_classic=<a> warp_ratio_fast=<b>

Run: ``.venv/bin/python tests/benchmarks/bench_invert.py [--frames 16] [--classic-steps 1000]
[--threads 1]``. LPIPS backbone weights (vgg16-397923af.pth) are read from models/lpips or the
torch hub cache; without them the benchmark says so and uses LPIPS with a random backbone (the
same for both schedules), which is a fair comparison but not the published metric.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

# the checkout's parent, last: `latentmirror` resolves when the pack is not installed, and no
# sibling folder (another node pack, a checkout named like a library) hides an installed package
sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))

from latentmirror.core.frames.camera import camera_move, read_photo  # noqa: E402
from latentmirror.core.gan.cache import get_model  # noqa: E402
from latentmirror.core.invert import InvertSettings, invert  # noqa: E402
from latentmirror.core.losses import LossEvaluator, LossMix  # noqa: E402
from latentmirror.core.perceptual import find_lpips_backbone  # noqa: E402
from latentmirror.core.temporal import PairFlow, plate_flows, temporal_score  # noqa: E402
from latentmirror.host import BUNDLED_MODELS  # noqa: E402

MODEL = os.path.join(BUNDLED_MODELS, "gan", "latentmirror-demo-faces-64.safetensors")
LPIPS_FOLDERS = [os.path.join(BUNDLED_MODELS, "lpips"), "models/lpips"]


def warp_ratio(output: torch.Tensor, plate: torch.Tensor, flows: list[PairFlow]) -> float:
    """The output's warping error / the plate's (display space, ``[B, 3, H, W]`` in [0, 1])."""
    output, plate = (images.permute(0, 2, 3, 1) for images in (output, plate))  # [T, H, W, C]
    return temporal_score(output, plate, "display", flows).ratio


def score(model, output: torch.Tensor, plate: torch.Tensor, random_backbone: bool) -> float:
    """Mean LPIPS-VGG over frames, outputs and plate in [0, 1] at the model's size."""
    evaluate = LossEvaluator(
        LossMix().add("lpips_vgg"), model, lpips_folders=LPIPS_FOLDERS,
        allow_random_backbone=random_backbone,
    )  # fmt: skip
    with torch.no_grad():
        values = [
            evaluate(o[None] * 2 - 1, p[None] * 2 - 1).values["lpips_vgg"]
            for o, p in zip(output, plate, strict=True)
        ]
    return sum(values) / len(values)


def run(name: str, model, plate, flows, settings, random_backbone: bool):
    print(f"{name}: {settings}", flush=True)
    began = time.perf_counter()
    result = invert(
        model, plate, settings, lpips_folders=LPIPS_FOLDERS, allow_random_backbone=random_backbone
    )
    seconds = time.perf_counter() - began
    per_frame = seconds / plate.shape[0]
    loss = score(model, result.reconstruction, plate, random_backbone)
    ratio = warp_ratio(result.reconstruction, plate, flows)
    print(
        f"{name}: {seconds:.1f} s, {per_frame:.2f} s/frame, "
        f"{result.latent.info['steps_run']} steps, lpips {loss:.4f}, warp ratio {ratio:.2f}",
        flush=True,
    )
    return per_frame, loss, ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--classic-steps", type=int, default=1000)
    parser.add_argument("--fast-steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    random_backbone = find_lpips_backbone("vgg", LPIPS_FOLDERS) is None
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu; LPIPS-VGG "
        + (
            "backbone NOT found: random backbone for both schedules"
            if random_backbone
            else "weights found"
        ),
        flush=True,
    )
    model = get_model(MODEL, "cpu", "float32")
    moves = camera_move(read_photo("china.jpg"), args.frames, model.resolution, model.resolution)
    plate = torch.from_numpy(moves).permute(0, 3, 1, 2).contiguous()
    print(f"shot: {args.frames} frames of china.jpg, pan + push-in, {model.resolution} px; {model}")
    flows = plate_flows(plate.permute(0, 2, 3, 1), "display")

    fast = InvertSettings(
        schedule="fast", space="w_plus", steps=args.fast_steps, batch_size=args.batch
    )
    classic = InvertSettings(schedule="classic", space="w", steps=args.classic_steps)
    fast_s, fast_loss, fast_ratio = run("fast", model, plate, flows, fast, random_backbone)
    classic_s, classic_loss, classic_ratio = run(
        "classic", model, plate, flows, classic, random_backbone
    )
    print(
        f"speedup_vs_classic={classic_s / fast_s:.2f} classic_loss={classic_loss:.4f} "
        f"fast_loss={fast_loss:.4f} warp_ratio_classic={classic_ratio:.3f} "
        f"warp_ratio_fast={fast_ratio:.3f}"
    )


if __name__ == "__main__":
    main()
