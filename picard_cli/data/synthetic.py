"""Small generated citation graphs written in Planetoid's raw on-disk format
(pickled scipy CSR / numpy arrays, a pickled adjacency dict, a text test index),
so tests exercise PyG's real ``Planetoid`` loader without the real files."""
from __future__ import annotations

import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np


def write_planetoid_raw(root: str | Path, name: str = "cora", n_nodes: int = 1700, n_feats: int = 60,
                        n_classes: int = 4, seed: int = 0) -> Path:
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
        "x": sp.csr_matrix(feats[:n_train]), "y": onehot[:n_train],
        "allx": sp.csr_matrix(feats[: n_nodes - n_test]), "ally": onehot[: n_nodes - n_test],
        "tx": sp.csr_matrix(feats[test_idx]), "ty": onehot[test_idx], "graph": dict(graph),
    }
    for part, obj in parts.items():
        with open(raw / f"ind.{name}.{part}", "wb") as fh:
            pickle.dump(obj, fh)
    (raw / f"ind.{name}.test.index").write_text("\n".join(map(str, test_idx)) + "\n")
    return Path(root)
