"""PIGN vs plain and IterGNN backbones on LRGB PascalVOC-SP: the paper's Table 1
(spec ../shared/specs/pign.md §1.4, §1.6, §2.5, §4.2, §4.3, §5).

Protocol (the authors' fork, ``LRGB.py`` + ``main/train.py``): mini-batches of
``batch_size`` graphs (PyG DataLoader, train shuffled), Adam(lr, eps 1e-5, wd),
OneCycleLR(max_lr = lr, pct_start 0.2) stepped every batch, per-batch
class-weighted cross-entropy, macro-F1 over all nodes of a split, test after the
final epoch. Every model has at most ``budget`` trainable parameters: with
``hidden=0`` the width is the largest that fits (parameters counted by building
the model). Runs whose loss turns non-finite or exceeds ``diverge_loss`` stop
and are recorded as diverged (the paper dropped two IterGNN-GAT runs).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import RecipeError
from ..recipes import as_config, fld, int_list_field, parse_int_list, to_dict
from ..experiment import Experiment, Outcome, TableSpec
from ..registry import register


@dataclass
class LrgbConfig:
    dataset: str = fld("pascalvoc-sp", "LRGB dataset", choices=("pascalvoc-sp",))
    framework: str = fld(
        "pign",
        "plain ('w/o iterations', the fork's DeepGNN), itergnn or pign (Alg. 1)",
        choices=("plain", "itergnn", "pign"),
    )
    backbone: str = fld("gcn", "message-passing layer", choices=("gcn", "gat", "sage"))
    depth: int = fld(8, "pign: Picard iterations K; itergnn: at most T_max convs; plain: layers L", range=(1, 200))
    a: float = fld(0.7, "pign damping: weight on the OLD iterate", range=(0.0, 0.999))
    hidden: int = fld(0, "width H; 0 = the largest that fits the parameter budget", range=(0, 8192))
    budget: int = fld(500_000, "at most this many trainable parameters per model (paper: 500k)", range=(1, 10**9))
    head_layers: int = fld(3, "layers of the inductive node head (GNNInductiveNodeHead)", range=(1, 10))
    use_bn: bool = fld(False, "BatchNorm after each conv (pign: one shared BN; plain: one per layer)")
    use_relu: bool = fld(True, "ReLU after each conv (pign, plain)")
    gnn_dropout: float = fld(0.0, "pign: dropout on T(x_k)", range=(0.0, 0.99))
    mlp_dropout: float = fld(0.0, "pign: dropout before the head", range=(0.0, 0.99))
    fk_unused_params: bool = fld(
        True,
        "count parameters as the fork builds them (PIGN's BN even when unused, DeepGNN's unused confidence Linear)",
    )
    itergnn_variant: str = fld(
        "fork",
        "itergnn confidence: fork (layer input), original (new output), decay (original + DecIterGNN decay)",
        choices=("fork", "original", "decay"),
    )
    readout: str = fld("max", "itergnn per-graph readout feeding the confidence", choices=("max", "mean", "sum"))
    stop_mass: float = fld(1e-7, "itergnn: stop once the remaining confidence mass is at most this", range=(0.0, 1.0))
    lr: float = fld(1e-3, "Adam (peak) learning rate", range=(0.0, math.inf))
    weight_decay: float = fld(1e-5, "Adam L2 weight decay", range=(0.0, 1.0))
    adam_eps: float = fld(1e-5, "Adam epsilon (the fork: 1e-5)", range=(0.0, 1.0))
    scheduler: str = fld(
        "onecycle", "onecycle (OneCycleLR per batch, pct_start 0.2) or constant", choices=("onecycle", "constant")
    )
    epochs: int = fld(300, "training epochs", range=(1, 100000))
    batch_size: int = fld(32, "graphs per mini-batch", range=(1, 100000))
    max_graphs: int = fld(0, "use only the first n graphs of each split (0 = all); for quick runs", range=(0, 10**7))
    diverge_loss: float = fld(1e3, "a batch loss above this (or non-finite) marks the run diverged", range=(0.0, 1e12))
    eval_iters: str = fld(
        "",
        "pign/itergnn: after training, evaluate with k iterations for each k ('1:40' or '1,2,4'); no retraining",
        check=int_list_field,
    )
    seed: int = fld(0, "run seed: torch / numpy / random, data order", per_run=True)


# Paper Table 1 (paper.md): macro-F1 on the test split, mean ± std over 5 seeds
# (IterGNN-GAT over 3: two runs exploded). REFERENCE VALUES ONLY, never our results.
PAPER_TABLE1 = {
    ("w/o iterations", "GCN"): (0.1510, 0.0029),
    ("w/o iterations", "GAT"): (0.1204, 0.0127),
    ("w/o iterations", "GraphSAGE"): (0.3015, 0.0032),
    ("IterGNN", "GCN"): (0.1736, 0.0311),
    ("IterGNN", "GAT"): (0.1099, 0.0459),
    ("IterGNN", "GraphSAGE"): (0.1816, 0.0014),
    ("PIGN (Ours)", "GCN"): (0.1831, 0.0038),
    ("PIGN (Ours)", "GAT"): (0.1706, 0.0046),
    ("PIGN (Ours)", "GraphSAGE"): (0.3560, 0.0037),
}
ROWS = {"plain": "w/o iterations", "itergnn": "IterGNN", "pign": "PIGN (Ours)"}
COLS = {"gcn": "GCN", "gat": "GAT", "sage": "GraphSAGE"}
MODEL_KEYS = (
    "framework",
    "backbone",
    "depth",
    "a",
    "head_layers",
    "use_bn",
    "use_relu",
    "gnn_dropout",
    "mlp_dropout",
    "itergnn_variant",
    "readout",
    "stop_mass",
    "fk_unused_params",
)


def _model_kwargs(c: LrgbConfig) -> dict:
    return {k: getattr(c, k) for k in MODEL_KEYS}


def build_model(cfg, hidden: int):
    """The fork's model (``VocGNN``) of a config (an LrgbConfig or its dict) at width ``hidden``."""
    from ..models.lrgb_gnn import VocGNN

    return VocGNN(hidden=hidden, **_model_kwargs(as_config(LrgbConfig, cfg)))


@functools.lru_cache(maxsize=256)
def _count(items: tuple, hidden: int) -> int:
    import torch

    from ..models.lrgb_gnn import VocGNN

    with torch.device("meta"):  # shapes only: no memory, no init cost
        return VocGNN(hidden=hidden, **dict(items)).n_params()


def count_params(cfg, hidden: int) -> int:
    return _count(tuple(sorted(_model_kwargs(as_config(LrgbConfig, cfg)).items())), hidden)


def fit_hidden(cfg) -> int:
    """The width to use: ``hidden`` if set (checked against the budget), else the
    largest H with count_params(H) <= budget (binary search; counts grow with H)."""
    c = as_config(LrgbConfig, cfg)
    budget = c.budget
    if c.hidden:
        n = count_params(c, c.hidden)
        if n > budget:
            raise RecipeError(
                f"hidden={c.hidden} gives {n:,} parameters, over the budget of {budget:,} "
                f"(set hidden=0 to fit the width to the budget)"
            )
        return c.hidden
    if count_params(c, 1) > budget:
        raise RecipeError(f"budget={budget:,} is too small: even hidden=1 has {count_params(c, 1):,} parameters")
    lo, hi = 1, 2
    while count_params(c, hi) <= budget:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # invariant: count(lo) <= budget < count(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count_params(c, mid) <= budget else (lo, mid)
    return lo


class PignLrgb(Experiment):
    name = "pign-lrgb"
    recipe_dir = "pign"
    config_cls = LrgbConfig
    default_recipe = "table1.yaml"
    batchable = False
    table = TableSpec(
        title="Table 1: macro-F1 on LRGB PascalVOC-SP test split, 500k-parameter budget",
        rows=tuple(ROWS.values()),
        cols=tuple(COLS.values()),
        paper=PAPER_TABLE1,
        metrics={"last": "test_f1_last", "best-val": "test_f1_best_val"},
        metric_scale=1.0,
        digits=4,
        show_params=True,
        curve_metric="test_f1",
        select_field="lr",  # recipes/pign/table1-lrgrid.yaml: the report picks one lr per cell (report.select_variant)
        select_metrics={"val": "best_val_f1"},
    )

    @staticmethod
    def row(cfg):
        # row / col read a record's stored config DICT by key (report.py): fields Table 1 has had from the start.
        return ROWS[cfg["framework"]]

    @staticmethod
    def col(cfg):
        return COLS[cfg["backbone"]]

    @staticmethod
    def match(cell, wanted, given):
        if (cell.framework, cell.backbone) != (wanted.framework, wanted.backbone):
            return None
        return 0

    def run_group(self, configs, ctx):
        return [self.run_one(c, ctx) for c in configs]

    @staticmethod
    def data_facts(cfg, data_root):
        from ..data.lrgb import facts

        c = as_config(LrgbConfig, cfg)
        return facts(Path(data_root), c.dataset, c.max_graphs)

    def run_one(self, c, ctx) -> dict:
        """One seed of one cell (an LrgbConfig or its dict), by the fork's protocol (module docstring)."""
        import torch

        c = as_config(LrgbConfig, c)
        dev = torch.device(ctx.device)
        splits = _load_splits(c, ctx.data_root)  # 1. PascalVOC-SP (max_graphs: the first n graphs of each split)
        hidden = fit_hidden(c)  # 2. the widest model within the parameter budget (paper: 500k)
        model = _seeded_model(c, hidden, dev)  # 3. seeds, then the model, as the fork does
        g = torch.Generator().manual_seed(c.seed)  # 4. mini-batches: the training order comes from g
        train, loaders = _loaders(c, splits, g, dev)
        opt, sched = _optimizer(c, model, len(train))  # 5. Adam(lr, eps 1e-5, wd), OneCycleLR per batch
        st = train_loop(model, train, lambda: macro_f1_of(model, loaders["val"]), opt, sched, g, c, ctx)  # 6.
        return _outcome(c, model, splits, loaders, hidden, st)  # 7. test after the final epoch (and best val)


def _load_splits(c: LrgbConfig, data_root) -> dict:
    from ..data.lrgb import load_lrgb

    splits = load_lrgb(Path(data_root), c.dataset)
    if c.max_graphs:
        splits = {k: v[: c.max_graphs] for k, v in splits.items()}
    return splits


def _seeded_model(c: LrgbConfig, hidden: int, dev):
    """The fork seeds torch, random and numpy after loading data, before building the model."""
    import random

    import numpy as np
    import torch

    torch.manual_seed(c.seed)
    random.seed(c.seed)
    np.random.seed(c.seed % 2**32)
    return build_model(c, hidden).to(dev)


def _loaders(c: LrgbConfig, splits: dict, g, dev):
    """The shuffled training loader (its order drawn from ``g``) and the validation / test loaders."""
    from torch_geometric.loader import DataLoader

    # CUDA: worker processes collate and pin batches (the shuffle order still comes from g in this process)
    cuda = dev.type == "cuda"
    io = {"num_workers": 4, "pin_memory": True, "persistent_workers": True} if cuda else {}
    train = DataLoader(splits["train"], batch_size=c.batch_size, shuffle=True, generator=g, **io)
    return train, {k: DataLoader(splits[k], batch_size=c.batch_size, **io) for k in ("val", "test")}


def _optimizer(c: LrgbConfig, model, steps_per_epoch: int):
    """Adam(lr, eps, weight decay) and, with ``scheduler=onecycle``, OneCycleLR(max_lr = lr, pct_start
    0.2) stepped every batch (the fork's main/train.py)."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=c.lr, eps=c.adam_eps, weight_decay=c.weight_decay)
    sched = (
        torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=c.lr, epochs=c.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.2
        )
        if c.scheduler == "onecycle"
        else None
    )
    return opt, sched


def macro_f1_of(model, loader, iters=None) -> float:
    """Macro-F1 over all nodes of a split (spec §5), in evaluation mode; ``iters``: that many iterations."""
    import torch

    from ..metrics.classification import macro_f1

    dev = next(model.parameters()).device
    model.eval()
    preds, ys = [], []
    with torch.no_grad():
        for b in loader:
            b = b.to(dev)
            logits, _ = model(b.x, b.edge_index, b.batch, iters=iters)
            preds.append(logits.argmax(-1).cpu())
            ys.append(b.y.cpu())
    return macro_f1(torch.cat(ys), torch.cat(preds))


def _outcome(c: LrgbConfig, model, splits: dict, loaders: dict, hidden: int, st: dict) -> dict:
    """The record: test macro-F1 after the final epoch (the paper's Table 1) and with the best
    validation epoch's weights, solver traces, the iteration-count curve; a diverged run: NaN."""
    losses, val_f1 = st["losses"], st["val_f1"]
    extra = {
        "n_params": model.n_params(),
        "hidden": hidden,
        "budget": c.budget,
        "epoch_s_mean": round(sum(st["epoch_s"]) / max(1, len(st["epoch_s"])), 4),
        "train_loss": [round(v, 5) for v in losses],
        "val_f1": [round(v, 5) for v in val_f1],
        "graphs": {k: len(v) for k, v in splits.items()},
        "resumed_from_epoch": st["resumed_from"],
    }
    if st["diverged"]:
        return Outcome.diverged(PignLrgb.table, extra, epochs_run=len(losses))
    metrics = {
        "test_f1_last": macro_f1_of(model, loaders["test"]),
        "val_f1_last": val_f1[-1],
        "train_loss_last": losses[-1],
        "best_val_f1": st["best_val"],
        "best_epoch": st["best_epoch"],
    }
    solver = _solver_record(c, model, loaders["val"], st["iters_used"])
    ks = parse_int_list(c.eval_iters, "eval_iters") if c.framework != "plain" else []
    if ks:  # iteration-count curve of the trained model (spec §6: the fork's perf_iter.py)
        extra["iter_curve"] = {
            "k": ks,
            "val_f1": [round(macro_f1_of(model, loaders["val"], k), 5) for k in ks],
            "test_f1": [round(macro_f1_of(model, loaders["test"], k), 5) for k in ks],
        }
    model.load_state_dict(st["best_state"])
    metrics["test_f1_best_val"] = macro_f1_of(model, loaders["test"])
    return Outcome("ok", metrics, solver, extra)


def _solver_record(c: LrgbConfig, model, val_loader, iters_used: list) -> dict | None:
    """Traces of one validation batch, final model: PIGN's solver, or IterGNN's convs (and their
    mean over training); plain: None."""
    import torch

    if c.framework == "plain":
        return None
    model.eval()
    with torch.no_grad():
        b = next(iter(val_loader)).to(next(model.parameters()).device)
        _, stats = model(b.x, b.edge_index, b.batch, trace=True)
    if c.framework == "pign":
        return stats.per_problem(0)
    return {
        "iters": stats.iters[0],
        "weight_sum": stats.weight_sum[0],
        "train_iters_mean": sum(iters_used) / max(1, len(iters_used)),
    }


def train_loop(model, loader, validate, opt, sched, g, c, ctx) -> dict:
    """The fork's loop: per epoch the shuffled mini-batches of ``loader`` (order drawn from ``g``),
    per-batch class-weighted cross-entropy, Adam and the per-batch schedule, then ``validate()``
    (macro-F1) keeping the best weights; a batch loss non-finite or above ``diverge_loss`` stops
    the run as diverged. ``c``: an LrgbConfig or its dict. Returns the fit (plain data, it is
    checkpointed): losses, val_f1, iters_used (itergnn), epoch_s, best_val, best_epoch, best_state,
    diverged, resumed_from.

    Checkpoint (``ctx.run_dir/checkpoint.pt`` when due, picard_cli/checkpoint.py) after an epoch:
    the model, Adam, the schedule, every RNG (torch, numpy, python, ``g``: the DataLoader's order),
    the fit so far, the epoch and the config; a re-run continues at the next epoch with the
    numbers of an uninterrupted run (``resumed_from``: the epochs done at each resume)."""
    from ..checkpoint import Checkpointer, rng_state

    c = as_config(LrgbConfig, c)
    ck = Checkpointer(ctx, to_dict(c))  # the checkpoint belongs to this config (its resolved dict)
    st, start = _resume(ck, model, opt, sched, loader, g)
    for epoch in range(start, c.epochs):
        t0 = time.perf_counter()
        _train_epoch(model, loader, opt, sched, c, st)
        if st["diverged"]:
            st["losses"].append(float("nan"))
            break
        st["val_f1"].append(validate())
        if st["val_f1"][-1] > st["best_val"]:
            st["best_val"], st["best_epoch"] = st["val_f1"][-1], epoch
            st["best_state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        st["epoch_s"].append(time.perf_counter() - t0)
        ck.epoch_end(
            epoch == c.epochs - 1,
            lambda: {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "rng": rng_state(g),
                "lr_scheduler": sched.state_dict() if sched is not None else None,
                "fit": st,
            },
        )
        ctx.on_epoch(epoch + 1, c.epochs, f"{st['epoch_s'][-1]:.2f} s/epoch")
    return st


def _resume(ck, model, opt, sched, loader, g) -> tuple[dict, int]:
    """(the fit so far, the first epoch to run): from the run's checkpoint when there is one, which
    restores the model, Adam, the schedule and every RNG; else a fresh fit from epoch 0."""
    from ..checkpoint import set_rng_state

    st = {
        "losses": [],
        "val_f1": [],
        "iters_used": [],
        "epoch_s": [],
        "best_val": -1.0,
        "best_epoch": 0,
        "best_state": None,
        "diverged": False,
        "resumed_from": [],
    }
    saved = ck.resume()
    if saved is None:
        return st, 0
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    if sched is not None:
        sched.load_state_dict(saved["lr_scheduler"])
    if loader.persistent_workers and loader.num_workers > 0:
        # its iterator draws the workers' base seed from g once, when made (epoch 0 of an uninterrupted
        # run): make it now, from the fresh g as that run did, so that later epochs draw the same orders
        iter(loader)
    set_rng_state(saved["rng"], g)
    st, start = saved["fit"], saved["epoch"] + 1
    st["resumed_from"].append(start)
    return st, start


def _train_epoch(model, loader, opt, sched, c: LrgbConfig, st: dict) -> None:
    """One pass over the shuffled mini-batches; appends the epoch's mean loss to ``st["losses"]``,
    or sets ``st["diverged"]`` at the first batch loss that is non-finite or above ``diverge_loss``."""
    import torch.nn.functional as F

    from ..metrics.classification import class_weights
    from ..models.lrgb_gnn import N_CLASSES

    dev = next(model.parameters()).device
    model.train()
    total, count = 0.0, 0
    for b in loader:
        b = b.to(dev)
        opt.zero_grad(set_to_none=True)
        logits, stats = model(b.x, b.edge_index, b.batch)
        # Per-batch class-weighted cross-entropy (spec §5).
        loss = F.cross_entropy(logits, b.y, weight=class_weights(b.y, N_CLASSES).to(dev))
        value = loss.item()
        if not math.isfinite(value) or value > c.diverge_loss:
            st["diverged"] = True
            return
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        total, count = total + value, count + 1
        if c.framework == "itergnn":
            st["iters_used"].append(stats.iters[0])
    st["losses"].append(total / max(1, count))


register(PignLrgb())
