"""The archived laptop-scale records (archive/<experiment>-laptop.jsonl.gz): every record resolves to
a run of its recipe's laptop plan (so a sweep resumes from them), metrics are finite, complete
tables have >= 3 seeds per cell, and docs/laptop.md shows exactly what the report computes from
them (scripts/laptop_docs.py --check)."""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys

import pytest

from picard_cli import registry, runner
from picard_cli.runner import REPO

sys.path.insert(0, str(REPO / "scripts"))
import laptop_docs  # noqa: E402

LAPTOP = [n for n in laptop_docs.EXPERIMENTS if (REPO / "archive" / f"{n}-laptop.jsonl.gz").exists()]


def test_there_are_laptop_archives():
    assert LAPTOP, "no archive/<experiment>-laptop.jsonl.gz"


@pytest.mark.parametrize("name", LAPTOP)
def test_laptop_records_resolve_to_their_plan(name):
    recs = laptop_docs.archived(name)
    plan = runner.plan(registry.get(name), None, "laptop", {}, {})
    keys = {r.key: r for r in plan.runs}
    assert len({r["key"] for r in recs}) == len(recs)  # one record per run
    for r in recs:
        assert r["key"] in keys, (r["cell"], r["seed"])  # resumes: the laptop plan skips it
        assert r["scale"] == "laptop" and r["status"] == "ok" and r["experiment"] == name
        assert {"config", "seed", "git_sha", "versions", "metrics", "executor", "data"} <= set(r)
        assert all(math.isfinite(v) for v in r["metrics"].values() if isinstance(v, float)), r["cell"]
    s = laptop_docs.summary(name, recs)
    per_cell: dict = {}
    for r in recs:
        per_cell.setdefault(r["cell"], set()).add(r["seed"])
    if s["complete"]:
        assert len(per_cell) == s["cells"] and all(len(v) >= 3 for v in per_cell.values())


def test_docs_show_what_the_archive_gives():
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "laptop_docs.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    doc = (REPO / "docs" / "laptop.md").read_text()
    figures = json.loads((REPO / "docs" / "laptop.json").read_text())
    for name in LAPTOP:
        assert f"<!-- laptop:{name}:begin -->" in doc and name in figures
        assert (REPO / "docs" / "img" / f"{name}-laptop_iters.png").exists()
        if not figures[name]["complete"]:
            assert f"{figures[name]['archived_runs']} of {figures[name]['planned_runs']} runs archived" in doc


def test_table5_archive_resolves_to_its_plan():
    """Renames never orphan archived results: every Table 5 record is a run of today's plan."""
    recs = [json.loads(line) for line in gzip.open(REPO / "archive" / "pign-table5.jsonl.gz", "rt")]
    keys = {
        r.key for r in runner.plan(registry.get("pign"), str(REPO / "recipes/pign/table5.yaml"), "paper", {}, {}).runs
    }
    assert all(r["key"] in keys for r in recs)
