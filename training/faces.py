"""Procedural faces: the synthetic training data of the bundled demo face generator.

Nothing is downloaded. A face is a :class:`FaceParams` (a few dozen floats and one int), and a
latent ``z`` (standard normal) maps to it deterministically through the normal CDF, so a generator
can be trained to reproduce ``render_face(params_from_latent(z))`` directly from ``z`` (a
regression target converges far faster on a CPU than adversarial training alone).

Drawing uses OpenCV's anti-aliased primitives with sub-pixel coordinates on a canvas
``supersample`` times larger than the output, then one ``INTER_AREA`` downsample; directional
lighting and grain are applied at the output size, where they are cheap.

Which latent dimension drives which parameter (``u = Phi(z[i])`` is uniform in [0, 1]):

====  =================  ==========================================================
dim   parameter          range and meaning
====  =================  ==========================================================
0     head_x             [-0.05, 0.05] horizontal offset of the head (fraction of width)
1     head_y             [-0.04, 0.04] vertical offset of the head
2     head_scale         [0.88, 1.08]
3     head_roll          [-8, 8] degrees of in-plane tilt
4     head_yaw           [-1, 1] features shift sideways (a hint of a turned head)
5     face_width         [0.86, 1.12]
6     face_height        [0.92, 1.08]
7     jaw                [0, 1] oval (0) to square (1) jaw
8     chin               [0, 1] short (0) to long (1) chin
9     skin_tone          [0, 1] very dark (0) to very light (1)
10    skin_warmth        [-1, 1] cool/pink (-1) to warm/olive (1) undertone
11    hair_style         {0 bald, 1 short, 2 long, 3 fringe} (8 %, 37 %, 35 %, 20 %)
12    hair_colour        [0, 1] black, browns, auburn, ginger, blonds, grey, silver
13    hair_length        [0, 1] how far long hair falls / how low short sides reach
14    hair_volume        [0, 1] how far hair stands off the skull
15    eye_spacing        [0.85, 1.15]
16    eye_size           [0.85, 1.2]
17    iris_colour        [0, 1] dark brown, brown, hazel, green, blue, grey
18    gaze_x             [-1, 1] iris offset inside the eye
19    brow_thickness     [0.6, 1.5]
20    brow_height        [-1, 1]
21    brow_tilt          [-1, 1] inner end down (-1, stern) to up (1, worried)
22    nose_length        [0.85, 1.15]
23    nose_width         [0.8, 1.3]
24    mouth_width        [0.8, 1.25]
25    smile              [-0.4, 1] frown (-) to broad smile (1)
26    lip_colour         [0, 1] skin-like (0) to red (1)
27    lip_thickness      [0.7, 1.3]
28    glasses            [0, 1] 0 for about 78 % of z, then a short ramp to 1 (fades in)
29    glasses_shape      [0, 1] round (< 0.45), rectangular (< 0.9), sunglasses (>= 0.9)
30    glasses_colour     [0, 1] black, tortoiseshell, gold, silver, red
31    beard              [0, 1] 0 for about 62 % of z, then stubble to full beard
32    clothing_hue       [0, 1]
33    clothing_value     [0, 1] dark/muted (0) to bright/saturated (1)
34    light_azimuth      [-1, 1] key light from the left (-1) to the right (1)
35    light_strength     [0, 1]
36    background_hue     [0, 1]
37    background_hue2    [0, 1] second colour of the gradient, as a hue offset
38    background_value   [0, 1] dark (0) to light (1)
39    background_grad    [0, 1] flat (0) to a strong gradient (1)
40    background_angle   [0, 1] direction of the gradient (a full turn)
41    grain              [0, 0.02] standard deviation of luminance grain
42    ear_size           [0.8, 1.2]
43    hair_part          [-1, 1] where the hairline peaks: left (-1), centre, right (1)
====  =================  ==========================================================

Every parameter but ``hair_style`` is a continuous function of ``z``, and glasses and beards fade
in from zero, so small changes of ``z`` give small changes of the image except near the
hair-style and glasses-shape thresholds, and the grain (whose seed is a hash of ``z``; render
without grain for a smooth target).

>>> z = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
>>> render_batch(z, size=64).shape
(4, 64, 64, 3)
"""

from __future__ import annotations

import colorsys
import math
import time
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

LATENT_DIMS = 44
"""How many leading dimensions of ``z`` :func:`params_from_latent` reads (any more are ignored)."""

BALD, SHORT, LONG, FRINGE = 0, 1, 2, 3

_HEAD_SCALE = 1.22  # face units to canvas: a head fills the frame like an FFHQ aligned crop
_SHIFT = 3  # OpenCV sub-pixel bits: coordinates are drawn at 1/8 pixel of the canvas
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class FaceParams:
    """Everything :func:`render_face` draws; ranges as in the module docstring table."""

    head_x: float = 0.0
    head_y: float = 0.0
    head_scale: float = 1.0
    head_roll: float = 0.0
    head_yaw: float = 0.0
    face_width: float = 1.0
    face_height: float = 1.0
    jaw: float = 0.5
    chin: float = 0.5
    skin_tone: float = 0.6
    skin_warmth: float = 0.0
    hair_style: int = SHORT
    hair_colour: float = 0.3
    hair_length: float = 0.5
    hair_volume: float = 0.5
    eye_spacing: float = 1.0
    eye_size: float = 1.0
    iris_colour: float = 0.3
    gaze_x: float = 0.0
    brow_thickness: float = 1.0
    brow_height: float = 0.0
    brow_tilt: float = 0.0
    nose_length: float = 1.0
    nose_width: float = 1.0
    mouth_width: float = 1.0
    smile: float = 0.3
    lip_colour: float = 0.5
    lip_thickness: float = 1.0
    glasses: float = 0.0
    glasses_shape: float = 0.3
    glasses_colour: float = 0.0
    beard: float = 0.0
    clothing_hue: float = 0.6
    clothing_value: float = 0.5
    light_azimuth: float = 0.3
    light_strength: float = 0.5
    background_hue: float = 0.55
    background_hue2: float = 0.1
    background_value: float = 0.6
    background_grad: float = 0.5
    background_angle: float = 0.25
    grain: float = 0.01
    ear_size: float = 1.0
    hair_part: float = 0.0
    grain_seed: int = 0


# Ranges of the uniform-to-parameter maps, in the order of the docstring table (dim = position).
# Each entry: (name, low, high). hair_style is handled separately (it is discrete).
_LINEAR_RANGES: tuple[tuple[str, float, float], ...] = (
    ("head_x", -0.05, 0.05),
    ("head_y", -0.04, 0.04),
    ("head_scale", 0.88, 1.08),
    ("head_roll", -8.0, 8.0),
    ("head_yaw", -1.0, 1.0),
    ("face_width", 0.86, 1.12),
    ("face_height", 0.92, 1.08),
    ("jaw", 0.0, 1.0),
    ("chin", 0.0, 1.0),
    ("skin_tone", 0.0, 1.0),
    ("skin_warmth", -1.0, 1.0),
    ("hair_style", 0.0, 1.0),  # placeholder, replaced by _hair_style
    ("hair_colour", 0.0, 1.0),
    ("hair_length", 0.0, 1.0),
    ("hair_volume", 0.0, 1.0),
    ("eye_spacing", 0.85, 1.15),
    ("eye_size", 0.85, 1.2),
    ("iris_colour", 0.0, 1.0),
    ("gaze_x", -1.0, 1.0),
    ("brow_thickness", 0.6, 1.5),
    ("brow_height", -1.0, 1.0),
    ("brow_tilt", -1.0, 1.0),
    ("nose_length", 0.85, 1.15),
    ("nose_width", 0.8, 1.3),
    ("mouth_width", 0.8, 1.25),
    ("smile", -0.4, 1.0),
    ("lip_colour", 0.0, 1.0),
    ("lip_thickness", 0.7, 1.3),
    ("glasses", 0.0, 1.0),  # placeholder, replaced by a short ramp
    ("glasses_shape", 0.0, 1.0),
    ("glasses_colour", 0.0, 1.0),
    ("beard", 0.0, 1.0),  # placeholder, replaced by _ramp
    ("clothing_hue", 0.0, 1.0),
    ("clothing_value", 0.0, 1.0),
    ("light_azimuth", -1.0, 1.0),
    ("light_strength", 0.0, 1.0),
    ("background_hue", 0.0, 1.0),
    ("background_hue2", 0.0, 1.0),
    ("background_value", 0.0, 1.0),
    ("background_grad", 0.0, 1.0),
    ("background_angle", 0.0, 1.0),
    ("grain", 0.0, 0.02),
    ("ear_size", 0.8, 1.2),
    ("hair_part", -1.0, 1.0),
)
assert len(_LINEAR_RANGES) == LATENT_DIMS

PARAM_RANGES: dict[str, tuple[float, float]] = {
    name: (low, high) for name, low, high in _LINEAR_RANGES if name != "hair_style"
}
"""Closed range of every float parameter (for validation and tests)."""

# Cumulative probabilities of bald, short, long (the rest is fringe).
_HAIR_STYLE_CDF = (0.08, 0.45, 0.80)


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Phi(z): standard normal to uniform [0, 1], so every parameter is equally likely anywhere."""
    return np.array([0.5 * (1.0 + math.erf(float(v) / math.sqrt(2.0))) for v in z])


def _ramp(u: float, start: float) -> float:
    """0 below ``start``, rising to 1 at u = 1: optional features that fade in continuously."""
    return float(np.clip((u - start) / (1.0 - start), 0.0, 1.0))


def _hair_style(u: float) -> int:
    """The only discrete parameter: thresholds on one uniform value."""
    return int(np.searchsorted(_HAIR_STYLE_CDF, u, side="right"))


def params_from_latent(z: np.ndarray) -> FaceParams:
    """Map a standard-normal vector (at least :data:`LATENT_DIMS` long) to face parameters.

    Deterministic: the same ``z`` always gives the same parameters (and grain seed).
    """
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    if z.size < LATENT_DIMS:
        raise ValueError(f"z needs at least {LATENT_DIMS} dimensions, got {z.size}")
    u = _normal_cdf(z[:LATENT_DIMS])
    values: dict[str, float | int] = {
        name: low + (high - low) * float(u[i]) for i, (name, low, high) in enumerate(_LINEAR_RANGES)
    }
    values["hair_style"] = _hair_style(float(u[11]))
    # Glasses on about 22 % of faces: a short ramp so they fade in instead of popping.
    values["glasses"] = float(np.clip((u[28] - 0.78) / 0.05, 0.0, 1.0))
    values["beard"] = _ramp(float(u[31]), 0.62)
    # Grain is the one stochastic-looking part; its seed still depends only on z.
    values["grain_seed"] = zlib.crc32(z[:LATENT_DIMS].astype(np.float32).tobytes())
    return FaceParams(**values)


# ----------------------------------------------------------------------------------- colours

# Anchors along each colour axis (RGB 0..255); repeated anchors widen the common shades.
_SKIN = np.array(
    [
        (52, 34, 26),
        (88, 57, 40),
        (128, 86, 60),
        (166, 119, 86),
        (196, 149, 113),
        (218, 174, 142),
        (234, 196, 170),
        (246, 218, 198),
    ],
    np.float64,
)
_HAIR = np.array(
    [
        (22, 18, 16),
        (30, 22, 18),
        (58, 38, 26),
        (84, 55, 36),
        (110, 72, 44),
        (140, 62, 32),
        (186, 96, 48),
        (170, 130, 80),
        (214, 178, 112),
        (232, 206, 150),
        (150, 146, 142),
        (205, 204, 200),
    ],
    np.float64,
)
_IRIS = np.array(
    [
        (50, 30, 18),
        (80, 48, 24),
        (105, 70, 35),
        (115, 100, 50),
        (75, 110, 65),
        (60, 100, 150),
        (95, 130, 165),
        (120, 130, 140),
    ],
    np.float64,
)
_FRAMES = np.array(
    [(20, 20, 22), (20, 20, 22), (95, 55, 30), (200, 165, 80), (185, 188, 192), (150, 30, 40)],
    np.float64,
)


def _lerp_palette(palette: np.ndarray, t: float) -> np.ndarray:
    """Piecewise-linear walk along a palette, t in [0, 1] (continuous, so smooth in z)."""
    x = float(np.clip(t, 0.0, 1.0)) * (len(palette) - 1)
    i = min(int(x), len(palette) - 2)
    f = x - i
    return palette[i] * (1.0 - f) + palette[i + 1] * f


@dataclass(frozen=True)
class _Colours:
    """Every colour of one face, derived once from its parameters (RGB floats 0..255)."""

    skin: np.ndarray
    skin_shadow: np.ndarray
    skin_dark: np.ndarray
    hair: np.ndarray
    brow: np.ndarray
    iris: np.ndarray
    lip: np.ndarray
    beard: np.ndarray
    clothing: np.ndarray
    frame: np.ndarray


def _colours(p: FaceParams) -> _Colours:
    # A mild warp: every anchor stays reachable, the mid and light tones get a little more room.
    skin = _lerp_palette(_SKIN, p.skin_tone**0.8)
    # Undertone: warm adds yellow (less blue), cool adds pink (more red and blue, less green).
    # Scaled by tone: the same shift on dark skin would turn it purple.
    warm = p.skin_warmth * (0.3 + 0.7 * p.skin_tone)
    skin = skin + warm * np.array([2.0, 6.0, -10.0]) + min(warm, 0.0) * np.array([-6.0, 4.0, -2.0])
    skin = np.clip(skin, 0, 255)
    hair = _lerp_palette(_HAIR, p.hair_colour)
    bald = p.hair_style == BALD
    # Brows are darker than the hair (blond people still have visible brows).
    brow = np.minimum(hair * 0.75 + 10, skin * 0.45) if not bald else skin * 0.4
    iris = _lerp_palette(_IRIS, p.iris_colour)
    red = np.array([185.0, 70.0, 80.0]) * (0.45 + 0.55 * p.skin_tone)
    lip = skin * 0.72 * (1 - p.lip_colour) + red * p.lip_colour
    # A beard mixes hair colour into the skin: a faint mix reads as stubble, a full one as beard.
    beard_hair = hair * 0.8 if not bald else np.array([60.0, 45.0, 35.0])
    beard = skin * (1 - 0.85 * p.beard) + beard_hair * 0.85 * p.beard
    clothing = np.array(
        colorsys.hsv_to_rgb(
            p.clothing_hue, 0.1 + 0.5 * p.clothing_value, 0.15 + 0.7 * p.clothing_value
        )
    )
    frame = _lerp_palette(_FRAMES, p.glasses_colour)
    return _Colours(
        skin=skin,
        skin_shadow=skin * 0.82,
        skin_dark=skin * 0.55,
        hair=hair,
        brow=brow,
        iris=iris,
        lip=lip,
        beard=beard,
        clothing=clothing * 255.0,
        frame=frame,
    )


# ----------------------------------------------------------------------------------- geometry


class _Frame:
    """Face units (fractions of the canvas, y down, origin between the eyes) to canvas pixels."""

    __slots__ = ("_matrix", "_offset", "scale")

    def __init__(self, cx: float, cy: float, scale: float, cos: float, sin: float) -> None:
        self.scale = scale
        # One affine map straight to OpenCV's fixed point; +0.5 so truncation rounds.
        self._matrix = np.array([[cos, sin], [-sin, cos]]) * (scale * _ONE)
        self._offset = np.array([cx * _ONE + 0.5, cy * _ONE + 0.5])

    def px(self, xy: np.ndarray) -> np.ndarray:
        """[K, 2] face units to OpenCV's fixed-point int32 [K, 2] (``_SHIFT`` sub-pixel bits)."""
        return (xy @ self._matrix + self._offset).astype(np.int32)

    def fill(self, img: np.ndarray, xy: np.ndarray, colour: np.ndarray) -> None:
        cv2.fillPoly(img, [self.px(xy)], _bgr(colour), cv2.LINE_AA, _SHIFT)

    def line(self, img: np.ndarray, xy: np.ndarray, colour: np.ndarray, width: float) -> None:
        """Open polyline; ``width`` in face units (at least one canvas pixel)."""
        thickness = max(1, int(round(width * self.scale)))
        cv2.polylines(img, [self.px(xy)], False, _bgr(colour), thickness, cv2.LINE_AA, _SHIFT)

    def closed(self, img: np.ndarray, xy: np.ndarray, colour: np.ndarray, width: float) -> None:
        thickness = max(1, int(round(width * self.scale)))
        cv2.polylines(img, [self.px(xy)], True, _bgr(colour), thickness, cv2.LINE_AA, _SHIFT)

    def disc(self, img: np.ndarray, centre: tuple[float, float], r: float, colour) -> None:
        c = self.px(np.array([centre], np.float64))[0]
        radius = int(round(r * self.scale * _ONE))
        cv2.circle(img, (int(c[0]), int(c[1])), radius, _bgr(colour), -1, cv2.LINE_AA, _SHIFT)


def _bgr(colour: np.ndarray) -> tuple[float, float, float]:
    """OpenCV wants a plain tuple; the canvas is RGB, OpenCV does not care about channel order."""
    return (float(colour[0]), float(colour[1]), float(colour[2]))


_UNIT_CIRCLE = {
    n: np.stack(
        [
            np.cos(np.linspace(0, 2 * np.pi, n, endpoint=False)),
            np.sin(np.linspace(0, 2 * np.pi, n, endpoint=False)),
        ],
        axis=1,
    )
    for n in (12, 20, 32)
}


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 20) -> np.ndarray:
    return _UNIT_CIRCLE[n] * (rx, ry) + (cx, cy)


def _arc(cx, cy, rx, ry, start: float, stop: float, n: int = 12) -> np.ndarray:
    """Points on an ellipse from angle ``start`` to ``stop`` (radians, y down)."""
    t = np.linspace(start, stop, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


@dataclass(frozen=True)
class _Layout:
    """Positions of the face's parts in face units, derived once from the parameters."""

    half_width: float  # cheek half-width at the eye line
    top: float  # skull height above the eye line
    bottom: float  # chin depth below the eye line
    jaw_power: float  # superellipse exponent of the lower face (2 oval .. 4 square)
    shift: float  # sideways shift of the features (yaw)
    eye_x: float
    eye_w: float
    mouth_y: float
    nose_y: float


def _layout(p: FaceParams) -> _Layout:
    return _Layout(
        half_width=0.19 * p.face_width,
        top=0.30 * p.face_height,
        bottom=(0.33 + 0.05 * p.chin) * p.face_height,
        jaw_power=2.0 + 2.2 * p.jaw,
        shift=0.018 * p.head_yaw,
        eye_x=0.092 * p.eye_spacing,
        eye_w=0.040 * p.eye_size,
        mouth_y=(0.225 + 0.02 * p.chin) * p.face_height,
        nose_y=0.125 * p.nose_length * p.face_height,
    )


def _face_outline(lay: _Layout, n: int = 16) -> np.ndarray:
    """Skull (half ellipse above the eye line) plus a superellipse lower face down to the chin."""
    top = _arc(0.0, 0.0, lay.half_width, lay.top, np.pi, 2 * np.pi, n)
    s = np.linspace(0.0, 1.0, n)[1:]
    w = lay.half_width * (1.0 - s**lay.jaw_power) ** (1.0 / lay.jaw_power)
    right = np.stack([w, s * lay.bottom], axis=1)
    left = right[::-1] * (-1.0, 1.0)
    return np.concatenate([top, right, left[1:]])


# ------------------------------------------------------------------------------------ drawing


def _background(p: FaceParams, side: int) -> np.ndarray:
    """Flat or gradient background: four corner colours stretched bilinearly over the canvas."""
    value = 0.25 + 0.7 * p.background_value
    sat = 0.1 + 0.35 * (1.0 - p.background_value)
    c1 = np.array(colorsys.hsv_to_rgb(p.background_hue, sat, value))
    hue2 = (p.background_hue + 0.5 * p.background_hue2 - 0.25) % 1.0
    c2 = np.array(colorsys.hsv_to_rgb(hue2, sat, value * (1.0 - 0.5 * p.background_grad)))
    c2 = c1 + (c2 - c1) * p.background_grad
    angle = 2 * np.pi * p.background_angle
    corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float64)
    t = 0.5 + 0.5 * (corners @ (np.cos(angle), np.sin(angle))) / math.sqrt(2)
    grid = (c1[None] * (1 - t[:, None]) + c2[None] * t[:, None]).reshape(2, 2, 3)
    small = np.clip(grid * 255.0, 0, 255).astype(np.float32)
    return cv2.resize(small, (side, side), interpolation=cv2.INTER_LINEAR).astype(np.uint8)


def _draw_body(img, body: _Frame, lay: _Layout, c: _Colours) -> None:
    """Shoulders in clothing colour, a round neckline, and the neck (drawn over long back hair)."""
    body.fill(img, _ellipse(0.0, 0.56, 0.46, 0.2, 32), c.clothing)
    body.fill(img, _ellipse(0.0, 0.37, 0.08, 0.05, 20), c.skin_shadow)


def _draw_neck(img, body: _Frame, lay: _Layout, c: _Colours) -> None:
    w = lay.half_width * 0.55
    neck = np.array([[-w, 0.15], [w, 0.15], [w * 1.1, 0.38], [-w * 1.1, 0.38]])
    body.fill(img, neck, c.skin_shadow)


def _draw_back_hair(img, head: _Frame, p: FaceParams, lay: _Layout, c: _Colours) -> None:
    """Hair behind the head: a cap for every style but bald, plus curtains down for long hair."""
    if p.hair_style == BALD:
        return
    vol = 0.015 + 0.035 * p.hair_volume
    head.fill(
        img, _ellipse(0.0, -0.02, lay.half_width + vol, lay.top + vol * 1.2, 32), c.hair * 0.85
    )
    if p.hair_style == LONG:
        # Hair falling to the shoulders behind the neck, rounded at the ends.
        drop = 0.16 + 0.26 * p.hair_length
        w = lay.half_width + vol + 0.025
        ends = _arc(0.0, drop - 0.08, w, 0.08, 0.0, np.pi, 12)
        curtain = np.concatenate([[[-w, -0.02], [w, -0.02]], ends])
        head.fill(img, curtain, c.hair * 0.8)


def _draw_ears(img, head: _Frame, p: FaceParams, lay: _Layout, c: _Colours) -> None:
    rx, ry = 0.03 * p.ear_size, 0.058 * p.ear_size
    for side in (-1.0, 1.0):
        # Turning the head hides the far ear a little and shows the near one.
        x = side * (lay.half_width + 0.008 - side * lay.shift * 0.5)
        head.fill(img, _ellipse(x, 0.05, rx, ry, 12), c.skin_shadow)
        head.fill(img, _ellipse(x + side * 0.006, 0.05, rx * 0.45, ry * 0.6, 12), c.skin_dark)


def _draw_face(img, head: _Frame, lay: _Layout, c: _Colours) -> None:
    head.fill(img, _face_outline(lay), c.skin)


def _draw_beard(img, head: _Frame, p: FaceParams, lay: _Layout, c: _Colours) -> None:
    """Lower face and moustache in a skin/hair mix (faint = stubble); mouth is drawn over it."""
    if p.beard <= 0.0:
        return
    y0 = lay.nose_y + 0.01
    outline = _face_outline(lay, 16)
    lower = outline[outline[:, 1] >= y0]
    lower = lower[np.argsort(np.arctan2(lower[:, 1], lower[:, 0]))]  # right to left via the chin
    mw = 0.05 * p.mouth_width + 0.012
    upper = np.array(
        [
            [-mw - 0.01, lay.mouth_y - 0.01],
            [-0.02, y0 + 0.005],
            [0.02, y0 + 0.005],
            [mw + 0.01, lay.mouth_y - 0.01],
        ]
    ) + (lay.shift, 0.0)
    head.fill(img, np.concatenate([lower, upper]), c.beard)


def _draw_front_hair(img, head: _Frame, p: FaceParams, lay: _Layout, c: _Colours) -> None:
    """Hair over the forehead between the cap and a hairline curve; fringe hangs lower."""
    if p.hair_style == BALD:
        return
    vol = 0.015 + 0.035 * p.hair_volume
    w, top = lay.half_width + vol, lay.top + vol * 1.2
    cap = _arc(0.0, -0.02, w, top, np.pi * 0.98, np.pi * 2.02, 20)
    xs = np.linspace(w, -w, 17)
    part = 0.6 * p.hair_part * lay.half_width  # the hairline's highest point
    if p.hair_style == FRINGE:
        # A fringe: nearly straight edge just above the brows, with a ragged hem.
        y_mid, y_side = -0.085 - 0.01 * p.hair_length, 0.0
        ys = y_mid + (y_side - y_mid) * (np.abs(xs) / w) ** 4
        ys = ys + 0.006 * np.cos(xs * 160.0)
    else:
        y_mid = -0.17 + 0.02 * p.hair_volume
        y_side = (
            0.0 + 0.06 * p.hair_length if p.hair_style == LONG else -0.03 + 0.04 * p.hair_length
        )
        # Distance from the part, normalised per side, so the curve peaks at the part.
        d = np.where(xs > part, (xs - part) / (w - part), (part - xs) / (w + part))
        ys = y_mid + (y_side - y_mid) * d**1.8
    hairline = np.stack([xs, ys], axis=1)
    head.fill(img, np.concatenate([cap, hairline]), c.hair)
    # A sheen along the crown, on the lit side: makes the cap read as hair, not a helmet.
    sheen_x = 0.35 * p.light_azimuth
    sheen = _arc(
        0.0,
        -0.02,
        w * 0.75,
        top * 0.85,
        np.pi * (1.35 + sheen_x * 0.3),
        np.pi * (1.65 + sheen_x * 0.3),
        6,
    )
    head.line(img, sheen, np.minimum(c.hair * 1.18 + 8, 255), 0.009)
    if p.hair_style == LONG:
        # Side locks that fall past the cheeks and frame the face, tapering to a point.
        drop = 0.14 + 0.26 * p.hair_length
        for side in (-1.0, 1.0):
            x_in, x_out = side * (lay.half_width - 0.025), side * (w + 0.015)
            lock = np.array(
                [
                    [x_in, -0.04],
                    [x_out, -0.06],
                    [x_out + side * 0.01, drop * 0.7],
                    [x_out - side * 0.01, drop],
                    [x_in + side * 0.015, drop * 0.6],
                ]
            )
            head.fill(img, lock, c.hair * 0.95)


def _draw_eye(img, head: _Frame, p: FaceParams, lay: _Layout, c: _Colours, x0: float) -> None:
    """Almond-shaped white, iris and pupil clipped by skin-coloured lids, a dark upper lid line."""
    w, up, low = lay.eye_w, 0.021 * p.eye_size, 0.015 * p.eye_size
    t = np.linspace(0.0, np.pi, 9)
    xs = x0 - w * np.cos(t)
    upper = np.stack([xs, -up * np.sin(t)], axis=1)
    lower = np.stack([xs, low * np.sin(t)], axis=1)[::-1]
    head.fill(img, np.concatenate([upper, lower]), np.array([236.0, 232.0, 226.0]))
    ix = x0 + lay.shift * 0.4 + 0.012 * p.gaze_x * p.eye_size
    r = 0.0165 * p.eye_size
    head.disc(img, (ix, 0.0), r, c.iris)
    head.disc(img, (ix, 0.0), r * 0.45, np.array([12.0, 10.0, 10.0]))
    head.disc(img, (ix - r * 0.35, -r * 0.35), r * 0.22, np.array([250.0, 250.0, 250.0]))
    # Lids: skin-coloured bands above and below the almond hide the iris outside it.
    band = 0.03
    head.fill(img, np.concatenate([upper, upper[::-1] + (0.0, -band)]), c.skin)
    head.fill(img, np.concatenate([lower, lower[::-1] + (0.0, band)]), c.skin)
    head.line(img, upper, np.array([25.0, 20.0, 20.0]), 0.008)


def _draw_brows(img, head: _Frame, p: FaceParams, lay: _Layout, c: _Colours) -> None:
    """Tapered brows: thick at the inner end, arched, tilted by brow_tilt."""
    base = -0.052 - 0.012 * p.brow_height - 0.01 * (p.eye_size - 1.0)
    for side in (-1.0, 1.0):
        s = np.linspace(0.0, 1.0, 8)  # 0 inner end, 1 outer end
        x = lay.shift + side * (lay.eye_x - 0.04 + 0.095 * s)
        arch = -0.012 * np.sin(np.pi * np.clip(s * 1.2, 0, 1))
        y = base + arch - 0.012 * p.brow_tilt * (1.0 - s) + 0.006 * s
        thick = 0.011 * p.brow_thickness * (1.0 - 0.55 * s)
        top = np.stack([x, y - thick / 2], axis=1)
        bottom = np.stack([x, y + thick / 2], axis=1)[::-1]
        head.fill(img, np.concatenate([top, bottom]), c.brow)


def _draw_nose(img, head: _Frame, p: FaceParams, lay: _Layout, c: _Colours) -> None:
    """Shading only, as on real faces at low res: shadow side of the bridge, wings, nostrils."""
    x0, y = lay.shift * 1.6, lay.nose_y
    w = 0.02 * p.nose_width
    # The bridge shadow faces away from the light; clipped ramp, not a sign flip, to stay smooth.
    shade_side = float(np.clip(-4.0 * p.light_azimuth, -1.0, 1.0))
    bridge = np.array([[x0 + shade_side * 0.012, 0.0], [x0 + shade_side * (w * 0.8), y - 0.01]])
    head.line(img, bridge, c.skin_shadow, 0.009)
    head.fill(img, _ellipse(x0, y + 0.004, w * 1.25, 0.017, 20), c.skin_shadow)
    head.fill(img, _ellipse(x0, y - 0.004, w * 0.8, 0.015, 20), c.skin * 1.03)
    for side in (-1.0, 1.0):
        head.fill(img, _ellipse(x0 + side * w * 0.6, y + 0.012, w * 0.35, 0.006, 12), c.skin_dark)


def _draw_mouth(img, head: _Frame, p: FaceParams, lay: _Layout, c: _Colours) -> None:
    """Lips around a mouth line that curves up at the corners with the smile."""
    mw = 0.054 * p.mouth_width
    x = np.linspace(-mw, mw, 13)
    f = 1.0 - (x / mw) ** 2
    line_y = lay.mouth_y - 0.018 * p.smile * (x / mw) ** 2
    cupid = 0.004 * np.exp(-((np.abs(x) - 0.01) ** 2) / 0.00008)  # the two peaks of the bow
    top = line_y - (0.011 * p.lip_thickness * np.sqrt(f) + cupid)
    bottom = line_y + 0.015 * p.lip_thickness * np.sqrt(f) * (1.0 - 0.3 * max(p.smile, 0.0))
    xs = x + lay.shift * 1.2
    line = np.stack([xs, line_y], axis=1)
    head.fill(img, np.concatenate([line, np.stack([xs, bottom], axis=1)[::-1]]), c.lip)
    head.fill(img, np.concatenate([np.stack([xs, top], axis=1), line[::-1]]), c.lip * 0.85)
    head.line(img, line, c.lip * 0.35, 0.006)


def _draw_glasses(img, head: _Frame, p: FaceParams, lay: _Layout, c: _Colours) -> None:
    """Round, rectangular or sun glasses whose frame colour fades in from skin with ``glasses``."""
    if p.glasses <= 0.0:
        return
    frame = c.skin * (1 - p.glasses) + c.frame * p.glasses
    rx, ry = lay.eye_w + 0.018, 0.036 * p.eye_size
    rims = []
    for side in (-1.0, 1.0):
        cx = lay.shift + side * lay.eye_x
        if p.glasses_shape < 0.45:
            rim = _ellipse(cx, 0.0, rx, ry + 0.004, 20)
        else:
            rim = _superellipse(cx, 0.0, rx, ry, 4.0)
        rims.append(rim)
        if p.glasses_shape >= 0.9:
            head.fill(img, rim, c.skin * (1 - p.glasses) + np.array([25.0, 25.0, 30.0]) * p.glasses)
        head.closed(img, rim, frame, 0.008)
        # Temple arm from the rim's outer edge back to the ear.
        arm = np.array([[cx + side * rx, -0.01], [side * (lay.half_width + 0.01), 0.0]])
        head.line(img, arm, frame, 0.007)
    bridge = np.array(
        [
            [lay.shift - lay.eye_x + rx, -0.008],
            [lay.shift, -0.014],
            [lay.shift + lay.eye_x - rx, -0.008],
        ]
    )
    head.line(img, bridge, frame, 0.007)


def _superellipse(cx: float, cy: float, rx: float, ry: float, power: float) -> np.ndarray:
    """A rounded rectangle as a superellipse |x/rx|^p + |y/ry|^p = 1."""
    unit = _UNIT_CIRCLE[20]
    e = 2.0 / power
    pts = np.sign(unit) * np.abs(unit) ** e
    return pts * (rx, ry) + (cx, cy)


# ------------------------------------------------------------------------- lighting and grain

_GRIDS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in canvas fractions, cached per size."""
    if size not in _GRIDS:
        v = (np.arange(size, dtype=np.float32) + 0.5) / size
        _GRIDS[size] = np.meshgrid(v, v)
    return _GRIDS[size]


def _lighting(img: np.ndarray, p: FaceParams, lay: _Layout, head_cx: float, head_cy: float) -> None:
    """Directional light: Lambert shading of an ellipsoid head, plus a soft ramp across the frame.

    Done at output size on the whole image (features included, as real light would), in place.
    """
    size = img.shape[0]
    gx, gy = _grid(size)
    scale = p.head_scale * _HEAD_SCALE
    rx = lay.half_width * scale * 1.15
    ry = 0.5 * (lay.top + lay.bottom) * scale * 1.1
    u = (gx - head_cx) / rx
    v = (gy - (head_cy + 0.5 * (lay.bottom - lay.top) * scale)) / ry
    r2 = u * u + v * v
    nz = np.sqrt(np.maximum(1.0 - r2, 0.0))
    az = 1.0 * p.light_azimuth
    light = (math.sin(az) * 0.9, -0.35, math.cos(az) * 0.9)
    lambert = np.maximum(u * light[0] + v * light[1] + nz * light[2], 0.0)
    mask = np.clip((1.0 - r2) * 4.0, 0.0, 1.0)
    k = 0.15 + 0.45 * p.light_strength
    shade = 1.0 + mask * k * (lambert - 0.8) + 0.25 * k * math.sin(az) * (gx - 0.5) * 2.0
    img *= shade[..., None]


_GRAIN_FIELD: list[np.ndarray] = []


def _grain_field() -> np.ndarray:
    """A fixed 512x512 field of unit Gaussian noise; each face reads a window chosen by its seed
    (drawing fresh noise per face cost more than the rest of the shading)."""
    if not _GRAIN_FIELD:
        rng = np.random.default_rng(20240601)
        _GRAIN_FIELD.append(rng.standard_normal((512, 512), dtype=np.float32))
    return _GRAIN_FIELD[0]


def _add_grain(img: np.ndarray, p: FaceParams) -> None:
    if p.grain <= 0.0:
        return
    field = _grain_field()
    h, w = img.shape[:2]
    if h > field.shape[0] or w > field.shape[1]:
        noise = np.random.default_rng(p.grain_seed).standard_normal((h, w), dtype=np.float32)
    else:
        y = p.grain_seed % (field.shape[0] - h + 1)
        x = (p.grain_seed // 1009) % (field.shape[1] - w + 1)
        noise = field[y : y + h, x : x + w]
    img += noise[..., None] * np.float32(p.grain)


# ---------------------------------------------------------------------------------- public API


def render_face(
    params: FaceParams, size: int = 64, supersample: int = 4, grain: bool = True
) -> np.ndarray:
    """Draw one face: float32 [size, size, 3], display-referred sRGB in [0, 1].

    ``supersample``: the canvas is this many times larger than the output, then area-averaged
    (anti-aliasing for thin features like lids and glasses). ``grain=False`` gives the smooth,
    noise-free target.
    """
    p, lay, c = params, _layout(params), _colours(params)
    side = size * supersample
    img = _background(p, side)
    cx, cy = 0.5 + p.head_x, 0.47 + p.head_y
    ppu = side * p.head_scale * _HEAD_SCALE  # canvas pixels per face unit
    roll = math.radians(p.head_roll)
    head = _Frame(cx * side, cy * side, ppu, math.cos(roll), math.sin(roll))
    body = _Frame(cx * side, cy * side, ppu, 1.0, 0.0)  # the torso does not roll with the head
    _draw_body(img, body, lay, c)
    _draw_back_hair(img, head, p, lay, c)
    _draw_neck(img, body, lay, c)
    _draw_ears(img, head, p, lay, c)
    _draw_face(img, head, lay, c)
    _draw_beard(img, head, p, lay, c)
    _draw_front_hair(img, head, p, lay, c)
    for side_sign in (-1.0, 1.0):
        _draw_eye(img, head, p, lay, c, lay.shift + side_sign * lay.eye_x)
    _draw_brows(img, head, p, lay, c)
    _draw_nose(img, head, p, lay, c)
    _draw_mouth(img, head, p, lay, c)
    _draw_glasses(img, head, p, lay, c)
    if supersample > 1:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    out = img.astype(np.float32) * np.float32(1.0 / 255.0)
    _lighting(out, p, lay, cx, cy)
    if grain:
        _add_grain(out, p)
    return np.clip(out, 0.0, 1.0, out=out)


def render_batch(
    z: np.ndarray, size: int = 64, supersample: int = 4, grain: bool = True
) -> np.ndarray:
    """Render one face per row of ``z`` [N, D]: float32 [N, size, size, 3] in [0, 1]."""
    z = np.asarray(z)
    if z.ndim != 2:
        raise ValueError(f"z must be [N, D], got shape {z.shape}")
    out = np.empty((z.shape[0], size, size, 3), np.float32)
    for i, row in enumerate(z):
        out[i] = render_face(params_from_latent(row), size, supersample, grain)
    return out


def make_grid(images: np.ndarray, columns: int = 8, pad: int = 2) -> np.ndarray:
    """Tile [N, H, W, 3] float images into one uint8 RGB image with ``pad`` white pixels between."""
    n, h, w, _ = images.shape
    rows = -(-n // columns)
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y : y + h, x : x + w] = np.round(np.clip(image, 0, 1) * 255.0).astype(np.uint8)
    return grid


def write_sample_grid(
    path: str, seed: int = 0, rows: int = 8, columns: int = 8, size: int = 64, zoom: int = 2
) -> np.ndarray:
    """Render ``rows * columns`` random faces and save them as a PNG grid (nearest-neighbour zoom,
    so each pixel stays visible for inspection). Returns the grid (uint8 RGB)."""
    z = np.random.default_rng(seed).standard_normal((rows * columns, 64)).astype(np.float32)
    grid = make_grid(render_batch(z, size), columns)
    if zoom > 1:
        grid = cv2.resize(grid, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    if not cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write the sample grid {path}")
    return grid


def measure_speed(count: int = 500, size: int = 64, supersample: int = 4) -> float:
    """Images per second of :func:`render_batch` on this process (single thread)."""
    z = np.random.default_rng(1).standard_normal((count, 64)).astype(np.float32)
    render_batch(z[:8], size, supersample)  # warm caches before timing
    start = time.perf_counter()
    render_batch(z, size, supersample)
    return count / (time.perf_counter() - start)


if __name__ == "__main__":
    import sys

    cv2.setNumThreads(1)
    target = sys.argv[1] if len(sys.argv) > 1 else "faces_grid.png"
    write_sample_grid(target)
    for ss in (4, 3, 2):
        print(f"supersample {ss}: {measure_speed(supersample=ss):.0f} images/s at 64 px")
    print(f"wrote {target}")
