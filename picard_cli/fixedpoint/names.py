"""Names shared by the solver core and the recipe fields (no torch import: `picard list` stays light)."""

METHODS = ("picard", "anderson")
GRAD_MODES = ("unrolled", "implicit") + tuple(f"phantom:{k}" for k in range(1, 17))
TOL_NORMS = ("step", "residual", "rel_residual")
ANDERSON_COND = 1e10  # Anderson: a problem whose least-squares system is worse conditioned takes the plain step
# The defaults of the toolkit's solver fields (the paper's protocol: plain damped Picard, the full step count,
# unrolled gradients, no penalty), in one place: the recipe fields (fields.py) and FixedPointSpec (spec.py),
# which carries them under the same names, both read them from here.
SPEC_DEFAULTS = {
    "solver_method": "picard",
    "solver_tol": 0.0,
    "solver_tol_norm": "rel_residual",
    "grad_mode": "unrolled",
    "anderson_m": 5,
    "anderson_lam": 1e-4,
    "implicit_tol": 1e-4,
    "implicit_max_iter": 50,
    "jac_reg": 0.0,
    "jac_samples": 1,
}
