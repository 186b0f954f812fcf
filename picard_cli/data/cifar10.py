"""CIFAR-10 as uint8 (N, 32, 32, 3) RGB arrays, from one of two sources under the data root.

* ``torchvision``: torchvision's real ``CIFAR10`` reader on ``<root>/cifar10/cifar-10-batches-py/``
  (the original python batches, checked against torchvision's md5 list). When the folder is absent
  torchvision downloads it (into the root if writable, else into the user cache); offline that
  fails with one line saying where to put which files.
* ``npz``: the offline arrays of ``<root>/cifar10/`` (see that folder's README.txt):
  ``cifar10_train_subset.npz`` (first 1000 training images of each class, 10,000 images) and
  ``cifar10_test.npz`` (all 10,000 test images, grouped by class). **Most of their pixels were
  decoded from lossy JPEG files (quality ~75)**, so MSEs differ slightly from the original
  pixels and an FID against this test split is not comparable to published CIFAR-10 FIDs;
  every record says which source it used (``lossy``).

``source='auto'`` takes the python batches when present, else the arrays when present, else
tries torchvision's download.

Either way the images come in one fixed class-balanced order (class 0's first image, class 1's
first, ..., then every class's second, ...), so any prefix, such as a FID reference set or a
``test_n`` subset, holds every class equally. :func:`facts` says, without loading pixels, whether
a run's splits are the paper's data (the 50,000 + 10,000 original images).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..env import cache_dir
from ..errors import DataError

SOURCES = ("auto", "torchvision", "npz")
NPZ = {"train": "cifar10_train_subset.npz", "test": "cifar10_test.npz"}
BATCHES = "cifar-10-batches-py"


@dataclass
class Images:
    images: np.ndarray  # (N, 32, 32, 3) uint8 RGB
    labels: np.ndarray  # (N,) int64
    meta: dict = field(default_factory=dict)  # source, split, file(s), lossy


def _writable(path: Path) -> bool:
    probe = path
    while not probe.exists():
        probe = probe.parent
    return os.access(probe, os.W_OK)


def _torchvision(root: Path, split: str) -> Images:
    from torchvision.datasets import CIFAR10

    folder = root / "cifar10"
    have = (folder / BATCHES).is_dir()
    where = folder if (have or _writable(folder)) else cache_dir() / "data" / "cifar10"
    try:
        ds = CIFAR10(str(where), train=split == "train", download=not have)
    except Exception as e:  # noqa: BLE001 - URLError / OSError / RuntimeError("corrupted")
        if have:
            raise DataError(f"could not read CIFAR-10 from {folder / BATCHES}: {type(e).__name__}: {e}") from None
        raise DataError(
            f"CIFAR-10 is not under {folder / BATCHES} and downloading it failed ({type(e).__name__}); "
            f"put the python batches (data_batch_1..5, test_batch, batches.meta) there, or the offline arrays "
            f"{NPZ['train']} + {NPZ['test']} in {folder}, or point PICARD_DATA / --data-root elsewhere"
        ) from None
    images = np.ascontiguousarray(ds.data, dtype=np.uint8)
    return Images(
        images,
        np.asarray(ds.targets, dtype=np.int64),
        {"source": "torchvision", "split": split, "file": str(Path(where) / BATCHES), "lossy": False},
    )


def _npz(root: Path, split: str) -> Images:
    path = root / "cifar10" / NPZ[split]
    if not path.exists():
        raise DataError(
            f"{path} is missing (the offline CIFAR-10 arrays: {NPZ['train']}, {NPZ['test']}); "
            f"or use source=torchvision with the python batches under {root / 'cifar10' / BATCHES}"
        )
    with np.load(path) as z:
        images, labels = z["images"], z["labels"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise DataError(f"{path}: images must be uint8 (N, 32, 32, 3), got {images.dtype} {images.shape}")
    return Images(
        images,
        labels.astype(np.int64),
        {
            "source": "npz",
            "split": split,
            "file": str(path),
            "lossy": True,
            "note": "JPEG-decoded pixels (see the data folder's README.txt)",
        },
    )


def load_cifar10(root: Path, split: str, source: str = "auto", limit: int = 0) -> Images:
    """The ``split`` ('train' | 'test') of CIFAR-10 from ``source``, in a fixed class-balanced order
    (:func:`interleave`); ``limit`` > 0 keeps the first ``limit`` images of that order."""
    if split not in NPZ:
        raise DataError(f"unknown CIFAR-10 split {split!r} (train | test)")
    if source not in SOURCES:
        raise DataError(f"unknown CIFAR-10 source {source!r} (choose from {', '.join(SOURCES)})")
    root = Path(root)
    source = _resolve_source(root, split, source)  # auto: batches, else arrays, else torchvision's download
    data = _torchvision(root, split) if source == "torchvision" else _npz(root, split)
    # Always class-balanced order: every prefix (a FID reference set, a test_n subset) holds every
    # class equally, whatever the file order (the offline arrays are grouped by class).
    keep = interleave(data.labels)
    if limit and limit < len(data.images):
        keep = keep[:limit]
        data.meta["limit"] = limit
    data = Images(data.images[keep], data.labels[keep], data.meta | {"order": "class-balanced"})
    data.meta["n"] = len(data.images)
    return data


def _resolve_source(root: Path, split: str, source: str) -> str:
    if source != "auto":
        return source
    if (root / "cifar10" / BATCHES).is_dir():
        return "torchvision"
    return "npz" if (root / "cifar10" / NPZ[split]).exists() else "torchvision"


PAPER_N = {"train": 50_000, "test": 10_000}


def _batches_intact(folder: Path, split: str) -> bool:
    """torchvision's md5 check of the python batches of ``split`` (the original CIFAR-10 files)."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    files = CIFAR10.train_list if split == "train" else CIFAR10.test_list
    return all(check_integrity(str(folder / name), md5) for name, md5 in files)


def facts(root: Path, source: str, n: dict[str, int]):
    """:class:`~picard_cli.datacheck.DataFacts` of the CIFAR-10 splits a run reads, without loading
    pixels. ``n``: split -> images kept (0 = all). The paper's data: torchvision's original python
    batches, all 50,000 training and 10,000 test images."""
    from ..datacheck import DataFacts

    root = Path(root)
    sources, splits, differs, lossy = set(), {}, [], False
    for split, keep in n.items():
        src = _resolve_source(root, split, source)
        sources.add(src)
        total = PAPER_N[split]
        if src == "npz":
            path = root / "cifar10" / NPZ[split]
            if not path.exists():
                raise DataError(f"{path} is missing (the offline CIFAR-10 arrays: {NPZ['train']}, {NPZ['test']})")
            with np.load(path) as z:
                total = int(len(z["labels"]))
            lossy = True
            differs.append(
                f"CIFAR-10 {split} split: {total:,} JPEG-decoded images from the offline arrays "
                f"(lossy{', a subset' if total < PAPER_N[split] else ''}), not the "
                f"{PAPER_N[split]:,} original images"
            )
        elif (root / "cifar10" / BATCHES).is_dir() and not _batches_intact(root / "cifar10" / BATCHES, split):
            differs.append(
                f"CIFAR-10 {split} batches under {root / 'cifar10' / BATCHES} do not match the published md5 sums"
            )
        splits[split] = min(keep, total) if keep else total
        if keep and keep < total:
            differs.append(f"{split}_n={keep:,} keeps {keep:,} of the {total:,} {split} images (paper: all)")
    kind = "JPEG-decoded" if lossy else "original"
    label = "CIFAR-10: " + ", ".join(f"{v:,} {kind} {k} images" for k, v in splits.items())
    return DataFacts(
        "CIFAR-10",
        "+".join(sorted(sources)),
        splits,
        lossy=lossy,
        label=label,
        differs=differs,
        remedy=f"put the original python batches (data_batch_1..5, test_batch, batches.meta) under "
        f"{root / 'cifar10' / BATCHES} and use source=auto or source=torchvision",
    )


def interleave(labels: np.ndarray) -> np.ndarray:
    """Indices that visit the classes round-robin (i-th image of class 0, of class 1, ...), in
    file order within a class: a prefix of any length is class-balanced whatever the file order."""
    labels = np.asarray(labels)
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank[idx] = np.arange(len(idx))
    return np.lexsort((labels, rank))
