"""Thread policy for laptop-scale runs: training steps per second of one laptop preset's model with
torch.set_num_threads(1) vs (2), alternated, (a) in one process and (b) in two processes training at
once (two runs of a sweep, or two picard commands, on a 2-core machine: the total of both). Both
policies are timed in this run, alternated; only their ratios are quoted.

    python benchmarks/laptop_threads.py [--exp anie|vit-pde|vit-mask] [--rounds 4] [--steps 5]
        [--out benchmarks/results/laptop_threads.json]

It builds the model of the experiment's laptop preset (the first cell of the largest N_iter)
through the experiment's own builders and times forward + backward + Adam steps on random data of
the preset's shapes (batch size included).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build(exp_name: str):
    """(model, x0 batch, target batch, loss fn) for the laptop preset's last cell."""
    import torch
    import torch.nn.functional as F

    from picard_cli import registry, runner

    exp = registry.get(exp_name)
    run = runner.plan(exp, None, "laptop", {}, {}).runs[-1]
    c = run.config
    if exp_name == "vit-mask":
        from picard_cli.models.vit_mask import MaskedViT, PicardImage

        T = MaskedViT(
            32,
            3,
            c["patch"],
            c["dim"],
            c["depth"],
            c["heads"],
            c["dec_dim"],
            c["dec_depth"],
            c["dec_heads"],
            c["mlp_ratio"],
            c["pos"],
            c["dropout"],
        )
        model = PicardImage(T, c["n_iter"], c["a"], c["first_step"])
        y = torch.rand(c["batch_size"], 3, 32, 32)
        return run.cell, model, y, y, lambda out, y: F.mse_loss(out, y)
    size = 32  # the laptop file's grid
    if exp_name == "anie":
        from picard_cli.experiments.anie import build_model

        model = build_model(c, size)
    else:
        from picard_cli.experiments.vit_pde import build_model

        model = build_model(c, size, 10)
    X = torch.randn(c["batch_size"], 10, size, size)
    return run.cell, model, X[:, 0], X, lambda out, y: F.mse_loss(out, y)


def steps_per_s(model, x, y, loss_fn, steps: int) -> float:
    import torch

    opt = torch.optim.Adam(model.parameters(), 1e-3)
    t0 = time.perf_counter()
    for _ in range(steps):
        out, _ = model(x)
        loss = loss_fn(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - t0)


def _worker(args):
    """One of two concurrent processes: steps/s with ``n`` threads (spawned: a fresh torch)."""
    exp, n, steps, start = args
    import torch

    torch.set_num_threads(n)
    _, model, x, y, loss_fn = build(exp)
    steps_per_s(model, x, y, loss_fn, 1)
    while time.time() < start:  # both processes time the same interval
        time.sleep(0.01)
    return steps_per_s(model, x, y, loss_fn, steps)


def concurrent_total(exp: str, n: int, steps: int) -> float:
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(2) as pool:
        start = time.time() + 20  # after both have imported torch and built the model
        return sum(pool.map(_worker, [(exp, n, steps, start)] * 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exp", default="vit-pde", choices=("anie", "vit-pde", "vit-mask"))
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    import os

    import torch

    cell, model, x, y, loss_fn = build(a.exp)
    steps_per_s(model, x, y, loss_fn, 1)  # warm-up
    rates: dict = {1: [], 2: []}
    for _ in range(a.rounds):  # alternated: 1, 2, 1, 2, ...
        for n in (1, 2):
            torch.set_num_threads(n)
            rates[n].append(steps_per_s(model, x, y, loss_fn, a.steps))
    pair: dict = {1: [], 2: []}
    for _ in range(max(1, a.rounds // 2)):
        for n in (1, 2):
            pair[n].append(concurrent_total(a.exp, n, a.steps))
    best = {n: max(v) for n, v in rates.items()}
    out = {
        "experiment": a.exp,
        "cell": cell,
        "steps_per_round": a.steps,
        "rounds": a.rounds,
        "steps_per_s": {str(n): [round(r, 3) for r in v] for n, v in rates.items()},
        "ratio_2_over_1_best": round(best[2] / best[1], 3),
        "two_processes_total_steps_per_s": {str(n): [round(r, 3) for r in v] for n, v in pair.items()},
        "two_processes_ratio_2_over_1_best": round(max(pair[2]) / max(pair[1]), 3),
        "load_avg_1min_at_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "torch": torch.__version__,
    }
    from _out import emit  # benchmarks/_out.py (this script's folder is on sys.path)

    emit(out, a.out)


if __name__ == "__main__":
    main()
