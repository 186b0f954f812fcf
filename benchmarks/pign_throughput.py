"""Throughput of Table-5 training: the straightforward per-seed PyG loop vs picard's
batched executor (seeds of a cell stacked into one model), in one process.

    python benchmarks/pign_throughput.py                       # default cells
    python benchmarks/pign_throughput.py --cells GCN/Cora,GAT/Cora --seeds 100 --loop-seeds 3
    python benchmarks/pign_throughput.py --acc-seeds 20        # also compare accuracy distributions
    python benchmarks/pign_throughput.py --cells all --epochs 20  # the 16 paper cells + the whole-grid ratio
    python benchmarks/pign_throughput.py --set dropout_rng=counter  # picard with counter-based dropout

Prints runs/hour for each path at the protocol's length (the recipe's 200 epochs; with --epochs
shorter, timed at that length and scaled, which also scales each group's fixed costs: a few % of a
20-epoch run), their ratio, achieved GFLOP/s (model FLOPs of the
matrix products, counted below) against a measured fp32/bf16 matmul peak, and the
accuracy mean ± std of both, and for the cells run together the time of 100 runs of each
(the paper protocol) both ways, summed: the grid ratio. Writes results/bench_pign_throughput.json.
PICARD_GAT_KERNEL=torch / PICARD_SPMM_KERNEL=torch time picard's GAT / GCN cells without the fused kernels.
Timings on shared machines are noisy: compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import warnings
import json
import os
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from picard_cli import env  # noqa: E402
from picard_cli.experiments.pign import Pign, PignConfig, _data  # noqa: E402
from picard_cli.models import gat_kernels  # noqa: E402
from picard_cli.models.pyg_reference import train_one  # noqa: E402
from picard_cli.recipes import Sweep, apply, parse_overrides  # noqa: E402
from picard_cli.runner import Context  # noqa: E402

DEFAULT_CELLS = "GCN/Cora,GCN/Cora-50%,GAT/Cora,PIGN-GCN/Cora,PIGN-GCN/Cora-50%,PIGN-GAT/Cora"


def peak_gflops(dtype, n=2048, reps=5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def epoch_flops(cfg: dict, N: int, F: int, C: int, nnz_x: int, nnz_a: int, E: int) -> float:
    """Model FLOPs of one epoch (train forward + backward + eval forward) of one seed,
    counting the matrix products: a product with forward cost f costs 3f when its input
    needs no gradient (the features) and 4f otherwise."""

    def first(out):  # features @ W (sparse or dense nnz)
        return 3 * 2 * nnz_x * out

    def lin(i, o):
        return 4 * 2 * N * i * o

    def prop(w):  # Â @ Y
        return 3 * 2 * nnz_a * w

    def agg(heads, d):  # attention-weighted sums over edges
        return 4 * 2 * E * heads * d

    H, K, h = cfg["hidden"], cfg["depth"], cfg["heads"]
    if cfg["model"] == "pign":
        conv = (lin(H, H) + prop(H)) if cfg["backbone"] == "gcn" else (lin(h * H, H) + agg(h, H))
        return first(H) + K * conv + lin(H, C)
    if cfg["backbone"] == "gcn":
        return first(H) + prop(H) + (K - 2) * (lin(H, H) + prop(H)) + lin(H, C) + prop(C)
    w = H * h
    return first(w) + agg(h, H) + (K - 2) * (lin(w, w) + agg(h, w)) + lin(w, C) + agg(1, C)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default=DEFAULT_CELLS, help="comma-separated cell names, or 'all' (the 16 paper cells)")
    ap.add_argument("--recipe", default=str(REPO / "recipes/pign/table5.yaml"))
    ap.add_argument("--seeds", type=int, default=100, help="seeds for picard's batched executor")
    ap.add_argument("--loop-seeds", type=int, default=3, help="seeds timed with the per-seed loop")
    ap.add_argument("--acc-seeds", type=int, default=0, help="if > 0, seeds of both paths for the accuracy check")
    ap.add_argument("--epochs", type=int, default=None, help="override epochs (default: the recipe's 200)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for picard's runs (e.g. dropout_rng=counter); the loop ignores it",
    )
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--out", default=str(REPO / "results/bench_pign_throughput.json"))
    args = ap.parse_args()

    warnings.filterwarnings("ignore", message=".*Sparse.*")
    env.tune_allocator()
    root = env.data_root(args.data_root)
    recipe = yaml.safe_load(Path(args.recipe).read_text())
    base = apply(PignConfig(), recipe.get("defaults"))
    exp, ctx = Pign(), Context("cpu", root)
    peak32, peak16 = peak_gflops(torch.float32), peak_gflops(torch.bfloat16)
    print(
        f"threads {torch.get_num_threads()}; measured matmul peak: fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s"
    )
    rows = []
    # runs/h at the protocol's length (the recipe's epochs): measured at --epochs, scaled linearly
    header = (
        f"{'cell':24s} {'loop runs/h':>11s} {'picard runs/h':>13s} {'ratio':>6s} {'loop GF/s':>9s} "
        f"{'picard GF/s':>11s}  accuracy loop | picard"
    )
    print(header)
    names = args.cells.split(",")
    if args.cells == "all":
        names = [n for n in recipe["cells"] if not n.startswith("IterGNN")]
    for name in names:
        cfg = asdict(apply(base, recipe["cells"][name]))
        ours = asdict(apply(apply(base, recipe["cells"][name]), parse_overrides(args.set)))
        protocol_epochs = cfg["epochs"]
        if args.epochs:
            cfg["epochs"] = ours["epochs"] = args.epochs
        data, x = _data(cfg["dataset"], cfg["noise"], cfg["noise_seed"], str(root))
        N, F = x.shape
        C = int(data.y.max()) + 1
        nnz_x = int((x != 0).sum()) if (x != 0).float().mean() < 0.05 else N * F
        E_gat = data.edge_index.shape[1] + N
        flops = epoch_flops(cfg, N, F, C, nnz_x, data.edge_index.shape[1] + N, E_gat) * cfg["epochs"]

        train_one(dict(cfg, seed=0, epochs=2), x, data)  # warm-up: first-call costs out of the timings
        exp.run_group([dict(ours, seed=0, epochs=2)], ctx)
        loop_n = max(args.loop_seeds, args.acc_seeds)
        loop_acc, t_loop = [], []
        for s in range(loop_n):
            t = time.perf_counter()
            loop_acc.append(train_one(dict(cfg, seed=s), x, data)["test_acc_last"])
            t_loop.append(time.perf_counter() - t)
        loop_s = statistics.mean(t_loop[: args.loop_seeds])

        n = max(args.seeds, args.acc_seeds)
        group = max(1, min(Sweep().group_size, int(Sweep().group_memory_gb * 2**30 // exp.seed_bytes(cfg))))
        outs, t = [], time.perf_counter()
        for lo in range(0, n, group):
            outs += exp.run_group([dict(ours, seed=s) for s in range(lo, min(n, lo + group))], ctx)
        ours_s = (time.perf_counter() - t) / n
        ours_acc = [o["metrics"]["test_acc_last"] for o in outs]

        row = {
            "cell": name,
            "loop_s_per_run": loop_s,
            "picard_s_per_run": ours_s,
            "ratio": loop_s / ours_s,
            "loop_runs_per_hour": 3600 / loop_s,
            "picard_runs_per_hour": 3600 / ours_s,  # at "epochs"
            "protocol_epochs": protocol_epochs,
            "loop_runs_per_hour_protocol": 3600 / (loop_s * protocol_epochs / cfg["epochs"]),
            "picard_runs_per_hour_protocol": 3600 / (ours_s * protocol_epochs / cfg["epochs"]),
            "loop_gflops": flops / loop_s / 1e9,
            "picard_gflops": flops / ours_s / 1e9,
            "group_size": group,
            "seeds": n,
            "loop_seeds": loop_n,
            "epochs": cfg["epochs"],
            "protocol_scale": protocol_epochs / cfg["epochs"],
            "loop_acc": [statistics.mean(loop_acc), statistics.pstdev(loop_acc)],
            "picard_acc": [statistics.mean(ours_acc), statistics.pstdev(ours_acc)],
        }
        rows.append(row)
        print(
            f"{name:24s} {row['loop_runs_per_hour_protocol']:11.0f} {row['picard_runs_per_hour_protocol']:13.0f} "
            f"{row['ratio']:5.1f}x "
            f"{row['loop_gflops']:9.1f} {row['picard_gflops']:11.1f}  "
            f"{100 * row['loop_acc'][0]:.1f}±{100 * row['loop_acc'][1]:.1f} (n={loop_n}) | "
            f"{100 * row['picard_acc'][0]:.1f}±{100 * row['picard_acc'][1]:.1f} (n={n})",
            flush=True,
        )

    # 100 runs of every cell at its protocol length (times scale with epochs when --epochs shortens them)
    def minutes(key):
        return sum(r[key] * r["protocol_scale"] for r in rows) * 100 / 60

    grid = {"loop_minutes_100_runs": minutes("loop_s_per_run"), "picard_minutes_100_runs": minutes("picard_s_per_run")}
    grid["ratio"] = grid["loop_minutes_100_runs"] / grid["picard_minutes_100_runs"]
    print(
        f"these {len(rows)} cells x 100 runs (timed at {rows[0]['epochs']} epochs, scaled to the recipe's): "
        f"loop {grid['loop_minutes_100_runs']:.1f} min, picard {grid['picard_minutes_100_runs']:.1f} min, "
        f"ratio {grid['ratio']:.2f}x"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "peak_fp32_gflops": peak32,
                "peak_bf16_gflops": peak16,
                "cells": rows,
                "grid": grid,
                "gat_kernel": gat_kernels.name(),
                "picard_overrides": args.set,
                "argv": sys.argv[1:],
                "cpu": env.device_name("cpu"),
                "versions": env.versions(),
                "git_sha": env.git_sha(),
                "load_avg": os.getloadavg(),
            },
            indent=1,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
