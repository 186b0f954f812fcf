"""The fixed-point toolkit's recipe fields, shared by every experiment that wires it (PIGN, ANIE).

``@fixedpoint_fields`` (applied under ``@dataclass``) appends the fields below to an experiment's
config. All are ``added=True``: at their defaults they stay out of a run's identity, so records
made before the toolkit existed keep their keys, and the defaults are the paper's protocol
(plain damped Picard, fixed iteration count, unrolled gradients, no regularisation).
"""

from __future__ import annotations

from ..recipes import fld
from .names import GRAD_MODES, METHODS, SPEC_DEFAULTS, TOL_NORMS


def _fields() -> dict:
    D = SPEC_DEFAULTS  # the solver fields' defaults (names.py: FixedPointSpec reads the same)
    return {
        "solver_method": (
            str,
            fld(
                D["solver_method"],
                "fixed-point method: picard (the paper) or anderson (Anderson "
                "acceleration; damping = a, memory anderson_m, ridge anderson_lam)",
                choices=METHODS,
                added=True,
            ),
        ),
        "solver_tol": (
            float,
            fld(
                D["solver_tol"],
                "stop once every problem is below this on solver_tol_norm (0 = always the "
                "full iteration count, the paper); the count becomes a cap",
                range=(0.0, 1e9),
                added=True,
            ),
        ),
        "solver_tol_norm": (
            str,
            fld(
                D["solver_tol_norm"],
                "what solver_tol tests: rel_residual ||T(x)+f-x||/||T(x)+f||, "
                "residual ||T(x)+f-x|| or step ||x_k+1 - x_k||",
                choices=TOL_NORMS,
                added=True,
            ),
        ),
        "anderson_m": (
            int,
            fld(D["anderson_m"], "Anderson memory (past differences mixed)", range=(1, 100), added=True),
        ),
        "anderson_lam": (
            float,
            fld(
                D["anderson_lam"],
                "Anderson ridge, relative to the mean diagonal of the normal equations",
                range=(0.0, 1e6),
                added=True,
            ),
        ),
        "grad_mode": (
            str,
            fld(
                D["grad_mode"],
                "gradient: unrolled (through every step, the paper), implicit "
                "(implicit-function theorem, backward fixed-point solve, O(1) memory in the steps) "
                "or phantom:k (no graph, then k damped steps with one)",
                choices=GRAD_MODES,
                added=True,
            ),
        ),
        "implicit_tol": (
            float,
            fld(
                D["implicit_tol"],
                "implicit gradient: tolerance of the backward solve (relative residual)",
                range=(0.0, 1.0),
                added=True,
            ),
        ),
        "implicit_max_iter": (
            int,
            fld(
                D["implicit_max_iter"],
                "implicit gradient: at most this many backward steps",
                range=(1, 10000),
                added=True,
            ),
        ),
        "jac_reg": (
            float,
            fld(
                D["jac_reg"],
                "weight of the Jacobian penalty: Hutchinson estimate of ||dT/dx||_F^2 / d at the "
                "solution, added to the training loss (0 = off)",
                range=(0.0, 1e6),
                added=True,
            ),
        ),
        "jac_samples": (
            int,
            fld(D["jac_samples"], "Jacobian penalty: Hutchinson probes per step", range=(1, 64), added=True),
        ),
        "spectral_norm": (
            float,
            fld(
                0.0,
                "cap the spectral norm of every operator weight matrix at this value (0 = off)",
                range=(0.0, 1e6),
                added=True,
            ),
        ),
        "forcing": (
            str,
            fld(
                "none",
                "forcing f of x = T(x) + f: none (the paper's f = 0; the input enters via x0) "
                "or input (f = the encoded input, so the fixed point depends on it)",
                choices=("none", "input"),
                added=True,
            ),
        ),
        "dropout_mask": (
            str,
            fld(
                "auto",
                "dropout inside T: per-step (fresh masks each application, the paper), "
                "fixed (one mask per solve: a deterministic map) or auto (per-step with the "
                "paper's solver, fixed with anderson, a tolerance, or implicit / phantom "
                "gradients)",
                choices=("auto", "per-step", "fixed"),
                added=True,
            ),
        ),
        "diagnose": (
            bool,
            fld(
                False,
                "after training: Lipschitz bound, Jacobian spectral radius, contraction "
                "class, and diag_iters-step picard + anderson solves (residual and metric vs k, "
                "stopping points of tolerances 1e-1..1e-6) in extra.fixedpoint",
                added=True,
            ),
        ),
        "diag_iters": (int, fld(100, "diagnose: steps of each diagnostic solve", range=(1, 10000), added=True)),
        "power_iters": (
            int,
            fld(50, "diagnose: power-method iterations for the spectral radius", range=(2, 10000), added=True),
        ),
    }


FIELD_NAMES = tuple(_fields())
# Every toolkit field's default (the solver fields' from names.SPEC_DEFAULTS): a stored config dict without
# a field (a record made before the field existed) reads its default here.
DEFAULTS = {name: f.default for name, (_, f) in _fields().items()}
SPEC_FIELDS = tuple(SPEC_DEFAULTS)  # the fields a FixedPointSpec holds, by the same names (spec.py)


def _value(c, name: str):
    """Field ``name`` of a typed config, or of a config dict (absent: its default, :data:`DEFAULTS`)."""
    return c.get(name, DEFAULTS[name]) if isinstance(c, dict) else getattr(c, name)


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


def spec_from_config(c):
    """The solver spec (a :class:`picard_cli.fixedpoint.spec.FixedPointSpec`) a config asks for: its toolkit
    fields, copied by name (the paper's plain spec at the defaults). ``c``: a typed experiment config, or its
    dict."""
    from .spec import FixedPointSpec

    return FixedPointSpec(**{name: _value(c, name) for name in SPEC_FIELDS})


def fixed_masks(c) -> bool:
    """Whether dropout inside T uses one mask per solve (see picard_cli/fixedpoint/noise.py)."""
    mode = _value(c, "dropout_mask")
    if mode != "auto":
        return mode == "fixed"
    spec = spec_from_config(c)  # the solve itself needs one deterministic map:
    return spec.solver_method != "picard" or spec.tol is not None or spec.grad_mode != "unrolled"


def toolkit_in_use(c) -> bool:
    """True when any toolkit field of a config (typed, or its dict) is away from its default."""
    return any(_value(c, name) != d for name, d in DEFAULTS.items())
