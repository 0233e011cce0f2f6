"""The demo generator's training script on a toy configuration (16 px, tiny channels, a few dozen
steps, seconds): the loss falls, a checkpoint resumes where it stopped, and the output loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentmirror.training import train_demo
from latentmirror.training.train_demo import TrainConfig, regression_loss, render_targets


def _tiny(tmp_path, **overrides) -> TrainConfig:
    """A configuration that trains in well under a second per step on one thread."""
    settings = dict(
        out=str(tmp_path / "demo.safetensors"),
        resolution=16,
        channel_base=256,
        channel_max=32,
        w_dim=32,
        batch=4,
        val_batch=8,
        lr_g=0.01,
        max_steps=26,
        adv_fraction=0.25,
        threads=1,
        progress_seconds=1e9,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def _quiet(_line: str) -> None:
    pass


def test_targets_are_the_renderer_in_minus_one_to_one():
    z = torch.randn([2, 64], generator=torch.Generator().manual_seed(0))
    target = render_targets(z, 16)
    assert target.shape == (2, 3, 16, 16)
    assert target.min() >= -1.0 and target.max() <= 1.0
    assert torch.equal(target, render_targets(z.clone(), 16))  # deterministic in z


def test_regression_loss_is_zero_on_identical_images_and_sees_edges():
    a = torch.rand([2, 3, 16, 16]) * 2 - 1
    loss, parts = regression_loss(a, a.clone())
    assert float(loss) == 0.0 and set(parts) == {"l1", "lap", "low"}
    b = a.clone()
    b[:, :, 8, :] += 0.5  # a thin line: the band-pass term must see it
    _, parts = regression_loss(b, a)
    assert parts["lap"] > 0.0


@pytest.mark.slow
def test_tiny_run_learns_resumes_and_writes_a_loadable_model(tmp_path):
    first = train_demo.train(_tiny(tmp_path, max_steps=20), log=_quiet)
    # The regression loss on the fixed validation batch falls from step 0 to the end (about
    # 10 % in 20 toy steps; the first 5 % is far outside run-to-run noise, which is none here).
    assert first["step"] == 20
    assert first["val_last"] < 0.95 * first["val_first"], first

    # Resume: the step counter continues from the checkpoint, through the adversarial stage.
    lines: list[str] = []
    second = train_demo.train(
        _tiny(tmp_path, max_steps=26, resume=first["checkpoint"]), log=lines.append
    )
    assert second["start_step"] == 20 and second["step"] == 26
    assert any(line.startswith("resumed") for line in lines)
    assert any("stage 2" in line for line in lines)

    ckpt = torch.load(second["checkpoint"], weights_only=True)
    assert ckpt["step"] == 26 and ckpt["nimg"] == 26 * 4

    grid = second["grid"]
    assert (tmp_path / "demo.png").exists() and grid.endswith("demo.png")

    from latentmirror.core.gan import load_gan

    model = load_gan(second["out"])
    assert model.resolution == 16 and model.z_dim == 64 and model.discriminator is not None
    assert model.generator.mapping.w_avg.abs().sum() > 0  # W's running mean was tracked
    z = torch.randn([3, 64])
    img = model.synthesis(model.mapping(z, truncation_psi=0.7))
    assert img.shape == (3, 3, 16, 16) and torch.isfinite(img).all()
    assert model.discriminator(img, None).shape == (3, 1)


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_of_another_architecture(tmp_path):
    first = train_demo.train(_tiny(tmp_path, max_steps=1), log=_quiet)
    with pytest.raises(ValueError, match="differ"):
        train_demo.train(
            _tiny(tmp_path, max_steps=2, w_dim=16, resume=first["checkpoint"]), log=_quiet
        )


def test_same_seed_gives_the_same_weights(tmp_path):
    a = train_demo.Trainer(_tiny(tmp_path / "a", max_steps=2))
    b = train_demo.Trainer(_tiny(tmp_path / "b", max_steps=2))
    for trainer in (a, b):
        z = torch.randn([4, 64], generator=trainer.z_gen)
        trainer.regression_step(z, render_targets(z, 16))
    for (name, pa), pb in zip(a.G.state_dict().items(), b.G.state_dict().values(), strict=True):
        assert np.array_equal(pa.numpy(), pb.numpy()), name


def test_cli_arguments_map_onto_the_config():
    cfg = train_demo.parse_args(
        ["out.safetensors", "--minutes", "2", "--seed", "3", "--sample-grid", "g.png"]
    )
    assert (cfg.out, cfg.minutes, cfg.seed, cfg.resolution) == ("out.safetensors", 2.0, 3, 64)
    assert cfg.default_paths() == ("out.train-ckpt", "g.png")
