"""Names shared by the solver core and the recipe fields (no torch import: `picard list` stays light)."""
METHODS = ("picard", "anderson")
GRAD_MODES = ("unrolled", "implicit") + tuple(f"phantom:{k}" for k in range(1, 17))
TOL_NORMS = ("step", "residual", "rel_residual")
