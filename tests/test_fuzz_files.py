"""Property-based fuzzing of what users and files hand the readers: frame ranges, sequence
patterns and EXR headers. Whatever goes in, only the pack's own LatentmirrorError comes out, each
example finishes in bounded time, and memory stays bounded (the pixel cap is lowered here, so a
mutated window can cost at most a few MB)."""

from __future__ import annotations

import os
import resource
import shutil
import struct
import tempfile
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.frames.exr import MAX_PIXELS_VARIABLE
from latentmirror.core.frames.patterns import parse_pattern
from latentmirror.core.frames.ranges import MAX_FRAMES, parse_frame_range
from latentmirror.core.frames.sequence import load_sequence

from .support import write_raw_exr

FUZZ = settings(
    max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

# ------------------------------------------------------------------------------ text

# Text that looks like ranges and patterns often, and like anything else sometimes.
_range_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789-,xy: .#@%$dF", max_size=40),
    st.from_regex(r"-?\d{1,12}(--?\d{1,12}([xy:]-?\d{0,6})?)?(,-?\d{1,8})*", fullmatch=True),
)
_pattern_text = st.one_of(
    st.text(max_size=60),
    st.from_regex(r"[a-z/._\-]{0,12}(#{1,6}|@{1,4}|%0\dd|\$F\d?|-?\d{1,6})[a-z._\-]{0,8}\.exr"),
    st.from_regex(r"[a-z/]{0,8}\.\d{1,4}-\d{1,8}[#@]{0,4}\.exr", fullmatch=True),
)


@FUZZ
@given(_range_text)
def test_any_frame_range_text_parses_or_is_refused(text):
    try:
        frames = parse_frame_range(text)
    except LatentmirrorError:
        return
    assert 0 < len(frames) <= MAX_FRAMES and len(set(frames)) == len(frames)
    assert all(isinstance(frame, int) for frame in frames)


@pytest.mark.parametrize("text", ["1-99999999999", "0-2147483647x1", "1-999999,1000001-1999999"])
def test_huge_ranges_are_refused_before_they_are_listed(text):
    with pytest.raises(LatentmirrorError, match="more than 1,000,000 frames"):
        parse_frame_range(text)


@FUZZ
@given(_pattern_text)
def test_any_sequence_pattern_text_parses_or_is_refused(text):
    try:
        pattern = parse_pattern(text)
    except LatentmirrorError:
        return
    path = pattern.path_for(1001)
    assert isinstance(path, str) and (pattern.is_single_file or pattern.frame_of(path) == 1001)


# ------------------------------------------------------------------------------ EXR headers


def _valid_exr(folder: str) -> bytes:
    """A small valid frame (8x6 RGBA half, zip, a display window larger than the data)."""
    pixels = np.random.default_rng(3).random((6, 8, 4)).astype(np.float32)
    path = os.path.join(folder, "seed.exr")
    write_raw_exr(path, pixels, "RGBA", data_origin=(1, 2), display=(0, 0, 10, 10))
    with open(path, "rb") as file:
        return file.read()


def _attributes(data: bytes) -> dict[str, tuple[int, int]]:
    """name -> (offset, size) of each header attribute's value (OpenEXR: name\\0 type\\0 size
    value, after the 8-byte magic and version, ended by an empty name)."""
    found, at = {}, 8
    while data[at] != 0:
        name_end = data.index(b"\0", at)
        type_end = data.index(b"\0", name_end + 1)
        (size,) = struct.unpack_from("<i", data, type_end + 1)
        found[data[at:name_end].decode()] = (type_end + 5, size)
        at = type_end + 5 + size
    found["<end>"] = (at, 1)
    return found


_SEED_FOLDER = tempfile.mkdtemp(prefix="lm-fuzz-exr-")
SEED = _valid_exr(_SEED_FOLDER)
HEADER = _attributes(SEED)
HEADER_END = HEADER["<end>"][0] + 1

_int32 = st.one_of(
    st.integers(-(2**31), 2**31 - 1), st.integers(-4, 64), st.sampled_from([2**30, 2**31 - 1])
)
_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, HEADER_END - 1), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, len(SEED) - 1), st.just(0)),
    st.tuples(st.just("field"), st.sampled_from(sorted(set(HEADER) - {"<end>"})), _int32),
)


def _mutate(data: bytes, mutations) -> bytes:
    out = bytearray(data)
    for kind, where, value in mutations:
        if kind == "flip":
            if where < len(out):
                out[where] ^= value
        elif kind == "truncate":
            del out[where:]
        else:  # overwrite one 32-bit word of an attribute's value (windows, channels, ...)
            offset, size = HEADER[where]
            word = offset + 4 * ((value & 0xFFFF) % max(1, size // 4))
            if word + 4 <= len(out):
                out[word : word + 4] = struct.pack("<i", value)
    return bytes(out)


@contextmanager
def _pixel_cap(pixels: int):
    old = os.environ.get(MAX_PIXELS_VARIABLE)
    os.environ[MAX_PIXELS_VARIABLE] = str(pixels)
    try:
        yield
    finally:
        if old is None:
            del os.environ[MAX_PIXELS_VARIABLE]
        else:
            os.environ[MAX_PIXELS_VARIABLE] = old


def test_the_seed_file_and_its_header_map_are_right():
    assert {"dataWindow", "displayWindow", "channels", "compression"} <= set(HEADER)
    path = os.path.join(_SEED_FOLDER, "plate.1001.exr")
    with open(path, "wb") as file:
        file.write(SEED)
    plate = load_sequence(os.path.join(_SEED_FOLDER, "plate.####.exr"))
    assert plate.rgb.shape == (1, 10, 10, 3) and plate.info.data_windows[0].x == 1


@FUZZ
@given(st.lists(_mutation, min_size=1, max_size=4))
def _a_mutated_exr_header_loads_or_is_refused(mutations):
    folder = os.path.join(_SEED_FOLDER, "mutated")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    with open(os.path.join(folder, "plate.1001.exr"), "wb") as file:
        file.write(_mutate(SEED, mutations))
    with _pixel_cap(1_000_000):  # 1 M pixels: a few MB per buffer whatever the header says
        try:
            plate = load_sequence(os.path.join(folder, "plate.####.exr"))
        except LatentmirrorError:
            return
    assert plate.rgb.ndim == 4 and plate.rgb.shape[1] * plate.rgb.shape[2] <= 1_000_000


def test_mutated_exr_headers_load_or_are_refused_in_bounded_memory():
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _a_mutated_exr_header_loads_or_is_refused()
    grown_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before_mb
    assert grown_mb < 200, grown_mb
