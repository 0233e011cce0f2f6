"""Benchmark: grouped (``fused_modconv=True``) against plain batched (``False``) modulated
convolution, generator forward+backward, per image, for batch sizes 1, 2, 4, 8.

Models: the bundled 64 px demo model and a 256 px StyleGAN2 (channel_base 16384) with random
weights. One line per (model, batch): ``<res> px batch <n>: grouped <ms>/img plain <ms>/img
ratio <plain/grouped>``. The ratios choose ``prefer_fused_modconv`` in core/gan/ops.py.

Run: ``.venv/bin/python tests/benchmarks/bench_modconv.py [--threads 1] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))

from latentmirror.core.gan.cache import get_model  # noqa: E402
from latentmirror.core.gan.stylegan2 import Generator  # noqa: E402
from latentmirror.host import BUNDLED_MODELS  # noqa: E402

DEMO = os.path.join(BUNDLED_MODELS, "gan", "latentmirror-demo-faces-64.safetensors")


def seconds_per_image(synthesis, num_ws: int, w_dim: int, batch: int, fused: bool, repeats: int):
    """Best of ``repeats`` timings of one forward+backward, divided by the batch."""
    ws = torch.randn(batch, num_ws, w_dim, requires_grad=True)
    best = float("inf")
    for _ in range(repeats + 1):  # the first run warms up
        began = time.perf_counter()
        synthesis(ws, noise_mode="const", fused_modconv=fused).square().mean().backward()
        best = min(best, time.perf_counter() - began)
    return best / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", default="1,2,4,8")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    demo = get_model(DEMO, "cpu", "float32").generator
    g256 = Generator(512, 0, 512, 256, 3, synthesis_kwargs={"channel_base": 16384}).eval()
    for g in (demo, g256):
        g.requires_grad_(False)
        for batch in [int(b) for b in args.batches.split(",")]:
            timing = {
                fused: seconds_per_image(g.synthesis, g.num_ws, g.w_dim, batch, fused, args.repeats)
                for fused in (True, False)
            }
            print(
                f"{g.img_resolution} px batch {batch}: grouped {timing[True] * 1e3:.1f} ms/img "
                f"plain {timing[False] * 1e3:.1f} ms/img ratio {timing[False] / timing[True]:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
