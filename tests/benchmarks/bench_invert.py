"""Benchmark: the fast inversion schedule against NVlabs' classic projector, in one process.

A 16-frame shot (a camera move over a real photo, assets/photos/china.jpg) is inverted with the
bundled 64 px demo model by both schedules, each with its default loss mix:

- classic: W, 1000 steps per frame, one frame at a time, noise optimised per frame, float32 (as
  NVlabs' projector);
- fast: W+ with a prior, 300 steps for the first frame, then every frame chained from the ones
  before it (starting where their motion points, 20 steps; a frame whose loss stalls stops on its
  own), noise fixed, precision ``auto`` (bfloat16 on a CPU or GPU with bfloat16 units);
- fast_before: the fast schedule as it was before chaining: batches of 8 warm-started from the
  previous frame's solution, 60 steps, the batch stopping only when its total stalls, losses read
  at every step, float32; for the before/after figures.

Both results are scored with the same measure, LPIPS-VGG at the model's size (the classic
recipe's loss without its regulariser), and for temporal stability by the warping error
(core/temporal.py, in display space: the frames are sRGB as the model sees them): the output's
previous frame warped by the plate's optical flow against its frame, where the flow is reliable,
divided by the plate's own warping error (1: moves exactly as the plate; above: flickers, swims or
lags). The last line is::

    speedup_vs_classic=<classic s/frame / fast s/frame> classic_loss=<x> fast_loss=<y>
    speedup_vs_classic=<classic s/frame / fast s/frame> classic_loss=<x> fast_loss=<y>
    warp_ratio_classic=<a> warp_ratio_fast=<b> image_steps_per_frame=<fast> fast_before_loss=<z>
    image_steps_per_frame_before=<fast_before> speedup_vs_before=<fast_before s / fast s>
    [bf16_loss=<x> fp32_loss=<y> bf16_psnr_vs_fp32=<dB> bf16_speedup=<r>]  (with --bf16)

(image-steps: optimiser steps times the frames each one computed.)

Run: ``.venv/bin/python tests/benchmarks/bench_invert.py [--frames 16] [--classic-steps 1000]
[--classic-frames N] [--threads 1]``. LPIPS backbone weights (vgg16-397923af.pth) are read from
models/lpips or the torch hub cache; without them the benchmark says so and uses LPIPS with a
random backbone (the same for both schedules), which is a fair comparison but not the published
metric.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import replace

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
    frames = plate.shape[0]  # classic may run on the first frames only
    ratio = (
        warp_ratio(result.reconstruction, plate, flows[: frames - 1]) if frames > 1 else math.nan
    )
    image_steps = result.latent.info["image_steps"] / plate.shape[0]
    print(
        f"{name}: {seconds:.1f} s, {per_frame:.2f} s/frame, "
        f"{result.latent.info['steps_run']} steps, {image_steps:.1f} image-steps/frame, "
        f"lpips {loss:.4f}, warp ratio {ratio:.2f}, autocast {result.latent.info['autocast']}",
        flush=True,
    )
    return per_frame, loss, result, image_steps, ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--classic-steps", type=int, default=1000)
    parser.add_argument(
        "--classic-frames", type=int, default=0,
        help="classic on the first N frames only (0: all); s/frame stays comparable, since "
        "classic solves each frame on its own, but classic_loss is over those frames",
    )  # fmt: skip
    parser.add_argument("--fast-steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--bf16", action="store_true",
        help="also the fast schedule in the precision auto did not choose (float32 where the "
        "device has bfloat16 units, else bfloat16): both losses, the PSNR between their "
        "reconstructions and bfloat16's speed-up",
    )  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # a random LPIPS backbone is the same from run to run
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
    # the recipe before chaining: warm batches of a fifth of the steps, stopped together
    before = replace(
        fast, per_frame_stop=False, read_every=1, warm_steps=args.fast_steps // 5,
        precision="float32",
    )  # fmt: skip
    # NVlabs' projector as it is: float32
    classic = InvertSettings(
        schedule="classic", space="w", steps=args.classic_steps, precision="float32"
    )
    fast_s, fast_loss, fast_result, fast_steps, fast_ratio = run(
        "fast", model, plate, flows, fast, random_backbone
    )
    before_s, before_loss, _, before_steps, _ = run(
        "fast_before", model, plate, flows, before, random_backbone
    )
    classic_plate = plate[: args.classic_frames or None]
    classic_s, classic_loss, _, _, classic_ratio = run(
        "classic", model, classic_plate, flows, classic, random_backbone
    )
    bf16 = ""
    if args.bf16:  # the fast schedule in the precision auto did not choose here
        in_bf16 = fast.autocast_dtype(model.device) is None
        other = replace(fast, precision="bfloat16" if in_bf16 else "float32")
        other_s, other_loss, other_result, _, _ = run(
            f"fast_{other.precision}", model, plate, flows, other, random_backbone
        )
        error = (other_result.reconstruction - fast_result.reconstruction).square().mean()
        bf16_loss, fp32_loss = (other_loss, fast_loss) if in_bf16 else (fast_loss, other_loss)
        bf16_s, fp32_s = (other_s, fast_s) if in_bf16 else (fast_s, other_s)
        bf16 = (
            f" bf16_loss={bf16_loss:.4f} fp32_loss={fp32_loss:.4f} "
            f"bf16_psnr_vs_fp32={10 * torch.log10(1 / error):.1f} "
            f"bf16_speedup={fp32_s / bf16_s:.2f}"
        )
    print(
        f"speedup_vs_classic={classic_s / fast_s:.2f} classic_loss={classic_loss:.4f} "
        f"fast_loss={fast_loss:.4f} "
        f"warp_ratio_classic={classic_ratio:.3f} warp_ratio_fast={fast_ratio:.3f} "
        f"image_steps_per_frame={fast_steps:.1f} fast_before_loss={before_loss:.4f} "
        f"image_steps_per_frame_before={before_steps:.1f} "
        f"speedup_vs_before={before_s / fast_s:.2f}{bf16}"
    )


if __name__ == "__main__":
    main()
