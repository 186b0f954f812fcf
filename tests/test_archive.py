"""The records behind the docs' Table 5 (archive/) are valid and render that table: the Table 5 page
(docs/experiments/pign.md) and the benchmarks page (docs/benchmarks.md) show what the archive gives."""

import gzip
import json

from picard_cli import registry, report
from picard_cli.runner import REPO


PIGN_PAGE = REPO / "docs" / "experiments" / "pign.md"
BENCH_PAGE = REPO / "docs" / "benchmarks.md"


def test_archived_table5_records_render_the_docs_table():
    lines = gzip.open(REPO / "archive" / "pign-table5.jsonl.gz", "rt").read().splitlines()
    recs = [json.loads(line) for line in lines]
    assert len({r["key"] for r in recs}) == len(recs)  # no duplicated runs
    for r in recs:
        assert r["experiment"] == "pign" and r["status"] in ("ok", "diverged")
        assert {"config", "seed", "git_sha", "versions", "metrics", "executor"} <= set(r)
    exp = registry.get("pign")
    t = report.build(exp, recs)
    page = PIGN_PAGE.read_text()
    for rc in (("GCN", "Cora"), ("GAT", "Cora-50%"), ("PIGN-GAT", "CiteSeer-50%"), ("IterGNN-GCN", "Cora")):
        assert report.fmt_ours(t.ours[rc]) + "<br>paper" in page, rc
    # every cell of both protocols, as `picard report pign` renders them
    for protocol in ("last", "best-val"):
        assert report.to_markdown(report.build(exp, recs, protocol=protocol)) in page, protocol
    assert f"Records: {len(recs):,} runs in `archive/pign-table5.jsonl.gz`" in page


def test_archived_counter_dropout_runs_match_the_torch_stream_runs():
    """dropout_rng=counter's accuracy check (docs/experiments/pign.md): its 16 x 20 archived runs are counter
    runs of the paper cells, each cell's mean within one std of the archived torch-stream runs."""
    import statistics

    from picard_cli.experiments.pign import Pign

    def cells(name):
        out = {}
        for line in gzip.open(REPO / "archive" / name, "rt").read().splitlines():
            r = json.loads(line)
            if r["config"]["model"] != "itergnn":
                out.setdefault((Pign.row(r["config"]), Pign.col(r["config"])), []).append(r)
        return out

    ref, new = cells("pign-table5.jsonl.gz"), cells("pign-table5-counter.jsonl.gz")
    assert set(new) == set(ref) and len(new) == 16
    for key, recs in new.items():
        assert len(recs) == 20 and all(r["extra"]["dropout_kernel"] == "counter" for r in recs)
        assert all(r["config"]["dropout_rng"] == "counter" and r["git_sha"] for r in recs)

        def acc(rs):
            return [r["metrics"]["test_acc_last"] for r in rs if r["status"] == "ok"]

        assert abs(statistics.mean(acc(recs)) - statistics.mean(acc(ref[key]))) <= statistics.pstdev(acc(ref[key])), key

        def fmt(rs):
            v = [100 * a for a in acc(rs)]
            return f"{statistics.mean(v):.1f} ± {statistics.pstdev(v):.1f} (n={len(v)})"

        row = f"| {key[0]}/{key[1]} | {fmt(recs)} | {fmt(ref[key])} |"
        assert row in PIGN_PAGE.read_text(), row  # the page shows this comparison


def test_docs_speed_numbers_come_from_the_archived_benchmark_output():
    """The benchmarks page's PIGN table and full-length figures are the archived benchmark output."""
    readme = BENCH_PAGE.read_text()
    grid = json.loads((REPO / "archive/bench-pign-grid-20ep.json").read_text())
    assert len(grid["cells"]) == 16 and "--set" in grid["argv"] and "dropout_rng=counter" in grid["argv"]
    for r in grid["cells"]:
        sc = r["protocol_scale"]
        row = f"| {r['cell']} | {r['loop_runs_per_hour'] / sc:.0f} | {r['picard_runs_per_hour'] / sc:.0f} |"
        assert row in readme, row
    g = grid["grid"]
    assert (
        f"loop {g['loop_minutes_100_runs']:.0f} minutes, picard {g['picard_minutes_100_runs']:.0f} minutes: "
        f"{g['ratio']:.1f}x" in readme
    )
    torch_grid = json.loads((REPO / "archive/bench-pign-grid-20ep-torch.json").read_text())
    assert "--set" not in torch_grid["argv"] and len(torch_grid["cells"]) == 16
    g = torch_grid["grid"]
    flat = " ".join(readme.split())  # prose: line breaks anywhere
    assert (
        f"loop {g['loop_minutes_100_runs']:.0f} minutes, picard {g['picard_minutes_100_runs']:.0f} minutes, "
        f"{g['ratio']:.1f}x" in flat
    )
    for name, counter in (("bench-pign-clean-200ep.json", False), ("bench-pign-clean-200ep-counter.json", True)):
        full = json.loads((REPO / "archive" / name).read_text())
        assert ("dropout_rng=counter" in full["argv"]) == counter, name
        for r in full["cells"]:
            assert r["epochs"] == 200 and r["protocol_scale"] == 1
            quoted = (
                f"{r['cell']} {r['loop_runs_per_hour']:.0f} vs {r['picard_runs_per_hour']:.0f}, **{r['ratio']:.1f}x**"
            )
            assert quoted in flat, (name, quoted)
