"""Seconds per epoch of the paper-scale Table-1 recipe (LRGB PascalVOC-SP), per cell.

    python benchmarks/lrgb_epoch_time.py                          # every cell, 4 timed batches each
    python benchmarks/lrgb_epoch_time.py --cells PIGN/GCN,IterGNN/GAT --batches 8 --device cuda

Times ``--batches`` training steps (forward, class-weighted loss, backward, Adam)
and as many validation batches of batch_size graphs after one warm-up step, then
extrapolates to one epoch of the real dataset: 8,498 training graphs (266 batches
of 32) plus the validation pass over 1,428 graphs (45 batches), the work
`picard sweep pign --recipe recipes/pign/table1.yaml --scale paper` does per epoch
(spec pign.md §5). With the real data under the data root (lrgb/pascalvoc-sp/raw)
its first graphs are used; otherwise graphs of the real size (400-560 nodes; the
real mean is ~479) are generated. Writes results/bench_lrgb_epoch_time.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TRAIN_GRAPHS, VAL_GRAPHS = 8498, 1428


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    from torch_geometric.loader import DataLoader

    from picard_cli import env
    from picard_cli.data.lrgb import load_lrgb
    from picard_cli.data.synthetic import write_lrgb_raw
    from picard_cli.experiments.pign_lrgb import build_model, fit_hidden
    from picard_cli.metrics.classification import class_weights
    from picard_cli.registry import get
    from picard_cli.runner import plan

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default="", help="comma list of recipe cells (default: all)")
    ap.add_argument("--batches", type=int, default=4, help="timed training (and validation) batches per cell")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()

    exp = get("pign-lrgb")
    p = plan(exp, str(REPO / "recipes/pign/table1.yaml"), "paper", {}, {"seeds": 1})
    wanted = [c for c in args.cells.split(",") if c]
    runs = [r for r in p.runs if not wanted or r.cell in wanted]
    dev = torch.device(env.pick_device(args.device))
    bs = runs[0].config["batch_size"]
    need = (args.batches + 1) * bs
    root = Path(env.data_root(args.data_root))
    if (root / "lrgb" / "pascalvoc-sp" / "raw" / "train.pickle").exists():
        source, splits = "real", load_lrgb(root)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="picard-lrgb-bench-"))
        write_lrgb_raw(tmp, n_graphs=(need, need, 1), nodes=(400, 560), seed=0)
        source, splits = "generated (400-560 nodes/graph)", load_lrgb(tmp)
    train = DataLoader(splits["train"][:need], batch_size=bs)
    val = DataLoader(splits["val"][:need], batch_size=bs)
    print(f"device {env.device_name(str(dev))}; data {source}; {args.batches} timed batches of {bs} graphs")

    out = []
    for r in runs:
        c = r.config
        torch.manual_seed(0)
        hidden = fit_hidden(c)
        model = build_model(c, hidden).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=c["lr"], eps=c["adam_eps"])
        step_s, eval_s = [], []
        for i, b in enumerate(train):
            b = b.to(dev)
            sync(dev)
            t0 = time.perf_counter()
            model.train()
            opt.zero_grad(set_to_none=True)
            logits, _ = model(b.x, b.edge_index, b.batch)
            loss = torch.nn.functional.cross_entropy(logits, b.y, weight=class_weights(b.y, 21).to(dev))
            loss.backward()
            opt.step()
            sync(dev)
            if i:  # first step is warm-up
                step_s.append(time.perf_counter() - t0)
        model.eval()
        with torch.no_grad():
            for i, b in enumerate(val):
                b = b.to(dev)
                sync(dev)
                t0 = time.perf_counter()
                model(b.x, b.edge_index, b.batch)
                sync(dev)
                if i:
                    eval_s.append(time.perf_counter() - t0)
        step, ev = sum(step_s) / len(step_s), sum(eval_s) / len(eval_s)
        epoch = step * math.ceil(TRAIN_GRAPHS / bs) + ev * math.ceil(VAL_GRAPHS / bs)
        row = {
            "cell": r.cell,
            "hidden": hidden,
            "params": model.n_params(),
            "step_s": round(step, 4),
            "eval_batch_s": round(ev, 4),
            "epoch_s": round(epoch, 1),
            "paper_run_h": round(epoch * c["epochs"] / 3600, 2),
        }
        out.append(row)
        print(
            f"{r.cell:14s} H={hidden:4d} {row['params']:8,d} params  step {step * 1e3:8.1f} ms  "
            f"-> {epoch:8.1f} s/epoch, {row['paper_run_h']:7.2f} h per {c['epochs']}-epoch run"
        )
    dest = REPO / "results" / "bench_lrgb_epoch_time.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(
        json.dumps(
            {
                "device": env.device_name(str(dev)),
                "data": source,
                "batches": args.batches,
                "versions": env.versions(),
                "cells": out,
            },
            indent=1,
        )
    )
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
