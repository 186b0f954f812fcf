"""``--log tensorboard|wandb|mlflow`` (picard_cli/tracking.py): a sweep on the generated graph sends each
run's config, per-epoch metrics and final metrics to the tracker, named by cell and seed and grouped
by sweep, and changes no number of the records."""

import json
import os
import struct
import sys
from types import SimpleNamespace

import pytest

from conftest import picard

from picard_cli import tracking
from picard_cli.errors import PicardError

EPOCHS = 5  # tiny_recipe's defaults
RUNS = {("GCN/Cora", 0), ("GCN/Cora", 1), ("PIGN-GCN/Cora", 0), ("PIGN-GCN/Cora", 1)}


def _sweep(synth_root, recipe, res, *log, env=None):
    out = picard(
        "sweep", "pign", "--recipe", recipe, "--scale", "quick", "--filter", "GCN", "--data-root", synth_root,
        "--results", res, *log, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in (res / "pign.jsonl").read_text().splitlines()]


def _numbers(records):
    return sorted((r["cell"], r["seed"], r["metrics"], r["extra"], r["solver"]) for r in records)


def test_tensorboard_curves_per_seed_and_records_unchanged(synth_root, tiny_recipe, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tracked = _sweep(synth_root, tiny_recipe, tmp_path / "res", "--log", "tensorboard")
    plain = _sweep(synth_root, tiny_recipe, tmp_path / "plain")
    assert _numbers(tracked) == _numbers(plain)  # tracking only reads
    assert not (tmp_path / "plain" / "pign-tb").exists()
    group = tmp_path / "res" / "pign-tb" / "tiny-quick"  # <experiment>-tb/<recipe>-<scale>/<cell>-seed<k>
    assert {p.name for p in group.iterdir()} == {f"{tracking.safe(c)}-seed{s}" for c, s in RUNS}
    for rec in tracked:
        ea = EventAccumulator(str(group / f"{tracking.safe(rec['cell'])}-seed{rec['seed']}"))
        ea.Reload()
        for name in ("train_loss", "val_acc", "test_acc"):
            assert [e.step for e in ea.Scalars(name)] == list(range(1, EPOCHS + 1)), name
        # each seed's own curve: the last points are that seed's record
        assert ea.Scalars("train_loss")[-1].value == pytest.approx(rec["metrics"]["train_loss_last"], rel=1e-6)
        assert ea.Scalars("val_acc")[-1].value == pytest.approx(rec["metrics"]["val_acc_last"], rel=1e-6)
        assert ea.Scalars("final/test_acc_last")[0].value == pytest.approx(rec["metrics"]["test_acc_last"])


def _wandb_records(path):
    """The records of a W&B offline ``.wandb`` file (LevelDB-style log: 7-byte header, 32 KiB blocks
    of chunks ``crc32 | length (2) | type (1: full, 2: first, 3: middle, 4: last) | data``)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, out, part, block = path.read_bytes(), 7, [], b"", 32768
    while pos + 7 <= len(data):
        left = block - pos % block
        _, n, kind = struct.unpack("<IHB", data[pos : pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (n == 0 and kind == 0):  # block padding
            pos += left
            continue
        part, pos = part + data[pos + 7 : pos + 7 + n], pos + 7 + n
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(part)
            out.append(rec)
            part = b""
    return out


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def test_wandb_offline_and_mlflow_file_store(synth_root, tiny_recipe, tmp_path):
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    res = tmp_path / "res"
    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config")}
    env["WANDB_CACHE_DIR"] = str(tmp_path / "wandb-cache")
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)  # the default: a file store beside the results
    try:
        records = _sweep(synth_root, tiny_recipe, res, "--log", "wandb", "--log", "mlflow", env=env)
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    finals = {(r["cell"], r["seed"]): r["metrics"]["test_acc_last"] for r in records}

    # W&B: one offline run per cell and seed, project picard-<experiment>, group = the sweep
    folders = sorted((res / "wandb").glob("offline-run-*"))
    assert len(folders) == len(RUNS)
    seen = set()
    for folder in folders:
        recs = _wandb_records(next(folder.glob("*.wandb")))
        run = next(r.run for r in recs if r.WhichOneof("record_type") == "run")
        assert (run.project, run.run_group) == ("picard-pign", "tiny-quick")
        cell, seed = run.display_name.rsplit("/seed", 1)
        seen.add((cell, int(seed)))
        history = [{_key(i): json.loads(i.value_json) for i in r.history.item} for r in recs if r.HasField("history")]
        assert [h["_step"] for h in history if "val_acc" in h] == list(range(1, EPOCHS + 1))
        summary = {_key(i): json.loads(i.value_json) for r in recs if r.HasField("summary") for i in r.summary.update}
        assert summary["final/test_acc_last"] == pytest.approx(finals[(cell, int(seed))])
    assert seen == RUNS

    # MLflow: experiment picard-<experiment>, run name cell/seed<k>, the per-epoch history
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(res / "mlruns").resolve().as_uri())
    runs = client.search_runs([client.get_experiment_by_name("picard-pign").experiment_id])
    assert {r.info.run_name for r in runs} == {f"{c}/seed{s}" for c, s in RUNS}
    for r in runs:
        assert r.info.status == "FINISHED" and r.data.tags["picard.group"] == "tiny-quick"
        cell, seed = r.data.tags["picard.cell"], int(r.data.tags["picard.seed"])
        assert r.data.params["lr"] == "0.02"
        assert [m.step for m in client.get_metric_history(r.info.run_id, "val_acc")] == list(range(1, EPOCHS + 1))
        assert r.data.metrics["final/test_acc_last"] == pytest.approx(finals[(cell, seed)])


def test_bad_tracker_is_one_line_exit_2(tiny_recipe):
    out = picard("sweep", "pign", "--recipe", tiny_recipe, "--log", "tensorboard,nosuch", "--dry-run")
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "--log 'nosuch': unknown tracker; choose from tensorboard, wandb, mlflow" in out.stderr


def test_parse_and_missing_library(monkeypatch):
    assert tracking.parse(["tensorboard,mlflow", "wandb", "TensorBoard"]) == ["tensorboard", "mlflow", "wandb"]
    assert tracking.parse(None) == []
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(PicardError, match=r"--log wandb needs `pip install wandb`"):
        tracking.Tracking(["wandb"], tracking.Where("pign", "g", tracking.Path(".")))


def test_record_curves_fill_in_what_live_logging_did_not_send():
    extra = {
        "train_loss": [1.0, 0.5, None, 0.25],  # per epoch (ns_train); None: a non-finite value
        "train_loss_every_10": [2.0, 1.5],  # epochs 1 and 11
        "test_loss_curve": {"step": [100, 200], "loss": [0.3, 0.2]},  # ddpm
        "n_params": 7,
    }
    steps = dict(tracking.curves(extra, live=set()))
    assert steps[1] == {"train_loss": 1.0, "train_loss_every_10": 2.0}
    assert steps[11] == {"train_loss_every_10": 1.5} and 3 not in steps
    assert steps[200] == {"test_loss_curve/loss": 0.2}
    # a run resumed at epoch 3 sent epochs 3, 4 live: the record adds epochs 1, 2 of its own curves only
    opened = tracking._Open([], sent={"train_loss": {3, 4}})
    filled = []
    opened.trackers.append(SimpleNamespace(log_metrics=lambda step, m: filled.append((step, m))))
    for step, metrics in tracking.curves(extra, live=set(opened.sent)):
        opened.log(step, metrics)
    assert filled == [(1, {"train_loss": 1.0}), (2, {"train_loss": 0.5})]


def test_post_hoc_logging_of_records_from_other_machines(tmp_path):
    """ray / slurm: the driver logs each run from its record (no live logging on the workers)."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = SimpleNamespace(cell="ViT/ns", seed=3, key="k1", config={"lr": 0.001, "depth": 2})
    rec = {"key": "k1", "status": "ok", "metrics": {"test_mse": 0.1}, "extra": {"val_mse": [0.4, 0.3, 0.2]}}
    t = tracking.Tracking(["tensorboard"], tracking.Where("vit-pde", "quick-sweep", tmp_path))
    t.finish([rec], [run])
    assert t.open == {}
    ea = EventAccumulator(str(tmp_path / "vit-pde-tb" / "quick-sweep" / "ViT_ns-seed3"))
    ea.Reload()
    assert [(e.step, round(e.value, 6)) for e in ea.Scalars("val_mse")] == [(1, 0.4), (2, 0.3), (3, 0.2)]
    assert ea.Scalars("final/test_mse")[0].value == pytest.approx(0.1)


def test_navier_stokes_trainer_logs_each_epoch(tmp_path):
    """ns_train.fit (anie, vit-pde): train loss and validation MSE per epoch, live; for `picard run`
    of one cell the group is the cell."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from test_anie import _write

    path, _ = _write(tmp_path / "data" / "ns16.h5")
    res = tmp_path / "res"
    out = picard(
        "run", "anie", "--heads", "1", "--blocks", "1", "--n-iter", "2", "--data-root", tmp_path / "data",
        "--results", res, "n_train=8", "n_val=4", "n_test=4", "epochs=3", "batch_size=4", f"data={path}",
        "eval_iters=1", "--log", "tensorboard", env={"XDG_CACHE_HOME": str(tmp_path / "cache")},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (rec,) = [json.loads(line) for line in (res / "anie.jsonl").read_text().splitlines()]
    cell = tracking.safe(rec["cell"])
    ea = EventAccumulator(str(res / "anie-tb" / cell / f"{cell}-seed{rec['seed']}"))
    ea.Reload()
    for name in ("train_loss", "val_mse"):
        got = [(e.step, e.value) for e in ea.Scalars(name)]
        assert got == [(i + 1, pytest.approx(v, rel=1e-5)) for i, v in enumerate(rec["extra"][name])], name
    assert "iter_curve/test_mse" not in ea.Tags()["scalars"]  # live-logged: the record's other curves stay out
