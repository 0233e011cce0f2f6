"""LPIPS (v0.1) with backbone weights we find ourselves: latentmirror never downloads them.

The linear layers ship with the ``lpips`` package; the ImageNet backbone (torchvision's
``vgg16-397923af.pth`` / ``alexnet-owt-7be5be79.pth``) is searched for in the folders a host
gives (ComfyUI's models/lpips, the pack's), then in the torch hub cache. Loaded modules are kept
per (net, device, backbone file) until :func:`latentmirror.core.caches.release_models`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence

import torch

from .caches import register_cache
from .errors import error
from .imageops import weighted_mean

BACKBONE_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}
BACKBONE_URL = "https://download.pytorch.org/models/"
_LPIPS_CACHE: dict[tuple[str, str, str], torch.nn.Module] = {}
register_cache("LPIPS networks", _LPIPS_CACHE)


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


def lpips_features(
    module: torch.nn.Module, images: torch.Tensor, autocast: torch.dtype | None = None
) -> list[torch.Tensor]:
    """Unit-normalised backbone features of ``images [B, 3, H, W]`` in [-1, 1] (LPIPS v0.1),
    float32; the backbone's convolutions under autocast in ``autocast`` when given (most of an
    inversion step's arithmetic at a small model's size)."""
    with torch.autocast(images.device.type, dtype=autocast, enabled=autocast is not None):
        outs = module.net(module.scaling_layer(images))
    outs = [o.float() for o in outs]
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
    fy = y_features if y_features is not None else lpips_features(module, y)
    return lpips_feature_distance(module, lpips_features(module, x), fy, mask)


def lpips_feature_distance(
    module: torch.nn.Module,
    fx: list[torch.Tensor],
    fy: list[torch.Tensor],
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """LPIPS per frame ``[B]`` from :func:`lpips_features` of both sides (``fy`` may have one
    frame for all): each layer's squared difference through its linear layer, averaged
    (weighted by the mask at the layer's size), summed over layers."""
    total = 0
    for lin, a, b in zip(module.lins, fx, fy, strict=True):
        total = total + weighted_mean(lin((a - b).square()), mask)
    return total
