"""Fixture files for the GAN loader, written with our own code only (no NVlabs code here).

- :func:`write_nvlabs_pickle`: the structure of an NVlabs network pickle, as their training loop
  writes it: ``{"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}``, where every module is
  a persistence record, i.e. a call of ``torch_utils.persistence._reconstruct_persistent_obj`` with
  ``meta = {type, version, module_src, class_name, state}`` and ``state`` the module's ``__dict__``
  (``_parameters``, ``_buffers``, ``_modules``, ``_init_args``, ``_init_kwargs`` ...).
- :func:`write_rosinality_checkpoint`: a ``torch.save`` dict with rosinality/stylegan2-pytorch
  tensor names, made from our generator's weights.
- hostile files whose payload would create a file if anything in them ran.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import subprocess
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

SOURCE_TEXT = '"""Stand-in for the networks.py source an NVlabs pickle embeds."""\nimport torch\n'


def _reconstruct_persistent_obj(meta):  # pragma: no cover - never called, only named
    raise AssertionError("the stand-in persistence hook must never run")


class EasyDict(dict):
    """Pickled under the name ``dnnlib.util.EasyDict``, as NVlabs' kwargs are."""


# Objects of ours that the pickle must name as NVlabs globals.
_NVLABS_NAMES = {
    id(_reconstruct_persistent_obj): ("torch_utils.persistence", "_reconstruct_persistent_obj"),
    id(EasyDict): ("dnnlib.util", "EasyDict"),
}
_PLAIN = (bool, int, float, str, type(None), np.ndarray, np.generic)


def _easy(value):
    """dicts -> EasyDict, recursively (NVlabs keeps init kwargs as EasyDicts)."""
    if isinstance(value, dict):
        return EasyDict({k: _easy(v) for k, v in value.items()})
    return value


class NvlabsPickler(pickle._Pickler):
    """Pickles ``torch.nn.Module``\\ s as NVlabs persistence records.

    ``init_kwargs`` maps ``id(module)`` to the kwargs the module was built with (top-level
    networks); submodules get empty kwargs, which the loader never reads.
    """

    def __init__(self, file, init_kwargs: dict, module_src: str = SOURCE_TEXT, protocol=4):
        super().__init__(file, protocol=protocol)
        self.init_kwargs = init_kwargs
        self.module_src = module_src

    def reducer_override(self, obj):
        if isinstance(obj, torch.nn.Module):
            return _reconstruct_persistent_obj, (self._meta(obj),)
        return NotImplemented

    def _meta(self, module: torch.nn.Module) -> dict:
        state = {
            k: v
            for k, v in module.__dict__.items()
            if isinstance(v, _PLAIN)
            or (isinstance(v, tuple) and all(isinstance(x, _PLAIN) for x in v))
        }
        state.update(
            training=False,
            _parameters=OrderedDict(module._parameters),
            _buffers=OrderedDict(module._buffers),
            _non_persistent_buffers_set=set(module._non_persistent_buffers_set),
            _backward_hooks=OrderedDict(),
            _forward_hooks=OrderedDict(),
            _forward_pre_hooks=OrderedDict(),
            _state_dict_hooks=OrderedDict(),
            _load_state_dict_pre_hooks=OrderedDict(),
            _modules=OrderedDict(module._modules),
            _init_args=(),
            _init_kwargs=_easy(self.init_kwargs.get(id(module), {})),
        )
        return dict(
            type="class",
            version=6,
            module_src=self.module_src,
            class_name=type(module).__name__,
            state=state,
        )

    def save_global(self, obj, name=None):
        names = _NVLABS_NAMES.get(id(obj))
        if names is None:
            return super().save_global(obj, name)
        module, qualname = names
        self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode())
        self.memoize(obj)

    # The base class dispatches functions to its own save_global; route them through ours.
    dispatch = pickle._Pickler.dispatch.copy()
    dispatch[types.FunctionType] = save_global


def write_nvlabs_pickle(
    path,
    G: torch.nn.Module,
    G_kwargs: dict,
    D: torch.nn.Module | None = None,
    D_kwargs: dict | None = None,
    G_ema: torch.nn.Module | None = None,
    module_src: str = SOURCE_TEXT,
    protocol: int = 4,
    extra: dict | None = None,
) -> Path:
    """Write ``{G, D, G_ema, augment_pipe: None, training_set_kwargs}`` like NVlabs' training
    loop (``G_ema`` defaults to ``G``). Each module is pickled as a persistence record."""
    G_ema = G if G_ema is None else G_ema
    kwargs = {id(G): G_kwargs, id(G_ema): G_kwargs}
    if D is not None:
        kwargs[id(D)] = D_kwargs or {}
    data = dict(
        G=G,
        D=D,
        G_ema=G_ema,
        augment_pipe=None,
        training_set_kwargs=dict(
            class_name="training.dataset.ImageFolderDataset", path="faces.zip", use_labels=False
        ),
    )
    data.update(extra or {})
    buffer = io.BytesIO()
    NvlabsPickler(buffer, kwargs, module_src, protocol).dump(data)
    Path(path).write_bytes(buffer.getvalue())
    return Path(path)


# ----------------------------------------------------------------------------------------------
# Small networks with random weights.

SG2_G_KWARGS = dict(
    z_dim=32,
    c_dim=0,
    w_dim=32,
    img_resolution=32,
    img_channels=3,
    mapping_kwargs={"num_layers": 2},
    synthesis_kwargs={
        "channel_base": 512,
        "channel_max": 64,
        "num_fp16_res": 0,
        "conv_clamp": None,
    },
)
SG2_D_KWARGS = dict(
    c_dim=0,
    img_resolution=32,
    img_channels=3,
    architecture="resnet",
    channel_base=512,
    channel_max=64,
    num_fp16_res=0,
    conv_clamp=None,
    block_kwargs={},
    mapping_kwargs={},
    epilogue_kwargs={"mbstd_group_size": 4},
)


@torch.no_grad()
def randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Perturb every parameter (biases and noise strengths start at 0) and set ``w_avg``."""
    gen = torch.Generator().manual_seed(seed)
    for _, p in sorted(module.named_parameters()):
        p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    for name, b in sorted(module.named_buffers()):
        if name.endswith("w_avg"):
            b.copy_(torch.randn(b.shape, generator=gen) * 0.1)
    return module.eval()


def make_sg2(seed: int = 0, g_kwargs: dict | None = None, d_kwargs: dict | None = None):
    """(G, G kwargs, D, D kwargs): a small StyleGAN2 pair with random weights."""
    from latentmirror.core.gan.stylegan2 import Discriminator, Generator

    g_kwargs = g_kwargs or SG2_G_KWARGS
    d_kwargs = d_kwargs or SG2_D_KWARGS
    # The constructors draw initial weights from torch's global RNG: seed it (without disturbing
    # other tests), so the networks do not depend on which tests ran before.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = randomize(Generator(**g_kwargs), seed)
        D = randomize(Discriminator(**d_kwargs), seed + 1)
    return G, g_kwargs, D, d_kwargs


# ----------------------------------------------------------------------------------------------
# rosinality checkpoints, from our StyleGAN2 (skip architecture, conv_clamp None).


def _blur_kernel(gain: float) -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = torch.outer(k, k)
    return k / k.sum() * gain


def rosinality_generator_state(G: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Our StyleGAN2 generator's weights under rosinality's ``Generator`` names."""
    sd = G.state_dict()
    out: dict[str, torch.Tensor] = {}
    n_mlp = sum(1 for k in sd if k.startswith("mapping.fc") and k.endswith(".weight"))
    for i in range(n_mlp):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"][None]
    layers = [("conv1", "synthesis.b4.conv1", False)]
    rgbs = [("to_rgb1", "synthesis.b4.torgb", False)]
    log_size = int(np.log2(G.img_resolution))
    for k in range(log_size - 2):
        nv = f"synthesis.b{2 ** (k + 3)}"
        layers += [
            (f"convs.{2 * k}", f"{nv}.conv0", True),
            (f"convs.{2 * k + 1}", f"{nv}.conv1", False),
        ]
        rgbs.append((f"to_rgbs.{k}", f"{nv}.torgb", True))
    for i, (ros, nv, up) in enumerate(layers):
        out[f"{ros}.conv.weight"] = sd[f"{nv}.weight"][None]
        out[f"{ros}.conv.modulation.weight"] = sd[f"{nv}.affine.weight"]
        out[f"{ros}.conv.modulation.bias"] = sd[f"{nv}.affine.bias"]
        if up:
            out[f"{ros}.conv.blur.kernel"] = _blur_kernel(4.0)
        out[f"{ros}.noise.weight"] = sd[f"{nv}.noise_strength"].reshape(1)
        out[f"{ros}.activate.bias"] = sd[f"{nv}.bias"]
        out[f"noises.noise_{i}"] = sd[f"{nv}.noise_const"][None, None]
    for ros, nv, up in rgbs:
        if up:
            out[f"{ros}.upsample.kernel"] = _blur_kernel(4.0)
        out[f"{ros}.conv.weight"] = sd[f"{nv}.weight"][None]
        out[f"{ros}.conv.modulation.weight"] = sd[f"{nv}.affine.weight"]
        out[f"{ros}.conv.modulation.bias"] = sd[f"{nv}.affine.bias"]
        out[f"{ros}.bias"] = sd[f"{nv}.bias"].reshape(1, -1, 1, 1)
    return {k: v.clone() for k, v in out.items()}


def rosinality_discriminator_state(D: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Our StyleGAN2 resnet discriminator's weights under rosinality's ``Discriminator`` names."""
    sd = D.state_dict()
    res = D.img_resolution
    out = {
        "convs.0.0.weight": sd[f"b{res}.fromrgb.weight"],
        "convs.0.1.bias": sd[f"b{res}.fromrgb.bias"],
    }
    j = 1
    while res > 4:
        nv = f"b{res}"
        out[f"convs.{j}.conv1.0.weight"] = sd[f"{nv}.conv0.weight"]
        out[f"convs.{j}.conv1.1.bias"] = sd[f"{nv}.conv0.bias"]
        out[f"convs.{j}.conv2.0.kernel"] = _blur_kernel(1.0)
        out[f"convs.{j}.conv2.1.weight"] = sd[f"{nv}.conv1.weight"]
        out[f"convs.{j}.conv2.2.bias"] = sd[f"{nv}.conv1.bias"]
        out[f"convs.{j}.skip.0.kernel"] = _blur_kernel(1.0)
        out[f"convs.{j}.skip.1.weight"] = sd[f"{nv}.skip.weight"]
        res, j = res // 2, j + 1
    out.update(
        {
            "final_conv.0.weight": sd["b4.conv.weight"],
            "final_conv.1.bias": sd["b4.conv.bias"],
            "final_linear.0.weight": sd["b4.fc.weight"],
            "final_linear.0.bias": sd["b4.fc.bias"],
            "final_linear.1.weight": sd["b4.out.weight"],
            "final_linear.1.bias": sd["b4.out.bias"],
        }
    )
    return {k: v.clone() for k, v in out.items()}


def write_rosinality_checkpoint(path, G, D=None, with_latent_avg: bool = True) -> Path:
    """``convert_weight.py`` style ``{"g_ema", "latent_avg"}``, or with ``D`` and no latent_avg
    the ``train.py`` style ``{"g", "d", "g_ema", "g_optim", "d_optim", "args", "ada_aug_p"}``."""
    g_state = rosinality_generator_state(G)
    if with_latent_avg:
        ckpt = {"g_ema": g_state, "latent_avg": G.mapping.w_avg.clone()}
        if D is not None:
            ckpt["d"] = rosinality_discriminator_state(D)
    else:
        ckpt = {
            "g": g_state,
            "d": rosinality_discriminator_state(D) if D is not None else {},
            "g_ema": g_state,
            "g_optim": {"state": {}, "param_groups": [{"lr": 0.002, "params": [0, 1]}]},
            "d_optim": {"state": {}, "param_groups": [{"lr": 0.002, "params": [0, 1]}]},
            "args": argparse.Namespace(size=G.img_resolution, channel_multiplier=2, lr=0.002),
            "ada_aug_p": 0.0,
        }
    torch.save(ckpt, str(path))
    return Path(path)


# ----------------------------------------------------------------------------------------------
# Hostile files: each would create ``marker`` if anything from it were run.


class _Payload:
    """Pickles as a call of ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def hostile_payloads(marker: Path) -> dict[str, _Payload]:
    """{qualified global name the pickle names: payload that would create ``marker``}."""
    return {
        f"{os.system.__module__}.system": _Payload(os.system, f"touch '{marker}'"),
        "builtins.exec": _Payload(exec, f"open({str(marker)!r}, 'w').write('x')"),
        "subprocess.call": _Payload(subprocess.call, ["touch", str(marker)]),
        "builtins.eval": _Payload(eval, f"open({str(marker)!r}, 'w')"),
    }


def hostile_module_src(marker: Path) -> str:
    """Source text that creates ``marker`` when executed (NVlabs' loader would exec it)."""
    return SOURCE_TEXT + f"open({str(marker)!r}, 'w').write('module_src was executed')\n"


def write_hostile_torch_zip(path, marker: Path, G=None) -> Path:
    """A ``torch.save`` zip whose pickle also calls ``os.system``."""
    ckpt = {"g_ema": rosinality_generator_state(G) if G is not None else {}}
    ckpt["evil"] = _Payload(os.system, f"touch '{marker}'")
    torch.save(ckpt, str(path))
    return Path(path)
