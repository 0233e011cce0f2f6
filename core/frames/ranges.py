"""Frame ranges as pipelines spell them, read and written by ``fileseq``'s ``FrameSet``.

Accepted: ``1001``, ``1001-1100``, ``1001-1100x2`` (every 2nd), ``1-10y3`` (all but every 3rd),
``1-10:2`` (interleaved: every 2nd, then the rest), lists (``1001,1003,1010-1020``) and negative
frames (``-5--1``, ``-2-0``).
"""

from __future__ import annotations

import re
from decimal import Decimal

from fileseq import FrameSet, MaxSizeException, ParseException

from ..errors import error

# The most frames one range may name (11 hours at 24 fps): "1001-99999999999" is a typo, and
# listing it would take the process's memory.
MAX_FRAMES = 1_000_000
_EXAMPLES = (
    "expected forms like 1001, 1001-1100, 1001-1100x2, 1-10y3, 1-10:2 or 1001,1003,1010-1020"
)


def parse_frame_range(text: str) -> list[int]:
    """Frames named by ``text``, in the order given, each once.

    >>> parse_frame_range("1001-1005x2, 1010")
    [1001, 1003, 1005, 1010]
    """
    # Split on spaces as well as commas ourselves: FrameSet drops spaces, which would silently
    # turn "1001 1003" into frame 10011003.
    items = [item for item in re.split(r"[,\s]+", text.strip()) if item]
    if not items:
        raise error(f"frame range '{text}' is empty; {_EXAMPLES}")
    frames: list[int] = []
    for item in items:
        frames.extend(_parse_item(item, text))
        if len(frames) > MAX_FRAMES:
            raise error(f"frame range '{text}' names more than {MAX_FRAMES:,} frames")
    return list(dict.fromkeys(frames))


def _parse_item(item: str, text: str) -> list[int]:
    try:
        frame_set = FrameSet(item)
        count = len(frame_set)  # counted before any list of frames is built
    except MaxSizeException:
        count = MAX_FRAMES + 1  # fileseq's own cap is 10 million
    except ParseException as exc:
        reason = str(exc).splitlines()[0]
        raise error(
            f"'{item}' in frame range '{text}' is not a frame range ({reason}); {_EXAMPLES}"
        ) from None
    if count > MAX_FRAMES:
        raise error(
            f"'{item}' in frame range '{text}' names more than {MAX_FRAMES:,} frames; check the "
            "range for a typo"
        )
    frames = list(frame_set)
    if any(isinstance(frame, Decimal) for frame in frames):
        raise error(f"'{item}' in frame range '{text}' has subframes; frames are whole numbers")
    if not frames:
        raise error(f"'{item}' in frame range '{text}' names no frames; {_EXAMPLES}")
    # FrameSet reads 1100-1001 as a countdown; we refuse it (kept from before fileseq): a
    # reversed plate runs time backwards through the warm starts and pre-roll, and in a
    # submitter it is almost always a typo for 1001-1100.
    if frames[0] > frames[-1]:
        raise error(f"'{item}' in frame range '{text}' runs backwards ({frames[0]} > {frames[-1]})")
    return frames


def format_frame_ranges(frames: list[int]) -> str:
    """The frames as one sorted ``FrameSet`` string, for messages, summaries and chunk labels;
    ``parse_frame_range`` reads it back.

    >>> format_frame_ranges([1001, 1002, 1003, 1007, 1009, 1010])
    '1001-1003,1007,1009-1010'
    """
    return FrameSet.framesToFrameRange(sorted(set(frames)), sort=False, compress=False)
