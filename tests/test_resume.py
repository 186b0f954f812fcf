"""Mid-run checkpoints and exact resume (picard_cli/checkpoint.py) of anie, vit-pde, vit-mask and
pign-lrgb: a real CLI run killed with SIGKILL once its checkpoint exists, then re-run, equals an
uninterrupted run of the same command (metrics exactly, curves, solver traces); unreadable
checkpoints are one line and exit 2; checkpoints load with weights_only=True.

Every subprocess runs with OMP_NUM_THREADS=1 (CPU results depend on the thread count; one thread is
also the fastest on a loaded 2-core machine) and PICARD_CHECKPOINT_S=0 (a checkpoint every epoch).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO
from picard_cli import checkpoint as C
from picard_cli.errors import PicardError

ENV = {"OMP_NUM_THREADS": "1", "PICARD_CHECKPOINT_S": "0"}
EPOCHS = 12
TIMING = ("epoch_s_mean", "resumed_from_epoch")  # what may differ between a resumed and an uninterrupted run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """One data root: a small Navier-Stokes file, generated CIFAR-10 arrays, synthetic LRGB graphs."""
    from test_anie import _write

    from picard_cli.data.synthetic import write_cifar10_npz, write_lrgb_raw

    root = tmp_path_factory.mktemp("resume-data")
    ns, _ = _write(root / "ns16.h5", n=24, size=16)
    write_cifar10_npz(root, n_train=120, n_test=40)
    write_lrgb_raw(root, n_graphs=(16, 6, 6), seed=3)
    return root, ns


def commands(root: Path, ns: Path) -> dict:
    """Tiny runs of each experiment: an epoch well under a second, EPOCHS epochs, dropout on."""
    common = ["--scale", "quick", "--data-root", root, f"epochs={EPOCHS}"]
    nsd = [f"data={ns}", "n_train=8", "n_val=4", "n_test=4", "batch_size=4"]
    return {
        "anie": [
            "run",
            "anie",
            *common,
            *nsd,
            "dim=8",
            "emb=16",
            "n_ff=16",
            "n_iter=2",
            "eval_iters=1,2",
            "solver_method=anderson",
            "jac_reg=0.01",
        ],  # toolkit path: the solver log is checkpointed too
        "vit-pde": [
            "run",
            "vit-pde",
            *common,
            *nsd,
            "n_iter=2",
            "dim=16",
            "depth=1",
            "heads=2",
            "mlp=32",
            "dropout=0.1",
        ],
        "vit-mask": [
            "run",
            "vit-mask",
            "--n-iter",
            "2",
            *common,
            "--fid-weights",
            "none",
            "fid=false",
            "train_n=32",
            "val_n=16",
            "test_n=16",
            "batch_size=16",
            "dim=16",
            "dec_dim=16",
            "depth=1",
            "dec_depth=1",
            "heads=2",
            "dec_heads=2",
            "dropout=0.1",
        ],
        "pign-lrgb": [
            "run",
            "pign",
            "--recipe",
            "recipes/pign/table1.yaml",
            "--framework",
            "pign",
            "--backbone",
            "gcn",
            "--seeds",
            1,
            *common,
            "hidden=16",
            "gnn_dropout=0.1",
            "eval_iters=1,2",
        ],
    }


def _argv(args, res: Path) -> list[str]:
    return [sys.executable, "-m", "picard_cli", *map(str, args), "--results", str(res)]


def _env(cache: Path) -> dict:
    return dict(os.environ, **ENV, XDG_CACHE_HOME=str(cache))


def _records(res: Path, exp: str) -> list[dict]:
    path = res / f"{exp}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module", params=["anie", "vit-pde", "vit-mask", "pign-lrgb"])
def resumed(request, data, tmp_path_factory):
    """(experiment, uninterrupted record, resumed record, epoch of the checkpoint the kill left, its file).
    The uninterrupted reference runs beside the killed run (one core each)."""
    exp, (root, ns) = request.param, data
    args = commands(root, ns)[exp]
    ref_res, res, cache = (tmp_path_factory.mktemp(f"{exp}-{n}") for n in ("ref", "killed", "cache"))
    ref = subprocess.Popen(
        _argv(args, ref_res), cwd=REPO, env=_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    proc = subprocess.Popen(
        _argv(args, res), cwd=REPO, env=_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(res.glob(f"{exp}-runs/*/{C.FILENAME}")) and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before a checkpoint was written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (ckpt,) = res.glob(f"{exp}-runs/*/{C.FILENAME}")
    killed_at = torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"]
    assert killed_at < EPOCHS - 1, "the kill landed after training"
    assert not _records(res, exp)
    out = subprocess.run(_argv(args, res), cwd=REPO, env=_env(cache), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    (rec,) = _records(res, exp)  # the killed run, recorded exactly once
    (full,) = _records(ref_res, exp)
    return exp, full, rec, killed_at, ckpt


def test_killed_run_resumes_to_the_uninterrupted_result(resumed):
    exp, full, rec, killed_at, _ = resumed
    assert rec["key"] == full["key"] and rec["status"] == full["status"] == "ok"
    assert rec["extra"]["resumed_from_epoch"] == [killed_at + 1] and full["extra"]["resumed_from_epoch"] == []
    assert rec["metrics"] == full["metrics"]  # exactly
    assert len(rec["extra"]["train_loss"]) == EPOCHS  # nothing lost or redone

    def strip(x):
        return {k: v for k, v in x.items() if k not in TIMING}

    assert strip(rec["extra"]) == strip(full["extra"])  # curves, iteration curves, solver logs
    assert rec["solver"] == full["solver"]
    if exp == "anie":
        assert full["extra"]["fixedpoint_train"]["steps"] == EPOCHS * 2  # every step's solver stats kept


def test_checkpoint_loads_with_weights_only_and_holds_the_run(resumed):
    exp, full, _, _, ckpt = resumed
    ck = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert ck["config"] == full["config"] and ck["epoch"] == EPOCHS - 1  # the last epoch is always saved
    assert {"model", "optimizer", "lr_scheduler", "rng", "fit"} <= set(ck)
    assert {"torch", "numpy", "python", "generators"} <= set(ck["rng"]) and len(ck["rng"]["generators"]) == 1
    assert not list(ckpt.parent.glob(".*.tmp"))


@pytest.mark.parametrize("resumed", ["anie"], indirect=True)  # one experiment: the same loader serves all
def test_unreadable_checkpoint_is_one_line_exit_2(resumed, data, tmp_path):
    """An empty file and garbage bytes where the run's checkpoint goes (both CLI runs at once)."""
    exp, full, *_ = resumed
    procs = {}
    for name, content in (("empty", b""), ("garbage", b"\x80\x02garbage, not a checkpoint" * 10)):
        bad = tmp_path / name / f"{exp}-runs" / full["key"] / C.FILENAME
        bad.parent.mkdir(parents=True)
        bad.write_bytes(content)
        procs[bad] = subprocess.Popen(
            _argv(commands(*data)[exp], tmp_path / name),
            cwd=REPO,
            env=_env(tmp_path / "cache"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    for bad, proc in procs.items():
        err = proc.communicate(timeout=300)[1]
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert proc.returncode == 2 and len(lines) == 1, err
        assert str(bad) in lines[0] and "delete or move it away" in lines[0] and "Traceback" not in err
        assert not _records(bad.parents[2], exp)


# ---------------------------------------------------------------- in process: the pign loop, the module itself
def test_pign_loop_with_persistent_workers_resumes_exactly(data, tmp_path, monkeypatch):
    """The CUDA path's DataLoader (worker processes kept across epochs) draws its workers' base seed
    from the order generator once, at epoch 0: a resumed loop must still see the same batch orders."""
    from torch_geometric.loader import DataLoader

    from picard_cli import registry, runner
    from picard_cli.data.lrgb import load_lrgb
    from picard_cli.experiments import pign_lrgb as P

    monkeypatch.setenv(C.ENV_INTERVAL, "0")
    over = {"epochs": 4, "framework": "pign", "backbone": "gcn", "hidden": 8, "batch_size": 4, "gnn_dropout": 0.1}
    c = (
        runner.plan(registry.get("pign-lrgb"), "recipes/pign/table1.yaml", "quick", over, {}, cells="match")
        .runs[0]
        .config
    )
    train = load_lrgb(data[0], c["dataset"])["train"]

    class Stop(Exception):
        pass

    def stop_after_2(done, total, info=""):
        if done == 2:
            raise Stop

    def loop(run_dir, on_epoch=None):
        torch.manual_seed(0)
        model, g = P.build_model(c, 8), torch.Generator().manual_seed(c["seed"])
        loader = DataLoader(train, batch_size=4, shuffle=True, generator=g, num_workers=1, persistent_workers=True)
        ctx = runner.Context(device="cpu", data_root=data[0], run_dir=run_dir)
        if on_epoch:
            ctx.on_epoch = on_epoch
        return P.train_loop(model, loader, lambda: 0.5, torch.optim.Adam(model.parameters()), None, g, c, ctx)

    full = loop(tmp_path / "a")
    with pytest.raises(Stop):
        loop(tmp_path / "b", stop_after_2)
    resumed = loop(tmp_path / "b")
    assert resumed["resumed_from"] == [2] and resumed["losses"] == full["losses"]


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    import random

    import numpy as np

    g = torch.Generator().manual_seed(1)
    torch.manual_seed(2)
    np.random.seed(3)
    random.seed(4)
    np.random.randn()  # a cached gaussian in numpy's state
    C.save(tmp_path / "ck.pt", {"rng": C.rng_state(g)})

    def draw():
        return (
            torch.rand(3).tolist(),
            np.random.randn(3).tolist(),
            random.random(),
            torch.rand(3, generator=g).tolist(),
        )

    first = draw()
    C.set_rng_state(torch.load(tmp_path / "ck.pt", weights_only=True)["rng"], g)
    assert draw() == first


def test_interval_and_config_check(tmp_path, monkeypatch):
    from picard_cli import runner

    ctx = runner.Context(device="cpu", data_root=tmp_path, run_dir=tmp_path / "run")
    monkeypatch.delenv(C.ENV_INTERVAL, raising=False)
    ck = C.Checkpointer(ctx, {"lr": 1.0})
    assert ck.every == 300 and not ck.epoch_end(False, dict) and ck.epoch_end(True, lambda: {"epoch": 0})
    assert ck.resume()["epoch"] == 0
    with pytest.raises(PicardError, match="belongs to another config; move it away"):
        C.Checkpointer(ctx, {"lr": 2.0}).resume()
    monkeypatch.setenv(C.ENV_INTERVAL, "0")
    assert C.Checkpointer(ctx, {"lr": 1.0}).epoch_end(False, lambda: {"epoch": 1})
    assert C.Checkpointer(ctx, {"lr": 1.0}, main=False).epoch_end(True, lambda: {"epoch": 2}) is False
    assert C.load(tmp_path / "run" / C.FILENAME)["epoch"] == 1  # only the main process writes
    monkeypatch.setenv(C.ENV_INTERVAL, "soon")
    with pytest.raises(PicardError, match=C.ENV_INTERVAL):
        C.interval_s()
    assert C.path_for(runner.Context(device="cpu", data_root=tmp_path)) is None  # no run folder: no checkpoint


def test_no_pickle_loading_in_the_package():
    hits = [
        f"{p}:{i}"
        for p in (REPO / "picard_cli").rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "weights_only=False" in line
    ]
    assert not hits
