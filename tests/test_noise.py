import math

import pytest
import torch

from picard_cli.data.planetoid import NOISE_SEED, drop_in_noise


def test_exact_count_plus_one_and_no_renormalisation():
    x = torch.rand(37, 53) / 10
    for p in (0.1, 0.5, 0.7, 1.0):
        noisy = drop_in_noise(x, p)
        diff = noisy - x
        m = math.floor(37 * 53 * p)
        assert int(torch.isclose(diff, torch.ones_like(diff)).sum()) == m
        assert int((diff.abs() > 1e-6).sum()) == m  # everything else untouched
        assert torch.allclose(noisy.sum(), x.sum() + m)  # +1 each, rows not renormalised


def test_deterministic_and_seeded():
    x = torch.zeros(20, 30)
    a, b = drop_in_noise(x, 0.5), drop_in_noise(x, 0.5)
    assert torch.equal(a, b)
    assert not torch.equal(a, drop_in_noise(x, 0.5, seed=NOISE_SEED - 1))


def test_global_not_per_row_and_zero_is_noop():
    x = torch.zeros(200, 10)
    per_row = drop_in_noise(x, 0.5).sum(1)
    assert per_row.min() < 5 < per_row.max()  # counts vary by row: drawn over the whole matrix
    assert torch.equal(drop_in_noise(x, 0.0), x)
    with pytest.raises(ValueError):
        drop_in_noise(x, 1.5)
