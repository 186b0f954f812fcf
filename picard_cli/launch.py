"""What a plan runs in, shared by the CLI (``picard run`` / ``picard sweep``) and the Python API
(:mod:`picard_cli.api`): the sweep fields of a command's options and the device, context and
results store a plan executes with. Both then call :func:`picard_cli.runner.execute`."""

from __future__ import annotations

from pathlib import Path

from . import env
from .errors import RecipeError
from .records import Context, Plan
from .results import ResultStore, default_root


def sweep_fields(overrides: dict, given: dict) -> dict:
    """The ``sweep.*`` fields of a command: the overrides' ``sweep`` section (popped from
    ``overrides``), ``allow_partial_data`` (a shorthand, popped too), then the options in ``given``
    (``seeds``, ``device``, ...) that are not None."""
    sw = overrides.pop("sweep", None) or {}
    if not isinstance(sw, dict):
        raise RecipeError(
            f"command line: sweep={sw!r}: the sweep section must be a mapping; set its fields one by "
            f"one, e.g. sweep.seeds=3 (or --seeds 3)"
        )
    sw = dict(sw)
    if "allow_partial_data" in overrides:  # shorthand for sweep.allow_partial_data (not part of a run's identity)
        sw["allow_partial_data"] = overrides.pop("allow_partial_data")
    for k, v in given.items():
        if v is not None:
            sw[k] = v
    return sw


def prepare(
    exp,
    p: Plan,
    data_root: str | Path | None = None,
    results: str | Path | None = None,
    fid_weights: str | None = None,
    allow_unverified: bool = False,
    nproc: int | None = None,
) -> tuple[str, Context, ResultStore]:
    """``(device, context, store)`` for executing ``p``: the device picked here (ray / slurm: on
    each worker, so the sweep's choice is passed on), ``--nproc`` checked against the experiment,
    the data root (``data_root``, else $PICARD_DATA, else the user cache) and the results store
    (``results``, else $PICARD_RESULTS, else ./results)."""
    remote = p.sweep.executor in ("ray", "slurm")
    dev = p.sweep.device if remote else env.pick_device(p.sweep.device)
    if nproc and nproc > 1:
        from . import distributed

        distributed.check(exp, p, nproc, dev)
    root = Path(results) if results else default_root()
    ctx = Context(dev, env.data_root(data_root), fid_weights, allow_unverified, results_root=root)
    return dev, ctx, ResultStore(root, exp.name)
