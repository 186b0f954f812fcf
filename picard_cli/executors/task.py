"""The unit of work a remote executor ships: one group of runs of one cell (a single run, or seeds
stacked into one model), run by the experiment's own ``run_group`` on a worker.

The worker returns outcomes, never writes the results file: the driver is its only writer, so
resume semantics are those of the in-process executors. Kept free of Ray and submitit so that
both (and a test) call the same function.
"""

from __future__ import annotations

import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path


def run_task(exp, configs: list[dict], ctx_fields: dict, device_choice: str, threads: int) -> dict:
    """Run ``exp.run_group(configs)`` here and return ``{"outcomes", "started", "wall", "device", ...}``.

    ``ctx_fields``: the :class:`~picard_cli.records.Context` fields (paths as strings); the device is
    picked here, on the worker (a GPU task lands on a node with a GPU). A
    :class:`~picard_cli.errors.PicardError` (bad input, missing data) comes back as ``user_error``:
    re-trying cannot fix it, so the driver stops the sweep with its one-line message. Any other
    exception propagates, and the driver re-submits the task or records its runs as failed.
    """
    import torch

    from .. import env
    from ..errors import PicardError
    from ..recipes import as_config
    from ..records import Context

    if threads >= 1:  # the worker's share of the node's cores (Ray also sets OMP_NUM_THREADS)
        torch.set_num_threads(threads)
    env.tune_allocator()
    fields = dict(ctx_fields)
    for k in ("data_root", "results_root", "run_dir"):
        if fields.get(k) is not None:
            fields[k] = Path(fields[k])
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    try:
        device = env.pick_device(device_choice)
        ctx = Context(device=device, **fields)
        outcomes = exp.run_group([as_config(exp.config_cls, c) for c in configs], ctx)
    except PicardError as e:
        return {"user_error": str(e)}
    return {
        "outcomes": outcomes,
        "started": started,
        "wall": time.perf_counter() - t0,
        "device": device,
        "device_name": env.device_name(device),
        "host": platform.node(),
        "pid": os.getpid(),
        "threads": torch.get_num_threads(),
    }
