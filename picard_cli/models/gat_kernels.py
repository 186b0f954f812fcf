"""Fused CPU kernels (numba) for the stacked GAT's attention-weighted sums.

    out[i, s, h, :] = sum_{e: dst_e = i} alpha[e, s, h] * v[src_e, s, g(h), :]

with g(h) = h (one value group per head) or 0 (one value shared by all heads).
The torch path (``stacked_gnn._AttentionAggregate``) materialises the messages
(E, S, heads, D) with index_select, multiplies and scatters them with index_add:
three passes over the largest tensor of the step, which dominated the PIGN-GAT
step (the 8-head conv aggregates E x S x 512 numbers per Picard step). These
kernels walk the CSR structure instead (edges sorted by target for the forward
pass and the gradient of alpha, by source for the gradient of v): each output
row is accumulated in cache by one thread and written once, no scatter, no
atomics. With a shared value (PIGN-GAT's averaged heads) the output is seed-major
(S, N, heads, D), so the per-seed product that follows (``torch.bmm``) reads it without a
transposing copy; with one value per head everything is node-major (N, S, heads, D), so each
edge streams contiguous rows. Every output element is summed by one thread in a fixed order, so
results do not depend on the thread count.

Summation over a node's edges runs in edge order, like the torch path; with
``fastmath`` the compiler may fuse multiply-adds and reassociate the length-D
dot products of the alpha gradient, so results differ from the torch path in
the last bits (tests bound the difference).
"""

from __future__ import annotations

import os
import sys

import numpy as np

try:  # optional at import: the torch path covers every case without it
    import torch as _torch

    # numba's OpenMP pool is torch's (one libgomp): started at numba's default size (all cores) it would
    # also resize torch's pool. Start it at torch's size; calls restore torch's count (``_call``).
    # Only before numba's first import (torch_geometric may import it first): numba re-reads the variable
    # at every compilation and refuses a value other than the one its pool was launched with.
    if "numba" not in sys.modules:
        os.environ.setdefault("NUMBA_NUM_THREADS", str(_torch.get_num_threads()))
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None


def kernel_name(switch: str) -> str:
    """``numba`` unless numba is missing or the environment variable ``switch`` says ``torch``."""
    return "numba" if numba is not None and os.environ.get(switch, "numba") != "torch" else "torch"


def name() -> str:
    """The aggregation path CPU runs take (recorded with each run); PICARD_GAT_KERNEL=torch turns
    the kernels off."""
    return kernel_name("PICARD_GAT_KERNEL")


def enabled(t) -> bool:
    """Use the kernels for this tensor? CPU float32 only."""
    import torch

    return name() == "numba" and t.device.type == "cpu" and t.dtype == torch.float32


if numba is not None:

    @njit(parallel=True, cache=True, fastmath=True)
    def _forward(rowptr, src, alpha, v, out):
        """Shared value (G = 1, PIGN-GAT's averaged heads): seed-major output for the bmm after it."""
        S, N, H, D = out.shape
        for i in prange(N):
            buf = np.empty((H, D), dtype=out.dtype)  # summed in a thread-local block, stored once:
            for s in range(S):  # ~15% faster than summing into the output row (43 -> 37 ms, Cora, 48 seeds)
                buf[:] = 0.0
                for e in range(rowptr[i], rowptr[i + 1]):
                    vr, ae = v[src[e], s, 0], alpha[e, s]
                    for h in range(H):
                        a = ae[h]
                        for d in range(D):
                            buf[h, d] += a * vr[d]
                out[s, i] = buf

    # One value group per head (G = heads; plain GAT and IterGNN-GAT): node-major throughout, arrays
    # viewed as (rows, S * heads, D), so every edge streams two contiguous rows of S * heads * D
    # numbers. Against the seed-major kernels these replaced (whose reads jumped N * heads * D
    # numbers from seed to seed) the backward pass of GAT/Cora's first layer (100 seeds) went from
    # ~140 ms to ~60 ms (2026-11-27, 2-core CPU).
    @njit(parallel=True, cache=True, fastmath=True)
    def _forward_heads(rowptr, src, alpha, v, out):
        N, K, D = out.shape
        for i in prange(N):
            o = out[i]
            o[:] = 0.0
            for e in range(rowptr[i], rowptr[i + 1]):
                ae, vj = alpha[e], v[src[e]]
                for k in range(K):
                    a = ae[k]
                    for d in range(D):
                        o[k, d] += a * vj[k, d]

    @njit(parallel=True, cache=True, fastmath=True)
    def _grad_alpha_heads(rowptr, src, g, v, ga):
        N, K, D = g.shape
        for i in prange(N):
            gi = g[i]
            for e in range(rowptr[i], rowptr[i + 1]):
                vj, out = v[src[e]], ga[e]
                for k in range(K):
                    acc = np.float32(0.0)
                    for d in range(D):
                        acc += gi[k, d] * vj[k, d]
                    out[k] = acc

    @njit(parallel=True, cache=True, fastmath=True)
    def _grad_v_heads(colptr, by_src, dst, alpha, g, gv):
        N, K, D = gv.shape
        for j in prange(N):
            o = gv[j]
            o[:] = 0.0
            for c in range(colptr[j], colptr[j + 1]):
                e = by_src[c]
                ae, gi = alpha[e], g[dst[e]]
                for k in range(K):
                    a = ae[k]
                    for d in range(D):
                        o[k, d] += a * gi[k, d]

    @njit(parallel=True, cache=True, fastmath=True)
    def _grad_shared(rowptr, src, alpha, g, v, ga, c):
        """Shared value (G = 1): the gradient of alpha and, per edge, the head-contracted message
        c[e, s, :] = sum_h alpha[e, s, h] g[s, dst_e, h, :], in one pass that reads g once."""
        S, N, H, D = g.shape
        for i in prange(N):
            for e in range(rowptr[i], rowptr[i + 1]):
                j = src[e]
                for s in range(S):
                    vr = v[j, s, 0]
                    ce = c[e, s]
                    ce[:] = 0.0
                    for h in range(H):
                        gr = g[s, i, h]
                        a = alpha[e, s, h]
                        acc = np.float32(0.0)
                        for d in range(D):
                            acc += gr[d] * vr[d]
                            ce[d] += a * gr[d]
                        ga[e, s, h] = acc

    @njit(parallel=True, cache=True, fastmath=True)
    def _sum_by_src(colptr, by_src, c, gv):
        """gv[j, s, 0, :] = sum of c[e, s, :] over the edges e leaving j."""
        N, S, _, D = gv.shape
        for j in prange(N):
            for s in range(S):
                o = gv[j, s, 0]
                o[:] = 0.0
                for k in range(colptr[j], colptr[j + 1]):
                    ce = c[by_src[k], s]
                    for d in range(D):
                        o[d] += ce[d]

    @njit(parallel=True, cache=True, fastmath=True)
    def _softmax(rowptr, src, a_src, a_dst, slope, alpha):
        """alpha[e, s, h] = softmax over the edges e into node i of LeakyReLU(a_src[src_e] + a_dst[i]),
        as PyG's ``softmax``: exp(z - max) / (sum + 1e-16). Arrays are viewed as (rows, S * heads)
        so the inner loops run over contiguous memory."""
        N, K = a_dst.shape
        for i in prange(N):
            lo, hi = rowptr[i], rowptr[i + 1]
            ad = a_dst[i]
            m = np.full(K, -np.inf, dtype=alpha.dtype)
            for e in range(lo, hi):
                asr, ae = a_src[src[e]], alpha[e]
                for k in range(K):
                    z = asr[k] + ad[k]
                    z = z if z > 0 else z * slope
                    ae[k] = z
                    m[k] = max(m[k], z)
            total = np.zeros(K, dtype=alpha.dtype)
            for e in range(lo, hi):
                ae = alpha[e]
                for k in range(K):
                    x = np.exp(ae[k] - m[k])
                    ae[k] = x
                    total[k] += x
            for k in range(K):
                total[k] = 1.0 / (total[k] + np.float32(1e-16))
            for e in range(lo, hi):
                ae = alpha[e]
                for k in range(K):
                    ae[k] *= total[k]

    @njit(parallel=True, cache=True, fastmath=True)
    def _softmax_grad(rowptr, src, a_src, a_dst, slope, alpha, grad_alpha, grad_z, grad_dst):
        """Back through the softmax and the LeakyReLU: grad_z per edge, and its sum per target."""
        N, K = a_dst.shape
        for i in prange(N):
            lo, hi = rowptr[i], rowptr[i + 1]
            ad = a_dst[i]
            dot = np.zeros(K, dtype=alpha.dtype)
            for e in range(lo, hi):
                ae, ge = alpha[e], grad_alpha[e]
                for k in range(K):
                    dot[k] += ae[k] * ge[k]
            acc = grad_dst[i]
            acc[:] = 0.0
            for e in range(lo, hi):
                ae, ge, gz, asr = alpha[e], grad_alpha[e], grad_z[e], a_src[src[e]]
                for k in range(K):
                    g = ae[k] * (ge[k] - dot[k])
                    if asr[k] + ad[k] <= 0:
                        g *= slope
                    gz[k] = g
                    acc[k] += g

    @njit(parallel=True, cache=True, fastmath=True)
    def _edge_sum_by_src(colptr, by_src, x, out):
        """out[j] = sum of x[e] over the edges e leaving j (rows of (S * heads) numbers)."""
        N, K = out.shape
        for j in prange(N):
            o = out[j]
            o[:] = 0.0
            for k in range(colptr[j], colptr[j + 1]):
                xe = x[by_src[k]]
                for c in range(K):
                    o[c] += xe[c]


def _call(kernel, *args):
    """Run a kernel on torch's thread count and leave torch's count as it was."""
    import torch

    n = torch.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    kernel(*args)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def forward(csr, alpha, v):
    """alpha (E, S, heads), v (N, S, G, D) contiguous float32 -> (S, N, heads, D), seed-major, for
    a value shared by several heads (G = 1 < heads); node-major (N, S, heads, D) for one value per
    head (G = heads)."""
    import torch

    N, S, G, D = v.shape  # N: input rows; the output has one row per CSR row (fewer in a field pass)
    H, n = alpha.shape[-1], csr.rowptr.numel() - 1
    if node_major(alpha, v):
        out = torch.empty(n, S, H, D, dtype=v.dtype)
        _call(
            _forward_heads,
            csr.rowptr.numpy(),
            csr.src.numpy(),
            alpha.detach().view(-1, S * H).numpy(),
            v.detach().view(N, S * H, D).numpy(),
            out.view(n, S * H, D).numpy(),
        )
        return out
    out = torch.empty(S, n, H, D, dtype=v.dtype)
    _call(_forward, csr.rowptr.numpy(), csr.src.numpy(), alpha.detach().numpy(), v.detach().numpy(), out.numpy())
    return out


def node_major(alpha, v) -> bool:
    """Whether :func:`forward` returns node-major output for these shapes."""
    return v.shape[2] == alpha.shape[-1]


def backward(csr, alpha, v, grad_out):
    """Gradients of ``forward`` w.r.t. alpha and v; ``grad_out`` laid out like its output."""
    import torch

    N, S, G, D = v.shape
    ga, gv = torch.empty_like(alpha), torch.empty_like(v)
    if node_major(alpha, v):
        K = S * G
        g = grad_out.contiguous().view(-1, K, D).numpy()
        _call(
            _grad_alpha_heads,
            csr.rowptr.numpy(),
            csr.src.numpy(),
            g,
            v.detach().view(N, K, D).numpy(),
            ga.view(-1, K).numpy(),
        )
        _call(
            _grad_v_heads,
            csr.colptr.numpy(),
            csr.by_src.numpy(),
            csr.dst.numpy(),
            alpha.detach().view(-1, K).numpy(),
            g,
            gv.view(N, K, D).numpy(),
        )
        return ga, gv
    # shared value: contract the heads per edge once, then sum by source
    g = grad_out.contiguous().numpy()
    c = torch.empty(alpha.shape[0], S, D, dtype=v.dtype)
    _call(
        _grad_shared,
        csr.rowptr.numpy(),
        csr.src.numpy(),
        alpha.detach().numpy(),
        g,
        v.detach().numpy(),
        ga.numpy(),
        c.numpy(),
    )
    _call(_sum_by_src, csr.colptr.numpy(), csr.by_src.numpy(), c.numpy(), gv.numpy())
    return ga, gv


def softmax(csr, a_src, a_dst, slope: float):
    """Attention coefficients (E, S, heads) from per-node logits a_src, a_dst (N, S, heads)."""
    import torch

    def flat(t):
        return t.detach().reshape(t.shape[0], -1).numpy()

    alpha = torch.empty(csr.src.numel(), *a_dst.shape[1:], dtype=a_dst.dtype)
    _call(_softmax, csr.rowptr.numpy(), csr.src.numpy(), flat(a_src), flat(a_dst), np.float32(slope), flat(alpha))
    return alpha


def softmax_backward(csr, a_src, a_dst, slope: float, alpha, grad_alpha):
    """Gradients of ``softmax`` w.r.t. a_src and a_dst."""
    import torch

    def flat(t):
        return t.detach().reshape(t.shape[0], -1).numpy()

    grad_z, grad_dst, grad_src = torch.empty_like(alpha), torch.empty_like(a_dst), torch.empty_like(a_src)
    _call(
        _softmax_grad,
        csr.rowptr.numpy(),
        csr.src.numpy(),
        flat(a_src),
        flat(a_dst),
        np.float32(slope),
        flat(alpha),
        flat(grad_alpha.contiguous()),
        flat(grad_z),
        flat(grad_dst),
    )
    _call(_edge_sum_by_src, csr.colptr.numpy(), csr.by_src.numpy(), flat(grad_z), flat(grad_src))
    return grad_src, grad_dst
