"""What Invert's inputs choose, the schedules' constants, and what a call returns."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .. import fit as fitting
from ..caches import register_cache
from ..errors import error
from ..latents import SPACES, GanLatent
from ..losses import LossMix

SCHEDULES = ("fast", "classic")
PRECISIONS = ("auto", "float32", "bfloat16")

# NVlabs projector constants.
CLASSIC_LR = 0.1
CLASSIC_NOISE_FACTOR = 0.05
CLASSIC_NOISE_RAMP = 0.75
CLASSIC_LR_RAMPDOWN = 0.25
CLASSIC_LR_RAMPUP = 0.05
NOISE_REG_WEIGHT = 1e5

FAST_LR = 0.05
FAST_W_PRIOR = 0.002


@dataclass(frozen=True)
class InvertSettings:
    """What Invert's inputs choose. ``learning_rate``/``warm_steps`` 0 = the schedule's default."""

    space: str = "w_plus"
    steps: int = 300
    schedule: str = "fast"
    seed: int = 0
    batch_size: int = 8
    warm_start: bool = True
    learning_rate: float = 0.0
    fit: str = "stretch"
    tile_overlap: int = 0  # fit "tiles": pixels neighbouring tiles share; 0 = a quarter tile
    warm_steps: int = 0
    # fast: a batch stops when its best loss improved by less than stall_tolerance (relative)
    # over the last stall_steps steps
    stall_steps: int = 20
    stall_tolerance: float = 0.01
    # fast: each frame of a warm batch stops on its own when its loss stalls (the batch stops
    # when all have); False: the batch stops only when its total stalls (the old rule)
    per_frame_stop: bool = True
    # losses are read back from the device every read_every steps (each read waits for it)
    read_every: int = 5
    # the generator's forward and backward under autocast; losses stay float32. auto: bfloat16
    # where the device computes it natively (has_native_bfloat16), float32 elsewhere
    precision: str = "auto"
    # fast, chained warm frames (chain.py): how many run side by side. 0: one on the CPU, where
    # an image costs the same in any batch and a frame solved before the next one starts gives
    # it the nearest start; batch_size on other devices, whose batches run in parallel
    chain_slots: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.space in SPACES, "space", f"one of {SPACES}"),
            (self.schedule in SCHEDULES, "schedule", f"one of {SCHEDULES}"),
            (self.fit in fitting.FIT_MODES, "fit", f"one of {fitting.FIT_MODES}"),
            (self.precision in PRECISIONS, "precision", f"one of {PRECISIONS}"),
            (self.steps >= 1, "steps", ">= 1"),
            (self.batch_size >= 1, "batch_size", ">= 1"),
            (
                self.learning_rate >= 0 and math.isfinite(self.learning_rate),
                "learning_rate",
                ">= 0",
            ),
            (self.warm_steps >= 0, "warm_steps", ">= 0"),
            (self.read_every >= 1, "read_every", ">= 1"),
            (self.chain_slots >= 0, "chain_slots", ">= 0"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise error(f"{name} must be {rule}, got {getattr(self, name)!r}", input=name)

    @property
    def lr(self) -> float:
        return self.learning_rate or (CLASSIC_LR if self.schedule == "classic" else FAST_LR)

    @property
    def steps_when_warm(self) -> int:
        # a fifteenth: a warm frame starts where its neighbours' motion points (chain.py);
        # 20 steps at the default 300 reach a lower loss on the benchmark shot than 60 did
        # from the frame before's latents
        return self.warm_steps or max(10, self.steps // 15)

    def slots_on(self, device: torch.device) -> int:
        """How many chained warm frames run side by side on ``device`` (see ``chain_slots``)."""
        if self.chain_slots:  # never more than a batch (the planned steps count on it)
            return min(self.chain_slots, self.batch_size)
        return 1 if device.type == "cpu" else self.batch_size

    def autocast_dtype(self, device: torch.device) -> torch.dtype | None:
        """The dtype the generator runs in under autocast, or None for plain float32."""
        if self.precision == "bfloat16":
            return torch.bfloat16
        if self.precision == "auto" and has_native_bfloat16(device):
            return torch.bfloat16
        return None

    @property
    def optimises_noise(self) -> bool:
        return self.schedule == "classic" or self.space == "w_plus_noise"

    def optimised_rows(self, model) -> int:
        """Rows of w optimised per frame: one shared by all layers in W, else every layer's."""
        return 1 if self.space == "w" else model.num_ws


def default_mix(settings: InvertSettings) -> LossMix:
    """The mix used when none is connected: the classic recipe's, or LPIPS-VGG plus a W prior."""
    mix = LossMix().add("lpips_vgg", 1.0)
    if settings.schedule == "fast" and settings.space != "w":
        mix = mix.add("w_prior", FAST_W_PRIOR)
    if settings.optimises_noise:
        mix = mix.add("noise_reg", NOISE_REG_WEIGHT)
    return mix


@dataclass
class Callbacks:
    """How a host follows the work. ``on_step(done, planned)``: optimiser steps (planned grows
    smaller when batches stop early); ``on_frame(done, total)``; ``check_interrupt()`` raises to
    stop between steps."""

    on_step: Callable[[int, int], None] | None = None
    on_frame: Callable[[int, int], None] | None = None
    check_interrupt: Callable[[], None] | None = None


@dataclass
class InvertResult:
    latent: GanLatent
    reconstruction: torch.Tensor  # [B, 3, H, W] at plate size, display-referred [0, 1]
    cached: bool = False


def has_native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively: a CUDA GPU that supports it, or a CPU
    with AVX512-BF16 or AMX (bench_invert's shot, the LPIPS backbone in bfloat16 too: 1.32x the
    speed of float32, LPIPS 0.0229 against 0.0223, 32.7 dB from float32's reconstruction).
    Elsewhere bfloat16 is emulated, and slower."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux); none elsewhere, so bfloat16 stays
    off there: float32, the safe choice."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            flags = next((line.split()[2:] for line in info if line.startswith("flags")), [])
    except OSError:
        return frozenset()
    return frozenset(flags)


register_cache("CPU flags", cpu_flags)
