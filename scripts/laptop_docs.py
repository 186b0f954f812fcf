"""Render the laptop-scale evidence in docs/laptop.md from the archived records.

    python scripts/laptop_docs.py            # rewrite the generated blocks, docs/laptop.json, docs/img/*
    python scripts/laptop_docs.py --check    # exit 1 if docs/laptop.md differs from what the archive gives

For each experiment with an archive/<experiment>-laptop.jsonl.gz, the table block between
``<!-- laptop:<experiment>:begin -->`` and ``<!-- laptop:<experiment>:end -->`` is what
``picard report <experiment>`` prints as Markdown for those records (ours as mean ± std over seeds,
the baselines' rows, the paper's reference values, the paired differences and verdicts), followed
by the measured wall time and how complete the table is. docs/laptop.json holds those figures;
docs/img/<experiment>-laptop_iters.png is the metric-vs-k figure.
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

EXPERIMENTS = ("vit-pde", "anie", "vit-mask")
DOC = REPO / "docs" / "laptop.md"
FIGURES = REPO / "docs" / "laptop.json"


def archived(name: str) -> list[dict]:
    path = REPO / "archive" / f"{name}-laptop.jsonl.gz"
    if not path.exists():
        return []
    return [json.loads(line) for line in gzip.open(path, "rt").read().splitlines() if line.strip()]


def summary(name: str, records: list[dict]) -> dict:
    """Completeness and wall time of an experiment's laptop records against its laptop plan."""
    from picard_cli import registry, runner

    plan = runner.plan(registry.get(name), None, "laptop", {}, {})
    keys = {r.key for r in plan.runs}
    done = [r for r in records if r["key"] in keys]
    wall = sum(r.get("wall_s") or 0.0 for r in done)
    per_cell: dict = {}
    for r in done:
        per_cell.setdefault(r["cell"], []).append(r.get("wall_s") or 0.0)
    return {"planned_runs": len(plan.runs), "archived_runs": len(done), "complete": len(done) == len(plan.runs),
            "cells": len({r.cell for r in plan.runs}), "seeds": plan.sweep.seeds,
            "wall_s_total": round(wall, 1), "wall_s_per_run_mean": round(wall / max(1, len(done)), 1),
            "wall_s_per_cell_mean": {c: round(sum(v) / len(v), 1) for c, v in sorted(per_cell.items())},
            "threads": sorted({(r.get("executor") or {}).get("threads") for r in done} - {None})}


def block(name: str, records: list[dict], s: dict) -> str:
    from picard_cli import registry, report

    exp = registry.get(name)
    t = report.build(exp, records)
    state = ("complete" if s["complete"] else
             f"PARTIAL: {s['archived_runs']} of {s['planned_runs']} runs archived; the sweep resumes from them")
    hours = s["wall_s_total"] / 3600
    return (report.to_markdown(t) + "\n" + training_line(exp, records) + "\n"
            f"Runs: {s['archived_runs']} of {s['planned_runs']} ({s['cells']} cells x {s['seeds']} seeds; {state}). "
            f"Measured training + evaluation time, summed over runs: {hours:.2f} h "
            f"({s['wall_s_per_run_mean']:.0f} s per run on average; torch threads per run: "
            f"{', '.join(map(str, s['threads'])) or '-'}).\n")


def training_line(exp, records: list[dict]) -> str:
    """How far training got, per table cell: the mean training loss of the last epoch over the
    archived runs, and in how many runs the best validation epoch was the last one (still improving)."""
    cells: dict = {}
    for r in records:
        cells.setdefault((exp.row(r["config"]), exp.col(r["config"])), []).append(r)
    cols = [c for c in exp.cols if any(c == k[1] for k in cells)]
    lines = ["Training at the last epoch: mean training loss over the cell's runs (runs whose best validation "
             "epoch was the last one, i.e. still improving / runs):", "",
             "| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for row in dict.fromkeys(k[0] for k in cells):
        out = []
        for col in cols:
            rs = cells.get((row, col), [])
            last = sum(r["metrics"].get("best_epoch", -1) == r["metrics"]["epochs_run"] - 1 for r in rs)
            loss = sum(r["metrics"]["train_loss_last"] for r in rs) / len(rs) if rs else None
            out.append("-" if loss is None else f"{loss:.4f} ({last}/{len(rs)})")
        lines.append(f"| {row} | " + " | ".join(out) + " |")
    return "\n".join(lines) + "\n"


def render() -> tuple[str, dict]:
    from picard_cli import registry, report

    text, figures = DOC.read_text(), {}
    for name in EXPERIMENTS:
        records = archived(name)
        begin, end = f"<!-- laptop:{name}:begin -->", f"<!-- laptop:{name}:end -->"
        if not records or begin not in text:
            continue
        s = summary(name, records)
        figures[name] = s
        head, rest = text.split(begin, 1)
        text = head + begin + "\n" + block(name, records, s) + end + rest.split(end, 1)[1]
        frame = report.curve_frame(registry.get(name), records)
        if frame is not None:
            s["curve_points"] = len(frame)
    return text, figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    text, figures = render()
    if a.check:
        ok = text == DOC.read_text() and json.loads(FIGURES.read_text()) == json.loads(json.dumps(figures))
        print("docs/laptop.md is up to date" if ok else "docs/laptop.md differs from the archive: re-run the script")
        return 0 if ok else 1
    DOC.write_text(text)
    FIGURES.write_text(json.dumps(figures, indent=1) + "\n")
    from picard_cli import registry, report

    for name in figures:
        made = report.write_curves(registry.get(name), archived(name), REPO / "docs" / "img", f"{name}-laptop")
        for p in made:
            if p.suffix == ".csv":
                p.unlink()  # the points are in the archive; the figure is what the docs show
    print(f"wrote {DOC.relative_to(REPO)}, {FIGURES.relative_to(REPO)} ({', '.join(figures) or 'no archives'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
