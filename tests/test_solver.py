import math

import pytest
import torch

from picard_cli.solver import picard, schedule


def test_linear_contraction_reaches_known_fixed_point_within_tolerance():
    # T(x) = M x with ||M|| = 0.5, f = b: fixed point x* = (I - M)^-1 b
    torch.manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))
    M = 0.5 * Q
    b = torch.randn(5, dtype=torch.float64)
    x_star = torch.linalg.solve(torch.eye(5) - M, b)
    x, stats = picard(
        lambda x: M @ x, torch.zeros(5, dtype=torch.float64), b, a=0.3, max_iter=500, tol=1e-7, tol_norm="step"
    )
    assert stats.status == "converged"
    assert stats.steps < 500
    assert torch.allclose(x, x_star, atol=1e-5)
    assert stats.step_norm[-1] <= 1e-7 < stats.step_norm[-2]
    # the damped map a I + (1-a) M contracts by at most a + (1-a)*0.5 = 0.65 per step
    assert all(0.0 < q <= 0.65 + 1e-4 for q in stats.ratio)
    assert len(stats.ratio) == stats.steps - 1


def test_residual_tolerance_and_trace_relation():
    b = torch.tensor([1.0, -2.0], dtype=torch.float64)
    x, stats = picard(
        lambda x: 0.5 * x, torch.zeros(2, dtype=torch.float64), b, a=0.5, max_iter=200, tol=1e-6, tol_norm="residual"
    )
    assert stats.status == "converged"
    assert stats.residual[-1] <= 1e-6
    # step = (1 - a) * residual for a constant a
    for s, r in zip(stats.step_norm, stats.residual):
        assert math.isclose(s, 0.5 * r, rel_tol=1e-5)


def test_damping_weighs_the_old_iterate_and_schedules_run_in_order():
    c = torch.tensor([10.0])
    x, stats = picard(lambda x: c, torch.zeros(1), a=0.8, max_iter=1)
    assert x.item() == pytest.approx(2.0)  # 0.8*0 + 0.2*10
    x, _ = picard(lambda x: c, torch.zeros(1), a=[0.0, 0.5], max_iter=2)
    assert x.item() == pytest.approx(10.0)  # step 1: 10; step 2: 0.5*10 + 0.5*10
    x, _ = picard(lambda x: c, torch.zeros(1), a=[0.5, 0.0], max_iter=2)
    assert x.item() == pytest.approx(10.0)
    x, _ = picard(lambda x: c, torch.zeros(1), a=[0.5, 0.9], max_iter=2)
    assert x.item() == pytest.approx(0.9 * 5 + 0.1 * 10)
    with pytest.raises(ValueError, match="3 values"):
        schedule([0.1, 0.2, 0.3], 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        schedule(1.5, 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        schedule([0.5, -0.1], 2)
    x0 = torch.tensor([1.0, 2.0])
    x, _ = picard(lambda x: 10 * x + 3, x0, a=1.0, max_iter=3)  # a = 1: the old iterate, unchanged
    assert torch.equal(x, x0)


def test_fixed_iterations_without_tolerance():
    _, stats = picard(lambda x: 0.1 * x, torch.ones(3), a=0.5, max_iter=7)
    assert stats.steps == 7 and stats.status == "max_iter"
    assert len(stats.step_norm) == len(stats.residual) == 7


def test_divergence_and_nan_are_detected():
    _, stats = picard(lambda x: 3.0 * x + 1.0, torch.ones(4), a=0.0, max_iter=100, divergence=1e6)
    assert stats.status == "diverged" and stats.steps < 100
    _, stats = picard(lambda x: x * float("inf"), torch.ones(4), a=0.5, max_iter=10)
    assert stats.status == "nan" and stats.steps == 1


def test_gradients_flow_through_unrolled_iterations():
    # x_{k+1} = a x_k + (1-a) w x_k  =>  x_K = (a + (1-a) w)^K x_0
    w = torch.tensor(0.7, requires_grad=True)
    a, K = 0.4, 5
    x, _ = picard(lambda x: w * x, torch.tensor(2.0), a=a, max_iter=K)
    x.backward()
    lam = a + (1 - a) * 0.7
    assert w.grad.item() == pytest.approx(2.0 * K * lam ** (K - 1) * (1 - a), rel=1e-5)


def test_batched_problems_get_one_trace_each_and_stop_together():
    scales = torch.tensor([0.1, 0.9]).view(1, 2, 1)  # problems stacked on dim 1
    x0 = torch.ones(3, 2, 4)
    _, stats = picard(lambda x: scales * x, x0, a=0.0, max_iter=300, tol=1e-4, batch_dim=1)
    assert stats.status == "converged"
    assert all(len(v) == 2 for v in stats.step_norm)
    fast, slow = stats.per_problem(0), stats.per_problem(1)
    assert slow["step_norm"][-1] <= 1e-4 and fast["step_norm"][-1] < slow["step_norm"][-1]
    assert slow["ratio"][-1] == pytest.approx(0.9, rel=1e-4)


def test_damped_update_one_pass_equals_the_formula_with_gradients():
    from picard_cli.solver import damp

    x = torch.randn(4, 3, dtype=torch.double, requires_grad=True)
    g = torch.randn(4, 3, dtype=torch.double, requires_grad=True)
    for a in (0.0, 0.3, 0.7, 1.0):
        out = damp(x, g, a)
        assert out.grad_fn.name().startswith("Lerp")  # the one-pass path
        torch.testing.assert_close(out, a * x + (1 - a) * g)
        gx, gg = torch.autograd.grad(out.sum(), (x, g))
        torch.testing.assert_close(gx, torch.full_like(x, a))
        torch.testing.assert_close(gg, torch.full_like(g, 1 - a))
    assert torch.equal(damp(x, g, 1.0), x) and torch.equal(damp(x, g, 0.0), g)
    # shapes that only broadcast, or mixed dtypes: the plain formula
    torch.testing.assert_close(damp(torch.tensor(2.0), torch.ones(3), 0.5), torch.full((3,), 1.5))
    mixed = damp(torch.ones(2, dtype=torch.float32), torch.ones(2, dtype=torch.double), 0.25)
    assert mixed.dtype == torch.double
