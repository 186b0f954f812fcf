"""Counter-based dropout, fused with the activation before it (numba, CPU): recipe field
``dropout_rng=counter``.

Why: in the stacked Table 5 models, drawing dropout masks with ``torch.rand_like`` (one
Mersenne-Twister stream, one thread) took about a quarter of a training epoch on the 2-core CPU
(PIGN-GCN/Cora, 100 seeds: training forward pass ~305 ms, the same pass in evaluation mode,
without dropout, ~120 ms; with this kernel the training pass is ~125 ms), and applying the masks
(compare, scale, multiply; then again in the backward pass) cost several more passes over the
largest tensors. Here the keep decision of element ``i`` is a hash of (key, i): SplitMix64's
finaliser (Steele, Lea & Flood 2014) of ``key + i * golden``, whose top 24 bits are compared with
``round(p * 2^24)`` (keep probability 1 - p up to 2^-24). One parallel pass computes
``act(z) * keep / (1 - p)`` (ELU: torch's ``F.elu`` first, then the kernel); no mask is stored:
the backward pass recomputes it from the key (ReLU: reads it off the output). Masks depend on
(key, i) only, so results do not depend on the thread count. The key of each call is drawn from
torch's default generator, so runs stay reproducible from their seed and ``frozen_noise`` (one
mask per solve) replays masks as it does for ``rand_like``.

It is a different random stream from ``torch.rand_like``: runs with ``dropout_rng=counter`` are
different runs (their own config hash), with the same dropout law.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .gat_kernels import _call, numba

_BLOCK = 1 << 15

if numba is not None:
    from numba import njit, prange

    _GOLDEN, _M1, _M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)

    @njit(inline="always")
    def _bits24(key, i):
        z = key + np.uint64(i) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
        return z >> np.uint64(40)

    # One kernel per activation (a runtime switch inside the loop stops vectorisation: 2-4x slower).
    # Forward: out = act(z) * keep * scale. Backward: gz = g * act'(z) * keep * scale, for ReLU from
    # the output alone (out > 0 exactly where z > 0 and kept), else from the key. (ELU is torch's
    # vectorised F.elu before the plain kernel: numba's scalar expm1 was 10x slower.)
    @njit(parallel=True, cache=True)
    def _fwd_none(z, out, key, thr, scale):
        n = z.size
        for b in prange((n + _BLOCK - 1) // _BLOCK):
            for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
                out[i] = z[i] * scale if _bits24(key, i) >= thr else np.float32(0.0)

    @njit(parallel=True, cache=True)
    def _fwd_relu(z, out, key, thr, scale):
        n = z.size
        for b in prange((n + _BLOCK - 1) // _BLOCK):
            for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
                out[i] = z[i] * scale if (_bits24(key, i) >= thr) & (z[i] > 0) else np.float32(0.0)

    @njit(parallel=True, cache=True)
    def _bwd_none(z, g, gz, key, thr, scale):
        n = g.size
        for b in prange((n + _BLOCK - 1) // _BLOCK):
            for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
                gz[i] = g[i] * scale if _bits24(key, i) >= thr else np.float32(0.0)

    @njit(parallel=True, cache=True)
    def _bwd_relu(out, g, gz, key, thr, scale):
        n = g.size
        for b in prange((n + _BLOCK - 1) // _BLOCK):
            for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
                gz[i] = g[i] * scale if out[i] > 0 else np.float32(0.0)

    @njit(parallel=True, cache=True)
    def _mask(out, key, thr, scale):
        n = out.size
        for b in prange((n + _BLOCK - 1) // _BLOCK):
            for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
                out[i] = scale if _bits24(key, i) >= thr else np.float32(0.0)

    # Row-mapped variants (receptive-field passes, :mod:`.field`): the tensor holds rows ``rows`` of a
    # larger one (row length ``rl``), and each element draws the decision the larger tensor's element
    # would: index ``rows[r] * rl + j``, so the masks are those of the full-size pass.
    @njit(parallel=True, cache=True)
    def _fwd_none_rows(z, out, key, thr, scale, rows, rl):
        for r in prange(rows.size):
            base, off = r * rl, rows[r] * rl
            for j in range(rl):
                out[base + j] = z[base + j] * scale if _bits24(key, off + j) >= thr else np.float32(0.0)

    @njit(parallel=True, cache=True)
    def _fwd_relu_rows(z, out, key, thr, scale, rows, rl):
        for r in prange(rows.size):
            base, off = r * rl, rows[r] * rl
            for j in range(rl):
                ok = (_bits24(key, off + j) >= thr) & (z[base + j] > 0)
                out[base + j] = z[base + j] * scale if ok else np.float32(0.0)

    @njit(parallel=True, cache=True)
    def _bwd_none_rows(z, g, gz, key, thr, scale, rows, rl):
        for r in prange(rows.size):
            base, off = r * rl, rows[r] * rl
            for j in range(rl):
                gz[base + j] = g[base + j] * scale if _bits24(key, off + j) >= thr else np.float32(0.0)

    @njit(parallel=True, cache=True)
    def _mask_rows(out, key, thr, scale, rows, rl):
        for r in prange(rows.size):
            base, off = r * rl, rows[r] * rl
            for j in range(rl):
                out[base + j] = scale if _bits24(key, off + j) >= thr else np.float32(0.0)

    _KERNELS = {"none": (_fwd_none, _bwd_none), "relu": (_fwd_relu, _bwd_relu)}
    _ROW_KERNELS = {"none": (_fwd_none_rows, _bwd_none_rows), "relu": (_fwd_relu_rows, _bwd_relu)}


def available(t) -> bool:
    return numba is not None and t.device.type == "cpu" and t.dtype == torch.float32


def _args(p: float):
    return np.uint64(min(1 << 24, round(p * (1 << 24)))), np.float32(1.0 / (1.0 - p))


def _row_args(shape, rows):
    """Extra kernel arguments for a tensor holding rows ``rows`` (int64) of a larger one."""
    if rows is None:
        return ()
    rl = int(np.prod(shape[1:], dtype=np.int64))
    return rows.detach().to(torch.int64).contiguous().numpy(), np.int64(rl)


def mask(shape, key: int, p: float, rows=None):
    """The keep mask times 1/(1-p) that :func:`act_dropout` applies (for tests and double backward)."""
    thr, scale = _args(p)
    out = torch.empty(shape, dtype=torch.float32)
    _call(
        _mask if rows is None else _mask_rows, out.view(-1).numpy(), np.uint64(key), thr, scale, *_row_args(shape, rows)
    )
    return out


class _ActDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, act: str, p: float, key: int, rows):
        thr, scale = _args(p)
        z = z.contiguous()
        out = torch.empty_like(z)
        kernels = _KERNELS if rows is None else _ROW_KERNELS
        _call(
            kernels[act][0],
            z.view(-1).numpy(),
            out.view(-1).numpy(),
            np.uint64(key),
            thr,
            scale,
            *_row_args(z.shape, rows),
        )
        ctx.save_for_backward(out if act == "relu" else None)  # relu: the output tells the derivative
        ctx.act, ctx.p, ctx.key, ctx.rows = act, p, key, rows
        return out

    @staticmethod
    def backward(ctx, g):
        (saved,) = ctx.saved_tensors
        if torch.is_grad_enabled():  # double backward: the same derivative as torch ops
            m = mask(g.shape, ctx.key, ctx.p, ctx.rows)
            return g * (m * (saved > 0) if ctx.act == "relu" else m), None, None, None, None
        thr, scale = _args(ctx.p)
        g = g.contiguous()
        gz = torch.empty_like(g)
        first = (g if saved is None else saved).view(-1).numpy()  # relu: the output; none: unused
        rowed = ctx.rows is not None and ctx.act != "relu"  # relu's backward needs no key
        _call(
            (_ROW_KERNELS if rowed else _KERNELS)[ctx.act][1],
            first,
            g.view(-1).numpy(),
            gz.view(-1).numpy(),
            np.uint64(ctx.key),
            thr,
            scale,
            *(_row_args(g.shape, ctx.rows) if rowed else ()),
        )
        return gz, None, None, None, None


def act_dropout(z, act: str, p: float, rows=None):
    """``dropout(act(z), p)`` in training mode with a counter-based mask (``act``: none, relu,
    elu); ``z`` float32 on the CPU. The key is drawn from torch's default generator. ``rows``
    (int64): ``z`` holds these rows of a larger tensor, and gets that tensor's masks."""
    if act == "elu":
        z, act = F.elu(z), "none"
    return _ActDropout.apply(z, act, p, int(torch.randint(0, 2**62, (1,))), rows)
