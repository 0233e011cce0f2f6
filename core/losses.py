"""Loss terms for inversion: what LM_LossMix builds and Invert minimises.

Every term is ONE entry of :data:`LOSS_TERMS` (a :class:`TermSpec`: name, params, image term or
not, what it needs, the function that computes it, a one-line description); the mix's
validation, the evaluator, the LossMix node's choices and tooltips, ``ReferencePull`` and the
tests all read it. Adding a term: one function, one entry, one test.

A :class:`LossMix` is an immutable, ordered tuple of :class:`LossTerm`\\ s (a term name, a
weight, validated params and an optional per-pixel MASK). A :class:`LossEvaluator` turns a mix
into a function of one optimisation step: output images, targets, latents and noise maps in,
``(total, values)`` out: the differentiable weighted sum and each term's unweighted value.

Conventions (every function here):

- images ``[B, 3, H, W]`` in [-1, 1] (the generator's range); computed in float32 on their device;
- masks ``[B or 1, 1, h, w]`` of non-negative weights at the images' size (:func:`resize_mask`);
  weighted means are normalised by the mask's mean, so a mask of ones equals no mask and a frame
  whose mask is all zero contributes 0;
- image distances return one value per frame ``[B]``; the evaluator averages them over the batch.

Image terms run at a loss resolution (param ``resolution``, default 256 as in the classic NVlabs
projector): images larger than that are area-downsampled, smaller ones are left as they are.

Example::

    mix = LossMix().add("lpips_vgg", 1.0).add("w_prior", 0.01)
    evaluate = LossEvaluator(mix, model, lpips_folders=["/comfy/models/lpips"])
    total, values = evaluate(model.synthesis(ws), target, ws=ws)
    total.backward()  # values == {"lpips_vgg": 0.41, "w_prior": 0.07}
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .errors import error
from .imageops import blur, gaussian_window, resize_mask, resize_to, weighted_mean
from .perceptual import BACKBONE_FILES, load_lpips, lpips_feature_distance, lpips_features
from .storage import tensor_digest

DEFAULT_RESOLUTION = 256
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003

# ----------------------------------------------------------------------------------------------
# Params and the mix.


@dataclass(frozen=True)
class _Param:
    kind: type  # int, float, bool or str
    default: object
    check: Callable[[object], bool]
    rule: str  # what a valid value is, for the error message


def _coerce(term: str, key: str, spec: _Param, value):
    """A param value converted to ``spec.kind`` and checked, or a LatentmirrorError."""
    out = None
    if spec.kind is bool:
        if isinstance(value, bool):
            out = value
        elif isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            out = value.strip().lower() in ("true", "1")
    elif spec.kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            out = value
        elif isinstance(value, float) and value.is_integer():
            out = int(value)
        elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            out = int(value)
    elif spec.kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out = float(value)
        elif isinstance(value, str):
            try:
                out = float(value)
            except ValueError:
                out = None
        if out is not None and not math.isfinite(out):
            out = None
    elif isinstance(value, str):
        out = value.strip().lower()
    if out is None or not spec.check(out):
        raise error(f"loss term '{term}': param '{key}' must be {spec.rule}, got {value!r}")
    return out


def validate_params(name: str, params: Mapping | None) -> dict:
    """``params`` of term ``name`` checked, converted and completed with defaults.

    >>> validate_params("ssim", {"multiscale": "true"})["window"]
    11
    """
    check_term_name(name)
    specs = LOSS_TERMS[name].params
    params = dict(params or {})
    unknown = sorted(set(params) - set(specs))
    if unknown:
        known = ", ".join(specs) if specs else "none"
        raise error(f"loss term '{name}': unknown param(s) {unknown}; it accepts: {known}")
    return {k: _coerce(name, k, s, params.get(k, s.default)) for k, s in specs.items()}


def check_term_name(name: str) -> None:
    if name not in LOSS_TERMS:
        raise error(f"unknown loss term {name!r}; expected one of: {', '.join(LOSS_TERMS)}")


def parse_params(text: str) -> dict:
    """Params as an artist types them: a JSON object, or ``key=value`` pairs split by commas.

    >>> parse_params("resolution=128, multiscale=true")
    {'resolution': '128', 'multiscale': 'true'}
    """
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"loss params are not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise error("loss params must be a JSON object")
        return value
    out = {}
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise error(f"loss params: expected key=value, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _check_mask(name: str, mask: torch.Tensor | None) -> torch.Tensor | None:
    if mask is None:
        return None
    if not LOSS_TERMS[name].image:
        raise error(f"loss term '{name}' takes no mask (masks weight image terms only)")
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3) or 0 in mask.shape:
        shape = list(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise error(f"loss term '{name}': mask must be a [B, H, W] tensor, got {shape}")
    mask = (mask if mask.ndim == 3 else mask[None]).detach().float()
    if not torch.isfinite(mask).all() or (mask < 0).any():
        raise error(f"loss term '{name}': mask weights must be finite and >= 0")
    return mask


@dataclass(frozen=True, eq=False)
class LossTerm:
    """One weighted term. ``params`` are validated and completed with defaults on creation.

    mask: per-pixel weights ``[B or 1, H, W]`` (ComfyUI MASK) for image terms, in the plate's
    frame order; rows are picked with the evaluator's ``mask_indices``.

    >>> LossTerm("l1", 0.5, {"resolution": 128}).params
    {'resolution': 128}
    """

    name: str
    weight: float = 1.0
    params: dict = field(default_factory=dict)
    mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        check_term_name(self.name)
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise error(f"loss term '{self.name}': weight must be a number, got {weight!r}")
        if not math.isfinite(weight):
            raise error(f"loss term '{self.name}': weight must be finite, got {weight!r}")
        object.__setattr__(self, "weight", float(weight))
        object.__setattr__(self, "params", validate_params(self.name, self.params))
        object.__setattr__(self, "mask", _check_mask(self.name, self.mask))

    def describe(self) -> dict:
        """JSON-able description (for latent metadata); the mask as its shape and a hash."""
        out = {"term": self.name, "weight": self.weight, "params": dict(self.params)}
        if self.mask is not None:
            out["mask"] = {"shape": list(self.mask.shape), "sha256": tensor_digest(self.mask)}
        return out


@dataclass(frozen=True)
class LossMix:
    """An ordered, immutable tuple of terms; ``with_term``/``add`` return a new mix (chaining).

    >>> mix = LossMix().add("lpips_vgg").add("l1", 0.1, {"resolution": 64})
    >>> mix.labels()
    ['lpips_vgg', 'l1']
    """

    terms: tuple[LossTerm, ...] = ()

    def __post_init__(self) -> None:
        terms = tuple(self.terms)
        for term in terms:
            if not isinstance(term, LossTerm):
                raise error(f"a LossMix holds LossTerms, got {type(term).__name__}")
        object.__setattr__(self, "terms", terms)

    def with_term(self, term: LossTerm) -> LossMix:
        return LossMix((*self.terms, term))

    def add(
        self,
        name: str,
        weight: float = 1.0,
        params: Mapping | None = None,
        mask: torch.Tensor | None = None,
    ) -> LossMix:
        return self.with_term(LossTerm(name, weight, dict(params or {}), mask))

    def __iter__(self) -> Iterator[LossTerm]:
        return iter(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    def labels(self) -> list[str]:
        """One unique label per term, in order: repeated names get ``_2``, ``_3`` ..."""
        seen: dict[str, int] = {}
        labels = []
        for term in self.terms:
            seen[term.name] = seen.get(term.name, 0) + 1
            count = seen[term.name]
            labels.append(term.name if count == 1 else f"{term.name}_{count}")
        return labels

    def describe(self) -> list[dict]:
        return [term.describe() for term in self.terms]

    def fingerprint(self) -> str:
        """A stable hash of the whole mix (terms, weights, params, masks), for caches."""
        text = json.dumps(self.describe(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------------------------------
# The loss resolution.


def loss_size(height: int, width: int, resolution: int) -> tuple[int, int]:
    """The size images of ``height x width`` are compared at: the longer side scaled down to
    ``resolution`` (aspect kept), or unchanged when it already fits. Never larger.

    >>> loss_size(1024, 1024, 256), loss_size(64, 32, 256), loss_size(512, 256, 256)
    ((256, 256), (64, 32), (256, 128))
    """
    longest = max(height, width)
    if longest <= resolution:
        return height, width
    scale = resolution / longest
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_for_loss(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, C, h, w]`` at :func:`loss_size`, area-averaged; never upsamples."""
    return resize_to(images, loss_size(images.shape[-2], images.shape[-1], resolution))


# ----------------------------------------------------------------------------------------------
# Pixel distances and SSIM.


def l1_distance(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None):
    """Mean absolute difference per frame: ``[B, C, H, W]`` x2 -> ``[B]``.

    >>> l1_distance(torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4))
    tensor([1.])
    """
    return weighted_mean((x - y).abs(), mask)


def l2_distance(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None):
    """Mean squared difference per frame: ``[B, C, H, W]`` x2 -> ``[B]``."""
    return weighted_mean((x - y).square(), mask)


def ssim_maps(
    x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range=2.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and its contrast-structure part, per pixel: ``[B, C, H, W]`` x2 -> two ``[B, C, H, W]``.

    Gaussian window (reflect-padded, so maps align with the images and masks); ``data_range`` is
    2 for images in [-1, 1]. The window shrinks to fit images smaller than it.
    """
    window = min(window, max(1, min(x.shape[-2:]) // 2 * 2 - 1))
    kernel = gaussian_window(window, sigma, x.device, x.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x, kernel), blur(y, kernel)
    var_x = blur(x * x, kernel) - mu_x.square()
    var_y = blur(y * y, kernel) - mu_y.square()
    cov = blur(x * y, kernel) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x.square() + mu_y.square() + c1)
    return luminance * cs, cs


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor | None = None,
    window: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Mean SSIM per frame (1 = identical): ``[B, C, H, W]`` x2 in [-1, 1] -> ``[B]``.

    >>> img = torch.rand(2, 3, 16, 16) * 2 - 1
    >>> ssim(img, img)
    tensor([1., 1.])
    """
    return weighted_mean(ssim_maps(x, y, window, sigma)[0], mask)


def ms_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor | None = None,
    window: int = 11,
    sigma: float = 1.5,
    scales: int = 5,
) -> torch.Tensor:
    """Multi-scale SSIM per frame (Wang et al. 2003): ``[B, C, H, W]`` x2 -> ``[B]``.

    Scales halve the images (2x2 average) while the smaller side stays >= ``window``; with fewer
    than ``scales`` available the standard weights are truncated and renormalised.
    """
    available = 1
    while available < scales and min(x.shape[-2:]) // 2**available >= window:
        available += 1
    weights = torch.tensor(MS_SSIM_WEIGHTS[:available], device=x.device, dtype=x.dtype)
    weights = weights / weights.sum()
    result = torch.ones(x.shape[0], device=x.device, dtype=x.dtype)
    for i in range(available):
        if i:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
            mask = F.avg_pool2d(mask, 2) if mask is not None else None
        full, cs = ssim_maps(x, y, window, sigma)
        value = weighted_mean(full if i == available - 1 else cs, mask)
        result = result * value.clamp_min(1e-6) ** weights[i]
    return result


# ----------------------------------------------------------------------------------------------
# Discriminator feature matching.


@contextmanager
def per_sample_minibatch_std(discriminator: torch.nn.Module) -> Iterator[None]:
    """Run D's minibatch-std layers with groups of one, so features of a frame do not depend on
    the other frames of the batch and any batch size works."""
    layers = [m for m in discriminator.modules() if type(m).__name__ == "MinibatchStdLayer"]
    saved = [m.group_size for m in layers]
    try:
        for m in layers:
            m.group_size = 1
        yield
    finally:
        for m, size in zip(layers, saved, strict=True):
            m.group_size = size


def discriminator_features(
    discriminator: torch.nn.Module, images: torch.Tensor, c: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """``D.features`` of ``images [B, 3, H, W]`` (resized to D's resolution), as float32."""
    size = int(discriminator.img_resolution)
    dtype = next(discriminator.parameters()).dtype
    images = resize_to(images, (size, size)).to(dtype)
    with per_sample_minibatch_std(discriminator):
        feats = discriminator.features(images, c)
    return [f.float() for f in feats]


def feature_distance(
    fx: list[torch.Tensor],
    fy: list[torch.Tensor],
    mask: torch.Tensor | None = None,
    distance: str = "l1",
) -> torch.Tensor:
    """Per-layer normalised feature matching, per frame ``[B]``: each layer's mean |a - b| (or
    squared) divided by the target's mean |b| (or b^2), averaged over layers."""
    total = 0
    for a, b in zip(fx, fy, strict=True):
        if distance == "l1":
            diff, scale = (a - b).abs(), b.detach().abs()
        else:
            diff, scale = (a - b).square(), b.detach().square()
        total = total + weighted_mean(diff, mask) / scale.mean(dim=(1, 2, 3)).clamp_min(1e-8)
    return total / len(fx)


# ----------------------------------------------------------------------------------------------
# Latent and noise regularisers, temporal change.


def w_prior(ws: torch.Tensor, w_avg: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of ``ws [B, num_ws, w_dim]`` (or ``[B, w_dim]``) to ``w_avg
    [w_dim]`` over all elements -> ``[]``.

    >>> w_prior(torch.ones(2, 4, 8), torch.zeros(8))
    tensor(1.)
    """
    return (ws.float() - w_avg.to(ws.device).float()).square().mean()


def noise_maps_list(noise) -> list[torch.Tensor]:
    """Noise maps given as a dict (name -> map) or a sequence; None entries dropped."""
    if noise is None:
        return []
    values = noise.values() if isinstance(noise, Mapping) else noise
    return [n for n in values if n is not None]


def noise_regularization(noise, min_size: int = 8) -> torch.Tensor:
    """The NVlabs projector's noise regulariser -> ``[]``.

    For each map ``[R, R]``, ``[1, 1, R, R]`` or per frame ``[N, 1, R, R]``, at every scale
    (halving by 2x2 average pooling while the map is larger than ``min_size``): the squared mean
    autocorrelation with a one-pixel (wrapping) shift along x and along y, summed over scales
    and maps, averaged over frames. White noise scores ~0; structured noise is penalised.
    """
    maps = noise_maps_list(noise)
    total = torch.zeros([], device=maps[0].device if maps else None)
    for n in maps:
        n = n.float().reshape(-1, 1, *n.shape[-2:])
        while True:
            for dim in (3, 2):
                total = (
                    total
                    + (n * torch.roll(n, shifts=1, dims=dim)).mean(dim=(1, 2, 3)).square().mean()
                )
            if n.shape[2] <= min_size:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    return total


def temporal_change(
    output: torch.Tensor,
    target: torch.Tensor,
    prev_output: torch.Tensor | None = None,
    prev_target: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean |(out[t] - out[t-1]) - (tgt[t] - tgt[t-1])| over consecutive pairs -> ``[]``.

    ``output``/``target`` ``[B, 3, H, W]``; ``prev_*`` ``[3, H, W]`` or ``[1, 3, H, W]``: the
    previous batch's last frame, linking batches (both or neither). ``mask [B or 1, 1, H, W]``
    weights frame t's change. A plate that moves exactly as the output does scores 0.
    """
    if (prev_output is None) != (prev_target is None):
        raise error("temporal term: give both prev_output and prev_target, or neither")
    if prev_output is not None:
        output = torch.cat([prev_output.reshape(1, *output.shape[1:]).to(output), output])
        target = torch.cat([prev_target.reshape(1, *target.shape[1:]).to(target), target])
    elif mask is not None and mask.shape[0] > 1:
        mask = mask[1:]
    if output.shape[0] < 2:
        return torch.zeros([], device=output.device, dtype=output.dtype)
    change = (output[1:] - output[:-1]) - (target[1:] - target[:-1])
    return weighted_mean(change.abs(), mask).mean()


# ----------------------------------------------------------------------------------------------
# The terms: one entry each.


@dataclass(frozen=True)
class Networks:
    """The networks a term's features are computed with (None where a term needs none)."""

    lpips: torch.nn.Module | None = None  # the term's LPIPS module (see TermSpec.lpips_net)
    discriminator: torch.nn.Module | None = None
    c: torch.Tensor | None = None  # class labels for a conditional discriminator


@dataclass(frozen=True)
class TermInputs:
    """What a term's ``compute`` gets at one step. For image terms ``output``/``target`` are at
    the term's compared size and ``mask`` is sized to them; ``frame_shape`` is ``[3, H, W]``
    before resizing (the previous frames come at that size)."""

    output: torch.Tensor
    target: torch.Tensor
    params: dict
    frame_shape: torch.Size
    mask: torch.Tensor | None = None
    nets: Networks = Networks()
    w_avg: torch.Tensor | None = None
    ws: torch.Tensor | None = None
    noise: object = None  # dict or list of maps, see noise_regularization
    prev_output: torch.Tensor | None = None
    prev_target: torch.Tensor | None = None


Features = Callable[[Networks, torch.Tensor], list[torch.Tensor]]
Distance = Callable[
    [Networks, list[torch.Tensor], list[torch.Tensor], torch.Tensor | None, dict], torch.Tensor
]  # (nets, output features, target features, mask, params) -> [B]
Size = tuple[int, int]

NEEDS = ("discriminator", "w_avg", "ws", "noise", "previous frame")
"""What a term may need beyond the images. The model's discriminator and w_avg are checked when
the evaluator is built, ws at each step; noise and the previous frame are optional (without them
noise_reg is 0 and temporal compares within the batch). LPIPS terms name their net instead."""


@dataclass(frozen=True)
class TermSpec:
    """One loss term: all that the mix, the evaluator, the LossMix node and the tests know of it.

    A comparison term gives ``features`` (images -> list of maps) and ``distance`` (both sides'
    features -> ``[B]``): the evaluator caches the target's features, and ``ReferencePull``
    compares outputs with the references' mean features through the same two functions. Any
    other term gives ``compute`` (-> ``[]``). Image terms (``image``) take a MASK and compare
    images resized to ``compared_size``.
    """

    name: str
    description: str  # one line, for the LossMix node's tooltip
    params: Mapping[str, _Param] = field(default_factory=dict)
    image: bool = False
    needs: frozenset[str] = frozenset()  # of NEEDS
    lpips_net: str | None = None  # "vgg" / "alex": the evaluator loads this LPIPS module
    compared_size: Callable[[Networks, dict, Size], Size] | None = None
    features: Features | None = None
    distance: Distance | None = None
    compute: Callable[[TermInputs], torch.Tensor] | None = None


_RESOLUTION = _Param(int, DEFAULT_RESOLUTION, lambda v: v >= 8, "an integer >= 8 (pixels)")


def _at_loss_resolution(nets: Networks, params: dict, size: Size) -> Size:
    return loss_size(size[0], size[1], params["resolution"])


def _at_discriminator_size(nets: Networks, params: dict, size: Size) -> Size:
    return (int(nets.discriminator.img_resolution),) * 2


def _pixels(nets: Networks, images: torch.Tensor) -> list[torch.Tensor]:
    return [images]


def _lpips_features(nets: Networks, images: torch.Tensor) -> list[torch.Tensor]:
    return lpips_features(nets.lpips, images)


def _lpips_distance(nets: Networks, fx, fy, mask, params: dict) -> torch.Tensor:
    return lpips_feature_distance(nets.lpips, fx, fy, mask)


def _l1(nets: Networks, fx, fy, mask, params: dict) -> torch.Tensor:
    return l1_distance(fx[0], fy[0], mask)


def _l2(nets: Networks, fx, fy, mask, params: dict) -> torch.Tensor:
    return l2_distance(fx[0], fy[0], mask)


def _ssim_distance(nets: Networks, fx, fy, mask, params: dict) -> torch.Tensor:
    x, y, p = fx[0], fy[0], params
    if p["multiscale"]:
        return 1 - ms_ssim(x, y, mask, p["window"], p["sigma"], p["scales"])
    return 1 - ssim(x, y, mask, p["window"], p["sigma"])


def _d_features(nets: Networks, images: torch.Tensor) -> list[torch.Tensor]:
    if nets.discriminator.c_dim > 0 and nets.c is None:
        raise error("d_features: this discriminator is conditional; give labels c")
    return discriminator_features(nets.discriminator, images, nets.c)


def _d_distance(nets: Networks, fx, fy, mask, params: dict) -> torch.Tensor:
    return feature_distance(fx, fy, mask, params["distance"])


def _w_prior(step: TermInputs) -> torch.Tensor:
    return w_prior(step.ws, step.w_avg)


def _noise_reg(step: TermInputs) -> torch.Tensor:
    return noise_regularization(step.noise, step.params["min_size"]).to(step.output.device)


def _temporal(step: TermInputs) -> torch.Tensor:
    prev_x = prev_y = None
    if step.prev_output is not None or step.prev_target is not None:
        if step.prev_output is None or step.prev_target is None:
            raise error("temporal term: give both prev_output and prev_target, or neither")
        size = tuple(step.output.shape[-2:])
        prev_x = resize_to(step.prev_output.reshape(1, *step.frame_shape).float(), size)
        prev_y = resize_to(step.prev_target.reshape(1, *step.frame_shape).float(), size)
    return temporal_change(step.output, step.target, prev_x, prev_y, step.mask)


def _lpips_term(net: str) -> TermSpec:
    return TermSpec(
        f"lpips_{net}",
        f"perceptual, LPIPS-{net} (backbone {BACKBONE_FILES[net]} in models/lpips or the torch "
        "hub cache)",
        {"resolution": _RESOLUTION},
        image=True,
        lpips_net=net,
        compared_size=_at_loss_resolution,
        features=_lpips_features,
        distance=_lpips_distance,
    )


def _pixel_term(name: str, description: str, distance: Distance, **params: _Param) -> TermSpec:
    return TermSpec(
        name,
        description,
        {"resolution": _RESOLUTION, **params},
        image=True,
        compared_size=_at_loss_resolution,
        features=_pixels,
        distance=distance,
    )


_TERM_LIST = (
    _lpips_term("vgg"),
    _lpips_term("alex"),
    _pixel_term("l1", "pixels, mean absolute difference", _l1),
    _pixel_term("l2", "pixels, mean squared difference", _l2),
    _pixel_term(
        "ssim",
        "pixels, 1 - structural similarity (multiscale=true: MS-SSIM)",
        _ssim_distance,
        window=_Param(int, 11, lambda v: v >= 3 and v % 2 == 1, "an odd integer >= 3"),
        sigma=_Param(float, 1.5, lambda v: 0 < v <= 100, "a number > 0"),
        multiscale=_Param(bool, False, lambda v: True, "true or false"),
        scales=_Param(int, 5, lambda v: 1 <= v <= 5, "an integer from 1 to 5"),
    ),
    TermSpec(
        "d_features",
        "the model's own discriminator's features (no download)",
        {"distance": _Param(str, "l1", lambda v: v in ("l1", "l2"), "'l1' or 'l2'")},
        image=True,
        needs=frozenset({"discriminator"}),
        compared_size=_at_discriminator_size,
        features=_d_features,
        distance=_d_distance,
    ),
    TermSpec(
        "w_prior",
        "pull toward the average latent",
        needs=frozenset({"w_avg", "ws"}),
        compute=_w_prior,
    ),
    TermSpec(
        "noise_reg",
        "noise regulariser (keeps optimised noise white)",
        {"min_size": _Param(int, 8, lambda v: v >= 2, "an integer >= 2")},
        needs=frozenset({"noise"}),
        compute=_noise_reg,
    ),
    TermSpec(
        "temporal",
        "change between consecutive frames unlike the plate's (flicker)",
        {"resolution": _RESOLUTION},
        image=True,
        needs=frozenset({"previous frame"}),
        compared_size=_at_loss_resolution,
        compute=_temporal,
    ),
)
LOSS_TERMS: dict[str, TermSpec] = {spec.name: spec for spec in _TERM_LIST}
"""Every loss term by name, in the order the LossMix node lists them."""


def describe_terms() -> str:
    """One line per term, ``name: description``, joined for a tooltip."""
    return "; ".join(f"{spec.name}: {spec.description}" for spec in LOSS_TERMS.values()) + "."


def describe_params() -> str:
    """Each term's params with their defaults (terms with the same params together), then what
    each param accepts: for the LossMix node's ``params`` tooltip.

    >>> describe_params().startswith("lpips_vgg, lpips_alex, l1, l2, temporal: resolution=256;")
    True
    """
    groups: dict[str, list[str]] = {}
    rules: dict[str, str] = {}
    for spec in LOSS_TERMS.values():
        if spec.params:
            text = ", ".join(f"{k}={_format(p.default)}" for k, p in spec.params.items())
            groups.setdefault(text, []).append(spec.name)
            rules.update({k: p.rule for k, p in spec.params.items()})
    defaults = "; ".join(f"{', '.join(names)}: {text}" for text, names in groups.items())
    accepted = "; ".join(f"{k}: {rule}" for k, rule in sorted(rules.items()))
    return f"{defaults}. Accepted values: {accepted}."


def _format(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# ----------------------------------------------------------------------------------------------
# The evaluator.


class LossResult(NamedTuple):
    total: torch.Tensor  # [] differentiable: sum of weight * value
    values: dict[str, float]  # unweighted value of each term, labelled as LossMix.labels()


def _same_data(a: torch.Tensor, b: torch.Tensor | None) -> bool:
    """``a`` and ``b`` show the same elements of the same storage (e.g. the same slice of a
    target batch taken again at each step). ``b`` is held by the cache, so its memory cannot be
    freed and reused by another tensor while compared."""
    return (
        b is not None
        and a.device == b.device
        and a.dtype == b.dtype
        and a.shape == b.shape
        and a.stride() == b.stride()
        and a.storage_offset() == b.storage_offset()
        and a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    )


class LossEvaluator:
    """Evaluates a :class:`LossMix` for one optimisation step.

    model: the GanModel (its discriminator for ``d_features``, ``w_avg`` for ``w_prior``).
    lpips_folders: where to look for backbone files (ComfyUI's models/lpips, the pack's), the
    torch hub cache is searched after them. The LPIPS modules load here, on ``device`` (default:
    the model's), so a missing file fails before any optimisation. ``allow_random_backbone`` is
    for tests only.

    Target-side work (resizing, LPIPS and D features of the target, masks on the device) is cached
    while the same target data is passed again unchanged (the same tensor, or the same slice of
    one taken again).
    """

    def __init__(
        self,
        mix: LossMix,
        model=None,
        *,
        lpips_folders: Sequence[str] = (),
        device: torch.device | str | None = None,
        allow_random_backbone: bool = False,
    ):
        if not isinstance(mix, LossMix):
            raise error(f"expected a LossMix, got {type(mix).__name__}")
        if not len(mix):
            raise error("the loss mix is empty: add at least one term")
        self.mix = mix
        self.model = model
        self.labels = mix.labels()
        self.device = torch.device(device or (model.device if model is not None else "cpu"))
        specs = [LOSS_TERMS[name] for name in dict.fromkeys(t.name for t in mix)]
        _check_model_needs(specs, model)
        self._lpips_folders = list(lpips_folders)
        self._allow_random = allow_random_backbone
        self._lpips_modules: dict[tuple[str, str], torch.nn.Module] = {}
        for spec in specs:
            if spec.lpips_net:
                self.lpips_module(spec.lpips_net, self.device)
        self._cached_target: torch.Tensor | None = None
        self._cached_version = -1
        self._cache: dict = {}

    def lpips_module(self, net: str, device: torch.device) -> torch.nn.Module:
        key = (net, str(device))
        if key not in self._lpips_modules:  # searched for once, not at every step
            self._lpips_modules[key] = load_lpips(
                net, device, self._lpips_folders, self._allow_random
            )
        return self._lpips_modules[key]

    def _cached(self, key, make: Callable[[], object]):
        if key not in self._cache:
            with torch.no_grad():
                self._cache[key] = make()
        return self._cache[key]

    def _reset_cache(self, target: torch.Tensor) -> None:
        if target.requires_grad:  # not a fixed target: nothing to reuse
            self._cached_target, self._cache = None, {}
        elif not _same_data(target, self._cached_target) or target._version != self._cached_version:
            self._cached_target, self._cached_version, self._cache = target, target._version, {}

    def __call__(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        *,
        ws: torch.Tensor | None = None,
        noise=None,
        prev_output: torch.Tensor | None = None,
        prev_target: torch.Tensor | None = None,
        mask_indices: Sequence[int] | None = None,
        c: torch.Tensor | None = None,
    ) -> LossResult:
        """output, target ``[B, 3, H, W]`` in [-1, 1]; ws ``[B, num_ws, w_dim]``; noise: the
        maps being optimised (dict or list, see :func:`noise_regularization`); prev_*: the
        previous batch's last frame (temporal); mask_indices: the batch's rows in the masks;
        c: class labels for a conditional discriminator."""
        if output.ndim != 4 or output.shape[1] != 3 or output.shape != target.shape:
            raise error(
                f"loss: output and target must both be [B, 3, H, W], got {list(output.shape)} "
                f"and {list(target.shape)}"
            )
        self._reset_cache(target)
        out32 = output.float()
        step = TermInputs(
            output=out32,
            target=target.to(output.device).float(),
            params={},
            frame_shape=out32.shape[1:],
            w_avg=self.model.w_avg if self.model is not None else None,
            ws=ws,
            noise=noise,
            prev_output=prev_output,
            prev_target=prev_target,
        )
        values = [
            self._term(index, term, step, mask_indices, c) for index, term in enumerate(self.mix)
        ]
        weights = torch.tensor([t.weight for t in self.mix], device=output.device)
        stacked = torch.stack([v.to(output.device).float().reshape([]) for v in values])
        total = (stacked * weights).sum()
        floats = stacked.detach().cpu().tolist()
        return LossResult(total, dict(zip(self.labels, floats, strict=True)))

    def _term(self, index: int, term: LossTerm, step: TermInputs, mask_indices, c):
        """One term's unweighted value ``[]``: its entry's ``compute``, or its ``features`` of
        both sides (the target's cached) compared by its ``distance``."""
        spec = LOSS_TERMS[term.name]
        if "ws" in spec.needs and step.ws is None:
            raise error(f"the {term.name} term needs ws")
        device = step.output.device
        nets = Networks(
            lpips=self.lpips_module(spec.lpips_net, device) if spec.lpips_net else None,
            discriminator=self.model.discriminator if self.model is not None else None,
            c=c,
        )
        step = replace(step, params=term.params, nets=nets)
        if not spec.image:
            return spec.compute(step)
        memo = self._cached if self._cached_target is not None else (lambda _key, make: make())
        size = spec.compared_size(nets, term.params, tuple(step.output.shape[-2:]))
        x = resize_to(step.output, size)
        y = memo(("resize", size), lambda: resize_to(step.target, size))
        mask = self._mask(index, term, size, x.shape[0], mask_indices, device)
        if spec.compute is not None:
            return spec.compute(replace(step, output=x, target=y, mask=mask))
        fy = memo(("features", index), lambda: spec.features(nets, y))
        return spec.distance(nets, spec.features(nets, x), fy, mask, term.params).mean()

    def _mask(self, index, term, size, batch, indices, device):
        if term.mask is None:
            return None
        key = ("mask", index, tuple(size), batch, tuple(indices) if indices is not None else None)
        if key not in self._cache:
            self._cache[key] = resize_mask(term.mask, tuple(size), batch, indices).to(device)
        return self._cache[key]


def _check_model_needs(specs: list[TermSpec], model) -> None:
    """What the mix's terms need of the model, checked before any optimisation."""
    for spec in specs:
        if "discriminator" in spec.needs and (model is None or model.discriminator is None):
            raise error(
                f"the {spec.name} term needs the model's discriminator; this model file has none "
                "(use lpips_vgg, l1 or ssim instead)",
                file=getattr(model, "source", None),
            )
    for spec in specs:
        if "w_avg" in spec.needs and model is None:
            raise error(f"the {spec.name} term needs the model (for w_avg)")
