"""Perturbed copies of a native C-alpha trace: the validation cases of the tests and the benchmark
(spec: ddpm-fid-alphafold §3.2 "offline testing plan", §4.3 "validation": noise
levels, hinge motions, missing residues) and the building blocks of the synthetic recycle
trajectories. Everything is a pure function of its numpy Generator."""

from __future__ import annotations

import numpy as np


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random proper rotation (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def rigid(xyz: np.ndarray, rng: np.random.Generator, shift: float = 20.0) -> np.ndarray:
    """Rotate and translate a whole structure (scores must not change)."""
    return xyz @ random_rotation(rng).T + rng.normal(scale=shift, size=3)


def axis_rotation(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    a = axis / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    th = np.deg2rad(angle_deg)
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def hinge(xyz: np.ndarray, angle_deg: float, rng: np.random.Generator, at: float = 0.5) -> np.ndarray:
    """Rotate the residues after position ``at`` (fraction of the chain) by ``angle_deg`` about a
    random axis through the hinge residue: two rigid halves, as in a domain motion."""
    out = xyz.copy()
    k = int(round(at * len(xyz)))
    if angle_deg == 0 or k >= len(xyz):
        return out
    R = axis_rotation(rng.normal(size=3), angle_deg)
    pivot = xyz[max(0, k - 1)]
    out[k:] = (xyz[k:] - pivot) @ R.T + pivot
    return out


def smooth_field(n: int, rng: np.random.Generator, modes: int = 6) -> np.ndarray:
    """A displacement field along the chain made of a few low-frequency modes, unit RMS (n, 3)."""
    s = np.linspace(0, 1, n)[:, None]
    f = np.zeros((n, 3))
    for k in range(1, modes + 1):
        f += rng.normal(size=(1, 3)) / k * np.sin(np.pi * k * s + rng.uniform(0, 2 * np.pi, size=(1, 3)))
    return f / max(1e-12, np.sqrt((f**2).sum(1).mean()))


def noisy(xyz: np.ndarray, sigma: float, rng: np.random.Generator, smooth: float = 0.5) -> np.ndarray:
    """Add a deviation of RMS size ~``sigma`` Å: a fraction ``smooth`` of its variance from a smooth
    field (coherent structural drift), the rest iid per residue."""
    n = len(xyz)
    iid = rng.normal(size=(n, 3)) / np.sqrt(3)
    field = smooth_field(n, rng)
    return xyz + sigma * (np.sqrt(smooth) * field + np.sqrt(1 - smooth) * iid)


def drop(n: int, fraction: float, rng: np.random.Generator, contiguous: bool = True) -> np.ndarray:
    """Indices to KEEP after removing ``fraction`` of ``n`` residues (one contiguous stretch, or at random)."""
    k = int(round(fraction * n))
    if k <= 0:
        return np.arange(n)
    if contiguous:
        a = int(rng.integers(0, n - k + 1))
        return np.r_[np.arange(a), np.arange(a + k, n)]
    return np.sort(rng.choice(n, size=n - k, replace=False))
