"""Contraction certificates and their classification.

* A-priori Lipschitz upper bound of an operator built from linear maps and 1-Lipschitz
  activations: the product of the per-layer spectral norms (:func:`lipschitz_product`).
  Dense weight matrices: their exact largest singular value (``torch.linalg.matrix_norm(ord=2)``,
  i.e. the limit of power iteration on W^T W, batched over stacked seeds). A symmetric matrix with
  nonnegative entries given only as a product (the GCN's normalised adjacency): power iteration
  from the all-ones vector, then the Collatz-Wielandt bound max_i (A v)_i / v_i, which is an UPPER
  bound on ||A||_2 = rho(A) for any positive v (and tight at the Perron vector).
* :func:`classify`: ``certified`` (Lipschitz bound < 1: unique fixed point, the damped iteration
  contracts by a + (1 - a) L for every input), ``empirical`` (the observed contraction ratios of a
  Picard solve stay below 1), or ``neither``.
"""

from __future__ import annotations

import math

import torch


def matrix_spectral_norm(w: torch.Tensor) -> torch.Tensor:
    """Largest singular value of a matrix, batched over leading dimensions."""
    return torch.linalg.matrix_norm(w.detach().double(), ord=2)


@torch.no_grad()
def symmetric_nonneg_norm_upper(matvec, n: int, *, iters: int = 100, device="cpu", dtype=torch.float64) -> float:
    """Upper bound on ||A||_2 for a symmetric matrix A with nonnegative entries and a positive
    diagonal (so A v > 0 for v > 0), given as ``matvec``: Collatz-Wielandt at the power-iterated
    positive vector (rho(A) = ||A||_2 for such A, and rho(A) <= max_i (A v)_i / v_i for v > 0)."""
    v = torch.ones(n, 1, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(iters):
        w = matvec(v)
        best = min(best, float((w / v).max()))
        v = w / w.max()
    return best


def lipschitz_product(factors) -> list[float] | float:
    """Product of per-layer Lipschitz constants; factors are floats or per-problem tensors / lists."""
    out = None
    for fac in factors:
        t = torch.as_tensor(fac, dtype=torch.float64)
        out = t if out is None else out * t
    return out.item() if out.dim() == 0 else out.tolist()


def tail_ratio_max(residual: list[float], floor: float = 1e-5) -> float | None:
    """Largest contraction ratio res_k / res_{k-1} over the second half of a residual trace,
    ignoring steps whose previous residual is at or below ``floor`` (floating-point noise)."""
    qs = [r1 / r0 for r0, r1 in zip(residual, residual[1:]) if r0 > floor and r0 > 0 and math.isfinite(r1)]
    if not qs:
        return None
    return max(qs[len(qs) // 2 :])


def classify(lipschitz: float | None, ratio_max: float | None, status: str, converged: bool = False) -> str:
    """``certified`` | ``empirical`` | ``neither`` (see the module docstring)."""
    if lipschitz is not None and lipschitz < 1.0:
        return "certified"
    if status in ("diverged", "nan"):
        return "neither"
    if (ratio_max is not None and ratio_max < 1.0) or (ratio_max is None and converged):
        return "empirical"
    return "neither"
