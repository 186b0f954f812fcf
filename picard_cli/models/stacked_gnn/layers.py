"""The stacked layers: GCNConv, GATConv and Linear with one weight slice per seed.

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

import math

import torch
from torch import nn

from .attention import attention_aggregate, edge_softmax
from .graph import Graph
from .ops import dropout, linear, propagate_bias, seed_matmul


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


# ----------------------------------------------------------------------------- layers
class StackedGCNConv(nn.Module):
    def __init__(self, seeds, fan_in: int, fan_out: int):
        super().__init__()
        self.weight = _stack(seeds, lambda g: _glorot(g, (fan_in, fan_out), fan_in, fan_out))
        self.bias = nn.Parameter(torch.zeros(len(seeds), fan_out))

    def forward(self, h, graph: Graph, in_rows=None):
        """``in_rows``: the rows of ``h W`` this layer reads (first layer of a field pass, :mod:`..field`)."""
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
        """``graph`` may be a layer of a receptive-field pass (:mod:`..field`): outputs for its first
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
