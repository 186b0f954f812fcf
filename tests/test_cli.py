"""End to end through the CLI, as a user types it (fresh processes)."""

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, picard


def _records(results):
    path = results / "pign.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_run_on_generated_graph_writes_full_records(synth_root, tiny_recipe, tmp_path):
    res = tmp_path / "res"
    out = picard(
        "run",
        "pign",
        "--recipe",
        tiny_recipe,
        "--data-root",
        synth_root,
        "--results",
        res,
        "--seeds",
        2,
        "--model",
        "pign",
        "--executor",
        "inprocess",
        "epochs=3",
    )
    assert out.returncode == 0, out.stderr
    recs = _records(res)
    assert len(recs) == 2 and {r["cell"] for r in recs} == {"PIGN-GCN/Cora"}
    r = recs[0]
    for field in (
        "config",
        "key",
        "cell_key",
        "seed",
        "git_sha",
        "versions",
        "device",
        "wall_s",
        "metrics",
        "solver",
        "recipe",
        "recipe_sha256",
        "started",
        "status",
    ):
        assert field in r
    assert r["config"]["epochs"] == 3 and r["config"]["depth"] == 3 and r["versions"]["torch"]
    assert 0.0 <= r["metrics"]["test_acc_last"] <= 1.0 and 0.0 <= r["metrics"]["test_acc_best_val"] <= 1.0
    assert r["solver"]["steps"] == 3 and len(r["solver"]["residual"]) == 3 and len(r["solver"]["ratio"]) == 2
    assert "PIGN-GCN" in out.stdout and "paper 76.7" in out.stdout
    # running again resumes: nothing new
    again = picard(
        "run",
        "pign",
        "--recipe",
        tiny_recipe,
        "--data-root",
        synth_root,
        "--results",
        res,
        "--seeds",
        2,
        "--model",
        "pign",
        "--executor",
        "inprocess",
        "epochs=3",
    )
    assert again.returncode == 0 and len(_records(res)) == 2 and "2 already recorded" in again.stdout


def test_sweep_learns_on_generated_graph_and_report_writes_tables(synth_root, tiny_recipe, tmp_path):
    res = tmp_path / "res"
    out = picard(
        "sweep",
        "pign",
        "--recipe",
        tiny_recipe,
        "--data-root",
        synth_root,
        "--results",
        res,
        "epochs=60",
        "--filter",
        "GCN/Cora",
    )
    assert out.returncode == 0, out.stderr
    recs = _records(res)
    assert {r["cell"] for r in recs} == {"GCN/Cora", "PIGN-GCN/Cora"} and len(recs) == 4
    # the generated classes are learnable: well above chance (0.25)
    assert all(r["metrics"]["test_acc_last"] > 0.5 for r in recs), [r["metrics"] for r in recs]
    rep = picard("report", "pign", "--results", res, "--protocol", "best-val")
    assert rep.returncode == 0, rep.stderr
    md = (res / "pign_table_best_val.md").read_text()
    assert "PIGN-GCN" in md and "(n=2)" in md and "paper 80.9 ± 0.6" in md
    assert (res / "pign_table_best_val.csv").exists() and (res / "pign_table_best_val.tex").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "pign", "--noise", "2"], "noise: must lie in [0.0, 1.0]; got 2"),
        (["run", "pign", "--backbone", "sage"], "backbone: must be one of gcn, gat; got 'sage'"),
        (["run", "pign", "lrr=0.1"], "unknown key 'lrr' (did you mean 'lr'?)"),
        (["run", "pign", "--epochs", "ten"], "epochs: expected an integer"),
        (["run", "pignn"], "unknown experiment 'pignn' (did you mean 'pign'?)"),
        (["run", "pign", "--scale", "huge"], "no scale 'huge'"),
        (["run", "pign", "--recipe", "nope.yaml"], "recipe not found: nope.yaml"),
        (["report", "pign", "--results", "/nonexistent-picard"], "no results for 'pign'"),
    ],
)
def test_bad_input_is_one_clear_line(args, message):
    out = picard(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    assert message in " ".join(out.stderr.split()), out.stderr


def test_malformed_recipe_and_unknown_recipe_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment: pign\ncells: {A: {lr: 0.1}\n")
    out = picard("sweep", "pign", "--recipe", bad)
    assert out.returncode == 2 and "malformed YAML" in out.stderr and "Traceback" not in out.stderr
    typo = tmp_path / "typo.yaml"
    typo.write_text("experiment: pign\ncells:\n  A: {model: plain, hiden: 3}\n")
    out = picard("sweep", "pign", "--recipe", typo)
    assert out.returncode == 2 and "unknown key 'cells.A.hiden' (did you mean 'cells.A.hidden'?)" in out.stderr


def test_missing_data_offline_is_one_clear_line(tmp_path):
    # an empty data root, and PyG's downloader pointed at an address that refuses at once
    env = {
        "PICARD_DATA": str(tmp_path / "empty"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PICARD_PLANETOID_URL": "http://127.0.0.1:9/planetoid",
    }
    out = picard("run", "pign", "--seeds", 1, "--results", tmp_path / "res", env=env)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "Cora is not under" in out.stderr and "PICARD_DATA" in out.stderr


def test_kill_dash_9_then_rerun_loses_and_duplicates_nothing(synth_root, tiny_recipe, tmp_path):
    res = tmp_path / "res"
    args = [
        sys.executable,
        "-m",
        "picard_cli",
        "sweep",
        "pign",
        "--recipe",
        str(tiny_recipe),
        "--data-root",
        str(synth_root),
        "--results",
        str(res),
        "--executor",
        "inprocess",
        "--seeds",
        "4",
        "epochs=30",
    ]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(_records(res)) < 2 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = (res / "pign.jsonl").read_text().count("\n")
    assert 2 <= partial < 12
    out = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    keys = [r["key"] for r in _records(res)]
    assert len(keys) == 12 and len(set(keys)) == 12  # 3 cells x 4 seeds, each exactly once


def test_cli_start_up_stays_light():
    code = (
        "import sys; from picard_cli import cli, registry, solver, recipes, results, report, runner; "
        "heavy = [m for m in ('torch_geometric', 'pandas', 'diffusers', 'scipy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert picard("list").returncode == 0
