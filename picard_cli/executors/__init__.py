"""Remote executors: hand a sweep's tasks to Ray or Slurm, keep the driver the only writer.

``runner.execute`` forms the groups exactly as the in-process executors do (one run, or a group of
seeds of one cell stacked into one model), so every executor produces the same records for the
same seeds. ``drive`` submits the groups to a backend (``ray_backend.RayBackend``,
``slurm_backend.SlurmBackend``), appends each group's records to the results file as soon as it
comes back, and re-submits a failed task up to ``sweep.retries`` times; after that its runs are
recorded with ``status: failed`` and the error (never lost; a re-run of the sweep tries them again).
A killed driver loses only the tasks in flight: the re-run skips what is recorded.
"""

from __future__ import annotations

from collections import deque

from ..errors import PicardError
from ..records import describe_error  # noqa: F401 - executors.describe_error

REMOTE = ("ray", "slurm")


def backend(exp, sweep, results_root):
    """The backend for ``sweep.executor`` (ray or slurm), started or connected."""
    if sweep.executor == "ray":
        from .ray_backend import RayBackend

        return RayBackend(sweep)
    from .slurm_backend import SlurmBackend

    return SlurmBackend(sweep, results_root / f"{exp.name}-submitit", exp.name)


def drive(be, exp, p, batches: list, store, ctx, progress=None, skip: frozenset | set = frozenset()) -> None:
    """Run ``batches`` (lists of runs) on backend ``be``; append their records to ``store``, except
    those of runs in ``skip`` (recorded already: a group re-formed around a missing seed)."""
    from ..records import make_records, run_dir

    fields = {
        "data_root": str(ctx.data_root),
        "fid_weights": ctx.fid_weights,
        "allow_unverified_weights": ctx.allow_unverified_weights,
        "results_root": str(ctx.results_root) if ctx.results_root is not None else None,
    }
    pending = deque((b, 1) for b in by_cost(exp, batches))  # (group, attempt)
    running: dict = {}  # handle -> (group, attempt)
    limit = be.max_in_flight()
    try:
        while pending or running:
            while pending and (not limit or len(running) < limit):
                batch, attempt = pending.popleft()
                rd = run_dir(ctx, exp, batch[0]) if len(batch) == 1 else None
                h = be.submit(
                    exp, [r.config for r in batch], fields | {"run_dir": str(rd) if rd else None}, p.sweep.device
                )
                running[h] = (batch, attempt)
            for h in be.wait(list(running)):
                batch, attempt = running.pop(h)
                info = {"name": be.name, **be.info(h), "attempts": attempt}
                try:
                    payload = be.result(h)
                except Exception as e:  # noqa: BLE001 - any task failure: re-try, then record it
                    if attempt <= p.sweep.retries:
                        pending.append((batch, attempt + 1))
                        continue
                    recs = make_records(exp, p, batch, failure=e, executor=info)
                    store.append([r for r in recs if r["key"] not in skip])
                else:
                    if "user_error" in payload:  # bad input: the same on every re-try; stop like in-process
                        raise PicardError(payload["user_error"])
                    info |= {k: payload[k] for k in ("host", "pid", "threads") if k in payload}
                    recs = make_records(exp, p, batch, payload=payload, executor=info)
                    store.append([r for r in recs if r["key"] not in skip])
                if ctx.tracker is not None:  # --log: from the driver, post hoc from the records
                    ctx.tracker.finish([r for r in recs if r["key"] not in skip], batch)
                if progress:
                    progress.end_group([r for r in recs if r["key"] not in skip])
    finally:
        if running:  # interrupted or stopped: do not leave work behind on the cluster
            be.cancel(list(running))
        be.close()


def by_cost(exp, batches: list) -> list:
    """Largest tasks first, so that no big task starts last and leaves the other workers idle (the
    experiment's ``seed_bytes`` x epochs x seeds as the size; the given order where it has none)."""
    if not batches or exp.seed_bytes(batches[0][0].config) is None:
        return batches
    return sorted(batches, key=lambda b: -exp.seed_bytes(b[0].config) * b[0].config.get("epochs", 1) * len(b))
