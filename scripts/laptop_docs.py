"""Render the generated blocks of the docs (README.md and every page under docs/) from the archived
records and benchmark outputs under archive/ and benchmarks/results/.

    python scripts/laptop_docs.py            # rewrite the generated blocks, docs/laptop.json, docs/img/*
    python scripts/laptop_docs.py --check    # exit 1 if any page differs from what the archive gives

Every marker on every page must name a block this script knows, and every begin marker needs its
end marker: an unknown or unclosed marker is an error (with --check too), so no generated block
can silently go stale.

Laptop-scale evidence: for each experiment with an archive/<experiment>-laptop.jsonl.gz, the block
between ``<!-- laptop:<experiment>:begin -->`` and ``<!-- laptop:<experiment>:end -->`` (on every
page that has those markers) is what ``picard report <experiment>`` prints as Markdown for those
records (ours as mean ± std over seeds, the baselines' rows, the paper's reference values, the paired
differences and verdicts), followed by the measured wall time and how complete the table is.
docs/laptop.json holds those figures; docs/img/<experiment>-laptop_iters.png is the metric-vs-k figure.

Other archives: the block between ``<!-- archive:<name>:begin -->`` and ``<!-- archive:<name>:end -->``
is rendered by ARCHIVE_BLOCKS[<name>]: the paper-scale Table 5 (archive/pign-table5.jsonl.gz, both
protocols, with its agreement with the paper's values), the accuracy check of ``dropout_rng=counter``
(archive/pign-table5-counter.jsonl.gz), the PIGN training-speed figures (archive/bench-pign-*.json),
the thread-policy measurement (benchmarks/results/laptop_threads.json) and the laptop DDPM budget
(benchmarks/results/ddpm_laptop_budget.json).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

EXPERIMENTS = ("vit-pde", "anie", "vit-mask")
DOC = REPO / "docs" / "laptop.md"
FIGURES = REPO / "docs" / "laptop.json"


def pages() -> list[Path]:
    """Every page that may hold generated blocks: the README and every Markdown file under docs/."""
    out = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    return [p for p in out if p.exists()]


MARKER = re.compile(r"<!-- (laptop|archive):([A-Za-z0-9_.-]+):(begin|end) -->")


def marker_errors(texts: dict[Path, str]) -> list[str]:
    """Markers that name no known block, or whose begin and end do not pair up in order."""
    errors = []
    for p, t in texts.items():
        where = p.relative_to(REPO)
        open_ = None
        for kind, name, edge in MARKER.findall(t):
            known = name in EXPERIMENTS if kind == "laptop" else name in ARCHIVE_BLOCKS
            if not known:
                errors.append(f"{where}: unknown block {kind}:{name}")
            if kind == "laptop" and known and not archived(name):
                errors.append(f"{where}: block laptop:{name} but no archive/{name}-laptop.jsonl.gz")
            if edge == "begin":
                if open_:
                    errors.append(f"{where}: {kind}:{name} begins inside {open_}")
                open_ = f"{kind}:{name}"
            elif open_ != f"{kind}:{name}":
                errors.append(f"{where}: {kind}:{name} ends without its begin")
            else:
                open_ = None
        if open_:
            errors.append(f"{where}: {open_} has no end marker")
    return errors


def archived(name: str) -> list[dict]:
    path = REPO / "archive" / f"{name}-laptop.jsonl.gz"
    if not path.exists():
        return []
    return [json.loads(line) for line in gzip.open(path, "rt").read().splitlines() if line.strip()]


def records(filename: str) -> list[dict]:
    return [
        json.loads(line) for line in gzip.open(REPO / "archive" / filename, "rt").read().splitlines() if line.strip()
    ]


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
    return {
        "planned_runs": len(plan.runs),
        "archived_runs": len(done),
        "complete": len(done) == len(plan.runs),
        "cells": len({r.cell for r in plan.runs}),
        "seeds": plan.sweep.seeds,
        "wall_s_total": round(wall, 1),
        "wall_s_per_run_mean": round(wall / max(1, len(done)), 1),
        "wall_s_per_cell_mean": {c: round(sum(v) / len(v), 1) for c, v in sorted(per_cell.items())},
        "threads": sorted({(r.get("executor") or {}).get("threads") for r in done} - {None}),
    }


def block(name: str, records: list[dict], s: dict) -> str:
    from picard_cli import registry, report

    exp = registry.get(name)
    t = report.build(exp, records)
    state = (
        "complete"
        if s["complete"]
        else f"PARTIAL: {s['archived_runs']} of {s['planned_runs']} runs archived; the sweep resumes from them"
    )
    hours = s["wall_s_total"] / 3600
    return (
        report.to_markdown(t) + "\n" + training_line(exp, records) + "\n"
        f"Runs: {s['archived_runs']} of {s['planned_runs']} ({s['cells']} cells x {s['seeds']} seeds; {state}). "
        f"Measured training + evaluation time, summed over runs: {hours:.2f} h "
        f"({s['wall_s_per_run_mean']:.0f} s per run on average; torch threads per run: "
        f"{', '.join(map(str, s['threads'])) or '-'}).\n"
    )


def training_line(exp, records: list[dict]) -> str:
    """How far training got, per table cell: the mean training loss of the last epoch over the
    archived runs, and in how many runs the best validation epoch was the last one (still improving)."""
    cells: dict = {}
    for r in records:
        cells.setdefault((exp.row(r["config"]), exp.col(r["config"])), []).append(r)
    cols = [c for c in exp.table.cols if any(c == k[1] for k in cells)]
    lines = [
        "Training at the last epoch: mean training loss over the cell's runs (runs whose best validation "
        "epoch was the last one, i.e. still improving / runs):",
        "",
        "| model | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for row in dict.fromkeys(k[0] for k in cells):
        out = []
        for col in cols:
            rs = cells.get((row, col), [])
            last = sum(r["metrics"].get("best_epoch", -1) == r["metrics"]["epochs_run"] - 1 for r in rs)
            loss = sum(r["metrics"]["train_loss_last"] for r in rs) / len(rs) if rs else None
            out.append("-" if loss is None else f"{loss:.4f} ({last}/{len(rs)})")
        lines.append(f"| {row} | " + " | ".join(out) + " |")
    return "\n".join(lines) + "\n"


# --- blocks from the other archives ------------------------------------------------------------------


def table5_block() -> str:
    """Table 5 at paper scale from archive/pign-table5.jsonl.gz: the paper protocol (last epoch) and
    the best-validation protocol, as `picard report pign` renders them."""
    from picard_cli import registry, report

    recs = records("pign-table5.jsonl.gz")
    exp = registry.get("pign")
    last, best = report.build(exp, recs), report.build(exp, recs, protocol="best-val")
    diverged = sum(r["status"] == "diverged" for r in recs)
    return (
        report.to_markdown(last) + "\n" + report.to_markdown(best) + "\n"
        f"Records: {len(recs):,} runs in `archive/pign-table5.jsonl.gz` ({diverged} diverged).\n\n"
        + agreement(last)
        + "\n"
        + protocols(last, best)
        + "\n"
        + itergnn_convs(exp, recs)
    )


def protocols(last, best) -> str:
    """Where the best-validation protocol beats the paper's last-epoch protocol, on the noisy cells."""
    keys = [k for k in last.ours if "50%" in k[1] and k in best.ours and last.ours[k].n and best.ours[k].n]
    lower = [f"{r}/{c}" for r, c in keys if best.ours[(r, c)].mean <= last.ours[(r, c)].mean]
    return (
        f"Noisy cells where test accuracy at the best-validation epoch is higher than after the last epoch: "
        f"{len(keys) - len(lower)} of {len(keys)}" + (f" (not: {', '.join(lower)})" if lower else "") + ".\n"
    )


def agreement(t) -> str:
    """Ours minus the paper per cell, in units of the paper's std (paper protocol)."""
    rows = [r for r in t.rows if any((r, c) in t.ours for c in t.cols)]
    lines = [
        "Ours minus the paper's mean, in units of the paper's std (paper protocol, last epoch):",
        "",
        "| model | " + " | ".join(t.cols) + " |",
        "|---" * (len(t.cols) + 1) + "|",
    ]
    within = full = total = 0
    for row in rows:
        out = []
        for col in t.cols:
            c, p = t.ours.get((row, col)), t.paper.get((row, col))
            if c is None or not c.n or p is None or not p[1]:
                out.append("-")
                continue
            z = (c.mean - p[0]) / p[1]
            total += 1
            within += abs(z) <= 1
            full += c.n + c.diverged >= 100
            out.append(f"{c.mean - p[0]:+.1f} ({z:+.2f} std)")
        lines.append(f"| {row} | " + " | ".join(out) + " |")
    return (
        "\n".join(lines) + "\n\n"
        f"Cells within one paper std of the paper's mean: {within} of {total}; cells with all 100 runs: "
        f"{full} of {total}.\n"
    )


def itergnn_convs(exp, recs: list[dict]) -> str:
    """How many convs the trained IterGNNs execute at the final evaluation (records' solver.iters)."""
    cells: dict = {}
    for r in recs:
        if r["config"]["model"] == "itergnn" and r["status"] == "ok" and (r.get("solver") or {}).get("iters"):
            cells.setdefault((exp.row(r["config"]), exp.col(r["config"])), []).append(r["solver"]["iters"])
    if not cells:
        return ""
    parts = [f"{row}/{col} {statistics.mean(v):.1f} (max {max(v)}, n={len(v)})" for (row, col), v in cells.items()]
    return (
        "Convs the trained IterGNNs execute at the final evaluation (mean over runs; the cap is 30): "
        + "; ".join(parts)
        + ".\n"
    )


def _accuracy_cells(recs: list[dict]) -> dict:
    from picard_cli.experiments.pign import Pign

    out: dict = {}
    for r in recs:
        if r["config"]["model"] != "itergnn" and r["status"] == "ok":
            out.setdefault((Pign.row(r["config"]), Pign.col(r["config"])), []).append(
                100 * r["metrics"]["test_acc_last"]
            )
    return out


def _fmt(v: list[float]) -> str:
    return f"{statistics.mean(v):.1f} ± {statistics.pstdev(v):.1f} (n={len(v)})"


def counter_block() -> str:
    """The accuracy check of dropout_rng=counter: its 20 runs per paper cell against the archived
    100 torch-stream runs (what benchmarks/pign_compare.py prints for the two archives)."""
    from picard_cli.experiments.pign import Pign

    ref, new = (
        _accuracy_cells(records("pign-table5.jsonl.gz")),
        _accuracy_cells(records("pign-table5-counter.jsonl.gz")),
    )
    lines = [
        "| cell | `dropout_rng=counter` | default stream (archived Table 5 runs) | difference of means / std |",
        "|---|---|---|---|",
    ]
    worst = 0.0
    for key in sorted(new, key=lambda k: (Pign.table.rows.index(k[0]), Pign.table.cols.index(k[1]))):
        a, b = ref[key], new[key]
        z = abs(statistics.mean(b) - statistics.mean(a)) / statistics.pstdev(a)
        worst = max(worst, z)
        lines.append(f"| {key[0]}/{key[1]} | {_fmt(b)} | {_fmt(a)} | {z:.2f} |")
    return "\n".join(lines) + f"\n\nLargest difference of means, in units of the archived runs' std: {worst:.2f}.\n"


def bench(name: str) -> dict:
    return json.loads((REPO / "archive" / name).read_text())


def _argv(argv: list[str]) -> str:
    """A benchmark's command line without the machine-specific data root and output path."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--data-root", "--out"):
            skip = True
        else:
            out.append(a)
    return " ".join(out)


def _machine(b: dict) -> str:
    """Where a benchmark ran, from its own output: CPU, torch and PyG versions, load average."""
    v = b.get("versions") or {}
    load = b.get("load_avg") or []
    return f"{b.get('cpu', 'cpu')}, torch {v.get('torch', '?')}, torch_geometric {v.get('torch_geometric', '?')}" + (
        f", 1-minute load average {load[0]:.1f} at the end" if load else ""
    )


def speed_block() -> str:
    """The PIGN training-speed figures of benchmarks/pign_throughput.py, from its archived outputs."""
    from picard_cli import registry, report

    ref = report.build(registry.get("pign"), records("pign-table5.jsonl.gz"))
    out = []
    for name, what in (
        ("bench-pign-clean-200ep.json", "default dropout stream"),
        ("bench-pign-clean-200ep-counter.json", "`dropout_rng=counter`"),
    ):
        b = bench(name)
        out += [
            f"Clean cells at the protocol's full 200 epochs, {what} (`archive/{name}`; "
            f"`python benchmarks/pign_throughput.py {_argv(b['argv'])}`; {_machine(b)}). "
            "Loop vs picard runs/hour, ratio; "
            "picard's test accuracy over its 100 runs, and the archived Table 5 runs of the cell:",
            "",
        ]
        for r in b["cells"]:
            acc = r.get("picard_acc")
            row, col = r["cell"].split("/")
            acc_s = f"; accuracy {100 * acc[0]:.1f} ± {100 * acc[1]:.1f}" if acc else ""
            out.append(
                f"- {r['cell']} {r['loop_runs_per_hour']:.0f} vs {r['picard_runs_per_hour']:.0f}, "
                f"**{r['ratio']:.1f}x**{acc_s} (archived: {report.fmt_ours(ref.ours.get((row, col)))})"
            )
        out.append("")
    grid = bench("bench-pign-grid-20ep.json")
    out += [
        "The whole grid at 20 epochs with `dropout_rng=counter` (`archive/bench-pign-grid-20ep.json`; "
        f"`python benchmarks/pign_throughput.py {_argv(grid['argv'])}`; {_machine(grid)}); "
        "runs/hour scaled to the protocol's 200 epochs (which also scales each group's fixed costs by "
        f"ten); measured fp32 matmul peak in the same run {grid['peak_fp32_gflops']:.0f} GFLOP/s, "
        f"bf16 {grid['peak_bf16_gflops']:.0f} GFLOP/s:",
        "",
        "| cell | loop runs/h | picard runs/h | ratio | loop GFLOP/s | picard GFLOP/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in grid["cells"]:
        sc = r["protocol_scale"]
        out.append(
            f"| {r['cell']} | {r['loop_runs_per_hour'] / sc:.0f} | {r['picard_runs_per_hour'] / sc:.0f} | "
            f"{r['ratio']:.1f}x | {r['loop_gflops']:.1f} | {r['picard_gflops']:.1f} |"
        )
    g = grid["grid"]
    out += [
        "",
        f"**Whole grid (16 cells x 100 runs): loop {g['loop_minutes_100_runs']:.0f} minutes, picard "
        f"{g['picard_minutes_100_runs']:.0f} minutes: {g['ratio']:.1f}x.**",
    ]
    torch_grid = bench("bench-pign-grid-20ep-torch.json")
    g = torch_grid["grid"]
    out += [
        "",
        "The same grid with the default dropout stream (`archive/bench-pign-grid-20ep-torch.json`, the same "
        f"command without `--set`; {_machine(torch_grid)}): loop {g['loop_minutes_100_runs']:.0f} minutes, picard "
        f"{g['picard_minutes_100_runs']:.0f} minutes, {g['ratio']:.1f}x.",
        "",
    ]
    return "\n".join(out)


def result(name: str) -> dict:
    return json.loads((REPO / "benchmarks" / "results" / name).read_text())


def threads_block() -> str:
    """benchmarks/laptop_threads.py's output: 1 vs 2 torch threads, in one process and in two at once."""
    b = result("laptop_threads.json")
    one, two = b["steps_per_s"], b["two_processes_total_steps_per_s"]
    return (
        "| | 1 thread per process | 2 threads per process | 2 threads / 1 thread |\n|---|---|---|---|\n"
        f"| one process, training steps/s (best of {len(one['1'])}) | {max(one['1']):.2f} | {max(one['2']):.2f} | "
        f"{b['ratio_2_over_1_best']:.2f} |\n"
        f"| two processes at once, total steps/s (best of {len(two['1'])}) | {max(two['1']):.2f} | "
        f"{max(two['2']):.2f} | {b['two_processes_ratio_2_over_1_best']:.2f} |\n\n"
        f"Model: the {b['experiment']} laptop preset's {b['cell']} cell; {b['cpus']} CPUs ({b['machine']}), "
        f"torch {b['torch']}; both policies alternated in one run of `python benchmarks/laptop_threads.py` "
        "(`benchmarks/results/laptop_threads.json`). Two processes with 2 threads each are "
        f"{1 / b['two_processes_ratio_2_over_1_best']:.1f}x slower in total than with 1 thread each, while "
        f"one process alone gains {b['ratio_2_over_1_best']:.2f}x from its second thread.\n"
    )


def ddpm_budget_block() -> str:
    """benchmarks/ddpm_laptop_budget.py's output: what a laptop-scale DDPM study would cost."""
    b = result("ddpm_laptop_budget.json")
    lines = [
        f"| UNet | train step (s) | one denoising step of {b['fid_n']:,} images (s) | projected table "
        "(core-hours) | of it: sampling |",
        "|---|---|---|---|---|",
    ]
    for c in b["candidates"]:
        r = c["resolution"]
        lines.append(
            f"| {r}x{r}, channels {c['channels']} ({c['params']:,} params) | {c['train_step_s']:.3f} | "
            f"{c['sampling_step_s_for_fid_n']:.2f} | {c['projected_table_core_h']:.1f} | "
            f"{100 * c['projected_sampling_share']:.0f}% |"
        )
    models = len(b["T"]) * b["seeds"]
    least = min(c["projected_table_core_h"] for c in b["candidates"])
    return (
        "\n".join(lines) + "\n\n"
        f"Per model: {b['train_steps']:,} training steps of batch 64, then T denoising steps of {b['fid_n']:,} "
        f"images, then their Inception features; {len(b['T'])} values of T x {b['seeds']} seeds = {models} models; "
        f"{b['threads']} torch thread, {b['cpus']} CPUs, torch {b['torch']} "
        "(`python benchmarks/ddpm_laptop_budget.py`, "
        "`benchmarks/results/ddpm_laptop_budget.json`). Inception features of "
        f"{b['fid_n']:,} images: {b['inception_s_for_fid_n']:.0f} s, i.e. "
        f"{b['inception_s_for_fid_n'] * models / 3600:.1f} core-hours for the {models} models alone. "
        f"The cheapest candidate projects to {least:.1f} core-hours.\n"
    )


ARCHIVE_BLOCKS = {
    "pign-table5": table5_block,
    "pign-counter": counter_block,
    "bench-pign": speed_block,
    "laptop-threads": threads_block,
    "ddpm-laptop-budget": ddpm_budget_block,
}


def _replace(text: str, begin: str, end: str, body: str) -> str:
    head, rest = text.split(begin, 1)
    return head + begin + "\n" + body + end + rest.split(end, 1)[1]


def render() -> tuple[dict[Path, str], dict]:
    from picard_cli import registry, report

    texts = {p: p.read_text() for p in pages()}
    figures: dict = {}
    for name in EXPERIMENTS:
        begin, end = f"<!-- laptop:{name}:begin -->", f"<!-- laptop:{name}:end -->"
        recs = archived(name)
        if not recs or not any(begin in t for t in texts.values()):
            continue
        s = summary(name, recs)
        figures[name] = s
        body = block(name, recs, s)
        for p, t in texts.items():
            if begin in t:
                texts[p] = _replace(t, begin, end, body)
        frame = report.curve_frame(registry.get(name), recs)
        if frame is not None:
            s["curve_points"] = len(frame)
    for name, make in ARCHIVE_BLOCKS.items():
        begin, end = f"<!-- archive:{name}:begin -->", f"<!-- archive:{name}:end -->"
        if not any(begin in t for t in texts.values()):
            continue
        body = make()
        for p, t in texts.items():
            if begin in t:
                texts[p] = _replace(t, begin, end, body)
    return texts, figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    errors = marker_errors({p: p.read_text() for p in pages()})
    if errors:
        print("generated-block markers are broken:\n  " + "\n  ".join(errors))
        return 1
    texts, figures = render()
    if a.check:
        stale = [p.relative_to(REPO) for p, t in texts.items() if t != p.read_text()]
        ok = not stale and json.loads(FIGURES.read_text()) == json.loads(json.dumps(figures))
        print(
            "docs are up to date"
            if ok
            else f"docs differ from the archive ({', '.join(map(str, stale)) or 'docs/laptop.json'}): re-run the script"
        )
        return 0 if ok else 1
    for p, t in texts.items():
        if t != p.read_text():
            p.write_text(t)
    FIGURES.write_text(json.dumps(figures, indent=1) + "\n")
    from picard_cli import registry, report

    for name in figures:
        made = report.write_curves(registry.get(name), archived(name), REPO / "docs" / "img", f"{name}-laptop")
        for p in made:
            if p.suffix == ".csv":
                p.unlink()  # the points are in the archive; the figure is what the docs show
    print(
        f"wrote the generated blocks of {len(texts)} pages, {FIGURES.relative_to(REPO)} "
        f"({', '.join(figures) or 'no laptop archives'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
