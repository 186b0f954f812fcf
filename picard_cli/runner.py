"""Recipe -> runs -> executor -> results.

A sweep expands into independent runs (cell x seed), each fully described by its
resolved config. An executor turns runs into records: ``InProcessExecutor`` one
run at a time; ``BatchedExecutor`` hands the experiment groups of seeds of one
cell (stacked into one model where the experiment supports it). Both call the
same ``experiment.run_group``; the ray and slurm executors (``picard_cli/executors``)
ship the same groups elsewhere and return their outcomes, and this process writes
the records. Records are appended group by group, so a killed sweep loses at most
the groups in flight and a re-run skips what is done.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from . import env
from .errors import RecipeError
from .recipes import GridPoint, Sweep, apply, as_config, config_hash, expand_grid, identity, read_recipe, to_dict
from .leases import Leases
from .records import Context, Plan, Run, make_records, run_dir  # noqa: F401 - the runner's public names
from .results import ResultStore, default_root

REPO = Path(__file__).resolve().parent.parent


def default_recipe(exp) -> Path:
    return REPO / "recipes" / (exp.recipe_dir or exp.name) / exp.default_recipe


def _preset_cells(preset: dict, scale: str, where: str) -> "re.Pattern":
    """The cells a scale preset runs: its ``cells`` regular expression (default: all of them)."""
    try:
        return re.compile(preset.get("cells") or "", re.IGNORECASE)
    except re.error as e:
        raise RecipeError(f"{where}scales.{scale}.cells is not a valid regular expression ({e})") from None


def plan(
    exp,
    recipe_path: str | None,
    scale: str,
    overrides: dict,
    sweep_overrides: dict,
    cells: str = "all",
    filter_: str | None = None,
    axis: tuple[str, list] | None = None,
) -> Plan:
    """Resolve a recipe into runs.

    Layers, later wins: typed defaults < recipe ``defaults`` < the cell < the
    scale preset's ``config`` < command-line overrides. ``cells='all'`` takes
    every recipe cell (``filter_``, a case-insensitive regular expression, keeps the names
    it matches anywhere: a plain substring works as one); ``cells='match'``
    takes the one cell the experiment finds closest to the overrides (``picard
    run``), or none (defaults) if no cell matches.

    Comma lists in ``overrides`` (``lr=0.01,0.02``; fields of scalar type, see
    :func:`recipes.multiplies`) make a grid: every chosen cell once per combination, named
    ``<cell>/lr=0.01``; cells that then coincide run once.

    ``axis=(field, values)`` (``--steps``): every chosen cell is multiplied by the values of
    one config field, last of all; cells that then coincide (they differed only in that field)
    run once. Names get the suffix ``<label>=<value>`` (label: the experiment's ``axis_label``,
    else the field), replacing a ``<label>=...`` part of the cell's own name.
    """
    path = Path(recipe_path) if recipe_path else default_recipe(exp)
    recipe = read_recipe(path, exp.name) if path.exists() or recipe_path else {"_path": None}
    where = f"{path}: " if recipe.get("_path") else ""
    presets = recipe.get("scales") or {}
    if scale not in presets and presets:
        raise RecipeError(f"{where}no scale {scale!r} (this recipe has: {', '.join(presets)})")
    preset = presets.get(scale, {})

    sweep = apply(Sweep(), recipe.get("sweep"), where, prefix="sweep.")
    sweep = apply(sweep, preset.get("sweep"), where, prefix=f"scales.{scale}.sweep.")
    sweep = apply(sweep, sweep_overrides, "command line: ", prefix="sweep.")

    base = apply(exp.config_cls(), recipe.get("defaults"), where, prefix="defaults.")
    grid = expand_grid(exp.config_cls, overrides)  # comma lists (lr=0.01,0.02): one point per combination
    for point in grid:  # validate the overrides once against the bare defaults so errors name the flag
        apply(base, point.overrides, "command line: ")
    resolved = {
        name: apply(
            apply(base, delta, where, prefix=f"cells.{name}."),
            preset.get("config"),
            where,
            prefix=f"scales.{scale}.config.",
        )
        for name, delta in (recipe.get("cells") or {}).items()
    }
    chosen = _grid_cells(grid, functools.partial(_choose, exp, base, resolved, preset, scale, where, cells, filter_))
    if axis is not None:
        chosen = _multiply(exp, chosen, axis, overrides)
    return _runs(exp, recipe, sweep, scale, chosen)


def _choose(exp, base, resolved: dict, preset: dict, scale: str, where: str, cells: str, filter_, overrides: dict):
    """The cells of one set of overrides: ``picard run``'s closest cell, or ``picard sweep``'s filtered ones."""
    if cells == "match":
        return _match_cell(exp, base, resolved, preset, overrides)
    return _filter_cells(resolved, preset, scale, where, filter_, overrides)


def _grid_cells(grid: list[GridPoint], choose) -> dict:
    """The cells of every grid point (``choose(overrides)``: name -> config), each named
    ``<cell>/<key>=<value>...`` (replacing ``<key>=...`` parts of the cell's own name); cells that
    coincide (the same config but for the seed) run once, under the first name. Without comma lists:
    ``choose`` of the overrides as given, names unchanged."""
    if len(grid) == 1 and not grid[0].labels:
        return choose(grid[0].overrides)
    by_cell: dict[str, list] = {}  # recipe cell -> its grid points, so a cell's variants sit together
    for point in grid:
        for cell, cfg in choose(point.overrides).items():
            by_cell.setdefault(cell, []).append((point, cfg))
    out: dict = {}
    seen: set[str] = set()
    for cell, variants in by_cell.items():
        for point, cfg in variants:
            h = config_hash(identity(cfg), ("seed",))
            if h in seen:
                continue
            seen.add(h)
            stem = [p for p in cell.split("/") if not any(p.startswith(f"{k}=") for k in point.keys)]
            name = "/".join([*stem, *point.labels])
            out[name if name not in out else "/".join([cell, *point.labels])] = cfg
    return out


def _match_cell(exp, base, resolved: dict, preset: dict, overrides: dict) -> dict:
    """``picard run``: the one recipe cell closest to the flags (``exp.match``), else the defaults."""
    wanted = apply(base, overrides, "command line: ")
    scored = [(exp.match(cfg, wanted, overrides), name) for name, cfg in resolved.items()]
    scored = [(s, n) for s, n in scored if s is not None]
    if scored:
        name = min(scored)[1]
        return {name: apply(resolved[name], overrides, "command line: ")}
    return {"custom": apply(apply(base, preset.get("config")), overrides, "command line: ")}


def _filter_cells(resolved: dict, preset: dict, scale: str, where: str, filter_: str | None, overrides: dict) -> dict:
    """``picard sweep``: the cells whose names match ``--filter`` and the scale preset's ``cells``."""
    try:
        pattern = re.compile(filter_ or "", re.IGNORECASE)
    except re.error as e:
        raise RecipeError(f"--filter {filter_!r} is not a valid regular expression ({e})") from None
    only = _preset_cells(preset, scale, where)  # a preset may run a subset of the table (laptop scale)
    chosen = {
        n: apply(c, overrides, "command line: ") for n, c in resolved.items() if pattern.search(n) and only.search(n)
    }
    if not chosen and only.pattern:
        raise RecipeError(
            f"{where}no cell of scale {scale!r} (cells matching {only.pattern!r}) matches --filter {filter_!r}"
        )
    if not chosen:
        raise RecipeError(f"{where}no cell matches --filter {filter_!r} (cells: {', '.join(resolved)})")
    return chosen


def _runs(exp, recipe: dict, sweep: Sweep, scale: str, chosen: dict) -> Plan:
    """The plan: ``sweep.seeds`` runs of every chosen cell, each named by the hash of its identity."""
    shown = _display_path(recipe.get("_path"))
    digest = hashlib.sha256(Path(recipe["_path"]).read_bytes()).hexdigest()[:16] if recipe.get("_path") else None
    out = Plan(exp.name, shown, sweep, digest, scale=scale)
    for name, cfg in chosen.items():
        for i in range(sweep.seeds):
            c = dataclasses.replace(cfg, seed=sweep.seed_base + i)
            ident = identity(c)
            out.runs.append(Run(exp.name, name, c.seed, to_dict(c), config_hash(ident), config_hash(ident, ("seed",))))
    return out


def _multiply(exp, chosen: dict, axis: tuple[str, list], overrides: dict) -> dict:
    name, values = axis
    label = exp.axis_label or name
    if name in overrides:
        raise RecipeError(f"command line: {name}= and --steps both set {name}; give one of them")
    out: dict = {}
    seen: set[str] = set()
    for cell, cfg in chosen.items():
        stem = "/".join(p for p in cell.split("/") if not p.startswith(f"{label}="))
        for v in values:
            c = apply(cfg, {name: v}, "--steps: ")
            h = config_hash(identity(c), ("seed",))
            if h in seen:
                continue
            seen.add(h)
            new = f"{stem}/{label}={v}" if stem else f"{label}={v}"
            out[new if new not in out else f"{cell}/{label}={v}"] = c
    return out


def steps_axis(exp, steps: str | None) -> tuple[str, list[int]] | None:
    """``--steps`` as the ``axis`` of :func:`plan`: (the experiment's ``steps_field``, the values), or None."""
    if steps is None:
        return None
    field_ = exp.steps_field
    if field_ is None:
        raise RecipeError(f"--steps: experiment {exp.name!r} has no steps axis")
    values = parse_range(steps, "--steps")
    rng = next((f.metadata.get("range") for f in dataclasses.fields(exp.config_cls) if f.name == field_), None)
    if rng is not None and not rng[0] <= values[0] <= values[-1] <= rng[1]:
        raise RecipeError(
            f"--steps {steps!r}: {field_} must lie in [{rng[0]}, {rng[1]}]; got {values[0]} .. {values[-1]}"
        )
    return field_, values


MAX_AXIS_VALUES = 1000  # --steps values per sweep: each is a model trained per cell and seed


def parse_range(spec: str, flag: str = "--steps", default_step: int = 100) -> list[int]:
    """``'100:1000'`` -> 100, 200, ..., 1000 (start:stop[:step], stop included, step default
    ``default_step``); ``'400'`` -> [400]. Bad ranges raise one-line RecipeErrors."""
    usage = "expected start:stop[:step] or one value, integers with 1 <= start <= stop and step >= 1 (e.g. 100:1000)"
    parts = str(spec).strip().split(":")
    if len(parts) > 3:
        raise RecipeError(f"{flag} {spec!r}: {usage}")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise RecipeError(f"{flag} {spec!r}: not a number; {usage}") from None
    start, stop = nums[0], nums[1] if len(nums) > 1 else nums[0]
    step = nums[2] if len(nums) > 2 else default_step
    if start < 1:
        raise RecipeError(f"{flag} {spec!r}: start must be >= 1, got {start}; {usage}")
    if stop < start:
        raise RecipeError(f"{flag} {spec!r}: stop {stop} is below start {start}; {usage}")
    if step < 1:
        raise RecipeError(f"{flag} {spec!r}: step must be >= 1, got {step}; {usage}")
    count = (stop - start) // step + 1
    if count > MAX_AXIS_VALUES:
        raise RecipeError(
            f"{flag} {spec!r}: {count} values, at most {MAX_AXIS_VALUES} (each trains a model per "
            f"cell and seed); use a larger step"
        )
    return list(range(start, stop + 1, step))


def _display_path(path: str | None) -> str | None:
    """Recipe path relative to the repository when inside it (stable across clones)."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(Path(path).resolve())


# ----------------------------------------------------------------------------- executors
def chunks(cell_runs: list[Run], size: int) -> Iterable[list[Run]]:
    """Groups of at most ``size`` runs of one cell, cut from its full seed list so that a
    resumed sweep re-forms the same groups."""
    cell_runs = sorted(cell_runs, key=lambda r: r.seed)
    for i in range(0, len(cell_runs), size):
        yield cell_runs[i : i + size]


class InProcessExecutor:
    name = "inprocess"

    def __init__(self, exp):
        self.exp = exp

    def batches(self, runs, sweep):
        return ([r] for r in sorted(runs, key=lambda r: (r.cell, r.seed)))


class BatchedExecutor:
    name = "batched"

    def __init__(self, exp):
        self.exp = exp

    def batches(self, runs, sweep):
        """Groups of at most ``group_size`` seeds, fewer where the experiment says a
        seed needs much memory (``seed_bytes``; budget ``sweep.group_memory_gb``)."""
        by_cell: dict[str, list[Run]] = {}
        for r in runs:
            by_cell.setdefault(r.cell_key, []).append(r)
        for cell_runs in by_cell.values():
            size = sweep.group_size
            per_seed = self.exp.seed_bytes(cell_runs[0].config)
            if per_seed:
                size = max(1, min(size, int(sweep.group_memory_gb * 2**30 // per_seed)))
            yield from chunks(cell_runs, size)


EXECUTORS = {"inprocess": InProcessExecutor, "batched": BatchedExecutor}


def execute(exp, p: Plan, store: ResultStore, ctx: Context, progress=None, nproc: int = 1) -> list[dict]:
    """Run what is not yet in ``store``; return the records of every planned run.

    Before any training: the results location takes a write (``store.probe``), the data is
    described and checked (``check_data``), and checkpoints that runs will resume from load
    (``check_checkpoints``). Each group is claimed (``picard_cli/leases.py``) before it trains, so a
    second driver of the same sweep trains other groups, then waits for the ones held elsewhere.
    ``sweep.executor`` ray / slurm ship the same groups to other processes or machines
    (``picard_cli/executors``); ``nproc`` > 1 trains each run data-parallel over that many
    processes with torchrun (``picard_cli/distributed.py``). Either way this process alone
    appends to the results file.
    """
    store.probe()
    recorded = store.records()
    done = {r["key"] for r in recorded}
    env.tune_allocator()
    remote = p.sweep.executor in ("ray", "slurm")
    if not remote:  # ray / slurm: task_cpus sets each worker's threads
        env.set_threads(env.resolve_threads(p.sweep.threads))
    # Grouping: batched (seeds of a cell stacked) unless the experiment cannot or inprocess is asked for;
    # ray / slurm ship the batched groups, so their records equal the in-process batched ones.
    executor = EXECUTORS["inprocess" if not exp.batchable or p.sweep.executor == "inprocess" else "batched"](exp)
    batches = form_batches(executor, p, recorded)
    todo = [r for b in batches for r in b if r.key not in done]
    check_data(exp, p, todo, ctx.data_root)
    check_checkpoints(exp, batches, ctx)
    if progress:
        progress.start(total_runs=len(todo), skipped=len(p.runs) - len(todo))
    drv = Driver(
        exp,
        p,
        store,
        ctx,
        progress,
        executor.name,
        nproc,
        Leases(store.path.parent / f"{exp.name}-leases"),
        frozenset(done),
    )
    try:
        if remote and batches:
            drv.remote(batches)
        else:
            drv.wait_for([b for b in batches if not drv.claim_and_run(b)])
    finally:
        drv.leases.release_all()
    keys = {r.key for r in p.runs}
    return [r for r in store.records() if r.get("key") in keys]


def form_batches(executor, p: Plan, recorded: list[dict]) -> list[list[Run]]:
    """The groups that still have runs to record. A run whose seeds were trained together (the
    records' ``executor.group_seeds``) re-runs with its whole original group, so a sweep resumed
    after a kill or a torn write equals an uninterrupted one; only the missing records are written."""
    done = {r["key"] for r in recorded}
    stored: dict[tuple, tuple] = {}
    for rec in recorded:
        seeds = (rec.get("executor") or {}).get("group_seeds") or []
        for s in seeds if len(seeds) > 1 else []:
            stored[(rec.get("cell_key"), s)] = tuple(seeds)
    planned = {(r.cell_key, r.seed): r for r in p.runs}
    out, taken = [], set()
    for r in sorted((r for r in p.runs if r.key not in done), key=lambda r: (r.cell, r.seed)):
        group = stored.get((r.cell_key, r.seed))
        if (r.cell_key, r.seed) in taken or not group or not all((r.cell_key, s) in planned for s in group):
            continue
        out.append([planned[(r.cell_key, s)] for s in group])
        taken |= {(r.cell_key, s) for s in group}
    rest = [r for r in p.runs if r.key not in done and (r.cell_key, r.seed) not in taken]
    return out + [b for b in executor.batches(rest, p.sweep) if b]


def check_checkpoints(exp, batches: list[list[Run]], ctx: Context) -> None:
    """Before any training: every checkpoint a run will resume from loads and belongs to its config
    (else one line naming the file and how to start over)."""
    from . import checkpoint

    for batch in batches:
        rd = run_dir(ctx, exp, batch[0]) if len(batch) == 1 else None
        path = rd / checkpoint.FILENAME if rd is not None else None
        if path is not None and path.exists():
            ck = checkpoint.load(path)
            if ck is not None:
                checkpoint.check_config(ck, batch[0].config, path, exp.config_cls)


@dataclass
class Driver:
    """Trains a sweep's groups in this process, claiming each first (``picard_cli/leases.py``)."""

    exp: object
    p: Plan
    store: ResultStore
    ctx: Context
    progress: object
    name: str
    nproc: int
    leases: Leases
    initial: frozenset = frozenset()  # keys recorded when the sweep started

    def claim_and_run(self, batch: list[Run]) -> bool:
        """Claim ``batch`` and train it unless recorded meanwhile; False when another driver holds it."""
        keys = [r.key for r in batch]
        if self.leases.claim(keys) is not None:
            return False
        try:
            done = self.store.done_keys()  # another driver may have recorded them since this one started
            if all(k in done for k in keys):
                self._recorded_elsewhere(batch)
            else:
                _run_here(self.exp, self.p, batch, self.store, self.ctx, self.progress, self.name, self.nproc, done)
        finally:
            self.leases.release(keys)
        return True

    def _recorded_elsewhere(self, batch: list[Run]) -> None:
        if self.progress:
            self.progress.recorded_elsewhere(sum(1 for r in batch if r.key not in self.initial))

    def wait_for(self, held: list[list[Run]]) -> None:
        """Wait for the groups another driver trains: done when recorded; trained here if that driver
        lets go without recording them (it died or was stopped)."""
        from .leases import lease_s

        if held and self.progress:
            who = self.leases.holder(held[0][0].key) or {}
            self.progress.note(
                f"waiting for {sum(len(b) for b in held)} run(s) another driver is training (pid "
                f"{who.get('pid', '?')} on {who.get('host', '?')}); Ctrl-C stops waiting"
            )
        while held:
            done = self.store.done_keys()
            for b in [b for b in held if all(r.key in done for r in b)]:
                held.remove(b)
                self._recorded_elsewhere(b)
            held = [b for b in held if not self.claim_and_run(b)]
            if held:
                time.sleep(min(5.0, lease_s() / 4))

    def remote(self, batches: list[list[Run]]) -> None:
        """ray / slurm: claim every group up front and ship the claimed ones; the held ones stay with
        the driver that holds them."""
        from . import executors

        ctx = self.ctx
        ctx.results_root = Path(ctx.results_root or default_root()).resolve()  # workers may have another cwd
        mine = [b for b in batches if self.leases.claim([r.key for r in b]) is None]
        if len(mine) < len(batches) and self.progress:
            self.progress.note(
                f"{sum(map(len, batches)) - sum(map(len, mine))} run(s) are being trained by another "
                f"driver; not shipped from here"
            )
        if mine:
            be = executors.backend(self.exp, self.p.sweep, ctx.results_root)
            executors.drive(be, self.exp, self.p, mine, self.store, ctx, self.progress, skip=self.store.done_keys())


def check_data(exp, p: Plan, runs: list[Run], data_root: Path) -> None:
    """Before any training: describe each cell's data (``exp.data_facts``; experiments without one,
    e.g. Planetoid, check their data when they load it) into ``p.data``, and refuse a paper-scale
    run whose data is not the paper's unless ``sweep.allow_partial_data``."""
    from .errors import DataError

    for run in runs:
        if run.cell_key in p.data:
            continue
        facts = exp.data_facts(run.config, data_root)
        if facts is None:  # (Planetoid: checked when it loads)
            continue
        if p.scale == "paper" and not facts.is_paper and not p.sweep.allow_partial_data:
            from .datacheck import refusal

            raise DataError(refusal(facts, run.cell))
        p.data[run.cell_key] = facts.as_record()


def _run_here(
    exp, p: Plan, batch: list[Run], store: ResultStore, ctx: Context, progress, name: str, nproc: int, done: set[str]
) -> None:
    """Run one group in this process (or under torchrun with ``nproc`` > 1) and append the records of
    its runs not in ``done`` (a re-formed group re-trains seeds already recorded; they stay as they are)."""
    if progress:
        progress.begin_group(batch[0].cell, len(batch), sum(1 for r in batch if r.key not in done))
        ctx.on_epoch, ctx.on_phase = progress.epoch, progress.phase
    ctx.run_dir = run_dir(ctx, exp, batch[0]) if len(batch) == 1 else None
    if ctx.tracker is not None:  # --log: open the group's runs; the training loops send their epochs
        ctx.log = ctx.tracker.begin(batch, done)
    t0 = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if nproc > 1:  # one run at a time (ddpm): data parallel over nproc processes
        from . import distributed

        outcomes = [distributed.launch(exp, r, ctx, nproc, progress) for r in batch]
        info = {"name": "torchrun", "nproc": nproc}
    else:
        outcomes = exp.run_group([as_config(exp.config_cls, r.config) for r in batch], ctx)  # typed, not dicts
        info = {"name": name, "threads": _torch_threads()}  # float results depend on the thread count
    payload = {
        "outcomes": outcomes,
        "started": started,
        "wall": time.perf_counter() - t0,
        "device": ctx.device,
        "device_name": env.device_name(ctx.device),
    }
    new = [rec for rec in make_records(exp, p, batch, payload=payload, executor=info) if rec["key"] not in done]
    store.append(new)
    if ctx.tracker is not None:
        ctx.log = Context.log
        ctx.tracker.finish(new, batch)
    if progress:
        progress.end_group(new)


def _torch_threads() -> int:
    """torch's intra-op threads here: CPU reductions split by thread, so the last bits of a run's
    numbers depend on it (records are bit-identical across executors at the same thread count)."""
    import torch

    return torch.get_num_threads()
