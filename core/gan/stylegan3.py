"""StyleGAN3 generator ("Alias-Free Generative Adversarial Networks", Karras et al. 2021).

A pure-PyTorch re-implementation of the generator in NVlabs' ``training/networks_stylegan3.py``
for configs T (translation equivariant) and R (rotation equivariant), with the same constructor
keyword arguments and ``state_dict`` keys, so an NVlabs pickle's ``init_kwargs`` and state rebuild
it directly. The CUDA ``filtered_lrelu`` kernel is replaced by :func:`filtered_lrelu`, written with
the standard ops of :mod:`.ops`; numerics follow NVlabs' reference (CPU) path in float32.

Structure (for ``img_resolution=R`` and the default 14 layers)::

    z [N, z_dim] --MappingNetwork--> ws [N, 16, w_dim]
    ws[:, 0]  --SynthesisInput--> Fourier features [N, C0, 36, 36]      (for R=1024: 16 + 2*10)
    ws[:, i]  --SynthesisLayer Li--> modulated conv, bias, up-FIR, lrelu, clamp, down-FIR
    ws[:, 15] --ToRGB (L14, 1x1 conv, no activation)--> img [N, img_channels, R, R] * output_scale

StyleGAN3 has no per-pixel noise inputs; ``noise_mode`` is accepted only for API compatibility.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import stylegan2
from .ops import FullyConnectedLayer, bias_act, upfirdn2d

NOISE_MODES = ("random", "const", "none")

# ----------------------------------------------------------------------------------------------
# Functional pieces.


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    padding: int = 0,
    input_gain: torch.Tensor | None = None,
) -> torch.Tensor:
    """StyleGAN3's modulated convolution (differs from StyleGAN2's: weights and styles are always
    pre-normalised when demodulating, and an ``input_gain`` rescales the input channels).

    x: ``[N, C_in, H, W]``; weight: ``[C_out, C_in, k, k]``; styles: ``[N, C_in]``;
    input_gain: scalar, ``[C_in]`` or ``[N, C_in]``. Returns ``[N, C_out, H + 2p - k + 1, ...]``.
    """
    n, c_in = x.shape[:2]
    c_out, _, kh, kw = weight.shape
    if tuple(styles.shape) != (n, c_in) or weight.shape[1] != c_in:
        raise ValueError(
            f"shape mismatch: x {tuple(x.shape)}, weight {tuple(weight.shape)}, "
            f"styles {tuple(styles.shape)}"
        )
    if demodulate:
        # Unit-RMS weights and styles keep the per-sample weights in a sane range (fp16 safety).
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()

    w = weight.unsqueeze(0) * styles.reshape(n, 1, c_in, 1, 1)  # [N, C_out, C_in, k, k]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, C_out]
        w = w * dcoefs.reshape(n, c_out, 1, 1, 1)
    if input_gain is not None:
        w = w * input_gain.expand(n, c_in).reshape(n, 1, c_in, 1, 1)

    # One grouped conv: the batch is folded into channels, one group per sample.
    x = x.reshape(1, n * c_in, *x.shape[2:])
    w = w.reshape(n * c_out, c_in, kh, kw).to(x.dtype)
    x = F.conv2d(x, w, padding=padding, groups=n)
    return x.reshape(n, c_out, *x.shape[2:])


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Sequence[int] = (0, 0, 0, 0),
    gain: float = float(np.sqrt(2)),
    slope: float = 0.2,
    clamp: float | None = None,
) -> torch.Tensor:
    """Alias-free leaky ReLU: bias, upsample with ``fu``, lrelu * gain, clamp, downsample with
    ``fd``. The nonlinearity runs at the higher sampling rate, so the harmonics it creates are
    low-passed away before decimation.

    x: ``[N, C, H, W]``; fu, fd: ``[taps]`` (separable), ``[fh, fw]`` or None (identity);
    padding ``[px0, px1, py0, py1]`` is relative to the upsampled image.
    Returns ``[N, C, (H * up + py0 + py1 - fuh - fdh + 2 + down - 1) // down, ...]``.
    """
    x = bias_act(x, b)
    x = upfirdn2d(x, fu, up=up, padding=list(padding), gain=up**2)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d(x, fd, down=down)


def _kaiser_beta(numtaps: int, width: float) -> float:
    """Kaiser window beta for ``numtaps`` taps and a transition ``width`` (fraction of Nyquist),
    by Kaiser's empirical formulas (as ``scipy.signal.kaiser_atten`` / ``kaiser_beta``)."""
    atten = 2.285 * (numtaps - 1) * np.pi * width + 7.95
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> torch.Tensor | None:
    """Kaiser-windowed low-pass FIR filter, DC gain 1 (float32).

    Separable: a windowed sinc ``[numtaps]`` (equal to ``scipy.signal.firwin(numtaps, cutoff,
    width=width, fs=fs)``). Radial: a windowed jinc ``[numtaps, numtaps]``. ``numtaps == 1`` is
    the identity and returns None (no buffer is stored then).
    """
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return None
    nyquist = fs / 2
    beta = _kaiser_beta(numtaps, width / nyquist)
    window = np.kaiser(numtaps, beta)
    if not radial:
        fc = cutoff / nyquist
        taps = fc * np.sinc(fc * (np.arange(numtaps) - (numtaps - 1) / 2)) * window
        return torch.as_tensor(taps / taps.sum(), dtype=torch.float32)

    # Jinc: the impulse response of an ideal disc-shaped (isotropic) low-pass.
    t = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    # On the CPU even while a network is dry-built on the meta device (read back as numpy).
    r = torch.as_tensor(np.hypot(*np.meshgrid(t, t)), dtype=torch.float64, device="cpu")
    jinc = torch.special.bessel_j1(2 * np.pi * cutoff * r) / (np.pi * r)
    jinc = torch.where(r == 0, torch.full_like(r, cutoff), jinc)  # limit at r = 0
    f = jinc.numpy() * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


# ----------------------------------------------------------------------------------------------
# Modules.


class MappingNetwork(stylegan2.MappingNetwork):
    """StyleGAN3 mapping network: StyleGAN2's with StyleGAN3's defaults (2 layers, w_avg_beta
    0.998) and the class embedding and hidden layers always ``w_dim`` wide. The computation
    (normalised z and embedded c -> MLP -> w, broadcast to ``num_ws``, truncation toward
    ``w_avg``) and the state (``embed.*`` if c_dim > 0, ``fc{i}.*``, ``w_avg``) are the same.
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 2,
        lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.998,
    ):
        super().__init__(
            z_dim, c_dim, w_dim, num_ws, num_layers=num_layers, embed_features=w_dim,
            layer_features=w_dim, lr_multiplier=lr_multiplier, w_avg_beta=w_avg_beta,
        )  # fmt: skip


class SynthesisInput(torch.nn.Module):
    """Fourier-feature input: ``channels`` sinusoids with fixed random frequencies inside a disc
    of radius ``bandwidth``, sampled on a ``size`` grid, then mixed by a learned 1x1 matrix.

    ``affine(w)`` gives a per-sample rotation and translation of the features; the ``transform``
    buffer (3x3, identity by default) is a user-set inverse transform of the output image: set it
    to translate or rotate what the generator draws. Out-of-band frequencies are faded out.

    w: ``[N, w_dim]`` -> ``[N, channels, size_h, size_w]``. State: ``weight [C, C]``,
    ``affine.*`` (w_dim -> 4), buffers ``transform [3, 3]``, ``freqs [C, 2]``, ``phases [C]``.
    """

    def __init__(
        self,
        w_dim: int,
        channels: int,
        size: int | Sequence[int],
        sampling_rate: float,
        bandwidth: float,
    ):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2])  # [width, height]
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth

        # Frequencies: a radially warped Gaussian, which is roughly uniform over the disc.
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand([channels]) - 0.5

        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
        # Zero weights and bias (1, 0, 0, 0): the identity transform until trained.
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def _transforms(self, w: torch.Tensor) -> torch.Tensor:
        """Per-sample inverse transforms ``[N, 3, 3]``: learned rotation, then learned
        translation, then the user ``transform``."""
        t = self.affine(w)  # [N, 4]: (cos, sin, tx, ty), rotation not yet normalised
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        n = w.shape[0]
        eye = torch.eye(3, device=w.device, dtype=t.dtype)
        rot = eye.repeat([n, 1, 1])
        rot[:, 0, 0] = t[:, 0]
        rot[:, 0, 1] = -t[:, 1]
        rot[:, 1, 0] = t[:, 1]
        rot[:, 1, 1] = t[:, 0]
        trans = eye.repeat([n, 1, 1])
        trans[:, 0, 2] = -t[:, 2]
        trans[:, 1, 2] = -t[:, 3]
        return rot @ trans @ self.transform.to(t.dtype).unsqueeze(0)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        w = w.to(torch.float32)
        transforms = self._transforms(w)  # [N, 3, 3]

        # Transforming the sampling grid = transforming frequencies and phases.
        freqs = self.freqs.unsqueeze(0)  # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = freqs @ transforms[:, :2, :2]  # [N, C, 2]

        # Fade frequencies that a rotation/scale pushed beyond the band toward Nyquist.
        amplitudes = (
            1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)
        ).clamp(0, 1)  # [N, C]

        # Pixel-centre coordinates in units of the sampling period: [1, H, W, 2] (x, y).
        width, height = int(self.size[0]), int(self.size[1])
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * width / self.sampling_rate
        theta[1, 1] = 0.5 * height / self.sampling_rate
        grid = F.affine_grid(theta.unsqueeze(0), [1, 1, height, width], align_corners=False)

        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1)[:, None, None]).squeeze(3)  # [N, H, W, C]
        x = torch.sin((x + phases[:, None, None]) * (2 * np.pi))
        x = x * amplitudes[:, None, None]
        x = x @ (self.weight / np.sqrt(self.channels)).t()  # learned channel mixing
        return x.permute(0, 3, 1, 2)  # [N, C, H, W]

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, channels={self.channels}, size={[int(s) for s in self.size]}, "
            f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}"
        )


class SynthesisLayer(torch.nn.Module):
    """One alias-free layer: modulated conv, bias, upsample to ``tmp_sampling_rate``, leaky ReLU,
    clamp, low-pass and downsample to ``out_sampling_rate``. The last layer (``is_torgb``) is a
    1x1 modulated conv without demodulation, filters or activation.

    x: ``[N, in_channels, in_h, in_w]``, w: ``[N, w_dim]`` -> ``[N, out_channels, out_h, out_w]``.
    State: ``affine.*``, ``weight [out, in, k, k]``, ``bias [out]``, buffers ``magnitude_ema []``,
    ``up_filter`` / ``down_filter`` (``[taps]``, radial ``[taps, taps]``; absent when identity).

    ``use_fp16`` is recorded but ignored: we compute in float32 (or the caller's autocast dtype).
    ``magnitude_ema_beta`` only matters for ``update_emas`` (training).
    """

    def __init__(
        self,
        w_dim: int,
        is_torgb: bool,
        is_critically_sampled: bool,
        use_fp16: bool,
        in_channels: int,
        out_channels: int,
        in_size: int | Sequence[int],
        out_size: int | Sequence[int],
        in_sampling_rate: float,
        out_sampling_rate: float,
        in_cutoff: float,
        out_cutoff: float,
        in_half_width: float,
        out_half_width: float,
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        use_radial_filters: bool = False,
        conv_clamp: float | None = 256,
        magnitude_ema_beta: float = 0.999,
    ):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])  # [width, height]
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        # The nonlinearity runs at lrelu_upsampling x the higher of the two rates.
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (
            1 if is_torgb else lrelu_upsampling
        )
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        k = self.conv_kernel
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, k, k]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # Upsampling filter: low-pass at the input cutoff, designed at the temporary rate.
        self.up_factor = self._ratio(self.tmp_sampling_rate, in_sampling_rate)
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        up_filter = design_lowpass_filter(
            self.up_taps, in_cutoff, in_half_width * 2, self.tmp_sampling_rate
        )
        self.register_buffer("up_filter", up_filter)

        # Downsampling filter: low-pass at the output cutoff; radial (config R) unless critical.
        self.down_factor = self._ratio(self.tmp_sampling_rate, out_sampling_rate)
        self.down_taps = (
            filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        )
        self.down_radial = use_radial_filters and not is_critically_sampled
        down_filter = design_lowpass_filter(
            self.down_taps, out_cutoff, out_half_width * 2, self.tmp_sampling_rate,
            radial=self.down_radial,
        )  # fmt: skip
        self.register_buffer("down_filter", down_filter)
        self.padding = self._padding()

    @staticmethod
    def _ratio(high: float, low: float) -> int:
        """Integer resampling factor ``high / low``; the design guarantees it is exact."""
        factor = int(np.rint(high / low))
        if low * factor != high:
            raise ValueError(f"sampling rates {high} and {low} are not integer multiples")
        return factor

    def _padding(self) -> list[int]:
        """``[px0, px1, py0, py1]`` for the upsampled image so the output is exactly
        ``out_size``, with samples placed symmetrically (paper, appendix C.3)."""
        wanted = (self.out_size - 1) * self.down_factor + 1  # size before decimation
        have = (self.in_size + self.conv_kernel - 1) * self.up_factor  # after conv + zero insertion
        total = wanted - have + self.up_taps + self.down_taps - 2  # the filters eat taps - 1 each
        lo = (total + self.up_factor) // 2
        hi = total - lo
        return [int(lo[0]), int(hi[0]), int(lo[1]), int(hi[1])]

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        force_fp32: bool = False,
        update_emas: bool = False,
    ) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        expected = (self.in_channels, int(self.in_size[1]), int(self.in_size[0]))
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"{self.extra_repr()}: expected x [N, *{expected}], got {x.shape}")

        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()  # normalises the input to unit RMS

        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * self.conv_kernel**2))
        x = modulated_conv2d(
            x, self.weight, styles, demodulate=not self.is_torgb, padding=self.conv_kernel - 1,
            input_gain=input_gain,
        )  # fmt: skip
        return filtered_lrelu(
            x, self.up_filter, self.down_filter, self.bias.to(x.dtype),
            up=self.up_factor, down=self.down_factor, padding=self.padding,
            gain=1 if self.is_torgb else float(np.sqrt(2)),
            slope=1 if self.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, is_torgb={self.is_torgb}, "
            f"critical={self.is_critically_sampled}, "
            f"rates={self.in_sampling_rate:g}->{self.tmp_sampling_rate:g}->"
            f"{self.out_sampling_rate:g}, cutoffs={self.in_cutoff:g}->{self.out_cutoff:g}, "
            f"sizes={int(self.in_size[0])}->{int(self.out_size[0])}, "
            f"channels={self.in_channels}->{self.out_channels}"
        )


class SynthesisNetwork(torch.nn.Module):
    """ws ``[N, num_ws, w_dim]`` -> image ``[N, img_channels, img_resolution, img_resolution]``.

    ``num_ws = num_layers + 2`` (input, layers, ToRGB). Cutoffs and stopbands follow a geometric
    progression from ``first_cutoff`` to ``img_resolution / 2``, reached ``num_critical`` layers
    before the end; layers work on ``sampling_rate + 2 * margin_size`` pixels except the last two.
    Layers are named ``L{idx}_{size}_{channels}`` (e.g. ``L0_36_512``), like NVlabs.
    ``num_fp16_res`` is recorded (it sets each layer's ``use_fp16``) but computation is float32.
    """

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_layers: int = 14,
        num_critical: int = 2,
        first_cutoff: float = 2,
        first_stopband: float = 2**2.1,
        last_stopband_rel: float = 2**0.3,
        margin_size: int = 10,
        output_scale: float = 0.25,
        num_fp16_res: int = 4,
        **layer_kwargs,
    ):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res

        # Per-layer cutoff f_c and minimum stopband f_t, geometric from first to last.
        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents

        # Sampling rate: smallest power of two above twice the stopband (capped at the image).
        rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, rates / 2) - cutoffs
        sizes = rates + margin_size * 2
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels

        self.input = SynthesisInput(
            w_dim=w_dim, channels=int(channels[0]), size=int(sizes[0]),
            sampling_rate=rates[0], bandwidth=cutoffs[0],
        )  # fmt: skip
        self.layer_names: list[str] = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim,
                is_torgb=idx == num_layers,
                is_critically_sampled=idx >= num_layers - num_critical,
                use_fp16=bool(rates[idx] * 2**num_fp16_res > img_resolution),
                in_channels=int(channels[prev]),
                out_channels=int(channels[idx]),
                in_size=int(sizes[prev]),
                out_size=int(sizes[idx]),
                in_sampling_rate=int(rates[prev]),
                out_sampling_rate=int(rates[idx]),
                in_cutoff=cutoffs[prev],
                out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev],
                out_half_width=half_widths[idx],
                **layer_kwargs,
            )
            name = f"L{idx}_{int(layer.out_size[0])}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        force_fp32: bool = True,
        update_emas: bool = False,
        noise=None,
    ) -> torch.Tensor:
        """ws: ``[N, num_ws, w_dim]`` -> ``[N, img_channels, R, R]`` float32, roughly in [-1, 1].

        ``noise_mode``, ``force_fp32`` and ``noise`` exist for API compatibility with
        StyleGAN2: StyleGAN3 has no noise inputs and always computes in float32 here.
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:], strict=True):
            x = getattr(self, name)(x, w, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}, num_layers={self.num_layers}, "
            f"num_critical={self.num_critical}, margin_size={self.margin_size}"
        )


class Generator(stylegan2.Generator):
    """StyleGAN3 generator: ``mapping`` (z -> ws) and ``synthesis`` (ws -> image).

    Built from an NVlabs pickle's ``init_kwargs``: ``Generator(z_dim, c_dim, w_dim,
    img_resolution, img_channels, mapping_kwargs={...}, **synthesis_kwargs)``, where
    ``synthesis_kwargs`` also carries the per-layer options (``conv_kernel``,
    ``use_radial_filters``, ``conv_clamp``, ``magnitude_ema_beta``, ...).
    Config T: the defaults; config R: ``conv_kernel=1, use_radial_filters=True`` (and doubled
    channel_base / channel_max).

    z: ``[N, z_dim]``, c: ``[N, c_dim]`` -> ``[N, img_channels, img_resolution, img_resolution]``.
    """

    mapping_network = MappingNetwork
    synthesis_network = SynthesisNetwork
    synthesis_tracks_emas = True
