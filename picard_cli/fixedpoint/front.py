"""The fixed-point toolkit's front door: :func:`solve` runs ``x = T(x) + f`` as a
:class:`~picard_cli.fixedpoint.spec.FixedPointSpec` says (method, tolerance, gradient mode,
Jacobian penalty). Its default spec is exactly the paper's damped Picard iteration
(:func:`picard_cli.solver.picard`, eq. (1)), bit for bit."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..solver import SolverStats, _values, picard, schedule
from .spec import FixedPointSpec, run_method


def solve(
    T: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    f: torch.Tensor | None = None,
    *,
    spec: FixedPointSpec | None = None,
    a: float | Sequence[float] = 0.5,
    max_iter: int = 10,
    divergence: float | None = 1e8,
    batch_dim: int | None = None,
    trace: bool = True,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, SolverStats]:
    """Solve ``x = T(x) + f`` from ``x0`` as ``spec`` says; return ``(x, stats)``.

    The default spec is exactly ``picard(T, x0, f, a=a, max_iter=max_iter, ...)``, bit for bit.
    Otherwise ``stats`` also carries ``method`` and ``n_evals`` (operator evaluations of this
    forward pass), and ``backward`` is filled in by an implicit gradient's backward pass.
    """
    spec = spec or FixedPointSpec()
    if spec.plain:
        return picard(
            T, x0, f, a=a, max_iter=max_iter, divergence=divergence, batch_dim=batch_dim, trace=trace, callback=callback
        )
    tol = spec.tol
    trace = trace or tol is not None
    kw = dict(
        a=a,
        tol=tol,
        tol_norm=spec.solver_tol_norm,
        divergence=divergence,
        batch_dim=batch_dim,
        trace=trace,
        callback=callback,
    )
    grad_on = torch.is_grad_enabled()
    if spec.grad_mode == "unrolled":
        x, stats = run_method(spec.solver_method, T, x0, f, spec=spec, max_iter=max_iter, **kw)
        stats.n_evals = stats.steps
    elif spec.grad_mode == "implicit":
        with torch.no_grad():
            x, stats = run_method(spec.solver_method, T, x0, f, spec=spec, max_iter=max_iter, **kw)
        stats.n_evals = stats.steps
        if grad_on:
            from .implicit import attach_implicit

            x = attach_implicit(
                T, x, f, a=a if isinstance(a, (int, float)) else a[-1], spec=spec, batch_dim=batch_dim, stats=stats
            )
            stats.n_evals += 1
    else:  # phantom:k -- (max_iter - k) steps without a graph, then k damped Picard steps with one
        k = min(spec.phantom_steps, max_iter)
        a_list = schedule(a, max_iter)
        if max_iter - k > 0:
            with torch.no_grad():
                x, stats = run_method(
                    spec.solver_method,
                    T,
                    x0,
                    f,
                    spec=spec,
                    max_iter=max_iter - k,
                    **(kw | {"a": a_list[: max_iter - k]}),
                )
        else:
            x, stats = x0, SolverStats(steps=0, status="max_iter")
        x = x.detach()
        first = stats.status
        if first in ("diverged", "nan"):
            stats.n_evals = stats.steps
            return x, stats
        off = stats.steps
        shifted = (lambda j, xx: callback(off + j, xx)) if callback is not None else None
        x, tail = picard(
            T,
            x,
            f,
            a=a_list[max_iter - k :],
            max_iter=k,
            divergence=None,
            batch_dim=batch_dim,
            trace=trace,
            callback=shifted,
            rel_trace=bool(stats.rel_residual) or spec.solver_tol_norm == "rel_residual",
        )
        if trace:
            stats.residual += tail.residual
            stats.rel_residual += tail.rel_residual
            if stats.step_norm and tail.step_norm:  # ratio across the seam
                prev, nxt = torch.tensor(stats.step_norm[-1]), torch.tensor(tail.step_norm[0])
                stats.ratio.append(_values(nxt / prev.clamp_min(1e-300)))
            stats.step_norm += tail.step_norm
            stats.ratio += tail.ratio
        stats.steps += tail.steps
        stats.status = first if first == "converged" else tail.status
        stats.n_evals = stats.steps
    stats.method = spec.solver_method
    if spec.jac_probes and grad_on:
        from .jacobian import hutchinson_frobenius

        stats.jac = hutchinson_frobenius(T, x, batch_dim=batch_dim, samples=spec.jac_probes)
    return x, stats
