"""Train the bundled demo face generator: a small StyleGAN2 fitted to procedural faces on a CPU.

Recipe (see ``training/README.md``):

1. **Regression** (most of the time budget). :func:`faces.params_from_latent` is a deterministic
   function of ``z``, so ``G(z, noise_mode='const')`` is trained to reproduce
   ``render_batch(z)`` (mapped to [-1, 1]) with a pixel L1 plus an L1 over the bands of a
   Laplacian pyramid (the structural term: edges and shapes weigh as much as flat colour).
   Every batch is fresh random ``z``: the data set is infinite and never repeats.
2. **Adversarial fine-tune** (the last ``adv_fraction`` of the budget): the non-saturating
   logistic GAN loss with a lazy R1 penalty on reals sharpens what regression blurs; a smaller
   weight of the regression loss keeps each ``z`` near its rendered face, so the model does not
   drift or collapse while the discriminator is young.

An exponential moving average of G's weights (``G_ema``, with buffers, so ``mapping.w_avg`` the
running mean of W tracks as in NVlabs' training) is what is saved, with the discriminator, as an
fp16 ``.safetensors`` that :func:`latentmirror.core.gan.load_gan` reads.

Usage::

    python -m latentmirror.training.train_demo OUT.safetensors [--minutes 85] [--resolution 64]
        [--seed 0] [--resume CKPT] [--sample-grid GRID.png]

The run is budgeted by wall-clock time; a checkpoint (state dicts, optimiser states and counters,
loadable with ``torch.load(weights_only=True)``) is written every few minutes and at the end, and
``--resume`` continues from one (the budget counts the time already spent).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import torch
import torch.nn.functional as F

from ..core.gan.loading import save_safetensors
from ..core.gan.model import GanModel
from ..core.gan.stylegan2 import Discriminator, Generator
from ..core.storage import write_atomically
from . import faces

CHECKPOINT_FORMAT = "latentmirror-demo-train"
CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig:
    """Everything a run depends on. The CLI sets the first block; the rest are the recipe."""

    out: str
    minutes: float = 85.0
    resolution: int = 64
    seed: int = 0
    resume: str | None = None
    sample_grid: str | None = None  # default: OUT with a .png suffix
    # Default: OUT with a .train-ckpt suffix (not .pt: Load GAN lists .pt files in models/gan).
    checkpoint: str | None = None
    max_steps: int | None = None  # a step budget instead of the clock (tests)
    threads: int = 2

    # Architecture: StyleGAN2, skip generator, resnet discriminator.
    z_dim: int = 64
    w_dim: int = 128
    map_layers: int = 2
    # 10x NVlabs' 0.01: the mapping must learn the renderer's nonlinear parameter maps (hair style
    # and glasses thresholds) within a short regression; 0.01 leaves it nearly frozen.
    map_lr_mult: float = 0.1
    channel_base: int = 2048  # channels min(base / res, max): 128 at 4..16 px, 64 at 32, 32 at 64
    channel_max: int = 128

    # Optimisation.
    batch: int = 16
    lr_g: float = 0.005  # stage 1 (regression), cosine-decayed to lr_g_final at its end
    lr_g_final: float = 0.0005
    lr_g_adv: float = 0.002  # stage 2, G and D
    lr_d: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    adv_fraction: float = 0.25  # share of the budget for the adversarial fine-tune
    adv_rampup: float = 0.1  # share of stage 2 over which the GAN loss weight ramps 0 -> 1
    reg_weight_adv: float = 2.0  # weight of the regression loss during stage 2
    r1_interval: int = 4
    r1_gamma: float | None = None  # None: NVlabs' auto heuristic 0.0002 * res^2 / batch
    ema_kimg: float = 2.0  # half-life of G_ema, thousands of images
    ema_rampup: float = 0.05
    pyramid_levels: int = 3
    # Start from a grey image: NVlabs' init gives saturated colour blobs that the regression
    # first has to unlearn (measured: val loss 1.25 vs 2.9 at step 0, 1.14 vs 1.46 at step 60).
    torgb_init_gain: float = 0.1
    supersample: int = 4  # renderer anti-aliasing

    # Bookkeeping.
    progress_seconds: float = 30.0
    checkpoint_minutes: float = 5.0
    val_batch: int = 16

    def generator_kwargs(self) -> dict:
        """Init kwargs of G, as NVlabs' pickles store them (JSON-safe)."""
        return {
            "z_dim": self.z_dim,
            "c_dim": 0,
            "w_dim": self.w_dim,
            "img_resolution": self.resolution,
            "img_channels": 3,
            "mapping_kwargs": {"num_layers": self.map_layers, "lr_multiplier": self.map_lr_mult},
            "synthesis_kwargs": {
                "channel_base": self.channel_base,
                "channel_max": self.channel_max,
                "num_fp16_res": 0,
                "conv_clamp": None,
                "architecture": "skip",
            },
        }

    def discriminator_kwargs(self) -> dict:
        return {
            "c_dim": 0,
            "img_resolution": self.resolution,
            "img_channels": 3,
            "architecture": "resnet",
            "channel_base": self.channel_base,
            "channel_max": self.channel_max,
            "num_fp16_res": 0,
            "conv_clamp": None,
            "epilogue_kwargs": {"mbstd_group_size": 4},
        }

    def default_paths(self) -> tuple[str, str]:
        """(checkpoint path, sample grid path) beside ``out`` unless given."""
        stem = Path(self.out).with_suffix("")
        ckpt = self.checkpoint or f"{stem}.train-ckpt"
        grid = self.sample_grid or f"{stem}.png"
        return ckpt, grid


# ----------------------------------------------------------------------------------------------
# Data and losses.


def render_targets(z: torch.Tensor, resolution: int, supersample: int = 4) -> torch.Tensor:
    """z ``[N, >=44]`` -> the faces the renderer draws for it, ``[N, 3, R, R]`` in [-1, 1].

    Rendered without grain: grain is the one part of a face that is not a smooth function of z.
    """
    imgs = faces.render_batch(z.numpy(), resolution, supersample=supersample, grain=False)
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).mul(2.0).sub(1.0).contiguous()


def regression_loss(
    fake: torch.Tensor, target: torch.Tensor, levels: int = 3
) -> tuple[torch.Tensor, dict[str, float]]:
    """Pixel L1 + L1 over a Laplacian pyramid (``levels`` band-pass images, then the low-pass).

    fake, target: ``[N, C, H, W]``. Each band is an image minus the bilinear upsampling of its
    2x2 average: an L1 there weighs edges and small shapes (eyes, lids, mouth) as much as the flat
    colour regions that dominate a plain pixel loss. Returns (loss, parts for logging).
    """
    pixel = (fake - target).abs().mean()
    a, b = fake, target
    band = fake.new_zeros([])
    for _ in range(levels):
        if a.shape[-1] < 4:
            break
        a_low, b_low = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        a_band = a - F.interpolate(a_low, scale_factor=2, mode="bilinear", align_corners=False)
        b_band = b - F.interpolate(b_low, scale_factor=2, mode="bilinear", align_corners=False)
        band = band + (a_band - b_band).abs().mean()
        a, b = a_low, b_low
    low = (a - b).abs().mean()
    loss = pixel + 2.0 * band + low
    return loss, {"l1": pixel.item(), "lap": band.item(), "low": low.item()}


# ----------------------------------------------------------------------------------------------
# Training state.


class Trainer:
    """Networks, optimisers and counters of one run; :meth:`run` trains until the budget ends."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.G = Generator(**cfg.generator_kwargs()).train()
        with torch.no_grad():
            for name, param in self.G.named_parameters():
                if name.endswith("torgb.weight"):
                    param.mul_(cfg.torgb_init_gain)
        self.D = Discriminator(**cfg.discriminator_kwargs()).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=cfg.betas, eps=1e-8)
        # Lazy R1: the penalty runs every r1_interval steps, so Adam is rescaled as in NVlabs.
        ratio = cfg.r1_interval / (cfg.r1_interval + 1)
        betas_d = (cfg.betas[0] ** ratio, cfg.betas[1] ** ratio)
        self.opt_d = torch.optim.Adam(
            self.D.parameters(), lr=cfg.lr_d * ratio, betas=betas_d, eps=1e-8
        )
        self.r1_gamma = (
            cfg.r1_gamma if cfg.r1_gamma is not None else 0.0002 * cfg.resolution**2 / cfg.batch
        )
        self.z_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.step = 0
        self.nimg = 0
        self.elapsed = 0.0  # training seconds spent by this and earlier (resumed) runs
        # A fixed validation batch, the same for every run of a seed: loss curves compare.
        val_gen = torch.Generator().manual_seed(cfg.seed + 2)
        self.val_z = torch.randn([cfg.val_batch, cfg.z_dim], generator=val_gen)
        self.val_target = render_targets(self.val_z, cfg.resolution, cfg.supersample)

    # -- budget ----------------------------------------------------------------------------
    def budget_fraction(self) -> float:
        """How much of the budget (steps or seconds) is spent, 0..1+."""
        if self.cfg.max_steps is not None:
            return self.step / max(self.cfg.max_steps, 1)
        return self.elapsed / (self.cfg.minutes * 60.0)

    def stage(self) -> int:
        return 2 if self.budget_fraction() >= 1.0 - self.cfg.adv_fraction else 1

    def g_learning_rate(self) -> float:
        """Stage 1: cosine from lr_g to lr_g_final (a regression settles as lr falls); stage 2:
        the GAN rate."""
        cfg = self.cfg
        if self.stage() == 2:
            return cfg.lr_g_adv
        t = min(self.budget_fraction() / max(1.0 - cfg.adv_fraction, 1e-8), 1.0)
        return cfg.lr_g_final + (cfg.lr_g - cfg.lr_g_final) * 0.5 * (1.0 + math.cos(math.pi * t))

    def adv_weight(self) -> float:
        """GAN loss weight: ramps from 0 to 1 over the start of stage 2 (a young D is noise)."""
        start = 1.0 - self.cfg.adv_fraction
        progress = (self.budget_fraction() - start) / max(self.cfg.adv_fraction, 1e-8)
        return float(min(max(progress / max(self.cfg.adv_rampup, 1e-8), 0.0), 1.0))

    # -- steps -----------------------------------------------------------------------------
    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        c = torch.zeros([z.shape[0], 0])
        return self.G(z, c, update_emas=True, noise_mode="const")

    def regression_step(self, z: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """Stage 1: one Adam step of G on the regression loss."""
        fake = self._generate(z)
        loss, parts = regression_loss(fake, target, self.cfg.pyramid_levels)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        return {"reg": loss.item(), **parts}

    def adversarial_step(self, z: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """Stage 2: a G step (GAN + regression), then a D step on that fake and the target reals
        (logistic loss; R1 on reals every ``r1_interval`` steps, scaled by the interval)."""
        cfg = self.cfg
        c = torch.zeros([z.shape[0], 0])
        # G: non-saturating loss through a frozen D.
        self.D.requires_grad_(False)
        fake = self._generate(z)
        g_adv = F.softplus(-self.D(fake, c)).mean()
        reg, parts = regression_loss(fake, target, cfg.pyramid_levels)
        weight = self.adv_weight()
        self.opt_g.zero_grad(set_to_none=True)
        (weight * g_adv + cfg.reg_weight_adv * reg).backward()
        self.opt_g.step()

        # D: the fake from before G's update (one step stale, saves a G forward).
        self.D.requires_grad_(True)
        do_r1 = self.step % cfg.r1_interval == 0
        real = target.detach().requires_grad_(do_r1)
        real_logits = self.D(real, c)
        fake_logits = self.D(fake.detach(), c)
        d_loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        r1 = torch.zeros([])
        if do_r1:
            (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            r1 = grad.square().sum(dim=[1, 2, 3]).mean()
            d_loss = d_loss + r1 * (self.r1_gamma / 2) * cfg.r1_interval
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        out = {"reg": reg.item(), **parts, "g_adv": g_adv.item(), "d": d_loss.item()}
        out["adv_w"] = weight
        out["D(real)"] = real_logits.mean().item()
        out["D(fake)"] = fake_logits.mean().item()
        if do_r1:
            out["r1"] = r1.item()
        return out

    @torch.no_grad()
    def update_ema(self) -> None:
        """G_ema <- lerp toward G (half-life ema_kimg, ramped up early); buffers (w_avg) copied."""
        cfg = self.cfg
        ema_nimg = min(cfg.ema_kimg * 1000, self.nimg * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    @torch.no_grad()
    def validation_loss(self, net: torch.nn.Module | None = None) -> float:
        """Regression loss of ``net`` (default G_ema) on the fixed validation batch."""
        net = self.G_ema if net is None else net
        c = torch.zeros([self.val_z.shape[0], 0])
        fake = net(self.val_z, c, noise_mode="const")
        return float(regression_loss(fake, self.val_target, self.cfg.pyramid_levels)[0])

    # -- checkpoints -----------------------------------------------------------------------
    def state(self) -> dict:
        """Everything to resume: state dicts, optimiser states, counters, RNG, config."""
        cfg = asdict(self.cfg)
        cfg["betas"] = list(cfg["betas"])
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "G": self.G.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "step": self.step,
            "nimg": self.nimg,
            "elapsed": self.elapsed,
            "z_gen": self.z_gen.get_state(),
            "generator_kwargs": self.cfg.generator_kwargs(),
            "discriminator_kwargs": self.cfg.discriminator_kwargs(),
            "config": {k: v for k, v in cfg.items() if isinstance(v, int | float | str | list)},
        }

    def save_checkpoint(self, path: str) -> None:
        state = self.state()  # a crash while writing never leaves a half checkpoint
        write_atomically(path, lambda temporary: torch.save(state, temporary))

    def load_checkpoint(self, path: str) -> None:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint")
        for key, ours in (
            ("generator_kwargs", self.cfg.generator_kwargs()),
            ("discriminator_kwargs", self.cfg.discriminator_kwargs()),
        ):
            if ckpt[key] != ours:
                raise ValueError(f"{path}: {key} {ckpt[key]} differ from this run's {ours}")
        self.G.load_state_dict(ckpt["G"])
        self.G_ema.load_state_dict(ckpt["G_ema"])
        self.D.load_state_dict(ckpt["D"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        self.step, self.nimg, self.elapsed = ckpt["step"], ckpt["nimg"], ckpt["elapsed"]
        self.z_gen.set_state(ckpt["z_gen"])

    # -- outputs ---------------------------------------------------------------------------
    def model(self, source: str) -> GanModel:
        """G_ema and D as a GanModel (both set to eval, no grad: call at the end)."""
        architecture = {
            "kind": "stylegan2",
            "format": "latentmirror-demo",
            "generator": {"class": "Generator", "kwargs": self.cfg.generator_kwargs()},
            "discriminator": {"class": "Discriminator", "kwargs": self.cfg.discriminator_kwargs()},
        }
        g = copy.deepcopy(self.G_ema)
        d = copy.deepcopy(self.D)
        return GanModel(g, d, architecture, content_hash="", source=source)

    @torch.no_grad()
    def write_sample_grid(self, path: str, rows: int = 8, zoom: int = 2) -> None:
        """``rows x rows`` faces of G_ema from fixed random z (seed 0), as a PNG."""
        gen = torch.Generator().manual_seed(0)
        z = torch.randn([rows * rows, self.cfg.z_dim], generator=gen)
        c = torch.zeros([16, 0])
        imgs = torch.cat([self.G_ema(zb, c[: len(zb)], noise_mode="const") for zb in z.split(16)])
        imgs = imgs.add(1).div(2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        grid = faces.make_grid(imgs, columns=rows)
        if zoom > 1:
            grid = cv2.resize(grid, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
        if not cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write the sample grid {path}")

    # -- the loop --------------------------------------------------------------------------
    def done(self) -> bool:
        if self.cfg.max_steps is not None:
            return self.step >= self.cfg.max_steps
        return self.elapsed >= self.cfg.minutes * 60.0

    def run(self, log=print) -> dict:
        """Train until the budget is spent; returns a summary (losses, counters, paths)."""
        cfg = self.cfg
        ckpt_path, grid_path = cfg.default_paths()
        for path in (cfg.out, ckpt_path, grid_path):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        summary = {"start_step": self.step, "val_first": self.validation_loss(self.G)}
        log(
            f"G {_count(self.G):,} params, D {_count(self.D):,} params, num_ws {self.G.num_ws}; "
            f"start step {self.step}, val loss {summary['val_first']:.4f}"
        )
        t_mark = time.perf_counter()
        last_log = last_ckpt = t_mark
        window = {"img": 0, "t": 0.0, "losses": {}, "count": {}}
        try:
            while not self.done():
                t0 = time.perf_counter()
                stage = self.stage()
                z = torch.randn([cfg.batch, cfg.z_dim], generator=self.z_gen)
                target = render_targets(z, cfg.resolution, cfg.supersample)
                for group in self.opt_g.param_groups:
                    group["lr"] = self.g_learning_rate()
                if stage == 1:
                    losses = self.regression_step(z, target)
                else:
                    losses = self.adversarial_step(z, target)
                self.step += 1
                self.nimg += cfg.batch
                self.update_ema()
                now = time.perf_counter()
                self.elapsed += now - t0
                _accumulate(window, losses, cfg.batch, now - t0)
                if now - last_log >= cfg.progress_seconds or self.done():
                    log(self._progress_line(stage, window))
                    window = {"img": 0, "t": 0.0, "losses": {}, "count": {}}
                    last_log = time.perf_counter()
                if now - last_ckpt >= cfg.checkpoint_minutes * 60.0:
                    self.save_checkpoint(ckpt_path)
                    last_ckpt = time.perf_counter()
        except KeyboardInterrupt:
            self.save_checkpoint(ckpt_path)
            log(f"interrupted: checkpoint {ckpt_path} (resume with --resume)")
            raise
        self.save_checkpoint(ckpt_path)
        summary.update(
            step=self.step,
            nimg=self.nimg,
            elapsed=self.elapsed,
            val_last=self.validation_loss(self.G),
            val_ema=self.validation_loss(),
            checkpoint=ckpt_path,
        )
        save_safetensors(self.model(cfg.out), cfg.out, dtype=torch.float16)
        self.write_sample_grid(grid_path)
        summary.update(out=cfg.out, grid=grid_path, size=os.path.getsize(cfg.out))
        log(
            f"done: step {self.step}, {self.nimg:,} images, {self.elapsed / 60:.1f} min; "
            f"val loss G {summary['val_last']:.4f} G_ema {summary['val_ema']:.4f}; wrote "
            f"{cfg.out} ({summary['size'] / 1e6:.2f} MB), {grid_path}, {ckpt_path}"
        )
        return summary

    def _progress_line(self, stage: int, window: dict) -> str:
        rate = window["img"] / max(window["t"], 1e-9)
        means = {k: v / window["count"][k] for k, v in window["losses"].items()}
        losses = " ".join(f"{k} {v:.4f}" for k, v in means.items())
        return (
            f"step {self.step} | stage {stage} | kimg {self.nimg / 1000:.1f} | {rate:.1f} img/s | "
            f"lr {self.opt_g.param_groups[0]['lr']:.5f} | "
            f"{losses} | val(G_ema) {self.validation_loss():.4f} | "
            f"{_clock(self.elapsed)} / {self._budget_text()}"
        )

    def _budget_text(self) -> str:
        if self.cfg.max_steps is not None:
            return f"{self.cfg.max_steps} steps"
        return _clock(self.cfg.minutes * 60.0)


def _accumulate(window: dict, losses: dict[str, float], images: int, seconds: float) -> None:
    window["img"] += images
    window["t"] += seconds
    for k, v in losses.items():
        window["losses"][k] = window["losses"].get(k, 0.0) + v
        window["count"][k] = window["count"].get(k, 0) + 1


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


# ----------------------------------------------------------------------------------------------
# Entry points.


def train(cfg: TrainConfig, log=print) -> dict:
    """Build (or resume) a run from ``cfg`` and train it; returns :meth:`Trainer.run`'s summary."""
    torch.set_num_threads(cfg.threads)
    cv2.setNumThreads(1)  # the renderer runs between steps; its threads would fight torch's
    if cfg.resolution < 8 or cfg.resolution & (cfg.resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 8, got {cfg.resolution}")
    trainer = Trainer(cfg)
    if cfg.resume:
        trainer.load_checkpoint(cfg.resume)
        log(f"resumed {cfg.resume}: step {trainer.step}, {_clock(trainer.elapsed)} spent")
    return trainer.run(log)


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(
        prog="python -m latentmirror.training.train_demo",
        description="Train the bundled demo face StyleGAN2 on procedural faces (CPU, wall-clock "
        "budget). Writes OUT (fp16 safetensors: G_ema + D), a sample grid PNG and a checkpoint.",
    )
    p.add_argument("out", help="output .safetensors")
    p.add_argument("--minutes", type=float, default=85.0, help="training budget (default 85)")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", help="checkpoint to continue from (its time counts)")
    p.add_argument("--sample-grid", help="PNG of 8x8 samples (default: OUT with .png)")
    p.add_argument("--checkpoint", help="checkpoint path (default: OUT with .train-ckpt)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--batch", type=int, default=16)
    a = p.parse_args(argv)
    return TrainConfig(
        out=a.out,
        minutes=a.minutes,
        resolution=a.resolution,
        seed=a.seed,
        resume=a.resume,
        sample_grid=a.sample_grid,
        checkpoint=a.checkpoint,
        threads=a.threads,
        batch=a.batch,
    )


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    train(cfg, log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
