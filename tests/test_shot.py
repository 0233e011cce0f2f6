"""Shot renders: chunks with pre-roll, carried warm starts, resume, the JSON log, SIGKILL."""

from __future__ import annotations

import glob
import json
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from latentmirror.core.frames.exr import read_headers
from latentmirror.plugin.local_backend import LocalBackend
from latentmirror.plugin.shot import ShotJob, chunk_graph, plan_chunks, render_shot

from .support import IDENTITY, frames_on_disk, overrides, pixels, write_raw_exr


def _job(sets: list[str], chunk: int, preroll: int, log_json=None) -> ShotJob:
    return ShotJob(IDENTITY, None, tuple(sets), chunk, preroll, log_json)


def test_chunks_cover_the_shot_once_with_preroll_before_each():
    frames = [1001, 1002, 1003, 1005, 1006, 1007, 1008]  # a gap is kept as it is
    chunks = plan_chunks(frames, 3, 2)
    assert [c.frames for c in chunks] == [(1001, 1002, 1003), (1005, 1006, 1007), (1008,)]
    assert [c.preroll for c in chunks] == [(), (1002, 1003), (1006, 1007)]
    assert [f for c in chunks for f in c.frames] == frames
    assert plan_chunks(frames, 10, 0)[0].loaded == tuple(frames)


def test_a_chunk_graph_loads_only_its_frames_and_preroll(shot_plate, tmp_path):
    chunk = plan_chunks(list(range(1001, 1009)), 3, 2)[1]
    graph = chunk_graph(IDENTITY, overrides(shot_plate, str(tmp_path / "o.####.exr")), chunk)
    assert graph["1"].inputs["frames"] == (1002, 1003, 1004, 1005, 1006)  # parsed, not text
    assert graph["10"].inputs["write_frames"] == (1004, 1005, 1006)
    assert graph["7"].inputs["steps"] == "20"


@pytest.mark.slow
def test_chunked_render_writes_every_frame_once_and_resumes(
    headless_host, shot_plate, tmp_path, caplog
):
    out = str(tmp_path / "out" / "shot.####.exr")
    log = tmp_path / "log.jsonl"
    caplog.set_level(logging.INFO, logger="latentmirror")
    with open(log, "w") as stream:
        report = render_shot(_job(overrides(shot_plate, out), 3, 2, stream), LocalBackend())
    # the warm start carries from chunk to chunk in one process: no pre-roll is loaded
    assert "chunk 2 (1004-1006) with 0 pre-roll" in caplog.text
    assert report.chunks == 3 and len(report.rendered) == 3
    assert [os.path.basename(p) for p in report.plots] == [
        "shot.invert_loss_7.1001-1003.png", "shot.invert_loss_7.1004-1006.png",
        "shot.invert_loss_7.1007-1008.png",
    ]  # fmt: skip
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(1001, 1009))
    assert all(x["loss"] > 0 and x["output"].endswith(f"shot.{x['frame']}.exr") for x in lines)
    assert [x["chunk"] for x in lines] == [1, 1, 1, 2, 2, 2, 3, 3]
    assert frames_on_disk(out) == list(range(1001, 1009))
    # resume: nothing to do; then one frame lost: only its chunk runs and only it is written
    again = render_shot(_job(overrides(shot_plate, out), 3, 2), LocalBackend())
    assert len(again.skipped) == 3 and not again.rendered
    os.remove(out.replace("####", "1005"))
    with open(log, "w") as stream:
        third = render_shot(_job(overrides(shot_plate, out), 3, 2, stream), LocalBackend())
    assert [c.index for c in third.rendered] == [1]
    assert "chunk 2 (1004-1006) with 2 pre-roll" in caplog.text  # nothing carried: pre-roll
    assert [json.loads(x)["frame"] for x in log.read_text().splitlines()] == [1005]


@pytest.mark.slow
def test_chunked_render_is_close_to_a_single_pass(headless_host, shot_plate, tmp_path):
    single = str(tmp_path / "single" / "s.####.exr")
    chunked = str(tmp_path / "chunked" / "c.####.exr")
    render_shot(_job(overrides(shot_plate, single), 100, 0), LocalBackend())
    render_shot(_job(overrides(shot_plate, chunked), 3, 2), LocalBackend())
    a, b = pixels(single), pixels(chunked)
    assert a.shape == b.shape
    assert abs(a - b).mean() < 0.05 * abs(a).mean()


def _cli(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "latentmirror", "render", IDENTITY, *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.slow
def test_sigkill_part_way_then_rerun_writes_only_the_missing_frames(shot_plate, tmp_path):
    out = str(tmp_path / "out" / "k.####.exr")
    args = [*sum((["--set", s] for s in overrides(shot_plate, out, steps=60)), []), "--chunk", "2",
            "--preroll", "1", "--log-json", str(tmp_path / "first.jsonl")]  # fmt: skip
    process = _cli(*args, cwd=tmp_path)
    deadline = time.time() + 240
    while len(glob.glob(out.replace("####", "*"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = sorted(glob.glob(out.replace("####", "*")))
    assert 3 <= len(before) < 8, "the render should have been killed part-way"
    for path in before:  # every frame on disk is whole
        read_headers(path)
    args[-1] = str(tmp_path / "second.jsonl")
    rerun = _cli(*args, cwd=tmp_path)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()[-2000:]
    first = {json.loads(x)["frame"] for x in (tmp_path / "first.jsonl").read_text().splitlines()}
    second = [json.loads(x)["frame"] for x in (tmp_path / "second.jsonl").read_text().splitlines()]
    done_before = {int(p.split(".")[-2]) for p in before}
    assert first <= done_before  # the log only lists frames that reached the disk
    assert not done_before & set(second)  # nothing rendered twice
    assert sorted(done_before | set(second)) == list(range(1001, 1009))
    assert frames_on_disk(out) == list(range(1001, 1009))
    assert not glob.glob(str(tmp_path / "out" / ".*.tmp.exr"))  # no temporaries left


def test_a_range_starting_mid_shot_takes_its_preroll_from_the_plate():
    chunks = plan_chunks([1017, 1018, 1019, 1020], 2, 3, before=list(range(1001, 1025)))
    assert chunks[0].preroll == (1014, 1015, 1016)
    assert chunks[1].preroll == (1016, 1017, 1018)


def test_every_shot_backend_is_registered_once_with_its_render_option():
    from latentmirror.plugin.backends import SHOT_BACKENDS
    from latentmirror.plugin.cli import build_parser
    from latentmirror.plugin.shot import ShotBackend

    assert list(SHOT_BACKENDS) == ["local", "ray", "server"]
    for entry in SHOT_BACKENDS.values():
        assert issubclass(entry.load(), ShotBackend)
    render = build_parser().parse_args(["render", "g.json", "--ray", "auto", "--server", "u"])
    assert (render.ray, render.server) == ("auto", "u")
    assert LocalBackend().where is None  # its summary: rendered here


def test_the_inputs_a_chunk_sets_are_the_nodes_own():
    from latentmirror.nodes.exr_nodes import LoadEXRSequence, SaveEXRSequence
    from latentmirror.plugin.graph import iter_input_specs

    loader = {name for name, _ in iter_input_specs(LoadEXRSequence)}
    saver = {name for name, _ in iter_input_specs(SaveEXRSequence)}
    assert {LoadEXRSequence.PATH_INPUT, LoadEXRSequence.FRAMES_INPUT} <= loader
    set_by_chunks = {
        SaveEXRSequence.PATH_INPUT,
        SaveEXRSequence.WRITE_FRAMES_INPUT,
        SaveEXRSequence.START_FRAME_INPUT,
        SaveEXRSequence.PLATE_INFO_INPUT,
    }
    assert set_by_chunks <= saver


def test_loader_and_saver_take_frames_as_text_or_parsed(headless_host, shot_plate, tmp_path):
    from latentmirror.nodes.exr_nodes import LoadEXRSequence, SaveEXRSequence

    loader, saver = LoadEXRSequence(), SaveEXRSequence()
    typed = loader.load(shot_plate, "1002-1004", "error")
    parsed = loader.load(shot_plate, (1002, 1003, 1004), "error")
    assert typed[2].frames == parsed[2].frames == [1002, 1003, 1004]
    assert (typed[0] == parsed[0]).all()
    for name, frames in (("text", "1003-1004"), ("parsed", (1003, 1004))):
        out = str(tmp_path / name / "o.####.exr")
        saved = saver.save(parsed[0], out, "half", "zip", "skip", parsed[2], write_frames=frames)
        assert [p.split(".")[-2] for p in saved["ui"]["files"]] == ["1003", "1004"]
        assert frames_on_disk(out) == [1003, 1004]


def test_a_chunk_after_its_preroll_is_saved_from_a_view_of_the_batch(headless_host, tmp_path):
    """Save EXR Sequence takes a chunk's frames after its pre-roll as a view (one run of the
    batch), not a copy in fresh memory; frames out of order are still taken; an RGB plate's
    copy of those frames gets no alpha."""
    from latentmirror.nodes.common import take_frames
    from latentmirror.nodes.exr_nodes import LoadEXRSequence, SaveEXRSequence

    for frame in range(1001, 1005):
        grey = np.full((16, 24, 3), (frame - 1000) / 8, np.float32)
        write_raw_exr(tmp_path / f"rgb.{frame}.exr", grey, ["R", "G", "B"])
    images, mask, info = LoadEXRSequence().load(str(tmp_path / "rgb.####.exr"), "", "error")
    run = take_frames(images, [2, 3])
    assert run.data_ptr() == images[2].data_ptr() and run.shape[0] == 2  # a view
    shuffled = take_frames(images, [3, 1])
    assert shuffled.data_ptr() != images.data_ptr() and bool((shuffled[1] == images[1]).all())
    out = str(tmp_path / "copy" / "c.####.exr")
    SaveEXRSequence().save(images, out, "half", "zip", "overwrite", info, mask=mask,
                           write_frames="1003-1004")  # fmt: skip
    assert frames_on_disk(out) == [1003, 1004]
    assert read_headers(out.replace("####", "1003"))[0].channels == ["R", "G", "B"]
    assert pixels(out)[0, 0, 0, 0] == 3 / 8
