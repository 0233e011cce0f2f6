"""What both schedules share: the per-call state (:class:`Run`), the loss and its history, the
optimiser step, and the start latents."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from ..errors import error
from ..losses import LossEvaluator, LossResult
from ..reference import Anchor, ReferencePull
from ..synthesis import synthesise
from .settings import CLASSIC_LR_RAMPUP, CLASSIC_NOISE_FACTOR, Callbacks, InvertSettings


@dataclass
class Progress:
    callbacks: Callbacks
    planned: int
    frames: int
    done: int = 0
    frames_done: int = 0
    image_steps: int = 0  # optimiser steps times the frames each one computed

    def step(self, images: int = 1) -> None:
        self.done += 1
        self.image_steps += images
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


class Reading(NamedTuple):
    """One step's losses read back from the device."""

    indices: list[int]  # the frames the step computed
    total: float  # the batch's total (what was minimised)
    per_frame: list[float]  # each frame's weighted total, in ``indices`` order


@dataclass
class _Pending:
    """One step's losses, still on the device (read back in bulk by :meth:`Run.read_back`)."""

    indices: list[int]
    lr: float
    total: torch.Tensor  # []
    result: LossResult
    extra: dict[str, torch.Tensor]  # the references' pulls and anchors, each []

    def on_device(self) -> torch.Tensor:
        """[total, each term, each extra, each frame's total] as one float32 vector."""
        extra = [v.reshape(1) for v in self.extra.values()]
        parts = [self.total.reshape(1), self.result.terms, *extra, self.result.per_frame]
        return torch.cat([p.float() for p in parts])


@dataclass
class Run:
    """Per-call state shared by the schedules."""

    model: object
    settings: InvertSettings
    evaluator: LossEvaluator
    targets: torch.Tensor  # [B, 3, R, R] in [-1, 1] on the device
    generator: torch.Generator
    progress: Progress
    pulls: list[ReferencePull] = field(default_factory=list)
    anchors: list[Anchor] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)
    batch_starts: list[int] = field(default_factory=list)  # history rows where a batch began
    mask_rows: list[int] | None = None  # the masks' row of each target (tiles); None: the same
    autocast: torch.dtype | None = None  # the generator's autocast dtype (mixed precision)
    pending: list[_Pending] = field(default_factory=list)  # steps not read back yet
    gathered: tuple | None = None  # (targets, frames, their rows): one tensor while reused
    row_frames: list[int] | None = None  # each target row's frame number (curves, errors)

    def begin_batch(self) -> None:
        self.read_back()
        self.batch_starts.append(len(self.history.get("total", [])))

    def randn(self, *shape) -> torch.Tensor:
        return torch.randn(*shape, generator=self.generator).to(self.model.device)

    @property
    def frames_linked(self) -> bool:
        """The loss ties frames together (the temporal term), so none may stop on its own."""
        return any(term.name == "temporal" for term in self.evaluator.mix)

    def record(self, step: _Pending) -> None:
        """Keep one step's losses on the device until the next :meth:`read_back`."""
        self.pending.append(step)

    def read_back(self) -> list[Reading]:
        """Every pending step's losses in one transfer from the device: appended to the history
        (a label new or silent in a step gets NaN elsewhere) and returned. A loss that is not
        finite is refused here, at most ``read_every`` steps after it happened."""
        pending, self.pending = self.pending, []
        if not pending:
            return []
        flat = torch.cat([p.on_device() for p in pending]).cpu().tolist()
        readings, at = [], 0
        for p in pending:
            labels = ["total", *p.result.labels, *p.extra]
            numbers = flat[at : at + len(labels)]
            per_frame = flat[at + len(labels) : at + len(labels) + len(p.indices)]
            at += len(labels) + len(p.indices)
            if not math.isfinite(numbers[0]):
                self._refuse_not_finite(numbers[0], p.indices, per_frame)
            self._append_row({**dict(zip(labels, numbers, strict=True)), "lr": p.lr})
            readings.append(Reading(p.indices, numbers[0], per_frame))
        return readings

    def frame_number(self, index: int) -> int:
        """The frame number of target ``index`` (of this stream, for a tile sequence: a stream's
        ``row_frames`` are its own targets', as the loss reads them for curves)."""
        if self.row_frames:
            return self.row_frames[index]
        return self.mask_rows[index] if self.mask_rows is not None else index

    def _refuse_not_finite(self, total: float, indices: list[int], per_frame: list[float]):
        """The error for a loss that is not finite, naming the first frame whose own loss is not
        (or the batch's first frame, when only a term shared by the batch is not)."""
        bad = [i for i, value in zip(indices, per_frame, strict=True) if not math.isfinite(value)]
        frame = self.frame_number((bad or indices)[0])
        raise error(
            f"the loss became {total} while inverting frame {frame}; lower the learning rate or "
            "check the input images for NaN/Inf",
            frame=frame,
        )

    def _append_row(self, row: dict[str, float]) -> None:
        step = len(self.history.get("total", []))
        for key, value in row.items():
            self.history.setdefault(key, [math.nan] * step).append(value)
        for series in self.history.values():
            if len(series) == step:
                series.append(math.nan)

    def target_rows(self, indices: list[int]) -> torch.Tensor:
        """The targets of frames ``indices``: a slice when they are consecutive, else one
        gathered tensor reused while the frames stay the same (the evaluator caches the target's
        features while it is handed the same tensor)."""
        if indices == list(range(indices[0], indices[-1] + 1)):
            return self.targets[indices[0] : indices[-1] + 1]
        key = tuple(indices)
        if self.gathered is None or self.gathered[0] is not self.targets or self.gathered[1] != key:
            self.gathered = (self.targets, key, self.targets[list(indices)])
        return self.gathered[2]

    def loss(self, output, indices, ws, noise, prev) -> tuple[torch.Tensor, LossResult, dict]:
        """The mix plus the references' pulls and anchors, for frames ``indices``: (the total,
        the mix's result, the pulls' and anchors' values), all on the device."""
        target = self.target_rows(indices)
        prev_out, prev_tgt = prev if prev is not None else (None, None)
        rows = [self.mask_rows[i] for i in indices] if self.mask_rows is not None else indices
        frames = [self.row_frames[i] for i in indices] if self.row_frames is not None else None
        result = self.evaluator(
            output, target, ws=ws, noise=noise, prev_output=prev_out, prev_target=prev_tgt,
            mask_indices=rows, frames=frames,
        )  # fmt: skip
        total = result.total
        extra = {}
        for i, pull in enumerate(self.pulls):
            value, weighted = _pull_terms(pull.item, pull, pull.per_frame, output, frames)
            total = total + weighted
            extra[f"reference_pull_{i + 1}"] = value.detach()
        for i, anchor in enumerate(self.anchors):
            value, weighted = _pull_terms(
                anchor.item, anchor.penalty, anchor.penalty_per_frame, ws, frames
            )
            total = total + weighted
            extra[f"reference_anchor_{i + 1}"] = value.detach()
        return total, result, extra


def _pull_terms(item, whole, per_frame, batch, frames) -> tuple[torch.Tensor, torch.Tensor]:
    """A reference pull or anchor: (its unweighted value, its weighted part of the total).
    ``whole``: the batch's value ``[]``; ``per_frame``: one value per row ``[B]``, weighted by
    the strength curve at each row's frame number when the item has one."""
    if item.strength_curve is None:
        value = whole(batch)
        return value, item.strength * value
    if frames is None:
        raise error("a strength curve needs the frame number of every image")
    values = per_frame(batch)
    return values.mean(), (item.strength_at(frames, values.device) * values).mean()


class BestLatents:
    """Each frame's latents at its lowest loss so far, kept on the device (no wait for the
    losses). Until a frame has a loss, its start."""

    def __init__(self, start: torch.Tensor):
        self.latents = start.detach().clone()
        self.loss = torch.full((start.shape[0],), math.inf, device=start.device)

    @torch.no_grad()
    def offer(self, rows: torch.Tensor | None, latents: torch.Tensor, losses: torch.Tensor):
        """``latents`` of the frames at ``rows`` (None: all) had ``losses``: keep the better."""
        rows = rows if rows is not None else slice(None)
        better = losses < self.loss[rows]
        self.loss[rows] = torch.where(better, losses, self.loss[rows])
        shape = (-1,) + (1,) * (latents.ndim - 1)
        self.latents[rows] = torch.where(better.view(shape), latents, self.latents[rows])

    def restart(self, row: int, latents: torch.Tensor) -> None:
        """Row ``row`` holds a new frame, starting at ``latents``."""
        self.latents[row] = latents
        self.loss[row] = math.inf


def step(
    run: Run, optimiser, lr: float, ws, indices, noise, prev, grad_scale: float = 1.0
) -> torch.Tensor:
    """One optimiser step of both schedules: :func:`score_and_descend`, then the optimiser's
    update and the noise being optimised re-normalised. ``grad_scale`` scales the gradient only
    (a batch whose frames have partly stopped keeps each frame's gradient as it was: Adam would
    otherwise take larger steps on the rest). Returns each frame's loss ``[B]`` (on the device)."""
    for group in optimiser.param_groups:
        group["lr"] = lr
    optimiser.zero_grad(set_to_none=True)
    per_frame = score_and_descend(run, lr, ws, indices, noise, prev, grad_scale)
    optimiser.step()
    if noise:
        _renormalise(noise)
    return per_frame


def score_and_descend(run: Run, lr: float, ws, indices, noise, prev, grad_scale: float = 1.0):
    """Synthesise, score and back-propagate one step of frames ``indices``; record the losses
    (on the device; :meth:`Run.read_back` reads them) and report the step. Returns each frame's
    weighted loss ``[B]``, still on the device (no wait for it)."""
    output = synthesise(run.model, ws, noise, run.autocast)
    total, result, extra = run.loss(output, indices, ws, noise, prev)
    (total * grad_scale if grad_scale != 1.0 else total).backward()
    run.record(_Pending(list(indices), lr, total.detach(), result, extra))
    run.progress.step(len(indices))
    return result.per_frame


def fast_lr(index: int, steps: int, base: float, cold: bool) -> float:
    """The fast schedule's learning rate at step ``index`` of ``steps``: constant, with a short
    ramp-up when cold and a cosine ramp-down over the last quarter."""
    t = index / steps
    ramp = 0.5 - 0.5 * math.cos(min(1.0, (1.0 - t) / 0.25) * math.pi)
    return base * ramp * (min(1.0, t / CLASSIC_LR_RAMPUP) if cold else 1.0)


def stalled(totals: list[float], window: int, tolerance: float) -> bool:
    """True when the best loss of the last ``window`` steps is less than ``tolerance`` (relative)
    below the best before them. Minima, not last values, so noisy losses do not stop early."""
    if len(totals) <= window:
        return False
    before, recent = min(totals[:-window]), min(totals[-window:])
    return before - recent < tolerance * abs(before)


def _renormalise(noise: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for n in noise.values():
            n -= n.mean(dim=(-2, -1), keepdim=True)
            n *= n.square().mean(dim=(-2, -1), keepdim=True).rsqrt()


def expand_ws(ws_param: torch.Tensor, num_ws: int) -> torch.Tensor:
    """The optimised tensor ``[B, 1 or num_ws, D]`` as ws ``[B, num_ws, D]``."""
    return ws_param.expand(-1, num_ws, -1) if ws_param.shape[1] == 1 else ws_param


def w_noise_scale(spread: float, t: float, ramp: float) -> float:
    """The classic recipe's exploration noise on w: decays to 0 at ``t = ramp`` (t in [0, 1])."""
    return spread * CLASSIC_NOISE_FACTOR * max(0.0, 1.0 - t / ramp) ** 2


def cold_start(run: Run, start: torch.Tensor | None, index: int, classic: bool) -> torch.Tensor:
    """The cold start of frame ``index``: given latents, or the (sampled, for classic) mean w."""
    model = run.model
    if start is not None:
        row = start[index if start.shape[0] > 1 else 0]
        return row[None].float()
    mean = model.w_statistics()[0] if classic else model.w_avg.detach().float()
    return mean.to(model.device).reshape(1, 1, -1).expand(1, model.num_ws, -1).clone()
