"""Bad graphs, graph files and render flags: refused before anything runs, each with a message
naming the node, input, file or flag, exit 1 and no traceback, nothing written.

Graph cases run the loader and the validator in-process on real graphs (the identity template,
a plate -> OCIO -> Save graph in the API format); flag cases run the command's ``main`` in-process;
a few run the real command in a fresh process (the FIFO, ``--log-json -``, the Resynthesize typo
that used to be found only after the whole inversion).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.storage import write_atomically
from latentmirror.plugin import cli
from latentmirror.plugin.graph import graph_from_json, load_graph
from latentmirror.plugin.runner import node_classes, run_graph_file
from latentmirror.plugin.validate import validate_graph

from .support import IDENTITY, assert_clean_refusal, folder_state, overrides, run_cli

# ------------------------------------------------------------------------------ graphs


def _api_graph(out: str) -> dict:
    """Plate -> OCIO Transform -> Save EXR Sequence, every required input given."""
    return {
        "1": {
            "class_type": "LM_LoadEXRSequence",
            "inputs": {"path": "plate/plate.####.exr", "frames": "", "missing": "error"},
            "_meta": {"title": "Plate"},
        },
        "2": {
            "class_type": "LM_OCIOTransform",
            "inputs": {
                "image": ["1", 0],
                "src": "ACEScg",
                "dst": "ACES2065-1",
                "direction": "forward",
            },
        },  # fmt: skip
        "3": {
            "class_type": "LM_SaveEXRSequence",
            "inputs": {
                "images": ["2", 0],
                "path": out,
                "pixel_type": "half",
                "compression": "zip",
                "existing": "skip",
                "plate_info": ["1", 2],
            },
        },  # fmt: skip
    }


def _identity_ui(out: str) -> dict:
    data = json.loads(Path(IDENTITY).read_text(encoding="utf-8"))
    _ui_node(data, 10)["widgets_values"][0] = out
    return data


def _ui_node(data: dict, node_id: int) -> dict:
    return next(n for n in data["nodes"] if n["id"] == node_id)


def _set(node_id: str, name: str, value):
    def edit(data):
        data[node_id]["inputs"][name] = value

    return edit


def _delete(node_id: str, name: str):
    def edit(data):
        del data[node_id]["inputs"][name]

    return edit


def _ui_widget(node_id: int, index: int, value):
    def edit(data):
        _ui_node(data, node_id)["widgets_values"][index] = value

    return edit


@dataclass
class GraphCase:
    name: str
    edit: object  # data -> None, on the API graph (api=True) or the identity UI graph
    mentions: tuple[str, ...]  # what the message must name
    api: bool = True


def _several(data):
    _set("3", "pixel_type", "quarter")(data)
    _set("3", "dwa_level", float("nan"))(data)
    _delete("2", "src")(data)


def _inputs_as_list(data):
    data["2"]["inputs"] = list(data["2"]["inputs"].values())


def _truncate_save_widgets(data):
    _ui_node(data, 10)["widgets_values"] = _ui_node(data, 10)["widgets_values"][:1]


def _plate_info_into_image(data):
    for link in data["links"]:
        if link[3] == 10 and link[4] == 0:  # the saver's images
            link[1], link[2], link[5] = 1, 2, "PLATE_INFO"


GRAPH_CASES = [
    GraphCase("missing required widget (API)", _delete("3", "pixel_type"),
              ("3 (Save EXR Sequence)", "'pixel_type'", "required input is missing")),
    GraphCase("missing required widgets (UI)", _truncate_save_widgets,
              ("10 (", "'pixel_type'", "'existing'", "required input is missing"), api=False),
    GraphCase("png output path", _set("3", "path", "OUT/render.####.png"),
              ("3 (Save EXR Sequence)", "'path'", ".exr")),
    GraphCase("link to output slot 7", _set("3", "plate_info", ["1", 7]),
              ("'plate_info'", "output slot 7", "1 (Plate)", "3 output(s)")),
    GraphCase("PLATE_INFO wired into IMAGE (API)", _set("3", "images", ["1", 2]),
              ("'images'", "expects IMAGE", "gives PLATE_INFO")),
    GraphCase("PLATE_INFO wired into IMAGE (UI)", _plate_info_into_image,
              ("'images'", "expects IMAGE", "gives PLATE_INFO"), api=False),
    GraphCase("inputs as a list", _inputs_as_list, ("2 (LM_OCIOTransform)", "'inputs' is a list")),
    GraphCase("[1, 2] for a FLOAT", _set("3", "dwa_level", [1, 2]),
              ("'dwa_level'", "[1, 2]", "not a valid FLOAT")),
    GraphCase("dwa_level NaN", _set("3", "dwa_level", float("nan")),
              ("'dwa_level'", "nan is not a finite number")),
    GraphCase("dwa_level inf as text", _set("3", "dwa_level", "inf"),
              ("'dwa_level'", "inf is not a finite number")),
    GraphCase("INT given 1001.5", _set("3", "start_frame", 1001.5),
              ("'start_frame'", "not a whole number")),
    GraphCase("bool for an INT", _set("3", "start_frame", True),
              ("'start_frame'", "True is not a valid INT")),
    GraphCase("above the maximum", _set("3", "dwa_level", 1e9), ("'dwa_level'", "maximum")),
    GraphCase("choice not in the list", _set("3", "compression", "zipp"),
              ("'compression'", "'zipp' is not one of")),
    GraphCase("value for an IMAGE input", _set("3", "images", "plate.exr"),
              ("'images'", "must be connected")),
    GraphCase("link to a missing node", _set("3", "images", ["42", 0]),
              ("'images'", "node 42, which is not in the graph")),
    GraphCase("input name typo", _set("2", "dts", "ACEScg"),
              ("2 (OCIO Transform)", "'dts'", "no such input")),
    GraphCase("unknown node type", lambda d: d.update({"9": {"class_type": "KSampler",
              "inputs": {}}}), ("9 (KSampler)", "ComfyUI")),  # fmt: skip
    GraphCase("frames of 10^11", _set("1", "frames", "1001-99999999999"),
              ("1 (Plate)", "'frames'", "1,000,000")),
    GraphCase("file name over 255 bytes", _set("3", "path", "OUT/" + "n" * 260 + ".####.exr"),
              ("'path'", "at most 255")),
    GraphCase("path over PATH_MAX", _set("3", "path", "OUT/" + "d/" * 2100 + "r.####.exr"),
              ("'path'", "the path is", "bytes")),
    GraphCase("Resynthesize truncation out of range (UI)", _ui_widget(8, 0, 5.0),
              ("8 (", "'truncation'", "above the maximum 2.0"), api=False),
    GraphCase("several problems at once", _several,
              ("3 problems", "'pixel_type'", "'dwa_level'", "2 (OCIO Transform), input 'src'")),
]  # fmt: skip


@pytest.mark.parametrize("case", GRAPH_CASES, ids=lambda c: c.name)
def test_bad_graph_is_refused_before_anything_runs(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = str(tmp_path / "out" / "render.####.exr")
    data = _api_graph(out) if case.api else _identity_ui(out)
    case.edit(data)
    text = json.dumps(data).replace("OUT/", str(tmp_path / "out") + "/")
    path = tmp_path / "graph.json"
    path.write_text(text, encoding="utf-8")
    before = folder_state(tmp_path)
    with pytest.raises(LatentmirrorError) as caught:
        run_graph_file(str(path))
    for mention in case.mentions:
        assert mention in str(caught.value), (mention, str(caught.value))
    assert folder_state(tmp_path) == before
    assert not (tmp_path / "out").exists()


def test_a_valid_graph_passes_and_every_template_validates(tmp_path):
    classes = node_classes()
    validate_graph(graph_from_json(_api_graph(str(tmp_path / "o.####.exr")), classes), classes)
    for template in sorted((Path(IDENTITY).parent).glob("*.json")):
        validate_graph(load_graph(str(template), classes), classes)


def test_output_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "taken").write_text("a file where a folder should be")
    classes = node_classes()
    graph = graph_from_json(_api_graph(str(tmp_path / "taken" / "sub" / "r.####.exr")), classes)
    with pytest.raises(LatentmirrorError, match=r"taken is a file, not a folder"):
        validate_graph(graph, classes)
    validate_graph(graph, classes, local_paths=False)  # a server's storage: not looked up here


@pytest.fixture
def read_only_folder(tmp_path):
    """A read-only file system (root writes anywhere else): a small tmpfs mounted ``ro``."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        os.chmod(folder, 0o555)  # not root: permissions are enough
    yield folder
    if mounted.returncode == 0:
        subprocess.run(["umount", str(folder)], check=False)
    os.chmod(folder, 0o755)


def test_read_only_output_folder_is_refused_before_anything_runs(read_only_folder):
    if os.access(read_only_folder, os.W_OK):
        pytest.skip("cannot make a read-only folder here (root without mount)")
    classes = node_classes()
    graph = graph_from_json(_api_graph(str(read_only_folder / "r.####.exr")), classes)
    with pytest.raises(LatentmirrorError, match=r"read-only is not writable") as caught:
        validate_graph(graph, classes)
    assert caught.value.where.input == "path" and "Save EXR" in str(caught.value)


def test_unwritable_place_is_an_error_naming_the_file(read_only_folder, tmp_path):
    """What validation cannot foresee (a volume turned read-only mid-render) is still a clear
    error naming the file, never a raw OSError."""
    (tmp_path / "taken").write_text("a file")
    for target in (tmp_path / "taken" / "f.1001.exr", read_only_folder / "f.1001.exr"):
        with pytest.raises(LatentmirrorError, match="cannot write here") as caught:
            write_atomically(str(target), lambda temporary: Path(temporary).write_bytes(b"x"))
        assert caught.value.where.file == str(target)
        if os.access(read_only_folder, os.W_OK):
            break


def test_nan_is_refused_inside_the_node_too():
    """ComfyUI's own validation lets NaN through (min and max comparisons are False)."""
    from latentmirror.nodes import NODE_CLASS_MAPPINGS

    saver = NODE_CLASS_MAPPINGS["LM_SaveEXRSequence"]()
    images = torch.zeros(1, 4, 4, 3)
    with pytest.raises(LatentmirrorError) as caught:
        saver.save(images=images, path="x.####.exr", pixel_type="half", compression="dwaa",
                   existing="skip", dwa_level=float("nan"))  # fmt: skip
    assert "input 'dwa_level'" in str(caught.value) and "Save EXR Sequence" in str(caught.value)


# ------------------------------------------------------------------------------ graph files


def _fifo(tmp_path: Path) -> str:
    os.mkfifo(tmp_path / "graph.fifo")
    return str(tmp_path / "graph.fifo")


FILE_CASES = [
    ("missing", lambda t: str(t / "nope.json"), "does not exist"),
    ("folder", lambda t: str(t), "is a folder"),
    ("fifo", _fifo, "not a regular file"),
    ("device", lambda t: "/dev/zero", "not a regular file"),
    ("binary", lambda t: _write(t, b"\x89PNG\r\n\x1a\n\x00\x00"), "not UTF-8"),
    ("latin-1", lambda t: _write(t, '{"1": "caf\xe9"}'.encode("latin-1")), "not UTF-8"),
    ("not JSON", lambda t: _write(t, b"{nodes: []"), "not a JSON graph"),
    ("JSON list", lambda t: _write(t, b"[1, 2]"), "expected a ComfyUI graph"),
    ("nested too deep", lambda t: _write(t, b"[" * 100000), "not a JSON graph"),
    ("node without class_type", lambda t: _write(t, b'{"1": {"inputs": {}}}'), "class_type"),
    ("UI links not a list", lambda t: _write(t, b'{"nodes": [], "links": 5}'), "'links'"),
]


def _write(folder: Path, content: bytes) -> str:
    (folder / "graph.json").write_bytes(content)
    return str(folder / "graph.json")


@pytest.mark.parametrize("case", FILE_CASES, ids=lambda c: c[0])
def test_bad_graph_file_names_the_file(case, tmp_path):
    _name, make, reason = case
    path = make(tmp_path)
    before = folder_state(tmp_path) if not os.path.exists(tmp_path / "graph.fifo") else None
    with pytest.raises(LatentmirrorError) as caught:
        run_graph_file(path)
    assert reason in str(caught.value) and path in str(caught.value), str(caught.value)
    if before is not None:
        assert folder_state(tmp_path) == before


# ------------------------------------------------------------------------------ flags


@dataclass
class FlagCase:
    name: str
    args: list[str]
    mentions: tuple[str, ...]


FLAG_CASES = [
    FlagCase("--chunk 0", ["--chunk", "0"], ("--chunk", "must be 1 or more, got 0")),
    FlagCase("--chunk text", ["--chunk", "ten"], ("--chunk", "'ten' is not a whole number")),
    FlagCase("--preroll -1", ["--preroll", "-1"], ("--preroll", "must be 0 or more")),
    FlagCase("--frames 10^11", ["--frames", "1001-99999999999"], ("--frames", "1,000,000")),
    FlagCase("--frames typo", ["--frames", "1001-10x"], ("--frames", "1001-10x")),
    FlagCase("--device unknown", ["--device", "tpu"], ("--device tpu", "available: auto, cpu")),
    FlagCase("--log-json folder", ["--log-json", "LOGDIR"], ("--log-json names a folder",)),
    FlagCase("--log-json under a file", ["--log-json", "AFILE/log.jsonl"], ("is a file",)),
    FlagCase("graph is a folder", [], ("graph file is a folder",)),
]
if not torch.cuda.is_available():
    FLAG_CASES.append(FlagCase("--device cuda", ["--device", "cuda"], ("--device cuda", "cpu")))


@pytest.mark.parametrize("case", FLAG_CASES, ids=lambda c: c.name)
def test_bad_flag_is_refused_before_anything_loads(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "LOGDIR").mkdir()
    (tmp_path / "AFILE").write_text("x")
    graph = str(tmp_path) if case.name == "graph is a folder" else IDENTITY
    before = folder_state(tmp_path)
    try:
        code = cli.main(["render", graph, "--quiet", *case.args])
    except SystemExit as exc:  # argparse's refusals
        code = exc.code
    stderr = capsys.readouterr().err
    assert code == 1, stderr
    assert "latentmirror: error:" in stderr and "Traceback" not in stderr
    for mention in case.mentions:
        assert mention in stderr, (mention, stderr)
    assert folder_state(tmp_path) == before


def test_preroll_help_shows_the_real_default(capsys):
    from latentmirror.plugin.backends import DEFAULT_PREROLL

    with pytest.raises(SystemExit):
        cli.main(["render", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default {DEFAULT_PREROLL} with --chunk)" in help_text


def test_internal_error_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("a bug in latentmirror\nsecond line")

    monkeypatch.setattr(cli, "_render", broken)
    assert cli.main(["render", IDENTITY]) == cli.EXIT_INTERNAL != 1
    stderr = capsys.readouterr().err
    assert stderr.strip() == (
        "latentmirror: internal error: RuntimeError: a bug in latentmirror "
        "(run with --debug for the traceback)"
    )
    assert cli.main(["render", IDENTITY, "--debug"]) == cli.EXIT_INTERNAL
    assert "Traceback" in capsys.readouterr().err


# ------------------------------------------------------------------------------ fresh processes


def test_bad_resynthesize_value_is_reported_before_the_inversion(plate, tmp_path):
    out = str(tmp_path / "out" / "o.####.exr")
    cache = tmp_path / "cache"
    before = folder_state(tmp_path)
    sets = [*overrides(plate, out), "8.truncation=5"]
    result = run_cli(
        "render", IDENTITY, *sum((["--set", s] for s in sets), []),
        cwd=tmp_path, env={"LATENTMIRROR_CACHE": str(cache)},
    )  # fmt: skip
    assert_clean_refusal(result, "8 (", "input 'truncation'", "above the maximum 2.0")
    assert "invert" not in result.stderr.lower()  # no Invert progress or log: it never ran
    assert folder_state(tmp_path) == before
    assert not cache.exists()  # no latent was solved


def test_fifo_graph_is_refused_without_hanging(tmp_path):
    result = run_cli("render", _fifo(tmp_path), cwd=tmp_path, timeout=60)
    assert_clean_refusal(result, "graph.fifo", "not a regular file")


def test_log_json_stdout_carries_json_lines_only(plate, tmp_path):
    template = Path(IDENTITY).parent / "plate_to_display.json"
    out = tmp_path / "out" / "d.####.exr"
    result = run_cli(
        "render", str(template), "--set", f"1.path={plate}", "--set", f"3.path={out}",
        "--frames", "1001-1002", "--log-json", "-", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert [json.loads(line)["frame"] for line in lines] == [1001, 1002]
    assert "rendered" in result.stderr  # the human summary went to stderr
