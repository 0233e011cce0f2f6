"""Inversion: finding the latents whose images match a plate's frames.

Two schedules:

``classic``
    NVlabs' projector (stylegan2-ada-pytorch ``projector.py``), for comparison: one frame at a
    time, W space, ``steps`` (1000) Adam steps at lr 0.1 with a 5 % ramp-up and a cosine ramp-down
    over the last 25 %, Gaussian noise on w decaying to zero over the first 75 % (scaled by the
    spread of W, from 10 000 samples of the mapping network with seed 123, whose mean is the
    start), every noise map optimised per frame and re-normalised after each step, LPIPS-VGG16
    at 256 px plus the noise regulariser at 1e5.

``fast`` (the default)
    Frames in batches on the device. The first frame is solved cold (``steps`` steps); every
    later batch starts from the previous frame's solution (also across batches) and runs only
    ``warm_steps`` (a fifth of ``steps`` unless set), stopping early when the loss stalls. W+ with
    a pull toward w_avg; noise maps fixed (the model's) or, in ``w_plus_noise``, one set shared by
    all frames and carried from batch to batch, so noise does not flicker.

:func:`invert` returns a :class:`~.latents.GanLatent` and the reconstruction at plate size.
Everything random comes from one ``torch.Generator`` seeded with ``seed``, so runs repeat.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import torch

from . import fit as fitting
from .errors import LatentmirrorError, error, is_out_of_memory
from .latents import SPACES, GanLatent, LatentCache, cache_key
from .losses import LOSS_TERMS, LossEvaluator, LossMix
from .reference import Reference, ReferencePull, anchor_penalty, parse_layers
from .storage import tensor_digest

SCHEDULES = ("fast", "classic")
PRECISIONS = ("auto", "float32", "bfloat16")

# NVlabs projector constants.
CLASSIC_LR = 0.1
CLASSIC_W_SAMPLES = 10_000
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
    # the generator's forward and backward under autocast; losses stay float32. auto: bfloat16
    # on a CUDA device that supports it (about twice the speed), float32 elsewhere
    precision: str = "auto"

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
        ]
        for ok, name, rule in checks:
            if not ok:
                raise error(f"{name} must be {rule}, got {getattr(self, name)!r}", input=name)

    @property
    def lr(self) -> float:
        return self.learning_rate or (CLASSIC_LR if self.schedule == "classic" else FAST_LR)

    @property
    def steps_when_warm(self) -> int:
        return self.warm_steps or max(10, self.steps // 5)

    def autocast_dtype(self, device: torch.device) -> torch.dtype | None:
        """The dtype the generator runs in under autocast, or None for plain float32."""
        if self.precision == "bfloat16":
            return torch.bfloat16
        if self.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None

    @property
    def optimises_noise(self) -> bool:
        return self.schedule == "classic" or self.space == "w_plus_noise"


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


@dataclass
class _Progress:
    callbacks: Callbacks
    planned: int
    frames: int
    done: int = 0
    frames_done: int = 0

    def step(self) -> None:
        self.done += 1
        if self.callbacks.check_interrupt:
            self.callbacks.check_interrupt()
        if self.callbacks.on_step:
            self.callbacks.on_step(self.done, self.planned)

    def skip(self, count: int) -> None:  # steps a batch did not need
        self.planned -= count

    def frames_finished(self, count: int) -> None:
        self.frames_done += count
        if self.callbacks.on_frame:
            self.callbacks.on_frame(self.frames_done, self.frames)


@dataclass
class _Run:
    """Per-call state shared by the schedules."""

    model: object
    settings: InvertSettings
    evaluator: LossEvaluator
    targets: torch.Tensor  # [B, 3, R, R] in [-1, 1] on the device
    generator: torch.Generator
    progress: _Progress
    pulls: list[ReferencePull] = field(default_factory=list)
    anchors: list[tuple[torch.Tensor, list[int], float]] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)
    batch_starts: list[int] = field(default_factory=list)  # history rows where a batch began
    mask_rows: list[int] | None = None  # the masks' row of each target (tiles); None: the same
    autocast: torch.dtype | None = None  # the generator's autocast dtype (mixed precision)

    def begin_batch(self) -> None:
        self.batch_starts.append(len(self.history.get("total", [])))

    def randn(self, *shape) -> torch.Tensor:
        return torch.randn(*shape, generator=self.generator).to(self.model.device)

    def record(self, total: torch.Tensor, values: dict[str, float], extra: dict[str, float]):
        """One row of the loss history; a label new or silent this step gets NaN elsewhere."""
        step = len(self.history.get("total", []))
        row = {"total": float(total.detach()), **values, **extra}
        for key, value in row.items():
            self.history.setdefault(key, [math.nan] * step).append(value)
        for series in self.history.values():
            if len(series) == step:
                series.append(math.nan)

    def loss(self, output, indices, ws, noise, prev) -> tuple[torch.Tensor, dict[str, float]]:
        """The mix plus the references' pulls and anchors, for frames ``indices``."""
        target = self.targets[indices[0] : indices[-1] + 1]
        prev_out, prev_tgt = prev if prev is not None else (None, None)
        rows = [self.mask_rows[i] for i in indices] if self.mask_rows is not None else indices
        total, values = self.evaluator(
            output, target, ws=ws, noise=noise, prev_output=prev_out, prev_target=prev_tgt,
            mask_indices=rows,
        )  # fmt: skip
        extra = {}
        for i, pull in enumerate(self.pulls):
            value = pull(output)
            total = total + pull.item.strength * value
            extra[f"reference_pull_{i + 1}"] = float(value.detach())
        for i, (anchor, layers, strength) in enumerate(self.anchors):
            value = anchor_penalty(ws, anchor, layers)
            total = total + strength * value
            extra[f"reference_anchor_{i + 1}"] = float(value.detach())
        if not torch.isfinite(total):
            raise error(
                f"the loss became {float(total)} (frames {indices[0]}-{indices[-1]} of the batch); "
                "lower the learning rate or check the input images for NaN/Inf"
            )
        return total, {**values, **extra}


# ----------------------------------------------------------------------------------------------
# Shared pieces.


_W_STATS: dict[tuple[str, str], tuple[torch.Tensor, float]] = {}


def w_statistics(model) -> tuple[torch.Tensor, float]:
    """(mean w ``[w_dim]``, spread) of 10 000 mapped z (seed 123), as NVlabs' projector computes.

    Conditional models use their tracked ``w_avg`` and a spread of 1.
    """
    key = (model.content_hash, str(model.device))
    if key not in _W_STATS:
        if model.c_dim > 0:
            _W_STATS[key] = (model.w_avg.detach().float(), 1.0)
        else:
            gen = torch.Generator().manual_seed(123)
            z = torch.randn(CLASSIC_W_SAMPLES, model.z_dim, generator=gen)
            with torch.no_grad():
                w = torch.cat([model.mapping(chunk)[:, 0].float() for chunk in z.split(2000)])
            mean = w.mean(0)
            spread = float(((w - mean).square().sum() / CLASSIC_W_SAMPLES).sqrt())
            _W_STATS[key] = (mean, spread)
    return _W_STATS[key]


def noise_layer_sizes(model) -> dict[str, int]:
    """Name -> map size of the synthesis layers that take noise (none for StyleGAN3)."""
    layers = getattr(model.generator.synthesis, "noise_layers", dict)()
    return {name: int(layer.resolution) for name, layer in layers.items()}


def _renormalise(noise: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for n in noise.values():
            n -= n.mean(dim=(-2, -1), keepdim=True)
            n *= n.square().mean(dim=(-2, -1), keepdim=True).rsqrt()


def _synthesise(
    model, ws: torch.Tensor, noise: dict[str, torch.Tensor] | None, autocast=None
) -> torch.Tensor:
    """The generator's images; under autocast in ``autocast`` (a dtype) when given."""
    if autocast is None:
        return model.synthesis(ws, noise_mode="const", noise=noise or None)
    with torch.autocast(model.device.type, dtype=autocast):
        images = model.synthesis(ws, noise_mode="const", noise=noise or None)
    return images.float()


def _expand(ws_param: torch.Tensor, num_ws: int) -> torch.Tensor:
    """The optimised tensor ``[B, 1 or num_ws, D]`` as ws ``[B, num_ws, D]``."""
    return ws_param.expand(-1, num_ws, -1) if ws_param.shape[1] == 1 else ws_param


# ----------------------------------------------------------------------------------------------
# The classic schedule.


def _w_noise_scale(spread: float, t: float, ramp: float) -> float:
    """The classic recipe's exploration noise on w: decays to 0 at ``t = ramp`` (t in [0, 1])."""
    return spread * CLASSIC_NOISE_FACTOR * max(0.0, 1.0 - t / ramp) ** 2


def _step(run: _Run, optimiser, lr: float, ws, indices, noise, prev) -> float:
    """One optimiser step of both schedules: synthesise, score, descend, re-normalise the noise
    being optimised, record and report. Returns the step's total loss."""
    for group in optimiser.param_groups:
        group["lr"] = lr
    output = _synthesise(run.model, ws, noise, run.autocast)
    total, values = run.loss(output, indices, ws, noise, prev)
    optimiser.zero_grad(set_to_none=True)
    total.backward()
    optimiser.step()
    if noise:
        _renormalise(noise)
    run.record(total, values, {"lr": lr})
    run.progress.step()
    return float(total.detach())


def _classic_lr(t: float, base: float) -> float:
    ramp = min(1.0, (1.0 - t) / CLASSIC_LR_RAMPDOWN)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return base * ramp * min(1.0, t / CLASSIC_LR_RAMPUP)


def _invert_classic_frame(run: _Run, index: int, start: torch.Tensor):
    """One frame, NVlabs' recipe. ``start [1, L or 1, D]``. Returns (ws [1, L, D], noise, loss)."""
    model, settings = run.model, run.settings
    _, w_spread = w_statistics(model)
    run.begin_batch()
    w_opt = start.detach().clone()[:, : _rows(settings, model)].contiguous().requires_grad_(True)
    noise = {
        n: run.randn(1, 1, r, r).requires_grad_(True) for n, r in noise_layer_sizes(model).items()
    }
    optimiser = torch.optim.Adam([w_opt, *noise.values()], betas=(0.9, 0.999), lr=settings.lr)
    final = math.inf
    for step in range(settings.steps):
        t = step / settings.steps
        w_noise = run.randn(*w_opt.shape) * _w_noise_scale(w_spread, t, CLASSIC_NOISE_RAMP)
        ws = _expand(w_opt + w_noise, model.num_ws)
        final = _step(run, optimiser, _classic_lr(t, settings.lr), ws, [index], noise, None)
    ws = _expand(w_opt.detach(), model.num_ws)
    return ws, {k: v.detach() for k, v in noise.items()}, final


# ----------------------------------------------------------------------------------------------
# The fast schedule.


def _stalled(totals: list[float], window: int, tolerance: float) -> bool:
    """True when the best loss of the last ``window`` steps is less than ``tolerance`` (relative)
    below the best before them. Minima, not last values, so noisy losses do not stop early."""
    if len(totals) <= window:
        return False
    before, recent = min(totals[:-window]), min(totals[-window:])
    return before - recent < tolerance * abs(before)


def _fast_lr(step: int, steps: int, base: float, cold: bool) -> float:
    """Constant, with a short ramp-up when cold and a cosine ramp-down over the last quarter."""
    t = step / steps
    ramp = 0.5 - 0.5 * math.cos(min(1.0, (1.0 - t) / 0.25) * math.pi)
    return base * ramp * (min(1.0, t / CLASSIC_LR_RAMPUP) if cold else 1.0)


@dataclass
class _Batch:
    indices: list[int]
    start: torch.Tensor  # [B, rows, D]
    cold: bool  # full steps and a learning-rate ramp-up
    explore: bool = False  # noise on w early on, as the classic recipe (when starting from w_avg)


def _invert_fast_batch(run: _Run, batch: _Batch, noise: dict[str, torch.Tensor] | None, prev):
    """Optimise one batch. ``noise``: the shared maps (optimised in place) or None (the model's).
    Returns ws ``[B, L, D]``."""
    model, settings = run.model, run.settings
    steps = settings.steps if batch.cold else settings.steps_when_warm
    run.begin_batch()
    w_opt = batch.start.detach().clone().contiguous().requires_grad_(True)
    params = [w_opt] + (list(noise.values()) if noise else [])
    optimiser = torch.optim.Adam(params, betas=(0.9, 0.999), lr=settings.lr)
    w_spread = w_statistics(model)[1] if batch.explore else 0.0
    totals: list[float] = []
    for step in range(steps):
        ws = _expand(w_opt, model.num_ws)
        if batch.explore:
            ws = ws + run.randn(*ws.shape) * _w_noise_scale(w_spread, step / steps, 0.5)
        lr = _fast_lr(step, steps, settings.lr, batch.cold)
        totals.append(_step(run, optimiser, lr, ws, batch.indices, noise, prev))
        if _stalled(totals, settings.stall_steps, settings.stall_tolerance) and step < steps - 1:
            break  # further steps would not pay
    run.progress.skip(steps - len(totals))
    return _expand(w_opt.detach(), model.num_ws)


# ----------------------------------------------------------------------------------------------
# The driver.


def _load_pull_modules(item, evaluator: LossEvaluator, model):
    if LOSS_TERMS[item.distance].lpips_net:
        return evaluator.lpips_module(LOSS_TERMS[item.distance].lpips_net, model.device)
    if item.distance == "d_features" and model.discriminator is None:
        raise error(
            "loss_pull with d_features needs the model's discriminator; this file has none",
            input="reference",
        )
    return None


def _reference_targets(item, model) -> torch.Tensor:
    """An item's references fitted (centre crop) to the model: ``[N, 3, R, R]`` in [-1, 1]."""
    images = item.images.permute(0, 3, 1, 2).to(model.device).clone()
    plan = fitting.plan_fit("crop", images.shape[-2], images.shape[-1], model.resolution)
    return fitting.apply_fit(images, plan) * 2 - 1


_REFERENCE_LATENTS: dict[str, torch.Tensor] = {}


def reference_latent(model, item, settings: InvertSettings, **invert_kwargs) -> torch.Tensor:
    """The mean W+ latent ``[num_ws, w_dim]`` of an item's references, inverted once (fast
    schedule, no references) and remembered for the process."""
    key = cache_key(
        model=model.content_hash, images=item.digest(), steps=settings.steps, seed=settings.seed,
        mix=invert_kwargs.get("mix").fingerprint() if invert_kwargs.get("mix") else None,
    )  # fmt: skip
    if key not in _REFERENCE_LATENTS:
        images = item.images.permute(0, 3, 1, 2)
        ref_settings = replace(
            settings, schedule="fast", space="w_plus", fit="crop", warm_start=False
        )
        result = invert(model, images, ref_settings, **invert_kwargs)
        _REFERENCE_LATENTS[key] = result.latent.ws.mean(0)
    return _REFERENCE_LATENTS[key]


def reference_mix(mix: LossMix | None) -> LossMix | None:
    """The plate's mix for inverting references: masks and the temporal term dropped."""
    if mix is None:
        return None
    kept = [replace(t, mask=None) for t in mix if t.name != "temporal"]
    return LossMix(tuple(kept)) if kept else None


def _fit_mix(mix: LossMix, plan: fitting.Fit, frames: int) -> LossMix:
    """Masks drawn on the plate, fitted like the images. For tiles every mask gets a row per
    frame first, so its rows line up with the images (frame-major tiles)."""

    def fitted(mask: torch.Tensor) -> torch.Tensor:
        mask = mask.clone()
        if plan.mode == "tiles" and mask.shape[0] == 1:
            mask = mask.expand(frames, -1, -1)
        return fitting.apply_fit_to_mask(mask, plan)

    return LossMix(tuple(t if t.mask is None else replace(t, mask=fitted(t.mask)) for t in mix))


# ComfyUI runs nodes under torch.inference_mode(); optimising needs autograd, and tensors made in
# inference mode (the IMAGE, MASK and latents on the wires) are cloned into ordinary ones below.
@torch.inference_mode(False)
@torch.enable_grad()
def invert(
    model,
    images: torch.Tensor,
    settings: InvertSettings = InvertSettings(),
    *,
    mix: LossMix | None = None,
    reference: Reference | None = None,
    init: GanLatent | None = None,
    frames: Sequence[int] | None = None,
    lpips_folders: Sequence[str] = (),
    allow_random_backbone: bool = False,
    callbacks: Callbacks | None = None,
    cache: LatentCache | None = None,
    previous: GanLatent | None = None,
) -> InvertResult:
    """Invert ``images [B, 3, H, W]`` (display-referred, [0, 1]) into ``model``'s latent space.

    ``frames``: the frame numbers (default 0..B-1); ``init``: latents to start from (one per
    frame, or one for all); ``cache``: reuse a stored result for the same inputs;
    ``previous``: the solved frame just before these (a chunked render's last frame, one row per
    tile): the fast schedule starts warm from it instead of solving the first frame cold.
    """
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] == 0:
        raise error(
            f"images must be [B, 3, H, W] with B >= 1, got {list(images.shape)}", input="images"
        )
    if not torch.isfinite(images).all():
        bad = sorted({int(i) for i in torch.nonzero(~torch.isfinite(images))[:, 0]})
        raise error(
            f"images contain NaN or Inf pixels (batch positions {bad[:10]})", input="images"
        )
    frames = list(frames) if frames is not None else list(range(images.shape[0]))
    if len(frames) != images.shape[0]:
        raise error(f"{images.shape[0]} images but {len(frames)} frame numbers")
    callbacks = callbacks or Callbacks()
    reference = reference or Reference()
    mix_given = mix
    mix = mix if mix is not None else default_mix(settings)

    plan = fitting.plan_fit(
        settings.fit, images.shape[-2], images.shape[-1], model.resolution, settings.tile_overlap
    )
    tiles = plan.tile_count  # images per frame: 1, or the tiles of a "tiles" fit
    plate = images.float().clone()
    targets = fitting.apply_fit(plate.to(model.device), plan) * 2 - 1

    key = None
    if cache is not None:
        key = cache_key(
            model=model.content_hash, targets=tensor_digest(targets), frames=frames,
            settings=asdict(settings), mix=mix.fingerprint(),
            reference=reference.fingerprint(("loss_pull", "latent_anchor")),
            init=tensor_digest(init.ws) if init is not None else None,
            previous=tensor_digest(previous.ws) if previous is not None else None,
        )  # fmt: skip
        hit = cache.get(key)
        if hit is not None and hit.ws.shape[0] == len(frames) * tiles:
            recon = reconstruct(model, hit, plate)
            if callbacks.on_frame:
                callbacks.on_frame(len(frames), len(frames))
            return InvertResult(hit, recon, cached=True)

    evaluator = LossEvaluator(
        _fit_mix(mix, plan, len(frames)), model, lpips_folders=lpips_folders, device=model.device,
        allow_random_backbone=allow_random_backbone,
    )  # fmt: skip
    planned = _planned_steps(settings, len(frames)) * tiles
    run = _Run(
        model, settings, evaluator, targets, torch.Generator().manual_seed(settings.seed),
        _Progress(callbacks, planned, len(frames) * tiles),
        autocast=settings.autocast_dtype(model.device),
    )  # fmt: skip
    ref_kwargs = dict(
        mix=reference_mix(mix_given), lpips_folders=lpips_folders,
        allow_random_backbone=allow_random_backbone,
    )  # fmt: skip
    start = _setup_references(run, reference, settings, ref_kwargs)
    if init is not None:
        start = _start_from_init(init, model, len(frames) * tiles)

    began = time.perf_counter()
    carried = _previous_rows(previous, model, tiles)
    ws, noise, frame_loss = _run_streams(run, start, tiles, carried)
    seconds = time.perf_counter() - began

    latent = GanLatent(
        ws=ws.float().cpu(),
        space=settings.space,
        model_hash=model.content_hash,
        frames=[f for f in frames for _ in range(tiles)],
        fit=plan,
        noise={k: v.float().cpu() for k, v in noise.items()} if noise else None,
        schedule=settings.schedule,
        steps=settings.steps,
        seed=settings.seed,
        loss_mix=mix.describe(),
        reference=reference.describe(),
        history=run.history,
        frame_loss=frame_loss,
        info={
            "seconds": seconds,
            "steps_run": run.progress.done,
            "batch_starts": run.batch_starts,
            "settings": asdict(settings),
            "lpips_random_backbone": bool(allow_random_backbone),
            "autocast": str(run.autocast).replace("torch.", "") if run.autocast else "float32",
        },
    )
    if cache is not None:
        cache.put(key, latent)
    return InvertResult(latent, reconstruct(model, latent, plate), cached=False)


def _previous_rows(previous: GanLatent | None, model, tiles: int) -> torch.Tensor | None:
    """The last solved frame's latents ``[tiles, L, D]`` on the device, checked."""
    if previous is None:
        return None
    if previous.num_ws != model.num_ws or previous.w_dim != model.w_dim or len(previous) < tiles:
        raise error("the previous chunk's latents do not fit this model or tiling")
    return previous.ws[-tiles:].to(model.device).float().clone()


def _run_streams(run: _Run, start: torch.Tensor | None, streams: int, previous=None):
    """The schedule over ``streams`` interleaved sequences (the tiles of a "tiles" fit: tile j
    of every frame is one sequence, warm-started and linked in time on its own), results put
    back in frame-major order."""

    def schedule(stream_run, stream_start, stream_previous):
        if run.settings.schedule == "classic":
            return _run_classic(stream_run, stream_start)
        return _run_fast(stream_run, stream_start, stream_previous)

    if streams == 1:
        return schedule(run, start, previous)
    count = run.targets.shape[0] // streams
    parts = []
    for j in range(streams):
        rows = [i * streams + j for i in range(count)]
        stream = replace(run, targets=run.targets[rows], mask_rows=rows)
        stream_start = start[rows] if start is not None and start.shape[0] > 1 else start
        parts.append(
            schedule(stream, stream_start, previous[j : j + 1] if previous is not None else None)
        )
    order = torch.tensor([i * streams + j for j in range(streams) for i in range(count)])
    inverse = torch.argsort(order)  # stream-major results -> frame-major

    def interleave(tensors):
        return torch.cat(tensors)[inverse.to(tensors[0].device)]

    ws = interleave([p[0] for p in parts])
    noise = None
    if parts[0][1]:
        noise = {k: interleave([p[1][k] for p in parts]) for k in parts[0][1]}
    losses = [x for p in parts for x in p[2]]
    return ws, noise, [losses[i] for i in inverse.tolist()]


def _planned_steps(settings: InvertSettings, count: int) -> int:
    if settings.schedule == "classic":
        return settings.steps * count
    if not settings.warm_start:
        return settings.steps * math.ceil(count / settings.batch_size)
    return settings.steps + settings.steps_when_warm * math.ceil((count - 1) / settings.batch_size)


def _setup_references(run: _Run, reference: Reference, settings, ref_kwargs) -> torch.Tensor | None:
    """Build the pulls and anchors; returns a start latent ``[1, L, D]`` when an anchor asks."""
    model, start = run.model, None
    for item in reference.of_mode("loss_pull"):
        module = _load_pull_modules(item, run.evaluator, model)
        run.pulls.append(ReferencePull(item, _reference_targets(item, model), model, module))
    for item in reference.of_mode("latent_anchor"):
        rows = parse_layers(item.layers, model.num_ws, model.resolution)
        anchor = reference_latent(model, item, settings, **ref_kwargs).to(model.device)
        run.anchors.append((anchor, rows, item.strength))
        if item.start:
            base = model.w_avg.detach().float().expand(model.num_ws, -1).clone()
            if start is not None:
                base = start[0].clone()
            base[rows] = anchor[rows]
            start = base[None]
    return start


def _start_from_init(init: GanLatent, model, count: int) -> torch.Tensor:
    if init.num_ws != model.num_ws or init.w_dim != model.w_dim:
        raise error(
            f"init_latent is [{init.num_ws}, {init.w_dim}] per frame but this model needs "
            f"[{model.num_ws}, {model.w_dim}]",
            input="init_latent",
        )
    if len(init) not in (1, count):
        raise error(f"init_latent has {len(init)} frames; give 1 or {count}", input="init_latent")
    return init.ws.to(model.device).float().clone()


def _initial(run: _Run, start: torch.Tensor | None, index: int, classic: bool) -> torch.Tensor:
    """The cold start of frame ``index``: given latents, or the (sampled, for classic) mean w."""
    model = run.model
    if start is not None:
        row = start[index if start.shape[0] > 1 else 0]
        return row[None].float()
    mean = w_statistics(model)[0] if classic else model.w_avg.detach().float()
    return mean.to(model.device).reshape(1, 1, -1).expand(1, model.num_ws, -1).clone()


def _run_classic(run: _Run, start):
    results, noises, losses = [], [], []
    for index in range(run.targets.shape[0]):
        ws, noise, final = _invert_classic_frame(run, index, _initial(run, start, index, True))
        results.append(ws)
        noises.append(noise)
        losses.append(final)
        run.progress.frames_finished(1)
    noise = {k: torch.cat([n[k] for n in noises]) for k in noises[0]} if noises[0] else None
    return torch.cat(results), noise, losses


def _rows(settings: InvertSettings, model) -> int:
    return 1 if settings.space == "w" else model.num_ws


def _run_fast(run: _Run, start, previous: torch.Tensor | None = None):
    model, settings = run.model, run.settings
    count, rows = run.targets.shape[0], _rows(settings, model)
    noise = None
    if settings.space == "w_plus_noise":  # one set for all frames, carried from batch to batch
        sizes = noise_layer_sizes(model).items()
        noise = {n: run.randn(1, 1, r, r).requires_grad_(True) for n, r in sizes}
    batches: list[torch.Tensor] = []
    if previous is not None and settings.warm_start:  # carried over: every batch starts warm
        batches.append(_expand(previous, model.num_ws))
    carried = len(batches)
    frame_loss: list[float] = []
    prev = None  # the last solved frame's output and target, for the temporal term
    batch_size, position = settings.batch_size, 0
    per_frame_start = start is not None and start.shape[0] > 1  # init_latent for every frame
    while position < count:
        warm = settings.warm_start and bool(batches)
        # Warm starting: the first frame alone (cold, full steps), then batches from its solution.
        alone = settings.warm_start and not batches and not per_frame_start
        size = 1 if alone else min(batch_size, count - position)
        indices = list(range(position, position + size))
        if per_frame_start:
            batch_start, cold = start[indices, :rows], False
        elif warm:
            batch_start, cold = batches[-1][-1:, :rows].expand(size, -1, -1), False
        else:
            batch_start = torch.cat([_initial(run, start, i, False)[:, :rows] for i in indices])
            cold = True
        explore = cold and start is None
        try:
            ws = _invert_fast_batch(run, _Batch(indices, batch_start, cold, explore), noise, prev)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if isinstance(exc, LatentmirrorError) or not is_out_of_memory(exc):
                raise
            batch_size = halve_batch_after_oom(size, model)
            continue
        with torch.no_grad():
            output = _synthesise(model, ws, noise)
            frame_loss += _per_frame_loss(run, output, indices, ws, noise)
        prev = (output[-1:], run.targets[indices[-1] : indices[-1] + 1])
        batches.append(ws)
        position += size
        run.progress.frames_finished(size)
    if noise:
        noise = {k: v.detach().expand(count, -1, -1, -1).clone() for k, v in noise.items()}
    return torch.cat(batches[carried:]), noise, frame_loss


def halve_batch_after_oom(size: int, model) -> int:
    """After running out of device memory: the next batch size, or a clear error at one frame."""
    if size == 1:
        raise error(
            f"out of device memory with one {model.resolution} px frame; use dtype float16 or "
            "bfloat16, a smaller model, or a device with more memory",
            input="batch_size",
        ) from None
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return max(1, size // 2)


def _per_frame_loss(run: _Run, output, indices, ws, noise) -> list[float]:
    """Each frame's final total loss (its own terms; the temporal term needs pairs and is 0)."""
    out = []
    for j, index in enumerate(indices):
        total, _ = run.loss(output[j : j + 1], [index], ws[j : j + 1], noise, None)
        out.append(float(total))
    return out


def reconstruct(model, latent: GanLatent, plate: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """The latents' images at plate size, display-referred [0, 1] ``[B, 3, H, W]`` (CPU): plain
    resynthesis with the noise the inversion used."""
    from .resynth import ResynthSettings, resynthesize

    noise_mode = "stored" if latent.noise else "const"
    settings = ResynthSettings(noise_mode=noise_mode, batch_size=batch_size)
    return resynthesize(model, latent, settings, plate=plate)
