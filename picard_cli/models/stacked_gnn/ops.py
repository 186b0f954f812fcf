"""The numerical building blocks of the stacked layers: dropout (and its random stream,
:func:`dropout_rng`), the per-seed and shared products, and GCN's propagation ``Â y + b``, each with
the custom autograd function that routes it through a faster CPU path (:mod:`..spmm_kernels`,
:mod:`..dropout_kernels`) where one applies.

Layout: activations are node-major ``(N, S, H)`` (S seeds), so a propagation over the graph is one
sparse-dense product on the ``(N, S*H)`` view.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from .graph import Graph


# ----------------------------------------------------------------------------- dropout
def dropout(x: torch.Tensor, p: float, training: bool, act: str = "none", rows=None) -> torch.Tensor:
    """Inverted dropout of ``act(x)`` (none, relu, elu), same law as ``F.dropout`` (keep with
    prob. 1-p, scale 1/(1-p)). Its mask comes from ``rand_like`` (about 4x faster on CPU than the
    ``bernoulli_`` that ``F.dropout`` uses), or, inside :func:`dropout_rng` ``("counter")``, from
    the fused counter-based kernel of :mod:`..dropout_kernels` (activation, mask and scaling in one
    pass; a different random stream).

    ``rows`` = (ids, total): ``x`` holds rows ``ids`` of a ``total``-row tensor (a receptive-field
    pass, :mod:`..field`); the mask is that tensor's mask at those rows, so the pass draws exactly
    what the full-size pass draws (``rand_like``: the full-size draw, then those rows)."""
    if training and p > 0.0 and _DROPOUT_RNG[0] == "counter":
        from .. import dropout_kernels

        if dropout_kernels.available(x):
            return dropout_kernels.act_dropout(x, act, p, None if rows is None else rows[0])
    x = {"none": lambda t: t, "relu": F.relu, "elu": F.elu}[act](x)
    if not training or p == 0.0:
        return x
    if rows is None:
        keep = torch.rand_like(x)
    else:
        keep = torch.rand((rows[1], *x.shape[1:]), dtype=x.dtype, device=x.device).index_select(0, rows[0])
    keep = keep.ge_(p).mul_(1.0 / (1.0 - p))  # in place: the same mask, fewer passes
    return x * keep


_DROPOUT_RNG = ["torch"]


@contextlib.contextmanager
def dropout_rng(kind: str):
    """``with dropout_rng("counter"):`` the stacked models' dropout draws counter-based masks
    (recipe field ``dropout_rng``; CPU float32; elsewhere ``rand_like`` as before)."""
    prev, _DROPOUT_RNG[0] = _DROPOUT_RNG[0], kind
    try:
        yield
    finally:
        _DROPOUT_RNG[0] = prev


# ----------------------------------------------------------------------------- products
def shared_linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Same input for every seed: (N, F) @ (S, F, H) -> (N, S, H) as one wide
    product (sparse ``x`` uses a sparse-dense product).

    The input of a first layer is the fixed feature matrix, so the product changes only when
    the optimiser updates ``w``. Each product is remembered on the weight with its version
    counter (bumped by every in-place update); a forward pass without gradients at the same
    weights reuses it. The training loop evaluates right after the next training forward pass
    (same weights), which turns one of the three (N x F) products per epoch into a lookup."""
    S, Fi, H = w.shape
    memo = getattr(w, "_picard_memo", None) if REUSE_PRODUCTS else None
    if memo is not None and memo[0] is x and memo[1] == w._version and not torch.is_grad_enabled():
        return memo[2]
    wide = w.permute(1, 0, 2).reshape(Fi, S * H)
    y = (torch.sparse.mm(x, wide) if x.is_sparse or x.layout == torch.sparse_csr else x @ wide).view(-1, S, H)
    if REUSE_PRODUCTS and w.is_leaf:
        w._picard_memo = (x, w._version, y.detach())
    return y


REUSE_PRODUCTS = True  # tests turn it off to check that reuse changes no number


class _SeedMatmul(torch.autograd.Function):
    """``torch.bmm(a, w)`` for a (S, N, I) x (S, I, O) product, with the weight gradient taken as
    ``(g^T a)^T`` instead of autograd's ``a^T g``: both sum over the N rows, but MKL runs the first
    order about 1.5-2x faster on these shapes (PIGN-GAT's (48, 2708, 512) x (48, 512, 64): 35-48
    against 65-75 ms, 2026-11-27, 2-core CPU), which is most of the product's backward.

    ``node_major``: the output is returned node-major, (N, S, O) contiguous, instead of a
    transposed view that the next op would copy: for narrow products (e.g. PIGN-GCN's 32 x 32)
    ``bmm`` writes it itself (its ``out=`` takes the transposed view; ~5.5 against ~7.5 ms with the
    copy, 100 seeds on Cora); for wide ones, where ``bmm`` writes strided output slower than it
    copies (PIGN-GAT's 512: 60 against 43-50 ms), one pass transposes it and adds ``bias``. The
    input gradient is written in the input's layout (node-major for ``a = h.transpose(0, 1)``).
    Same sums, other rounding than autograd's. Double backward (Jacobian penalty) goes through
    plain torch ops."""

    @staticmethod
    def forward(ctx, a, w, node_major, bias):
        ctx.save_for_backward(a, w)
        ctx.node_major, ctx.wide, ctx.has_bias = node_major, a.shape[2] > _NARROW, bias is not None
        ctx.a_node_major = a.transpose(0, 1).is_contiguous() and not a.is_contiguous()
        if not node_major:
            return torch.bmm(a, w)
        out = a.new_empty(a.shape[1], a.shape[0], w.shape[2])
        if ctx.wide:
            r = torch.bmm(a, w).transpose(0, 1)
            return out.copy_(r) if bias is None else torch.add(r, bias, out=out)
        torch.bmm(a, w, out=out.transpose(0, 1))
        return out if bias is None else out.add_(bias)

    @staticmethod
    def backward(ctx, g):
        a, w = ctx.saved_tensors
        gb = g.sum(0) if ctx.has_bias and ctx.needs_input_grad[3] else None
        gs = g.transpose(0, 1) if ctx.node_major else g
        if ctx.wide:  # wide products read a contiguous gradient faster than the copy costs (PIGN-GAT:
            gs = gs.contiguous()  # ~95 against ~106 ms for both); narrow ones do not (14.2 vs 13.5 ms)
        ga = gw = None
        if ctx.needs_input_grad[0]:
            if ctx.a_node_major and not torch.is_grad_enabled():
                ga = a.new_empty(a.shape[1], a.shape[0], a.shape[2])
                torch.bmm(gs, w.transpose(1, 2), out=ga.transpose(0, 1))
                ga = ga.transpose(0, 1)
            else:
                ga = torch.bmm(gs, w.transpose(1, 2))
        if ctx.needs_input_grad[1]:
            gw = torch.bmm(gs.transpose(1, 2), a).transpose(1, 2)
        return ga, gw, None, gb


_NARROW = 128  # inner widths up to this count as narrow (above)


def seed_matmul(a: torch.Tensor, w: torch.Tensor, node_major: bool = False, bias=None) -> torch.Tensor:
    """(S, N, I) x (S, I, O) -> (S, N, O), one product per seed; ``node_major``: returned as a
    contiguous (N, S, O) tensor instead, plus ``bias`` (S, O) if given (CPU: :class:`_SeedMatmul`)."""
    if bias is not None and not node_major:
        raise ValueError("seed_matmul adds a bias to node-major output only")
    if a.device.type == "cpu":
        return _SeedMatmul.apply(a, w, node_major, bias)
    out = torch.bmm(a, w).transpose(0, 1) if node_major else torch.bmm(a, w)
    return out if bias is None else out + bias


def seed_linear(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Per-seed product: (N, S, I) x (S, I, O) -> (N, S, O)."""
    return seed_matmul(h.transpose(0, 1), w, node_major=True)


def linear(h, w):
    return shared_linear(h, w) if h.dim() == 2 else seed_linear(h, w)


def propagate(adj: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Â y for every seed at once: one sparse (N, N) x dense (N, S*H) product."""
    N, S, H = y.shape
    return torch.sparse.mm(adj, y.reshape(N, S * H)).view(-1, S, H)


class _PropagateBias(torch.autograd.Function):
    """``Â y + b`` through the fused CPU kernel of :mod:`..spmm_kernels` (y node-major (N, S, H),
    b (S, H)); backward: the same kernel on Â^T, and the bias gradient."""

    @staticmethod
    def forward(ctx, y, b, graph):
        from .. import spmm_kernels

        ctx.graph = graph
        return spmm_kernels.spmm(graph.csr("gcn_adj"), y, b)

    @staticmethod
    def backward(ctx, g):
        from .. import spmm_kernels

        graph = ctx.graph
        if torch.is_grad_enabled():  # double backward (Jacobian penalty): through torch's sparse product
            gy = propagate(graph.gcn_adj_t, g)
        else:
            gy = spmm_kernels.spmm(graph.csr("gcn_adj_t"), g, None)
        return gy, g.sum(0), None


def propagate_bias(graph: Graph, y: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GCNConv's ``Â y + b`` for every seed: the fused CPU kernel where it applies (float32 on the
    CPU, numba installed), else torch's sparse product and an add."""
    from .. import spmm_kernels

    if graph.gcn_adj_t is not None and spmm_kernels.enabled(y):
        return _PropagateBias.apply(y, b, graph)
    return propagate(graph.gcn_adj, y) + b
