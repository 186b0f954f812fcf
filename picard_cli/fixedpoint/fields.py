"""The fixed-point toolkit's recipe fields, shared by every experiment that wires it (PIGN, ANIE).

``@fixedpoint_fields`` (applied under ``@dataclass``) appends the fields below to an experiment's
config. All are ``added=True``: at their defaults they stay out of a run's identity, so records
made before the toolkit existed keep their keys, and the defaults are the paper's protocol
(plain damped Picard, fixed iteration count, unrolled gradients, no regularisation).
"""
from __future__ import annotations

from ..recipes import fld
from .names import GRAD_MODES, METHODS, TOL_NORMS


def _fields() -> dict:
    return {
        "solver_method": (str, fld("picard", "fixed-point method: picard (the paper) or anderson (Anderson "
                                   "acceleration; damping = a, memory anderson_m, ridge anderson_lam)",
                                   choices=METHODS, added=True)),
        "solver_tol": (float, fld(0.0, "stop once every problem is below this on solver_tol_norm (0 = always the "
                                  "full iteration count, the paper); the count becomes a cap",
                                  range=(0.0, 1e9), added=True)),
        "solver_tol_norm": (str, fld("rel_residual", "what solver_tol tests: rel_residual ||T(x)+f-x||/||T(x)+f||, "
                                     "residual ||T(x)+f-x|| or step ||x_k+1 - x_k||", choices=TOL_NORMS, added=True)),
        "anderson_m": (int, fld(5, "Anderson memory (past differences mixed)", range=(1, 100), added=True)),
        "anderson_lam": (float, fld(1e-4, "Anderson ridge, relative to the mean diagonal of the normal equations",
                                    range=(0.0, 1e6), added=True)),
        "grad_mode": (str, fld("unrolled", "gradient: unrolled (through every step, the paper), implicit "
                               "(implicit-function theorem, backward fixed-point solve, O(1) memory in the steps) "
                               "or phantom:k (no graph, then k damped steps with one)", choices=GRAD_MODES,
                               added=True)),
        "implicit_tol": (float, fld(1e-4, "implicit gradient: tolerance of the backward solve (relative residual)",
                                    range=(0.0, 1.0), added=True)),
        "implicit_max_iter": (int, fld(50, "implicit gradient: at most this many backward steps", range=(1, 10000),
                                       added=True)),
        "jac_reg": (float, fld(0.0, "weight of the Jacobian penalty: Hutchinson estimate of ||dT/dx||_F^2 / d at the "
                               "solution, added to the training loss (0 = off)", range=(0.0, 1e6), added=True)),
        "jac_samples": (int, fld(1, "Jacobian penalty: Hutchinson probes per step", range=(1, 64), added=True)),
        "spectral_norm": (float, fld(0.0, "cap the spectral norm of every operator weight matrix at this value "
                                     "(0 = off)", range=(0.0, 1e6), added=True)),
        "forcing": (str, fld("none", "forcing f of x = T(x) + f: none (the paper's f = 0; the input enters via x0) "
                             "or input (f = the encoded input, so the fixed point depends on it)",
                             choices=("none", "input"), added=True)),
        "dropout_mask": (str, fld("auto", "dropout inside T: per-step (fresh masks each application, the paper), "
                                  "fixed (one mask per solve: a deterministic map) or auto (per-step with the "
                                  "paper's solver, fixed with anderson, a tolerance, or implicit / phantom "
                                  "gradients)", choices=("auto", "per-step", "fixed"), added=True)),
        "diagnose": (bool, fld(False, "after training: Lipschitz bound, Jacobian spectral radius, contraction "
                               "class, and diag_iters-step picard + anderson solves (residual and metric vs k, "
                               "stopping points of tolerances 1e-1..1e-6) in extra.fixedpoint", added=True)),
        "diag_iters": (int, fld(100, "diagnose: steps of each diagnostic solve", range=(1, 10000), added=True)),
        "power_iters": (int, fld(50, "diagnose: power-method iterations for the spectral radius",
                                 range=(2, 10000), added=True)),
    }


FIELD_NAMES = tuple(_fields())


def fixedpoint_fields(cls):
    """Class decorator (under ``@dataclass``): append the toolkit's fields to ``cls``."""
    ann = dict(cls.__dict__.get("__annotations__", {}))
    for name, (tp, f) in _fields().items():
        if name in ann:
            raise TypeError(f"{cls.__name__} already has a field {name!r}")
        ann[name] = tp
        setattr(cls, name, f)
    cls.__annotations__ = ann
    return cls


def spec_from_config(c: dict):
    """The solver spec (a :class:`picard_cli.fixedpoint.spec.FixedPointSpec`) a resolved config asks for
    (the paper's plain spec at the defaults)."""
    from .spec import FixedPointSpec

    return FixedPointSpec(method=c.get("solver_method", "picard"), tol=c.get("solver_tol") or None,
                          tol_norm=c.get("solver_tol_norm", "rel_residual"), grad=c.get("grad_mode", "unrolled"),
                          anderson_m=c.get("anderson_m", 5), anderson_lam=c.get("anderson_lam", 1e-4),
                          backward_tol=c.get("implicit_tol", 1e-4), backward_max_iter=c.get("implicit_max_iter", 50),
                          jac_samples=c.get("jac_samples", 1) if c.get("jac_reg", 0.0) > 0 else 0)


def fixed_masks(c: dict) -> bool:
    """Whether dropout inside T uses one mask per solve (see picard_cli/fixedpoint/noise.py)."""
    mode = c.get("dropout_mask", "auto")
    if mode != "auto":
        return mode == "fixed"
    spec = spec_from_config(c)  # the solve itself needs one deterministic map:
    return spec.method != "picard" or spec.tol is not None or spec.grad != "unrolled"


def toolkit_in_use(c: dict) -> bool:
    """True when any toolkit field is away from its default."""
    defaults = {name: f.default for name, (_, f) in _fields().items()}
    return any(name in c and c[name] != d for name, d in defaults.items())
