"""Scale-out executors through the CLI (issue 10): the same records in-process, on a local Ray
instance and on submitit's local executor; a driver killed mid-sweep and re-run loses and duplicates
nothing; executor flags that do not fit give one clear line."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import REPO, picard

# Fields that say where and when a run ran, not what it computed: the only ones allowed to differ.
WHERE_AND_WHEN = {"executor", "wall_s", "started"}


def _records(res: Path) -> list[dict]:
    path = res / "pign.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _content(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in WHERE_AND_WHEN}


def _kill_marked(mark: str) -> None:
    """SIGKILL the processes started with PICARD_TEST_MARK=mark: what a killed driver leaves behind
    (Ray's agents outlive a driver killed with SIGKILL; submitit's local jobs run on)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if f"PICARD_TEST_MARK={mark}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, PermissionError):
            pass


def test_same_records_in_process_on_local_ray_and_on_submitit_local(synth_root, tiny_recipe, tmp_path):
    common = ["sweep", "pign", "--recipe", tiny_recipe, "--data-root", synth_root, "--seeds", 2, "epochs=8"]
    runs = {"batched": [], "ray": ["sweep.workers=2"], "slurm": ["sweep.slurm_cluster=local", "--time", 5]}
    by_executor = {}
    for name, extra in runs.items():
        res = tmp_path / name
        # A task gets task_cpus = 1 core, so torch runs it with 1 thread; the in-process reference runs with 1
        # thread too, since CPU reductions split by thread and the last bits of the numbers depend on the count.
        env = {"OMP_NUM_THREADS": "1"} if name == "batched" else None
        out = picard(*common, "--results", res, "--executor", name, *extra, env=env)
        assert out.returncode == 0, out.stderr
        recs = _records(res)
        assert len(recs) == 6 and {r["executor"]["name"] for r in recs} == {name}
        assert {r["executor"]["threads"] for r in recs} == {1}
        by_executor[name] = {r["key"]: r for r in recs}
    ref = by_executor["batched"]
    for name in ("ray", "slurm"):
        got = by_executor[name]
        assert got.keys() == ref.keys()  # same runs (configs and seeds) ...
        for key, rec in got.items():  # ... with the same content, metrics and solver traces included
            assert _content(rec) == _content(ref[key]), (name, rec["cell"], rec["seed"])
            assert rec["executor"]["group_seeds"] == ref[key]["executor"]["group_seeds"] == [0, 1]
    assert by_executor["ray"][next(iter(ref))]["executor"]["address"] == "local"
    assert by_executor["slurm"][next(iter(ref))]["executor"]["job_id"]
    assert (tmp_path / "slurm" / "pign-submitit").is_dir()  # submitit's job files: beside the results


@pytest.mark.parametrize(
    "executor, extra", [("ray", ["sweep.workers=1"]), ("slurm", ["sweep.slurm_cluster=local", "sweep.workers=1"])]
)
def test_killed_driver_then_rerun_loses_and_duplicates_nothing(executor, extra, synth_root, tiny_recipe, tmp_path):
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
        executor,
        *extra,
        "--seeds",
        "3",
        "epochs=20",
    ]
    # 3 tasks (one per cell, its 3 seeds stacked), one at a time
    mark = uuid.uuid4().hex
    env = dict(os.environ, PICARD_TEST_MARK=mark)
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not _records(res) and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        _kill_marked(mark)
    partial = len(_records(res))
    assert partial in (3, 6)  # whole groups only
    out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    recs = _records(res)
    keys = [r["key"] for r in recs]
    assert len(keys) == 9 and len(set(keys)) == 9  # 3 cells x 3 seeds, each exactly once
    assert f"{partial} already recorded" in out.stdout
    assert all(r["status"] == "ok" and r["executor"]["name"] == executor for r in recs)


@pytest.mark.parametrize(
    "args, message",
    [
        (["sweep", "pign", "--executor", "nosuch"], "sweep.executor: must be one of inprocess, batched, ray, slurm"),
        (["sweep", "pign", "--address", "head:6379"], "--address applies to --executor ray"),
        (["sweep", "pign", "--executor", "ray", "--partition", "gpu"], "--partition applies to --executor slurm"),
        (["sweep", "pign", "--gpus-per-task", "1"], "--gpus-per-task applies to --executor ray or slurm"),
        (["run", "ddpm", "--nproc", "0"], "--nproc must be >= 1, got 0"),
        (
            ["run", "pign", "--nproc", "2"],
            "experiment 'pign' has no data-parallel training (supported: ddpm, vit-mask)",
        ),
        (["run", "ddpm", "--nproc", "3"], "batch_size=32 is not divisible by 3"),
    ],
)
def test_bad_executor_input_is_one_clear_line(args, message, tmp_path):
    out = picard(*args, "--results", tmp_path)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], out.stderr


def test_slurm_without_sbatch_says_how_to_run_locally(tmp_path):
    # PATH without sbatch (this interpreter is called by its full path)
    out = picard(
        "sweep",
        "pign",
        "--executor",
        "slurm",
        "--seeds",
        1,
        "--results",
        tmp_path,
        "--filter",
        "^GCN/Cora$",
        env={"PATH": str(tmp_path)},
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "sbatch not found" in out.stderr and "slurm_cluster=local" in out.stderr
