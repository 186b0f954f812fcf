"""PIGN (Picard Iteration GNN) vs GCN / GAT on Cora and CiteSeer with drop-in
noise: the paper's Table 5 (spec ../shared/specs/pign.md §1-4).

Protocol (spec §2.1): full-batch transductive training on the public split,
``epochs`` of Adam(lr, weight_decay) with no scheduler, cross-entropy on the
train nodes. Every record holds test accuracy after the last epoch (the paper's
protocol: no early stopping) and at the epoch of best validation accuracy
(a cleaner protocol), plus the PIGN solver traces of the final evaluation pass.
Seeds of one cell are trained together as one stacked model (models/stacked_gnn.py).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..fixedpoint.fields import fixedpoint_fields
from ..recipes import SEED_RANGE, as_config, fld, int_list_field, parse_int_list
from ..experiment import Experiment, Outcome, TableSpec
from ..registry import register


@dataclass
@fixedpoint_fields  # solver_method, solver_tol, grad_mode, jac_reg, ... (issue 9; PIGN only; defaults = the paper)
class PignConfig:
    dataset: str = fld("cora", "Planetoid dataset", choices=("cora", "citeseer"))
    noise: float = fld(0.0, "drop-in noise fraction p: floor(p*N*F) feature entries +1 (spec §3)", range=(0.0, 1.0))
    noise_seed: int = fld(2147483647, "seed of the noise mask (the authors' fixed value)", range=SEED_RANGE)
    model: str = fld(
        "pign",
        "pign (Alg. 1), plain (L-layer GCN/GAT baseline) or itergnn (Tang et al.; spec §4.3)",
        choices=("pign", "plain", "itergnn"),
    )
    backbone: str = fld("gcn", "message-passing layer", choices=("gcn", "gat"))
    depth: int = fld(2, "pign: Picard iterations K; plain: layers L; itergnn: at most T_max convs", range=(1, 100))
    a: float = fld(0.6, "pign damping: weight on the OLD iterate, x+ = a x + (1-a) T(x)", range=(0.0, 0.999))
    hidden: int = fld(32, "hidden width (plain GAT: width per head)", range=(1, 4096))
    heads: int = fld(8, "GAT attention heads", range=(1, 64))
    dropout: float = fld(0.5, "dropout on hidden features", range=(0.0, 0.99))
    attn_dropout: float = fld(0.6, "GAT attention dropout", range=(0.0, 0.99))
    lr: float = fld(0.005, "Adam learning rate", range=(0.0, math.inf))
    weight_decay: float = fld(5e-4, "Adam L2 weight decay", range=(0.0, 1.0))
    epochs: int = fld(200, "full-batch training epochs", range=(1, 100000))
    init: str = fld(
        "xavier", "PIGN encoder/decoder init: xavier (IM's xavier_init) or torch", choices=("xavier", "torch")
    )
    features: str = fld(
        "auto",
        "feature matrix format: auto (sparse when < 5% non-zero), dense, sparse",
        choices=("auto", "dense", "sparse"),
    )
    itergnn_variant: str = fld(
        "fork",
        "itergnn confidence: fork (from the layer input, as the authors ran it), "
        "original (from the new output, Tang et al.) or decay (original + DecIterGNN decay)",
        choices=("fork", "original", "decay"),
        added=True,
    )
    readout: str = fld(
        "max", "itergnn graph readout feeding the confidence", choices=("max", "mean", "sum"), added=True
    )
    stop_mass: float = fld(
        1e-7, "itergnn: stop once the remaining confidence mass is at most this", range=(0.0, 1.0), added=True
    )
    eval_iters: str = fld(
        "",
        "pign: after training, also evaluate with k iterations for each k in this "
        "list ('1:40', '1,2,4,8'); no retraining",
        added=True,
        check=int_list_field,
    )
    dropout_rng: str = fld(
        "torch",
        "dropout masks: torch (rand_like, the stream of the archived Table 5 runs) or "
        "counter (fused counter-based CPU kernel, faster; a different stream)",
        choices=("torch", "counter"),
        added=True,
    )
    seed: int = fld(0, "run seed: initial weights (per seed) and dropout", per_run=True)


# Paper Table 5 (paper.md, appendix), test accuracy %, mean ± std over 100 runs.
# REFERENCE VALUES ONLY: printed beside our results, never used as results.
PAPER_TABLE5 = {
    ("GCN", "Cora"): (80.9, 0.6),
    ("GCN", "Cora-50%"): (33.2, 12.2),
    ("GCN", "CiteSeer"): (71.3, 0.6),
    ("GCN", "CiteSeer-50%"): (18.7, 6.3),
    ("GAT", "Cora"): (80.4, 1.1),
    ("GAT", "Cora-50%"): (56.3, 4.4),
    ("GAT", "CiteSeer"): (69.9, 1.0),
    ("GAT", "CiteSeer-50%"): (26.4, 5.4),
    ("IterGNN-GCN", "Cora"): (60.9, 17.4),
    ("IterGNN-GCN", "Cora-50%"): (36.9, 13.3),
    ("IterGNN-GCN", "CiteSeer"): (45.33, 10.06),
    ("IterGNN-GCN", "CiteSeer-50%"): (25.7, 7.4),
    ("IterGNN-GAT", "Cora"): (60.5, 17.5),
    ("IterGNN-GAT", "Cora-50%"): (38.84, 15.24),
    ("IterGNN-GAT", "CiteSeer"): (49.91, 4.94),
    ("IterGNN-GAT", "CiteSeer-50%"): (30.20, 7.20),
    ("PIGN-GCN", "Cora"): (76.7, 1.4),
    ("PIGN-GCN", "Cora-50%"): (43.4, 6.8),
    ("PIGN-GCN", "CiteSeer"): (68.4, 1.5),
    ("PIGN-GCN", "CiteSeer-50%"): (31.0, 3.1),
    ("PIGN-GAT", "Cora"): (79.2, 0.9),
    ("PIGN-GAT", "Cora-50%"): (57.3, 4.8),
    ("PIGN-GAT", "CiteSeer"): (66.1, 1.7),
    ("PIGN-GAT", "CiteSeer-50%"): (34.3, 4.6),
}


@functools.lru_cache(maxsize=4)
def _data(dataset: str, noise: float, noise_seed: int, root: str):
    from ..data.planetoid import drop_in_noise, load_planetoid

    d = load_planetoid(dataset, Path(root))
    x = drop_in_noise(d.x, noise, noise_seed)  # after NormalizeFeatures, all splits (spec §3)
    return d, x


class Pign(Experiment):
    name = "pign"
    config_cls = PignConfig
    default_recipe = "table5.yaml"
    batchable = True
    table = TableSpec(
        title="Table 5: test accuracy (%) on Planetoid with drop-in noise",
        rows=("GCN", "GAT", "IterGNN-GCN", "IterGNN-GAT", "PIGN-GCN", "PIGN-GAT"),
        cols=("Cora", "Cora-50%", "CiteSeer", "CiteSeer-50%"),
        paper=PAPER_TABLE5,
        metrics={"last": "test_acc_last", "best-val": "test_acc_best_val"},
        metric_scale=100.0,
        curve_metric="test_acc",
        quick_is_protocol=True,  # recipes' quick scale only runs fewer seeds of the same cells
    )

    # -- labels and matching ------------------------------------------------------
    @staticmethod
    def row(cfg: dict) -> str:
        # row / col read a record's stored config DICT by key (report.py; archived records too, which may
        # lack fields added since): only fields Table 5 has had from the start.
        b = cfg["backbone"].upper()
        return {"plain": b, "pign": f"PIGN-{b}", "itergnn": f"IterGNN-{b}"}[cfg["model"]]

    @staticmethod
    def col(cfg: dict) -> str:
        name = {"cora": "Cora", "citeseer": "CiteSeer"}[cfg["dataset"]]
        return name if cfg["noise"] == 0 else f"{name}-{round(cfg['noise'] * 100):g}%"

    @staticmethod
    def match(cell, wanted, given: dict):
        """Score of a recipe cell for `picard run` flags: same model, backbone and
        dataset required; the closest noise wins (None = no match)."""
        if (cell.model, cell.backbone, cell.dataset) != (wanted.model, wanted.backbone, wanted.dataset):
            return None
        return abs(cell.noise - wanted.noise)

    # -- running --------------------------------------------------------------------
    @staticmethod
    def seed_bytes(cfg) -> int:
        """Rough activation memory of one seed's training step, to size stacked groups:
        the widest per-layer tensor (N x width) kept for backward at every layer/iteration."""
        c = as_config(PignConfig, cfg)
        n = {"cora": 2708, "citeseer": 3327}[c.dataset]
        width = c.hidden * c.heads if c.backbone == "gat" and c.model != "itergnn" else c.hidden
        return 4 * n * width * (c.depth + 1) * 4

    def run_group(self, configs: list, ctx) -> list[dict]:
        """The seeds of one cell (PignConfigs or their dicts), trained together as one stacked model;
        one outcome per seed, in order."""
        from ..models.stacked_gnn import dropout_rng

        configs = [as_config(PignConfig, cfg) for cfg in configs]
        with dropout_rng(configs[0].dropout_rng):
            return self._run_group(configs, ctx)

    def _run_group(self, configs: list[PignConfig], ctx) -> list[dict]:
        import torch

        c, seeds = configs[0], [cfg.seed for cfg in configs]
        _check_toolkit(c)
        dev = torch.device(ctx.device)
        data = _Planetoid.load(c, ctx.data_root, dev)  # 1. the public split, drop-in noise (spec §2.1, §3)
        model = _build_model(c, seeds, data, dev)  # 2. the stacked model: one set of weights per seed
        fit = _train(c, model, data, len(seeds), ctx)  # 3. full-batch Adam, validation after every epoch
        final = _final_pass(c, model, data)  # 4. the last epoch's traced pass (the paper's protocol)
        return _outcomes(c, model, data, fit, final, len(seeds))  # 5. one record per seed


def _check_toolkit(c: PignConfig) -> None:
    """The fixed-point toolkit (issue 9) is wired into PIGN's solve only: refuse it elsewhere."""
    from ..fixedpoint.fields import toolkit_in_use

    if c.model != "pign" and toolkit_in_use(c):
        from ..errors import RecipeError

        raise RecipeError(
            f"the fixed-point fields (solver_method, grad_mode, jac_reg, diagnose, ...) apply to "
            f"model=pign only, not model={c.model} (sweep with --filter PIGN)"
        )


@dataclass
class _Planetoid:
    """One cell's graph on the device: features X (sparse CSR when sparse), graph, labels, split masks."""

    X: Any
    graph: Any
    y: Any
    masks: dict
    F_in: int  # input features
    C: int  # classes
    sparse: bool
    density: float  # fraction of non-zero feature entries (after the noise)

    @classmethod
    def load(cls, c: PignConfig, data_root, dev) -> _Planetoid:
        from ..models.stacked_gnn import Graph

        data, x = _data(c.dataset, c.noise, c.noise_seed, str(data_root))
        masks = {k: getattr(data, f"{k}_mask").to(dev) for k in ("train", "val", "test")}
        density = float((x != 0).float().mean())
        sparse = c.features == "sparse" or (c.features == "auto" and density < 0.05)
        X = (x.to_sparse_csr() if sparse else x).to(dev)
        graph = Graph.build(data.edge_index, data.num_nodes, dev)
        return cls(X, graph, data.y.to(dev), masks, x.shape[1], int(data.y.max()) + 1, sparse, density)

    def accuracy(self, logits, mask, targets=None):
        """(N, S, C) logits -> (S,) accuracy on ``mask``; a field pass: its ``targets`` rows only."""
        yt, m = (self.y, mask) if targets is None else (self.y[targets], mask[targets])
        return (logits[m].argmax(-1) == yt[m].unsqueeze(1)).float().mean(0)


def _build_model(c: PignConfig, seeds: list[int], data: _Planetoid, dev):
    """PIGN (Alg. 1: K damped Picard steps of one GNN layer between an encoder and a decoder), the
    plain L-layer GCN/GAT, or IterGNN (spec §4.3), stacked over the seeds."""
    import torch

    from ..fixedpoint.fields import fixed_masks, spec_from_config
    from ..models.stacked_gnn import PIGN, IterGNN, PlainGNN

    # Initial weights: one generator per seed (independent of stack mates);
    # dropout: one stream per group, seeded from the group's seeds.
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    torch.manual_seed(hash(tuple(seeds)) % (2**31))
    common = dict(
        backbone=c.backbone,
        F_in=data.F_in,
        C=data.C,
        depth=c.depth,
        hidden=c.hidden,
        heads=c.heads,
        dropout=c.dropout,
        attn_dropout=c.attn_dropout,
    )
    if c.model == "pign":
        model = PIGN(
            gens,
            a=c.a,
            init=c.init,
            fp=spec_from_config(c),
            forcing=c.forcing,
            fixed_masks=fixed_masks(c),
            spectral_cap=c.spectral_norm,
            **common,
        )
    elif c.model == "itergnn":
        model = IterGNN(gens, variant=c.itergnn_variant, readout=c.readout, stop_mass=c.stop_mass, **common)
    else:
        model = PlainGNN(gens, **common)
    return model.to(dev)


class _Fit:
    """Per-seed state of one stacked training run: the last validation / test accuracies, the best
    validation accuracy (its first epoch) and the test accuracy there, divergence, loss history."""

    def __init__(self, S: int, dev):
        import torch

        self.best_val = torch.full((S,), -1.0, device=dev)
        self.best_epoch = torch.zeros(S, dtype=torch.long, device=dev)
        self.test_at_best = torch.zeros(S, device=dev)
        self.diverged = torch.zeros(S, dtype=torch.bool, device=dev)
        self.val = self.test = None
        self.losses, self.train_iters, self.jac_hist = [], [], []
        self.rows = "all"  # "field": receptive-field passes (models/field.py)

    def evaluate(self, model, data: _Planetoid, fields: dict | None, epoch: int) -> None:
        """Validation / test accuracy at the current weights (= after ``epoch``'s step)."""
        import torch

        model.eval()
        with torch.no_grad():
            if fields:
                logits, _ = model(data.X, data.graph, field=fields["eval"])
                t = fields["eval"].targets
                val, test = data.accuracy(logits, data.masks["val"], t), data.accuracy(logits, data.masks["test"], t)
            else:
                logits, _ = model(data.X, data.graph)
                val, test = data.accuracy(logits, data.masks["val"]), data.accuracy(logits, data.masks["test"])
        self.val, self.test = val, test
        better = val > self.best_val  # first epoch of the best validation accuracy
        self.best_val = torch.where(better, val, self.best_val)
        self.best_epoch = torch.where(better, torch.full_like(self.best_epoch, epoch), self.best_epoch)
        self.test_at_best = torch.where(better, test, self.test_at_best)


def _train(c: PignConfig, model, data: _Planetoid, S: int, ctx) -> _Fit:
    """Spec §2.1: ``epochs`` full-batch steps of Adam(lr, weight_decay), no scheduler, cross-entropy on
    the train nodes; validation and test accuracy after every step (no early stopping: the paper
    reports the last epoch, the record also the epoch of best validation accuracy)."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    ytr = data.y[data.masks["train"]].unsqueeze(1).expand(-1, S)
    # Receptive-field passes (models/field.py): training computes the train nodes' logits only,
    # the per-epoch evaluation those of the validation and test nodes; same numbers at those
    # nodes as the full-size passes, less work. The final traced pass runs on the whole graph.
    fields = _fields(c, model, data.graph, data.masks)
    fit = _Fit(S, data.y.device)
    fit.rows = "field" if fields else "all"
    for epoch in range(c.epochs):
        model.train()
        opt.zero_grad(set_to_none=True)
        logits, st = model(data.X, data.graph, field=fields["train"]) if fields else model(data.X, data.graph)
        if epoch > 0:
            # The evaluation of the previous epoch (same weights: no step since) runs here, after
            # this forward pass, so it reuses its first-layer product (stacked_gnn.shared_linear).
            # Evaluation draws no random numbers: the order changes no number.
            fit.evaluate(model, data, fields, epoch - 1)
            ctx.log(epoch, {"train_loss": fit.losses[-1], "val_acc": fit.val, "test_acc": fit.test})  # per seed
            ctx.on_epoch(epoch, c.epochs)
            model.train()
        if c.model == "itergnn":
            fit.train_iters.append(st.iters)
        # Per-seed mean cross-entropy on the train nodes, summed over seeds:
        # each seed's gradient is its own loss's gradient.
        train_logits = logits if fields else logits[data.masks["train"]]  # a field pass: the train rows only
        loss_s = F.cross_entropy(train_logits.transpose(1, 2), ytr, reduction="none").mean(0)
        fit.diverged |= ~torch.isfinite(loss_s)
        objective = loss_s
        if getattr(st, "jac", None) is not None:  # Jacobian penalty per seed (jac_reg > 0)
            objective = loss_s + c.jac_reg * st.jac
            fit.jac_hist.append(st.jac.detach())
            st.jac = None
        torch.nan_to_num(objective, nan=0.0, posinf=0.0).sum().backward()
        opt.step()
        fit.losses.append(loss_s.detach())
    fit.evaluate(model, data, fields, c.epochs - 1)
    ctx.log(c.epochs, {"train_loss": fit.losses[-1], "val_acc": fit.val, "test_acc": fit.test})
    ctx.on_epoch(c.epochs, c.epochs)
    return fit


@dataclass
class _Final:
    """The trained model's final evaluation pass: solver traces, train accuracy, the iteration curve."""

    stats: Any
    train_acc: Any
    eval_ks: list
    val_acc: list  # per k: per-seed validation accuracy with k iterations
    test_acc: list


def _final_pass(c: PignConfig, model, data: _Planetoid) -> _Final:
    """Final evaluation pass with solver traces (paper protocol: last epoch), and the iteration-count
    curve: the trained PIGN run with k steps, no retraining (spec §6)."""
    import torch

    eval_ks = parse_int_list(c.eval_iters, "eval_iters") if c.model == "pign" else []
    model.eval()
    with torch.no_grad():
        logits, stats = model(data.X, data.graph, trace=True)
        final = _Final(stats, data.accuracy(logits, data.masks["train"]), eval_ks, [], [])
        for k in eval_ks:
            lk, _ = model(data.X, data.graph, iters=k)
            final.val_acc.append(data.accuracy(lk, data.masks["val"]).tolist())
            final.test_acc.append(data.accuracy(lk, data.masks["test"]).tolist())
    return final


def _kernels(c: PignConfig, X, dev) -> dict:
    """Which attention-sum (GAT) or propagation (GCN) path ran: fused CPU kernels or torch ops, equal up
    to rounding; and, with ``dropout_rng=counter``, the masks' actual source."""
    if c.backbone == "gat":
        from ..models import gat_kernels

        kernel = {"gat_kernel": gat_kernels.name() if dev.type == "cpu" else "torch"}
    else:  # GCN propagation: fused CPU kernel or torch's sparse product
        from ..models import spmm_kernels

        kernel = {"spmm_kernel": spmm_kernels.name() if dev.type == "cpu" else "torch"}
    if c.dropout_rng == "counter":  # the kernel is CPU float32 only
        from ..models import dropout_kernels

        kernel["dropout_kernel"] = "counter" if dropout_kernels.available(X) else "torch"
    return kernel


def _outcomes(c: PignConfig, model, data: _Planetoid, fit: _Fit, final: _Final, S: int) -> list[dict]:
    """One record per seed: test accuracy after the last epoch (the paper's Table 5) and at the epoch
    of best validation accuracy, the solver traces, and the fixed-point diagnostics when asked for."""
    import torch

    n_params = sum(p.numel() for p in model.parameters()) // S
    loss_hist = torch.stack(fit.losses).cpu()
    fixedpoint = (
        _diagnose(model, data.X, data.graph, data.accuracy, data.masks, c, S)
        if c.model == "pign" and c.diagnose
        else None
    )
    fp_train = _train_summary(getattr(model, "fp_log", []), fit.jac_hist, S)
    kernel = _kernels(c, data.X, data.y.device)
    val, test, ks = fit.val, fit.test, final.eval_ks
    out = []
    for i in range(S):
        bad = bool(fit.diverged[i]) or not math.isfinite(float(test[i]))
        out.append(
            Outcome(
                "diverged" if bad else "ok",
                metrics={
                    "test_acc_last": float("nan") if bad else float(test[i]),
                    "val_acc_last": float(val[i]),
                    "train_acc_last": float(final.train_acc[i]),
                    "test_acc_best_val": float(fit.test_at_best[i]),
                    "best_val_acc": float(fit.best_val[i]),
                    "best_epoch": int(fit.best_epoch[i]),
                    "train_loss_last": float(loss_hist[-1, i]),
                },
                solver=_solver_record(final.stats, i, fit.train_iters),
                extra={
                    "n_params": n_params,
                    "features": "sparse" if data.sparse else "dense",
                    **kernel,
                    "rows": fit.rows,
                    "feature_density": round(data.density, 5),
                    "train_loss_every_10": [round(float(v), 5) for v in loss_hist[::10, i]],
                    **(
                        {
                            "iter_curve": {
                                "k": ks,
                                "val_acc": [round(v[i], 5) for v in final.val_acc],
                                "test_acc": [round(v[i], 5) for v in final.test_acc],
                            }
                        }
                        if ks
                        else {}
                    ),
                    **({"fixedpoint": fixedpoint[i]} if fixedpoint else {}),
                    **({"fixedpoint_train": fp_train[i]} if fp_train else {}),
                },
            )
        )
    return out


def _fields(c: PignConfig, model, graph, masks) -> dict | None:
    """Train and evaluation fields, where the model's passes allow them (plain GCN/GAT; PIGN with
    the plain K-step solve), unless PICARD_FIELD=all."""
    from ..models import field

    if not field.enabled() or c.model not in ("pign", "plain"):
        return None
    if c.model == "pign" and not model.supports_field():
        return None
    return {
        "train": field.Field.build(graph, masks["train"], c.depth),
        "eval": field.Field.build(graph, masks["val"] | masks["test"], c.depth),
    }


def _diagnose(model, X, graph, accuracy, masks, c, S: int) -> list[dict]:
    """Fixed-point diagnostics of the trained PIGN per seed (``diagnose=true``; see
    picard_cli/fixedpoint/diagnostics.py): test accuracy of dec(x_k) at every step k of a picard
    and an anderson solve, the tolerance grid's stopping points, spectral radius, Lipschitz bound."""
    import torch

    from ..fixedpoint.diagnostics import diagnose
    from ..fixedpoint.fields import spec_from_config

    c = as_config(PignConfig, c)
    model.eval()
    with torch.no_grad():
        T, h0, f = model.problem(X, graph)
    bound, note = model.lipschitz_bound(graph)
    return diagnose(
        T,
        h0,
        f,
        a=c.a,
        iters=c.diag_iters,
        batch_dim=1,
        spec=spec_from_config(c),
        metric=lambda h: accuracy(model.dec(h), masks["test"]),
        lipschitz=bound,
        lipschitz_note=note,
        power_iters=c.power_iters,
        metric_name="test_acc",
        seed=c.seed,
    )


def _train_summary(log: list, jac_hist: list, S: int) -> list[dict] | None:
    """Per seed: mean forward evaluations (and implicit backward steps, Jacobian penalty) over training."""
    if not log and not jac_hist:
        return None
    ev = [st.n_evals for st in log if st.n_evals is not None]
    bw = [st.backward["steps"] for st in log if st.backward]
    out = []
    for i in range(S):
        d = {
            "forward_evals_mean": round(sum(ev) / len(ev), 3) if ev else None,
            "backward_steps_mean": round(sum(bw) / len(bw), 3) if bw else None,
        }
        if bw:  # training steps whose implicit backward solve fell back to the Jacobian-free gradient
            d["backward_fallback_frac"] = round(
                sum(bool(st.backward["fallback"]) for st in log if st.backward) / len(bw), 4
            )
        if jac_hist:
            d["jac_frobenius_sq_per_dim"] = [round(float(j[i]), 6) for j in jac_hist[:: max(1, len(jac_hist) // 20)]]
        out.append(d)
    return out


def _solver_record(stats, i: int, train_iters: list) -> dict | None:
    """PIGN: the Picard solver traces of seed i; IterGNN: convs executed at the final
    evaluation and their mean over training epochs; plain: None."""
    if stats is None:
        return None
    if hasattr(stats, "per_problem"):
        return stats.per_problem(i)
    return {
        "iters": stats.iters[i],
        "weight_sum": stats.weight_sum[i],
        "train_iters_mean": sum(t[i] for t in train_iters) / max(1, len(train_iters)),
    }


register(Pign())
