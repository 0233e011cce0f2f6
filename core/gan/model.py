"""``GanModel``: a loaded generator (+ discriminator), with what the rest of the pack needs to know.

This is what travels on the GAN_MODEL wire: the networks, ``w_avg``, sizes, the architecture
(kind, class and init kwargs of G and D, enough to rebuild them) and the content hash of the file.
"""

from __future__ import annotations

import torch

from ..errors import error

# W statistics as NVlabs' projector computes them: the mean and spread of this many mapped z
W_STAT_SAMPLES = 10_000
W_STAT_SEED = 123


class GanModel:
    """A StyleGAN2/3 generator, optionally its discriminator, and their description.

    ``architecture`` is ``{"kind": "stylegan2" | "stylegan3", "format": ...,
    "generator": {"class": ..., "kwargs": {...}}, "discriminator": {...} | None}``.
    """

    def __init__(
        self,
        generator: torch.nn.Module,
        discriminator: torch.nn.Module | None,
        architecture: dict,
        content_hash: str,
        source: str,
    ):
        self.generator = generator.eval().requires_grad_(False)
        self.discriminator = (
            discriminator.eval().requires_grad_(False) if discriminator is not None else None
        )
        self.architecture = architecture
        self.content_hash = content_hash
        self.source = source
        self._w_stats: dict[str, tuple[torch.Tensor, float]] = {}  # by device

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.architecture["kind"]

    @property
    def z_dim(self) -> int:
        return int(self.generator.z_dim)

    @property
    def c_dim(self) -> int:
        return int(self.generator.c_dim)

    @property
    def w_dim(self) -> int:
        return int(self.generator.w_dim)

    @property
    def num_ws(self) -> int:
        return int(self.generator.num_ws)

    @property
    def resolution(self) -> int:
        return int(self.generator.img_resolution)

    @property
    def img_channels(self) -> int:
        return int(self.generator.img_channels)

    @property
    def w_avg(self) -> torch.Tensor:
        """The mapping network's running mean of W, ``[w_dim]``."""
        return self.generator.mapping.w_avg

    @property
    def device(self) -> torch.device:
        return self.w_avg.device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.generator.parameters()).dtype

    # -- running ---------------------------------------------------------------------------
    def mapping(
        self,
        z: torch.Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        c: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``z [B, z_dim]`` (and labels ``c [B, c_dim]`` for a conditional model) ->
        ``ws [B, num_ws, w_dim]``, truncated toward ``w_avg`` by ``truncation_psi``."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise error(
                f"z must have shape [B, {self.z_dim}], got {list(z.shape)}", file=self.source
            )
        c = self._labels(c, z.shape[0])
        z = z.to(self.device, self.dtype)
        return self.generator.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff
        )

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const", **kwargs) -> torch.Tensor:
        """``ws [B, num_ws, w_dim]`` -> images ``[B, img_channels, H, W]``, about [-1, 1].

        ``noise_mode`` is ``"const"`` | ``"random"`` | ``"none"``; extra keyword arguments (e.g.
        ``noise=``) go to the synthesis network.
        """
        expected = [self.num_ws, self.w_dim]
        if ws.ndim != 3 or list(ws.shape[1:]) != expected:
            raise error(
                f"ws must have shape [B, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}",
                file=self.source,
            )
        ws = ws.to(self.device, self.dtype)
        return self.generator.synthesis(ws, noise_mode=noise_mode, **kwargs)

    def sample(
        self, count: int = 1, seed: int = 0, truncation_psi: float = 1.0, noise_mode="const"
    ) -> torch.Tensor:
        """``count`` images ``[count, C, H, W]`` in about [-1, 1] from z drawn with ``seed``
        (the same seed gives the same faces on any device)."""
        z = torch.randn(count, self.z_dim, generator=torch.Generator().manual_seed(int(seed)))
        with torch.no_grad():
            return self.synthesis(self.mapping(z, truncation_psi), noise_mode=noise_mode)

    # -- statistics ------------------------------------------------------------------------
    def w_statistics(self) -> tuple[torch.Tensor, float]:
        """(mean w ``[w_dim]``, spread) of 10 000 mapped z (seed 123), as NVlabs' projector
        computes them; remembered per device. Conditional models use their tracked ``w_avg`` and a
        spread of 1."""
        key = str(self.device)
        if key not in self._w_stats:
            self._w_stats[key] = self._sampled_w_statistics()
        return self._w_stats[key]

    def _sampled_w_statistics(self) -> tuple[torch.Tensor, float]:
        if self.c_dim > 0:
            return self.w_avg.detach().float(), 1.0
        z = torch.randn(
            W_STAT_SAMPLES, self.z_dim, generator=torch.Generator().manual_seed(W_STAT_SEED)
        )
        with torch.no_grad():
            w = torch.cat([self.mapping(chunk)[:, 0].float() for chunk in z.split(2000)])
        mean = w.mean(0)
        spread = float(((w - mean).square().sum() / W_STAT_SAMPLES).sqrt())
        return mean, spread

    def noise_layer_sizes(self) -> dict[str, int]:
        """Name -> map size of the synthesis layers that take noise (none for StyleGAN3)."""
        layers = getattr(self.generator.synthesis, "noise_layers", dict)()
        return {name: int(layer.resolution) for name, layer in layers.items()}

    def _labels(self, c: torch.Tensor | None, batch: int) -> torch.Tensor:
        if c is None:
            if self.c_dim > 0:
                raise error(
                    f"this model is conditional: give class labels c [B, {self.c_dim}]",
                    file=self.source,
                )
            return torch.zeros([batch, 0], device=self.device, dtype=self.dtype)
        return c.to(self.device, self.dtype)

    # -- housekeeping --------------------------------------------------------------------------
    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """Move (and optionally cast) both networks in place; returns ``self``."""
        for net in (self.generator, self.discriminator):
            if net is not None:
                net.to(device=device, dtype=dtype)
        return self

    def parameter_count(self, include_discriminator: bool = False) -> int:
        """Number of parameters of the generator (and the discriminator if asked)."""
        nets = [self.generator]
        if include_discriminator and self.discriminator is not None:
            nets.append(self.discriminator)
        return sum(p.numel() for net in nets for p in net.parameters())

    def __repr__(self) -> str:
        has_d = "with D" if self.discriminator is not None else "no D"
        return (
            f"GanModel({self.kind}, {self.resolution}px, num_ws={self.num_ws}, "
            f"w_dim={self.w_dim}, {has_d}, hash={self.content_hash[:12]}, source={self.source!r})"
        )
