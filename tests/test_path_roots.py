"""Path roots (issue 12): a shared ComfyUI reads and writes only inside its folders.

Every node that takes a path goes through the host's PathRoots (host.py). In ComfyUI (the
stand-in folder_paths of conftest's ``comfy_modules``) nodes read from input/, output/ and the
studio's roots (LATENTMIRROR_ROOTS, latentmirror_roots in extra_model_paths.yaml), and write to
output/ and the studio's roots. Headless is unrestricted unless given ``--roots``. Each table row
is one attempt: where it points, and what must happen (read/written, refused by the roots, or
not found); refusals name the typed path and the setting, leak no folder listing, write nothing
and leave no preview.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PyOpenColorIO as ocio
import pytest
import torch

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.fit import plan_fit
from latentmirror.core.latents import GanLatent, save_latents
from latentmirror.host import PathRoots
from latentmirror.nodes.color_nodes import OCIOTransform
from latentmirror.nodes.exr_nodes import LoadEXRSequence, SaveEXRSequence
from latentmirror.nodes.invert_nodes import LoadLatentsNode, SaveLatentsNode
from latentmirror.plugin import comfyui
from latentmirror.plugin.headless import HeadlessHost

from .support import assert_clean_refusal, folder_state, run_cli, write_raw_exr

MARKER = "private_marker_never_shown.txt"  # in every folder outside the roots: must never leak
UNICODE = "plätes_日本"
POSIX = os.sep == "/"


# ------------------------------------------------------------------------------ the files


def _latent() -> GanLatent:
    return GanLatent(torch.zeros(2, 2, 2), "w", "hash", [1001, 1002], plan_fit("stretch", 4, 4, 4))


def _fill(folder: Path) -> None:
    """One of each kind of file a node reads: a 2-frame plate, a latent file, an OCIO config."""
    folder.mkdir(parents=True, exist_ok=True)
    for frame in (1001, 1002):
        pixels = np.full((4, 6, 3), 0.25, np.float32)
        write_raw_exr(folder / f"plate.{frame}.exr", pixels, ["R", "G", "B"])
    save_latents(_latent(), str(folder / "lat.safetensors"))
    builtin = ocio.Config.CreateFromFile("ocio://studio-config-latest")
    (folder / "config.ocio").write_text(builtin.serialize())


@dataclass
class Site:
    """A ComfyUI with its folders, the studio's roots, and folders outside everything."""

    tmp: Path
    input: Path
    output: Path
    temp: Path
    studio: Path  # in LATENTMIRROR_ROOTS
    yaml_root: Path  # latentmirror_roots in extra_model_paths.yaml
    outside: Path


@pytest.fixture
def site(comfy_modules, tmp_path, monkeypatch) -> Site:
    base = comfy_modules.base
    here = Site(
        tmp_path,
        base / "input",
        base / "output",
        base / "temp",
        tmp_path / "shots",
        tmp_path / "yaml_root",
        tmp_path / "outside",
    )
    for folder in (here.input / "files", here.input / UNICODE, here.output / "files"):
        _fill(folder)
    for folder in (here.studio, here.yaml_root, here.outside, tmp_path / "outsidé_外"):
        _fill(folder)
    for folder in (here.outside, tmp_path / "outsidé_外", tmp_path):
        (folder / MARKER).write_text("private")
    # a folder of links inside input/ and output/ whose files lead out (a frame, a latent ...)
    for mixed in (here.input / "mixed", here.output / "mixed"):
        mixed.mkdir()
        write_raw_exr(mixed / "plate.1001.exr", np.zeros((4, 6, 3), np.float32), ["R", "G", "B"])
        (mixed / "plate.1002.exr").symlink_to(here.outside / "plate.1002.exr")
        (mixed / "out.1001.exr").symlink_to(here.outside / "plate.1001.exr")
        for name in ("lat.safetensors", "config.ocio"):
            (mixed / name).symlink_to(here.outside / name)
        (mixed / "out.safetensors").symlink_to(here.outside / "lat.safetensors")
    (here.input / "link_out").symlink_to(here.outside)
    (here.output / "link_out").symlink_to(here.outside)
    monkeypatch.setenv("LATENTMIRROR_ROOTS", str(here.studio))
    comfy_modules.folder_paths.folder_names_and_paths["latentmirror_roots"] = (
        [str(here.yaml_root)],
        set(),
    )
    comfyui.register()
    return here


# ------------------------------------------------------------------------------ the nodes

IMAGE = torch.full((1, 4, 6, 3), 0.25)

READERS = {  # node -> (file it reads in each folder, how it reads the path)
    "Load EXR Sequence": ("plate.####.exr", lambda p: LoadEXRSequence().load(p, "", "error")),
    "Load Latents": ("lat.safetensors", lambda p: LoadLatentsNode().load(p)),
    "OCIO Transform ocio_config": (
        "config.ocio",
        lambda p: OCIOTransform().transform(
            IMAGE, "scene_linear", "scene_linear", "forward", p, "exact"
        ),
    ),
    "Load EXR ocio_config": (
        "config.ocio",
        lambda p: LoadEXRSequence().load("files/plate.####.exr", "", "error", ocio_config=p),
    ),
}
WRITERS = {  # node -> (file name it writes, how it writes the path)
    "Save EXR Sequence": (
        "out.####.exr",
        lambda p: SaveEXRSequence().save(IMAGE, p, "half", "zip", "overwrite", start_frame=1001),
    ),
    "Save Latents": ("out.safetensors", lambda p: SaveLatentsNode().save(_latent(), p)),
}

# (attempt, where it points (site, file name) -> typed path, outcome): read | refused | missing
READ_CASES = [
    ("relative, in input/", lambda s, n: f"files/{n}", "read"),
    ("relative ../../ out of input/", lambda s, n: f"../../outside/{n}", "refused"),
    ("absolute, outside", lambda s, n: str(s.outside / n), "refused"),
    ("absolute, in input/", lambda s, n: str(s.input / "files" / n), "read"),
    ("absolute, in output/ (our renders)", lambda s, n: str(s.output / "files" / n), "read"),
    ("absolute, in LATENTMIRROR_ROOTS", lambda s, n: str(s.studio / n), "read"),
    ("absolute, in yaml latentmirror_roots", lambda s, n: str(s.yaml_root / n), "read"),
    ("a folder link in input/ leading out", lambda s, n: f"link_out/{n}", "refused"),
    ("a file link in input/ leading out", lambda s, n: f"mixed/{n}", "refused"),
    ("Windows separators ..\\..\\", lambda s, n: f"..\\..\\outside\\{n}", "missing"),
    ("unicode folder, in input/", lambda s, n: f"{UNICODE}/{n}", "read"),
    ("unicode folder, outside", lambda s, n: str(s.tmp / "outsidé_外" / n), "refused"),
    ("missing file, outside (/etc)", lambda s, n: str(s.outside / f"nothing_{n}"), "refused"),
    ("missing file, in input/", lambda s, n: f"files/nothing_{n}", "missing"),
]
WRITE_CASES = [
    ("relative, in output/", lambda s, n: f"renders/{n}", "written"),
    ("relative ../../ out of output/", lambda s, n: f"../../escape/{n}", "refused"),
    ("absolute, outside (new folder)", lambda s, n: str(s.tmp / "made_by_prompt" / n), "refused"),
    ("absolute, in LATENTMIRROR_ROOTS", lambda s, n: str(s.studio / "comp" / n), "written"),
    ("absolute, in yaml latentmirror_roots", lambda s, n: str(s.yaml_root / n), "written"),
    ("absolute, in input/ (read-only)", lambda s, n: str(s.input / n), "refused"),
    ("a folder link in output/ leading out", lambda s, n: f"link_out/{n}", "refused"),
    ("an existing file link leading out", lambda s, n: f"mixed/{n}", "refused"),
    ("Windows separators ..\\..\\", lambda s, n: f"..\\..\\escape\\{n}", "written"),
    ("unicode folder, in output/", lambda s, n: f"rendus_日本/{n}", "written"),
]
if not POSIX:  # there a backslash separates folders: ..\..\ leaves the folder and is refused
    READ_CASES = [(a, p, "refused" if "Windows" in a else o) for a, p, o in READ_CASES]
    WRITE_CASES = [(a, p, "refused" if "Windows" in a else o) for a, p, o in WRITE_CASES]


def _assert_refused(exc: LatentmirrorError, typed: str) -> None:
    """Names the typed path (or, for a frame that is a link, that frame's file) and the setting."""
    message = str(exc)
    assert "is outside the folders nodes may" in message, message
    frame_link = exc.where.file and f"'{exc.where.file}' is outside" in message
    assert f"'{typed}' is outside" in message or frame_link, message
    assert "LATENTMIRROR_ROOTS or latentmirror_roots in extra_model_paths.yaml" in message


@pytest.mark.parametrize("node", list(READERS))
@pytest.mark.parametrize(
    ("attempt", "where", "outcome"), READ_CASES, ids=[c[0] for c in READ_CASES]
)
def test_comfyui_reads_only_inside_its_folders(site, node, attempt, where, outcome):
    name, read = READERS[node]
    typed = where(site, name)
    before = folder_state(site.tmp)
    if outcome == "read":
        assert read(typed)
        return
    with pytest.raises(LatentmirrorError) as refused:
        read(typed)
    if outcome == "refused":
        _assert_refused(refused.value, typed)
    else:  # not there: an ordinary error, which may list the folder, inside the roots only
        assert "outside the folders" not in str(refused.value)
    assert MARKER not in str(refused.value)  # no listing of a folder outside the roots
    assert "plate.1001" not in str(refused.value) or outcome == "missing"
    assert folder_state(site.tmp) == before  # no preview, nothing written anywhere


@pytest.mark.parametrize("node", list(WRITERS))
@pytest.mark.parametrize(
    ("attempt", "where", "outcome"), WRITE_CASES, ids=[c[0] for c in WRITE_CASES]
)
def test_comfyui_writes_only_inside_its_folders(site, node, attempt, where, outcome):
    name, write = WRITERS[node]
    typed = where(site, name)
    outside_before = folder_state(site.outside)
    before = folder_state(site.tmp)
    if outcome == "written":
        write(typed)
        new = set(folder_state(site.tmp)) - set(before)
        allowed = (site.output, site.studio, site.yaml_root, site.temp)  # temp: the previews
        assert new and all(any(Path(f).is_relative_to(a) for a in allowed) for f in new), new
        assert any(name.split(".")[0] in Path(f).name for f in new)
    else:
        with pytest.raises(LatentmirrorError) as refused:
            write(typed)
        _assert_refused(refused.value, typed)
        assert folder_state(site.tmp) == before  # nothing written, no folder made, no preview
        assert not (site.tmp / "made_by_prompt").exists() and not (site.tmp / "escape").exists()
    assert folder_state(site.outside) == outside_before


def test_load_latents_reads_what_save_latents_wrote(site):
    """Our own outputs may be read back from output/ (by its absolute path)."""
    written = SaveLatentsNode().save(_latent(), "shot/lat")["ui"]["files"][0]
    assert written == str(site.output / "shot" / "lat.safetensors")
    assert LoadLatentsNode().load(written)[0].frames == [1001, 1002]


def test_a_missing_plate_inside_input_lists_the_folder(site):
    """The near-miss listing still helps where it may: inside the roots."""
    with pytest.raises(LatentmirrorError, match=r"the folder .*files holds: config.ocio"):
        LoadEXRSequence().load("files/plates.####.exr", "", "error")


def test_the_roots_setting_is_read_out_of_comfyuis_model_folders(site):
    """register() takes latentmirror_roots out of folder_paths, so ComfyUI's
    /models/latentmirror_roots does not walk and list the studio's storage."""
    assert "latentmirror_roots" not in comfy_modules_folder_names(site)
    roots = comfyui.ComfyUIHost().path_roots()
    assert str(site.yaml_root) in roots.readable and str(site.studio) in roots.writable
    assert str(site.input) in roots.readable and str(site.input) not in roots.writable


def comfy_modules_folder_names(site) -> set[str]:
    import folder_paths  # the stand-in

    return set(folder_paths.folder_names_and_paths)


def test_is_changed_does_not_fail_on_a_refused_path(site):
    assert LoadLatentsNode.IS_CHANGED("../../outside/lat.safetensors").startswith("missing:")
    assert LoadEXRSequence.IS_CHANGED("../../outside/plate.####.exr").startswith("unreadable:")


# ------------------------------------------------------------------------------ headless


def test_headless_host_is_unrestricted_without_roots(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    host = HeadlessHost(show_progress=False)
    assert host.path_roots() == PathRoots()
    assert host.input_path("../x.exr") == str(tmp_path.parent / "x.exr")
    assert host.output_path("/anywhere/y.exr") == "/anywhere/y.exr"


def _graph(folder: Path, read: str, write: str) -> str:
    graph = {
        "1": {
            "class_type": "LM_LoadEXRSequence",
            "inputs": {"path": read, "frames": "", "missing": "error"},
        },
        "2": {
            "class_type": "LM_SaveEXRSequence",
            "inputs": {
                "images": ["1", 0],
                "plate_info": ["1", 2],
                "path": write,
                "pixel_type": "half",
                "compression": "zip",
                "existing": "error",
            },
        },
    }
    path = folder / "graph.json"
    path.write_text(json.dumps(graph))
    return str(path)


# (attempt, read, write, extra args, expected: "rendered" or the mentions of the refusal)
HEADLESS_CASES = [
    ("no --roots: reads and writes anywhere", "../outside/plate.####.exr",
     "../escape/out.####.exr", [], "rendered"),
    ("--roots: read ../ out of it", "../outside/plate.####.exr", "out/out.####.exr",
     ["--roots", "{work}"], ["'../outside/plate.####.exr' is outside", "--roots"]),
    ("--roots: write ../ out of it", "plates/plate.####.exr", "../escape/out.####.exr",
     ["--roots", "{work}"], ["'../escape/out.####.exr' is outside", "--roots"]),
    ("--roots: a folder link leading out", "link_out/plate.####.exr", "out/out.####.exr",
     ["--roots", "{work}"], ["'link_out/plate.####.exr' is outside", "Load EXR Sequence"]),
    ("--roots with two folders: read the other one", "../outside/plate.####.exr",
     "out/out.####.exr", ["--roots", "{work}" + os.pathsep + "{outside}"], "rendered"),
    ("--roots with --ray: refused, not ignored", "plates/plate.####.exr", "out/out.####.exr",
     ["--roots", "{work}", "--ray", "auto"], ["--roots applies to renders on this machine"]),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("attempt", "read", "write", "extra", "expected"),
    HEADLESS_CASES,
    ids=[c[0] for c in HEADLESS_CASES],
)
def test_headless_render_with_and_without_roots(tmp_path, attempt, read, write, extra, expected):
    work, outside = tmp_path / "work", tmp_path / "outside"
    _fill(work / "plates")
    _fill(outside)
    (outside / MARKER).write_text("private")
    (work / "link_out").symlink_to(outside)
    graph = _graph(work, read, write)
    args = [a.format(work=work, outside=outside) for a in extra]
    before = folder_state(tmp_path)
    result = run_cli("render", graph, "--quiet", *args, cwd=work)
    if expected == "rendered":
        assert result.returncode == 0, result.stderr[-2000:]
        written = set(folder_state(tmp_path)) - set(before)
        target = (work / write).resolve().parent
        assert {str(target / f"out.{f}.exr") for f in (1001, 1002)} == written
        return
    assert_clean_refusal(result, *expected)
    assert MARKER not in result.stderr
    assert folder_state(tmp_path) == before  # nothing written, no folder made
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize(
    "typed, verdict",
    [
        ("files/ok.####.exr", True),
        ("../../escape.####.exr", "outside the folders nodes may write"),
        ("OUTSIDE/x.####.exr", "outside the folders nodes may write"),
        ("files/ok.####.png", "does not end in .exr"),
        ("files/" + "n" * 300 + ".####.exr", "bytes; the file system takes at most"),
    ],
)
def test_comfyui_refuses_a_bad_output_path_when_the_prompt_is_queued(site, typed, verdict):
    """ComfyUI calls VALIDATE_INPUTS before anything runs: the saver's path is refused then,
    not after the inversion (the same checks the headless validator makes)."""
    typed = typed.replace("OUTSIDE", str(site.outside))
    before = folder_state(site.tmp)
    answer = SaveEXRSequence.VALIDATE_INPUTS(path=typed)
    if verdict is True:
        assert answer is True
    else:
        assert isinstance(answer, str) and verdict in answer and "input 'path'" in answer
    assert folder_state(site.tmp) == before  # nothing made, nothing written
    assert "1,000,000 frames" in LoadEXRSequence.VALIDATE_INPUTS(frames="1001-99999999999")
