"""The headless runner and the ``latentmirror`` CLI, on real EXR plates written in tmp_path.

Pixels are checked against an independent computation: the plate read with OpenImageIO and
transformed with PyOpenColorIO directly (not through latentmirror.core.color).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import PyOpenColorIO as ocio
import pytest

from latentmirror.core.errors import LatentmirrorError
from latentmirror.plugin.runner import RunReport, run_graph_file

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = PACKAGE_ROOT / "example_workflows" / "plate_to_display.json"

FRAMES, WIDTH, HEIGHT = 8, 64, 36  # the `plate` fixture's (conftest.py)
FIRST, LAST = 1001, 1008
DISPLAY, VIEW = "sRGB - Display", "ACES 2.0 - SDR 100 nits (Rec.709)"
DISPLAY_VIEW = f"{DISPLAY}/{VIEW}"


# ------------------------------------------------------------------------------ helpers


def _frame_path(pattern: str, frame: int) -> str:
    return pattern.replace("####", f"{frame:04d}")


def _read_exr(path: str) -> tuple[np.ndarray, oiio.ImageSpec]:
    inp = oiio.ImageInput.open(path)
    assert inp is not None, oiio.geterror()
    try:
        spec = inp.spec()
        pixels = inp.read_image(0, 0, 0, spec.nchannels, "float")
        return np.asarray(pixels, np.float32).reshape(spec.height, spec.width, -1), spec
    finally:
        inp.close()


def _channel(pixels: np.ndarray, spec: oiio.ImageSpec, name: str) -> np.ndarray:
    return pixels[..., list(spec.channelnames).index(name)]


def _rgb(pixels: np.ndarray, spec: oiio.ImageSpec) -> np.ndarray:
    return np.stack([_channel(pixels, spec, c) for c in "RGB"], -1)


LUT_PLATE_ERROR = 2e-3  # display-space bound of precision=lut on a plate's pixels


def _expected_display(plate_path: str) -> tuple[np.ndarray, np.ndarray]:
    """The plate frame through ACEScg -> sRGB display / ACES 2.0 SDR view, by OIIO + OCIO alone."""
    pixels, spec = _read_exr(plate_path)
    rgb = np.ascontiguousarray(_rgb(pixels, spec))
    config = ocio.Config.CreateFromFile("ocio://studio-config-latest")
    transform = ocio.DisplayViewTransform(src="ACEScg", display=DISPLAY, view=VIEW)
    processor = config.getProcessor(transform, ocio.TRANSFORM_DIR_FORWARD)
    processor.getDefaultCPUProcessor().applyRGB(rgb)
    return rgb, _channel(pixels, spec, "A")


def _assert_display_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal within what storing as half float loses (11-bit mantissa: 2^-11 relative) and the
    bound of the OCIO Transform's default LUT on a plate's pixels (tests/test_color_lut.py)."""
    np.testing.assert_allclose(actual, expected, rtol=2**-10, atol=2**-14 + LUT_PLATE_ERROR)


def _timecode(spec: oiio.ImageSpec):
    return spec.getattribute("smpte:TimeCode")


def _frames_in(folder: Path, prefix: str) -> list[int]:
    return sorted(
        int(p.name.split(".")[-2])
        for p in folder.glob(f"{prefix}.*.exr")
        if not p.name.startswith(".")
    )


def _load_template() -> dict:
    return json.loads(TEMPLATE.read_text(encoding="utf-8"))


def _ui_node(graph: dict, node_id: int) -> dict:
    return next(n for n in graph["nodes"] if n["id"] == node_id)


def _write_json(path: Path, data: dict) -> str:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return str(path)


def _ui_graph(tmp_path: Path, plate: str, out: Path, edit=None) -> str:
    """The template with its plate and output paths in tmp_path, optionally edited."""
    graph = _load_template()
    _ui_node(graph, 1)["widgets_values"][0] = plate
    _ui_node(graph, 3)["widgets_values"][0] = str(out / "display.####.exr")
    if edit:
        edit(graph)
    return _write_json(tmp_path / "graph_ui.json", graph)


def _overrides(plate: str, out: Path) -> list[str]:
    return [f"1.path={plate}", f"3.path={out / 'display.####.exr'}"]


def _api_graph(plate: str, out: Path) -> dict:
    return {
        "1": {
            "class_type": "LM_LoadEXRSequence",
            "inputs": {"path": plate, "frames": "", "missing": "error"},
            "_meta": {"title": "Plate"},
        },
        "2": {
            "class_type": "LM_OCIOTransform",
            "inputs": {
                "image": ["1", 0],
                "src": "ACEScg",
                "dst": DISPLAY_VIEW,
                "direction": "forward",
            },
        },
        "3": {
            "class_type": "LM_SaveEXRSequence",
            "inputs": {
                "images": ["2", 0],
                "path": str(out / "api.####.exr"),
                "pixel_type": "half",
                "compression": "zip",
                "existing": "skip",
                "plate_info": ["1", 2],
                "mask": ["1", 1],
                "colorspace": DISPLAY,
            },
        },
    }


def _check_display_output(plate: str, out_pattern: str, frames: list[int]) -> None:
    """Every output frame: pixels = independent OCIO result, alpha kept, timecode of its frame."""
    timecodes = set()
    for frame in frames:
        out_pixels, out_spec = _read_exr(_frame_path(out_pattern, frame))
        plate_pixels, plate_spec = _read_exr(_frame_path(plate, frame))
        expected_rgb, expected_alpha = _expected_display(_frame_path(plate, frame))
        assert (out_spec.width, out_spec.height) == (WIDTH, HEIGHT)
        assert out_spec.format == oiio.TypeDesc("half")
        _assert_display_close(_rgb(out_pixels, out_spec), expected_rgb)
        np.testing.assert_array_equal(_channel(out_pixels, out_spec, "A"), expected_alpha)
        # the display transform really changed the pixels (the sun is far above 1 in the plate)
        assert _rgb(plate_pixels, plate_spec).max() > 2.0
        assert _rgb(out_pixels, out_spec).max() <= 1.01
        assert _timecode(plate_spec) is not None
        assert _timecode(out_spec) == _timecode(plate_spec)
        timecodes.add(tuple(_timecode(out_spec)))
    assert len(timecodes) == len(frames)  # each frame its own timecode, not the first one's


# ------------------------------------------------------------------------------ formats


def test_ui_template_renders_the_display_transform(plate, tmp_path):
    out = tmp_path / "out"
    report = run_graph_file(str(TEMPLATE), None, _overrides(plate, out))
    assert isinstance(report, RunReport)
    assert report.executed == ["1", "2", "3"]
    assert _frames_in(out, "display") == list(range(FIRST, LAST + 1))
    assert sorted(report.files) == [
        _frame_path(str(out / "display.####.exr"), f) for f in range(FIRST, LAST + 1)
    ]
    _check_display_output(plate, str(out / "display.####.exr"), list(range(FIRST, LAST + 1)))
    _, spec = _read_exr(str(out / "display.1001.exr"))
    assert spec.getattribute("latentmirror:colorspace") == DISPLAY
    assert str(spec.getattribute("latentmirror:ocioConfig")).startswith("ocio://studio-config-v")


def test_api_format_graph_renders_the_same(plate, tmp_path):
    out = tmp_path / "out"
    graph = _write_json(tmp_path / "graph_api.json", _api_graph(plate, out))
    report = run_graph_file(graph)
    assert report.executed == ["1", "2", "3"]
    assert _frames_in(out, "api") == list(range(FIRST, LAST + 1))
    _check_display_output(plate, str(out / "api.####.exr"), [FIRST, 1004, LAST])


def test_api_format_wrapped_in_prompt_key(plate, tmp_path):
    out = tmp_path / "out"
    graph = _write_json(tmp_path / "graph_prompt.json", {"prompt": _api_graph(plate, out)})
    run_graph_file(graph, "1001-1002")
    assert _frames_in(out, "api") == [1001, 1002]


def test_rerun_skips_frames_already_written(plate, tmp_path):
    out = tmp_path / "out"
    first = run_graph_file(str(TEMPLATE), "1001-1004", _overrides(plate, out))
    assert len(first.files) == 4
    second = run_graph_file(str(TEMPLATE), "1001-1006", _overrides(plate, out))
    assert sorted(second.skipped_files) == sorted(first.files)
    assert [os.path.basename(f) for f in second.files] == [
        "display.1005.exr",
        "display.1006.exr",
    ]


# ------------------------------------------------------------------------------ frames, --set


def test_frames_argument_limits_the_frames_written(plate, tmp_path):
    out = tmp_path / "out"
    report = run_graph_file(str(TEMPLATE), "1002-1005", _overrides(plate, out))
    assert _frames_in(out, "display") == [1002, 1003, 1004, 1005]
    assert len(report.files) == 4
    _check_display_output(plate, str(out / "display.####.exr"), [1002, 1005])


def test_frames_argument_with_a_step_keeps_real_frame_numbers(plate, tmp_path):
    out = tmp_path / "out"
    run_graph_file(str(TEMPLATE), "1001-1007x3", _overrides(plate, out))
    assert _frames_in(out, "display") == [1001, 1004, 1007]
    _check_display_output(plate, str(out / "display.####.exr"), [1004, 1007])


def test_set_unknown_node_lists_the_graph_nodes(plate, tmp_path):
    with pytest.raises(LatentmirrorError) as caught:
        run_graph_file(str(TEMPLATE), None, [*_overrides(plate, tmp_path / "out"), "99.path=x"])
    message = str(caught.value)
    assert "no node 99" in message
    for listed in ("1 (LM_LoadEXRSequence)", "2 (LM_OCIOTransform)", "3 (LM_SaveEXRSequence)"):
        assert listed in message
    assert not (tmp_path / "out").exists()


def test_set_unknown_input_lists_the_node_inputs(plate, tmp_path):
    with pytest.raises(LatentmirrorError) as caught:
        run_graph_file(str(TEMPLATE), None, [*_overrides(plate, tmp_path / "out"), "2.dest=x"])
    message = str(caught.value)
    assert "'dest'" in message
    for name in ("image", "src", "dst", "direction", "ocio_config"):
        assert name in message


def test_set_without_equals_is_refused(plate, tmp_path):
    with pytest.raises(LatentmirrorError, match="NODE_ID.INPUT=VALUE"):
        run_graph_file(str(TEMPLATE), None, ["3.path"])


def test_set_changes_an_input(plate, tmp_path):
    out = tmp_path / "out"
    overrides = [*_overrides(plate, out), "3.pixel_type=float", "2.dst=ACES2065-1"]
    overrides.append("2.precision=exact")  # compared with OCIO at float precision
    run_graph_file(str(TEMPLATE), "1003", overrides)
    pixels, spec = _read_exr(str(out / "display.1003.exr"))
    assert spec.format == oiio.TypeDesc("float")
    plate_pixels, plate_spec = _read_exr(_frame_path(plate, 1003))
    config = ocio.Config.CreateFromFile("ocio://studio-config-latest")
    expected = np.ascontiguousarray(_rgb(plate_pixels, plate_spec))
    config.getProcessor("ACEScg", "ACES2065-1").getDefaultCPUProcessor().applyRGB(expected)
    np.testing.assert_allclose(_rgb(pixels, spec), expected, rtol=1e-5, atol=1e-6)


def test_combo_value_not_in_the_list_names_the_input(plate, tmp_path):
    with pytest.raises(LatentmirrorError) as caught:
        run_graph_file(
            str(TEMPLATE), None, [*_overrides(plate, tmp_path / "out"), "3.pixel_type=quarter"]
        )
    message = str(caught.value)
    assert "input 'pixel_type'" in message
    assert "'quarter'" in message and "half" in message and "float" in message
    assert "3 (" in message  # the node id
    assert not (tmp_path / "out").exists()


def test_unknown_node_type_names_id_type_and_comfyui(plate, tmp_path):
    def add_ksampler(graph):
        graph["nodes"].append(
            {
                "id": 20,
                "type": "KSampler",
                "mode": 0,
                "inputs": [],
                "outputs": [],
                "widgets_values": [0, "fixed", 20, 8.0, "euler", "normal", 1.0],
            }
        )

    graph = _ui_graph(tmp_path, plate, tmp_path / "out", add_ksampler)
    with pytest.raises(LatentmirrorError) as caught:
        run_graph_file(graph)
    message = str(caught.value)
    assert "20 (KSampler)" in message
    assert "ComfyUI" in message
    assert not (tmp_path / "out").exists()


def test_unknown_node_type_in_api_format(plate, tmp_path):
    data = _api_graph(plate, tmp_path / "out")
    data["7"] = {"class_type": "KSampler", "inputs": {"seed": 1}}
    with pytest.raises(LatentmirrorError, match=r"7 \(KSampler\).*ComfyUI"):
        run_graph_file(_write_json(tmp_path / "api.json", data))


def test_only_nodes_feeding_outputs_run(plate, tmp_path):
    """A dangling OCIO Transform with an invalid dst would fail if it ran; it must not run."""

    def add_dangling(graph):
        graph["nodes"].append(
            {
                "id": 21,
                "type": "LM_OCIOTransform",
                "mode": 0,
                "inputs": [{"name": "image", "type": "IMAGE", "link": 21}],
                "outputs": [{"name": "image", "type": "IMAGE", "links": []}],
                "widgets_values": ["ACEScg", "No Such Colour Space", "forward", ""],
            }
        )
        _ui_node(graph, 1)["outputs"][0]["links"].append(21)
        graph["links"].append([21, 1, 0, 21, 0, "IMAGE"])

    out = tmp_path / "out"
    report = run_graph_file(_ui_graph(tmp_path, plate, out, add_dangling))
    assert "21" not in report.executed
    assert report.executed == ["1", "2", "3"]
    assert _frames_in(out, "display") == list(range(FIRST, LAST + 1))


def test_dangling_node_with_bad_dst_would_fail_when_connected(plate, tmp_path):
    """The control for the test above: the same bad dst fails when the node feeds the saver."""
    out = tmp_path / "out"
    with pytest.raises(LatentmirrorError) as caught:
        run_graph_file(str(TEMPLATE), None, [*_overrides(plate, out), "2.dst=No Such Colour Space"])
    message = str(caught.value)
    assert "input 'dst'" in message and "2 (" in message


def test_graph_without_output_node_is_refused(plate, tmp_path):
    data = _api_graph(plate, tmp_path / "out")
    del data["3"]
    with pytest.raises(LatentmirrorError, match="no output node"):
        run_graph_file(_write_json(tmp_path / "api.json", data))


def test_missing_graph_file_names_it(tmp_path):
    missing = str(tmp_path / "nope.json")
    with pytest.raises(LatentmirrorError) as caught:
        run_graph_file(missing)
    assert missing in str(caught.value)


# ------------------------------------------------------------------------------ UI features


def test_reroute_between_ocio_and_save(plate, tmp_path):
    def add_reroute(graph):
        graph["nodes"].append(
            {
                "id": 10,
                "type": "Reroute",
                "mode": 0,
                "inputs": [{"name": "", "type": "*", "link": 2}],
                "outputs": [{"name": "", "type": "IMAGE", "links": [12]}],
                "properties": {"showOutputText": False, "horizontal": False},
            }
        )
        _ui_node(graph, 3)["inputs"][0]["link"] = 12
        for link in graph["links"]:
            if link[0] == 2:
                link[3], link[4] = 10, 0  # OCIO -> Reroute
        graph["links"].append([12, 10, 0, 3, 0, "IMAGE"])  # Reroute -> Save

    out = tmp_path / "out"
    report = run_graph_file(_ui_graph(tmp_path, plate, out, add_reroute), "1001-1003")
    assert report.executed == ["1", "2", "3"]
    assert _frames_in(out, "display") == [1001, 1002, 1003]
    _check_display_output(plate, str(out / "display.####.exr"), [1001, 1002, 1003])


def test_bypassed_ocio_passes_the_plate_through(plate, tmp_path):
    def bypass_ocio(graph):
        _ui_node(graph, 2)["mode"] = 4

    out = tmp_path / "out"
    report = run_graph_file(_ui_graph(tmp_path, plate, out, bypass_ocio), "1001-1004")
    assert "2" not in report.executed
    assert report.executed == ["1", "3"]
    for frame in (1001, 1004):
        out_pixels, out_spec = _read_exr(_frame_path(str(out / "display.####.exr"), frame))
        plate_pixels, plate_spec = _read_exr(_frame_path(plate, frame))
        # half in, half out, no transform: bit-identical
        np.testing.assert_array_equal(_rgb(out_pixels, out_spec), _rgb(plate_pixels, plate_spec))
        assert _rgb(out_pixels, out_spec).max() > 2.0


def test_primitive_node_is_ignored_for_the_target_widget_value(plate, tmp_path):
    out = tmp_path / "out"
    elsewhere = tmp_path / "primitive_out"

    def add_primitive(graph):
        graph["nodes"].append(
            {
                "id": 30,
                "type": "PrimitiveNode",
                "mode": 0,
                "inputs": [],
                "outputs": [
                    {"name": "STRING", "type": "STRING", "links": [30], "widget": {"name": "path"}}
                ],
                "widgets_values": [str(elsewhere / "prim.####.exr")],
                "properties": {"Run widget replace on values": False},
            }
        )
        _ui_node(graph, 3)["inputs"].append(
            {"name": "path", "type": "STRING", "widget": {"name": "path"}, "link": 30}
        )
        graph["links"].append([30, 30, 0, 3, 3, "STRING"])

    report = run_graph_file(_ui_graph(tmp_path, plate, out, add_primitive), "1001-1002")
    assert "30" not in report.executed
    assert _frames_in(out, "display") == [1001, 1002]
    assert not elsewhere.exists()


def test_muted_output_node_leaves_nothing_to_run(plate, tmp_path):
    def mute_save(graph):
        _ui_node(graph, 3)["mode"] = 2

    with pytest.raises(LatentmirrorError, match="no output node"):
        run_graph_file(_ui_graph(tmp_path, plate, tmp_path / "out", mute_save))


def test_template_file_itself_is_unchanged_by_runs(plate, tmp_path):
    before = TEMPLATE.read_bytes()
    run_graph_file(str(TEMPLATE), "1001", _overrides(plate, tmp_path / "out"))
    assert TEMPLATE.read_bytes() == before


# ------------------------------------------------------------------------------ the CLI


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OCIO"}
    return subprocess.run(
        [sys.executable, "-m", "latentmirror", *args],
        cwd=str(cwd),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_render_succeeds(plate, tmp_path):
    out = tmp_path / "out"
    sets = [a for o in _overrides(plate, out) for a in ("--set", o)]
    result = _cli("render", str(TEMPLATE), "--frames", "1001-1003", *sets, "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 files written" in result.stdout
    assert _frames_in(out, "display") == [1001, 1002, 1003]
    _check_display_output(plate, str(out / "display.####.exr"), [1002])


def _plate_with_negative_frames(plate: str) -> dict[int, str]:
    """The plate's first frames renamed to -2..1, spelled as some renderers write them: the
    digits padded behind the sign (plate.-0002.exr), which plate.####.exr must find."""
    renamed = {}
    for frame, source in zip((-2, -1, 0, 1), range(FIRST, FIRST + 4), strict=True):
        sign = "-" if frame < 0 else ""
        renamed[frame] = plate.replace("####", f"{sign}{abs(frame):04d}")
        os.rename(_frame_path(plate, source), renamed[frame])
    return renamed


@pytest.mark.slow
@pytest.mark.parametrize("frames_args", [("--frames", "-2-0"), ("--frames=-2-0",)])
def test_cli_renders_negative_frames(plate, tmp_path, frames_args):
    """`--frames -2-0` (argparse alone refuses a value starting with -) and `--frames=-2-0`."""
    renamed = _plate_with_negative_frames(plate)
    out = tmp_path / "out"
    sets = [a for o in _overrides(plate, out) for a in ("--set", o)]
    result = _cli("render", str(TEMPLATE), *frames_args, *sets, "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 files written" in result.stdout
    assert _frames_in(out, "display") == [-2, -1, 0]
    assert (out / "display.-002.exr").is_file()  # written as Nuke and printf spell it
    for frame in (-2, -1, 0):
        out_pixels, out_spec = _read_exr(_frame_path(str(out / "display.####.exr"), frame))
        expected_rgb, expected_alpha = _expected_display(renamed[frame])
        _assert_display_close(_rgb(out_pixels, out_spec), expected_rgb)
        np.testing.assert_array_equal(_channel(out_pixels, out_spec, "A"), expected_alpha)


def test_cli_info_finds_negative_frames(plate, tmp_path):
    _plate_with_negative_frames(plate)
    result = _cli("info", plate, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "frames: -2-1,1005-1008" in result.stdout


def test_cli_render_missing_frame_fails_with_the_error_on_stderr(plate, tmp_path):
    out = tmp_path / "out"
    sets = [a for o in _overrides(plate, out) for a in ("--set", o)]
    result = _cli("render", str(TEMPLATE), "--frames", "1001-1010", *sets, "--quiet", cwd=tmp_path)
    assert result.returncode != 0
    assert "error" in result.stderr
    assert "1009-1010" in result.stderr and "missing" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() or _frames_in(out, "display") == []


def test_cli_render_unknown_node_type_fails(plate, tmp_path):
    data = _api_graph(plate, tmp_path / "out")
    data["7"] = {"class_type": "KSampler", "inputs": {}}
    graph = _write_json(tmp_path / "api.json", data)
    result = _cli("render", graph, "--quiet", cwd=tmp_path)
    assert result.returncode != 0
    assert "KSampler" in result.stderr


def test_cli_info_single_file(plate, tmp_path):
    path = _frame_path(plate, 1001)
    result = _cli("info", path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "data window" in result.stdout
    assert "compression" in result.stdout and "zip" in result.stdout
    assert f"size: {WIDTH}x{HEIGHT}" in result.stdout
    assert "smpte:TimeCode" in result.stdout


def test_cli_info_sequence_reports_gaps(plate, tmp_path):
    os.unlink(_frame_path(plate, 1004))
    result = _cli("info", plate, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    gaps = [line for line in result.stdout.splitlines() if line.startswith("gaps")]
    assert gaps and "1004" in gaps[0]
    assert "1001-1003,1005-1008" in result.stdout
    assert "compression" in result.stdout


def test_cli_info_sequence_without_gaps(plate, tmp_path):
    result = _cli("info", plate, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "gaps: none" in result.stdout


def test_cli_info_missing_file_fails(tmp_path):
    missing = str(tmp_path / "nothing.exr")
    result = _cli("info", missing, cwd=tmp_path)
    assert result.returncode != 0
    assert missing in result.stderr
