"""latentmirror: GAN-inversion video manipulation for compositors.

The repository root is both this Python package and the ComfyUI node pack. ComfyUI reads
``NODE_CLASS_MAPPINGS`` and ``NODE_DISPLAY_NAME_MAPPINGS`` from here; they are built on first
access, so ``import latentmirror.core...`` in scripts stays light and never touches ComfyUI.
"""

from .core import __version__  # noqa: F401 - defined in core so core never imports the root


def __getattr__(name: str):
    if name in ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"):
        from .plugin import comfyui

        return comfyui.register()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
