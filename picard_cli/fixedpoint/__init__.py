"""The fixed-point toolkit beyond the paper (issue 9), used through :func:`picard_cli.fixedpoint.front.solve`
and the recipe fields of :mod:`picard_cli.fixedpoint.fields`:

* :mod:`.anderson` -- Anderson acceleration with damping, ridge and a safe Picard fallback;
* :mod:`.implicit` -- implicit-function-theorem gradients (backward fixed-point solve);
* :mod:`.jacobian` -- Hutchinson Jacobian penalty, spectral radius by the power method;
* :mod:`.certify` -- a-priori Lipschitz bounds and the contraction class of a run;
* :mod:`.spectral` -- spectral-norm caps on an operator's weights;
* :mod:`.noise` -- one dropout mask per solve (a deterministic map to solve);
* :mod:`.diagnostics` -- tolerance-grid stopping points, metric vs iteration, saved-tensor bytes.
"""
