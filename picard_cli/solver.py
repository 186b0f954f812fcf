"""The one Picard (fixed-point) solver core every experiment uses.

Paper, Algorithm 1 (PIGN) and Algorithm 2 (ViT): damped Picard iteration

    x_{k+1} = a_k * x_k + (1 - a_k) * (T(x_k) + f)

with ``a_k`` the weight on the OLD iterate (larger a = more damping; TorchDEQ's
``tau`` is 1 - a). ``a`` is a constant or a per-step schedule (a list of length
``max_iter``). Gradients flow through the unrolled iterations (plain autograd).

Norms. Every norm is the Frobenius norm over the whole iterate, or, with
``batch_dim=d``, over all dimensions but ``d``, so a stack of independent problems
(e.g. one model per seed, stacked on dim ``d``) gets one trace per problem. The optional tolerance ``tol``
(Alg. 1's epsilon, never implemented in the authors' code) is tested on the norm
named by ``tol_norm``:

* ``"step"``     ||x_{k+1} - x_k||            (Alg. 1's test)
* ``"residual"`` ||T(x_k) + f - x_k||          (undamped residual)

The iteration stops when every problem in the batch is below ``tol``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import torch

Status = Literal["converged", "max_iter", "diverged", "nan"]


@dataclass
class SolverStats:
    """What happened during one solve. Traces hold one entry per executed step;
    with ``batch_dim`` set each entry is a list with one value per problem."""

    steps: int
    status: Status
    step_norm: list = field(default_factory=list)  # ||x_{k+1} - x_k||
    residual: list = field(default_factory=list)  # ||T(x_k) + f - x_k||
    ratio: list = field(default_factory=list)  # q_k = step_k / step_{k-1}, from k = 1

    def per_problem(self, i: int) -> dict:
        """Traces of problem ``i`` of a batched solve, as a plain JSON-able dict."""
        pick = (lambda v: v[i]) if self.step_norm and isinstance(self.step_norm[0], list) else (lambda v: v)
        return {
            "steps": self.steps,
            "status": self.status,
            "step_norm": [pick(v) for v in self.step_norm],
            "residual": [pick(v) for v in self.residual],
            "ratio": [pick(v) for v in self.ratio],
        }


def schedule(a: float | Sequence[float], max_iter: int) -> list[float]:
    """Expand ``a`` into one damping value per step (the authors'
    ``make_uniform_schedule`` is the constant case)."""
    if isinstance(a, (int, float)):
        values = [float(a)] * max_iter
    else:
        values = [float(v) for v in a]
        if len(values) != max_iter:
            raise ValueError(f"damping schedule has {len(values)} values but max_iter is {max_iter}")
    for v in values:
        if not 0.0 <= v <= 1.0:  # a = 1 keeps the old iterate: x_{k+1} = x_k (no update)
            raise ValueError(f"damping a must lie in [0, 1], got {v}")
    return values


def _norm(t: torch.Tensor, batch_dim: int | None) -> torch.Tensor:
    if batch_dim is None:
        return torch.linalg.vector_norm(t)
    return torch.linalg.vector_norm(t.transpose(0, batch_dim).flatten(1), dim=-1)


def _values(t: torch.Tensor):
    return t.item() if t.dim() == 0 else t.tolist()


def picard(
    T: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    f: torch.Tensor | None = None,
    *,
    a: float | Sequence[float] = 0.5,
    max_iter: int = 10,
    tol: float | None = None,
    tol_norm: Literal["step", "residual"] = "step",
    divergence: float | None = 1e8,
    batch_dim: int | None = None,
    trace: bool = True,
) -> tuple[torch.Tensor, SolverStats]:
    """Run damped Picard iterations from ``x0``; return ``(x, stats)``.

    ``divergence``: stop with status ``diverged`` when the residual exceeds this
    multiple of the first residual (None disables the check). A non-finite
    iterate stops with status ``nan``. ``trace=False`` skips the norm
    bookkeeping (no stats traces, no tolerance test, no divergence test) for
    the fast path inside training loops; non-finite checks are skipped too.
    """
    if tol_norm not in ("step", "residual"):
        raise ValueError(f"tol_norm must be 'step' or 'residual', got {tol_norm!r}")
    a_k = schedule(a, max_iter)
    if tol is not None and not trace:
        raise ValueError("a tolerance needs trace=True (norms are what it tests)")
    x = x0
    stats = SolverStats(steps=0, status="max_iter")
    first_res = None
    prev_step = None
    for k in range(max_iter):
        # Alg. 1 line 4 / Alg. 2: apply the operator and add the forcing term f.
        g = T(x)
        if f is not None:
            g = g + f
        # Alg. 1 line 5: smoothed (damped) update, a on the old iterate.
        x_new = a_k[k] * x + (1.0 - a_k[k]) * g
        stats.steps = k + 1
        if trace:
            with torch.no_grad():
                res = _norm(g - x, batch_dim)
                step = _norm(x_new - x, batch_dim)
                stats.residual.append(_values(res))
                stats.step_norm.append(_values(step))
                if prev_step is not None:
                    q = step / prev_step.clamp_min(torch.finfo(step.dtype).tiny)
                    stats.ratio.append(_values(q))
                prev_step = step
                if not torch.isfinite(x_new).all():
                    stats.status = "nan"
                    return x_new, stats
                if first_res is None:
                    first_res = res.clamp_min(torch.finfo(res.dtype).tiny)
                if divergence is not None and bool((res > divergence * first_res).any()):
                    stats.status = "diverged"
                    return x_new, stats
                if tol is not None:
                    crit = step if tol_norm == "step" else res
                    if bool((crit <= tol).all()):
                        stats.status = "converged"
                        return x_new, stats
        x = x_new
    return x, stats

