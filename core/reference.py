"""REFERENCE: images that steer inversion and resynthesis, how they become latents and pulls,
and the maths of each mode.

- ``loss_pull``: while inverting, the output is also pulled toward the references' features (the
  mean over the references of LPIPS, D or pixel features), with weight ``strength``;
- ``latent_anchor``: the references are inverted once; the chosen layers of every frame's latent
  are pulled toward the references' mean latent (and, with ``start``, begin there);
- ``style_mix``: at synthesis the chosen layers are blended toward the references' mean latent by
  ``strength`` (1 = replaced). Used by Resynthesize; Invert ignores it.

Layers are the rows of ``ws [B, num_ws, w_dim]``, chosen by group (``all``, ``coarse``,
``middle``, ``fine``) or by indices (``0-5,8``); see :func:`layer_groups`.

Anchors and style mixes need the references' latents, which come from inverting them; the
inversion is handed in as a :class:`ReferenceInversion` (Invert passes itself), so this module
sits below both Invert and Resynthesize.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from . import fit as fitting
from .caches import register_cache
from .curves import Curve
from .errors import error
from .latents import cache_key
from .losses import (
    DEFAULT_RESOLUTION,
    LOSS_TERMS,
    LossEvaluator,
    LossMix,
    Networks,
    resize_for_loss,
    validate_params,
)
from .storage import tensor_digest

MODES = ("loss_pull", "latent_anchor", "style_mix")
PULL_DISTANCES = ("lpips_vgg", "lpips_alex", "d_features", "l1", "l2")
LAYER_GROUPS = ("all", "coarse", "middle", "fine")


# ----------------------------------------------------------------------------------------------
# Layers.


def layer_groups(num_ws: int, resolution: int | None = None) -> dict[str, list[int]]:
    """Which rows of ws are ``coarse``, ``middle`` and ``fine``.

    StyleGAN2 (``num_ws == 2 * log2(resolution) - 2``): by the resolution each row styles, as in
    the StyleGAN paper: coarse 4-8 px, middle 16-32 px, fine 64 px and up. Otherwise (StyleGAN3,
    or models of 32 px and less where that leaves a group empty): split like FFHQ's 18 rows,
    4 / 4 / 10, scaled to ``num_ws``.

    >>> layer_groups(18, 1024)["middle"], layer_groups(10, 64)["fine"]
    ([4, 5, 6, 7], [8, 9])
    """
    rows = list(range(num_ws))
    if resolution and num_ws == 2 * int(resolution).bit_length() - 4 and num_ws > 8:
        coarse_end, middle_end = 4, 8  # row 2k-1..2k+1 style the block at 2^(k+2) px
    else:
        coarse_end = max(1, round(num_ws * 4 / 18))
        middle_end = max(coarse_end + 1, round(num_ws * 8 / 18))
    return {
        "all": rows,
        "coarse": rows[:coarse_end],
        "middle": rows[coarse_end:middle_end],
        "fine": rows[middle_end:],
    }


def parse_layers(text: str, num_ws: int, resolution: int | None = None) -> list[int]:
    """``all`` / ``coarse`` / ``middle`` / ``fine`` (combinable with commas) or indices and
    ranges like ``0-5,8`` -> sorted row indices, checked against ``num_ws``.

    >>> parse_layers("0-2,8", 10), parse_layers("coarse,fine", 10, 64)
    ([0, 1, 2, 8], [0, 1, 2, 3, 8, 9])
    """
    groups = layer_groups(num_ws, resolution)
    chosen: set[int] = set()
    for part in filter(None, (p.strip().lower() for p in (text or "all").split(","))):
        if part in groups:
            chosen.update(groups[part])
            continue
        first, sep, last = part.partition("-")
        if not first.strip().isdigit() or (sep and not last.strip().isdigit()):
            raise error(
                f"layers: cannot read {part!r}; use all, coarse, middle, fine or indices like "
                "0-5,8",
                input="layers",
            )
        lo, hi = int(first), int(last) if sep else int(first)
        if lo > hi or hi >= num_ws:
            raise error(
                f"layers: {part!r} is outside this model's rows 0-{num_ws - 1}", input="layers"
            )
        chosen.update(range(lo, hi + 1))
    if not chosen:
        raise error(f"layers: {text!r} chooses no rows of this model's {num_ws}", input="layers")
    return sorted(chosen)


# ----------------------------------------------------------------------------------------------
# The REFERENCE type.


@dataclass(frozen=True, eq=False)
class ReferenceItem:
    """One ReferenceBlend node: ``images [N, H, W, 3]`` display-referred [0, 1] (CPU)."""

    images: torch.Tensor
    mode: str
    strength: float = 1.0
    layers: str = "all"
    distance: str = "lpips_vgg"  # loss_pull's feature distance
    start: bool = False  # latent_anchor: the first frame starts from the anchor
    strength_curve: Curve | None = None  # the strength per frame number, in place of strength

    def __post_init__(self) -> None:
        if self.strength_curve is not None and not isinstance(self.strength_curve, Curve):
            raise error("strength_curve must be a CURVE", input="strength_curve")
        if self.mode not in MODES:
            raise error(f"unknown reference mode {self.mode!r}; expected one of {MODES}")
        if self.distance not in PULL_DISTANCES:
            raise error(
                f"unknown pull distance {self.distance!r}; expected one of {PULL_DISTANCES}"
            )
        images = self.images
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[-1] < 3:
            shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise error(
                f"references must be an IMAGE [N, H, W, 3], got {shape}", input="references"
            )
        if not torch.isfinite(images).all():
            raise error("references contain NaN or Inf pixels", input="references")
        object.__setattr__(self, "images", images[..., :3].detach().float().cpu().contiguous())

    def digest(self) -> str:
        return tensor_digest(self.images)

    def describe(self) -> dict:
        return {
            "mode": self.mode,
            "strength": self.strength,
            "layers": self.layers,
            "distance": self.distance,
            "start": self.start,
            "images": {"count": int(self.images.shape[0]), "sha256": self.digest()},
            **({"strength_curve": self.strength_curve.describe()} if self.strength_curve else {}),
        }

    def strength_at(self, frames: Sequence[float], device=None) -> float | torch.Tensor:
        """The strength: one number, or with a curve a ``[len(frames)]`` tensor (one per frame
        number)."""
        if self.strength_curve is None:
            return self.strength
        return self.strength_curve.weights(frames, device)


@dataclass(frozen=True)
class Reference:
    """An ordered tuple of :class:`ReferenceItem`; ReferenceBlend nodes chain by ``with_item``."""

    items: tuple[ReferenceItem, ...] = ()

    def with_item(self, item: ReferenceItem) -> Reference:
        return Reference((*self.items, item))

    def of_mode(self, mode: str) -> list[ReferenceItem]:
        return [item for item in self.items if item.mode == mode]

    def describe(self) -> list[dict]:
        return [item.describe() for item in self.items]

    def fingerprint(self, modes: tuple[str, ...] = MODES) -> str:
        chosen = [d for d in self.describe() if d["mode"] in modes]
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------------------------
# References into pulls and latents.


def reference_targets(item: ReferenceItem, model) -> torch.Tensor:
    """An item's references fitted (centre crop) to the model: ``[N, 3, R, R]`` in [-1, 1]."""
    images = item.images.permute(0, 3, 1, 2).to(model.device).clone()
    plan = fitting.plan_fit("crop", images.shape[-2], images.shape[-1], model.resolution)
    return fitting.apply_fit(images, plan) * 2 - 1


def reference_pulls(reference: Reference, evaluator: LossEvaluator, model) -> list[ReferencePull]:
    """A :class:`ReferencePull` per ``loss_pull`` item, sharing the evaluator's LPIPS modules."""
    pulls = []
    for item in reference.of_mode("loss_pull"):
        module = _pull_module(item, evaluator, model)
        pulls.append(ReferencePull(item, reference_targets(item, model), model, module))
    return pulls


def _pull_module(item: ReferenceItem, evaluator: LossEvaluator, model):
    """The LPIPS module an item's distance needs (None for the others), checked."""
    net = LOSS_TERMS[item.distance].lpips_net
    if net:
        return evaluator.lpips_module(net, model.device)
    if item.distance == "d_features" and model.discriminator is None:
        raise error(
            "loss_pull with d_features needs the model's discriminator; this file has none",
            input="reference",
        )
    return None


def reference_mix(mix: LossMix | None) -> LossMix | None:
    """The plate's mix for inverting references: masks and the temporal term dropped."""
    if mix is None:
        return None
    kept = [replace(t, mask=None) for t in mix if t.name != "temporal"]
    return LossMix(tuple(kept)) if kept else None


_REFERENCE_LATENTS: dict[str, torch.Tensor] = {}  # cache key -> mean latent of inverted refs
register_cache("reference latents", _REFERENCE_LATENTS)


@dataclass(frozen=True)
class ReferenceInversion:
    """How references become latents: ``invert`` (:func:`~.invert.invert`) run with ``settings``
    (an ``InvertSettings``: its steps and seed count, the rest is fixed below) and the plate's
    ``mix`` (see :func:`reference_mix`), once per model and references, remembered for the
    process."""

    invert: Callable[..., Any]
    settings: Any
    mix: LossMix | None = None
    lpips_folders: Sequence[str] = ()
    allow_random_backbone: bool = False

    def latent(self, model, item: ReferenceItem) -> torch.Tensor:
        """The mean W+ latent ``[num_ws, w_dim]`` of an item's references (fast schedule, no
        references of their own)."""
        settings, mix = self.settings, reference_mix(self.mix)
        key = cache_key(
            model=model.content_hash, images=item.digest(), steps=settings.steps,
            seed=settings.seed, mix=mix.fingerprint() if mix else None,
        )  # fmt: skip
        if key not in _REFERENCE_LATENTS:
            images = item.images.permute(0, 3, 1, 2)
            fixed = replace(settings, schedule="fast", space="w_plus", fit="crop", warm_start=False)
            result = self.invert(
                model, images, fixed, mix=mix, lpips_folders=self.lpips_folders,
                allow_random_backbone=self.allow_random_backbone,
            )  # fmt: skip
            _REFERENCE_LATENTS[key] = result.latent.ws.mean(0)
        return _REFERENCE_LATENTS[key]


@dataclass(frozen=True)
class Anchor:
    """A ``latent_anchor`` item resolved: its latent ``[L, D]`` (on the model's device) and rows."""

    latent: torch.Tensor
    rows: list[int]
    item: ReferenceItem
    start: bool

    def penalty(self, ws: torch.Tensor) -> torch.Tensor:
        return anchor_penalty(ws, self.latent, self.rows)

    def penalty_per_frame(self, ws: torch.Tensor) -> torch.Tensor:
        """Each frame's :func:`anchor_penalty` -> ``[B]``."""
        return torch.stack([anchor_penalty(w[None], self.latent, self.rows) for w in ws])


def reference_anchors(model, reference: Reference, inversion: ReferenceInversion) -> list[Anchor]:
    """Every ``latent_anchor`` item with its references inverted."""
    return [
        Anchor(
            inversion.latent(model, item).to(model.device),
            parse_layers(item.layers, model.num_ws, model.resolution),
            item,
            item.start,
        )
        for item in reference.of_mode("latent_anchor")
    ]


def anchored_start(model, anchors: list[Anchor]) -> torch.Tensor | None:
    """The start latent ``[1, L, D]`` the ``start`` anchors ask for: w_avg with their rows set,
    later anchors over earlier ones; None when none asks."""
    start = None
    for anchor in anchors:
        if anchor.start:
            if start is None:
                start = model.w_avg.detach().float().expand(model.num_ws, -1).clone()
            start[anchor.rows] = anchor.latent[anchor.rows]
    return None if start is None else start[None]


def style_mix_latents(
    ws: torch.Tensor,
    model,
    reference: Reference | None,
    inversion: ReferenceInversion | None,
    frames: Sequence[float] | None = None,
) -> torch.Tensor:
    """``ws [B, L, D]`` with every ``style_mix`` item applied in chain order; ``frames``: each
    row's frame number, where a strength curve is read."""
    items = reference.of_mode("style_mix") if reference is not None else []
    if items and inversion is None:
        raise error("style_mix references need a way to invert them", input="reference")
    for item in items:
        rows = parse_layers(item.layers, model.num_ws, model.resolution)
        strength = item.strength_at(frames, ws.device) if frames is not None else item.strength
        ws = style_mix(ws, inversion.latent(model, item).to(ws.device), rows, strength)
    return ws


# ----------------------------------------------------------------------------------------------
# The maths of each mode.


def anchor_penalty(ws: torch.Tensor, anchor: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """Mean squared distance of the chosen rows of ``ws [B, L, D]`` to ``anchor [L, D]`` -> ``[]``.

    >>> anchor_penalty(torch.ones(2, 4, 3), torch.zeros(4, 3), [0, 1])
    tensor(1.)
    """
    return (ws[:, rows].float() - anchor[rows].to(ws.device).float()).square().mean()


def style_mix(
    ws: torch.Tensor, reference_ws: torch.Tensor, rows: list[int], strength: float | torch.Tensor
) -> torch.Tensor:
    """``ws [B, L, D]`` with the chosen rows moved toward ``reference_ws [L, D]`` by ``strength``
    (0: unchanged, 1: replaced; beyond 1 extrapolates): one number, or ``[B]``, one per row.

    >>> style_mix(torch.zeros(1, 3, 2), torch.ones(3, 2), [1], 0.5)[0, :, 0]
    tensor([0.0000, 0.5000, 0.0000])
    """
    out = ws.clone()
    target = reference_ws.to(ws.device, ws.dtype)[rows]
    if isinstance(strength, torch.Tensor):
        weight = strength.to(ws.device, ws.dtype).reshape(-1, 1, 1).expand_as(ws[:, rows])
    else:
        weight = float(strength)
    out[:, rows] = torch.lerp(ws[:, rows], target.expand_as(ws[:, rows]), weight)
    return out


class ReferencePull:
    """The ``loss_pull`` distance of a batch of outputs to one item's references.

    ``references [N, 3, R, R]`` in [-1, 1] at the model's size; features are averaged over the
    references once. Call with outputs ``[B, 3, R, R]`` -> ``[]`` (mean over the batch). The
    distance is the loss term of that name (its ``features`` and ``distance``, default params);
    LPIPS compares at the default loss resolution, pixels and D features at their own size.
    """

    def __init__(self, item: ReferenceItem, references: torch.Tensor, model, lpips_module=None):
        self.item = item
        self.model = model
        self.term = LOSS_TERMS[item.distance]
        self.params = validate_params(item.distance, {})
        self.nets = Networks(
            lpips=lpips_module, discriminator=getattr(model, "discriminator", None)
        )
        with torch.no_grad():
            self.features = [f.mean(0, keepdim=True) for f in self._features(references.float())]

    def _features(self, images: torch.Tensor) -> list[torch.Tensor]:
        if self.term.lpips_net:
            images = resize_for_loss(images, DEFAULT_RESOLUTION)
        return self.term.features(self.nets, images)

    def __call__(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.per_frame(outputs).mean()

    def per_frame(self, outputs: torch.Tensor) -> torch.Tensor:
        """Each output's distance to the references -> ``[B]``."""
        fx = self._features(outputs.float())
        return self.term.distance(self.nets, fx, self.features, None, self.params)
