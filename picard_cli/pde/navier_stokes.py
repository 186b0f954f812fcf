"""2-D incompressible Navier-Stokes in vorticity form on the unit torus, batched
pseudo-spectral solver (the FNO data generator, spec navier-stokes.md §4):

    d_t w + u . grad w = nu lap w + f,   div u = 0,   w = curl u,   w(., 0) = w0

f = 0.1 (sin 2pi(x1+x2) + cos 2pi(x1+x2)); w0 ~ periodic Gaussian random field
(alpha 2.5, tau 7) with the ORIGINAL variance convention (Re, Im of the complex
coefficients each N(0, 1); the 2022 port halved it, spec §4.2). Each step (§4.3):
stream function psi_h = w_h / L, velocity u = (d2 psi, -d1 psi), advection
F = u . grad w in physical space with the 2/3-rule dealiasing, then Crank-Nicolson
for diffusion and explicit Euler for advection and forcing, mode by mode:

    w_h <- [(1 - dt nu L / 2) w_h - dt F_h + dt f_h] / (1 + dt nu L / 2)

Speed: real FFTs, every wavenumber operator precomputed (dealiasing and the CN
factors folded in), the update as two fused multiply-adds, everything batched
over samples; no per-mode Python work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

TWO_PI = 2 * math.pi


def forcing(s: int, dtype=torch.float64) -> torch.Tensor:
    """f(x1, x2) = 0.1 (sin 2pi(x1+x2) + cos 2pi(x1+x2)) on the grid x_i = i/s (axis 0 = x1)."""
    x = torch.arange(s, dtype=dtype) / s
    X1, X2 = torch.meshgrid(x, x, indexing="ij")
    return 0.1 * (torch.sin(TWO_PI * (X1 + X2)) + torch.cos(TWO_PI * (X1 + X2)))


def grf(
    s: int, n: int, rng: np.random.Generator, alpha: float = 2.5, tau: float = 7.0, variance: str = "original"
) -> np.ndarray:
    """n periodic Gaussian random fields on an s x s grid (spec §4.2), float64 (n, s, s).

    A_k = s^2 sqrt(2) sigma lambda_k^(-alpha/2), lambda_k = 4 pi^2 |k|^2 + tau^2,
    sigma = tau^((2 alpha - 2)/2), A_0 = 0; w0 = Re(IFFT2(A xi)) with Re xi, Im xi ~ N(0, 1)
    ("original", the published data) or N(0, 1/2) ("ported", torch.randn(cfloat))."""
    k = np.fft.fftfreq(s, 1.0 / s)  # 0..s/2-1, -s/2..-1
    K1, K2 = np.meshgrid(k, k, indexing="ij")
    sigma = tau ** (0.5 * (2 * alpha - 2.0))
    amp = s**2 * math.sqrt(2.0) * sigma * (4 * math.pi**2 * (K1**2 + K2**2) + tau**2) ** (-alpha / 2.0)
    amp[0, 0] = 0.0
    scale = 1.0 if variance == "original" else math.sqrt(0.5)
    xi = (rng.standard_normal((n, s, s)) + 1j * rng.standard_normal((n, s, s))) * scale
    return np.fft.ifft2(amp * xi).real


@dataclass
class Operators:
    """Wavenumber operators on the rfft2 half spectrum, precomputed once per (s, dt, nu)."""

    ik1: torch.Tensor  # 2 pi i k1, (s, 1)
    nik1: torch.Tensor  # -2 pi i k1
    ik2: torch.Tensor  # 2 pi i k2, (1, s/2+1); the Nyquist column carries k2 = -s/2
    inv_L: torch.Tensor  # 1 / (4 pi^2 |k|^2), with L_0 := 1
    A: torch.Tensor  # (1 - dt nu L/2) / (1 + dt nu L/2)
    Bf: torch.Tensor  # dt f_h / (1 + dt nu L/2)
    Bm: torch.Tensor  # dt M / (1 + dt nu L/2), M the 2/3-rule dealiasing mask

    @classmethod
    def build(cls, s: int, dt: float, nu: float, f: torch.Tensor | None, device, dtype) -> "Operators":
        k1 = torch.fft.fftfreq(s, 1.0 / s, dtype=torch.float64)
        k2 = torch.fft.rfftfreq(s, 1.0 / s, dtype=torch.float64)
        k2[-1] = -s / 2  # Nyquist column (spec §4.3)
        K1, K2 = k1[:, None], k2[None, :]
        L = 4 * math.pi**2 * (K1**2 + K2**2)
        L[0, 0] = 1.0
        kmax = (2.0 / 3.0) * (s / 2.0)
        mask = ((K1.abs() <= kmax) & (K2.abs() <= kmax)).to(torch.float64)
        den = 1 + 0.5 * dt * nu * L
        f_h = torch.fft.rfft2(f.to(torch.float64)) if f is not None else torch.zeros_like(L, dtype=torch.complex128)
        cdt = torch.complex64 if dtype == torch.float32 else torch.complex128
        to = dict(device=device)
        return cls(
            ik1=(1j * TWO_PI * K1).to(cdt).to(**to),
            nik1=(-1j * TWO_PI * K1).to(cdt).to(**to),
            ik2=(1j * TWO_PI * K2).to(cdt).to(**to),
            inv_L=(1 / L).to(dtype).to(**to),
            A=((1 - 0.5 * dt * nu * L) / den).to(dtype).to(**to),
            Bf=(dt * f_h / den).to(cdt).to(**to),
            Bm=(dt * mask / den).to(dtype).to(**to),
        )


STACK_MAX_BATCH = 8  # up to this batch one stacked inverse transform is faster (CPU, measured)


def step(w_h: torch.Tensor, op: Operators, s: int) -> torch.Tensor:
    """One time step of the batch ``w_h`` (B, s, s/2+1) complex."""
    if w_h.shape[0] <= STACK_MAX_BATCH:
        return step_stacked(w_h, op, s)
    psi_h = w_h * op.inv_L  # stream function: -lap psi = w
    # u1 = d psi/d x2, u2 = -d psi/d x1, and grad w, in physical space. Four separate
    # inverse transforms: for batches above 8 one stacked (4, B, ...) transform measured
    # slower on CPU (benchmarks/ns_generator.py prints both).
    u1 = torch.fft.irfft2(op.ik2 * psi_h, s=(s, s))
    u2 = torch.fft.irfft2(op.nik1 * psi_h, s=(s, s))
    w1 = torch.fft.irfft2(op.ik1 * w_h, s=(s, s))
    w2 = torch.fft.irfft2(op.ik2 * w_h, s=(s, s))
    F_h = torch.fft.rfft2(torch.addcmul(u1 * w1, u2, w2))  # advection u . grad w
    # CN diffusion, Euler advection and forcing, dealiased: A w_h + Bf - Bm F_h
    return torch.addcmul(torch.addcmul(op.Bf, op.A, w_h), op.Bm, F_h, value=-1)


def step_stacked(w_h: torch.Tensor, op: Operators, s: int) -> torch.Tensor:
    """The same step with the four inverse transforms as one batched call (fewer calls:
    faster for small batches, where per-call overhead dominates)."""
    psi_h = w_h * op.inv_L
    spec = torch.stack([op.ik2 * psi_h, op.nik1 * psi_h, op.ik1 * w_h, op.ik2 * w_h])
    u1, u2, w1, w2 = torch.fft.irfft2(spec, s=(s, s)).unbind(0)
    F_h = torch.fft.rfft2(torch.addcmul(u1 * w1, u2, w2))
    return torch.addcmul(torch.addcmul(op.Bf, op.A, w_h), op.Bm, F_h, value=-1)


def simulate(
    w0: torch.Tensor, record_times, dt: float, nu: float = 1e-3, forced: bool = True, on_step=None
) -> torch.Tensor:
    """Integrate the batch ``w0`` (B, s, s) and return w at ``record_times`` (B, R, s, s).

    Every record time must be a multiple of ``dt`` (t = 0 returns w0). ``on_step(n)`` is
    called every 100 steps with the steps done so far (progress)."""
    B, s, _ = w0.shape
    counts = []
    for t in record_times:
        n = round(t / dt)
        if t < 0 or abs(n * dt - t) > 1e-9 * max(1.0, t):
            raise ValueError(f"record time {t:g} is not a non-negative multiple of dt={dt:g}")
        counts.append(n)
    op = Operators.build(s, dt, nu, forcing(s) if forced else None, w0.device, w0.dtype)
    w_h = torch.fft.rfft2(w0)
    out = torch.empty(B, len(counts), s, s, dtype=w0.dtype, device=w0.device)
    done = 0
    for n_target in sorted(set(counts)):
        while done < n_target:
            w_h = step(w_h, op, s)
            done += 1
            if on_step is not None and done % 100 == 0:
                on_step(done)
        w = torch.fft.irfft2(w_h, s=(s, s))
        for j, n in enumerate(counts):
            if n == n_target:
                out[:, j] = w
    return out


def sample_ics(indices, seed: int, resolution: int, ic_resolution: int, variance: str = "original") -> np.ndarray:
    """Initial vorticity of the given sample indices (n, resolution, resolution): each drawn
    at ``ic_resolution`` from its own generator (seed, index) -- so a sample never depends on
    the batch it was generated in or on an interruption -- and point-subsampled."""
    if ic_resolution % resolution:
        raise ValueError(f"ic_resolution {ic_resolution} must be a multiple of resolution {resolution}")
    stride = ic_resolution // resolution
    return np.stack(
        [
            grf(ic_resolution, 1, np.random.default_rng([seed, int(i)]), variance=variance)[0][::stride, ::stride]
            for i in indices
        ]
    )
