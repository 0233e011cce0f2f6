"""Nuke-style frame ranges: ``1001-1100``, ``1001-1100x2``, ``1001,1003,1010-1020``, ``-5--1``."""

from __future__ import annotations

import re

from ..errors import error

_EXAMPLES = "expected forms like 1001, 1001-1100, 1001-1100x2 or 1001,1003,1010-1020"
# one item: a frame, or first-last with an optional step; frames may be negative
_ITEM = re.compile(r"^(-?\d+)(?:-(-?\d+)(?:x(\d+))?)?$")


def parse_frame_range(text: str) -> list[int]:
    """Frames named by ``text``, in the order given, each once.

    >>> parse_frame_range("1001-1005x2, 1010")
    [1001, 1003, 1005, 1010]
    """
    items = [item for item in re.split(r"[,\s]+", text.strip()) if item]
    if not items:
        raise error(f"frame range '{text}' is empty; {_EXAMPLES}")
    frames: list[int] = []
    for item in items:
        frames.extend(_parse_item(item, text))
    return list(dict.fromkeys(frames))


def _parse_item(item: str, text: str) -> range:
    match = _ITEM.match(item)
    if not match:
        raise error(f"'{item}' in frame range '{text}' is not a frame range; {_EXAMPLES}")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    step = int(match.group(3)) if match.group(3) is not None else 1
    if last < first:
        raise error(f"'{item}' in frame range '{text}' runs backwards ({first} > {last})")
    if step < 1:
        raise error(f"'{item}' in frame range '{text}' has step {step}; the step must be >= 1")
    return range(first, last + 1, step)


def format_frame_ranges(frames: list[int]) -> str:
    """The shortest comma list of runs of consecutive frames, for messages and summaries.

    >>> format_frame_ranges([1001, 1002, 1003, 1007, 1009, 1010])
    '1001-1003,1007,1009-1010'
    """
    ordered = sorted(set(frames))
    runs: list[str] = []
    start = prev = None
    for frame in [*ordered, None]:
        if start is not None and (frame is None or frame != prev + 1):
            runs.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if frame is not None and start is None:
            start = frame
        prev = frame
    return ",".join(runs)
