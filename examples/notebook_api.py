"""The Python API in a notebook's steps: a tiny PIGN sweep on a generated graph, its records and its
table as DataFrames, then a small fixed-point problem solved with the toolkit (docs/api.md).

    python examples/notebook_api.py            # about a minute on a laptop CPU, in a temporary folder
"""

import tempfile
import warnings
from pathlib import Path

import pandas as pd
import torch

import picard_cli as picard
from picard_cli.data.synthetic import write_planetoid_raw

warnings.filterwarnings("ignore", message=".*Sparse.*")  # torch's notes on its sparse tensors (as the CLI does)
pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 12)


def tiny_sweep(work: Path) -> pd.DataFrame:
    """Plain GCN and PIGN-GCN on a generated Cora-format graph: Table 5's recipe, 2 seeds, 30 epochs."""
    data = work / "data"
    write_planetoid_raw(data, "cora", seed=1)  # a planted-partition graph in Planetoid's raw format
    args = dict(
        scale="quick",
        filter="^(GCN|PIGN-GCN)/Cora$",  # two cells of recipes/pign/table5.yaml
        seeds=2,
        overrides={"epochs": 30},  # or ["epochs=30"], or epochs=30 as a keyword
        results=work / "results",
    )
    plan = picard.plan("pign", **args)  # what the sweep will run, training nothing
    print(f"{len(plan)} runs planned:\n{plan[['cell', 'seed', 'key', 'recorded']]}\n")
    return picard.sweep("pign", **args, data_root=data, threads=1)


def fixed_point() -> None:
    """x = T(x) + f with T(x) = 0.5 tanh(W x), ||W||_2 = 1: a contraction (Lipschitz <= 0.5)."""
    torch.manual_seed(0)
    W = torch.randn(16, 16)
    W = W / torch.linalg.matrix_norm(W, ord=2)
    f = torch.randn(16)
    x, stats = picard.solve(
        lambda x: 0.5 * torch.tanh(W @ x),
        torch.zeros(16),
        f,
        spec=picard.FixedPointSpec(solver_tol=1e-6),  # stop at residual 1e-6 instead of a fixed count
        a=0.0,  # plain Picard: no damping
        max_iter=100,
    )
    residual = torch.linalg.vector_norm(0.5 * torch.tanh(W @ x) + f - x).item()
    print(f"fixed point: {stats.status} after {stats.steps} iterations, ||T(x) + f - x|| = {residual:.2e}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runs = tiny_sweep(work)
        print("records:")
        print(runs[["cell", "seed", "status", "metrics.test_acc_last", "config.model", "config.epochs", "wall_s"]])
        table = picard.table("pign", results=work / "results")
        print("\nreport (the cells this sweep ran):")
        print(table[table.n > 0][["model", "dataset", "ours_mean", "ours_std", "n", "paper_mean"]])
    fixed_point()


if __name__ == "__main__":
    main()
