"""Frames you can trust on resume: fingerprints, skip/overwrite/error with and without --chunk,
outputs over plates, files we did not write, temporaries of concurrent writers, the umask.

Renders are real (the plate-to-display template: OIIO + OCIO, fast; one Invert graph on the demo
model for the model/look part of the fingerprint), files are real EXRs on disk.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.frames.exr import (
    FINGERPRINT_ATTRIBUTE,
    WRITER_ATTRIBUTE,
    Box,
    incomplete_reason,
    read_headers,
    write_exr,
)
from latentmirror.core.frames.sequence import save_sequence
from latentmirror.core.storage import (
    ABANDONED_AFTER_SECONDS,
    remove_leftover_temporaries,
    temporary_glob,
)
from latentmirror.plugin.local_backend import LocalBackend
from latentmirror.plugin.runner import run_graph_file
from latentmirror.plugin.shot import ShotJob, render_shot

from .support import (
    IDENTITY,
    PACKAGE_ROOT,
    assert_clean_refusal,
    folder_state,
    overrides,
    run_cli,
    write_raw_exr,
)

DISPLAY_GRAPH = str(PACKAGE_ROOT / "example_workflows" / "plate_to_display.json")
FRAMES = list(range(1001, 1009))  # the `plate` fixture's


def _sets(plate: str, out: str, *more: str) -> tuple[str, ...]:
    return (f"1.path={plate}", f"3.path={out}", *more)


def _shot(plate: str, out: str, *more: str, chunk: int = 3):
    return render_shot(
        ShotJob(DISPLAY_GRAPH, None, _sets(plate, out, *more), chunk, 0), LocalBackend()
    )


def _frame(pattern: str, frame: int) -> str:
    return pattern.replace("####", str(frame))


def _mtimes(pattern: str) -> dict[int, int]:
    return {f: os.stat(_frame(pattern, f)).st_mtime_ns for f in FRAMES}


def _fingerprint(path: str) -> str:
    return read_headers(path)[0].attribute(FINGERPRINT_ATTRIBUTE)


# ------------------------------------------------------------------------------ resume, chunked


def _same_graph(plate, out):
    return ()


def _look_change(plate, out):
    return ("3.pixel_type=float",)


def _truncate_1004(plate, out):
    path = _frame(out, 1004)
    os.truncate(path, os.path.getsize(path) // 2)
    assert read_headers(path)  # the header still reads: only decoding the pixels tells
    return ()


def _replot_plate_1007(plate, out):  # the plate frame re-delivered: same name, new file
    path = _frame(plate, 1007)
    data = Path(path).read_bytes()
    os.remove(path)
    Path(path).write_bytes(data)
    return ()


def _overwrite(plate, out):
    return ("3.existing=overwrite",)


@dataclass
class Rerun:
    name: str
    change: object  # (plate, out) -> extra --set values, after changing files on disk
    rewritten: list[int]  # frames written again
    chunks_rendered: int
    log_mentions: tuple[str, ...] = ()


RERUNS = [
    Rerun("same graph: every frame kept", _same_graph, [], 0, ("8 up to date",)),
    Rerun("look changed: every frame stale", _look_change, FRAMES, 3, ("8 stale",)),
    Rerun("truncated frame: damaged, its chunk only", _truncate_1004, [1004], 1, ("1 damaged",)),
    Rerun("plate frame replaced: that frame stale", _replot_plate_1007, [1007], 1, ("1 stale",)),
    Rerun("overwrite: every chunk renders", _overwrite, FRAMES, 3),
]


@pytest.mark.parametrize("case", RERUNS, ids=[c.name for c in RERUNS])
def test_a_chunked_rerun_renders_exactly_what_is_not_up_to_date(
    case, headless_host, plate, tmp_path, caplog
):
    out = str(tmp_path / "out" / "o.####.exr")
    first = _shot(plate, out)
    assert len(first.rendered) == 3
    before = _mtimes(out)
    time.sleep(0.01)
    extra = case.change(plate, out)
    caplog.set_level("INFO", logger="latentmirror")
    again = _shot(plate, out, *extra)
    assert len(again.rendered) == case.chunks_rendered
    after = _mtimes(out)
    assert [f for f in FRAMES if after[f] != before[f]] == case.rewritten
    for mention in case.log_mentions:
        assert mention in caplog.text
    for frame in FRAMES:  # whatever happened, every frame on disk is whole and marked as ours
        path = _frame(out, frame)
        assert incomplete_reason(path) is None
        assert read_headers(path)[0].attribute(WRITER_ATTRIBUTE).startswith("latentmirror")


def test_chunked_and_single_pass_renders_of_one_look_agree(headless_host, plate, tmp_path):
    out = str(tmp_path / "out" / "o.####.exr")
    single = run_graph_file(DISPLAY_GRAPH, None, list(_sets(plate, out)))
    assert len(single.files) == 8
    fingerprints = {f: _fingerprint(_frame(out, f)) for f in FRAMES}
    assert len(set(fingerprints.values())) == 8  # the frame number is part of it
    chunked = _shot(plate, out, chunk=2)
    assert len(chunked.skipped) == 4 and not chunked.rendered
    again = run_graph_file(DISPLAY_GRAPH, None, list(_sets(plate, out)))  # and back: all kept
    assert not again.files and len(again.skipped_files) == 8
    assert again.ui["3"]["text"] == ["kept 8 frames up to date"]


def test_what_goes_into_a_fingerprint(plate, tmp_path):
    """Each ingredient changes it: a look input, the model file's content, the plate file, the
    frame; the inputs that only choose frames do not."""
    from latentmirror.host import PlainHost
    from latentmirror.nodes.provenance import frame_fingerprints

    (tmp_path / "models" / "gan").mkdir(parents=True)
    model = tmp_path / "models" / "gan" / "look.pkl"
    model.write_bytes(b"weights v1")
    host = PlainHost(models_dir=str(tmp_path / "models"))
    prompt = {
        "1": {"class_type": "LM_LoadEXRSequence",
              "inputs": {"path": plate, "frames": "1001-1002", "missing": "error"}},
        "2": {"class_type": "LM_LoadGAN", "inputs": {"model_name": "look.pkl", "dtype": "auto"}},
        "3": {"class_type": "LM_SaveEXRSequence",
              "inputs": {"images": ["1", 0], "model": ["2", 0], "path": "o.####.exr",
                         "existing": "skip", "write_frames": "", "start_frame": 1001}},
    }  # fmt: skip

    def fingerprints(**inputs) -> dict[int, str]:
        for key, value in inputs.items():
            node, name = key.split("_", 1)
            prompt[node]["inputs"][name] = value
        return frame_fingerprints(prompt, "3", [1001, 1002], host)

    original = fingerprints()
    assert original[1001] != original[1002]
    # frame selection, the existing policy, and numbers typed as text: the same look
    assert fingerprints(**{"1_frames": (1001,), "3_write_frames": (1002,), "3_existing":
                           "overwrite", "3_start_frame": "995"}) == original  # fmt: skip
    assert fingerprints(**{"2_dtype": "float16"}) != original
    fingerprints(**{"2_dtype": "auto"})
    time.sleep(0.01)
    model.write_bytes(b"weights v2")
    assert fingerprints() != original
    model.write_bytes(b"weights v1")
    assert fingerprints() == original  # content, not the file's date
    os.utime(_frame(plate, 1002))
    changed = fingerprints()
    assert changed[1001] == original[1001] and changed[1002] != original[1002]


@pytest.mark.slow
def test_the_model_and_the_inversion_settings_are_part_of_the_fingerprint(
    headless_host, shot_plate, tmp_path
):
    out = str(tmp_path / "out" / "i.####.exr")
    sets = [*overrides(shot_plate, out, steps=1), "7.batch_size=1"]
    first = run_graph_file(IDENTITY, "1001-1002", sets)
    assert len(first.files) == 2
    kept = run_graph_file(IDENTITY, "1001-1002", sets)
    assert not kept.files and len(kept.skipped_files) == 2
    changed = run_graph_file(IDENTITY, "1001-1002", [*sets, "7.steps=2"])
    assert len(changed.files) == 2
    assert changed.ui["10"]["text"] == ["rewrote 2 stale"]


def test_the_saver_previews_only_frames_it_wrote_and_says_what_it_kept(plate, tmp_path):
    from latentmirror import host as host_module
    from latentmirror.host import PlainHost

    class PreviewingHost(PlainHost):  # a host that shows previews, as ComfyUI's does
        wants_previews = True

        def preview_images(self, images, prefix):
            return [{"filename": f"{prefix}_{i}.png"} for i in range(len(images))]

    host_module.set_host(PreviewingHost())
    try:
        out = str(tmp_path / "out" / "o.####.exr")
        run_graph_file(DISPLAY_GRAPH, None, list(_sets(plate, out)))
        os.remove(_frame(out, 1003))
        os.truncate(_frame(out, 1005), os.path.getsize(_frame(out, 1005)) - 100)
        again = run_graph_file(DISPLAY_GRAPH, None, list(_sets(plate, out)))
    finally:
        host_module.set_host(None)
    shown = again.ui["3"]
    assert [os.path.basename(f) for f in shown["files"]] == ["o.1003.exr", "o.1005.exr"]
    # the two frames written, not the six kept, and a card on the node that says so (ComfyUI's
    # frontend shows a node's images, not its text)
    names = [i["filename"] for i in shown["images"]]
    assert names == ["lm_save_0.png", "lm_save_1.png", "lm_save_kept_0.png"]
    assert shown["text"] == ["kept 6 frames up to date, rewrote 1 damaged"]


# ------------------------------------------------------------------------------ refusals


def _graph_over_plate(plate, tmp_path):
    return plate, ()


def _foreign_file(plate, tmp_path):
    out = str(tmp_path / "out" / "victim.####.exr")
    os.makedirs(tmp_path / "out")
    Path(_frame(out, 1003)).write_text("a text file, not ours")
    return out, ("3.existing=overwrite",)


def _foreign_exr(plate, tmp_path):  # an EXR another tool wrote: not ours to replace either
    out = str(tmp_path / "out" / "nuke.####.exr")
    os.makedirs(tmp_path / "out")
    write_raw_exr(_frame(out, 1002), np.zeros((4, 4, 3), np.float32), ["R", "G", "B"])
    return out, ()


def _existing_with_error(plate, tmp_path):
    out = str(tmp_path / "out" / "e.####.exr")
    render_shot(ShotJob(DISPLAY_GRAPH, "1005", _sets(plate, out), 3, 0), LocalBackend())
    return out, ("3.existing=error",)


@dataclass
class Refusal:
    name: str
    setup: object  # (plate, tmp_path) -> (output pattern, extra --set values)
    chunk: int | None  # None: a single pass (run_graph_file)
    mentions: tuple[str, ...]  # in the message: what the user must see
    file_frame: int  # the frame whose file the message names


REFUSALS = [
    Refusal("output is the plate, chunked", _graph_over_plate, 3, ("never writes over a plate",
            "node 3 (Save EXR Sequence)", "input 'path'"), 1001),
    Refusal("output is the plate, single pass", _graph_over_plate, None,
            ("the plate node 1 reads", "node 3 (Save EXR Sequence)"), 1001),  # loader, first
    Refusal("foreign file, overwrite, chunked", _foreign_file, 3,
            ("not written by latentmirror",), 1003),
    Refusal("foreign file, overwrite, single pass", _foreign_file, None,
            ("not written by latentmirror",), 1003),
    Refusal("another tool's EXR, skip, chunked", _foreign_exr, 3,
            ("not written by latentmirror",), 1002),
    Refusal("existing=error, chunked", _existing_with_error, 3, ("exist already",), 1005),
    Refusal("existing=error, single pass", _existing_with_error, None, ("exist already",), 1005),
]  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS, ids=[c.name for c in REFUSALS])
def test_refused_before_anything_is_written(case, headless_host, plate, tmp_path):
    out, extra = case.setup(plate, tmp_path)
    before = folder_state(tmp_path)
    with pytest.raises(LatentmirrorError) as caught:
        if case.chunk is None:
            run_graph_file(DISPLAY_GRAPH, None, list(_sets(plate, out, *extra)))
        else:
            _shot(plate, out, *extra, chunk=case.chunk)
    message = str(caught.value)
    for mention in case.mentions:
        assert mention in message
    assert os.path.basename(_frame(out, case.file_frame)) in message
    assert folder_state(tmp_path) == before  # nothing written, the plate unchanged


@pytest.mark.parametrize(
    "setup, mention",
    [(_graph_over_plate, "never writes over a plate"), (_foreign_file, "victim.1003.exr")],
    ids=["plate", "foreign"],
)
def test_the_cli_refuses_cleanly(setup, mention, plate, tmp_path):
    out, extra = setup(plate, tmp_path)
    before = folder_state(tmp_path)
    sets = [a for s in _sets(plate, out, *extra) for a in ("--set", s)]
    result = run_cli("render", DISPLAY_GRAPH, *sets, "--chunk", "3", cwd=tmp_path)
    assert_clean_refusal(result, mention)
    assert folder_state(tmp_path) == before


# ---------------------------------------------------------------------- files and temporaries


def test_a_250_character_output_name_is_written(tmp_path):
    name = "n" * 241 + ".####.exr"
    assert len(name) == 250
    report = save_sequence(str(tmp_path / name), np.ones((2, 4, 4, 3), np.float32))
    assert len(report.written) == 2
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in report.written)


def test_two_concurrent_overwrite_writers_both_succeed(tmp_path):
    out = str(tmp_path / "c.####.exr")
    images = {
        "a": np.full((6, 64, 64, 3), 0.25, np.float32),
        "b": np.full((6, 64, 64, 3), 0.75, np.float32),
    }
    failures: list[BaseException] = []

    def writer(which: str) -> None:
        try:
            for _ in range(4):
                save_sequence(out, images[which], existing="overwrite")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in ("a", "b", "a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    for frame in range(1001, 1007):
        assert incomplete_reason(_frame(out, frame)) is None
    assert sorted(os.listdir(tmp_path)) == [f"c.{f}.exr" for f in range(1001, 1007)]


@pytest.mark.slow
def test_two_processes_writing_the_same_frames_both_succeed(tmp_path):
    out = str(tmp_path / "p.####.exr")
    script = (
        "import numpy as np, sys\n"
        "from latentmirror.core.frames.sequence import save_sequence\n"
        "for _ in range(5):\n"
        "    save_sequence(sys.argv[1], np.full((6, 64, 64, 3), float(sys.argv[2]), np.float32),"
        " existing='overwrite')\n"
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", script, out, value], stderr=subprocess.PIPE)
        for value in ("0.25", "0.75")
    ]
    for process in writers:
        assert process.wait(timeout=120) == 0, process.stderr.read().decode()[-2000:]
    assert sorted(os.listdir(tmp_path)) == [f"p.{f}.exr" for f in range(1001, 1007)]
    assert all(incomplete_reason(_frame(out, f)) is None for f in range(1001, 1007))


def test_only_abandoned_temporaries_are_removed(tmp_path):
    target = str(tmp_path / "frame.1001.exr")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    digest = os.path.basename(temporary_glob(target)).split("-")[1]
    from latentmirror.core.storage import _host_name

    def temporary(host: str, pid: int, age: float = 0) -> str:
        path = str(tmp_path / f".lm-{digest}-{host}-{pid}-abcdefgh.tmp.exr")
        Path(path).write_bytes(b"partial")
        os.utime(path, (time.time() - age, time.time() - age))
        return path

    dead = temporary(_host_name(), int(gone.stdout))
    live = temporary(_host_name(), os.getpid())
    elsewhere = temporary("otherhost", 1)
    elsewhere_old = temporary("otherhost", 2, age=ABANDONED_AFTER_SECONDS + 60)
    assert sorted(remove_leftover_temporaries(target)) == sorted([dead, elsewhere_old])
    assert os.path.exists(live) and os.path.exists(elsewhere)


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_every_writer_follows_the_umask(umask, tmp_path, demo_model):
    """Frames, latents, converted models, plots and the JSON log: readable by the team."""
    import torch

    from latentmirror.core.gan.loading import save_safetensors
    from latentmirror.core.latents import GanLatent, save_latents
    from latentmirror.host import PlainHost
    from latentmirror.plugin.runner import write_pending_plots
    from latentmirror.plugin.shot import open_log

    previous = os.umask(umask)
    try:
        report = save_sequence(str(tmp_path / "u.####.exr"), np.ones((1, 4, 4, 3), np.float32))
        latent = GanLatent(torch.zeros(1, 2, 4), "w_plus", "hash", [1001], _fit())
        latents = save_latents(latent, str(tmp_path / "l.safetensors"))
        model = str(tmp_path / "model.safetensors")
        save_safetensors(demo_model, model)
        host = PlainHost()
        host.plots["loss"] = np.zeros((4, 4, 3), np.uint8)
        plots = write_pending_plots(host, str(tmp_path))
        open_log(str(tmp_path / "log.jsonl")).close()
    finally:
        os.umask(previous)
    for path in (*report.written, latents, model, *plots, str(tmp_path / "log.jsonl")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask, path


def _fit():
    from latentmirror.core.fit import plan_fit

    return plan_fit("pad", 64, 64, 64)


def test_save_latents_replaces_only_latent_files_it_wrote(tmp_path):
    import torch

    from latentmirror.core.latents import GanLatent, load_latents, save_latents

    ours = str(tmp_path / "ours.safetensors")
    latent = GanLatent(torch.zeros(1, 2, 4), "w_plus", "hash", [1001], _fit())
    save_latents(latent, ours)
    save_latents(latent, ours)  # ours: replaced
    assert load_latents(ours).frames == [1001]
    theirs = tmp_path / "theirs.safetensors"
    theirs.write_text("someone's notes")
    with pytest.raises(LatentmirrorError, match="not a latent file latentmirror wrote") as caught:
        save_latents(latent, str(theirs))
    assert caught.value.where.file == str(theirs)
    assert theirs.read_text() == "someone's notes"


def test_a_full_disk_never_leaves_a_torn_frame_under_its_final_name(tmp_path, rng):
    """OpenEXR may report success when the volume fills during its last flush (the tail is
    lost); the frame must not be renamed into place then. A small tmpfs filled to leave less
    room than the frame needs (root mounts it; skipped elsewhere)."""
    pixels = rng.random((96, 160, 4)).astype(np.float32)
    window = Box(0, 0, 160, 96)
    reference = str(tmp_path / "reference.exr")
    write_exr(reference, pixels, ["R", "G", "B", "A"], window, window)
    size = os.path.getsize(reference)
    folder = tmp_path / "small"
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        page = 4096
        room = (size - 1) // page * page  # whole pages, a little less than the frame
        stats = os.statvfs(folder)
        (folder / "filler").write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - room))
        target = str(folder / "f.1001.exr")
        with pytest.raises(LatentmirrorError, match="disk is full") as caught:
            write_exr(target, pixels, ["R", "G", "B", "A"], window, window)
        assert caught.value.where.file == target
        assert sorted(p.name for p in folder.iterdir()) == ["filler"]  # no torn frame, no temp
    finally:
        subprocess.run(["umount", str(folder)], check=False)
