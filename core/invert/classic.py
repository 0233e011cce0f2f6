"""The ``classic`` schedule: NVlabs' projector (stylegan2-ada-pytorch ``projector.py``), for
comparison.

One frame at a time, W space, ``steps`` (1000) Adam steps at lr 0.1 with a 5 % ramp-up and a
cosine ramp-down over the last 25 %, Gaussian noise on w decaying to zero over the first 75 %
(scaled by the spread of W, from 10 000 samples of the mapping network with seed 123, whose mean is
the start), every noise map optimised per frame and re-normalised after each step, LPIPS-VGG16 at
256 px plus the noise regulariser at 1e5.
"""

from __future__ import annotations

import math

import torch

from .run import Run, cold_start, expand_ws, step, w_noise_scale
from .settings import CLASSIC_LR_RAMPDOWN, CLASSIC_LR_RAMPUP, CLASSIC_NOISE_RAMP


def run_classic(run: Run, start: torch.Tensor | None):
    """Every frame of ``run`` on its own. Returns (ws [B, L, D], noise maps [B, ...], losses)."""
    results, noises, losses = [], [], []
    for index in range(run.targets.shape[0]):
        ws, noise, final = _invert_frame(run, index, cold_start(run, start, index, True))
        results.append(ws)
        noises.append(noise)
        losses.append(final)
        run.progress.frames_finished(1)
    noise = {k: torch.cat([n[k] for n in noises]) for k in noises[0]} if noises[0] else None
    return torch.cat(results), noise, losses


def _invert_frame(run: Run, index: int, start: torch.Tensor):
    """One frame, NVlabs' recipe. ``start [1, L or 1, D]``. Returns (ws [1, L, D], noise, loss)."""
    model, settings = run.model, run.settings
    _, w_spread = model.w_statistics()
    run.begin_batch()
    rows = settings.optimised_rows(model)
    w_opt = start.detach().clone()[:, :rows].contiguous().requires_grad_(True)
    noise = {
        n: run.randn(1, 1, r, r).requires_grad_(True) for n, r in model.noise_layer_sizes().items()
    }
    optimiser = torch.optim.Adam([w_opt, *noise.values()], betas=(0.9, 0.999), lr=settings.lr)
    final = math.inf
    for index_step in range(settings.steps):
        t = index_step / settings.steps
        w_noise = run.randn(*w_opt.shape) * w_noise_scale(w_spread, t, CLASSIC_NOISE_RAMP)
        ws = expand_ws(w_opt + w_noise, model.num_ws)
        step(run, optimiser, _classic_lr(t, settings.lr), ws, [index], noise, None)
        if (index_step + 1) % settings.read_every == 0 or index_step == settings.steps - 1:
            final = run.read_back()[-1].total  # losses read every few steps: fewer syncs
    ws = expand_ws(w_opt.detach(), model.num_ws)
    return ws, {k: v.detach() for k, v in noise.items()}, final


def _classic_lr(t: float, base: float) -> float:
    ramp = min(1.0, (1.0 - t) / CLASSIC_LR_RAMPDOWN)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return base * ramp * min(1.0, t / CLASSIC_LR_RAMPUP)
