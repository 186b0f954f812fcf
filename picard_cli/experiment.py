"""The typed interface every experiment implements: :class:`Experiment` (what the runner, the
executors and the CLI call), :class:`TableSpec` (what ``picard report`` renders) and :class:`Outcome`
(what one run returns). A leaf module: it imports nothing from the rest of picard, so every layer
(cli -> runner -> executors -> experiments) may import it.

An experiment module defines a config dataclass (fields made with ``recipes.fld``), a subclass of
:class:`Experiment` with its class attributes set, and calls ``registry.register(TheClass())``. Every
attribute below has a documented default; an experiment sets only what differs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

STATUSES = ("ok", "diverged", "failed")


@dataclass(frozen=True)
class TableSpec:
    """The paper's table (or figure summary) an experiment reproduces, declaratively.

    ``rows`` and ``cols`` are the paper's labels in the paper's order (records may add more); a
    record lands at ``(Experiment.row(config), Experiment.col(config))``. ``paper`` maps such a cell
    to the paper's (mean, std): labelled reference values, printed beside ours, never used as ours.
    ``metrics`` maps a protocol name (``last``: the paper's; ``best-val``: at the best validation
    epoch) to the metric key in the records."""

    title: str
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    metrics: Mapping[str, str]
    paper: Mapping[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    default_protocol: str = "last"  # the protocol `picard report` shows without --protocol
    metric_scale: float = 1.0  # shown = stored x scale (accuracy 0.81 -> 81.0 %)
    digits: int = 1  # decimals of the shown mean and std
    higher_is_better: bool = False  # the direction of "better" in the paired verdicts
    show_params: bool = False  # print each cell's parameter count (the records' extra.n_params)
    quick_is_protocol: bool = False  # the quick scale runs the paper's protocol with fewer seeds
    baselines: Mapping[str, str] = field(default_factory=dict)  # metric key -> row label of a trivial predictor
    paired_columns: bool = False  # report each column minus the first, paired over seeds, with a 95% interval
    curve_metric: str | None = None  # the metric of the records' iteration curves (extra.iter_curve), if any
    select_field: str | None = None  # a config field the report chooses per cell (Table 1's lr grid)
    select_metrics: Mapping[str, str] = field(default_factory=dict)  # select_on ("val") -> metric key

    def __post_init__(self):
        if self.default_protocol not in self.metrics:
            raise ValueError(f"{self.title}: default_protocol {self.default_protocol!r} not in metrics")

    def metric(self, protocol: str | None = None) -> str:
        """The metric key a protocol reports (the default protocol's when ``None``)."""
        return self.metrics[protocol or self.default_protocol]


@dataclass
class Outcome:
    """What one run returns to the runner, which adds the provenance and writes it as a record:
    ``status`` (ok / diverged / failed), ``metrics`` (name -> number), the solver's traces, and
    ``extra`` (parameter counts, curves, kernels used, ...)."""

    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    solver: dict | None = None
    extra: dict = field(default_factory=dict)
    error: str | None = None
    error_detail: str | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown run status {self.status!r} (one of {', '.join(STATUSES)})")

    @classmethod
    def of(cls, value: Outcome | Mapping) -> Outcome:
        """An :class:`Outcome` from itself or from its dict form (``{"status", "metrics", ...}``)."""
        if isinstance(value, Outcome):
            return value
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ValueError(f"unknown outcome field(s) {', '.join(unknown)}")
        return cls(**value)

    @classmethod
    def diverged(cls, table: TableSpec, extra: dict, *also_nan: str, **values) -> Outcome:
        """A run whose loss went non-finite: every metric of its table (each protocol's) and ``also_nan``
        as NaN, plus ``values`` (e.g. ``epochs_run``) as given; the sweep goes on."""
        nan = float("nan")
        return cls("diverged", {m: nan for m in (*table.metrics.values(), *also_nan)} | values, extra=extra)


class Experiment:
    """Base class of every experiment. Subclasses set the class attributes and implement
    :meth:`row`, :meth:`col` and :meth:`run_one` (or :meth:`run_group` when seeds train together)."""

    name: ClassVar[str]  # what users type: `picard run <name>`
    config_cls: ClassVar[type]  # the typed config dataclass (fields with help, choices and ranges)
    default_recipe: ClassVar[str]  # recipes/<recipe_dir>/<default_recipe> when no --recipe is given
    table: ClassVar[TableSpec]
    recipe_dir: ClassVar[str | None] = None  # the recipes folder, if not the experiment's name
    batchable: ClassVar[bool] = False  # run_group trains several seeds of one cell as one stacked model
    data_parallel: ClassVar[bool] = False  # --nproc N: torchrun + DDP for one long run (distributed.py)
    steps_field: ClassVar[str | None] = None  # the config field `--steps 100:1000` sweeps
    axis_label: ClassVar[str | None] = None  # that axis's label in cell names (`T` for ddpm's timesteps)

    # -- labels ---------------------------------------------------------------------------------
    def row(self, cfg: Mapping) -> str:
        """The table row of a run's config (a record's stored config dict)."""
        raise NotImplementedError

    def col(self, cfg: Mapping) -> str:
        """The table column of a run's config."""
        raise NotImplementedError

    def match(self, cell, wanted, given: Mapping) -> float | None:
        """How well recipe cell ``cell`` (a typed config) matches the config ``picard run`` flags ask
        for (``wanted``; ``given``: the flags set): None = no match, else a distance (lower wins).
        By default a cell matches when it has the same row and column."""
        same = self.row(dataclasses.asdict(cell)) == self.row(dataclasses.asdict(wanted)) and self.col(
            dataclasses.asdict(cell)
        ) == self.col(dataclasses.asdict(wanted))
        return 0.0 if same else None

    def table_values(self, record: Mapping, protocol: str) -> list[dict]:
        """The table entries one record contributes: by default one, its protocol's metric at
        (row, col). An experiment with several metrics in one table (Table 3: MSE and FID rows)
        returns one dict per entry: ``row``, ``col``, ``value`` (None = not measured, ``note`` says
        why), optionally ``std_within`` and ``std_label`` (a spread inside the run)."""
        cfg = record["config"]
        return [
            {"row": self.row(cfg), "col": self.col(cfg), "value": record["metrics"].get(self.table.metric(protocol))}
        ]

    # -- resources and data ---------------------------------------------------------------------
    def seed_bytes(self, cfg) -> int | None:
        """Rough activation memory of one seed of a stacked group (sizes groups); None = unknown."""
        return None

    def data_facts(self, cfg, root) -> dict | None:
        """What a run's data is (source, sizes, file hash), checked before any training and stored
        in every record's ``data``; None when the experiment has nothing to say."""
        return None

    def check_nproc(self, cfg, nproc: int) -> None:
        """Refuse (RecipeError) a config that cannot train on ``nproc`` processes (data_parallel only)."""

    # -- running --------------------------------------------------------------------------------
    def run_group(self, configs: list, ctx) -> list[Outcome]:
        """Run the configs of one group (several seeds of one cell) and return one outcome each, in
        order. By default one run at a time."""
        return [self.run_one(c, ctx) for c in configs]

    def run_one(self, c, ctx) -> Outcome:
        raise NotImplementedError(f"{type(self).__name__} implements neither run_one nor run_group")
