"""The loss curve of an inversion, drawn as an image (OpenCV only, no matplotlib).

What it shows: one horizontal panel per series of the optimisation history ("small multiples"),
stacked top to bottom and sharing the x axis (the optimisation step). The weighted total comes
first, then each loss term in the order it reported (lpips_vgg, w_prior, noise_reg,
reference_pull_1 ...), and the learning rate (``lr``) last. Every panel has its own y range,
on a log10 scale when the series is positive and spans more than a factor 20 (a loss falling by
decades), linear otherwise, and prints its label with the last and the lowest value. Faint
vertical lines mark the steps where a new frame or batch began. Steps where a term did not
report (NaN) are left out; histories of any length are reduced to at most about two points per
pixel column, keeping each column's minimum and maximum so a single spike still shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.4
BACKGROUND = (255, 255, 255)
GRID = (232, 232, 232)
FRAME = (200, 200, 200)
BOUNDARY = (196, 208, 236)
TEXT = (60, 60, 60)
LR_COLOUR = (110, 110, 110)
# RGB; the total first, then the terms in turn (matplotlib's tab10 order).
PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (188, 189, 34),
    (23, 190, 207),
)
LEFT, RIGHT, TITLE_HEIGHT, TOP, BOTTOM = 62, 14, 22, 6, 26
BOUNDARY_MIN_SPACING = 3  # px on average, else the boundaries are left out
HEADER = 16  # a panel's label strip, above its plot area
PANEL_HEIGHT, MIN_PANEL_HEIGHT = 96, HEADER + 24
MIN_WIDTH = LEFT + RIGHT + 40
Box = tuple[int, int, int, int]  # a panel's plot area: x0, y0, x1, y1
Colour = tuple[int, int, int]
Mapper = Callable[[float], int]  # a step or a value -> a pixel column or row
EMPTY_MESSAGE = "no optimisation steps (cached)"


def loss_curve_image(
    history: dict[str, list[float]],
    width: int = 720,
    height: int | None = None,
    title: str = "",
    boundaries: list[int] | None = None,
) -> np.ndarray:
    """The history drawn as stacked panels; an RGB uint8 image [H, W, 3].

    ``history`` maps a label to one value per step (NaN where a term did not report);
    ``height`` is the whole image's (default: 96 px per panel; grown if too small for the
    panels); ``boundaries`` are the steps where a new frame or batch began.
    """
    if width < MIN_WIDTH:
        raise ValueError(f"a loss plot needs a width of at least {MIN_WIDTH} px, not {width}")
    labels = _ordered_labels(history)
    steps = max((len(history[label]) for label in labels), default=0)
    if steps == 0:
        return _empty_image(width, height, title)
    top = TOP + (TITLE_HEIGHT if title else 0)
    panel = _panel_height(len(labels), height, top)
    image = _canvas(width, max(height or 0, top + panel * len(labels) + BOTTOM))
    if title:
        _text(image, title, (LEFT, TOP + 14), scale=0.5)
    x_ticks = _nice_ticks(0.0, float(max(steps - 1, 1)), 6, min_step=1.0)
    for index, label in enumerate(labels):
        box = (LEFT, top + index * panel + HEADER, width - RIGHT, top + (index + 1) * panel - 4)
        values = np.asarray(history[label], np.float64)
        _draw_panel(image, box, label, values, steps, x_ticks, boundaries or [], index)
    _draw_x_labels(image, box, steps, x_ticks)
    return image


def _ordered_labels(history: dict[str, list[float]]) -> list[str]:
    """``total`` first, the terms in their order, ``lr`` last."""
    first = ["total"] if "total" in history else []
    last = ["lr"] if "lr" in history else []
    return first + [label for label in history if label not in ("total", "lr")] + last


def _panel_height(count: int, height: int | None, top: int) -> int:
    """Each panel's height (label strip included) for ``count`` panels."""
    if height is None:
        return PANEL_HEIGHT
    return max((height - top - BOTTOM) // count, MIN_PANEL_HEIGHT)


def _canvas(width: int, height: int) -> np.ndarray:
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND
    return image


def _empty_image(width: int, height: int | None, title: str) -> np.ndarray:
    """The image for a history without steps (the latents came from the cache)."""
    image = _canvas(width, height or 48)
    if title:
        _text(image, title, (12, 18), scale=0.5)
    _text(image, EMPTY_MESSAGE, (12, image.shape[0] - 14))
    return image


def _draw_panel(
    image: np.ndarray,
    box: Box,
    label: str,
    values: np.ndarray,
    steps: int,
    x_ticks: list[float],
    boundaries: Sequence[int],
    index: int,
) -> None:
    """One series: grid, frame/batch boundaries, the curve and its label line."""
    x0, y0, x1, y1 = box
    scale = _y_scale(values)
    shown = np.log10(values) if scale == "log" else values
    finite = np.isfinite(shown)
    low, high = _y_range(shown[finite])
    to_x = _x_mapper(x0, x1, steps)
    to_y = _y_mapper(y0, y1, low, high)
    y_ticks = _y_ticks(low, high, scale)
    for tick in y_ticks:
        cv2.line(image, (x0, to_y(tick)), (x1, to_y(tick)), GRID, 1)
        _text(image, _format_tick(tick, scale), (4, to_y(tick) + 4), scale=0.33)
    for tick in x_ticks:
        cv2.line(image, (to_x(tick), y0), (to_x(tick), y1), GRID, 1)
    for x in _boundary_columns(boundaries, steps, to_x, x1 - x0):
        cv2.line(image, (x, y0), (x, y1), BOUNDARY, 1)
    cv2.rectangle(image, (x0, y0), (x1, y1), FRAME, 1)
    colour = _colour(label, index)
    _draw_curve(image, shown, finite, to_x, to_y, x1 - x0, colour)
    _text(image, _panel_caption(label, values, scale), (x0 + 2, y0 - 4), colour=colour)


def _boundary_columns(
    boundaries: Sequence[int], steps: int, to_x: Mapper, columns: int
) -> list[int]:
    """Pixel columns of the boundaries; none when they would lie closer than 3 px on average
    (thousands of one-frame batches would only paint the panel)."""
    xs = sorted({to_x(step) for step in boundaries if 0 < step < steps})
    return xs if len(xs) <= columns // BOUNDARY_MIN_SPACING else []


def _draw_curve(
    image: np.ndarray,
    shown: np.ndarray,
    finite: np.ndarray,
    to_x: Mapper,
    to_y: Mapper,
    columns: int,
    colour: Colour,
) -> None:
    """The series as an anti-aliased polyline; a lone point as a dot."""
    if not finite.any():
        return
    steps, values = _decimate(np.flatnonzero(finite), shown[finite], columns)
    points = np.array(
        [(to_x(step), to_y(value)) for step, value in zip(steps, values, strict=True)], np.int32
    )
    if len(points) == 1:
        cv2.circle(image, tuple(int(c) for c in points[0]), 2, colour, -1, cv2.LINE_AA)
    else:
        cv2.polylines(image, [points.reshape(-1, 1, 2)], False, colour, 1, cv2.LINE_AA)


def _draw_x_labels(image: np.ndarray, box: Box, steps: int, x_ticks: list[float]) -> None:
    """Step numbers under the bottom panel."""
    x0, _, x1, y1 = box
    to_x = _x_mapper(x0, x1, steps)
    for tick in x_ticks:
        text = str(int(tick))
        width = cv2.getTextSize(text, FONT, 0.35, 1)[0][0]
        left = min(max(to_x(tick) - width // 2, 0), image.shape[1] - width - 1)
        _text(image, text, (left, y1 + 14), scale=0.35)
    _text(image, "step", (x1 - 28, y1 + 24), scale=0.35)


def _panel_caption(label: str, values: np.ndarray, scale: str) -> str:
    """``lpips_vgg  last 0.213  min 0.201`` (``log`` noted; ``no values`` when all NaN)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return f"{label}  (no values)"
    caption = f"{label}  last {_format_value(finite[-1])}  min {_format_value(finite.min())}"
    return caption + ("  (log scale)" if scale == "log" else "")


def _y_scale(values: Sequence[float] | np.ndarray) -> str:
    """``"log"`` when every finite value is > 0 and they span more than a factor 20."""
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() > 0 and finite.max() > 20 * finite.min():
        return "log"
    return "linear"


def _y_range(values: np.ndarray) -> tuple[float, float]:
    """The plotted range with a little room; constant or empty series get a range around them."""
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-12 * max(abs(low), abs(high), 1e-300):
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.06
    return low - pad, high + pad


def _decimate(steps: np.ndarray, values: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``2 * columns`` points: each bucket's minimum and maximum, in step order."""
    count = len(values)
    if count <= 2 * columns:
        return steps, values
    size = math.ceil(count / columns)
    buckets = math.ceil(count / size)
    padded = np.full(buckets * size, np.nan)
    padded[:count] = values
    rows = padded.reshape(buckets, size)
    valid = ~np.isnan(rows)
    low = np.argmin(np.where(valid, rows, np.inf), axis=1)
    high = np.argmax(np.where(valid, rows, -np.inf), axis=1)
    offsets = np.arange(buckets) * size
    picks = np.stack([np.minimum(low, high), np.maximum(low, high)], axis=1) + offsets[:, None]
    picks = np.unique(picks[valid.any(axis=1)].ravel())
    return steps[picks], values[picks]


def _x_mapper(x0: int, x1: int, steps: int) -> Mapper:
    span = max(steps - 1, 1)
    return lambda step: int(round(x0 + (x1 - x0) * float(step) / span))


def _y_mapper(y0: int, y1: int, low: float, high: float) -> Mapper:
    return lambda value: int(round(y1 - (y1 - y0) * (float(value) - low) / (high - low)))


def _y_ticks(low: float, high: float, scale: str) -> list[float]:
    """Whole decades on a log axis (fewer when there are many), nice numbers on a linear one."""
    if scale == "log":
        decades = list(range(math.ceil(low), math.floor(high) + 1))
        if decades:
            stride = math.ceil(len(decades) / 4)
            return [float(d) for d in decades[::stride]]
    return _nice_ticks(low, high, 3)


def _nice_ticks(low: float, high: float, count: int, min_step: float = 0.0) -> list[float]:
    """Round numbers (1, 2 or 5 times a power of ten apart, at least ``min_step``) within
    [low, high], about ``count`` of them."""
    raw = (high - low) / max(count, 1)
    if not raw > 0 or not math.isfinite(raw):
        return [low]
    power = 10.0 ** math.floor(math.log10(raw))
    step = max(next(m * power for m in (1, 2, 5, 10) if m * power >= raw), min_step)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [i * step for i in range(first, last + 1)]


def _format_tick(tick: float, scale: str) -> str:
    """A y tick's label; on a log axis ticks are exponents (``1e-3``)."""
    if scale == "log":
        return f"1e{round(tick)}" if tick == round(tick) else _format_value(10.0**tick)
    return _format_value(tick)


def _format_value(value: float) -> str:
    return f"{value:.3g}"


def _colour(label: str, index: int) -> Colour:
    if label == "lr":
        return LR_COLOUR
    return PALETTE[index % len(PALETTE)]


def _text(
    image: np.ndarray,
    text: str,
    origin: tuple[int, int],
    scale: float = FONT_SCALE,
    colour: Colour = TEXT,
) -> None:
    cv2.putText(image, text, origin, FONT, scale, colour, 1, cv2.LINE_AA)


def curve_image(
    frames: Sequence[float],
    values: Sequence[float],
    keys: Sequence[tuple[float, float]] = (),
    title: str = "",
    width: int = 480,
    height: int = 220,
) -> np.ndarray:
    """A look parameter's curve over frames (the Curve node's picture): the values as a line,
    the keys as dots, frame numbers along the bottom. An RGB uint8 image [H, W, 3]."""
    top = TOP + (TITLE_HEIGHT if title else 0)
    image = _canvas(width, height)
    if title:
        _text(image, title, (LEFT, TOP + 14), scale=0.45)
    box = (LEFT, top + 6, width - RIGHT, height - BOTTOM)
    x0, y0, x1, y1 = box
    shown = np.asarray(values, np.float64)
    low, high = _y_range(np.concatenate([shown, [v for _, v in keys]]))
    first, last = float(frames[0]), float(frames[-1])
    span = max(last - first, 1.0)

    def to_x(frame: float) -> int:
        return int(round(x0 + (x1 - x0) * (float(frame) - first) / span))

    to_y = _y_mapper(y0, y1, low, high)
    for tick in _nice_ticks(low, high, 4):
        cv2.line(image, (x0, to_y(tick)), (x1, to_y(tick)), GRID, 1)
        _text(image, _format_tick(tick, "linear"), (4, to_y(tick) + 4), scale=0.33)
    for tick in _nice_ticks(first, first + span, 6, min_step=1.0):
        cv2.line(image, (to_x(tick), y0), (to_x(tick), y1), GRID, 1)
        text = str(int(tick))
        left = min(max(to_x(tick) - 12, 0), width - 40)
        _text(image, text, (left, y1 + 14), scale=0.35)
    cv2.rectangle(image, (x0, y0), (x1, y1), FRAME, 1)
    points = np.array([(to_x(f), to_y(v)) for f, v in zip(frames, shown, strict=True)], np.int32)
    cv2.polylines(image, [points.reshape(-1, 1, 2)], False, PALETTE[0], 2, cv2.LINE_AA)
    for frame, value in keys:
        if first <= frame <= first + span:
            cv2.circle(image, (to_x(frame), to_y(value)), 3, PALETTE[1], -1, cv2.LINE_AA)
    _text(image, "frame", (x1 - 34, y1 + 24), scale=0.35)
    return image
