"""Single EXR files: every compression in half and float, windows, attributes, layers, bad files."""

import os

import numpy as np
import pytest

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.frames.channels import select_channels
from latentmirror.core.frames.exr import (
    COMPRESSIONS,
    PIXEL_TYPES,
    Attribute,
    Box,
    ExrWriteOptions,
    read_channels,
    read_headers,
    write_exr,
)

from .support import read_raw_exr, write_raw_exr


def plate_like(rng, height=40, width=48):
    """Smooth gradients plus mild noise, values 0..4 (scene-linear), alpha 0..1."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    rgb = np.stack([x * 4, y * 3, (x + y) * 1.5], -1) + rng.normal(0, 0.01, (height, width, 3))
    alpha = np.clip(x + 0.2, 0, 1)[..., None]
    return np.concatenate([np.abs(rgb), alpha], -1).astype(np.float32)


def as_stored(pixels, pixel_type):
    return pixels.astype(np.float16).astype(np.float32) if pixel_type == "half" else pixels


@pytest.mark.parametrize("pixel_type", PIXEL_TYPES)
@pytest.mark.parametrize("compression", COMPRESSIONS.values(), ids=list(COMPRESSIONS))
def test_round_trip_every_compression(tmp_path, rng, compression, pixel_type):
    """Bit-exact exactly where the table says lossless, else within the table's worst error."""
    pixels = plate_like(rng)
    window = Box(0, 0, 48, 40)
    path = str(tmp_path / f"{compression.name}.exr")
    options = ExrWriteOptions(pixel_type, compression.name)
    write_exr(path, pixels, ["R", "G", "B", "A"], window, window, options=options)

    back, spec = read_raw_exr(path)
    assert str(spec.format) == pixel_type
    assert spec.getattribute("compression") == compression.name
    expected = as_stored(pixels, pixel_type)
    if compression.is_lossless(pixel_type):
        assert options.is_lossless
        assert np.array_equal(back, expected), "lossless compression must be bit-exact"
    else:
        error = np.abs(back - expected).max() / (expected.max() - expected.min())
        assert 0 < error <= compression.max_relative_error
        if compression.name.startswith("dwa"):  # DWA is lossy only on colour; alpha stays exact
            assert np.array_equal(back[..., 3], expected[..., 3])


@pytest.mark.parametrize(
    "options, input_name",
    [
        (dict(pixel_type="double"), "pixel_type"),
        (dict(compression="nope"), "compression"),
        (dict(compression="dwaa", dwa_level=-1.0), "dwa_level"),
        (dict(compression="dwaa", dwa_level=float("nan")), "dwa_level"),
    ],
)
def test_write_options_are_checked_once_when_made(options, input_name):
    with pytest.raises(LatentmirrorError) as caught:
        ExrWriteOptions(**options)
    assert caught.value.where.input == input_name
    assert "is not" in str(caught.value)


def test_half_bits_survive_read_and_write(tmp_path, rng):
    """Half read as float32 and written as half again is the same bits, NaN and Inf included."""
    pixels = plate_like(rng).astype(np.float16)
    pixels[0, 0, 0], pixels[0, 1, 1], pixels[0, 2, 2] = np.nan, np.inf, -np.inf
    source = write_raw_exr(tmp_path / "in.exr", pixels, ["R", "G", "B", "A"])
    header = read_headers(source)[0]
    loaded = read_channels(source, header, ["R", "G", "B", "A"])
    write_exr(
        str(tmp_path / "out.exr"),
        loaded,
        ["R", "G", "B", "A"],
        header.data_window,
        header.display_window,
        options=ExrWriteOptions("half", "zip"),
    )
    back, _ = read_raw_exr(tmp_path / "out.exr")
    assert np.array_equal(back.astype(np.float16).view(np.uint16), pixels.view(np.uint16))


def test_dwa_level_is_written(tmp_path, rng):
    window = Box(0, 0, 48, 40)
    path = str(tmp_path / "dwa.exr")
    options = ExrWriteOptions("half", "dwab", dwa_level=200.0)
    write_exr(path, plate_like(rng), ["R", "G", "B", "A"], window, window, options=options)
    header = read_headers(path)[0]
    assert header.compression == "dwab"
    assert header.attribute("openexr:dwaCompressionLevel") == pytest.approx(200.0)


def test_windows_and_attributes_are_kept(tmp_path, rng):
    pixels = plate_like(rng, 10, 12)
    data, display = Box(-3, 5, 12, 10), Box(0, 0, 64, 32)
    attributes = [
        Attribute("smpte:TimeCode", "timecode", (0x01020304, 0)),
        Attribute("Copyright", "string", "sh010 comp"),  # OIIO's name for EXR's "owner"
        Attribute("ImageDescription", "string", "plate, v002"),  # EXR's "comments"
        Attribute("worldToCamera", "matrix", tuple(float(i) for i in range(16))),
        Attribute("framesPerSecond", "rational", (24000, 1001)),
        Attribute("myInt", "int", 42),
    ]
    path = str(tmp_path / "w.exr")
    write_exr(
        path,
        pixels,
        ["R", "G", "B", "A"],
        data,
        display,
        options=ExrWriteOptions("float", "piz"),
        attributes=attributes,
    )
    _, spec = read_raw_exr(path)
    assert (spec.x, spec.y, spec.width, spec.height) == (-3, 5, 12, 10)
    assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, 64, 32)
    header = read_headers(path)[0]
    for attribute in attributes:
        assert header.attribute(attribute.name) == attribute.value


def test_write_is_atomic_and_leaves_no_temporary(tmp_path, rng):
    window = Box(0, 0, 48, 40)
    path = tmp_path / "frame.exr"
    with pytest.raises(LatentmirrorError):  # a bad option stops before any file is made
        options = ExrWriteOptions("half", "nope")
        write_exr(str(path), plate_like(rng), ["R", "G", "B", "A"], window, window, options=options)
    write_exr(str(path), plate_like(rng), ["R", "G", "B", "A"], window, window)
    assert sorted(os.listdir(tmp_path)) == ["frame.exr"]


def test_channels_in_any_order_and_named_layers(tmp_path, rng):
    pixels = rng.random((6, 8, 7)).astype(np.float32)
    names = ["B", "diffuse.G", "A", "diffuse.R", "G", "R", "diffuse.B"]
    path = write_raw_exr(tmp_path / "layers.exr", pixels, names, pixel_type="float")
    headers = read_headers(path)

    rgba = select_channels(headers, "")
    assert rgba.rgb == ("R", "G", "B") and rgba.alpha == "A"
    diffuse = select_channels(headers, "diffuse")
    assert diffuse.rgb == ("diffuse.R", "diffuse.G", "diffuse.B") and diffuse.alpha is None
    stored = read_headers(path)[0].channels  # OIIO may reorder on read; compare by name
    got = read_channels(path, headers[0], list(diffuse.rgb))
    expected = pixels[..., [names.index(n) for n in diffuse.rgb]]
    assert np.array_equal(got, expected), stored
    grey = select_channels(headers, "diffuse.G")
    assert grey.rgb == ("diffuse.G",) * 3


def test_missing_layer_lists_what_the_file_has(tmp_path, rng):
    path = write_raw_exr(
        tmp_path / "l.exr",
        rng.random((4, 4, 3)).astype(np.float32),
        ["diffuse.R", "diffuse.G", "diffuse.B"],
    )
    with pytest.raises(LatentmirrorError) as caught:
        select_channels(read_headers(path), "specular")
    message = str(caught.value)
    assert "specular" in message and "diffuse" in message and path in message


def test_missing_truncated_and_wrong_files_name_the_file(tmp_path, rng):
    with pytest.raises(LatentmirrorError, match="does not exist"):
        read_headers(str(tmp_path / "nope.exr"))

    good = write_raw_exr(
        tmp_path / "t.exr",
        rng.random((64, 64, 3)).astype(np.float32),
        ["R", "G", "B"],
        compression="none",
    )
    data = open(good, "rb").read()
    truncated = tmp_path / "truncated.exr"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(LatentmirrorError) as caught:
        header = read_headers(str(truncated))[0]
        read_channels(str(truncated), header, ["R", "G", "B"])
    assert "truncated.exr" in str(caught.value)

    text = tmp_path / "notes.exr"
    text.write_text("not an image")
    with pytest.raises(LatentmirrorError, match="notes.exr"):
        read_headers(str(text))


def test_layer_in_a_multi_part_file(tmp_path, rng):
    """Renders often put each layer in its own part; the loader finds it in any part."""
    import OpenImageIO as oiio

    from latentmirror.core.frames.sequence import load_sequence

    beauty = rng.random((6, 8, 4)).astype(np.float32)
    diffuse = rng.random((6, 8, 3)).astype(np.float32)
    specs = []
    for pixels, names, part in (
        (beauty, "RGBA", "rgba"),
        (diffuse, ["diffuse.R", "diffuse.G", "diffuse.B"], "diffuse"),
    ):
        spec = oiio.ImageSpec(8, 6, pixels.shape[-1], "float")
        spec.channelnames = tuple(names)
        spec.attribute("name", part)
        specs.append(spec)
    path = str(tmp_path / "multi.1001.exr")
    out = oiio.ImageOutput.create(path)
    assert out.open(path, specs), out.geterror()
    assert out.write_image(beauty)
    assert out.open(path, specs[1], "AppendSubimage"), out.geterror()
    assert out.write_image(diffuse)
    out.close()

    assert [h.channels[0] for h in read_headers(path)] == ["R", "diffuse.R"]
    plate = load_sequence(str(tmp_path / "multi.####.exr"), layer="diffuse")
    assert np.array_equal(plate.rgb[0], diffuse)
    assert plate.info.channels == ["diffuse.R", "diffuse.G", "diffuse.B"]
    rgba = load_sequence(str(tmp_path / "multi.####.exr"))
    assert np.array_equal(rgba.alpha[0], beauty[..., 3])
