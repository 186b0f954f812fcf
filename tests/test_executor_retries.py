"""Failed tasks on the ray and slurm executors (issue 10): re-tried ``sweep.retries`` times, then
recorded with status failed and the error (never lost); a re-run tries exactly those runs again and
duplicates no successful run; a PicardError in a task (bad input) stops the sweep with its line.

The experiment here is a stand-in with pign's config that fails on purpose; the workers (Ray tasks,
submitit's local job processes) import it from this file, so ``tests/`` joins their PYTHONPATH.
"""

import json
import os
from pathlib import Path

import pytest

from conftest import REPO
from picard_cli import registry, runner
from picard_cli.errors import DataError, PicardError
from picard_cli.experiment import Experiment, Outcome
from picard_cli.results import ResultStore

TESTS = Path(__file__).resolve().parent


class Flaky(Experiment):
    """pign's recipes and configs; ``run_group`` fails by seed: seeds in ``always`` raise until the
    file ``<state>/fixed`` exists, seeds in ``once`` fail on their first attempt only. Every call is
    counted in ``<state>/calls.jsonl``."""

    def __init__(self, state: Path, always=(), once=(), user_error=False):
        real = registry.get("pign")
        self.name, self.config_cls, self.batchable, self.match = real.name, real.config_cls, True, real.match
        self.table, self.row, self.col = real.table, real.row, real.col
        self.state, self.always, self.once, self.user_error = str(state), set(always), set(once), user_error

    def run_group(self, configs, ctx):
        seeds = [c.seed for c in configs]  # typed configs (PignConfig), as every experiment gets
        calls = Path(self.state) / "calls.jsonl"
        seen = [json.loads(x) for x in calls.read_text().splitlines()] if calls.exists() else []
        with open(calls, "a") as fh:
            fh.write(json.dumps(seeds) + "\n")
        if self.user_error:
            raise DataError("Cora is not under /nowhere (set PICARD_DATA)")
        if self.always & set(seeds) and not (Path(self.state) / "fixed").exists():
            raise RuntimeError(f"boom at seed {sorted(self.always & set(seeds))[0]}")
        if self.once & set(seeds) and seeds not in seen:
            raise OSError("transient: node lost")
        return [Outcome("ok", {"test_acc_last": 0.5 + c.seed / 100}) for c in configs]


@pytest.fixture
def worker_path(monkeypatch):
    """Workers import this module: tests/ on their PYTHONPATH (submitit's local jobs inherit it)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")]))


@pytest.fixture(scope="module")
def ray_instance():
    """One small local Ray instance for this module's Ray tests (the executor joins it rather than
    starting its own; the CLI tests in test_executors.py cover the executor's own start)."""
    import ray

    path = os.pathsep.join([str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")])
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 2**20,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    yield
    ray.shutdown()


def _plan(tiny_recipe, executor: str, **sweep):
    return runner.plan(
        registry.get("pign"),
        str(tiny_recipe),
        "quick",
        {},
        {"executor": executor, "seeds": 2, "group_size": 1, "retries": 1, "workers": 2, **sweep},
    )


def _calls(state: Path) -> list:
    return [json.loads(x) for x in (state / "calls.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("executor, sweep", [("ray", {}), ("slurm", {"slurm_cluster": "local"})])
def test_failed_task_is_retried_then_recorded_and_a_rerun_retries_only_it(
    executor, sweep, worker_path, tiny_recipe, tmp_path, request
):
    if executor == "ray":
        request.getfixturevalue("ray_instance")
    state = tmp_path / "state"
    state.mkdir()
    exp = Flaky(state, always={1}, once={0})
    p = _plan(tiny_recipe, executor, **sweep)
    p.runs = [r for r in p.runs if r.cell == "GCN/Cora"]  # seeds 0 and 1: two tasks
    store = ResultStore(tmp_path / "res", "pign")
    ctx = runner.Context(device="cpu", data_root=tmp_path, results_root=tmp_path / "res")

    runner.execute(exp, p, store, ctx)
    assert sorted(map(tuple, _calls(state))) == [(0,), (0,), (1,), (1,)]  # each tried 1 + retries=1 times
    (ok,) = store.records()
    assert ok["seed"] == 0 and ok["status"] == "ok" and ok["executor"]["attempts"] == 2  # the transient failure
    (failed,) = store.failed()
    assert failed["seed"] == 1 and failed["status"] == "failed" and failed["executor"]["attempts"] == 2
    assert failed["executor"]["name"] == executor and "boom at seed 1" in failed["error"]
    assert failed["metrics"] == {} and failed["config"]["seed"] == 1 and failed["key"] == p.runs[1].key
    assert store.done_keys() == {ok["key"]}  # a failed run is not done ...

    (state / "fixed").touch()
    runner.execute(exp, p, store, ctx)  # ... so the re-run tries it (and only it) again
    assert _calls(state)[4:] == [[1]]
    recs = store.records()
    assert sorted(r["seed"] for r in recs) == [0, 1] and all(r["status"] == "ok" for r in recs)
    assert not store.failed() and len(store.records(include_failed=True)) == 3  # the failure stays in the file


def test_user_error_in_a_task_stops_the_sweep_with_its_line(ray_instance, tiny_recipe, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    p = _plan(tiny_recipe, "ray", retries=3)
    p.runs = [r for r in p.runs if r.cell == "GCN/Cora"]  # one cell: a seed names a task (two tasks may run at once)
    store = ResultStore(tmp_path / "res", "pign")
    ctx = runner.Context(device="cpu", data_root=tmp_path, results_root=tmp_path / "res")
    with pytest.raises(PicardError, match="Cora is not under /nowhere"):
        runner.execute(Flaky(state, user_error=True), p, store, ctx)
    calls = _calls(state)
    assert len(calls) == len({tuple(c) for c in calls})  # not re-tried
    assert not store.records(include_failed=True)  # and nothing recorded


def test_slurm_jobs_carry_the_requests_and_a_new_driver_cancels_a_killed_ones_jobs(tmp_path, monkeypatch):
    """Against stand-in srun / sbatch / scancel (no Slurm here): the job script submitit writes has the
    requested partition, time, GPUs, CPUs and memory; jobs a killed driver left in flight are cancelled."""
    from picard_cli.executors.slurm_backend import SlurmBackend
    from picard_cli.recipes import Sweep, apply

    bin_ = tmp_path / "bin"
    bin_.mkdir()
    scripts = {
        "srun": "exit 0",
        "sbatch": f'cp "$1" {tmp_path}/job.sh\necho "Submitted batch job 4242"',
        "scancel": f'echo "$@" >> {tmp_path}/scancel.log',
    }
    for name, body in scripts.items():
        (bin_ / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_ / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    folder = tmp_path / "ddpm-submitit"
    folder.mkdir()
    (folder / "in_flight.json").write_text(json.dumps({"cluster": "slurm", "jobs": ["111", "222"]}))
    sweep = apply(
        Sweep(),
        {
            "executor": "slurm",
            "slurm_partition": "gpu",
            "slurm_time_min": 90,
            "task_gpus": 1,
            "task_cpus": 4,
            "task_memory_gb": 16,
        },
    )

    be = SlurmBackend(sweep, folder, "ddpm")
    assert (tmp_path / "scancel.log").read_text().split() == ["111", "222"]  # the dead driver's jobs
    job = be.submit(registry.get("pign"), [{}], {}, "auto")
    script = (tmp_path / "job.sh").read_text()
    for line in (
        "--partition=gpu",
        "--time=90",
        "--gpus-per-node=1",
        "--cpus-per-task=4",
        "--mem=16GB",
        "--job-name=picard-ddpm",
    ):
        assert f"#SBATCH {line}\n" in script, line
    assert json.loads((folder / "in_flight.json").read_text())["jobs"] == ["4242"]
    be.cancel([job])
    be.close()
    assert (tmp_path / "scancel.log").read_text().split()[-1] == "4242" and not (folder / "in_flight.json").exists()
