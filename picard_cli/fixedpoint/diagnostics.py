"""Convergence diagnostics of a trained operator, from one long solve per method.

:func:`diagnose` runs ``iters`` steps of each method WITHOUT a tolerance, recording per step the
relative residual ||T(x_k) + f - x_k|| / ||T(x_k) + f|| and (through ``metric``) the task metric
of the iterate, then reads off for every tolerance of a grid the number of operator evaluations
a solve with ``solver_tol=tol`` (``solver_tol_norm=rel_residual``) would have used
(:func:`tol_stops`; the same test as the solver's, so a real tolerance run stops there), the
metric at that point, the spectral radius of the Jacobian at the final iterate (power method on
vector-Jacobian products), and the contraction class (:mod:`.certify`).

:func:`saved_tensor_bytes` counts the bytes autograd saves for backward (unique storages), the
CPU-side measure of training memory used by ``benchmarks/fixedpoint_memory.py``.
"""

from __future__ import annotations

import contextlib
import time

import torch

from .certify import classify, tail_ratio_max
from .jacobian import spectral_radius

TOL_GRID = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def tol_key(t: float) -> str:
    return f"{t:.0e}"


def tol_stops(rel_residual: list[float], grid=TOL_GRID) -> dict[str, int | None]:
    """Operator evaluations a solve with tolerance ``tol`` on the relative residual would use:
    the first k + 1 with rel_residual[k] <= tol (the residual of x_k is measured while computing
    x_{k+1}), or None when the trace never gets there."""
    out = {}
    for t in grid:
        out[tol_key(t)] = next((k + 1 for k, r in enumerate(rel_residual) if r <= t), None)
    return out


def _column(trace: list, i: int | None):
    return [row[i] if i is not None else (max(row) if isinstance(row, list) else row) for row in trace]


def diagnose(
    T,
    x0,
    f=None,
    *,
    a: float,
    iters: int = 100,
    batch_dim: int | None = None,
    spec=None,
    metric=None,
    methods=("picard", "anderson"),
    reduce: bool = False,
    lipschitz=None,
    lipschitz_note: str = "",
    power_iters: int = 50,
    metric_name: str = "metric",
    seed: int = 0,
) -> list[dict]:
    """Diagnostics of ``x = T(x) + f`` (T deterministic: evaluation mode), one dict per problem
    along ``batch_dim`` -- or one for all of them with ``reduce`` (the worst problem's residual,
    the largest spectral radius; ``metric`` then returns one number per iterate).

    ``metric(x_k)``: the task metric of the prediction the model would make from iterate x_k
    (a float, or one per problem); ``lipschitz``: an a-priori bound (float or per problem) or None.
    """
    from .spec import FixedPointSpec, run_method

    spec = spec or FixedPointSpec()
    P = 1 if (batch_dim is None or reduce) else x0.shape[batch_dim]
    out = [{"iters": iters, "metric_name": metric_name, "methods": {}} for _ in range(P)]
    last_x = {}
    with torch.no_grad():
        for method in methods:
            curve: list = []
            cb = (lambda k, x: curve.append(_as_list(metric(x)))) if metric is not None else None
            x, st = run_method(
                method,
                T,
                x0,
                f,
                spec=spec,
                a=a,
                max_iter=iters,
                tol=None,
                divergence=None,
                batch_dim=batch_dim,
                trace=True,
                callback=cb,
                rel_trace=True,
            )
            last_x[method] = x
            # seconds per step without the metric and the traces (what a tolerance solve costs)
            n_t = min(iters, 20)
            t0 = time.perf_counter()
            run_method(
                method,
                T,
                x0,
                f,
                spec=spec,
                a=a,
                max_iter=n_t,
                tol=None,
                divergence=None,
                batch_dim=batch_dim,
                trace=False,
            )
            sec = (time.perf_counter() - t0) / n_t
            m0 = _as_list(metric(x0)) if metric is not None else None
            for i in range(P):
                col = None if (reduce or batch_dim is None) else i
                rel = _column(st.rel_residual, col)
                res = _column(st.residual, col)
                stops = tol_stops(rel)
                mk = None
                if metric is not None:
                    mk = [m0[0 if len(m0) == 1 else i]] + [c[0 if len(c) == 1 else i] for c in curve]
                out[i]["methods"][method] = {
                    "status": st.status,
                    "steps": st.steps,
                    "rel_residual": [float(f"{r:.4g}") for r in rel],
                    "residual": [float(f"{r:.4g}") for r in res],
                    "stops": stops,
                    "fallbacks": st.fallbacks if method == "anderson" else 0,
                    "s_per_step": float(f"{sec:.4g}"),
                    **(
                        {
                            "metric": [float(f"{v:.6g}") for v in mk],  # metric[k] = after k steps (k = 0: x0)
                            "metric_at_stop": {t: (mk[k] if k is not None else None) for t, k in stops.items()},
                        }
                        if mk is not None
                        else {}
                    ),
                }

    # The Jacobian at the best available approximation of the fixed point: the final iterate of the
    # method that ended with the smaller (worst-problem) relative residual, among finite ones; else x0.
    def final_rel(method):
        x = last_x[method]
        if not bool(torch.isfinite(x).all()):
            return float("inf")
        last = [o["methods"][method]["rel_residual"][-1] for o in out if o["methods"][method]["rel_residual"]]
        worst = max(last) if last else float("inf")
        return worst if worst == worst else float("inf")  # NaN -> inf

    ref = min(last_x, key=final_rel)
    point = last_x[ref] if final_rel(ref) < float("inf") else x0
    g = torch.Generator().manual_seed(seed)
    rho = spectral_radius(T, point, batch_dim=batch_dim, iters=power_iters, generator=g)
    rho_d = spectral_radius(T, point, batch_dim=batch_dim, iters=power_iters, a=a, generator=g)
    lips = lipschitz if isinstance(lipschitz, list) else [lipschitz] * P
    for i in range(P):
        pick = (
            (lambda v: max(v) if isinstance(v, list) else v)
            if (reduce or batch_dim is None)
            else (lambda v: v[i] if isinstance(v, list) else v)
        )
        L = max(lips) if (reduce and lips and None not in lips) else (lips[i] if i < len(lips) else None)
        pic = out[i]["methods"].get("picard") or next(iter(out[i]["methods"].values()))
        # contraction ratios of the ABSOLUTE residual (a drifting, growing iterate has a falling relative
        # residual), over steps whose relative residual is above floating-point noise
        floor = 100 * torch.finfo(x0.dtype).eps
        qmax = tail_ratio_max(
            [r if q > floor else 0.0 for r, q in zip(pic["residual"], pic["rel_residual"])], floor=0.0
        )
        out[i] |= {
            "spectral_radius": float(f"{pick(rho):.6g}"),
            "spectral_radius_damped": float(f"{pick(rho_d):.6g}"),
            "lipschitz_bound": None if L is None else float(f"{L:.6g}"),
            "lipschitz_note": lipschitz_note,
            "ratio_tail_max": None if qmax is None else float(f"{qmax:.6g}"),
            "contraction": classify(L, qmax, pic["status"], pic["stops"].get(tol_key(1e-4)) is not None),
        }
    return out


def _as_list(v):
    if isinstance(v, torch.Tensor):
        v = v.detach().double().cpu()
        return [v.item()] if v.dim() == 0 else v.tolist()
    return list(v) if isinstance(v, (list, tuple)) else [float(v)]


@contextlib.contextmanager
def saved_tensor_bytes():
    """``with saved_tensor_bytes() as acc: loss = model(x)`` -> ``acc["bytes"]``: bytes of the
    distinct storages autograd saved for backward while the block ran (parameters included)."""
    acc = {"bytes": 0, "tensors": 0}
    seen: set = set()

    def pack(t):
        try:
            if t.layout != torch.strided:
                parts = (
                    [t.values()] if t.layout == torch.sparse_coo else [t.values(), t.crow_indices(), t.col_indices()]
                )
            else:
                parts = [t]
            for p in parts:
                s = p.untyped_storage()
                key = (s.data_ptr(), s.nbytes())
                if key not in seen:
                    seen.add(key)
                    acc["bytes"] += s.nbytes()
                    acc["tensors"] += 1
        except (RuntimeError, NotImplementedError):
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield acc
