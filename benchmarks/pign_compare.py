"""Compare two sets of Table 5 records cell by cell (e.g. runs with dropout_rng=counter against the
archived runs with the torch stream): n, mean ± std of the paper protocol's test accuracy, and the
difference of the means in units of the reference's std (the issue's check: within one std).

    python benchmarks/pign_compare.py archive/pign-table5.jsonl.gz results-counter/pign.jsonl
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from picard_cli.experiments.pign import Pign  # noqa: E402


def load(path: str) -> dict:
    opener = gzip.open if path.endswith(".gz") else open
    cells: dict = {}
    with opener(path, "rt") as fh:
        for line in fh:
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("status") != "ok":
                continue
            c = r["config"]
            cells.setdefault((Pign.row(c), Pign.col(c)), []).append(100 * r["metrics"]["test_acc_last"])
    return cells


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference")
    ap.add_argument("candidate")
    args = ap.parse_args()
    ref, new = load(args.reference), load(args.candidate)
    print(f"{'cell':24s} {'reference':>20s} {'candidate':>20s} {'|diff|/std':>10s}")
    worst = 0.0
    for key in sorted(new, key=lambda k: (Pign.table.rows.index(k[0]), Pign.table.cols.index(k[1]))):
        if key not in ref or len(new[key]) < 2:
            continue
        a, b = ref[key], new[key]
        sd = statistics.pstdev(a)
        z = abs(statistics.mean(b) - statistics.mean(a)) / sd if sd else float("inf")
        worst = max(worst, z)

        def fmt(v):
            return f"{statistics.mean(v):.1f} ± {statistics.pstdev(v):.1f} (n={len(v)})"

        print(f"{key[0] + '/' + key[1]:24s} {fmt(a):>20s} {fmt(b):>20s} {z:10.2f}")
    print(f"largest |difference of means| / reference std: {worst:.2f}")


if __name__ == "__main__":
    main()
