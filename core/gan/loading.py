"""``load_gan``: NVlabs ``.pkl``, rosinality ``.pt`` and our ``.safetensors`` onto our networks.

The format is told from the file's bytes, not its name. Every path ends in the same place: a
kind (``stylegan2`` | ``stylegan3``), the class and init kwargs of G (and D), and a flat state
whose keys are the NVlabs ``state_dict`` keys, which our networks share, so
``load_state_dict(strict=True)`` checks that every tensor found its place.

Canonical form (``save_safetensors``): tensors ``G.<key>`` and ``D.<key>``; the safetensors
metadata entry ``latentmirror`` holds JSON ``{"format": "latentmirror-gan", "version": 1, "kind",
"generator": {"class", "kwargs"}, "discriminator": {...} | null}``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import error
from ..storage import require_regular_file, write_atomically
from . import bounds, safe_pickle, tf_convert, tf_pickle
from .model import GanModel

FORMAT_ID = "latentmirror-gan"
FORMAT_VERSION = 1
METADATA_KEY = "latentmirror"
TF_FORMAT = "tensorflow-pickle"  # architecture["format"] of a TensorFlow StyleGAN2 pickle
# Images StyleGAN2/3 were trained at, as far as our networks are tested.
RESOLUTIONS = {"stylegan2": (4, 1024), "stylegan3": (16, 1024)}
# The largest released StyleGAN pickles (G, D and G_ema at 1024 px) are under 400 MB; a bigger
# file is not one, and reading it whole could exhaust memory.
MAX_MODEL_BYTES = 4 * 2**30


@dataclass
class _Spec:
    """What a file holds, before any module is built."""

    kind: str
    source_format: str
    g_class: str
    g_kwargs: dict
    g_state: dict[str, torch.Tensor]
    d_class: str | None = None
    d_kwargs: dict | None = None
    d_state: dict[str, torch.Tensor] | None = None
    # rosinality training checkpoints have no latent_avg: estimate w_avg after loading.
    estimate_w_avg: bool = False


# ----------------------------------------------------------------------------------------------
# Public API.


@torch.inference_mode(False)  # ComfyUI runs nodes in inference mode; Invert needs autograd
def load_gan(
    path: str | os.PathLike, device: str | torch.device = "cpu", content_hash: str | None = None
) -> GanModel:
    """Load a StyleGAN2/3 generator (and discriminator, when the file has one).

    ``path``: an NVlabs network pickle (PyTorch, or TensorFlow StyleGAN2), a rosinality
    checkpoint or our ``.safetensors``.
    ``content_hash``: the file's sha256 when the caller has it already (the model cache hashes
    the file to find it), so a large file is not hashed twice.
    Nothing from the file is executed. Raises LatentmirrorError naming the file for a missing,
    truncated or corrupt file, a file of the wrong kind, an unknown architecture, an unsupported
    resolution, or a pickle that names a global outside the allow list.
    """
    path = str(path)
    data = _read(path)
    kind = _sniff(data, path)
    if kind == "safetensors":
        spec = _spec_from_safetensors(data, path)
    elif kind == "pickle":
        networks = safe_pickle.load_pickle(data, path)
        if tf_pickle.holds_tf_network(networks):
            spec = _spec_from_tf(networks, path)
        else:
            spec = _spec_from_nvlabs(networks, path)
    else:  # a torch.save file
        spec = _spec_from_torch(safe_pickle.load_torch(data, path), path)
    generator, discriminator = _build(spec, path)
    architecture = {
        "kind": spec.kind,
        "format": spec.source_format,
        "generator": {"class": spec.g_class, "kwargs": spec.g_kwargs},
        "discriminator": (
            {"class": spec.d_class, "kwargs": spec.d_kwargs} if discriminator is not None else None
        ),
    }
    content_hash = content_hash or hashlib.sha256(data).hexdigest()
    model = GanModel(generator, discriminator, architecture, content_hash, path)
    return model.to(device)


def save_safetensors(
    g: GanModel, path: str | os.PathLike, dtype: torch.dtype = torch.float16
) -> None:
    """Write ``g`` in our canonical form; floating tensors are stored as ``dtype``.

    The file is written under a temporary name and renamed, so a crash leaves no partial file.
    """
    from safetensors.torch import save

    tensors = {}
    for prefix, net in (("G", g.generator), ("D", g.discriminator)):
        if net is None:
            continue
        for key, tensor in net.state_dict().items():
            tensor = tensor.detach().to("cpu")
            if tensor.is_floating_point():
                tensor = tensor.to(dtype)
            tensors[f"{prefix}.{key}"] = tensor.contiguous().clone()
    arch = g.architecture
    meta = {
        "format": FORMAT_ID,
        "version": FORMAT_VERSION,
        "kind": arch["kind"],
        "generator": arch["generator"],
        "discriminator": arch["discriminator"],
    }
    # One metadata entry only: safetensors writes metadata in hash-map order, and a single key
    # keeps the file byte-identical for identical content.
    blob = save(tensors, metadata={METADATA_KEY: json.dumps(meta)})

    def write(temporary: str) -> None:
        with open(temporary, "wb") as f:
            f.write(blob)

    write_atomically(str(path), write)


def is_latentmirror_gan_file(path: str | os.PathLike) -> bool:
    """A ``.safetensors`` file :func:`save_safetensors` wrote (only its header is read): the one
    kind of file a save may replace."""
    from safetensors import safe_open

    if not os.path.isfile(path):
        return False
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(METADATA_KEY, "null"))
    except Exception:  # safetensors raises several types for what is not its format
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT_ID


# ----------------------------------------------------------------------------------------------
# Reading and telling formats apart.

_TORCH_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_OTHER_KINDS = {
    b"\x76\x2f\x31\x01": "an OpenEXR image",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"\x1f\x8b": "a gzip archive",
    b"{": "a JSON file",
}


def _read(path: str) -> bytes:
    require_regular_file(path, "GAN model file")
    size = os.path.getsize(path)
    if size > MAX_MODEL_BYTES:
        raise error(
            f"the GAN model file holds {size / 2**30:.1f} GiB, more than any StyleGAN2/3 model "
            f"({MAX_MODEL_BYTES // 2**30} GiB at most)",
            file=path,
        )
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise error(f"cannot read the GAN model file: {exc.strerror or exc}", file=path) from None


def _sniff(data: bytes, path: str) -> str:
    """'pickle' | 'torch' | 'safetensors', from the leading bytes."""
    if not data:
        raise error("the GAN model file is empty", file=path)
    if data.startswith(b"PK\x03\x04"):
        return "torch"
    if data[:1] == b"\x80" and data[2:4] == b"\x8a\x0a" and data[4:14] == _TORCH_LEGACY_MAGIC:
        return "torch"
    if data[:1] == b"\x80" and 2 <= data[1] <= 5:
        return "pickle"
    if len(data) >= 10:
        header_len = int.from_bytes(data[:8], "little")
        if data[8:9] == b"{" and header_len >= 2:
            return "safetensors"
    what = next((w for m, w in _OTHER_KINDS.items() if data.startswith(m)), "an unknown format")
    raise error(
        f"wrong kind of file: {what}; expected an NVlabs network pickle (.pkl), a rosinality "
        "checkpoint (.pt) or a latentmirror .safetensors GAN",
        file=path,
    )


# ----------------------------------------------------------------------------------------------
# NVlabs network pickles.


def _spec_from_nvlabs(obj: object, path: str) -> _Spec:
    if not isinstance(obj, dict):
        raise error(
            f"wrong kind of pickle: it holds {_kind_of(obj)}, not an NVlabs network pickle (no "
            "dict)",
            file=path,
        )
    g = next((obj[k] for k in ("G_ema", "G") if k in obj and obj[k] is not None), None)
    if not isinstance(g, safe_pickle.PersistentRecord):
        raise error(
            "wrong kind of pickle: it has no network 'G_ema' or 'G' (not an NVlabs network pickle)",
            file=path,
        )
    kind = _nvlabs_kind(g, path)
    spec = _Spec(kind, "nvlabs-pickle", g.class_name, g.init_kwargs, g.state)
    d = obj.get("D")
    if isinstance(d, safe_pickle.PersistentRecord):
        if d.class_name == "Discriminator" and not d.init_args and "b4.out.weight" in d.state:
            spec.d_class, spec.d_kwargs, spec.d_state = d.class_name, d.init_kwargs, d.state
        else:
            warnings.warn(f"{path}: unknown discriminator '{d.class_name}' left out", stacklevel=3)
    return spec


def _spec_from_tf(networks: tuple, path: str) -> _Spec:
    """A TensorFlow StyleGAN2 pickle's (G, D, Gs): Gs as our generator, and D."""
    tf = tf_convert.convert_tf_pickle(networks, path)
    spec = _Spec("stylegan2", TF_FORMAT, "Generator", tf.g_kwargs, tf.g_state)
    spec.d_class, spec.d_kwargs, spec.d_state = "Discriminator", tf.d_kwargs, tf.d_state
    return spec


def _kind_of(obj: object) -> str:
    """'a torch.Tensor', 'a list' ...: what a file held instead of a model, for messages."""
    kind = type(obj)
    return (
        f"a {kind.__qualname__}"
        if kind.__module__ == "builtins"
        else f"a {kind.__module__}.{kind.__qualname__}"
    )


def _nvlabs_kind(g: safe_pickle.PersistentRecord, path: str) -> str:
    """'stylegan2' | 'stylegan3', from the generator's class name and state keys."""
    if g.class_name == "Generator" and not g.init_args:
        if any(k.startswith("synthesis.input.") for k in g.state):
            return "stylegan3"
        if "synthesis.b4.const" in g.state:
            return "stylegan2"
    raise error(
        f"unknown architecture: generator class '{g.class_name}' is neither the StyleGAN2 nor the "
        "StyleGAN3 Generator",
        file=path,
    )


# ----------------------------------------------------------------------------------------------
# rosinality checkpoints (stylegan2-pytorch, and tools built on it such as e4e and PTI).


def _spec_from_torch(ckpt: object, path: str) -> _Spec:
    if not isinstance(ckpt, dict):
        raise error(
            f"wrong kind of torch file: it holds {_kind_of(ckpt)}, not a checkpoint dict", file=path
        )
    g_state = next((ckpt[k] for k in ("g_ema", "g") if isinstance(ckpt.get(k), dict)), None)
    if g_state is None and isinstance(ckpt.get("state_dict"), dict):  # e4e / pSp encoders
        sd = ckpt["state_dict"]
        g_state = {k[len("decoder.") :]: v for k, v in sd.items() if k.startswith("decoder.")}
    if not g_state or "style.1.weight" not in g_state:
        raise error(
            "wrong kind of torch file: no rosinality StyleGAN2 generator ('g_ema' or 'g') in it",
            file=path,
        )
    g_kwargs, g_named, res = _rosinality_generator(g_state, path)
    spec = _Spec("stylegan2", "rosinality", "Generator", g_kwargs, g_named)
    latent_avg = ckpt.get("latent_avg")
    if isinstance(latent_avg, torch.Tensor) and latent_avg.shape[-1] == g_kwargs["w_dim"]:
        spec.g_state["mapping.w_avg"] = latent_avg.reshape(-1, g_kwargs["w_dim"]).float().mean(0)
    else:
        spec.estimate_w_avg = True
    if isinstance(ckpt.get("d"), dict) and "final_linear.1.weight" in ckpt["d"]:
        spec.d_kwargs, spec.d_state = _rosinality_discriminator(ckpt["d"], res, path)
        spec.d_class = "Discriminator"
    return spec


def _channel_config(channels: dict[int, int], path: str) -> tuple[int, int]:
    """NVlabs' ``channel_base``/``channel_max`` that give ``channels[res]`` at every res."""
    channel_max = max(channels.values())
    below = [r * c for r, c in channels.items() if c < channel_max]
    channel_base = min(below) if below else channel_max * max(channels)
    for res, ch in channels.items():
        if min(channel_base // res, channel_max) != ch:
            raise error(
                f"unknown architecture: channel counts {dict(sorted(channels.items()))} do not "
                "follow StyleGAN2's min(channel_base / res, channel_max) rule",
                file=path,
            )
    return channel_base, channel_max


def _check_blur(tensor: torch.Tensor, key: str, path: str) -> None:
    """rosinality's fixed blur kernels must be the [1, 3, 3, 1] filter our networks use."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    expected = torch.outer(k, k)
    t = tensor.float()
    if t.shape != expected.shape or not torch.allclose(t / t.sum(), expected / expected.sum()):
        raise error(f"unknown architecture: '{key}' is not the [1, 3, 3, 1] blur kernel", file=path)


def _modconv(src: dict, ros: str, nv: str, out: dict, noise: torch.Tensor | None) -> None:
    """One rosinality StyledConv (``ros``) -> NVlabs SynthesisLayer (``nv``)."""
    out[f"{nv}.weight"] = src[f"{ros}.conv.weight"][0]
    out[f"{nv}.affine.weight"] = src[f"{ros}.conv.modulation.weight"]
    out[f"{nv}.affine.bias"] = src[f"{ros}.conv.modulation.bias"]
    out[f"{nv}.noise_strength"] = src[f"{ros}.noise.weight"].reshape([])
    out[f"{nv}.bias"] = src[f"{ros}.activate.bias"]
    if noise is not None:
        out[f"{nv}.noise_const"] = noise[0, 0]


def _torgb(src: dict, ros: str, nv: str, out: dict) -> None:
    """One rosinality ToRGB -> NVlabs ToRGBLayer."""
    out[f"{nv}.weight"] = src[f"{ros}.conv.weight"][0]
    out[f"{nv}.affine.weight"] = src[f"{ros}.conv.modulation.weight"]
    out[f"{nv}.affine.bias"] = src[f"{ros}.conv.modulation.bias"]
    out[f"{nv}.bias"] = src[f"{ros}.bias"].reshape(-1)


def _rosinality_generator(src: dict, path: str) -> tuple[dict, dict, int]:
    """(NVlabs Generator kwargs, renamed state, resolution) from a rosinality ``g_ema``."""
    n_mlp = sum(1 for k in src if k.startswith("style.") and k.endswith(".weight"))
    style_dim = src["style.1.weight"].shape[1]
    n_torgb = sum(1 for k in src if k.startswith("to_rgbs.") and k.endswith(".conv.weight"))
    log_size = n_torgb + 2
    resolution = 2**log_size
    _check_resolution("stylegan2", resolution, path)
    try:
        out = {}
        for i in range(n_mlp):
            out[f"mapping.fc{i}.weight"] = src[f"style.{i + 1}.weight"]
            out[f"mapping.fc{i}.bias"] = src[f"style.{i + 1}.bias"]
        out["synthesis.b4.const"] = src["input.input"][0]
        _modconv(src, "conv1", "synthesis.b4.conv1", out, src.get("noises.noise_0"))
        _torgb(src, "to_rgb1", "synthesis.b4.torgb", out)
        channels = {4: src["input.input"].shape[1]}
        for k in range(log_size - 2):
            res = 2 ** (k + 3)
            nv = f"synthesis.b{res}"
            _modconv(
                src, f"convs.{2 * k}", f"{nv}.conv0", out, src.get(f"noises.noise_{2 * k + 1}")
            )
            _modconv(
                src, f"convs.{2 * k + 1}", f"{nv}.conv1", out, src.get(f"noises.noise_{2 * k + 2}")
            )
            _torgb(src, f"to_rgbs.{k}", f"{nv}.torgb", out)
            channels[res] = src[f"convs.{2 * k}.conv.weight"].shape[1]
    except KeyError as exc:
        raise error(
            f"unknown architecture: rosinality generator without {exc}", file=path
        ) from None
    used = _used_rosinality_keys(src, n_mlp, log_size)
    for key in src:
        if key.endswith("kernel"):
            _check_blur(src[key], key, path)
        elif key not in used:
            raise error(
                f"unknown architecture: unexpected tensor '{key}' (not StyleGAN2)", file=path
            )
    channel_base, channel_max = _channel_config(channels, path)
    kwargs = {
        "z_dim": style_dim,
        "c_dim": 0,
        "w_dim": style_dim,
        "img_resolution": resolution,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": n_mlp},
        "synthesis_kwargs": {
            "architecture": "skip",
            "channel_base": channel_base,
            "channel_max": channel_max,
            "num_fp16_res": 0,
            "conv_clamp": None,
        },
    }
    return kwargs, out, resolution


def _used_rosinality_keys(src: dict, n_mlp: int, log_size: int) -> set[str]:
    conv = ("conv.weight", "conv.modulation.weight", "conv.modulation.bias", "noise.weight")
    conv += ("activate.bias",)
    rgb = ("conv.weight", "conv.modulation.weight", "conv.modulation.bias", "bias")
    used = {f"style.{i + 1}.{p}" for i in range(n_mlp) for p in ("weight", "bias")}
    used |= {"input.input"} | {f"conv1.{p}" for p in conv} | {f"to_rgb1.{p}" for p in rgb}
    used |= {f"noises.noise_{i}" for i in range((log_size - 2) * 2 + 1)}
    for k in range(log_size - 2):
        used |= {f"convs.{j}.{p}" for j in (2 * k, 2 * k + 1) for p in conv}
        used |= {f"to_rgbs.{k}.{p}" for p in rgb}
    return used


def _rosinality_discriminator(src: dict, resolution: int, path: str) -> tuple[dict, dict]:
    """(NVlabs Discriminator kwargs, renamed state) from a rosinality ``d``."""
    log_size = int(math.log2(resolution))
    out: dict[str, torch.Tensor] = {}
    channels: dict[int, int] = {}
    try:
        out[f"b{resolution}.fromrgb.weight"] = src["convs.0.0.weight"]
        out[f"b{resolution}.fromrgb.bias"] = src["convs.0.1.bias"]
        for j in range(1, log_size - 1):
            res, nv = resolution >> (j - 1), f"b{resolution >> (j - 1)}"
            out[f"{nv}.conv0.weight"] = src[f"convs.{j}.conv1.0.weight"]
            out[f"{nv}.conv0.bias"] = src[f"convs.{j}.conv1.1.bias"]
            out[f"{nv}.conv1.weight"] = src[f"convs.{j}.conv2.1.weight"]
            out[f"{nv}.conv1.bias"] = src[f"convs.{j}.conv2.2.bias"]
            out[f"{nv}.skip.weight"] = src[f"convs.{j}.skip.1.weight"]
            channels[res] = src[f"convs.{j}.conv1.0.weight"].shape[0]
        for ros, nv in (("final_conv.0", "b4.conv"), ("final_linear.0", "b4.fc")):
            out[f"{nv}.weight"] = src[f"{ros}.weight"]
        out["b4.conv.bias"] = src["final_conv.1.bias"]
        out["b4.fc.bias"] = src["final_linear.0.bias"]
        out["b4.out.weight"] = src["final_linear.1.weight"]
        out["b4.out.bias"] = src["final_linear.1.bias"]
        channels[4] = src["final_conv.0.weight"].shape[0]
    except KeyError as exc:
        raise error(
            f"unknown architecture: rosinality discriminator without {exc}", file=path
        ) from None
    if len(out) != sum(1 for k in src if not k.endswith("kernel")):
        raise error(
            "unknown architecture: the discriminator has tensors a StyleGAN2 one lacks", file=path
        )
    for key in src:
        if key.endswith("kernel"):
            _check_blur(src[key], key, path)
    channel_base, channel_max = _channel_config(channels, path)
    kwargs = {
        "c_dim": 0,
        "img_resolution": resolution,
        "img_channels": 3,
        "architecture": "resnet",
        "channel_base": channel_base,
        "channel_max": channel_max,
        "num_fp16_res": 0,
        "conv_clamp": None,
        "epilogue_kwargs": {"mbstd_group_size": 4, "mbstd_num_channels": 1},
    }
    return kwargs, out


# ----------------------------------------------------------------------------------------------
# Our canonical .safetensors.


def _spec_from_safetensors(data: bytes, path: str) -> _Spec:
    from safetensors import SafetensorError
    from safetensors.torch import load

    header_len = int.from_bytes(data[:8], "little")
    if 8 + header_len > len(data):
        raise error("truncated safetensors file (header runs past the end)", file=path)
    try:
        header = json.loads(data[8 : 8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get(METADATA_KEY, "null"))
    except (ValueError, AttributeError):
        raise error("corrupt safetensors header", file=path) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_ID:
        raise error(
            "wrong kind of safetensors file: no latentmirror GAN metadata (make one with "
            "`latentmirror convert-model`)",
            file=path,
        )
    if meta.get("version") != FORMAT_VERSION:
        raise error(f"unsupported latentmirror GAN format version {meta.get('version')}", file=path)
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise error(f"corrupt or truncated safetensors file: {exc}", file=path) from None
    gen, disc = meta.get("generator") or {}, meta.get("discriminator")
    spec = _Spec(
        meta.get("kind", "?"),
        "safetensors",
        gen.get("class", "?"),
        gen.get("kwargs", {}),
        {k[2:]: v for k, v in tensors.items() if k.startswith("G.")},
    )
    if isinstance(disc, dict):
        spec.d_class, spec.d_kwargs = disc.get("class"), disc.get("kwargs", {})
        spec.d_state = {k[2:]: v for k, v in tensors.items() if k.startswith("D.")}
    return spec


# ----------------------------------------------------------------------------------------------
# Building our modules.


def _check_resolution(kind: str, resolution: object, path: str) -> None:
    low, high = RESOLUTIONS[kind]
    ok = isinstance(resolution, int) and low <= resolution <= high
    if not ok or resolution & (resolution - 1):
        raise error(
            f"unsupported resolution {resolution}: {kind} models from {low} to {high} px "
            "(powers of two) are supported",
            file=path,
        )


def _classes(kind: str, path: str):
    if kind == "stylegan2":
        from .stylegan2 import Discriminator, Generator
    elif kind == "stylegan3":
        from .stylegan2 import Discriminator
        from .stylegan3 import Generator
    else:
        raise error(f"unknown architecture kind '{kind}'", file=path)
    return {"Generator": Generator, "Discriminator": Discriminator}


def _build(spec: _Spec, path: str) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    classes = _classes(spec.kind, path)
    _check_resolution(spec.kind, spec.g_kwargs.get("img_resolution"), path)
    fixed = ("resample_filter", "up_filter", "down_filter")
    g_defaults = fixed + (("mapping.w_avg",) if spec.estimate_w_avg else ())
    # Everything checked before a real tensor is allocated: the kwargs decide the memory taken.
    _check_fits(classes, spec.g_class, spec.g_kwargs, spec.g_state, g_defaults, "generator", path)
    if spec.d_class is not None:
        d_kwargs, d_state = spec.d_kwargs or {}, spec.d_state or {}
        _check_fits(classes, spec.d_class, d_kwargs, d_state, fixed, "discriminator", path)
    g = _instantiate(classes, spec.g_class, spec.g_kwargs, path)
    _load_state(g, spec.g_state, g_defaults, path)
    if spec.estimate_w_avg:
        _estimate_w_avg(g)
    d = None
    if spec.d_class is not None:
        d = _instantiate(classes, spec.d_class, spec.d_kwargs or {}, path)
        _load_state(d, spec.d_state or {}, fixed, path)
    return g, d


def _check_fits(
    classes: dict, class_name: str, kwargs: dict, state: dict, defaults: tuple, what: str, path: str
) -> None:
    """The kwargs within bounds, and the network they describe (built on the meta device, shapes
    only) made of exactly the tensors in the file."""
    bounds.check_architecture_bounds(kwargs, what, path)
    shapes = bounds.dry_build(lambda: _instantiate(classes, class_name, kwargs, path))
    _check_state(shapes, state, defaults, path)


def _instantiate(classes: dict, class_name: str, kwargs: dict, path: str) -> torch.nn.Module:
    if class_name not in classes:
        raise error(f"unknown architecture: class '{class_name}'", file=path)
    try:
        return classes[class_name](**kwargs)
    except Exception as exc:  # kwargs from a file: any failure to build is the file's
        raise error(
            f"unknown architecture: cannot build {class_name} from its init kwargs ({exc})",
            file=path,
        ) from None


def _load_state(
    net: torch.nn.Module, state: dict[str, torch.Tensor], defaults: tuple[str, ...], path: str
) -> None:
    """Copy ``state`` into ``net``; every key must match, except fixed filters we rebuild."""
    _check_state(net, state, defaults, path)
    net.load_state_dict({**net.state_dict(), **state}, strict=True)


def _check_state(
    net: torch.nn.Module, state: dict[str, torch.Tensor], defaults: tuple[str, ...], path: str
) -> None:
    """Every tensor of ``net`` in ``state`` with its shape (but the fixed filters we rebuild),
    and nothing else in ``state``."""
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.endswith(defaults)]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {list(state[k].shape)} vs {list(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = [
            f"{label}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
            for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
            if items
        ]
        raise error(
            f"unknown architecture: weights do not fit {type(net).__name__} ({'; '.join(parts)})",
            file=path,
        )


@torch.no_grad()
def _estimate_w_avg(g: torch.nn.Module, samples: int = 10_000, seed: int = 0) -> None:
    """Checkpoints without ``latent_avg``: the mean of W over ``samples`` seeded z."""
    z = torch.randn([samples, g.z_dim], generator=torch.Generator().manual_seed(seed))
    c = torch.zeros([samples, g.c_dim])
    ws = g.mapping(z, c, truncation_psi=1)
    g.mapping.w_avg.copy_(ws[:, 0].mean(0))
