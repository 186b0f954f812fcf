"""LRGB PascalVOC-SP through PyG's real loader (spec: pign §5).

Dataset facts (§5): superpixel graphs, 14 node features, 2 edge features (unused:
the GNNs get ``edge_index`` only), 21 classes with per-node labels, splits
8,498 / 1,428 / 1,429 graphs.

Data root layout: ``<root>/lrgb/pascalvoc-sp/raw/{train,val,test}.pickle``
(exactly what ``torch_geometric.datasets.LRGBDataset(<root>/lrgb, "PascalVOC-SP")``
reads). PyG writes ``processed/{train,val,test}.pt`` next to ``raw/``; when the
root is read-only (a shared copy) the raw pickles are copied to a writable cache
first. When they are absent PyG downloads ``pascalvocsp.zip``; offline that fails
with one clear line.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..env import cache_dir
from ..errors import DataError
from .planetoid import _writable

if TYPE_CHECKING:
    from torch_geometric.data import InMemoryDataset

NAMES = {"pascalvoc-sp": "PascalVOC-SP"}  # our name -> PyG's name (PyG lower-cases it for folders)
SPLITS = ("train", "val", "test")
RAW = tuple(f"{s}.pickle" for s in SPLITS)


def _work_root(src: Path, name: str) -> Path:
    """A writable LRGB root holding the raw pickles of ``name`` (``src`` itself if writable)."""
    if _writable(src):
        return src
    dst = cache_dir() / "lrgb-work" / hashlib.sha1(str(src.resolve()).encode()).hexdigest()[:10]
    raw, dst_raw = src / name / "raw", dst / name / "raw"
    dst_raw.mkdir(parents=True, exist_ok=True)
    for fname in RAW:
        if (raw / fname).exists() and not (dst_raw / fname).exists():
            shutil.copyfile(raw / fname, dst_raw / fname)
    return dst


@functools.lru_cache(maxsize=4)
def _load(root: str, name: str) -> dict:
    from torch_geometric.datasets import LRGBDataset

    src = Path(root) / "lrgb"
    raw = src / name / "raw"
    missing = [f for f in RAW if not (raw / f).exists()]
    how = (
        f"PyG's LRGBDataset downloads pascalvocsp.zip from LRGB when online; or point PICARD_DATA / "
        f"--data-root at a folder holding lrgb/{name}/raw/{{{','.join(SPLITS)}}}.pickle"
    )
    if missing and len(missing) < len(RAW):
        # PyG's download() first deletes raw/ wholesale: never let it wipe a partial copy
        raise DataError(f"{NAMES[name]} is incomplete under {raw} (missing {', '.join(missing)}); {how}")
    work = _work_root(src, name)
    try:
        return {s: LRGBDataset(str(work), name=NAMES[name], split=s) for s in SPLITS}
    except Exception as e:  # noqa: BLE001 - PyG raises URLError / OSError / pickle errors
        if missing:
            raise DataError(
                f"{NAMES[name]} is not under {raw} (need {', '.join(missing)}) and downloading it failed "
                f"({type(e).__name__}); {how}"
            ) from None
        raise DataError(f"could not read {NAMES[name]} from {work / name}: {type(e).__name__}: {e}") from None


def load_lrgb(root: Path, name: str = "pascalvoc-sp") -> dict[str, InMemoryDataset]:
    """Return ``{"train", "val", "test"}`` -> PyG ``InMemoryDataset`` of LRGB ``name``
    (only PascalVOC-SP). Cached per (root, name) for the life of the process."""
    name = name.lower()
    if name not in NAMES:
        raise DataError(f"unknown LRGB dataset {name!r} (choose from {', '.join(NAMES)})")
    return _load(str(root), name)


load_lrgb.cache_clear = _load.cache_clear  # type: ignore[attr-defined]


PAPER_SPLITS = {"train": 8498, "val": 1428, "test": 1429}  # PascalVOC-SP's published split sizes (graphs)


def facts(root: Path, name: str = "pascalvoc-sp", max_graphs: int = 0):
    """:class:`~picard_cli.datacheck.DataFacts` of the LRGB splits a run uses: the real dataset has
    8,498 / 1,428 / 1,429 graphs; other sizes (generated pickles, a partial copy) or ``max_graphs``
    are differences."""
    from ..datacheck import DataFacts

    splits = load_lrgb(root, name)
    found = {k: len(v) for k, v in splits.items()}
    differs = [
        f"{k} split has {n:,} graphs (the real {NAMES[name.lower()]}: {PAPER_SPLITS[k]:,})"
        for k, n in found.items()
        if n != PAPER_SPLITS[k]
    ]
    used = {k: min(n, max_graphs) if max_graphs else n for k, n in found.items()}
    if max_graphs and any(used[k] < n for k, n in found.items()):
        differs.append(f"max_graphs={max_graphs:,} keeps the first {max_graphs:,} graphs of each split (paper: all)")
    label = f"LRGB {NAMES[name.lower()]}: " + " / ".join(f"{used[k]:,}" for k in SPLITS) + " graphs"
    return DataFacts(
        f"LRGB {NAMES[name.lower()]}",
        "pyg-lrgb",
        used,
        label=label,
        differs=[f"LRGB: {d}" for d in differs],
        remedy=f"put the real raw pickles under {Path(root) / 'lrgb' / name / 'raw'} (PyG downloads them when online)",
    )
