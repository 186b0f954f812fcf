"""Vision Transformers with Picard iterations on 2D Navier-Stokes: the paper's Table 2
(spec ../shared/specs/navier-stokes.md §2, §3, §5, §6.3-6.4; models: picard_cli/models/vit_pde.py).

Task and protocol = ANIE's (spec §3.3 "same as ANIE"; see picard_cli/experiments/anie.py,
whose data loading is reused): input = the t=0 vorticity frame, output = the 10 stamps
ANIE_TIMES, raw vorticity; split 3200 / 800 / last 1000 in generation order; Adam(lr 1e-4,
wd 1e-4), batch 32, MSE on the 10 frames; the authors' ANIE cosine schedule by default.
The operator T (ViT, ViTsmall, ViTparallel, ViT3D) maps the 10-stamp state to itself and is
iterated by the paper's Alg. 2 (x_0 = f = w(t=0) on every stamp, x_{k+1} = a x_k + (1-a)
(T(x_k) + f), prediction x_N, N = N_iter applications of T), one model trained per N_iter,
gradients through every iteration. Test MSE = absolute per-pixel MSE on the 9 frames t > 0
(ANIE's convention, the table's default) and on all 10 frames (protocols ``*-10``), for the
last-epoch and the best-validation model (default: ``best-val``, the authors' SaveBestModel).
``extra.iter_curve`` = the test MSE of the best-validation model after each k = 1..N_iter
(``eval_iters`` for other k); ``solver`` = its per-iteration step / residual norms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import DataError
from ..recipes import as_config, fld, int_list_field, parse_int_list
from ..experiment import Experiment, Outcome, TableSpec
from ..registry import register
from .ns_train import BASELINE_ROWS
from .anie import NSSplit, data_facts, load_splits

MODELS = ("vit", "vit-small", "vit-parallel", "vit-3d")
ROWS = {"vit": "ViT", "vit-small": "ViTsmall", "vit-parallel": "ViTparallel", "vit-3d": "ViT3D"}


@dataclass
class VitPdeConfig(NSSplit):
    model: str = fld("vit", "operator T (spec §3.3): vit | vit-small | vit-parallel | vit-3d", choices=MODELS)
    n_iter: int = fld(1, "N_iter: applications of T in Alg. 2 (prediction x_N)", range=(1, 1000))
    a: float = fld(0.5, "Alg. 2 damping: weight on the OLD iterate", range=(0.0, 0.999))
    tol: float = fld(
        0.0, "optional Picard tolerance on tol_norm (batch norm; 0 = always N_iter steps)", range=(0.0, 1e9)
    )
    tol_norm: str = fld(
        "step",
        "norm the tolerance tests: step ||x_k+1 - x_k|| or residual ||T(x_k)+f-x_k||",
        choices=("step", "residual"),
    )
    dim: int = fld(256, "token width", range=(1, 8192))
    depth: int = fld(6, "ViT layers (vit-parallel builds depth // branches layers: parameter-matched)", range=(1, 256))
    heads: int = fld(8, "attention heads (head dim = dim / heads)", range=(1, 256))
    mlp: int = fld(512, "MLP hidden width", range=(1, 65536))
    patch: int = fld(8, "spatial patch size p (p x p patches)", range=(1, 4096))
    frame_patch: int = fld(2, "vit-3d: frames per tubelet", range=(1, 10))
    branches: int = fld(2, "vit-parallel: parallel attention / MLP branches per layer", range=(1, 16))
    head: str = fld(
        "token",
        "output head: token (LN + Linear per patch token, un-patchified) or cls "
        "(Linear(dim -> 10 S S) on the cls token, vit-pytorch's literal usage)",
        choices=("token", "cls"),
    )
    small_reading: str = fld(
        "lsa-spt",
        "what 'ViTsmall' means: lsa-spt (vit-pytorch's ViT for small datasets) "
        "or smaller (a plain ViT at half dim/heads/mlp, 2/3 depth)",
        choices=("lsa-spt", "smaller"),
    )
    dropout: float = fld(0.0, "dropout (attention weights, projections, MLP)", range=(0.0, 0.99))
    amp: str = fld("auto", "auto: bf16 autocast on CUDA, fp32 on CPU; off: always fp32", choices=("auto", "off"))
    lr: float = fld(1e-4, "Adam learning rate", range=(0.0, math.inf))
    weight_decay: float = fld(1e-4, "Adam L2 weight decay", range=(0.0, 1.0))
    scheduler: str = fld(
        "authors",
        "authors (ANIE's cosine T_max 101, eta_min 1e-9, per epoch after epoch 15) or constant",
        choices=("authors", "constant"),
    )
    batch_size: int = fld(32, "samples per mini-batch (also for evaluation)", range=(1, 100000))
    epochs: int = fld(500, "training epochs", range=(1, 100000))
    patience: int = fld(
        0, "stop after this many epochs without a better validation loss (0 = never)", range=(0, 100000)
    )
    eval_iters: str = fld(
        "", "iteration counts k for extra.iter_curve ('1:6', '1,2,4'; default 1..n_iter)", check=int_list_field
    )
    seed: int = fld(7, "run seed: torch / numpy, initial weights, data order", per_run=True)


# Paper Table 2 (paper.md): test MSE, mean ± std. REFERENCE VALUES ONLY, never our results.
_T2 = {
    "ViT": ((0.2472, 0.0026), (0.2121, 0.0063), (0.0691, 0.0024)),
    "ViTsmall": ((0.2471, 0.0025), (0.1672, 0.0087), (0.0648, 0.0022)),
    "ViTparallel": ((0.2474, 0.0027), (0.2172, 0.0066), (0.2079, 0.0194)),
    "ViT3D": ((0.2512, 0.0082), (0.2237, 0.0196), (0.2529, 0.0079)),  # paper prints "00.0079"
}
COLS = tuple(f"N_iter = {k}" for k in (1, 2, 3))
PAPER_TABLE2 = {(r, c): v for r, vals in _T2.items() for c, v in zip(COLS, vals)}


def build_model(c: VitPdeConfig | dict, size: int, frames: int = 10):
    """The operator T (spec §3.3) on ``size`` x ``size`` fields of ``frames`` stamps, iterated by Alg. 2."""
    from ..models.vit_pde import PicardOperator, build_operator

    c = as_config(VitPdeConfig, c)
    T = build_operator(
        c.model,
        size,
        frames,
        dim=c.dim,
        depth=c.depth,
        heads=c.heads,
        mlp=c.mlp,
        patch=c.patch,
        frame_patch=c.frame_patch,
        branches=c.branches,
        head=c.head,
        dropout=c.dropout,
        small_reading=c.small_reading,
    )
    return PicardOperator(T, frames, n_iter=c.n_iter, a=c.a, tol=c.tol, tol_norm=c.tol_norm)


class VitPde(Experiment):
    name = "vit-pde"
    config_cls = VitPdeConfig
    default_recipe = "table2.yaml"
    batchable = False
    table = TableSpec(
        title="Table 2: ViT test MSE on Navier-Stokes (t=0 -> 9 stamps) vs Picard iterations",
        rows=tuple(_T2),
        cols=COLS,
        paper=PAPER_TABLE2,
        metrics={
            "last": "test_mse_last",
            "best-val": "test_mse_best_val",
            "last-10": "test_mse10_last",
            "best-val-10": "test_mse10_best_val",
        },
        default_protocol="best-val",  # as ANIE: the authors' SaveBestModel
        metric_scale=1.0,
        digits=4,
        show_params=True,
        curve_metric="test_mse",
        baselines=BASELINE_ROWS,  # rows of predictors that learn nothing (ns_train.trivial_baselines)
        paired_columns=True,  # report: each N_iter minus N_iter = 1, paired over seeds
    )

    @staticmethod
    def row(cfg):
        return ROWS[cfg["model"]]

    @staticmethod
    def col(cfg):
        return f"N_iter = {cfg['n_iter']}"

    @staticmethod
    def match(cell, wanted, given):
        return 0 if (cell.model, cell.n_iter) == (wanted.model, wanted.n_iter) else None

    def run_group(self, configs, ctx):
        return [self.run_one(c, ctx) for c in configs]

    data_facts = staticmethod(data_facts)

    def run_one(self, c: VitPdeConfig | dict, ctx) -> dict:
        """Train one ViT operator with N_iter = ``c.n_iter`` (resuming from the run's checkpoint); test the
        last and the best-validation model."""
        import numpy as np
        import torch

        from .ns_train import autocast, fit, on_device, trivial_baselines

        c = as_config(VitPdeConfig, c)
        ks = parse_int_list(c.eval_iters, "eval_iters") or list(range(1, c.n_iter + 1))
        dev = torch.device(ctx.device)
        train, val, test, meta = load_splits(c, ctx.data_root)  # ANIE's split (spec §2.1)
        S, frames = train.shape[-1], train.shape[1]
        if S % c.patch:
            raise DataError(f"field size {S} is not a multiple of patch={c.patch}")
        Xtr, Xva, Xte = on_device(dev, train, val, test)
        torch.manual_seed(c.seed)
        np.random.seed(c.seed % 2**32)
        model = build_model(c, S, frames).to(dev)
        bf16 = c.amp == "auto" and dev.type == "cuda"
        amp = autocast(bf16)
        run = fit(model, Xtr, Xva, c, ctx, amp)
        ctx.on_phase("evaluation")
        extra = {
            **describe(model, c, bf16),
            **run.extra(),
            "samples": {"train": len(Xtr), "val": len(Xva), "test": len(Xte)},
            "size": S,
            "data": {k: meta[k] for k in ("source", "n_total", "n_done", "file") if k in meta},
        }
        if run.diverged:
            return Outcome.diverged(VitPde.table, extra, epochs_run=len(run.losses))
        return evaluate(model, run, Xte, c, amp, ks, trivial_baselines(train, test), extra)


def describe(model, c: VitPdeConfig, bf16: bool) -> dict:
    """Parameter counts (all, patch embedding, head), the architecture's sizes, the precision."""
    from ..models.vit_pde import sizes

    T = model.T
    return {
        "n_params": model.n_params(),
        "n_params_embed": sum(p.numel() for p in T.embed.parameters()),
        "n_params_head": sum(p.numel() for p in T.head.parameters()),
        "arch": sizes(c.model, c.dim, c.depth, c.heads, c.mlp, c.branches, c.small_reading)
        | {"class": type(T).__name__, "tokens": T.pos.shape[1] - 1},
        "amp": "bf16" if bf16 else "fp32",
    }


def test_mse(model, X, batch_size: int, amp) -> tuple[float, float, float]:
    """Test MSE on the 9 frames t > 0 (spec §2.3; mean, std over samples) and on all 10 frames (mean)."""
    from .ns_train import per_sample_mse

    per9 = per_sample_mse(model, X, slice(1, None), batch_size, amp=amp)
    per10 = per_sample_mse(model, X, slice(None), batch_size, amp=amp)
    return per9.mean().item(), per9.std(unbiased=False).item(), per10.mean().item()


def evaluate(model, run, Xte, c: VitPdeConfig, amp, ks: list[int], baselines: dict, extra: dict) -> dict:
    """The last model (protocols ``last``, ``last-10``), then the best-validation one (``best-val``, the
    authors' SaveBestModel): its MSE after each k applications of T and its solver trace on the first test
    batch, with the residual ||T(x_N) + f - x_N|| of the output. ``run``: the ns_train.Fit. The outcome."""
    import torch

    from .ns_train import per_sample_mse

    bs = c.batch_size
    last, last_std, last10 = test_mse(model, Xte, bs, amp)
    metrics = {
        **baselines,
        "test_mse_last": last,
        "test_mse_std": last_std,
        "test_mse10_last": last10,
        "val_mse_last": run.val_mse[-1],
        "train_loss_last": run.losses[-1],
        "val_mse_best": run.best_val,
        "best_epoch": run.best_epoch,
        "epochs_run": len(run.losses),
    }
    model.load_state_dict(run.best_state)  # the reported (best-val) model from here on
    metrics["test_mse_best_val"], metrics["test_mse_std_best_val"], metrics["test_mse10_best_val"] = test_mse(
        model, Xte, bs, amp
    )
    # MSE after each k (a prefix of the trained N_iter run for k <= N_iter; beyond: extrapolation)
    extra["iter_curve"] = {
        "k": ks,
        "test_mse": [float(f"{per_sample_mse(model, Xte, slice(1, None), bs, k, amp).mean():.6g}") for k in ks],
        "model": "best-val",
    }
    with torch.no_grad(), amp():  # solver traces on the first test batch
        x, stats = model(Xte[:bs, 0], trace=True)
        f = Xte[:bs, 0].unsqueeze(1).expand_as(x)  # Alg. 2: f = w(t=0) on every stamp
        res_out = torch.linalg.vector_norm((model.T(x) + f - x).float()).item()
    solver = stats.per_problem(0) | {
        "n_iter": c.n_iter,
        "n_evals": stats.steps,
        "residual_out": res_out,
        "batch": len(x),
        "tol": c.tol or None,
    }
    return Outcome("ok", metrics, solver, extra)


register(VitPde())
