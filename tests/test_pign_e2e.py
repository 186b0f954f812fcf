"""PIGN experiment end to end: real Cora (CI provides it), divergence handling, report."""

import json
import os
import statistics

import pytest

from conftest import picard
from picard_cli import registry, report


def test_quick_run_on_real_cora(tmp_path):
    """Plain GCN on the real public Cora split, as `picard run` does it. Needs the real
    files: skipped only when PICARD_DATA is unset; fails when it is set but they are absent."""
    root = os.environ.get("PICARD_DATA")
    if not root:
        pytest.skip("PICARD_DATA not set (CI sets it to the shared offline copy)")
    res = tmp_path / "res"
    out = picard(
        "run",
        "pign",
        "--model",
        "plain",
        "--backbone",
        "gcn",
        "--dataset",
        "cora",
        "--seeds",
        3,
        "--results",
        res,
        env={"XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in (res / "pign.jsonl").read_text().splitlines()]
    assert len(recs) == 3 and all(r["status"] == "ok" for r in recs)
    assert recs[0]["extra"]["n_params"] == 46119  # GCN-2 on Cora, spec pign.md §4.1
    acc = statistics.mean(r["metrics"]["test_acc_last"] for r in recs)
    assert 0.78 <= acc <= 0.835, acc  # paper: 80.9 ± 0.6 over 100 runs
    assert "paper 80.9" in out.stdout


def test_nan_loss_marks_diverged_and_the_sweep_goes_on(synth_root, tmp_path):
    recipe = tmp_path / "div.yaml"
    recipe.write_text("""
experiment: pign
sweep: {seeds: 2}
defaults: {epochs: 8, hidden: 8, model: plain}
cells:
  GCN/Cora: {lr: 1.0e+20}
  GAT/Cora: {backbone: gat, hidden: 4, heads: 2, lr: 0.01}
""")
    res = tmp_path / "res"
    out = picard("sweep", "pign", "--recipe", recipe, "--data-root", synth_root, "--results", res)
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in (res / "pign.jsonl").read_text().splitlines()]
    status = {(r["cell"], r["seed"]): r["status"] for r in recs}
    assert status == {
        ("GCN/Cora", 0): "diverged",
        ("GCN/Cora", 1): "diverged",
        ("GAT/Cora", 0): "ok",
        ("GAT/Cora", 1): "ok",
    }
    assert "n/a (2 diverged)" in out.stdout


def _rec(row_model, backbone, dataset, noise, acc, status="ok", key="k", started="2026-01-01"):
    return {
        "config": {"model": row_model, "backbone": backbone, "dataset": dataset, "noise": noise},
        "cell_key": key,
        "status": status,
        "started": started,
        "metrics": {"test_acc_last": acc, "test_acc_best_val": acc},
    }


def test_report_mean_std_counts_diverged_and_keeps_paper_values_apart(tmp_path):
    exp = registry.get("pign")
    recs = [_rec("plain", "gcn", "cora", 0.0, a) for a in (0.80, 0.82)]
    recs += [_rec("pign", "gat", "citeseer", 0.5, 0.30), _rec("pign", "gat", "citeseer", 0.5, float("nan"), "diverged")]
    t = report.build(exp, recs)
    gcn = t.ours[("GCN", "Cora")]
    assert (gcn.n, gcn.diverged) == (2, 0)
    assert gcn.mean == pytest.approx(81.0) and gcn.std == pytest.approx(1.0)  # population std (ddof 0)
    pg = t.ours[("PIGN-GAT", "CiteSeer-50%")]
    assert (pg.n, pg.diverged) == (1, 1)
    assert report.fmt_ours(pg) == "30.0 (n=1 of 2, 1 diverged)"
    assert ("GAT", "Cora") not in t.ours and t.paper[("GAT", "Cora")] == (80.4, 1.1)
    paths = report.write(t, tmp_path, "pign_table")
    md = paths[0].read_text()
    assert "81.0 ± 1.0 (n=2)<br>paper 80.9 ± 0.6" in md and "- <br>paper 80.4" not in md
    tex = paths[2].read_text()
    assert r"81.0 $\pm$ 1.0" in tex and r"CiteSeer-50\%" in tex


def test_report_shows_the_most_run_config_when_a_cell_has_several():
    exp = registry.get("pign")
    recs = [_rec("plain", "gcn", "cora", 0.0, 0.5, key="a")] + [_rec("plain", "gcn", "cora", 0.0, 0.8, key="b")] * 3
    c = report.build(exp, recs).ours[("GCN", "Cora")]
    assert c.n == 3 and c.variants == 2 and c.mean == pytest.approx(80.0)


def test_iteration_count_curve_of_a_trained_pign(synth_root, tmp_path):
    """eval_iters evaluates the trained PIGN at k = 1..K' without retraining; the report
    draws metric vs k."""
    res = tmp_path / "res"
    out = picard(
        "run",
        "pign",
        "--seeds",
        2,
        "epochs=5",
        "hidden=8",
        "eval_iters=1:6",
        "--data-root",
        synth_root,
        "--results",
        res,
    )
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in (res / "pign.jsonl").read_text().splitlines()]
    for r in recs:
        cur = r["extra"]["iter_curve"]
        assert cur["k"] == [1, 2, 3, 4, 5, 6] and len(cur["test_acc"]) == 6
        assert all(0.0 <= v <= 1.0 for v in cur["test_acc"] + cur["val_acc"])
        # k = K (the trained depth, 2) reproduces the final evaluation's test accuracy
        assert cur["test_acc"][r["config"]["depth"] - 1] == pytest.approx(r["metrics"]["test_acc_last"], abs=1e-4)
    rep = picard("report", "pign", "--results", res)
    assert rep.returncode == 0, rep.stderr
    assert (res / "pign_iters.png").exists() and "pign_iters.csv" in rep.stdout


def test_report_labels_the_scale_of_its_runs():
    pign, lrgb = registry.get("pign"), registry.get("pign-lrgb")
    quick = [dict(_rec("plain", "gcn", "cora", 0.0, 0.8), scale="quick")]
    assert "quick = the paper's protocol with fewer runs" in report.subtitle(report.build(pign, quick))
    paper = [dict(_rec("plain", "gcn", "cora", 0.0, 0.8), scale="paper"), _rec("plain", "gcn", "cora", 0.0, 0.8)]
    assert report.subtitle(report.build(pign, paper)) == "protocol: last; scale: paper"
    assert report.subtitle(report.build(pign, paper[1:])) == "protocol: last"  # records from before scales
    smoke = [
        {
            "config": {"framework": "pign", "backbone": "gcn"},
            "cell_key": "k",
            "status": "ok",
            "started": "x",
            "metrics": {"test_f1_last": 0.2},
            "scale": "quick",
        }
    ]
    assert "QUICK-SCALE" in report.subtitle(report.build(lrgb, smoke))
