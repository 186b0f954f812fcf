"""Structure scoring throughput: picard's batched scorer vs the TMscore program on the same pairs.

    python benchmarks/structure_scoring.py                       # 4 CASP15 domains, 5 models x 21 recycles each
    python benchmarks/structure_scoring.py --targets T1133-D1 --models 5 --seeds 5 --device cpu

The pairs are synthetic recycle trajectories (``picard_cli/structure/synthetic.py``: perturbed copies of
the real natives in $PICARD_DATA/casp15, deviations shrinking over 21 recycles, some wandering, hinges),
written as PDB files. For each target, TMscore is run once per pair (``TMscore MODEL NATIVE``, as a
user would), and picard reads the same files and scores all recycles x models x seeds of the target in
one batch (``score_models``). Reported: pairs per second for both (ours with and without file parsing),
the ratio, and the agreement (RMSD max |difference|; GDT_TS, GDT_HA, TM-score differences ours - TMscore).
File reading uses fastpdb when it is installed (``pip install fastpdb``, biotite's compiled drop-in reader),
else biotite; the reader is printed. Targets: >= 5x TMscore's throughput (both measured in this run); RMSD
equal to 3 decimals; GDT_TS >= TMscore - 0.005 and at most ~0.02 above. Writes
results/bench_structure_scoring.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _parser() -> str:
    try:
        import fastpdb  # noqa: F401

        return "fastpdb (compiled biotite drop-in)"
    except ImportError:
        return "biotite"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--targets", default="T1104-D1,T1137s1-D2,T1133-D1,T1188-D1", help="CASP15 domain IDs (L = 117, 240, 409, 573)"
    )
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--recycles", type=int, default=20, help="recycles 0..N per trajectory")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--out", default=str(REPO / "results" / "bench_structure_scoring.json"))
    args = ap.parse_args()

    import torch

    from picard_cli import env
    from picard_cli.structure import read_ca, score_models, write_ca_pdb
    from picard_cli.structure import tmscore as tms
    from picard_cli.structure.synthetic import trajectory

    if args.threads:
        torch.set_num_threads(args.threads)
    exe = tms.find()
    if exe is None:
        print("TMscore not found: apt-get install tm-align (or set PICARD_TMSCORE)")
        return 2
    root = env.data_root(args.data_root) / "casp15" / "targets"
    rows, all_d = [], {k: [] for k in ("rmsd", "gdt_ts", "gdt_ha", "tm")}
    tot = {"pairs": 0, "tmscore_s": 0.0, "ours_s": 0.0, "ours_score_s": 0.0}
    with tempfile.TemporaryDirectory(prefix="picard-bench-") as tmp:
        for k, tid in enumerate(t.strip() for t in args.targets.split(",")):
            native_path = root / f"{tid}.pdb"
            nat = read_ca(native_path)
            paths = []
            for m in range(1, args.models + 1):
                for s in range(args.seeds):
                    X = trajectory(nat.coords, args.recycles, 0, k, m, s, wander=(m % 3 == 0))
                    for r in range(args.recycles + 1):
                        p = Path(tmp) / f"{tid}_m{m}_s{s}_r{r}.pdb"
                        write_ca_pdb(p, nat, X[r], chain_id="A")
                        paths.append(p)
            t0 = time.perf_counter()
            ref = [tms.tmscore(p, native_path, exe) for p in paths]
            t_tm = time.perf_counter() - t0
            t0 = time.perf_counter()
            native = read_ca(native_path)
            models = [read_ca(p) for p in paths]
            t1 = time.perf_counter()
            out = score_models(native, models, device=args.device, dtype=args.dtype)
            t_end = time.perf_counter()
            d = {key: out[key] - np.array([r[key] for r in ref]) for key in all_d}
            for key in all_d:
                all_d[key] += d[key].tolist()
            n = len(paths)
            tot["pairs"] += n
            tot["tmscore_s"] += t_tm
            tot["ours_s"] += t_end - t0
            tot["ours_score_s"] += t_end - t1
            rows.append(
                {
                    "target": tid,
                    "L": len(nat),
                    "pairs": n,
                    "tmscore_pairs_per_s": n / t_tm,
                    "ours_pairs_per_s": n / (t_end - t0),
                    "ours_score_only_pairs_per_s": n / (t_end - t1),
                    "ratio": t_tm / (t_end - t0),
                    "tmscore_ms_per_pair": 1e3 * t_tm / n,
                    "superpositions_per_model": float(out["superpositions"].mean()),
                    "rmsd_max_abs_diff": float(np.abs(d["rmsd"]).max()),
                    "gdt_ts_diff": [float(d["gdt_ts"].min()), float(d["gdt_ts"].mean()), float(d["gdt_ts"].max())],
                    "tm_diff": [float(d["tm"].min()), float(d["tm"].mean()), float(d["tm"].max())],
                }
            )
            r = rows[-1]
            print(
                f"{tid:>11} L={r['L']:<4} {n} pairs  TMscore {r['tmscore_pairs_per_s']:7.1f}/s "
                f"({r['tmscore_ms_per_pair']:.1f} ms/pair)  ours {r['ours_pairs_per_s']:7.1f}/s "
                f"(scoring only {r['ours_score_only_pairs_per_s']:7.1f}/s)  ratio {r['ratio']:5.2f}x  "
                f"dGDT_TS [{r['gdt_ts_diff'][0]:+.4f}, {r['gdt_ts_diff'][2]:+.4f}]  "
                f"RMSD max|d| {r['rmsd_max_abs_diff']:.4f}",
                flush=True,
            )
    ratio = tot["tmscore_s"] / tot["ours_s"]
    D = {k: np.array(v) for k, v in all_d.items()}
    summary = {
        "pairs": tot["pairs"],
        "tmscore_pairs_per_s": tot["pairs"] / tot["tmscore_s"],
        "ours_pairs_per_s": tot["pairs"] / tot["ours_s"],
        "ours_score_only_pairs_per_s": tot["pairs"] / tot["ours_score_s"],
        "ratio": ratio,
        "target_ratio": 5.0,
        "agreement": {
            "rmsd_max_abs_diff": float(np.abs(D["rmsd"]).max()),
            **{
                f"{k}_diff_min_mean_max": [float(D[k].min()), float(D[k].mean()), float(D[k].max())]
                for k in ("gdt_ts", "gdt_ha", "tm")
            },
            "gdt_ts_below_minus_0.005": int((D["gdt_ts"] < -0.005).sum()),
            "gdt_ts_above_plus_0.02": int((D["gdt_ts"] > 0.02).sum()),
        },
        "per_target": rows,
        "device": env.device_name(args.device if args.device != "auto" else env.pick_device()),
        "parser": _parser(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "args": vars(args),
    }
    a = summary["agreement"]
    print(f"\nPDB reader: {summary['parser']}; torch threads: {summary['torch_threads']}")
    print(
        f"all {tot['pairs']} pairs: TMscore {summary['tmscore_pairs_per_s']:.1f} pairs/s, ours "
        f"{summary['ours_pairs_per_s']:.1f} pairs/s (scoring only {summary['ours_score_only_pairs_per_s']:.1f}) "
        f"-> {ratio:.2f}x (target >= 5x: {'PASS' if ratio >= 5 else 'FAIL'})"
    )
    print(
        f"agreement: RMSD max |d| {a['rmsd_max_abs_diff']:.4f} (3 decimals: "
        f"{'PASS' if a['rmsd_max_abs_diff'] <= 0.0005 + 1e-9 else 'FAIL'}); "
        f"GDT_TS ours - TMscore min/mean/max {'/'.join(f'{v:+.4f}' for v in a['gdt_ts_diff_min_mean_max'])} "
        f"({a['gdt_ts_below_minus_0.005']} below -0.005, {a['gdt_ts_above_plus_0.02']} above +0.02); "
        f"GDT_HA {'/'.join(f'{v:+.4f}' for v in a['gdt_ha_diff_min_mean_max'])}; "
        f"TM-score {'/'.join(f'{v:+.4f}' for v in a['tm_diff_min_mean_max'])}"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
