"""Chained warm frames: the fast schedule's frames after the first, each started from where the
frames before it point.

Warm batches start all their frames from the previous batch's last frame, so frame k of a batch
starts k frames away from its answer and every frame walks the same way again. Here a frame
starts from the latents of the frame before it moved on by that frame's own step from the one
before (constant velocity: a camera move or a performance moves the latents smoothly; on the
benchmark shot this start takes 20 steps to a lower loss than 60 from the plain previous
latents). Frames run side by side in ``slots``, like a pipeline: a frame enters a free slot once
the frame before it has taken ``handoff`` steps (``warm_steps / slots``), starting from the best
latents so far of the frames before it, and leaves after ``warm_steps`` steps or when its own
loss has stalled, keeping its best latents (the step with its lowest loss, tracked on the
device). On the CPU, where an image costs the same in any batch, one slot (each frame starts
from solved neighbours); on a GPU ``batch_size`` slots keep the batch full.

Each slot has its own Adam state, step count and learning-rate schedule (:class:`RowAdam`), so
a new frame starts afresh in a slot while the others go on. Used when frames share nothing
through the loss (no shared noise maps, no temporal term) and frames stop on their own
(``per_frame_stop``); otherwise :mod:`.fast` runs warm batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .run import BestLatents, Run, expand_ws, fast_lr, score_and_descend, stalled
from .settings import InvertSettings


@dataclass
class _Frame:
    """One warm frame's place in the chain."""

    index: int  # in run.targets
    slot: int
    done: int = 0  # steps taken
    losses: list[float] = field(default_factory=list)  # its loss at each step read back


class RowAdam:
    """Adam (the update of ``torch.optim.Adam`` without weight decay) on the rows of one tensor
    ``values [S, ...]``, each row with its own step count and learning rate, so one row can start
    again (a new frame in a slot) while the others go on."""

    def __init__(self, values: torch.Tensor, betas=(0.9, 0.999), eps: float = 1e-8):
        self.values = values  # updated in place
        self.exp_avg = torch.zeros_like(values)
        self.exp_avg_sq = torch.zeros_like(values)
        self.steps = [0] * values.shape[0]
        self.betas, self.eps = betas, eps

    def restart(self, row: int, value: torch.Tensor) -> None:
        """Row ``row`` starts again from ``value``, its moments and step count cleared (carrying
        the frame before's moments over was measured worse on the benchmark shot)."""
        self.values[row] = value
        self.exp_avg[row], self.exp_avg_sq[row], self.steps[row] = 0, 0, 0

    def update(self, rows: list[int], index: torch.Tensor, grad: torch.Tensor, lrs: list[float]):
        """One step of rows ``rows`` (``index``: the same on the device) with gradient ``grad``
        ``[len(rows), ...]`` and each row's learning rate."""
        beta1, beta2 = self.betas
        for row in rows:
            self.steps[row] += 1
        counts = [self.steps[row] for row in rows]
        scalars = _on_device(
            [
                [lr / (1 - beta1**n) for lr, n in zip(lrs, counts, strict=True)],
                [math.sqrt(1 - beta2**n) for n in counts],
            ],
            grad.device,
        )
        shape = (-1,) + (1,) * (grad.ndim - 1)
        exp_avg = self.exp_avg[index].mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq = self.exp_avg_sq[index].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        self.exp_avg[index], self.exp_avg_sq[index] = exp_avg, exp_avg_sq
        denom = (exp_avg_sq.sqrt() / scalars[1].view(shape)).add_(self.eps)
        self.values[index] = self.values[index] - scalars[0].view(shape) * exp_avg / denom


def _on_device(values: list, device: torch.device) -> torch.Tensor:
    """A small host list as a float32 tensor on ``device``, without waiting for the device (a
    plain copy to a CUDA device would wait for the work queued before it)."""
    host = torch.tensor(values, dtype=torch.float32)
    if device.type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)


def chains(settings: InvertSettings, run: Run, start: torch.Tensor | None) -> bool:
    """Whether the warm frames of ``run`` run chained: warm starts on, frames stopping on their
    own, nothing shared by the frames through the loss, no start latents given per frame."""
    per_frame_start = start is not None and start.shape[0] > 1
    return (
        settings.warm_start
        and settings.per_frame_stop
        and settings.space != "w_plus_noise"
        and not run.frames_linked
        and not per_frame_start
    )


def planned_chain_steps(settings: InvertSettings, frames: int, slots: int) -> int:
    """The most optimiser steps the chain of ``frames`` warm frames can take (each enters at
    most ``handoff`` steps after the one before it and runs at most ``warm_steps``)."""
    if frames <= 0:
        return 0
    budget, slots = settings.steps_when_warm, min(slots, frames)
    return (frames - 1) * math.ceil(budget / slots) + budget


def run_chain(run: Run, first: int, start: torch.Tensor, slots: int) -> torch.Tensor:
    """Frames ``first`` .. the last of ``run``, chained from ``start [1, rows, D]`` (the solved
    frame before ``first``) in ``slots`` slots. Returns each frame's best latents
    ``[frames, num_ws, D]``."""
    settings, model = run.settings, run.model
    count = run.targets.shape[0]
    slots = max(1, min(slots, count - first))
    budget = settings.steps_when_warm
    handoff = math.ceil(budget / slots)
    values = start.detach().float().expand(slots, -1, -1).clone()
    adam = RowAdam(values)
    best = BestLatents(values)  # each slot's best latents so far
    solved: dict[int, torch.Tensor] = {}  # frame -> its best latents [rows, D]
    frames: dict[int, _Frame] = {}  # every frame that has entered, by index
    active: dict[int, _Frame] = {}  # slot -> the frame in it
    index = None  # the slots in use on the device, made again when they change
    following, taken = first, 0
    run.begin_batch()
    while active or following < count:
        while (
            following < count
            and len(active) < slots
            and _may_enter(frames, solved, following, handoff)
        ):
            slot = min(set(range(slots)) - set(active))
            adam.restart(slot, _start_of(following, first, start, solved, frames, best))
            best.restart(slot, values[slot])
            frames[following] = active[slot] = _Frame(following, slot)
            following, index = following + 1, None
        in_use = sorted(active)
        if index is None:
            index = torch.tensor(in_use, device=values.device)
        stepping = [active[slot] for slot in in_use]
        w = values[index].requires_grad_(True)
        lrs = [fast_lr(f.done, budget, settings.lr, cold=False) for f in stepping]
        per_frame = score_and_descend(
            run, sum(lrs) / len(lrs), expand_ws(w, model.num_ws), [f.index for f in stepping],
            None, None,
        )  # fmt: skip
        best.offer(index, w.detach(), per_frame)
        with torch.no_grad():
            adam.update(in_use, index, w.grad, lrs)
        taken += 1
        for f in stepping:
            f.done += 1
        if taken % settings.read_every == 0 or any(f.done >= budget for f in stepping):
            for reading in run.read_back():
                for frame, value in zip(reading.indices, reading.per_frame, strict=True):
                    frames[frame].losses.append(value)
        for f in stepping:
            if f.done >= budget or _converged(f, settings):
                solved[f.index] = best.latents[f.slot].clone()
                del active[f.slot]
                index = None
                run.progress.frames_finished(1)
    run.read_back()
    run.progress.skip(planned_chain_steps(settings, count - first, slots) - taken)
    ws = torch.stack([solved[i] for i in range(first, count)])
    return expand_ws(ws, model.num_ws)


def _may_enter(frames: dict[int, _Frame], solved: dict, index: int, handoff: int) -> bool:
    """Frame ``index`` may enter once the frame before it has taken ``handoff`` steps or has
    left (its loss stalled sooner); the first warm frame at once."""
    before = frames.get(index - 1)
    if not frames:
        return True
    return before is not None and (before.done >= handoff or before.index in solved)


def _start_of(index, first, start, solved, frames, best) -> torch.Tensor:
    """Where frame ``index`` starts: the latents of the frame before it, moved on by its step
    from the one before that (when that one is known: ``start`` is the frame before ``first``)."""

    def latents_of(frame: int) -> torch.Tensor:  # solved, or the best so far while in a slot
        if frame == first - 1:
            return start[0]
        return solved[frame] if frame in solved else best.latents[frames[frame].slot]

    before = latents_of(index - 1)
    if index == first:
        return before.clone()
    return 2 * before - latents_of(index - 2)


def _converged(frame: _Frame, settings: InvertSettings) -> bool:
    return stalled(frame.losses, settings.stall_steps, settings.stall_tolerance)
