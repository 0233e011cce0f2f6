"""What both schedules share: the per-call state (:class:`Run`), the loss and its history, the
optimiser step, and the start latents."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import error
from ..losses import LossEvaluator
from ..reference import Anchor, ReferencePull
from ..synthesis import synthesise
from .settings import CLASSIC_NOISE_FACTOR, Callbacks, InvertSettings


@dataclass
class Progress:
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
    frames: list[int] | None = None  # each target's frame number (curves are read there)
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
        frames = [self.frames[i] for i in indices] if self.frames is not None else None
        total, values = self.evaluator(
            output, target, ws=ws, noise=noise, prev_output=prev_out, prev_target=prev_tgt,
            mask_indices=rows, frames=frames,
        )  # fmt: skip
        extra = {}
        for i, pull in enumerate(self.pulls):
            value, weighted = _pull_terms(pull.item, pull, pull.per_frame, output, frames)
            total = total + weighted
            extra[f"reference_pull_{i + 1}"] = float(value.detach())
        for i, anchor in enumerate(self.anchors):
            value, weighted = _pull_terms(
                anchor.item, anchor.penalty, anchor.penalty_per_frame, ws, frames
            )
            total = total + weighted
            extra[f"reference_anchor_{i + 1}"] = float(value.detach())
        if not torch.isfinite(total):
            raise error(
                f"the loss became {float(total)} (frames {indices[0]}-{indices[-1]} of the batch); "
                "lower the learning rate or check the input images for NaN/Inf"
            )
        return total, {**values, **extra}


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


def step(run: Run, optimiser, lr: float, ws, indices, noise, prev) -> float:
    """One optimiser step of both schedules: synthesise, score, descend, re-normalise the noise
    being optimised, record and report. Returns the step's total loss."""
    for group in optimiser.param_groups:
        group["lr"] = lr
    output = synthesise(run.model, ws, noise, run.autocast)
    total, values = run.loss(output, indices, ws, noise, prev)
    optimiser.zero_grad(set_to_none=True)
    total.backward()
    optimiser.step()
    if noise:
        _renormalise(noise)
    run.record(total, values, {"lr": lr})
    run.progress.step()
    return float(total.detach())


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
