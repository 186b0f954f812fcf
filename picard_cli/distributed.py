"""Multi-process data parallel for the long single trainings (``picard run ddpm ... --nproc N``).

The driver (the CLI process) launches ``torchrun --standalone --nproc_per_node N`` for one run at a
time and waits; every process runs the experiment's own ``run_group`` on its share of each batch
with DistributedDataParallel (NCCL on GPUs, one per process; gloo on CPU). Rank 0 alone writes
checkpoints, reports progress and returns the outcome, which the driver turns into the record: the
driver stays the only writer of the results file.

Exactness: every process draws the whole global batch's randomness (batch indices, noise, t) from
the same generator and keeps its slice (:func:`shard`), and DDP averages the per-process mean
gradients, so N processes take the same steps as one process with the same global batch up to
floating-point summation order. For the same reason a checkpoint does not depend on N, and a run
resumes under another N. Experiments opt in with ``data_parallel = True`` and use the helpers below,
which are no-ops in a single process.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from .errors import PicardError, RecipeError
from .recipes import as_config

SUPPORTED = ("ddpm", "vit-mask")  # experiments with data_parallel = True (named here so the error needs no imports)
TIMEOUT = timedelta(hours=1)  # collectives wait this long while rank 0 evaluates (FID sampling) or saves


# ----------------------------------------------------------------------------- helpers for experiments
def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def rank() -> int:
    d = _dist()
    return d.get_rank() if d else 0


def world() -> int:
    d = _dist()
    return d.get_world_size() if d else 1


def is_main() -> bool:
    return rank() == 0


def shard(n: int) -> slice:
    """This process's slice of a global batch of ``n`` (``n`` divisible by the world size)."""
    b = n // world()
    return slice(rank() * b, (rank() + 1) * b)


def split(n: int) -> slice:
    """This process's part of a batch of ``n`` that need not divide evenly (sizes differ by at most 1)."""
    w, r = world(), rank()
    start = r * (n // w) + min(r, n % w)
    return slice(start, start + n // w + (1 if r < n % w else 0))


def wrap(model):
    """``model`` in DistributedDataParallel with more than one process, else ``model`` itself."""
    if world() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    dev = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)


def total(t):
    """Sum of tensor ``t`` over the processes (every process must call it)."""
    d = _dist()
    if d is None:
        return t
    t = t.detach().clone()
    d.all_reduce(t)
    return t


def mean(t):
    """Mean of tensor ``t`` over the processes (every process must call it)."""
    return t if _dist() is None else total(t) / world()


# ----------------------------------------------------------------------------- driver side
def check(exp, p, nproc: int, device: str) -> None:
    """One-line errors for --nproc that cannot work, before anything starts."""
    if not exp.data_parallel:
        raise RecipeError(
            f"--nproc: experiment {exp.name!r} has no data-parallel training (supported: "
            f"{', '.join(SUPPORTED)}); its sweeps scale out with --executor ray or slurm"
        )
    if p.sweep.executor in ("ray", "slurm"):
        raise RecipeError(
            f"--nproc runs torchrun on this machine; it does not combine with --executor {p.sweep.executor}"
        )
    if device == "cuda":
        import torch

        if nproc > torch.cuda.device_count():
            raise RecipeError(
                f"--nproc {nproc}: only {torch.cuda.device_count()} CUDA device(s) here (one process per GPU)"
            )
    for r in p.runs:
        exp.check_nproc(r.config, nproc)


def launch(exp, run, ctx, nproc: int, progress=None) -> dict:
    """Train ``run`` on ``nproc`` processes with torchrun; return rank 0's outcome."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="picard-ddp-") as tmp:
        tmp = Path(tmp)
        fields = {
            "data_root": ctx.data_root,
            "fid_weights": ctx.fid_weights,
            "allow_unverified_weights": ctx.allow_unverified_weights,
            "results_root": ctx.results_root,
            "run_dir": ctx.run_dir,
        }
        (tmp / "task.pkl").write_bytes(
            pickle.dumps({"experiment": exp.name, "config": run.config, "device": ctx.device, "ctx": fields})
        )
        env = dict(os.environ)
        if ctx.device == "cpu":  # share the cores instead of oversubscribing them
            env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "picard_cli.distributed",
            str(tmp),
        ]
        log_path = (Path(ctx.run_dir) if ctx.run_dir else tmp) / "torchrun.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent())
            try:
                while proc.poll() is None:
                    time.sleep(0.5)
                    _relay_progress(tmp / "progress.json", progress)
            except BaseException:
                proc.terminate()  # torchrun forwards it to the workers
                proc.wait()
                raise
        if (tmp / "error.txt").exists():  # a PicardError in a worker (bad input, missing data)
            raise PicardError((tmp / "error.txt").read_text())
        if proc.returncode != 0 or not (tmp / "outcome.pkl").exists():
            tail = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()][-1:]
            raise PicardError(
                f"torchrun --nproc_per_node={nproc} failed (exit {proc.returncode}): "
                f"{tail[0] if tail else ''} (full log: {log_path})"
            )
        return pickle.loads((tmp / "outcome.pkl").read_bytes())


def _die_with_parent():
    """Linux: a function for ``preexec_fn`` that makes torchrun get SIGTERM if the driver dies (even by
    SIGKILL), so a re-run never races a left-over training for the same checkpoint. libc is looked up
    here, before the fork; None where there is no prctl."""
    import ctypes
    import signal

    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _relay_progress(path: Path, progress) -> None:
    if progress is None or not path.exists():
        return
    try:
        done, total, info = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # being replaced right now
    progress.epoch(done, total, info)


# ----------------------------------------------------------------------------- worker side
def _worker(tmp: Path) -> int:
    import torch
    import torch.distributed as dist

    from . import registry
    from .records import Context

    task = pickle.loads((tmp / "task.pkl").read_bytes())
    local = int(os.environ.get("LOCAL_RANK", 0))
    device = task["device"]
    if device == "cuda":
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", timeout=TIMEOUT)
    try:
        ctx = Context(device=device, **task["ctx"])
        if dist.get_rank() == 0:

            def on_epoch(done, total, info=""):  # atomic replace: the driver never reads half a file
                part = tmp / "progress.json.part"
                part.write_text(json.dumps([done, total, info]))
                os.replace(part, tmp / "progress.json")

            ctx.on_epoch = on_epoch
        try:
            exp = registry.get(task["experiment"])
            (outcome,) = exp.run_group([as_config(exp.config_cls, task["config"])], ctx)
        except PicardError as e:
            (tmp / "error.txt").write_text(str(e))
            return 2
        if dist.get_rank() == 0:
            (tmp / "outcome.pkl.part").write_bytes(pickle.dumps(outcome))
            os.replace(tmp / "outcome.pkl.part", tmp / "outcome.pkl")
        return 0
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(_worker(Path(sys.argv[1])))
