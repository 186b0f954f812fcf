"""Table 4 (ANIE on Navier-Stokes): parameter counts against the authors' checkpoint,
Galerkin attention, the N_iter mapping, gradients, coordinates, quirks, splits, and
the CLI end to end on a tiny generated file."""

import json

import numpy as np
import pytest
import torch

from conftest import picard
from picard_cli.data.navier_stokes import ANIE_TIMES, write_h5
from picard_cli.errors import DataError
from picard_cli.experiments.anie import AnieConfig, load_splits
from picard_cli.models.anie import ANIE, GalerkinAttention, token_coords, unused_fc_params
from picard_cli.recipes import to_dict


def count(m):
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_the_authors():
    """Spec §1.2, §1.4, §1.6: encoder 4,736 and transformer 139,491 (F_func.pt, kernel.pt),
    decoder 1,593,664. We do NOT build the unused attn.fc (Linear(64+h -> 64) per block), so
    our 4H4B transformer has 139,491 - 4 x 4,416 = 121,827 trainable parameters."""
    m = ANIE(size=64, heads=4, blocks=4)
    assert count(m.encoder) == 4_736 and count(m.decoder) == 1_593_664
    assert count(m.N) == 121_827 and unused_fc_params(64, 4, 4) == 17_664
    assert count(m.N) + unused_fc_params(64, 4, 4) == 139_491
    assert m.n_params() == 4_736 + 121_827 + 1_593_664
    assert count(ANIE(heads=1, blocks=1).N) == count(ANIE(heads=4, blocks=1).N) == 33_891


@pytest.mark.parametrize("size", [64, 16])
def test_shapes(size):
    m = ANIE(size=size, heads=2, blocks=2, n_iter=2)
    P = (size // 4) ** 2
    f = m.encode(torch.randn(3, size, size))
    assert f.shape == (3, P * 10, 32) and m.pos.shape == (P * 10, 3)
    assert torch.equal(f.view(3, P, 10, 32)[:, :, 0], f.view(3, P, 10, 32)[:, :, 7])  # f copied over stamps
    out, stats = m(torch.randn(3, size, size))
    assert out.shape == (3, 10, size, size) and stats.steps == 1


def test_galerkin_attention_is_q_ktv_over_n_per_head():
    torch.manual_seed(0)
    att = GalerkinAttention(emb=8, heads=2, dropout=0.0).eval()
    x = torch.randn(3, 11, 8)
    q, k, v = (x @ lin.weight.T + lin.bias for lin in (att.q, att.k, att.v))
    heads = [q[..., s] @ (k[..., s].transpose(1, 2) @ v[..., s]) / 11 for s in (slice(0, 4), slice(4, 8))]
    assert torch.allclose(att(x), torch.cat(heads, -1), atol=1e-6)
    # init: xavier gain 1e-2 plus 1e-2 on the diagonal, zero biases
    assert torch.allclose(att.q.weight.diagonal().mean(), torch.tensor(1e-2), atol=3e-3)
    assert att.k.weight.abs().max() < 0.03 and not att.v.bias.any()


def _model(n_iter, **kw):
    torch.manual_seed(1)
    return ANIE(size=16, heads=2, blocks=1, n_iter=n_iter, dropout=0.0, **kw).eval()


def test_one_iteration_is_one_application():
    m, w0 = _model(1), torch.randn(2, 16, 16)
    out, stats = m(w0)
    y = m.G(m.encode(w0))
    assert stats.steps == 0 and torch.allclose(out, m.decoder(y.view(2, 16, 10, 32)), atol=1e-6)


def test_n_iter_counts_evaluations_of_the_operator():
    """N_iter = 3 = the authors' max_iterations 2: y0 = f, g0 = G(y0), y_k = a y_{k-1} + (1-a) g_{k-1},
    g_k = G(y_k), return g_2 (spec §1.5): N is applied exactly 3 times."""
    m, w0 = _model(3), torch.randn(2, 16, 16)
    calls = []
    m.N.register_forward_hook(lambda *_: calls.append(1))
    out, stats = m(w0)
    assert len(calls) == 3 and stats.steps == 2
    y, g = m.encode(w0), None
    g = m.G(y)
    for _ in range(2):
        y = 0.5 * y + 0.5 * g
        g = m.G(y)
    assert torch.allclose(out, m.decoder(g.view(2, 16, 10, 32)), atol=1e-5)


def test_gradients_reach_every_part_through_all_iterations():
    m = ANIE(size=16, heads=2, blocks=2, n_iter=4).train()
    calls = []
    m.N.register_full_backward_hook(lambda *_: calls.append(1))
    out, _ = m(torch.randn(2, 16, 16))
    out.pow(2).mean().backward()
    assert len(calls) == 4  # backprop through every evaluation of N
    for p in (
        m.encoder.conv.weight,
        m.N.first.weight,
        m.N.layers[1].attn.q.weight,
        m.N.last.weight,
        m.decoder.net[0].weight,
    ):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_coordinates_true_and_scrambled():
    times = ANIE_TIMES
    stamps = torch.tensor(times, dtype=torch.float32) / 50  # linspace(0,1,51)[t_ids] (spec §1.3)
    lin = torch.linspace(0, 1, 4)
    grid = torch.tensor([[lin[i], lin[j]] for i in range(4) for j in range(4)])  # patch p = row * 4 + col
    P, T = 16, 10
    true, scr = token_coords(4, times), token_coords(4, times, scramble=True)
    for n in range(P * T):  # content of token n: patch n // T at stamp n % T
        assert torch.allclose(true[n], torch.cat([grid[n // T], stamps[n % T, None]]))
        assert torch.allclose(scr[n], torch.cat([grid[n % P], stamps[n // P, None]]))
    assert len({tuple(r.tolist()) for r in scr}) == P * T  # still a unique tag per token
    assert torch.equal(_model(1, coord_scramble=True).pos, scr) and torch.equal(_model(1).pos, true)


def test_quirk_flags():
    w0 = torch.randn(2, 16, 16)
    m = _model(1, eval_adds_f=True)
    f = m.encode(w0)
    out, _ = m(w0)
    assert torch.allclose(out, m.decoder((m.G(f) + f).view(2, 16, 10, 32)), atol=1e-5)  # c = f at evaluation
    m.train()
    assert torch.allclose(m(w0)[0], m.decoder(m.G(f).view(2, 16, 10, 32)), atol=1e-5)  # c = 0 in training
    plain, always = _model(2), _model(2, kv_dropout_always=True)
    assert torch.equal(plain(w0)[0], plain(w0)[0])  # default: deterministic at evaluation
    assert not torch.equal(always(w0)[0], always(w0)[0])  # the authors' always-on p=0.5 K^T V dropout


def _write(path, n=24, size=16, seed=0):
    """Smooth random fields at the 10 ANIE stamps; sample i carries offset 10 i (for split checks)."""
    rng = np.random.default_rng(seed)
    x = np.arange(size) / size
    X1, X2 = np.meshgrid(x, x, indexing="ij")
    w = np.zeros((n, len(ANIE_TIMES), size, size), np.float32)
    for i in range(n):
        k1, k2, ph = rng.integers(1, 3), rng.integers(1, 3), rng.uniform(0, 6.3)
        for j, t in enumerate(ANIE_TIMES):
            w[i, j] = np.exp(-0.02 * t) * np.sin(2 * np.pi * (k1 * X1 + k2 * X2) + ph + 0.05 * t)
    return write_h5(path, w, ANIE_TIMES, {"synthetic": True}), w


def test_splits_in_generation_order_test_last(tmp_path):
    path, w = _write(tmp_path / "ns.h5", n=20)
    c = to_dict(AnieConfig(data=str(path), n_train=8, n_val=4, n_test=5))
    tr, va, te, _ = load_splits(c, tmp_path)
    assert np.array_equal(tr, w[:8]) and np.array_equal(va, w[8:12]) and np.array_equal(te, w[15:])
    c_rel = to_dict(AnieConfig(data="ns.h5", n_train=8, n_val=4, n_test=5))  # relative to the data root
    assert np.array_equal(load_splits(c_rel, tmp_path)[2], w[15:])
    with pytest.raises(DataError, match="has 20 samples"):
        load_splits(to_dict(AnieConfig(data=str(path), n_train=16, n_val=4, n_test=5)), tmp_path)


def test_table4_sweep_end_to_end(tmp_path):
    path, _ = _write(tmp_path / "data" / "ns16.h5")
    res = tmp_path / "res"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "COLUMNS": "250"}
    out = picard(
        "sweep",
        "anie",
        "--filter",
        "1H1B/N",
        "--data-root",
        tmp_path / "data",
        "--results",
        res,
        "n_train=8",
        "n_val=4",
        "n_test=4",
        "epochs=2",
        "batch_size=4",
        f"data={path}",
        "eval_iters=1,2",
        env=env,
    )
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in (res / "anie.jsonl").read_text().splitlines()]
    assert sorted(r["cell"] for r in recs) == [f"1H1B/N{k}" for k in (1, 2, 4, 6, 8)]
    for r in recs:
        m, k = r["metrics"], r["config"]["n_iter"]
        assert r["status"] == "ok" and r["seed"] == 7
        assert np.isfinite(m["test_mse_last"]) and np.isfinite(m["test_mse_best_val"]) and m["test_mse_std"] >= 0
        assert r["solver"]["n_evals"] == k and r["solver"]["steps"] == k - 1
        assert len(r["solver"]["residual"]) == k - 1 and r["solver"]["residual_out"] > 0
        assert r["extra"]["n_params"] == 4_736 + 33_891 + (16 * 32 * 64 + 64) + 16_640 + (256 * 256 + 256)
        assert len(r["extra"]["train_loss"]) == 2 and r["extra"]["iter_curve"]["k"] == [1, 2]
    rep = picard("report", "anie", "--results", res, env=env)
    assert rep.returncode == 0, rep.stderr
    assert "Table 4" in rep.stdout and "paper 0.0564" in rep.stdout and "QUICK-SCALE" in rep.stdout
    assert (res / "anie_table_best_val.md").exists() and (res / "anie_iters.png").stat().st_size > 1000


def test_missing_data_file_is_one_line_exit_2(tmp_path):
    out = picard(
        "sweep",
        "anie",
        "--filter",
        "1H1B/N1",
        "--data-root",
        tmp_path,
        "--results",
        tmp_path / "res",
        env={"XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "picard data navier-stokes" in out.stderr
    assert "navier-stokes/ns_V1e-3_S64.h5" in out.stderr
