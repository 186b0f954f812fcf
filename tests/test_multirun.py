"""Multirun from the command line (comma lists make a grid), ``picard show``, ``--dry-run``, and the
command line people expect (choices and the override grammar in --help, shell completion, no PyG
deprecation noise)."""

from __future__ import annotations

import json
import re
import sys
import warnings

import pytest
import yaml

from picard_cli import cli, registry, runner
from picard_cli.recipes import parse_overrides

from conftest import picard

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def invoke(argv, capsys, monkeypatch) -> tuple[int, str, str]:
    """``picard <argv>`` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["picard", *map(str, argv)])
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, ANSI.sub("", out), ANSI.sub("", err)


@pytest.fixture
def no_training(monkeypatch):
    """Where the CLI would load data or train: fail the test."""

    def reached(*args, **kwargs):
        raise AssertionError("the command reached data loading or training")

    monkeypatch.setattr(runner, "check_data", reached)
    monkeypatch.setattr(runner, "_run_here", reached)


def plan(recipe, *pairs, cells="all", filter_=None, seeds=1):
    return runner.plan(
        registry.get("pign"), str(recipe), "quick", parse_overrides(list(pairs)), {"seeds": seeds}, cells, filter_
    )


def cell_names(p) -> list[str]:
    return list(dict.fromkeys(r.cell for r in p.runs))


# ----------------------------------------------------------------------------- the grid
def test_a_comma_list_makes_one_cell_per_value(tiny_recipe):
    p = plan(tiny_recipe, "lr=0.01,0.02", filter_="^GCN/Cora$")
    assert cell_names(p) == ["GCN/Cora/lr=0.01", "GCN/Cora/lr=0.02"]
    assert [r.config["lr"] for r in p.runs] == [0.01, 0.02]
    # a grid cell is the same run as the command without the list: records resume across both
    alone = plan(tiny_recipe, "lr=0.02", filter_="^GCN/Cora$")
    assert cell_names(alone) == ["GCN/Cora"] and alone.runs[0].key == p.runs[1].key


def test_several_lists_multiply_per_cell(tiny_recipe):
    p = plan(tiny_recipe, "lr=0.01,0.02", "hidden=16,32", filter_="GCN/Cora$")
    assert cell_names(p) == [
        f"{cell}/lr={lr}/hidden={h}" for cell in ("GCN/Cora", "PIGN-GCN/Cora") for lr in (0.01, 0.02) for h in (16, 32)
    ]
    assert len({r.cell_key for r in p.runs}) == 8


def test_cells_that_coincide_after_the_grid_run_once(tiny_recipe):
    # with depth=2, PIGN-GCN/Cora and GCN/Cora differ only in `model`: the grid over it makes 2 cells, not 4
    p = plan(tiny_recipe, "model=plain,pign", "depth=2", filter_="GCN/Cora$", seeds=2)
    assert cell_names(p) == ["GCN/Cora/model=plain", "GCN/Cora/model=pign"]
    assert len(p.runs) == 4 and len({r.key for r in p.runs}) == 4
    assert cell_names(plan(tiny_recipe, "lr=0.01,0.01", filter_="^GCN/Cora$")) == ["GCN/Cora/lr=0.01"]


def test_text_fields_and_lists_keep_their_commas(tiny_recipe):
    p = plan(tiny_recipe, "eval_iters=1,2,4,8", filter_="^GCN/Cora$")
    assert cell_names(p) == ["GCN/Cora"] and p.runs[0].config["eval_iters"] == "1,2,4,8"
    af = registry.get("alphafold-recycle")
    p = runner.plan(af, None, "quick", parse_overrides(["targets=T1104-D1,T1119-D1"]), {"seeds": 1})
    assert {r.config["targets"] for r in p.runs} == {"T1104-D1,T1119-D1"}
    ddpm = registry.get("ddpm")
    p = runner.plan(ddpm, None, "quick", parse_overrides(["channels=[16,32]"]), {"seeds": 1})
    assert {tuple(r.config["channels"]) for r in p.runs} == {(16, 32)}


def test_a_str_field_with_choices_and_a_bool_field_multiply(tiny_recipe):
    p = plan(tiny_recipe, "backbone=gcn,gat", "diagnose=false,true", filter_="^GCN/Cora$")
    assert cell_names(p) == [
        "GCN/Cora/backbone=gcn/diagnose=false",
        "GCN/Cora/backbone=gcn/diagnose=true",
        "GCN/Cora/backbone=gat/diagnose=false",
        "GCN/Cora/backbone=gat/diagnose=true",
    ]


def test_run_with_a_list_runs_the_closest_cell_of_each_value(tiny_recipe):
    p = plan(tiny_recipe, "model=plain", "lr=0.01,0.03", cells="match")
    assert cell_names(p) == ["GCN/Cora/lr=0.01", "GCN/Cora/lr=0.03"]


def test_commands_without_lists_keep_their_names_and_keys(tiny_recipe):
    p = plan(tiny_recipe, "epochs=3", "eval_iters=1,2")
    assert cell_names(p) == ["GCN/Cora", "PIGN-GCN/Cora", "GAT/Cora-50%"]
    path = runner.REPO / "recipes/pign/table5.yaml"
    table5 = runner.plan(registry.get("pign"), str(path), "paper", {}, {})
    assert cell_names(table5) == list(yaml.safe_load(path.read_text())["cells"])


# ----------------------------------------------------------------------------- bad input: one line, exit 2
@pytest.mark.parametrize(
    "argv, message",
    [
        (["sweep", "pign", "lr=0.01,"], "an empty value in a comma list"),
        (["sweep", "pign", "lr=0.01,abc"], "lr: expected a number, got 'abc'"),
        (["sweep", "pign", "--backbone", "gcn,sage"], "backbone: must be one of gcn, gat; got 'sage'"),
        (["sweep", "pign", "hidden=" + ",".join(map(str, range(1, 41))), "lr=" + ",".join(["0.1"] * 30)], "at most"),
        (["sweep", "pign", "sweep.seeds=1,2"], "sweep.seeds: expected an integer"),
        (["run", "ddpm", "channels=16,32"], "channels: expected a list"),
        (["run", "pign", "lr=0.01,0.02", "--dry-run", "--filter", "x"], "unknown key 'filter'"),
        (["show", "pign", "--cell", "("], "is not a valid regular expression"),
        (["show", "pign", "lrr=0.01,0.02"], "unknown key 'lrr' (did you mean 'lr'?)"),
        (["show", "pign", "--scale", "huge"], "no scale 'huge'"),
        (["sweep", "pign", "--dry-run", "--filter", "nosuchcell"], "no cell"),
    ],
)
def test_bad_grid_input_is_one_line(argv, message, capsys, monkeypatch, tmp_path, no_training):
    code, out, err = invoke(
        [*argv, *(["--results", tmp_path / "res"] if argv[0] != "show" else [])], capsys, monkeypatch
    )
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in out + err, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert message in lines[0], lines[0]
    assert not (tmp_path / "res").exists()


# ----------------------------------------------------------------------------- show
def test_show_prints_each_matching_cells_resolved_config(tiny_recipe, capsys, monkeypatch):
    code, out, err = invoke(
        ["show", "pign", "--recipe", tiny_recipe, "--cell", "^GCN/Cora$", "lr=0.01,0.02", "hidden=12"],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    blocks = out.split("\n\n")
    assert blocks[0].startswith("pign: 2 cell(s)") and "scale quick" in blocks[0]
    assert blocks[1].startswith("GCN/Cora/lr=0.01") and blocks[2].startswith("GCN/Cora/lr=0.02")
    assert "  lr = 0.01\n" in blocks[1] and "  lr = 0.02\n" in blocks[2]
    for field in ("  hidden = 12\n", "  epochs = 5\n", "  model = plain\n", "  backbone = gcn\n", "  dataset = cora\n"):
        assert field in blocks[1]  # command line, recipe defaults, the cell and the typed defaults
    assert "\n  seed =" not in out  # set per run by the sweep


def test_show_yaml_is_one_mapping_of_cells(tiny_recipe, capsys, monkeypatch):
    code, out, err = invoke(
        ["show", "pign", "--recipe", tiny_recipe, "--yaml", "eval_iters=1,2,4"], capsys, monkeypatch
    )
    assert code == 0, err
    configs = yaml.safe_load(out)
    assert list(configs) == ["GCN/Cora", "PIGN-GCN/Cora", "GAT/Cora-50%"]
    assert configs["GAT/Cora-50%"]["noise"] == 0.5 and configs["PIGN-GCN/Cora"]["eval_iters"] == "1,2,4"


# ----------------------------------------------------------------------------- dry run
def test_dry_run_lists_runs_and_marks_the_recorded_ones(tiny_recipe, tmp_path, capsys, monkeypatch, no_training):
    res = tmp_path / "res"
    res.mkdir()
    p = plan(tiny_recipe, "lr=0.01,0.02", filter_="^GCN/Cora$", seeds=2)
    done, failed = p.runs[0], p.runs[3]
    lines = [
        {"key": done.key, "cell": done.cell, "seed": done.seed, "config": done.config, "status": "ok"},
        {"key": failed.key, "cell": failed.cell, "seed": failed.seed, "config": failed.config, "status": "failed"},
    ]
    (res / "pign.jsonl").write_text("".join(json.dumps(rec) + "\n" for rec in lines))
    before = (res / "pign.jsonl").read_bytes()
    argv = ["sweep", "pign", "--recipe", tiny_recipe, "--filter", "^GCN/Cora$", "lr=0.01,0.02", "--seeds", 2]
    code, out, err = invoke([*argv, "--results", res, "--dry-run"], capsys, monkeypatch)
    assert code == 0, err
    head, *rows = out.strip().splitlines()
    assert "2 cell(s) x 2 seed(s) = 4 runs" in head and "1 already recorded" in head and "3 to run" in head
    assert len(rows) == 4
    by_key = {row.split("key ")[1].split()[0]: row for row in rows}
    assert set(by_key) == {r.key for r in p.runs}
    assert by_key[done.key].endswith("recorded") and "GCN/Cora/lr=0.01" in by_key[done.key]
    assert "failed before" in by_key[failed.key]
    assert sum(row.endswith("to run") for row in rows) == 2
    assert (res / "pign.jsonl").read_bytes() == before and sorted(p.name for p in res.iterdir()) == ["pign.jsonl"]
    # run --dry-run: the same listing for the one matched cell
    code, out, err = invoke(
        [
            "run",
            "pign",
            "--recipe",
            tiny_recipe,
            "--model",
            "plain",
            "lr=0.01",
            "--seeds",
            2,
            "--results",
            res,
            "--dry-run",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    assert "1 already recorded" in out and "GCN/Cora " in out


# ----------------------------------------------------------------------------- help, completion, warnings
def test_help_lists_choices_and_the_override_grammar():
    for command in ("run", "sweep"):
        out = picard(command, "--help", env={"COLUMNS": "250"})
        assert out.returncode == 0, out.stderr
        text = " ".join(ANSI.sub("", out.stdout).split())
        for choices in ("quick|laptop|paper", "inprocess|batched|ray|slurm", "auto|cpu|cuda"):
            assert choices in text, (command, choices)
        assert "key=value" in text and "lr=0.01,0.02" in text and "picard list EXPERIMENT" in text
        assert "--dry-run" in text
    top = picard("--help", env={"COLUMNS": "250"})
    assert "--install-completion" in top.stdout and "show" in top.stdout


def test_only_the_pyg_jit_script_warning_is_filtered():
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        cli._quiet_known_warnings()
        warnings.warn(
            "`torch.jit.script` is deprecated. Please switch to `torch.compile` or `torch.export`.", FutureWarning
        )
        warnings.warn("`torch.jit.script` is deprecated (as a UserWarning)", UserWarning)
        warnings.warn("some other future change", FutureWarning)
    assert [str(w.message) for w in caught] == [
        "`torch.jit.script` is deprecated (as a UserWarning)",
        "some other future change",
    ]


def test_a_grid_run_on_the_generated_graph_records_each_cell_without_pyg_noise(synth_root, tiny_recipe, tmp_path):
    res = tmp_path / "res"
    args = ["run", "pign", "--recipe", tiny_recipe, "--data-root", synth_root, "--results", res, "--seeds", 1]
    args += ["--model", "plain", "--executor", "inprocess", "epochs=2", "lr=0.01,0.02"]
    out = picard(*args)
    assert out.returncode == 0, out.stderr
    assert "torch.jit.script" not in out.stderr + out.stdout and "FutureWarning" not in out.stderr
    recs = [json.loads(line) for line in (res / "pign.jsonl").read_text().splitlines()]
    assert sorted(r["cell"] for r in recs) == ["GCN/Cora/lr=0.01", "GCN/Cora/lr=0.02"]
    assert sorted(r["config"]["lr"] for r in recs) == [0.01, 0.02]
    assert "2 cell(s) x 1 seed(s)" in " ".join(out.stdout.split())
