"""Curve: keys on frame numbers that animate a look parameter (core/curves.py)."""

from __future__ import annotations

from ..core.curves import Curve, file_digest, is_curve_file, parse_curve, read_curve_file
from ..core.errors import LatentmirrorError, context
from ..core.plot import curve_image
from ..host import Host, current_host
from .common import CATEGORY, number_input

PLOT_MARGIN = 0.1  # the plot shows a tenth of the keyed range held before and after the keys
PLOT_SAMPLES = 400


class CurveNode:
    DISPLAY_NAME = "Curve"
    DESCRIPTION = (
        "A value that changes over the shot, keyed on real frame numbers, for the *_curve inputs "
        "of ReferenceBlend (strength), Resynthesize (truncation) and LossMix (weight): wired "
        "there it replaces the number on every frame. Keys as 1001:0, 1048:1 smooth (a word "
        "after a key: how the curve arrives there, constant, linear, smooth or ease; a lone "
        "word first sets the default), Nuke curve text {curve x1001 0 x1048 1}, or a .chan / "
        "two-column file path. Held before the first and after the last key."
    )
    CATEGORY = f"{CATEGORY}/curves"
    FUNCTION = "build"
    RETURN_TYPES = ("CURVE",)
    RETURN_NAMES = ("curve",)
    OUTPUT_TOOLTIPS = ("The curve, read on each frame's own number wherever it is wired.",)
    KEYS_INPUT = "keys"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "keys": (
                    "STRING",
                    {
                        "default": "1001:0, 1048:1 smooth",
                        "multiline": True,
                        "tooltip": "frame:value keys separated by commas, each optionally "
                        "followed by constant, linear (default), smooth or ease; or Nuke curve "
                        "text {curve x1001 0 x1048 1}; or a .chan/.txt/.csv file path (frame, "
                        "then values per line; relative paths start in ComfyUI's input folder).",
                    },
                ),
            },
            "optional": {
                "column": number_input(
                    "INT",
                    1,
                    "Which value of a .chan line (1: the first after the frame), or which curve "
                    "of several in Nuke text.",
                    min=1,
                    max=1000,
                ),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def IS_CHANGED(cls, keys: str, column: int = 1, **_ignored) -> str:
        """An edited .chan file makes ComfyUI run the node again."""
        return f"{keys}\n{column}\n{cls.source_digest({'keys': keys}, current_host())}"

    @classmethod
    def VALIDATE_INPUTS(cls, keys: str = "", column: int = 1) -> bool | str:
        """ComfyUI calls this when a prompt is queued: unreadable keys are refused there."""
        problems = cls.input_problems({"keys": keys, "column": column})
        return True if not problems else "; ".join(str(p) for p in problems)

    @classmethod
    def input_problems(cls, inputs: dict, local_paths: bool = True) -> list[LatentmirrorError]:
        """Keys that do not read (a file is read when the node runs, through the host's roots)."""
        keys, column = inputs.get("keys"), inputs.get("column", 1)
        if not isinstance(keys, str) or is_curve_file(keys):
            return []
        try:
            parse_curve(keys, int(column) if isinstance(column, (int, float)) else 1)
        except LatentmirrorError as exc:
            return [exc]
        return []

    @classmethod
    def source_digest(cls, inputs: dict, host: Host) -> str | None:
        """sha256 of the curve file the keys name (None for typed keys): a frame's fingerprint
        includes it, so an edited .chan re-renders under existing=skip (nodes/provenance.py)."""
        keys = inputs.get("keys")
        if not isinstance(keys, str) or not is_curve_file(keys):
            return None
        try:
            return file_digest(host.input_path(keys.strip()))
        except LatentmirrorError:
            return "refused"  # the node itself says why when it runs

    def build(self, keys: str, column: int = 1, unique_id=None):
        host = current_host()
        with context(node=self.DISPLAY_NAME):
            curve = load_curve(host, keys, int(column))
        shown = []
        if host.wants_previews:  # ComfyUI: the curve drawn on the node
            shown = host.show_plot(_picture(curve), f"curve_{unique_id or 'node'}")
        return {"ui": {"images": shown}, "result": (curve,)} if shown else (curve,)


def load_curve(host: Host, keys: str, column: int = 1) -> Curve:
    """The curve the ``keys`` input gives: typed text, or a file read through the host's roots."""
    if is_curve_file(keys):
        with context(input="keys"):
            path = host.input_path(keys.strip())
        return read_curve_file(path, column)
    return parse_curve(keys, column)


def _picture(curve: Curve):
    first, last = curve.frames[0], curve.frames[-1]
    margin = max((last - first) * PLOT_MARGIN, 1.0)
    start, end = first - margin, last + margin
    frames = [start + (end - start) * i / (PLOT_SAMPLES - 1) for i in range(PLOT_SAMPLES)]
    keys = list(zip(curve.frames, curve.values, strict=True))
    return curve_image(frames, curve.at(frames), keys, title=f"Curve: {curve.summary()}")
