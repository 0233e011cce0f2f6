"""The registry of loss terms: :data:`LOSS_TERMS`, one :class:`TermSpec` per term (name,
params, image term or not, what it needs, the function that computes it, a description), the
params' validation, and the tooltips the LossMix node shows.

Adding a term: one function (in :mod:`.distances`), one entry in ``_TERM_LIST``, one test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from ..errors import error
from ..imageops import resize_to
from ..perceptual import BACKBONE_FILES, lpips_feature_distance, lpips_features
from .distances import (
    DEFAULT_RESOLUTION,
    discriminator_features,
    feature_distance,
    l1_distance,
    l2_distance,
    loss_size,
    ms_ssim,
    noise_regularization,
    ssim,
    temporal_change,
    w_prior,
)

# ----------------------------------------------------------------------------------------------
# Params.


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


# ----------------------------------------------------------------------------------------------
# The terms: one entry each.


@dataclass(frozen=True)
class Networks:
    """The networks a term's features are computed with (None where a term needs none)."""

    lpips: torch.nn.Module | None = None  # the term's LPIPS module (see TermSpec.lpips_net)
    discriminator: torch.nn.Module | None = None
    c: torch.Tensor | None = None  # class labels for a conditional discriminator
    # the LPIPS backbone's arithmetic under autocast (the generator's when it has one); its
    # features and every distance stay float32
    autocast: torch.dtype | None = None


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
    return lpips_features(nets.lpips, images, nets.autocast)


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
