"""ANIE on 2D Navier-Stokes vs the number of solver iterations: the paper's Table 4
(spec ../shared/specs/navier-stokes.md §1, §2, §5, §6; model: picard_cli/models/anie.py).

Protocol (the authors' NS notebook, spec §2): input = the t=0 vorticity frame,
output = the 10 stamps ANIE_TIMES (t = 0, 5, ..., 50); raw vorticity, no
normalisation. Split in generation order: the first ``n_train`` samples train,
the next ``n_val`` validate, the LAST ``n_test`` test (the authors' 3200 / 800 /
Data_u[-1000:]). Adam(lr 1e-4, wd 1e-4), batch 32 reshuffled every epoch, MSE on
all 10 frames; CosineAnnealingLR(T_max 101, eta_min 1e-9) stepped once per epoch
after epoch 15 (0-based ``epoch > 15``, as the notebook). Validation loss = MSE on
the 10 frames (what the authors' SaveBestModel watched). Test MSE = absolute
per-pixel MSE on the 9 frames t > 0, mean over test samples (the authors' batch
average, without over-weighting the last partial batch); its std over test samples
is recorded too (most likely what the paper's ± is). Both the model after the
last epoch (protocol ``last``) and the best-validation model (``best-val``,
the authors' SaveBestModel: the paper-faithful choice) are tested.
N_iter = evaluations of the integral operator (see the model's docstring).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..fixedpoint.fields import fixedpoint_fields
from ..recipes import as_config, fld, int_list_field, parse_int_list
from ..experiment import Experiment, Outcome, TableSpec
from ..registry import register
from .ns_train import BASELINE_ROWS

DEFAULT_DATA = "navier-stokes/ns_V1e-3_S64.h5"  # = data.navier_stokes.default_file(1e-3, 64)


@dataclass
class NSSplit:
    """The data fields every Navier-Stokes experiment shares (anie, vit-pde)."""

    data: str = fld(
        DEFAULT_DATA, "vorticity file (picard .h5 or FNO .mat); relative paths resolve against the data root"
    )
    n_train: int = fld(3200, "training samples: the first n_train of the file", range=(1, 10**7))
    n_val: int = fld(800, "validation samples: the next n_val", range=(1, 10**7))
    n_test: int = fld(1000, "test samples: the LAST n_test of the file (the authors' Data_u[-1000:])", range=(1, 10**7))


@dataclass
@fixedpoint_fields  # solver_method, solver_tol, grad_mode, jac_reg, ... (issue 9; defaults = the paper)
class AnieConfig(NSSplit):
    heads: int = fld(1, "attention heads (Table 4's xH)", range=(1, 64))
    blocks: int = fld(1, "transformer blocks (Table 4's yB)", range=(1, 64))
    dim: int = fld(32, "latent channels per patch token", range=(1, 4096))
    emb: int = fld(64, "transformer width (dim_emb)", range=(1, 4096))
    n_ff: int = fld(128, "feed-forward width", range=(1, 16384))
    n_iter: int = fld(4, "N_iter: evaluations of the integral operator (authors' max_iterations + 1)", range=(1, 1000))
    a: float = fld(0.5, "solver smoothing: weight on the OLD iterate (authors' smoothing_factor)", range=(0.0, 0.999))
    dropout: float = fld(0.1, "dropout (attention output, K^T V, feed-forward, residuals)", range=(0.0, 0.99))
    coord_scramble: bool = fld(False, "authors' quirk: tiled coordinates not aligned with the tokens (spec §1.3)")
    kv_dropout_always: bool = fld(False, "authors' quirk: p=0.5 dropout on K^T V/n, also at evaluation (spec §1.4)")
    eval_adds_f: bool = fld(False, "authors' quirk: G(y) = f + y + N(y) at evaluation only (spec §1.5)")
    lr: float = fld(1e-4, "Adam learning rate", range=(0.0, math.inf))
    weight_decay: float = fld(1e-4, "Adam L2 weight decay", range=(0.0, 1.0))
    scheduler: str = fld(
        "authors",
        "authors (cosine T_max 101, eta_min 1e-9, per epoch after epoch 15) or constant",
        choices=("authors", "constant"),
    )
    batch_size: int = fld(32, "samples per mini-batch (also for evaluation)", range=(1, 100000))
    epochs: int = fld(500, "training epochs (the authors: up to 5000)", range=(1, 100000))
    patience: int = fld(
        0,
        "stop after this many epochs without a better validation loss (0 = never; the authors: 1000)",
        range=(0, 100000),
    )
    eval_iters: str = fld(
        "",
        "after training, test the last model with N_iter = k for each k ('1:8', '1,2,4'); no retraining",
        check=int_list_field,
    )
    amp: str = fld(
        "off",
        "off: fp32 everywhere (the authors); auto: bf16 autocast on CUDA (as vit-pde), fp32 on CPU",
        choices=("auto", "off"),
        added=True,
    )
    seed: int = fld(7, "run seed: torch / numpy, initial weights, data order (the authors: 7)", per_run=True)


# Paper Table 4 (paper.md): test MSE, mean ± std. REFERENCE VALUES ONLY, never our results.
_T4 = {
    "1H 1B": ((0.0564, 0.0070), (0.0474, 0.0065), (0.0448, 0.0062), (0.0446, 0.0065), (0.0442, 0.0065)),
    "4H 1B": ((0.0610, 0.0078), (0.0516, 0.0083), (0.0512, 0.0070), (0.0480, 0.0066), (0.0478, 0.0066)),
    "2H 2B": ((0.0476, 0.0065), (0.0465, 0.0067), (0.0458, 0.0067), (0.0451, 0.0064), (0.0439, 0.0062)),
    "4H 4B": ((0.0458, 0.0062), (0.0461, 0.0065), (0.0453, 0.0063), (0.0453, 0.0061), (0.0445, 0.0059)),
}
COLS = tuple(f"N_iter = {k}" for k in (1, 2, 4, 6, 8))
PAPER_TABLE4 = {(r, c): v for r, vals in _T4.items() for c, v in zip(COLS, vals)}


def split_of(c) -> NSSplit:
    """The data fields of a config: ``c`` itself when typed (AnieConfig and VitPdeConfig extend NSSplit), else
    the NSSplit fields of a config dict (anie's or vit-pde's: these helpers serve both, and preflight)."""
    if isinstance(c, NSSplit):
        return c
    names = {f.name for f in dataclasses.fields(NSSplit)}
    return NSSplit(**{k: v for k, v in c.items() if k in names})


def data_path(c: NSSplit | dict, root) -> Path:
    p = Path(split_of(c).data).expanduser()
    return p if p.is_absolute() else Path(root) / p


@functools.lru_cache(maxsize=2)
def _frames(path: str, mtime: float):
    """All samples at the 10 ANIE stamps, (N, 10, S, S) float32, and the file's metadata."""
    from ..data.navier_stokes import ANIE_TIMES, load_ns

    d = load_ns(path)
    return d.at_times(ANIE_TIMES), d.meta


def load_splits(c: NSSplit | dict, root):
    """(train, val, test) arrays in generation order; test = the last n_test samples."""
    c = split_of(c)
    path = data_path(c, root)
    if not path.exists():
        from ..data.navier_stokes import load_ns

        load_ns(path)  # raises the one-line DataError naming `picard data navier-stokes`
    w, meta = _frames(str(path), path.stat().st_mtime)
    N, S = w.shape[0], w.shape[-1]
    need = c.n_train + c.n_val + c.n_test
    if need > N:
        raise DataError(
            f"{path} has {N} samples but n_train + n_val + n_test = {need}; generate more or lower the split sizes"
        )
    if S % 4:
        raise DataError(f"{path}: field size {S} is not a multiple of 4 (ANIE's 4x4 patches)")
    tr, va = c.n_train, c.n_train + c.n_val
    return w[:tr], w[tr:va], w[N - c.n_test :], meta


PAPER_SPLIT = {"n_train": 3200, "n_val": 800, "n_test": 1000}  # the authors' 3200 / 800 / Data_u[-1000:]


def data_facts(c: NSSplit | dict, root):
    """The Navier-Stokes file's facts (anie and vit-pde), with a split other than the paper's as a difference."""
    from ..data.navier_stokes import facts

    split = dataclasses.asdict(split_of(c))
    out = facts(data_path(c, root), {k[2:]: split[k] for k in PAPER_SPLIT})
    out.differs += [f"{k}={split[k]:,} (paper: {v:,})" for k, v in PAPER_SPLIT.items() if split[k] != v]
    return out


def build_model(c: AnieConfig | dict, size: int):
    """ANIE (spec §1) on ``size`` x ``size`` fields: the integral operator iterated ``n_iter`` times with
    damping ``a`` through the fixed-point toolkit's spec."""
    from ..fixedpoint.fields import fixed_masks, spec_from_config
    from ..models.anie import ANIE

    c = as_config(AnieConfig, c)
    return ANIE(
        size=size,
        dim=c.dim,
        emb=c.emb,
        heads=c.heads,
        blocks=c.blocks,
        n_ff=c.n_ff,
        dropout=c.dropout,
        n_iter=c.n_iter,
        a=c.a,
        coord_scramble=c.coord_scramble,
        kv_dropout_always=c.kv_dropout_always,
        eval_adds_f=c.eval_adds_f,
        fp=spec_from_config(c),
        forcing=c.forcing,
        fixed_masks=fixed_masks(c),
        spectral_cap=c.spectral_norm,
        jac_reg=c.jac_reg,
    )


class Anie(Experiment):
    name = "anie"
    config_cls = AnieConfig
    default_recipe = "table4.yaml"
    batchable = False
    table = TableSpec(
        title="Table 4: ANIE test MSE on Navier-Stokes (t=0 -> 9 stamps) vs solver iterations",
        rows=tuple(_T4),
        cols=COLS,
        paper=PAPER_TABLE4,
        metrics={"last": "test_mse_last", "best-val": "test_mse_best_val"},
        default_protocol="best-val",  # the authors' SaveBestModel
        metric_scale=1.0,
        digits=4,
        show_params=False,
        curve_metric="test_mse",
        baselines=BASELINE_ROWS,  # rows of predictors that learn nothing (ns_train.trivial_baselines)
        paired_columns=True,  # report: each N_iter minus N_iter = 1, paired over seeds
    )

    @staticmethod
    def row(cfg):
        """'4H 4B'; runs with the authors' code quirks on (recipes/anie/table4-authors.yaml) get their own row."""
        quirks = cfg.get("kv_dropout_always") or cfg.get("coord_scramble") or cfg.get("eval_adds_f")
        return f"{cfg['heads']}H {cfg['blocks']}B" + (" (authors' code)" if quirks else "")

    @staticmethod
    def col(cfg):
        return f"N_iter = {cfg['n_iter']}"

    @staticmethod
    def match(cell, wanted, given):
        if (cell.heads, cell.blocks, cell.n_iter) != (wanted.heads, wanted.blocks, wanted.n_iter):
            return None
        return 0

    def run_group(self, configs, ctx):
        return [self.run_one(c, ctx) for c in configs]

    data_facts = staticmethod(data_facts)

    def run_one(self, c: AnieConfig | dict, ctx) -> dict:
        """Train one ANIE (resuming from the run's checkpoint); test the last and the best-validation model."""
        import numpy as np
        import torch

        from ..models.anie import unused_fc_params
        from .ns_train import autocast, fit, on_device, trivial_baselines

        c = as_config(AnieConfig, c)
        ks = parse_int_list(c.eval_iters, "eval_iters")  # validate before the long part
        dev = torch.device(ctx.device)
        train, val, test, meta = load_splits(c, ctx.data_root)
        S = train.shape[-1]
        Xtr, Xva, Xte = on_device(dev, train, val, test)
        torch.manual_seed(c.seed)
        np.random.seed(c.seed % 2**32)
        model = build_model(c, S).to(dev)
        bf16 = c.amp == "auto" and dev.type == "cuda"
        amp = autocast(bf16)
        run = fit(model, Xtr, Xva, c, ctx, amp)
        ctx.on_phase("evaluation")
        n_params = model.n_params()
        extra = {
            "n_params": n_params,
            "amp": "bf16" if bf16 else "fp32",
            "n_params_authors": n_params + unused_fc_params(c.emb, c.heads, c.blocks),
            **run.extra(),
            "samples": {"train": len(Xtr), "val": len(Xva), "test": len(Xte)},
            "size": S,
            "data": {k: meta[k] for k in ("source", "n_total", "n_done", "file") if k in meta},
        }
        if run.diverged:
            return Outcome.diverged(Anie.table, extra, epochs_run=len(run.losses))
        return evaluate(model, run, Xte, c, amp, ks, trivial_baselines(train, test), extra)


def test_mse(model, X, batch_size: int, amp, n_iter=None) -> tuple[float, float]:
    """Test MSE on the 9 frames t > 0 (spec §2.3): mean and std over test samples."""
    from .ns_train import per_sample_mse

    per = per_sample_mse(model, X, slice(1, None), batch_size, n_iter, amp)
    return per.mean().item(), per.std(unbiased=False).item()


def evaluate(model, run, Xte, c: AnieConfig, amp, ks: list[int], baselines: dict, extra: dict) -> dict:
    """The last model (protocol ``last``): test MSE, solver trace on the first test batch, fixed-point
    diagnostics, MSE with other iteration counts; then the best-validation model (``best-val``, the
    authors' SaveBestModel). ``run``: the training's ns_train.Fit. Returns the run's outcome."""
    import torch

    bs = c.batch_size
    last, last_std = test_mse(model, Xte, bs, amp)
    metrics = {
        **baselines,
        "test_mse_last": last,
        "test_mse_std": last_std,
        "val_mse_last": run.val_mse[-1],
        "train_loss_last": run.losses[-1],
        "val_mse_best": run.best_val,
        "best_epoch": run.best_epoch,
        "epochs_run": len(run.losses),
    }
    model.eval()  # solver traces of the last model on the first test batch
    with torch.no_grad():
        _, stats = model(Xte[:bs, 0], trace=True)
    solver = stats.per_problem(0) | {
        "n_iter": c.n_iter,
        "n_evals": stats.steps + 1,  # + the final G
        "residual_out": stats.residual_out,
    }
    if c.diagnose:
        extra["fixedpoint"] = diagnose_anie(model, Xte[:bs], c)
    if model.fp_log:
        extra["fixedpoint_train"] = train_summary(model.fp_log)
    if ks:  # the trained (last) model with other iteration counts, no retraining
        extra["iter_curve"] = {
            "k": ks,
            "test_mse": [float(f"{test_mse(model, Xte, bs, amp, k)[0]:.6g}") for k in ks],
            "model": "last",
        }
    model.load_state_dict(run.best_state)
    metrics["test_mse_best_val"], metrics["test_mse_std_best_val"] = test_mse(model, Xte, bs, amp)
    return Outcome("ok", metrics, solver, extra)


def diagnose_anie(model, X, c: AnieConfig) -> dict:
    """Fixed-point diagnostics of the trained (last) ANIE on one test batch (``diagnose=true``;
    picard_cli/fixedpoint/diagnostics.py): per-sample solves, reduced to the batch (the worst
    sample's relative residual, the largest spectral radius); metric = test MSE on the 9 frames
    t > 0 of the prediction from iterate y_k (decoder(G(y_k) + c))."""
    import torch

    from ..fixedpoint.diagnostics import diagnose
    from ..fixedpoint.fields import spec_from_config

    model.eval()
    with torch.no_grad():
        T, f, cf = model.problem(X[:, 0])

    def mse(y):
        return (model.predict(y, cf)[:, 1:] - X[:, 1:]).pow(2).mean()

    return diagnose(
        T,
        f,
        cf,
        a=c.a,
        iters=c.diag_iters,
        batch_dim=0,
        reduce=True,
        spec=spec_from_config(c),
        metric=mse,
        lipschitz=None,
        lipschitz_note="LayerNorm and Galerkin attention (cubic in y): no global a-priori bound",
        power_iters=c.power_iters,
        metric_name="test_mse",
        seed=c.seed,
    )[0]


def train_summary(log: list) -> dict:
    """Mean forward operator evaluations (+ the final G) and implicit backward steps over training steps."""
    ev = [st.n_evals + 1 for st in log if st.n_evals is not None]
    bw = [st.backward["steps"] for st in log if st.backward]
    jac = [st.jac_value for st in log if getattr(st, "jac_value", None) is not None]
    return {
        "forward_evals_mean": round(sum(ev) / len(ev), 3) if ev else None,
        "backward_steps_mean": round(sum(bw) / len(bw), 3) if bw else None,
        "steps": len(log),
        **(
            {
                "backward_fallback_frac": round(
                    sum(bool(st.backward["fallback"]) for st in log if st.backward) / len(bw), 4
                )
            }
            if bw
            else {}
        ),
        **({"jac_frobenius_sq_per_dim": [round(v, 5) for v in jac[:: max(1, len(jac) // 20)]]} if jac else {}),
    }


register(Anie())
