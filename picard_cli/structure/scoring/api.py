"""The public scoring functions: coordinates (:func:`score_coords`), C-alpha chains paired by residue
(:func:`score_models`) and one model against one native (:func:`score_pair`)."""

from __future__ import annotations

import numpy as np

from ..io import CAChain
from .definitions import CUTOFFS, HA_IDX, TS_IDX, Search
from .pairing import stack
from .search import _search, windows
from .superposition import rmsd_batch


def score_coords(
    native_xyz,
    models_xyz,
    mask=None,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    search: Search | None = None,
    budget: int = 2**20,
    chunk: int | None = None,
) -> dict[str, np.ndarray]:
    """Scores of ``models_xyz`` (B, N, 3), rows paired with ``native_xyz`` (N, 3); ``mask`` (B, N)
    marks the native residues each model has. Returns arrays of length B: rmsd (Å), gdt_ts, gdt_ha,
    p0.5 ... p8 (fractions of the native length), tm, n_common, superpositions (visited by the
    search), and ``length`` (N). ``device``: torch device (cpu / cuda); ``dtype``: precision of the
    search (RMSD is float64); ``budget``: elements of one (models x subsets x residues) block;
    ``chunk``: at most this many models searched together (memory also caps it)."""
    import torch

    s = search or Search()
    Y = np.asarray(native_xyz, dtype=np.float64)
    X = np.asarray(models_xyz, dtype=np.float64)
    if X.ndim == 2:
        X = X[None]
    B, N = X.shape[0], Y.shape[0]
    if X.shape[1] != N:
        raise ValueError(f"models have {X.shape[1]} rows, the native {N}")
    M = np.ones((B, N), dtype=bool) if mask is None else np.asarray(mask, dtype=bool).reshape(B, N)
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    rmsd = rmsd_batch(X, Y, M, device)
    best = np.zeros((B, len(CUTOFFS)), dtype=np.int64)
    tm = np.zeros(B)
    visits = np.zeros(B, dtype=np.int64)
    nthr = len(s.extend) + 1
    step = min(chunk or B, max(1, 2**15 // nthr - 1))  # (model, threshold) must fit the key's top 15 bits
    # the first extensions (every seed at every threshold) are the largest tensor: keep it near 32 M cells
    step = min(step, max(1, 2**25 // max(1, len(windows(N, s)) * nthr * N)))
    # models of similar RMSD explore similar numbers of subsets: neighbours share padded blocks
    order = np.argsort(np.nan_to_num(rmsd, nan=np.inf), kind="stable")
    for a in range(0, B, step):
        idx = order[a : a + step]
        best[idx], tm[idx], visits[idx] = _search(X[idx], M[idx], Y, s, device, tdtype, budget)
    p = best / N
    out = {
        "rmsd": rmsd,
        "gdt_ts": p[:, TS_IDX].mean(1),
        "gdt_ha": p[:, HA_IDX].mean(1),
        "tm": tm / N,
        "n_common": M.sum(1),
        "superpositions": visits,
    }
    for j, c in enumerate(CUTOFFS):
        out[f"p{c:g}"] = p[:, j]
    out["length"] = np.full(B, N)
    return out


def score_models(native: CAChain, models: list[CAChain], *, pair_by: str = "number", **kw) -> dict[str, np.ndarray]:
    """Score C-alpha chains against ``native`` (paired by ``pair_by``), all in one batch."""
    X, mask, methods, mismatch = stack(native, models, pair_by)
    out = score_coords(native.coords, X, mask, **kw)
    out["pairing"] = np.asarray(methods)
    out["resname_mismatch"] = mismatch
    return out


def score_pair(model: CAChain, native: CAChain, **kw) -> dict[str, float]:
    """One model against one native: plain floats (and the counts as ints)."""
    out = score_models(native, [model], **kw)
    return {k: (v[0].item() if hasattr(v[0], "item") else v[0]) for k, v in out.items()}
