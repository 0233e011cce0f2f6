"""GPU benchmark of the generator at 1024 px (tests/benchmarks/gpu_check.sh runs it).

An FFHQ config-f StyleGAN2 (z/w 512, 8 mapping layers, channel_base 32768, channel_max 512,
18 ws) with random weights, built by our code, on the CUDA device. Prints:

- ``invert_fps_1024``: frames/s inverted by the fast schedule (warm batches, default settings,
  LPIPS-VGG with a random backbone: the same work as the real one, nothing downloaded);
- ``resynth_fps_1024``: frames/s of forward-only synthesis (no grad) at the best batch size;
- ``graph_fps_1024`` and ``graph_fps_1080``: frames/s of the resynthesis graph with colour and EXR
  writing (bench_pipeline.py's: Load Latents -> Resynthesize -> OCIO Transform (LUT) -> Save EXR,
  half zip) on this model, at 1024x1024 and 1920x1080;
- ``peak_mem_gib_batch<n>``: peak device memory of one forward+backward per batch size;
- ``flops_fraction``: FLOPs of one generator forward+backward (counted with
  ``torch.utils.flop_counter.FlopCounterMode``) per second, over the device's peak (bfloat16
  dense tensor-core figure from a small table, or ``--peak-tflops``).

``--dry-run``: the same code on a tiny 64 px model on the CPU in seconds (checks the script, not
the device). Last line: ``invert_fps_1024=.. resynth_fps_1024=.. graph_fps_1024=..
graph_fps_1080=.. flops_fraction=..``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))

from latentmirror.core.gan.model import GanModel  # noqa: E402
from latentmirror.core.gan.stylegan2 import Generator  # noqa: E402
from latentmirror.core.invert import InvertSettings, invert  # noqa: E402

sys.path.append(os.path.dirname(__file__))
from bench_pipeline import graph_fps  # noqa: E402

# Dense bfloat16 tensor-core peaks, TFLOP/s (vendor data sheets, SXM parts).
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def build_model(resolution: int, device: str, dry_run: bool) -> GanModel:
    """Config-f StyleGAN2 with random weights (a narrow one for the dry run)."""
    torch.manual_seed(0)
    width = {"channel_base": 1024, "channel_max": 64} if dry_run else {}
    generator = Generator(
        512 if not dry_run else 64, 0, 512 if not dry_run else 64, resolution, 3,
        mapping_kwargs={"num_layers": 8 if not dry_run else 2},
        synthesis_kwargs={"channel_base": 32768, "channel_max": 512, **width},
    )  # fmt: skip
    architecture = {"kind": "stylegan2", "format": "random", "generator": {}, "discriminator": None}
    return GanModel(generator.to(device), None, architecture, f"random-{resolution}", "random")


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def forward_backward(model: GanModel, batch: int, autocast: torch.dtype | None) -> None:
    ws = model.w_avg.detach().reshape(1, 1, -1).repeat(batch, model.num_ws, 1)
    ws = (ws + torch.randn_like(ws)).requires_grad_(True)
    with torch.autocast(model.device.type, dtype=autocast, enabled=autocast is not None):
        image = model.synthesis(ws)
    image.float().square().mean().backward()


def peak_memory(model: GanModel, batches: list[int], autocast) -> dict[int, float]:
    """GiB of device memory at the peak of one forward+backward, per batch size."""
    if model.device.type != "cuda":
        return {}
    peaks = {}
    for batch in batches:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        forward_backward(model, batch, autocast)
        peaks[batch] = torch.cuda.max_memory_allocated() / 2**30
    return peaks


def flops_fraction(model: GanModel, batch: int, autocast, peak_tflops: float | None, device):
    """(FLOPs of one forward+backward, achieved TFLOP/s, fraction of the peak or None)."""
    with FlopCounterMode(display=False) as counter:
        forward_backward(model, batch, autocast)
    flops = counter.get_total_flops()
    forward_backward(model, batch, autocast)  # warm-up
    sync(device)
    repeats, began = 5, time.perf_counter()
    for _ in range(repeats):
        forward_backward(model, batch, autocast)
    sync(device)
    achieved = flops * repeats / (time.perf_counter() - began) / 1e12
    return flops, achieved, (achieved / peak_tflops if peak_tflops else None)


def resynthesis_fps(model: GanModel, batch: int, autocast, device: str, frames: int) -> float:
    ws = model.w_avg.detach().reshape(1, 1, -1).repeat(batch, model.num_ws, 1)
    with torch.no_grad(), torch.autocast(model.device.type, dtype=autocast, enabled=bool(autocast)):
        model.synthesis(ws)  # warm-up
        sync(device)
        began, done = time.perf_counter(), 0
        while done < frames:
            model.synthesis(ws + 0.01 * done).float().cpu()  # the frames reach the host
            done += batch
    return done / (time.perf_counter() - began)


def inversion_fps(model: GanModel, frames: int, batch: int, steps: int) -> float:
    """Frames/s of the fast schedule on a shot the model made itself (a small camera drift)."""
    with torch.no_grad():
        ws = model.w_avg.reshape(1, 1, -1) + 0.5 * torch.randn(
            1, model.num_ws, model.w_dim, device=model.device
        )
        drift = torch.linspace(0, 0.3, frames, device=model.device).reshape(-1, 1, 1)
        images = ((model.synthesis(ws + drift) + 1) / 2).clamp(0, 1).float().cpu()
    settings = InvertSettings(steps=steps, batch_size=batch)
    invert(model, images[:1], InvertSettings(steps=2), allow_random_backbone=True)  # warm-up
    sync(str(model.device.type))
    began = time.perf_counter()
    result = invert(model, images, settings, allow_random_backbone=True)
    seconds = time.perf_counter() - began
    info = result.latent.info
    print(
        f"inversion: {frames} frames, {seconds:.1f} s, {info['steps_run']} steps, "
        f"{info['image_steps'] / frames:.1f} image-steps/frame, autocast {info['autocast']}",
        flush=True,
    )
    return frames / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny model on the CPU")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--frames", type=int, default=33, help="inverted frames")
    args = parser.parse_args()
    device = "cpu" if args.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_bench: no CUDA device (use --dry-run to check the script on the CPU)")
    resolution = 64 if args.dry_run else 1024
    frames = 3 if args.dry_run else args.frames
    batches = [1, 2] if args.dry_run else [1, 2, 4, 8, 16]
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    model = build_model(resolution, device, args.dry_run)
    autocast = InvertSettings().autocast_dtype(model.device)  # what inversion uses here
    print(f"device {name}, {resolution} px, autocast {autocast}, peak {peak} TFLOP/s", flush=True)

    for batch, gib in peak_memory(model, batches, autocast).items():
        print(f"peak_mem_gib_batch{batch}={gib:.2f}", flush=True)
    flops, achieved, fraction = flops_fraction(model, batches[-2], autocast, peak, device)
    print(
        f"forward+backward batch {batches[-2]}: {flops / 1e9:.2f} GFLOP, "
        f"{achieved:.1f} TFLOP/s achieved",
        flush=True,
    )
    resynth = max(
        resynthesis_fps(model, b, autocast, device, frames=2 * b if args.dry_run else 64)
        for b in batches[-3:]
    )
    inverted = inversion_fps(model, frames, batch=8 if not args.dry_run else 2, steps=4 if
                             args.dry_run else 300)  # fmt: skip
    graph = {}
    for name, size in (("1024", (resolution, resolution)), ("1080", (1920, 1080))):
        if args.dry_run:  # the graph's code on small frames
            size = (size[0] // 8, size[1] // 8)
        graph[name] = graph_fps(model, frames=4 if args.dry_run else 64, size=size, chunk=4 if
                                args.dry_run else 16)  # fmt: skip
        print(f"graph {size[0]}x{size[1]}: {graph[name]:.2f} fps", flush=True)
    fraction_text = f"{fraction:.3f}" if fraction is not None else "unknown"
    print(
        f"invert_fps_{resolution}={inverted:.3f} resynth_fps_{resolution}={resynth:.2f} "
        f"graph_fps_1024={graph['1024']:.2f} graph_fps_1080={graph['1080']:.2f} "
        f"flops_fraction={fraction_text}"
    )


if __name__ == "__main__":
    main()
