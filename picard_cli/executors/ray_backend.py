"""Ray backend: each task (a run, or a group of seeds) is a Ray task with the recipe's resource
requests (``sweep.task_cpus``, ``task_gpus``, ``task_memory_gb``).

Without an address it starts a local Ray instance sized to ``sweep.workers`` tasks (default: one
per ``task_cpus`` of this machine), so a laptop works; with ``--address`` it joins a running
cluster and ships the ``picard_cli`` package to the workers (``runtime_env.py_modules``; torch,
PyG and the data must already be on the nodes, the data and results paths on a shared file
system). Re-tries are the driver's (``executors.drive``), so Ray's own are switched off.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from ..errors import PicardError

OBJECT_STORE_BYTES = 128 * 2**20  # records and configs are small; keep Ray's shared memory small


class RayBackend:
    name = "ray"

    def __init__(self, sweep):
        import ray

        from .task import run_task

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report from a CLI run
        self.ray, self.address, self.owned = ray, sweep.ray_address or "local", False
        pkg = Path(__file__).resolve().parent.parent
        if not ray.is_initialized():  # (a test or notebook may have connected already)
            common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            try:
                if sweep.ray_address:
                    ray.init(
                        address=sweep.ray_address,
                        runtime_env={"py_modules": [str(pkg)], "excludes": ["__pycache__"]},
                        **common,
                    )
                else:
                    cpus = self.local_cpus(sweep)
                    path = os.pathsep.join(p for p in (str(pkg.parent), os.environ.get("PYTHONPATH")) if p)
                    ray.init(
                        address="local",
                        num_cpus=cpus,
                        object_store_memory=OBJECT_STORE_BYTES,
                        runtime_env={"env_vars": {"PYTHONPATH": path}},
                        **common,
                    )
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = f"the Ray cluster at {sweep.ray_address!r}" if sweep.ray_address else "a local Ray instance"
                raise PicardError(f"--executor ray: could not start or join {where}: {e}") from None
            self.owned = True
        opts = dict(num_cpus=sweep.task_cpus, max_retries=0, retry_exceptions=False)
        if sweep.task_gpus:
            opts["num_gpus"] = sweep.task_gpus
        if sweep.task_memory_gb:
            opts["memory"] = int(sweep.task_memory_gb * 2**30)
        self.fn = ray.remote(run_task).options(**opts)
        self.threads = max(1, math.floor(sweep.task_cpus))

    @staticmethod
    def local_cpus(sweep) -> int:
        """CPUs of the local instance: room for ``workers`` tasks, else this machine's cores."""
        if sweep.workers:
            return max(1, math.ceil(sweep.workers * sweep.task_cpus))
        return os.cpu_count() or 1

    def max_in_flight(self) -> int:
        return 0  # Ray queues tasks until their resources are free

    def submit(self, exp, configs, ctx_fields, device_choice):
        return self.fn.remote(exp, configs, ctx_fields, device_choice, self.threads)

    def wait(self, handles: list) -> list:
        ready, _ = self.ray.wait(handles, num_returns=1, timeout=1.0)  # timeout: stay interruptible
        if ready:  # collect every other finished task too, without waiting
            more, _ = (
                self.ray.wait([h for h in handles if h not in ready], num_returns=len(handles) - len(ready), timeout=0)
                if len(handles) > len(ready)
                else ([], [])
            )
            ready += more
        return ready

    def result(self, handle) -> dict:
        return self.ray.get(handle)

    def info(self, handle) -> dict:
        return {"address": self.address, "task_id": handle.task_id().hex()}

    def cancel(self, handles: list) -> None:
        for h in handles:
            self.ray.cancel(h, force=True)

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()
