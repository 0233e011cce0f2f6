"""Sequence patterns: where frame numbers sit in file names.

Accepted spellings of the frame number field (each ``#`` or ``@`` is one digit of padding, as in
Nuke and RV):

    plate.####.exr   plate.@@@@.exr   plate.%04d.exr   plate.%d.exr   plate.$F4.exr   plate.$F.exr

A path with no field is a single file; if its name ends in a number (``plate.1001.exr``) that
number is its frame.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import error

# One regex per spelling; group "pad" gives the padding when it is written as a number.
_FIELD = re.compile(r"(?P<hashes>#+)|(?P<ats>@+)|%(?P<printf>0?\d*)d|\$F(?P<houdini>\d*)")
# `plate.1001.exr`, `plate_1001.exr`: a number after a dot or underscore, before the extension
_NUMBERED_FILE = re.compile(r"^(?P<head>.*[._])(?P<digits>\d+)(?P<tail>\.[A-Za-z0-9]+)$")


@dataclass(frozen=True)
class SequencePattern:
    """A file name with one frame number field: ``head`` + frame (zero-padded) + ``tail``.

    ``padding`` 0 means no padding. A single file (no field) has ``single_path`` and
    ``single_frame``: the number its name ends in, or 1.
    """

    head: str
    tail: str
    padding: int
    single_frame: int = 1
    single_path: str | None = None

    @property
    def is_single_file(self) -> bool:
        return self.single_path is not None

    def path_for(self, frame: int) -> str:
        """The file name of ``frame``."""
        if self.single_path is not None:
            return self.single_path
        return f"{self.head}{format_frame(frame, self.padding)}{self.tail}"

    def display(self) -> str:
        """The pattern as a user writes it, with ``#`` padding."""
        if self.single_path is not None:
            return self.single_path
        return f"{self.head}{'#' * max(self.padding, 1)}{self.tail}"

    def frame_of(self, path: str) -> int | None:
        """The frame number of ``path`` if it belongs to this sequence, else None."""
        if self.single_path is not None:
            return self.single_frame if path == self.single_path else None
        name = os.path.basename(path)
        head = os.path.basename(self.head)
        if not (name.startswith(head) and name.endswith(self.tail)):
            return None
        digits = name[len(head) : len(name) - len(self.tail)]
        if not re.fullmatch(r"-?\d+", digits):
            return None
        frame = int(digits)
        # `plate.01001.exr` is not frame 1001 of `plate.####.exr`: the spelling must match exactly.
        return frame if format_frame(frame, self.padding) == digits else None

    def frames_on_disk(self) -> dict[int, str]:
        """Every frame of this sequence that exists on disk, by its real number."""
        if self.single_path is not None:
            if os.path.isfile(self.single_path):
                return {self.single_frame: self.single_path}
            return {}
        directory = os.path.dirname(self.head) or "."
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return {}
        found: dict[int, str] = {}
        for name in names:
            frame = self.frame_of(name)
            if frame is not None:
                found[frame] = os.path.join(os.path.dirname(self.head), name)
        return dict(sorted(found.items()))


def format_frame(frame: int, padding: int) -> str:
    """``format_frame(7, 4) == '0007'``; negative frames keep the sign in front: ``-007``."""
    return f"{frame:0{padding}d}" if padding else str(frame)


def parse_pattern(path: str) -> SequencePattern:
    """Parse a path with one frame field, or a single file (whose trailing number is its frame)."""
    path = os.path.expanduser(str(path).strip())
    if not path:
        raise error("the path is empty; give a pattern such as /shots/sh010/plate.####.exr")
    fields = list(_FIELD.finditer(os.path.basename(path)))
    if len(fields) > 1:
        raise error(f"'{path}' has {len(fields)} frame number fields; a sequence has exactly one")
    if not fields:
        return _single_file(path)
    match = fields[0]
    offset = len(path) - len(os.path.basename(path))
    head, tail = path[: offset + match.start()], path[offset + match.end() :]
    return SequencePattern(head=head, tail=tail, padding=_padding_of(match))


def _padding_of(match: re.Match) -> int:
    if match.group("hashes"):
        return len(match.group("hashes"))
    if match.group("ats"):
        return len(match.group("ats"))
    written = match.group("printf") if match.group("printf") is not None else match.group("houdini")
    return int(written) if written else 0


def _single_file(path: str) -> SequencePattern:
    numbered = _NUMBERED_FILE.match(os.path.basename(path))
    frame = int(numbered.group("digits")) if numbered else 1
    return SequencePattern(head="", tail="", padding=0, single_frame=frame, single_path=path)
