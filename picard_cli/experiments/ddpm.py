"""DDPMs trained with T = 100, 200, ..., 1000 diffusion timesteps on CIFAR-10: the paper's Figures 2, 6,
7 and 8 (../shared/paper/paper.md §4 "Diffusion models", App. B.1; spec
../shared/specs/ddpm-fid-alphafold.md §1: the diffusers reference script, its defaults and pitfalls).

One run = one model with T timesteps (``picard sweep ddpm --steps 100:1000``). As the reference
``train_unconditional.py``: UNet2DModel (channels 128,128,256,256,512,512; 2 ResNet blocks each;
attention at down index 4 / up index 1), ``DDPMScheduler(num_train_timesteps=T)`` with linear betas
1e-4..0.02 for every T, AdamW (lr 1e-4, betas 0.95/0.999, eps 1e-8, wd 1e-6), 500 warmup steps then
cosine to 0 at ``train_steps``, grad-clip 1, batch 64, eps-prediction MSE with t ~ U{0..T-1}, EMA
optional (off, as the reference's default). Because the betas are not rescaled, abar_T depends on T
(0.36 at T = 100, 4e-5 at T = 1000); it is recorded next to every FID.

Measurements (beyond the reference, spec §1.4): smoothed train loss; a held-out test loss on fixed
(x0, t/T, eps) triples, the same for every checkpoint and T; the per-timestep loss binned by t/T
(Fig. 8 top); FID at evaluation checkpoints (Fig. 8 bottom) and at the end (Fig. 2 right), N and the
reference split recorded; sample grids with the same noise for every model (Fig. 6) and, for the
T = ``fig7_for_T`` model, with 100..1000 sampling steps (Fig. 7). Training checkpoints atomically
every ``checkpoint_every`` steps into the run's folder and resumes from there.

Data parallel (``--nproc N``, ``picard_cli/distributed.py``): each process trains on its slice of
every global batch of ``batch_size``; rank 0 evaluates, checkpoints and returns the outcome. The
checkpoint does not depend on N (a run resumes under another N), and N processes follow the
single-process loss curve (exactly up to summation order while ``dropout`` is 0).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..metrics.curves import SMOOTH_ALPHA, smooth
from ..recipes import SEED_RANGE, as_config, fld
from ..experiment import Experiment, Outcome, TableSpec
from ..registry import register
from ..training import optimizer_step

FIG_STEPS = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]


@dataclass
class DdpmConfig:
    timesteps: int = fld(
        1000, "T: diffusion timesteps for training and sampling (--steps sweeps it)", range=(1, 100000)
    )
    beta_schedule: str = fld(
        "linear",
        "DDPMScheduler beta schedule (reference: linear 1e-4..0.02 for every T)",
        choices=("linear", "scaled_linear", "squaredcos_cap_v2"),
    )
    variance_type: str = fld(
        "fixed_small",
        "sampling variance (reference: fixed_small; Ho et al.: fixed_large)",
        choices=("fixed_small", "fixed_large"),
    )
    zero_snr: bool = fld(False, "EXTENSION: rescale betas to zero terminal SNR (x_T pure noise for every T)")
    resolution: int = fld(32, "image side; 16 or 8 = block-averaged CIFAR-10 (quick scale)", choices=(8, 16, 32))
    channels: list[int] = fld([128, 128, 256, 256, 512, 512], "UNet block_out_channels", range=(1, 4096))
    layers_per_block: int = fld(2, "ResNet blocks per UNet block", range=(1, 16))
    attn_down: int = fld(4, "index of the down block with attention (up block len-1-index); -1 = none", range=(-1, 15))
    head_dim: int = fld(8, "UNet attention_head_dim", range=(1, 4096))
    norm_groups: int = fld(32, "GroupNorm groups", range=(1, 4096))
    dropout: float = fld(0.0, "UNet dropout (reference 0.0; Ho et al. 0.1)", range=(0.0, 0.99))
    source: str = fld(
        "auto", "CIFAR-10 source: auto | torchvision | npz (offline arrays)", choices=("auto", "torchvision", "npz")
    )
    train_n: int = fld(0, "training images (0 = all; a class-balanced prefix otherwise)", range=(0, 10**7))
    test_n: int = fld(0, "test images for the held-out loss (0 = all)", range=(0, 10**7))
    train_steps: int = fld(200000, "optimizer steps (paper: up to 200k)", range=(1, 10**9))
    batch_size: int = fld(64, "images per step", range=(1, 10**6))
    lr: float = fld(1e-4, "AdamW learning rate", range=(0.0, math.inf))
    lr_schedule: str = fld(
        "cosine",
        "after warmup: cosine to 0 at train_steps (reference) or constant",
        choices=("cosine", "constant_with_warmup"),
    )
    warmup_steps: int = fld(500, "linear warmup steps", range=(0, 10**9))
    adam_beta1: float = fld(0.95, "AdamW beta1", range=(0.0, 1.0))
    adam_beta2: float = fld(0.999, "AdamW beta2", range=(0.0, 1.0))
    adam_eps: float = fld(1e-8, "AdamW eps", range=(0.0, 1.0))
    weight_decay: float = fld(1e-6, "AdamW decoupled weight decay", range=(0.0, 10.0))
    grad_clip: float = fld(1.0, "gradient-norm clip (0 = off)", range=(0.0, 1e9))
    random_flip: bool = fld(False, "horizontal flips (reference default: off)")
    ema: bool = fld(False, "EMA of the weights (reference --use_ema, off by default); evaluations then use it")
    ema_max_decay: float = fld(0.9999, "EMA max decay", range=(0.0, 1.0))
    ema_power: float = fld(0.75, "EMA warmup power: decay = min(max, 1 - (1 + step)^-power)", range=(0.0, 10.0))
    amp: str = fld("auto", "auto: bf16 autocast on CUDA, fp32 on CPU; off: always fp32", choices=("auto", "off"))
    channels_last: bool = fld(True, "channels_last memory format on CUDA")
    compile: bool = fld(False, "torch.compile the training forward")
    log_every: int = fld(100, "train-loss log interval (steps; mean over the interval)", range=(1, 10**9))
    eval_every: int = fld(10000, "held-out loss (and FID with fid_n_steps) every this many steps", range=(1, 10**9))
    checkpoint_every: int = fld(5000, "atomic checkpoint every this many steps (resume point)", range=(1, 10**9))
    loss_bins: int = fld(20, "t/T bins of the per-timestep loss (Fig. 8 top)", range=(1, 1000))
    eval_seed: int = fld(
        0, "seed of the fixed test triples and of the sample noise (same for every model)", range=SEED_RANGE
    )
    fid: bool = fld(True, "FID of the final samples vs training images (needs Inception weights)")
    fid_n: int = fld(10000, "samples for the final FID (Ho et al.: 50k)", range=(0, 10**7))
    fid_n_steps: int = fld(
        1000, "samples for FID at evaluation checkpoints (Fig. 8 bottom; 0 = none)", range=(0, 10**7)
    )
    sample_batch: int = fld(500, "images per sampling batch", range=(1, 10**6))
    grid_n: int = fld(10, "images per model in the sample grids (Figs. 6, 7)", range=(1, 1000))
    fig7_steps: list[int] = fld(
        FIG_STEPS, "sampling steps of the Fig. 7 grid (set_timesteps(n), leading spacing)", range=(1, 100000)
    )
    fig7_for_T: int = fld(
        1000, "only the model with this T draws the Fig. 7 grid (0 = every model, n <= T)", range=(0, 100000)
    )
    seed: int = fld(0, "run seed: initial weights, data order, training noise and t", per_run=True)


class Ddpm(Experiment):
    name = "ddpm"
    config_cls = DdpmConfig
    default_recipe = "fig2.yaml"
    batchable = False
    data_parallel = True  # --nproc N: torchrun + DDP (picard_cli/distributed.py)
    steps_field = "timesteps"  # `--steps 100:1000` sweeps T
    axis_label = "T"
    table = TableSpec(
        title="Figs. 2/8: DDPMs vs diffusion timesteps T on CIFAR-10 (held-out loss, smoothed train loss, FID)",
        rows=("test loss (held-out)", "train loss (smoothed)", "FID"),
        cols=tuple(f"T = {t}" for t in FIG_STEPS),
        paper={},  # the paper gives these only as plots (Figs. 2, 8)
        metrics={"last": "test_loss"},
        default_protocol="last",
        metric_scale=1.0,
        digits=4,
        show_params=False,
    )

    @staticmethod
    def row(cfg):
        return "test loss (held-out)"

    @staticmethod
    def col(cfg):
        return f"T = {cfg['timesteps']}"

    @staticmethod
    def match(cell, wanted, given):
        return 0 if cell.timesteps == wanted.timesteps else None

    def table_values(self, record: dict, protocol: str) -> list[dict]:
        m, ex, col = record["metrics"], record.get("extra") or {}, self.col(record["config"])
        out = [
            {
                "row": "test loss (held-out)",
                "col": col,
                "value": m.get("test_loss"),
                "std_within": ex.get("test_loss_sem"),
                "std_label": "s.e.m. over test triples",
            },
            {"row": "train loss (smoothed)", "col": col, "value": m.get("train_loss_smoothed")},
        ]
        fid = ex.get("fid")
        if fid is None:
            return out + [{"row": "FID", "col": col, "value": None, "note": "fid=false"}]
        name = fid.get("metric")
        label = "FID" if name in (None, "fid") else f"{name}{'' if fid.get('verified') else ', unverified'}"
        label += f" (N={fid.get('n_fake')} vs train)"
        return out + [{"row": label, "col": col, "value": fid.get("value"), "note": fid.get("note")}]

    def run_group(self, configs, ctx):
        return [run_one(c, ctx) for c in configs]

    @staticmethod
    def check_nproc(cfg: DdpmConfig | dict, nproc: int) -> None:
        c = as_config(DdpmConfig, cfg)
        if c.batch_size % nproc:
            from ..errors import RecipeError

            raise RecipeError(
                f"--nproc {nproc}: batch_size={c.batch_size} is not divisible by {nproc} "
                f"(each process takes batch_size / nproc images of every step)"
            )

    @staticmethod
    def data_facts(cfg: DdpmConfig | dict, data_root: Path):
        from ..data.cifar10 import facts

        c = as_config(DdpmConfig, cfg)
        return facts(data_root, c.source, {"train": c.train_n, "test": c.test_n})


# ------------------------------------------------------------------------------------------- run
@dataclass
class Data:
    """CIFAR-10 at the model's resolution: the uint8 training arrays (FID's real images) and both
    splits as uint8 (N, 3, R, R) tensors on the device (no per-image transforms)."""

    train: Any  # load_cifar10's result: images, labels, meta
    test: Any
    train_uint8: Any  # (N, R, R, 3) numpy, block-averaged to R
    Xtr: Any
    Xte: Any


@dataclass
class Model:
    """What training updates: eps_theta (the UNet), the noise schedule (betas), AdamW and its LR
    schedule, the optional EMA of the weights, and the device generator of the training noise."""

    unet: Any
    sched: Any
    opt: Any
    lr_sched: Any
    ema: Any  # diffusers' EMAModel, or None
    gen: Any  # flips, eps and t of every training step
    device: Any
    bf16: bool  # bf16 autocast (amp=auto on CUDA)
    channels_last: bool  # channels_last inputs (channels_last=true on CUDA)

    def amp(self):
        import torch

        return torch.autocast("cuda", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    @contextlib.contextmanager
    def eval_weights(self):
        """Evaluations see the EMA weights when EMA is on (the reference: swap in, restore after)."""
        if self.ema is None:
            yield
            return
        self.ema.store(self.unet.parameters())
        self.ema.copy_to(self.unet.parameters())
        try:
            yield
        finally:
            self.ema.restore(self.unet.parameters())


@dataclass
class TrainState:
    """A run's progress: what a checkpoint's ``state`` holds (the keys of format 1)."""

    step: int = 0
    train_log: dict = field(default_factory=lambda: {"step": [], "loss": []})
    test_log: dict = field(default_factory=lambda: {"step": [], "loss": []})
    fid_log: dict = field(default_factory=lambda: {"step": [], "value": [], "n": []})
    acc: list = field(default_factory=lambda: [0.0, 0])  # train-loss sum since the last log (process mean), steps
    resumed_from: list = field(default_factory=list)  # the step of every resume
    train_s: float = 0.0  # training seconds over all sessions, evaluations excluded

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class DdpmRun:
    """One run: its config and context, data, model, progress, checkpoint file, Inception weights
    (None: FID n/a) and the fixed held-out triples (u, eps) of ``models.ddpm.fixed_triples``."""

    c: DdpmConfig
    ctx: Any
    data: Data
    m: Model
    st: TrainState
    path: Path | None  # <run folder>/checkpoint.pt; None without a run folder (never checkpoints)
    weights: Any
    u: Any
    eps: Any

    def held_out_losses(self):
        """Per-triple eps-MSE at t = floor(u T) (the same triples for every T and checkpoint)."""
        from ..models import ddpm as D

        return D.triple_losses(
            self.m.unet, self.m.sched, self.data.Xte, self.u, self.eps, batch=self.c.sample_batch, amp=self.m.amp
        )

    def sample(self, n: int, steps: int | None = None):
        """``n`` images with ``steps`` denoising steps (default T), from the same x_T for every model."""
        from ..models import ddpm as D

        return D.sample(
            self.m.unet,
            self.m.sched,
            n,
            steps,
            seed=self.c.eval_seed,
            batch=self.c.sample_batch,
            amp=self.m.amp,
            device=self.m.device,
        )

    def fid(self, samples) -> dict:
        from ..models import ddpm as D

        return run_fid(
            samples, self.data.train_uint8, self.data.train.meta, self.weights, self.ctx, self.c.resolution
        ) | {"alpha_bar_T": D.alpha_bar_T(self.m.sched), "T": self.c.timesteps}


def run_one(c: DdpmConfig | dict, ctx) -> dict:
    """Train one DDPM with T = ``c.timesteps`` (resuming from the run's checkpoint), evaluating at
    checkpoints; then the final held-out loss, samples, grids and FID."""
    from .. import distributed as dist

    c = as_config(DdpmConfig, c)
    run = setup(c, ctx)
    diverged = train(run)
    if not dist.is_main():  # rank 0 evaluates and returns the outcome
        return Outcome("ok")
    return outcome(run, diverged)


def setup(c: DdpmConfig, ctx) -> DdpmRun:
    """Data, model, the state resumed from the run's checkpoint, FID weights and the held-out
    triples, in an order that keeps every random draw where it was."""
    import torch

    from ..models import ddpm as D

    dev = torch.device(ctx.device)
    check_unet(c)
    data = load_data(c, ctx.data_root, dev)
    m = build_model(c, dev)
    path = ctx.run_dir / "checkpoint.pt" if getattr(ctx, "run_dir", None) else None
    st = resume(m, c, path)
    ctx.on_phase("training" + (f" (resumed at step {st.step})" if st.step else ""))
    if st.step:
        ctx.on_epoch(st.step, c.train_steps, "resumed")
    weights = None
    if c.fid and ctx.fid_weights != "none" and (c.fid_n or c.fid_n_steps):
        from ..metrics import fid as fidlib

        weights = fidlib.resolve_weights(ctx.fid_weights, ctx.allow_unverified_weights)
    u, eps = D.fixed_triples(len(data.Xte), c.resolution, c.eval_seed)
    return DdpmRun(c, ctx, data, m, st, path, weights, u, eps)


def check_unet(c: DdpmConfig) -> None:
    from ..errors import PicardError

    n, R = len(c.channels), c.resolution
    if c.attn_down >= n:
        raise PicardError(f"attn_down={c.attn_down} but the UNet has {n} blocks")
    if R >> (n - 1) < 1:
        raise PicardError(f"{n} UNet blocks downsample {R}x{R} below 1 pixel")


def load_data(c: DdpmConfig, data_root, dev) -> Data:
    """CIFAR-10 train (``train_n``) and test (``test_n``), block-averaged to ``resolution``."""
    import numpy as np
    import torch

    from ..data.cifar10 import load_cifar10
    from ..errors import DataError
    from ..models import ddpm as D

    train = load_cifar10(data_root, "train", c.source, limit=c.train_n)
    test = load_cifar10(data_root, "test", c.source, limit=c.test_n)
    if len(train.images) < c.batch_size:
        raise DataError(f"{len(train.images)} training images < batch_size={c.batch_size}")
    tr_np, te_np = D.pool_uint8(train.images, c.resolution), D.pool_uint8(test.images, c.resolution)

    def to(a):
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).to(dev)

    return Data(train, test, tr_np, to(tr_np), to(te_np))


def make_optimizer(c: DdpmConfig, unet, cuda: bool):
    """AdamW (fused on CUDA) and the learning-rate schedule of a run; the training and `picard plan`'s
    probe build them here, so both measure the same optimiser."""
    import torch
    from diffusers.optimization import get_scheduler

    opt = torch.optim.AdamW(
        unet.parameters(),
        lr=c.lr,
        betas=(c.adam_beta1, c.adam_beta2),
        eps=c.adam_eps,
        weight_decay=c.weight_decay,
        fused=cuda or None,
        foreach=None if cuda else True,
    )
    return opt, get_scheduler(c.lr_schedule, opt, num_warmup_steps=c.warmup_steps, num_training_steps=c.train_steps)


def build_model(c: DdpmConfig, dev) -> Model:
    """The reference's pieces (spec §1.1), initialised from the run seed: UNet2DModel, DDPMScheduler
    (betas 1e-4..0.02 for every T unless zero_snr), AdamW, warmup + cosine LR, optional EMA."""
    import random

    import numpy as np
    import torch

    from ..models import ddpm as D

    torch.manual_seed(c.seed)
    np.random.seed(c.seed % 2**32)
    random.seed(c.seed)
    cuda = dev.type == "cuda"
    unet = D.build_unet(
        c.resolution, c.channels, c.layers_per_block, c.attn_down, c.head_dim, c.norm_groups, c.dropout
    ).to(dev)
    if c.channels_last and cuda:
        unet = unet.to(memory_format=torch.channels_last)
    sched = D.build_scheduler(c.timesteps, c.beta_schedule, c.variance_type, c.zero_snr)
    from diffusers.training_utils import EMAModel

    opt, lr_sched = make_optimizer(c, unet, cuda)
    ema = (
        EMAModel(
            unet.parameters(),
            decay=c.ema_max_decay,
            use_ema_warmup=True,
            inv_gamma=1.0,
            power=c.ema_power,
            foreach=True,
        )
        if c.ema
        else None
    )
    gen = torch.Generator(device=dev).manual_seed(c.seed)
    return Model(
        unet, sched, opt, lr_sched, ema, gen, dev, bf16=c.amp == "auto" and cuda, channels_last=c.channels_last and cuda
    )


def resume(m: Model, c: DdpmConfig, path: Path | None) -> TrainState:
    """The progress of the run's last checkpoint (of the same config: the folder is named by its hash),
    with the weights, AdamW, the LR schedule, the EMA and every RNG restored; a fresh state without one."""
    from ..models import ddpm as D

    ck = D.load_checkpoint(path) if path else None
    if ck is None:
        return TrainState()
    from ..checkpoint import check_config

    check_config(ck, c, path)
    m.unet.load_state_dict(ck["model"])
    m.opt.load_state_dict(ck["optimizer"])
    m.lr_sched.load_state_dict(ck["lr_scheduler"])
    if m.ema is not None:
        m.ema.load_state_dict(ck["ema"])
        m.ema.to(m.device)
    D.set_rng_state(ck["rng"], m.gen)
    st = TrainState(**ck["state"])
    st.resumed_from.append(st.step)
    return st


def save_checkpoint(run: DdpmRun) -> None:
    """Rank 0 only (the model and optimizer are the same in every process); atomic."""
    from .. import distributed as dist
    from ..models import ddpm as D

    if run.path is None or not dist.is_main():
        return
    m = run.m
    D.save_checkpoint(
        run.path,
        {
            "format": 1,
            "config": asdict(run.c),
            "step": run.st.step,
            "model": m.unet.state_dict(),
            "ema": m.ema.state_dict() if m.ema is not None else None,
            "optimizer": m.opt.state_dict(),
            "lr_scheduler": m.lr_sched.state_dict(),
            "rng": D.rng_state(m.gen),
            "state": run.st.to_dict(),
        },
    )


def train_step(m: Model, fwd, images, c: DdpmConfig, mine=slice(None)):
    """One optimizer step of the reference loop (spec §1.1; App. B.1's loss with C(t) = 1) on uint8
    ``images`` (this process's part of a global batch of ``c.batch_size``): x_0 in [-1, 1], optionally
    flipped; eps ~ N(0, I) and t ~ U{0..T-1} drawn for the whole batch from ``m.gen`` and sliced by
    ``mine`` (the same numbers for any process count); x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps;
    loss ||eps - eps_theta(x_t, t)||^2 (mean); AdamW step after a grad-norm clip, LR step, EMA update.
    ``fwd`` is ``m.unet`` or its DDP / compiled wrapper. Returns the detached loss."""
    import torch

    from ..models import ddpm as D

    B, dev = c.batch_size, m.device
    x0 = D.to_unit(images)
    if c.random_flip:
        flip = torch.rand(B, generator=m.gen, device=dev)[mine] < 0.5
        x0 = torch.where(flip[:, None, None, None], x0.flip(3), x0)
    if m.channels_last:
        x0 = x0.contiguous(memory_format=torch.channels_last)
    noise = torch.randn((B, *x0.shape[1:]), generator=m.gen, device=dev)[mine]
    t = torch.randint(0, c.timesteps, (B,), generator=m.gen, device=dev)[mine]
    xt = m.sched.add_noise(x0, noise, t)
    with m.amp():
        pred = fwd(xt, t).sample
    loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
    optimizer_step(loss, m.unet.parameters(), m.opt, m.lr_sched, c.grad_clip)
    if m.ema is not None:
        m.ema.step(m.unet.parameters())
    return loss.detach()


def epoch_order(seed: int, epoch: int, n: int, dev):
    """The image order of an epoch: a function of (seed, epoch), so a resumed run replays it."""
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch)).to(dev)


def train(run: DdpmRun) -> bool:
    """Train from ``run.st.step`` to ``train_steps``: log the train loss every ``log_every`` steps,
    evaluate every ``eval_every`` (rank 0), checkpoint every ``checkpoint_every``. True when a logged
    loss was not finite (diverged: training stops there)."""
    import torch

    from .. import distributed as dist

    c, m, st = run.c, run.m, run.st
    ddp = dist.wrap(m.unet)  # DistributedDataParallel with --nproc > 1; checkpoints hold the bare unet's weights
    fwd = torch.compile(ddp) if c.compile else ddp
    N, B = len(run.data.Xtr), c.batch_size
    mine = dist.shard(B)  # this process's part of each global batch (all of it in a single process)
    per_epoch = N // B  # the last incomplete batch of an epoch is dropped (constant batch size)
    perm_epoch, perm = -1, None
    acc = torch.tensor(st.acc[0], dtype=torch.float64, device=m.device)
    count = st.acc[1]
    m.unet.train()
    t0 = time.perf_counter()
    diverged = False
    while st.step < c.train_steps:
        step = st.step
        if step // per_epoch != perm_epoch:
            perm_epoch = step // per_epoch
            perm = epoch_order(c.seed, perm_epoch, N, m.device)
        # every process draws the whole batch's randomness and keeps its slice: the same steps for any N
        idx = perm[(step % per_epoch) * B : (step % per_epoch + 1) * B][mine]
        acc += train_step(m, fwd, run.data.Xtr[idx], c, mine)
        count += 1
        st.step = step = step + 1
        if step % c.log_every == 0 or step == c.train_steps:
            mean = dist.mean(acc / count).item()  # over processes: the global batch's loss
            st.train_log["step"].append(step)
            st.train_log["loss"].append(mean)
            acc.zero_()
            count = 0
            if not math.isfinite(mean):
                diverged = True
                break
            run.ctx.on_epoch(step, c.train_steps, f"loss {mean:.4f}")
        if step % c.eval_every == 0 and step < c.train_steps:
            st.train_s += time.perf_counter() - t0
            if dist.is_main():  # the others wait at the next step's gradient all-reduce
                evaluate(run, step, c.fid_n_steps)
            t0 = time.perf_counter()
        if step % c.checkpoint_every == 0 or step == c.train_steps:
            st.acc = [dist.mean(acc).item(), count]  # the running loss sum, averaged: valid under any N
            st.train_s += time.perf_counter() - t0
            save_checkpoint(run)
            t0 = time.perf_counter()
    st.train_s += time.perf_counter() - t0
    return diverged


def evaluate(run: DdpmRun, step: int, n_fid: int) -> None:
    """At a training checkpoint (Fig. 8): the held-out loss, and the FID of ``n_fid`` samples."""
    c, st = run.c, run.st
    with run.m.eval_weights():
        losses = run.held_out_losses()
        st.test_log["step"].append(step)
        st.test_log["loss"].append(float(losses.mean()))
        if c.fid and n_fid and run.weights is not None:
            run.ctx.on_phase(f"sampling and FID at step {step} (N={n_fid})")
            samples = run.sample(n_fid)
            st.fid_log["step"].append(step)
            st.fid_log["value"].append(run.fid(samples)["value"])
            st.fid_log["n"].append(n_fid)


def outcome(run: DdpmRun, diverged: bool) -> dict:
    """The run's metrics and extra (rank 0): the training summary, then the final evaluation."""
    st, extra = run.st, summary(run)
    abar = extra["alpha_bar_T"]
    if diverged:
        return Outcome.diverged(Ddpm.table, extra, "train_loss_smoothed", alpha_bar_T=abar, steps_run=st.step)
    # training throughput over all sessions (evaluations excluded; steps redone after a kill counted once)
    extra["train_img_per_s"] = round(st.step * run.c.batch_size / max(st.train_s, 1e-9), 2)
    losses = final_evaluation(run, extra)
    log = st.train_log["loss"]
    metrics = {
        "test_loss": float(losses.mean()),
        "train_loss_smoothed": smooth(log)[-1],
        "train_loss_last": log[-1],
        "fid": (extra.get("fid") or {}).get("value"),
        "alpha_bar_T": abar,
        "steps_run": st.step,
    }
    return Outcome("ok", metrics, extra=extra)


def summary(run: DdpmRun) -> dict:
    from ..models import ddpm as D

    m, st = run.m, run.st
    abar = D.alpha_bar_T(m.sched)
    return {
        "n_params": sum(p.numel() for p in m.unet.parameters()),
        "amp": "bf16" if m.bf16 else "fp32",
        "alpha_bar_T": abar,
        "sqrt_alpha_bar_T": math.sqrt(abar),
        "scheduler": {
            k: m.sched.config[k]
            for k in (
                "beta_schedule",
                "beta_start",
                "beta_end",
                "variance_type",
                "clip_sample",
                "timestep_spacing",
                "rescale_betas_zero_snr",
            )
        },
        "eval_weights": "ema" if m.ema is not None else "raw",
        "resumed_from_step": st.resumed_from,
        "train_loss": st.train_log,
        "smoothing_alpha": SMOOTH_ALPHA,
        "train_s": round(st.train_s, 3),
        "samples": {"train": len(run.data.Xtr), "test": len(run.data.Xte)},
        "data": {"train": run.data.train.meta, "test": run.data.test.meta},
        "diffusers": _version("diffusers"),
    }


def final_evaluation(run: DdpmRun, extra: dict):
    """Held-out loss and per-t/T loss (Fig. 8 top), samples (the grid = the first grid_n, Fig. 6; FID
    on the first fid_n, Fig. 2 right), the Fig. 7 grids; into ``extra``. Returns the per-triple losses."""
    from ..models import ddpm as D

    c, st, ctx, T = run.c, run.st, run.ctx, run.c.timesteps
    # the FID-vs-step curve keeps one N: fid_n_steps, or fid_n when there are no checkpoint FIDs
    n_curve = c.fid_n_steps or c.fid_n
    n_final = max(c.grid_n, max(c.fid_n, n_curve) if (c.fid and run.weights is not None) else 0)
    with run.m.eval_weights():
        ctx.on_phase("evaluation (held-out loss)")
        losses = run.held_out_losses()
        ctx.on_phase(f"sampling ({n_final} images, T={T})")
        samples = run.sample(n_final)
        fig7 = [n for n in c.fig7_steps if n <= T] if c.fig7_for_T in (0, T) else []
        grids7 = [run.sample(c.grid_n, n) for n in fig7]
    st.test_log["step"].append(st.step)
    st.test_log["loss"].append(float(losses.mean()))
    if c.fid:
        extra["fid"] = final_fid(run, samples, n_curve)
    extra |= {
        "test_loss_curve": st.test_log,
        "fid_curve": st.fid_log,
        "loss_by_t": D.binned(run.u, losses, c.loss_bins),
        "test_loss_sem": float(losses.std() / math.sqrt(len(losses))) if len(losses) > 1 else None,
    }
    save_grids(run, samples, fig7, grids7, extra)
    return losses


def final_fid(run: DdpmRun, samples, n_curve: int) -> dict:
    """FID of the first fid_n samples; its N = n_curve value also ends the FID-vs-step curve."""
    c, st = run.c, run.st
    run.ctx.on_phase(f"FID (N={c.fid_n})")
    fid = run.fid(samples[: c.fid_n] if run.weights is not None else samples[:0])
    if fid["value"] is not None and n_curve:
        v = fid["value"] if n_curve == c.fid_n else run.fid(samples[:n_curve])["value"]
        st.fid_log["step"].append(st.step)
        st.fid_log["value"].append(v)
        st.fid_log["n"].append(n_curve)
    return fid


def save_grids(run: DdpmRun, samples, fig7: list, grids7: list, extra: dict) -> None:
    """The Fig. 6 grid (grid.npy) and the Fig. 7 grids (grid_steps.npy) into the run folder."""
    import numpy as np

    from ..models import ddpm as D

    c, ctx = run.c, run.ctx
    if not getattr(ctx, "run_dir", None):
        return
    D.save_uint8(ctx.run_dir / "grid.npy", samples[: c.grid_n])
    extra["grid"] = {
        "file": _rel(ctx, ctx.run_dir / "grid.npy"),
        "n": c.grid_n,
        "sampling_steps": c.timesteps,
        "seed": c.eval_seed,
    }
    if grids7:
        D.save_uint8(ctx.run_dir / "grid_steps.npy", np.stack(grids7))
        extra["fig7"] = {
            "file": _rel(ctx, ctx.run_dir / "grid_steps.npy"),
            "sampling_steps": fig7,
            "n": c.grid_n,
            "seed": c.eval_seed,
        }


def run_fid(samples, real, meta: dict, weights, ctx, resolution: int) -> dict:
    """FID of the samples vs the first len(samples) training images (Ho et al. compare with the training
    set), at the model's resolution; ``value`` None with a note when no Inception weights are available.
    The training images come in class-balanced order (``load_cifar10``), so the reference set holds
    every class equally."""
    from ..env import cache_dir
    from ..metrics import fid as fidlib

    n = max(len(samples), 2)
    key = {
        "dataset": "cifar10",
        "split": "train",
        "source": meta.get("source"),
        "lossy": bool(meta.get("lossy")),
        "n": min(n, len(real)),
        "resolution": resolution,
        "order": meta.get("order"),
    }
    out = fidlib.compute_fid(
        samples, real[:n], weights=weights, device=ctx.device, real_key=key, cache_dir=cache_dir() / "fid-stats"
    )
    out["reference"] = key
    return out


def _rel(ctx, path: Path) -> str:
    root = getattr(ctx, "results_root", None)
    try:
        return str(path.resolve().relative_to(Path(root).resolve())) if root is not None else str(path)
    except ValueError:
        return str(path.resolve())


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


register(Ddpm())
