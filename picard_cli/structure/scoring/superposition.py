"""Least-squares superposition of models onto the native.

* :func:`rmsd_batch`: one weighted Kabsch superposition per model over its common residues, float64.
* The search's superpositions go through per-residue features (:func:`_features`): a subset's sums
  are ``weights @ F``, its rotation and translation come from those sums (:func:`_solve`), and every
  squared distance under it is ``F @ c`` with the coefficients of :func:`_coef`.
"""

from __future__ import annotations

from .definitions import BIG
from .rotations import quaternion_rotation, svd_rotation


# ------------------------------------------------------------------------------ Kabsch / RMSD
def _superpose(Xg, Y, W):
    """Least-squares rotation R and translation t taking model rows ``Xg`` (C, N, 3) onto native
    ``Y`` (N, 3) over the weighted rows ``W`` (C, N): x -> R x + t. Returns R (C,3,3), t (C,3),
    the singular values and the reflection sign (for RMSD)."""
    n = W.sum(1).clamp_min(1e-12)
    WX = W.unsqueeze(-1) * Xg
    sx = WX.sum(1)
    sy = W @ Y
    mx, my = sx / n[:, None], sy / n[:, None]
    H = WX.transpose(1, 2) @ Y - n[:, None, None] * mx.unsqueeze(2) * my.unsqueeze(1)  # sum w (x-mx)(y-my)^T
    R, S, d = svd_rotation(H)
    t = my - (R @ mx.unsqueeze(-1)).squeeze(-1)
    return R, t, S, d


def _dist2(Xg, Y, R, t):
    """Squared distances |R x + t - y|^2 (C, N) of the rows of ``Xg`` under each superposition."""
    diff = Xg @ R.transpose(1, 2) + t.unsqueeze(1) - Y
    return (diff * diff).sum(-1)


def rmsd_batch(X, Y, mask, device="cpu"):
    """C-alpha RMSD after one optimal superposition over the common residues, float64 (B,)."""
    import torch

    Xt = torch.as_tensor(X, dtype=torch.float64, device=device)
    Yt = torch.as_tensor(Y, dtype=torch.float64, device=device)
    W = torch.as_tensor(mask, dtype=torch.float64, device=device)
    R, t, _, _ = _superpose(Xt, Yt, W)
    d2 = _dist2(Xt, Yt, R, t)
    n = W.sum(1)
    out = torch.sqrt((d2 * W).sum(1) / n.clamp_min(1))
    out[n < 1] = float("nan")
    return out.cpu().numpy()


# ------------------------------------------------------------------------------ from feature sums
def _features(X, M, Y, dtype):
    """Per-model residue features (B, N, 18): [x_i y_j (9), x (3), y (3), 1, |x|^2 + |y|^2, BIG if
    missing], rows of missing residues otherwise zero. One batched matmul with them gives a subset's sums
    (weights @ F) or, with the right
    coefficients, every squared distance under a superposition (F @ coef); see ``_dist2``."""
    import torch

    B, N, _ = X.shape
    m = M.unsqueeze(-1).to(dtype)
    F = torch.zeros(B, N, 18, dtype=dtype, device=X.device)
    F[..., :9] = (X.unsqueeze(-1) * Y.unsqueeze(0).unsqueeze(2)).reshape(B, N, 9)
    F[..., 9:12] = X
    F[..., 12:15] = Y
    F[..., 15] = 1.0
    F[..., 16] = (X * X).sum(-1) + (Y * Y).sum(-1)
    F = F * m  # a missing residue adds nothing to any sum ...
    F[..., 17] = (~M).to(dtype) * BIG  # ... and lies beyond every cutoff
    return F


def _solve(S):
    """Sums S (..., 18) of a subset (weights @ features) -> R (..., 3, 3), t (..., 3) in float64."""
    import torch

    shape = S.shape[:-1]
    S = S.reshape(-1, S.shape[-1]).to(torch.float64)
    n = S[:, 15].clamp_min(1e-12)
    sx, sy = S[:, 9:12], S[:, 12:15]
    H = S[:, :9].reshape(-1, 3, 3) - sx.unsqueeze(2) * sy.unsqueeze(1) / n[:, None, None]
    g = S[:, 16] - ((sx * sx).sum(1) + (sy * sy).sum(1)) / n  # G_x + G_y about the subset's centroids
    R = quaternion_rotation(H, upper=0.5 * g.clamp_min(0))
    t = (sy - (R * sx.unsqueeze(1)).sum(-1)) / n[:, None]  # elementwise: tiny bmm is slow on CPU
    return R.reshape(*shape, 3, 3), t.reshape(*shape, 3)


def _coef(R, t, dtype):
    """Coefficients c (..., 18) with F @ c = |R x + t - y|^2 (x, y per residue; F from ``_features``):
    |x|^2 + |y|^2 + |t|^2 + 2 (R^T t).x - 2 t.y - 2 sum_ab R_ba x_a y_b."""
    import torch

    c = torch.zeros(*R.shape[:-2], 18, dtype=torch.float64, device=R.device)
    c[..., :9] = -2.0 * R.transpose(-1, -2).reshape(*R.shape[:-2], 9)
    c[..., 9:12] = 2.0 * (R * t.unsqueeze(-1)).sum(-2)  # R^T t
    c[..., 12:15] = -2.0 * t
    c[..., 15] = (t * t).sum(-1)
    c[..., 16] = 1.0
    c[..., 17] = 1.0
    return c.to(dtype)
