"""The Python API: what the CLI does, from a notebook or a script, with DataFrames back.

    import picard_cli as picard

    runs = picard.sweep("pign", filter="^PIGN-GCN/Cora$", seeds=2, overrides={"epochs": 20})
    table = picard.table("pign")                  # the paper's table, ours beside the paper's values
    x, stats = picard.solve(T, x0, f, a=0.5, max_iter=50)   # the fixed-point toolkit's front door

:func:`run` is ``picard run`` (the recipe cell closest to the config fields given), :func:`sweep` is
``picard sweep`` (every cell of a recipe, or those ``filter`` matches), :func:`plan` lists the runs
either would make, :func:`table` is ``picard report``'s table and :func:`load` reads a results file.
They call the library the CLI calls (:mod:`picard_cli.runner`, :mod:`picard_cli.launch`,
:mod:`picard_cli.report`), so a sweep resumes the same way (runs already in the results file are
skipped) and writes the same records. Errors are :class:`~picard_cli.errors.PicardError` (a
:class:`~picard_cli.errors.RecipeError` for a bad recipe, field or value), never ``sys.exit``.

Config overrides come as keyword arguments (``backbone="gat"``, the CLI's ``--backbone gat``) and/or
``overrides``: a mapping (dotted keys allowed: ``{"lr": 0.01, "sweep.seed_base": 10}``) or
``key=value`` strings as on the command line (``["lr=0.01"]``, values read as YAML).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import launch, registry, runner
from . import report as tables
from .errors import PicardError, RecipeError
from .recipes import parse_overrides
from .results import ResultStore, default_root, records_frame

Overrides = Mapping[str, object] | Sequence[str] | None


def run(
    experiment: str,
    *,
    recipe: str | Path | None = None,
    scale: str = "quick",
    seeds: int | None = None,
    steps: str | None = None,
    overrides: Overrides = None,
    device: str | None = None,
    executor: str | None = None,
    threads: int | None = None,
    data_root: str | Path | None = None,
    results: str | Path | None = None,
    fid_weights: str | None = None,
    allow_unverified_weights: bool = False,
    nproc: int | None = None,
    progress: bool = False,
    **config,
):
    """``picard run``: train the recipe cell closest to the config fields given (e.g.
    ``model="pign", backbone="gcn", dataset="cora"``; no match: the recipe's defaults), ``seeds``
    times (default: the scale preset's). Returns the records of its runs as a DataFrame (see
    :func:`sweep`)."""
    exp, p = _plan(experiment, "match", recipe, scale, seeds, None, steps, overrides, config, device, executor, threads)
    return _execute(exp, p, data_root, results, fid_weights, allow_unverified_weights, nproc, progress)


def sweep(
    experiment: str,
    *,
    recipe: str | Path | None = None,
    scale: str = "quick",
    seeds: int | None = None,
    filter: str | None = None,
    steps: str | None = None,
    overrides: Overrides = None,
    device: str | None = None,
    executor: str | None = None,
    threads: int | None = None,
    data_root: str | Path | None = None,
    results: str | Path | None = None,
    fid_weights: str | None = None,
    allow_unverified_weights: bool = False,
    nproc: int | None = None,
    progress: bool = False,
    **config,
):
    """``picard sweep``: every cell of ``recipe`` (default: the experiment's) whose name ``filter``
    matches (a case-insensitive regular expression; a substring works), ``seeds`` runs each.

    Runs already in ``<results>/<experiment>.jsonl`` are skipped, new ones appended. Returns the
    records of the planned runs as a DataFrame, one row per run: ``cell``, ``seed``, ``key``,
    ``status`` (ok / diverged), ``metrics.<name>``, ``config.<field>`` and the provenance
    (``wall_s``, ``device``, ``git_sha``, ...): the columns of :func:`load`. Runs that failed on a
    ray / slurm executor after their retries have no row; a warning names them. ``progress=True``
    shows the CLI's progress on stderr (bars on a terminal or in a notebook, else a line per event);
    the default is quiet. ``data_root`` / ``results`` / ``threads``: as ``--data-root`` /
    ``--results`` / ``--threads`` (``threads`` sets torch's threads in this process)."""
    exp, p = _plan(experiment, "all", recipe, scale, seeds, filter, steps, overrides, config, device, executor, threads)
    return _execute(exp, p, data_root, results, fid_weights, allow_unverified_weights, nproc, progress)


def plan(
    experiment: str,
    *,
    cells: str = "all",
    recipe: str | Path | None = None,
    scale: str = "quick",
    seeds: int | None = None,
    filter: str | None = None,
    steps: str | None = None,
    overrides: Overrides = None,
    results: str | Path | None = None,
    **config,
):
    """The runs :func:`sweep` (``cells="all"``) or :func:`run` (``cells="match"``) would make with the
    same arguments, training nothing: a DataFrame with one row per run (``cell``, ``seed``, ``key``,
    ``cell_key``, ``recorded``: already in the results file, so a sweep skips it, and ``config.<field>``)."""
    if cells not in ("all", "match"):
        raise PicardError(f"cells must be 'all' (sweep) or 'match' (run), got {cells!r}")
    exp, p = _plan(experiment, cells, recipe, scale, seeds, filter, steps, overrides, config, None, None, None)
    done = ResultStore(Path(results) if results else default_root(), exp.name).done_keys()
    rows = [
        {"cell": r.cell, "seed": r.seed, "key": r.key, "cell_key": r.cell_key, "recorded": r.key in done}
        | {"config": r.config}
        for r in p.runs
    ]
    return records_frame(rows)


def table(
    experiment: str, *, results: str | Path | None = None, protocol: str | None = None, select_on: str | None = None
):
    """``picard report``'s table of one experiment as a DataFrame: one row per (model, dataset) with
    ours (``ours_mean``, ``ours_std``, ``n``, ``diverged``) beside the paper's (``paper_mean``,
    ``paper_std``); the frame ``picard report`` writes as ``<experiment>_table_<protocol>.csv``.
    ``protocol``: ``last`` or ``best-val`` (default: the paper's); ``select_on``: ``val`` (default) or
    ``test``, for grids with several configs per cell."""
    exp = registry.get(experiment)
    store = ResultStore(Path(results) if results else default_root(), exp.name)
    records = store.records()
    if not records:
        raise PicardError(f"no results for {experiment!r} in {store.path}")
    if select_on not in (None, "val", "test"):
        raise PicardError(f"select_on must be val or test, got {select_on!r}")
    return tables.to_frame(tables.build(exp, records, protocol, select_on))


def load(experiment: str, *, results: str | Path | None = None, include_failed: bool = False):
    """Every record of ``<results>/<experiment>.jsonl`` as a DataFrame (the columns of :func:`sweep`);
    failed runs only with ``include_failed``."""
    exp = registry.get(experiment)
    store = ResultStore(Path(results) if results else default_root(), exp.name)
    return records_frame(store.records(include_failed=include_failed))


# ----------------------------------------------------------------------------- shared steps
def _plan(experiment, cells, recipe, scale, seeds, filter_, steps, overrides, config, device, executor, threads):
    """The experiment and the plan of a call, as ``picard run`` / ``picard sweep`` resolve them."""
    recipe = str(recipe) if recipe is not None else None
    exp = registry.get(registry.for_recipe(experiment, recipe))
    ov = _overrides(overrides, config)
    sw = launch.sweep_fields(ov, {"seeds": seeds, "device": device, "executor": executor, "threads": threads})
    axis = runner.steps_axis(exp, steps)
    return exp, runner.plan(exp, recipe, scale, ov, sw, cells=cells, filter_=filter_, axis=axis)


def _execute(exp, p, data_root, results, fid_weights, allow_unverified, nproc, progress):
    """Run what the results file lacks and return the planned runs' records as a DataFrame."""
    if nproc is not None and nproc < 1:
        raise RecipeError(f"nproc must be >= 1, got {nproc}")
    _dev, ctx, store = launch.prepare(exp, p, data_root, results, fid_weights, allow_unverified, nproc)
    if progress:
        from rich.console import Console

        from .progress import SweepProgress, headline_metric

        with SweepProgress(Console(stderr=True), headline_metric(exp)) as prog:
            records = runner.execute(exp, p, store, ctx, prog, nproc=nproc or 1)
    else:
        records = runner.execute(exp, p, store, ctx, None, nproc=nproc or 1)
    failed = store.failed({r.key for r in p.runs})
    if failed:
        warnings.warn(
            f"{len(failed)} run(s) failed after their retries (recorded with status failed; call again to "
            f"retry them), e.g. {failed[0]['cell']} seed {failed[0]['seed']}: {failed[0]['error']}",
            stacklevel=3,
        )
    return records_frame(records)


def _overrides(overrides: Overrides, config: dict) -> dict:
    """``overrides`` (a mapping with dotted keys, or key=value strings) and the keyword config fields
    -> the nested dict :func:`picard_cli.runner.plan` takes."""
    if overrides is None:
        out: dict = {}
    elif isinstance(overrides, str):
        raise RecipeError(f"overrides={overrides!r}: give a mapping or a list of key=value strings")
    elif isinstance(overrides, Mapping):
        out = _nest(overrides.items())
    else:
        out = parse_overrides([str(o) for o in overrides])
    both = sorted(set(out) & set(config))
    if both:
        raise RecipeError(f"{both[0]!r} is given both in overrides and as a keyword argument")
    return out | _nest(config.items())


def _nest(items) -> dict:
    """``[("lr", 0.01), ("sweep.seeds", 3)]`` -> ``{"lr": 0.01, "sweep": {"seeds": 3}}`` (values copied)."""
    out: dict = {}
    for key, value in items:
        if not isinstance(key, str) or not key.strip():
            raise RecipeError(f"override key {key!r}: expected a field name (dotted for nested fields)")
        node, parts = out, key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeError(f"override {key!r}: {part!r} is set twice")
        if parts[-1] in node:
            raise RecipeError(f"override {key!r} is set twice")
        node[parts[-1]] = copy.deepcopy(value)
    return out
