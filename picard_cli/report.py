"""Paper tables from results: ours as mean ± std (n, diverged runs counted) beside
the paper's reference values; rendered to the terminal and written as Markdown,
CSV and LaTeX next to the results file.

An experiment describes its table with ``rows``, ``cols``, ``row(cfg)``,
``col(cfg)``, ``metrics`` (protocol -> metric key), ``metric_scale`` and
``paper`` ((row, col) -> (mean, std)). Std is the population std (ddof 0), as in
the authors' notebooks (np.std).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Cell:
    n: int = 0
    diverged: int = 0
    mean: float = math.nan
    std: float = math.nan
    variants: int = 1  # distinct configs seen for this (row, col); the most-run one is shown
    cell_key: str = ""
    params: int | None = None  # trainable parameters of the shown config (median over its runs)


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


def build(exp, records: list[dict], protocol: str | None = None) -> Table:
    protocol = protocol or getattr(exp, "default_protocol", "last")
    if protocol not in exp.metrics:
        from .errors import PicardError

        raise PicardError(f"unknown protocol {protocol!r} (choose from {', '.join(exp.metrics)})")
    metric = exp.metrics[protocol]
    by_cell: dict = {}
    for r in records:
        cfg = r["config"]
        by_cell.setdefault((exp.row(cfg), exp.col(cfg)), {}).setdefault(r["cell_key"], []).append(r)
    table = Table(exp.table, list(exp.rows), list(exp.cols), paper=dict(exp.paper), protocol=protocol,
                  digits=getattr(exp, "digits", 1), show_params=getattr(exp, "show_params", False),
                  quick_is_protocol=getattr(exp, "quick_is_protocol", False))
    for rc, variants in by_cell.items():
        key, runs = max(variants.items(), key=lambda kv: (len(kv[1]), max(x["started"] for x in kv[1])))
        ok = [r["metrics"][metric] * exp.metric_scale for r in runs
              if r["status"] == "ok" and math.isfinite(r["metrics"][metric])]
        c = Cell(n=len(ok), diverged=len(runs) - len(ok), variants=len(variants), cell_key=key)
        counts = sorted(r["extra"]["n_params"] for r in runs if "n_params" in (r.get("extra") or {}))
        c.params = counts[len(counts) // 2] if counts else None
        if ok:
            c.mean = sum(ok) / len(ok)
            c.std = math.sqrt(sum((v - c.mean) ** 2 for v in ok) / len(ok))
        table.ours[rc] = c
        table.scales = sorted(set(table.scales) | {r["scale"] for r in runs if r.get("scale")})  # older records: none
        for extra in (rc[0],) if rc[0] not in table.rows else ():
            table.rows.append(extra)
        if rc[1] not in table.cols:
            table.cols.append(rc[1])
    return table


def subtitle(t: Table) -> str:
    if not t.scales:
        return f"protocol: {t.protocol}"
    scales = ", ".join(t.scales)
    warn = ""
    if "quick" in t.scales:
        warn = (" (quick = the paper's protocol with fewer runs)" if t.quick_is_protocol
                else " -- QUICK-SCALE numbers: a smoke run, not the paper protocol")
    return f"protocol: {t.protocol}; scale: {scales}{warn}"


def fmt_ours(c: Cell | None, digits: int = 1, params: bool = False) -> str:
    if c is None:
        return "-"
    if c.n == 0:
        s = f"n/a ({c.diverged} diverged)" if c.diverged else "-"
    else:
        s = f"{c.mean:.{digits}f} ± {c.std:.{digits}f} (n={c.n}"
        s += f" of {c.n + c.diverged}, {c.diverged} diverged)" if c.diverged else ")"
    if params and c.params is not None:
        s += f" [{c.params:,} params]"
    return s


def _num(v: float, digits: int = 1) -> str:
    """As the paper prints it: ``digits`` decimals, one more where it gave one more (38.84)."""
    s = f"{v:.{digits + 1}f}"
    return s[:-1] if s.endswith("0") else s


def fmt_paper(p, digits: int = 1) -> str:
    return "-" if p is None else f"{_num(p[0], digits)} ± {_num(p[1], digits)}"


def _shown_rows(t: Table) -> list[str]:
    return [r for r in t.rows if any((r, c) in t.ours for c in t.cols)]


def render_terminal(t: Table, console) -> None:
    from rich.table import Table as RichTable

    cols = [c for c in t.cols if any((r, c) in t.ours for r in t.rows)]
    rt = RichTable(title=f"{t.title} ({subtitle(t)})", show_lines=True)
    rt.add_column("model")
    for c in cols:
        rt.add_column(c, justify="center")
    for r in _shown_rows(t):
        cells = [f"{fmt_ours(t.ours.get((r, c)), t.digits, t.show_params)}\n[dim]paper {fmt_paper(t.paper.get((r, c)), t.digits)}[/dim]" for c in cols]
        rt.add_row(r, *cells)
    console.print(rt)
    variants = sum(1 for c in t.ours.values() if c.variants > 1)
    if variants:
        console.print(f"[dim]{variants} cell(s) have runs of several configs; the most-run config is shown.[/dim]")


def to_frame(t: Table):
    import pandas as pd

    rows = []
    for r in _shown_rows(t):
        for c in t.cols:
            o, p = t.ours.get((r, c)), t.paper.get((r, c))
            rows.append({"model": r, "dataset": c, "protocol": t.protocol, "scales": ",".join(t.scales),
                         "ours_mean": o.mean if o else math.nan, "ours_std": o.std if o else math.nan,
                         "n": o.n if o else 0, "diverged": o.diverged if o else 0,
                         "paper_mean": p[0] if p else math.nan, "paper_std": p[1] if p else math.nan,
                         "params": o.params if o else None, "cell_key": o.cell_key if o else ""})
    return pd.DataFrame(rows)


def to_markdown(t: Table) -> str:
    lines = [f"**{t.title}** ({subtitle(t)}; ours: mean ± std over n runs; paper: reference values)", "",
             "| model | " + " | ".join(t.cols) + " |", "|---" * (len(t.cols) + 1) + "|"]
    for r in _shown_rows(t):
        cells = [f"{fmt_ours(t.ours.get((r, c)), t.digits, t.show_params)}<br>paper {fmt_paper(t.paper.get((r, c)), t.digits)}" for c in t.cols]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_latex(t: Table) -> str:
    esc = lambda s: s.replace("%", r"\%").replace("±", r"$\pm$")
    lines = [r"\begin{tabular}{l" + "c" * len(t.cols) + "}", r"\toprule",
             "Model & " + " & ".join(esc(c) for c in t.cols) + r" \\", r"\midrule"]
    for r in _shown_rows(t):
        ours = [esc(fmt_ours(t.ours.get((r, c)), t.digits, t.show_params)) for c in t.cols]
        paper = [esc("paper " + fmt_paper(t.paper.get((r, c)), t.digits)) for c in t.cols]
        lines.append(f"{esc(r)} & " + " & ".join(ours) + r" \\")
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
    return paths


def write_curves(exp, records: list[dict], root: Path, stem: str) -> list[Path]:
    """Metric vs iteration count k of trained models evaluated without retraining
    (records holding ``extra.iter_curve``): one line per table cell, mean ± std over
    runs; a CSV of the points and a PNG. Returns the paths written (none if no curves)."""
    metric = getattr(exp, "curve_metric", None)
    scale = exp.metric_scale
    by_cell: dict = {}
    for r in records:
        cur = (r.get("extra") or {}).get("iter_curve")
        if r.get("status") == "ok" and cur and metric in cur:
            label = f"{exp.row(r['config'])} / {exp.col(r['config'])}"
            by_cell.setdefault(label, {}).setdefault(tuple(cur["k"]), []).append(cur[metric])
    if not metric or not by_cell:
        return []
    import pandas as pd

    rows = []
    for label, variants in by_cell.items():
        ks, curves = max(variants.items(), key=lambda kv: len(kv[1]))
        for j, k in enumerate(ks):
            vals = [c[j] * scale for c in curves]
            m = sum(vals) / len(vals)
            rows.append({"cell": label, "k": k, "mean": m, "n": len(vals),
                         "std": math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals))})
    frame = pd.DataFrame(rows)
    root.mkdir(parents=True, exist_ok=True)
    csv, png = root / f"{stem}_iters.csv", root / f"{stem}_iters.png"
    frame.to_csv(csv, index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, part in frame.groupby("cell"):
        ax.plot(part["k"], part["mean"], marker="o", ms=3, label=f"{label} (n={part['n'].iloc[0]})")
        ax.fill_between(part["k"], part["mean"] - part["std"], part["mean"] + part["std"], alpha=0.2)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iterations k at evaluation (trained with K)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"{exp.name}: metric vs iteration count")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return [csv, png]
