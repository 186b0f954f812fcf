"""The paper's data or a refusal: data facts per experiment, the paper-scale refusal (one line,
before any training), allow_partial_data, data labels in records and captions, and class-balanced
FID reference sets on the real offline CIFAR-10 arrays."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import picard
from picard_cli import registry, runner
from picard_cli.data import cifar10
from picard_cli.recipes import parse_overrides

DATA = Path(os.environ.get("PICARD_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
OFFLINE = DATA / "cifar10" / "cifar10_train_subset.npz"


def _offline():
    if not OFFLINE.exists():
        pytest.fail(f"the offline CIFAR-10 arrays are needed under {OFFLINE.parent} (PICARD_DATA)")
    return DATA


def _one_line_exit_2(out):
    assert out.returncode == 2, out.stdout + out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


# ------------------------------------------------------------------ class-balanced order
@pytest.mark.parametrize("split", ["train", "test"])
def test_offline_arrays_come_class_balanced_so_every_prefix_holds_every_class_equally(split):
    d = cifar10.load_cifar10(_offline(), split, "npz")
    assert d.meta["order"] == "class-balanced" and len(d.images) == 10_000
    for n in (10, 1000, 2500, 10_000):
        counts = Counter(d.labels[:n].tolist())
        assert sorted(counts) == list(range(10)) and set(counts.values()) == {n // 10}, (n, counts)
    # the file itself is grouped by class: the first 1000 are all one class
    with np.load(OFFLINE if split == "train" else DATA / "cifar10" / "cifar10_test.npz") as z:
        assert len(set(z["labels"][:1000].tolist())) == 1


def _labels_by_image(split: str, resolution: int = 32) -> dict[bytes, int]:
    from picard_cli.models.ddpm import pool_uint8

    name = "cifar10_train_subset.npz" if split == "train" else "cifar10_test.npz"
    with np.load(DATA / "cifar10" / name) as z:
        images, labels = z["images"], z["labels"]
    images = pool_uint8(images, resolution) if resolution != 32 else images
    return {im.tobytes(): int(lab) for im, lab in zip(images, labels)}


@pytest.fixture
def captured_fid(monkeypatch):
    """compute_fid records its real images instead of computing (weights: a stand-in)."""
    from picard_cli.metrics import fid as fidlib

    seen = []

    def fake(fake_uint8, real_uint8, **kw):
        seen.append(np.asarray(real_uint8).copy())
        return {
            "metric": "fid",
            "value": 1.0,
            "n_fake": len(fake_uint8),
            "n_real": len(real_uint8),
            "reference": kw["real_key"],
            "verified": True,
        }

    monkeypatch.setattr(fidlib, "compute_fid", fake)
    monkeypatch.setattr(fidlib, "resolve_weights", lambda *a, **k: object())
    return seen


def _config(name: str, pairs: list[str]):
    exp = registry.get(name)
    p = runner.plan(exp, None, "quick", parse_overrides(pairs), {}, cells="match")
    return exp, p.runs[0].config


def test_ddpm_fid_reference_of_the_whole_offline_training_split_is_class_balanced(captured_fid):
    exp, c = _config(
        "ddpm",
        [
            "resolution=8",
            "channels=[16,32]",
            "layers_per_block=1",
            "attn_down=0",
            "norm_groups=8",
            "train_n=0",
            "test_n=40",
            "batch_size=16",
            "train_steps=3",
            "warmup_steps=1",
            "timesteps=5",
            "fid_n=200",
            "fid_n_steps=0",
            "grid_n=2",
            "sample_batch=100",
            "fig7_for_T=1",
        ],
    )
    ctx = runner.Context(device="cpu", data_root=_offline())
    (out,) = exp.run_group([c], ctx)
    assert out.status == "ok" and captured_fid
    lookup = _labels_by_image("train", 8)
    for real in captured_fid:
        counts = Counter(lookup[im.tobytes()] for im in real)
        assert len(real) == 200 and set(counts.values()) == {20} and len(counts) == 10, counts


def test_vit_mask_fid_reference_of_the_whole_offline_test_split_is_class_balanced(captured_fid):
    exp, c = _config(
        "vit-mask",
        [
            "train_n=64",
            "val_n=0",
            "test_n=0",
            "fid_n=300",
            "epochs=1",
            "batch_size=500",
            "dim=16",
            "depth=1",
            "heads=2",
            "dec_dim=16",
            "dec_depth=0",
            "dec_heads=2",
            "patch=8",
            "eval_iters=1",
        ],
    )
    ctx = runner.Context(device="cpu", data_root=_offline())
    (out,) = exp.run_group([c], ctx)
    assert out.status == "ok" and captured_fid
    lookup = _labels_by_image("test")
    for real in captured_fid:
        counts = Counter(lookup[im.tobytes()] for im in real)
        assert len(real) == 300 and set(counts.values()) == {30} and len(counts) == 10, counts


# ------------------------------------------------------------------ facts
def test_cifar_facts_of_the_offline_arrays_name_every_difference():
    f = cifar10.facts(_offline(), "auto", {"train": 0, "test": 0})
    assert f.source == "npz" and f.lossy and f.splits == {"train": 10_000, "test": 10_000}
    assert not f.is_paper and len(f.differs) == 2 and "50,000 original" in f.differs[0]
    sub = cifar10.facts(_offline(), "npz", {"train": 500, "test": 0})
    assert sub.splits["train"] == 500 and any("train_n=500" in d for d in sub.differs)


def test_cifar_facts_of_python_batches_check_their_md5(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    from picard_cli.data.synthetic import write_cifar10_batches

    sums = write_cifar10_batches(tmp_path, n_per_batch=4, n_test=4)
    bad = cifar10.facts(tmp_path, "auto", {"train": 0, "test": 0})  # generated files: not CIFAR-10's sums
    assert not bad.lossy and len(bad.differs) == 2 and "md5" in bad.differs[0]
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", sums[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", sums["test_batch"]]])
    good = cifar10.facts(tmp_path, "auto", {"train": 0, "test": 0})
    assert good.is_paper and good.source == "torchvision" and good.splits == {"train": 50_000, "test": 10_000}


def _ns_file(path: Path, n: int, size: int, **params):
    import h5py

    from picard_cli.data.navier_stokes import PAPER, create_h5

    full = dict(PAPER, samples=n, resolution=size, dt=1e-3, times=[0.0], seed=0) | params
    with create_h5(path, n, [0.0], size, full) as f:  # the header is all facts() reads
        f.attrs["n_done"] = n
    assert h5py.is_hdf5(path)
    return path


def test_navier_stokes_facts_accept_the_fno_parameters_and_name_what_differs(tmp_path):
    from picard_cli.experiments.anie import data_facts

    paper = {"data": str(_ns_file(tmp_path / "paper.h5", 5000, 64)), "n_train": 3200, "n_val": 800, "n_test": 1000}
    f = data_facts(paper, tmp_path)
    assert f.is_paper and f.generated and f.splits == {"train": 3200, "val": 800, "test": 1000}, f.differs
    small = {"data": str(_ns_file(tmp_path / "small.h5", 300, 32, nu=1e-4)), "n_train": 200, "n_val": 50, "n_test": 50}
    f = data_facts(small, tmp_path)
    text = " | ".join(f.differs)
    for part in ("300 trajectories (paper: 5,000)", "nu 0.0001", "resolution 32x32", "n_train=200 (paper: 3,200)"):
        assert part in text, text
    assert f.label == "Navier-Stokes: picard-generated, 300 trajectories at 32x32"


def test_lrgb_facts_flag_generated_pickles_by_their_split_sizes(tmp_path):
    from picard_cli.data.lrgb import facts
    from picard_cli.data.synthetic import write_lrgb_raw

    root = write_lrgb_raw(tmp_path / "lrgb-data", n_graphs=(8, 4, 4), seed=1)
    f = facts(root, "pascalvoc-sp", 0)
    assert f.splits == {"train": 8, "val": 4, "test": 4} and len(f.differs) == 3
    assert "8,498" in f.differs[0]


# ------------------------------------------------------------------ the CLI: refusal, allow_partial_data, labels
@pytest.mark.parametrize(
    "args", [["run", "vit-mask", "--scale", "paper"], ["run", "ddpm", "--steps", "100", "--scale", "paper"]]
)
def test_paper_scale_on_the_offline_arrays_stops_in_seconds_with_one_line(args, tmp_path):
    t0 = time.perf_counter()
    out = picard(*args, "--results", tmp_path / "res", "--data-root", _offline())
    line = _one_line_exit_2(out)
    assert time.perf_counter() - t0 < 60
    assert "not the paper's data" in line and "JPEG-decoded" in line and "allow_partial_data=true" in line
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())


def test_paper_scale_refuses_a_small_navier_stokes_file(tmp_path):
    path = _ns_file(tmp_path / "ns.h5", 40, 16)
    out = picard("run", "anie", "--scale", "paper", f"data={path}", "--results", tmp_path / "res")
    line = _one_line_exit_2(out)
    assert "40 trajectories (paper: 5,000)" in line


def test_allow_partial_data_runs_and_the_record_and_table_say_which_data(tmp_path):
    res = tmp_path / "res"
    small = [
        "allow_partial_data=true",
        "epochs=1",
        "train_n=64",
        "test_n=50",
        "fid=false",
        "batch_size=64",
        "dim=16",
        "depth=1",
        "heads=2",
        "dec_dim=16",
        "dec_depth=0",
        "dec_heads=2",
        "patch=8",
    ]
    out = picard(
        "run", "vit-mask", "--scale", "paper", "--seeds", "1", "--results", res, "--data-root", _offline(), *small
    )
    assert out.returncode == 0, out.stderr
    (rec,) = [json.loads(line) for line in (res / "vit-mask.jsonl").read_text().splitlines()]
    d = rec["data"]
    assert d["paper"] is False and d["lossy"] is True and d["splits"] == {"train": 64, "test": 50}
    assert rec["scale"] == "paper" and "sweep" not in rec["config"] and "allow_partial_data" not in rec["config"]
    rep = picard("report", "vit-mask", "--results", res)
    assert rep.returncode == 0, rep.stderr
    assert "not the paper's data" in rep.stdout.replace("\n", " ") or "not the paper" in rep.stdout
    md = (res / "vit-mask_table_last.md").read_text()
    assert "data: CIFAR-10: 64 JPEG-decoded train images, 50 JPEG-decoded test images (not the paper's data)" in md


def test_quick_scale_records_data_facts_without_refusing(tmp_path):
    from picard_cli.data.synthetic import write_cifar10_npz

    write_cifar10_npz(tmp_path / "data", n_train=80, n_test=30)
    res = tmp_path / "res"
    out = picard(
        "run",
        "vit-mask",
        "--results",
        res,
        "--data-root",
        tmp_path / "data",
        "epochs=1",
        "train_n=40",
        "val_n=0",
        "test_n=20",
        "fid=false",
        "dim=16",
        "depth=1",
        "heads=2",
        "dec_dim=16",
        "dec_depth=0",
        "dec_heads=2",
        "patch=8",
    )
    assert out.returncode == 0, out.stderr
    (rec,) = [json.loads(line) for line in (res / "vit-mask.jsonl").read_text().splitlines()]
    assert rec["data"]["paper"] is False and rec["data"]["splits"] == {"train": 40, "test": 20}
