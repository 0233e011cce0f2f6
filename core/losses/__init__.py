"""Loss terms for inversion: what LM_LossMix builds and Invert minimises.

Where things are:

- :mod:`.distances`: the maths (loss resolution, pixel distances, SSIM/MS-SSIM, discriminator
  features and their distance, latent and noise regularisers, temporal change);
- :mod:`.terms`: the registry :data:`LOSS_TERMS`, the params' validation and the tooltips;
- :mod:`.mix`: :class:`LossTerm`, :class:`LossMix` and :func:`parse_params`;
- :mod:`.evaluator`: :class:`LossEvaluator` and :class:`LossResult`.

Every term is ONE entry of :data:`LOSS_TERMS` (a :class:`TermSpec`: name, params, image term or
not, what it needs, the function that computes it, a one-line description); the mix's
validation, the evaluator, the LossMix node's choices and tooltips, ``ReferencePull`` and the
tests all read it. Adding a term: one function (in ``distances``), one entry (in ``terms``),
one test.

A :class:`LossMix` is an immutable, ordered tuple of :class:`LossTerm`\\ s (a term name, a
weight, validated params and an optional per-pixel MASK). A :class:`LossEvaluator` turns a mix
into a function of one optimisation step: output images, targets, latents and noise maps in,
``(total, values)`` out: the differentiable weighted sum and each term's unweighted value.

Conventions (every function here):

- images ``[B, 3, H, W]`` in [-1, 1] (the generator's range); computed in float32 on their device;
- masks ``[B or 1, 1, h, w]`` of non-negative weights at the images' size (:func:`resize_mask`);
  weighted means are normalised by the mask's mean, so a mask of ones equals no mask and a frame
  whose mask is all zero contributes 0;
- image distances return one value per frame ``[B]``; the evaluator averages them over the batch.

Image terms run at a loss resolution (param ``resolution``, default 256 as in the classic NVlabs
projector): images larger than that are area-downsampled, smaller ones are left as they are.

Example::

    mix = LossMix().add("lpips_vgg", 1.0).add("w_prior", 0.01)
    evaluate = LossEvaluator(mix, model, lpips_folders=["/comfy/models/lpips"])
    total, values = evaluate(model.synthesis(ws), target, ws=ws)
    total.backward()  # values == {"lpips_vgg": 0.41, "w_prior": 0.07}
"""

from __future__ import annotations

from .distances import (
    DEFAULT_RESOLUTION,
    MS_SSIM_WEIGHTS,
    discriminator_features,
    feature_distance,
    l1_distance,
    l2_distance,
    loss_size,
    ms_ssim,
    noise_maps_list,
    noise_regularization,
    per_sample_minibatch_std,
    resize_for_loss,
    ssim,
    ssim_maps,
    temporal_change,
    w_prior,
)
from .evaluator import LossEvaluator, LossResult
from .mix import LossMix, LossTerm, parse_params
from .terms import (
    LOSS_TERMS,
    NEEDS,
    Distance,
    Features,
    Networks,
    Size,
    TermInputs,
    TermSpec,
    check_term_name,
    describe_params,
    describe_terms,
    validate_params,
)

__all__ = [
    "DEFAULT_RESOLUTION",
    "LOSS_TERMS",
    "MS_SSIM_WEIGHTS",
    "NEEDS",
    "Distance",
    "Features",
    "LossEvaluator",
    "LossMix",
    "LossResult",
    "LossTerm",
    "Networks",
    "Size",
    "TermInputs",
    "TermSpec",
    "check_term_name",
    "describe_params",
    "describe_terms",
    "discriminator_features",
    "feature_distance",
    "l1_distance",
    "l2_distance",
    "loss_size",
    "ms_ssim",
    "noise_maps_list",
    "noise_regularization",
    "parse_params",
    "per_sample_minibatch_std",
    "resize_for_loss",
    "ssim",
    "ssim_maps",
    "temporal_change",
    "validate_params",
    "w_prior",
]
