"""The toolkit's solver spec: how :func:`picard_cli.fixedpoint.front.solve` solves and differentiates,
and the forward solve by method (:func:`run_method`: the paper's damped Picard, or Anderson)."""
from __future__ import annotations

from dataclasses import dataclass

from ..solver import picard
from .names import GRAD_MODES, METHODS, TOL_NORMS


@dataclass(frozen=True)
class FixedPointSpec:
    """How :func:`solve` solves and differentiates; the default is the paper's protocol
    (plain damped Picard, fixed step count, gradients through the unrolled steps).

    * ``method``: ``picard`` or ``anderson`` (memory ``anderson_m``, ridge ``anderson_lam``
      relative to the mean diagonal of the normal equations, fallback to a plain damped step when
      the least-squares system's condition number exceeds ``anderson_cond``; damping = the
      solver's ``a``, the weight on the old (mixed) iterate).
    * ``tol`` / ``tol_norm``: stop once every problem is below ``tol`` (None: fixed count).
    * ``grad``: ``unrolled`` (autograd through every step), ``implicit`` (solve without a graph,
      then the implicit-function-theorem gradient from a backward fixed-point solve
      ``u = J^T u + v`` with ``backward_tol`` / ``backward_max_iter``, by the same method; O(1)
      memory in the step count) or ``phantom:k`` (solve without a graph, then k damped Picard
      steps with one: Jacobian-free backprop for k = 1). The forward VALUE depends only on the
      spec, never on ``torch.is_grad_enabled()`` or ``model.eval()``.
    * ``jac_samples`` > 0: also return in ``stats.jac`` a Hutchinson estimate (that many probes)
      of ||J_T||_F^2 / d per problem at the solution, with a graph, when gradients are enabled.
    """

    method: str = "picard"
    tol: float | None = None
    tol_norm: str = "rel_residual"
    grad: str = "unrolled"
    anderson_m: int = 5
    anderson_lam: float = 1e-4
    anderson_cond: float = 1e10
    backward_tol: float = 1e-4
    backward_max_iter: int = 50
    jac_samples: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.grad not in GRAD_MODES and not (self.grad.startswith("phantom:") and self.grad[8:].isdigit()
                                                and int(self.grad[8:]) >= 1):
            raise ValueError(f"grad must be unrolled, implicit or phantom:k (k >= 1), got {self.grad!r}")
        if self.tol_norm not in TOL_NORMS:
            raise ValueError(f"tol_norm must be one of {', '.join(TOL_NORMS)}, got {self.tol_norm!r}")

    @property
    def plain(self) -> bool:
        """True when solve() is exactly picard() (the paper's protocol)."""
        return self.method == "picard" and self.tol is None and self.grad == "unrolled" and not self.jac_samples

    @property
    def phantom_steps(self) -> int:
        return int(self.grad.split(":")[1]) if self.grad.startswith("phantom:") else 0


def run_method(method: str, T, x0, f=None, *, spec: FixedPointSpec | None = None, **kw):
    """One forward solve by ``method`` with :func:`picard`'s keyword arguments."""
    if method == "picard":
        return picard(T, x0, f, **kw)
    from .anderson import anderson

    spec = spec or FixedPointSpec()
    return anderson(T, x0, f, m=spec.anderson_m, lam=spec.anderson_lam, cond_max=spec.anderson_cond, **kw)
