"""Receptive-field passes: compute only the rows that the loss (or a metric) reads.

A training step of Table 5 reads the logits of the 140 (Cora) / 120 (CiteSeer) train nodes.
With L message-passing layers (PIGN: K Picard steps of one conv; GCN/GAT: depth), the logit
of node i depends on nodes at most L hops from i, and layer k's output matters only within
L - k hops of a target. So layer k runs over those rows alone (Cora, 2 layers: 644 then 140
output rows instead of 2708 twice). Every row that is computed gets the inputs, edges,
normalisation and dropout decisions it gets in the full-size pass (``stacked_gnn.dropout``
draws the full-size masks and keeps these rows), so a field pass computes the same numbers at
the targets (up to the order of floating-point sums in the gradient's reductions); it is not
an approximation.

Node order: the targets (ascending, so the output rows are ``logits[mask]``'s rows), then the
nodes one hop away, then two, ... Each layer's rows are then a prefix of the previous layer's,
so a damped update ``a x_k + (1 - a) T(x_k)`` (Alg. 1 line 5) takes the leading rows of
``x_k``. ``PICARD_FIELD=all`` turns field passes off (every layer over every node).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .stacked_gnn import Graph


def enabled() -> bool:
    return os.environ.get("PICARD_FIELD", "field") != "all"


@dataclass
class Field:
    nodes: torch.Tensor  # global node ids in field order (targets first)
    sizes: list[int]  # sizes[k]: rows of layer k's input (k = 0..L-1); sizes[L]: the targets
    layers: list[Graph]  # layers[k]: from the first sizes[k] nodes to the first sizes[k + 1]
    num_nodes: int  # of the whole graph

    @property
    def targets(self) -> torch.Tensor:
        return self.nodes[: self.sizes[-1]]

    def input_rows(self) -> tuple[torch.Tensor, int]:
        """(global ids, total) of the first layer's input rows."""
        return self.nodes[: self.sizes[0]], self.num_nodes

    @classmethod
    def build(cls, graph: Graph, targets: torch.Tensor, depth: int) -> "Field":
        """The field of ``targets`` (bool mask or ids) through ``depth`` layers of ``graph``."""
        N = graph.num_nodes
        far = depth + 1
        dist = torch.full((N,), far, dtype=torch.long)
        dist[targets.nonzero().squeeze(1) if targets.dtype == torch.bool else targets] = 0
        src, dst = graph.src.cpu(), graph.dst.cpu()
        for d in range(1, depth + 1):  # ring d: sources of edges into ring d - 1
            s = src[dist[dst] == d - 1]
            s = s[dist[s] == far]
            dist[s] = d
        order = torch.argsort(dist * N + torch.arange(N))  # by hop distance, then id
        sizes = [int((dist <= depth - k).sum()) for k in range(depth + 1)]
        nodes = order[: sizes[0]]
        layers = [restrict(graph, nodes[: sizes[k]], sizes[k + 1]) for k in range(depth)]
        return cls(nodes.to(graph.src.device), sizes, layers, N)


def _ptr(idx: torch.Tensor, n: int) -> torch.Tensor:
    return torch.cat([idx.new_zeros(1), torch.bincount(idx, minlength=n).cumsum(0)])


def restrict(graph: Graph, nodes: torch.Tensor, n_dst: int) -> Graph:
    """The layer of ``graph`` from ``nodes`` (global ids; local id = position) to its first
    ``n_dst``: every edge into those, with the whole graph's GCN normalisation. The sources of
    those edges must be among ``nodes`` (a field's order guarantees it)."""
    dev = graph.src.device
    N, n_src = graph.num_nodes, nodes.numel()
    nodes = nodes.cpu()
    local = torch.full((N,), -1, dtype=torch.long)
    local[nodes] = torch.arange(n_src)

    def edges(src, dst):  # edges into the first n_dst nodes, grouped by target, global order kept within
        d = local[dst]
        eid = ((d >= 0) & (d < n_dst)).nonzero().squeeze(1)
        eid = eid[torch.sort(d[eid], stable=True).indices]
        s = local[src[eid]]
        if bool((s < 0).any()):
            raise ValueError("restrict: an edge's source is outside the given nodes (not a field's order)")
        return eid, s, local[dst[eid]]

    # GAT edges (self-loops included), CSR by target and by source
    eid, s, d = edges(graph.src.cpu(), graph.dst.cpu())
    by_src = torch.argsort(s * n_dst + d)
    # GCN: rows of the whole graph's normalised Â (row = target)
    adj = graph.gcn_adj.cpu()
    crow, col, val = adj.crow_indices(), adj.col_indices(), adj.values()
    row = torch.repeat_interleave(torch.arange(N), crow[1:] - crow[:-1])
    aid, acol, arow = edges(col, row)
    coo = torch.sparse_coo_tensor(torch.stack([arow, acol]), val[aid], (n_dst, n_src)).coalesce()
    return Graph(
        n_dst,
        coo.to_sparse_csr().to(dev),
        s.to(dev),
        d.to(dev),
        _ptr(d, n_dst).to(dev),
        _ptr(s, n_src).to(dev),
        by_src.to(dev),
        coo.t().coalesce().to_sparse_csr().to(dev),
        num_src=n_src,
        node_rows=(nodes[:n_dst].to(dev), N),
        edge_rows=(eid.to(dev), graph.src.numel()),
    )
