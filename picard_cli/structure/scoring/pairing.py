"""Residue pairing: which native residue each model residue stands for (by residue number and
insertion code, as CASP and TMscore do, or by order), and the models laid out on the native's rows."""

from __future__ import annotations

import numpy as np

from ..io import CAChain


def pair(native: CAChain, model: CAChain, by: str = "number") -> tuple[np.ndarray, np.ndarray, str]:
    """(native rows, model rows, method) of the residue pairs. ``by``: ``number`` (residue number and
    insertion code, as CASP and TMscore do), ``order`` (i-th residue to i-th residue: a model built
    from the native's observed sequence, numbered 1..L), or ``auto`` (number, unless that pairs
    residues of different types while the sequences are identical in order)."""
    if by not in ("number", "order", "auto"):
        raise ValueError(f"pair by {by!r}")
    if by == "order":
        if len(model) != len(native):
            from ...errors import DataError

            raise DataError(f"{model.path}: pairing by order needs {len(native)} residues, the model has {len(model)}")
        idx = np.arange(len(native))
        return idx, idx.copy(), "order"
    where = {k: i for i, k in enumerate(model.keys)}
    nat_rows, mod_rows = [], []
    for i, k in enumerate(native.keys):
        j = where.get(k)
        if j is not None:
            nat_rows.append(i)
            mod_rows.append(j)
    a, b = np.asarray(nat_rows, dtype=int), np.asarray(mod_rows, dtype=int)
    if by == "auto" and len(model) == len(native) and model.sequence == native.sequence:
        same = (native.resname[a] == model.resname[b]).sum() if len(a) else 0
        if same < 0.9 * len(native):
            idx = np.arange(len(native))
            return idx, idx.copy(), "order"
    return a, b, "number"


def stack(native: CAChain, models: list[CAChain], by: str = "number"):
    """Models laid out on the native's rows: coords (B, N, 3), mask (B, N), methods, residue-name
    mismatches per model (a sign of wrong numbering)."""
    N, B = len(native), len(models)
    X = np.zeros((B, N, 3))
    mask = np.zeros((B, N), dtype=bool)
    methods, mismatch = [], np.zeros(B, dtype=int)
    cache: dict = {}
    for b, m in enumerate(models):
        sig = (m.resnum.tobytes(), tuple(m.icode.tolist()), tuple(m.resname.tolist()))
        if sig not in cache:
            cache[sig] = pair(native, m, by)
        a, r, how = cache[sig]
        X[b, a] = m.coords[r]
        mask[b, a] = True
        methods.append(how)
        mismatch[b] = int((native.resname[a] != m.resname[r]).sum())
    return X, mask, methods, mismatch
