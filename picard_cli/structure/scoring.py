"""C-alpha RMSD, GDT_TS / GDT_HA and TM-score of many models against one native, batched in torch
(CPU or GPU). Definitions: spec ../shared/specs/ddpm-fid-alphafold.md §4.1; the GDT search: §4.3.

* Residues are paired by residue number (``pair``); the denominator of GDT and TM-score is the
  native's residue count, so residues a model lacks count as misses.
* RMSD: one least-squares (Kabsch/SVD) superposition over all common residues, in float64.
* GDT: P_d = the largest fraction of native residues within d Å under *some* superposition, each
  cutoff with its own; GDT_TS = mean P_{1,2,4,8}, GDT_HA = mean P_{0.5,1,2,4}. Found by seeded
  iterative superposition (§4.3): seeds are contiguous windows of the common residues (all of them,
  half, a quarter, ... down to ``min_window``) slid along the chain; from every seed, one chain of
  superpositions per extension threshold e (Kabsch on the subset, then the subset := residues within
  e Å, until it stops changing or ``max_iter``); every superposition visited updates the best count of
  every cutoff and the best TM-score. The result is a lower bound of the true optimum.
* TM-score (Zhang & Skolnick 2004): max over the same superpositions of
  (1/L) sum 1/(1 + (d_i/d0)^2), d0 = 1.24 (L - 15)^(1/3) - 1.8 (0.5 when L <= 21 or smaller),
  L = native length; the search also extends at d0_search = d0 clipped to [4.5, 8] Å, as the
  TM-score program's search does. Heuristic like the program's own: agreement in ``README "AlphaFold recycling"``.

Batching: all models of a target share the native, so every subset of every model is one row of
(subsets x residues) tensors, and both the sums a superposition needs and the distances it gives are
batched matmuls with per-residue features (``_features``); the rotations come from a vectorised
quaternion solver. A (model, threshold, subset) reached before is not followed again (its future is
known), and after the first extension each (model, threshold) keeps its ``beam`` largest subsets.
Models are searched in order of their RMSD so that neighbours need similar numbers of subsets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .io import CAChain

CUTOFFS = (0.5, 1.0, 2.0, 4.0, 8.0)  # union of the GDT_HA (0.5, 1, 2, 4) and GDT_TS (1, 2, 4, 8) cutoffs
TS_IDX, HA_IDX = (1, 2, 3, 4), (0, 1, 2, 3)
BIG = 1e12  # squared distance given to residues a model lacks


@dataclass(frozen=True)
class Search:
    """The GDT / TM-score superposition search (spec §4.3); the defaults were tuned against the
    TMscore program on perturbed CASP15 domains (tests/test_structure.py, README "AlphaFold recycling")."""

    min_window: int = 4  # shortest seed window (residues)
    step: float = 0.1  # windows of length l slide by at least ceil(step * l) ...
    seed_cells: int = 25000  # ... and number at most seed_cells / (residues x window lengths) per length
    # extension thresholds e (Å), spec §4.3 step 3: dense near the GDT cutoffs, up to 1.5 x the largest
    extend: tuple = (0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0)
    tm_extend: bool = True  # also extend at d0_search (the TM-score program's threshold)
    max_iter: int = 20  # superpositions per chain after the seed's
    min_subset: int = 3  # a subset smaller than this ends its chain
    beam: int = 8  # after the first extension, keep this many largest subsets per (model, threshold); 0 = all


def tm_d0(length: int) -> float:
    """TM-score's distance scale for a native of ``length`` residues (Zhang & Skolnick 2004)."""
    if length <= 21:
        return 0.5
    return max(0.5, 1.24 * (length - 15) ** (1.0 / 3.0) - 1.8)


def d0_search(length: int) -> float:
    return min(8.0, max(4.5, tm_d0(length)))


def windows(n: int, s: Search) -> list[tuple[int, int]]:
    """Seed windows (start, length) over ``n`` common residues (ranks, not residue numbers): lengths
    n, n/2, n/4, ... down to ``min_window``; per length, starts spaced evenly (ends included), at most
    ``seed_cells / (n x lengths)`` of them (short chains get many seeds: they are cheap) and never
    closer than ``step`` x length."""
    if n <= 0:
        return []
    lengths, length = [], n
    while length >= s.min_window:
        lengths.append(length)
        length //= 2
    if not lengths or lengths[-1] > s.min_window:
        lengths.append(min(n, s.min_window))
    lengths = list(dict.fromkeys(lengths))
    cap = max(2, s.seed_cells // max(1, n * len(lengths)))
    out: list[tuple[int, int]] = []
    for length in lengths:
        last = n - length
        count = min(cap, last // max(1, math.ceil(s.step * length)) + 1)
        starts = sorted(set(np.linspace(0, last, max(1, count)).round().astype(int).tolist()))
        out += [(st, length) for st in starts]
    return out


# ------------------------------------------------------------------------------------------- pairing
def pair(native: CAChain, model: CAChain, by: str = "number") -> tuple[np.ndarray, np.ndarray, str]:
    """(native rows, model rows, method) of the residue pairs. ``by``: ``number`` (residue number and
    insertion code, as CASP and TMscore do), ``order`` (i-th residue to i-th residue: a model built
    from the native's observed sequence, numbered 1..L), or ``auto`` (number, unless that pairs
    residues of different types while the sequences are identical in order)."""
    if by not in ("number", "order", "auto"):
        raise ValueError(f"pair by {by!r}")
    if by == "order":
        if len(model) != len(native):
            from ..errors import DataError

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


# ------------------------------------------------------------------------------------------- kabsch
def _superpose(Xg, Y, W):
    """Least-squares rotation R and translation t taking model rows ``Xg`` (C, N, 3) onto native
    ``Y`` (N, 3) over the weighted rows ``W`` (C, N): x -> R x + t. Returns R (C,3,3), t (C,3),
    the singular values and the reflection sign (for RMSD)."""
    import torch

    n = W.sum(1).clamp_min(1e-12)
    WX = W.unsqueeze(-1) * Xg
    sx = WX.sum(1)
    sy = W @ Y
    mx, my = sx / n[:, None], sy / n[:, None]
    H = WX.transpose(1, 2) @ Y - n[:, None, None] * mx.unsqueeze(2) * my.unsqueeze(1)  # sum w (x-mx)(y-my)^T
    U, S, Vh = torch.linalg.svd(H)
    d = torch.sign(torch.linalg.det(U) * torch.linalg.det(Vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    D = torch.ones_like(S)
    D[:, 2] = d
    R = Vh.transpose(1, 2) @ (D.unsqueeze(-1) * U.transpose(1, 2))
    t = my - (R @ mx.unsqueeze(-1)).squeeze(-1)
    return R, t, S, d


def _dist2(Xg, Y, R, t):
    diff = Xg @ R.transpose(1, 2) + t.unsqueeze(1) - Y
    return (diff * diff).sum(-1)


def rmsd_batch(X, Y, mask, device="cpu"):
    """C-alpha RMSD after one optimal superposition over the common residues, float64 (B,)."""
    import torch

    Xt = torch.as_tensor(X, dtype=torch.float64, device=device)
    Yt = torch.as_tensor(Y, dtype=torch.float64, device=device)
    W = torch.as_tensor(mask, dtype=torch.float64, device=device)
    R, t, _, _ = _superpose(Xt, Yt, W)
    d2 = _dist2(Xt, Yt, R, t)
    n = W.sum(1)
    out = torch.sqrt((d2 * W).sum(1) / n.clamp_min(1))
    out[n < 1] = float("nan")
    return out.cpu().numpy()


# ------------------------------------------------------------------------------------------- search
def quaternion_rotation(H, upper=None):
    """Optimal rotations for a batch of correlation matrices H = sum w (x - mx)(y - my)^T (c, 3, 3),
    float64: R (c, 3, 3) maximising sum w (R x).y, i.e. the Kabsch rotation with the reflection fix.
    Horn's unit-quaternion form: the eigenvector of the largest eigenvalue of the symmetric 4x4 key
    matrix K; that eigenvalue by Newton's method on det(K - lam I) (a quartic, monotone from an upper
    bound: sqrt(3) |H|_F, or ``upper`` = (G_x + G_y) / 2 when smaller, which is tight for good fits),
    the eigenvector as a column of adj(K - lam I). Written entry by entry on (c,) vectors, so thousands
    of 3x3 problems cost a few hundred vector operations; rows whose eigenvalue is degenerate (every
    cofactor vanishes) fall back to SVD."""
    import torch

    Sxx, Sxy, Sxz = H[:, 0, 0], H[:, 0, 1], H[:, 0, 2]
    Syx, Syy, Syz = H[:, 1, 0], H[:, 1, 1], H[:, 1, 2]
    Szx, Szy, Szz = H[:, 2, 0], H[:, 2, 1], H[:, 2, 2]
    k = {(0, 0): Sxx + Syy + Szz, (0, 1): Syz - Szy, (0, 2): Szx - Sxz, (0, 3): Sxy - Syx,
         (1, 1): Sxx - Syy - Szz, (1, 2): Sxy + Syx, (1, 3): Szx + Sxz,
         (2, 2): Syy - Sxx - Szz, (2, 3): Syz + Szy, (3, 3): Szz - Sxx - Syy}
    for (i, j) in list(k):
        k[(j, i)] = k[(i, j)]
    fro2 = (H * H).sum((1, 2))
    c2 = -2.0 * fro2
    detH = (Sxx * (Syy * Szz - Syz * Szy) - Sxy * (Syx * Szz - Syz * Szx) + Sxz * (Syx * Szy - Syy * Szx))
    c1 = -8.0 * detH
    c0 = _det4(k)
    lam = torch.sqrt(3.0 * fro2)
    if upper is not None:
        lam = torch.minimum(lam, upper * (1 + 1e-6) + 1e-9)
    for _ in range(60):
        lam2 = lam * lam
        p = (lam2 + c2) * lam2 + c1 * lam + c0
        dp = 4.0 * lam2 * lam + 2.0 * c2 * lam + c1
        step = torch.where(dp.abs() > 1e-300, p / dp, torch.zeros_like(p))
        lam = lam - step
        if bool((step.abs() <= 1e-11 * (1.0 + lam.abs())).all()):
            break
    a = dict(k)
    for i in range(4):
        a[(i, i)] = k[(i, i)] - lam
    # eigenvector: column 0 of adj(A), A = K - lam I (singular, rank 3 for a simple eigenvalue); the
    # other columns only for the rows where it vanishes
    scale = lam.abs().clamp_min(1e-12) ** 3
    q = _adj_column0(a)
    qn = q.norm(dim=1)
    weak = ~(qn > 1e-4 * scale)
    if bool(weak.any()):
        idx = torch.nonzero(weak).squeeze(1)
        A = torch.stack([torch.stack([a[(i, j)][idx] for j in range(4)], -1) for i in range(4)], -2)
        for j in (1, 2, 3):
            qj = _adj_column(A, j)
            nj = qj.norm(dim=1)
            better = nj > qn[idx]
            q[idx[better]], qn[idx[better]] = qj[better], nj[better]
    bad = ~(qn > 1e-8 * scale)
    q = q / qn.clamp_min(1e-300)[:, None]
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    R = torch.stack([
        torch.stack([w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        torch.stack([2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)], -1),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z], -1)], -2)
    if bool(bad.any()):
        U, _, Vh = torch.linalg.svd(H[bad])
        d = torch.sign(torch.linalg.det(U) * torch.linalg.det(Vh))
        D = torch.ones(len(d), 3, dtype=H.dtype, device=H.device)
        D[:, 2] = torch.where(d == 0, torch.ones_like(d), d)
        R[bad] = Vh.transpose(1, 2) @ (D.unsqueeze(-1) * U.transpose(1, 2))
    return R


def _minors2(a, r, s_):
    """2x2 minors of rows r and s_ of a 4x4 given entry-wise: {(i, j): a_ri a_sj - a_rj a_si}, i < j."""
    return {(i, j): a[(r, i)] * a[(s_, j)] - a[(r, j)] * a[(s_, i)] for i in range(4) for j in range(i + 1, 4)}


def _det4(a):
    """Determinant of 4x4 matrices given entry-wise (Laplace expansion along rows 0-1 / 2-3)."""
    s, m = _minors2(a, 0, 1), _minors2(a, 2, 3)
    return (s[(0, 1)] * m[(2, 3)] - s[(0, 2)] * m[(1, 3)] + s[(0, 3)] * m[(1, 2)]
            + s[(1, 2)] * m[(0, 3)] - s[(1, 3)] * m[(0, 2)] + s[(2, 3)] * m[(0, 1)])


def _adj_column0(a):
    """Column 0 of adj(A) (cofactors C_0i) for 4x4 matrices given entry-wise, from the 2x2 minors of rows 2-3."""
    import torch

    m = _minors2(a, 2, 3)
    a10, a11, a12, a13 = a[(1, 0)], a[(1, 1)], a[(1, 2)], a[(1, 3)]
    c0 = a11 * m[(2, 3)] - a12 * m[(1, 3)] + a13 * m[(1, 2)]
    c1 = -(a10 * m[(2, 3)] - a12 * m[(0, 3)] + a13 * m[(0, 2)])
    c2 = a10 * m[(1, 3)] - a11 * m[(0, 3)] + a13 * m[(0, 1)]
    c3 = -(a10 * m[(1, 2)] - a11 * m[(0, 2)] + a12 * m[(0, 1)])
    return torch.stack([c0, c1, c2, c3], 1)


def _adj_column(A, j: int):
    """Column j of the adjugate of a batch of 4x4 matrices (c, 4, 4): cofactors C_{j,i}, i = 0..3
    (valid for singular matrices, unlike det(A) inv(A))."""
    import torch

    rows = [r for r in range(4) if r != j]
    cols = []
    for i in range(4):
        c = [k for k in range(4) if k != i]
        M = A[:, rows][:, :, c]  # minor: remove row j, column i
        det = (M[:, 0, 0] * (M[:, 1, 1] * M[:, 2, 2] - M[:, 1, 2] * M[:, 2, 1])
               - M[:, 0, 1] * (M[:, 1, 0] * M[:, 2, 2] - M[:, 1, 2] * M[:, 2, 0])
               + M[:, 0, 2] * (M[:, 1, 0] * M[:, 2, 1] - M[:, 1, 1] * M[:, 2, 0]))
        cols.append(det if (i + j) % 2 == 0 else -det)
    return torch.stack(cols, 1)


def _features(X, M, Y, dtype):
    """Per-model residue features (B, N, 18): [x_i y_j (9), x (3), y (3), 1, |x|^2 + |y|^2, BIG if
    missing], rows of missing residues otherwise zero. One batched matmul with them gives a subset's sums (weights @ F) or, with the right
    coefficients, every squared distance under a superposition (F @ coef); see ``_dist2``."""
    import torch

    B, N, _ = X.shape
    m = M.unsqueeze(-1).to(dtype)
    F = torch.zeros(B, N, 18, dtype=dtype, device=X.device)
    F[..., :9] = (X.unsqueeze(-1) * Y.unsqueeze(0).unsqueeze(2)).reshape(B, N, 9)
    F[..., 9:12] = X
    F[..., 12:15] = Y
    F[..., 15] = 1.0
    F[..., 16] = (X * X).sum(-1) + (Y * Y).sum(-1)
    F = F * m  # a missing residue adds nothing to any sum ...
    F[..., 17] = (~M).to(dtype) * BIG  # ... and lies beyond every cutoff
    return F


def _solve(S):
    """Sums S (..., 18) of a subset (weights @ features) -> R (..., 3, 3), t (..., 3) in float64."""
    import torch

    shape = S.shape[:-1]
    S = S.reshape(-1, S.shape[-1]).to(torch.float64)
    n = S[:, 15].clamp_min(1e-12)
    sx, sy = S[:, 9:12], S[:, 12:15]
    H = S[:, :9].reshape(-1, 3, 3) - sx.unsqueeze(2) * sy.unsqueeze(1) / n[:, None, None]
    g = S[:, 16] - ((sx * sx).sum(1) + (sy * sy).sum(1)) / n  # G_x + G_y about the subset's centroids
    R = quaternion_rotation(H, upper=0.5 * g.clamp_min(0))
    t = (sy - (R * sx.unsqueeze(1)).sum(-1)) / n[:, None]  # elementwise: tiny bmm is slow on CPU
    return R.reshape(*shape, 3, 3), t.reshape(*shape, 3)


def _coef(R, t, dtype):
    """Coefficients c (..., 18) with F @ c = |R x + t - y|^2 (x, y per residue; F from ``_features``):
    |x|^2 + |y|^2 + |t|^2 + 2 (R^T t).x - 2 t.y - 2 sum_ab R_ba x_a y_b."""
    import torch

    c = torch.zeros(*R.shape[:-2], 18, dtype=torch.float64, device=R.device)
    c[..., :9] = -2.0 * R.transpose(-1, -2).reshape(*R.shape[:-2], 9)
    c[..., 9:12] = 2.0 * (R * t.unsqueeze(-1)).sum(-2)  # R^T t
    c[..., 12:15] = -2.0 * t
    c[..., 15] = (t * t).sum(-1)
    c[..., 16] = 1.0
    c[..., 17] = 1.0
    return c.to(dtype)


def _blocks(per_model, N, budget):
    """Contiguous ranges [b0, b1) of models and each range's padded width (its widest model), so that
    a range's (models x width x residues) work tensor stays near ``budget`` elements."""
    cnt = per_model.cpu().numpy()
    out, b0, B = [], 0, len(cnt)
    while b0 < B:
        if cnt[b0] == 0:
            b0 += 1
            continue
        K, b1 = int(cnt[b0]), b0 + 1
        while b1 < B and (b1 + 1 - b0) * max(K, int(cnt[b1])) * N <= budget:
            K = max(K, int(cnt[b1]))
            b1 += 1
        out.append((b0, b1, K))
        b0 = b1
    return out


def _member(key, sorted_sets):
    """Whether each key is in any of the sorted 1-D tensors."""
    import torch

    hit = torch.zeros(len(key), dtype=torch.bool, device=key.device)
    for v in sorted_sets:
        if len(v):
            i = torch.searchsorted(v, key).clamp_(max=len(v) - 1)
            hit |= v[i] == key
    return hit


def _first(key):
    """Mask of the first occurrence of each value of ``key``, and the sorted unique values + inverse."""
    import torch

    uniq, inv = torch.unique(key, return_inverse=True)
    first = torch.full((len(uniq),), len(key), dtype=torch.int64, device=key.device)
    first.scatter_reduce_(0, inv, torch.arange(len(key), device=key.device), "amin")
    return first, uniq, inv


def _search(X, mask, Y, s: Search, device, dtype, budget):
    """Best count per cutoff (B, 5), best TM-score sum (B,) and superpositions visited (B,).

    State: distinct subsets U (0/1 rows over the native's residues, grouped by model) and pairs
    (subset, extension threshold): the chains of spec §4.3. Each iteration superposes every distinct
    subset once (a subset reached under several thresholds is shared), scores every cutoff, and
    extends every pair; pairs that reach a (model, threshold, subset) seen before are dropped (their
    future is known), so chains end when they stop changing or fall into a cycle."""
    import torch

    B, N, _ = X.shape
    dev = torch.device(device)
    M = torch.as_tensor(mask, device=dev)
    Xt = torch.as_tensor(X, dtype=torch.float64, device=dev)
    Yt = torch.as_tensor(Y, dtype=torch.float64, device=dev)
    # centre both (numerics of the expanded distances; superpositions absorb translations)
    cnt = M.sum(1, keepdim=True).clamp_min(1).to(torch.float64)
    Xt = (Xt - (Xt * M.unsqueeze(-1)).sum(1, keepdim=True) / cnt.unsqueeze(-1)) * M.unsqueeze(-1)
    Yt = Yt - Yt.mean(0)
    F = _features(Xt, M, Yt, torch.float64).to(dtype)
    Ft = F.transpose(1, 2).contiguous()  # (B, 18, N)
    d0 = tm_d0(N)
    ext = sorted(set(float(e) for e in s.extend) | ({d0_search(N)} if s.tm_extend else set()))
    E2 = torch.tensor([e * e for e in ext], dtype=dtype, device=dev)
    C2 = [c * c for c in CUTOFFS]
    T = len(ext)
    # subset hashes: two integer-valued random weightings (sums < 2^24) and the subset size, as float64
    # products: exact whatever the float32 matmul precision (TF32 on CUDA, also when forced by environment)
    gen = torch.Generator(device="cpu").manual_seed(12345)
    hmax = max(2, (2**24 - 1) // N)
    HR = torch.ones(N, 3, dtype=torch.float64)
    HR[:, :2] = torch.randint(0, hmax, (N, 2), generator=gen).to(torch.float64)
    HR = HR.to(dev)

    def keys(hv, own, thr=None):
        h = hv[:, 0].long() * (2**24) + hv[:, 1].long()
        top = own if thr is None else own * T + thr
        return (top << 48) + h

    best = torch.zeros(B, len(CUTOFFS), dtype=torch.int32, device=dev)
    best_tm = torch.zeros(B, dtype=dtype, device=dev)
    visits = torch.zeros(B, dtype=torch.int64, device=dev)

    # seeds: windows over each model's common residues (ranks), grouped by its count of common residues
    rank = M.long().cumsum(1) - 1
    ncommon = M.sum(1).cpu().numpy()
    owners, starts, lengths = [], [], []
    for n in np.unique(ncommon):
        win = windows(int(n), s)
        if not win:
            continue
        bs = np.flatnonzero(ncommon == n)
        owners.append(np.repeat(bs, len(win)))
        starts.append(np.tile([w[0] for w in win], len(bs)))
        lengths.append(np.tile([w[1] for w in win], len(bs)))
    if not owners:
        return best.cpu().numpy(), best_tm.cpu().numpy(), visits.cpu().numpy()
    owner = torch.as_tensor(np.concatenate(owners), device=dev)
    st = torch.as_tensor(np.concatenate(starts), device=dev)
    ln = torch.as_tensor(np.concatenate(lengths), device=dev)
    order = torch.argsort(owner, stable=True)
    owner, st, ln = owner[order], st[order], ln[order]
    r = rank[owner]
    Wu = (M[owner] & (r >= st[:, None]) & (r < (st + ln)[:, None])).to(dtype)
    hv = Wu.to(torch.float64) @ HR
    ok = hv[:, 2] >= min(s.min_subset, 3)
    Wu, owner, hv = Wu[ok], owner[ok], hv[ok]
    first, _, _ = _first(keys(hv, owner))
    first = first.sort().values
    Wu, owner, hv = Wu[first], owner[first], hv[first]
    # every seed serves every threshold: its pairs, and its (model, threshold, subset) keys as visited
    pu = torch.arange(len(Wu), device=dev).repeat_interleave(T)
    pt = torch.arange(T, device=dev).repeat(len(Wu))
    visited = keys(hv[pu], owner[pu], pt)

    visited = [torch.sort(visited).values]
    for it in range(s.max_iter + 1):
        if len(Wu) == 0:
            break
        per_model = torch.bincount(owner, minlength=B)
        visits += per_model
        starts = torch.cumsum(per_model, 0) - per_model
        slot = torch.arange(len(owner), device=dev) - starts[owner]
        order = torch.argsort(pu, stable=True)  # pairs grouped by model, like the subsets
        pu, pt = pu[order], pt[order]
        pair_owner = owner[pu]
        pair_start = torch.searchsorted(pair_owner, torch.arange(B + 1, device=dev)).tolist()
        row_start = (torch.cumsum(per_model, 0) - per_model).tolist() + [len(owner)]
        extend = it < s.max_iter
        kids = torch.empty(len(pu) if extend else 0, N, dtype=dtype, device=dev)
        blocks = _blocks(per_model, N, budget)
        # phase 1: every subset's sums (one bmm per block); phase 2: all superpositions at once
        S_all = torch.empty(len(owner), 18, dtype=dtype, device=dev)
        for b0, b1, K in blocks:
            nb, r0, r1 = b1 - b0, row_start[b0], row_start[b1]
            if r1 - r0 == nb * K:  # every model of the range has K subsets: no padding
                S_all[r0:r1] = torch.bmm(Wu[r0:r1].view(nb, K, N), F[b0:b1]).view(-1, 18)
            else:
                Wp = torch.zeros(nb, K, N, dtype=dtype, device=dev)
                o, sl = owner[r0:r1] - b0, slot[r0:r1]
                Wp[o, sl] = Wu[r0:r1]
                S_all[r0:r1] = torch.bmm(Wp, F[b0:b1])[o, sl]
                del Wp
        R, t = _solve(S_all)
        coef = _coef(R, t, dtype)
        # phase 3: distances to every residue under every superposition; scores; extensions
        all_thr = it == 0  # seeds: every subset extends at every threshold, pairs in (subset, threshold) order
        for b0, b1, K in blocks:
            nb, r0, r1 = b1 - b0, row_start[b0], row_start[b1]
            if r1 - r0 == nb * K:
                cp = coef[r0:r1].view(nb, K, 18)
            else:
                cp = torch.zeros(nb, K, 18, dtype=dtype, device=dev)
                cp[..., 15] = BIG  # padding rows: every residue beyond every cutoff (present ones ...
                cp[..., 17] = 1.0  # ... and missing ones)
                cp[owner[r0:r1] - b0, slot[r0:r1]] = coef[r0:r1]
            D = torch.bmm(cp, Ft[b0:b1])  # (nb, K, N): squared distances, every residue
            counts = torch.stack([(D < c).sum(-1, dtype=torch.int32) for c in C2], -1).amax(1)  # (nb, 5)
            torch.maximum(best[b0:b1], counts, out=best[b0:b1])
            tm = D.mul(1.0 / (d0 * d0)).add_(1.0).reciprocal_().sum(-1).amax(1)
            torch.maximum(best_tm[b0:b1], tm, out=best_tm[b0:b1])
            if not extend:
                continue
            p0, p1 = pair_start[b0], pair_start[b1]
            # new subset of each pair: 1 where d^2 < e^2 (strict), as 0/1 in ``dtype``
            kid = kids[p0:p1]
            if all_thr and r1 - r0 == nb * K:
                torch.sub(E2[None, :, None], D.view(-1, 1, N), out=kid.view(-1, T, N))
            else:
                rows = (pair_owner[p0:p1] - b0) * K + slot[pu[p0:p1]]
                torch.index_select(D.view(-1, N), 0, rows, out=kid)
                kid.neg_().add_(E2[pt[p0:p1]][:, None])
            kid.sign_().clamp_(min=0)
        if not extend:
            break
        hv = kids.to(torch.float64) @ HR
        sel = torch.nonzero(hv[:, 2] >= s.min_subset).squeeze(1)
        key = keys(hv[sel], pair_owner[sel], pt[sel])
        first, _, _ = _first(key)
        first = first[~_member(key[first], visited)]
        if len(first) == 0:
            break
        sel = sel[first.sort().values]
        if s.beam and it > 0:  # keep the ``beam`` largest subsets per (model, threshold)
            grp = pair_owner[sel] * T + pt[sel]
            size = hv[sel, 2]
            o2 = torch.argsort(size, descending=True, stable=True)
            o2 = o2[torch.argsort(grp[o2], stable=True)]
            g2 = grp[o2]
            gstart = torch.searchsorted(g2, g2)
            rank = torch.arange(len(g2), device=dev) - gstart
            sel = sel[o2[rank < s.beam].sort().values]
        visited.append(torch.sort(keys(hv[sel], pair_owner[sel], pt[sel])).values)
        # distinct subsets among the new pairs (sorted by model: the model is the key's top bits)
        sfirst, _, sinv = _first(keys(hv[sel], pair_owner[sel]))
        Wu, owner = kids.index_select(0, sel[sfirst]), pair_owner[sel[sfirst]]
        pu, pt = sinv, pt[sel]
    return best.cpu().numpy(), best_tm.cpu().numpy(), visits.cpu().numpy()


def score_coords(native_xyz, models_xyz, mask=None, *, device: str = "cpu", dtype: str = "float32",
                 search: Search | None = None, budget: int = 2**20, chunk: int | None = None) -> dict[str, np.ndarray]:
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
        idx = order[a:a + step]
        best[idx], tm[idx], visits[idx] = _search(X[idx], M[idx], Y, s, device, tdtype, budget)
    p = best / N
    out = {"rmsd": rmsd, "gdt_ts": p[:, TS_IDX].mean(1), "gdt_ha": p[:, HA_IDX].mean(1), "tm": tm / N,
           "n_common": M.sum(1), "superpositions": visits}
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
