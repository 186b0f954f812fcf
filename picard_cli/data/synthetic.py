"""Small generated citation graphs written in Planetoid's raw on-disk format
(pickled scipy CSR / numpy arrays, a pickled adjacency dict, a text test index),
so tests exercise PyG's real ``Planetoid`` loader without the real files."""

from __future__ import annotations

import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np


def write_planetoid_raw(
    root: str | Path, name: str = "cora", n_nodes: int = 1700, n_feats: int = 60, n_classes: int = 4, seed: int = 0
) -> Path:
    """Write ``<root>/planetoid/<Name>/raw/ind.<name>.*`` for a planted-partition
    graph whose bag-of-words features carry the class. Needs >= 1640 nodes so
    PyG's public split (train = first rows of x, val = next 500, test = test.index) fits."""
    import scipy.sparse as sp

    from .planetoid import NAMES

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_nodes)
    # features: words mostly from the class's own block, a few at random
    block = n_feats // n_classes
    feats = np.zeros((n_nodes, n_feats), dtype=np.float32)
    for i, c in enumerate(labels):
        own = rng.choice(block, size=4, replace=False) + c * block
        other = rng.choice(n_feats, size=2, replace=False)
        feats[i, own] = 1.0
        feats[i, other] = 1.0
    # edges: 80% within class
    graph = defaultdict(list)
    by_class = [np.flatnonzero(labels == c) for c in range(n_classes)]
    for i in range(n_nodes):
        for _ in range(2):
            j = rng.choice(by_class[labels[i]]) if rng.random() < 0.8 else rng.integers(n_nodes)
            if j != i:
                graph[i].append(int(j))
                graph[int(j)].append(i)
    onehot = np.eye(n_classes, dtype=np.int64)[labels]
    n_test = 1000
    test_idx = np.arange(n_nodes - n_test, n_nodes)
    n_train = 20 * n_classes
    raw = Path(root) / "planetoid" / NAMES[name] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    parts = {
        "x": sp.csr_matrix(feats[:n_train]),
        "y": onehot[:n_train],
        "allx": sp.csr_matrix(feats[: n_nodes - n_test]),
        "ally": onehot[: n_nodes - n_test],
        "tx": sp.csr_matrix(feats[test_idx]),
        "ty": onehot[test_idx],
        "graph": dict(graph),
    }
    for part, obj in parts.items():
        with open(raw / f"ind.{name}.{part}", "wb") as fh:
            pickle.dump(obj, fh)
    (raw / f"ind.{name}.test.index").write_text("\n".join(map(str, test_idx)) + "\n")
    return Path(root)


def write_lrgb_raw(
    root: str | Path,
    n_graphs: tuple[int, int, int] = (24, 6, 6),
    nodes: tuple[int, int] = (30, 60),
    n_classes: int = 21,
    n_feats: int = 14,
    seed: int = 0,
) -> Path:
    """Write ``<root>/lrgb/pascalvoc-sp/raw/{train,val,test}.pickle`` in LRGB's raw
    format (spec pign.md §5): each pickle is a list of ``(x, edge_attr, edge_index, y)``
    with x float32 [n, 14], edge_attr float32 [e, 2], edge_index long [2, e]
    (undirected, no self loops), y long [n] in 0..n_classes-1.

    Each graph mimics a superpixel image: random 2-D points joined to their 6
    nearest neighbours; 1-3 discs ("objects") of a random class 1..20 on a class-0
    background (the majority, as in VOC). The first ``n_feats - 2`` features are a
    per-class "colour" mean plus heavy noise (so one node alone is ambiguous and
    neighbours help); the last two are the point's coordinates."""
    import torch

    rng = np.random.default_rng(seed)
    n_colour = n_feats - 2
    palette = rng.normal(0.0, 1.0, (n_classes, n_colour))  # class -> mean colour
    k = 6
    raw = Path(root) / "lrgb" / "pascalvoc-sp" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, count in zip(("train", "val", "test"), n_graphs):
        graphs = []
        for _ in range(count):
            n = int(rng.integers(nodes[0], nodes[1] + 1))
            pos = rng.random((n, 2))
            # labels: background 0, then objects painted in order (later ones on top)
            y = np.zeros(n, dtype=np.int64)
            for _ in range(int(rng.integers(1, 4))):
                centre, radius = rng.random(2), rng.uniform(0.15, 0.3)
                y[np.linalg.norm(pos - centre, axis=1) < radius] = rng.integers(1, n_classes)
            x = np.concatenate([palette[y] + rng.normal(0.0, 1.5, (n, n_colour)), pos], axis=1)
            # k-nearest-neighbour edges, symmetrised and deduplicated, no self loops
            dist = np.linalg.norm(pos[:, None] - pos[None], axis=2)
            np.fill_diagonal(dist, np.inf)
            nbr = np.argsort(dist, axis=1)[:, :k]
            src = np.repeat(np.arange(n), k)
            pairs = np.unique(
                np.concatenate([np.stack([src, nbr.ravel()]), np.stack([nbr.ravel(), src])], axis=1), axis=1
            )
            # edge features (unused by the models): distance and colour difference
            d = dist[pairs[0], pairs[1]]
            c = np.linalg.norm(x[pairs[0], :n_colour] - x[pairs[1], :n_colour], axis=1) / np.sqrt(n_colour)
            graphs.append(
                (
                    torch.tensor(x, dtype=torch.float32),
                    torch.tensor(np.stack([d, c], 1), dtype=torch.float32),
                    torch.tensor(pairs, dtype=torch.long),
                    torch.tensor(y, dtype=torch.long),
                )
            )
        with open(raw / f"{split}.pickle", "wb") as fh:
            pickle.dump(graphs, fh)
    return Path(root)


def smooth_images(n: int, seed: int = 0, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 (size, size, 3) images of smooth random colour fields (a few low-frequency
    cosines per channel; the class sets the dominant frequency) and their labels 0..9: easy to
    inpaint, so a short training run visibly learns."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i, c in enumerate(labels):
        img = np.zeros((size, size, 3))
        for _ in range(3):
            fy, fx = rng.uniform(0.5, 1.5 + c % 5, 2) * 2 * np.pi / size
            phase = rng.uniform(0, 2 * np.pi)
            img += np.cos(fy * yy + fx * xx + phase)[..., None] * rng.uniform(0.2, 1.0, 3)
        img = (img - img.min()) / (np.ptp(img) + 1e-9)
        out[i] = np.round(img * 255).astype(np.uint8)
    return out, labels.astype(np.int64)


def write_cifar10_npz(root: str | Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """Write ``<root>/cifar10/{cifar10_train_subset,cifar10_test}.npz`` in the offline arrays'
    format (uint8 N x 32 x 32 x 3 ``images``, int64 ``labels``, grouped by class)."""
    from .cifar10 import NPZ

    folder = Path(root) / "cifar10"
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        images, labels = smooth_images(n, s)
        order = np.argsort(labels, kind="stable")  # grouped by class, as the real arrays are
        np.savez(folder / NPZ[split], images=images[order], labels=labels[order])
    return folder


def write_cifar10_batches(root: str | Path, n_per_batch: int = 20, n_test: int = 20, seed: int = 0) -> dict:
    """Write ``<root>/cifar10/cifar-10-batches-py/`` in the original python-pickle format
    (data_batch_1..5, test_batch: dict with "data" uint8 (N, 3072) CHW-flattened rows and
    "labels"; batches.meta with "label_names"; str keys, as the python-2 pickles read with latin1). Returns
    {file name: md5} so a test can give
    torchvision's integrity check the generated files' sums."""
    import hashlib

    from .cifar10 import BATCHES

    folder = Path(root) / "cifar10" / BATCHES
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for j, name in enumerate(names):
        images, labels = smooth_images(n_test if name == "test_batch" else n_per_batch, seed + j)
        rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
        (folder / name).write_bytes(pickle.dumps({"data": rows, "labels": labels.tolist()}))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    for name in names + ["batches.meta"]:
        sums[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    return sums
