"""Table 1 (LRGB PascalVOC-SP): parameter budget, metric, loss weights, end to end on
generated data in LRGB's raw format (PyG's real LRGBDataset processes it)."""

import json

import pytest
import torch

from conftest import picard
from picard_cli.errors import RecipeError
from picard_cli.experiments.pign_lrgb import LrgbConfig, count_params, fit_hidden
from picard_cli.metrics.classification import class_weights, macro_f1
from picard_cli.recipes import to_dict


def cfg(**kw):
    return to_dict(LrgbConfig(**kw))


@pytest.mark.parametrize(
    "framework,backbone,depth,bn,hidden,expected",
    [
        # The fork's counts (spec pign.md §5 table; FK count.ipynb: PIGN-GAT H 400 = 498,021).
        ("pign", "gcn", 8, False, 400, 497_221),
        ("pign", "gat", 8, False, 400, 498_021),
        ("pign", "sage", 8, False, 348, 499_401),
        ("itergnn", "gcn", 30, False, 400, 496_822),
        ("itergnn", "gat", 30, False, 400, 497_622),
        ("itergnn", "sage", 30, False, 348, 499_054),
        ("plain", "gcn", 8, True, 220, 498_322),
        ("plain", "gat", 8, True, 220, 501_842),
    ],
)
def test_parameter_counts_match_the_forks(framework, backbone, depth, bn, hidden, expected):
    assert count_params(cfg(framework=framework, backbone=backbone, depth=depth, use_bn=bn), hidden) == expected


@pytest.mark.parametrize(
    "framework,backbone,depth,bn",
    [
        ("pign", "gcn", 8, False),
        ("pign", "sage", 8, False),
        ("itergnn", "gat", 30, False),
        ("plain", "sage", 8, True),
        ("plain", "gcn", 4, True),
    ],
)
def test_budget_fitting_takes_the_widest_model_within_budget(framework, backbone, depth, bn):
    c = cfg(framework=framework, backbone=backbone, depth=depth, use_bn=bn)
    H = fit_hidden(c)
    assert count_params(c, H) <= 500_000 < count_params(c, H + 1)


def test_budget_fitting_known_widths_and_errors():
    assert fit_hidden(cfg(framework="pign", backbone="sage")) == 348  # spec §5: SAGE needs H ~ 348
    assert fit_hidden(cfg(framework="pign", backbone="gat")) == 400
    assert fit_hidden(cfg(framework="pign", backbone="gcn", budget=10_000)) < 60
    with pytest.raises(RecipeError, match="over the budget"):
        fit_hidden(cfg(framework="pign", backbone="sage", hidden=400))
    with pytest.raises(RecipeError, match="too small"):
        fit_hidden(cfg(framework="pign", budget=50))


def test_macro_f1_matches_its_definition():
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    p = torch.tensor([0, 1, 1, 1, 0, 3])
    # class 0: tp1 fp1 fn1 -> 0.5; class 1: tp2 fp1 fn0 -> 0.8; class 2: 0; class 3 (only predicted): 0
    assert macro_f1(y, p) == pytest.approx((0.5 + 0.8 + 0 + 0) / 4)
    assert macro_f1(y, y) == 1.0
    assert macro_f1(torch.zeros(10, dtype=torch.long), torch.zeros(10, dtype=torch.long)) == 1.0


def test_class_weights_per_batch():
    w = class_weights(torch.tensor([0, 0, 0, 1]), 4)
    assert torch.allclose(w, torch.tensor([0.25, 0.75, 0.0, 0.0]))


@pytest.fixture(scope="module")
def lrgb_root(tmp_path_factory):
    from picard_cli.data.synthetic import write_lrgb_raw

    return write_lrgb_raw(tmp_path_factory.mktemp("lrgb-data"), n_graphs=(16, 6, 6), seed=3)


def test_table1_quick_sweep_end_to_end(lrgb_root, tmp_path):
    """`picard sweep pign --recipe recipes/pign/table1.yaml` runs the LRGB experiment (the
    recipe names pign-lrgb, a member of the pign family) and reports Table 1 with params."""
    res = tmp_path / "res"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = picard(
        "sweep",
        "pign",
        "--recipe",
        "recipes/pign/table1.yaml",
        "--filter",
        "GAT",
        "--seeds",
        1,
        "epochs=3",
        "eval_iters=1,2",
        "--data-root",
        lrgb_root,
        "--results",
        res,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in (res / "pign-lrgb.jsonl").read_text().splitlines()]
    assert {r["cell"] for r in recs} == {"plain/GAT", "IterGNN/GAT", "PIGN/GAT"}
    for r in recs:
        assert r["status"] == "ok" and r["seed"] == 12345
        assert r["extra"]["n_params"] <= 500_000 and len(r["extra"]["val_f1"]) == 3
        assert 0.0 <= r["metrics"]["test_f1_last"] <= 1.0
    by = {r["cell"]: r for r in recs}
    assert by["PIGN/GAT"]["extra"]["hidden"] == 400 and by["PIGN/GAT"]["solver"]["steps"] == 8
    assert 1 <= by["IterGNN/GAT"]["solver"]["iters"] <= 30
    assert by["PIGN/GAT"]["extra"]["iter_curve"]["k"] == [1, 2]
    assert "macro-F1" in out.stdout and "498,021" in out.stdout and "paper 0.1706" in out.stdout

    rep = picard("report", "pign", "--results", res, env=env)
    assert rep.returncode == 0, rep.stderr
    assert (res / "pign-lrgb_table_last.md").exists() and (res / "pign-lrgb_iters.png").stat().st_size > 1000
    assert "Table 1" in rep.stdout


def test_exploding_loss_is_recorded_as_diverged(lrgb_root, tmp_path):
    res = tmp_path / "res"
    out = picard(
        "run",
        "pign",
        "--recipe",
        "recipes/pign/table1.yaml",
        "--framework",
        "plain",
        "--backbone",
        "gcn",
        "--seeds",
        1,
        "epochs=2",
        "diverge_loss=0.001",
        "--data-root",
        lrgb_root,
        "--results",
        res,
        env={"XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert out.returncode == 0, out.stderr
    (rec,) = [json.loads(line) for line in (res / "pign-lrgb.jsonl").read_text().splitlines()]
    assert rec["status"] == "diverged"
    assert "n/a (1 diverged)" in out.stdout
