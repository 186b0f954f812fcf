"""The fixed-point toolkit (issue 9): Anderson acceleration, implicit and phantom gradients,
Jacobian penalty, spectral radius, Lipschitz certificates, diagnostics, and that none of it
changes the paper's default protocol."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from conftest import picard as cli
from picard_cli.fixedpoint.anderson import anderson
from picard_cli.fixedpoint.certify import classify, symmetric_nonneg_norm_upper, tail_ratio_max
from picard_cli.fixedpoint.diagnostics import diagnose, saved_tensor_bytes, tol_stops
from picard_cli.fixedpoint.fields import FIELD_NAMES, fixed_masks, spec_from_config
from picard_cli.fixedpoint.jacobian import hutchinson_frobenius, spectral_radius
from picard_cli.fixedpoint.front import FixedPointSpec, solve
from picard_cli.solver import picard

D = torch.float64


def _sym_contraction(n, top, seed=0):
    """Symmetric M with eigenvalues spread over [0, top] (top one = top)."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=D))
    lam = torch.linspace(0, top, n, dtype=D)
    return Q @ torch.diag(lam) @ Q.T


# ----------------------------------------------------------------------------- Anderson
def test_anderson_solves_a_linear_fixed_point_problem_in_fewer_steps_than_picard():
    n = 100
    M = _sym_contraction(n, 0.95)
    b = torch.randn(n, dtype=D, generator=torch.Generator().manual_seed(1))
    x_star = torch.linalg.solve(torch.eye(n, dtype=D) - M, b)
    kw = dict(a=0.0, max_iter=2000, tol=1e-8, tol_norm="rel_residual")
    xp, sp = picard(lambda x: M @ x, torch.zeros(n, dtype=D), b, **kw)
    xa, sa = anderson(lambda x: M @ x, torch.zeros(n, dtype=D), b, m=5, **kw)
    assert sp.status == sa.status == "converged"
    assert torch.allclose(xp, x_star, atol=1e-6) and torch.allclose(xa, x_star, atol=1e-6)
    assert sa.steps * 4 < sp.steps, (sa.steps, sp.steps)  # about 30 vs about 340 here
    assert sa.rel_residual[-1] <= 1e-8 and sa.fallbacks == 0
    # with damping a too (the solver's a = weight on the old, mixed, iterate)
    _, sad = anderson(lambda x: M @ x, torch.zeros(n, dtype=D), b, m=5, **(kw | {"a": 0.5}))
    _, spd = picard(lambda x: M @ x, torch.zeros(n, dtype=D), b, **(kw | {"a": 0.5}))
    assert sad.status == "converged" and sad.steps * 4 < spd.steps


def test_anderson_first_step_is_the_damped_picard_step_and_problems_are_separate():
    M1, M2 = _sym_contraction(20, 0.9, 2), _sym_contraction(20, 0.3, 3)
    B = torch.randn(20, 2, dtype=D)

    def T(x):  # problems on dim 1
        return torch.stack([M1 @ x[:, 0], M2 @ x[:, 1]], 1)

    x1a, _ = anderson(T, torch.zeros(20, 2, dtype=D), B, a=0.3, max_iter=1, batch_dim=1)
    x1p, _ = picard(T, torch.zeros(20, 2, dtype=D), B, a=0.3, max_iter=1, batch_dim=1)
    assert torch.allclose(x1a, x1p, rtol=0, atol=1e-15)
    x, st = anderson(T, torch.zeros(20, 2, dtype=D), B, a=0.0, max_iter=200, tol=1e-10, batch_dim=1)
    assert st.status == "converged" and all(len(r) == 2 for r in st.rel_residual)
    for i, M in enumerate((M1, M2)):
        assert torch.allclose(x[:, i], torch.linalg.solve(torch.eye(20, dtype=D) - M, B[:, i]), atol=1e-8)
    # the easy problem got below tolerance first (per-problem norms)
    k_easy = next(k for k, r in enumerate(st.rel_residual) if r[1] <= 1e-10)
    assert k_easy < st.steps - 1


def test_anderson_falls_back_to_picard_when_the_least_squares_system_is_ill_conditioned():
    # T(x) = 0.5 x: every residual is parallel to b, so the differences are collinear (rank 1)
    b = torch.tensor([1.0, -2.0, 0.5], dtype=D)
    x, st = anderson(lambda x: 0.5 * x, torch.zeros(3, dtype=D), b, a=0.2, m=3, lam=0.0, max_iter=100, tol=1e-12)
    assert st.fallbacks > 0 and st.status == "converged"
    assert torch.allclose(x, 2 * b, atol=1e-10)
    # a NaN from T stops the solve with status nan, as picard does
    _, st = anderson(lambda x: x * float("nan"), torch.ones(3, dtype=D), a=0.5, max_iter=5)
    assert st.status == "nan"


# ----------------------------------------------------------------------------- gradients
def _problem(seed=0, n=6):
    g = torch.Generator().manual_seed(seed)
    W = (0.6 * torch.randn(n, n, generator=g, dtype=D) / n**0.5).requires_grad_()
    u = torch.randn(n, generator=g, dtype=D).requires_grad_()
    return W, u, (lambda W: lambda x: torch.tanh(W @ x))


def _loss(x):
    return 0.5 * (x**2).sum() + torch.sin(x).sum()


@pytest.mark.parametrize("method", ["picard", "anderson"])
def test_implicit_gradient_matches_finite_differences_and_the_unrolled_gradient(method):
    W, u, make = _problem()
    spec = FixedPointSpec(solver_method=method, grad_mode="implicit", implicit_tol=1e-13, implicit_max_iter=500)
    x, st = solve(make(W), torch.zeros(6, dtype=D), u, spec=spec, a=0.3, max_iter=300)
    gW, gu = torch.autograd.grad(_loss(x), [W, u])
    assert st.backward["status"] == "converged" and st.n_evals == st.steps + 1
    xu, _ = solve(make(W), torch.zeros(6, dtype=D), u, a=0.3, max_iter=300)  # unrolled, the paper's
    uW, uu = torch.autograd.grad(_loss(xu), [W, u])
    assert torch.allclose(gW, uW, atol=1e-9) and torch.allclose(gu, uu, atol=1e-9)

    def converged_loss(Wv, uv):
        with torch.no_grad():
            xs, _ = picard(make(Wv), torch.zeros(6, dtype=D), uv, a=0.3, max_iter=400)
            return _loss(xs).item()

    eps = 1e-6
    for i, j in [(0, 0), (2, 5), (4, 1)]:
        Wp, Wm = W.detach().clone(), W.detach().clone()
        Wp[i, j] += eps
        Wm[i, j] -= eps
        fd = (converged_loss(Wp, u.detach()) - converged_loss(Wm, u.detach())) / (2 * eps)
        assert gW[i, j].item() == pytest.approx(fd, rel=1e-6, abs=1e-8)
    up = u.detach().clone()
    up[3] += eps
    um = u.detach().clone()
    um[3] -= eps
    fd = (converged_loss(W.detach(), up) - converged_loss(W.detach(), um)) / (2 * eps)
    assert gu[3].item() == pytest.approx(fd, rel=1e-6)


def test_unrolled_gradient_through_anderson_matches_the_implicit_one():
    W, u, make = _problem(5)
    xa, _ = solve(
        make(W),
        torch.zeros(6, dtype=D),
        u,
        spec=FixedPointSpec(solver_method="anderson", solver_tol=0.0, grad_mode="unrolled"),
        a=0.3,
        max_iter=60,
    )
    xi, _ = solve(
        make(W),
        torch.zeros(6, dtype=D),
        u,
        a=0.3,
        max_iter=60,
        spec=FixedPointSpec(grad_mode="implicit", implicit_tol=1e-13, implicit_max_iter=500),
    )
    assert torch.allclose(xa, xi, atol=1e-12)
    assert torch.allclose(torch.autograd.grad(_loss(xa), W)[0], torch.autograd.grad(_loss(xi), W)[0], atol=1e-8)


def test_implicit_gradient_falls_back_to_jacobian_free_where_the_backward_solve_fails():
    # problem 0 contracts, problem 1 (x -> 1.5 x) does not: its backward iteration diverges
    w = torch.tensor([0.5, 1.5], dtype=D, requires_grad=True)

    def T(x):  # two 1-element problems on dim 0
        return w[:, None] * x

    spec = FixedPointSpec(grad_mode="implicit", implicit_tol=1e-12, implicit_max_iter=200)
    x, st = solve(
        T,
        torch.ones(2, 1, dtype=D),
        torch.ones(2, 1, dtype=D),
        spec=spec,
        a=0.0,
        max_iter=3,
        batch_dim=0,
        divergence=None,
    )
    (g,) = torch.autograd.grad(x.sum(), w)
    assert st.backward["fallback"] == 1
    z = x.detach()[:, 0]
    # implicit: z / (1 - w); the joint backward solve stopped when problem 1 diverged (~2^-19 off)
    assert g[0].item() == pytest.approx(z[0].item() / (1 - 0.5), rel=1e-5)
    assert g[1].item() == pytest.approx(z[1].item(), rel=1e-12)  # Jacobian-free: dT/dw = z


def test_implicit_gradient_of_stacked_problems_is_per_problem():
    W, u, make = _problem(1)
    W2, u2, _ = _problem(2)
    Ws = torch.stack([W, W2])  # (2, n, n): problem s on dim 1 of x (n, 2)
    U = torch.stack([u, u2], 1)

    def T(x):
        return torch.tanh(torch.einsum("sij,js->is", Ws, x))

    spec = FixedPointSpec(grad_mode="implicit", implicit_tol=1e-12, implicit_max_iter=500)
    x, _ = solve(T, torch.zeros(6, 2, dtype=D), U, spec=spec, a=0.3, max_iter=300, batch_dim=1)
    g = torch.autograd.grad(_loss(x), [W, W2])
    for Wi, ui, gi in ((W, u, g[0]), (W2, u2, g[1])):
        xi, _ = solve(make(Wi), torch.zeros(6, dtype=D), ui, a=0.3, max_iter=300)
        assert torch.allclose(torch.autograd.grad(_loss(xi), Wi)[0], gi, atol=1e-9)


def test_forward_value_does_not_depend_on_grad_mode_or_eval():
    W, u, make = _problem(3)
    for grad in ("implicit", "phantom:2"):
        spec = FixedPointSpec(grad_mode=grad, solver_method="anderson", solver_tol=1e-6)
        x_grad, s1 = solve(make(W), torch.zeros(6, dtype=D), u, spec=spec, a=0.3, max_iter=50)
        with torch.no_grad():
            x_nograd, s2 = solve(make(W), torch.zeros(6, dtype=D), u, spec=spec, a=0.3, max_iter=50)
        assert torch.equal(x_grad.detach(), x_nograd) and s1.steps == s2.steps
        assert x_grad.requires_grad and not x_nograd.requires_grad


def test_phantom_gradient_is_backprop_through_the_last_k_steps():
    W, u, make = _problem(4)
    x0 = torch.zeros(6, dtype=D)
    # k = max_iter: the same graph as unrolled (x0 carries no gradient)
    xp, _ = solve(make(W), x0, u, spec=FixedPointSpec(grad_mode="phantom:5"), a=0.3, max_iter=5)
    xu, _ = solve(make(W), x0, u, a=0.3, max_iter=5)
    assert torch.equal(xp, xu)
    assert torch.allclose(torch.autograd.grad(_loss(xp), W)[0], torch.autograd.grad(_loss(xu), W)[0], atol=1e-12)
    # k = 1: one damped step from the (detached) 29-step iterate
    x1, st = solve(make(W), x0, u, spec=FixedPointSpec(grad_mode="phantom:1"), a=0.3, max_iter=30)
    with torch.no_grad():
        z, _ = picard(make(W), x0, u, a=0.3, max_iter=29)
    manual = 0.3 * z + 0.7 * (make(W)(z) + u)
    assert torch.allclose(x1, manual, atol=1e-14) and st.steps == 30 and len(st.step_norm) == 30
    assert torch.allclose(torch.autograd.grad(_loss(x1), W)[0], torch.autograd.grad(_loss(manual), W)[0])


def test_implicit_memory_stays_flat_as_the_iteration_count_grows():
    torch.manual_seed(0)
    W = (0.5 * torch.randn(64, 64) / 8).requires_grad_()
    x0 = torch.randn(256, 64)

    def T(x):
        return torch.tanh(x @ W)

    saved = {}
    for grad in ("unrolled", "implicit"):
        for K in (5, 40):
            with saved_tensor_bytes() as acc:
                x, _ = solve(
                    T,
                    x0,
                    x0,
                    spec=FixedPointSpec(grad_mode=grad) if grad != "unrolled" else FixedPointSpec(),
                    a=0.5,
                    max_iter=K,
                )
            saved[grad, K] = acc["bytes"]
            x.sum().backward()
    assert saved["implicit", 5] == saved["implicit", 40]
    assert saved["unrolled", 40] > 6 * saved["unrolled", 5] > 6 * saved["implicit", 5]


# ----------------------------------------------------------------------------- Jacobian, certificates
def test_spectral_radius_matches_an_explicit_eigenvalue_computation():
    g = torch.Generator().manual_seed(5)
    n = 12
    V = torch.randn(n, n, generator=g, dtype=D)
    th = 0.7
    blocks = torch.zeros(n, n, dtype=D)
    blocks[:2, :2] = 0.9 * torch.tensor([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])  # 0.9 e^{+-0.7i}
    blocks[2:, 2:] = torch.diag(torch.linspace(-0.5, 0.5, n - 2, dtype=D))
    M = V @ blocks @ torch.linalg.inv(V)  # non-normal, dominant complex pair
    rho_true = torch.linalg.eigvals(M).abs().max().item()
    est = spectral_radius(lambda x: M @ x, torch.zeros(n, dtype=D), iters=400, generator=g)
    assert est == pytest.approx(rho_true, rel=0.01)
    a = 0.4
    damped_true = torch.linalg.eigvals(a * torch.eye(n, dtype=D) + (1 - a) * M).abs().max().item()
    assert spectral_radius(lambda x: M @ x, torch.zeros(n, dtype=D), iters=400, a=a, generator=g) == pytest.approx(
        damped_true, rel=0.01
    )
    # a real dominant eigenvalue, per problem along a batch dimension
    Ms = torch.stack([_sym_contraction(8, 0.8, 6), _sym_contraction(8, 1.7, 7)])
    est = spectral_radius(
        lambda x: torch.einsum("sij,js->is", Ms, x), torch.zeros(8, 2, dtype=D), batch_dim=1, iters=200, generator=g
    )
    assert est == pytest.approx([0.8, 1.7], rel=1e-3)


def test_hutchinson_estimates_the_frobenius_norm_per_problem():
    g = torch.Generator().manual_seed(8)
    Ms = torch.randn(2, 10, 10, generator=g, dtype=D) * torch.tensor([0.1, 1.0], dtype=D).view(2, 1, 1)
    torch.manual_seed(0)
    est = hutchinson_frobenius(
        lambda x: torch.einsum("sij,js->is", Ms, x),
        torch.zeros(10, 2, dtype=D),
        batch_dim=1,
        samples=4000,
        create_graph=False,
    )
    true = Ms.pow(2).sum((1, 2)) / 10
    assert torch.allclose(est, true, rtol=0.08)


def _random_gcn(n=30, seeds=3, hidden=5, seed=0):
    from picard_cli.models.stacked_gnn import Graph, StackedGCNConv

    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, 90), generator=g)
    graph = Graph.build(torch.cat([ei, ei.flip(0)], 1), n)
    gens = [torch.Generator().manual_seed(s) for s in range(seeds)]
    conv = StackedGCNConv(gens, hidden, hidden)
    with torch.no_grad():
        conv.weight.mul_(torch.tensor([0.5, 2.0, 4.0]).view(3, 1, 1))
        conv.bias.normal_()
    return graph, conv


def test_lipschitz_bound_of_the_gcn_operator_is_an_upper_bound():
    from picard_cli.models.stacked_gnn import PIGN

    graph, conv = _random_gcn()
    dense = graph.gcn_adj.to_dense().double()
    exact = torch.linalg.eigvalsh(dense).abs().max().item()
    ub = symmetric_nonneg_norm_upper(lambda v: dense @ v, dense.shape[0], iters=300)
    assert exact <= ub <= exact * (1 + 1e-3)
    model = PIGN([torch.Generator().manual_seed(s) for s in range(3)], "gcn", 4, 2, 3, 5, 1, 0.0, 0.0, 0.5, "xavier")
    model.conv = conv
    bound, _ = model.lipschitz_bound(graph)

    def T(h):
        return torch.relu(conv(h, graph))

    g = torch.Generator().manual_seed(1)
    for s in range(3):
        worst = 0.0
        for _ in range(200):
            x, y = torch.randn(2, 30, 3, 5, generator=g)
            worst = max(worst, ((T(x) - T(y))[:, s].norm() / (x - y)[:, s].norm()).item())
        J = torch.autograd.functional.jacobian(lambda h: T(h)[:, s], torch.randn(30, 3, 5, generator=g))[:, :, :, s]
        jn = torch.linalg.matrix_norm(J.reshape(150, 150), 2).item()
        assert worst <= bound[s] + 1e-5 and jn <= bound[s] + 1e-5
        # and a tight one: with every ReLU active the Jacobian is A (x) W, of norm ||A|| ||W||
        Jl = torch.autograd.functional.jacobian(lambda h: conv(h, graph)[:, s], torch.zeros(30, 3, 5))[:, :, :, s]
        assert torch.linalg.matrix_norm(Jl.reshape(150, 150), 2).item() == pytest.approx(bound[s], rel=1e-3)


def test_spectral_cap_makes_the_gcn_operator_certified():
    from picard_cli.fixedpoint.spectral import cap_spectral_norm

    graph, conv = _random_gcn()
    with torch.no_grad():  # spectral norms 0.5, 2 and 4 exactly: one seed below the cap, two above
        sig0 = torch.linalg.matrix_norm(conv.weight, 2)
        conv.weight.mul_((torch.tensor([0.5, 2.0, 4.0]) / sig0).view(3, 1, 1))
    cap_spectral_norm(conv, 0.7)
    sig = torch.linalg.matrix_norm(conv.weight.detach().double(), 2)
    assert torch.all(sig <= 0.7 + 1e-6) and sig[0] < 0.7  # seed 0 was below the cap: untouched
    assert conv.parametrizations.weight.original.requires_grad
    assert classify(0.7 * 1.0001, 1.2, "max_iter") == "certified"
    assert classify(3.0, 0.9, "max_iter") == "empirical" and classify(None, 1.01, "max_iter") == "neither"
    assert classify(None, 0.5, "diverged") == "neither"
    assert tail_ratio_max([1.0, 0.5, 0.25, 0.2, 1e-9, 1e-9], floor=1e-6) == pytest.approx(0.8)


# ----------------------------------------------------------------------------- diagnostics
def test_tolerance_grid_predicts_where_a_tolerance_run_stops():
    M = _sym_contraction(40, 0.9, 9)
    b = torch.randn(40, dtype=D, generator=torch.Generator().manual_seed(2))

    def T(x):
        return M @ x

    x_star = torch.linalg.solve(torch.eye(40, dtype=D) - M, b)

    def err(x):
        return (x - x_star).norm().item()

    d = diagnose(T, torch.zeros(40, dtype=D), b, a=0.2, iters=200, metric=err, power_iters=100)[0]
    for method in ("picard", "anderson"):
        run = d["methods"][method]
        assert len(run["rel_residual"]) == 200 and len(run["metric"]) == 201
        for tol in (1e-2, 1e-4, 1e-6):
            x, st = solve(
                T,
                torch.zeros(40, dtype=D),
                b,
                spec=FixedPointSpec(solver_method=method, solver_tol=tol),
                a=0.2,
                max_iter=200,
            )
            assert run["stops"][f"{tol:.0e}"] == st.steps
            assert run["metric_at_stop"][f"{tol:.0e}"] == pytest.approx(err(x), rel=1e-4)
    assert d["methods"]["anderson"]["stops"]["1e-06"] < d["methods"]["picard"]["stops"]["1e-06"] / 3
    assert d["spectral_radius"] == pytest.approx(0.9, rel=1e-2) and d["contraction"] == "empirical"
    assert d["spectral_radius_damped"] == pytest.approx(0.2 + 0.8 * 0.9, rel=3e-2)  # small gap: slow power method
    assert tol_stops([0.5, 0.05, 0.004], (1e-1, 1e-2, 1e-3)) == {"1e-01": 2, "1e-02": 3, "1e-03": None}


# ----------------------------------------------------------------------------- defaults unchanged
def test_default_spec_is_the_paper_solver_bit_for_bit():
    torch.manual_seed(0)
    W = torch.randn(8, 8) / 3
    x0, f = torch.randn(8), torch.randn(8)
    a, s = picard(lambda x: torch.tanh(W @ x), x0, f, a=0.4, max_iter=7)
    b, t = solve(lambda x: torch.tanh(W @ x), x0, f, a=0.4, max_iter=7)
    assert torch.equal(a, b) and s == t and "method" not in t.per_problem(0)


def test_new_fields_stay_out_of_run_identity_and_default_to_the_paper():
    from picard_cli.experiments.anie import AnieConfig
    from picard_cli.experiments.pign import PignConfig
    from picard_cli.recipes import apply, config_hash, identity, to_dict

    for cls in (PignConfig, AnieConfig):
        c = cls()
        ident = identity(c)
        assert not set(FIELD_NAMES) & set(ident) and set(FIELD_NAMES) <= set(to_dict(c))
        assert spec_from_config(to_dict(c)).plain and not fixed_masks(to_dict(c))
        changed = apply(c, {"solver_method": "anderson", "grad_mode": "phantom:3"})
        assert config_hash(identity(changed)) != config_hash(ident)
    from picard_cli.errors import RecipeError

    with pytest.raises(RecipeError, match="grad_mode"):
        apply(PignConfig(), {"grad_mode": "sideways"})


def test_spec_fields_are_the_recipe_fields_by_name_with_one_set_of_defaults():
    from picard_cli.experiments.pign import PignConfig
    from picard_cli.fixedpoint.fields import DEFAULTS, SPEC_FIELDS
    from picard_cli.recipes import to_dict

    spec = FixedPointSpec()
    assert {f.name for f in dataclasses.fields(FixedPointSpec)} == set(SPEC_FIELDS) | {"anderson_cond"}
    assert all(getattr(spec, n) == DEFAULTS[n] == getattr(PignConfig(), n) for n in SPEC_FIELDS) and spec.plain
    c = PignConfig(solver_method="anderson", solver_tol=1e-3, grad_mode="implicit", implicit_max_iter=7, jac_reg=0.5)
    typed = spec_from_config(c)
    assert typed == spec_from_config(to_dict(c)) and all(getattr(typed, n) == getattr(c, n) for n in SPEC_FIELDS)
    assert typed.tol == 1e-3 and typed.jac_probes == 1 and not typed.plain and fixed_masks(c)


def test_models_with_default_fields_match_the_paper_path_bit_for_bit():
    from picard_cli.models.anie import ANIE
    from picard_cli.models.stacked_gnn import PIGN

    graph, _ = _random_gcn()
    x = torch.rand(30, 4)
    outs = []
    for fp in (None, FixedPointSpec()):
        torch.manual_seed(3)
        m = PIGN(
            [torch.Generator().manual_seed(s) for s in range(2)], "gcn", 4, 3, 3, 5, 1, 0.5, 0.0, 0.6, "xavier", fp=fp
        )
        outs.append(m(x, graph, trace=True))
    assert torch.equal(outs[0][0], outs[1][0]) and outs[0][1] == outs[1][1]
    outs = []
    for fp in (None, FixedPointSpec()):
        torch.manual_seed(4)
        m = ANIE(size=16, n_iter=3, fp=fp)
        outs.append(m(torch.randn(2, 16, 16), trace=True)[0])
    assert torch.equal(outs[0], outs[1])


def test_anie_toolkit_forward_gradients_and_penalty():
    from picard_cli.models.anie import ANIE

    torch.manual_seed(0)
    w0 = torch.randn(3, 16, 16)
    spec = FixedPointSpec(
        solver_method="anderson", solver_tol=1e-3, grad_mode="implicit", jac_reg=0.5, implicit_max_iter=5
    )
    m = ANIE(size=16, n_iter=6, fp=spec, forcing="input", fixed_masks=True, spectral_cap=0.9, jac_reg=0.5)
    pred, st = m(w0, trace=True)
    assert pred.shape == (3, 10, 16, 16) and isinstance(st.step_norm[0], float)  # batch traces, as the paper path
    assert m.aux_loss is not None and m.aux_loss.requires_grad
    (pred.pow(2).mean() + m.aux_loss).backward()
    assert m.fp_log[-1].backward["steps"] >= 1
    assert all(p.grad is not None for n, p in m.named_parameters() if n.startswith("N."))
    m.eval()
    with torch.no_grad():
        p2, _ = m(w0)
    m.train()
    m.N.apply(lambda mod: setattr(mod, "p", 0.0) if isinstance(mod, torch.nn.Dropout) else None)
    for lay in m.N.layers:
        lay.attn.dropout = 0.0
    p3, _ = m(w0)
    assert torch.allclose(p2, p3.detach(), atol=1e-6)  # train (no dropout) vs eval: same solve, same value


# ----------------------------------------------------------------------------- end to end
def test_pign_toolkit_end_to_end_and_convergence_report(synth_root, tmp_path):
    res = tmp_path / "res"
    base = ["run", "pign", "--seeds", 2, "epochs=4", "hidden=8", "--data-root", synth_root, "--results", res]
    out = cli(
        *base,
        "forcing=input",
        "solver_method=anderson",
        "solver_tol=1e-3",
        "grad_mode=implicit",
        "jac_reg=0.1",
        "spectral_norm=0.9",
        "depth=20",
        "diagnose=true",
        "diag_iters=15",
        "power_iters=10",
    )
    assert out.returncode == 0, out.stderr
    out = cli(*base, "diagnose=true", "diag_iters=15", "power_iters=10")  # the paper's PIGN, diagnosed
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in (res / "pign.jsonl").read_text().splitlines()]
    assert len(recs) == 4 and len({r["cell_key"] for r in recs}) == 2
    for r in recs:
        fp = r["extra"]["fixedpoint"]
        assert set(fp["methods"]) == {"picard", "anderson"} and len(fp["methods"]["picard"]["metric"]) == 16
        assert fp["contraction"] in ("certified", "empirical", "neither") and fp["spectral_radius"] > 0
        toolkit = r["config"]["solver_method"] == "anderson"
        assert (fp["lipschitz_bound"] <= 0.9 * 1.01) if toolkit else fp["lipschitz_bound"] > 0
        if toolkit:
            assert fp["contraction"] == "certified" and r["solver"]["method"] == "anderson"
            assert r["extra"]["fixedpoint_train"]["backward_steps_mean"] >= 1
        else:
            assert "method" not in r["solver"] and "fixedpoint_train" not in r["extra"]
    rep = cli("report", "pign", "--convergence", "--results", res)
    assert rep.returncode == 0, rep.stderr
    assert "certified" in rep.stdout and (res / "pign_convergence.png").stat().st_size > 1000
    assert (res / "pign_convergence.md").exists()
    bad = cli("run", "pign", "--model", "plain", "solver_method=anderson", "--data-root", synth_root, "--results", res)
    assert bad.returncode == 2 and "model=pign only" in bad.stderr


def test_anie_toolkit_end_to_end(tmp_path):
    from test_anie import _write

    path, _ = _write(tmp_path / "ns16.h5")
    res = tmp_path / "res"
    out = cli(
        "run",
        "anie",
        "--data-root",
        tmp_path,
        "--results",
        res,
        f"data={path}",
        "n_train=8",
        "n_val=4",
        "n_test=4",
        "epochs=1",
        "batch_size=4",
        "n_iter=4",
        "forcing=input",
        "solver_method=anderson",
        "solver_tol=1e-2",
        "grad_mode=implicit",
        "jac_reg=0.1",
        "diagnose=true",
        "diag_iters=8",
        "power_iters=6",
        env={"XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert out.returncode == 0, out.stderr
    r = json.loads((res / "anie.jsonl").read_text().splitlines()[0])
    fp = r["extra"]["fixedpoint"]
    assert fp["lipschitz_bound"] is None and "LayerNorm" in fp["lipschitz_note"]
    assert len(fp["methods"]["anderson"]["metric"]) == 9 and r["solver"]["n_evals"] == r["solver"]["steps"] + 1
    assert r["extra"]["fixedpoint_train"]["forward_evals_mean"] >= 2
    assert dataclasses.is_dataclass(FixedPointSpec)
