"""The Fréchet distance between two Gaussians fitted to feature sets, as the TF FID code computes it:
``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2))``, in float64 (scipy imported on first use)."""

from __future__ import annotations

import warnings

import numpy as np

from ...errors import PicardError


def stats(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof=1, as the TF FID code) of (N, D) features."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {feats.shape}")
    if feats.shape[0] < 2:
        raise PicardError(f"FID needs at least 2 images per set, got {feats.shape[0]}")
    return feats.mean(axis=0), np.atleast_2d(np.cov(feats, rowvar=False))


def _sqrtm(a: np.ndarray) -> np.ndarray:
    from scipy import linalg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular-matrix chatter; the result is checked below
        out = linalg.sqrtm(a)
    return out[0] if isinstance(out, tuple) else out


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)) in float64.

    As in the TF FID code: when sqrtm of the product is not finite (near-singular covariances),
    retry with eps*I added to both covariances; drop the imaginary part of the root when it is
    tiny (|imag| <= 1e-3 on the diagonal) and raise when it is larger.
    """
    mu1, mu2 = (np.atleast_1d(np.asarray(m, dtype=np.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(s, dtype=np.float64)) for s in (sigma1, sigma2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"inconsistent shapes: mu {mu1.shape} {mu2.shape}, sigma {sigma1.shape} {sigma2.shape}")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if not np.isfinite(covmean).all():
            raise PicardError("FID: the covariance product has no finite square root, even with eps*I added")
    if np.iscomplexobj(covmean):
        imag = float(np.max(np.abs(np.diagonal(covmean).imag))) if d else 0.0
        if imag > 1e-3:
            raise PicardError(
                f"FID: sqrt of the covariance product has a large imaginary part ({imag:.3g}); "
                f"too few images for the feature dimension?"
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
