"""The driver: :func:`invert` checks and fits the plate, reuses a cached result or runs the chosen
schedule (once per tile sequence of a ``tiles`` fit), and returns the latents with their
reconstruction at plate size."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, replace

import torch

from .. import fit as fitting
from ..errors import error
from ..latents import GanLatent, LatentCache, cache_key
from ..losses import LossEvaluator, LossMix
from ..reference import (
    Reference,
    ReferenceInversion,
    anchored_start,
    reference_anchors,
    reference_pulls,
)
from ..storage import tensor_digest
from ..synthesis import synthesise_frames
from .chain import chains, planned_chain_steps
from .classic import run_classic
from .fast import run_fast
from .run import Progress, Run
from .settings import Callbacks, InvertResult, InvertSettings, default_mix

_DEFAULT_SETTINGS = InvertSettings()  # frozen, so one instance can be every call's default


# ComfyUI runs nodes under torch.inference_mode(); optimising needs autograd, and tensors made in
# inference mode (the IMAGE, MASK and latents on the wires) are cloned into ordinary ones below.
@torch.inference_mode(False)
@torch.enable_grad()
def invert(
    model,
    images: torch.Tensor,
    settings: InvertSettings = _DEFAULT_SETTINGS,
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

    ``frames``: the frame numbers (default 0..B-1); ``mix``: the loss mix (default
    :func:`~.settings.default_mix`); ``init``: latents to start from (one per frame, or one for
    all); ``cache``: reuse a stored result for the same inputs; ``previous``: the solved frame
    just before these (a chunked render's last frame, one row per tile): the fast schedule starts
    warm from it instead of solving the first frame cold.
    """
    frames = _frame_numbers(images, frames)
    callbacks = callbacks or Callbacks()
    reference = reference or Reference()
    used_mix = mix if mix is not None else default_mix(settings)
    plan, plate, targets = _fit_plate(images, model, settings)
    key = None
    if cache is not None:
        key = _cache_key(model, targets, frames, settings, used_mix, reference, init, previous)
        hit = cache.get(key)
        if hit is not None and hit.ws.shape[0] == len(frames) * plan.tile_count:
            if callbacks.on_frame:
                callbacks.on_frame(len(frames), len(frames))
            return InvertResult(hit, reconstruct(model, hit, plate), cached=True)

    evaluator = LossEvaluator(
        fit_mix(used_mix, plan, len(frames)), model, lpips_folders=lpips_folders,
        device=model.device, allow_random_backbone=allow_random_backbone,
        autocast=settings.autocast_dtype(model.device),
    )  # fmt: skip
    run = _new_run(model, settings, evaluator, targets, callbacks, len(frames), plan.tile_count)
    run.row_frames = [f for f in frames for _ in range(plan.tile_count)]  # a row per target
    inversion = ReferenceInversion(invert, settings, mix, lpips_folders, allow_random_backbone)
    start = _attach_references(run, reference, inversion)
    if init is not None:
        start = _start_from_init(init, model, len(frames) * plan.tile_count)
    run.progress.planned = _planned_steps(run, start, len(frames)) * plan.tile_count

    began = time.perf_counter()
    carried = _previous_rows(previous, model, plan.tile_count)
    solution = _run_streams(run, start, plan.tile_count, carried)
    latent = _solved_latent(
        run, solution, plan, frames, time.perf_counter() - began,
        mix=used_mix, reference=reference, allow_random_backbone=allow_random_backbone,
    )  # fmt: skip
    if cache is not None:
        cache.put(key, latent)
    return InvertResult(latent, reconstruct(model, latent, plate), cached=False)


def reconstruct(model, latent: GanLatent, plate: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """The latents' images at plate size, display-referred [0, 1] ``[B, 3, H, W]`` (CPU): plain
    synthesis with the noise the inversion used, the fit undone."""
    noise_mode = "stored" if latent.noise else "const"
    return synthesise_frames(
        model, latent, latent.ws.float(), noise_mode=noise_mode, batch_size=batch_size, plate=plate
    )


# ----------------------------------------------------------------------------------------------
# The steps of invert().


def _frame_numbers(images: torch.Tensor, frames: Sequence[int] | None) -> list[int]:
    """The images checked (``[B, 3, H, W]``, finite) and their frame numbers (default 0..B-1)."""
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
    return frames


def _fit_plate(images: torch.Tensor, model, settings: InvertSettings):
    """(the fit, the plate as float32, the targets ``[B*T, 3, R, R]`` in [-1, 1] on the device)."""
    plan = fitting.plan_fit(
        settings.fit, images.shape[-2], images.shape[-1], model.resolution, settings.tile_overlap
    )
    plate = images.float().clone()
    return plan, plate, fitting.apply_fit(plate.to(model.device), plan) * 2 - 1


def _cache_key(model, targets, frames, settings, mix, reference, init, previous) -> str:
    """What a cached result must match: the model, targets, settings (and the arithmetic
    ``auto`` precision means on this device), mix, the references that steer inversion, and the
    start latents."""
    return cache_key(
        model=model.content_hash, targets=tensor_digest(targets), frames=frames,
        settings=asdict(settings), autocast=str(settings.autocast_dtype(model.device)),
        mix=mix.fingerprint(),
        reference=reference.fingerprint(("loss_pull", "latent_anchor")),
        init=tensor_digest(init.ws) if init is not None else None,
        previous=tensor_digest(previous.ws) if previous is not None else None,
    )  # fmt: skip


def fit_mix(mix: LossMix, plan: fitting.Fit, frames: int) -> LossMix:
    """Masks drawn on the plate, fitted like the images. For tiles every mask gets a row per
    frame first, so its rows line up with the images (frame-major tiles)."""

    def fitted(mask: torch.Tensor) -> torch.Tensor:
        mask = mask.clone()
        if plan.mode == "tiles" and mask.shape[0] == 1:
            mask = mask.expand(frames, -1, -1)
        return fitting.apply_fit_to_mask(mask, plan)

    return LossMix(tuple(t if t.mask is None else replace(t, mask=fitted(t.mask)) for t in mix))


def _new_run(model, settings, evaluator, targets, callbacks, frames: int, tiles: int) -> Run:
    return Run(
        model, settings, evaluator, targets, torch.Generator().manual_seed(settings.seed),
        Progress(callbacks, 0, frames * tiles),  # steps planned once the start is known
        autocast=settings.autocast_dtype(model.device),
    )  # fmt: skip


def _planned_steps(run: Run, start: torch.Tensor | None, count: int) -> int:
    """The most optimiser steps one stream of ``count`` frames can take (batches that stop
    early take fewer: :meth:`Progress.skip`)."""
    settings = run.settings
    if settings.schedule == "classic":
        return settings.steps * count
    if not settings.warm_start:
        return settings.steps * math.ceil(count / settings.batch_size)
    if chains(settings, run, start):
        slots = settings.slots_on(run.model.device)
        return settings.steps + planned_chain_steps(settings, count - 1, slots)
    return settings.steps + settings.steps_when_warm * math.ceil((count - 1) / settings.batch_size)


def _attach_references(
    run: Run, reference: Reference, inversion: ReferenceInversion
) -> torch.Tensor | None:
    """The references' pulls and anchors added to the run; returns the start latent ``[1, L, D]``
    an anchor asks for, or None."""
    run.pulls = reference_pulls(reference, run.evaluator, run.model)
    run.anchors = reference_anchors(run.model, reference, inversion)
    return anchored_start(run.model, run.anchors)


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


def _previous_rows(previous: GanLatent | None, model, tiles: int) -> torch.Tensor | None:
    """The last solved frame's latents ``[tiles, L, D]`` on the device, checked."""
    if previous is None:
        return None
    if previous.num_ws != model.num_ws or previous.w_dim != model.w_dim or len(previous) < tiles:
        raise error("the previous chunk's latents do not fit this model or tiling")
    return previous.ws[-tiles:].to(model.device).float().clone()


def _run_streams(run: Run, start: torch.Tensor | None, streams: int, previous=None):
    """The schedule over ``streams`` interleaved sequences (the tiles of a "tiles" fit: tile j
    of every frame is one sequence, warm-started and linked in time on its own), results put
    back in frame-major order. Returns (ws, noise or None, per-frame losses)."""

    def schedule(stream_run, stream_start, stream_previous):
        if run.settings.schedule == "classic":
            return run_classic(stream_run, stream_start)
        return run_fast(stream_run, stream_start, stream_previous)

    if streams == 1:
        return schedule(run, start, previous)
    count = run.targets.shape[0] // streams
    parts = []
    for j in range(streams):
        rows = [i * streams + j for i in range(count)]
        stream = replace(
            run,
            targets=run.targets[rows],
            mask_rows=rows,
            row_frames=[run.row_frames[r] for r in rows],
            pending=[],  # its own steps to read back, not the run's
            gathered=None,
        )
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


def _solved_latent(
    run: Run,
    solution,
    plan: fitting.Fit,
    frames: list[int],
    seconds: float,
    *,
    mix: LossMix,
    reference: Reference,
    allow_random_backbone: bool,
) -> GanLatent:
    """The GAN_LATENT of a finished run: its latents, noise and history, per tile of each frame,
    and what made them."""
    ws, noise, frame_loss = solution
    settings = run.settings
    return GanLatent(
        ws=ws.float().cpu(),
        space=settings.space,
        model_hash=run.model.content_hash,
        frames=[f for f in frames for _ in range(plan.tile_count)],
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
            "image_steps": run.progress.image_steps,  # steps times the frames each computed
            "batch_starts": run.batch_starts,
            "settings": asdict(settings),
            "lpips_random_backbone": bool(allow_random_backbone),
            "autocast": str(run.autocast).replace("torch.", "") if run.autocast else "float32",
        },
    )
