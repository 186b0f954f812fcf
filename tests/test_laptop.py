"""Laptop scale: the presets' cell subsets, the trivial baselines in records, and the report's
baseline rows, paired differences, t-intervals and verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from picard_cli import registry, report, runner
from picard_cli.errors import RecipeError


def _rec(n_iter: int, seed: int, mse: float, key: str | None = None, **metrics) -> dict:
    cfg = {
        "heads": 1,
        "blocks": 1,
        "n_iter": n_iter,
        "seed": seed,
        "kv_dropout_always": False,
        "coord_scramble": False,
        "eval_adds_f": False,
    }
    return {
        "config": cfg,
        "cell_key": key or f"N{n_iter}",
        "status": "ok",
        "started": "2026-12-02",
        "scale": "laptop",
        "metrics": {"test_mse_best_val": mse, **metrics},
        "extra": {},
    }


def test_t_quantiles_match_the_t_distribution():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 9, 10, 30, 120):
        assert report.t975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=6e-4)
    for df in (11, 13, 50, 500):  # between tabulated values: the smaller df's quantile, i.e. wider
        assert report.t975(df) >= stats.t.ppf(0.975, df)


def test_interval_by_hand_and_verdicts():
    d = [-0.03, -0.02, -0.025]  # mean -0.025, s = 0.005, n = 3: half width 4.303 * 0.005 / sqrt(3)
    out = report.interval(d)
    half = 4.303 * 0.005 / math.sqrt(3)
    assert out["mean"] == pytest.approx(-0.025) and out["lo"] == pytest.approx(-0.025 - half)
    assert out["hi"] == pytest.approx(-0.025 + half) and out["verdict"] == "better"  # lower MSE
    assert report.interval([-0.03, -0.01, -0.02])["verdict"] == "no detectable difference"  # s = 0.01: too wide
    assert report.interval(d, higher_is_better=True)["verdict"] == "worse"
    assert report.interval([0.02, 0.025, 0.03])["verdict"] == "worse"
    assert report.interval([0.05, -0.04, 0.01])["verdict"] == "no detectable difference"
    assert report.interval([0.05])["verdict"].startswith("no verdict")


def test_report_pairs_by_seed_adds_baseline_rows_and_verdicts():
    exp = registry.get("anie")
    base = {"baseline_zero": 0.8, "baseline_input": 0.9, "baseline_mean_field": 0.25}
    recs = [_rec(1, s, v, **base) for s, v in ((7, 0.20), (8, 0.22), (9, 0.30))]
    # N_iter = 2 is 0.01 better on every seed, whatever the seed's level; seed 10 has no N1 partner
    recs += [_rec(2, s, v - 0.01, **base) for s, v in ((7, 0.20), (8, 0.22), (9, 0.30), (10, 0.0))]
    recs += [_rec(4, s, v + d, **base) for s, v, d in ((7, 0.20, 0.05), (8, 0.22, -0.04), (9, 0.30, 0.0))]
    t = report.build(exp, recs, "best-val")
    assert t.baseline_rows == ["baseline: predict zero", "baseline: predict w(t=0)", "baseline: training mean field"]
    assert t.ours[("baseline: training mean field", "N_iter = 4")].mean == pytest.approx(0.25)
    by = {p["col"]: p for p in t.paired}
    assert set(by) == {"N_iter = 2", "N_iter = 4"} and {p["row"] for p in t.paired} == {"1H 1B"}
    assert by["N_iter = 2"]["n"] == 3 and by["N_iter = 2"]["mean"] == pytest.approx(-0.01)
    assert by["N_iter = 2"]["verdict"] == "better"  # unpaired, the spread over seeds (0.04) would hide it
    assert by["N_iter = 4"]["verdict"] == "no detectable difference"
    md = report.to_markdown(t)
    assert "| 1H 1B | N_iter = 2 | N_iter = 1 | -0.01000" in md and "better" in md
    assert "baseline: predict zero | 0.8000 ± 0.0000 (n=3) |" in md
    assert "baseline: predict zero" not in md.split("Difference to the first column")[1]


def test_report_writes_the_paired_csv(tmp_path):
    exp = registry.get("anie")
    recs = [_rec(n, s, 0.2 + 0.01 * n + 0.001 * s) for n in (1, 8) for s in (7, 8, 9)]
    paths = report.write(report.build(exp, recs, "best-val"), tmp_path, "anie_table")
    paired = [p for p in paths if p.name.endswith("_paired.csv")]
    assert paired and "worse" in paired[0].read_text()


def test_laptop_presets_run_their_cells_with_three_seeds():
    anie = runner.plan(registry.get("anie"), None, "laptop", {}, {})
    assert {r.cell.split("/")[0] for r in anie.runs} == {"1H1B", "2H2B"} and len(anie.runs) == 10 * 3
    for name, cells in (("vit-pde", 12), ("vit-mask", 3)):
        p = runner.plan(registry.get(name), None, "laptop", {}, {})
        assert len(p.runs) == cells * 3 and {r.seed for r in p.runs} == {p.sweep.seed_base + i for i in range(3)}
    assert len(runner.plan(registry.get("anie"), None, "laptop", {}, {}, filter_="N8").runs) == 2 * 3
    with pytest.raises(RecipeError, match="no cell of scale 'laptop'"):
        runner.plan(registry.get("anie"), None, "laptop", {}, {}, filter_="4H4B")


def test_preset_cells_must_be_a_regex(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("experiment: anie\nscales: {s: {cells: [1, 2]}}\ncells: {a: {n_iter: 1}}\n")
    with pytest.raises(RecipeError, match="cells must be a regular expression"):
        runner.plan(registry.get("anie"), str(bad), "s", {}, {})
    bad.write_text("experiment: anie\nscales: {s: {cells: '(unclosed'}}\ncells: {a: {n_iter: 1}}\n")
    with pytest.raises(RecipeError, match="not a valid regular expression"):
        runner.plan(registry.get("anie"), str(bad), "s", {}, {})


def test_navier_stokes_trivial_baselines_by_hand():
    from picard_cli.experiments.ns_train import trivial_baselines

    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(5, 10, 4, 4)), rng.normal(size=(3, 10, 4, 4))
    out = trivial_baselines(train.astype(np.float32), test.astype(np.float32))
    assert out["baseline_zero"] == pytest.approx((test[:, 1:] ** 2).mean(), rel=1e-5)
    assert out["baseline_input"] == pytest.approx(((test[:, 1:] - test[:, :1]) ** 2).mean(), rel=1e-5)
    assert out["baseline_mean_field"] == pytest.approx(((test[:, 1:] - train[:, 1:].mean(0)) ** 2).mean(), rel=1e-5)


def test_local_mean_inpainting():
    from picard_cli.experiments.vit_mask import local_mean_inpaint

    x = torch.rand(2, 3, 8, 8)
    known = (torch.rand(2, 1, 8, 8) > 0.75).float()
    known[:, :, :4, :4] = 0  # a hole wider than the 3x3 window: filled from a larger one
    out = local_mean_inpaint(x * known, known)
    assert torch.equal(out * known, x * known)  # visible pixels kept
    b, i, j = 0, 5, 5
    if known[b, 0, i, j] == 0 and known[b, 0, i - 1 : i + 2, j - 1 : j + 2].sum() > 0:
        win = known[b, 0, i - 1 : i + 2, j - 1 : j + 2]
        ref = (x[b, :, i - 1 : i + 2, j - 1 : j + 2] * win).sum((1, 2)) / win.sum()
        assert torch.allclose(out[b, :, i, j], ref)
    const = torch.full((1, 3, 8, 8), 0.3)
    assert torch.allclose(local_mean_inpaint(const * known[:1], known[:1]), const)  # a flat image is recovered
    assert not torch.isnan(out).any() and (out[:, :, :4, :4] != 0).all()


@pytest.mark.parametrize("exp,cell", [("anie", "^1H1B/N(1|2)$"), ("vit-pde", "^ViT3D/N(1|2)$")])
def test_laptop_sweep_and_report_from_the_cli(tmp_path, exp, cell):
    """The laptop preset end to end on a tiny 32x32 file at its default path: records carry the
    baselines; the report shows their rows and the paired N_iter = 2 - N_iter = 1 differences."""
    import json

    from conftest import picard
    from test_anie import _write

    root, res = tmp_path / "data", tmp_path / "res"
    _write(root / "navier-stokes" / "ns_V1e-3_S32.h5", n=16, size=32)
    small = ["n_train=8", "n_val=4", "n_test=4", "epochs=1", "batch_size=4"]
    out = picard("sweep", exp, "--scale", "laptop", "--filter", cell, "--data-root", root, "--results", res, *small)
    assert out.returncode == 0, out.stderr
    # not a terminal (a log file): plain progress lines as the runs finish, with an ETA
    assert "6 run(s) to do" in out.stdout and "run 6/6:" in out.stdout and "ETA" in out.stdout
    recs = [json.loads(line) for line in (res / f"{exp}.jsonl").read_text().splitlines()]
    assert len(recs) == 6 and {r["scale"] for r in recs} == {"laptop"}
    assert {r["executor"]["threads"] for r in recs} == {1}  # the preset's thread policy (sweep.threads: 1)
    assert all(r["metrics"]["baseline_zero"] > 0 and "baseline_mean_field" in r["metrics"] for r in recs)
    assert {tuple(r["extra"]["iter_curve"]["k"]) for r in recs} == {tuple(range(1, 4 if exp == "vit-pde" else 9))}
    rep = picard("report", exp, "--results", res)
    assert rep.returncode == 0, rep.stderr
    md = next(res.glob(f"{exp}_table_*.md")).read_text()
    assert "baseline: training mean field" in md and "| N_iter = 2 | N_iter = 1 |" in md
    assert (res / f"{exp}_iters.png").exists() and list(res.glob(f"{exp}_table_*_paired.csv"))
