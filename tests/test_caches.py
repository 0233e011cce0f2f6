"""core/caches: every process-wide cache is registered, filled for real and released together."""

from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import latentmirror.core
from latentmirror.core import caches, color, perceptual
from latentmirror.core.gan import cache as gan_cache

from . import gan_fixtures as fx

CORE = Path(latentmirror.core.__path__[0])


def _import_all_core_modules() -> None:
    for info in pkgutil.walk_packages(latentmirror.core.__path__, "latentmirror.core."):
        importlib.import_module(info.name)


def _process_wide_caches() -> dict[str, object]:
    """Module-level caches under core/, found in the source: functions decorated with
    functools.lru_cache / functools.cache, and module-level dicts that start empty (filled at
    run time). Keyed ``module._name`` (relative to core), valued by the object itself."""
    found = {}
    for path in sorted(CORE.rglob("*.py")):
        if path.name == "caches.py":  # the registry itself
            continue
        module_name = ".".join(path.relative_to(CORE).with_suffix("").parts)
        module = importlib.import_module(f"latentmirror.core.{module_name}")
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and any(
                "cache" in ast.unparse(d) for d in node.decorator_list
            ):
                found[f"{module_name}.{node.name}"] = getattr(module, node.name)
            target = value = None
            if isinstance(node, ast.AnnAssign):
                target, value = node.target, node.value
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            empty_dict = isinstance(value, ast.Dict) and not value.keys
            if empty_dict or (isinstance(value, ast.Call) and ast.unparse(value.func) == "dict"):
                found[f"{module_name}.{target.id}"] = getattr(module, target.id)
    return found


def test_every_process_wide_cache_is_registered():
    _import_all_core_modules()
    registered = [cache.holds for cache in caches.registered_caches()]
    found = _process_wide_caches()
    assert found, "the scan finds nothing: it is broken"
    unregistered = [name for name, obj in found.items() if not any(obj is r for r in registered)]
    assert unregistered == [], f"register these with core.caches.register_cache: {unregistered}"
    names = [cache.name for cache in caches.registered_caches()]
    assert {"GAN models", "GAN file hashes", "OCIO configs", "OCIO processors"} <= set(names)
    assert {"LPIPS networks", "reference latents"} <= set(names) and len(names) == len(set(names))


def test_release_models_empties_every_cache(tmp_path):
    G, g_kwargs, _, _ = fx.make_sg2(seed=3)
    path = fx.write_nvlabs_pickle(tmp_path / "tiny.pkl", G, g_kwargs)
    gan_cache.get_model(str(path))
    cfg = color.resolve_config("")
    pixels = np.full((2, 2, 3), 0.18, np.float32)
    color.apply_transform(pixels, cfg, color.scene_linear(cfg), color.default_display_view(cfg))
    perceptual.load_lpips("alex", allow_random_backbone=True)  # pnet_rand: no download
    sizes = {cache.name: cache.size() for cache in caches.registered_caches()}
    for name in ("GAN models", "GAN file hashes", "OCIO configs", "OCIO processors"):
        assert sizes[name] >= 1, name
    assert sizes["LPIPS networks"] >= 1

    released = caches.release_models()

    assert released == sizes
    assert gan_cache.loaded_models() == []
    assert all(cache.size() == 0 for cache in caches.registered_caches())
    assert color._cpu_processor.cache_info().currsize == 0
    assert perceptual.load_lpips("alex", allow_random_backbone=True) is not None  # loads again


def test_register_cache_takes_dicts_and_lru_caches_only():
    @functools.lru_cache
    def square(x: int) -> int:
        return x * x

    table: dict[int, int] = {1: 1}
    square(3)
    caches.register_cache("test square", square)
    caches.register_cache("test table", table)
    try:
        released = caches.release_models()
        assert released["test square"] == 1 and released["test table"] == 1
        assert table == {} and square.cache_info().currsize == 0
    finally:
        caches._CACHES.pop("test square")
        caches._CACHES.pop("test table")
    with pytest.raises(TypeError, match="dict or an lru_cache"):
        caches.register_cache("a list", [])
