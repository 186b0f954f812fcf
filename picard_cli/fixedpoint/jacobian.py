"""The operator's Jacobian J = dT/dx at a point, through autograd products only:

* :func:`hutchinson_frobenius`: unbiased estimate of ||J||_F^2 / d per problem (Hutchinson:
  E ||e^T J||^2 = ||J||_F^2 for e ~ N(0, I)), with a graph, as a training penalty (Bai et al.
  2021's Jacobian regularisation; the paper's Appendix A.2 suggestion of a loss term on the
  Frechet derivative).
* :func:`spectral_radius`: the power method on vector-Jacobian products (J^T has J's eigenvalues),
  with the growth rate averaged geometrically over the second half of the iterations, which also
  converges when the dominant eigenvalues are a complex pair.
"""

from __future__ import annotations

import math

import torch


def _per_problem_sq(t: torch.Tensor, batch_dim: int | None) -> torch.Tensor:
    if batch_dim is None:
        return t.pow(2).sum()
    return t.movedim(batch_dim, 0).reshape(t.shape[batch_dim], -1).pow(2).sum(1)


def _numel(t: torch.Tensor, batch_dim: int | None) -> int:
    return t.numel() if batch_dim is None else t.numel() // t.shape[batch_dim]


def hutchinson_frobenius(
    T, x: torch.Tensor, *, batch_dim: int | None = None, samples: int = 1, create_graph: bool = True
) -> torch.Tensor:
    """Estimate ||J_T(x)||_F^2 / d per problem (a scalar, or (P,) along ``batch_dim``), d = the
    number of entries per problem; differentiable w.r.t. T's parameters when ``create_graph``."""
    z = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = T(z)
        total = 0.0
        for i in range(samples):
            e = torch.randn_like(y)
            vjp = torch.autograd.grad(y, z, e, create_graph=create_graph, retain_graph=i < samples - 1 or create_graph)[
                0
            ]
            total = total + _per_problem_sq(vjp, batch_dim)
    return total / (samples * _numel(z, batch_dim))


def spectral_radius(
    T,
    x: torch.Tensor,
    *,
    batch_dim: int | None = None,
    iters: int = 50,
    a: float | None = None,
    generator: torch.Generator | None = None,
) -> list[float] | float:
    """Power-method estimate of the spectral radius of J = dT/dx at ``x`` (or, with ``a``, of the
    damped iteration map a I + (1 - a) J), per problem along ``batch_dim``. ``T`` must be
    deterministic (evaluation mode)."""
    z = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = T(z)
    v = torch.randn(z.shape, generator=generator, dtype=z.dtype).to(z.device)
    v = v / _per_problem_sq(v, batch_dim).sqrt().clamp_min(1e-30).reshape(_bshape(v, batch_dim))
    logs = []
    for _ in range(iters):
        w = torch.autograd.grad(y, z, v, retain_graph=True)[0]
        if a is not None:
            w = a * v + (1 - a) * w
        n = _per_problem_sq(w, batch_dim).sqrt()
        logs.append(torch.log(n.clamp_min(1e-300)).detach().double())
        v = w / n.clamp_min(1e-30).reshape(_bshape(w, batch_dim))
    tail = torch.stack(logs[len(logs) // 2 :]).mean(0).exp()
    return tail.item() if tail.dim() == 0 else tail.tolist()


def _bshape(t: torch.Tensor, batch_dim: int | None):
    if batch_dim is None:
        return ()
    shape = [1] * t.dim()
    shape[batch_dim] = t.shape[batch_dim]
    return shape


def finite(v) -> bool:
    return v is not None and all(math.isfinite(x) for x in (v if isinstance(v, list) else [v]))
