"""Anderson acceleration (type II, Walker & Ni 2011) for ``x = T(x) + f``, with damping, a ridge
term and a safe fallback to the plain damped Picard step.

With g_k = T(x_k) + f and r_k = g_k - x_k, keep the last m differences dX_j = x_{j+1} - x_j and
dR_j = r_{j+1} - r_j, and per problem solve the (ridge-regularised) least-squares problem

    gamma = argmin ||r_k - dR^T gamma||^2 + lam * s * ||gamma||^2,   s = mean diag(dR dR^T)

then mix and damp with the solver's ``a`` (the weight on the OLD, here mixed, iterate):

    x_bar = x_k - dX^T gamma,   r_bar = r_k - dR^T gamma,
    x_{k+1} = a x_bar + (1 - a) (x_bar + r_bar) = x_k + (1-a) r_k - (dX + (1-a) dR)^T gamma.

With no history (k = 0, or after a restart) this is exactly the damped Picard step. When the
regularised normal matrix dR dR^T + lam s I of a problem has a condition number above ``cond_max``
(the ridge bounds it by about m / lam, so this bites with a small or zero ``lam``) or the solve is
not finite, that problem takes the plain damped step and its history restarts ("fallback",
counted in ``stats.fallbacks``).

Problems: the iterate is one problem, or with ``batch_dim=d`` one problem per index along d (as
in :func:`picard_cli.solver.picard`), each with its own coefficients, restarts and norms. All
operations are out of place, so gradients can flow through (``grad_mode=unrolled``).
Traces, tolerance, divergence and NaN handling follow :func:`picard_cli.solver.picard`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..solver import TOL_NORMS, SolverStats, StepMonitor, schedule
from .names import ANDERSON_COND, SPEC_DEFAULTS


def _flat(t: torch.Tensor, batch_dim: int | None) -> torch.Tensor:
    """(P, n) view of the problems (P = 1 without batch_dim)."""
    if batch_dim is None:
        return t.reshape(1, -1)
    return t.movedim(batch_dim, 0).reshape(t.shape[batch_dim], -1)


def _unflat(v: torch.Tensor, like: torch.Tensor, batch_dim: int | None) -> torch.Tensor:
    if batch_dim is None:
        return v.reshape(like.shape)
    moved = like.movedim(batch_dim, 0).shape
    return v.reshape(moved).movedim(0, batch_dim)


def anderson(
    T: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    f: torch.Tensor | None = None,
    *,
    a: float | Sequence[float] = 0.5,
    m: int = SPEC_DEFAULTS["anderson_m"],
    lam: float = SPEC_DEFAULTS["anderson_lam"],
    cond_max: float = ANDERSON_COND,
    max_iter: int = 10,
    tol: float | None = None,
    tol_norm: str = "rel_residual",
    divergence: float | None = 1e8,
    batch_dim: int | None = None,
    trace: bool = True,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    rel_trace: bool = True,
) -> tuple[torch.Tensor, SolverStats]:
    """Anderson-accelerated damped fixed-point iteration from ``x0``; returns ``(x, stats)``
    with the same traces as :func:`picard_cli.solver.picard` (plus ``rel_residual`` and
    ``stats.fallbacks``)."""
    if tol_norm not in TOL_NORMS:
        raise ValueError(f"tol_norm must be one of {', '.join(TOL_NORMS)}, got {tol_norm!r}")
    if m < 1:
        raise ValueError(f"Anderson memory m must be >= 1, got {m}")
    a_k = schedule(a, max_iter)
    x = x0
    stats = SolverStats(steps=0, status="max_iter", method="anderson")
    P = 1 if batch_dim is None else x0.shape[batch_dim]
    # History of differences. Without autograd: ring buffers written in place; with autograd
    # (grad_mode=unrolled through Anderson): lists, stacked out of place. ``born[c]`` = the step that
    # wrote column c; a problem restarted at step r only uses columns born after r.
    inplace = not torch.is_grad_enabled()
    bufX = bufR = None
    dX: list[torch.Tensor] = []
    dR: list[torch.Tensor] = []
    born: list[int] = []
    restart_at = torch.full((P,), -1, dtype=torch.long)
    prev_x = prev_r = None
    monitor = StepMonitor(stats, tol, tol_norm, divergence, batch_dim, rel_trace, callback)
    for k in range(max_iter):
        g = T(x)
        if f is not None:
            g = g + f
        xf, rf = _flat(x, batch_dim), _flat(g - x, batch_dim)
        if prev_x is not None:
            if inplace:
                if bufX is None:
                    bufX = xf.new_zeros(P, m, xf.shape[1])
                    bufR = xf.new_zeros(P, m, xf.shape[1])
                slot = (k - 1) % m
                torch.sub(xf, prev_x, out=bufX[:, slot])
                torch.sub(rf, prev_r, out=bufR[:, slot])
                if slot < len(born):
                    born[slot] = k
                else:
                    born.append(k)
            else:
                dX.append(xf - prev_x)
                dR.append(rf - prev_r)
                born.append(k)
                if len(dX) > m:
                    dX.pop(0)
                    dR.pop(0)
                    born.pop(0)
        prev_x, prev_r = xf, rf
        beta = 1.0 - a_k[k]
        step_flat = beta * rf
        L = len(born)
        if L:
            DX, DR = (bufX[:, :L], bufR[:, :L]) if inplace else (torch.stack(dX, 1), torch.stack(dR, 1))  # (P, L, n)
            H = torch.bmm(DR, DR.transpose(1, 2)).double()  # (P, L, L)
            rhs = torch.bmm(DR, rf.unsqueeze(-1)).squeeze(-1).double()  # (P, L)
            with torch.no_grad():
                use = (torch.tensor(born).unsqueeze(0) > restart_at.unsqueeze(1)).to(H.device)  # (P, L)
                usef = use.double()
                has = use.any(1)
                diag = torch.diagonal(H, dim1=1, dim2=2)
                s = (diag * usef).sum(1) / usef.sum(1).clamp_min(1)  # mean live diagonal
                s = torch.where(s > 0, s, torch.ones_like(s))
            # Live block + ridge; dead columns get identity-like rows (gamma = 0 there) on the live
            # block's scale, which keeps them out of the condition number.
            Hr = H * (usef.unsqueeze(2) * usef.unsqueeze(1)) + torch.diag_embed(
                usef * (lam * s).unsqueeze(1) + (1 - usef) * s.unsqueeze(1)
            )
            with torch.no_grad():
                if torch.isfinite(Hr).all():
                    ev = torch.linalg.eigvalsh(Hr)
                    ok = (ev[:, 0] > 0) & (ev[:, -1] <= cond_max * ev[:, 0]) & has
                else:
                    ok = torch.zeros(P, dtype=torch.bool, device=H.device)
            gamma, info = torch.linalg.solve_ex(Hr, rhs * usef)  # (P, L); no exception when singular
            with torch.no_grad():
                ok = ok & (info == 0) & torch.isfinite(gamma).all(1)
            gamma = torch.where(ok.unsqueeze(1), gamma, torch.zeros_like(gamma)).to(xf.dtype).unsqueeze(1)
            step_flat = step_flat - torch.bmm(gamma, DX).squeeze(1) - beta * torch.bmm(gamma, DR).squeeze(1)
            bad = (has & ~ok).cpu()  # problems without usable history take the plain step anyway
            if bool(bad.any()):
                stats.fallbacks += int(bad.sum())
                restart_at = torch.where(bad, torch.full_like(restart_at, k), restart_at)  # restart their history
        x_new = x + _unflat(step_flat, x, batch_dim)
        stats.steps = k + 1
        if trace and monitor.stop(k, x, g, x_new):
            return x_new, stats
        if callback is not None:
            callback(k + 1, x_new)
        x = x_new
    return x, stats
