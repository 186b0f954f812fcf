"""`picard report ddpm`: the paper's Figures 2, 6, 7, 8 as PNGs and a per-T table (Markdown + CSV),
from the records of ``results/ddpm.jsonl`` and the sample grids saved in each run's folder.

Which runs: records are grouped by their config without ``timesteps`` and ``seed`` (one "sweep");
the sweep with the most distinct T is drawn (ties: the newest), one run per T (the newest).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from ..datacheck import caption
from ..metrics.curves import smooth

HO_FID = 3.17  # Ho et al. 2020, T = 1000, 35.7 M UNet, 50k samples vs the training set: REFERENCE ONLY

HO_LABEL = f"Ho et al. 2020: FID {HO_FID} (T=1000, 35.7M UNet, 50k samples vs train) - reference only"


def select(records: list[dict]) -> list[dict]:
    """One record per T from the best-covered sweep, sorted by T."""
    sweeps: dict[str, dict[int, dict]] = {}
    for r in records:
        if r.get("status") != "ok":
            continue
        body = {k: v for k, v in r["config"].items() if k not in ("timesteps", "seed")}
        fam = json.dumps(body, sort_keys=True)
        T = r["config"]["timesteps"]
        best = sweeps.setdefault(fam, {})
        if T not in best or r.get("started", "") >= best[T].get("started", ""):
            best[T] = r
    if not sweeps:
        return []
    chosen = max(sweeps.values(), key=lambda s: (len(s), max(r.get("started", "") for r in s.values())))
    return [chosen[T] for T in sorted(chosen)]


def _scale_note(runs: list[dict]) -> str:
    scales = sorted({r.get("scale") or "?" for r in runs})
    note = f"scale: {', '.join(scales)}"
    if "quick" in scales:
        note += " -- QUICK smoke run (tiny UNet, few steps): not the paper's protocol"
    data = caption(runs)  # e.g. "data: CIFAR-10: 10,000 JPEG-decoded train images, ... (not the paper's data)"
    return f"{note}; {data}" if data else note


def _fid_label(runs: list[dict]) -> str:
    fids = [(r["extra"].get("fid") or {}) for r in runs]
    vals = [f for f in fids if f.get("value") is not None]
    if not vals:
        notes = {f.get("note") or "fid=false" for f in fids}
        return f"FID n/a ({'; '.join(sorted(notes))})"
    f = vals[0]
    name = f.get("metric") or "fid"
    ref = f.get("reference") or {}
    lossy = ", JPEG-decoded data" if ref.get("lossy") else ""
    return f"{name}{'' if f.get('verified') else ' (unverified)'}, N={f.get('n_fake')} vs {ref.get('split')}{lossy}"


def _load(root: Path, rel: str):
    import numpy as np

    p = Path(rel) if Path(rel).is_absolute() else root / rel
    return np.load(p) if p.is_file() else None


def _mosaic(columns: list, pad: int = 1):
    """columns: list of (n, r, r, 3) uint8 arrays -> one (n*(r+pad), k*(r+pad), 3) image."""
    import numpy as np

    n, r = columns[0].shape[0], columns[0].shape[1]
    out = np.full((n * (r + pad) + pad, len(columns) * (r + pad) + pad, 3), 255, np.uint8)
    for j, col in enumerate(columns):
        for i in range(min(n, len(col))):
            y, x = pad + i * (r + pad), pad + j * (r + pad)
            out[y : y + r, x : x + r] = col[i]
    return out, r + pad


def _grid_figure(columns, labels, title, path):
    import matplotlib.pyplot as plt

    img, cell = _mosaic(columns)
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(columns) + 1), max(4, 0.8 * columns[0].shape[0] + 1)))
    ax.imshow(img, interpolation="nearest")
    ax.set_xticks([cell * j + cell / 2 for j in range(len(columns))], labels, fontsize=7)
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def write_all(records: list[dict], root: Path) -> list[Path]:
    """Figures 2, 6, 7, 8 and the per-T table of the selected sweep (:func:`select`): the files written."""
    runs = select(records)
    if not runs:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root.mkdir(parents=True, exist_ok=True)
    colors = plt.cm.viridis([i / max(1, len(runs) - 1) for i in range(len(runs))])
    note, fid_label = _scale_note(runs), _fid_label(runs)
    return (
        fig2(runs, colors, root, note, fid_label)
        + fig6(runs, root, note)
        + fig7(runs, root, note)
        + fig8(runs, colors, root, note, fid_label)
        + write_table(runs, root, fid_label, note)
    )


def fig2(runs: list[dict], colors, root: Path, note: str, fid_label: str) -> list[Path]:
    """Figure 2: train loss (left), test loss (middle) vs training step; FID and loss vs T (right)."""
    import matplotlib.pyplot as plt

    Ts = [r["config"]["timesteps"] for r in runs]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for r, col in zip(runs, colors):
        ex = r["extra"]
        axes[0].plot(
            ex["train_loss"]["step"],
            smooth(ex["train_loss"]["loss"]),
            color=col,
            lw=1,
            label=f"T={r['config']['timesteps']}",
        )
        axes[1].plot(ex["test_loss_curve"]["step"], ex["test_loss_curve"]["loss"], color=col, marker=".", lw=1)
    axes[0].set(title="train loss (EMA-smoothed, alpha=0.1)", xlabel="training step", ylabel="noise MSE", yscale="log")
    axes[1].set(title="held-out loss (fixed x0, t/T, eps triples)", xlabel="training step", yscale="log")
    axes[0].legend(fontsize=6, ncol=2)
    ax = axes[2]
    ax.plot(Ts, [r["metrics"]["test_loss"] for r in runs], "o-", color="C1", label="held-out loss")
    ax.plot(Ts, [r["metrics"]["train_loss_smoothed"] for r in runs], "s--", color="C2", label="train loss (smoothed)")
    ax.set(xlabel="diffusion timesteps T (iterations)", ylabel="loss", title="vs T")
    fids = [r["metrics"].get("fid") for r in runs]
    if any(f is not None for f in fids):
        ax2 = ax.twinx()
        ax2.plot(
            [T for T, f in zip(Ts, fids) if f is not None],
            [f for f in fids if f is not None],
            "^-",
            color="C3",
            label="FID",
        )
        ax2.set_ylabel(fid_label, fontsize=7)
        ax2.legend(loc="upper right", fontsize=7)
    else:
        ax.text(0.5, 0.5, fid_label, transform=ax.transAxes, ha="center", fontsize=8, color="C3")
    ax.legend(loc="upper center", fontsize=7)
    for T, r in zip(Ts, runs):
        ax.annotate(
            f"{r['extra']['alpha_bar_T']:.1e}",
            (T, r["metrics"]["test_loss"]),
            fontsize=5,
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            rotation=60,
        )
    fig.suptitle(f"Figure 2: DDPMs vs T on CIFAR-10 (right: small labels = alpha-bar_T). {note}", fontsize=9)
    fig.tight_layout()
    fig.savefig(root / "ddpm_fig2.png", dpi=120)
    plt.close(fig)
    return [root / "ddpm_fig2.png"]


def fig6(runs: list[dict], root: Path, note: str) -> list[Path]:
    """Figure 6: one column per model (T), same noise, sampled with T steps."""
    cols = [(r, _load(root, r["extra"]["grid"]["file"])) for r in runs if r["extra"].get("grid")]
    cols = [(r, g) for r, g in cols if g is not None]
    if not cols:
        return []
    _grid_figure(
        [g for _, g in cols],
        [f"T={r['config']['timesteps']}" for r, _ in cols],
        "Figure 6: one column per model trained with T timesteps, sampled with T steps, same noise\n" + note,
        root / "ddpm_fig6.png",
    )
    return [root / "ddpm_fig6.png"]


def fig7(runs: list[dict], root: Path, note: str) -> list[Path]:
    """Figure 7: the T = fig7_for_T model sampled with 100..1000 steps."""
    f7 = [r for r in runs if r["extra"].get("fig7")]
    if not f7:
        return []
    r = max(f7, key=lambda r: r["config"]["timesteps"])
    grids = _load(root, r["extra"]["fig7"]["file"])
    if grids is None:
        return []
    _grid_figure(
        list(grids),
        [f"{n} steps" for n in r["extra"]["fig7"]["sampling_steps"]],
        f"Figure 7: the T={r['config']['timesteps']} model sampled with n steps "
        f"(set_timesteps(n), leading spacing), same noise\n{note}",
        root / "ddpm_fig7.png",
    )
    return [root / "ddpm_fig7.png"]


def fig8(runs: list[dict], colors, root: Path, note: str, fid_label: str) -> list[Path]:
    """Figure 8: loss vs t/T (top), FID vs training step (bottom)."""
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 8))
    for r, col in zip(runs, colors):
        lb = r["extra"]["loss_by_t"]
        pts = [(x, y) for x, y in zip(lb["t_over_T"], lb["loss"]) if y is not None]
        top.plot([p[0] for p in pts], [p[1] for p in pts], color=col, marker=".", label=f"T={r['config']['timesteps']}")
        fc = r["extra"].get("fid_curve") or {}
        if fc.get("value"):
            bottom.plot(fc["step"], fc["value"], color=col, marker="o", label=f"T={r['config']['timesteps']}")
    top.set(title="held-out noise MSE vs normalised timestep t/T", xlabel="t / T", ylabel="loss", yscale="log")
    top.legend(fontsize=6, ncol=2)
    if any((r["extra"].get("fid_curve") or {}).get("value") for r in runs):
        bottom.set(xlabel="training step", ylabel="FID")
        n_curve = sorted({n for r in runs for n in (r["extra"].get("fid_curve") or {}).get("n", [])})
        bottom.set_title(f"FID vs training step (N={', '.join(map(str, n_curve))} per point)\n{fid_label}", fontsize=9)
        bottom.legend(fontsize=6, ncol=2)
        bottom.text(0.01, 0.01, HO_LABEL, transform=bottom.transAxes, fontsize=6, color="grey")
    else:
        bottom.set_axis_off()
        bottom.text(0.5, 0.5, f"FID vs training step: {fid_label}", ha="center", fontsize=9, transform=bottom.transAxes)
    fig.suptitle(f"Figure 8. {note}", fontsize=8)
    fig.tight_layout()
    fig.savefig(root / "ddpm_fig8.png", dpi=120)
    plt.close(fig)
    return [root / "ddpm_fig8.png"]


def write_table(runs: list[dict], root: Path, fid_label: str, note: str) -> list[Path]:
    """FID and losses per T, with alpha-bar_T beside each FID."""
    rows = []
    for r in runs:
        m, ex = r["metrics"], r["extra"]
        fid = ex.get("fid") or {}
        rows.append(
            {
                "T": r["config"]["timesteps"],
                "alpha_bar_T": ex["alpha_bar_T"],
                "sqrt_alpha_bar_T": ex["sqrt_alpha_bar_T"],
                "fid": m.get("fid"),
                "fid_metric": fid.get("metric"),
                "fid_n": fid.get("n_fake") if fid.get("value") is not None else None,
                "fid_note": fid.get("note"),
                "test_loss": m["test_loss"],
                "test_loss_sem": ex.get("test_loss_sem"),
                "train_loss_smoothed": m["train_loss_smoothed"],
                "train_loss_last": m.get("train_loss_last"),
                "train_steps": m["steps_run"],
                "train_img_per_s": ex.get("train_img_per_s"),
                "scale": r.get("scale"),
                "key": r["key"],
            }
        )
    csv_path, md_path = root / "ddpm_per_T.csv", root / "ddpm_per_T.md"
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    def fmt(v, spec):
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    lines = [
        f"**DDPM vs diffusion timesteps T** ({note}; FID: {fid_label})",
        "",
        "| T | alpha-bar_T | sqrt(alpha-bar_T) | FID | held-out loss ± s.e.m. | train loss (smoothed) "
        "| train loss (last log window) | steps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in rows:
        lines.append(
            f"| {x['T']} | {x['alpha_bar_T']:.2e} | {x['sqrt_alpha_bar_T']:.3f} | {fmt(x['fid'], '.2f')} | "
            f"{fmt(x['test_loss'], '.4f')} ± {fmt(x['test_loss_sem'], '.4f')} | "
            f"{fmt(x['train_loss_smoothed'], '.4f')} | {fmt(x['train_loss_last'], '.4f')} | "
            f"{x['train_steps']} |"
        )
    lines += ["", f"Reference value (not this paper's, not comparable to a quick run): {HO_LABEL}."]
    md_path.write_text("\n".join(lines) + "\n")
    return [md_path, csv_path]
