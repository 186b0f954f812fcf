"""SYNTHETIC recycle trajectories: perturbed copies of the real CASP15 natives whose deviation shrinks
over "recycles", some of which wander off again (spec: ddpm-fid-alphafold §3.2,
"offline testing plan"). They exercise the scoring / normalisation / plotting pipeline offline; they
are NOT AlphaFold predictions and every output made from them says so.

One trajectory (target, model, seed) is a pure function of (run seed, target index, model, seed):
* a deviation field fixed along the trajectory (smooth chain-wise modes plus per-residue noise,
  unit RMS) scaled by an amplitude a_r = a_end + (a_start - a_end) exp(-r / tau), plus fresh noise
  each recycle that dies out with the same rate, so consecutive recycles are coherent and settle on a
  fixed point, like a refinement that converges;
* with probability ``hinge``, a hinge rotation of part of the chain that closes over the recycles;
* on a "wandering" target (probability ``wander`` per target), trajectories turn around after a
  random recycle and drift away again, so the last recycle is worse than an earlier one;
* a random rigid motion per structure (scores must not depend on the frame).
"""

from __future__ import annotations

import numpy as np

from . import perturb as P

LABEL = "SYNTHETIC trajectories (perturbed CASP15 natives, not AlphaFold predictions)"


def wandering_targets(n_targets: int, fraction: float, seed: int) -> np.ndarray:
    """Which targets wander (bool per target), a pure function of the run seed."""
    rng = np.random.default_rng([seed, 7919])
    return rng.random(n_targets) < fraction


def trajectory(
    native: np.ndarray, n_recycles: int, seed: int, target: int, model: int, rep: int, wander: bool, hinge: float = 0.3
) -> np.ndarray:
    """Coordinates (n_recycles + 1, L, 3) of one synthetic trajectory of ``native`` (L, 3)."""
    rng = np.random.default_rng([seed, target, model, rep])
    L = len(native)
    hard = rng.uniform(0.5, 1.0)  # per-trajectory difficulty
    a0, a1 = hard * rng.uniform(4.0, 9.0), hard * rng.uniform(0.4, 2.5)
    tau = rng.uniform(1.0, 5.0)
    field = np.sqrt(0.6) * P.smooth_field(L, rng) + np.sqrt(0.4) * rng.normal(size=(L, 3)) / np.sqrt(3)
    use_hinge = rng.random() < hinge
    theta0, at = rng.uniform(15.0, 60.0), rng.uniform(0.3, 0.7)
    axis = rng.normal(size=3)
    turn, drift = int(rng.integers(min(6, n_recycles // 3), max(7, n_recycles - 2))), rng.uniform(0.3, 1.5)
    out = np.empty((n_recycles + 1, L, 3))
    for r in range(n_recycles + 1):
        amp = a1 + (a0 - a1) * np.exp(-r / tau)
        if wander and r > turn:
            amp += drift * (r - turn) / max(1, n_recycles - turn)
        jitter = 0.15 * (a0 - a1) * np.exp(-r / tau) + (0.1 * amp if wander and r > turn else 0.0)
        x = native + amp * field + jitter * rng.normal(size=(L, 3)) / np.sqrt(3)
        if use_hinge:
            k = int(round(at * L))
            R = P.axis_rotation(axis, theta0 * np.exp(-r / tau))
            x[k:] = (x[k:] - x[max(0, k - 1)]) @ R.T + x[max(0, k - 1)]
        out[r] = P.rigid(x, rng)
    return out
