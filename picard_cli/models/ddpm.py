"""DDPM building blocks on diffusers (spec: ddpm-fid-alphafold §1): the reference
UNet2DModel, the DDPMScheduler, a throughput sampling loop, fixed held-out loss triples and atomic
checkpoints. Images live in [-1, 1] (the reference's Normalize(0.5, 0.5)); uint8 on the way out.

Notation (Ho et al. 2020; paper App. B.1): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, the network
eps_theta(x_t, t) predicts eps, the loss is ||eps - eps_theta(x_t, t)||^2 with t ~ U{0, ..., T-1}.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

PAPER_CHANNELS = (128, 128, 256, 256, 512, 512)


def build_unet(
    resolution: int = 32,
    channels=PAPER_CHANNELS,
    layers_per_block: int = 2,
    attn_down: int = 4,
    head_dim: int = 8,
    norm_groups: int = 32,
    dropout: float = 0.0,
):
    """The train_unconditional.py default UNet2DModel (spec §1.1): down blocks Down x4, AttnDown, Down;
    up blocks mirror them (attention at up index len-1-attn_down = 1). 113,673,219 parameters at 32x32
    with the paper's channels. ``attn_down=-1``: no attention block (the mid-block keeps its own)."""
    from diffusers import UNet2DModel

    n = len(channels)
    down = tuple("AttnDownBlock2D" if i == attn_down else "DownBlock2D" for i in range(n))
    up = tuple("AttnUpBlock2D" if i == n - 1 - attn_down else "UpBlock2D" for i in range(n))
    return UNet2DModel(
        sample_size=resolution,
        in_channels=3,
        out_channels=3,
        layers_per_block=layers_per_block,
        block_out_channels=tuple(channels),
        down_block_types=down,
        up_block_types=up,
        attention_head_dim=head_dim,
        norm_num_groups=norm_groups,
        dropout=dropout,
    )


def build_scheduler(T: int, beta_schedule: str = "linear", variance_type: str = "fixed_small", zero_snr: bool = False):
    """``DDPMScheduler(num_train_timesteps=T)`` with the reference's defaults: linear betas 1e-4..0.02 for
    every T (not rescaled by 1000/T), epsilon prediction, clip_sample, "leading" spacing."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=T,
        beta_schedule=beta_schedule,
        variance_type=variance_type,
        rescale_betas_zero_snr=zero_snr,
        prediction_type="epsilon",
    )


def alpha_bar_T(sched) -> float:
    """abar at the last timestep t = T: the signal fraction left in x_T (spec §1.2 table)."""
    return float(sched.alphas_cumprod[-1])


def to_unit(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float in [-1, 1] (ToTensor then Normalize(0.5, 0.5))."""
    return x_uint8.float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] (B, 3, H, W) -> uint8 (B, H, W, 3) as saved: round(clamp((x + 1) / 2, 0, 1) * 255)."""
    x = ((x.float() + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def pool_uint8(images: np.ndarray, resolution: int) -> np.ndarray:
    """(N, 32, 32, 3) uint8 -> (N, r, r, 3) by block averaging (32 / r must be an integer)."""
    f = images.shape[1] // resolution
    if f == 1:
        return images
    x = images.reshape(len(images), resolution, f, resolution, f, 3).astype(np.float32).mean((2, 4))
    return np.round(x).astype(np.uint8)


# ----------------------------------------------------------------------------------------- sampling
@torch.inference_mode()
def sample(
    unet, sched, n: int, steps: int | None = None, *, seed: int = 0, batch: int = 256, amp=None, device="cpu"
) -> np.ndarray:
    """Ancestral DDPM sampling of ``n`` images with ``steps`` denoising steps (default T; with
    ``steps`` < T ``set_timesteps`` picks them with "leading" spacing). Written for throughput:
    large batches, seeded generators, bf16 autocast when ``amp`` says so. x_T of image i is
    :func:`initial_noise` (seed, i): the same for every model, step count, batch size and device (the
    Fig. 6 / 7 grids); the noise of the denoising steps comes from one device generator per batch b,
    seeded (seed, b). Returns uint8 (n, H, W, 3)."""
    import contextlib

    from diffusers import DDPMScheduler

    amp = amp or contextlib.nullcontext
    T = sched.config.num_train_timesteps
    steps = steps or T
    s = DDPMScheduler.from_config(sched.config)  # private copy: set_timesteps mutates it
    s.set_timesteps(steps)  # raises ValueError when steps > T (the pipeline default's trap)
    ts = [int(t) for t in s.timesteps]
    dev = torch.device(device)
    t_dev = [torch.tensor(t, device=dev) for t in ts]
    was_training = unet.training
    unet.eval()
    size = unet.config.sample_size
    out = []
    for b, start in enumerate(range(0, n, batch)):
        m = min(batch, n - start)
        x = initial_noise(seed, start, m, size).to(dev)  # x_T ~ N(0, I)
        gen = torch.Generator(device=dev).manual_seed(seed * 1_000_003 + b + 7919)
        for t, td in zip(ts, t_dev):  # x_{t_prev} ~ p_theta(x_{t_prev} | x_t)
            with amp():
                eps = unet(x, td).sample
            x = s.step(eps.float(), t, x, generator=gen).prev_sample
        out.append(to_uint8(x))
    unet.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, size, size, 3), np.uint8)


def initial_noise(seed: int, start: int, m: int, size: int) -> torch.Tensor:
    """x_T of images start..start+m-1: image i from its own CPU generator seeded (seed, i)."""
    g = torch.Generator()
    out = torch.empty((m, 3, size, size))
    for j in range(m):
        g.manual_seed(seed * 1_000_003 + start + j)
        out[j] = torch.randn((3, size, size), generator=g)
    return out


# ------------------------------------------------------------------------------ held-out loss
def fixed_triples(n: int, resolution: int, seed: int):
    """(u, eps): fixed relative timesteps u in [0, 1) (stratified, one per 1/n slice, shuffled) and
    noise, the same for every T, checkpoint and run, so held-out losses are comparable; a model with
    T timesteps is evaluated at t = floor(u T)."""
    g = torch.Generator().manual_seed(seed)
    u = (torch.randperm(n, generator=g).double() + torch.rand(n, generator=g, dtype=torch.float64)) / n
    eps = torch.randn((n, 3, resolution, resolution), generator=g)
    return u, eps


@torch.no_grad()
def triple_losses(
    unet, sched, x0_uint8: torch.Tensor, u: torch.Tensor, eps: torch.Tensor, *, batch: int = 256, amp=None
) -> torch.Tensor:
    """Per-triple noise-prediction MSE (mean over pixels and channels) at t = floor(u T)."""
    import contextlib

    amp = amp or contextlib.nullcontext
    T = sched.config.num_train_timesteps
    dev = x0_uint8.device
    was_training = unet.training
    unet.eval()
    out = []
    for i in range(0, len(x0_uint8), batch):
        x0 = to_unit(x0_uint8[i : i + batch])
        e = eps[i : i + batch].to(dev)
        t = (u[i : i + batch] * T).long().clamp_(0, T - 1).to(dev)
        xt = sched.add_noise(x0, e, t)  # x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
        with amp():
            pred = unet(xt, t).sample
        out.append((pred.float() - e).pow(2).flatten(1).mean(1).cpu())
    unet.train(was_training)
    return torch.cat(out)


def binned(u: torch.Tensor, losses: torch.Tensor, bins: int) -> dict:
    """Mean loss per t/T bin (Fig. 8 top: timesteps normalised to [0, 1])."""
    idx = (u * bins).long().clamp_(0, bins - 1)
    means = [float(losses[idx == b].mean()) if (idx == b).any() else None for b in range(bins)]
    return {
        "t_over_T": [round((b + 0.5) / bins, 6) for b in range(bins)],
        "loss": [None if m is None else float(f"{m:.6g}") for m in means],
    }


# ------------------------------------------------------------------------------------ checkpoints
# Thin wrappers over picard_cli/checkpoint.py (atomic, weights_only=True); the rng layout keeps the
# DDPM's "train_generator" key, so checkpoints written before the shared module still resume.
def rng_state(gen: torch.Generator) -> dict:
    from ..checkpoint import rng_state as _rng_state

    return _rng_state() | {"train_generator": gen.get_state()}


def set_rng_state(state: dict, gen: torch.Generator) -> None:
    from ..checkpoint import set_rng_state as _set_rng_state

    _set_rng_state(state)
    gen.set_state(state["train_generator"])


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (``picard_cli.checkpoint.save``)."""
    from ..checkpoint import save

    save(path, state)


def load_checkpoint(path: Path) -> dict | None:
    """The checkpoint at ``path`` (None when absent; ``picard_cli.checkpoint.load``: weights_only=True,
    stale temporary files removed, one-line PicardError when unreadable)."""
    from ..checkpoint import load

    return load(path)


def save_uint8(path: Path, images: np.ndarray) -> None:
    """An .npy of uint8 images, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, images)
    os.replace(tmp, path)
