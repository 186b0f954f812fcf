"""IterGNN (spec pign.md §4.3): stopping rule, confidence mixing, iteration counts."""

import math

import pytest
import torch

from picard_cli.models.itergnn import iterate


def const_conf(value):
    """A confidence that ignores its input: one value per problem (dim 1) or a scalar."""
    v = torch.as_tensor(value, dtype=torch.float64)
    return lambda x: v.reshape(1, -1, 1).expand(1, v.numel(), 1) if v.dim() else v.reshape(1, 1)


def test_stops_when_the_confidence_mass_is_used_up():
    # c = 0.5 each step: c_left = 0.5^t, checked before each conv; 0.5^10 <= 1e-3 < 0.5^9.
    h0 = torch.ones(5, 3, dtype=torch.float64)
    _, st = iterate(lambda x: x, const_conf(0.5), h0, t_max=50, stop_mass=1e-3)
    assert st.iters == [10]
    assert st.weight_sum[0] == pytest.approx(1 - 0.5**10)


def test_t_max_caps_the_iterations():
    h0 = torch.ones(4, 2, dtype=torch.float64)
    _, st = iterate(lambda x: x, const_conf(0.01), h0, t_max=7)
    assert st.iters == [7]
    assert st.weight_sum[0] == pytest.approx(1 - 0.99**7)


def test_output_is_the_confidence_weighted_mix_of_conv_powers():
    """out = sum_t c_t prod_{s<t}(1 - c_s) Conv^{t+1}(h0), weights sum to 1 - c_left <= 1."""
    torch.manual_seed(0)
    W = torch.randn(3, 3, dtype=torch.float64) * 0.5
    h0 = torch.randn(6, 3, dtype=torch.float64)
    w_conf = torch.randn(3, dtype=torch.float64)

    def conf(x):  # fork: from the readout (max over nodes) of the layer input
        return torch.sigmoid(x.amax(0) @ w_conf).reshape(1, 1)

    x, st = iterate(lambda z: z @ W, conf, h0, t_max=6, stop_mass=0.0)
    expect, left, inp, weights = torch.zeros_like(h0), 1.0, h0, []
    for _ in range(6):
        c = float(conf(inp))
        out = inp @ W
        expect += left * c * out
        weights.append(left * c)
        left *= 1 - c
        inp = out
    assert torch.allclose(x, expect)
    assert st.iters == [6]
    assert sum(weights) <= 1.0 and st.weight_sum[0] == pytest.approx(sum(weights))


def test_original_variant_takes_the_confidence_from_the_new_output():
    seen = []

    def conf(x):
        seen.append(x.clone())
        return torch.full((1, 1), 0.5, dtype=x.dtype)

    h0 = torch.ones(2, 2, dtype=torch.float64)
    iterate(lambda z: 2 * z, conf, h0, t_max=2, variant="original")
    assert torch.equal(seen[0], 2 * h0) and torch.equal(seen[1], 4 * h0)
    seen.clear()
    iterate(lambda z: 2 * z, conf, h0, t_max=2, variant="fork")
    assert torch.equal(seen[0], h0) and torch.equal(seen[1], 2 * h0)
    with pytest.raises(ValueError):
        iterate(lambda z: z, conf, h0, t_max=2, variant="nope")


def test_stacked_problems_stop_on_their_own_and_match_solo_runs():
    """Seeds stacked on dim 1: a confident seed stops early, its result is what it would be alone."""
    torch.manual_seed(1)
    h0 = torch.randn(5, 2, 3, dtype=torch.float64)

    def conv(z):
        return 0.9 * z + 0.1

    x, st = iterate(conv, const_conf([0.9, 0.3]), h0, t_max=40, stop_mass=2e-4, problem_dim=1)
    assert st.iters == [math.ceil(math.log(2e-4) / math.log(0.1)), math.ceil(math.log(2e-4) / math.log(0.7))]
    assert st.iters == [4, 24]
    for s, c in enumerate((0.9, 0.3)):
        solo, solo_st = iterate(conv, const_conf(c), h0[:, s], t_max=40, stop_mass=2e-4)
        assert solo_st.iters == [st.iters[s]]
        assert torch.allclose(x[:, s], solo)
        assert st.weight_sum[s] <= 1.0


def test_gradients_reach_the_conv_and_the_confidence():
    W = torch.eye(3, requires_grad=True)
    w = torch.zeros(3, requires_grad=True)
    x, _ = iterate(lambda z: z @ W, lambda z: torch.sigmoid(z.amax(0) @ w).reshape(1, 1), torch.ones(4, 3), t_max=5)
    x.sum().backward()
    assert W.grad.abs().sum() > 0 and w.grad.abs().sum() > 0


def test_planetoid_itergnn_records_iterations(synth_root, tmp_path):
    import json

    from conftest import picard

    res = tmp_path / "res"
    out = picard(
        "run",
        "pign",
        "--model",
        "itergnn",
        "--backbone",
        "gat",
        "--seeds",
        2,
        "epochs=3",
        "hidden=8",
        "--data-root",
        synth_root,
        "--results",
        res,
    )
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in (res / "pign.jsonl").read_text().splitlines()]
    assert len(recs) == 2 and {r["cell"] for r in recs} == {"IterGNN-GAT/Cora"}
    for r in recs:
        assert r["config"]["depth"] == 30 and r["config"]["itergnn_variant"] == "fork"
        assert 1 <= r["solver"]["iters"] <= 30 and 0 < r["solver"]["weight_sum"] <= 1
        assert 1 <= r["solver"]["train_iters_mean"] <= 30
        assert 0.0 <= r["metrics"]["test_acc_last"] <= 1.0
    assert "IterGNN-GAT" in out.stdout and "paper 60.5" in out.stdout
