"""Protocol options where the paper's numbers came from another protocol: the authors' Table 4 recipe,
three seeds per cell in the paper presets of Tables 2-4, and AlphaFold templates only with a date cutoff."""

from __future__ import annotations

import pytest

from picard_cli import registry, runner
from picard_cli.errors import RecipeError
from picard_cli.recipes import parse_overrides
from picard_cli.runner import REPO


def test_table4_authors_recipe_runs_their_code_in_rows_of_its_own():
    exp = registry.get("anie")
    p = runner.plan(exp, str(REPO / "recipes/anie/table4-authors.yaml"), "paper", {}, {})
    assert len({r.cell for r in p.runs}) == 20 and p.sweep.seeds == 1 and p.sweep.seed_base == 7
    for r in p.runs:
        c = r.config
        assert c["kv_dropout_always"] and c["coord_scramble"] and c["eval_adds_f"]
        assert (c["epochs"], c["patience"], c["n_train"], c["n_val"], c["n_test"]) == (5000, 1000, 3200, 800, 1000)
    rows = {exp.row(r.config) for r in p.runs}
    assert rows == {"1H 1B (authors' code)", "4H 1B (authors' code)", "2H 2B (authors' code)", "4H 4B (authors' code)"}
    default = runner.plan(exp, None, "paper", {}, {})
    assert {exp.row(r.config) for r in default.runs} == set(
        exp.table.rows
    )  # the corrected default keeps the paper's rows
    assert not {r.key for r in default.runs} & {r.key for r in p.runs}


@pytest.mark.parametrize("name", ["vit-pde", "vit-mask", "anie"])
def test_paper_presets_of_tables_2_to_4_run_three_seeds_per_cell(name):
    p = runner.plan(registry.get(name), None, "paper", {}, {})
    seeds_per_cell: dict = {}
    for r in p.runs:
        seeds_per_cell.setdefault(r.cell, set()).add(r.seed)
    assert seeds_per_cell and all(len(s) == 3 for s in seeds_per_cell.values())


def _af_config(**kw):
    exp = registry.get("alphafold-recycle")
    return (
        runner.plan(exp, None, "quick", parse_overrides([f"{k}={v}" for k, v in kw.items()]), {}, cells="match")
        .runs[0]
        .config
    )


def test_alphafold_templates_are_refused_without_a_date_cutoff(tmp_path):
    from picard_cli.experiments.alphafold_recycle import check_templates
    from picard_cli.structure.colabfold import command

    plain = _af_config()
    check_templates(plain)  # no templates: fine
    assert "--templates" not in command(plain, "in", "out")
    for bad in (
        {"templates": "true"},
        {"templates": "true", "custom_template_path": str(tmp_path)},
        {"templates": "true", "custom_template_path": str(tmp_path / "nope"), "max_template_date": "2022-01-01"},
        {"colabfold_args": "[--templates]"},
    ):
        with pytest.raises(RecipeError) as e:
            check_templates(_af_config(**bad))
        assert "\n" not in str(e.value)
    ok = _af_config(templates="true", custom_template_path=str(tmp_path), max_template_date="2022-01-01")
    check_templates(ok)
    argv = command(ok, "in", "out")
    assert argv[argv.index("--templates") + 1 : argv.index("--templates") + 3] == [
        "--custom-template-path",
        str(tmp_path),
    ]
    # the added fields keep earlier runs' keys at their defaults
    from picard_cli.recipes import identity

    exp = registry.get("alphafold-recycle")
    ident = identity(exp.config_cls(**plain))
    assert not {"templates", "custom_template_path", "max_template_date"} & set(ident)


def test_table1_lr_grid_selects_one_lr_per_cell_on_validation_or_on_test(tmp_path):
    import json

    from conftest import picard
    from picard_cli.data.synthetic import write_lrgb_raw

    root = write_lrgb_raw(tmp_path / "data", n_graphs=(16, 6, 6), seed=3)
    res = tmp_path / "res"
    grid = REPO / "recipes/pign/table1-lrgrid.yaml"
    assert len(runner.plan(registry.get("pign-lrgb"), str(grid), "paper", {}, {}).runs) == 63 * 5
    out = picard(
        "sweep",
        "pign",
        "--recipe",
        grid,
        "--scale",
        "quick",
        "--filter",
        r"^PIGN/GCN/lr=(1\.0e-4|2\.5e-3)$",
        "--data-root",
        root,
        "--results",
        res,
        "epochs=3",
        "max_graphs=16",
    )
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in (res / "pign-lrgb.jsonl").read_text().splitlines()]
    assert len(recs) == 4 and {r["config"]["lr"] for r in recs} == {1e-4, 2.5e-3}

    def best(metric):
        mean = {lr: sum(r["metrics"][metric] for r in recs if r["config"]["lr"] == lr) / 2 for lr in (1e-4, 2.5e-3)}
        return max(mean, key=mean.get)

    exp = registry.get("pign-lrgb")
    from picard_cli import report

    for on, metric in (("val", "best_val_f1"), ("test", "test_f1_last")):
        t = report.build(exp, recs, "last", None if on == "val" else on)
        (cell,) = t.ours.values()
        assert cell.chosen == f"lr={best(metric):g}" and cell.n == 2
        assert ("validation F1" if on == "val" else "TEST F1") in t.selection
    rep = picard("report", "pign-lrgb", "--results", res, "--select-on", "test")
    assert rep.returncode == 0 and "[lr=" in rep.stdout, rep.stderr
    bad = picard("report", "pign-lrgb", "--results", res, "--select-on", "train")
    assert bad.returncode == 2 and "--select-on must be val or test" in bad.stderr
