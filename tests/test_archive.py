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
