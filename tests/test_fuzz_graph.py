"""Property-based fuzzing of graph JSON in both formats (hypothesis): whatever the file holds,
the loader and the validator either accept it or raise LatentmirrorError, never anything else,
and each example finishes in bounded time. Mutations start from the real templates."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentmirror.core.errors import LatentmirrorError
from latentmirror.plugin.graph import graph_from_json
from latentmirror.plugin.runner import node_classes
from latentmirror.plugin.validate import validate_graph

from .support import IDENTITY

CLASSES = node_classes()
UI_TEMPLATE = json.loads(Path(IDENTITY).read_text(encoding="utf-8"))
API_TEMPLATE = {
    "1": {"class_type": "LM_LoadEXRSequence",
          "inputs": {"path": "p.####.exr", "frames": "1001-1004", "missing": "error"}},
    "2": {"class_type": "LM_OCIOTransform",
          "inputs": {"image": ["1", 0], "src": "ACEScg", "dst": "ACES2065-1",
                     "direction": "forward"}},
    "3": {"class_type": "LM_SaveEXRSequence",
          "inputs": {"images": ["2", 0], "path": "/tmp/lm-fuzz-never-written/o.####.exr",
                     "pixel_type": "half", "compression": "zip", "existing": "skip",
                     "plate_info": ["1", 2], "dwa_level": 45.0}},
}  # fmt: skip
FUZZ = settings(
    max_examples=400, deadline=1000, suppress_health_check=[HealthCheck.too_slow]
)  # about 15 s for the three properties

scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                               max_size=4),
    max_leaves=12,
)  # fmt: skip


def _check(data) -> None:
    """Load and validate: success or LatentmirrorError, nothing else (hypothesis reports it)."""
    try:
        validate_graph(graph_from_json(data, CLASSES), CLASSES, local_paths=False)
    except LatentmirrorError as exc:
        assert str(exc)  # a message, never empty


def _paths(data, prefix=()):
    """Every (path, value) inside nested dicts and lists."""
    yield prefix, data
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(
        data, list) else ()  # fmt: skip
    for key, value in items:
        yield from _paths(value, (*prefix, key))


def _mutated(template, draw_path_index: int, replacement, delete: bool):
    data = copy.deepcopy(template)
    paths = [p for p, _ in _paths(data) if p]
    path = paths[draw_path_index % len(paths)]
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        parent.pop(path[-1])
    else:
        parent[path[-1]] = replacement
    return data


@FUZZ
@given(st.integers(0, 10**6), json_values, st.booleans())
def test_mutated_api_graph_only_raises_latentmirror_error(index, replacement, delete):
    _check(_mutated(API_TEMPLATE, index, replacement, delete))


@FUZZ
@given(st.integers(0, 10**6), json_values, st.booleans())
def test_mutated_ui_graph_only_raises_latentmirror_error(index, replacement, delete):
    _check(_mutated(UI_TEMPLATE, index, replacement, delete))


@FUZZ
@given(json_values)
def test_random_json_only_raises_latentmirror_error(data):
    _check(data)
    _check({"nodes": [data], "links": [data]})
    _check({"1": data})
