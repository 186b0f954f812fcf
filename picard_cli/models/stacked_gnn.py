"""GCN, GAT and PIGN as *stacked* models: S independent networks (one per seed)
trained as one, with weights stacked on a seed dimension.

Why: Table 5 is 100 runs per cell of small full-batch models. Stacking turns
100 skinny ``X @ W`` products into one wide one and one sparse propagation
``Â @ [Y_1 ... Y_S]``. The loss is the sum of the per-seed losses, so each
seed's gradient is exactly its own; Adam and its L2 weight decay act elementwise,
so stacked training is the same optimisation as S separate trainings.

Layout: activations are node-major ``(N, S, H)`` so a propagation over the graph
is one sparse-dense product on the ``(N, S*H)`` view.

Layer semantics follow PyG (spec pign.md §1.2-1.3, §4.1):
* GCNConv: ``Â (h W) + b``, ``Â = D^-1/2 (A + I) D^-1/2`` (PyG ``gcn_norm``).
* GATConv: ``x' = h W``; ``e_ij = LeakyReLU_0.2(a_dst·x'_i + a_src·x'_j)`` over
  edges j -> i plus self-loops; softmax over j; attention dropout; heads
  concatenated or averaged; ``+ b``.
Initialisation per seed from its own generator (so a seed's initial weights do
not depend on which other seeds share its stack): glorot for conv weights and
attention vectors (PyG), xavier-normal for PIGN's encoder/decoder (spec §1.7).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..fixedpoint.front import FixedPointSpec, solve
from ..solver import picard


# ----------------------------------------------------------------------------- graph
@dataclass
class Graph:
    """What the layers need of a graph, precomputed once per dataset."""

    num_nodes: int
    gcn_adj: torch.Tensor  # sparse CSR, normalised with self-loops
    src: torch.Tensor  # GAT edges j -> i incl. self-loops, sorted by target
    dst: torch.Tensor
    rowptr: torch.Tensor | None = None  # CSR by target: edges of node i are rowptr[i]:rowptr[i+1]
    colptr: torch.Tensor | None = None  # CSR by source over ``by_src`` (edge ids sorted by source)
    by_src: torch.Tensor | None = None
    gcn_adj_t: torch.Tensor | None = None  # Â^T (CSR), for the fused propagation's backward pass
    # A layer of a receptive-field pass (:mod:`.field`) maps the first ``num_src`` nodes of the
    # field's order to its first ``num_nodes``; ``node_rows`` / ``edge_rows`` = (global ids, total)
    # of its output rows and its edges, for dropout masks. None: the whole graph.
    num_src: int | None = None
    node_rows: tuple | None = None
    edge_rows: tuple | None = None

    def csr(self, attr: str):
        """numpy (rowptr, col, val) of a CSR matrix field, made once (CPU)."""
        from . import spmm_kernels

        cache = self.__dict__.setdefault("_csr", {})
        if attr not in cache:
            cache[attr] = spmm_kernels.csr_arrays(getattr(self, attr))
        return cache[attr]

    @classmethod
    def build(cls, edge_index: torch.Tensor, num_nodes: int, device="cpu") -> "Graph":
        from torch_geometric.nn.conv.gcn_conv import gcn_norm
        from torch_geometric.utils import add_self_loops, remove_self_loops

        ei, w = gcn_norm(edge_index, None, num_nodes, add_self_loops=True)
        adj = torch.sparse_coo_tensor(ei.flip(0), w, (num_nodes, num_nodes)).coalesce()  # row = target
        gat_ei, _ = add_self_loops(remove_self_loops(edge_index)[0], num_nodes=num_nodes)
        gat_ei = gat_ei[:, torch.argsort(gat_ei[1] * num_nodes + gat_ei[0])]  # by target: cache-friendly
        src, dst = gat_ei[0], gat_ei[1]
        def ptr(idx):
            return torch.cat([idx.new_zeros(1), torch.bincount(idx, minlength=num_nodes).cumsum(0)])
        by_src = torch.argsort(src * num_nodes + dst)
        return cls(num_nodes, adj.to_sparse_csr().to(device), src.to(device), dst.to(device),
                   ptr(dst).to(device), ptr(src).to(device), by_src.to(device),
                   adj.t().coalesce().to_sparse_csr().to(device))


# ----------------------------------------------------------------------------- init
def _glorot(g: torch.Generator, shape, fan_in: int, fan_out: int) -> torch.Tensor:
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return (torch.rand(shape, generator=g) * 2 - 1) * bound


def _xavier_normal(g: torch.Generator, shape, fan_in: int, fan_out: int) -> torch.Tensor:
    return torch.randn(shape, generator=g) * math.sqrt(2.0 / (fan_in + fan_out))


def _stack(seeds, make) -> nn.Parameter:
    """One parameter slice per seed, each from a generator seeded with that seed
    (``make`` is called in a fixed order per seed)."""
    return nn.Parameter(torch.stack([make(g) for g in seeds]))


def dropout(x: torch.Tensor, p: float, training: bool, act: str = "none", rows=None) -> torch.Tensor:
    """Inverted dropout of ``act(x)`` (none, relu, elu), same law as ``F.dropout`` (keep with
    prob. 1-p, scale 1/(1-p)). Its mask comes from ``rand_like`` (about 4x faster on CPU than the
    ``bernoulli_`` that ``F.dropout`` uses), or, inside :func:`dropout_rng` ``("counter")``, from
    the fused counter-based kernel of :mod:`.dropout_kernels` (activation, mask and scaling in one
    pass; a different random stream).

    ``rows`` = (ids, total): ``x`` holds rows ``ids`` of a ``total``-row tensor (a receptive-field
    pass, :mod:`.field`); the mask is that tensor's mask at those rows, so the pass draws exactly
    what the full-size pass draws (``rand_like``: the full-size draw, then those rows)."""
    if training and p > 0.0 and _DROPOUT_RNG[0] == "counter":
        from . import dropout_kernels

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
    """``Â y + b`` through the fused CPU kernel of :mod:`.spmm_kernels` (y node-major (N, S, H),
    b (S, H)); backward: the same kernel on Â^T, and the bias gradient."""

    @staticmethod
    def forward(ctx, y, b, graph):
        from . import spmm_kernels

        ctx.graph = graph
        return spmm_kernels.spmm(graph.csr("gcn_adj"), y, b)

    @staticmethod
    def backward(ctx, g):
        from . import spmm_kernels

        graph = ctx.graph
        if torch.is_grad_enabled():  # double backward (Jacobian penalty): through torch's sparse product
            gy = propagate(graph.gcn_adj_t, g)
        else:
            gy = spmm_kernels.spmm(graph.csr("gcn_adj_t"), g, None)
        return gy, g.sum(0), None


def propagate_bias(graph: "Graph", y: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GCNConv's ``Â y + b`` for every seed: the fused CPU kernel where it applies (float32 on the
    CPU, numba installed), else torch's sparse product and an add."""
    from . import spmm_kernels

    if graph.gcn_adj_t is not None and spmm_kernels.enabled(y):
        return _PropagateBias.apply(y, b, graph)
    return propagate(graph.gcn_adj, y) + b


class _AttentionAggregate(torch.autograd.Function):
    """out[i, s, h] = sum_{e: dst_e = i} alpha[e, s, h] * v[src_e, s, g] for every seed s
    and head h, where v has G = heads value groups (one per head) or G = 1 (one
    value shared by all heads, broadcast).

    Autograd through ``v[src] * alpha`` stores the (E, S, heads, D) messages and
    scatters gradients with ``index_put_(accumulate=True)``, which dominated the
    stacked GAT step. This op keeps only ``alpha`` and ``v``, works on edge
    chunks that fit in cache, on 2-D row views (``index_select`` on 4-D tensors
    is ~7x slower on CPU), and uses ``index_add_`` both ways."""

    @staticmethod
    def forward(ctx, alpha, v, src, dst, chunk, n_dst=None):  # n_dst: output rows (default: v's)
        N, S, G, D = v.shape
        H, n_dst = alpha.shape[-1], N if n_dst is None else n_dst
        v2 = v.reshape(N, S * G * D)
        out = v2.new_zeros(n_dst, S * H * D)
        for lo in range(0, src.numel(), chunk):
            s, d = src[lo:lo + chunk], dst[lo:lo + chunk]
            a = alpha[lo:lo + chunk].unsqueeze(-1)  # (e, S, H, 1)
            msg = v2.index_select(0, s).view(-1, S, G, D)
            msg = msg.mul_(a) if G == H else msg * a
            out.index_add_(0, d, msg.reshape(s.numel(), -1))
        ctx.save_for_backward(alpha, v, src, dst)
        ctx.chunk = chunk
        return out.view(n_dst, S, H, D)

    @staticmethod
    def backward(ctx, grad_out):
        alpha, v, src, dst = ctx.saved_tensors
        N, S, G, D = v.shape
        H = alpha.shape[-1]
        v2 = v.reshape(N, S * G * D)
        g2 = grad_out.contiguous().view(grad_out.shape[0], S * H * D)
        grad_alpha = torch.empty_like(alpha)
        grad_v = torch.zeros_like(v2)
        for lo in range(0, src.numel(), ctx.chunk):
            s, d = src[lo:lo + ctx.chunk], dst[lo:lo + ctx.chunk]
            g = g2.index_select(0, d).view(-1, S, H, D)  # gradient at each edge's target
            grad_alpha[lo:lo + ctx.chunk] = (g * v2.index_select(0, s).view(-1, S, G, D)).sum(-1)
            g.mul_(alpha[lo:lo + ctx.chunk].unsqueeze(-1))
            if G != H:
                g = g.sum(2, keepdim=True)
            grad_v.index_add_(0, s, g.reshape(s.numel(), -1))
        return grad_alpha, grad_v.view(v.shape), None, None, None, None


class _KernelAggregate(torch.autograd.Function):
    """The same sums through the fused CPU kernels of :mod:`.gat_kernels` (CSR walks, no
    materialised messages); ``graph`` carries the CSR structure."""

    @staticmethod
    def forward(ctx, alpha, v, graph):
        from . import gat_kernels

        ctx.save_for_backward(alpha, v)
        ctx.graph = graph
        return gat_kernels.forward(graph, alpha, v)

    @staticmethod
    def backward(ctx, grad_out):
        from . import gat_kernels

        alpha, v = ctx.saved_tensors
        if torch.is_grad_enabled():  # double backward (Jacobian penalty): the same sums as torch ops
            g = grad_out if gat_kernels.node_major(alpha, v) else grad_out.transpose(0, 1)
            g, src = g.index_select(0, ctx.graph.dst), ctx.graph.src
            m = g * alpha.unsqueeze(-1)
            m = m.sum(2, keepdim=True) if v.shape[2] == 1 else m
            return (g * v.index_select(0, src)).sum(-1), torch.zeros_like(v).index_add(0, src, m), None
        return (*gat_kernels.backward(ctx.graph, alpha, v, grad_out), None)


class _KernelSoftmax(torch.autograd.Function):
    """softmax_j LeakyReLU(a_src[j] + a_dst[i]) over each node's incoming edges, fused (CPU kernels)."""

    @staticmethod
    def forward(ctx, a_src, a_dst, graph, slope):
        from . import gat_kernels

        alpha = gat_kernels.softmax(graph, a_src, a_dst, slope)
        ctx.save_for_backward(a_src, a_dst, alpha)
        ctx.graph, ctx.slope = graph, slope
        return alpha

    @staticmethod
    def backward(ctx, grad_alpha):
        from . import gat_kernels

        a_src, a_dst, alpha = ctx.saved_tensors
        if torch.is_grad_enabled():  # double backward (Jacobian penalty): through the torch ops
            inputs = [t for t in (a_src, a_dst) if t.requires_grad]
            grads = iter(torch.autograd.grad(_edge_softmax(a_src, a_dst, ctx.graph, ctx.slope), inputs, grad_alpha,
                                             create_graph=True))
            return *(next(grads) if t.requires_grad else None for t in (a_src, a_dst)), None, None
        return (*gat_kernels.softmax_backward(ctx.graph, a_src, a_dst, ctx.slope, alpha, grad_alpha), None, None)


def _edge_softmax(a_src, a_dst, graph: Graph, slope: float):
    from torch_geometric.utils import softmax

    e = F.leaky_relu(a_src.index_select(0, graph.src) + a_dst.index_select(0, graph.dst), slope)  # (E, S, heads)
    return softmax(e, graph.dst, num_nodes=a_dst.shape[0])


def edge_softmax(a_src, a_dst, graph: Graph, slope: float = 0.2):
    """GAT's attention coefficients: softmax over each node's incoming edges (self-loop included)
    of LeakyReLU(a_src[j] + a_dst[i]); (N, S, heads) -> (E, S, heads). Fused CPU kernel where
    it applies, else PyG's ``softmax`` over the edge logits."""
    from . import gat_kernels

    if graph.rowptr is not None and gat_kernels.enabled(a_dst):
        return _KernelSoftmax.apply(a_src.contiguous(), a_dst.contiguous(), graph, slope)
    return _edge_softmax(a_src, a_dst, graph, slope)


def attention_aggregate(alpha, v, graph: Graph, seed_major: bool = False):
    """alpha (E, S, heads), v (N, S, heads or 1, D) -> (N, S, heads, D), or (S, N, heads, D) with
    ``seed_major``: the fused CPU kernels where they apply (float32 on CPU, numba installed; their
    output is contiguous seed-major for a shared value, node-major for one value per head), else
    the torch ops (node-major)."""
    from . import gat_kernels

    alpha, v = alpha.contiguous(), v.contiguous()
    if graph.rowptr is not None and gat_kernels.enabled(v):
        out = _KernelAggregate.apply(alpha, v, graph)
        return out if seed_major != gat_kernels.node_major(alpha, v) else out.transpose(0, 1)
    chunk = max(64, (1 << 20) // max(1, alpha[0].numel() * v.shape[-1]))  # ~4 MB of messages per chunk
    out = _AttentionAggregate.apply(alpha, v, graph.src, graph.dst, chunk, graph.num_nodes)
    return out.transpose(0, 1) if seed_major else out


# ----------------------------------------------------------------------------- layers
class StackedGCNConv(nn.Module):
    def __init__(self, seeds, fan_in: int, fan_out: int):
        super().__init__()
        self.weight = _stack(seeds, lambda g: _glorot(g, (fan_in, fan_out), fan_in, fan_out))
        self.bias = nn.Parameter(torch.zeros(len(seeds), fan_out))

    def forward(self, h, graph: Graph, in_rows=None):
        """``in_rows``: the rows of ``h W`` this layer reads (first layer of a field pass, :mod:`.field`)."""
        y = linear(h, self.weight)
        return propagate_bias(graph, y if in_rows is None else y.index_select(0, in_rows), self.bias)


class StackedGATConv(nn.Module):
    def __init__(self, seeds, fan_in: int, out: int, heads: int, concat: bool, attn_dropout: float):
        super().__init__()
        self.heads, self.out, self.concat, self.attn_dropout = heads, out, concat, attn_dropout
        self.weight = _stack(seeds, lambda g: _glorot(g, (fan_in, heads * out), fan_in, heads * out))
        self.att_src = _stack(seeds, lambda g: _glorot(g, (heads, out), heads, out))
        self.att_dst = _stack(seeds, lambda g: _glorot(g, (heads, out), heads, out))
        self.bias = nn.Parameter(torch.zeros(len(seeds), heads * out if concat else out))

    def forward(self, h, graph: Graph, in_rows=None):
        """``graph`` may be a layer of a receptive-field pass (:mod:`.field`): outputs for its first
        ``graph.num_nodes`` input rows only; ``in_rows``: the rows of ``h`` (of ``h W``) it reads."""
        S, Fi = self.weight.shape[:2]
        H, C = self.heads, self.out
        W = self.weight.view(S, Fi, H, C)
        N = graph.num_nodes  # output rows
        averaged = not self.concat and H > 1 and h.dim() == 3
        if averaged and in_rows is not None:
            h = h.index_select(0, in_rows)
        if averaged:
            # No projection h W_h is built on this path, so the logits come straight from the input:
            # a_src . (h W_h) = h (W_h a_src), one small product (Fi = hidden here).
            att = torch.cat([self.att_src, self.att_dst], 1)  # (S, 2 heads, C): both in one product
            a_src, a_dst = linear(h, torch.einsum("sihc,shc->sih", W.repeat(1, 1, 2, 1), att)).split(H, -1)
            a_dst = a_dst[:N]
        else:
            # The projection is built anyway: logits from it (a pass over (N, S, heads, C)), not from
            # the input, whose width (1433 / 3703 features in a first layer) would cost 2 x heads / C
            # of the main product again.
            xp = linear(h, self.weight)
            xp = (xp if in_rows is None else xp.index_select(0, in_rows)).view(-1, S, H, C)
            a_src, a_dst = (xp * self.att_src).sum(-1), (xp[:N] * self.att_dst).sum(-1)
        alpha = edge_softmax(a_src, a_dst, graph)  # (E, S, heads)
        alpha = dropout(alpha, self.attn_dropout, self.training, rows=graph.edge_rows)
        if averaged:
            # Heads averaged: mean_h sum_j alpha^h_ij (h_j W_h) = [sum_j alpha^h_ij h_j]_h (W_h / H) stacked
            # over h. Aggregating the input per head, then one product, never builds h W per head.
            agg = attention_aggregate(alpha, h.unsqueeze(2), graph, seed_major=True)  # (S, N, heads, Fi)
            W_heads = W.permute(0, 2, 1, 3).reshape(S, H * Fi, C) / H
            return seed_matmul(agg.reshape(S, N, H * Fi), W_heads, node_major=True, bias=self.bias)
        out = attention_aggregate(alpha, xp, graph)  # (N, S, heads, C)
        out = out.reshape(N, S, H * C) if self.concat else out.mean(2)
        return out + self.bias


class StackedLinear(nn.Module):
    """nn.Linear per seed; ``init='xavier'`` = xavier_normal weight, zero bias (IM's
    ``xavier_init``); ``'torch'`` = nn.Linear's default (kaiming-uniform, uniform bias)."""

    def __init__(self, seeds, fan_in: int, fan_out: int, init: str = "xavier"):
        super().__init__()
        if init == "xavier":
            self.weight = _stack(seeds, lambda g: _xavier_normal(g, (fan_in, fan_out), fan_in, fan_out))
            self.bias = nn.Parameter(torch.zeros(len(seeds), fan_out))
        else:
            bound = 1.0 / math.sqrt(fan_in)
            self.weight = _stack(seeds, lambda g: (torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound)
            self.bias = _stack(seeds, lambda g: (torch.rand(fan_out, generator=g) * 2 - 1) * bound)

    def forward(self, h):
        return linear(h, self.weight) + self.bias


# ----------------------------------------------------------------------------- models
class PlainGNN(nn.Module):
    """IM's GCN(L) / GAT(L) baselines (spec §4.1); no input-feature dropout."""

    def __init__(self, seeds, backbone, F_in, C, depth, hidden, heads, dropout, attn_dropout):
        super().__init__()
        self.backbone, self.dropout = backbone, dropout
        layers = []
        if backbone == "gcn":
            dims = [F_in] + [hidden] * (depth - 1) + [C]
            for i in range(depth):
                layers.append(StackedGCNConv(seeds, dims[i], dims[i + 1]))
        else:  # GAT: F -> hidden x heads (concat), [hidden*heads -> same, mean], -> C (1 head)
            wide = hidden * heads
            layers.append(StackedGATConv(seeds, F_in, hidden, heads, True, attn_dropout))
            for _ in range(depth - 2):
                layers.append(StackedGATConv(seeds, wide, wide, heads, False, attn_dropout))
            layers.append(StackedGATConv(seeds, wide, C, 1, False, attn_dropout))
        self.layers = nn.ModuleList(layers)

    def forward(self, x, graph, trace=False, field=None):
        """``field`` (:class:`.field.Field` over ``depth`` layers): outputs for its targets only."""
        h = x
        act = "relu" if self.backbone == "gcn" else "elu"
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            g = graph if field is None else field.layers[k]
            h = layer(h, g, in_rows=field.input_rows()[0] if field is not None and k == 0 else None)
            if k < last:
                h = dropout(h, self.dropout, self.training, act, rows=g.node_rows)
        return h, None


class PIGN(nn.Module):
    """IM's iterativeGCN_Planetoid / iterativeGAT (spec §1.2-1.3):
    encoder -> K damped Picard steps of one shared conv (Alg. 1) -> decoder.

    Beyond the paper (issue 9; all off by default): ``fp`` (a :class:`FixedPointSpec`: Anderson,
    tolerance, implicit / phantom gradients, Jacobian penalty), ``forcing='input'`` (x = T(x) + h0
    with h0 the encoder output, instead of f = 0), ``fixed_masks`` (one dropout mask per solve) and
    ``spectral_cap`` (spectral norm of the conv weight at most this, per seed)."""

    def __init__(self, seeds, backbone, F_in, C, depth, hidden, heads, dropout, attn_dropout, a, init,
                 fp: FixedPointSpec | None = None, forcing: str = "none", fixed_masks: bool = False,
                 spectral_cap: float = 0.0):
        super().__init__()
        self.dropout, self.K, self.a = dropout, depth, a
        self.backbone = backbone
        self.enc = StackedLinear(seeds, F_in, hidden, init)
        if backbone == "gcn":
            self.conv = StackedGCNConv(seeds, hidden, hidden)
        else:  # 8 heads averaged back to H (concat=False), ReLU not ELU (spec §1.3)
            self.conv = StackedGATConv(seeds, hidden, hidden, heads, False, attn_dropout)
        self.dec = StackedLinear(seeds, hidden, C, init)
        self.fp, self.forcing, self.fixed_masks = fp, forcing, fixed_masks
        if spectral_cap > 0:
            from ..fixedpoint.spectral import cap_spectral_norm

            cap_spectral_norm(self.conv, spectral_cap)
        self.fp_log: list = []  # training-time (forward evaluations, backward steps) per step, toolkit runs only

    def problem(self, x, graph, field=None):
        """The fixed-point problem of one forward pass: (T, x0, f), x = T(x) + f from x0.
        ``field``: step k of T runs on the field's layer k (its output: fewer rows each step)."""
        # Encoder, dropout once before the loop.
        h, rows = self.enc(x), None if field is None else field.input_rows()
        if rows is not None:
            h = h.index_select(0, rows[0])
        h = dropout(h, self.dropout, self.training, "relu", rows=rows)
        layers = None if field is None else iter(field.layers)

        # Alg. 1 line 4: T(x_k) = Drop(ReLU(Conv(G, x_k))), f = 0 (or the encoder output).
        def T(hk):
            g = graph if layers is None else next(layers)
            return dropout(self.conv(hk, g), self.dropout, self.training, "relu", rows=g.node_rows)

        if self.fixed_masks and self.training and self.dropout > 0:
            from ..fixedpoint.noise import frozen_noise

            T = frozen_noise(T, h)
        return T, h, (h if self.forcing == "input" else None)

    def supports_field(self) -> bool:
        """Field passes need the plain K-step solve (no tolerance, Anderson, implicit gradients)
        and fresh masks each step."""
        return (self.fp is None or self.fp.plain) and not self.fixed_masks

    def forward(self, x, graph, trace=False, iters=None, callback=None, field=None):
        """``iters`` overrides K at evaluation (iteration-count curves; spec §6). ``field``
        (:class:`.field.Field` over K layers): logits of its targets only, each step over the
        rows later steps read (no traces)."""
        if field is not None:
            if not self.supports_field() or trace or callback is not None or (iters or self.K) != len(field.layers):
                raise ValueError("a field pass needs the plain K-step solve, no traces and K field layers")
            T, h, f = self.problem(x, graph, field)
            h, stats = picard(T, h, f, a=self.a, max_iter=self.K, batch_dim=1, trace=False, divergence=None,
                              leading_rows=True)
            return self.dec(h), stats
        T, h, f = self.problem(x, graph)
        if self.fp is None or self.fp.plain:
            # Alg. 1 line 5: x_{k+1} = a x_k + (1 - a) T(x_k), exactly K steps (no epsilon in the
            # authors' code); norms per seed (dim 1) when traced.
            h, stats = picard(T, h, f, a=self.a, max_iter=iters or self.K, batch_dim=1, trace=trace, divergence=None,
                              callback=callback)
        else:
            h, stats = solve(T, h, f, spec=self.fp, a=self.a, max_iter=iters or self.K, batch_dim=1, trace=trace,
                             divergence=None, callback=callback)
            if self.training:
                self.fp_log.append(stats)
        return self.dec(h), stats

    def lipschitz_bound(self, graph) -> tuple[list | None, str]:
        """A-priori Lipschitz bound of T (evaluation mode) per seed, and a note. GCN:
        ||A||_2 (Collatz-Wielandt upper bound) x sigma_max(W_s) (ReLU is 1-Lipschitz). GAT: none
        (attention coefficients depend on the input: no global bound)."""
        if self.backbone != "gcn":
            return None, "GAT: attention depends on the input, no a-priori bound"
        from ..fixedpoint.certify import lipschitz_product, matrix_spectral_norm, symmetric_nonneg_norm_upper

        adj = graph.gcn_adj
        a_norm = symmetric_nonneg_norm_upper(lambda v: torch.sparse.mm(adj, v.to(torch.float32)).double(),
                                             adj.shape[0], device=adj.device)
        w = matrix_spectral_norm(self.conv.weight)
        return lipschitz_product([a_norm, w]), f"||A||_2 <= {a_norm:.6f} (Collatz-Wielandt) x sigma_max(W)"


class IterGNN(nn.Module):
    """The fork's IterGNN on Planetoid (spec §4.3, §2.4): Linear encoder -> IterGNN
    loop over one shared linear conv (GCNConv, or single-head GATConv without
    attention dropout) -> Linear decoder; no dropout anywhere. The whole graph is
    one graph, so each seed has one confidence per step (readout over all nodes)."""

    def __init__(self, seeds, backbone, F_in, C, depth, hidden, variant="fork", readout="max",
                 stop_mass=1e-7, init="torch", **_):
        super().__init__()
        self.t_max, self.variant, self.readout, self.stop_mass = depth, variant, readout, stop_mass
        self.enc = StackedLinear(seeds, F_in, hidden, init)
        if backbone == "gcn":
            self.conv = StackedGCNConv(seeds, hidden, hidden)
        else:
            self.conv = StackedGATConv(seeds, hidden, hidden, 1, True, 0.0)
        self.conf = StackedLinear(seeds, hidden, 1, "torch")  # LobsterEncoder(H, 1): Linear + sigmoid
        self.dec = StackedLinear(seeds, hidden, C, init)

    def confidence(self, h):  # (N, S, H) -> (1, S, 1): one value per seed (whole graph)
        r = {"max": lambda: h.amax(0), "mean": lambda: h.mean(0), "sum": lambda: h.sum(0)}[self.readout]()
        return torch.sigmoid(torch.einsum("sh,sho->so", r, self.conf.weight) + self.conf.bias).unsqueeze(0)

    def forward(self, x, graph, trace=False):
        from .itergnn import iterate

        h0 = self.enc(x)
        h, stats = iterate(lambda h: self.conv(h, graph), self.confidence, h0, self.t_max,
                           stop_mass=self.stop_mass, variant=self.variant, problem_dim=1)
        return self.dec(h), stats
