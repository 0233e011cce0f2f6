"""Benchmark: what the generator's options buy on this machine (issue 13, item 3).

One forward+backward of the bundled 64 px demo model (what an inversion step costs), batch 8,
timed as the best of several rounds, the options interleaved so a loaded machine hurts them
alike:

- ``float32``: the default;
- ``bfloat16``: the generator under CPU autocast in bfloat16 (``InvertSettings(precision=
  "bfloat16")``; losses stay float32). Only useful where the CPU has bfloat16 instructions
  (``torch.backends.cpu.get_cpu_capability()``, ``avx512_bf16``/``amx_bf16`` in /proc/cpuinfo);
- ``channels_last``: the conv weights (and so the activations) in NHWC memory layout;
- ``compile``: forward-only synthesis (resynthesis) through ``torch.compile`` (its compile time
  printed apart).

Last line: ``bf16_speedup=<fp32 s / bf16 s> channels_last_speedup=<..> compile_speedup=<..>
compile_seconds=<..>``. Run: ``.venv/bin/python tests/benchmarks/bench_generator_options.py
[--threads 1] [--no-compile]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))

from latentmirror.core.gan.cache import get_model  # noqa: E402
from latentmirror.core.invert.settings import cpu_flags  # noqa: E402
from latentmirror.host import BUNDLED_MODELS  # noqa: E402

MODEL = os.path.join(BUNDLED_MODELS, "gan", "latentmirror-demo-faces-64.safetensors")


def step_time(synthesis, ws: torch.Tensor, autocast: torch.dtype | None) -> float:
    """Seconds of one forward+backward (an inversion step's generator work)."""
    w = ws.clone().requires_grad_(True)
    began = time.perf_counter()
    with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        image = synthesis(w, noise_mode="const")
    image.float().square().mean().backward()
    return time.perf_counter() - began


def forward_time(synthesis, ws: torch.Tensor) -> float:
    began = time.perf_counter()
    with torch.no_grad():
        synthesis(ws, noise_mode="const")
    return time.perf_counter() - began


def set_layout(synthesis, memory_format: torch.memory_format) -> None:
    """The 4-d weights in ``memory_format`` (conv outputs follow their weights' layout)."""
    with torch.no_grad():
        for parameter in synthesis.parameters():
            if parameter.ndim == 4:
                parameter.data = parameter.data.contiguous(memory_format=memory_format)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    capability = torch.backends.cpu.get_cpu_capability()
    bf16_flags = sorted(f for f in cpu_flags() if "bf16" in f)
    print(f"torch {torch.__version__}, {args.threads} threads, cpu capability {capability}, "
          f"bf16 flags {bf16_flags or 'none'}", flush=True)  # fmt: skip
    model = get_model(MODEL, "cpu", "float32")
    ws = model.mapping(torch.randn(args.batch, model.z_dim), 0.7).detach()
    synthesis = model.synthesis
    with torch.no_grad():
        reference = synthesis(ws, noise_mode="const")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            in_bf16 = synthesis(ws, noise_mode="const").float()
    bf16_error = (in_bf16 - reference).abs().max().item()

    times: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    for _ in range(args.rounds):
        times["float32"].append(step_time(synthesis, ws, None))
        times["bfloat16"].append(step_time(synthesis, ws, torch.bfloat16))
    set_layout(model.generator.synthesis, torch.channels_last)
    times["channels_last"] = [step_time(synthesis, ws, None) for _ in range(args.rounds)]
    set_layout(model.generator.synthesis, torch.contiguous_format)
    times["float32_again"] = [step_time(synthesis, ws, None) for _ in range(args.rounds)]
    best = {name: min(values) for name, values in times.items()}
    fp32 = min(best["float32"], best["float32_again"])
    for name, seconds in best.items():
        print(f"{name}: forward+backward batch {args.batch}: {seconds * 1000:.1f} ms", flush=True)
    print(f"bfloat16 vs float32 output: max abs difference {bf16_error:.4f} (images in [-1, 1])")

    compile_speedup, compile_seconds = float("nan"), float("nan")
    if not args.no_compile:
        compiled = torch.compile(model.generator.synthesis, dynamic=False)
        began = time.perf_counter()
        with torch.no_grad():
            same = compiled(ws, noise_mode="const")
        compile_seconds = time.perf_counter() - began
        plain = min(forward_time(synthesis, ws) for _ in range(args.rounds))
        fast = min(forward_time(compiled, ws) for _ in range(args.rounds))
        compile_speedup = plain / fast
        print(
            f"compile: {compile_seconds:.1f} s to compile; forward batch {args.batch}: "
            f"{plain * 1000:.1f} ms plain, {fast * 1000:.1f} ms compiled; max abs difference "
            f"{(same - reference).abs().max().item():.2e}",
            flush=True,
        )
    print(
        f"bf16_speedup={fp32 / best['bfloat16']:.2f} "
        f"channels_last_speedup={fp32 / best['channels_last']:.2f} "
        f"compile_speedup={compile_speedup:.2f} compile_seconds={compile_seconds:.1f}"
    )


if __name__ == "__main__":
    main()
