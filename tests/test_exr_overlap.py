"""Frames decoded and written on worker threads (core/frames/overlap.py): the same pixels,
headers, order and reports as frame after frame; the first failing frame in order is the error,
naming its file and frame, with nothing half-written; the frames in flight stay within the bound;
the writer's vectorised half-range/NaN scan warns as the per-frame one did. Real EXR files on
disk, written and read by OpenImageIO."""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pytest

from latentmirror.core import storage
from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.frames import exr, sequence
from latentmirror.core.frames.exr import (
    HALF_MAX,
    Box,
    ExrWriteOptions,
    incomplete_reason,
    read_headers,
)
from latentmirror.core.frames.interleave import join_rgba, split_rgba
from latentmirror.core.frames.overlap import (
    IO_THREADS_VARIABLE,
    frames_in_flight,
    io_threads,
    ordered_map,
)
from latentmirror.core.frames.sequence import load_sequence, save_sequence

from .support import read_raw_exr, write_raw_exr

THREADS = 3  # more than this machine's cores: frames really do overlap and finish out of order
FRAMES = list(range(1001, 1013))


def _truncate(path: str, keep: float = 0.6) -> None:
    """Cut a frame's tail off, as a full disk or a killed copy leaves it (its header reads)."""
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(int(size * keep))


def _file_bytes_and_headers(folder) -> dict[str, tuple[bytes, list]]:
    """Each EXR in ``folder``: its decoded pixels' bytes, header attributes and data window."""
    found = {}
    for name in sorted(os.listdir(folder)):
        pixels, _ = read_raw_exr(os.path.join(folder, name))
        header = read_headers(os.path.join(folder, name))[0]
        attributes = [a for a in header.attributes if a.name != "DateTime"]  # when it was written
        found[name] = (pixels.tobytes(), attributes, header.data_window)
    return found


@pytest.fixture
def sequence_on_disk(plate_factory):
    """12 frames with gaps (1004, 1009 missing), NaN in one frame: for read cases."""
    frames = [f for f in FRAMES if f not in (1004, 1009)]
    pattern = plate_factory(frames=frames, size=(40, 24))
    nan_frame = pattern.replace("####", "1006")
    pixels, _ = read_raw_exr(nan_frame)
    pixels[3, 5, 1] = np.nan
    write_raw_exr(nan_frame, pixels, ["R", "G", "B", "A"])
    return pattern


# ------------------------------------------------------------------------------------ reading


@pytest.mark.parametrize("missing", ["hold", "black"])
@pytest.mark.parametrize("bad_pixels", ["keep", "replace"])
def test_threaded_read_is_the_serial_read_bit_for_bit(
    sequence_on_disk, missing, bad_pixels, caplog
):
    def load(threads: int):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="latentmirror"):
            plate = load_sequence(
                sequence_on_disk, missing=missing, bad_pixels=bad_pixels, io_threads=threads
            )
        return plate, [r.getMessage() for r in caplog.records]

    serial, serial_log = load(1)
    threaded, threaded_log = load(THREADS)
    assert serial.rgb.tobytes() == threaded.rgb.tobytes()  # NaN too, bit for bit
    assert serial.alpha.tobytes() == threaded.alpha.tobytes()
    assert serial.info == threaded.info  # frames, statuses, windows, attributes, in order
    assert serial.info.frames == FRAMES
    assert threaded_log == serial_log and any("1006" in m for m in serial_log)
    assert np.isnan(threaded.rgb[5]).any() == (bad_pixels == "keep")


def test_read_error_names_the_first_failing_frame_in_order(sequence_on_disk):
    _truncate(sequence_on_disk.replace("####", "1010"))  # fails later in order...
    _truncate(sequence_on_disk.replace("####", "1005"))  # ...than this one
    with pytest.raises(LatentmirrorError) as caught:
        load_sequence(sequence_on_disk, missing="hold", io_threads=THREADS)
    assert caught.value.where.frame == 1005
    assert caught.value.where.file == sequence_on_disk.replace("####", "1005")
    assert "truncated" in str(caught.value)


def test_frames_in_flight_while_reading_stay_within_the_bound(sequence_on_disk, monkeypatch):
    started, done, most = [0], [0], [0]
    real_read = sequence.read_channel_rows

    def counting_read(*args, **kwargs):  # the real decode, counted as it starts
        started[0] += 1
        most[0] = max(most[0], started[0] - done[0])
        yield from real_read(*args, **kwargs)

    def progress(finished: int, total: int) -> None:
        done[0] = finished

    monkeypatch.setattr(sequence, "read_channel_rows", counting_read)
    load_sequence(sequence_on_disk, missing="black", io_threads=2, on_frame=progress)
    assert started[0] == 10 and done[0] == 12  # two black frames read nothing
    assert 1 <= most[0] <= frames_in_flight(2) < 12


# ------------------------------------------------------------------------------------ writing


def _batch(count: int = len(FRAMES), seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rgb = (rng.random((count, 20, 32, 3)) * 4).astype(np.float32)
    return rgb, rng.random((count, 20, 32)).astype(np.float32)


def _save(folder, threads: int, **kwargs):
    rgb, alpha = _batch()
    return save_sequence(str(folder / "out.####.exr"), rgb, alpha, io_threads=threads, **kwargs)


def _names(paths: list[str]) -> list[str]:
    return [os.path.basename(p) for p in paths]


@pytest.mark.parametrize("compression", ["zip", "dwaa"])
def test_threaded_write_is_the_serial_write_bit_for_bit(plate_factory, tmp_path, compression):
    plate = load_sequence(plate_factory(frames=FRAMES, size=(32, 20)))
    options = ExrWriteOptions("half", compression)
    reports = []
    for threads in (1, THREADS):
        folder = tmp_path / f"threads{threads}"
        reports.append(_save(folder, threads, plate=plate.info, write_options=options))
    serial, threaded = reports
    assert _names(threaded.written) == _names(serial.written) == [f"out.{f}.exr" for f in FRAMES]
    assert threaded.frames == serial.frames == FRAMES
    assert _file_bytes_and_headers(tmp_path / "threads1") == _file_bytes_and_headers(
        tmp_path / f"threads{THREADS}"
    )


def test_existing_frames_are_sorted_and_reported_as_before(tmp_path):
    """skip with fingerprints: kept, stale (another fingerprint) and damaged (truncated) frames,
    the same report and the same files with threads as without."""
    fingerprints = [f"made-by-{f}" for f in FRAMES]
    results = []
    for threads in (1, THREADS):
        folder = tmp_path / f"threads{threads}"
        _save(folder, threads, fingerprints=fingerprints)
        _truncate(str(folder / "out.1003.exr"))
        os.remove(folder / "out.1008.exr")
        changed = [*fingerprints]
        changed[FRAMES.index(1005)] = "made-by-another-graph"
        report = _save(folder, threads, existing="skip", fingerprints=changed)
        results.append((report, _file_bytes_and_headers(folder)))
    (serial, serial_files), (threaded, threaded_files) = results
    assert _names(threaded.written) == _names(serial.written)
    assert _names(threaded.written) == ["out.1003.exr", "out.1005.exr", "out.1008.exr"]
    assert _names(threaded.skipped) == _names(serial.skipped) and len(serial.skipped) == 9
    assert _names(threaded.stale) == _names(serial.stale) == ["out.1005.exr"]
    assert _names(threaded.damaged) == _names(serial.damaged) == ["out.1003.exr"]
    summary = "kept 9 frames up to date, rewrote 1 stale, rewrote 1 damaged"
    assert threaded.summary() == serial.summary() == summary
    assert threaded_files == serial_files


def _fail_tail_of(monkeypatch, failing: set[int]) -> None:
    """The disk loses the tail of these frames' files during the final flush: the real tail
    check (exr._check_tail_written) must find it. Nothing of OIIO is replaced."""
    real_check = exr._check_tail_written

    def losing_tail(temporary, spec, path):
        if any(path.endswith(f".{frame}.exr") for frame in failing):
            _truncate(temporary, keep=0.5)
        real_check(temporary, spec, path)

    monkeypatch.setattr(exr, "_check_tail_written", losing_tail)


def test_write_error_names_the_first_failing_frame_and_leaves_nothing_half_written(
    tmp_path, monkeypatch
):
    _fail_tail_of(monkeypatch, {1004, 1006})
    folder = tmp_path / "out"
    with pytest.raises(LatentmirrorError) as caught:
        _save(folder, THREADS)
    assert caught.value.where.frame == 1004
    assert caught.value.where.file == str(folder / "out.1004.exr")
    assert "incomplete" in str(caught.value)
    assert storage.temporaries_in(folder) == []  # no partial file under any name
    names = set(os.listdir(folder))
    assert "out.1004.exr" not in names and {"out.1001.exr", "out.1002.exr"} <= names
    for name in names:  # whatever is on disk is a whole frame
        assert incomplete_reason(str(folder / name)) is None
    # frames beyond the bound were cancelled, never started
    beyond = [f for f in FRAMES if f > 1004 + frames_in_flight(THREADS)]
    assert beyond and not names & {f"out.{f}.exr" for f in beyond}


def test_a_frame_is_reported_done_only_once_on_disk_and_in_flight_stays_bounded(
    tmp_path, monkeypatch
):
    started, done, most = [0], [0], [0]
    real_write = sequence.write_exr

    def counting_write(*args, **kwargs):  # the real encode, counted as it starts
        started[0] += 1
        most[0] = max(most[0], started[0] - done[0])
        real_write(*args, **kwargs)

    folder = tmp_path / "out"

    def progress(finished: int, total: int) -> None:
        done[0] = finished
        for frame in FRAMES[:finished]:  # every frame counted done is whole, under its name
            assert incomplete_reason(str(folder / f"out.{frame}.exr")) is None

    monkeypatch.setattr(sequence, "write_exr", counting_write)
    report = _save(folder, 2, on_frame=progress)
    assert done[0] == started[0] == len(report.written) == 12
    assert 1 <= most[0] <= frames_in_flight(2) < 12


def test_an_interrupt_stops_the_writers_before_it_propagates(tmp_path, monkeypatch):
    class Interrupted(Exception):
        pass

    real_write = sequence.write_exr

    def slow_write(*args, **kwargs):  # a big frame: still being written when the interrupt comes
        time.sleep(0.1)
        real_write(*args, **kwargs)

    def interrupt_after_two(finished: int, total: int) -> None:
        if finished == 2:
            raise Interrupted

    monkeypatch.setattr(sequence, "write_exr", slow_write)
    folder = tmp_path / "out"
    try:
        _save(folder, THREADS, on_frame=interrupt_after_two)
    except Interrupted:  # looked at while the interrupt is being handled, as a caller would
        written = sorted(os.listdir(folder))
        time.sleep(0.5)  # no writer is still at work: nothing appears afterwards
        assert sorted(os.listdir(folder)) == written
    else:
        pytest.fail("the interrupt did not propagate")
    assert storage.temporaries_in(folder) == []
    assert len(written) <= 2 + frames_in_flight(THREADS) < len(FRAMES)


# ------------------------------------------------------------------- the writer's value scan


def test_vectorised_scan_warns_per_frame_as_before(tmp_path, caplog):
    rgb, alpha = _batch(5)
    rgb[1, 0, 0, 0] = np.nan
    rgb[1, 2, 3, 1] = np.inf
    rgb[2, 4, 4, 2] = HALF_MAX * 2  # beyond half, finite
    rgb[2, 4, 5, 2] = -HALF_MAX * 3
    alpha[3, 1, 1] = 1e6  # only the alpha of frame 1004
    alpha[4, 0, 0] = -np.inf
    with caplog.at_level(logging.WARNING, logger="latentmirror"):
        save_sequence(str(tmp_path / "half.####.exr"), rgb, alpha, io_threads=THREADS)
    assert [r.getMessage() for r in caplog.records] == [
        "frame 1002: 2 values are NaN or Inf and are written as such",
        "frame 1003: 2 values exceed half float's range (65504) and become Inf; choose "
        "pixel_type float to keep them",
        "frame 1004: 1 values exceed half float's range (65504) and become Inf; choose "
        "pixel_type float to keep them",
        "frame 1005: 1 values are NaN or Inf and are written as such",
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="latentmirror"):  # float keeps big values
        save_sequence(
            str(tmp_path / "float.####.exr"),
            rgb,
            alpha,
            write_options=ExrWriteOptions("float", "zip"),
        )
    assert [r.getMessage()[:10] for r in caplog.records] == ["frame 1002", "frame 1005"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="latentmirror"):  # kept frames: not written
        save_sequence(str(tmp_path / "float.####.exr"), rgb, alpha, existing="skip",
                      write_options=ExrWriteOptions("float", "zip"))  # fmt: skip
    assert not [r for r in caplog.records if "NaN" in r.getMessage()]


# ------------------------------------------------------------------------ the thread helper


def test_ordered_map_keeps_order_and_raises_the_first_failure_in_order():
    def slow_for_early(item: int) -> int:
        time.sleep(0.02 * (5 - item))  # early items finish last
        if item in (2, 4):
            raise ValueError(item)
        return item * 10

    assert list(ordered_map(lambda i: i * 10, range(7), threads=3)) == list(range(0, 70, 10))
    with pytest.raises(ValueError) as caught:
        list(ordered_map(slow_for_early, range(6), threads=3))
    assert caught.value.args == (2,)


@pytest.mark.parametrize(("value", "expected"), [("", None), ("1", 1), ("6", 6), ("0", "refused"),
                                                 ("two", "refused")])  # fmt: skip
def test_io_threads_setting(monkeypatch, value, expected):
    monkeypatch.setenv(IO_THREADS_VARIABLE, value)
    if expected == "refused":
        with pytest.raises(LatentmirrorError, match=IO_THREADS_VARIABLE):
            io_threads()
    elif expected is None:
        assert 1 <= io_threads() <= 4
    else:
        assert io_threads() == expected


# ------------------------------------------- cheaper per-frame work: same results as before


def _grown_by_full_scan(window: Box, pixels: np.ndarray, canvas: Box) -> Box:
    """The writer's earlier rule, every canvas pixel looked at: the reference."""
    outside = np.ones(pixels.shape[:2], bool)
    rows = slice(window.y - canvas.y, window.y_end - canvas.y)
    outside[rows, window.x - canvas.x : window.x_end - canvas.x] = False
    rows, cols = np.nonzero(outside & (pixels != 0).any(axis=-1))
    if not len(rows):
        return window
    found = Box(int(cols.min()) + canvas.x, int(rows.min()) + canvas.y,
                int(cols.max() - cols.min()) + 1, int(rows.max() - rows.min()) + 1)  # fmt: skip
    return window.union(found)


def test_grown_window_looks_only_outside_yet_matches_the_full_scan():
    canvas = Box(-4, -3, 30, 20)  # overscan: the canvas starts left of and above the format
    rng = np.random.default_rng(3)
    cases = [Box(-4, -3, 30, 20), Box(0, 0, 22, 14), Box(5, 2, 6, 4), Box(-4, 8, 30, 9)]
    for window in cases:
        for trial in range(40):
            pixels = np.zeros((canvas.height, canvas.width, 4), np.float32)
            for _ in range(trial % 4):  # 0 to 3 specks anywhere, some NaN, some in one channel
                y, x = rng.integers(canvas.height), rng.integers(canvas.width)
                pixels[y, x, rng.integers(4)] = np.nan if trial % 5 == 0 else rng.normal()
            expected = _grown_by_full_scan(window, pixels, canvas)
            assert sequence._grow_to_content(window, pixels, canvas) == expected, (window, trial)


def test_split_and_join_move_the_exact_bits_into_and_out_of_a_batch():
    rng = np.random.default_rng(5)
    rgba = rng.normal(size=(6, 7, 4)).astype(np.float32)
    rgba.view(np.uint32)[1, 2, 0] = 0x7FC01234  # a NaN with a payload
    rgba[3, 3, 3] = -np.inf
    rgb, alpha = np.zeros((2, 9, 10, 3), np.float32), np.zeros((2, 9, 10), np.float32)
    split_rgba(rgba, rgb[1, 1:7, 2:9], alpha[1, 1:7, 2:9])  # into a frame's data window
    assert rgb[1, 1:7, 2:9].tobytes() == np.ascontiguousarray(rgba[..., :3]).tobytes()
    assert alpha[1, 1:7, 2:9].tobytes() == np.ascontiguousarray(rgba[..., 3]).tobytes()
    assert not rgb[0].any() and not alpha[0].any() and not rgb[1, 0].any()  # nothing else
    joined = join_rgba(rgb[1, 1:7, 2:9], alpha[1, 1:7, 2:9])
    assert joined.flags.c_contiguous and joined.tobytes() == rgba.tobytes()
    # the first three of four channels (an RGBA IMAGE with a MASK), and other layouts
    assert join_rgba(rgba, rgba[..., 0]).tobytes() == rgba[..., [0, 1, 2, 0]].tobytes()
    wide = rng.normal(size=(6, 7, 3))  # float64: the general copy
    assert np.array_equal(join_rgba(wide, wide[..., 0])[..., :3], wide.astype(np.float32))


@pytest.mark.parametrize("compression", ["zip", "dwaa", "dwab", "piz", "rle", "b44"])
def test_frames_read_strip_by_strip_are_the_whole_frame_read(tmp_path, monkeypatch, compression):
    """Strips of whole chunks, each checked and placed in the batch: the same pixels and the
    same NaN counts as one read of the frame, with a data window that starts mid-canvas and a
    height no strip size divides."""
    rng = np.random.default_rng(11)
    pixels = (rng.random((300, 40, 5)) * 4).astype(np.float32)  # RGBA and a Z the load skips
    pixels[[0, 77, 299], [3, 20, 39], 1] = np.nan
    channels, display = ["R", "G", "B", "A", "Z"], (0, 0, 50, 320)
    path = write_raw_exr(tmp_path / "p.1001.exr", pixels, channels, data_origin=(3, 7),
                         display=display, compression=compression)  # fmt: skip
    whole, _ = read_raw_exr(path)
    monkeypatch.setattr(exr, "STRIP_BYTES", 1)  # the smallest strip: one chunk
    header = read_headers(path)[0]
    strips = list(exr.read_channel_rows(path, header, ["R", "G", "B", "A"], exr.STRIP_BYTES))
    assert len(strips) > 1 and [top for top, _ in strips] == sorted({t for t, _ in strips})
    loaded = load_sequence(str(tmp_path / "p.####.exr"))
    assert np.array_equal(loaded.rgb[0, 7:307, 3:43], whole[..., :3], equal_nan=True)
    assert np.array_equal(loaded.alpha[0, 7:307, 3:43], whole[..., 3])
    assert not loaded.rgb[0, :7].any() and not loaded.alpha[0, :, 43:].any()
    replaced = load_sequence(str(tmp_path / "p.####.exr"), bad_pixels="replace")
    nan_in_file = np.isnan(whole[..., :3]).sum()  # 3, or fewer where a lossy codec lost them
    assert nan_in_file == 3 or not exr.COMPRESSIONS[compression].lossless_half
    assert np.isnan(loaded.rgb).sum() == nan_in_file and not np.isnan(replaced.rgb).any()


@pytest.mark.parametrize("compression", ["zip", "dwaa", "dwab", "piz", "none"])
def test_frames_written_strip_by_strip_decode_as_one_whole_write(
    tmp_path, monkeypatch, compression
):
    """The writer hands OpenImageIO strips of whole chunks: the file decodes to exactly what one
    write of the whole frame (bare OpenImageIO) decodes to, windows and all."""
    rng = np.random.default_rng(13)
    pixels = (rng.random((75, 33, 4)) * 4).astype(np.float32)
    pixels[5, 6, 0] = np.nan
    monkeypatch.setattr(exr, "WRITE_STRIP_BYTES", 1)  # one chunk per strip
    window, display = exr.Box(2, 9, 33, 75), exr.Box(0, 0, 40, 90)
    ours = str(tmp_path / "ours.exr")
    exr.write_exr(ours, pixels, ["R", "G", "B", "A"], window, display,
                  options=ExrWriteOptions("half", compression))  # fmt: skip
    bare = write_raw_exr(tmp_path / "bare.exr", pixels, ["R", "G", "B", "A"], data_origin=(2, 9),
                         display=(0, 0, 40, 90), compression=compression)  # fmt: skip
    (got, spec), (expected, _) = read_raw_exr(ours), read_raw_exr(bare)
    assert (spec.x, spec.y, spec.width, spec.height) == (2, 9, 33, 75)
    assert got.tobytes() == expected.tobytes()
