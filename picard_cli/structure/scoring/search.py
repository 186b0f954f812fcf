"""The GDT / TM-score superposition search (spec: ddpm-fid-alphafold §4.3).

Seeds are contiguous windows of the common residues (:func:`windows`); from every seed, one chain of
superpositions per extension threshold e (Kabsch on the subset, then the subset := residues within
e Å, until it stops changing or ``max_iter``); every superposition visited updates the best count of
every cutoff and the best TM-score.

State of one search (:func:`_search`): the distinct subsets of the current step (a :class:`_Front`:
0/1 rows over the native's residues, grouped by model) and the pairs (subset, extension threshold),
the chains. Each step superposes every distinct subset once (a subset reached under several
thresholds is shared), scores every cutoff, and extends every pair; pairs that reach a (model,
threshold, subset) seen before are dropped (their future is known), so chains end when they stop
changing or fall into a cycle. Subsets are identified by integer hashes (:meth:`_Problem.keys`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .definitions import BIG, CUTOFFS, Search, d0_search, tm_d0
from .superposition import _coef, _features, _solve


# ------------------------------------------------------------------------------ seeds and helpers
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


# ------------------------------------------------------------------------------ search state
@dataclass
class _Problem:
    """What every step of one search reads: the models' mask M (B, N), residue features F (B, N, 18)
    and their transpose Ft, squared extension thresholds E2 (T,) and cutoffs C2, TM-score's d0, and
    the hash weights HR (N, 3) of subsets."""

    s: Search
    dev: object
    dtype: object
    budget: int
    B: int
    N: int
    M: object
    F: object
    Ft: object
    E2: object
    C2: list
    T: int
    d0: float
    HR: object

    def keys(self, hv, own, thr=None):
        """Integer keys of subsets (hashes ``hv``) of models ``own``, with their thresholds ``thr`` if given."""
        h = hv[:, 0].long() * (2**24) + hv[:, 1].long()
        top = own if thr is None else own * self.T + thr
        return (top << 48) + h


@dataclass
class _Front:
    """Distinct subsets ``Wu`` (rows over the native's residues, 0/1 in the search dtype) of models
    ``owner``, and the pairs of one step: subset index ``pu``, threshold index ``pt``."""

    Wu: object
    owner: object
    pu: object
    pt: object


@dataclass
class _Layout:
    """Where a step's rows lie: subsets per model, each subset's slot in its model, the pairs' models
    and the first pair / row of every model, and the blocks of models searched together."""

    per_model: object
    slot: object
    pair_owner: object
    pair_start: list
    row_start: list
    blocks: list


def _hash_weights(N, dev):
    """Subset hashes: two integer-valued random weightings (sums < 2^24) and the subset size, as float64
    products: exact whatever the float32 matmul precision (TF32 on CUDA, also when forced by environment)."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(12345)
    hmax = max(2, (2**24 - 1) // N)
    HR = torch.ones(N, 3, dtype=torch.float64)
    HR[:, :2] = torch.randint(0, hmax, (N, 2), generator=gen).to(torch.float64)
    return HR.to(dev)


def _prepare(X, mask, Y, s: Search, device, dtype, budget) -> _Problem:
    """Centred coordinates as residue features, and the thresholds of the search."""
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
    ext = sorted(set(float(e) for e in s.extend) | ({d0_search(N)} if s.tm_extend else set()))
    E2 = torch.tensor([e * e for e in ext], dtype=dtype, device=dev)
    return _Problem(
        s, dev, dtype, budget, B, N, M, F, Ft, E2, [c * c for c in CUTOFFS], len(ext), tm_d0(N), _hash_weights(N, dev)
    )


def _seed_windows(P: _Problem):
    """Seeds: windows over each model's common residues (ranks), grouped by its count of common
    residues; (owner, start, length) tensors sorted by model, or None when there is no seed."""
    import torch

    ncommon = P.M.sum(1).cpu().numpy()
    owners, starts, lengths = [], [], []
    for n in np.unique(ncommon):
        win = windows(int(n), P.s)
        if not win:
            continue
        bs = np.flatnonzero(ncommon == n)
        owners.append(np.repeat(bs, len(win)))
        starts.append(np.tile([w[0] for w in win], len(bs)))
        lengths.append(np.tile([w[1] for w in win], len(bs)))
    if not owners:
        return None
    owner = torch.as_tensor(np.concatenate(owners), device=P.dev)
    st = torch.as_tensor(np.concatenate(starts), device=P.dev)
    ln = torch.as_tensor(np.concatenate(lengths), device=P.dev)
    order = torch.argsort(owner, stable=True)
    return owner[order], st[order], ln[order]


def _seed_front(P: _Problem):
    """The first front: the distinct seed subsets, each paired with every threshold, and the sorted
    keys of those (model, threshold, subset) as visited; (None, None) when there is no seed."""
    import torch

    seeds = _seed_windows(P)
    if seeds is None:
        return None, None
    owner, st, ln = seeds
    r = (P.M.long().cumsum(1) - 1)[owner]  # ranks of the common residues
    Wu = (P.M[owner] & (r >= st[:, None]) & (r < (st + ln)[:, None])).to(P.dtype)
    hv = Wu.to(torch.float64) @ P.HR
    ok = hv[:, 2] >= min(P.s.min_subset, 3)
    Wu, owner, hv = Wu[ok], owner[ok], hv[ok]
    first, _, _ = _first(P.keys(hv, owner))
    first = first.sort().values
    Wu, owner, hv = Wu[first], owner[first], hv[first]
    # every seed serves every threshold: its pairs, and its (model, threshold, subset) keys as visited
    pu = torch.arange(len(Wu), device=P.dev).repeat_interleave(P.T)
    pt = torch.arange(P.T, device=P.dev).repeat(len(Wu))
    visited = P.keys(hv[pu], owner[pu], pt)
    return _Front(Wu, owner, pu, pt), [torch.sort(visited).values]


# ------------------------------------------------------------------------------ one step
def _layout(P: _Problem, front: _Front) -> tuple[_Front, _Layout]:
    """The front with its pairs grouped by model (like the subsets), and the step's row layout."""
    import torch

    owner = front.owner
    per_model = torch.bincount(owner, minlength=P.B)
    starts = torch.cumsum(per_model, 0) - per_model
    slot = torch.arange(len(owner), device=P.dev) - starts[owner]
    order = torch.argsort(front.pu, stable=True)  # pairs grouped by model, like the subsets
    pu, pt = front.pu[order], front.pt[order]
    pair_owner = owner[pu]
    pair_start = torch.searchsorted(pair_owner, torch.arange(P.B + 1, device=P.dev)).tolist()
    row_start = (torch.cumsum(per_model, 0) - per_model).tolist() + [len(owner)]
    lay = _Layout(per_model, slot, pair_owner, pair_start, row_start, _blocks(per_model, P.N, P.budget))
    return _Front(front.Wu, owner, pu, pt), lay


def _subset_sums(P: _Problem, front: _Front, lay: _Layout):
    """Phase 1: every subset's feature sums (one bmm per block of models), (subsets, 18)."""
    import torch

    N, Wu, owner = P.N, front.Wu, front.owner
    S_all = torch.empty(len(owner), 18, dtype=P.dtype, device=P.dev)
    for b0, b1, K in lay.blocks:
        nb, r0, r1 = b1 - b0, lay.row_start[b0], lay.row_start[b1]
        if r1 - r0 == nb * K:  # every model of the range has K subsets: no padding
            S_all[r0:r1] = torch.bmm(Wu[r0:r1].view(nb, K, N), P.F[b0:b1]).view(-1, 18)
        else:
            Wp = torch.zeros(nb, K, N, dtype=P.dtype, device=P.dev)
            o, sl = owner[r0:r1] - b0, lay.slot[r0:r1]
            Wp[o, sl] = Wu[r0:r1]
            S_all[r0:r1] = torch.bmm(Wp, P.F[b0:b1])[o, sl]
            del Wp
    return S_all


def _block_coef(P: _Problem, front: _Front, lay: _Layout, coef, b0, b1, K):
    """Distance coefficients of a block's subsets as (models, K, 18), padding rows included."""
    import torch

    nb, r0, r1 = b1 - b0, lay.row_start[b0], lay.row_start[b1]
    if r1 - r0 == nb * K:
        return coef[r0:r1].view(nb, K, 18)
    cp = torch.zeros(nb, K, 18, dtype=P.dtype, device=P.dev)
    cp[..., 15] = BIG  # padding rows: every residue beyond every cutoff (present ones ...
    cp[..., 17] = 1.0  # ... and missing ones)
    cp[front.owner[r0:r1] - b0, lay.slot[r0:r1]] = coef[r0:r1]
    return cp


def _extend_block(P: _Problem, front: _Front, lay: _Layout, D, kids, b0, b1, K, all_thr):
    """The new subset of each pair of a block: 1 where d^2 < e^2 (strict), as 0/1 in the search dtype,
    written into its rows of ``kids``."""
    import torch

    N, nb, r0, r1 = P.N, b1 - b0, lay.row_start[b0], lay.row_start[b1]
    p0, p1 = lay.pair_start[b0], lay.pair_start[b1]
    kid = kids[p0:p1]
    if all_thr and r1 - r0 == nb * K:
        torch.sub(P.E2[None, :, None], D.view(-1, 1, N), out=kid.view(-1, P.T, N))
    else:
        rows = (lay.pair_owner[p0:p1] - b0) * K + lay.slot[front.pu[p0:p1]]
        torch.index_select(D.view(-1, N), 0, rows, out=kid)
        kid.neg_().add_(P.E2[front.pt[p0:p1]][:, None])
    kid.sign_().clamp_(min=0)


def _score_and_extend(P: _Problem, front: _Front, lay: _Layout, coef, best, best_tm, extend, all_thr):
    """Phase 3: distances to every residue under every superposition; the best count per cutoff and
    the best TM-score sum updated in place; the pairs' new subsets (empty unless ``extend``).
    ``all_thr``: seeds, every subset extends at every threshold, pairs in (subset, threshold) order."""
    import torch

    kids = torch.empty(len(front.pu) if extend else 0, P.N, dtype=P.dtype, device=P.dev)
    for b0, b1, K in lay.blocks:
        D = torch.bmm(_block_coef(P, front, lay, coef, b0, b1, K), P.Ft[b0:b1])  # (nb, K, N): squared distances
        counts = torch.stack([(D < c).sum(-1, dtype=torch.int32) for c in P.C2], -1).amax(1)  # (nb, 5)
        torch.maximum(best[b0:b1], counts, out=best[b0:b1])
        tm = D.mul(1.0 / (P.d0 * P.d0)).add_(1.0).reciprocal_().sum(-1).amax(1)
        torch.maximum(best_tm[b0:b1], tm, out=best_tm[b0:b1])
        if extend:
            _extend_block(P, front, lay, D, kids, b0, b1, K, all_thr)
    return kids


# ------------------------------------------------------------------------------ the next front
def _beam(P: _Problem, sel, pair_owner, pt, hv, beam: int):
    """Keep the ``beam`` largest subsets per (model, threshold) among the pairs ``sel``."""
    import torch

    grp = pair_owner[sel] * P.T + pt[sel]
    size = hv[sel, 2]
    o2 = torch.argsort(size, descending=True, stable=True)
    o2 = o2[torch.argsort(grp[o2], stable=True)]
    g2 = grp[o2]
    gstart = torch.searchsorted(g2, g2)
    rank = torch.arange(len(g2), device=P.dev) - gstart
    return sel[o2[rank < beam].sort().values]


def _next_front(P: _Problem, front: _Front, lay: _Layout, kids, visited: list, beam: int):
    """The pairs whose new subset is large enough and whose (model, threshold, subset) is new, their
    keys appended to ``visited``, as the next front of distinct subsets; None when none is left."""
    import torch

    pair_owner, pt = lay.pair_owner, front.pt
    hv = kids.to(torch.float64) @ P.HR
    sel = torch.nonzero(hv[:, 2] >= P.s.min_subset).squeeze(1)
    key = P.keys(hv[sel], pair_owner[sel], pt[sel])
    first, _, _ = _first(key)
    first = first[~_member(key[first], visited)]
    if len(first) == 0:
        return None
    sel = sel[first.sort().values]
    if beam:
        sel = _beam(P, sel, pair_owner, pt, hv, beam)
    visited.append(torch.sort(P.keys(hv[sel], pair_owner[sel], pt[sel])).values)
    # distinct subsets among the new pairs (sorted by model: the model is the key's top bits)
    sfirst, _, sinv = _first(P.keys(hv[sel], pair_owner[sel]))
    return _Front(kids.index_select(0, sel[sfirst]), pair_owner[sel[sfirst]], sinv, pt[sel])


# ------------------------------------------------------------------------------ the search
def _search(X, mask, Y, s: Search, device, dtype, budget):
    """Best count per cutoff (B, 5), best TM-score sum (B,) and superpositions visited (B,) of the
    models ``X`` (B, N, 3) with ``mask`` (B, N) against the native ``Y`` (N, 3)."""
    import torch

    P = _prepare(X, mask, Y, s, device, dtype, budget)
    best = torch.zeros(P.B, len(CUTOFFS), dtype=torch.int32, device=P.dev)
    best_tm = torch.zeros(P.B, dtype=dtype, device=P.dev)
    visits = torch.zeros(P.B, dtype=torch.int64, device=P.dev)
    front, visited = _seed_front(P)
    for it in range(s.max_iter + 1):
        if front is None or len(front.Wu) == 0:
            break
        front, lay = _layout(P, front)
        visits += lay.per_model
        extend = it < s.max_iter
        # phase 1: every subset's sums (one bmm per block); phase 2: all superpositions at once
        R, t = _solve(_subset_sums(P, front, lay))
        kids = _score_and_extend(P, front, lay, _coef(R, t, dtype), best, best_tm, extend, all_thr=it == 0)
        if not extend:
            break
        # after the first extension, each (model, threshold) keeps its ``beam`` largest subsets
        front = _next_front(P, front, lay, kids, visited, s.beam if it > 0 else 0)
    return best.cpu().numpy(), best_tm.cpu().numpy(), visits.cpu().numpy()
