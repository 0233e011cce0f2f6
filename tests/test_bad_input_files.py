"""Hostile and damaged files: refused cheaply and clearly, or used correctly with a warning.

Each refusal case writes a file that once made the pack hang, allocate gigabytes or print a
traceback, and checks: a LatentmirrorError (or exit 1 without a traceback through the CLI) whose
message names the file and what is wrong, and nothing written or changed beside it. The latent
cache and negative frame cases are "warned and correct": the result is right and the log says
what was not used. Peak memory while refusing is measured in fresh processes (``slow``).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.fit import plan_fit
from latentmirror.core.frames.sequence import load_sequence
from latentmirror.core.gan.cache import get_model
from latentmirror.core.gan.loading import load_gan, save_safetensors
from latentmirror.core.latents import GanLatent, LatentCache, load_latents
from latentmirror.core.storage import _host_name

from . import gan_fixtures as fx
from .support import IDENTITY, assert_clean_refusal, folder_state, run_cli, write_raw_exr

# ------------------------------------------------------------------------------ hostile files


def _exr(folder: Path, name: str = "plate.1001.exr", **windows) -> str:
    """A 4x4 RGB frame whose header claims the given windows."""
    (folder / "plate").mkdir(exist_ok=True)
    write_raw_exr(folder / "plate" / name, np.ones((4, 4, 3), np.float32), "RGB", **windows)
    return str(folder / "plate" / "plate.####.exr")


def huge_display_window(folder: Path) -> str:
    return _exr(folder, display=(0, 0, 100_000, 100_000))


def far_data_window(folder: Path) -> str:
    return _exr(folder, data_origin=(30_000, 30_000), display=(0, 0, 1920, 1080))


def fifo_frame(folder: Path) -> str:
    (folder / "plate").mkdir()
    os.mkfifo(folder / "plate" / "plate.1001.exr")
    return str(folder / "plate" / "plate.####.exr")


def fifo_model(folder: Path) -> str:
    os.mkfifo(folder / "model.pkl")
    return str(folder / "model.pkl")


def dev_zero_model(folder: Path) -> str:
    os.symlink("/dev/zero", folder / "zero.pkl")
    return str(folder / "zero.pkl")


def folder_model(folder: Path) -> str:
    (folder / "model.safetensors").mkdir()
    return str(folder / "model.safetensors")


_TINY: dict[str, object] = {}


def _tiny_model() -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and metadata of a tiny StyleGAN2 .safetensors (made once)."""
    if not _TINY:
        folder = Path(tempfile.mkdtemp())
        G, g_kwargs, D, d_kwargs = fx.make_sg2()
        pickled = fx.write_nvlabs_pickle(folder / "n.pkl", G, g_kwargs, D, d_kwargs)
        save_safetensors(load_gan(pickled), folder / "n.safetensors")
        with safe_open(str(folder / "n.safetensors"), "pt") as f:
            _TINY["meta"] = json.loads(f.metadata()["latentmirror"])
        _TINY["tensors"] = load_file(str(folder / "n.safetensors"))
    return _TINY["tensors"], _TINY["meta"]


def model_claiming(**kwargs) -> Callable[[Path], str]:
    """A tiny model whose metadata claims other generator kwargs than its tensors have."""

    def make(folder: Path) -> str:
        tensors, meta = _tiny_model()
        meta = json.loads(json.dumps(meta))
        meta["generator"]["kwargs"].update(kwargs)
        path = folder / "model.safetensors"
        save_file(tensors, str(path), metadata={"latentmirror": json.dumps(meta)})
        return str(path)

    return make


class _Call:
    """Pickles as ``func(*args)`` (the way a crafted pickle calls an allowed global)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def tensor_payload_pickle(folder: Path) -> str:
    """An NVlabs-looking pickle whose tensor storage payload is a whole torch.save'd tensor."""
    payload = folder / "payload.pt"
    torch.save(torch.zeros(3), payload)
    blob = payload.read_bytes()
    payload.unlink()
    path = folder / "model.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Call(torch.storage._load_from_bytes, blob)}))
    return str(path)


def module_payload_pickle(folder: Path) -> str:
    """The same with a torch.save'd module in the payload (torch's loader refuses its class)."""
    payload = folder / "payload.pt"
    torch.save(torch.nn.Linear(2, 2), payload)
    blob = payload.read_bytes()
    payload.unlink()
    path = folder / "model.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Call(torch.storage._load_from_bytes, blob)}))
    return str(path)


def saved_tensor(folder: Path) -> str:
    torch.save(torch.zeros(3), folder / "model.pt")
    return str(folder / "model.pt")


# ------------------------------------------------------------------------------ refusals


@dataclass(frozen=True)
class Refusal:
    name: str
    make: Callable[[Path], str]  # writes the hostile file(s) in a folder, returns the target
    how: str  # sequence | model | info (CLI) | render (CLI, the identity template)
    mentions: tuple[str, ...]  # "{target}" stands for the file


REFUSALS = [
    Refusal("huge display window", huge_display_window, "sequence",
            ("display window", "100000 x 100000", "LATENTMIRROR_MAX_PIXELS", "plate.1001.exr",
             "frame 1001")),
    Refusal("far data window", far_data_window, "sequence",
            ("data window (30000, 30000)", "display window (0, 0) - (1919, 1079)", "crop",
             "plate.1001.exr", "frame 1001")),
    Refusal("huge display window, CLI", huge_display_window, "render",
            ("display window", "LATENTMIRROR_MAX_PIXELS", "plate.1001.exr")),
    Refusal("FIFO as frame", fifo_frame, "sequence", ("not a regular file", "plate.1001.exr")),
    Refusal("FIFO as frame, CLI", fifo_frame, "render", ("not a regular file", "plate.1001.exr")),
    Refusal("FIFO as model", fifo_model, "model", ("not a regular file", "{target}")),
    Refusal("FIFO as model, CLI", fifo_model, "info", ("not a regular file", "{target}")),
    Refusal("/dev/zero as model", dev_zero_model, "model", ("a pipe or a device", "{target}")),
    Refusal("/dev/zero as model, CLI", dev_zero_model, "info", ("a pipe or a device", "{target}")),
    Refusal("folder as model", folder_model, "model", ("is a folder", "{target}")),
    Refusal("w_dim=16000", model_claiming(w_dim=16000), "model",
            ("w_dim=16000", "outside the bounds", "{target}")),
    Refusal("w_dim=200000", model_claiming(w_dim=200000), "model",
            ("w_dim=200000", "outside the bounds", "{target}")),
    Refusal("w_dim=200000, CLI", model_claiming(w_dim=200000), "info",
            ("w_dim=200000", "outside the bounds", "{target}")),
    Refusal("channel_max=10**6", model_claiming(synthesis_kwargs={"channel_max": 10**6}), "model",
            ("synthesis_kwargs.channel_max=1000000", "{target}")),
    Refusal("w_dim='huge'", model_claiming(w_dim="huge"), "model", ("w_dim='huge'", "{target}")),
    Refusal("metadata and tensors disagree", model_claiming(w_dim=48), "model",
            ("weights do not fit", "[64, 32] vs [64, 48]", "{target}")),
    Refusal("tensor payload in a pickle", tensor_payload_pickle, "model",
            ("refused: the file holds a torch.Tensor", "torch.storage._load_from_bytes",
             "{target}")),
    Refusal("module payload in a pickle", module_payload_pickle, "model",
            ("refused: the file holds an object of class 'torch.nn.modules.linear.Linear'",
             "{target}")),
    Refusal("torch.save'd tensor as model", saved_tensor, "model",
            ("holds a torch.Tensor, not a checkpoint", "{target}")),
]  # fmt: skip


def _refuse(case: Refusal, target: str, folder: Path) -> str:
    """The refusal's message (in-process) or stderr (CLI, checked for exit 1, no traceback)."""
    if case.how in ("info", "render"):
        args = ["info", target]
        if case.how == "render":
            out = str(folder / "out" / "out.####.exr")
            args = ["render", IDENTITY, "--quiet", "--set", f"1.path={target}",
                    "--set", f"10.path={out}"]  # fmt: skip
        result = run_cli(*args, cwd=folder, timeout=60)  # a hang fails here, not forever
        assert_clean_refusal(result)
        return result.stderr
    with pytest.raises(LatentmirrorError) as info:
        if case.how == "sequence":
            load_sequence(target)
        else:
            get_model(target)  # hashes the file first, then load_gan
    return str(info.value)


@pytest.mark.parametrize("case", REFUSALS, ids=[c.name for c in REFUSALS])
def test_hostile_file_is_refused_clearly(case: Refusal, tmp_path):
    target = case.make(tmp_path)
    before = folder_state(tmp_path)
    message = _refuse(case, target, tmp_path)
    for mention in case.mentions:
        assert mention.replace("{target}", target) in message, (mention, message)
    assert "weights_only" not in message and "Traceback" not in message
    assert folder_state(tmp_path) == before  # nothing written, the plate unchanged


def test_a_real_plate_with_overscan_still_loads(tmp_path):
    """The caps refuse the hostile windows, not real overscan."""
    pattern = _exr(tmp_path, data_origin=(-2, -2), display=(0, 0, 2, 2))
    plate = load_sequence(pattern)
    assert plate.rgb.shape == (1, 4, 4, 3) and plate.rgb.min() == 1


def test_the_pixel_cap_is_configurable(tmp_path, monkeypatch):
    pattern = _exr(tmp_path, display=(0, 0, 64, 64))
    monkeypatch.setenv("LATENTMIRROR_MAX_PIXELS", "1000")
    with pytest.raises(LatentmirrorError, match="64 x 64 pixels, above the cap of 1000"):
        load_sequence(pattern)
    monkeypatch.setenv("LATENTMIRROR_MAX_PIXELS", "5000")
    assert load_sequence(pattern).rgb.shape == (1, 64, 64, 3)
    monkeypatch.setenv("LATENTMIRROR_MAX_PIXELS", "lots")
    with pytest.raises(LatentmirrorError, match=r"\$LATENTMIRROR_MAX_PIXELS must be"):
        load_sequence(pattern)


def test_a_negative_frame_belongs_to_its_sequence(tmp_path):
    for frame in ("-0001", "0000", "0001"):
        pixels = np.full((4, 4, 3), float(frame), np.float32)
        write_raw_exr(tmp_path / f"plate.{frame}.exr", pixels, "RGB")
    plate = load_sequence(str(tmp_path / "plate.####.exr"))
    assert plate.info.frames == [-1, 0, 1]
    assert plate.rgb[:, 0, 0, 0].tolist() == [-1.0, 0.0, 1.0]


# ------------------------------------------------------------------------------ the latent cache


def make_latent(scale: float = 1.0) -> GanLatent:
    ws = torch.linspace(-1, 1, 2 * 3 * 4).reshape(2, 3, 4) * scale
    return GanLatent(ws, "w_plus", "hash", [1001, 1002], plan_fit("stretch", 4, 4, 4))


def _alter_ws_bytes(path: str) -> None:
    """Overwrite ws's float32 bytes in place (the file stays valid safetensors)."""
    data = bytearray(Path(path).read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    begin, end = json.loads(data[8:header])["ws"]["data_offsets"]
    data[header + begin : header + end] = np.full((end - begin) // 4, 184, np.float32).tobytes()
    Path(path).write_bytes(bytes(data))


def test_an_altered_cache_entry_is_a_miss_with_one_warning(tmp_path, caplog):
    cache = LatentCache(str(tmp_path / "cache"))
    cache.put("k", make_latent())
    _alter_ws_bytes(cache._path("k"))
    with pytest.raises(LatentmirrorError, match="tensors ws do not match their stored digests"):
        load_latents(cache._path("k"))
    with caplog.at_level(logging.WARNING, "latentmirror"):
        assert cache.get("k") is None
    assert "latent cache entry" in caplog.text and cache._path("k") in caplog.text
    assert not os.path.exists(cache._path("k"))  # removed: the next solve replaces it


def test_a_cache_entry_without_digests_is_not_used(tmp_path):
    cache = LatentCache(str(tmp_path / "cache"))
    cache.put("k", make_latent())
    tensors = load_file(cache._path("k"))
    with safe_open(cache._path("k"), "pt") as f:
        meta = json.loads(f.metadata()["latentmirror"])
    del meta["tensor_digests"]
    save_file(tensors, cache._path("k"), metadata={"latentmirror": json.dumps(meta)})
    assert load_latents(cache._path("k")).ws.shape == (2, 3, 4)  # a plain file: still readable
    assert cache.get("k") is None  # a cache entry: must prove its tensors


@pytest.mark.slow
def test_an_altered_cache_entry_is_solved_again(demo_model, demo_faces, tmp_path, caplog):
    from latentmirror.core.invert import InvertSettings, invert
    from latentmirror.core.losses import LossMix

    images = demo_faces[0][:1]
    cache = LatentCache(str(tmp_path / "cache"))
    settings, mix = InvertSettings(steps=3), LossMix().add("l2")
    first = invert(demo_model, images, settings, mix=mix, cache=cache)
    (entry,) = (tmp_path / "cache").glob("*.safetensors")
    _alter_ws_bytes(str(entry))
    with caplog.at_level(logging.WARNING, "latentmirror"):
        again = invert(demo_model, images, settings, mix=mix, cache=cache)
    assert not again.cached and "latent cache entry" in caplog.text
    assert again.latent.ws.abs().max() < 50  # not the altered 184s
    assert torch.allclose(again.reconstruction, first.reconstruction, atol=1e-4)
    assert invert(demo_model, images, settings, mix=mix, cache=cache).cached  # re-stored


def _as_unprivileged_child(work: Callable[[], object]) -> object:
    """``work()`` in a forked child that cannot write to read-only folders (root drops to
    nobody: root writes anywhere), its result sent back pickled; a traceback fails the test."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            result = ("ok", work())
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails
            result = ("raised", f"{type(exc).__name__}: {exc}")
        with os.fdopen(write, "wb") as pipe:
            pickle.dump(result, pipe)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        status, value = pickle.load(pipe)
    os.waitpid(pid, 0)
    assert status == "ok", value
    return value


def test_a_read_only_cache_serves_good_entries_and_skips_damaged_ones(tmp_path):
    base = tempfile.mkdtemp()  # not under pytest's 0700 tmp_path: the child may be nobody
    try:
        os.chmod(base, 0o755)
        cache = LatentCache(os.path.join(base, "cache"))
        cache.put("good", make_latent())
        cache.put("bad", make_latent())
        _alter_ws_bytes(cache._path("bad"))
        os.chmod(cache.folder, 0o555)

        def use_read_only_cache():
            records: list[str] = []
            handler = logging.Handler()
            handler.emit = lambda record: records.append(record.getMessage())
            logging.getLogger("latentmirror").addHandler(handler)
            ro = LatentCache(cache.folder)
            good, bad = ro.get("good"), ro.get("bad")
            ro.put("new", make_latent())
            ro.put("newer", make_latent())
            return good.ws.tolist(), bad, records, sorted(os.listdir(ro.folder))

        good, bad, warnings, files = _as_unprivileged_child(use_read_only_cache)
        assert good == make_latent().ws.tolist() and bad is None
        assert files == sorted([os.path.basename(cache._path(k)) for k in ("good", "bad")])
        assert len(warnings) == 2, warnings  # the damaged entry once, the unwritable folder once
        assert "is not used" in warnings[0] and "cannot be written" in warnings[1]
    finally:
        os.chmod(os.path.join(base, "cache"), 0o755)
        subprocess.run(["rm", "-rf", base], check=True)


def test_orphan_temporaries_count_toward_the_size_and_go_when_abandoned(tmp_path):
    cache = LatentCache(str(tmp_path / "cache"), max_bytes=10**9)
    cache.put("k1", make_latent())
    size = os.path.getsize(cache._path("k1"))
    # named as write_atomically names them: one of a live writer (this process), one of a
    # writer on another host that has not touched it for two hours
    digest = "0123456789abcdef"
    old = Path(cache.folder) / f".lm-{digest}-otherhost-1-abc123.tmp.safetensors"
    young = Path(cache.folder) / f".lm-{digest}-{_host_name()}-{os.getpid()}-def456.tmp.safetensors"
    old.write_bytes(b"\0" * size * 3)
    young.write_bytes(b"\0" * size)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    small = LatentCache(cache.folder, max_bytes=int(size * 2.5))
    small.put("k2", make_latent())  # old orphan removed; young one + k1 + k2 = 3 sizes > 2.5
    assert not old.exists() and young.exists()
    assert not os.path.exists(cache._path("k1")) and small.get("k2") is not None


# ------------------------------------------------------------------------------ peak memory

_MEASURE = """
import json, sys
from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.frames.sequence import load_sequence
from latentmirror.core.gan.cache import get_model

def high_water_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

how, target = sys.argv[1:]
baseline = high_water_mb()  # after the imports: the process as a server holds it
try:
    load_sequence(target) if how == "sequence" else get_model(target)
    message = None
except LatentmirrorError as exc:
    message = str(exc)
print(json.dumps({"baseline": baseline, "peak": high_water_mb(), "message": message}))
"""

MEMORY_CASES = [c for c in REFUSALS if c.how in ("sequence", "model") and "FIFO" not in c.name]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM (Linux)")
@pytest.mark.parametrize("case", MEMORY_CASES, ids=[c.name for c in MEMORY_CASES])
def test_refusing_a_hostile_file_takes_little_memory(case: Refusal, tmp_path):
    target = case.make(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, case.how, target],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["message"] is not None  # refused
    extra = figures["peak"] - figures["baseline"]
    print(f"peak memory refusing {case.name}: +{extra:.0f} MB over {figures['baseline']:.0f} MB")
    assert extra < 200, figures


# ------------------------------------------------------------------------------ the dry build

_SG3 = dict(z_dim=16, w_dim=16, c_dim=0, img_resolution=32, img_channels=3, channel_base=1024,
            channel_max=32)  # fmt: skip


@pytest.mark.parametrize(
    "module, kwargs",
    [
        ("stylegan2.Generator", fx.SG2_G_KWARGS),
        ("stylegan2.Generator", {**fx.SG2_G_KWARGS, "c_dim": 3}),
        ("stylegan2.Discriminator", fx.SG2_D_KWARGS),
        ("stylegan3.Generator", _SG3),
        ("stylegan3.Generator", {**_SG3, "conv_kernel": 1, "use_radial_filters": True}),
    ],
    ids=["sg2 G", "sg2 G conditional", "sg2 D", "sg3-t G", "sg3-r G"],
)
def test_the_dry_build_has_the_real_networks_shapes(module, kwargs):
    """The meta-device build that checks a file's tensors sees what the real build makes."""
    import importlib

    from latentmirror.core.gan.bounds import dry_build

    file, name = module.split(".")
    cls = getattr(importlib.import_module(f"latentmirror.core.gan.{file}"), name)
    dry, real = dry_build(lambda: cls(**kwargs)).state_dict(), cls(**kwargs).state_dict()
    assert {k: v.shape for k, v in dry.items()} == {k: v.shape for k, v in real.items()}
    # Only filters and biases (made from numpy, a few KB within the bounds) hold data.
    real_data = {k: v for k, v in dry.items() if v.device.type != "meta"}
    assert all(v.ndim == 1 or k.endswith("filter") for k, v in real_data.items()), real_data.keys()
