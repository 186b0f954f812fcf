"""Multi-process data parallel (issue 10): `picard run ddpm --nproc 2` (torchrun, gloo on CPU) follows
the single-process loss curve, and a 2-process run killed mid-training resumes on 1 process.

Tolerance: with ``--nproc 2`` each process takes half of every global batch of 16 and draws the whole
batch's noise and t from the same generator, and DDP averages the two half-batch mean gradients, so
both runs take the same steps in exact arithmetic. Only float32 summation order differs (two means of
8 then an all-reduce, vs one mean of 16); measured: relative differences ~1e-7 after 30 steps. The
bound below, 1e-4 relative, leaves room for that to grow over 80 Adam steps, and is far below what
any real difference makes (a different batch split or seed changes the curve by > 1e-2).
"""

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, picard

RTOL = 1e-4
TINY = [
    "--steps",
    "10",
    "--scale",
    "quick",
    "--fid-weights",
    "none",
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
    "grid_n=2",
    "sample_batch=64",
    "train_steps=80",
    "log_every=5",
    "eval_every=1000",
    "checkpoint_every=10",
    "fig7_for_T=1",
]


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    from picard_cli.data.synthetic import write_cifar10_npz

    root = tmp_path_factory.mktemp("cifar")
    write_cifar10_npz(root, n_train=200, n_test=60)
    return root


def _record(res: Path) -> dict:
    (line,) = (res / "ddpm.jsonl").read_text().splitlines()
    return json.loads(line)


def _close(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b)
    return max(abs(x - y) / abs(y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def single(cifar_root, tmp_path_factory):
    """The reference: the same training in one process."""
    res = tmp_path_factory.mktemp("single")
    out = picard("run", "ddpm", "--data-root", cifar_root, "--results", res, *TINY)
    assert out.returncode == 0, out.stderr
    return _record(res)


def test_two_process_gloo_run_matches_the_single_process_loss_curve(cifar_root, single, tmp_path):
    out = picard("run", "ddpm", "--data-root", cifar_root, "--results", tmp_path, "--nproc", 2, *TINY)
    assert out.returncode == 0, out.stderr
    ddp = _record(tmp_path)
    assert ddp["key"] == single["key"]  # --nproc is not part of the run's identity
    assert ddp["executor"]["name"] == "torchrun" and ddp["executor"]["nproc"] == 2
    curve, ref = ddp["extra"]["train_loss"], single["extra"]["train_loss"]
    assert curve["step"] == ref["step"] == list(range(5, 81, 5))
    assert _close(curve["loss"], ref["loss"]) < RTOL
    assert _close([ddp["metrics"]["test_loss"]], [single["metrics"]["test_loss"]]) < RTOL
    assert ref["loss"][-1] < 0.9 * ref["loss"][0]  # it learns: the comparison is not between two flat lines
    assert (tmp_path / "ddpm-runs" / ddp["key"] / "checkpoint.pt").exists()  # written by rank 0


def test_two_process_run_killed_mid_training_resumes_on_one_process(cifar_root, single, tmp_path):
    from picard_cli.models import ddpm as D

    args = [
        sys.executable,
        "-m",
        "picard_cli",
        "run",
        "ddpm",
        "--data-root",
        str(cifar_root),
        "--results",
        str(tmp_path),
        *TINY,
    ]
    proc = subprocess.Popen(args + ["--nproc", "2"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("ddpm-runs/*/checkpoint.pt")) and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before a checkpoint was written"
    proc.send_signal(signal.SIGKILL)  # the driver; torchrun and its workers follow (PR_SET_PDEATHSIG)
    proc.wait()
    (ckpt,) = tmp_path.glob("ddpm-runs/*/checkpoint.pt")
    time.sleep(1.5)
    killed_at = D.load_checkpoint(ckpt)["step"]
    time.sleep(1.0)
    assert D.load_checkpoint(ckpt)["step"] == killed_at  # no orphaned training goes on writing checkpoints
    assert 10 <= killed_at < 80 and not (tmp_path / "ddpm.jsonl").exists()

    out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=240)  # one process now
    assert out.returncode == 0, out.stderr
    rec = _record(tmp_path)
    assert rec["extra"]["resumed_from_step"] == [killed_at] and rec["metrics"]["steps_run"] == 80
    assert rec["extra"]["train_loss"]["step"] == single["extra"]["train_loss"]["step"]  # nothing lost or redone
    assert _close(rec["extra"]["train_loss"]["loss"], single["extra"]["train_loss"]["loss"]) < RTOL
    assert math.isfinite(rec["metrics"]["test_loss"])
    assert _close([rec["metrics"]["test_loss"]], [single["metrics"]["test_loss"]]) < RTOL


def test_two_process_vit_mask_matches_one_process_with_an_uneven_last_batch(cifar_root, tmp_path):
    """vit-mask: 149 training images in batches of 32 end with 21, split 11 + 10 between the processes;
    the loss is weighted so that the step is still the whole batch's mean gradient."""
    small = [
        "--n-iter",
        "2",
        "--fid-weights",
        "none",
        "epochs=2",
        "train_n=149",
        "val_n=40",
        "test_n=64",
        "batch_size=32",
        "dim=32",
        "dec_dim=32",
        "fid=false",
    ]
    recs = []
    for nproc in (1, 2):
        res = tmp_path / str(nproc)
        out = picard("run", "vit-mask", "--data-root", cifar_root, "--results", res, "--nproc", nproc, *small)
        assert out.returncode == 0, out.stderr
        recs.append(json.loads((res / "vit-mask.jsonl").read_text()))
    one, two = recs
    assert two["executor"]["nproc"] == 2 and one["executor"]["name"] == "inprocess"
    assert _close(two["extra"]["train_loss"], one["extra"]["train_loss"]) < RTOL
    assert _close(two["extra"]["val_mse"], one["extra"]["val_mse"]) < RTOL
    assert _close([two["metrics"]["test_mse_last"]], [one["metrics"]["test_mse_last"]]) < RTOL
