"""Masked-pixel ViT on CIFAR-10 with Picard iterations: the paper's Table 3
(../shared/paper/paper.md, Table 3 and its caption; no author code exists for it, spec
../shared/specs/ddpm-fid-alphafold.md, header).

Task: 75% of the pixel positions of each 32x32 image are blacked out (``data/masks.py``: exact
count, per-image seeded); the network reconstructs the whole image. Iteration (caption):
x_0 = masked image, x_{i+1} = (1 - λ) T(x_i) + λ x_i, λ = 1/2: the solver core's
x_{k+1} = a x_k + (1 - a)(T(x_k) + f) with a = λ (the config field ``a``, once ``lam``) and f = 0
(``models/vit_mask.py``). One model
is trained per N_iter with the loss MSE(x_N, y) on the final iterate; gradients flow through
every application of T.

Choices where the paper is silent (recipe options, README "Table 3"):
* ``first_step``: ``damped`` (default; every step, N_iter = 1 included, is the caption's damped
  update, so x_1 = a x_0 + (1 - a) T(x_0)) or ``plain`` (x_1 = T(x_0): N_iter = 1 is the plain
  ViT, as Table 2's "a single iteration is the baseline").
* Pixels in [0, 1] (ToTensor scale), MSE over all pixels and channels of the unclamped output.
* Training: AdamW (betas 0.9/0.95, MAE's), linear warmup then cosine per step, grad-norm clip.
  Masks are redrawn every epoch (stream = epoch); validation and test masks are fixed
  (``mask_seed``) and identical for every N_iter, so the columns are comparable.
* MSE ± std: std over test images (per-image MSE) when a cell has one run, else over runs.
* FID (``metrics/fid.py``): reconstructions of the first ``fid_n`` test images (class-balanced)
  against the same real test images, quantised to uint8 as saved; "n/a (no Inception
  weights)" when no weights are available. With the offline arrays the test split is
  JPEG-decoded: such an FID is not comparable to published CIFAR-10 FIDs (recorded, and said
  by the report).

Data parallel (``--nproc N``, ``picard_cli/distributed.py``): every process takes its part of each
batch (same permutation, same per-image masks) and the loss is scaled so that DDP's gradient average
is the whole batch's mean gradient; rank 0 evaluates and returns the outcome.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

from ..recipes import SEED_RANGE, as_config, fld, int_list_field, parse_int_list
from ..experiment import Experiment, Outcome, TableSpec
from ..registry import register
from ..training import optimizer_step

# Row labels of image_baselines' metrics in the report (MSE rows only).
BASELINE_ROWS = {
    "baseline_masked_input": "baseline: masked input",
    "baseline_local_mean": "baseline: local-mean inpainting",
}


@dataclass
class VitMaskConfig:
    n_iter: int = fld(1, "N_iter: applications of T (prediction x_N)", range=(1, 1000))
    a: float = fld(
        0.5,
        "damping, Table 3's λ: weight on the old iterate, x_{i+1} = (1-a) T(x_i) + a x_i",
        range=(0.0, 1.0),
        was="lam",
    )
    first_step: str = fld(
        "damped",
        "damped: every step damped (caption); plain: x_1 = T(x_0), N_iter=1 = plain ViT",
        choices=("damped", "plain"),
    )
    mask_ratio: float = fld(0.75, "fraction of pixel positions blacked out (exactly floor(r*32*32))", range=(0.0, 1.0))
    mask_seed: int = fld(
        0, "seed of the fixed validation / test masks (same for every N_iter and run)", range=SEED_RANGE
    )
    dim: int = fld(192, "encoder embedding dim", range=(4, 8192))
    depth: int = fld(12, "encoder layers", range=(1, 256))
    heads: int = fld(3, "encoder heads", range=(1, 256))
    dec_dim: int = fld(192, "decoder embedding dim", range=(4, 8192))
    dec_depth: int = fld(4, "decoder layers", range=(0, 256))
    dec_heads: int = fld(3, "decoder heads", range=(1, 256))
    mlp_ratio: float = fld(4.0, "MLP hidden width / dim", range=(0.25, 64.0))
    patch: int = fld(2, "patch size p (p x p pixels per token)", range=(1, 32))
    pos: str = fld("learned", "positional embedding: learned or sincos (fixed 2D)", choices=("learned", "sincos"))
    dropout: float = fld(0.0, "dropout (attention weights, projections, MLP)", range=(0.0, 0.99))
    source: str = fld(
        "auto",
        "CIFAR-10 source: auto | torchvision (python batches) | npz (offline arrays)",
        choices=("auto", "torchvision", "npz"),
    )
    train_n: int = fld(0, "training images (0 = all; a class-balanced prefix otherwise)", range=(0, 10**7))
    val_n: int = fld(0, "images held out of the training split for best-val selection (0 = none)", range=(0, 10**7))
    test_n: int = fld(0, "test images for MSE (0 = all 10,000; a class-balanced prefix otherwise)", range=(0, 10**7))
    fid: bool = fld(True, "compute FID of the reconstructions (needs Inception weights, see README)")
    fid_n: int = fld(0, "test images for FID (0 = all test images used for MSE)", range=(0, 10**7))
    lr: float = fld(5e-4, "AdamW peak learning rate", range=(0.0, math.inf))
    weight_decay: float = fld(0.05, "AdamW decoupled weight decay", range=(0.0, 10.0))
    warmup_epochs: float = fld(5.0, "linear warmup length in epochs, then cosine to 0", range=(0.0, 1e6))
    grad_clip: float = fld(1.0, "gradient-norm clip (0 = off)", range=(0.0, 1e9))
    batch_size: int = fld(128, "images per batch (also for evaluation)", range=(1, 10**6))
    epochs: int = fld(100, "training epochs", range=(1, 10**6))
    amp: str = fld("auto", "auto: bf16 autocast on CUDA, fp32 on CPU; off: always fp32", choices=("auto", "off"))
    eval_iters: str = fld(
        "", "iteration counts k for extra.iter_curve ('1:6'; default 1..n_iter)", check=int_list_field
    )
    seed: int = fld(0, "run seed: initial weights, data order, training masks", per_run=True)


COLS = tuple(f"N_iter = {k}" for k in (1, 2, 3))
# Paper Table 3 (paper.md): MSE mean ± std, FID (no std printed). REFERENCE VALUES ONLY.
PAPER_TABLE3 = {("ViT (MSE)", c): v for c, v in zip(COLS, ((0.0126, 0.0006), (0.0121, 0.0006), (0.0122, 0.0006)))}
PAPER_TABLE3 |= {("ViT (FID)", c): (v, None) for c, v in zip(COLS, (20.0433, 20.0212, 19.2956))}


class VitMask(Experiment):
    name = "vit-mask"
    config_cls = VitMaskConfig
    default_recipe = "table3.yaml"
    batchable = False
    data_parallel = True  # --nproc N: torchrun + DDP (picard_cli/distributed.py)
    table = TableSpec(
        title="Table 3: masked-pixel ViT on CIFAR-10 (75% of pixels blacked out), test MSE and FID vs Picard "
        "iterations",
        rows=("ViT (MSE)", "ViT (FID)"),
        cols=COLS,
        paper=PAPER_TABLE3,
        metrics={"last": "test_mse_last", "best-val": "test_mse_best_val"},
        default_protocol="last",
        metric_scale=1.0,
        digits=4,
        show_params=True,
        curve_metric="test_mse",
        baselines=BASELINE_ROWS,  # rows of predictors that train nothing (image_baselines)
        paired_columns=True,  # report: each N_iter minus N_iter = 1, paired over seeds
    )

    @staticmethod
    def row(cfg):
        return "ViT (MSE)"

    @staticmethod
    def col(cfg):
        return f"N_iter = {cfg['n_iter']}"

    @staticmethod
    def match(cell, wanted, given):
        return 0 if cell.n_iter == wanted.n_iter else None

    def table_values(self, record: dict, protocol: str) -> list[dict]:
        """Two rows per run: the MSE (std over test images for a single run) and the FID under
        the name of the implementation that computed it (only the standard one sits beside the
        paper's FID row)."""
        m, col = record["metrics"], self.col(record["config"])
        suffix = "last" if protocol == "last" else "best_val"
        out = [
            {
                "row": "ViT (MSE)",
                "col": col,
                "value": m.get(f"test_mse_{suffix}"),
                "std_within": m.get(f"test_mse_std_{suffix}"),
                "std_label": "over test images",
            }
        ]
        fid = (record.get("extra") or {}).get(f"fid_{suffix}")
        if fid is None:  # FID switched off for this run
            return out + [{"row": "ViT (FID)", "col": col, "value": None, "note": "fid=false"}]
        name = fid.get("metric")
        label = "ViT (FID)" if name in (None, "fid") else f"ViT ({name}{'' if fid.get('verified') else ', unverified'})"
        if fid.get("value") is not None and (fid.get("reference") or {}).get("lossy"):
            label += " [vs JPEG-decoded test split]"
        out.append({"row": label, "col": col, "value": fid.get("value"), "note": fid.get("note")})
        return out

    def run_group(self, configs, ctx):
        return [self.run_one(c, ctx) for c in configs]

    @staticmethod
    def data_facts(cfg: VitMaskConfig | dict, data_root):
        from ..data.cifar10 import facts

        c = as_config(VitMaskConfig, cfg)
        train = c.train_n + c.val_n if c.train_n else 0
        return facts(data_root, c.source, {"train": train, "test": c.test_n})

    @staticmethod
    def check_nproc(cfg: VitMaskConfig | dict, nproc: int) -> None:
        c = as_config(VitMaskConfig, cfg)
        if c.batch_size < nproc:
            from ..errors import RecipeError

            raise RecipeError(f"--nproc {nproc}: batch_size={c.batch_size} gives some processes no images")

    def run_one(self, c: VitMaskConfig | dict, ctx) -> dict:
        """Train one model with N_iter = ``c.n_iter`` (resuming from the run's checkpoint), then test
        the last and the best-validation model."""
        import torch

        from .. import distributed as dist
        from ..models.vit_mask import flops_per_image
        from .ns_train import autocast

        c = as_config(VitMaskConfig, c)
        dev = torch.device(ctx.device)
        ks = parse_int_list(c.eval_iters, "eval_iters") or list(range(1, c.n_iter + 1))
        data = load_images(c, ctx.data_root, dev)
        model = build_model(c, dev)
        bf16 = c.amp == "auto" and dev.type == "cuda"
        amp = autocast(bf16)
        fit = train_model(model, data.Ytr, data.Yva, data.tr_ids, c, ctx, amp)
        if not dist.is_main():  # --nproc: rank 0 evaluates and returns the outcome
            return Outcome("ok")
        extra = {
            "n_params": model.n_params(),
            "amp": "bf16" if bf16 else "fp32",
            "gflop_per_image_T": round(
                flops_per_image(32, c.patch, c.dim, c.depth, c.dec_dim, c.dec_depth, c.mlp_ratio) / 1e9, 4
            ),
            "samples": {"train": len(data.Ytr), "val": len(data.Yva), "test": len(data.Yte)},
            "data": {"train": data.train.meta, "test": data.test.meta},
            **fit.extra(),
        }
        if fit.diverged:
            return Outcome.diverged(VitMask.table, extra, epochs_run=len(fit.losses))
        metrics = {"train_loss_last": fit.losses[-1], "epochs_run": len(fit.losses)}
        if fit.val_mse:
            metrics |= {"val_mse_last": fit.val_mse[-1], "val_mse_best": fit.best_val, "best_epoch": fit.best_epoch}
        weights = None
        if c.fid and ctx.fid_weights != "none":  # --fid-weights none: FID n/a on purpose
            from ..metrics import fid as fidlib

            weights = fidlib.resolve_weights(ctx.fid_weights, ctx.allow_unverified_weights)
        return evaluate_test(TestEval(model, data, c, ctx, amp, weights, metrics, extra), fit, ks)


@dataclass
class Images:
    """CIFAR-10 for Table 3 as uint8 (N, 3, 32, 32) tensors on the device: training, held-out
    validation (the last ``val_n`` of the class-balanced order) and test images. ``tr_ids``: each
    training image's index in the training split (the key of its per-image masks)."""

    train: Any  # load_cifar10's result (meta)
    test: Any
    Ytr: Any
    Yva: Any
    Yte: Any
    tr_ids: Any


def load_images(c: VitMaskConfig, data_root, dev) -> Images:
    import numpy as np
    import torch

    from ..data.cifar10 import interleave, load_cifar10

    train = load_cifar10(data_root, "train", c.source, limit=c.train_n + c.val_n if c.train_n else 0)
    test = load_cifar10(data_root, "test", c.source, limit=c.test_n)
    order = interleave(train.labels)  # class-balanced: the last val_n of this order are held out
    if c.val_n >= len(order):
        from ..errors import DataError

        raise DataError(f"val_n={c.val_n} leaves no training images (the split has {len(order)})")
    tr_idx, va_idx = order[: len(order) - c.val_n], order[len(order) - c.val_n :]

    def to(a):
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).to(dev)

    return Images(train, test, to(train.images[tr_idx]), to(train.images[va_idx]), to(test.images), tr_idx)


def build_model(c: VitMaskConfig, dev):
    """T = the masked ViT (Table 3's caption: encoder / decoder sizes, patch), iterated by PicardImage
    with a = Table 3's λ, initialised from the run seed."""
    import numpy as np
    import torch

    from ..models.vit_mask import MaskedViT, PicardImage

    torch.manual_seed(c.seed)
    np.random.seed(c.seed % 2**32)
    T = MaskedViT(
        32, 3, c.patch, c.dim, c.depth, c.heads, c.dec_dim, c.dec_depth, c.dec_heads, c.mlp_ratio, c.pos, c.dropout
    )
    return PicardImage(T, c.n_iter, c.a, c.first_step).to(dev)


@dataclass
class TestEval:
    """Table 3's test evaluation of a trained model on the fixed test masks (``mask_seed``, the same
    for every N_iter): MSE ± std over test images, PSNR and the FID of the uint8 reconstructions of the
    first ``fid_n`` test images, written into ``metrics`` and ``extra``."""

    model: Any
    data: Images
    c: VitMaskConfig
    ctx: Any
    amp: Any
    weights: Any  # Inception weights; None: FID n/a
    metrics: dict
    extra: dict

    def masks(self, idx):
        return masks_for(idx, self.c.mask_ratio, self.c.mask_seed, -1, self.data.Yte.device)

    def protocol(self, tag: str) -> None:
        """The current weights' test numbers under ``tag`` (last / best_val)."""
        import torch

        m, fid_n = self.metrics, self.c.fid_n or len(self.data.Yte)
        self.ctx.on_phase(f"evaluation ({tag})")
        per, recon = per_image_mse(self.model, self.data.Yte, self.masks, self.c.batch_size, self.amp, keep=fid_n)
        m[f"test_mse_{tag}"], m[f"test_mse_std_{tag}"] = per.mean().item(), per.std(unbiased=False).item()
        m[f"test_psnr_{tag}"] = (10 * torch.log10(1.0 / per.clamp_min(1e-12))).mean().item()
        if self.c.fid:
            self.ctx.on_phase(f"FID ({tag}, N={fid_n})")
            test = self.data.test
            self.extra[f"fid_{tag}"] = run_fid(recon, test.images[:fid_n], test.meta, self.weights, self.ctx)
            m[f"fid_{tag}"] = self.extra[f"fid_{tag}"].get("value")

    def solver_trace(self) -> dict:
        """The solver's per-step norms on the first test batch (the record's ``solver``)."""
        import numpy as np
        import torch

        c = self.c
        with torch.no_grad(), self.amp():
            y = self.data.Yte[: c.batch_size].float() / 255
            x0 = y.masked_fill(self.masks(np.arange(len(y))).unsqueeze(1), 0.0)
            _, stats = self.model(x0, trace=True)
        return stats.per_problem(0) | {"n_iter": c.n_iter, "a": c.a, "first_step": c.first_step, "batch": len(y)}


def evaluate_test(ev: TestEval, fit, ks: list[int]) -> dict:
    """The trivial baselines, the last and the best-validation model (protocols ``last`` /
    ``best-val``), the MSE after each k applications of T, the solver trace: the run's outcome."""
    metrics, extra, model, bs = ev.metrics, ev.extra, ev.model, ev.c.batch_size
    metrics |= image_baselines(ev.data.Yte, ev.masks, bs)
    last_state = copy.deepcopy(model.state_dict())
    ev.protocol("last")
    if fit.best_state is not None and fit.best_epoch != len(fit.losses) - 1:
        model.load_state_dict(fit.best_state)
        ev.protocol("best_val")
        model.load_state_dict(last_state)
    else:  # the best-validation model is the last one (or no validation split)
        for k in ("test_mse", "test_mse_std", "test_psnr", "fid"):
            if f"{k}_last" in metrics:
                metrics[f"{k}_best_val"] = metrics[f"{k}_last"]
        if "fid_last" in extra:
            extra["fid_best_val"] = extra["fid_last"]
    # MSE after each k applications of T (k <= N_iter: a prefix of the trained iteration)
    extra["iter_curve"] = {
        "k": ks,
        "model": "last",
        "test_mse": [
            float(f"{per_image_mse(model, ev.data.Yte, ev.masks, bs, ev.amp, n_iter=k)[0].mean():.6g}") for k in ks
        ],
    }
    return Outcome("ok", metrics, ev.solver_trace(), extra)


def masks_for(indices, ratio, seed, stream, dev):
    """The per-image masks (data/masks.py): drawn on the GPU there (same masks, no host round trip), with
    numpy on the CPU (faster there)."""
    import torch

    from ..data.masks import pixel_masks, pixel_masks_torch

    if torch.device(dev).type == "cuda":
        return pixel_masks_torch(indices, 32, ratio, seed, stream, device=dev)
    return torch.from_numpy(pixel_masks(indices, 32, ratio, seed, stream)).to(dev)


def per_image_mse(model, Y, masks, batch_size, amp, n_iter=None, keep=0):
    """(per-image MSE of x_N vs y over all pixels and channels, uint8 reconstructions of the
    first ``keep`` images (N, 32, 32, 3) as saved: round(clamp(x, 0, 1) * 255))."""
    import numpy as np
    import torch

    model.eval()
    per, recon = [], []
    with torch.no_grad(), amp():
        for i in range(0, len(Y), batch_size):
            y = Y[i : i + batch_size].float() / 255
            x0 = y.masked_fill(masks(np.arange(i, i + len(y))).unsqueeze(1), 0.0)
            x, _ = model(x0, n_iter)
            x = x.float()
            per.append((x - y).pow(2).flatten(1).mean(1).cpu())
            if i < keep:
                q = (x[: keep - i].clamp(0, 1) * 255).round().to(torch.uint8)
                recon.append(q.permute(0, 2, 3, 1).cpu().numpy())
    return torch.cat(per), (np.concatenate(recon) if recon else None)


def run_fid(recon, real, meta: dict, weights, ctx) -> dict:
    from ..env import cache_dir
    from ..metrics import fid as fidlib

    key = {
        "dataset": "cifar10",
        "split": "test",
        "source": meta.get("source"),
        "lossy": bool(meta.get("lossy")),
        "n": len(real),
        "order": meta.get("order"),
    }  # class-balanced order: every class equally often
    out = fidlib.compute_fid(
        recon, real, weights=weights, device=ctx.device, real_key=key, cache_dir=cache_dir() / "fid-stats"
    )
    out["reference"] = key
    return out


def train_model(model, Ytr, Yva, tr_ids, c: VitMaskConfig, ctx, amp):
    """AdamW + warmup/cosine per step; fresh masks each epoch (stream = epoch, keyed by the image's
    index in the training split); validation MSE with fixed masks keeps the best weights.

    Checkpoint (``ctx.run_dir/checkpoint.pt`` when due, picard_cli/checkpoint.py; rank 0 writes)
    after an epoch: the bare model, AdamW, the LR schedule, every RNG (torch: dropout; numpy;
    python; the data-order generator), the Fit (curves, epoch times, best weights), the epoch and
    the config. Every rank resumes from it at the next epoch, with the numbers of an uninterrupted
    run; nothing in it depends on the number of processes (the loss is the whole batch's on every
    rank; with dropout > 0 every rank takes rank 0's torch RNG state)."""
    import torch

    from .. import distributed as dist
    from ..checkpoint import Checkpointer
    from .ns_train import fit_state, resume_fit  # the same curves record as the Navier-Stokes trainers

    opt = torch.optim.AdamW(model.parameters(), lr=c.lr, betas=(0.9, 0.95), weight_decay=c.weight_decay)
    steps_per_epoch = math.ceil(len(Ytr) / c.batch_size)
    total, warm = c.epochs * steps_per_epoch, c.warmup_epochs * steps_per_epoch

    def lr_at(step):  # linear warmup, then cosine to 0 (per step)
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    g = torch.Generator().manual_seed(c.seed)

    def val_masks(idx):
        return masks_for(idx, c.mask_ratio, c.mask_seed, -2, Ytr.device)

    ck = Checkpointer(ctx, c, main=dist.is_main())
    out, start = resume_fit(ck, model, opt, sched, g)  # every rank, before DDP's first broadcast
    ctx.on_phase("training" + (f" (resumed at epoch {start})" if start else ""))
    if start:
        ctx.on_epoch(start, c.epochs, "resumed")
    ddp = dist.wrap(model)  # DistributedDataParallel with --nproc > 1
    for epoch in range(start, c.epochs):
        t0 = time.perf_counter()
        mean = _train_epoch(ddp, model, opt, sched, Ytr, tr_ids, g, epoch, c, amp)
        if not math.isfinite(mean):
            out.diverged = True
            out.losses.append(float("nan"))
            return out
        out.losses.append(mean)
        if len(Yva):
            v = per_image_mse(model, Yva, val_masks, c.batch_size, amp)[0].mean().item()
            out.val_mse.append(v)
            if v < out.best_val:
                out.best_val, out.best_epoch = v, epoch
                out.best_state = copy.deepcopy(model.state_dict())
        out.epoch_s.append(time.perf_counter() - t0)
        ck.epoch_end(epoch == c.epochs - 1, lambda: fit_state(epoch, model, opt, sched, out, g))
        info = f"{out.epoch_s[-1]:.1f} s/epoch, loss {out.losses[-1]:.4f}"
        ctx.on_epoch(epoch + 1, c.epochs, info + (f", val {out.val_mse[-1]:.4f}" if out.val_mse else ""))
    return out


def _train_epoch(ddp, model, opt, sched, Ytr, tr_ids, g, epoch: int, c: VitMaskConfig, amp) -> float:
    """One epoch: the mean over images of the whole batches' losses, non-finite once one was. The
    loss sum stays on the device (float64: the same doubles as summing ``loss.item() * n``), so no
    step waits for the host."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from .. import distributed as dist

    W, bs, dev = dist.world(), c.batch_size, Ytr.device
    model.train()
    acc = torch.zeros((), dtype=torch.float64, device=dev)
    perm = torch.randperm(len(Ytr), generator=g)
    for i in range(0, len(Ytr), bs):
        n = min(bs, len(Ytr) - i)  # images in this (global) batch
        idx = perm[i : i + bs][dist.split(n)]  # this process's part (all of it in a single process)
        y = Ytr[idx.to(dev)].float() / 255
        m = masks_for(np.asarray(tr_ids)[idx.numpy()], c.mask_ratio, c.seed, epoch, dev)
        x0 = y.masked_fill(m.unsqueeze(1), 0.0)  # pixel dropout: blacked out
        with amp():
            x, _ = ddp(x0)  # gradients through every application of T
        if W == 1:
            objective = loss = F.mse_loss(x.float(), y)  # Table 3: MSE((1-a) T(x_{N-1}) + a x_{N-1}, y)
        else:  # the part's share of the batch mean, x W: DDP's gradient average = the batch mean's gradient
            share = F.mse_loss(x.float(), y, reduction="sum") / (n * Ytr[0].numel())
            objective, loss = share * W, dist.total(share)  # loss: the whole batch's MSE, on every process
        optimizer_step(objective, model.parameters(), opt, sched, c.grad_clip)
        acc += loss.detach().double() * n
    return acc.item() / len(Ytr)


register(VitMask())


def local_mean_inpaint(x0, known, max_radius: int = 16):
    """A classical inpainting for scale: every blacked-out pixel becomes the mean of the visible
    pixels in the smallest (2r+1) x (2r+1) window (r = 1, 2, ...) that holds at least one; visible
    pixels are kept. ``x0`` (B, C, H, W) with masked pixels zeroed, ``known`` (B, 1, H, W) float
    (1 = visible). Normalised box filtering: sum of visible values / count of visible pixels."""
    import torch
    import torch.nn.functional as F

    out, todo = x0.clone(), known < 0.5
    for r in range(1, max_radius + 1):
        if not todo.any():
            break

        def box(t):
            return F.avg_pool2d(t, 2 * r + 1, stride=1, padding=r, count_include_pad=False)

        count = box(known)
        fill = box(x0 * known) / count.clamp_min(1e-12)
        ready = todo & (count > 0)
        out = torch.where(ready, fill, out)
        todo = todo & ~ready
    return out


def image_baselines(Y, masks, batch_size: int) -> dict:
    """Test MSE (all pixels and channels, mean over test images, the reported metric) of two
    predictors that train nothing, on the same fixed test masks as the models: the masked input
    itself (blacked-out pixels left at 0) and :func:`local_mean_inpaint`."""
    import numpy as np
    import torch

    sums = {"baseline_masked_input": 0.0, "baseline_local_mean": 0.0}
    with torch.no_grad():
        for i in range(0, len(Y), batch_size):
            y = Y[i : i + batch_size].float() / 255
            hidden = masks(np.arange(i, i + len(y))).unsqueeze(1)
            x0 = y.masked_fill(hidden, 0.0)
            for k, pred in (
                ("baseline_masked_input", x0),
                ("baseline_local_mean", local_mean_inpaint(x0, (~hidden).float())),
            ):
                sums[k] += (pred - y).pow(2).flatten(1).mean(1).sum().item()
    return {k: v / len(Y) for k, v in sums.items()}
