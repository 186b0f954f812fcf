"""Fused CPU kernel (numba) for the stacked GCN propagation with its bias:

    out[i, :] = b + sum_{e in row i} w_e * y[col_e, :]      (rows of S x H numbers, node-major)

i.e. ``Â (h W) + b`` of PyG's GCNConv for every seed at once (``stacked_gnn.StackedGCNConv``).
Through torch the same step is four passes over the (N, S x H) activations: a copy of the
per-seed product into node-major order, the zero fill of the sparse product's output, the
product, and the bias add. Here the per-seed product is written node-major by ``bmm`` itself
(``stacked_gnn.seed_linear``) and one parallel pass over the CSR rows sums the neighbours into a
row that starts at the bias (PIGN-GCN/Cora, 100 seeds: 22-23 ms -> 15 ms per conv, 2026-11-27,
2-core CPU). The backward pass is the same kernel on the transposed matrix (no bias). Each output
row is summed by one thread in CSR order, so results do not depend on the thread count; they
differ from torch's sparse product in the last bits (``fastmath`` may fuse multiply-adds).
``PICARD_SPMM_KERNEL=torch`` turns it off.
"""

from __future__ import annotations

import torch

from .gat_kernels import _call, kernel_name, numba

if numba is not None:
    from numba import njit, prange

    @njit(parallel=True, cache=True, fastmath=True)
    def _spmm(rowptr, col, val, y, b, out):
        N, K = out.shape
        for i in prange(N):
            o = out[i]
            o[:] = b
            for e in range(rowptr[i], rowptr[i + 1]):
                w, yr = val[e], y[col[e]]
                for k in range(K):
                    o[k] += w * yr[k]


def name() -> str:
    return kernel_name("PICARD_SPMM_KERNEL")


def enabled(t: torch.Tensor) -> bool:
    """Use the kernel for this tensor? CPU float32 only."""
    return name() == "numba" and t.device.type == "cpu" and t.dtype == torch.float32


def csr_arrays(adj: torch.Tensor):
    """(rowptr, col, val) numpy views of a CSR matrix."""
    return adj.crow_indices().numpy(), adj.col_indices().numpy(), adj.values().numpy()


def spmm(csr, y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``adj @ y.view(N, -1) + bias`` (bias broadcast over rows; zero when None) for node-major
    ``y`` (N, ...); ``csr`` from :func:`csr_arrays`."""
    N = csr[0].shape[0] - 1
    y2 = y.detach().contiguous().view(y.shape[0], -1)
    b = (torch.zeros(y2.shape[1], dtype=y.dtype) if bias is None else bias.detach().reshape(-1)).contiguous()
    out = torch.empty(N, y2.shape[1], dtype=y.dtype)
    _call(_spmm, *csr, y2.numpy(), b.numpy(), out.numpy())
    return out.view(N, *y.shape[1:])
