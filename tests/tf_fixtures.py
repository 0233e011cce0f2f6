"""TensorFlow-era StyleGAN2 pickles, written with our own code only (no TensorFlow, no NVlabs code).

The structure is the one NVlabs' TF code writes (``dnnlib/tflib/network.py``): a protocol-3 pickle
of ``(G, D, Gs)``, each a ``dnnlib.tflib.network.Network`` whose state is
``{version, name, static_kwargs, components, build_module_src, build_func_name, variables}``,
with the variables as numpy-1.x pickled arrays (``numpy.core.multiarray._reconstruct``).

The weights come from OUR networks, exported to TF layout by :func:`tf_variables` (written
independently of the loader's converter: dense ``[out, in]`` -> ``[in, out]``, conv
``[out, in, kh, kw]`` -> ``[kh, kw, in, out]`` flipped for up-sampling convs, modulation biases
minus one, noise maps as ``synthesis/noise{i}`` ``[1, 1, R, R]``). Loading the file back must
give the very same outputs: the two layout transforms are inverse.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover
    from numpy.core import multiarray as _multiarray

BUILD_SOURCE = '"""Stand-in for the networks_stylegan2.py source a TF pickle embeds."""\n'

# ----------------------------------------------------------------------------------------------
# The Network class, defined in a fake dnnlib.tflib.network module only while a file is written.


class _NetworkState:
    """What one TF network pickles as its state (``Network.__getstate__``)."""

    def __init__(self, name, func, static_kwargs, variables, components=None, version=4):
        self.state = {
            "version": version,
            "name": name,
            "static_kwargs": dict(static_kwargs),
            "components": dict(components or {}),
            "build_module_src": BUILD_SOURCE,
            "build_func_name": func,
            "variables": list(variables.items()),
        }
        if version >= 5:  # stylegan2-ada TF adds the graph's input/output signature
            self.state.update(
                input_shapes=[[None, 1]], output_shapes=[[None, 1]],
                input_names=["in"], output_names=["out"],
            )  # fmt: skip


@contextmanager
def _fake_dnnlib():
    """Register ``dnnlib.tflib.network`` with a ``Network`` class, only for the block."""
    names = ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")
    saved = {n: sys.modules.get(n) for n in names}
    modules = {n: types.ModuleType(n) for n in names}

    class Network:
        def __init__(self, state: dict):
            self._state = state

        def __getstate__(self):
            return self._state

    Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
    modules["dnnlib.tflib.network"].Network = Network
    modules["dnnlib"].tflib = modules["dnnlib.tflib"]
    modules["dnnlib.tflib"].network = modules["dnnlib.tflib.network"]
    sys.modules.update(modules)
    try:
        yield Network
    finally:
        for n, module in saved.items():
            if module is None:
                sys.modules.pop(n, None)
            else:  # pragma: no cover
                sys.modules[n] = module


class _Numpy1Pickler(pickle._Pickler):
    """Names numpy's pickling helpers as numpy 1.x did (``numpy.core.multiarray``)."""

    _NAMES = {id(_multiarray._reconstruct): "_reconstruct", id(_multiarray.scalar): "scalar"}

    def save_global(self, obj, name=None):
        if id(obj) in self._NAMES:
            self.write(pickle.GLOBAL + f"numpy.core.multiarray\n{self._NAMES[id(obj)]}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)

    dispatch = pickle._Pickler.dispatch.copy()
    dispatch[types.BuiltinFunctionType] = save_global


def write_tf_pickle(path, networks: tuple[_NetworkState, _NetworkState, _NetworkState]) -> Path:
    """Pickle ``(G, D, Gs)`` as TF ``Network`` objects, protocol 3."""
    with _fake_dnnlib() as Network:

        def wrap(net: _NetworkState):
            state = dict(net.state)
            state["components"] = {k: wrap(v) for k, v in state["components"].items()}
            return Network(state)

        with open(path, "wb") as f:
            _Numpy1Pickler(f, protocol=3).dump(tuple(wrap(n) for n in networks))
    return Path(path)


# ----------------------------------------------------------------------------------------------
# Our networks -> TF variables.


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _dense(t):  # ours [out, in] -> TF [in, out]
    return np.ascontiguousarray(_np(t).T)


def _conv(t, flip=False):  # ours [out, in, kh, kw] -> TF [kh, kw, in, out]
    w = _np(t).transpose(2, 3, 1, 0)
    return np.ascontiguousarray(w[::-1, ::-1] if flip else w)


_G_RULES = [  # (our key pattern, TF name template, transform)
    (r"mapping\.w_avg", "dlatent_avg", _np),
    (r"mapping\.embed\.weight", "mapping/LabelEmbed/weight", _dense),
    (r"mapping\.embed\.bias", "mapping/LabelEmbed/bias", _np),
    (r"mapping\.fc(\d+)\.weight", "mapping/Dense{0}/weight", _dense),
    (r"mapping\.fc(\d+)\.bias", "mapping/Dense{0}/bias", _np),
    (r"synthesis\.b4\.const", "synthesis/4x4/Const/const", lambda t: _np(t)[None]),
    (r"synthesis\.b(\d+)\.(conv\d)\.(.*)", None, None),  # see _layer_name
    (r"synthesis\.b(\d+)\.torgb\.weight", "synthesis/{0}x{0}/ToRGB/weight", _conv),
    (r"synthesis\.b(\d+)\.torgb\.bias", "synthesis/{0}x{0}/ToRGB/bias", _np),
    (r"synthesis\.b(\d+)\.torgb\.affine\.weight", "synthesis/{0}x{0}/ToRGB/mod_weight", _dense),
    (r"synthesis\.b(\d+)\.torgb\.affine\.bias", "synthesis/{0}x{0}/ToRGB/mod_bias",
     lambda t: _np(t) - 1),
    (r"synthesis\.b(\d+)\.skip\.weight", "synthesis/{0}x{0}/Skip/weight",
     lambda t: _conv(t, flip=True)),
]  # fmt: skip

_D_RULES = [
    (r"b(\d+)\.fromrgb\.weight", "{0}x{0}/FromRGB/weight", _conv),
    (r"b(\d+)\.fromrgb\.bias", "{0}x{0}/FromRGB/bias", _np),
    (r"b(\d+)\.conv0\.weight", "{0}x{0}/Conv0/weight", _conv),
    (r"b(\d+)\.conv0\.bias", "{0}x{0}/Conv0/bias", _np),
    (r"b(\d+)\.conv1\.weight", "{0}x{0}/Conv1_down/weight", _conv),
    (r"b(\d+)\.conv1\.bias", "{0}x{0}/Conv1_down/bias", _np),
    (r"b(\d+)\.skip\.weight", "{0}x{0}/Skip/weight", _conv),
    (r"b4\.conv\.weight", "4x4/Conv/weight", _conv),
    (r"b4\.conv\.bias", "4x4/Conv/bias", _np),
    (r"b4\.fc\.weight", "4x4/Dense0/weight", _dense),
    (r"b4\.fc\.bias", "4x4/Dense0/bias", _np),
    (r"b4\.out\.weight", "Output/weight", _dense),
    (r"b4\.out\.bias", "Output/bias", _np),
    (r"mapping\.embed\.weight", "LabelEmbed/weight", _dense),
    (r"mapping\.embed\.bias", "LabelEmbed/bias", _np),
    (r"mapping\.fc(\d+)\.weight", "Mapping{0}/weight", _dense),
    (r"mapping\.fc(\d+)\.bias", "Mapping{0}/bias", _np),
]


def _layer_variable(res: int, conv: str, part: str, t: torch.Tensor) -> tuple[str, np.ndarray]:
    """A synthesis layer's tensor -> (TF name, array)."""
    log2 = int(math.log2(res))
    scope = (
        "4x4/Conv" if res == 4 else f"{res}x{res}/" + ("Conv0_up" if conv == "conv0" else "Conv1")
    )
    up = res > 4 and conv == "conv0"
    if part == "noise_const":
        index = 0 if res == 4 else 2 * log2 - (5 if conv == "conv0" else 4)
        return f"synthesis/noise{index}", _np(t)[None, None]
    names = {"weight": "weight", "bias": "bias", "noise_strength": "noise_strength"}
    names |= {"affine.weight": "mod_weight", "affine.bias": "mod_bias"}
    value = {
        "weight": lambda: _conv(t, flip=up),
        "affine.weight": lambda: _dense(t),
        "affine.bias": lambda: _np(t) - 1,
    }.get(part, lambda: _np(t))()
    return f"synthesis/{scope}/{names[part]}", value


def tf_variables(net: torch.nn.Module, generator: bool) -> dict[str, np.ndarray]:
    """Our G or D -> TF variables, full names (``mapping/...``, ``synthesis/...`` for G)."""
    out = {}
    for key, t in net.state_dict().items():
        if key.endswith("resample_filter"):
            continue  # a fixed filter; TF has no variable for it
        for pattern, name, transform in _G_RULES if generator else _D_RULES:
            m = re.fullmatch(pattern, key)
            if not m:
                continue
            if name is None:
                tf_name, value = _layer_variable(int(m.group(1)), m.group(2), m.group(3), t)
            else:
                tf_name, value = name.format(*m.groups()), transform(t)
            out[tf_name] = np.asarray(value, dtype=np.float32)
            break
        else:
            raise KeyError(f"no TF name for {key}")
    return out


def tf_generator(G, static_kwargs: dict, name: str = "Gs", ada: bool = False) -> _NetworkState:
    """A TF ``G_main`` network (with mapping and synthesis components) from our G."""
    variables = tf_variables(G, generator=True)
    parts: dict[str, dict] = {"": {}, "mapping": {}, "synthesis": {}}
    for full, value in variables.items():
        head, _, rest = full.partition("/")
        if head in ("mapping", "synthesis"):
            parts[head][rest] = value
        else:
            parts[""][full] = value
    version = 5 if ada else 4
    if not ada:
        parts[""]["lod"] = np.float32(0.0)
    synthesis_func = "G_synthesis" if ada else "G_synthesis_stylegan2"
    num_ws = G.num_ws
    components = {
        "synthesis": _NetworkState(
            "G_synthesis", synthesis_func, static_kwargs, parts["synthesis"], version=version
        ),
        "mapping": _NetworkState(
            "G_mapping", "G_mapping", {**static_kwargs, "dlatent_broadcast": num_ws},
            parts["mapping"], version=version,
        ),
    }  # fmt: skip
    return _NetworkState(name, "G_main", static_kwargs, parts[""], components, version=version)


def tf_discriminator(D, static_kwargs: dict, ada: bool = False) -> _NetworkState:
    func = "D_main" if ada else "D_stylegan2"
    variables = tf_variables(D, generator=False)
    return _NetworkState("D", func, static_kwargs, variables, version=5 if ada else 4)


# ----------------------------------------------------------------------------------------------
# The configurations written by the tests (and by the parity check against NVlabs' converter).


def _our_nets(seed, g_kwargs, d_kwargs):
    from latentmirror.core.gan.stylegan2 import Discriminator, Generator

    from .gan_fixtures import randomize

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = randomize(Generator(**g_kwargs), seed)
        Gs = randomize(Generator(**g_kwargs), seed + 1)
        D = randomize(Discriminator(**d_kwargs), seed + 2)
    return G, Gs, D


# name: (TF flavour 'stylegan2' | 'ada', TF G static kwargs, TF D static kwargs,
#        our G kwargs, our D kwargs)
CONFIGS = {
    # config-f layout: skip G, resnet D (stylegan2 TF), 32x32, narrow.
    "sg2-skip-resnet": (
        "stylegan2",
        dict(num_channels=3, resolution=32, label_size=0, latent_size=32, dlatent_size=32,
             mapping_layers=2, mapping_fmaps=32, fmap_base=64, fmap_max=16),
        dict(num_channels=3, resolution=32, label_size=0, fmap_base=64, fmap_max=16),
        dict(z_dim=32, c_dim=0, w_dim=32, img_resolution=32, img_channels=3,
             mapping_kwargs=dict(num_layers=2),
             synthesis_kwargs=dict(architecture="skip", channel_base=128, channel_max=16)),
        dict(c_dim=0, img_resolution=32, img_channels=3, architecture="resnet",
             channel_base=128, channel_max=16,
             epilogue_kwargs=dict(mbstd_group_size=4, mbstd_num_channels=1)),
    ),
    # config-e-Gorig-Dorig (stylegan2 TF), 16x16.
    "sg2-orig-orig": (
        "stylegan2",
        dict(num_channels=3, resolution=16, label_size=0, latent_size=16, dlatent_size=16,
             mapping_layers=3, mapping_fmaps=16, fmap_base=32, fmap_max=16,
             architecture="orig"),
        dict(num_channels=3, resolution=16, label_size=0, fmap_base=32, fmap_max=16,
             architecture="orig"),
        dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
             mapping_kwargs=dict(num_layers=3),
             synthesis_kwargs=dict(architecture="orig", channel_base=64, channel_max=16)),
        dict(c_dim=0, img_resolution=16, img_channels=3, architecture="orig",
             channel_base=64, channel_max=16,
             epilogue_kwargs=dict(mbstd_group_size=4, mbstd_num_channels=1)),
    ),
    # stylegan2-ada TF, class-conditional (LabelEmbed), mixed-precision kwargs, 32x32.
    "ada-cond-skip-resnet": (
        "ada",
        dict(num_channels=3, resolution=32, label_size=4, latent_size=32, dlatent_size=32,
             mapping_layers=2, fmap_base=64, fmap_max=16, num_fp16_res=4, conv_clamp=256),
        dict(num_channels=3, resolution=32, label_size=4, fmap_base=64, fmap_max=16,
             num_fp16_res=4, conv_clamp=256, mbstd_group_size=2, architecture="resnet",
             mapping_layers=1),
        dict(z_dim=32, c_dim=4, w_dim=32, img_resolution=32, img_channels=3,
             mapping_kwargs=dict(num_layers=2),
             synthesis_kwargs=dict(architecture="skip", channel_base=128, channel_max=16,
                                   conv_clamp=256)),
        dict(c_dim=4, img_resolution=32, img_channels=3, architecture="resnet",
             channel_base=128, channel_max=16, conv_clamp=256,
             mapping_kwargs=dict(num_layers=1, lr_multiplier=0.1),
             epilogue_kwargs=dict(mbstd_group_size=2, mbstd_num_channels=1)),
    ),
    # stylegan2-ada TF, resnet G and skip D (config-e-Gresnet-Dskip style), 16x16.
    "ada-resnet-skip": (
        "ada",
        dict(num_channels=3, resolution=16, label_size=0, latent_size=16, dlatent_size=24,
             mapping_layers=2, mapping_fmaps=20, fmap_base=32, fmap_max=16,
             architecture="resnet"),
        dict(num_channels=3, resolution=16, label_size=0, fmap_base=32, fmap_max=16,
             architecture="skip", mbstd_group_size=4),
        dict(z_dim=16, c_dim=0, w_dim=24, img_resolution=16, img_channels=3,
             mapping_kwargs=dict(num_layers=2, layer_features=20),
             synthesis_kwargs=dict(architecture="resnet", channel_base=64, channel_max=16)),
        dict(c_dim=0, img_resolution=16, img_channels=3, architecture="skip",
             channel_base=64, channel_max=16,
             epilogue_kwargs=dict(mbstd_group_size=4, mbstd_num_channels=1)),
    ),
}  # fmt: skip


def write_config(path, name: str, seed: int = 0, edit=None):
    """Write configuration ``name``; returns (path, our G, our Gs, our D).

    ``edit(G_state, D_state, Gs_state)``, when given, may change the network states before
    they are pickled (hostile and unsupported variants).
    """
    flavour, g_tf, d_tf, g_kwargs, d_kwargs = CONFIGS[name]
    ada = flavour == "ada"
    G, Gs, D = _our_nets(seed, g_kwargs, d_kwargs)
    nets = (
        tf_generator(G, g_tf, "G", ada),
        tf_discriminator(D, d_tf, ada),
        tf_generator(Gs, g_tf, "Gs", ada),
    )
    if edit is not None:
        edit(*(n.state for n in nets))
    return write_tf_pickle(path, nets), G, Gs, D


def marker_source(marker: Path) -> str:
    """``build_module_src`` that creates ``marker`` if anyone executes it (TF's loader would)."""
    return BUILD_SOURCE + f"open({os.fspath(marker)!r}, 'w').write('build_module_src ran')\n"
