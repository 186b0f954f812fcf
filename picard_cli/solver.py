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

* ``"rel_residual"`` ||T(x_k) + f - x_k|| / ||T(x_k) + f||   (scale-free; traced as ``rel_residual``)

The iteration stops when every problem in the batch is below ``tol``.

Beyond the paper (issue 9): :func:`solve` is the front door every experiment can use. With its
default :class:`FixedPointSpec` it is exactly :func:`picard` (the paper's protocol); the spec
selects Anderson acceleration (``solver_method``), a tolerance, and the gradient mode (``grad_mode``:
``unrolled`` | ``implicit`` | ``phantom:k``); see ``picard_cli/fixedpoint/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import torch

from .fixedpoint.names import TOL_NORMS

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
    rel_residual: list = field(default_factory=list)  # ||T(x_k) + f - x_k|| / ||T(x_k) + f|| (when asked for)
    # Set by solve() beyond the plain paper path only (absent from the records of default runs):
    method: str = "picard"
    n_evals: int | None = None  # operator evaluations of the forward pass (incl. implicit / phantom extras)
    fallbacks: int = 0  # Anderson: problem-steps that fell back to a plain damped step
    backward: dict | None = None  # implicit gradient: the backward fixed-point solve of the last backward pass
    jac: object = None  # Jacobian-regularisation term per problem (a tensor with graph), when asked for

    def per_problem(self, i: int) -> dict:
        """Traces of problem ``i`` of a batched solve, as a plain JSON-able dict."""
        pick = (lambda v: v[i]) if self.step_norm and isinstance(self.step_norm[0], list) else (lambda v: v)
        out = {
            "steps": self.steps,
            "status": self.status,
            "step_norm": [pick(v) for v in self.step_norm],
            "residual": [pick(v) for v in self.residual],
            "ratio": [pick(v) for v in self.ratio],
        }
        if self.rel_residual:
            pick_r = (lambda v: v[i]) if isinstance(self.rel_residual[0], list) else (lambda v: v)
            out["rel_residual"] = [pick_r(v) for v in self.rel_residual]
        if self.n_evals is not None:
            out |= {"method": self.method, "n_evals": self.n_evals, "fallbacks": self.fallbacks}
            if self.backward is not None:
                out["backward"] = self.backward
        return out

    def total(self) -> "SolverStats":
        """The traces of a batched solve as ONE problem: per-problem norms combined into the norm
        of the whole iterate (sqrt of the sum of squares), ratios recomputed; relative residuals
        become the worst problem's (what a batch-wide "all below tol" test sees)."""
        if not self.step_norm or not isinstance(self.step_norm[0], list):
            return self

        def comb(vs):
            return [sum(v * v for v in row) ** 0.5 for row in vs]

        step, res = comb(self.step_norm), comb(self.residual)
        ratio = [s / max(p, 1e-300) for p, s in zip(step, step[1:])]
        rel = (
            [max(row) for row in self.rel_residual]
            if self.rel_residual and isinstance(self.rel_residual[0], list)
            else list(self.rel_residual)
        )
        return SolverStats(
            self.steps,
            self.status,
            step,
            res,
            ratio,
            rel,
            self.method,
            self.n_evals,
            self.fallbacks,
            self.backward,
            self.jac,
        )


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


def damp(x, g, a: float):
    """Alg. 1 line 5, ``a x + (1 - a) g``, as one pass where it can: ``torch.lerp(g, x, a)``
    (= g + a (x - g)) reads both tensors once, where the two products and the sum read and write
    the iterate's size five times (PIGN-GCN/Cora, 100 seeds: ~9 -> ~4 ms a step, 2-core CPU). Same
    value up to rounding; the plain formula where the two are not tensors of one dtype and shape."""
    if (
        isinstance(x, torch.Tensor)
        and isinstance(g, torch.Tensor)
        and x.shape == g.shape
        and x.dtype == g.dtype
        and x.device == g.device
        and x.dtype.is_floating_point
    ):
        return torch.lerp(g, x, float(a))
    return a * x + (1.0 - a) * g


def _norm(t: torch.Tensor, batch_dim: int | None) -> torch.Tensor:
    if batch_dim is None:
        return torch.linalg.vector_norm(t)
    return torch.linalg.vector_norm(t.transpose(0, batch_dim).flatten(1), dim=-1)


def _values(t: torch.Tensor):
    return t.item() if t.dim() == 0 else t.tolist()


class StepMonitor:
    """The per-step bookkeeping every solver shares (Picard here, Anderson in ``fixedpoint``):
    traces of the undamped residual ``||T(x_k)+f-x_k||``, the step ``||x_{k+1}-x_k||``, the
    relative residual and the contraction ratio q_k; then the stopping tests in this order:
    a non-finite iterate (``nan``), residual above ``divergence`` x the first (``diverged``),
    every problem at or below ``tol`` on ``tol_norm`` (``converged``, after ``callback``)."""

    def __init__(self, stats: SolverStats, tol, tol_norm, divergence, batch_dim, rel_trace, callback):
        self.stats, self.tol, self.tol_norm, self.divergence = stats, tol, tol_norm, divergence
        self.batch_dim, self.callback = batch_dim, callback
        self.rel = rel_trace or tol_norm == "rel_residual"
        self.first_res = self.prev_step = None

    @torch.no_grad()
    def stop(self, k: int, x, g, x_new) -> bool:
        """Record step k (x_k -> x_{k+1}, g = T(x_k) + f); True when the solver must stop."""
        stats, bd = self.stats, self.batch_dim
        tiny = torch.finfo(x_new.dtype).tiny
        res, step = _norm(g - x, bd), _norm(x_new - x, bd)
        stats.residual.append(_values(res))
        stats.step_norm.append(_values(step))
        rel = None
        if self.rel:
            gn = _norm(g, bd)
            rel = res / gn.clamp_min(tiny)
            rel = torch.where(torch.isfinite(gn) & torch.isfinite(res), rel, torch.full_like(rel, float("nan")))
            stats.rel_residual.append(_values(rel))
        if self.prev_step is not None:
            stats.ratio.append(_values(step / self.prev_step.clamp_min(tiny)))
        self.prev_step = step
        if not torch.isfinite(x_new).all():
            stats.status = "nan"
            return True
        if self.first_res is None:
            self.first_res = res.clamp_min(tiny)
        if self.divergence is not None and bool((res > self.divergence * self.first_res).any()):
            stats.status = "diverged"
            return True
        if self.tol is not None:
            crit = step if self.tol_norm == "step" else res if self.tol_norm == "residual" else rel
            if bool((crit <= self.tol).all()):
                if self.callback is not None:
                    self.callback(k + 1, x_new)
                stats.status = "converged"
                return True
        return False


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
    callback: Callable[[int, torch.Tensor], None] | None = None,
    rel_trace: bool = False,
    leading_rows: bool = False,
) -> tuple[torch.Tensor, SolverStats]:
    """Run damped Picard iterations from ``x0``; return ``(x, stats)``.

    ``divergence``: stop with status ``diverged`` when the residual exceeds this
    multiple of the first residual (None disables the check). A non-finite
    iterate stops with status ``nan``. ``trace=False`` skips the norm
    bookkeeping (no stats traces, no tolerance test, no divergence test) for
    the fast path inside training loops; non-finite checks are skipped too.
    ``callback(k, x_k)`` is called after every step k = 1, 2, ... with the new iterate
    (diagnostics: the task metric at every iteration). ``rel_trace`` records
    ``stats.rel_residual`` (always recorded with ``tol_norm='rel_residual'``).
    ``leading_rows``: ``T`` may return fewer rows (dim 0) than it was given: the leading rows of
    the operator's output, when only those are needed later (a receptive-field pass,
    ``models.field``); the update then uses the same leading rows of ``x_k`` and ``f``. Norms
    over shrinking iterates mean nothing, so it needs ``trace=False``.
    """
    if tol_norm not in TOL_NORMS:
        raise ValueError(f"tol_norm must be one of {', '.join(TOL_NORMS)}, got {tol_norm!r}")
    a_k = schedule(a, max_iter)
    if tol is not None and not trace:
        raise ValueError("a tolerance needs trace=True (norms are what it tests)")
    if leading_rows and trace:
        raise ValueError("leading_rows needs trace=False (norms of shrinking iterates are not comparable)")
    x = x0
    stats = SolverStats(steps=0, status="max_iter")
    monitor = StepMonitor(stats, tol, tol_norm, divergence, batch_dim, rel_trace, callback)
    for k in range(max_iter):
        # Alg. 1 line 4 / Alg. 2: apply the operator and add the forcing term f.
        g = T(x)
        if leading_rows and g.shape[0] < x.shape[0]:
            x, f = x[: g.shape[0]], (None if f is None else f[: g.shape[0]])
        if f is not None:
            g = g + f
        # Alg. 1 line 5: smoothed (damped) update, a on the old iterate.
        x_new = damp(x, g, a_k[k])
        stats.steps = k + 1
        if trace and monitor.stop(k, x, g, x_new):
            return x_new, stats
        if callback is not None:
            callback(k + 1, x_new)
        x = x_new
    return x, stats
