"""The ``fast`` schedule (the default).

Frames in batches on the device. The first frame is solved cold (``steps`` steps); every later
frame starts warm and runs only ``warm_steps`` (a fifteenth of ``steps`` unless set), stopping
early when its loss stalls: chained, each from where the frames before it point (chain.py), or,
when the loss ties frames together, in batches from the previous frame's solution (also across
batches). W+ with a pull toward w_avg; noise maps fixed (the model's) or, in ``w_plus_noise``,
one set shared by all frames and carried from batch to batch, so noise does not flicker.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..synthesis import halve_batch_after_oom, is_retryable_oom, synthesise
from .chain import chains, run_chain
from .run import BestLatents, Run, cold_start, expand_ws, fast_lr, stalled, step, w_noise_scale


@dataclass
class _Batch:
    indices: list[int]
    start: torch.Tensor  # [B, rows, D]
    cold: bool  # full steps and a learning-rate ramp-up
    explore: bool = False  # noise on w early on, as the classic recipe (when starting from w_avg)


def run_fast(run: Run, start: torch.Tensor | None, previous: torch.Tensor | None = None):
    """The frames of ``run`` in batches, each warm-started from the frame before (``previous``:
    the frame before the first). Returns (ws [B, L, D], shared noise maps or None, losses)."""
    model, settings = run.model, run.settings
    count = run.targets.shape[0]
    noise = None
    if settings.space == "w_plus_noise":  # one set for all frames, carried from batch to batch
        sizes = model.noise_layer_sizes().items()
        noise = {n: run.randn(1, 1, r, r).requires_grad_(True) for n, r in sizes}
    batches: list[torch.Tensor] = []
    if previous is not None and settings.warm_start:  # carried over: every batch starts warm
        batches.append(expand_ws(previous, model.num_ws))
    carried = len(batches)
    frame_loss: list[float] = []
    prev = None  # the last solved frame's output and target, for the temporal term
    batch_size, position = settings.batch_size, 0
    chained = chains(settings, run, start)
    while position < count:
        batch = _next_batch(run, start, batches, position, batch_size)
        try:
            if chained and not batch.cold:  # every frame left, each from the one before it
                ws = run_chain(run, position, batch.start[:1], settings.slots_on(model.device))
                indices = list(range(position, count))
            else:
                ws, indices = _invert_batch(run, batch, noise, prev), batch.indices
                run.progress.frames_finished(len(indices))
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not is_retryable_oom(exc):
                raise
            batch_size = halve_batch_after_oom(len(batch.indices), model)
            continue
        with torch.no_grad():
            for at in range(0, len(indices), batch_size):
                part, rows = ws[at : at + batch_size], indices[at : at + batch_size]
                output = synthesise(model, part, noise)
                frame_loss += _per_frame_loss(run, output, rows, part, noise)
        prev = (output[-1:], run.targets[indices[-1] : indices[-1] + 1])
        batches.append(ws)
        position += len(indices)
    if noise:
        noise = {k: v.detach().expand(count, -1, -1, -1).clone() for k, v in noise.items()}
    return torch.cat(batches[carried:]), noise, frame_loss


def _next_batch(run: Run, start, solved: list[torch.Tensor], position: int, size: int) -> _Batch:
    """The batch from frame ``position``: its frames, and where it starts from (``start``: given
    latents; ``solved``: the batches solved so far, the last frame of which a warm batch uses)."""
    settings, count = run.settings, run.targets.shape[0]
    rows = settings.optimised_rows(run.model)
    per_frame_start = start is not None and start.shape[0] > 1  # init_latent for every frame
    # Warm starting: the first frame alone (cold, full steps), then batches from its solution.
    alone = settings.warm_start and not solved and not per_frame_start
    size = 1 if alone else min(size, count - position)
    indices = list(range(position, position + size))
    if per_frame_start:
        return _Batch(indices, start[indices, :rows], cold=False)
    if settings.warm_start and solved:
        return _Batch(indices, solved[-1][-1:, :rows].expand(size, -1, -1), cold=False)
    batch_start = torch.cat([cold_start(run, start, i, False)[:, :rows] for i in indices])
    return _Batch(indices, batch_start, cold=True, explore=start is None)


def _invert_batch(run: Run, batch: _Batch, noise: dict[str, torch.Tensor] | None, prev):
    """Optimise one batch. ``noise``: the shared maps (optimised in place) or None (the model's).
    Returns ws ``[B, L, D]``.

    Losses are read back every ``read_every`` steps. With ``per_frame_stop`` a frame whose own
    loss has stalled keeps its latents from then on and leaves the batch (later steps compute
    only the frames still improving); the batch ends when none is left. Frames that the loss ties
    together (the temporal term, shared noise maps) stop together, when the batch's total stalls.
    """
    model, settings = run.model, run.settings
    steps = settings.steps if batch.cold else settings.steps_when_warm
    run.begin_batch()
    w_opt = batch.start.detach().clone().contiguous().requires_grad_(True)
    params = [w_opt] + (list(noise.values()) if noise else [])
    optimiser = torch.optim.Adam(params, betas=(0.9, 0.999), lr=settings.lr)
    w_spread = model.w_statistics()[1] if batch.explore else 0.0
    alone = settings.per_frame_stop and not noise and not run.frames_linked
    # frames on their own keep their best latents (the step with their lowest loss), tracked on
    # the device; frames tied together by the loss keep their last, which belong together
    best = BestLatents(w_opt) if alone else None
    solved = w_opt.detach().clone()  # rows of the frames that have stopped
    active = list(range(len(batch.indices)))  # batch positions still optimised
    rows = None  # the active positions as a device index (None: all of them)
    totals: list[float] = []  # the batch's total per step
    frame_totals: dict[int, list[float]] = {j: [] for j in active}  # each frame's, per step
    done = 0
    while done < steps and active:
        current = w_opt.detach()[rows] if rows is not None else w_opt.detach().clone()
        ws = expand_ws(w_opt if rows is None else w_opt[rows], model.num_ws)
        exploring = batch.explore and w_noise_scale(w_spread, done / steps, 0.5) > 0
        if exploring:
            ws = ws + run.randn(*ws.shape) * w_noise_scale(w_spread, done / steps, 0.5)
        lr = fast_lr(done, steps, settings.lr, batch.cold)
        frames = [batch.indices[j] for j in active]
        scale = len(active) / len(batch.indices)  # each frame's gradient as in the full batch
        first_prev = prev if active[0] == 0 else None  # the temporal term's previous frame
        losses = step(run, optimiser, lr, ws, frames, noise, first_prev, scale)
        if best is not None and not exploring:  # a noisy w's loss is not its own
            best.offer(rows, current, losses)
        done += 1
        if done % settings.read_every and done < steps:
            continue  # no read back: the device runs ahead
        stopped = _read_and_find_stalled(run, batch.indices[0], active, totals, frame_totals, alone)
        if stopped and done < steps:
            solved[stopped] = w_opt.detach()[stopped]
            active = [j for j in active if j not in stopped]
            rows = torch.tensor(active, device=w_opt.device) if active else None
    run.progress.skip(steps - done)
    if active:
        solved[active] = w_opt.detach()[active]
    return expand_ws(best.latents if best is not None else solved, model.num_ws)


def _read_and_find_stalled(
    run: Run, first: int, active: list[int], totals: list[float], frame_totals, alone: bool
) -> list[int]:
    """Read the pending losses into ``totals`` (the batch's) and ``frame_totals`` (each
    position's); return the active positions to stop: each stalled one when frames stop
    ``alone``, else all of them once the batch's total stalls."""
    for reading in run.read_back():
        totals.append(reading.total)
        for frame, value in zip(reading.indices, reading.per_frame, strict=True):
            frame_totals[frame - first].append(value)
    window, tolerance = run.settings.stall_steps, run.settings.stall_tolerance
    if alone:
        return [j for j in active if stalled(frame_totals[j], window, tolerance)]
    return list(active) if stalled(totals, window, tolerance) else []


def _per_frame_loss(run: Run, output, indices, ws, noise) -> list[float]:
    """Each frame's final total loss (its own terms; the temporal term needs pairs and is 0)."""
    totals = [
        run.loss(output[j : j + 1], [index], ws[j : j + 1], noise, None)[0]
        for j, index in enumerate(indices)
    ]
    return torch.stack(totals).detach().cpu().tolist()  # one read for the batch
