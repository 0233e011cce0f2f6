"""TensorFlow StyleGAN2 networks (:class:`.tf_pickle.TFNetwork`) -> our PyTorch networks.

Covers what NVlabs' TensorFlow code trained with the StyleGAN2 architecture: stylegan2 (configs
E/F: ``G_main`` with ``G_synthesis_stylegan2``, ``D_stylegan2``) and stylegan2-ada TF (``G_main``
with ``G_synthesis``, ``D_main``), any resolution and width, the ``orig``/``skip``/``resnet``
architectures of G and D, and stylegan2-ada's class-conditional models (``LabelEmbed``).

Layout (TF -> ours): dense weights ``[in, out]`` -> ``[out, in]``; conv weights
``[kh, kw, in, out]`` -> ``[out, in, kh, kw]``, with the kernel flipped for the 2x up-sampling
convs (TF runs them as transposed convolutions); modulation biases are stored minus one (TF adds
the 1 at run time); ``synthesis/noise{i}`` ``[1, 1, R, R]`` are the layers' constant noise;
``dlatent_avg`` is ``w_avg``; ``lod`` (progressive growing) is unused.

Every static kwarg is either mapped, checked to have the value our networks compute, or known to
matter only while training; any other kwarg, and any variable left unused, is an error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import error
from .tf_pickle import TFNetwork, is_tf_networks

# Build functions of the TF networks we convert (stylegan2 TF, then stylegan2-ada TF).
GENERATOR_FUNCS = ("G_main",)
MAPPING_FUNCS = ("G_mapping",)
SYNTHESIS_FUNCS = ("G_synthesis_stylegan2", "G_synthesis")
DISCRIMINATOR_FUNCS = ("D_stylegan2", "D_main")
RESAMPLE_KERNEL = [1, 3, 3, 1]

# Kwargs that only steer training or evaluation graphs; they do not change the weights' meaning.
_G_RUNTIME = {
    "truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
    "dlatent_avg_beta", "style_mixing_prob", "randomize_noise", "is_training", "is_validation",
    "return_dlatents", "is_template_graph", "force_clean_graph", "fused_modconv", "dtype",
    "num_fp16_res",
}  # fmt: skip
_D_RUNTIME = {"dtype", "num_fp16_res", "augment_strength", "is_template_graph", "structure"}
# stylegan2-ada's comparison methods: only their "off" values describe a StyleGAN2 D.
_D_OFF = {
    "use_pagan": False, "score_size": 1, "score_max": 1, "use_spectral_norm": False,
    "adaptive_dropout": 0,
}  # fmt: skip


@dataclass
class TFConversion:
    """Our Generator/Discriminator init kwargs and state dicts for one TF pickle."""

    g_kwargs: dict
    g_state: dict[str, torch.Tensor]
    d_kwargs: dict
    d_state: dict[str, torch.Tensor]


def convert_tf_pickle(networks: Any, path: str) -> TFConversion:
    """``(G, D, Gs)`` -> ``Gs`` (the moving average generator, our G_ema) and ``D``."""
    if not is_tf_networks(networks):
        raise error(
            "wrong kind of pickle: it holds TensorFlow networks ('dnnlib.tflib.network.Network'), "
            "but not the (G, D, Gs) tuple of a TensorFlow StyleGAN2 network pickle",
            file=path,
        )
    _g, d, gs = networks
    g_kwargs, g_state = convert_generator(gs, path)
    d_kwargs, d_state = convert_discriminator(d, path)
    return TFConversion(g_kwargs, g_state, d_kwargs, d_state)


# ----------------------------------------------------------------------------------------------
# Shared helpers: kwargs that must all be accounted for, variables that must all be used.


class _Kwargs:
    """A network's static kwargs; :meth:`finish` refuses the ones nobody asked for."""

    def __init__(self, net: TFNetwork, path: str):
        self.net, self.path, self.used = net, path, set()

    def get(self, name: str, default: Any = None) -> Any:
        self.used.add(name)
        return self.net.static_kwargs.get(name, default)

    def require(self, name: str, allowed: tuple | list, default: Any) -> Any:
        value = self.get(name, default)
        if value not in allowed:
            self.refuse(name, value, f"supported: {', '.join(repr(a) for a in allowed)}")
        return value

    def refuse(self, name: str, value: Any, why: str):
        raise error(
            f"unsupported TensorFlow StyleGAN2 network: {self.net.name} kwarg {name}={value!r} "
            f"({why})",
            file=self.path,
        )

    def finish(self, ignored: set[str]) -> None:
        unknown = sorted(set(self.net.static_kwargs) - self.used - ignored)
        if unknown:
            raise error(
                f"unknown TensorFlow StyleGAN2 network kwargs in {self.net.name}: "
                f"{', '.join(unknown)} (not part of the StyleGAN2/StyleGAN2-ADA networks)",
                file=self.path,
            )


class _Variables:
    """A network's variables by full name; each is taken once, leftovers are an error."""

    def __init__(self, net: TFNetwork, path: str):
        self.net, self.path = net, path
        self.left = net.all_variables()

    def has(self, name: str) -> bool:
        return name in self.left

    def take(self, name: str, ndim: int) -> np.ndarray:
        if name not in self.left:
            raise error(
                f"unknown architecture: TensorFlow network {self.net.name} has no variable "
                f"'{name}'",
                file=self.path,
            )
        value = self.left.pop(name)
        if value.ndim != ndim or not np.issubdtype(value.dtype, np.floating):
            raise error(
                f"unknown architecture: TensorFlow variable '{name}' of {self.net.name} is "
                f"{value.dtype} {list(value.shape)}, expected a {ndim}-d float array",
                file=self.path,
            )
        return value

    def finish(self, ignored: tuple[str, ...] = ()) -> None:
        extra = sorted(k for k in self.left if k not in ignored)
        if extra:
            raise error(
                f"unknown architecture: TensorFlow network {self.net.name} has variables our "
                f"StyleGAN2 does not use: {', '.join(extra[:6])}{' ...' if len(extra) > 6 else ''}",
                file=self.path,
            )


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32, order="C"))  # a writable copy


def _dense(array: np.ndarray) -> torch.Tensor:
    """TF dense weight ``[in, out]`` -> ours ``[out, in]``."""
    return _tensor(array.T)


def _conv(array: np.ndarray, flip: bool = False) -> torch.Tensor:
    """TF conv weight ``[kh, kw, in, out]`` -> ours ``[out, in, kh, kw]`` (flipped for up-convs)."""
    if flip:
        array = array[::-1, ::-1]
    return _tensor(array.transpose(3, 2, 0, 1))


def _check_func(net: TFNetwork, allowed: tuple[str, ...], role: str, path: str) -> None:
    if net.build_func_name not in allowed:
        raise error(
            f"unsupported TensorFlow network: the {role} '{net.name}' is built by "
            f"'{net.build_func_name}', not by the StyleGAN2 code ({', '.join(allowed)}); "
            "StyleGAN1 and StyleGAN2 configs A-D are not supported",
            file=path,
        )


def _channels(kw: _Kwargs, resolutions: list[int]) -> tuple[int, int]:
    """(channel_base, channel_max) of our rule ``min(channel_base // res, channel_max)``.

    TF computes ``clip(int(fmap_base / 2 ** (stage * fmap_decay)), fmap_min, fmap_max)`` with
    stage = log2(res) - 1; the two agree for channel_base = 2 * fmap_base when fmap_decay is 1
    and fmap_min never bites.
    """
    fmap_base = kw.get("fmap_base", 16 << 10)
    fmap_max = kw.get("fmap_max", 512)
    decay = kw.require("fmap_decay", (1, 1.0), 1)
    fmap_min = kw.get("fmap_min", 1)
    if not (isinstance(fmap_base, int) and isinstance(fmap_max, int) and fmap_base > 0):
        kw.refuse("fmap_base", fmap_base, "a positive integer expected")
    for res in resolutions:
        stage = int(np.log2(res)) - 1
        tf = int(np.clip(int(fmap_base / 2.0 ** (stage * decay)), fmap_min, fmap_max))
        if tf != min(2 * fmap_base // res, fmap_max):
            kw.refuse("fmap_min", fmap_min, f"it changes the channel count at {res}x{res}")
    return 2 * fmap_base, fmap_max


def _resolution(kw: _Kwargs) -> tuple[int, int]:
    resolution = kw.get("resolution", 1024)
    if not isinstance(resolution, int) or resolution < 4 or resolution & (resolution - 1):
        kw.refuse("resolution", resolution, "a power of two >= 4 expected")
    return resolution, int(np.log2(resolution))


# ----------------------------------------------------------------------------------------------
# Generator.


def convert_generator(net: TFNetwork, path: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """A TF ``G_main`` network (G or Gs) -> (our Generator kwargs, state dict)."""
    _check_func(net, GENERATOR_FUNCS, "generator", path)
    for name, funcs in (("mapping", MAPPING_FUNCS), ("synthesis", SYNTHESIS_FUNCS)):
        if name not in net.components:
            raise error(f"unknown architecture: TF generator without '{name}'", file=path)
        _check_func(net.components[name], funcs, f"{name} network", path)
    kw, var = _Kwargs(net, path), _Variables(net, path)
    kw.require("mapping_func", MAPPING_FUNCS, "G_mapping")
    kw.require("synthesis_func", SYNTHESIS_FUNCS, net.components["synthesis"].build_func_name)
    mapping_kwargs, state = _mapping(kw, var, path)
    synthesis_kwargs = _synthesis(kw, var, state)
    kwargs = {
        "z_dim": kw.get("latent_size", 512),
        "c_dim": kw.get("label_size", 0),
        "w_dim": kw.get("dlatent_size", 512),
        "img_resolution": kw.get("resolution", 1024),
        "img_channels": kw.get("num_channels", 3),
        "mapping_kwargs": mapping_kwargs,
        "synthesis_kwargs": synthesis_kwargs,
    }
    kw.finish(_G_RUNTIME)
    var.finish(ignored=("lod",))
    return kwargs, state


def _mapping(kw: _Kwargs, var: _Variables, path: str) -> tuple[dict, dict[str, torch.Tensor]]:
    z_dim, c_dim = kw.get("latent_size", 512), kw.get("label_size", 0)
    num_layers = kw.get("mapping_layers", 8)
    kw.get("mapping_fmaps")  # read from the weights below: TF defaults differ between repos
    kw.get("label_fmaps")
    kw.require("normalize_latents", (True,), True)
    state: dict[str, torch.Tensor] = {}
    if var.has("mapping/LabelConcat/weight"):
        raise error(
            "unsupported TensorFlow network: a class-conditional stylegan2 (TF) generator "
            "('mapping/LabelConcat': labels concatenated before normalization) has no PyTorch "
            "StyleGAN2 equivalent; stylegan2-ada's conditional models ('LabelEmbed') are supported",
            file=path,
        )
    embed_features = None
    if c_dim:
        weight = var.take("mapping/LabelEmbed/weight", 2)
        embed_features = weight.shape[1]
        state["mapping.embed.weight"] = _dense(weight)
        state["mapping.embed.bias"] = _tensor(var.take("mapping/LabelEmbed/bias", 1))
    if not isinstance(num_layers, int) or num_layers < 1:
        kw.refuse("mapping_layers", num_layers, "at least one mapping layer expected")
    for i in range(num_layers):
        state[f"mapping.fc{i}.weight"] = _dense(var.take(f"mapping/Dense{i}/weight", 2))
        state[f"mapping.fc{i}.bias"] = _tensor(var.take(f"mapping/Dense{i}/bias", 1))
    layer_features = state["mapping.fc0.weight"].shape[0] if num_layers > 1 else None
    state["mapping.w_avg"] = _tensor(var.take("dlatent_avg", 1))
    if state["mapping.fc0.weight"].shape[1] != z_dim + (embed_features or 0):
        kw.refuse("latent_size", z_dim, "it does not match the first mapping layer's weight")
    beta = kw.get("dlatent_avg_beta", 0.995)
    mapping_kwargs = {
        "num_layers": num_layers,
        "embed_features": embed_features,
        "layer_features": layer_features,
        "activation": kw.get("mapping_nonlinearity", "lrelu"),
        "lr_multiplier": kw.get("mapping_lrmul", 0.01),
        "w_avg_beta": 1 if beta is None else beta,  # TF None = no tracking
    }
    return mapping_kwargs, state


def _synthesis(kw: _Kwargs, var: _Variables, state: dict[str, torch.Tensor]) -> dict:
    resolution, log2 = _resolution(kw)
    architecture = kw.require("architecture", ("orig", "skip", "resnet"), "skip")
    channel_base, channel_max = _channels(kw, [2**r for r in range(2, log2 + 1)])
    kw.require("resample_kernel", (RESAMPLE_KERNEL,), RESAMPLE_KERNEL)
    use_noise = kw.require("use_noise", (True, False), True)
    fmap_const = kw.get("fmap_const")
    if fmap_const is not None and fmap_const != min(channel_base // 4, channel_max):
        kw.refuse("fmap_const", fmap_const, "our 4x4 constant has the 4x4 layer's width")

    def layer(tf: str, ours: str, noise_index: int, up: bool = False) -> None:
        tf = f"synthesis/{tf}"
        state[f"{ours}.weight"] = _conv(var.take(f"{tf}/weight", 4), flip=up)
        state[f"{ours}.bias"] = _tensor(var.take(f"{tf}/bias", 1))
        state[f"{ours}.affine.weight"] = _dense(var.take(f"{tf}/mod_weight", 2))
        state[f"{ours}.affine.bias"] = _tensor(var.take(f"{tf}/mod_bias", 1) + 1)
        if use_noise:
            strength = var.take(f"{tf}/noise_strength", 0)
            state[f"{ours}.noise_strength"] = _tensor(strength)
            state[f"{ours}.noise_const"] = _tensor(
                var.take(f"synthesis/noise{noise_index}", 4)[0, 0]
            )

    def torgb(res: int) -> None:
        tf, ours = f"synthesis/{res}x{res}/ToRGB", f"synthesis.b{res}.torgb"
        state[f"{ours}.weight"] = _conv(var.take(f"{tf}/weight", 4))
        state[f"{ours}.bias"] = _tensor(var.take(f"{tf}/bias", 1))
        state[f"{ours}.affine.weight"] = _dense(var.take(f"{tf}/mod_weight", 2))
        state[f"{ours}.affine.bias"] = _tensor(var.take(f"{tf}/mod_bias", 1) + 1)

    state["synthesis.b4.const"] = _tensor(var.take("synthesis/4x4/Const/const", 4)[0])
    layer("4x4/Conv", "synthesis.b4.conv1", 0)
    if architecture == "skip":
        torgb(4)
    for r in range(3, log2 + 1):
        res = 2**r
        layer(f"{res}x{res}/Conv0_up", f"synthesis.b{res}.conv0", 2 * r - 5, up=True)
        layer(f"{res}x{res}/Conv1", f"synthesis.b{res}.conv1", 2 * r - 4)
        if architecture == "resnet":
            skip = var.take(f"synthesis/{res}x{res}/Skip/weight", 4)
            state[f"synthesis.b{res}.skip.weight"] = _conv(skip, flip=True)
        if architecture == "skip" or res == resolution:
            torgb(res)
    return {
        "architecture": architecture,
        "channel_base": channel_base,
        "channel_max": channel_max,
        "num_fp16_res": 0,  # TF's mixed precision is a speed setting; we run float32
        "conv_clamp": kw.get("conv_clamp"),
        "use_noise": use_noise,
        "activation": kw.get("nonlinearity", "lrelu"),
    }


# ----------------------------------------------------------------------------------------------
# Discriminator.


def convert_discriminator(net: TFNetwork, path: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """A TF ``D_stylegan2`` / ``D_main`` network -> (our Discriminator kwargs, state dict)."""
    _check_func(net, DISCRIMINATOR_FUNCS, "discriminator", path)
    ada = net.build_func_name == "D_main"
    kw, var = _Kwargs(net, path), _Variables(net, path)
    resolution, log2 = _resolution(kw)
    if resolution < 8:
        kw.refuse("resolution", resolution, "discriminators from 8x8 up are supported")
    architecture = kw.require("architecture", ("orig", "skip", "resnet"), "resnet")
    channel_base, channel_max = _channels(kw, [2**r for r in range(1, log2 + 1)])
    kw.require("resample_kernel", (RESAMPLE_KERNEL,), RESAMPLE_KERNEL)
    for name, off in _D_OFF.items():
        kw.require(name, (off,), off)
    c_dim = kw.get("label_size", 0)
    if c_dim and not ada:
        raise error(
            "unsupported TensorFlow network: a class-conditional stylegan2 (TF) discriminator "
            "(label projection without an embedding) has no PyTorch StyleGAN2 equivalent",
            file=path,
        )
    # TF D_stylegan2 turns the minibatch-std layer off with group size <= 1, D_main with 0
    # features; its default group is 4 (D_stylegan2) or the whole batch (D_main: None).
    group = kw.get("mbstd_group_size", None if ada else 4)
    features = kw.get("mbstd_num_features", 1)
    if group is not None and not (isinstance(group, int) and group >= 0):
        kw.refuse("mbstd_group_size", group, "a group size expected")
    if not ada and (group is None or group <= 1):
        features = 0

    state: dict[str, torch.Tensor] = {}

    def conv(tf: str, ours: str, bias: bool = True) -> None:
        state[f"{ours}.weight"] = _conv(var.take(f"{tf}/weight", 4))
        if bias:
            state[f"{ours}.bias"] = _tensor(var.take(f"{tf}/bias", 1))

    def dense(tf: str, ours: str) -> None:
        state[f"{ours}.weight"] = _dense(var.take(f"{tf}/weight", 2))
        state[f"{ours}.bias"] = _tensor(var.take(f"{tf}/bias", 1))

    for r in range(log2, 2, -1):
        res = 2**r
        if architecture == "skip" or res == resolution:
            conv(f"{res}x{res}/FromRGB", f"b{res}.fromrgb")
        conv(f"{res}x{res}/Conv0", f"b{res}.conv0")
        conv(f"{res}x{res}/Conv1_down", f"b{res}.conv1")
        if architecture == "resnet":
            conv(f"{res}x{res}/Skip", f"b{res}.skip", bias=False)
    if architecture == "skip":
        conv("4x4/FromRGB", "b4.fromrgb")
    conv("4x4/Conv", "b4.conv")
    dense("4x4/Dense0", "b4.fc")
    dense("Output", "b4.out")

    cmap_dim, mapping_kwargs = None, None
    if c_dim:
        dense("LabelEmbed", "mapping.embed")
        cmap_dim = state["mapping.embed.weight"].shape[0]
        layers = kw.get("mapping_layers", 0)
        for i in range(layers):
            dense(f"Mapping{i}", f"mapping.fc{i}")
        mapping_kwargs = {
            "num_layers": layers,
            "lr_multiplier": kw.get("mapping_lrmul", 0.1),
            "activation": kw.get("nonlinearity", "lrelu"),
        }
    kw.get("mapping_fmaps")  # the label embedding's width, read from its weight above
    kwargs = {
        "c_dim": c_dim,
        "img_resolution": resolution,
        "img_channels": kw.get("num_channels", 3),
        "architecture": architecture,
        "channel_base": channel_base,
        "channel_max": channel_max,
        "num_fp16_res": 0,
        "conv_clamp": kw.get("conv_clamp"),
        "cmap_dim": cmap_dim,
        "block_kwargs": {
            "activation": kw.get("nonlinearity", "lrelu"),
            "freeze_layers": kw.get("freeze_layers", 0),
        },
        "mapping_kwargs": mapping_kwargs,
        "epilogue_kwargs": {
            "mbstd_group_size": group,
            "mbstd_num_channels": features,
            "activation": kw.get("nonlinearity", "lrelu"),
        },
    }
    kw.finish(_D_RUNTIME)
    var.finish()
    return kwargs, state
