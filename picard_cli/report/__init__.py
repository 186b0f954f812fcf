"""Paper tables from results: ours as mean ± std (n, diverged runs counted) beside
the paper's reference values; rendered to the terminal and written as Markdown,
CSV and LaTeX next to the results file.

An experiment describes its table declaratively (``exp.table``, a
:class:`picard_cli.experiment.TableSpec`: title, rows, cols, metrics per protocol,
paper values, digits, baselines, ...) and places each record with ``row(cfg)`` /
``col(cfg)`` (or ``table_values(record, protocol)``). Std is the population std
(ddof 0), as in the authors' notebooks (np.std).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..datacheck import caption


@dataclass
class Cell:
    n: int = 0
    diverged: int = 0
    mean: float = math.nan
    std: float = math.nan
    variants: int = 1  # distinct configs seen for this (row, col); the most-run one is shown
    cell_key: str = ""
    params: int | None = None  # trainable parameters of the shown config (median over its runs)
    missing: int = 0  # runs that did not measure this value (e.g. FID without Inception weights)
    note: str = ""  # why (the first run's note)
    std_label: str = ""  # set when std is a spread inside a single run (e.g. over test images)
    chosen: str = ""  # the selected variant when a grid ran several per cell (e.g. "lr=0.001")
    by_seed: dict = field(default_factory=dict)  # seed -> value of the shown config's finite runs (pairing)


@dataclass
class Table:
    title: str
    rows: list[str]
    cols: list[str]
    ours: dict = field(default_factory=dict)  # (row, col) -> Cell
    paper: dict = field(default_factory=dict)  # (row, col) -> (mean, std)
    protocol: str = "last"
    digits: int = 1
    show_params: bool = False
    scales: list = field(default_factory=list)  # scale presets of the shown runs (quick numbers are labelled)
    quick_is_protocol: bool = False  # the experiment's quick scale = its paper protocol with fewer runs
    data: str = ""  # the data used, when it is not the paper's (datacheck.caption)
    selection: str = ""  # how one variant per cell was chosen from a grid (select_variant)
    baseline_rows: list = field(default_factory=list)  # rows of predictors that learn nothing (exp.table.baselines)
    higher_is_better: bool = False  # direction of the metric, for the paired verdicts
    paired: list = field(default_factory=list)  # paired differences vs the first column (paired_differences)


def select_variant(exp, variants: dict, metric: str, select_on: str | None) -> tuple[str, str, str]:
    """(cell_key, chosen label, rule) of the variant a table cell shows. By default the most-run config.
    An experiment with ``select_field`` (e.g. pign-lrgb's lr grid, Table 1) picks among configs that differ
    in that field the one with the best mean over seeds of its validation metric (``select_on='val'``, the
    default) or of the reported test metric (``'test'``, as the authors selected: optimistic)."""
    field_ = exp.table.select_field
    most = max(variants.items(), key=lambda kv: (len(kv[1]), max(x["started"] for x, _ in kv[1])))[0]
    if not field_ or len({runs[0][0]["config"].get(field_) for runs in variants.values()}) < 2:
        return most, "", ""
    on = select_on or "val"
    key_metric = exp.table.select_metrics[on] if on == "val" else metric

    def score(runs):
        vals = [r["metrics"].get(key_metric) for r, _ in runs if r["status"] == "ok"]
        vals = [v for v in vals if v is not None and math.isfinite(v)]
        return sum(vals) / len(vals) if vals else -math.inf

    best = max(variants, key=lambda k: score(variants[k]))
    rule = f"{field_} chosen per cell from {len(variants)} values by mean " + (
        "validation F1 over seeds" if on == "val" else "TEST F1 over seeds, as the authors (optimistic)"
    )
    return best, f"{field_}={variants[best][0][0]['config'][field_]:g}", rule


def first_per_key(records: list[dict]) -> list[dict]:
    """One record per run key (the first): a table never counts a run twice, whoever wrote it twice."""
    seen: set = set()
    out = []
    for r in records:
        key = r.get("key")
        if key is None or key not in seen:  # records without a key (hand-made) are all kept
            out.append(r)
            seen.add(key)
    return out


def build(exp, records: list[dict], protocol: str | None = None, select_on: str | None = None) -> Table:
    spec = exp.table
    protocol = protocol or spec.default_protocol
    if protocol not in spec.metrics:
        from ..errors import PicardError

        raise PicardError(f"unknown protocol {protocol!r} (choose from {', '.join(spec.metrics)})")
    metric = spec.metric(protocol)
    records = first_per_key(records)
    baselines = spec.baselines
    by_cell: dict = {}
    for r in records:
        for v in exp.table_values(r, protocol) + baseline_values(exp, r, baselines):
            by_cell.setdefault((v["row"], v["col"]), {}).setdefault(r["cell_key"], []).append((r, v))
    table = Table(
        spec.title,
        list(spec.rows),
        list(spec.cols),
        paper=dict(spec.paper),
        protocol=protocol,
        digits=spec.digits,
        show_params=spec.show_params,
        quick_is_protocol=spec.quick_is_protocol,
        data=caption(records),
        higher_is_better=spec.higher_is_better,
    )
    for rc, variants in by_cell.items():
        key, chosen, rule = select_variant(exp, variants, metric, select_on)
        runs = variants[key]
        table.selection = rule or table.selection
        c = _cell(runs, spec.metric_scale, key, chosen, len(variants))
        table.ours[rc] = c
        table.scales = sorted(
            set(table.scales) | {r["scale"] for r, _ in runs if r.get("scale")}
        )  # older records: none
        for extra in (rc[0],) if rc[0] not in table.rows else ():
            table.rows.append(extra)
        if rc[1] not in table.cols:
            table.cols.append(rc[1])
    table.baseline_rows = [lab for lab in baselines.values() if lab in table.rows]
    table.rows = [r for r in table.rows if r not in table.baseline_rows] + table.baseline_rows  # baselines last
    if spec.paired_columns:
        table.paired = paired_differences(table)
    return table


def _cell(runs: list, scale: float, key: str, chosen: str, n_variants: int) -> Cell:
    """One table cell from its runs' (record, entry) pairs: mean ± population std of the finite values
    of ok runs (x ``scale``), diverged and not-measured counts, the median parameter count."""

    def finite(r, v):
        return r["status"] == "ok" and v["value"] is not None and math.isfinite(v["value"])

    ok = [v["value"] * scale for r, v in runs if finite(r, v)]
    missing = [v.get("note") or "not measured" for r, v in runs if r["status"] == "ok" and v["value"] is None]
    c = Cell(
        n=len(ok),
        diverged=len(runs) - len(ok) - len(missing),
        variants=n_variants,
        cell_key=key,
        missing=len(missing),
        note=missing[0] if missing else "",
        chosen=chosen,
    )
    counts = sorted(r["extra"]["n_params"] for r, _ in runs if "n_params" in (r.get("extra") or {}))
    c.params = counts[len(counts) // 2] if counts else None
    c.by_seed = {r["config"].get("seed"): v["value"] * scale for r, v in runs if finite(r, v)}
    if ok:
        c.mean = sum(ok) / len(ok)
        c.std = math.sqrt(sum((v - c.mean) ** 2 for v in ok) / len(ok))
        within = [v.get("std_within") for r, v in runs if r["status"] == "ok" and v["value"] is not None]
        if len(ok) == 1 and within and within[0] is not None:
            c.std, c.std_label = within[0] * scale, runs[0][1].get("std_label", "within run")
    return c


def baseline_values(exp, record: dict, baselines: dict) -> list[dict]:
    """Entries of the predictors that learn nothing (``exp.table.baselines``: metric -> row label), in
    the column of the record that measured them on its own test set: the same number in every
    column when the test set is shared. Std over runs; a baseline computed without a seed is 0."""
    cfg, m = record["config"], record.get("metrics") or {}
    return [{"row": label, "col": exp.col(cfg), "value": m[key]} for key, label in baselines.items() if key in m]


# Two-sided 95% Student t quantiles t_{0.975, df} (df = pairs - 1), from the t distribution's tables.
_T975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    30: 2.042,
    60: 2.000,
    120: 1.980,
}


def t975(df: int) -> float:
    """t_{0.975, df}: the tabulated value, or the next smaller tabulated df's (conservative) between."""
    return _T975[max(d for d in _T975 if d <= df)] if df < 1000 else 1.960


def paired_differences(t: Table) -> list[dict]:
    """Per table row and each column after the first of that row (N_iter or T increasing): the
    difference column - first column over the seeds both ran (same seed = same initialisation,
    data order and masks), its mean, a 95% t-interval (mean ± t_{0.975,n-1} s/sqrt(n), s the
    sample std, ddof 1) and a verdict: better / worse when the interval excludes 0 (in the
    metric's direction), else no detectable difference; fewer than 2 pairs: no verdict."""
    out = []
    for row in _shown_rows(t):
        if row in t.baseline_rows:
            continue
        cols = [c for c in t.cols if t.ours.get((row, c)) and t.ours[(row, c)].by_seed]
        for col in cols[1:]:
            ref, cur = t.ours[(row, cols[0])].by_seed, t.ours[(row, col)].by_seed
            d = [cur[s] - ref[s] for s in sorted(set(ref) & set(cur), key=str)]
            out.append({"row": row, "col": col, "vs": cols[0], **interval(d, t.higher_is_better)})
    return out


def interval(d: list[float], higher_is_better: bool = False) -> dict:
    """Mean, 95% t-interval and verdict of paired differences ``d`` (see paired_differences)."""
    n = len(d)
    if n < 2:
        return {
            "n": n,
            "mean": d[0] if d else math.nan,
            "lo": math.nan,
            "hi": math.nan,
            "verdict": "no verdict (fewer than 2 paired seeds)",
        }
    m = sum(d) / n
    half = t975(n - 1) * math.sqrt(sum((x - m) ** 2 for x in d) / (n - 1) / n)
    lo, hi = m - half, m + half
    good, bad = (lo > 0, hi < 0) if higher_is_better else (hi < 0, lo > 0)
    verdict = "better" if good else "worse" if bad else "no detectable difference"
    return {"n": n, "mean": m, "lo": lo, "hi": hi, "verdict": verdict}


def subtitle(t: Table) -> str:
    data = (f"; {t.selection}" if t.selection else "") + (f"; {t.data}" if t.data else "")
    if not t.scales:
        return f"protocol: {t.protocol}{data}"
    scales = ", ".join(t.scales)
    warn = ""
    if "quick" in t.scales:
        warn = (
            " (quick = the paper's protocol with fewer runs)"
            if t.quick_is_protocol
            else " -- QUICK-SCALE numbers: a smoke run, not the paper protocol"
        )
    return f"protocol: {t.protocol}; scale: {scales}{warn}{data}"


def fmt_ours(c: Cell | None, digits: int = 1, params: bool = False) -> str:
    if c is None:
        return "-"
    if c.n == 0:
        s = (f"n/a ({c.note})" if c.missing else "-") if not c.diverged else f"n/a ({c.diverged} diverged)"
    else:
        spread = "" if (c.n == 1 and not c.std_label) else f" ± {c.std:.{digits}f}"  # one run: no spread
        s = f"{c.mean:.{digits}f}{spread} (n={c.n}"
        s += f" of {c.n + c.diverged}, {c.diverged} diverged" if c.diverged else ""
        s += f"; std {c.std_label})" if c.std_label else ")"
    if params and c.params is not None:
        s += f" [{c.params:,} params]"
    return s + (f" [{c.chosen}]" if c.chosen else "")


def _num(v: float, digits: int = 1) -> str:
    """As the paper prints it: ``digits`` decimals, one more where it gave one more (38.84)."""
    s = f"{v:.{digits + 1}f}"
    return s[:-1] if s.endswith("0") else s


def fmt_paper(p, digits: int = 1) -> str:
    if p is None:
        return "-"
    return _num(p[0], digits) if p[1] is None else f"{_num(p[0], digits)} ± {_num(p[1], digits)}"


def _shown_rows(t: Table) -> list[str]:
    return [r for r in t.rows if any((r, c) in t.ours for c in t.cols)]


def render_terminal(t: Table, console) -> None:
    from rich.markup import escape
    from rich.table import Table as RichTable

    cols = [c for c in t.cols if any((r, c) in t.ours for r in t.rows)]
    rt = RichTable(title=escape(f"{t.title} ({subtitle(t)})"), show_lines=True)
    rt.add_column("model")
    for c in cols:
        rt.add_column(c, justify="center")
    for r in _shown_rows(t):
        ref = t.paper and r not in t.baseline_rows
        cells = [
            escape(fmt_ours(t.ours.get((r, c)), t.digits, t.show_params and r not in t.baseline_rows))
            + (f"\n[dim]paper {fmt_paper(t.paper.get((r, c)), t.digits)}[/dim]" if ref else "")
            for c in cols
        ]
        rt.add_row(escape(r), *cells)
    console.print(rt)
    if t.paired:
        render_paired(t, console)
    if not t.paper:
        console.print("[dim]The paper gives no numbers for this table (figures only); no reference values.[/dim]")
    variants = sum(1 for c in t.ours.values() if c.variants > 1)
    if variants and not t.selection:
        console.print(f"[dim]{variants} cell(s) have runs of several configs; the most-run config is shown.[/dim]")


def to_frame(t: Table):
    import pandas as pd

    rows = []
    for r in _shown_rows(t):
        for c in t.cols:
            o, p = t.ours.get((r, c)), t.paper.get((r, c))
            rows.append(
                {
                    "model": r,
                    "dataset": c,
                    "protocol": t.protocol,
                    "scales": ",".join(t.scales),
                    "data": t.data,
                    "ours_mean": o.mean if o else math.nan,
                    "ours_std": o.std if o else math.nan,
                    "n": o.n if o else 0,
                    "diverged": o.diverged if o else 0,
                    "paper_mean": p[0] if p else math.nan,
                    "paper_std": p[1] if p else math.nan,
                    "params": o.params if o else None,
                    "cell_key": o.cell_key if o else "",
                }
            )
    return pd.DataFrame(rows)


def to_markdown(t: Table) -> str:
    ref = "paper: reference values" if t.paper else "the paper gives no numbers for this table"
    lines = [
        f"**{t.title}** ({subtitle(t)}; ours: mean ± std over n runs; {ref})",
        "",
        "| model | " + " | ".join(t.cols) + " |",
        "|---" * (len(t.cols) + 1) + "|",
    ]
    for r in _shown_rows(t):
        ref = t.paper and r not in t.baseline_rows
        cells = [
            fmt_ours(t.ours.get((r, c)), t.digits, t.show_params and r not in t.baseline_rows)
            + (f"<br>paper {fmt_paper(t.paper.get((r, c)), t.digits)}" if ref else "")
            for c in t.cols
        ]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + (paired_markdown(t) if t.paired else "")


PAIRED_NOTE = (
    "paired over seeds (same seed: same initialisation, data order and masks); 95% t-interval "
    "mean ± t(0.975, n-1) s/sqrt(n); verdict at this scale: better / worse when the interval "
    "excludes 0, else no detectable difference"
)


def fmt_diff(p: dict, digits: int) -> str:
    if not math.isfinite(p["lo"]):
        return f"{p['mean']:+.{digits}f} (n={p['n']})" if p["n"] else "-"
    return f"{p['mean']:+.{digits}f} [{p['lo']:+.{digits}f}, {p['hi']:+.{digits}f}] (n={p['n']})"


def render_paired(t: Table, console) -> None:
    from rich.markup import escape
    from rich.table import Table as RichTable

    rt = RichTable(title=escape(f"Difference to the first column ({PAIRED_NOTE})"), show_lines=False)
    for name in ("model", "column", "minus", "mean [95% CI] (pairs)", "verdict"):
        rt.add_column(name)
    for p in t.paired:
        rt.add_row(escape(p["row"]), escape(p["col"]), escape(p["vs"]), fmt_diff(p, t.digits + 1), p["verdict"])
    console.print(rt)


def paired_markdown(t: Table) -> str:
    lines = [
        "",
        f"Difference to the first column ({PAIRED_NOTE}):",
        "",
        "| model | column | minus | mean [95% CI] (pairs) | verdict |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {p['row']} | {p['col']} | {p['vs']} | {fmt_diff(p, t.digits + 1)} | {p['verdict']} |" for p in t.paired
    ]
    return "\n".join(lines) + "\n"


def to_latex(t: Table) -> str:
    def esc(s):
        return s.replace("%", r"\%").replace("±", r"$\pm$")

    lines = [
        f"% {t.title} ({subtitle(t)})",
        r"\begin{tabular}{l" + "c" * len(t.cols) + "}",
        r"\toprule",
        "Model & " + " & ".join(esc(c) for c in t.cols) + r" \\",
        r"\midrule",
    ]
    for r in _shown_rows(t):
        ours = [esc(fmt_ours(t.ours.get((r, c)), t.digits, t.show_params and r not in t.baseline_rows)) for c in t.cols]
        paper = [esc("paper " + fmt_paper(t.paper.get((r, c)), t.digits)) for c in t.cols]
        lines.append(f"{esc(r)} & " + " & ".join(ours) + r" \\")
        if t.paper and r not in t.baseline_rows:
            lines.append(" & " + " & ".join(paper) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write(t: Table, root: Path, stem: str) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    base = root / f"{stem}_{t.protocol.replace('-', '_')}"
    paths = [base.with_suffix(".md"), base.with_suffix(".csv"), base.with_suffix(".tex")]
    paths[0].write_text(to_markdown(t))
    to_frame(t).to_csv(paths[1], index=False)
    paths[2].write_text(to_latex(t))
    if t.paired:
        import pandas as pd

        paths.append(base.with_name(base.name + "_paired.csv"))
        pd.DataFrame(t.paired).to_csv(paths[-1], index=False)
    return paths


def write_curves(exp, records: list[dict], root: Path, stem: str) -> list[Path]:
    """Metric vs iteration count k of trained models evaluated without retraining
    (records holding ``extra.iter_curve``): one line per table cell, mean ± std over
    runs (population std, as the tables), one panel per table row; a CSV of the points and a
    PNG. Returns the paths written (none if no curves)."""
    frame = curve_frame(exp, records)
    if frame is None:
        return []
    root.mkdir(parents=True, exist_ok=True)
    csv, png = root / f"{stem}_iters.csv", root / f"{stem}_iters.png"
    frame.to_csv(csv, index=False)
    _plot_curves(exp, frame, png)
    return [csv, png]


def curve_frame(exp, records: list[dict]):
    """The points of :func:`write_curves` as a DataFrame (row, cell, k, mean, std, n), or None."""
    metric = exp.table.curve_metric
    by_cell: dict = {}
    for r in records:
        cur = (r.get("extra") or {}).get("iter_curve")
        if r.get("status") == "ok" and cur and metric in cur:
            key = (exp.row(r["config"]), exp.col(r["config"]))
            by_cell.setdefault(key, {}).setdefault(tuple(cur["k"]), []).append(cur[metric])
    if not metric or not by_cell:
        return None
    import pandas as pd

    rows = []
    for (row, col), variants in by_cell.items():
        ks, curves = max(variants.items(), key=lambda kv: len(kv[1]))
        for j, k in enumerate(ks):
            vals = [c[j] * exp.table.metric_scale for c in curves]
            m = sum(vals) / len(vals)
            rows.append(
                {
                    "row": row,
                    "cell": f"{row} / {col}",
                    "k": k,
                    "mean": m,
                    "n": len(vals),
                    "std": math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals)),
                }
            )
    return pd.DataFrame(rows)


def _plot_curves(exp, frame, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = list(dict.fromkeys(frame["row"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, row in zip(axes[0], panels):
        for label, part in frame[frame["row"] == row].groupby("cell", sort=False):
            ax.plot(
                part["k"], part["mean"], marker="o", ms=3, label=f"{label.split(' / ')[-1]} (n={part['n'].iloc[0]})"
            )
            ax.fill_between(part["k"], part["mean"] - part["std"], part["mean"] + part["std"], alpha=0.2)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("iterations k at evaluation (trained with N_iter)")
        ax.set_title(row, fontsize=9)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(exp.table.curve_metric.replace("_", " ") + " (mean ± std over seeds)")
    fig.suptitle(f"{exp.name}: metric vs iteration count", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- convergence (issue 9)
_TOOLKIT_QUIET = ("diagnose", "diag_iters", "power_iters")


def _toolkit_label(cfg: dict) -> str:
    """The non-default fixed-point fields of a config, e.g. ``jac_reg=10, forcing=input``."""
    from ..fixedpoint.fields import _fields

    parts = [
        f"{name}={cfg[name]}"
        for name, (_, f) in _fields().items()
        if name not in _TOOLKIT_QUIET and name in cfg and cfg[name] != f.default
    ]
    return ", ".join(parts)


def _fmt(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def convergence_rows(exp, records: list[dict]) -> tuple[list[dict], list[dict]]:
    """(per-run rows, per-group rows) of the fixed-point diagnostics (``extra.fixedpoint``)."""
    scale = exp.table.metric_scale
    runs, groups = [], {}
    for r in records:
        fp = (r.get("extra") or {}).get("fixedpoint")
        if r.get("status") != "ok" or not fp:
            continue
        cfg = r["config"]
        tk = _toolkit_label(cfg)
        label = f"{exp.row(cfg)} / {exp.col(cfg)}" + (f" [{tk}]" if tk else "")
        row = {
            "group": label,
            "seed": r["seed"],
            "contraction": fp["contraction"],
            "lipschitz_bound": fp["lipschitz_bound"],
            "spectral_radius": fp["spectral_radius"],
            "spectral_radius_damped": fp["spectral_radius_damped"],
            "ratio_tail_max": fp["ratio_tail_max"],
            "metric_name": fp.get("metric_name", "metric"),
            "cell_key": r["cell_key"],
        }
        for method, d in fp["methods"].items():
            for tol, k in d["stops"].items():
                row[f"{method}_evals@{tol}"] = k
                m = (d.get("metric_at_stop") or {}).get(tol)
                row[f"{method}_{row['metric_name']}@{tol}"] = None if m is None else m * scale
            if d.get("metric"):
                row[f"{method}_{row['metric_name']}_last"] = d["metric"][-1] * scale
            row[f"{method}_fallbacks"] = d.get("fallbacks", 0)
        row["_fp"] = fp
        runs.append(row)
        groups.setdefault(label, []).append(row)
    return runs, [_convergence_group(label, rows) for label, rows in groups.items()]


def _convergence_group(label: str, rows: list[dict]) -> dict:
    """One group's row: contraction counts, mean certificates, and per tolerance and method the mean
    evaluations to reach it (over the runs that did), how many did, the metric there, the speed-up."""

    def mean(vals):
        return (sum(vals) / len(vals)) if vals else None

    def vals(key):
        return [x[key] for x in rows if x.get(key) is not None and math.isfinite(x[key])]

    g = {
        "group": label,
        "n": len(rows),
        "metric_name": rows[0]["metric_name"],
        "certified": sum(x["contraction"] == "certified" for x in rows),
        "empirical": sum(x["contraction"] == "empirical" for x in rows),
        "neither": sum(x["contraction"] == "neither" for x in rows),
        "lipschitz_bound": mean(vals("lipschitz_bound")),
        "spectral_radius": mean(vals("spectral_radius")),
        "spectral_radius_damped": mean(vals("spectral_radius_damped")),
    }
    for tol in ("1e-02", "1e-04", "1e-06"):
        for method in ("picard", "anderson"):
            ks = vals(f"{method}_evals@{tol}")
            g[f"{method}@{tol}"] = mean(ks)
            g[f"{method}_reached@{tol}"] = len(ks)
            g[f"{method}_metric@{tol}"] = mean(vals(f"{method}_{g['metric_name']}@{tol}"))
        both = [
            x["picard_evals@" + tol] / x["anderson_evals@" + tol]
            for x in rows
            if x.get("picard_evals@" + tol) and x.get("anderson_evals@" + tol)
        ]
        g[f"ratio@{tol}"] = mean(both)
    return g


def _per_run_table(runs: list[dict]):
    """Per run: the contraction class and its certificates."""
    from rich.markup import escape
    from rich.table import Table as RichTable

    pr = RichTable(title="per run: is the operator contractive?")
    for col in ("cell", "seed", "contraction", "Lipschitz bound", "rho(J)", "rho(damped)", "max tail ratio"):
        pr.add_column(col)
    for x in runs:
        pr.add_row(
            escape(x["group"]),
            str(x["seed"]),
            x["contraction"],
            _fmt(x["lipschitz_bound"]),
            _fmt(x["spectral_radius"]),
            _fmt(x["spectral_radius_damped"]),
            _fmt(x["ratio_tail_max"]),
        )
    return pr


def render_convergence(exp, records: list[dict], console) -> list[dict]:
    """Terminal tables: per group (evaluations to tolerance, Picard / Anderson, metric at the
    stopping point, contraction counts) and per run (contraction class and certificates)."""
    from rich.markup import escape
    from rich.table import Table as RichTable

    runs, groups = convergence_rows(exp, records)
    if not runs:
        return groups
    t = RichTable(
        title=f"{exp.name}: fixed-point convergence (operator evaluations to a relative-residual "
        f"tolerance; metric at that point; mean over runs)",
        show_lines=True,
    )
    for col in (
        "cell",
        "n",
        "certified / empirical / neither",
        "rho(J) | rho(damped)",
        "Lipschitz bound",
        "tol 1e-2: picard | anderson",
        "tol 1e-4: picard | anderson (ratio)",
        "metric @1e-4: picard | anderson",
    ):
        t.add_column(col)
    for g in groups:

        def reach(m, tol):
            return f"{_fmt(g[f'{m}@{tol}'])}" + (
                f" ({g[f'{m}_reached@{tol}']}/{g['n']})" if g[f"{m}_reached@{tol}"] < g["n"] else ""
            )

        t.add_row(
            escape(g["group"]),
            str(g["n"]),
            f"{g['certified']} / {g['empirical']} / {g['neither']}",
            f"{_fmt(g['spectral_radius'])} | {_fmt(g['spectral_radius_damped'])}",
            _fmt(g["lipschitz_bound"]),
            f"{reach('picard', '1e-02')} | {reach('anderson', '1e-02')}",
            f"{reach('picard', '1e-04')} | {reach('anderson', '1e-04')} ({_fmt(g['ratio@1e-04'])}x)",
            f"{_fmt(g['picard_metric@1e-04'], 4)} | {_fmt(g['anderson_metric@1e-04'], 4)} ({g['metric_name']})",
        )
    console.print(t)
    console.print(_per_run_table(runs))
    console.print(
        "[dim]certified: a-priori Lipschitz bound < 1; empirical: Picard contraction ratios < 1 "
        "(second half of the diagnostic solve); '-': not reached within diag_iters / no bound.[/dim]"
    )
    return groups


def write_convergence(exp, records: list[dict], root: Path, stem: str) -> list[Path]:
    """``<stem>_convergence.{md,csv,png}``: the tables of :func:`render_convergence` and relative
    residual / metric vs iteration k per group and method (geometric / arithmetic mean over runs)."""
    runs, groups = convergence_rows(exp, records)
    if not runs:
        return []
    import pandas as pd

    root.mkdir(parents=True, exist_ok=True)
    md, csv, png = (root / f"{stem}_convergence.{ext}" for ext in ("md", "csv", "png"))
    pd.DataFrame([{k: v for k, v in x.items() if k != "_fp"} for x in runs]).to_csv(csv, index=False)
    md.write_text(_convergence_markdown(exp, runs, groups))
    _convergence_figure(exp, runs, png)
    return [md, csv, png]


def _convergence_markdown(exp, runs: list[dict], groups: list[dict]) -> str:
    """The per-group and per-run tables of :func:`write_convergence` as Markdown."""
    lines = [
        f"**{exp.name}: fixed-point convergence** (operator evaluations until the relative residual "
        f"||T(x)+f-x|| / ||T(x)+f|| <= tol; mean over runs; `(r/n)`: runs that reached it)",
        "",
        "| cell | n | certified / empirical / neither | rho(J) | rho(damped) | Lipschitz bound | "
        "evals @1e-2 picard / anderson | evals @1e-4 picard / anderson | ratio @1e-4 | "
        "metric @1e-4 picard / anderson |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for g in groups:

        def ev(tol):
            return " / ".join(
                _fmt(g[f"{m}@{tol}"])
                + (f" ({g[f'{m}_reached@{tol}']}/{g['n']})" if g[f"{m}_reached@{tol}"] < g["n"] else "")
                for m in ("picard", "anderson")
            )

        lines.append(
            f"| {g['group']} | {g['n']} | {g['certified']} / {g['empirical']} / {g['neither']} | "
            f"{_fmt(g['spectral_radius'])} | {_fmt(g['spectral_radius_damped'])} | {_fmt(g['lipschitz_bound'])} | "
            f"{ev('1e-02')} | {ev('1e-04')} | {_fmt(g['ratio@1e-04'])} | "
            f"{_fmt(g['picard_metric@1e-04'], 4)} / {_fmt(g['anderson_metric@1e-04'], 4)} ({g['metric_name']}) |"
        )
    lines += [
        "",
        "| cell | seed | contraction | Lipschitz bound | rho(J) | rho(damped) | max tail ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in runs:
        lines.append(
            f"| {x['group']} | {x['seed']} | {x['contraction']} | {_fmt(x['lipschitz_bound'])} | "
            f"{_fmt(x['spectral_radius'])} | {_fmt(x['spectral_radius_damped'])} | {_fmt(x['ratio_tail_max'])} |"
        )
    return "\n".join(lines) + "\n"


def _convergence_figure(exp, runs: list[dict], png: Path) -> None:
    """Relative residual (geometric mean over runs) and task metric vs k, per group and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_group: dict = {}
    for x in runs:
        by_group.setdefault(x["group"], []).append(x["_fp"])
    n_lines = 2 * len(by_group)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4 + 0.16 * n_lines))
    for i, (label, fps) in enumerate(by_group.items()):
        color = f"C{i % 10}"
        for method, style in (("picard", "-"), ("anderson", "--")):
            traces = [fp["methods"][method]["rel_residual"] for fp in fps if method in fp["methods"]]
            if not traces:
                continue
            n = min(len(tr) for tr in traces)

            def geo_mean(vals):  # geometric mean over the runs still finite at this k (a gap when none)
                ok = [min(max(v, 1e-30), 1e30) for v in vals if isinstance(v, (int, float)) and math.isfinite(v)]
                return math.exp(sum(math.log(v) for v in ok) / len(ok)) if ok else float("nan")

            geo = [geo_mean([tr[k] for tr in traces]) for k in range(n)]
            ax1.semilogy(range(n), geo, style, color=color, label=f"{label} {method} (n={len(traces)})")
            mets = [fp["methods"][method].get("metric") for fp in fps if fp["methods"][method].get("metric")]
            if mets:
                n = min(len(m) for m in mets)
                ax2.plot(
                    range(n),
                    [sum(m[k] for m in mets) / len(mets) * exp.table.metric_scale for k in range(n)],
                    style,
                    color=color,
                    label=f"{label} {method}",
                )
    ax1.set_xlabel("iteration k")
    ax1.set_ylabel("relative residual ||T(x_k)+f-x_k|| / ||T(x_k)+f||")
    ax2.set_xlabel("iteration k")
    ax2.set_ylabel(runs[0]["metric_name"].replace("_", " ") + " of the prediction from x_k")
    ax1.set_title("residual vs k (solid: picard, dashed: anderson)", fontsize=9)
    ax2.set_title("task metric vs k", fontsize=9)
    fig.tight_layout(rect=(0, 0.16 * n_lines / (4 + 0.16 * n_lines) + 0.02, 1, 1))
    handles, labels = ax1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", fontsize=7, ncol=1, frameon=False)
    fig.savefig(png, dpi=120)
    plt.close(fig)


# Experiment-specific figures, by experiment name: module under picard_cli/report/ with write_all(records, root)
FIGURES = {"ddpm": "ddpm_figures", "alphafold-recycle": "alphafold_figures"}


def write_figures(exp, records: list[dict], root: Path) -> list[Path]:
    """The experiment's own figures (ddpm: Figs. 2, 6, 7, 8; alphafold-recycle: Figs. 3-5), if it has any."""
    name = FIGURES.get(exp.name)
    if name is None:
        return []
    import importlib

    return importlib.import_module(f"{__name__}.{name}").write_all(records, Path(root))
