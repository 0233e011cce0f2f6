"""latentmirror: GAN-inversion video manipulation for compositors.

The repository root is both this Python package and the ComfyUI node pack. ComfyUI reads
``NODE_CLASS_MAPPINGS`` and ``NODE_DISPLAY_NAME_MAPPINGS`` from here; they are built on first
access, so ``import latentmirror.core...`` in scripts stays light and never touches ComfyUI.
"""

import importlib

from .core import __version__  # noqa: F401 - defined in core so core never imports the root

# The error types, by the name they show (``latentmirror.LatentmirrorError``, see
# core/errors.py) -> the module that defines them, imported on first use.
ERROR_TYPES = {
    "LatentmirrorError": ".core.errors",
    "WriteFailed": ".core.storage",
    "Interrupted": ".plugin.headless",
}


def __getattr__(name: str):
    if name in ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"):
        from .plugin import comfyui

        return comfyui.register()[name]
    if name in ERROR_TYPES:
        return getattr(importlib.import_module(ERROR_TYPES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
