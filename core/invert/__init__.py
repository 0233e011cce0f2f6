"""Inversion: finding the latents whose images match a plate's frames.

Read in this order: :mod:`.settings` (what Invert's inputs choose), :mod:`.driver` (:func:`invert`:
the plate fitted, the cache, the references, the schedule run per tile sequence), then one of the
two schedules, :mod:`.fast` (the default: batches warm-started from the frame before) and
:mod:`.classic` (NVlabs' projector, for comparison); :mod:`.run` holds what both share (the loss,
its history and the optimiser step).

:func:`invert` returns a :class:`~.latents.GanLatent` and the reconstruction at plate size.
Everything random comes from one ``torch.Generator`` seeded with ``seed``, so runs repeat.
"""

from .driver import invert, reconstruct
from .settings import PRECISIONS, SCHEDULES, Callbacks, InvertResult, InvertSettings, default_mix

__all__ = [
    "PRECISIONS",
    "SCHEDULES",
    "Callbacks",
    "InvertResult",
    "InvertSettings",
    "default_mix",
    "invert",
    "reconstruct",
]
