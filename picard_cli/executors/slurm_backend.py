"""Slurm backend through submitit: each task (a run, or a group of seeds) is one Slurm job with
the recipe's requests (``task_cpus``, ``task_gpus``, ``task_memory_gb``, ``slurm_partition``,
``slurm_time_min``). submitit pickles the call, submits it with sbatch and brings the return value
back; no sbatch template is written by hand. ``sweep.slurm_cluster=local`` runs the same jobs as
processes of this machine with submitit's local executor (what the tests do).

Job files (pickles, stdout/stderr) go to ``<results>/<experiment>-submitit/<job id>/``; the folder
must be on a file system the compute nodes share with the driver. ``in_flight.json`` there lists the
jobs this driver is waiting for: a driver that was killed leaves it behind, and the next one cancels
those Slurm jobs before it re-submits their runs, so two jobs never train the same run (a DDPM's
checkpoint folder) at once.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

from ..errors import PicardError


class SlurmBackend:
    name = "slurm"

    def __init__(self, sweep, folder: Path, experiment: str):
        import submitit

        self.cluster = sweep.slurm_cluster
        if self.cluster == "slurm" and shutil.which("sbatch") is None:
            raise PicardError(
                "--executor slurm: sbatch not found on this machine (run the sweep on a Slurm login "
                "node, or sweep.slurm_cluster=local to run the jobs here with submitit's local executor)"
            )
        self.folder, self.ledger, self.jobs = Path(folder), Path(folder) / "in_flight.json", {}
        self._cancel_leftovers()
        self.ex = submitit.AutoExecutor(folder=self.folder / "%j", cluster=self.cluster)
        params = dict(
            name=f"picard-{experiment}",
            timeout_min=sweep.slurm_time_min,
            nodes=1,
            tasks_per_node=1,
            cpus_per_task=max(1, math.ceil(sweep.task_cpus)),
            gpus_per_node=math.ceil(sweep.task_gpus),
        )
        if sweep.task_memory_gb:
            params["mem_gb"] = sweep.task_memory_gb
        if sweep.slurm_partition:
            params["slurm_partition"] = sweep.slurm_partition
        self.ex.update_parameters(**params)
        self.threads = max(1, math.floor(sweep.task_cpus))
        # Jobs in flight: Slurm queues them itself (workers=0: all at once); the local executor starts every
        # job at once, so it gets one per task_cpus of this machine.
        local = max(1, (os.cpu_count() or 1) // self.threads)
        self.limit = sweep.workers or (local if self.cluster != "slurm" else 0)
        self.poll_s = 0.5 if self.cluster != "slurm" else 10.0

    def max_in_flight(self) -> int:
        return self.limit

    def submit(self, exp, configs, ctx_fields, device_choice):
        from .task import run_task

        job = self.ex.submit(run_task, exp, configs, ctx_fields, device_choice, self.threads)
        self.jobs[str(job.job_id)] = job
        self._write_ledger()
        return job

    def wait(self, handles: list) -> list:
        while True:
            ready = [h for h in handles if h.done()]
            if ready or not handles:
                return ready
            time.sleep(self.poll_s)

    def result(self, handle) -> dict:
        self.jobs.pop(str(handle.job_id), None)
        self._write_ledger()
        return handle.result()

    def info(self, handle) -> dict:
        return {"cluster": self.cluster, "job_id": str(handle.job_id)}

    def cancel(self, handles: list) -> None:
        for h in handles:
            try:
                h.cancel(check=False)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass

    def close(self) -> None:
        self.ledger.unlink(missing_ok=True)

    def _write_ledger(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self.ledger.with_suffix(".part")
        part.write_text(json.dumps({"cluster": self.cluster, "jobs": sorted(self.jobs)}))
        os.replace(part, self.ledger)

    def _cancel_leftovers(self) -> None:
        """Cancel the Slurm jobs of a driver that died (its ledger is still here). Local jobs of a
        killed driver just run to their end; their results are not read, the runs are re-submitted."""
        try:
            left = json.loads(self.ledger.read_text())
        except (OSError, ValueError):
            return
        if left.get("cluster") == "slurm" and self.cluster == "slurm":
            from submitit import SlurmJob

            for job_id in left.get("jobs", []):
                SlurmJob(folder=self.folder / "%j", job_id=job_id).cancel(check=False)
        self.ledger.unlink(missing_ok=True)
