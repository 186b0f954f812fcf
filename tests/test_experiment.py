"""The typed experiment interface: every registered experiment is an Experiment with a valid
TableSpec, outcomes are checked, and diverged outcomes carry every metric of the table as NaN."""

import dataclasses
import math

import pytest

from picard_cli import registry
from picard_cli.experiment import Experiment, Outcome, TableSpec


@pytest.mark.parametrize("name", registry.names())
def test_every_experiment_implements_the_interface(name):
    exp = registry.get(name)
    assert isinstance(exp, Experiment) and exp.name == name
    assert isinstance(exp.table, TableSpec) and exp.table.rows and exp.table.cols
    assert exp.table.default_protocol in exp.table.metrics
    assert dataclasses.is_dataclass(exp.config_cls)
    assert set(exp.table.paper) <= {(r, c) for r in exp.table.rows for c in exp.table.cols}
    assert exp.steps_field is None or exp.steps_field in {f.name for f in dataclasses.fields(exp.config_cls)}
    assert type(exp).run_one is not Experiment.run_one or type(exp).run_group is not Experiment.run_group


def test_table_spec_refuses_an_unknown_default_protocol():
    with pytest.raises(ValueError, match="default_protocol"):
        TableSpec("T", ("r",), ("c",), {"last": "m"}, default_protocol="best-val")


def test_outcomes_are_checked_and_diverged_fills_the_tables_metrics():
    with pytest.raises(ValueError, match="status"):
        Outcome("fine", {})
    with pytest.raises(ValueError, match="unknown outcome field"):
        Outcome.of({"status": "ok", "metrics": {}, "extras": {}})
    o = Outcome.of({"status": "ok", "metrics": {"x": 1.0}})
    assert o == Outcome("ok", {"x": 1.0}) and o.extra == {} and o.solver is None
    spec = registry.get("vit-pde").table
    d = Outcome.diverged(spec, {"n_params": 3}, "extra_metric", epochs_run=4)
    assert d.status == "diverged" and d.extra == {"n_params": 3} and d.metrics["epochs_run"] == 4
    assert set(spec.metrics.values()) | {"extra_metric"} == {k for k, v in d.metrics.items() if math.isnan(v)}
