"""StyleGAN2 generator and discriminator in pure PyTorch ("Analyzing and Improving the Image
Quality of StyleGAN", Karras et al. 2020; config F and its ADA variants).

Constructor keyword arguments and ``state_dict`` keys are those of NVlabs' stylegan2-ada-pytorch
(``training/networks.py``) and of the stylegan3 repository's ``training/networks_stylegan2.py``,
so a network pickle's ``init_kwargs`` rebuild these modules and its state loads with
``load_state_dict(strict=True)``.

Shapes: ``z [N, z_dim]``, ``c [N, c_dim]``, ``ws [N, num_ws, w_dim]``, images
``[N, img_channels, R, R]`` in roughly [-1, 1].

Precision: everything runs in float32 by default. Blocks that NVlabs marks ``use_fp16`` (the
``num_fp16_res`` highest resolutions) run in float16 only when ``force_fp32=False`` is passed
*and* the tensors are on CUDA, as in NVlabs' code; ``conv_clamp`` is applied whenever it is set,
in every precision, as NVlabs does.

Only inference-irrelevant arguments are accepted and ignored: ``channels_last`` /
``fp16_channels_last`` (memory layout), ``fused_modconv_default`` (chooses between two
numerically equivalent code paths), ``w_avg_beta`` (only matters when training updates w_avg).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .ops import (
    ACTIVATIONS,
    Conv2dLayer,
    FullyConnectedLayer,
    bias_act,
    downsample2d,
    modulated_conv2d,
    normalize_2nd_moment,
    prefer_fused_modconv,
    setup_filter,
    upsample2d,
)

NoiseInput = Mapping[str, torch.Tensor] | Sequence[torch.Tensor | None] | None


def _block_dtype(use_fp16: bool, force_fp32: bool, device: torch.device) -> torch.dtype:
    """NVlabs runs fp16 blocks in half precision only on CUDA and only when not forced to fp32."""
    if use_fp16 and not force_fp32 and device.type == "cuda":
        return torch.float16
    return torch.float32


def _check_shape(t: torch.Tensor | None, shape: Sequence[int | None], what: str) -> None:
    """Raise if ``t`` does not have ``shape`` (None = any size)."""
    if t is None:
        raise ValueError(f"{what}: expected a tensor of shape {list(shape)}, got None")
    ok = t.ndim == len(shape) and all(
        s is None or s == d for s, d in zip(shape, t.shape, strict=False)
    )
    if not ok:
        raise ValueError(f"{what}: expected shape {list(shape)}, got {list(t.shape)}")


# ----------------------------------------------------------------------------------------------
# Mapping network.


class MappingNetwork(torch.nn.Module):
    """z (and the class label c) -> w, broadcast to ``num_ws`` copies, with truncation.

    State: ``embed.*`` (if c_dim > 0), ``fc0.*`` ... ``fc{num_layers-1}.*``, ``w_avg [w_dim]``
    (if num_ws is not None and w_avg_beta is not None).
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta

        embed_features = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]

        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            layer = FullyConnectedLayer(
                features[i], features[i + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{i}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        skip_w_avg_update: bool = True,
    ) -> torch.Tensor:
        """z: ``[N, z_dim]``, c: ``[N, c_dim]`` -> ws ``[N, num_ws, w_dim]`` (``[N, w_dim]``
        when num_ws is None).

        Truncation moves w toward ``w_avg``: ``w_avg + psi * (w - w_avg)``, for the first
        ``truncation_cutoff`` layers only when a cutoff is given. ``w_avg`` is updated (with
        ``w_avg_beta``) only when ``update_emas`` is true or, as in stylegan2-ada, when training
        with ``skip_w_avg_update=False``.
        """
        x = None
        if self.z_dim > 0:
            _check_shape(z, [None, self.z_dim], "z")
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            _check_shape(c, [None, self.c_dim], "c")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y

        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)

        tracking = self.num_ws is not None and self.w_avg_beta is not None
        if tracking and (update_emas or (self.training and not skip_w_avg_update)):
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])

        if truncation_psi != 1:
            if not hasattr(self, "w_avg"):
                raise ValueError("truncation needs w_avg, which this mapping network lacks")
            w_avg = self.w_avg.to(x.dtype)
            if self.num_ws is None or truncation_cutoff is None:
                x = w_avg.lerp(x, truncation_psi)
            else:
                head = w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
                x = torch.cat([head, x[:, truncation_cutoff:]], dim=1)
        return x

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


# ----------------------------------------------------------------------------------------------
# Synthesis network.


class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 conv (optionally 2x upsampling) + noise + bias + activation.

    x: ``[N, in_channels, R / up, R / up]``, w: ``[N, w_dim]`` -> ``[N, out_channels, R, R]``.
    State: ``affine.*``, ``weight``, ``bias``, ``noise_const [R, R]`` and ``noise_strength []``
    (if use_noise), buffer ``resample_filter``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,  # memory layout only; ignored
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation].def_gain

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        )
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool = True,
        gain: float = 1,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``noise`` (broadcastable to ``[N, 1, R, R]``) replaces the noise map when given; it is
        scaled by ``noise_strength`` like ``noise_const`` is."""
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        size = self.resolution // self.up
        _check_shape(x, [None, self.in_channels, size, size], "SynthesisLayer input")
        styles = self.affine(w)

        noise_map = None
        if self.use_noise:
            if noise is not None:
                noise_map = noise.to(x.device) * self.noise_strength
            elif noise_mode == "random":
                shape = [x.shape[0], 1, self.resolution, self.resolution]
                noise_map = torch.randn(shape, device=x.device) * self.noise_strength
            elif noise_mode == "const":
                noise_map = self.noise_const * self.noise_strength

        x = modulated_conv2d(
            x, self.weight, styles, noise=noise_map, up=self.up, padding=self.padding,
            resample_filter=self.resample_filter, flip_weight=(self.up == 1),
            fused_modconv=fused_modconv,
        )  # fmt: skip
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        bias = self.bias.to(x.dtype)
        return bias_act(x, bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_channels}, out={self.out_channels}, w_dim={self.w_dim}, "
            f"resolution={self.resolution}, up={self.up}, act={self.activation}"
        )


class ToRGBLayer(torch.nn.Module):
    """Modulated 1x1 conv (no demodulation) to image channels.

    x: ``[N, in_channels, R, R]``, w: ``[N, w_dim]`` -> ``[N, out_channels, R, R]``.
    State: ``affine.*``, ``weight [out, in, k, k]``, ``bias [out]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
        channels_last: bool = False,  # memory layout only; ignored
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        )
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return f"in={self.in_channels}, out={self.out_channels}, w_dim={self.w_dim}"


class SynthesisBlock(torch.nn.Module):
    """One resolution of the synthesis network: (const | 2x-upsampling conv0) -> conv1 -> toRGB.

    architecture: ``'skip'`` (every block adds its toRGB to the upsampled image), ``'resnet'``
    (a 1x1 upsampling skip conv around conv0/conv1; toRGB only in the last block) or ``'orig'``
    (plain; toRGB only in the last block).

    x: ``[N, in_channels, R/2, R/2]`` (None for the 4x4 block), img: ``[N, C_img, R/2, R/2]`` or
    None, ws: ``[N, num_conv + num_torgb, w_dim]`` -> x ``[N, out_channels, R, R]``, img
    ``[N, C_img, R, R]`` (None while no toRGB has run yet).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,  # memory layout only; ignored
        fused_modconv_default: bool | str = True,  # equivalent code paths; ignored
        **layer_kwargs,
    ):
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(
                f"architecture must be 'orig', 'skip' or 'resnet', not {architecture!r}"
            )
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs,
            )  # fmt: skip
            self.num_conv += 1
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, w_dim=w_dim, resolution=resolution,
            conv_clamp=conv_clamp, **layer_kwargs,
        )  # fmt: skip
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels, out_channels, kernel_size=1, bias=False, up=2,
                resample_filter=resample_filter,
            )  # fmt: skip

    def noise_layers(self) -> dict[str, SynthesisLayer]:
        """This block's layers that take noise, by attribute name (``conv0``, ``conv1``)."""
        names = ("conv0", "conv1")
        layers = {n: getattr(self, n) for n in names if hasattr(self, n)}
        return {n: layer for n, layer in layers.items() if layer.use_noise}

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        force_fp32: bool = True,
        fused_modconv: bool | None = None,
        noise: Mapping[str, torch.Tensor] | None = None,
        update_emas: bool = False,  # nothing to update here; accepted for NVlabs' signature
        **layer_kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``noise``: optional maps for ``'conv0'`` / ``'conv1'`` (see SynthesisLayer)."""
        _check_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim], "block ws")
        w_iter = iter(ws.unbind(dim=1))
        dtype = _block_dtype(self.use_fp16, force_fp32, ws.device)
        if fused_modconv is None:  # the faster of two equivalent forms, by batch and device
            fused_modconv = prefer_fused_modconv(ws.shape[0], ws.device, self.training)
        noise = noise or {}

        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            size = self.resolution // 2
            _check_shape(x, [None, self.in_channels, size, size], "block input")
            x = x.to(dtype)

        def conv(name: str, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
            layer = getattr(self, name)
            return layer(
                x, next(w_iter), fused_modconv=fused_modconv, gain=gain,
                noise=noise.get(name), **layer_kwargs,
            )  # fmt: skip

        if self.in_channels == 0:
            x = conv("conv1", x)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            x = conv("conv0", x)
            x = y + conv("conv1", x, gain=np.sqrt(0.5))
        else:
            x = conv("conv1", conv("conv0", x))

        if img is not None:
            size = self.resolution // 2
            _check_shape(img, [None, self.img_channels, size, size], "block img")
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv).to(torch.float32)
            img = img + y if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class SynthesisNetwork(torch.nn.Module):
    """ws -> image, through blocks ``b4``, ``b8``, ... ``b{img_resolution}``.

    Channels per resolution: ``min(channel_base // res, channel_max)``. The first ``num_fp16_res``
    highest resolutions are marked fp16 (used only on CUDA with ``force_fp32=False``).
    ws: ``[N, num_ws, w_dim]`` -> img ``[N, img_channels, img_resolution, img_resolution]``.
    """

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        **block_kwargs,
    ):
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                img_channels=img_channels, is_last=is_last, use_fp16=res >= fp16_resolution,
                **block_kwargs,
            )  # fmt: skip
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    def noise_layers(self) -> dict[str, SynthesisLayer]:
        """Layers that take noise, in forward order, by name (``'b4.conv1'``, ``'b8.conv0'`` ...).

        ``layer.resolution`` is the size of its noise map ``[N or 1, 1, R, R]``.
        """
        layers = {}
        for res in self.block_resolutions:
            for name, layer in getattr(self, f"b{res}").noise_layers().items():
                layers[f"b{res}.{name}"] = layer
        return layers

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        force_fp32: bool = True,
        noise: NoiseInput = None,
        **block_kwargs,
    ) -> torch.Tensor:
        """ws ``[N, num_ws, w_dim]`` -> img ``[N, img_channels, R, R]`` (float32).

        noise_mode: ``'const'`` (the stored noise_const maps), ``'random'`` or ``'none'``.
        ``noise`` supplies noise maps instead: a dict keyed like :meth:`noise_layers` (missing
        layers fall back to noise_mode) or a list in that order (None entries fall back).
        Each map is broadcastable to ``[N, 1, R, R]`` and scaled by the layer's noise_strength.
        """
        _check_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        ws = ws.to(torch.float32)
        noise_by_layer = self._noise_dict(noise)

        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            prefix = f"b{res}."
            block_noise = {
                k[len(prefix) :]: v for k, v in noise_by_layer.items() if k.startswith(prefix)
            }
            x, img = block(
                x, img, block_ws, noise_mode=noise_mode, force_fp32=force_fp32, noise=block_noise,
                **block_kwargs,
            )  # fmt: skip
        return img

    def _noise_dict(self, noise: NoiseInput) -> dict[str, torch.Tensor]:
        """Normalise a supplied noise list/dict to ``{layer name: map}``, checking the names."""
        if noise is None:
            return {}
        names = list(self.noise_layers())
        if isinstance(noise, Mapping):
            unknown = sorted(set(noise) - set(names))
            if unknown:
                raise ValueError(f"unknown noise layers {unknown}; expected names from {names}")
            return {k: v for k, v in noise.items() if v is not None}
        noise = list(noise)
        if len(noise) != len(names):
            raise ValueError(f"expected {len(names)} noise maps ({names}), got {len(noise)}")
        return {k: v for k, v in zip(names, noise, strict=True) if v is not None}

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}, num_fp16_res={self.num_fp16_res}"
        )


class Generator(torch.nn.Module):
    """StyleGAN2 generator: ``mapping`` (z, c -> ws) followed by ``synthesis`` (ws -> image).

    Accepts synthesis arguments both as ``synthesis_kwargs={...}`` (stylegan2-ada pickles) and as
    plain keyword arguments (the stylegan3 repository's ``networks_stylegan2.Generator``).
    StyleGAN3's generator is this class with other networks (see the class attributes).
    """

    mapping_network: type[torch.nn.Module] = MappingNetwork
    synthesis_network: type[torch.nn.Module] = SynthesisNetwork
    synthesis_tracks_emas = False  # StyleGAN3's synthesis keeps magnitude EMAs

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: Mapping | None = None,
        synthesis_kwargs: Mapping | None = None,
        **more_synthesis_kwargs,
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        synthesis_kwargs = {**(synthesis_kwargs or {}), **more_synthesis_kwargs}
        self.synthesis = self.synthesis_network(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            **synthesis_kwargs,
        )  # fmt: skip
        self.num_ws = self.synthesis.num_ws
        self.mapping = self.mapping_network(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **(mapping_kwargs or {})
        )

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        **synthesis_kwargs,
    ) -> torch.Tensor:
        """z ``[N, z_dim]``, c ``[N, c_dim]`` -> img ``[N, img_channels, R, R]``."""
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
            update_emas=update_emas,
        )  # fmt: skip
        if self.synthesis_tracks_emas:
            synthesis_kwargs["update_emas"] = update_emas
        return self.synthesis(ws, **synthesis_kwargs)

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, "
            f"img_resolution={self.img_resolution}, img_channels={self.img_channels}"
        )


# ----------------------------------------------------------------------------------------------
# Discriminator.


class DiscriminatorBlock(torch.nn.Module):
    """One resolution of the discriminator: (fromRGB) -> conv0 -> 2x-downsampling conv1.

    x: ``[N, in_channels, R, R]`` (None for the first block), img: ``[N, C_img, R, R]`` ->
    x ``[N, out_channels, R/2, R/2]``, img ``[N, C_img, R/2, R/2]`` ('skip') or None.
    ``freeze_layers`` makes the first layers non-trainable (stored as buffers, same keys).
    """

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        first_layer_idx: int,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,  # memory layout only; ignored
        freeze_layers: int = 0,
    ):
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"in_channels must be 0 or tmp_channels, got {in_channels}")
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(
                f"architecture must be 'orig', 'skip' or 'resnet', not {architecture!r}"
            )
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_layers = 0

        def trainable() -> bool:
            layer_idx = first_layer_idx + self.num_layers
            self.num_layers += 1
            return layer_idx >= freeze_layers

        conv = dict(activation=activation, conv_clamp=conv_clamp)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(
                img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **conv
            )
        self.conv0 = Conv2dLayer(
            tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **conv
        )
        self.conv1 = Conv2dLayer(
            tmp_channels, out_channels, kernel_size=3, down=2, trainable=trainable(),
            resample_filter=resample_filter, **conv,
        )  # fmt: skip
        if architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                trainable=trainable(), resample_filter=resample_filter,
            )  # fmt: skip

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, force_fp32: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        dtype = _block_dtype(self.use_fp16, force_fp32, img.device if x is None else x.device)
        size = self.resolution
        if x is not None:
            _check_shape(x, [None, self.in_channels, size, size], "D block input")
            x = x.to(dtype)

        if self.in_channels == 0 or self.architecture == "skip":
            _check_shape(img, [None, self.img_channels, size, size], "D block img")
            img = img.to(dtype)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None

        if self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = y + self.conv1(x, gain=np.sqrt(0.5))
        else:
            x = self.conv1(self.conv0(x))
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class MinibatchStdLayer(torch.nn.Module):
    """Append the per-group standard deviation of the features as ``num_channels`` extra maps.

    The batch is split into groups of ``min(group_size, N)`` samples (N must divide evenly);
    sample i belongs to group ``i % (N / G)``. x: ``[N, C, H, W]`` -> ``[N, C + F, H, W]``.
    """

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = n if self.group_size is None else min(self.group_size, n)
        f = self.num_channels
        if n % g:
            raise ValueError(f"batch size {n} is not a multiple of the mbstd group size {g}")
        y = x.reshape(g, -1, f, c // f, h, w)  # [G, n, F, c, H, W]
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # [n, F, c, H, W]
        std = std.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)  # [n, F, 1, 1]
        return torch.cat([x, std.repeat(g, 1, h, w)], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(torch.nn.Module):
    """The 4x4 head: (fromRGB) -> minibatch std -> conv -> fc -> out, then the label projection.

    x: ``[N, in_channels, 4, 4]``, cmap: ``[N, cmap_dim]`` -> logits ``[N, 1]``.
    """

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ):
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(
                f"architecture must be 'orig', 'skip' or 'resnet', not {architecture!r}"
            )
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture

        if architecture == "skip":
            self.fromrgb = Conv2dLayer(
                img_channels, in_channels, kernel_size=1, activation=activation
            )
        self.mbstd = (
            MinibatchStdLayer(mbstd_group_size, mbstd_num_channels)
            if mbstd_num_channels > 0
            else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
            conv_clamp=conv_clamp,
        )  # fmt: skip
        self.fc = FullyConnectedLayer(
            in_channels * resolution**2, in_channels, activation=activation
        )
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(
        self,
        x: torch.Tensor,
        img: torch.Tensor | None,
        cmap: torch.Tensor | None,
        force_fp32: bool = True,  # the epilogue always runs in float32, as in NVlabs
        features: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``features``: when a list is given, the conv output ``[N, C, 4, 4]`` is appended."""
        size = self.resolution
        _check_shape(x, [None, self.in_channels, size, size], "epilogue input")
        x = x.to(torch.float32)
        if self.architecture == "skip":
            _check_shape(img, [None, self.img_channels, size, size], "epilogue img")
            x = x + self.fromrgb(img.to(torch.float32))

        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        if features is not None:
            features.append(x)
        x = self.out(self.fc(x.flatten(1)))

        if self.cmap_dim > 0:
            _check_shape(cmap, [None, self.cmap_dim], "cmap")
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class Discriminator(torch.nn.Module):
    """StyleGAN2 discriminator: blocks ``b{R}`` ... ``b8``, then the epilogue ``b4``.

    img: ``[N, img_channels, R, R]``, c: ``[N, c_dim]`` -> logits ``[N, 1]``. With c_dim > 0 a
    ``mapping`` network embeds c to ``cmap_dim`` and the logit is a projection onto it.
    """

    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
        cmap_dim: int | None = None,
        block_kwargs: Mapping | None = None,
        mapping_kwargs: Mapping | None = None,
        epilogue_kwargs: Mapping | None = None,
    ):
        if img_resolution < 8 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 8, got {img_resolution}")
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(self.img_resolution_log2, 2, -1)]
        channels = {
            res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]
        }
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0

        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < img_resolution else 0, channels[res], channels[res // 2],
                resolution=res, first_layer_idx=layer_idx, use_fp16=res >= fp16_resolution,
                **(block_kwargs or {}), **common,
            )  # fmt: skip
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(
                z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                **(mapping_kwargs or {}),
            )  # fmt: skip
        self.b4 = DiscriminatorEpilogue(
            channels[4], cmap_dim=cmap_dim, resolution=4, **(epilogue_kwargs or {}), **common
        )

    def forward(
        self,
        img: torch.Tensor,
        c: torch.Tensor | None,
        update_emas: bool = False,  # nothing to update here; accepted for NVlabs' signature
        force_fp32: bool = True,
    ) -> torch.Tensor:
        """img ``[N, img_channels, R, R]``, c ``[N, c_dim]`` -> logits ``[N, 1]``."""
        return self._run(img, c, force_fp32, None)

    def features(
        self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = True
    ) -> list[torch.Tensor]:
        """Intermediate activations for feature matching, coarse last: the output of every block
        ``b{R}`` ... ``b8`` (``[N, C, R/2, R/2]``), then the epilogue's conv (``[N, C4, 4, 4]``)."""
        feats: list[torch.Tensor] = []
        self._run(img, c, force_fp32, feats)
        return feats

    def _run(
        self,
        img: torch.Tensor,
        c: torch.Tensor | None,
        force_fp32: bool,
        feats: list[torch.Tensor] | None,
    ) -> torch.Tensor:
        size = self.img_resolution
        _check_shape(img, [None, self.img_channels, size, size], "D img")
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32)
            if feats is not None:
                feats.append(x)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap, features=feats)

    def extra_repr(self) -> str:
        return (
            f"c_dim={self.c_dim}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}"
        )
