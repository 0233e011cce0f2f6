"""The public node contract of docs/NODES.md: ids, display names, categories, inputs (types,
choices, defaults), outputs, and the Python API names scripts use. The page is parsed here, so it
cannot drift from the node classes."""

import importlib
import json
import re
from pathlib import Path

import pytest
import torch

import latentmirror
from latentmirror.core.errors import LatentmirrorError
from latentmirror.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from latentmirror.nodes.exr_nodes import LoadEXRSequence, SaveEXRSequence

NODES_MD = Path(__file__).resolve().parent.parent / "docs" / "NODES.md"


def _sections(text: str) -> dict[str, str]:
    """Markdown heading text -> the lines under it (up to the next heading)."""
    sections, heading = {}, ""
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            sections[heading] = ""
        else:
            sections[heading] += line + "\n"
    return sections


def _table(body: str) -> list[dict[str, str]]:
    """The first Markdown table in ``body`` as rows of {column: cell} ([] without one)."""
    rows = [line.strip().strip("|").split("|") for line in body.splitlines() if line[:1] == "|"]
    if not rows:
        return []
    header = [cell.strip() for cell in rows[0]]
    return [dict(zip(header, (cell.strip() for cell in row), strict=True)) for row in rows[2:]]


def _input_type(cell: str):
    """`[a, b]` -> ["a", "b"]; anything else (STRING, IMAGE, COMBO) as written."""
    return [c.strip() for c in cell[1:-1].split(",")] if cell.startswith("[") else cell


def _outputs(cell: str) -> list[tuple[str, str]]:
    """`IMAGE image, MASK mask` -> [(IMAGE, image), (MASK, mask)]; `(writes files)` -> []."""
    return [] if cell.startswith("(") else [tuple(o.split()) for o in cell.split(", ")]


def _read_contract(sections: dict[str, str]) -> dict[str, dict]:
    """Node id -> display name, category, output node, outputs, and inputs as
    {name: (section, type or choices, default or None)}."""
    contract = {}
    for row in _table(sections["Nodes"]):
        node_id = row["id"]
        contract[node_id] = {
            "display": row["display name"],
            "category": row["category"],
            "is_output": row["output node"] == "yes",
            "outputs": _outputs(row["outputs"]),
            "inputs": {
                i["input"]: (
                    i["section"],
                    _input_type(i["type"]),
                    json.loads(i["default"].strip("`")) if i["default"] else None,
                )
                for i in _table(sections.get(node_id, ""))  # no section: no inputs
            },
        }
    return contract


SECTIONS = _sections(NODES_MD.read_text(encoding="utf-8"))
CONTRACT = _read_contract(SECTIONS)
PYTHON_API = re.findall(
    r"from (latentmirror[\w.]*) import ([\w, ]+)", SECTIONS["Python API (stable)"]
)


def kind(spec):
    return list(spec[0]) if isinstance(spec[0], (list, tuple)) else spec[0]


def test_the_page_lists_every_node():
    assert sorted(CONTRACT) == sorted(NODE_CLASS_MAPPINGS)


@pytest.mark.parametrize("node_id", sorted(CONTRACT))
def test_node_matches_contract(node_id):
    expected = CONTRACT[node_id]
    cls = NODE_CLASS_MAPPINGS[node_id]
    assert NODE_DISPLAY_NAME_MAPPINGS[node_id] == expected["display"] == cls.DISPLAY_NAME
    assert cls.CATEGORY == expected["category"]
    types = cls.INPUT_TYPES()
    actual = {
        name: (section, spec)
        for section in ("required", "optional")
        for name, spec in types.get(section, {}).items()
    }
    assert sorted(actual) == sorted(expected["inputs"]), "inputs on the page and in the class"
    for name, (section, input_type, default) in expected["inputs"].items():
        actual_section, spec = actual[name]
        assert actual_section == section, name
        if input_type == "COMBO":  # choices found at run time (files on disk)
            assert isinstance(kind(spec), list), name
        else:
            assert kind(spec) == input_type, name
        assert (spec[1] if len(spec) > 1 else {}).get("default") == default, name
    assert tuple(cls.RETURN_TYPES) == tuple(t for t, _ in expected["outputs"])
    assert tuple(getattr(cls, "RETURN_NAMES", ())) == tuple(n for _, n in expected["outputs"])
    assert bool(getattr(cls, "OUTPUT_NODE", False)) == expected["is_output"]
    assert cls.CATEGORY.split("/")[0] == "latentmirror"
    assert cls.DESCRIPTION and callable(getattr(cls, cls.FUNCTION))
    for section in ("required", "optional"):  # every input has a tooltip
        for name, spec in types.get(section, {}).items():
            assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"


@pytest.mark.parametrize("module, names", PYTHON_API)
def test_python_api_names_on_the_page_exist(module, names):
    imported = importlib.import_module(module)
    for name in names.replace(" ", "").split(","):
        assert callable(getattr(imported, name)), f"{module}.{name}"


def test_the_page_names_the_python_api():
    assert ("latentmirror.core.gan", "load_gan") in PYTHON_API


def test_pack_exports_mappings_lazily():
    assert latentmirror.NODE_CLASS_MAPPINGS is NODE_CLASS_MAPPINGS
    assert latentmirror.NODE_DISPLAY_NAME_MAPPINGS == NODE_DISPLAY_NAME_MAPPINGS
    assert not hasattr(latentmirror, "WEB_DIRECTORY")


def test_load_and_save_nodes_round_trip(plate_factory, tmp_path):
    image, mask, info = LoadEXRSequence().load(plate_factory(), "", "error")
    assert image.dtype == torch.float32 and image.shape == (3, 16, 24, 3)
    assert mask.shape == (3, 16, 24) and image.max() > 1  # scene-linear, not clipped
    out = str(tmp_path / "o" / "o.####.exr")
    result = SaveEXRSequence().save(image, out, "half", "zip", "error", plate_info=info, mask=mask)
    assert len(result["ui"]["files"]) == 3 and result["result"] == ()
    image2, mask2, info2 = LoadEXRSequence().load(out, "", "error")
    assert torch.equal(image2, image) and torch.equal(mask2, mask)
    assert info2.frames == info.frames


def test_node_errors_name_node_and_input(plate_factory):
    with pytest.raises(LatentmirrorError) as caught:
        LoadEXRSequence().load(plate_factory(), "1001-", "error")
    assert caught.value.where.node == "Load EXR Sequence"
    assert "input 'frames'" in str(caught.value)


def test_is_changed_follows_files_on_disk(plate_factory):
    pattern = plate_factory()
    before = LoadEXRSequence.IS_CHANGED(pattern, "")
    assert before == LoadEXRSequence.IS_CHANGED(pattern, "")
    open(pattern.replace("####", "1004"), "wb").write(b"x")
    assert LoadEXRSequence.IS_CHANGED(pattern, "") != before


def test_sample_gan_gives_the_models_faces_by_seed(demo_model):
    from latentmirror.nodes.gan_nodes import SampleGAN

    (first,) = SampleGAN().sample(demo_model, seed=7, count=2, truncation=0.6)
    (again,) = SampleGAN().sample(demo_model, seed=7, count=2, truncation=0.6)
    (other,) = SampleGAN().sample(demo_model, seed=8, count=2, truncation=0.6)
    assert first.shape == (2, 64, 64, 3) and 0 <= first.min() and first.max() <= 1
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize("node_id", sorted(NODE_CLASS_MAPPINGS))
def test_every_node_has_category_description_and_tooltips(node_id):
    cls = NODE_CLASS_MAPPINGS[node_id]
    assert node_id.startswith("LM_") and cls.CATEGORY.split("/")[0] == "latentmirror"
    assert cls.DESCRIPTION and NODE_DISPLAY_NAME_MAPPINGS[node_id] == cls.DISPLAY_NAME
    types = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, spec in types.get(section, {}).items():
            assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
    assert len(getattr(cls, "OUTPUT_TOOLTIPS", cls.RETURN_TYPES)) == len(cls.RETURN_TYPES)
