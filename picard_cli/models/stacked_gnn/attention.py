"""GAT's attention over the stacked seeds: the edge softmax of the attention logits and the
attention-weighted sum of the neighbours' values, as custom autograd functions (chunked torch ops,
or the fused CPU kernels of :mod:`..gat_kernels` where they apply)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .graph import Graph


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
            s, d = src[lo : lo + chunk], dst[lo : lo + chunk]
            a = alpha[lo : lo + chunk].unsqueeze(-1)  # (e, S, H, 1)
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
            s, d = src[lo : lo + ctx.chunk], dst[lo : lo + ctx.chunk]
            g = g2.index_select(0, d).view(-1, S, H, D)  # gradient at each edge's target
            grad_alpha[lo : lo + ctx.chunk] = (g * v2.index_select(0, s).view(-1, S, G, D)).sum(-1)
            g.mul_(alpha[lo : lo + ctx.chunk].unsqueeze(-1))
            if G != H:
                g = g.sum(2, keepdim=True)
            grad_v.index_add_(0, s, g.reshape(s.numel(), -1))
        return grad_alpha, grad_v.view(v.shape), None, None, None, None


class _KernelAggregate(torch.autograd.Function):
    """The same sums through the fused CPU kernels of :mod:`..gat_kernels` (CSR walks, no
    materialised messages); ``graph`` carries the CSR structure."""

    @staticmethod
    def forward(ctx, alpha, v, graph):
        from .. import gat_kernels

        ctx.save_for_backward(alpha, v)
        ctx.graph = graph
        return gat_kernels.forward(graph, alpha, v)

    @staticmethod
    def backward(ctx, grad_out):
        from .. import gat_kernels

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
        from .. import gat_kernels

        alpha = gat_kernels.softmax(graph, a_src, a_dst, slope)
        ctx.save_for_backward(a_src, a_dst, alpha)
        ctx.graph, ctx.slope = graph, slope
        return alpha

    @staticmethod
    def backward(ctx, grad_alpha):
        from .. import gat_kernels

        a_src, a_dst, alpha = ctx.saved_tensors
        if torch.is_grad_enabled():  # double backward (Jacobian penalty): through the torch ops
            inputs = [t for t in (a_src, a_dst) if t.requires_grad]
            grads = iter(
                torch.autograd.grad(
                    _edge_softmax(a_src, a_dst, ctx.graph, ctx.slope), inputs, grad_alpha, create_graph=True
                )
            )
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
    from .. import gat_kernels

    if graph.rowptr is not None and gat_kernels.enabled(a_dst):
        return _KernelSoftmax.apply(a_src.contiguous(), a_dst.contiguous(), graph, slope)
    return _edge_softmax(a_src, a_dst, graph, slope)


def attention_aggregate(alpha, v, graph: Graph, seed_major: bool = False):
    """alpha (E, S, heads), v (N, S, heads or 1, D) -> (N, S, heads, D), or (S, N, heads, D) with
    ``seed_major``: the fused CPU kernels where they apply (float32 on CPU, numba installed; their
    output is contiguous seed-major for a shared value, node-major for one value per head), else
    the torch ops (node-major)."""
    from .. import gat_kernels

    alpha, v = alpha.contiguous(), v.contiguous()
    if graph.rowptr is not None and gat_kernels.enabled(v):
        out = _KernelAggregate.apply(alpha, v, graph)
        return out if seed_major != gat_kernels.node_major(alpha, v) else out.transpose(0, 1)
    chunk = max(64, (1 << 20) // max(1, alpha[0].numel() * v.shape[-1]))  # ~4 MB of messages per chunk
    out = _AttentionAggregate.apply(alpha, v, graph.src, graph.dst, chunk, graph.num_nodes)
    return out.transpose(0, 1) if seed_major else out
