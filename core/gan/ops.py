"""Pure-PyTorch building blocks shared by the StyleGAN2 and StyleGAN3 networks.

Everything here is written with standard tensor ops (``conv2d``, ``conv_transpose2d``, ``pad``),
so no compiled extension is ever built. The numerics follow the *reference* (non-CUDA) path of
NVlabs' ``torch_utils.ops`` so that weights from NVlabs pickles give the same images:

- ``upfirdn2d``: upsample by zero insertion, pad (or crop), FIR filter, downsample.
- ``bias_act``: bias, activation, gain, clamp, in that order.
- ``conv2d_resample``: convolution fused with FIR up/downsampling, padding applied once.
- ``modulated_conv2d``: StyleGAN2 style modulation/demodulation (one grouped conv per batch, or
  the activations scaled around one shared-weight conv: :func:`prefer_fused_modconv` chooses).

Layers keep the NVlabs parameter names (``weight``, ``bias``, ``resample_filter``) so a pickle's
``state_dict`` loads with ``strict=True``.

Filters follow NVlabs' convention: a 2-D ``[fh, fw]`` tensor (non-separable) or a 1-D ``[taps]``
tensor (separable, applied along x then y). Padding is ``int`` | ``[px, py]`` |
``[px0, px1, py0, py1]``; negative values crop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

Padding = int | Sequence[int]
Scaling = int | Sequence[int]

# ----------------------------------------------------------------------------------------------
# Argument parsing.


def _pair(scaling: Scaling) -> tuple[int, int]:
    """``2`` or ``[sx, sy]`` -> ``(sx, sy)``."""
    if isinstance(scaling, int):
        return scaling, scaling
    sx, sy = scaling
    if not (isinstance(sx, int) and isinstance(sy, int) and sx >= 1 and sy >= 1):
        raise ValueError(f"scaling factors must be positive ints, got {scaling!r}")
    return sx, sy


def _padding4(padding: Padding) -> tuple[int, int, int, int]:
    """``p`` | ``[px, py]`` | ``[px0, px1, py0, py1]`` -> ``(px0, px1, py0, py1)``."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    if len(padding) == 4:
        return tuple(padding)  # type: ignore[return-value]
    raise ValueError(f"padding must have 1, 2 or 4 entries, got {padding!r}")


def _filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """Filter width and height ``(fw, fh)``; ``None`` is the 1x1 identity."""
    if f is None:
        return 1, 1
    if f.ndim not in (1, 2):
        raise ValueError(f"filter must be 1-D or 2-D, got shape {tuple(f.shape)}")
    return int(f.shape[-1]), int(f.shape[0])


# ----------------------------------------------------------------------------------------------
# FIR filtering and resampling.


def setup_filter(
    f: Sequence[float] | np.ndarray | torch.Tensor | None,
    device: torch.device | str | None = None,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """Prepare a FIR filter for :func:`upfirdn2d`.

    A 1-D list becomes its outer product ``[taps, taps]`` unless ``separable`` (default: only for
    8 taps or more, as NVlabs does). ``normalize`` makes the taps sum to 1 (keeps DC), ``gain``
    scales the 2-D response.

    Returns a float32 tensor ``[fh, fw]`` or ``[taps]``.

    >>> setup_filter([1, 3, 3, 1]).shape
    torch.Size([4, 4])
    """
    # On the CPU even while a network is dry-built on the meta device: filters are tiny.
    f = torch.as_tensor(1.0 if f is None else f, dtype=torch.float32, device="cpu").clone()
    if f.ndim == 0:
        f = f[None]
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f"filter must be a non-empty 1-D or 2-D array, got shape {tuple(f.shape)}")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f if device is None else f.to(device=device)


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Scaling = 1,
    down: Scaling = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Upsample, pad, FIR-filter and downsample each channel of a batch of images.

    1. insert ``up - 1`` zeros after every pixel; 2. pad by ``padding`` (negative = crop);
    3. convolve with ``f`` (true convolution unless ``flip_filter``), keeping only outputs whose
    footprint lies inside the padded image; 4. keep every ``down``-th pixel.
    Like ``scipy.signal.upfirdn`` in 2-D.

    x: ``[N, C, H, W]``; f: ``[fh, fw]``, ``[taps]`` or None; returns ``[N, C, H', W']`` with
    ``H' = (H * up + py0 + py1 - fh) // down + 1``.
    """
    if x.ndim != 4:
        raise ValueError(f"expected [N, C, H, W], got shape {tuple(x.shape)}")
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    n, c, h, w = x.shape
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _padding4(padding)

    # Zero insertion: view each pixel as a 1x1 block and pad it to up x up.
    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)

    # Positive padding pads with zeros, negative padding crops.
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]

    # conv2d correlates, so flip the taps to convolve. Striding the conv equals keeping every
    # down-th output of the unstrided one.
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        weight = f[None, None].expand(c, 1, *f.shape)
        return F.conv2d(x, weight, stride=(downy, downx), groups=c)
    taps = f.shape[0]
    x = F.conv2d(x, f.reshape(1, 1, 1, taps).expand(c, 1, 1, taps), stride=(1, downx), groups=c)
    x = F.conv2d(x, f.reshape(1, 1, taps, 1).expand(c, 1, taps, 1), stride=(downy, 1), groups=c)
    return x


def filter2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """FIR-filter images, keeping their size (``padding`` is extra, relative to the output).

    x: ``[N, C, H, W]`` -> ``[N, C, H + py0 + py1, W + px0 + px1]``.
    """
    px0, px1, py0, py1 = _padding4(padding)
    fw, fh = _filter_size(f)
    pad = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain)


def upsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Upsample images by ``up`` with the FIR filter ``f``, keeping DC gain 1.

    x: ``[N, C, H, W]`` -> ``[N, C, H * up, W * up]`` (plus ``padding``, relative to the output).
    """
    upx, upy = _pair(up)
    px0, px1, py0, py1 = _padding4(padding)
    fw, fh = _filter_size(f)
    pad = [
        px0 + (fw + upx - 1) // 2,
        px1 + (fw - upx) // 2,
        py0 + (fh + upy - 1) // 2,
        py1 + (fh - upy) // 2,
    ]
    return upfirdn2d(x, f, up=up, padding=pad, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    down: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Downsample images by ``down`` after low-passing with the FIR filter ``f``.

    x: ``[N, C, H, W]`` -> ``[N, C, H // down, W // down]`` (plus ``padding``, relative to input).
    """
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _padding4(padding)
    fw, fh = _filter_size(f)
    pad = [
        px0 + (fw - downx + 1) // 2,
        px1 + (fw - downx) // 2,
        py0 + (fh - downy + 1) // 2,
        py1 + (fh - downy) // 2,
    ]
    return upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter, gain=gain)


# ----------------------------------------------------------------------------------------------
# Bias and activation.


@dataclass(frozen=True)
class Activation:
    """An activation function with its default slope ``alpha`` and variance-keeping ``gain``."""

    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0),
    "relu": Activation(lambda x, a: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": Activation(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2)),
    "tanh": Activation(lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, a: F.elu(x), 0.0, 1.0),
    "selu": Activation(lambda x, a: F.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, a: F.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2)),
}


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """``clamp(act(x + b, alpha) * gain, -clamp, clamp)``; each step optional.

    x: any shape; b: ``[x.shape[dim]]`` or None. ``alpha``/``gain`` default to the activation's
    own (e.g. lrelu: 0.2 and sqrt(2)). Returns a tensor shaped like ``x``.
    """
    spec = ACTIVATIONS[act]
    alpha = float(spec.def_alpha if alpha is None else alpha)
    gain = float(spec.def_gain if gain is None else gain)
    if b is not None:
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias shape {tuple(b.shape)} does not match dim {dim} of {x.shape}")
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``x`` to unit mean square along ``dim`` (the StyleGAN "pixel norm" of z)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# ----------------------------------------------------------------------------------------------
# Convolution with resampling.


def _conv(
    x: torch.Tensor,
    w: torch.Tensor,
    stride: int = 1,
    padding: Sequence[int] = (0, 0),
    groups: int = 1,
    transpose: bool = False,
    flip_weight: bool = True,
) -> torch.Tensor:
    """Plain (or transposed) conv; ``flip_weight=False`` turns correlation into convolution."""
    if not flip_weight:
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=list(padding), groups=groups)
    return F.conv2d(x, w, stride=stride, padding=list(padding), groups=groups)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
) -> torch.Tensor:
    """Convolution with optional FIR upsampling (before it) or downsampling (after it).

    Equivalent to ``upfirdn2d(up) -> pad -> conv2d -> upfirdn2d(down)`` with ``padding`` taken
    relative to the upsampled image, but computed with strided or transposed convolutions.

    x: ``[N, C_in, H, W]``; w: ``[C_out, C_in // groups, kh, kw]``; f: prepared filter or None.
    Returns ``[N, C_out, H', W']`` (e.g. ``2H`` for up=2 and ``H // 2`` for down=2 with a 3x3
    kernel and padding 1).
    """
    if up < 1 or down < 1:
        raise ValueError(f"up and down must be >= 1, got {up}, {down}")
    c_out, c_in_per_group, kh, kw = w.shape
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _padding4(padding)

    # Extra padding so the FIR filter keeps the image size consistent with the resampling.
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    pad = [px0, px1, py0, py1]

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        # 1x1 conv commutes with filtering: downsample first (cheaper).
        x = upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)

    if kw == 1 and kh == 1 and up > 1 and down == 1:
        # 1x1 conv commutes with filtering: convolve at low resolution, then upsample.
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=pad, gain=up**2, flip_filter=flip_filter)

    if down > 1 and up == 1:
        # Low-pass, then a strided conv does the decimation.
        x = upfirdn2d(x, f, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if up > 1:
        # A stride-`up` transposed conv does zero insertion + conv in one go; the FIR filter then
        # smooths the result. Transposed conv wants weights as [C_in, C_out // groups, kh, kw].
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, c_out // groups, c_in_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * c_in_per_group, c_out // groups, kh, kw)
        px0, px1 = px0 - (kw - 1), px1 - (kw - up)
        py0, py1 = py0 - (kh - 1), py1 - (kh - up)
        # Let the transposed conv crop what it can; the filter's padding does the rest.
        ptx = max(min(-px0, -px1), 0)
        pty = max(min(-py0, -py1), 0)
        x = _conv(
            x, w, stride=up, padding=[pty, ptx], groups=groups, transpose=True,
            flip_weight=not flip_weight,
        )  # fmt: skip
        pad = [px0 + ptx, px1 + ptx, py0 + pty, py1 + pty]
        x = upfirdn2d(x, f, padding=pad, gain=up**2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    # up == down == 1.
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=pad, flip_filter=flip_filter)
    return _conv(x, w, groups=groups, flip_weight=flip_weight)


def prefer_fused_modconv(batch: int, device: torch.device, training: bool = False) -> bool:
    """Whether :func:`modulated_conv2d` should run as one grouped conv (``fused_modconv``).

    Measured on CPU (tests/benchmarks/bench_modconv.py, forward+backward, one thread): the plain
    batched form took 0.68-0.81x of the grouped form's time at 64 and 256 px for batches 1-8, so
    the CPU never fuses. On CUDA the grouped form is kept for a single image at inference (NVlabs'
    choice; tests/benchmarks/gpu_check.sh measures both), the plain one for batches and training.

    >>> prefer_fused_modconv(4, torch.device("cpu"))
    False
    """
    return device.type == "cuda" and batch == 1 and not training


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
) -> torch.Tensor:
    """StyleGAN2 modulated convolution: scale the weight's input channels by ``styles`` per
    sample, optionally renormalise each output channel (demodulation), then convolve.

    x: ``[N, C_in, H, W]``; weight: ``[C_out, C_in, kh, kw]``; styles: ``[N, C_in]``;
    noise: broadcastable to the output, added after demodulation.
    Returns ``[N, C_out, H', W']`` (``H' = 2H`` for up=2).

    ``fused_modconv=True`` runs one grouped conv with per-sample weights; ``False`` scales the
    activations instead (same result, cheaper for large batches).
    """
    n = x.shape[0]
    c_out, c_in, kh, kw = weight.shape
    if x.shape[1] != c_in or tuple(styles.shape) != (n, c_in):
        raise ValueError(
            f"shape mismatch: x {tuple(x.shape)}, weight {tuple(weight.shape)}, "
            f"styles {tuple(styles.shape)}"
        )

    # Pre-normalise in fp16 so the per-sample weights cannot overflow (demod undoes the scale).
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (
            1 / np.sqrt(c_in * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True)
        )
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    w = None
    dcoefs = None
    if demodulate or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, C_out, C_in, kh, kw]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, C_out]
    if demodulate and fused_modconv:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(
            x, weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
            flip_weight=flip_weight,
        )  # fmt: skip
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(n, -1, 1, 1))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        if noise is not None:
            return x + noise.to(x.dtype)
        return x

    # Fold the batch into channels and run one grouped conv, one group per sample.
    x = x.reshape(1, n * c_in, *x.shape[2:])
    w = w.reshape(n * c_out, c_in, kh, kw)
    x = conv2d_resample(
        x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, groups=n,
        flip_weight=flip_weight,
    )  # fmt: skip
    x = x.reshape(n, c_out, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


# ----------------------------------------------------------------------------------------------
# Layers with equalized learning rate.


class FullyConnectedLayer(torch.nn.Module):
    """Linear layer with equalized learning rate: weights are stored unit-variance (divided by
    ``lr_multiplier``) and scaled at run time by ``lr_multiplier / sqrt(in_features)``.

    x: ``[N, in_features]`` -> ``[N, out_features]``. State: ``weight [out, in]``, ``bias [out]``.
    ``weight_init`` scales the initial weights (StyleGAN3 uses it); ``bias_init`` may be a scalar
    or a per-feature array.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1,
        bias_init: float | Sequence[float] | np.ndarray = 0,
        weight_init: float = 1,
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = torch.nn.Parameter(
            torch.randn([out_features, in_features]) * (weight_init / lr_multiplier)
        )
        init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features]).copy()
        self.bias = torch.nn.Parameter(torch.from_numpy(init)) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


class Conv2dLayer(torch.nn.Module):
    """Conv layer with equalized learning rate, optional FIR up/downsampling, bias, activation
    and output clamp.

    x: ``[N, in_channels, H, W]`` -> ``[N, out_channels, H * up // down, W * up // down]``.
    State: ``weight [out, in, k, k]``, ``bias [out]`` (if ``bias``), buffer ``resample_filter``.
    ``channels_last`` and ``trainable`` are accepted for NVlabs compatibility; ``trainable=False``
    stores weight and bias as buffers (same state_dict keys).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
        trainable: bool = True,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation].def_gain

        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        if channels_last:
            weight = weight.to(memory_format=torch.channels_last)
        bias_init = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias_init) if bias_init is not None else None
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", bias_init)

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(
            x, w, f=self.resample_filter, up=self.up, down=self.down, padding=self.padding,
            flip_weight=(self.up == 1),
        )  # fmt: skip
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_channels}, out={self.out_channels}, act={self.activation}, "
            f"up={self.up}, down={self.down}"
        )
