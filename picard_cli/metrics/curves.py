"""Curve summaries shared by experiments and their figures: the paper's EMA smoothing of loss curves
(Fig. 2 caption) and the convergence check of a per-recycle score curve (Figs. 4-5)."""

from __future__ import annotations

import math

SMOOTH_ALPHA = 0.1  # paper Fig. 2 caption: "EMA smoothing with alpha = 0.1" of the loss curves


def smooth(values: list[float], alpha: float = SMOOTH_ALPHA) -> list[float]:
    """EMA smoothing of a loss curve, s_k = (1 - alpha) s_{k-1} + alpha x_k (Fig. 2 caption)."""
    out: list[float] = []
    for v in values:
        out.append(v if not out else (1 - alpha) * out[-1] + alpha * v)
    return out


def convergence(curve, higher_better: bool, tol: float) -> dict:
    """Last value of a curve vs its best earlier value (None / NaN skipped): "converged" unless the last
    is worse by more than ``tol``."""
    vals = [(r, float(v)) for r, v in enumerate(curve) if v is not None and math.isfinite(float(v))]
    if len(vals) < 2:
        return {
            "final": round(vals[-1][1], 6) if vals else None,
            "best_earlier": None,
            "best_recycle": None,
            "converged": True,
        }
    *earlier, (_, final) = vals
    r_best, best = (max if higher_better else min)(earlier, key=lambda x: x[1])
    worse = final < best - tol if higher_better else final > best + tol
    return {"final": round(final, 6), "best_earlier": round(best, 6), "best_recycle": r_best, "converged": not worse}
