"""`picard report alphafold-recycle`: the paper's Figures 3-5 as PNGs plus the non-convergence table
(Markdown + CSV) and the plotted curves (CSV), one set per source of structures (spec:
ddpm-fid-alphafold §4.1 for the per-target min-max normalisation).

* Fig. 3: mean over targets of the per-target mean (over models x seeds) GDT_TS / GDT_HA and RMSD vs
  recycle, with a band of +- 1 standard error over targets.
* Figs. 4 / 5: per target, (s - min) / (max - min) of its mean curve, min and max taken over every
  structure of the target (recycles x models x seeds); a target with max = min is left out and counted.
  GDT: 1 = the target's best structure; RMSD: 0 = its lowest (best) RMSD.
* Which runs: per source, the newest run's config; several seeds of it are pooled (per-target curves
  averaged, min / max over all).

Synthetic runs get "SYNTHETIC" in every title and file name.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from ..metrics.curves import convergence
from ..metrics.structure_names import HIGHER_BETTER, ROW_NAMES, SCALE

STEM = "alphafold-recycle"


def select(records: list[dict]) -> dict[str, list[dict]]:
    """source -> the ok records of that source's newest config (all its seeds)."""
    by: dict[str, dict[str, list[dict]]] = {}
    for r in records:
        if r.get("status") != "ok" or not (r.get("extra") or {}).get("targets"):
            continue
        body = json.dumps({k: v for k, v in r["config"].items() if k != "seed"}, sort_keys=True)
        by.setdefault(r["config"]["source"], {}).setdefault(body, []).append(r)
    return {src: max(fams.values(), key=lambda rs: max(x.get("started", "") for x in rs)) for src, fams in by.items()}


def pooled(runs: list[dict]) -> dict[str, dict]:
    """target -> {metric: {mean: curve averaged over runs, min, max}, length, converged flags}."""
    out: dict[str, dict] = {}
    for r in runs:
        for t, v in r["extra"]["targets"].items():
            slot = out.setdefault(t, {"length": v["length"], "runs": 0})
            slot["runs"] += 1
            for m in ROW_NAMES:
                cur, new = slot.get(m), v[m]
                if cur is None:
                    slot[m] = {"curves": [new["mean"]], "min": new["min"], "max": new["max"]}
                else:
                    cur["curves"].append(new["mean"])
                    cur["min"] = _opt(min, cur["min"], new["min"])
                    cur["max"] = _opt(max, cur["max"], new["max"])
    for slot in out.values():
        for m in ROW_NAMES:
            curves = slot[m].pop("curves")
            R = max(len(c) for c in curves)
            mean = []
            for i in range(R):
                vals = [c[i] for c in curves if i < len(c) and c[i] is not None]
                mean.append(sum(vals) / len(vals) if vals else None)
            slot[m]["mean"] = mean
    return out


def _opt(f, a, b):
    vals = [v for v in (a, b) if v is not None]
    return f(vals) if vals else None


def normalised(curve: list, lo, hi):
    """(s - lo) / (hi - lo), or None when hi == lo (spec §4.1 guard)."""
    if lo is None or hi is None or not (hi - lo) > 1e-12:
        return None
    return [None if v is None else (v - lo) / (hi - lo) for v in curve]


def _label(src: str, runs: list[dict]) -> tuple[str, str]:
    """(title prefix, note under the title)."""
    cfg = runs[0]["config"]
    scales = sorted({r.get("scale") or "?" for r in runs})
    n_traj = cfg["num_models"] * cfg["num_seeds"]
    note = (
        f"{cfg['model_type']}, recycles 0-{cfg['num_recycle']}, {cfg['num_models']} models x "
        f"{cfg['num_seeds']} seeds (= {n_traj} per target), {len(runs)} run(s), scale {', '.join(scales)}"
    )
    if src == "synthetic":
        return "SYNTHETIC (perturbed natives, NOT AlphaFold)", note
    if src == "predictions":
        return f"predictions from {cfg['predictions_dir']}", note
    return "AlphaFold-Multimer (ColabFold)", note


def write_all(records: list[dict], root: Path) -> list[Path]:
    """Figs. 3-5, the non-convergence table and the curves' CSVs, per prediction source."""
    chosen = select(records)
    if not chosen:
        return []
    import matplotlib

    matplotlib.use("Agg")
    root.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for src, runs in sorted(chosen.items()):
        tgt = pooled(runs)
        cfg = runs[0]["config"]
        prefix, note = _label(src, runs)
        tag = src.upper() if src == "synthetic" else src
        ids = sorted(tgt)
        fig3, rows_csv = _fig3(tgt, ids, src, prefix, note)
        written.append(_save(fig3, root / f"{STEM}_fig3_{tag}.png"))
        tol = {"gdt_ts": cfg["tol_gdt"] / 100.0, "rmsd": cfg["tol_rmsd"]}
        conv = {m: {t: convergence(tgt[t][m]["mean"], HIGHER_BETTER[m], tol[m]) for t in ids} for m in tol}
        for fig_no, m in ((4, "gdt_ts"), (5, "rmsd")):
            fig = _fig_normalised(tgt, ids, m, conv[m], fig_no, prefix, note)
            written.append(_save(fig, root / f"{STEM}_fig{fig_no}_{tag}.png"))
        written += _table(root, tag, src, prefix, note, ids, tgt, conv, cfg)
        written.append(_csv(root / f"{STEM}_curves_{tag}.csv", rows_csv))
        written.append(_csv(root / f"{STEM}_targets_{tag}.csv", _per_target_rows(tgt, ids, src)))
    return written


def _matrix(tgt: dict, ids: list, m: str, R: int):
    """targets x recycles of metric m's mean (NaN where a target has fewer recycles), in display units."""
    import numpy as np

    A = np.full((len(ids), R), np.nan)
    for i, t in enumerate(ids):
        c = tgt[t][m]["mean"]
        A[i, : len(c)] = [np.nan if v is None else v for v in c]
    return A * SCALE[m]


def _fig3(tgt: dict, ids: list, src: str, prefix: str, note: str):
    """Figure 3: GDT and RMSD, mean ± s.e.m. over targets, vs recycle; and its points as CSV rows."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    R = max(len(tgt[t]["gdt_ts"]["mean"]) for t in ids)
    x = np.arange(R)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    rows_csv = []
    for ax, ms in ((axes[0], ("gdt_ts", "gdt_ha")), (axes[1], ("rmsd",))):
        for m, style in zip(ms, ("o-", "s--")):
            A = _matrix(tgt, ids, m, R)
            n = np.isfinite(A).sum(0)
            mean = np.nanmean(A, 0)
            sem = np.nanstd(A, 0) / np.sqrt(np.maximum(n, 1))
            ax.plot(x, mean, style, ms=3, label=f"{ROW_NAMES[m]} (n={int(n.max())} targets)")
            ax.fill_between(x, mean - sem, mean + sem, alpha=0.2)
            rows_csv += [
                {
                    "source": src,
                    "metric": m,
                    "recycle": int(r),
                    "mean_over_targets": float(mean[r]),
                    "sem": float(sem[r]),
                    "n_targets": int(n[r]),
                }
                for r in range(R)
            ]
        ax.set_xlabel("recycles")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    axes[0].set_ylabel("GDT (x100, higher is better)")
    axes[1].set_ylabel("C-alpha RMSD, Å (lower is better)")
    axes[0].set_title("GDT vs recycles (mean ± s.e.m. over targets)", fontsize=10)
    axes[1].set_title("RMSD vs recycles", fontsize=10)
    fig.suptitle(f"Fig. 3 - {prefix}\n{note}", fontsize=9)
    fig.tight_layout()
    return fig, rows_csv


def _fig_normalised(tgt: dict, ids: list, m: str, conv: dict, fig_no: int, prefix: str, note: str):
    """Figures 4 (GDT_TS) and 5 (RMSD): per-target min-max normalised curves, dashed where not converged."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    R = max(len(tgt[t]["gdt_ts"]["mean"]) for t in ids)
    fig, ax = plt.subplots(figsize=(11, 5.5))
    cmap = plt.get_cmap("tab20")
    flat, curves = [], []
    for i, t in enumerate(ids):
        v = normalised(tgt[t][m]["mean"], tgt[t][m]["min"], tgt[t][m]["max"])
        if v is None:
            flat.append(t)
            continue
        y = np.array([np.nan if a is None else a for a in v])
        curves.append(y)
        bad = not conv[t]["converged"]
        ax.plot(
            np.arange(len(y)),
            y,
            "--" if bad else "-",
            color=cmap(i % 20),
            lw=1.0 if bad else 0.8,
            alpha=0.9 if bad else 0.6,
            label=f"{t}{' (not converged)' if bad else ''}",
        )
    if curves:
        Y = np.full((len(curves), R), np.nan)
        for i, y in enumerate(curves):
            Y[i, : len(y)] = y
        ax.plot(np.arange(R), np.nanmean(Y, 0), "k-", lw=2.5, label="mean over targets")
    what = (
        "1 = the target's best (highest) GDT_TS structure"
        if m == "gdt_ts"
        else "0 = the target's lowest (best) RMSD; lower is better"
    )
    ax.set_xlabel("recycles")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"normalised {ROW_NAMES[m]} (per target: (s - min) / (max - min))")
    nbad = sum(not v["converged"] for v in conv.values())
    ax.set_title(
        f"Fig. {fig_no} - {prefix}: per-target {ROW_NAMES[m]}\n{what}; dashed: not converged "
        f"({nbad} of {len(ids)}); max = min, left out: {len(flat)}\n{note}",
        fontsize=8,
    )
    ax.legend(fontsize=5, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def _per_target_rows(tgt: dict, ids: list, src: str) -> list[dict]:
    """Every target's curve of every metric, raw and min-max normalised, as CSV rows."""
    out = []
    for t in ids:
        for m in ROW_NAMES:
            nv = normalised(tgt[t][m]["mean"], tgt[t][m]["min"], tgt[t][m]["max"])
            for r, v in enumerate(tgt[t][m]["mean"]):
                out.append(
                    {
                        "source": src,
                        "target": t,
                        "metric": m,
                        "recycle": r,
                        "mean": v,
                        "normalised": None if nv is None else nv[r],
                        "min_all": tgt[t][m]["min"],
                        "max_all": tgt[t][m]["max"],
                    }
                )
    return out


def _table(root, tag, src, prefix, note, ids, tgt, conv, cfg) -> list[Path]:
    rows = []
    for t in ids:
        g, r = conv["gdt_ts"][t], conv["rmsd"][t]
        rows.append(
            {
                "target": t,
                "length": tgt[t]["length"],
                "gdt_ts_r0": _fmt(tgt[t]["gdt_ts"]["mean"][0], 100),
                "gdt_ts_best_earlier": _fmt(g["best_earlier"], 100),
                "gdt_ts_best_recycle": g["best_recycle"],
                "gdt_ts_final": _fmt(g["final"], 100),
                "gdt_ts_converged": g["converged"],
                "rmsd_r0": _fmt(tgt[t]["rmsd"]["mean"][0]),
                "rmsd_best_earlier": _fmt(r["best_earlier"]),
                "rmsd_best_recycle": r["best_recycle"],
                "rmsd_final": _fmt(r["final"]),
                "rmsd_converged": r["converged"],
            }
        )
    csv_path = _csv(root / f"{STEM}_nonconverged_{tag}.csv", rows)
    last = cfg["num_recycle"]
    bad_g = [x for x in rows if not x["gdt_ts_converged"]]
    bad_r = [x for x in rows if not x["rmsd_converged"]]
    lines = [
        f"**Targets that did not converge - {prefix}** ({note})",
        "",
        f"A target did not converge when the mean (over models x seeds) at recycle {last} is worse than the "
        f"best earlier recycle (tolerance {cfg['tol_gdt']} GDT points, {cfg['tol_rmsd']} Å). "
        f"GDT_TS: {len(bad_g)} of {len(rows)} targets; RMSD: {len(bad_r)} of {len(rows)}.",
        "",
        "| target | L | GDT_TS r0 | best earlier (recycle) | GDT_TS final | converged | RMSD r0 | "
        "best earlier (recycle) | RMSD final | converged |",
        "|---" * 10 + "|",
    ]
    for x in rows:
        if x["gdt_ts_converged"] and x["rmsd_converged"]:
            continue
        lines.append(
            f"| {x['target']} | {x['length']} | {x['gdt_ts_r0']} | {x['gdt_ts_best_earlier']} "
            f"({x['gdt_ts_best_recycle']}) | {x['gdt_ts_final']} | {'yes' if x['gdt_ts_converged'] else 'NO'} | "
            f"{x['rmsd_r0']} | {x['rmsd_best_earlier']} ({x['rmsd_best_recycle']}) | {x['rmsd_final']} | "
            f"{'yes' if x['rmsd_converged'] else 'NO'} |"
        )
    if not bad_g and not bad_r:
        lines.append("| (every target converged) |" + " |" * 9)
    md = root / f"{STEM}_nonconverged_{tag}.md"
    md.write_text("\n".join(lines) + "\n")
    return [md, csv_path]


def _fmt(v, scale: float = 1.0):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(v * scale, 2)


def _csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as fh:
        if rows:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return path


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
