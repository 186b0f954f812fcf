"""LRGB PascalVOC-SP data layer: generated raw pickles through PyG's real LRGBDataset."""

import os
import pickle
import stat

import pytest
import torch

from picard_cli.data import lrgb
from picard_cli.data.lrgb import load_lrgb
from picard_cli.data.synthetic import write_lrgb_raw
from picard_cli.errors import DataError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Private cache (cache_dir() follows XDG_CACHE_HOME) and a fresh load cache per test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lrgb.load_lrgb.cache_clear()
    yield
    lrgb.load_lrgb.cache_clear()


def _check(splits, sizes=(24, 6, 6)):
    assert {k: len(v) for k, v in splits.items()} == dict(zip(("train", "val", "test"), sizes))
    for ds in splits.values():
        for g in ds:
            assert g.x.dtype == torch.float32 and g.x.shape[1] == 14
            assert g.edge_attr.shape == (g.edge_index.shape[1], 2)
            assert g.y.dtype == torch.long and g.y.shape == (g.num_nodes,)
            assert 0 <= int(g.y.min()) and int(g.y.max()) <= 20
            ei = g.edge_index
            assert ei.min() >= 0 and ei.max() < g.num_nodes and (ei[0] != ei[1]).all()
            # undirected: every edge present in both directions
            assert set(map(tuple, ei.t().tolist())) == set(map(tuple, ei.flip(0).t().tolist()))


def test_load_generated(tmp_path):
    root = write_lrgb_raw(tmp_path / "data", seed=3)
    splits = load_lrgb(root)
    _check(splits)
    processed = root / "lrgb" / "pascalvoc-sp" / "processed"
    assert all((processed / f"{s}.pt").exists() for s in ("train", "val", "test"))
    assert load_lrgb(root) is splits  # cached per (root, name)
    y = torch.cat([g.y for g in splits["train"]])
    assert (y == 0).float().mean() > 0.5  # class 0 is the background majority


def test_generator_deterministic(tmp_path):
    a = write_lrgb_raw(tmp_path / "a", seed=5) / "lrgb" / "pascalvoc-sp" / "raw"
    b = write_lrgb_raw(tmp_path / "b", seed=5) / "lrgb" / "pascalvoc-sp" / "raw"
    for s in ("train", "val", "test"):
        ga, gb = (pickle.loads((d / f"{s}.pickle").read_bytes()) for d in (a, b))
        assert len(ga) == len(gb) and all(torch.equal(u, v) for p, q in zip(ga, gb) for u, v in zip(p, q))
    assert sum(p.stat().st_size for p in a.iterdir()) < 1_000_000


def test_read_only_root_uses_cache(tmp_path, monkeypatch):
    root = write_lrgb_raw(tmp_path / "data", seed=1)
    src = root / "lrgb"
    dirs = [p for p in src.rglob("*") if p.is_dir()] + [src]
    for d in dirs:
        d.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(src, os.W_OK):  # running as root: chmod does not stop writes, so say so
            monkeypatch.setattr(lrgb, "_writable", lambda path: False)
        _check(load_lrgb(root))
    finally:
        for d in dirs:
            d.chmod(stat.S_IRWXU)
    assert not (src / "pascalvoc-sp" / "processed").exists()
    work = list((tmp_path / "cache" / "picard" / "lrgb-work").iterdir())
    assert len(work) == 1 and len(work[0].name) == 10
    assert (work[0] / "pascalvoc-sp" / "processed" / "train.pt").exists()


def test_missing_data_is_one_clear_error(tmp_path, monkeypatch):
    from torch_geometric.datasets import LRGBDataset

    monkeypatch.setattr(LRGBDataset, "urls", {"pascalvoc-sp": "file:///nonexistent/pascalvocsp.zip"})
    with pytest.raises(DataError) as e:
        load_lrgb(tmp_path / "empty")
    msg = str(e.value)
    assert "\n" not in msg and "pascalvoc-sp/raw" in msg and "train.pickle" in msg and "PICARD_DATA" in msg


def test_partial_raw_is_not_wiped(tmp_path):
    root = write_lrgb_raw(tmp_path / "data", seed=2)
    (root / "lrgb" / "pascalvoc-sp" / "raw" / "val.pickle").unlink()
    with pytest.raises(DataError, match="val.pickle"):
        load_lrgb(root)
    assert (root / "lrgb" / "pascalvoc-sp" / "raw" / "train.pickle").exists()


def test_unreadable_raw(tmp_path):
    root = write_lrgb_raw(tmp_path / "data", seed=2)
    (root / "lrgb" / "pascalvoc-sp" / "raw" / "val.pickle").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="could not read PascalVOC-SP.*UnpicklingError"):
        load_lrgb(root)


def test_unknown_name(tmp_path):
    with pytest.raises(DataError, match="unknown LRGB dataset"):
        load_lrgb(tmp_path, "coco-sp")
