"""Sequences: real frame numbers, gaps and policies, windows, attributes, saving safely."""

import logging
import os

import numpy as np
import pytest

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.frames.exr import ExrWriteOptions, read_headers
from latentmirror.core.frames.sequence import load_sequence, save_sequence

from .support import read_raw_exr, write_raw_exr


@pytest.mark.parametrize("padding", [4, 8])
def test_frames_start_at_1001_with_padding(plate_factory, tmp_path, padding):
    pattern = plate_factory(frames=(1001, 1002, 1003), padding=padding)
    plate = load_sequence(pattern)
    assert plate.info.frames == [1001, 1002, 1003]
    assert plate.rgb.shape == (3, 16, 24, 3) and plate.alpha.shape == (3, 16, 24)

    out = str(tmp_path / "out" / ("o." + "#" * padding + ".exr"))
    report = save_sequence(out, plate.rgb, plate.alpha, plate.info)
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == [f"o.{f:0{padding}d}.exr" for f in (1001, 1002, 1003)]
    assert report.frames == [1001, 1002, 1003]


def test_round_trip_is_bit_exact_with_alpha_and_attributes(plate_factory, tmp_path):
    plate = load_sequence(plate_factory())
    out = str(tmp_path / "out" / "o.%04d.exr")
    save_sequence(
        out, plate.rgb, plate.alpha, plate.info, write_options=ExrWriteOptions("half", "piz")
    )
    again = load_sequence(out)
    assert np.array_equal(again.rgb, plate.rgb)
    assert np.array_equal(again.alpha, plate.alpha)  # MASK is alpha as it is: 1 = opaque
    for source, written in zip(plate.info.attributes, again.info.attributes, strict=True):
        timecode = dict((a.name, a.value) for a in source)["smpte:TimeCode"]
        assert dict((a.name, a.value) for a in written)["smpte:TimeCode"] == timecode
    header = read_headers(out.replace("%04d", "1002"))[0]
    assert header.attribute("latentmirror:colorspace") == "ACEScg"
    assert header.attribute("latentmirror:ocioConfig").startswith("ocio://studio-config-v")
    assert header.attribute("latentmirror:source").endswith("plate.1002.exr")
    assert again.info.colorspace == "ACEScg"  # read back from the file's own tag


def test_a_plate_without_alpha_is_copied_without_alpha(tmp_path, rng):
    """A copy keeps the plate's channels: Load's mask of ones over an RGB plate is not written
    as A; a mask that holds something is, even over the same plate."""
    pixels = (rng.random((16, 24, 3)) * 4).astype(np.float32)
    write_raw_exr(tmp_path / "rgb.1001.exr", pixels, ["R", "G", "B"])
    plate = load_sequence(str(tmp_path / "rgb.####.exr"))
    assert not plate.info.has_alpha and np.all(plate.alpha == 1.0)
    copy = str(tmp_path / "copy" / "c.####.exr")
    save_sequence(copy, plate.rgb, plate.alpha, plate.info)
    assert read_headers(copy.replace("####", "1001"))[0].channels == ["R", "G", "B"]
    assert np.array_equal(load_sequence(copy).rgb, plate.rgb)
    matte = plate.alpha.copy()
    matte[0, 3, 5] = 0.25
    keyed = str(tmp_path / "keyed" / "k.####.exr")
    save_sequence(keyed, plate.rgb, matte, plate.info)
    assert read_headers(keyed.replace("####", "1001"))[0].channels == ["R", "G", "B", "A"]
    assert np.array_equal(load_sequence(keyed).alpha, matte)


def test_gaps_error_hold_and_black(plate_factory):
    pattern = plate_factory(frames=(1001, 1002, 1004, 1005))
    with pytest.raises(LatentmirrorError) as caught:
        load_sequence(pattern)  # empty frames: 1001-1005, and 1003 is missing
    assert "1003" in str(caught.value) and caught.value.where.input == "frames"

    held = load_sequence(pattern, missing="hold")
    assert held.info.frames == [1001, 1002, 1003, 1004, 1005]
    assert held.info.frame_status[2] == "held from 1002"
    assert np.array_equal(held.rgb[2], held.rgb[1])
    assert "smpte:TimeCode" not in [a.name for a in held.info.attributes[2]]

    black = load_sequence(pattern, missing="black")
    assert black.info.frame_status[2] == "black" and black.info.source_paths[2] is None
    assert not black.rgb[2].any() and not black.alpha[2].any()
    assert black.rgb[3].any()

    with pytest.raises(LatentmirrorError, match="none of the frames 2001-2003 exist"):
        load_sequence(pattern, frames="2001-2003", missing="black")

    before_first = load_sequence(pattern, frames="999-1001", missing="hold")
    assert np.array_equal(before_first.rgb[0], before_first.rgb[2])  # held from 1001


def test_frame_list_with_step(plate_factory):
    pattern = plate_factory(frames=range(1001, 1011))
    plate = load_sequence(pattern, frames="1001-1009x4")
    assert plate.info.frames == [1001, 1005, 1009]


def test_pattern_matching_nothing_says_what_is_there(plate_factory):
    pattern = plate_factory()
    wrong = pattern.replace("plate.", "plat.")
    with pytest.raises(LatentmirrorError) as caught:
        load_sequence(wrong)
    assert "plate.1001.exr" in str(caught.value) and caught.value.where.input == "path"


def test_windows_round_trip_with_overscan_and_small_data_window(tmp_path, rng):
    folder = tmp_path / "p"
    folder.mkdir()
    display = (0, 0, 20, 10)
    windows = {1001: ((-4, -2), (28, 14)), 1002: ((5, 3), (6, 4))}  # overscan, then a bbox
    for frame, (origin, (width, height)) in windows.items():
        pixels = (rng.random((height, width, 4)) + 0.1).astype(np.float32)
        write_raw_exr(
            folder / f"w.{frame}.exr", pixels, "RGBA", data_origin=origin, display=display
        )
    plate = load_sequence(str(folder / "w.####.exr"))
    assert (plate.info.canvas.x, plate.info.canvas.y) == (-4, -2)
    assert plate.rgb.shape[1:3] == (14, 28)

    out = str(tmp_path / "o" / "w.####.exr")
    save_sequence(out, plate.rgb, plate.alpha, plate.info, write_options=ExrWriteOptions("float"))
    for frame, (origin, (width, height)) in windows.items():
        source, source_spec = read_raw_exr(folder / f"w.{frame}.exr")
        written, spec = read_raw_exr(out.replace("####", str(frame)))
        assert (spec.x, spec.y, spec.width, spec.height) == (*origin, width, height)
        assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == display
        assert np.array_equal(written, source.astype(np.float16).astype(np.float32))


def test_new_content_outside_the_data_window_grows_it(tmp_path, rng):
    folder = tmp_path / "p"
    folder.mkdir()
    pixels = np.ones((4, 6, 4), np.float32)
    write_raw_exr(folder / "b.1001.exr", pixels, "RGBA", data_origin=(5, 3), display=(0, 0, 20, 10))
    plate = load_sequence(str(folder / "b.####.exr"))
    processed = plate.rgb.copy()
    processed[0, 9, 19] = 0.5  # something drew in the bottom right corner
    out = str(tmp_path / "o" / "b.####.exr")
    save_sequence(out, processed, plate.alpha, plate.info)
    written, spec = read_raw_exr(out.replace("####", "1001"))
    assert (spec.x, spec.y, spec.width, spec.height) == (5, 3, 15, 7)
    assert written[9 - 3, 19 - 5, 0] == 0.5


def test_plates_are_never_overwritten(plate_factory):
    pattern = plate_factory()
    plate = load_sequence(pattern)
    before = {p: os.path.getmtime(p) for p in plate.info.source_paths}
    for existing in ("overwrite", "skip", "error"):
        with pytest.raises(LatentmirrorError, match="never writes over a plate"):
            save_sequence(pattern, plate.rgb, plate.alpha, plate.info, existing=existing)
    # even without plate_info: the loader remembers what it read
    with pytest.raises(LatentmirrorError, match="never writes over a plate"):
        save_sequence(pattern.replace("####", "%04d"), plate.rgb, existing="overwrite")
    assert before == {p: os.path.getmtime(p) for p in plate.info.source_paths}


def test_existing_skip_overwrite_error(plate_factory, tmp_path):
    plate = load_sequence(plate_factory())
    out = str(tmp_path / "o" / "o.####.exr")
    first = save_sequence(out, plate.rgb, None, plate.info)
    assert len(first.written) == 3
    os.remove(out.replace("####", "1002"))
    broken = out.replace("####", "1003")
    os.truncate(broken, os.path.getsize(broken) // 2)  # e.g. copied by hand and cut short

    resumed = save_sequence(out, plate.rgb, None, plate.info, existing="skip")
    assert [os.path.basename(p) for p in resumed.written] == ["o.1002.exr", "o.1003.exr"]
    assert [os.path.basename(p) for p in resumed.skipped] == ["o.1001.exr"]
    assert [os.path.basename(p) for p in resumed.damaged] == ["o.1003.exr"]
    assert read_headers(broken)[0].channels == ["R", "G", "B"]

    open(broken, "wb").write(b"not a frame")  # not a file latentmirror wrote: never replaced
    with pytest.raises(LatentmirrorError, match="not written by latentmirror"):
        save_sequence(out, plate.rgb, None, plate.info, existing="overwrite")
    assert open(broken, "rb").read() == b"not a frame"
    os.remove(broken)
    save_sequence(out, plate.rgb, None, plate.info, existing="skip")

    mtimes = {f: os.path.getmtime(out.replace("####", str(f))) for f in (1001, 1002, 1003)}
    with pytest.raises(LatentmirrorError, match="exist already"):
        save_sequence(out, plate.rgb, None, plate.info, existing="error")
    assert mtimes == {f: os.path.getmtime(out.replace("####", str(f))) for f in mtimes}

    again = save_sequence(out, plate.rgb * 2, None, plate.info, existing="overwrite")
    assert len(again.written) == 3


def test_numbering_without_plate_info_and_count_mismatch(plate_factory, tmp_path):
    plate = load_sequence(plate_factory())
    out = str(tmp_path / "o" / "n.####.exr")
    report = save_sequence(out, plate.rgb[:2], start_frame=1)
    assert report.frames == [1, 2] and os.path.exists(out.replace("####", "0001"))
    with pytest.raises(LatentmirrorError, match="describes 3 frames but 2 images") as caught:
        save_sequence(out, plate.rgb[:2], plate=plate.info)
    assert caught.value.where.input == "plate_info"


def test_bad_pixels_kept_with_warning_or_replaced(tmp_path, rng, caplog):
    folder = tmp_path / "p"
    folder.mkdir()
    pixels = rng.random((4, 4, 3)).astype(np.float32)
    pixels[1, 1, 0], pixels[2, 2, 2] = np.nan, np.inf
    write_raw_exr(folder / "n.1001.exr", pixels, "RGB", pixel_type="float")
    with caplog.at_level(logging.WARNING, logger="latentmirror"):
        kept = load_sequence(str(folder / "n.####.exr"))
    assert np.isnan(kept.rgb[0, 1, 1, 0]) and np.isinf(kept.rgb[0, 2, 2, 2])
    assert "frame 1001" in caplog.text and "2 pixels are NaN or Inf" in caplog.text
    replaced = load_sequence(str(folder / "n.####.exr"), bad_pixels="replace")
    assert np.isfinite(replaced.rgb).all() and replaced.rgb[0, 1, 1, 0] == 0


def test_half_overflow_is_warned_not_silent(tmp_path, caplog):
    rgb = np.full((1, 2, 2, 3), 1e6, np.float32)
    with caplog.at_level(logging.WARNING, logger="latentmirror"):
        save_sequence(str(tmp_path / "h.####.exr"), rgb, write_options=ExrWriteOptions("half"))
    assert "exceed half float's range" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="latentmirror"):
        save_sequence(str(tmp_path / "f.####.exr"), rgb, write_options=ExrWriteOptions("float"))
    assert "exceed" not in caplog.text
    assert read_raw_exr(tmp_path / "f.1001.exr")[0].max() == 1e6


def test_unknown_colorspace_suggests_names(plate_factory):
    with pytest.raises(LatentmirrorError) as caught:
        load_sequence(plate_factory(), colorspace="ACEScgg")
    assert "ACEScg" in str(caught.value) and caught.value.where.input == "colorspace"


def test_truncated_frame_is_named(plate_factory, tmp_path):
    pattern = plate_factory(frames=(1001, 1002, 1003))
    path = pattern.replace("####", "1003")
    open(path, "wb").write(open(path, "rb").read()[:200])  # truncate the last frame
    with pytest.raises(LatentmirrorError) as caught:
        load_sequence(pattern)
    assert caught.value.where.frame == 1003 and "plate.1003.exr" in str(caught.value)


def test_negative_frames_load_by_their_real_numbers(plate_factory):
    pattern = plate_factory(frames=(-2, -1, 0, 1))  # written as plate.-002.exr (printf's %04d)
    folder = os.path.dirname(pattern)
    os.rename(os.path.join(folder, "plate.-002.exr"), os.path.join(folder, "plate.-0002.exr"))
    plate = load_sequence(pattern, frames="-2-0")
    assert plate.info.frames == [-2, -1, 0] and plate.rgb.shape[0] == 3
    assert plate.info.source_paths[0].endswith("plate.-0002.exr")
    assert plate.info.source_paths[1].endswith("plate.-001.exr")
