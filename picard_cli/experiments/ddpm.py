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
from dataclasses import dataclass
from pathlib import Path

from ..metrics.curves import SMOOTH_ALPHA, smooth
from ..recipes import SEED_RANGE, fld
from ..registry import register
from ..training import optimizer_step

FIG_STEPS = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]


@dataclass
class DdpmConfig:
    timesteps: int = fld(1000, "T: diffusion timesteps for training and sampling (--steps sweeps it)",
                         range=(1, 100000))
    beta_schedule: str = fld("linear", "DDPMScheduler beta schedule (reference: linear 1e-4..0.02 for every T)",
                             choices=("linear", "scaled_linear", "squaredcos_cap_v2"))
    variance_type: str = fld("fixed_small", "sampling variance (reference: fixed_small; Ho et al.: fixed_large)",
                             choices=("fixed_small", "fixed_large"))
    zero_snr: bool = fld(False, "EXTENSION: rescale betas to zero terminal SNR (x_T pure noise for every T)")
    resolution: int = fld(32, "image side; 16 or 8 = block-averaged CIFAR-10 (quick scale)", choices=(8, 16, 32))
    channels: list[int] = fld([128, 128, 256, 256, 512, 512], "UNet block_out_channels", range=(1, 4096))
    layers_per_block: int = fld(2, "ResNet blocks per UNet block", range=(1, 16))
    attn_down: int = fld(4, "index of the down block with attention (up block len-1-index); -1 = none", range=(-1, 15))
    head_dim: int = fld(8, "UNet attention_head_dim", range=(1, 4096))
    norm_groups: int = fld(32, "GroupNorm groups", range=(1, 4096))
    dropout: float = fld(0.0, "UNet dropout (reference 0.0; Ho et al. 0.1)", range=(0.0, 0.99))
    source: str = fld("auto", "CIFAR-10 source: auto | torchvision | npz (offline arrays)",
                      choices=("auto", "torchvision", "npz"))
    train_n: int = fld(0, "training images (0 = all; a class-balanced prefix otherwise)", range=(0, 10**7))
    test_n: int = fld(0, "test images for the held-out loss (0 = all)", range=(0, 10**7))
    train_steps: int = fld(200000, "optimizer steps (paper: up to 200k)", range=(1, 10**9))
    batch_size: int = fld(64, "images per step", range=(1, 10**6))
    lr: float = fld(1e-4, "AdamW learning rate", range=(0.0, math.inf))
    lr_schedule: str = fld("cosine", "after warmup: cosine to 0 at train_steps (reference) or constant",
                           choices=("cosine", "constant_with_warmup"))
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
    eval_seed: int = fld(0, "seed of the fixed test triples and of the sample noise (same for every model)",
                        range=SEED_RANGE)
    fid: bool = fld(True, "FID of the final samples vs training images (needs Inception weights)")
    fid_n: int = fld(10000, "samples for the final FID (Ho et al.: 50k)", range=(0, 10**7))
    fid_n_steps: int = fld(1000, "samples for FID at evaluation checkpoints (Fig. 8 bottom; 0 = none)",
                           range=(0, 10**7))
    sample_batch: int = fld(500, "images per sampling batch", range=(1, 10**6))
    grid_n: int = fld(10, "images per model in the sample grids (Figs. 6, 7)", range=(1, 1000))
    fig7_steps: list[int] = fld(FIG_STEPS, "sampling steps of the Fig. 7 grid (set_timesteps(n), leading spacing)",
                                range=(1, 100000))
    fig7_for_T: int = fld(1000, "only the model with this T draws the Fig. 7 grid (0 = every model, n <= T)",
                          range=(0, 100000))
    seed: int = fld(0, "run seed: initial weights, data order, training noise and t", per_run=True)


class Ddpm:
    name = "ddpm"
    config_cls = DdpmConfig
    default_recipe = "fig2.yaml"
    batchable = False
    data_parallel = True  # --nproc N: torchrun + DDP (picard_cli/distributed.py)
    steps_field = "timesteps"  # `--steps 100:1000` sweeps T
    axis_label = "T"
    table = "Figs. 2/8: DDPMs vs diffusion timesteps T on CIFAR-10 (held-out loss, smoothed train loss, FID)"
    rows = ("test loss (held-out)", "train loss (smoothed)", "FID")
    cols = tuple(f"T = {t}" for t in FIG_STEPS)
    paper: dict = {}  # the paper gives these only as plots (Figs. 2, 8)
    metrics = {"last": "test_loss"}
    default_protocol = "last"
    metric_scale = 1.0
    digits = 4
    show_params = False

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
        out = [{"row": "test loss (held-out)", "col": col, "value": m.get("test_loss"),
                "std_within": ex.get("test_loss_sem"), "std_label": "s.e.m. over test triples"},
               {"row": "train loss (smoothed)", "col": col, "value": m.get("train_loss_smoothed")}]
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
    def check_nproc(cfg: dict, nproc: int) -> None:
        if cfg["batch_size"] % nproc:
            from ..errors import RecipeError

            raise RecipeError(f"--nproc {nproc}: batch_size={cfg['batch_size']} is not divisible by {nproc} "
                              f"(each process takes batch_size / nproc images of every step)")

    @staticmethod
    def data_facts(cfg: dict, data_root: Path):
        from ..data.cifar10 import facts

        return facts(data_root, cfg["source"], {"train": cfg["train_n"], "test": cfg["test_n"]})


# ------------------------------------------------------------------------------------------- run
def run_one(c: dict, ctx) -> dict:
    import numpy as np
    import torch

    from .. import distributed as dist
    from ..data.cifar10 import load_cifar10
    from ..errors import DataError, PicardError
    from ..models import ddpm as D

    dev = torch.device(ctx.device)
    R, T = c["resolution"], c["timesteps"]
    if c["attn_down"] >= len(c["channels"]):
        raise PicardError(f"attn_down={c['attn_down']} but the UNet has {len(c['channels'])} blocks")
    if c["resolution"] >> (len(c["channels"]) - 1) < 1:
        raise PicardError(f"{len(c['channels'])} UNet blocks downsample {R}x{R} below 1 pixel")
    train = load_cifar10(ctx.data_root, "train", c["source"], limit=c["train_n"])
    test = load_cifar10(ctx.data_root, "test", c["source"], limit=c["test_n"])
    if len(train.images) < c["batch_size"]:
        raise DataError(f"{len(train.images)} training images < batch_size={c['batch_size']}")
    tr_np, te_np = D.pool_uint8(train.images, R), D.pool_uint8(test.images, R)
    def to(a):
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).to(dev)
    Xtr, Xte = to(tr_np), to(te_np)  # uint8 on the device: no per-image transforms

    import random

    torch.manual_seed(c["seed"])
    np.random.seed(c["seed"] % 2**32)
    random.seed(c["seed"])
    unet = D.build_unet(R, c["channels"], c["layers_per_block"], c["attn_down"], c["head_dim"], c["norm_groups"],
                        c["dropout"]).to(dev)
    cuda = dev.type == "cuda"
    if c["channels_last"] and cuda:
        unet = unet.to(memory_format=torch.channels_last)
    sched = D.build_scheduler(T, c["beta_schedule"], c["variance_type"], c["zero_snr"])
    bf16 = c["amp"] == "auto" and cuda
    def amp():
        return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    opt = torch.optim.AdamW(unet.parameters(), lr=c["lr"], betas=(c["adam_beta1"], c["adam_beta2"]),
                            eps=c["adam_eps"], weight_decay=c["weight_decay"], fused=cuda or None,
                            foreach=None if cuda else True)
    lr_sched = get_scheduler(c["lr_schedule"], opt, num_warmup_steps=c["warmup_steps"],
                             num_training_steps=c["train_steps"])
    ema = (EMAModel(unet.parameters(), decay=c["ema_max_decay"], use_ema_warmup=True, inv_gamma=1.0,
                    power=c["ema_power"], foreach=True) if c["ema"] else None)
    gen = torch.Generator(device=dev).manual_seed(c["seed"])
    st = {"step": 0, "train_log": {"step": [], "loss": []}, "test_log": {"step": [], "loss": []},
          "fid_log": {"step": [], "value": [], "n": []}, "acc": [0.0, 0], "resumed_from": [], "train_s": 0.0}

    # Resume from the last checkpoint of this run (same config: the folder is named by its hash)
    path = ctx.run_dir / "checkpoint.pt" if getattr(ctx, "run_dir", None) else None
    ck = D.load_checkpoint(path) if path else None
    if ck is not None:
        from ..checkpoint import check_config

        check_config(ck, c, path)
        unet.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        lr_sched.load_state_dict(ck["lr_scheduler"])
        if ema is not None:
            ema.load_state_dict(ck["ema"])
            ema.to(dev)
        D.set_rng_state(ck["rng"], gen)
        st = ck["state"]
        st["resumed_from"].append(st["step"])
        del ck
    ctx.on_phase("training" + (f" (resumed at step {st['step']})" if st["step"] else ""))
    if st["step"]:
        ctx.on_epoch(st["step"], c["train_steps"], "resumed")

    weights = None
    if c["fid"] and ctx.fid_weights != "none" and (c["fid_n"] or c["fid_n_steps"]):
        from ..metrics import fid as fidlib

        weights = fidlib.resolve_weights(ctx.fid_weights, ctx.allow_unverified_weights)
    u, eps = D.fixed_triples(len(Xte), R, c["eval_seed"])

    @contextlib.contextmanager
    def eval_weights():  # evaluations see the EMA weights when EMA is on (reference: swap and restore)
        if ema is None:
            yield
            return
        ema.store(unet.parameters())
        ema.copy_to(unet.parameters())
        try:
            yield
        finally:
            ema.restore(unet.parameters())

    def fid_of(samples: np.ndarray) -> dict:
        return run_fid(samples, tr_np, train.meta, weights, ctx, R) | {"alpha_bar_T": D.alpha_bar_T(sched), "T": T}

    def evaluate(step: int, n_fid: int) -> None:  # held-out loss (+ FID with n_fid samples) at a checkpoint
        with eval_weights():
            losses = D.triple_losses(unet, sched, Xte, u, eps, batch=c["sample_batch"], amp=amp)
            st["test_log"]["step"].append(step)
            st["test_log"]["loss"].append(float(losses.mean()))
            if c["fid"] and n_fid and weights is not None:
                ctx.on_phase(f"sampling and FID at step {step} (N={n_fid})")
                samples = D.sample(unet, sched, n_fid, seed=c["eval_seed"], batch=c["sample_batch"], amp=amp,
                                   device=dev)
                st["fid_log"]["step"].append(step)
                st["fid_log"]["value"].append(fid_of(samples)["value"])
                st["fid_log"]["n"].append(n_fid)

    def checkpoint():  # rank 0 only (the model and optimizer are the same in every process)
        if path is None or not dist.is_main():
            return
        D.save_checkpoint(path, {"format": 1, "config": c, "step": st["step"], "model": unet.state_dict(),
                                 "ema": ema.state_dict() if ema is not None else None, "optimizer": opt.state_dict(),
                                 "lr_scheduler": lr_sched.state_dict(), "rng": D.rng_state(gen), "state": st})

    # Training (reference loop, spec §1.1): t ~ U{0..T-1}, x_t = add_noise(x0, eps, t), MSE(eps_theta, eps)
    ddp = dist.wrap(unet)  # DistributedDataParallel with --nproc > 1; checkpoints hold the bare unet's weights
    fwd = torch.compile(ddp) if c["compile"] else ddp
    N, B = len(Xtr), c["batch_size"]
    mine = dist.shard(B)  # this process's part of each global batch (all of it in a single process)
    per_epoch = N // B  # the last incomplete batch of an epoch is dropped (constant batch size)
    perm_epoch, perm = -1, None
    acc = torch.tensor(st["acc"][0], dtype=torch.float64, device=dev)
    count = st["acc"][1]
    unet.train()
    t0 = time.perf_counter()
    diverged = False
    while st["step"] < c["train_steps"]:
        step = st["step"]
        epoch = step // per_epoch
        if epoch != perm_epoch:  # epoch order: a function of (seed, epoch), so a resume replays it
            perm_epoch = epoch
            perm = torch.randperm(N, generator=torch.Generator().manual_seed(c["seed"] * 7919 + epoch)).to(dev)
        # every process draws the whole batch's randomness and keeps its slice: the same steps for any N
        idx = perm[(step % per_epoch) * B:(step % per_epoch + 1) * B][mine]
        x0 = D.to_unit(Xtr[idx])
        if c["random_flip"]:
            flip = torch.rand(B, generator=gen, device=dev)[mine] < 0.5
            x0 = torch.where(flip[:, None, None, None], x0.flip(3), x0)
        if c["channels_last"] and cuda:
            x0 = x0.contiguous(memory_format=torch.channels_last)
        noise = torch.randn((B, *x0.shape[1:]), generator=gen, device=dev)[mine]
        t = torch.randint(0, T, (B,), generator=gen, device=dev)[mine]
        xt = sched.add_noise(x0, noise, t)
        with amp():
            pred = fwd(xt, t).sample
        loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
        optimizer_step(loss, unet.parameters(), opt, lr_sched, c["grad_clip"])
        if ema is not None:
            ema.step(unet.parameters())
        acc += loss.detach()
        count += 1
        st["step"] = step = step + 1
        if step % c["log_every"] == 0 or step == c["train_steps"]:
            mean = dist.mean(acc / count).item()  # over processes: the global batch's loss
            st["train_log"]["step"].append(step)
            st["train_log"]["loss"].append(mean)
            acc.zero_()
            count = 0
            if not math.isfinite(mean):
                diverged = True
                break
            ctx.on_epoch(step, c["train_steps"], f"loss {mean:.4f}")
        if step % c["eval_every"] == 0 and step < c["train_steps"]:
            st["train_s"] += time.perf_counter() - t0
            if dist.is_main():  # the others wait at the next step's gradient all-reduce
                evaluate(step, c["fid_n_steps"])
            t0 = time.perf_counter()
        if step % c["checkpoint_every"] == 0 or step == c["train_steps"]:
            st["acc"] = [dist.mean(acc).item(), count]  # the running loss sum, averaged: valid under any N
            st["train_s"] += time.perf_counter() - t0
            checkpoint()
            t0 = time.perf_counter()
    st["train_s"] += time.perf_counter() - t0
    if not dist.is_main():  # rank 0 evaluates and returns the outcome
        return {"status": "ok", "metrics": {}, "extra": {}}

    abar = D.alpha_bar_T(sched)
    extra = {"n_params": sum(p.numel() for p in unet.parameters()), "amp": "bf16" if bf16 else "fp32",
             "alpha_bar_T": abar, "sqrt_alpha_bar_T": math.sqrt(abar),
             "scheduler": {k: sched.config[k] for k in ("beta_schedule", "beta_start", "beta_end", "variance_type",
                                                        "clip_sample", "timestep_spacing", "rescale_betas_zero_snr")},
             "eval_weights": "ema" if ema is not None else "raw", "resumed_from_step": st["resumed_from"],
             "train_loss": st["train_log"], "smoothing_alpha": SMOOTH_ALPHA,
             "train_s": round(st["train_s"], 3), "samples": {"train": N, "test": len(Xte)},
             "data": {"train": train.meta, "test": test.meta}, "diffusers": _version("diffusers")}
    if diverged:
        nan = float("nan")
        return {"status": "diverged", "extra": extra,
                "metrics": {"test_loss": nan, "train_loss_smoothed": nan, "alpha_bar_T": abar, "steps_run": st["step"]}}
    # training throughput over all sessions (evaluations excluded; steps redone after a kill counted once)
    extra["train_img_per_s"] = round(st["step"] * B / max(st["train_s"], 1e-9), 2)

    # Final evaluation: held-out loss, per-t/T loss, samples (grid = the first grid_n; FID on the first fid_n;
    # the FID-vs-step curve keeps one N: fid_n_steps, or fid_n when there are no checkpoint FIDs)
    n_curve = c["fid_n_steps"] or c["fid_n"]
    n_final = max(c["grid_n"], max(c["fid_n"], n_curve) if (c["fid"] and weights is not None) else 0)
    with eval_weights():
        ctx.on_phase("evaluation (held-out loss)")
        losses = D.triple_losses(unet, sched, Xte, u, eps, batch=c["sample_batch"], amp=amp)
        ctx.on_phase(f"sampling ({n_final} images, T={T})")
        samples = D.sample(unet, sched, n_final, seed=c["eval_seed"], batch=c["sample_batch"], amp=amp, device=dev)
        fig7 = [n for n in c["fig7_steps"] if n <= T] if c["fig7_for_T"] in (0, T) else []
        grids7 = [D.sample(unet, sched, c["grid_n"], n, seed=c["eval_seed"], batch=c["sample_batch"], amp=amp,
                           device=dev) for n in fig7]
    st["test_log"]["step"].append(st["step"])
    st["test_log"]["loss"].append(float(losses.mean()))
    if c["fid"]:
        ctx.on_phase(f"FID (N={c['fid_n']})")
        fid = fid_of(samples[:c["fid_n"]] if weights is not None else samples[:0])
        extra["fid"] = fid
        if fid["value"] is not None and n_curve:
            v = fid["value"] if n_curve == c["fid_n"] else fid_of(samples[:n_curve])["value"]
            st["fid_log"]["step"].append(st["step"])
            st["fid_log"]["value"].append(v)
            st["fid_log"]["n"].append(n_curve)
    extra |= {"test_loss_curve": st["test_log"], "fid_curve": st["fid_log"],
              "loss_by_t": D.binned(u, losses, c["loss_bins"]),
              "test_loss_sem": float(losses.std() / math.sqrt(len(losses))) if len(losses) > 1 else None}
    if getattr(ctx, "run_dir", None):
        D.save_uint8(ctx.run_dir / "grid.npy", samples[:c["grid_n"]])
        extra["grid"] = {"file": _rel(ctx, ctx.run_dir / "grid.npy"), "n": c["grid_n"], "sampling_steps": T,
                         "seed": c["eval_seed"]}
        if grids7:
            D.save_uint8(ctx.run_dir / "grid_steps.npy", np.stack(grids7))
            extra["fig7"] = {"file": _rel(ctx, ctx.run_dir / "grid_steps.npy"), "sampling_steps": fig7,
                             "n": c["grid_n"], "seed": c["eval_seed"]}
    log = st["train_log"]["loss"]
    metrics = {"test_loss": float(losses.mean()), "train_loss_smoothed": smooth(log)[-1], "train_loss_last": log[-1],
               "fid": (extra.get("fid") or {}).get("value"), "alpha_bar_T": abar, "steps_run": st["step"]}
    return {"status": "ok", "metrics": metrics, "extra": extra}


def run_fid(samples, real, meta: dict, weights, ctx, resolution: int) -> dict:
    """FID of the samples vs the first len(samples) training images (Ho et al. compare with the training
    set), at the model's resolution; ``value`` None with a note when no Inception weights are available.
    The training images come in class-balanced order (``load_cifar10``), so the reference set holds
    every class equally."""
    from ..env import cache_dir
    from ..metrics import fid as fidlib

    n = max(len(samples), 2)
    key = {"dataset": "cifar10", "split": "train", "source": meta.get("source"), "lossy": bool(meta.get("lossy")),
           "n": min(n, len(real)), "resolution": resolution, "order": meta.get("order")}
    out = fidlib.compute_fid(samples, real[:n], weights=weights, device=ctx.device, real_key=key,
                             cache_dir=cache_dir() / "fid-stats")
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
