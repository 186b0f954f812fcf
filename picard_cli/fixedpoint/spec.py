"""The toolkit's solver spec: how :func:`picard_cli.fixedpoint.front.solve` solves and differentiates,
and the forward solve by method (:func:`run_method`: the paper's damped Picard, or Anderson)."""

from __future__ import annotations

from dataclasses import dataclass

from ..solver import picard
from .names import ANDERSON_COND, GRAD_MODES, METHODS, TOL_NORMS
from .names import SPEC_DEFAULTS as DEFAULTS


@dataclass(frozen=True)
class FixedPointSpec:
    """How :func:`solve` solves and differentiates; the default is the paper's protocol
    (plain damped Picard, fixed step count, gradients through the unrolled steps).

    The fields are the recipe fields of :mod:`picard_cli.fixedpoint.fields`, by the same names, with the
    same meanings and the same defaults (both read ``names.SPEC_DEFAULTS``: one source), so
    :func:`~picard_cli.fixedpoint.fields.spec_from_config` copies them across unchanged.

    * ``solver_method``: ``picard`` or ``anderson`` (memory ``anderson_m``, ridge ``anderson_lam``
      relative to the mean diagonal of the normal equations, fallback to a plain damped step when
      the least-squares system's condition number exceeds ``anderson_cond``; damping = the
      solver's ``a``, the weight on the old (mixed) iterate).
    * ``solver_tol`` / ``solver_tol_norm``: stop once every problem is below ``solver_tol``
      (0: the fixed count; :attr:`tol` is it as the solver's ``tol``, None for 0).
    * ``grad_mode``: ``unrolled`` (autograd through every step), ``implicit`` (solve without a graph,
      then the implicit-function-theorem gradient from a backward fixed-point solve
      ``u = J^T u + v`` with ``implicit_tol`` / ``implicit_max_iter``, by the same method; O(1)
      memory in the step count) or ``phantom:k`` (solve without a graph, then k damped Picard
      steps with one: Jacobian-free backprop for k = 1). The forward VALUE depends only on the
      spec, never on ``torch.is_grad_enabled()`` or ``model.eval()``.
    * ``jac_reg`` > 0: also return in ``stats.jac`` a Hutchinson estimate (``jac_samples`` probes)
      of ||J_T||_F^2 / d per problem at the solution, with a graph, when gradients are enabled; the
      caller adds ``jac_reg`` times it to its loss.
    """

    solver_method: str = DEFAULTS["solver_method"]
    solver_tol: float = DEFAULTS["solver_tol"]
    solver_tol_norm: str = DEFAULTS["solver_tol_norm"]
    grad_mode: str = DEFAULTS["grad_mode"]
    anderson_m: int = DEFAULTS["anderson_m"]
    anderson_lam: float = DEFAULTS["anderson_lam"]
    anderson_cond: float = ANDERSON_COND  # not a recipe field
    implicit_tol: float = DEFAULTS["implicit_tol"]
    implicit_max_iter: int = DEFAULTS["implicit_max_iter"]
    jac_reg: float = DEFAULTS["jac_reg"]
    jac_samples: int = DEFAULTS["jac_samples"]

    def __post_init__(self):
        if self.solver_method not in METHODS:
            raise ValueError(f"solver_method must be one of {', '.join(METHODS)}, got {self.solver_method!r}")
        g = self.grad_mode
        if g not in GRAD_MODES and not (g.startswith("phantom:") and g[8:].isdigit() and int(g[8:]) >= 1):
            raise ValueError(f"grad_mode must be unrolled, implicit or phantom:k (k >= 1), got {g!r}")
        if self.solver_tol_norm not in TOL_NORMS:
            raise ValueError(f"solver_tol_norm must be one of {', '.join(TOL_NORMS)}, got {self.solver_tol_norm!r}")

    @property
    def tol(self) -> float | None:
        """``solver_tol`` as the solver's ``tol``: None (the fixed count) for 0."""
        return self.solver_tol or None

    @property
    def jac_probes(self) -> int:
        """Hutchinson probes of the Jacobian penalty per solve (0: no penalty)."""
        return self.jac_samples if self.jac_reg > 0 else 0

    @property
    def plain(self) -> bool:
        """True when solve() is exactly picard() (the paper's protocol)."""
        return (
            self.solver_method == "picard" and self.tol is None and self.grad_mode == "unrolled" and not self.jac_probes
        )

    @property
    def phantom_steps(self) -> int:
        return int(self.grad_mode.split(":")[1]) if self.grad_mode.startswith("phantom:") else 0


def run_method(method: str, T, x0, f=None, *, spec: FixedPointSpec | None = None, **kw):
    """One forward solve by ``method`` with :func:`picard`'s keyword arguments."""
    if method == "picard":
        return picard(T, x0, f, **kw)
    from .anderson import anderson

    spec = spec or FixedPointSpec()
    return anderson(T, x0, f, m=spec.anderson_m, lam=spec.anderson_lam, cond_max=spec.anderson_cond, **kw)
