"""Loss terms for inversion: what LM_LossMix builds and Invert minimises.

A :class:`LossMix` is an immutable, ordered tuple of :class:`LossTerm`\\ s (a term name from
:data:`TERMS`, a weight, validated params and an optional per-pixel MASK). A :class:`LossEvaluator`
turns a mix into a function of one optimisation step: output images, targets, latents and noise
maps in, ``(total, values)`` out: the differentiable weighted sum and each term's unweighted value.

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
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .errors import error
from .storage import tensor_digest

TERMS = (
    "lpips_vgg",
    "lpips_alex",
    "l1",
    "l2",
    "ssim",
    "d_features",
    "w_prior",
    "noise_reg",
    "temporal",
)
IMAGE_TERMS = frozenset({"lpips_vgg", "lpips_alex", "l1", "l2", "ssim", "d_features", "temporal"})
LPIPS_NETS = {"lpips_vgg": "vgg", "lpips_alex": "alex"}
DEFAULT_RESOLUTION = 256
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003

# ----------------------------------------------------------------------------------------------
# Terms, params and the mix.


@dataclass(frozen=True)
class _Param:
    kind: type  # int, float, bool or str
    default: object
    check: Callable[[object], bool]
    rule: str  # what a valid value is, for the error message


_RESOLUTION = _Param(int, DEFAULT_RESOLUTION, lambda v: v >= 8, "an integer >= 8 (pixels)")
_DISTANCE = _Param(str, "l1", lambda v: v in ("l1", "l2"), "'l1' or 'l2'")
PARAMS: dict[str, dict[str, _Param]] = {
    "lpips_vgg": {"resolution": _RESOLUTION},
    "lpips_alex": {"resolution": _RESOLUTION},
    "l1": {"resolution": _RESOLUTION},
    "l2": {"resolution": _RESOLUTION},
    "ssim": {
        "resolution": _RESOLUTION,
        "window": _Param(int, 11, lambda v: v >= 3 and v % 2 == 1, "an odd integer >= 3"),
        "sigma": _Param(float, 1.5, lambda v: 0 < v <= 100, "a number > 0"),
        "multiscale": _Param(bool, False, lambda v: True, "true or false"),
        "scales": _Param(int, 5, lambda v: 1 <= v <= 5, "an integer from 1 to 5"),
    },
    "d_features": {"distance": _DISTANCE},
    "w_prior": {},
    "noise_reg": {"min_size": _Param(int, 8, lambda v: v >= 2, "an integer >= 2")},
    "temporal": {"resolution": _RESOLUTION},
}


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
    specs = PARAMS[name]
    params = dict(params or {})
    unknown = sorted(set(params) - set(specs))
    if unknown:
        known = ", ".join(specs) if specs else "none"
        raise error(f"loss term '{name}': unknown param(s) {unknown}; it accepts: {known}")
    return {k: _coerce(name, k, s, params.get(k, s.default)) for k, s in specs.items()}


def check_term_name(name: str) -> None:
    if name not in TERMS:
        raise error(f"unknown loss term {name!r}; expected one of: {', '.join(TERMS)}")


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
    if name not in IMAGE_TERMS:
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
# Resizing and weighting.


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
    size = loss_size(images.shape[-2], images.shape[-1], resolution)
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="area")


def resize_to(
    images: torch.Tensor, size: tuple[int, int], upsample: str = "bilinear"
) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, C, *size]``: area when shrinking (no aliasing), ``upsample``
    (bilinear or bicubic) when growing; unchanged when the size matches."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    if images.shape[-2] >= size[0] and images.shape[-1] >= size[1]:
        return F.interpolate(images, size=size, mode="area")
    return F.interpolate(images, size=size, mode=upsample, align_corners=False)


def resize_mask(
    mask: torch.Tensor,
    size: tuple[int, int],
    batch: int,
    indices: Sequence[int] | None = None,
) -> torch.Tensor:
    """A MASK ``[N, H, W]`` -> weights ``[batch or 1, 1, *size]`` for a batch of ``batch`` frames.

    Rows: one row broadcasts; else ``indices`` pick the batch's rows; else N must equal batch.

    >>> resize_mask(torch.ones(1, 64, 64), (16, 16), batch=4).shape
    torch.Size([1, 1, 16, 16])
    """
    if mask.shape[0] != 1:
        if indices is not None:
            idx = list(indices)
            if len(idx) != batch or max(idx) >= mask.shape[0] or min(idx) < -mask.shape[0]:
                raise error(
                    f"mask has {mask.shape[0]} frames; cannot pick rows {idx} for {batch} images"
                )
            mask = mask[idx]
        elif mask.shape[0] != batch:
            raise error(f"mask has {mask.shape[0]} frames but the batch has {batch} images")
    return resize_to(mask[:, None].float(), size)


def weighted_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-frame mean of ``values [B, C, h, w]`` weighted by ``mask [B or 1, 1, h, w]`` -> ``[B]``.

    Normalised by the mask's mean: ones equal no mask; an all-zero mask gives 0.

    >>> weighted_mean(torch.ones(2, 3, 4, 4), torch.ones(1, 1, 4, 4))
    tensor([1., 1.])
    """
    if mask is None:
        return values.mean(dim=(1, 2, 3))
    mask = mask.to(values.device, values.dtype)
    if tuple(mask.shape[-2:]) != tuple(values.shape[-2:]):
        mask = resize_to(mask, tuple(values.shape[-2:]))
    num = (values * mask).mean(dim=(1, 2, 3))
    den = mask.mean(dim=(1, 2, 3)).clamp_min(1e-8)
    return num / den


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


def gaussian_window(size: int, sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """A normalised 1-D Gaussian ``[size]``."""
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-coords.square() / (2 * sigma * sigma))
    return g / g.sum()


def _blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable depthwise blur with reflect padding; ``[B, C, H, W]`` keeps its size."""
    channels, pad = x.shape[1], kernel.numel() // 2
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    x = F.pad(x, (pad, pad, pad, pad), mode=mode)
    kh = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    kw = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    return F.conv2d(F.conv2d(x, kh, groups=channels), kw, groups=channels)


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
    mu_x, mu_y = _blur(x, kernel), _blur(y, kernel)
    var_x = _blur(x * x, kernel) - mu_x.square()
    var_y = _blur(y * y, kernel) - mu_y.square()
    cov = _blur(x * y, kernel) - mu_x * mu_y
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
# LPIPS, with backbone weights we find ourselves (never downloaded).

BACKBONE_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}
BACKBONE_URL = "https://download.pytorch.org/models/"
_LPIPS_CACHE: dict[tuple[str, str, str], torch.nn.Module] = {}


def hub_checkpoint_dir() -> str:
    """The torch hub cache's ``checkpoints`` folder, where torchvision keeps its downloads."""
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def lpips_search_folders(folders: Sequence[str] = ()) -> list[str]:
    """The folders searched for a backbone file: ``folders`` in order, then the hub cache."""
    out: list[str] = []
    for folder in [*folders, hub_checkpoint_dir()]:
        folder = os.path.abspath(os.path.expanduser(str(folder)))
        if folder not in out:
            out.append(folder)
    return out


def find_lpips_backbone(net: str, folders: Sequence[str] = ()) -> str | None:
    """Path of torchvision's ImageNet weights for ``net`` (``'vgg'``/``'alex'``), or None.

    Accepts the original ``.pth`` name or the same stem with ``.safetensors``.
    """
    stem = os.path.splitext(BACKBONE_FILES[net])[0]
    for folder in lpips_search_folders(folders):
        for name in (stem + ".pth", stem + ".safetensors"):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    return None


def missing_backbone_error(net: str, folders: Sequence[str] = ()):
    name = BACKBONE_FILES[net]
    searched = "\n  ".join(lpips_search_folders(folders))
    return error(
        f"LPIPS-{net} needs the ImageNet backbone weights '{name}' (torchvision's file, "
        f"{BACKBONE_URL}{name}), and latentmirror never downloads it. Searched:\n  {searched}\n"
        "Put the file into ComfyUI's models/lpips/ folder (headless: the pack's models/lpips/ or "
        "--models-dir/lpips/), or into the torch hub cache above. The terms l1, l2, ssim and "
        "d_features need no download.",
        file=name,
    )


def _backbone_state(path: str) -> dict[str, torch.Tensor]:
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file
        raise error(f"cannot read LPIPS backbone weights: {exc}", file=path) from None
    if not isinstance(state, Mapping):
        raise error("LPIPS backbone file holds no state dict", file=path)
    return dict(state)


def load_lpips_backbone(module: torch.nn.Module, path: str) -> None:
    """Load torchvision ``features.N.*`` weights into lpips' ``net.sliceK.N.*`` modules."""
    state = _backbone_state(path)
    slice_of = {}  # torchvision layer index -> lpips slice name
    for slice_name, block in module.net.named_children():
        for index, _layer in block.named_children():
            slice_of[index] = slice_name
    mapped = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "features" and parts[1] in slice_of:
            mapped[f"{slice_of[parts[1]]}.{parts[1]}.{parts[2]}"] = value
    try:
        module.net.load_state_dict(mapped, strict=True)
    except RuntimeError as exc:
        raise error(f"not a matching torchvision backbone: {exc}", file=path) from None


def load_lpips(
    net: str,
    device: torch.device | str = "cpu",
    folders: Sequence[str] = (),
    allow_random_backbone: bool = False,
) -> torch.nn.Module:
    """An ``lpips.LPIPS`` module (eval, frozen, float32), cached per (net, device, backbone).

    The linear layers ship with the lpips package; the backbone comes from
    :func:`find_lpips_backbone`. Without it: a LatentmirrorError naming the file and folders, or
    (``allow_random_backbone``, for tests only) random backbone weights.
    """
    if net not in BACKBONE_FILES:
        raise error(f"unknown LPIPS network {net!r}; expected 'vgg' or 'alex'")
    path = find_lpips_backbone(net, folders)
    if path is None and not allow_random_backbone:
        raise missing_backbone_error(net, folders)
    key = (net, str(torch.device(device)), path or "<random>")
    module = _LPIPS_CACHE.get(key)
    if module is None:
        import lpips

        with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained`
            warnings.simplefilter("ignore")
            module = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
        if path is not None:
            load_lpips_backbone(module, path)
        module = module.eval().requires_grad_(False).to(device=device, dtype=torch.float32)
        _LPIPS_CACHE[key] = module
    return module


def lpips_features(module: torch.nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """Unit-normalised backbone features of ``images [B, 3, H, W]`` in [-1, 1] (LPIPS v0.1)."""
    outs = module.net(module.scaling_layer(images))
    return [o / (o.square().sum(dim=1, keepdim=True).sqrt() + 1e-10) for o in outs]


def lpips_distance(
    module: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor | None = None,
    y_features: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """LPIPS per frame ``[B]``; with a mask each layer's distance map is weighted at its size.

    Without a mask this equals ``module(x, y)``. ``y_features`` (from :func:`lpips_features`)
    skips recomputing a fixed target.
    """
    fx = lpips_features(module, x)
    fy = y_features if y_features is not None else lpips_features(module, y)
    total = 0
    for lin, a, b in zip(module.lins, fx, fy, strict=True):
        total = total + weighted_mean(lin((a - b).square()), mask)
    return total


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
        names = {t.name for t in mix}
        if "d_features" in names and (model is None or model.discriminator is None):
            raise error(
                "the d_features term needs the model's discriminator; this model file has none "
                "(use lpips_vgg, l1 or ssim instead)",
                file=getattr(model, "source", None),
            )
        if "w_prior" in names and model is None:
            raise error("the w_prior term needs the model (for w_avg)")
        self._lpips_folders = list(lpips_folders)
        self._allow_random = allow_random_backbone
        self._lpips_modules: dict[tuple[str, str], torch.nn.Module] = {}
        for name in names & set(LPIPS_NETS):
            self.lpips_module(LPIPS_NETS[name], self.device)
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
        tgt32 = target.to(output.device).float()
        cacheable = self._cached_target is not None
        values = []
        for index, term in enumerate(self.mix):
            values.append(
                self._term(index, term, out32, tgt32, cacheable, ws, noise, prev_output,
                           prev_target, mask_indices, c)
            )  # fmt: skip
        weights = torch.tensor([t.weight for t in self.mix], device=output.device)
        stacked = torch.stack([v.to(output.device).float().reshape([]) for v in values])
        total = (stacked * weights).sum()
        floats = stacked.detach().cpu().tolist()
        return LossResult(total, dict(zip(self.labels, floats, strict=True)))

    def _term(self, index, term, out, tgt, cacheable, ws, noise, prev_out, prev_tgt, idx, c):
        name, p = term.name, term.params
        memo = self._cached if cacheable else (lambda _key, make: make())
        if name == "w_prior":
            if ws is None:
                raise error("the w_prior term needs ws")
            return w_prior(ws, self.model.w_avg)
        if name == "noise_reg":
            return noise_regularization(noise, p["min_size"]).to(out.device)
        if name == "d_features":
            D = self.model.discriminator
            if D.c_dim > 0 and c is None:
                raise error("d_features: this discriminator is conditional; give labels c")
            mask = self._mask(index, term, (D.img_resolution,) * 2, out.shape[0], idx, out.device)
            fy = memo(("d", index), lambda: discriminator_features(D, tgt, c))
            fx = discriminator_features(D, out, c)
            return feature_distance(fx, fy, mask, p["distance"]).mean()

        res = p["resolution"]
        x = resize_for_loss(out, res)
        y = memo(("resize", res), lambda: resize_for_loss(tgt, res))
        mask = self._mask(index, term, tuple(x.shape[-2:]), x.shape[0], idx, out.device)
        if name in LPIPS_NETS:
            module = self.lpips_module(LPIPS_NETS[name], out.device)
            fy = memo(("lpips", name, res), lambda: lpips_features(module, y))
            return lpips_distance(module, x, y, mask, fy).mean()
        if name == "l1":
            return l1_distance(x, y, mask).mean()
        if name == "l2":
            return l2_distance(x, y, mask).mean()
        if name == "ssim":
            if p["multiscale"]:
                value = ms_ssim(x, y, mask, p["window"], p["sigma"], p["scales"])
            else:
                value = ssim(x, y, mask, p["window"], p["sigma"])
            return (1 - value).mean()
        if name == "temporal":
            prev_x = prev_y = None
            if prev_out is not None or prev_tgt is not None:
                if prev_out is None or prev_tgt is None:
                    raise error("temporal term: give both prev_output and prev_target, or neither")
                prev_x = resize_for_loss(prev_out.reshape(1, *out.shape[1:]).float(), res)
                prev_y = resize_for_loss(prev_tgt.reshape(1, *out.shape[1:]).float(), res)
            return temporal_change(x, y, prev_x, prev_y, mask)
        raise AssertionError(name)  # pragma: no cover - names are validated

    def _mask(self, index, term, size, batch, indices, device):
        if term.mask is None:
            return None
        key = ("mask", index, tuple(size), batch, tuple(indices) if indices is not None else None)
        if key not in self._cache:
            self._cache[key] = resize_mask(term.mask, tuple(size), batch, indices).to(device)
        return self._cache[key]
