"""DDPM timesteps sweep (Figs. 2, 6, 7, 8): --steps parsing, scheduler wiring, sampling with T < 1000,
checkpoint round trip and exact resume, kill -9 then resume through the CLI, report figures."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, picard
from picard_cli import registry, runner
from picard_cli.errors import PicardError, RecipeError
from picard_cli.models import ddpm as D

# A tiny UNet on 8x8 images: seconds on a CPU.
TINY = [
    "resolution=8",
    "channels=[16,32]",
    "layers_per_block=1",
    "attn_down=0",
    "norm_groups=8",
    "train_n=96",
    "test_n=40",
    "batch_size=16",
    "warmup_steps=2",
    "lr=1e-3",
    "loss_bins=5",
    "grid_n=3",
    "sample_batch=64",
]


def tiny_config(**kw) -> dict:
    from picard_cli.recipes import parse_overrides

    exp = registry.get("ddpm")
    over = parse_overrides(TINY) | kw
    p = runner.plan(exp, None, "quick", over, {}, axis=("timesteps", [over.pop("T", 10)]) if "T" in over else None)
    return p.runs[0].config


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    from picard_cli.data.synthetic import write_cifar10_npz

    root = tmp_path_factory.mktemp("cifar")
    write_cifar10_npz(root, n_train=200, n_test=60)
    return root


# ---------------------------------------------------------------- --steps
def test_steps_ranges_parse():
    assert runner.parse_range("100:1000") == list(range(100, 1001, 100))
    assert runner.parse_range("400") == [400]
    assert runner.parse_range("100:300:50") == [100, 150, 200, 250, 300]
    for bad in ("1000:100", "0:100", "abc", "100:1000:0", "100:1000:-5", "1:2:3:4", ""):
        with pytest.raises(RecipeError, match="--steps"):
            runner.parse_range(bad)


@pytest.mark.parametrize("spec", ["1000:100", "0:100", "abc"])
def test_bad_steps_is_one_clear_line(spec, tmp_path):
    out = picard("sweep", "ddpm", "--steps", spec, "--results", tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--steps" in lines[0] and "start:stop" in lines[0], out.stderr


def test_steps_axis_multiplies_cells():
    exp = registry.get("ddpm")
    p = runner.plan(exp, None, "quick", {}, {}, axis=("timesteps", runner.parse_range("100:1000")))
    assert [r.cell for r in p.runs] == [f"T={t}" for t in range(100, 1001, 100)]  # 10 cells x 10 values, deduplicated
    assert [r.config["timesteps"] for r in p.runs] == list(range(100, 1001, 100)) and len({r.key for r in p.runs}) == 10
    assert p.runs == runner.plan(exp, None, "quick", {}, {}).runs  # the recipe's own cells are the same sweep
    one = runner.plan(exp, None, "quick", {}, {}, cells="match", axis=("timesteps", [400])).runs
    assert [(r.cell, r.config["timesteps"]) for r in one] == [("T=400", 400)]
    with pytest.raises(RecipeError, match="give one"):
        runner.plan(exp, None, "quick", {"timesteps": 300}, {}, axis=("timesteps", [400]))
    with pytest.raises(RecipeError, match="timesteps"):
        runner.plan(exp, None, "quick", {}, {}, axis=("timesteps", [10**6]))  # the field's own range check


# ---------------------------------------------------------------- model, scheduler, sampling
def test_paper_unet_has_the_reference_layout_and_size():
    unet = D.build_unet()
    assert sum(p.numel() for p in unet.parameters()) == 113_673_219  # spec §1.1, measured on diffusers 0.42
    cfg = unet.config
    assert cfg.block_out_channels == (128, 128, 256, 256, 512, 512) and cfg.layers_per_block == 2
    assert [i for i, b in enumerate(cfg.down_block_types) if b.startswith("Attn")] == [4]
    assert [i for i, b in enumerate(cfg.up_block_types) if b.startswith("Attn")] == [1]


@pytest.mark.parametrize("T", [100, 1000])
def test_add_noise_matches_the_closed_form(T):
    sched = D.build_scheduler(T)
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)  # linear, NOT rescaled by 1000/T
    abar = torch.cumprod(1 - betas, 0)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(6, 3, 8, 8, generator=g) * 2 - 1, torch.randn(6, 3, 8, 8, generator=g)
    t = torch.tensor([0, 1, T // 3, T // 2, T - 2, T - 1])
    want = abar[t].sqrt().view(-1, 1, 1, 1) * x0 + (1 - abar[t]).sqrt().view(-1, 1, 1, 1) * eps
    assert torch.allclose(sched.add_noise(x0, eps, t).double(), want, atol=1e-5)
    assert math.isclose(D.alpha_bar_T(sched), abar[-1].item(), rel_tol=1e-4)
    assert math.isclose(D.alpha_bar_T(sched), {100: 0.364, 1000: 4.0e-5}[T], rel_tol=0.02)  # spec §1.2 table


def test_sampling_with_T_below_1000_uses_T_steps_where_the_pipeline_default_crashes():
    from diffusers import DDPMPipeline

    torch.manual_seed(0)
    unet, sched = D.build_unet(8, (16, 32), 1, 0, 8, 8), D.build_scheduler(50)
    calls = []
    hook = unet.register_forward_hook(lambda m, a, out: calls.append(int(a[1])))
    x = D.sample(unet, sched, 5, seed=3, batch=2)
    assert x.shape == (5, 8, 8, 3) and x.dtype.name == "uint8"
    assert len(calls) == 50 * 3 and calls[:50] == list(range(49, -1, -1))  # 3 batches x T steps, t = T-1..0
    assert (D.sample(unet, sched, 5, seed=3, batch=2) == x).all()  # seeded: reproducible
    assert (D.sample(unet, sched, 5, seed=4, batch=2) != x).any()
    # x_T of image i depends on (seed, i) only: the same for every model, n and batch size (Figs. 6, 7)
    assert torch.equal(D.initial_noise(3, 0, 5, 8)[2:], D.initial_noise(3, 2, 3, 8))
    assert not torch.equal(D.initial_noise(3, 0, 2, 8), D.initial_noise(4, 0, 2, 8))
    calls.clear()
    D.sample(unet, sched, 2, 10, seed=3)  # set_timesteps(10): leading spacing
    assert calls == [45, 40, 35, 30, 25, 20, 15, 10, 5, 0]
    hook.remove()
    with pytest.raises(ValueError, match="cannot be larger"):
        DDPMPipeline(unet=unet, scheduler=sched)(batch_size=1)  # num_inference_steps=1000 > T = 50


# ---------------------------------------------------------------- training, checkpoints, resume
class Stop(Exception):
    pass


def _ctx(root, data_root, on_epoch=None, fid_weights="none"):
    ctx = runner.Context(
        device="cpu", data_root=data_root, fid_weights=fid_weights, results_root=root, run_dir=root / "run"
    )
    if on_epoch:
        ctx.on_epoch = on_epoch
    return ctx


def test_checkpoint_round_trip_and_interrupted_run_resumes_exactly(cifar_root, tmp_path, monkeypatch):
    from picard_cli.metrics import fid as fidlib

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(fidlib, "resolve_weights", lambda *a, **k: fidlib.random_extractor(0))  # plumbing only
    c = tiny_config(
        T=10,
        train_steps=12,
        checkpoint_every=3,
        log_every=2,
        eval_every=6,
        ema=True,
        fid_n=6,
        fid_n_steps=4,
        fig7_steps=[2, 5, 10, 20],
        fig7_for_T=10,
    )
    from picard_cli.experiments.ddpm import run_one

    full = run_one(c, _ctx(tmp_path / "a", cifar_root, fid_weights=None))
    assert full.status == "ok" and full.metrics["steps_run"] == 12

    def stop_at_8(done, total, info=""):
        if done == 8:
            raise Stop

    with pytest.raises(Stop):
        run_one(c, _ctx(tmp_path / "b", cifar_root, stop_at_8, fid_weights=None))
    ck = D.load_checkpoint(tmp_path / "b" / "run" / "checkpoint.pt")
    assert ck["step"] == 6 and ck["config"] == c  # the last checkpoint before the interruption
    assert {"model", "ema", "optimizer", "lr_scheduler", "rng", "state"} <= set(ck)
    assert ck["ema"]["optimization_step"] == 6 and ck["lr_scheduler"]["last_epoch"] == 6
    assert {"torch", "numpy", "python", "train_generator"} <= set(ck["rng"])
    assert ck["state"]["fid_log"]["step"] == [6]  # evaluations done before the checkpoint are kept

    resumed = run_one(c, _ctx(tmp_path / "b", cifar_root, fid_weights=None))
    ex, ref = resumed.extra, full.extra
    assert ex["resumed_from_step"] == [6] and ref["resumed_from_step"] == []
    assert ex["train_loss"] == ref["train_loss"] and ex["train_loss"]["step"] == [2, 4, 6, 8, 10, 12]
    assert ex["test_loss_curve"] == ref["test_loss_curve"] and ex["test_loss_curve"]["step"] == [6, 12]
    assert ex["fid_curve"]["step"] == [6, 12] and ex["fid_curve"]["n"] == [4, 4]
    assert ex["fid"]["metric"] == "fid_random_test" and ex["fid"]["alpha_bar_T"] == ex["alpha_bar_T"]
    assert ex["fid"]["n_fake"] == 6 and ex["fid"]["reference"]["split"] == "train"  # the curve keeps N = 4
    assert resumed.metrics == full.metrics
    a = D.load_checkpoint(tmp_path / "a" / "run" / "checkpoint.pt")
    b = D.load_checkpoint(tmp_path / "b" / "run" / "checkpoint.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])  # bit-identical to the uninterrupted run
    assert all(torch.equal(x, y) for x, y in zip(a["ema"]["shadow_params"], b["ema"]["shadow_params"]))
    import numpy as np

    grid = np.load(tmp_path / "b" / ex["grid"]["file"])
    steps7 = np.load(tmp_path / "b" / ex["fig7"]["file"])
    assert grid.shape == (3, 8, 8, 3) and ex["fig7"]["sampling_steps"] == [2, 5, 10]  # 20 > T is skipped
    assert steps7.shape == (3, 3, 8, 8, 3)
    assert len(ex["loss_by_t"]["loss"]) == 5 and all(v > 0 for v in ex["loss_by_t"]["loss"])


def test_checkpoint_of_another_config_is_refused(cifar_root, tmp_path):
    from picard_cli.experiments.ddpm import run_one

    c = tiny_config(T=5, train_steps=2, checkpoint_every=1, grid_n=1, fig7_for_T=1)
    run_one(c, _ctx(tmp_path, cifar_root))
    with pytest.raises(PicardError, match="another config"):
        run_one(c | {"lr": 0.5}, _ctx(tmp_path, cifar_root))


# ---------------------------------------------------------------- CLI: kill -9, resume, report
def _records(res: Path) -> list[dict]:
    path = res / "ddpm.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def killed_sweep(cifar_root, tmp_path_factory):
    """`picard sweep ddpm --steps 10:20:10` killed with SIGKILL once a checkpoint exists, then re-run."""
    res = tmp_path_factory.mktemp("res")
    cache = tmp_path_factory.mktemp("cache")
    args = [
        sys.executable,
        "-m",
        "picard_cli",
        "sweep",
        "ddpm",
        "--steps",
        "10:20:10",
        "--scale",
        "quick",
        "--data-root",
        cifar_root,
        "--results",
        res,
        "--fid-weights",
        "none",
        *TINY,
        "train_steps=300",
        "checkpoint_every=10",
        "log_every=10",
        "eval_every=100",
        "fig7_for_T=20",
        "fig7_steps=[5,10,20]",
    ]
    env = {"XDG_CACHE_HOME": str(cache)}
    proc = subprocess.Popen(
        [str(a) for a in args],
        cwd=REPO,
        env=dict(os.environ, **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(res.glob("ddpm-runs/*/checkpoint.pt")) and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep ended before a checkpoint was written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (ckpt,) = res.glob("ddpm-runs/*/checkpoint.pt")
    killed_at = D.load_checkpoint(ckpt)["step"]
    assert not _records(res)
    out = subprocess.run(
        [str(a) for a in args], cwd=REPO, env=dict(os.environ, **env), capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return res, ckpt.parent.name, killed_at, env


def test_kill_dash_9_then_rerun_continues_from_the_checkpoint(killed_sweep):
    res, key, killed_at, _ = killed_sweep
    recs = _records(res)
    assert sorted(r["cell"] for r in recs) == ["T=10", "T=20"] and len({r["key"] for r in recs}) == 2
    (first,) = [r for r in recs if r["key"] == key]  # the killed run, recorded exactly once
    assert 10 <= killed_at < 300 and first["extra"]["resumed_from_step"] == [killed_at]
    assert first["metrics"]["steps_run"] == 300
    assert first["extra"]["train_loss"]["step"] == list(range(10, 301, 10))  # continuous: nothing lost or redone
    assert all(math.isfinite(v) for v in first["extra"]["train_loss"]["loss"])
    other = [r for r in recs if r["key"] != key][0]
    assert other["extra"]["resumed_from_step"] == []
    for r in recs:
        assert r["extra"]["fid"]["value"] is None and r["extra"]["fid"]["note"] == "no Inception weights"
        assert r["metrics"]["test_loss"] > 0 and 0 < r["metrics"]["alpha_bar_T"] < 1


def test_report_writes_the_four_figures_and_the_table(killed_sweep):
    res, _, _, env = killed_sweep
    out = picard("report", "ddpm", "--results", res, env=env)
    assert out.returncode == 0, out.stderr
    for name in ("ddpm_fig2.png", "ddpm_fig6.png", "ddpm_fig7.png", "ddpm_fig8.png", "ddpm_per_T.md", "ddpm_per_T.csv"):
        assert (res / name).stat().st_size > 0 and name in out.stdout.replace("\n", "")
    md = (res / "ddpm_per_T.md").read_text()
    assert "| 10 |" in md and "| 20 |" in md and "n/a" in md and "QUICK" in md
