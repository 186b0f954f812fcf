"""The Python API (picard_cli/api.py): the example script end to end, as CI runs it; the functions'
frames (rows, columns, resume); the report frame equal to the CSV `picard report` writes; errors
raised as PicardError; `import picard_cli` light."""

import os
import subprocess
import sys

import pytest

import picard_cli as picard
from conftest import REPO
from conftest import picard as picard_cli_run
from picard_cli import registry
from picard_cli.errors import PicardError, RecipeError

CELLS = {"GCN/Cora", "PIGN-GCN/Cora"}


@pytest.fixture(scope="module")
def swept(synth_root, tmp_path_factory):
    """A tiny recipe swept through the API: 2 cells (filtered from 3) x 2 seeds."""
    work = tmp_path_factory.mktemp("api")
    recipe = work / "tiny.yaml"
    recipe.write_text("""
experiment: pign
sweep: {seeds: 2}
defaults: {epochs: 4, hidden: 8}
cells:
  GCN/Cora:      {model: plain, backbone: gcn, depth: 2, lr: 0.02}
  PIGN-GCN/Cora: {model: pign, backbone: gcn, depth: 3, a: 0.6, lr: 0.02}
  GAT/Cora:      {model: plain, backbone: gat, hidden: 4, heads: 2, lr: 0.01}
""")
    res = work / "res"
    kw = dict(recipe=recipe, data_root=synth_root, results=res)
    frame = picard.sweep("pign", filter="GCN/Cora$", overrides=["weight_decay=0.001"], threads=1, **kw)
    return frame, kw, res


def test_the_example_runs_end_to_end(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "notebook_api.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "4 runs planned" in out.stdout and "records:" in out.stdout and "report" in out.stdout
    assert "PIGN-GCN" in out.stdout and "fixed point: converged after" in out.stdout


def test_sweep_returns_one_row_per_run_with_metrics_and_config(swept):
    frame, _, res = swept
    assert len(frame) == 4
    assert {(c, s) for c, s in zip(frame["cell"], frame["seed"])} == {(c, s) for c in CELLS for s in (0, 1)}
    for col in ("cell", "seed", "key", "status", "metrics.test_acc_last", "config.lr", "config.model", "wall_s"):
        assert col in frame.columns, col
    assert set(frame["status"]) == {"ok"} and frame["metrics.test_acc_last"].between(0, 1).all()
    assert set(frame["config.weight_decay"]) == {0.001}  # the override reached every run
    assert sorted(frame["key"]) == sorted(picard.load("pign", results=res)["key"])


def test_a_second_call_resumes_and_run_picks_the_closest_cell(swept):
    frame, kw, res = swept
    lines = (res / "pign.jsonl").read_text().count("\n")
    again = picard.sweep("pign", filter="GCN/Cora$", overrides={"weight_decay": 0.001}, **kw)
    assert sorted(again["key"]) == sorted(frame["key"])
    one = picard.run("pign", model="pign", backbone="gcn", seeds=1, weight_decay=0.001, **kw)
    assert list(one["cell"]) == ["PIGN-GCN/Cora"] and list(one["seed"]) == [0]
    assert (res / "pign.jsonl").read_text().count("\n") == lines  # all recorded: nothing trained again


def test_plan_lists_the_runs_and_what_is_recorded(swept):
    frame, kw, _ = swept
    kw = {k: v for k, v in kw.items() if k != "data_root"}
    p = picard.plan("pign", overrides={"weight_decay": 0.001}, **kw)
    assert len(p) == 6 and {"cell", "seed", "key", "cell_key", "recorded", "config.lr"} <= set(p.columns)
    assert set(p[p.recorded]["key"]) == set(frame["key"])
    matched = picard.plan("pign", cells="match", model="plain", backbone="gat", **kw)
    assert set(matched["cell"]) == {"GAT/Cora"} and not matched.recorded.any()


def test_report_frame_is_the_csv_picard_report_writes(swept, tmp_path):
    _, _, res = swept
    frame = picard.table("pign", results=res)
    assert set(frame[frame.n > 0]["model"]) == {"GCN", "PIGN-GCN"} and set(frame[frame.n > 0]["n"]) == {2}
    out = picard_cli_run("report", "pign", "--results", res, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr
    protocol = registry.get("pign").table.default_protocol.replace("-", "_")
    assert frame.to_csv(index=False) == (res / f"pign_table_{protocol}.csv").read_text()
    best = picard.table("pign", results=res, protocol="best-val")
    assert set(best["protocol"]) == {"best-val"}


def test_errors_raise_picard_errors(swept, tmp_path):
    _, kw, _ = swept
    with pytest.raises(PicardError, match="unknown experiment"):
        picard.sweep("pignn", **kw)
    with pytest.raises(RecipeError, match="lrr"):
        picard.sweep("pign", lrr=0.1, **kw)
    with pytest.raises(RecipeError, match="key=value"):
        picard.sweep("pign", overrides="lr=0.1", **kw)
    with pytest.raises(RecipeError, match="both"):
        picard.sweep("pign", overrides={"lr": 0.1}, lr=0.2, **kw)
    with pytest.raises(RecipeError, match="nproc"):
        picard.sweep("pign", nproc=0, **kw)
    with pytest.raises(RecipeError, match="no cell matches"):
        picard.plan("pign", filter="^nothing$", recipe=kw["recipe"])
    with pytest.raises(PicardError, match="cells must be"):
        picard.plan("pign", cells="some", recipe=kw["recipe"])
    with pytest.raises(PicardError, match="no results"):
        picard.table("pign", results=tmp_path / "empty")
    with pytest.raises(PicardError, match="unknown protocol"):
        picard.table("pign", results=kw["results"], protocol="first")
    with pytest.raises(PicardError, match="select_on"):
        picard.table("pign", results=kw["results"], select_on="train")


def test_solve_is_the_toolkits_front_door():
    import torch

    from picard_cli.fixedpoint.front import solve

    assert picard.solve is solve
    x, stats = picard.solve(lambda x: 0.5 * torch.tanh(x), torch.ones(3), torch.zeros(3), a=0.0, max_iter=60)
    assert stats.steps == 60 and x.abs().max() < 1e-6  # T(x) = 0.5 tanh(x): the fixed point is 0


def test_import_stays_light():
    code = (
        "import sys; import picard_cli as p; p.sweep, p.run, p.plan, p.load, p.table; "
        "heavy = [m for m in ('torch', 'torch_geometric', 'pandas') if m in sys.modules]; "
        "assert not heavy, heavy; assert p.FixedPointSpec().plain"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
