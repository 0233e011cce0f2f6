"""A loss mix: an immutable, ordered tuple of :class:`LossTerm`\\ s (a term name, a weight,
validated params and an optional per-pixel MASK), and :func:`parse_params` for params as an
artist types them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import torch

from ..curves import Curve
from ..errors import error
from ..storage import tensor_digest
from .terms import LOSS_TERMS, check_term_name, validate_params


def parse_params(text: str) -> dict:
    """Params as an artist types them: a JSON object, or ``key=value`` pairs split by commas.

    >>> parse_params("resolution=128, multiscale=true")
    {'resolution': '128', 'multiscale': 'true'}
    """
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"loss params are not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise error("loss params must be a JSON object")
        return value
    out = {}
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise error(f"loss params: expected key=value, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _check_mask(name: str, mask: torch.Tensor | None) -> torch.Tensor | None:
    if mask is None:
        return None
    if not LOSS_TERMS[name].image:
        raise error(f"loss term '{name}' takes no mask (masks weight image terms only)")
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3) or 0 in mask.shape:
        shape = list(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise error(f"loss term '{name}': mask must be a [B, H, W] tensor, got {shape}")
    mask = (mask if mask.ndim == 3 else mask[None]).detach().float()
    if not torch.isfinite(mask).all() or (mask < 0).any():
        raise error(f"loss term '{name}': mask weights must be finite and >= 0")
    return mask


@dataclass(frozen=True, eq=False)
class LossTerm:
    """One weighted term. ``params`` are validated and completed with defaults on creation.

    mask: per-pixel weights ``[B or 1, H, W]`` (ComfyUI MASK) for image terms, in the plate's
    frame order; rows are picked with the evaluator's ``mask_indices``.
    weight_curve: the weight per frame number (a CURVE), in place of ``weight`` when given.

    >>> LossTerm("l1", 0.5, {"resolution": 128}).params
    {'resolution': 128}
    """

    name: str
    weight: float = 1.0
    params: dict = field(default_factory=dict)
    mask: torch.Tensor | None = None
    weight_curve: Curve | None = None

    def __post_init__(self) -> None:
        check_term_name(self.name)
        if self.weight_curve is not None and not isinstance(self.weight_curve, Curve):
            raise error(f"loss term '{self.name}': weight_curve must be a CURVE")
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise error(f"loss term '{self.name}': weight must be a number, got {weight!r}")
        if not math.isfinite(weight):
            raise error(f"loss term '{self.name}': weight must be finite, got {weight!r}")
        object.__setattr__(self, "weight", float(weight))
        object.__setattr__(self, "params", validate_params(self.name, self.params))
        object.__setattr__(self, "mask", _check_mask(self.name, self.mask))

    def describe(self) -> dict:
        """JSON-able description (for latent metadata); the mask as its shape and a hash."""
        out = {"term": self.name, "weight": self.weight, "params": dict(self.params)}
        if self.mask is not None:
            out["mask"] = {"shape": list(self.mask.shape), "sha256": tensor_digest(self.mask)}
        if self.weight_curve is not None:
            out["weight_curve"] = self.weight_curve.describe()
        return out


@dataclass(frozen=True)
class LossMix:
    """An ordered, immutable tuple of terms; ``with_term``/``add`` return a new mix (chaining).

    >>> mix = LossMix().add("lpips_vgg").add("l1", 0.1, {"resolution": 64})
    >>> mix.labels()
    ['lpips_vgg', 'l1']
    """

    terms: tuple[LossTerm, ...] = ()

    def __post_init__(self) -> None:
        terms = tuple(self.terms)
        for term in terms:
            if not isinstance(term, LossTerm):
                raise error(f"a LossMix holds LossTerms, got {type(term).__name__}")
        object.__setattr__(self, "terms", terms)

    def with_term(self, term: LossTerm) -> LossMix:
        return LossMix((*self.terms, term))

    def add(
        self,
        name: str,
        weight: float = 1.0,
        params: Mapping | None = None,
        mask: torch.Tensor | None = None,
    ) -> LossMix:
        return self.with_term(LossTerm(name, weight, dict(params or {}), mask))

    def __iter__(self) -> Iterator[LossTerm]:
        return iter(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    def labels(self) -> list[str]:
        """One unique label per term, in order: repeated names get ``_2``, ``_3`` ..."""
        seen: dict[str, int] = {}
        labels = []
        for term in self.terms:
            seen[term.name] = seen.get(term.name, 0) + 1
            count = seen[term.name]
            labels.append(term.name if count == 1 else f"{term.name}_{count}")
        return labels

    def describe(self) -> list[dict]:
        return [term.describe() for term in self.terms]

    def fingerprint(self) -> str:
        """A stable hash of the whole mix (terms, weights, params, masks), for caches."""
        text = json.dumps(self.describe(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()
