import re

import pytest
from fileseq import FileSequence, FrameSet
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.frames import format_frame_ranges, parse_frame_range, parse_pattern
from latentmirror.plugin.shot import plan_chunks


@pytest.mark.parametrize(
    "text, frames",
    [
        ("1001", [1001]),
        ("1001-1005", [1001, 1002, 1003, 1004, 1005]),
        ("1001-1009x4", [1001, 1005, 1009]),
        ("1001,1003,1010-1012", [1001, 1003, 1010, 1011, 1012]),
        ("1001 1003", [1001, 1003]),
        ("-3--1", [-3, -2, -1]),
        ("1005,1001-1003", [1005, 1001, 1002, 1003]),  # the order given is kept
        ("1001-1003,1002", [1001, 1002, 1003]),  # each frame once
    ],
)
def test_frame_ranges(text, frames):
    assert parse_frame_range(text) == frames


@pytest.mark.parametrize("text", ["1001-", "abc", "1001-1100x0", "1100-1001", "1001..1005", ""])
def test_malformed_frame_ranges_are_refused(text):
    with pytest.raises(LatentmirrorError) as caught:
        parse_frame_range(text)
    assert "frame range" in str(caught.value)


def test_format_frame_ranges_compacts_runs():
    assert format_frame_ranges([1007, 1001, 1002, 1003, 1009, 1010]) == "1001-1003,1007,1009-1010"


@pytest.mark.parametrize(
    "pattern, frame, expected",
    [
        ("/s/plate.####.exr", 1001, "/s/plate.1001.exr"),
        ("/s/plate.########.exr", 1001, "/s/plate.00001001.exr"),
        ("/s/plate.@@@@.exr", 7, "/s/plate.0007.exr"),
        ("/s/plate.%04d.exr", 7, "/s/plate.0007.exr"),
        ("/s/plate.%d.exr", 7, "/s/plate.7.exr"),
        ("/s/plate.$F4.exr", 7, "/s/plate.0007.exr"),
        ("/s/plate.$F.exr", 1001, "/s/plate.1001.exr"),
        ("/s/plate_v002.####.exr", -5, "/s/plate_v002.-005.exr"),
    ],
)
def test_pattern_spellings(pattern, frame, expected):
    parsed = parse_pattern(pattern)
    assert parsed.path_for(frame) == expected
    assert parsed.frame_of(expected) == frame


def test_padding_must_match_exactly():
    pattern = parse_pattern("/s/plate.####.exr")
    assert pattern.frame_of("/s/plate.01001.exr") is None
    assert pattern.frame_of("/s/plate.12345.exr") == 12345  # longer numbers overflow padding
    assert pattern.frame_of("/s/plate.1001.exr.tmp") is None


def test_single_file_takes_its_frame_from_the_name():
    assert parse_pattern("/s/plate.1042.exr").single_frame == 1042
    assert parse_pattern("/s/still.exr").single_frame == 1


def test_two_frame_fields_are_refused():
    with pytest.raises(LatentmirrorError, match="frame number fields"):
        parse_pattern("/s/plate.####.%04d.exr")


def test_frames_on_disk_are_real_numbers(tmp_path):
    for name in [
        "plate.1001.exr",
        "plate.1003.exr",
        "plate.1010.exr",
        "plate.01002.exr",
        "other.1002.exr",
        ".plate.1004.exr.abc.tmp.exr",
    ]:
        (tmp_path / name).write_bytes(b"")
    found = parse_pattern(str(tmp_path / "plate.####.exr")).frames_on_disk()
    assert list(found) == [1001, 1003, 1010]
    assert found[1010].endswith("plate.1010.exr")


# ------------------------------------------------------------------ fileseq's forms, negatives


@pytest.mark.parametrize(
    "text, frames",
    [
        ("1-10y3", [2, 3, 5, 6, 8, 9]),  # all but every 3rd
        ("1-10:2", [1, 3, 5, 7, 9, 2, 4, 6, 8, 10]),  # interleaved, in fileseq's order
        ("-2-0", [-2, -1, 0]),
        ("-6--2x2", [-6, -4, -2]),
        ("-1-1,5", [-1, 0, 1, 5]),
    ],
)
def test_fileseq_range_forms(text, frames):
    assert parse_frame_range(text) == frames == list(FrameSet(text))


@pytest.mark.parametrize("text", ["1.5", "1-10x0.5", "1-3y1"])
def test_subframes_and_empty_items_are_refused(text):
    with pytest.raises(LatentmirrorError, match=f"'{re.escape(text)}' in frame range"):
        parse_frame_range(text)


def test_backwards_ranges_stay_refused_though_fileseq_counts_down():
    # fileseq reads 1100-1001 as a countdown; we refuse it (see ranges.py): kept on purpose
    assert list(FrameSet("3-1")) == [3, 2, 1]
    with pytest.raises(LatentmirrorError, match="runs backwards"):
        parse_frame_range("3-1")


def test_spaces_separate_frames_though_fileseq_drops_them():
    assert list(FrameSet("1001 1003")) == [10011003]
    assert parse_frame_range("1001 1003") == [1001, 1003]


def test_format_frame_ranges_is_fileseqs_spelling_and_reads_back():
    assert format_frame_ranges([1009, 1001, 1005, 1003, 1007]) == "1001-1009x2"
    assert format_frame_ranges([-3, -2, -1, 0]) == "-3-0"
    assert parse_frame_range(format_frame_ranges([-7, -3, 0, 4, 5, 6])) == [-7, -3, 0, 4, 5, 6]


def test_one_digit_per_hash_as_in_nuke_not_fileseqs_default():
    # fileseq's default pad style reads `#` as 4 digits; we keep Nuke's one digit per `#`
    assert FileSequence("/s/plate.#.exr").frame(7) == "/s/plate.0007.exr"
    assert parse_pattern("/s/plate.#.exr").path_for(7) == "/s/plate.7.exr"
    assert parse_pattern("/s/plate.##.exr").path_for(7) == "/s/plate.07.exr"


def test_a_field_inside_the_name_is_read_too():
    # fileseq reads a field just before the extension only; ours may sit anywhere in the name
    pattern = parse_pattern("/s/plate.####_v2.exr")
    assert pattern.path_for(1001) == "/s/plate.1001_v2.exr"
    assert pattern.frame_of("/s/plate.1001_v2.exr") == 1001


def test_underscore_numbered_single_file_keeps_its_frame():
    assert parse_pattern("/s/plate_1001.exr").single_frame == 1001
    assert parse_pattern("/s/plate.-0003.exr").single_frame == -3


def test_negative_frames_are_found_in_both_paddings(tmp_path):
    # `-0002` (digits padded, sign in front) and `-001` (printf/Nuke: the sign counts) are both
    # frames of plate.####.exr; `-00002` and `-01` are not
    for name in ["plate.-0002.exr", "plate.-001.exr", "plate.0000.exr", "plate.0001.exr"]:
        (tmp_path / name).write_bytes(b"")
    for name in ["plate.-00003.exr", "plate.-04.exr", "plate.-0x1.exr"]:
        (tmp_path / name).write_bytes(b"")
    found = parse_pattern(str(tmp_path / "plate.####.exr")).frames_on_disk()
    assert list(found) == [-2, -1, 0, 1]
    assert found[-2].endswith("plate.-0002.exr") and found[-1].endswith("plate.-001.exr")


def test_negative_frame_in_both_spellings_reads_the_one_we_write(tmp_path):
    for name in ["plate.-0001.exr", "plate.-001.exr"]:
        (tmp_path / name).write_bytes(b"")
    found = parse_pattern(str(tmp_path / "plate.####.exr")).frames_on_disk()
    assert found == {-1: str(tmp_path / "plate.-001.exr")}


# ----------------------------------------------- property: our planning agrees with fileseq

_frame = st.integers(min_value=-300, max_value=300)


@st.composite
def _range_items(draw) -> str:
    first = draw(_frame)
    last = draw(st.integers(min_value=first, max_value=first + 120))
    if first == last and draw(st.booleans()):
        return str(first)
    step = draw(st.sampled_from(["", "x", "y", ":"]))
    by = draw(st.integers(min_value=1, max_value=7))
    return f"{first}-{last}" + (f"{step}{by}" if step else "")


@st.composite
def _ranges(draw) -> str:
    return ",".join(draw(st.lists(_range_items(), min_size=1, max_size=4)))


def _fileseq_frames(text: str) -> list[int]:
    return list(dict.fromkeys(int(f) for f in FrameSet(text)))


@settings(max_examples=300, deadline=None)
@given(_ranges())
def test_parse_frame_range_agrees_with_fileseq(text):
    try:
        frames = parse_frame_range(text)
    except LatentmirrorError as refused:  # only an item that names no frames (1-3y1)
        assert any(not list(FrameSet(item)) for item in text.split(",")), refused
        return
    assert frames == _fileseq_frames(text)


@settings(max_examples=200, deadline=None)
@given(_ranges(), st.integers(min_value=1, max_value=30), st.integers(min_value=0, max_value=10))
def test_shot_chunks_agree_with_fileseq(text, size, preroll):
    assume(all(list(FrameSet(item)) for item in text.split(",")))
    frames = _fileseq_frames(text)
    chunks = plan_chunks(parse_frame_range(text), size, preroll)
    # every frame once, in fileseq's order, chunk by chunk
    assert [f for c in chunks for f in c.frames] == frames
    for chunk in chunks:
        assert len(chunk.frames) <= size and len(chunk.preroll) <= preroll
        # a chunk's label is a FrameSet of exactly its frames
        assert sorted(FrameSet(chunk.label())) == sorted(chunk.frames)
        # its pre-roll: the frames just before it in the shot's order
        at = frames.index(chunk.frames[0])
        assert list(chunk.preroll) == frames[max(0, at - preroll) : at]


@settings(max_examples=100, deadline=None)
@given(_frame, st.integers(min_value=0, max_value=200), st.integers(min_value=1, max_value=30))
def test_farm_task_ranges_mean_the_same_frames(first, length, size):
    """A farm splits first-last into tasks of `size` frames and runs each as
    `--frames=<START>-<END>` (installers/farm); negative frames included."""
    shot = list(FrameSet(f"{first}-{first + length}"))
    for chunk in plan_chunks(shot, size):
        task = f"{chunk.frames[0]}-{chunk.frames[-1]}"
        assert parse_frame_range(task) == list(chunk.frames) == list(FrameSet(task))


@settings(max_examples=100, deadline=None)
@given(
    _frame,
    st.integers(min_value=0, max_value=200),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=1, max_value=30),
)
def test_stepped_farm_task_ranges_mean_the_same_frames(first, length, step, size):
    """A stepped range (1001-1240x2) split into tasks: `--frames=<START>-<END>x<step>` (the farm
    examples' form) names exactly each task's frames, not the ones in between."""
    shot = list(FrameSet(f"{first}-{first + length}x{step}"))
    assert parse_frame_range(f"{first}-{first + length}x{step}") == shot
    for chunk in plan_chunks(shot, size):
        task = f"{chunk.frames[0]}-{chunk.frames[-1]}x{step}"
        assert parse_frame_range(task) == list(chunk.frames) == list(FrameSet(task))
