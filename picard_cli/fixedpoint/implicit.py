"""Implicit-function-theorem gradients at a fixed point (O(1) memory in the step count).

At a fixed point z* = T(z*; theta) + f the total derivative is dz*/d(theta, f) =
(I - J)^{-1} d(T + f)/d(theta, f), J = dT/dz at z*. For an incoming gradient v = dL/dz*,
backprop therefore needs u = (I - J)^{-T} v, the solution of the BACKWARD fixed-point problem

    u = J^T u + v,

solved here with the forward solver's method and damping (vector-Jacobian products J^T u are
one autograd call each on a single retained application of T), and then u is pushed through
that one application to theta and f.

:func:`attach_implicit` returns a tensor whose VALUE is exactly ``z`` (the forward solver's
output: ``z + (g - g.detach())`` adds an exact zero) and whose gradient is the implicit one. The
graph kept for backward is one application of T, whatever the number of forward steps.

Safeguard: when the backward solve diverges (residual above 1e3 x its first value, or not finite)
or stops unconverged above a relative residual of 1e-2, the step uses the Jacobian-free gradient
u = v instead (as ``phantom:1``), per problem; ``stats.backward["fallback"]`` counts them. Training an operator
that starts non-contractive thus begins with Jacobian-free steps and switches to exact implicit
gradients once the backward problem converges (e.g. under ``jac_reg``).
"""

from __future__ import annotations

import torch

BACKWARD_DIVERGENCE = 1e3  # the backward solve "diverged" once its residual exceeds 1e3 x the first one
BACKWARD_FALLBACK_REL = 1e-2  # an unconverged backward solve ending above this relative residual is not used


def attach_implicit(
    T, z: torch.Tensor, f: torch.Tensor | None, *, a: float, spec, batch_dim: int | None = None, stats=None
) -> torch.Tensor:
    """``z`` (a fixed point of ``T(.) + f``, no graph) -> the same values, with implicit gradients to
    T's parameters and ``f``. ``spec`` (a :class:`picard_cli.fixedpoint.spec.FixedPointSpec`) gives the backward
    method, tolerance (``implicit_tol`` on the relative residual) and cap (``implicit_max_iter``);
    the backward solve's summary lands in ``stats.backward`` when ``stats`` is given."""
    from .spec import run_method

    z_in = z.detach().requires_grad_(True)
    with torch.enable_grad():
        g = T(z_in)
        if f is not None:
            g = g + f

    def backward_hook(v: torch.Tensor) -> torch.Tensor:
        def JT(u):  # J^T u: one vector-Jacobian product through the retained application of T
            return torch.autograd.grad(g, z_in, u, retain_graph=True)[0]

        with torch.no_grad():
            u, st = run_method(
                spec.solver_method,
                JT,
                v,
                v,
                spec=spec,
                a=a,
                max_iter=spec.implicit_max_iter,
                tol=spec.implicit_tol,
                tol_norm="rel_residual",
                divergence=BACKWARD_DIVERGENCE,
                batch_dim=batch_dim,
                trace=True,
            )
        # A backward iteration that blows up or gets nowhere (the operator is not contractive at this
        # point: no fixed point to differentiate) returns a useless, often huge, gradient; such
        # problems fall back to the Jacobian-free gradient u = v (phantom:1's direction) instead.
        rel = torch.as_tensor(st.rel_residual[-1] if st.rel_residual else float("nan"), dtype=torch.float64)
        ok = torch.isfinite(rel) & (rel <= max(BACKWARD_FALLBACK_REL, spec.implicit_tol))  # per problem
        finite = torch.isfinite(u)
        if batch_dim is None:
            ok = ok & finite.all()
        else:
            ok = ok.to(u.device) & finite.movedim(batch_dim, 0).reshape(u.shape[batch_dim], -1).all(1)
        if stats is not None:
            stats.backward = {
                "steps": st.steps,
                "status": st.status,
                "fallback": int((~ok).sum()),
                "rel_residual": float(rel.max()) if rel.numel() else None,
            }
        if bool(ok.all()):
            return u
        shape = [1] * u.dim()
        if batch_dim is not None:
            shape[batch_dim] = u.shape[batch_dim]
        return torch.where(ok.to(u.device).reshape(shape), u, v)

    if not g.requires_grad:
        return z.detach()
    out = g.view_as(g)  # the hook sits on this alias: the VJPs above start at g and must not re-enter it
    out.register_hook(backward_hook)
    return z.detach() + (out - out.detach())
