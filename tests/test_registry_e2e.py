"""Every registered experiment runs end to end from the CLI at its quick scale (one cell, one seed,
tiny overrides, generated data) and `picard report` renders its table from the record. A new
experiment without a case here fails `test_every_experiment_has_a_case`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import picard
from picard_cli import registry


def _planetoid(root: Path) -> list:
    from picard_cli.data.synthetic import write_planetoid_raw

    write_planetoid_raw(root, "cora", seed=1)
    return ["--filter", "^PIGN-GCN/Cora$", "epochs=3", "hidden=8"]


def _lrgb(root: Path) -> list:
    from picard_cli.data.synthetic import write_lrgb_raw

    write_lrgb_raw(root, n_graphs=(12, 4, 4), seed=3)
    return ["--recipe", "recipes/pign/table1.yaml", "--filter", "^PIGN/GCN$", "epochs=2"]


def _navier_stokes(root: Path) -> Path:
    from picard_cli.data.navier_stokes import ANIE_TIMES, write_h5

    rng = np.random.default_rng(0)
    x = np.arange(16) / 16
    X1, X2 = np.meshgrid(x, x, indexing="ij")
    w = np.zeros((16, len(ANIE_TIMES), 16, 16), np.float32)
    for i in range(len(w)):
        ph = rng.uniform(0, 6.3)
        for j, t in enumerate(ANIE_TIMES):
            w[i, j] = np.exp(-0.02 * t) * np.sin(2 * np.pi * (X1 + 2 * X2) + ph + 0.05 * t)
    return write_h5(root / "ns.h5", w, ANIE_TIMES, {"synthetic": True})


def _anie(root: Path) -> list:
    path = _navier_stokes(root)
    return ["--filter", "^1H1B/N1$", "n_train=8", "n_val=4", "n_test=4", "epochs=1", "batch_size=4", f"data={path}"]


def _vit_pde(root: Path) -> list:
    path = _navier_stokes(root)
    return [
        "--filter",
        "^ViT/N1$",
        "n_train=8",
        "n_val=4",
        "n_test=4",
        "epochs=1",
        "batch_size=4",
        f"data={path}",
        "dim=16",
        "depth=1",
        "heads=2",
        "mlp=32",
    ]


def _cifar(root: Path) -> None:
    from picard_cli.data.synthetic import write_cifar10_npz

    write_cifar10_npz(root, n_train=120, n_test=40)


def _vit_mask(root: Path) -> list:
    _cifar(root)
    return [
        "--filter",
        "^ViT/N1$",
        "--fid-weights",
        "none",
        "epochs=1",
        "train_n=64",
        "val_n=16",
        "test_n=32",
        "fid_n=8",
        "batch_size=32",
        "dim=32",
        "dec_dim=32",
    ]


def _ddpm(root: Path) -> list:
    _cifar(root)
    return [
        "--steps",
        "10",
        "--fid-weights",
        "none",
        "resolution=8",
        "channels=[16,32]",
        "layers_per_block=1",
        "attn_down=0",
        "norm_groups=8",
        "train_n=64",
        "test_n=16",
        "batch_size=16",
        "warmup_steps=2",
        "loss_bins=5",
        "grid_n=2",
        "sample_batch=32",
        "train_steps=6",
        "log_every=2",
        "eval_every=6",
        "fid_n=4",
        "fid_n_steps=2",
        "fig7_for_T=10",
        "fig7_steps=[5,10]",
    ]


def _alphafold(root: Path) -> list:
    """Synthetic predictions scored against two real CASP15 targets ($PICARD_DATA, as CI sets it)."""
    src = Path(os.environ["PICARD_DATA"]) / "casp15" / "targets"
    ids = ["T1104-D1", "T1119-D1"]
    (root / "casp15" / "targets").mkdir(parents=True)
    for t in ids:  # a copy: nothing writes into the shared data
        shutil.copy(src / f"{t}.pdb", root / "casp15" / "targets" / f"{t}.pdb")
    return ["--source", "synthetic", f"targets={','.join(ids)}", "num_recycle=3"]


# experiment -> (the name users type, how to make its data and the command's arguments)
CASES = {
    "pign": ("pign", _planetoid),
    "pign-lrgb": ("pign", _lrgb),
    "anie": ("anie", _anie),
    "vit-pde": ("vit-pde", _vit_pde),
    "vit-mask": ("vit-mask", _vit_mask),
    "ddpm": ("ddpm", _ddpm),
    "alphafold-recycle": ("alphafold-recycle", _alphafold),
}


def test_every_experiment_has_a_case():
    assert set(CASES) == set(registry.names())


@pytest.mark.parametrize("name", sorted(CASES))
def test_quick_run_and_report(name, tmp_path):
    typed, make = CASES[name]
    data, res = tmp_path / "data", tmp_path / "res"
    data.mkdir()
    args = make(data)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    command = "run" if name == "alphafold-recycle" else "sweep"
    out = picard(
        command,
        typed,
        "--scale",
        "quick",
        "--seeds",
        1,
        "--data-root",
        data,
        "--results",
        res,
        *args,
        env=env,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    recs = [json.loads(line) for line in (res / f"{name}.jsonl").read_text().splitlines()]
    assert recs and all(r["experiment"] == name and r["status"] == "ok" and r["key"] for r in recs)
    exp = registry.get(name)
    assert any(r["metrics"].get(exp.table.metric()) is not None for r in recs)
    rep = picard("report", typed, "--results", res, env=env, timeout=600)
    assert rep.returncode == 0, rep.stderr[-3000:]
    assert exp.table.title.split(":")[0] in rep.stdout
    table = res / f"{name}_table_{exp.table.default_protocol.replace('-', '_')}.md"
    assert table.is_file() and "paper" in table.read_text()
