"""FID computed by torchmetrics' ``FrechetInceptionDistance``, with our identified network as its feature
extractor (``feature=`` an ``nn.Module``). torchmetrics accumulates the feature sums and computes the
distance; what is ours is which network runs (an :class:`~.extractors.Extractor`, chosen by the weights'
sha256), the batching and progress, and the bridge between the metric's real-side state and our cached
real statistics (mean, covariance with ddof=1), which keeps the cache format of the earlier code.

Two guards of the earlier scipy-``sqrtm`` code are gone with it, on purpose: the retry with eps*I added to
near-singular covariances, and the refusal of a root with a large imaginary part. torchmetrics takes
Tr sqrt(S_f S_r) as the sum of the real parts of the square roots of the eigenvalues of S_f S_r, which
neither fails on singular covariances (N < 2048) nor yields an imaginary part to check.

This module imports torch and torchmetrics at import time: the package imports it only inside functions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from ...errors import PicardError
from .extractors import Extractor, ProgressFn


class _Features(nn.Module):
    """An :class:`Extractor` as the ``feature=`` module: uint8 (B, 3, H, W) -> float64 (B, D) on the CPU,
    where the metric keeps its float64 sums (as the earlier code kept its float64 features)."""

    def __init__(self, ext: Extractor):
        super().__init__()
        self.ext = ext
        if ext.dim is not None:  # else torchmetrics runs one dummy 299x299 image through it to learn D
            self.num_features = int(ext.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ext.forward(x).cpu()


def new_metric(ext: Extractor) -> FrechetInceptionDistance:
    """A fresh metric over ``ext``. ``sync_on_compute=False``: each process computes on the images it was
    given (no all-reduce of the sums when torch.distributed is initialised, as before)."""
    return FrechetInceptionDistance(feature=_Features(ext), reset_real_features=False, sync_on_compute=False)


def update(metric: FrechetInceptionDistance, images, *, real: bool, progress: ProgressFn | None = None) -> None:
    """Feed uint8 images to the metric batch by batch (the real or the generated side)."""
    ext: Extractor = metric.inception.ext
    n, done = len(images), 0
    for x in ext.batches(images):
        metric.update(x, real=real)
        done += x.shape[0]
        if progress is not None:
            progress(done, n)


def real_stats(metric: FrechetInceptionDistance) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of the real side, as ``FrechetInceptionDistance.compute`` forms them from its sums
    (torchmetrics has no public accessor for them); they are what the cache stores."""
    n = int(metric.real_features_num_samples)
    if n < 2:
        raise PicardError(f"FID needs at least 2 images per set, got {n}")
    mu = metric.real_features_sum / n
    sigma = (metric.real_features_cov_sum - n * torch.outer(mu, mu)) / (n - 1)
    return mu.numpy().astype(np.float64), sigma.numpy().astype(np.float64)


def load_real_stats(metric: FrechetInceptionDistance, mu, sigma, n: int) -> None:
    """Set the real-side state to the sums that ``n`` features with mean ``mu`` and covariance ``sigma``
    (ddof=1) have: sum = n mu, sum of x x^T = (n - 1) sigma + n mu mu^T (the inverse of :func:`real_stats`)."""
    mu_t = torch.as_tensor(np.asarray(mu, np.float64))
    sigma_t = torch.as_tensor(np.asarray(sigma, np.float64))
    metric.real_features_sum = n * mu_t
    metric.real_features_cov_sum = (n - 1) * sigma_t + n * torch.outer(mu_t, mu_t)
    metric.real_features_num_samples = torch.tensor(n, dtype=torch.long)
