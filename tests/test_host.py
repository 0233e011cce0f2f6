"""The host interface the nodes call: the plain default host, shot state, the layers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from latentmirror import host as host_module
from latentmirror.host import PlainHost, ShotState, current_host, set_host
from latentmirror.plugin.headless import HeadlessHost


@pytest.fixture
def no_host():
    set_host(None)
    yield
    set_host(None)


def test_without_a_host_set_nodes_get_a_plain_one(no_host):
    host = current_host()
    assert type(host) is PlainHost and current_host() is host  # made once, then kept
    assert host.shot is None  # outside a shot render
    host.check_interrupt()  # never interrupted
    bar = host.progress(10, "steps")
    bar.update(5, 10)
    bar.close()
    assert str(host.device()) in ("cpu", "cuda")
    assert host.model_folders("gan")[0] == f"{host_module.BUNDLED_MODELS}/gan"
    assert "latentmirror-demo-faces-64.safetensors" in host.list_models("gan")
    plot = np.zeros((4, 4, 3), np.uint8)
    assert host.show_plot(plot, "invert_loss_1") == [] and host.plots["invert_loss_1"] is plot


def test_the_headless_host_is_a_plain_host_with_bars_and_ctrl_c(no_host, tmp_path):
    headless = set_host(HeadlessHost(device="cpu", models_dir=str(tmp_path), show_progress=False))
    assert isinstance(headless, PlainHost) and current_host() is headless
    assert str(headless.device()) == "cpu"
    headless.interrupt_requested.set()
    with pytest.raises(Exception, match="interrupted"):
        headless.check_interrupt()


def test_shot_state_carries_latents_by_node_and_logs_frames():
    shot = ShotState()
    assert shot.previous_latent(7) is None
    shot.keep_latent(7, "latent of 1003")
    assert shot.previous_latent("7") == "latent of 1003"  # node ids as ComfyUI gives them: text
    shot.record_frame(1003, loss=0.25)
    shot.record_frame(1003, output="/out/a.1003.exr")
    assert shot.frame_log == {1003: {"loss": 0.25, "output": "/out/a.1003.exr"}}


def test_the_host_interface_loads_neither_nodes_nor_plugin_nor_torch():
    code = (
        "import sys, latentmirror.host as h; h.current_host(); "
        "print(sorted(m for m in sys.modules if m.startswith(('latentmirror.', 'torch'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    # latentmirror.core is only the package's __init__ (the version, no imports): no submodule
    assert loaded.stdout.strip() == "['latentmirror.core', 'latentmirror.host']"
