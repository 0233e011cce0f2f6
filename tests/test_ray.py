"""``render --ray``: chunks as tasks on a local Ray cluster with two workers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentmirror.plugin.cli import main

from .support import IDENTITY, curve_graph, frames_on_disk, overrides, pixels, run_cli

pytestmark = pytest.mark.slow  # every test renders a shot on a Ray cluster

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _args(plate, out, *extra):
    sets = sum((["--set", s] for s in overrides(plate, out)), [])
    return ["render", IDENTITY, *sets, "--chunk", "2", "--preroll", "1", "--quiet", *extra]


def test_ray_tasks_write_the_same_frames_as_the_local_path(
    cluster, headless_host, shot_plate, tmp_path, capsys
):
    on_ray = str(tmp_path / "ray" / "r.####.exr")
    log = tmp_path / "ray.jsonl"
    assert main(_args(shot_plate, on_ray, "--ray", "auto", "--log-json", str(log))) == 0
    assert "4 succeeded, 0 failed" in capsys.readouterr().out
    assert frames_on_disk(on_ray) == list(range(1001, 1009))
    logged = sorted(json.loads(x)["frame"] for x in log.read_text().splitlines())
    assert logged == list(range(1001, 1009))
    # the local path, as farm tasks do it (each chunk on its own, from its pre-roll)
    local = str(tmp_path / "local" / "l.####.exr")
    for first in range(1001, 1009, 2):
        assert main(_args(shot_plate, local, "--frames", f"{first}-{first + 1}")) == 0
    a, b = pixels(on_ray), pixels(local)
    assert np.abs(a - b).mean() < 0.01 * np.abs(b).mean()


def test_a_failing_task_is_retried_then_reported_with_its_frames(
    cluster, headless_host, shot_plate, tmp_path, capsys
):
    out = str(tmp_path / "bad" / "b.####.exr")
    code = main(_args(shot_plate, out, "--ray", "auto", "--frames", "1001-1004", "--set",
                      "7.fit=tiles"))  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "chunk 1001-1002:" in err and "chunk 1003-1004:" in err
    assert "at least as large as the model" in err


def test_a_curve_driven_frame_on_a_ray_worker_is_bit_identical_to_one_local_pass(
    cluster, headless_host, shot_plate, tmp_path, capsys
):
    chan = tmp_path / "prior.chan"
    chan.write_text("1001 0.001\n1004 0.05\n")
    graph = curve_graph(tmp_path / "curves.json", str(chan))
    sets = ["--set", f"1.path={shot_plate}", "--frames", "1001-1004", "--quiet"]
    on_ray, local = str(tmp_path / "ray" / "r.####.exr"), str(tmp_path / "local" / "l.####.exr")
    assert main(["render", graph, *sets, "--set", f"10.path={on_ray}", "--chunk", "2",
                 "--ray", "auto"]) == 0  # fmt: skip
    assert "2 succeeded, 0 failed" in capsys.readouterr().out
    # one pass in a fresh process with one thread, as Ray gives each task (float sums split
    # over a different number of threads may differ in the last bit)
    done = run_cli("render", graph, *sets, "--set", f"10.path={local}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert frames_on_disk(on_ray) == frames_on_disk(local) == [1001, 1002, 1003, 1004]
    assert np.array_equal(pixels(on_ray), pixels(local))
