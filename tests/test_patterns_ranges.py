import pytest

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.frames import format_frame_ranges, parse_frame_range, parse_pattern


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
