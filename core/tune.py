"""Pivotal tuning (PTI, Roich et al. 2021): the generator fine-tuned to a shot around its latents.

Invert finds, for each frame, the latent (the *pivot*) whose image is closest to it; a model
trained on faces cannot make a pagoda, so that image stays a face-ish blur. :func:`tune_model`
then fine-tunes a copy of the generator's synthesis network (not the mapping network, so W and
its statistics stay the model's) so that ``G(pivot)`` reproduces each pivot frame: the loss mix
(LPIPS + L2 by default) between ``G(pivot)`` and the frame as the inversion saw it (the latent's
own fit: stretched square, crop, pad or tiles), plus PTI's locality regulariser: at points a
W spread away from each pivot, toward a random w, the tuned generator must keep making what the
original makes, so the model's behaviour away from the shot does not drift.

The tuned model is a new :class:`~.gan.model.GanModel` whose ``content_hash`` is a hash of the
base model's hash and the tuning fingerprint (pivot latents, the frames' pixels, settings, loss
mix, the pack's version), so the latent cache and frame fingerprints see it as another model. The
loaded model is never changed (the model cache shares it). Tuned models are kept in memory and on
disk (:class:`TunedModelCache`, beside the latent cache) by that hash: the same shot, latents
and settings tune once.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field

import torch

from . import __version__
from . import fit as fitting
from .caches import register_cache
from .errors import LatentmirrorError, error
from .gan.loading import load_gan, save_safetensors
from .gan.model import GanModel
from .invert.driver import fit_mix
from .invert.settings import Callbacks
from .latents import GanLatent, default_cache_folder
from .losses import LossEvaluator, LossMix
from .storage import WriteFailed, tensor_digest
from .synthesis import synthesise

log = logging.getLogger("latentmirror")

FINGERPRINT_VERSION = 2  # bump when the tuning itself changes: old cached models are not reused

LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TuneSettings:
    """``steps``: optimiser steps (0: no tuning, the model passes through). ``learning_rate``:
    Adam's (PTI: 3e-4). ``pivot_frames``: how many frames, spread evenly over the shot, are
    tuned on (0: every frame). ``locality``: the weight of the locality regulariser (0: off).
    ``batch_size``: pivot images per step. ``seed``: the batches' order and the locality's w.
    ``lr_schedule``: ``constant``, or ``cosine`` (the rate falls from ``learning_rate`` to 0
    over the steps, so a high starting rate can still settle on the pivots' details)."""

    steps: int = 100
    learning_rate: float = 3e-4
    pivot_frames: int = 0
    locality: float = 0.1
    batch_size: int = 4
    seed: int = 0
    lr_schedule: str = "constant"

    def __post_init__(self) -> None:
        checks = [
            ("lr_schedule", self.lr_schedule in LR_SCHEDULES, f"must be one of {LR_SCHEDULES}"),
            ("steps", self.steps >= 0, "must be >= 0"),
            ("learning_rate", self.learning_rate > 0, "must be > 0"),
            ("pivot_frames", self.pivot_frames >= 0, "must be >= 0 (0: every frame)"),
            ("locality", self.locality >= 0, "must be >= 0 (0: off)"),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise error(f"{name} {rule}, got {getattr(self, name)}", input=name)


def default_tune_mix() -> LossMix:
    """PTI's loss: LPIPS (VGG) plus L2."""
    return LossMix().add("lpips_vgg", 1.0).add("l2", 1.0)


@dataclass
class TuneResult:
    model: GanModel
    cached: bool = False
    history: dict[str, list[float]] = field(default_factory=dict)  # per step: total, terms
    seconds: float = 0.0


# ComfyUI runs nodes under torch.inference_mode(); training needs autograd.
@torch.inference_mode(False)
@torch.enable_grad()
def tune_model(
    model: GanModel,
    latent: GanLatent,
    images: torch.Tensor,
    settings: TuneSettings = TuneSettings(),
    *,
    mix: LossMix | None = None,
    lpips_folders=(),
    allow_random_backbone: bool = False,
    callbacks: Callbacks | None = None,
    cache: TunedModelCache | None = None,
) -> TuneResult:
    """``model`` fine-tuned so that ``G(latent)`` reproduces ``images`` ``[B, 3, H, W]``
    (display-referred [0, 1], the frames the latents were solved for, in their order).

    ``mix``: the reconstruction loss (default :func:`default_tune_mix`); ``cache``: reuse a model
    tuned before from the same inputs. ``settings.steps == 0`` returns ``model`` itself.
    """
    check_pivots(model, latent, images)
    if settings.steps == 0:
        return TuneResult(model)
    used_mix = mix if mix is not None else default_tune_mix()
    targets = fitting.apply_fit(images.float().clone(), latent.fit) * 2 - 1  # as Invert saw them
    rows = pivot_rows(latent, settings.pivot_frames)
    content_hash = tuned_hash(model, latent, targets, settings, used_mix)
    found = _remembered(content_hash, model.device, cache)
    if found is not None:
        return TuneResult(found, cached=True)

    began = time.perf_counter()
    tuned = _trainable_copy(model, content_hash)
    evaluator = LossEvaluator(
        fit_mix(used_mix, latent.fit, images.shape[0]), model, lpips_folders=lpips_folders,
        device=model.device, allow_random_backbone=allow_random_backbone,
    )  # fmt: skip
    history = _optimise(
        tuned, model, latent, targets.to(model.device), rows, evaluator, settings,
        callbacks or Callbacks(),
    )  # fmt: skip
    tuned.generator.eval().requires_grad_(False)
    _tuned[(content_hash, str(tuned.device))] = tuned
    if cache is not None:
        cache.put(tuned)
    return TuneResult(tuned, history=history, seconds=time.perf_counter() - began)


# ----------------------------------------------------------------------------------------------
# Inputs.


def check_pivots(model: GanModel, latent: GanLatent, images: torch.Tensor) -> None:
    """The latents are this model's and the images are their frames; refused clearly if not."""
    if not isinstance(latent, GanLatent):
        raise error("expected a GAN_LATENT (from Invert or Load Latents)", input="latent")
    if latent.model_hash != model.content_hash:
        raise error(
            f"these latents were solved with another model ({latent.model_hash[:12]}), not this "
            f"one ({model.content_hash[:12]}); tune the model the latents came from (the Invert "
            "that made them takes the same model)",
            input="latent",
        )
    if latent.num_ws != model.num_ws or latent.w_dim != model.w_dim:
        raise error(
            f"the latents are [{latent.num_ws}, {latent.w_dim}] per frame but this model needs "
            f"[{model.num_ws}, {model.w_dim}]",
            input="latent",
        )
    if images.ndim != 4 or images.shape[1] != 3:
        raise error(f"images must be [B, 3, H, W], got {list(images.shape)}", input="images")
    tiles = latent.fit.tile_count
    if images.shape[0] * tiles != len(latent):
        frames = len(latent) // tiles
        raise error(
            f"{images.shape[0]} frames of images but the latents hold {frames} frames; connect "
            "the frames the latents were solved for (the Invert's images)",
            input="images",
        )
    if tuple(images.shape[-2:]) != latent.fit.plate_size:
        raise error(
            f"images are {images.shape[-1]}x{images.shape[-2]} but the latents were solved for "
            f"a {latent.fit.plate_width}x{latent.fit.plate_height} plate",
            input="images",
        )
    if not torch.isfinite(images).all():
        raise error("images contain NaN or Inf pixels", input="images")


def pivot_rows(latent: GanLatent, pivot_frames: int) -> list[int]:
    """The latent rows tuned on: every tile of ``pivot_frames`` frames spread evenly over the
    shot (first and last included), or of every frame when 0 or more than there are.

    >>> from latentmirror.core.fit import plan_fit
    >>> fit = plan_fit("stretch", 8, 8, 8)
    >>> latent = GanLatent(torch.zeros(5, 2, 4), "w", "h", list(range(5)), fit)
    >>> pivot_rows(latent, 3)
    [0, 2, 4]
    """
    tiles = latent.fit.tile_count
    count = len(latent) // tiles
    if pivot_frames == 0 or pivot_frames >= count:
        chosen = list(range(count))
    elif pivot_frames == 1:
        chosen = [count // 2]
    else:
        step = (count - 1) / (pivot_frames - 1)
        chosen = sorted({round(i * step) for i in range(pivot_frames)})
    return [frame * tiles + tile for frame in chosen for tile in range(tiles)]


def tuned_hash(
    model: GanModel, latent: GanLatent, targets: torch.Tensor, settings: TuneSettings, mix: LossMix
) -> str:
    """The tuned model's content hash: the base model's and everything the tuning depends on."""
    noise = {k: tensor_digest(v) for k, v in sorted((latent.noise or {}).items())}
    parts = {
        "base": model.content_hash,
        "pivots": tensor_digest(latent.ws),
        "noise": noise,
        "fit": latent.fit.to_dict(),
        "frames": tensor_digest(targets),
        "settings": asdict(settings),
        "mix": mix.fingerprint(),
        "tuning": FINGERPRINT_VERSION,
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------------------------
# The optimisation.


def _trainable_copy(model: GanModel, content_hash: str) -> GanModel:
    """A float32 copy of ``model`` (both networks: Save GAN writes both) whose synthesis weights
    train; the original stays as it was."""
    architecture = {**copy.deepcopy(model.architecture), "tuned_from": model.content_hash}
    tuned = GanModel(
        copy.deepcopy(model.generator), copy.deepcopy(model.discriminator), architecture,
        content_hash, f"{model.source} (tuned {content_hash[:12]})",
    ).to(dtype=torch.float32)  # fmt: skip
    tuned.generator.synthesis.requires_grad_(True)
    return tuned


def _optimise(
    tuned: GanModel,
    original: GanModel,
    latent: GanLatent,
    targets: torch.Tensor,
    rows: list[int],
    evaluator: LossEvaluator,
    settings: TuneSettings,
    callbacks: Callbacks,
) -> dict[str, list[float]]:
    """``settings.steps`` Adam steps over batches of pivot rows in a seeded order; returns the
    loss history."""
    generator = torch.Generator().manual_seed(settings.seed)
    params = [p for p in tuned.generator.synthesis.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=settings.learning_rate)
    scheduler = _lr_scheduler(optimiser, settings)
    radius = original.w_statistics()[1] if settings.locality > 0 else 0.0
    history: dict[str, list[float]] = {}
    order: list[int] = []
    for step in range(settings.steps):
        if callbacks.check_interrupt:
            callbacks.check_interrupt()
        while len(order) < settings.batch_size:  # a fresh seeded permutation each pass
            order += [rows[i] for i in torch.randperm(len(rows), generator=generator).tolist()]
        batch, order = order[: settings.batch_size], order[settings.batch_size :]
        ws = latent.ws[batch].to(tuned.device, torch.float32)
        noise = {k: v[batch].to(tuned.device) for k, v in (latent.noise or {}).items()}
        output = synthesise(tuned, ws, noise)
        total, values = evaluator(output, targets[batch], ws=ws, mask_indices=batch)
        if settings.locality > 0:
            drift = _locality(tuned, original, ws, radius, generator)
            total = total + settings.locality * drift
            values = {**values, "locality": float(drift.detach())}
        if not torch.isfinite(total):
            raise error(f"the tuning loss became {float(total)} at step {step + 1}; lower the "
                        "learning rate", input="learning_rate")  # fmt: skip
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()
        scheduler.step()
        for key, value in {"total": float(total.detach()), **values}.items():
            history.setdefault(key, []).append(value)
        if callbacks.on_step:
            callbacks.on_step(step + 1, settings.steps)
    return history


def _lr_scheduler(optimiser, settings: TuneSettings) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning rate over the steps: constant, or a cosine from the rate down to 0."""
    if settings.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=settings.steps)
    return torch.optim.lr_scheduler.ConstantLR(optimiser, factor=1.0, total_iters=0)


def _locality(tuned, original, pivots, radius: float, generator) -> torch.Tensor:
    """PTI's locality regulariser: L2 between the tuned and the original generator's images at
    ``radius`` (the model's W spread) from each pivot toward a random mapped w."""
    z = torch.randn(pivots.shape[0], original.z_dim, generator=generator)
    with torch.no_grad():
        towards = original.mapping(z.to(original.device)).float()
        direction = towards - pivots
        direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        nearby = pivots + radius * direction
        expected = synthesise(original, nearby).float()
    return (synthesise(tuned, nearby) - expected).square().mean()


# ----------------------------------------------------------------------------------------------
# Tuned models kept: in memory, and on disk by content hash.

_tuned: dict[tuple[str, str], GanModel] = {}
register_cache("tuned GAN models", _tuned)


def _remembered(content_hash: str, device, cache: TunedModelCache | None) -> GanModel | None:
    key = (content_hash, str(device))
    if key not in _tuned and cache is not None:
        found = cache.get(content_hash, device)
        if found is not None:
            _tuned[key] = found
    return _tuned.get(key)


def default_tuned_folder() -> str:
    """``tuned/`` in the latent cache's folder ($LATENTMIRROR_CACHE or ~/.cache/latentmirror/
    latents): one place to clear."""
    return os.path.join(default_cache_folder(), "tuned")


class TunedModelCache:
    """Tuned models on disk as our ``.safetensors`` (float32, exact), one per content hash; the
    least recently used go beyond ``max_bytes``. A damaged entry is a miss (warned, removed); a
    folder that cannot be written is warned about and skipped."""

    def __init__(self, folder: str | None = None, max_bytes: int = 2 * 1024**3):
        self.folder = folder or default_tuned_folder()
        self.max_bytes = max_bytes

    def path(self, content_hash: str) -> str:
        return os.path.join(self.folder, f"{content_hash}.safetensors")

    def get(self, content_hash: str, device) -> GanModel | None:
        path = self.path(content_hash)
        if not os.path.isfile(path):
            return None
        try:
            model = load_gan(path, device=device, content_hash=content_hash)
        except LatentmirrorError as exc:
            log.warning("tuned model cache entry %s is not used (%s); tuning again", path, exc)
            _remove_quietly(path)
            return None
        os.utime(path)  # recently used
        return model

    def put(self, model: GanModel) -> None:
        try:
            save_safetensors(model, self.path(model.content_hash), dtype=torch.float32)
            self._prune()
        except (OSError, WriteFailed) as exc:  # a full or read-only cache must not fail a render
            log.warning("tuned model cache %s cannot be written (%s); not cached", self.folder, exc)

    def _prune(self) -> None:
        entries = []
        for name in os.listdir(self.folder):
            if name.endswith(".safetensors") and not name.startswith("."):
                stat = os.stat(os.path.join(self.folder, name))
                entries.append((stat.st_mtime, stat.st_size, os.path.join(self.folder, name)))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries)[:-1]:  # the newest stays whatever its size
            if total <= self.max_bytes:
                break
            _remove_quietly(path)
            total -= size


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
