"""Pixel dropout masks for the masked-image experiment (Table 3: "images are altered by
blacking out 75% of pixels").

A mask drops exactly floor(ratio * S * S) pixel positions of an S x S image (all channels of a
dropped position). It is a pure function of (seed, stream, image index): each pixel gets a
64-bit key from a counter-based hash (splitmix64's finaliser) and the pixels with the smallest
keys are dropped. So a test image has the same mask in every run and every N_iter column
(stream = -1), whatever the batch it falls in, and training masks are fresh each epoch
(stream = epoch) yet reproducible from the run seed.
"""

from __future__ import annotations

import math

import numpy as np

_M1, _M2, _GOLD = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's output function: a bijective avalanche hash of uint64 values."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def n_dropped(ratio: float, size: int) -> int:
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask ratio must lie in [0, 1], got {ratio}")
    return math.floor(ratio * size * size)


def pixel_masks(indices, size: int, ratio: float, seed: int, stream: int = -1) -> np.ndarray:
    """(len(indices), size, size) bool, True = pixel blacked out; exactly ``n_dropped`` per image."""
    idx = np.asarray(indices, dtype=np.uint64).reshape(-1)
    k = n_dropped(ratio, size)
    out = np.zeros((len(idx), size * size), dtype=bool)
    if k == 0 or len(idx) == 0:
        return out.reshape(-1, size, size)
    with np.errstate(over="ignore"):
        base = mix64(mix64(np.uint64(seed % 2**64) ^ _GOLD) ^ np.uint64(stream % 2**64))
        per_image = mix64(base + idx * _GOLD)  # (N,)
        keys = mix64(per_image[:, None] + np.arange(size * size, dtype=np.uint64)[None] * _M2)
    if k < size * size:
        drop = np.argpartition(keys, k - 1, axis=1)[:, :k]
        np.put_along_axis(out, drop, True, axis=1)
    else:
        out[:] = True
    return out.reshape(-1, size, size)


def _u64(v: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits (torch has no full uint64 arithmetic)."""
    return v - (1 << 64) if v >= 1 << 63 else v


def _mix64_t(x):
    """:func:`mix64` on int64 tensors: products wrap mod 2^64 exactly as uint64; shifts made logical."""
    for shift, mult in ((30, _u64(int(_M1))), (27, _u64(int(_M2)))):
        x = (x ^ ((x >> shift) & ((1 << (64 - shift)) - 1))) * mult
    return x ^ ((x >> 31) & ((1 << 33) - 1))


def pixel_masks_torch(indices, size: int, ratio: float, seed: int, stream: int = -1, device="cpu"):
    """:func:`pixel_masks` computed with torch on ``device`` (a GPU draws its masks without a host
    round trip): the same hash, the same keys, the same masks bit for bit; a (N, size, size) bool tensor."""
    import torch

    idx = torch.as_tensor(
        np.asarray(indices, dtype=np.int64).reshape(-1) if not torch.is_tensor(indices) else indices.reshape(-1),
        dtype=torch.int64,
        device=device,
    )
    k = n_dropped(ratio, size)
    out = torch.zeros((len(idx), size * size), dtype=torch.bool, device=device)
    if k == 0 or len(idx) == 0:
        return out.reshape(-1, size, size)
    gold, m2 = _u64(int(_GOLD)), _u64(int(_M2))
    seed_t = torch.tensor(_u64(seed % 2**64), dtype=torch.int64, device=device)
    base = _mix64_t(_mix64_t(seed_t ^ gold) ^ _u64(stream % 2**64))
    per_image = _mix64_t(base + idx * gold)
    keys = _mix64_t(per_image[:, None] + torch.arange(size * size, device=device, dtype=torch.int64)[None] * m2)
    if k < size * size:
        unsigned = keys ^ _u64(1 << 63)  # flipping the sign bit makes signed order the unsigned order
        out.scatter_(1, torch.topk(unsigned, k, dim=1, largest=False).indices, True)
    else:
        out[:] = True
    return out.reshape(-1, size, size)
