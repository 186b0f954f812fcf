"""Spectral-norm caps on an operator's weights (contraction control by construction).

``cap_spectral_norm(module, c)`` reparametrises every weight matrix of ``module`` (every
parameter named ``weight`` with at least 2 dimensions; stacked (S, in, out) weights are capped
per seed) as W * min(1, c / sigma_max(W)), with sigma_max the exact largest singular value,
differentiable. A GCN operator ReLU(A h W + b) with ||A||_2 <= 1 is then c-Lipschitz.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize


class SpectralCap(nn.Module):
    def __init__(self, c: float):
        super().__init__()
        self.c = float(c)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        sigma = torch.linalg.matrix_norm(w, ord=2)
        scale = (self.c / sigma.clamp_min(1e-12)).clamp(max=1.0)
        return w * scale[..., None, None]


def cap_spectral_norm(module: nn.Module, c: float) -> list[str]:
    """Cap the spectral norm of every weight matrix in ``module`` at ``c``; returns their names."""
    names = []
    for name, sub in list(module.named_modules()):
        w = getattr(sub, "weight", None)
        if isinstance(w, nn.Parameter) and w.dim() >= 2 and not parametrize.is_parametrized(sub, "weight"):
            parametrize.register_parametrization(sub, "weight", SpectralCap(c))
            names.append(f"{name}.weight" if name else "weight")
    return names
