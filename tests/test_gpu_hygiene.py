"""Settings that only matter on GPU machines, checked where they can be on a CPU: the structure
scorer's subset hashes must not depend on float32 matmul precision (TF32, which NGC containers
turn on, even through an environment override that no flag undoes), and the timm lower bound the
ViTs need.

TF32 exists only on NVIDIA GPUs; here every float32 matmul is emulated as TF32 computes it
(inputs rounded to 10 mantissa bits) and the hash products must be float64, untouched by it."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from picard_cli.structure import scoring

REPO = Path(__file__).resolve().parent.parent


def _pair(seed=0, n=150, models=6):
    rng = np.random.default_rng(seed)
    native = np.cumsum(rng.normal(size=(n, 3)) * 2.2, axis=0)
    return native, native[None] + rng.normal(size=(models, n, 3)) * np.linspace(0.5, 5, models)[:, None, None]


def _tf32(t):
    """A float32 tensor rounded to TF32's 10 mantissa bits (what a TF32 matmul does to its inputs)."""
    if t.dtype != torch.float32:
        return t
    return ((t.contiguous().view(torch.int32) + 0x1000) & ~0x1FFF).view(torch.float32)


def test_subset_hash_products_are_float64_so_tf32_cannot_touch_them(monkeypatch):
    native, models = _pair()
    reference = scoring.score_coords(native, models)
    matmul, hashes = torch.Tensor.__matmul__, []

    def tf32_matmul(a, b):  # every float32 product as TF32 computes it; log the (subsets, N) @ (N, 3) hashes
        if b.dim() == 2 and b.shape == (native.shape[0], 3) and a.dim() == 2:
            hashes.append((a.dtype, b.dtype))
        return matmul(_tf32(a), _tf32(b))

    monkeypatch.setattr(torch.Tensor, "__matmul__", tf32_matmul)
    emulated = scoring.score_coords(native, models)
    monkeypatch.setattr(torch.Tensor, "__matmul__", matmul)
    assert hashes and all(d == (torch.float64, torch.float64) for d in hashes), hashes
    for k in ("gdt_ts", "gdt_ha", "superpositions"):
        assert np.array_equal(emulated[k], reference[k]), k
    assert np.allclose(emulated["tm"], reference["tm"], atol=1e-3)


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v)[:3])


def test_timm_bound_has_the_attention_attributes_the_vits_read():
    text = (REPO / "pyproject.toml").read_text()
    (bound,) = re.findall(r'"timm>=([0-9.]+)"', text)
    assert _version(bound) >= (1, 0, 23)  # first release whose Attention has attn_dim (LSA uses it)
    assert _version(metadata.version("timm")) >= _version(bound)
    from timm.layers import Attention

    a = Attention(32, num_heads=4)
    for name in (
        "qkv",
        "q_norm",
        "k_norm",
        "attn_drop",
        "norm",
        "proj",
        "proj_drop",
        "head_dim",
        "num_heads",
        "attn_dim",
    ):
        assert hasattr(a, name), name


def test_device_masks_equal_the_numpy_masks_bit_for_bit():
    from picard_cli.data.masks import pixel_masks, pixel_masks_torch

    for seed, stream, ratio in ((0, -1, 0.75), (7, 3, 0.75), (2**40 + 5, -2, 0.5), (123, 99, 0.1), (1, 0, 1.0)):
        idx = np.arange(0, 2000, 7)
        a = pixel_masks(idx, 32, ratio, seed, stream)
        b = pixel_masks_torch(torch.as_tensor(idx), 32, ratio, seed, stream)
        assert b.dtype == torch.bool and np.array_equal(a, b.numpy()), (seed, stream, ratio)
    assert pixel_masks_torch(np.arange(0), 32, 0.75, 0).shape == (0, 32, 32)
