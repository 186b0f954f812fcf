"""What a run is, what an experiment gets, and what a run leaves: the leaf types of the runner.

``Run`` (one cell x seed, its resolved config and key), ``Plan`` (a sweep's runs), ``Context`` (what
an experiment receives besides its configs) and the records written for a group of runs
(``make_records``). The runner, the executors and the torchrun workers all import these from here,
so imports run one way: runner -> executors -> records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from . import env
from .experiment import Outcome
from .recipes import Sweep


@dataclass
class Run:
    experiment: str
    cell: str
    seed: int
    config: dict  # resolved experiment config, seed included
    key: str  # hash of config: the run's identity (resume key)
    cell_key: str  # hash of config without the seed: the cell's identity


@dataclass
class Plan:
    experiment: str
    recipe: str | None
    sweep: Sweep
    recipe_sha256: str | None = None
    runs: list[Run] = field(default_factory=list)
    scale: str = "quick"
    data: dict[str, dict] = field(default_factory=dict)  # cell_key -> DataFacts.as_record() (check_data)


@dataclass
class Context:
    """What an experiment gets besides its configs."""

    device: str
    data_root: Path
    fid_weights: str | None = None  # --fid-weights (else $PICARD_FID_WEIGHTS; see metrics/fid/)
    allow_unverified_weights: bool = False
    results_root: Path | None = None  # where results/<experiment>.jsonl lives (run folders go beside it)
    run_dir: Path | None = None  # per-run folder for checkpoints and artifacts; set by execute() per run
    on_epoch: Callable[..., None] = lambda done, total, info="": None  # (done, total, info)
    on_phase: Callable[[str], None] = lambda phase: None  # "training", "evaluation", "sampling", "FID ..."
    # Live metrics for --log (picard_cli/tracking.py): log(step, {name: number, or one number per seed of a
    # stacked group}), once per epoch; only reads the numbers. The runner sets it per group from ``tracker``.
    log: Callable[[int, dict], None] = lambda step, metrics: None
    tracker: Any = None  # tracking.Tracking of --log, or None; not shipped to ray / slurm workers


def run_dir(ctx: Context, exp, run: Run) -> Path | None:
    """``<results root>/<experiment>-runs/<run key>/``: a run's checkpoints and artifacts (the key is
    the hash of its config, so a re-run of the same run finds its folder)."""
    return None if ctx.results_root is None else Path(ctx.results_root) / f"{exp.name}-runs" / run.key


def make_records(
    exp, p: Plan, batch: list[Run], *, executor: dict, payload: dict | None = None, failure: BaseException | None = None
) -> list[dict]:
    """Records of one group: from ``payload`` (outcomes, started, wall, device, device_name) of a
    finished group, or ``status: failed`` with the error for a group whose task failed."""
    seeds = [b.seed for b in batch]
    if failure is not None:
        line, detail = describe_error(failure)
        failed = {"status": "failed", "metrics": {}, "error": line, "error_detail": detail}
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        payload = {"outcomes": [failed] * len(batch), "started": now, "wall": 0.0, "device": None, "device_name": None}
    return [_record(exp, p, r, o, payload, executor, seeds) for r, o in zip(batch, payload["outcomes"])]


def _record(exp, p: Plan, run: Run, outcome, payload: dict, executor: dict, group_seeds: list[int]) -> dict:
    """The record of one run from its :class:`Outcome` (or the outcome's dict form) and the provenance."""
    outcome = Outcome.of(outcome)
    wall = payload["wall"]
    rec = {
        "experiment": exp.name,
        "cell": run.cell,
        "seed": run.seed,
        "key": run.key,
        "cell_key": run.cell_key,
        "config": run.config,
        "recipe": p.recipe,
        "scale": p.scale,
        "recipe_sha256": p.recipe_sha256,
        "status": outcome.status,
        "data": p.data.get(run.cell_key),
        "metrics": outcome.metrics,
        "solver": outcome.solver,
        "extra": outcome.extra,
        "executor": {**executor, "group_seeds": group_seeds, "group_wall_s": round(wall, 3)},
        "wall_s": round(wall / len(group_seeds), 4),
        "started": payload["started"],
        "device": payload["device"],
        "device_name": payload["device_name"],
        "git_sha": env.git_sha(),
        "versions": env.versions(),
    }
    if outcome.status == "failed":
        rec |= {"error": outcome.error, "error_detail": outcome.error_detail}
    return rec


def describe_error(e: BaseException) -> tuple[str, str]:
    """(one line, longer detail) of a task failure. Ray wraps the task's exception (kept as
    ``cause``); submitit's FailedJobError carries the job's traceback as text (its last line wins)."""
    cause = getattr(e, "cause", None)
    inner = cause if isinstance(cause, BaseException) else e
    lines = str(inner).strip().splitlines()
    line = f"{type(inner).__name__}: {lines[0] if lines else ''}"
    starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback (most recent call last)")]
    if starts:  # the exception line: the first unindented line after the last traceback header
        tail = [ln for ln in lines[starts[-1] + 1 :] if ln.strip() and not ln[0].isspace()]
        line = tail[0] if tail else line
    return line[:500], str(e)[-4000:]
