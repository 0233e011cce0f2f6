"""Every docstring example in core/ runs (runnable examples, as in kornia): a stale one fails."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import latentmirror.core


def core_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(latentmirror.core.__path__, "latentmirror.core.")
    )


@pytest.mark.parametrize("name", core_modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"


def test_core_has_runnable_examples():
    """The examples exist (a refactor that drops them all would pass the test above)."""
    attempted = sum(
        doctest.testmod(importlib.import_module(name), verbose=False, report=False).attempted
        for name in core_modules()
    )
    assert attempted >= 20
