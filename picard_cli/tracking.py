"""Experiment tracking (``--log tensorboard|wandb|mlflow``): each run's config, per-epoch metrics and
final metrics, sent to TensorBoard, Weights & Biases or MLflow, named by cell and seed and grouped by
sweep.

Tracking only reads: it changes no number, random draw or record. A :class:`Tracking` session (one per
``picard run`` / ``picard sweep``) opens one :class:`Tracker` per run and backend:

* live, while a group trains in this process: ``runner._run_here`` sets ``Context.log`` to
  :meth:`Tracking.begin`'s function, which the training loops call once per epoch (pign, the
  Navier-Stokes trainer ``ns_train.fit``). A stacked group trains several seeds at once: a value
  given as a vector of one number per seed goes to each seed's own run, a plain number to all;
* after a group's records are written (:meth:`Tracking.finish`, also called by the ray / slurm
  driver, whose workers do not log): the final metrics and the record's stored curves, each step a
  curve has that live logging did not send (all of them for experiments without live logging or
  runs trained on other machines; the missing epochs of a run resumed from a checkpoint).

The backends' libraries are imported only when asked for; a missing one is a one-line error.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from .errors import PicardError

BACKENDS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow-skinny"}  # name -> pip package
X_AXES = ("step", "epoch", "k")  # the x axis of a curve stored as {"step": [...], "loss": [...]}


def parse(values: list[str] | None) -> list[str]:
    """``--log`` values (repeated and/or comma lists) -> backend names, in order, each once."""
    names: list[str] = []
    for v in values or []:
        for name in (s.strip().lower() for s in str(v).split(",")):
            if name and name not in BACKENDS:
                raise PicardError(f"--log {name!r}: unknown tracker; choose from {', '.join(BACKENDS)}")
            if name and name not in names:
                names.append(name)
    return names


def _require(name: str):
    """The backend's library, imported now; a one-line error if it is not installed."""
    import importlib

    module = {"tensorboard": "torch.utils.tensorboard", "wandb": "wandb", "mlflow": "mlflow"}[name]
    try:
        if name == "tensorboard":
            importlib.import_module("tensorboard")
        return importlib.import_module(module)
    except ImportError:
        raise PicardError(
            f"--log {name} needs `pip install {BACKENDS[name]}` (or `pip install -e '.[track]'`)"
        ) from None


@dataclass
class Where:
    """Where a session's runs go: the experiment, the sweep group and the results root."""

    experiment: str
    group: str  # the sweep (recipe-scale) or, for `picard run` of one cell, the cell
    results_root: Path


class Tracker(Protocol):
    """One run in one backend."""

    def start_run(self, run, config: dict) -> None: ...

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None: ...

    def end_run(self, record: dict | None) -> None:
        """Final metrics from ``record`` (None: the run did not finish), then close the run."""


def safe(name: str) -> str:
    """A cell name as one path component (``GCN/Cora-50%`` -> ``GCN_Cora-50%``)."""
    return re.sub(r"[^A-Za-z0-9._=%+-]+", "_", name).strip("_") or "run"


def run_name(run) -> str:
    return f"{run.cell}/seed{run.seed}"


def final_metrics(record: dict | None) -> dict[str, float]:
    """``final/<metric>`` of a record's numeric metrics, and its wall time."""
    if not record:
        return {}
    out = {f"final/{k}": float(v) for k, v in (record.get("metrics") or {}).items() if _is_number(v)}
    if _is_number(record.get("wall_s")):
        out["final/wall_s"] = float(record["wall_s"])
    return out


def flat(config: dict, prefix: str = "") -> dict[str, Any]:
    """A nested config as one level of dotted keys; values that are not scalars as JSON text."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out |= flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, (bool, int, float, str)) else json.dumps(v)
    return out


def _is_real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return _is_real(v) and math.isfinite(v)


def _status(record: dict | None) -> str:
    return "killed" if record is None else "ok" if record.get("status") == "ok" else "failed"


# ----------------------------------------------------------------------------- backends
class TensorBoardTracker:
    """``<results root>/<experiment>-tb/<group>/<cell>-seed<k>/``: scalars per step, the config as
    text and as hyperparameters (with the final metrics) in TensorBoard's HParams tab."""

    def __init__(self, where: Where):
        self.where, self.writer = where, None

    def start_run(self, run, config: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder = self.where.results_root / f"{self.where.experiment}-tb" / safe(self.where.group)
        self.config = flat(config)
        self.writer = SummaryWriter(str(folder / f"{safe(run.cell)}-seed{run.seed}"))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=1, default=str) + "\n```", 0)

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)

    def end_run(self, record: dict | None) -> None:
        from torch.utils.tensorboard.summary import hparams

        final = final_metrics(record)
        for k, v in final.items():
            self.writer.add_scalar(k, v, 0)
        for summary in hparams(self.config, final or {"final/none": 0.0}):  # the HParams tab's three summaries
            self.writer.file_writer.add_summary(summary)
        self.writer.add_text("status", _status(record), 0)
        self.writer.close()


class WandbTracker:
    """W&B: project ``picard-<experiment>``, group = the sweep, name = cell/seed; offline (a folder under
    ``<results root>/wandb``) when ``WANDB_MODE=offline``."""

    def __init__(self, where: Where):
        self.where, self.run = where, None

    def start_run(self, run, config: dict) -> None:
        import wandb

        self.run = wandb.init(
            project=f"picard-{self.where.experiment}",
            group=self.where.group,
            name=run_name(run),
            config=config,
            tags=[f"seed{run.seed}"],
            dir=str(self.where.results_root),
            reinit="create_new",  # a stacked group's seeds are open at once
            settings=wandb.Settings(silent=True, console="off"),  # leave picard's own terminal output alone
        )

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log(metrics, step=step)

    def end_run(self, record: dict | None) -> None:
        self.run.summary.update(final_metrics(record) | {"status": _status(record)})
        self.run.finish(exit_code=0 if _status(record) == "ok" else 1)


class MlflowTracker:
    """MLflow: experiment ``picard-<experiment>``, run name cell/seed, the config as params; tracking
    URI ``$MLFLOW_TRACKING_URI``, else a file store ``<results root>/mlruns``."""

    def __init__(self, where: Where):
        self.where, self.run_id = where, None

    def start_run(self, run, config: dict) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=mlflow_uri(self.where.results_root))
        name = f"picard-{self.where.experiment}"
        found = self.client.get_experiment_by_name(name)
        exp_id = found.experiment_id if found else self.client.create_experiment(name)
        tags = {"picard.group": self.where.group, "picard.cell": run.cell, "picard.seed": str(run.seed)}
        self.run_id = self.client.create_run(
            exp_id, run_name=run_name(run), tags=tags | {"picard.key": run.key}
        ).info.run_id
        params = [Param(k, str(v)[:6000]) for k, v in flat(config).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def end_run(self, record: dict | None) -> None:
        final = final_metrics(record)
        if final:
            self.log_metrics(0, final)
        state = {"ok": "FINISHED", "failed": "FAILED", "killed": "KILLED"}[_status(record)]
        self.client.set_terminated(self.run_id, state)


def mlflow_uri(results_root: Path) -> str:
    """``$MLFLOW_TRACKING_URI``, else the file store ``<results root>/mlruns`` (MLflow 3 keeps file
    stores in maintenance mode behind ``MLFLOW_ALLOW_FILE_STORE``, set here for that default only)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return (Path(results_root).resolve() / "mlruns").as_uri()


TRACKERS: dict[str, Callable[[Where], Tracker]] = {
    "tensorboard": TensorBoardTracker,
    "wandb": WandbTracker,
    "mlflow": MlflowTracker,
}


# ----------------------------------------------------------------------------- the session
@dataclass
class _Open:
    """A run open in every backend, and the steps each metric has had (so record curves fill in only
    what live logging did not send)."""

    trackers: list
    sent: dict[str, set] = field(default_factory=dict)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        metrics = {k: v for k, v in metrics.items() if _is_number(v) and step not in self.sent.get(k, ())}
        if not metrics:
            return
        for k in metrics:
            self.sent.setdefault(k, set()).add(step)
        for t in self.trackers:
            t.log_metrics(step, metrics)


class Tracking:
    """The trackers of one command: opens, feeds and closes one run per (cell, seed) in each backend."""

    def __init__(self, names: list[str], where: Where):
        for name in names:
            _require(name)  # before any training: a missing library fails at once
        self.names, self.where = names, where
        self.open: dict[str, _Open] = {}

    def _start(self, run) -> _Open:
        if run.key not in self.open:
            trackers = [TRACKERS[n](self.where) for n in self.names]
            for name, t in zip(self.names, trackers):
                try:
                    t.start_run(run, run.config)
                except Exception as e:  # noqa: BLE001 - the backend's own error, as one line
                    line = (str(e).strip().splitlines() or [""])[0]
                    raise PicardError(f"--log {name}: {type(e).__name__}: {line}") from e
            self.open[run.key] = _Open(trackers)
        return self.open[run.key]

    def begin(self, batch: list, skip: set | frozenset = frozenset()) -> Callable[[int, dict], None]:
        """Open the runs of a group about to train (but those in ``skip``: recorded already) and return
        its ``Context.log``: ``log(step, {name: number or one number per seed})``."""
        runs = [(i, self._start(r)) for i, r in enumerate(batch) if r.key not in skip]
        if not runs:
            return lambda step, metrics: None

        def log(step: int, metrics: dict) -> None:
            per = {k: v.tolist() if hasattr(v, "tolist") else v for k, v in metrics.items()}
            for i, o in runs:
                o.log(step, {k: _float(v[i] if isinstance(v, (list, tuple)) else v) for k, v in per.items()})

        return log

    def finish(self, records: list[dict], runs: list) -> None:
        """After ``records`` were written: each run's curves not sent live, its final metrics, closed."""
        by_key = {r.key: r for r in runs}
        for rec in records:
            if rec.get("key") not in by_key:
                continue
            o = self._start(by_key[rec["key"]])
            for step, metrics in curves(rec.get("extra") or {}, live=set(o.sent)):
                o.log(step, metrics)
            for t in o.trackers:
                t.end_run(rec)
            del self.open[rec["key"]]

    def close(self) -> None:
        """End the runs still open (the command stopped before their records were written)."""
        for o in self.open.values():
            for t in o.trackers:
                t.end_run(None)
        self.open.clear()


def _float(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def curves(extra: dict, live: set) -> list[tuple[int, dict[str, float]]]:
    """A record's stored curves as ``(step, {name: value})``, step order. Without live metrics
    (``live`` empty): every top-level list of numbers (step = position + 1, ``..._every_<n>``: every
    n-th epoch) and every ``{"step" | "epoch" | "k": [...], name: [...]}`` (as ``<curve>/<name>``); with
    live metrics only the curves of the same names (to fill in epochs a resumed run did not send)."""
    steps: dict[int, dict[str, float]] = {}

    def add(name: str, xs, ys) -> None:
        if live and name not in live:
            return
        for x, y in zip(xs, ys):
            if _is_number(y) and isinstance(x, int):
                steps.setdefault(x, {})[name] = float(y)

    for key, value in extra.items():
        if isinstance(value, list) and value and all(v is None or _is_real(v) for v in value):
            every = re.search(r"_every_(\d+)$", key)
            n = int(every.group(1)) if every else 1
            add(key, range(1, n * len(value) + 1, n), value)
        elif isinstance(value, dict):
            x = next((a for a in X_AXES if isinstance(value.get(a), list)), None)
            for sub, ys in value.items() if x else ():
                if sub != x and isinstance(ys, list):
                    add(f"{key}/{sub}", value[x], ys)
    return sorted(steps.items())


def group_name(p, single_run_cell: bool) -> str:
    """The sweep id: ``<recipe>-<scale>`` (``picard sweep``), the cell for ``picard run`` of one cell."""
    cells = {r.cell for r in p.runs}
    if single_run_cell and len(cells) == 1:
        return next(iter(cells))
    return f"{Path(p.recipe).stem if p.recipe else 'defaults'}-{p.scale}"
