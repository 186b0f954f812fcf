"""The records behind the README's Table 5 (archive/) are valid and render that table."""
import gzip
import json

from picard_cli import registry, report
from picard_cli.runner import REPO


def test_archived_table5_records_render_the_readme_table():
    lines = gzip.open(REPO / "archive" / "pign-table5.jsonl.gz", "rt").read().splitlines()
    recs = [json.loads(line) for line in lines]
    assert len({r["key"] for r in recs}) == len(recs)  # no duplicated runs
    for r in recs:
        assert r["experiment"] == "pign" and r["status"] in ("ok", "diverged")
        assert {"config", "seed", "git_sha", "versions", "metrics", "executor"} <= set(r)
    t = report.build(registry.get("pign"), recs)
    readme = (REPO / "README.md").read_text()
    for rc in (("GCN", "Cora"), ("GAT", "Cora-50%"), ("PIGN-GAT", "CiteSeer-50%"), ("IterGNN-GCN", "Cora")):
        assert report.fmt_ours(t.ours[rc]) + "<br>paper" in readme, rc


def test_archived_counter_dropout_runs_match_the_torch_stream_runs():
    """dropout_rng=counter's accuracy check (README, Speed): its 16 x 20 archived runs are counter
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
        acc = lambda rs: [r["metrics"]["test_acc_last"] for r in rs if r["status"] == "ok"]
        assert abs(statistics.mean(acc(recs)) - statistics.mean(acc(ref[key]))) <= statistics.pstdev(acc(ref[key])), key
