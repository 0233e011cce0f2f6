"""The evaluator: a :class:`LossMix` turned into a function of one optimisation step (output
images, targets, latents and noise maps in; the weighted total and each term's value out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch

from ..errors import error
from ..imageops import resize_mask, resize_to
from ..perceptual import load_lpips
from .mix import LossMix, LossTerm
from .terms import LOSS_TERMS, Networks, TermInputs, TermSpec


@dataclass(frozen=True)
class LossResult:
    """One evaluation. Unpacks as ``total, values``; the tensors stay on the device, so an
    optimisation loop can read them back every few steps instead of syncing at each one."""

    total: torch.Tensor  # [] differentiable: sum of weight * value
    terms: torch.Tensor  # [T] detached: unweighted value of each term
    per_frame: torch.Tensor  # [B] detached: each frame's weighted total (batch-wide terms shared)
    labels: tuple[str, ...]  # LossMix.labels(), one per term

    @property
    def values(self) -> dict[str, float]:
        """Unweighted value of each term, by label (reads the device)."""
        return dict(zip(self.labels, self.terms.cpu().tolist(), strict=True))

    def __iter__(self) -> Iterator:
        return iter((self.total, self.values))

    def __getitem__(self, index: int):
        return (self.total, self.values)[index]


def _same_data(a: torch.Tensor, b: torch.Tensor | None) -> bool:
    """``a`` and ``b`` show the same elements of the same storage (e.g. the same slice of a
    target batch taken again at each step). ``b`` is held by the cache, so its memory cannot be
    freed and reused by another tensor while compared."""
    return (
        b is not None
        and a.device == b.device
        and a.dtype == b.dtype
        and a.shape == b.shape
        and a.stride() == b.stride()
        and a.storage_offset() == b.storage_offset()
        and a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    )


class LossEvaluator:
    """Evaluates a :class:`LossMix` for one optimisation step.

    model: the GanModel (its discriminator for ``d_features``, ``w_avg`` for ``w_prior``).
    lpips_folders: where to look for backbone files (ComfyUI's models/lpips, the pack's), the
    torch hub cache is searched after them. The LPIPS modules load here, on ``device`` (default:
    the model's), so a missing file fails before any optimisation. ``allow_random_backbone`` is
    for tests only. ``autocast``: the dtype LPIPS backbones compute in under autocast (Invert
    passes the generator's mixed precision); features and losses stay float32.

    Target-side work (resizing, LPIPS and D features of the target, masks on the device) is cached
    while the same target data is passed again unchanged (the same tensor, or the same slice of
    one taken again).
    """

    def __init__(
        self,
        mix: LossMix,
        model=None,
        *,
        lpips_folders: Sequence[str] = (),
        device: torch.device | str | None = None,
        allow_random_backbone: bool = False,
        autocast: torch.dtype | None = None,
    ):
        if not isinstance(mix, LossMix):
            raise error(f"expected a LossMix, got {type(mix).__name__}")
        if not len(mix):
            raise error("the loss mix is empty: add at least one term")
        self.mix = mix
        self.model = model
        self.labels = mix.labels()
        self.device = torch.device(device or (model.device if model is not None else "cpu"))
        self.autocast = autocast
        specs = [LOSS_TERMS[name] for name in dict.fromkeys(t.name for t in mix)]
        _check_model_needs(specs, model)
        self._lpips_folders = list(lpips_folders)
        self._allow_random = allow_random_backbone
        self._lpips_modules: dict[tuple[str, str], torch.nn.Module] = {}
        for spec in specs:
            if spec.lpips_net:
                self.lpips_module(spec.lpips_net, self.device)
        self._cached_target: torch.Tensor | None = None
        self._cached_version = -1
        self._cache: dict = {}

    def lpips_module(self, net: str, device: torch.device) -> torch.nn.Module:
        key = (net, str(device))
        if key not in self._lpips_modules:  # searched for once, not at every step
            self._lpips_modules[key] = load_lpips(
                net, device, self._lpips_folders, self._allow_random
            )
        return self._lpips_modules[key]

    def _cached(self, key, make: Callable[[], object]):
        if key not in self._cache:
            with torch.no_grad():
                self._cache[key] = make()
        return self._cache[key]

    def _reset_cache(self, target: torch.Tensor) -> None:
        if target.requires_grad:  # not a fixed target: nothing to reuse
            self._cached_target, self._cache = None, {}
        elif not _same_data(target, self._cached_target) or target._version != self._cached_version:
            self._cached_target, self._cached_version, self._cache = target, target._version, {}

    def __call__(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        *,
        ws: torch.Tensor | None = None,
        noise=None,
        prev_output: torch.Tensor | None = None,
        prev_target: torch.Tensor | None = None,
        mask_indices: Sequence[int] | None = None,
        c: torch.Tensor | None = None,
        frames: Sequence[float] | None = None,
    ) -> LossResult:
        """output, target ``[B, 3, H, W]`` in [-1, 1]; ws ``[B, num_ws, w_dim]``; noise: the
        maps being optimised (dict or list, see :func:`noise_regularization`); prev_*: the
        previous batch's last frame (temporal); mask_indices: the batch's rows in the masks;
        c: class labels for a conditional discriminator; frames: each row's frame number, where
        terms with a ``weight_curve`` read their weight."""
        if output.ndim != 4 or output.shape[1] != 3 or output.shape != target.shape:
            raise error(
                f"loss: output and target must both be [B, 3, H, W], got {list(output.shape)} "
                f"and {list(target.shape)}"
            )
        self._reset_cache(target)
        out32 = output.float()
        step = TermInputs(
            output=out32,
            target=target.to(output.device).float(),
            params={},
            frame_shape=out32.shape[1:],
            w_avg=self.model.w_avg if self.model is not None else None,
            ws=ws,
            noise=noise,
            prev_output=prev_output,
            prev_target=prev_target,
        )
        batch = out32.shape[0]
        # Each term per frame [B] where it is per frame (comparisons), else one value for all.
        rows = [
            _per_frame(
                self._term(index, term, step, mask_indices, c, term.weight_curve is not None),
                batch,
                output.device,
            )
            for index, term in enumerate(self.mix)
        ]
        stacked = torch.stack([r.mean() for r in rows])
        if any(term.weight_curve is not None for term in self.mix):
            weights = self._weights(frames, batch, output.device)  # [T, B]
            total = (torch.stack(rows) * weights).mean(1).sum()
        else:
            weights = torch.tensor([t.weight for t in self.mix], device=output.device)
            total = (stacked * weights).sum()
            weights = weights[:, None]
        per_frame = (torch.stack(rows).detach() * weights).sum(0)
        return LossResult(total, stacked.detach(), per_frame, tuple(self.labels))

    def _weights(self, frames, batch: int, device) -> torch.Tensor:
        """Each term's weight for each row ``[T, B]``: its number, or its weight curve read at
        the row's frame number."""
        rows = []
        for term in self.mix:
            if term.weight_curve is None:
                rows.append(torch.full((batch,), float(term.weight), device=device))
                continue
            if frames is None or len(frames) != batch:
                raise error("a loss term with a weight curve needs the frame number of every image")
            rows.append(term.weight_curve.weights(frames, device).float())
        return torch.stack(rows)

    def _term(self, index: int, term: LossTerm, step: TermInputs, mask_indices, c, per_frame):
        """One term's unweighted value, ``[]`` or per frame ``[B]``: its entry's ``compute``, or
        its ``features`` of both sides (the target's cached) compared by its ``distance``.
        ``per_frame``: terms of ws alone (w_prior) are computed per frame too (a weight curve
        weighs each frame's own)."""
        spec = LOSS_TERMS[term.name]
        if "ws" in spec.needs and step.ws is None:
            raise error(f"the {term.name} term needs ws")
        device = step.output.device
        nets = Networks(
            lpips=self.lpips_module(spec.lpips_net, device) if spec.lpips_net else None,
            discriminator=self.model.discriminator if self.model is not None else None,
            c=c,
            autocast=self.autocast,
        )
        step = replace(step, params=term.params, nets=nets)
        if not spec.image:
            if per_frame and spec.needs == {"w_avg", "ws"}:  # w_prior: each frame's own
                return torch.stack([spec.compute(replace(step, ws=w[None])) for w in step.ws])
            return spec.compute(step)
        memo = self._cached if self._cached_target is not None else (lambda _key, make: make())
        size = spec.compared_size(nets, term.params, tuple(step.output.shape[-2:]))
        x = resize_to(step.output, size)
        y = memo(("resize", size), lambda: resize_to(step.target, size))
        mask = self._mask(index, term, size, x.shape[0], mask_indices, device)
        if spec.compute is not None:
            return spec.compute(replace(step, output=x, target=y, mask=mask))
        fy = memo(("features", index), lambda: spec.features(nets, y))
        return spec.distance(nets, spec.features(nets, x), fy, mask, term.params)  # [B]

    def _mask(self, index, term, size, batch, indices, device):
        if term.mask is None:
            return None
        key = ("mask", index, tuple(size), batch, tuple(indices) if indices is not None else None)
        if key not in self._cache:
            self._cache[key] = resize_mask(term.mask, tuple(size), batch, indices).to(device)
        return self._cache[key]


def _per_frame(value: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """A term's value as ``[B]`` float32: per frame as given, or one value repeated."""
    value = value.to(device).float().reshape(-1)
    if value.numel() == batch:
        return value
    if value.numel() != 1:
        raise error(f"a loss term gave {value.numel()} values for a batch of {batch}")
    return value.expand(batch)


def _check_model_needs(specs: list[TermSpec], model) -> None:
    """What the mix's terms need of the model, checked before any optimisation."""
    for spec in specs:
        if "discriminator" in spec.needs and (model is None or model.discriminator is None):
            raise error(
                f"the {spec.name} term needs the model's discriminator; this model file has none "
                "(use lpips_vgg, l1 or ssim instead)",
                file=getattr(model, "source", None),
            )
    for spec in specs:
        if "w_avg" in spec.needs and model is None:
            raise error(f"the {spec.name} term needs the model (for w_avg)")
