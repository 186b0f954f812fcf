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
from ..recipes import fld, int_list_field, parse_int_list
from ..registry import register


@dataclass
class LrgbConfig:
    dataset: str = fld("pascalvoc-sp", "LRGB dataset", choices=("pascalvoc-sp",))
    framework: str = fld("pign", "plain ('w/o iterations', the fork's DeepGNN), itergnn or pign (Alg. 1)",
                         choices=("plain", "itergnn", "pign"))
    backbone: str = fld("gcn", "message-passing layer", choices=("gcn", "gat", "sage"))
    depth: int = fld(8, "pign: Picard iterations K; itergnn: at most T_max convs; plain: layers L", range=(1, 200))
    a: float = fld(0.7, "pign damping: weight on the OLD iterate", range=(0.0, 0.999))
    hidden: int = fld(0, "width H; 0 = the largest that fits the parameter budget", range=(0, 8192))
    budget: int = fld(500_000, "at most this many trainable parameters per model (paper: 500k)",
                      range=(1, 10**9))
    head_layers: int = fld(3, "layers of the inductive node head (GNNInductiveNodeHead)", range=(1, 10))
    use_bn: bool = fld(False, "BatchNorm after each conv (pign: one shared BN; plain: one per layer)")
    use_relu: bool = fld(True, "ReLU after each conv (pign, plain)")
    gnn_dropout: float = fld(0.0, "pign: dropout on T(x_k)", range=(0.0, 0.99))
    mlp_dropout: float = fld(0.0, "pign: dropout before the head", range=(0.0, 0.99))
    fk_unused_params: bool = fld(True, "count parameters as the fork builds them (PIGN's BN even when unused, "
                                 "DeepGNN's unused confidence Linear)")
    itergnn_variant: str = fld("fork", "itergnn confidence: fork (layer input), original (new output), "
                               "decay (original + DecIterGNN decay)", choices=("fork", "original", "decay"))
    readout: str = fld("max", "itergnn per-graph readout feeding the confidence", choices=("max", "mean", "sum"))
    stop_mass: float = fld(1e-7, "itergnn: stop once the remaining confidence mass is at most this",
                           range=(0.0, 1.0))
    lr: float = fld(1e-3, "Adam (peak) learning rate", range=(0.0, math.inf))
    weight_decay: float = fld(1e-5, "Adam L2 weight decay", range=(0.0, 1.0))
    adam_eps: float = fld(1e-5, "Adam epsilon (the fork: 1e-5)", range=(0.0, 1.0))
    scheduler: str = fld("onecycle", "onecycle (OneCycleLR per batch, pct_start 0.2) or constant",
                         choices=("onecycle", "constant"))
    epochs: int = fld(300, "training epochs", range=(1, 100000))
    batch_size: int = fld(32, "graphs per mini-batch", range=(1, 100000))
    max_graphs: int = fld(0, "use only the first n graphs of each split (0 = all); for quick runs",
                          range=(0, 10**7))
    diverge_loss: float = fld(1e3, "a batch loss above this (or non-finite) marks the run diverged",
                              range=(0.0, 1e12))
    eval_iters: str = fld("", "pign/itergnn: after training, evaluate with k iterations for each k "
                          "('1:40' or '1,2,4'); no retraining", check=int_list_field)
    seed: int = fld(0, "run seed: torch / numpy / random, data order", per_run=True)


# Paper Table 1 (paper.md): macro-F1 on the test split, mean ± std over 5 seeds
# (IterGNN-GAT over 3: two runs exploded). REFERENCE VALUES ONLY, never our results.
PAPER_TABLE1 = {
    ("w/o iterations", "GCN"): (0.1510, 0.0029), ("w/o iterations", "GAT"): (0.1204, 0.0127),
    ("w/o iterations", "GraphSAGE"): (0.3015, 0.0032),
    ("IterGNN", "GCN"): (0.1736, 0.0311), ("IterGNN", "GAT"): (0.1099, 0.0459),
    ("IterGNN", "GraphSAGE"): (0.1816, 0.0014),
    ("PIGN (Ours)", "GCN"): (0.1831, 0.0038), ("PIGN (Ours)", "GAT"): (0.1706, 0.0046),
    ("PIGN (Ours)", "GraphSAGE"): (0.3560, 0.0037),
}
ROWS = {"plain": "w/o iterations", "itergnn": "IterGNN", "pign": "PIGN (Ours)"}
COLS = {"gcn": "GCN", "gat": "GAT", "sage": "GraphSAGE"}
MODEL_KEYS = ("framework", "backbone", "depth", "a", "head_layers", "use_bn", "use_relu", "gnn_dropout",
              "mlp_dropout", "itergnn_variant", "readout", "stop_mass", "fk_unused_params")


def build_model(cfg: dict, hidden: int):
    from ..models.lrgb_gnn import VocGNN

    return VocGNN(hidden=hidden, **{k: cfg[k] for k in MODEL_KEYS})


@functools.lru_cache(maxsize=256)
def _count(items: tuple, hidden: int) -> int:
    import torch

    with torch.device("meta"):  # shapes only: no memory, no init cost
        return build_model(dict(items), hidden).n_params()


def count_params(cfg: dict, hidden: int) -> int:
    return _count(tuple(sorted((k, cfg[k]) for k in MODEL_KEYS)), hidden)


def fit_hidden(cfg: dict) -> int:
    """The width to use: ``cfg['hidden']`` if set (checked against the budget), else the
    largest H with count_params(H) <= budget (binary search; counts grow with H)."""
    budget = cfg["budget"]
    if cfg["hidden"]:
        n = count_params(cfg, cfg["hidden"])
        if n > budget:
            raise RecipeError(f"hidden={cfg['hidden']} gives {n:,} parameters, over the budget of {budget:,} "
                              f"(set hidden=0 to fit the width to the budget)")
        return cfg["hidden"]
    if count_params(cfg, 1) > budget:
        raise RecipeError(f"budget={budget:,} is too small: even hidden=1 has {count_params(cfg, 1):,} parameters")
    lo, hi = 1, 2
    while count_params(cfg, hi) <= budget:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # invariant: count(lo) <= budget < count(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count_params(cfg, mid) <= budget else (lo, mid)
    return lo


class PignLrgb:
    name = "pign-lrgb"
    family = "pign"  # `picard sweep pign --recipe recipes/pign/table1.yaml` runs it
    recipe_dir = "pign"
    config_cls = LrgbConfig
    default_recipe = "table1.yaml"
    batchable = False
    table = "Table 1: macro-F1 on LRGB PascalVOC-SP test split, 500k-parameter budget"
    rows = tuple(ROWS.values())
    cols = tuple(COLS.values())
    paper = PAPER_TABLE1
    metrics = {"last": "test_f1_last", "best-val": "test_f1_best_val"}
    select_field = "lr"  # recipes/pign/table1-lrgrid.yaml: the report picks one lr per cell (report.select_variant)
    select_metrics = {"val": "best_val_f1"}
    metric_scale = 1.0
    digits = 4
    show_params = True
    curve_metric = "test_f1"

    @staticmethod
    def row(cfg):
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
    def data_facts(cfg: dict, data_root):
        from ..data.lrgb import facts

        return facts(Path(data_root), cfg["dataset"], cfg["max_graphs"])

    def run_one(self, c: dict, ctx) -> dict:
        import random

        import numpy as np
        import torch
        from torch_geometric.loader import DataLoader

        from ..data.lrgb import load_lrgb
        from ..metrics.classification import macro_f1

        dev = torch.device(ctx.device)
        splits = load_lrgb(Path(ctx.data_root), c["dataset"])
        if c["max_graphs"]:
            splits = {k: v[: c["max_graphs"]] for k, v in splits.items()}
        hidden = fit_hidden(c)
        # The fork seeds torch, random and numpy after loading data, before building the model.
        torch.manual_seed(c["seed"])
        random.seed(c["seed"])
        np.random.seed(c["seed"] % 2**32)
        model = build_model(c, hidden).to(dev)
        n_params = model.n_params()
        g = torch.Generator().manual_seed(c["seed"])
        # CUDA: worker processes collate and pin batches (the shuffle order still comes from g in this process)
        cuda = dev.type == "cuda"
        io = {"num_workers": 4, "pin_memory": True, "persistent_workers": True} if cuda else {}
        train = DataLoader(splits["train"], batch_size=c["batch_size"], shuffle=True, generator=g, **io)
        loaders = {k: DataLoader(splits[k], batch_size=c["batch_size"], **io) for k in ("val", "test")}
        opt = torch.optim.Adam(model.parameters(), lr=c["lr"], eps=c["adam_eps"], weight_decay=c["weight_decay"])
        sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=c["lr"], epochs=c["epochs"],
                                                     steps_per_epoch=len(train), pct_start=0.2)
                 if c["scheduler"] == "onecycle" else None)

        def evaluate(loader, iters=None):
            model.eval()
            preds, ys = [], []
            with torch.no_grad():
                for b in loader:
                    b = b.to(dev)
                    logits, _ = model(b.x, b.edge_index, b.batch, iters=iters)
                    preds.append(logits.argmax(-1).cpu())
                    ys.append(b.y.cpu())
            return macro_f1(torch.cat(ys), torch.cat(preds))

        st = train_loop(model, train, lambda: evaluate(loaders["val"]), opt, sched, g, c, ctx)
        losses, val_f1, iters_used, epoch_s = st["losses"], st["val_f1"], st["iters_used"], st["epoch_s"]
        best_val, best_epoch, best_state, diverged = st["best_val"], st["best_epoch"], st["best_state"], st["diverged"]

        extra = {"n_params": n_params, "hidden": hidden, "budget": c["budget"],
                 "epoch_s_mean": round(sum(epoch_s) / max(1, len(epoch_s)), 4),
                 "train_loss": [round(v, 5) for v in losses], "val_f1": [round(v, 5) for v in val_f1],
                 "graphs": {k: len(v) for k, v in splits.items()}, "resumed_from_epoch": st["resumed_from"]}
        if diverged:
            return {"status": "diverged", "extra": extra,
                    "metrics": {"test_f1_last": float("nan"), "test_f1_best_val": float("nan"),
                                "epochs_run": len(losses)}}
        metrics = {"test_f1_last": evaluate(loaders["test"]), "val_f1_last": val_f1[-1],
                   "train_loss_last": losses[-1], "best_val_f1": best_val, "best_epoch": best_epoch}
        solver = None
        if c["framework"] != "plain":
            model.eval()
            with torch.no_grad():  # traces of one validation batch, final model
                b = next(iter(loaders["val"])).to(dev)
                _, stats = model(b.x, b.edge_index, b.batch, trace=True)
            solver = (stats.per_problem(0) if c["framework"] == "pign" else
                      {"iters": stats.iters[0], "weight_sum": stats.weight_sum[0],
                       "train_iters_mean": sum(iters_used) / max(1, len(iters_used))})
        ks = parse_int_list(c["eval_iters"], "eval_iters") if c["framework"] != "plain" else []
        if ks:  # iteration-count curve of the trained model (spec §6: the fork's perf_iter.py)
            extra["iter_curve"] = {"k": ks, "val_f1": [round(evaluate(loaders["val"], k), 5) for k in ks],
                                   "test_f1": [round(evaluate(loaders["test"], k), 5) for k in ks]}
        model.load_state_dict(best_state)
        metrics["test_f1_best_val"] = evaluate(loaders["test"])
        return {"status": "ok", "metrics": metrics, "solver": solver, "extra": extra}


def train_loop(model, loader, validate, opt, sched, g, c: dict, ctx) -> dict:
    """The fork's loop: per epoch the shuffled mini-batches of ``loader`` (order drawn from ``g``),
    per-batch class-weighted cross-entropy, Adam and the per-batch schedule, then ``validate()``
    (macro-F1) keeping the best weights; a batch loss non-finite or above ``diverge_loss`` stops
    the run as diverged. Returns the fit: losses, val_f1, iters_used (itergnn), epoch_s, best_val,
    best_epoch, best_state, diverged, resumed_from.

    Checkpoint (``ctx.run_dir/checkpoint.pt`` when due, picard_cli/checkpoint.py) after an epoch:
    the model, Adam, the schedule, every RNG (torch, numpy, python, ``g``: the DataLoader's order),
    the fit so far, the epoch and the config; a re-run continues at the next epoch with the
    numbers of an uninterrupted run (``resumed_from``: the epochs done at each resume)."""
    import torch.nn.functional as F

    from ..checkpoint import Checkpointer, rng_state, set_rng_state
    from ..metrics.classification import class_weights
    from ..models.lrgb_gnn import N_CLASSES

    dev = next(model.parameters()).device
    st = {"losses": [], "val_f1": [], "iters_used": [], "epoch_s": [], "best_val": -1.0, "best_epoch": 0,
          "best_state": None, "diverged": False, "resumed_from": []}
    ck, start = Checkpointer(ctx, c), 0
    saved = ck.resume()
    if saved is not None:
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
    for epoch in range(start, c["epochs"]):
        t0 = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for b in loader:
            b = b.to(dev)
            opt.zero_grad(set_to_none=True)
            logits, stats = model(b.x, b.edge_index, b.batch)
            # Per-batch class-weighted cross-entropy (spec §5).
            loss = F.cross_entropy(logits, b.y, weight=class_weights(b.y, N_CLASSES).to(dev))
            value = loss.item()
            if not math.isfinite(value) or value > c["diverge_loss"]:
                st["diverged"] = True
                break
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total, count = total + value, count + 1
            if c["framework"] == "itergnn":
                st["iters_used"].append(stats.iters[0])
        if st["diverged"]:
            st["losses"].append(float("nan"))
            break
        st["losses"].append(total / max(1, count))
        st["val_f1"].append(validate())
        if st["val_f1"][-1] > st["best_val"]:
            st["best_val"], st["best_epoch"] = st["val_f1"][-1], epoch
            st["best_state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        st["epoch_s"].append(time.perf_counter() - t0)
        ck.epoch_end(epoch == c["epochs"] - 1, lambda: {
            "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(), "rng": rng_state(g),
            "lr_scheduler": sched.state_dict() if sched is not None else None, "fit": st})
        ctx.on_epoch(epoch + 1, c["epochs"], f"{st['epoch_s'][-1]:.2f} s/epoch")
    return st


register(PignLrgb())
