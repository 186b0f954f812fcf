"""The graph as the stacked layers need it, precomputed once per dataset: GCN's normalised adjacency
``Â = D^-1/2 (A + I) D^-1/2`` (PyG ``gcn_norm``) as CSR, and GAT's edge lists (self-loops added),
sorted by target, with CSR pointers for the fused kernels."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
    # A layer of a receptive-field pass (:mod:`..field`) maps the first ``num_src`` nodes of the
    # field's order to its first ``num_nodes``; ``node_rows`` / ``edge_rows`` = (global ids, total)
    # of its output rows and its edges, for dropout masks. None: the whole graph.
    num_src: int | None = None
    node_rows: tuple | None = None
    edge_rows: tuple | None = None

    def csr(self, attr: str):
        """numpy (rowptr, col, val) of a CSR matrix field, made once (CPU)."""
        from .. import spmm_kernels

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
        return cls(
            num_nodes,
            adj.to_sparse_csr().to(device),
            src.to(device),
            dst.to(device),
            ptr(dst).to(device),
            ptr(src).to(device),
            by_src.to(device),
            adj.t().coalesce().to_sparse_csr().to(device),
        )
