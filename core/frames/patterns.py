"""Sequence patterns: where frame numbers sit in file names, read with ``fileseq``.

Accepted spellings of the frame number field (each ``#`` or ``@`` is one digit of padding, as in
Nuke and RV):

    plate.####.exr   plate.@@@@.exr   plate.%04d.exr   plate.%d.exr   plate.$F4.exr   plate.$F.exr

A path with no field is a single file; if its name ends in a number (``plate.1001.exr``,
``plate_1001.exr``) that number is its frame.

Negative frames are written as printf and Nuke write them, the sign counting in the padding
(``-005`` for ``####``); on disk both that and the digits padded behind the sign (``-0005``)
are found, since renderers write either.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

import fileseq
from fileseq import FileSequence, ParseException

from ..caches import register_cache
from ..errors import error

# fileseq's default reads `#` as 4 digits (its HASH4 style); we keep Nuke's and RV's one digit
# per `#`, which our users write and our docs promise, so `plate.#.exr` is frame 7 as `plate.7.exr`.
PAD_STYLE = fileseq.PAD_STYLE_HASH1

# A frame number field anywhere in a name: fileseq only reads one just before the extension, so
# this finds a second field, or one in the middle (`plate.####_v2.exr`), which we also accept.
_FIELD = re.compile(r"#+|@+|%0?\d*d|\$F\d*")
# `plate_1001.exr`: fileseq reads a single file's frame after a dot only; we also read it after _
_UNDERSCORE_NUMBER = re.compile(r"_(?P<digits>\d+)\.[A-Za-z0-9]+$")


@dataclass(frozen=True)
class SequencePattern:
    """A file name with one frame number field: ``head`` + frame (zero-padded) + ``tail``.

    ``padding`` 0 or 1 means no padding. A single file (no field) has ``single_path`` and
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
        return frame if digits in _spellings(frame, self.padding) else None

    def frames_on_disk(self) -> dict[int, str]:
        """Every frame of this sequence that exists on disk, by its real number."""
        if self.single_path is not None:
            if os.path.isfile(self.single_path):
                return {self.single_frame: self.single_path}
            return {}
        folder = os.path.dirname(self.head)
        try:
            names = sorted(os.listdir(folder or "."))
        except FileNotFoundError:
            return {}
        found: dict[int, str] = {}
        for name in names:
            frame = self.frame_of(name)
            path = os.path.join(folder, name)
            # a frame on disk in both spellings: the one we write wins
            if frame is not None and (frame not in found or path == self.path_for(frame)):
                found[frame] = path
        return dict(sorted(found.items()))


def format_frame(frame: int, padding: int) -> str:
    """``format_frame(7, 4) == '0007'``; negative frames keep the sign in front: ``-007``."""
    return fileseq.utils.pad(frame, padding)


def _spellings(frame: int, padding: int) -> tuple[str, ...]:
    """How ``frame`` may be written on disk: ``-007`` (printf, Nuke, fileseq) or ``-0007``."""
    if frame >= 0:
        return (format_frame(frame, padding),)
    return (format_frame(frame, padding), "-" + format_frame(-frame, padding))


def parse_pattern(path: str) -> SequencePattern:
    """Parse a path with one frame field, or a single file (whose trailing number is its frame)."""
    path = os.path.expanduser(str(path).strip())
    if not path:
        raise error("the path is empty; give a pattern such as /shots/sh010/plate.####.exr")
    return _parse_expanded(path)


# fileseq's parser takes milliseconds, and nodes parse the same few patterns again and again
@functools.lru_cache(maxsize=256)
def _parse_expanded(path: str) -> SequencePattern:
    name = os.path.basename(path)
    fields = _FIELD.findall(name)
    if len(fields) > 1:
        raise error(f"'{path}' has {len(fields)} frame number fields; a sequence has exactly one")
    try:
        sequence = FileSequence(path, pad_style=PAD_STYLE, allow_subframes=False)
    except ParseException:
        sequence = None
    if fields and sequence is not None and sequence.padding() == fields[0]:
        if sequence.frameSet() is not None:  # plate.1001-1100#.exr: fileseq's own spelling
            raise error(
                f"'{path}' names frames in its path; write plate.####.exr and give the frames "
                "as a range"
            )
        head = sequence.dirname() + sequence.basename()
        return SequencePattern(head=head, tail=sequence.extension(), padding=sequence.zfill())
    if fields:  # a field inside the name, which fileseq does not read: plate.####_v2.exr
        start = len(path) - len(name) + name.index(fields[0])
        padding = FileSequence.getPaddingNum(fields[0], pad_style=PAD_STYLE)
        return SequencePattern(path[:start], path[start + len(fields[0]) :], padding)
    return _single_file(path, sequence)


register_cache("sequence patterns", _parse_expanded)


def sequence_name(path: str) -> str:
    """The name of the sequence a file belongs to: its file name without the frame number and
    the extension (``obscura.1001.exr``, ``obscura_1001.exr`` and ``obscura.exr`` are all
    ``obscura``), to name what belongs to that sequence (its loss plots).

    >>> sequence_name("/renders/obscura.-005.exr"), sequence_name("out.txt")
    ('obscura', 'out')
    """
    stem = os.path.splitext(os.path.basename(path))[0]
    return re.sub(r"[._]-?\d+$", "", stem) or stem


def _single_file(path: str, sequence: FileSequence | None) -> SequencePattern:
    frames = sequence.frameSet() if sequence is not None else None
    if frames is not None and len(frames) == 1:
        frame = int(frames[0])
    elif numbered := _UNDERSCORE_NUMBER.search(os.path.basename(path)):
        frame = int(numbered.group("digits"))
    else:
        frame = 1
    return SequencePattern(head="", tail="", padding=0, single_frame=frame, single_path=path)
