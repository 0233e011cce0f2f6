"""TensorFlow-era StyleGAN2 pickles (NVlabs stylegan2 / stylegan2-ada TF), loaded without TF.

Fixtures (tests/tf_fixtures.py) are written by our own code in the exact TF pickle structure,
from our networks exported to TF layout; loading them back must reproduce those networks
exactly. The golden sums were measured on files that NVlabs' own converter (stylegan2-ada-pytorch
``legacy.load_network_pkl``, run outside the repository) loads to the same outputs.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.gan import load_gan, pickled_numpy, tf_convert, tf_pickle
from latentmirror.core.gan.safe_pickle import load_pickle

from . import tf_fixtures as tf
from .gan_fixtures import hostile_payloads
from .support import assert_clean_refusal, folder_state, run_cli

# (sum of ws, sum of |image|, sum of D logits) for seed 7 files, z from seed 123, const noise.
GOLDEN = {
    "sg2-skip-resnet": (602.925964, 11267.212891, -0.275619),
    "sg2-orig-orig": (124.070404, 553.210693, -0.832569),
    "ada-cond-skip-resnet": (411.270233, 21201.769531, 1.834795),
    "ada-resnet-skip": (273.118317, 1964.494629, -0.693175),
}


def _inputs(g, n: int = 4):
    gen = torch.Generator().manual_seed(123)
    z = torch.randn([n, g.z_dim], generator=gen)
    c = torch.zeros([n, g.c_dim])
    if g.c_dim:
        c[torch.arange(n), torch.arange(n) % g.c_dim] = 1
    return z, c


@torch.no_grad()
def _outputs(g, d, z, c):
    ws = g.mapping(z, c)
    img = g.synthesis(ws, noise_mode="const")
    return ws, img, d(img, c)


@pytest.mark.parametrize("name", list(tf.CONFIGS))
def test_round_trip_is_exact(tmp_path, name):
    """TF layout written from our Gs/D and read back gives bit-identical outputs (and Gs, not
    the training G, becomes our generator)."""
    path, G, Gs, D = tf.write_config(tmp_path / f"{name}.pkl", name)
    model = load_gan(path)
    assert model.architecture["format"] == "tensorflow-pickle"
    z, c = _inputs(Gs)
    for ours, theirs in zip(
        _outputs(model.generator, model.discriminator, z, c), _outputs(Gs, D, z, c), strict=True
    ):
        assert torch.equal(ours, theirs)
    assert not torch.equal(_outputs(G, D, z, c)[1], _outputs(Gs, D, z, c)[1])


@pytest.mark.parametrize("name", list(tf.CONFIGS))
def test_golden_values(tmp_path, name):
    path, *_ = tf.write_config(tmp_path / f"{name}.pkl", name, seed=7)
    model = load_gan(path)
    ws, img, logits = _outputs(model.generator, model.discriminator, *_inputs(model.generator))
    measured = (ws.sum().item(), img.abs().sum().item(), logits.sum().item())
    assert measured == pytest.approx(GOLDEN[name], rel=1e-4, abs=1e-4)


def test_training_generator_converts_too(tmp_path):
    """G (not only Gs) converts: its state is our training G's."""
    path, G, _Gs, _D = tf.write_config(tmp_path / "f.pkl", "ada-cond-skip-resnet")
    networks = load_pickle(path.read_bytes(), str(path))
    assert tf_pickle.is_tf_networks(networks)
    kwargs, state = tf_convert.convert_generator(networks[0], str(path))
    ours = G.state_dict()
    for key, value in state.items():
        assert torch.equal(value, ours[key]), key
    assert kwargs["c_dim"] == 4 and kwargs["synthesis_kwargs"]["conv_clamp"] == 256


def test_network_record_keeps_source_as_data(tmp_path):
    marker = tmp_path / "ran"

    def edit(g, d, gs):
        for state in (g, d, gs):
            state["build_module_src"] = tf.marker_source(marker)

    path, *_ = tf.write_config(tmp_path / "f.pkl", "sg2-orig-orig", edit=edit)
    g, d, gs = load_pickle(path.read_bytes(), str(path))
    assert gs.build_module_src == tf.marker_source(marker)
    assert gs.build_func_name == "G_main" and set(gs.components) == {"mapping", "synthesis"}
    assert gs.all_variables()["synthesis/4x4/Const/const"].shape == (1, 16, 4, 4)
    load_gan(path)
    assert not marker.exists()


# ----------------------------------------------------------------------------------------------
# Hostile and unsupported files: refused (or, for embedded source, loaded as data), nothing run.


def _set_variable(name, value, network=2, component="synthesis"):
    def edit(*states):
        variables = states[network]["components"][component].state["variables"]
        states[network]["components"][component].state["variables"] = [
            (n, value if n == name else v) for n, v in variables
        ]

    return edit


def _payload(marker):
    return hostile_payloads(marker)[f"{os.system.__module__}.system"]


def _edit_kwargs(network, **changes):
    def edit(*states):
        states[network]["static_kwargs"].update(changes)

    return edit


def _edit_state(network, **changes):
    def edit(*states):
        states[network].update(changes)

    return edit


def _add_variable(network, name, value, component=None):
    def edit(*states):
        holder = (
            states[network] if component is None else states[network]["components"][component].state
        )
        holder["variables"] = list(holder["variables"]) + [(name, value)]

    return edit


# (case id, config, edit(marker) -> edit function, what the message must name; None = loads)
HOSTILE = [
    ("reduce payload as a variable", "sg2-skip-resnet",
     lambda m: _set_variable("4x4/Conv/weight", _payload(m)), f"{os.system.__module__}.system"),
    ("object-dtype array", "sg2-skip-resnet",
     lambda m: _set_variable("noise0", np.array([1, "x"], dtype=object)), "object"),
    ("unknown global in static_kwargs", "sg2-skip-resnet",
     lambda m: _edit_kwargs(2, resolution=__import__("collections").Counter()),
     "collections.Counter"),
    ("build_module_src that writes a file (kept as data)", "sg2-skip-resnet",
     lambda m: _edit_state(2, build_module_src=tf.marker_source(m)), None),
    ("unknown static kwarg", "ada-resnet-skip",
     lambda m: _edit_kwargs(2, fancy_option=3), "fancy_option"),
    ("stylegan2 TF conditional (LabelConcat)", "sg2-orig-orig",
     lambda m: _add_variable(2, "LabelConcat/weight", np.zeros((2, 16), np.float32), "mapping"),
     "mapping/LabelConcat"),
    ("configs A-D discriminator", "sg2-orig-orig",
     lambda m: _edit_state(1, build_func_name="D_stylegan"), "D_stylegan"),
    ("unused variable", "sg2-orig-orig",
     lambda m: _add_variable(1, "16x16/Extra/weight", np.zeros((3,), np.float32)),
     "16x16/Extra/weight"),
    ("pickle version 3", "ada-resnet-skip", lambda m: _edit_state(0, version=3), "version 3"),
    ("wrong channel count", "sg2-orig-orig", lambda m: _edit_kwargs(2, fmap_min=12), "fmap_min"),
    ("stylegan2-ada comparison method on", "ada-resnet-skip",
     lambda m: _edit_kwargs(1, use_spectral_norm=True), "use_spectral_norm"),
]  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_and_unsupported_files(tmp_path, case):
    _id, config, make_edit, mention = case
    marker = tmp_path / "marker"
    path, *_ = tf.write_config(tmp_path / "model.pkl", config, edit=make_edit(marker))
    before = folder_state(tmp_path)
    if mention is None:
        load_gan(path)
    else:
        with pytest.raises(LatentmirrorError) as info:
            load_gan(path)
        assert mention in str(info.value) and str(path) in str(info.value)
    assert not marker.exists()
    assert folder_state(tmp_path) == before


# ----------------------------------------------------------------------------------------------
# numpy values are rebuilt by our code: plain numeric dtypes only, sizes checked.


@pytest.mark.parametrize(
    "value",
    [np.float32(2.5), np.arange(6, dtype=">f4").reshape(2, 3), np.zeros((), np.float64),
     np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)), np.array([True, False])],
)  # fmt: skip
def test_numpy_values_rebuilt(value):
    data = pickle.dumps({"v": value}, protocol=3)
    loaded = pickled_numpy.resolve(load_pickle(data, "x.pkl"))["v"]
    assert np.array_equal(loaded, value) and loaded.shape == np.shape(value)
    assert loaded.dtype == np.dtype(value.dtype).newbyteorder("=")


def test_numpy_array_with_wrong_byte_count_refused():
    data = pickle.dumps(np.arange(4, dtype=np.float32), protocol=3)
    raw = np.arange(4, dtype=np.float32).tobytes()
    broken = data.replace(raw, raw[:-4].ljust(len(raw) - 4, b"\0")).replace(b"C\x10", b"C\x0c", 1)
    with pytest.raises(LatentmirrorError, match="holds 12 bytes, not 16"):
        load_pickle(broken, "x.pkl")


# ----------------------------------------------------------------------------------------------
# The CLI and the Load GAN list.


def test_info_and_convert_model(tmp_path):
    path, _G, Gs, D = tf.write_config(tmp_path / "stylegan2-tiny-config-f.pkl", "sg2-skip-resnet")
    info = run_cli("info", str(path), cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    for text in ("TensorFlow StyleGAN2 pickle", "generator skip, discriminator resnet", "32x32"):
        assert text in info.stdout
    target = tmp_path / "tiny.safetensors"
    done = run_cli("convert-model", str(path), str(target), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    model = load_gan(target)
    z, c = _inputs(Gs)
    for ours, theirs in zip(
        _outputs(model.generator, model.discriminator, z, c), _outputs(Gs, D, z, c), strict=True
    ):
        assert torch.equal(ours, theirs)


def test_refusal_on_the_command_line(tmp_path):
    marker = tmp_path / "marker"
    path, *_ = tf.write_config(
        tmp_path / "evil.pkl", "sg2-orig-orig", edit=_set_variable("noise0", _payload(marker))
    )
    assert_clean_refusal(run_cli("info", str(path), cwd=tmp_path), str(path), "system")
    assert not marker.exists()


def test_load_gan_lists_tf_pickles(tmp_path):
    from latentmirror.plugin.headless import HeadlessHost

    folder = tmp_path / "models" / "gan"
    folder.mkdir(parents=True)
    tf.write_config(folder / "stylegan2-ffhq-tiny.pkl", "sg2-orig-orig")
    host = HeadlessHost(device="cpu", models_dir=str(tmp_path / "models"), show_progress=False)
    assert "stylegan2-ffhq-tiny.pkl" in host.list_models("gan")
