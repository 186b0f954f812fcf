"""Planetoid citation graphs (Cora, CiteSeer) through PyG's real loader, and the
drop-in noise of the paper (spec pign.md §3).

Data root layout: ``<root>/planetoid/<Name>/raw/ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}``
(exactly what ``torch_geometric.datasets.Planetoid`` reads). PyG writes
``processed/`` next to ``raw/``; when the root is read-only (a shared copy) the
raw files are copied to a writable cache first. When they are absent PyG
downloads them; offline that fails with one clear line.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from pathlib import Path

import torch

from ..env import cache_dir
from ..errors import DataError

NAMES = {"cora": "Cora", "citeseer": "CiteSeer"}
RAW = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
NOISE_SEED = 2147483647  # every Table-5 script (spec §3)


def raw_files(name: str) -> list[str]:
    return [f"ind.{name}.{part}" for part in RAW]


def _writable(path: Path) -> bool:
    probe = path if path.exists() else path.parent
    while not probe.exists():
        probe = probe.parent
    return os.access(probe, os.W_OK)


def _work_root(src: Path, name: str) -> Path:
    """A writable Planetoid root holding the raw files of ``name``."""
    Name = NAMES[name]
    raw = src / Name / "raw"
    if _writable(src):
        return src
    dst = cache_dir() / "planetoid-work" / hashlib.sha1(str(src.resolve()).encode()).hexdigest()[:10]
    dst_raw = dst / Name / "raw"
    dst_raw.mkdir(parents=True, exist_ok=True)
    for fname in raw_files(name):
        if (raw / fname).exists() and not (dst_raw / fname).exists():
            shutil.copyfile(raw / fname, dst_raw / fname)
    return dst


def load_planetoid(name: str, root: Path):
    """Return the PyG ``Data`` of ``name`` (public split), features row-normalised."""
    from torch_geometric.datasets import Planetoid
    from torch_geometric.transforms import NormalizeFeatures

    if name not in NAMES:
        raise DataError(f"unknown Planetoid dataset {name!r} (choose from {', '.join(NAMES)})")
    Name = NAMES[name]
    src = Path(root) / "planetoid"
    raw = src / Name / "raw"
    missing = [f for f in raw_files(name) if not (raw / f).exists()]
    work = _work_root(src, name) if not missing else (src if _writable(src) else cache_dir() / "data" / "planetoid")
    mirror = os.environ.get("PICARD_PLANETOID_URL")  # a mirror of the raw files, if PyG's default is unreachable
    loader = type("MirroredPlanetoid", (Planetoid,), {"url": mirror}) if mirror else Planetoid
    try:
        ds = loader(str(work), Name, split="public", transform=NormalizeFeatures())
        return ds[0]
    except Exception as e:  # noqa: BLE001 - PyG raises URLError / OSError / pickle errors
        if missing:
            raise DataError(
                f"{Name} is not under {raw} (need {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}) "
                f"and downloading it failed ({type(e).__name__}); copy the raw Planetoid files there "
                f"or point PICARD_DATA / --data-root at a folder holding planetoid/{Name}/raw/"
            ) from None
        raise DataError(f"could not read {Name} from {raw}: {type(e).__name__}: {e}") from None


def drop_in_noise(x: torch.Tensor, p: float, seed: int = NOISE_SEED) -> torch.Tensor:
    """Spec §3: exactly floor(p*N*F) entries of the whole matrix, chosen uniformly
    without replacement by a CPU ``randperm`` seeded with ``seed``, increased by 1.
    Applied after row normalisation; never renormalised. p = 0 is a no-op."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"noise fraction must lie in [0, 1], got {p}")
    n = x.numel()
    m = math.floor(n * p)
    if m == 0:
        return x.clone()
    g = torch.Generator().manual_seed(seed)
    flags = torch.cat([torch.zeros(n - m), torch.ones(m)])
    noise = flags[torch.randperm(n, generator=g)].view_as(x)
    return x + noise.to(x.dtype)
