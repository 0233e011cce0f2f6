"""CURVE: a look parameter keyed on the shot's real frame numbers.

A :class:`Curve` is keys (frame, value) with an interpolation per segment between two keys:

- ``constant``: the earlier key's value until the next key (a step);
- ``linear``: a straight line;
- ``smooth``: a cubic Hermite whose slope at each inner key is the Catmull-Rom slope (the line
  through its neighbours, as Nuke's default "smooth"), and 0 at the first and last key (the
  curve flows into the held ends);
- ``ease``: a cubic Hermite with slope 0 at both keys of the segment (ease in and out).

Before the first key and after the last the value is held. Evaluation is in float64 on the
frame number alone, so a frame gets the same value in one pass, in chunks and on any worker.

Text forms :func:`parse_curve` reads (documented in docs/NODES.md, node Curve):

- the pack's compact text: keys ``frame:value`` separated by commas; a word after a key says
  how the curve arrives at that key from the previous one (``1001:0, 1048:1 smooth``); keys
  without a word use the curve's default: ``linear``, or a lone word first
  (``ease, 1001:0, 1024:1, 1048:0``);
- Nuke curve text ``{curve x1001 0 x1048 1}``: ``x<frame>`` gives the next value's frame, values
  without one go on successive frames; the letters K (constant), L (linear), S and C (smooth),
  H (ease) set the interpolation of the keys after them; slopes and tangent weights
  (``s``, ``t``, ``u``, ``v`` followed by a number) are read and ignored (smooth slopes are
  computed as above). Several curves (``{curve ...} {curve ...}``, as a knob with several values
  saves them) are picked by ``column`` (1: the first);
- ``.chan`` / two-column text (frame, then one or more values per line, ``#`` comments):
  ``column`` picks the value (1: the first after the frame); linear between the lines.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import LatentmirrorError, error

INTERPOLATIONS = ("constant", "linear", "smooth", "ease")
NUKE_LETTERS = {"K": "constant", "L": "linear", "S": "smooth", "C": "smooth", "H": "ease"}
CURVE_FILE_EXTENSIONS = (".chan", ".txt", ".csv", ".dat")
IGNORED_NUKE_PREFIXES = ("s", "t", "u", "v")  # slopes and tangent weights
MAX_KEYS = 1_000_000  # a curve file larger than this is not a curve


@dataclass(frozen=True)
class Curve:
    """Keys on frame numbers (strictly increasing, finite) and the interpolation of each
    segment between consecutive keys (``len(frames) - 1`` of them).

    >>> curve = Curve((1001.0, 1011.0), (0.0, 1.0), ("linear",))
    >>> curve(1000), curve(1006), curve(1020)
    (0.0, 0.5, 1.0)
    """

    frames: tuple[float, ...]
    values: tuple[float, ...]
    segments: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.frames or len(self.frames) != len(self.values):
            raise error("a curve needs at least one key, each with a frame and a value")
        if len(self.segments) != len(self.frames) - 1:
            raise error("a curve needs one interpolation per segment between two keys")
        for frame, value in zip(self.frames, self.values, strict=True):
            if not (math.isfinite(frame) and math.isfinite(value)):
                raise error(f"the key {frame}:{value} is not finite: keys must be numbers")
        for before, after in zip(self.frames, self.frames[1:], strict=False):
            if after == before:
                raise error(f"frame {_number(after)} is keyed twice: each frame takes one key")
            if after < before:
                raise error(
                    f"frame {_number(after)} comes after frame {_number(before)}: keys must be "
                    "in increasing frame order"
                )
        for name in self.segments:
            if name not in INTERPOLATIONS:
                raise error(f"unknown interpolation {name!r}; expected one of {INTERPOLATIONS}")

    def __call__(self, frame: float) -> float:
        """The value at ``frame`` (held before the first and after the last key)."""
        frames, values = self.frames, self.values
        frame = float(frame)
        if frame <= frames[0]:
            return values[0]
        if frame >= frames[-1]:
            return values[-1]
        i = _segment_index(frames, frame)
        kind = self.segments[i]
        f0, f1, v0, v1 = frames[i], frames[i + 1], values[i], values[i + 1]
        t = (frame - f0) / (f1 - f0)
        if kind == "constant":
            return v0
        if kind == "linear":
            return v0 + (v1 - v0) * t
        if kind == "ease":
            return _hermite(t, v0, v1, 0.0, 0.0, f1 - f0)
        return _hermite(t, v0, v1, self._slope(i), self._slope(i + 1), f1 - f0)

    def at(self, frames: Iterable[float]) -> list[float]:
        """The values at each of ``frames`` (real frame numbers, never batch positions)."""
        return [self(frame) for frame in frames]

    def weights(self, frames: Sequence[float], device=None):
        """The values at ``frames`` as a float32 torch tensor ``[len(frames)]`` on ``device``: a
        per-frame weight or strength for a batch (torch is imported only here)."""
        import torch

        return torch.tensor(self.at(frames), dtype=torch.float64).float().to(device)

    def _slope(self, i: int) -> float:
        """The Catmull-Rom slope at key ``i`` (value per frame); 0 at the first and last key."""
        if i == 0 or i == len(self.frames) - 1:
            return 0.0
        f, v = self.frames, self.values
        return (v[i + 1] - v[i - 1]) / (f[i + 1] - f[i - 1])

    def describe(self) -> dict:
        """JSON-able and complete: what fingerprints and cache keys hash."""
        return {
            "frames": list(self.frames),
            "values": list(self.values),
            "segments": list(self.segments),
        }

    def summary(self) -> str:
        """One line for a plot's title: keys, range and the interpolations used."""
        kinds = ", ".join(dict.fromkeys(self.segments)) or "one key"
        return (
            f"{len(self.frames)} keys, frames {_number(self.frames[0])}-"
            f"{_number(self.frames[-1])}, {kinds}"
        )


def _segment_index(frames: Sequence[float], frame: float) -> int:
    """The ``i`` with ``frames[i] <= frame < frames[i + 1]`` (binary search)."""
    lo, hi = 0, len(frames) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if frames[mid] <= frame:
            lo = mid
        else:
            hi = mid
    return lo


def _hermite(t: float, v0: float, v1: float, m0: float, m1: float, span: float) -> float:
    """The cubic Hermite through ``v0`` and ``v1`` with slopes ``m0``, ``m1`` per frame."""
    t2, t3 = t * t, t * t * t
    return (
        (2 * t3 - 3 * t2 + 1) * v0
        + (t3 - 2 * t2 + t) * span * m0
        + (-2 * t3 + 3 * t2) * v1
        + (t3 - t2) * span * m1
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# ----------------------------------------------------------------------------------------------
# Reading curves.


def is_curve_file(text: str) -> bool:
    """True when ``text`` names a curve file (one line ending in .chan, .txt, .csv or .dat)."""
    stripped = text.strip()
    return "\n" not in stripped and stripped.lower().endswith(CURVE_FILE_EXTENSIONS)


def parse_curve(text: str, column: int = 1, input_name: str = "keys") -> Curve:
    """A curve from compact text, Nuke curve text or the lines of a ``.chan`` file (see the
    module's docstring); errors name ``input_name``, the token and its position.

    >>> parse_curve("1001:0, 1011:1").at([1001, 1006, 1011])
    [0.0, 0.5, 1.0]
    >>> parse_curve("{curve x1001 0 x1011 1}")(1006)
    0.5
    """
    if not isinstance(text, str) or not text.strip():
        raise error("the curve is empty: give keys such as 1001:0, 1048:1", input=input_name)
    stripped = text.strip()
    if stripped.startswith("{") or stripped.startswith("curve"):
        return _parse_nuke(stripped, column, input_name)
    if _looks_like_chan(stripped):
        return parse_chan(stripped, column, input_name)
    return _parse_compact(stripped, input_name)


def read_curve_file(path: str, column: int = 1, input_name: str = "keys") -> Curve:
    """A curve from a file: Nuke curve text, or ``.chan`` / column lines."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read(64 * 1024 * 1024)
    except FileNotFoundError:
        raise error("no such curve file", input=input_name, file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not text"
        raise error(f"cannot read the curve file ({reason})", input=input_name, file=path) from None
    try:
        if text.lstrip().startswith("{"):
            return _parse_nuke(text.strip(), column, input_name)
        return parse_chan(text, column, input_name)
    except LatentmirrorError as exc:
        raise exc.at(file=path) from None


def file_digest(path: str) -> str:
    """sha256 of a curve file's bytes, or ``missing`` (the read reports why)."""
    try:
        with open(path, "rb") as stream:
            return hashlib.sha256(stream.read()).hexdigest()
    except OSError:
        return "missing"


def _looks_like_chan(text: str) -> bool:
    """Several lines without ``:``, the first with a frame and a value (pasted .chan content;
    one line is read as compact keys)."""
    lines = [_strip_comment(line) for line in text.splitlines()]
    lines = [line for line in lines if line]
    return len(lines) > 1 and ":" not in text and len(_fields(lines[0])) >= 2


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


def _fields(line: str) -> list[str]:
    return [f for f in re.split(r"[\s,;]+", line) if f]


def parse_chan(text: str, column: int = 1, input_name: str = "keys") -> Curve:
    """``.chan`` / two-column lines: frame, then values; ``column`` picks one (1: the first).
    Linear between the lines.

    >>> parse_chan("1 0.0 5\\n3 1.0 7", column=2)(2)
    6.0
    """
    if column < 1:
        raise error(f"column must be 1 or more, got {column}", input="column")
    frames, values = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        if not line:
            continue
        fields = _fields(line)
        if len(fields) < column + 1:
            raise error(
                f"line {number} has {len(fields) - 1} value(s) after the frame; column {column} "
                "needs more",
                input="column" if len(fields) >= 2 else input_name,
            )
        frame = _read_number(fields[0], f"line {number}", input_name)
        value = _read_number(fields[column], f"line {number}", input_name)
        frames.append(frame)
        values.append(value)
        if len(frames) > MAX_KEYS:
            raise error(f"more than {MAX_KEYS} keys: this is not a curve", input=input_name)
    if not frames:
        raise error("the curve file has no keys (no line of frame and values)", input=input_name)
    return _curve(frames, values, ["linear"] * (len(frames) - 1), input_name)


def _parse_compact(text: str, input_name: str) -> Curve:
    items = [(m.start(), m.group().strip()) for m in re.finditer(r"[^,]+", text)]
    items = [(pos, item) for pos, item in items if item]
    default = "linear"
    if items and items[0][1].lower() in INTERPOLATIONS:
        default = items.pop(0)[1].lower()
    frames, values, arrivals = [], [], []
    for position, item in items:
        where = f"at character {position + 1} ('{item}')"
        match = re.fullmatch(r"([^:\s]+)\s*:\s*(\S+)(?:\s+(\S+))?", item)
        if match is None:
            raise error(
                f"cannot read the key {where}; write keys as frame:value, e.g. 1001:0, 1048:1 "
                "smooth",
                input=input_name,
            )
        frame_text, value_text, word = match.groups()
        frames.append(_read_number(frame_text, where, input_name))
        values.append(_read_number(value_text, where, input_name))
        if word is not None and word.lower() not in INTERPOLATIONS:
            raise error(
                f"unknown interpolation '{word}' {where}; use one of {', '.join(INTERPOLATIONS)}",
                input=input_name,
            )
        arrivals.append(word.lower() if word else default)
    if not frames:
        raise error("the curve has no keys; write keys as frame:value", input=input_name)
    return _curve(frames, values, arrivals[1:], input_name)


def _parse_nuke(text: str, column: int, input_name: str) -> Curve:
    bodies = _nuke_bodies(text, input_name)
    if column < 1 or column > len(bodies):
        raise error(
            f"column {column} asks for curve {column} but the text holds {len(bodies)}",
            input="column",
        )
    offset, body = bodies[column - 1]
    frames, values, leaving = [], [], []
    interpolation, next_frame = "smooth", None  # Nuke's default interpolation is smooth
    for match in re.finditer(r"\S+", body):
        token = match.group()
        where = f"at character {offset + match.start() + 1} ('{token}')"
        if token in NUKE_LETTERS:
            interpolation = NUKE_LETTERS[token]
        elif token[0] == "x":
            next_frame = _read_number(token[1:], where, input_name)
        elif token[0] in IGNORED_NUKE_PREFIXES and _is_number(token[1:]):
            continue
        elif _is_number(token):
            if next_frame is None:
                if not frames:
                    raise error(
                        f"the first value {where} has no frame; give it as x<frame> value",
                        input=input_name,
                    )
                next_frame = frames[-1] + 1
            frames.append(next_frame)
            values.append(_read_number(token, where, input_name))
            leaving.append(interpolation)
            next_frame = None
        else:
            raise error(
                f"cannot read {where} in the Nuke curve; expected x<frame>, a value or one of "
                f"the letters {' '.join(NUKE_LETTERS)}",
                input=input_name,
            )
    if not frames:
        raise error("the Nuke curve has no keys", input=input_name)
    return _curve(frames, values, leaving[:-1], input_name)


def _nuke_bodies(text: str, input_name: str) -> list[tuple[int, str]]:
    """The inside of each ``{curve ...}`` (or of a bare ``curve ...``) with its offset."""
    if not text.startswith("{"):
        return [(len("curve"), text[len("curve") :])]
    found = [(m.start(1), m.group(1)) for m in re.finditer(r"\{\s*curve\b([^{}]*)\}", text)]
    rest = re.sub(r"\{\s*curve\b[^{}]*\}", "", text).replace("{", "").replace("}", "").strip()
    if not found or rest:
        shown = rest[:40] or text[:40]
        raise error(
            f"cannot read '{shown}' as Nuke curve text; expected {{curve x1001 0 x1048 1}}",
            input=input_name,
        )
    return found


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_number(text: str, where: str, input_name: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise error(f"'{text}' {where} is not a number", input=input_name) from None
    if not math.isfinite(number):
        raise error(f"'{text}' {where} is not a finite number", input=input_name)
    return number


def _curve(frames, values, segments, input_name: str) -> Curve:
    try:
        return Curve(tuple(frames), tuple(values), tuple(segments))
    except LatentmirrorError as exc:
        raise exc.at(input=input_name) from None
