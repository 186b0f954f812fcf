"""`picard plan` (picard_cli/preflight.py) on every experiment at both scales, one measured probe on the
CPU, bad input, and benchmarks/gpu_smoke.py --tiny. The plans run in this process (one torch / timm /
diffusers import for all of them); bad input and the smoke script as a user runs them."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from conftest import REPO, picard
from picard_cli import registry, runner
from picard_cli.cli import app
from picard_cli.errors import PicardError


def plan_json(*args):
    res = CliRunner().invoke(app, ["plan", *map(str, args), "--json"])
    assert res.exit_code == 0, (res.output, res.exception)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _planned_runs(name: str, scale: str) -> int:
    return len(runner.plan(registry.get(name), None, scale, {}, {}, cells="all").runs)


@pytest.fixture(autouse=True)
def one_thread():  # tiny CPU steps on a shared 2-core machine: far slower with 2 threads than with 1
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("scale", ["quick", "paper"])
@pytest.mark.parametrize("name", registry.names())
def test_plan_every_experiment(name, scale, tmp_path):
    rep = plan_json(name, "--scale", scale, "--no-measure", "--results", tmp_path)
    assert rep["experiment"] == name and rep["scale"] == scale
    n = _planned_runs(name, scale)
    assert rep["runs"]["total"] == n == sum(c["runs"] for c in rep["cells"]) and rep["runs"]["todo"] == n
    assert rep["runs"]["cells"] == len(rep["cells"]) and all(c["runs"] == rep["seeds"] for c in rep["cells"])
    for c in rep["cells"]:
        d = c["data"]
        assert d["status"] in ("ok", "missing"), d
        if d["status"] == "missing":
            assert d["message"] and "\n" not in d["message"]
        else:
            assert d["label"] and isinstance(d["splits"], dict) and isinstance(d["differs"], list)
            if scale == "paper" and not d["paper"]:  # `picard run/sweep` would refuse it
                assert "allow_partial_data=true" in d["refusal"] and c["name"] in d["refusal"]
            else:
                assert d["refusal"] is None
        assert "seed" not in c["config"]
    e = rep["estimate"]
    if name == "alphafold-recycle":
        assert e["kind"] == "n/a" and "ColabFold" in e["label"] and rep["totals"]["device_hours_all"] is None
        return
    assert e["kind"] == "estimate" and e["label"].startswith("estimate, not measured") and e["assumed"]
    for c in rep["cells"]:
        est = c["estimate"]
        assert est["kind"] == "estimate" and est["steps_per_run"] >= 1 and est["s_per_step"] > 0
        assert est["peak_mem_bytes"] > 0 and est["params"] > 0 and est["flops_per_step"] > 0
        assert math.isfinite(est["hours_cell"]) and est["hours_cell"] > 0 and est["hours_todo"] == est["hours_cell"]
    assert rep["totals"]["device_hours_todo"] == pytest.approx(sum(c["estimate"]["hours_cell"] for c in rep["cells"]))


def test_plan_counts_recorded_runs_and_steps_from_the_config(tmp_path):
    p = runner.plan(registry.get("vit-pde"), None, "quick", {"epochs": 4}, {}, cells="all", filter_="^ViT/")
    (tmp_path / "vit-pde.jsonl").write_text(
        json.dumps({"key": p.runs[0].key, "config": p.runs[0].config, "status": "ok"}) + "\n"
    )
    rep = plan_json("vit-pde", "--no-measure", "--results", tmp_path, "--filter", "^ViT/", "epochs=4")
    assert rep["runs"] == {"cells": 3, "total": 3, "done": 1, "todo": 2}
    first = rep["cells"][0]
    assert first["name"] == p.runs[0].cell and (first["done"], first["todo"]) == (1, 0)
    assert first["estimate"]["hours_todo"] == 0 and first["config"]["epochs"] == 4
    assert first["estimate"]["steps_per_run"] == 4 * math.ceil(32 / 8)  # epochs x ceil(n_train / batch_size)


def test_plan_measures_a_quick_cell_on_the_cpu(tmp_path):
    rep = plan_json(
        "vit-pde", "--filter", "^ViT/N1$", "--measure", "--measure-steps", 2, "--device", "cpu", "--results", tmp_path
    )
    assert rep["estimate"]["kind"] == "measured" and rep["estimate"]["label"].startswith("measured on cpu")
    est = rep["cells"][0]["estimate"]
    assert est["kind"] == "measured" and est["s_per_step"] > 0 and est["steps"] == 2 and est["params"] > 0
    assert est["items_per_s"] > 0 and math.isfinite(est["hours_cell"])
    table = CliRunner().invoke(
        app, ["plan", "pign", "--no-measure", "--results", str(tmp_path), "--filter", "GCN/Cora$"]
    )
    assert table.exit_code == 0 and "estimate, not measured" in table.stdout and "PIGN-GCN/Cora" in table.stdout


@pytest.mark.parametrize(
    "args, says",
    [
        (["vit-pde", "--scale", "huge"], "no scale 'huge'"),
        (["pign", "--steps", "100:1000"], "no steps axis"),
        (["ddpm", "--measure-steps", "0"], "--measure-steps"),
        (["pign-lrgb", "hidden=4000"], "over the budget"),
    ],
)
def test_plan_bad_input_raises_one_line_errors(args, says):
    res = CliRunner().invoke(app, ["plan", *args, "--no-measure", "--json"])
    assert isinstance(res.exception, PicardError), res.output
    assert says in str(res.exception) and "\n" not in str(res.exception)


@pytest.mark.parametrize(
    "args, says", [(["nosuch"], "unknown experiment"), (["vit-pde", "bogus_field=1"], "bogus_field")]
)
def test_plan_bad_input_is_one_line_on_stderr_and_exit_2(args, says):
    out = picard("plan", *args, "--no-measure")
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip() and "warn" not in ln.lower()]
    assert len(lines) == 1 and says in lines[0], out.stderr


def test_gpu_smoke_tiny_writes_every_model(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_smoke

    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_smoke.py"), "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rep = json.loads(out.read_text())
    assert rep["torch"] and rep["device"] and "commit" in rep and rep["tiny"] and not rep["failed"]
    assert set(rep["models"]) == set(gpu_smoke.MODELS)
    for name, m in rep["models"].items():
        assert math.isfinite(m["steps_per_s"]) and m["steps_per_s"] > 0, name
        assert m["items_per_s"] > 0 and m["params"] > 0, name
    ref = rep["models"]["ddpm-unet"]["vs_reference"]
    assert ref["reference_images_per_s"] > 0 and ref["ratio_picard_over_reference"] > 0


def test_meta_counts_extrapolate_iterations_exactly():
    import torch.nn.functional as F

    from picard_cli import preflight
    from picard_cli.experiments.vit_pde import build_model
    from picard_cli.recipes import to_dict

    cfg = to_dict(registry.get("vit-pde").config_cls()) | {
        "dim": 32,
        "depth": 1,
        "heads": 2,
        "mlp": 64,
        "batch_size": 2,
        "n_iter": 3,
    }

    def loss(model):
        X = torch.zeros(2, 10, 16, 16, device="meta")
        return F.mse_loss(model(X[:, 0])[0].float(), X)

    direct = preflight.meta_counts(lambda: build_model(cfg, 16, 10), loss)
    extrapolated = preflight.probe_for("vit-pde", cfg, None, None, shape={"size": 16}).counts()  # from N_iter 1, 2
    assert extrapolated.params == direct.params > 0 and "extrapolated" in extrapolated.how
    assert extrapolated.flops == pytest.approx(direct.flops, rel=1e-6) and extrapolated.ops == direct.ops
