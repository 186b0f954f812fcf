"""Table 2 (ViT variants with Picard iterations on Navier-Stokes): operator shapes, parameter
counts and head / reading options, LSA and SPT, the paper's Alg. 2 through the shared solver,
gradients through every iteration, recipe-cell matching, and the CLI end to end."""

import json

import pytest
import torch

from conftest import picard
from test_anie import _write  # tiny smooth-field .h5 at the 10 ANIE stamps (shared with the ANIE tests)
from picard_cli import registry, runner
from picard_cli.models.vit_pde import LSA, MODELS, PicardOperator, ViT, build_operator, shift_patches, unpatchify

SMALL = dict(dim=32, depth=2, heads=4, mlp=64, patch=4)


def count(m):
    return sum(p.numel() for p in m.parameters())


def vit_count(d=256, L=6, mlp=512, F=10, S=64, p=8, in_ch=10, per_token=None, tokens=None):
    """Closed form of ``ViT``: patch conv + LN, cls, pos, L pre-LN blocks (qkv without bias), LN, head."""
    per_token = F * p * p if per_token is None else per_token
    tokens = (S // p) ** 2 if tokens is None else tokens
    block = 4 * d + 3 * d * d + d * d + d + d * mlp + mlp + mlp * d + d
    return in_ch * p * p * d + 3 * d + d + (tokens + 1) * d + L * block + 2 * d + d * per_token + per_token


def test_parameter_counts_at_the_spec_sizes():
    """Spec §3.3 sizes: dim 256, depth 6, heads 8, MLP 512, 8x8 patches, 64x64 fields."""
    vit = build_operator("vit", 64)
    assert count(vit) == vit_count() == 3_504_512
    assert count(build_operator("vit-parallel", 64)) == 3_504_512  # 3 layers x 2 branches: parameter-matched
    assert count(build_operator("vit-small", 64)) == vit_count(in_ch=50) + 6 == 4_159_878  # SPT + 6 temperatures
    v3 = build_operator("vit-3d", 64)
    assert count(v3) == vit_count(in_ch=2, per_token=2 * 8 * 8, tokens=5 * 8 * 8)  # Conv3d(1, 256, 2x8x8)
    assert count(v3) == 3_307_392 and v3.pos.shape[1] == 321
    cls = build_operator("vit", 64, head="cls")  # +Linear(256 -> 40960) - token head
    assert count(cls) - count(vit) == (256 * 40960 + 40960) - (256 * 640 + 640) == 10_362_240
    small = build_operator("vit-small", 64, small_reading="smaller")
    assert type(small) is ViT and len(small.blocks) == 4 and small.cls.shape[-1] == 128
    assert count(small) == vit_count(d=128, L=4, mlp=256) == 701_952


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("head", ["token", "cls"])
def test_each_operator_maps_the_state_to_itself(model, head):
    T = build_operator(model, 16, head=head, **SMALL)
    assert type(T) is MODELS[model]
    x = torch.randn(3, 10, 16, 16)
    assert T(x).shape == x.shape
    tokens = {"vit": 16, "vit-small": 16, "vit-parallel": 16, "vit-3d": 80}[model]  # vit-3d: 5 x 4 x 4 tubelets
    assert T.pos.shape[1] == tokens + 1
    assert len(T.blocks) == (1 if model == "vit-parallel" else 2)  # vit-parallel: depth // branches


@pytest.mark.parametrize("model", ["vit", "vit-3d"])
def test_token_head_un_patchifies_where_the_patch_came_from(model):
    """With the token mixing removed (blocks = identity), changing one patch / tubelet of the input
    changes exactly that patch / tubelet of the output: embedding order = un-patchify order."""
    torch.manual_seed(0)
    T = build_operator(model, 16, **SMALL).eval()
    T.blocks = torch.nn.Identity()
    x = torch.randn(1, 10, 16, 16)
    y = x.clone()
    y[:, 2:4, 4:8, 8:12] += 1.0  # frames 2-3 (one 3D tubelet) of the patch at row 1, col 2
    diff = (T(y) - T(x)).abs()[0] > 0
    want = torch.zeros(10, 16, 16, dtype=torch.bool)
    want[(slice(2, 4) if model == "vit-3d" else slice(None)), 4:8, 8:12] = True
    assert torch.equal(diff, want)


def test_unpatchify_inverts_row_major_tubelets():
    x = torch.randn(2, 10, 16, 16)
    tok2d = x.reshape(2, 10, 4, 4, 4, 4).permute(0, 2, 4, 1, 3, 5).reshape(2, 16, 160)
    assert torch.equal(unpatchify(tok2d, (1, 4, 4), (10, 4, 4)), x)
    tok3d = x.reshape(2, 5, 2, 4, 4, 4, 4).permute(0, 1, 3, 5, 2, 4, 6).reshape(2, 80, 32)
    assert torch.equal(unpatchify(tok3d, (5, 4, 4), (2, 4, 4)), x)


def test_lsa_masks_the_diagonal_with_a_learned_temperature():
    torch.manual_seed(0)
    att = LSA(8, num_heads=2).eval()
    assert torch.allclose(att.temperature.exp(), torch.tensor(4**-0.5))
    with torch.no_grad():
        att.temperature.fill_(0.3)
    x = torch.randn(2, 5, 8)
    q, k, v = (x @ att.qkv.weight.T).view(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    s = (q @ k.transpose(-2, -1)) * torch.tensor(0.3).exp()
    s = s.masked_fill(torch.eye(5, dtype=torch.bool), float("-inf")).softmax(-1)
    want = att.proj((s @ v).transpose(1, 2).reshape(2, 5, 8))
    assert torch.allclose(att(x), want, atol=1e-5)


def test_spt_stacks_four_one_pixel_shifts():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    s = shift_patches(x)
    assert s.shape == (1, 5, 4, 4) and torch.equal(s[0, 0], x[0, 0])
    assert torch.equal(s[0, 1, :, 1:], x[0, 0, :, :-1]) and not s[0, 1, :, 0].any()  # content moved right
    assert torch.equal(s[0, 2, :, :-1], x[0, 0, :, 1:]) and not s[0, 2, :, -1].any()  # moved left
    assert torch.equal(s[0, 3, 1:], x[0, 0, :-1]) and torch.equal(s[0, 4, :-1], x[0, 0, 1:])  # down, up


def _op(model="vit", n_iter=3, a=0.5, **kw):
    torch.manual_seed(1)
    return PicardOperator(build_operator(model, 16, **SMALL), 10, n_iter=n_iter, a=a, **kw).eval()


def test_alg2_is_the_damped_iteration_from_f():
    """Paper Alg. 2: x_0 = f, x_{k+1} = a x_k + (1-a)(T(x_k) + f); prediction x_N after N applications."""
    m, w0 = _op(n_iter=3, a=0.3), torch.randn(2, 16, 16)
    calls = []
    m.T.register_forward_hook(lambda *_: calls.append(1))
    out, stats = m(w0, trace=True)
    assert len(calls) == 3 and stats.steps == 3 and len(stats.residual) == len(stats.step_norm) == 3
    f = w0[:, None].expand(-1, 10, -1, -1)
    x = f
    for _ in range(3):
        x = 0.3 * x + 0.7 * (m.T(x) + f)
    assert torch.allclose(out, x, atol=1e-5)
    assert torch.allclose(m(w0, n_iter=1)[0], 0.3 * f + 0.7 * (m.T(f) + f), atol=1e-5)  # N_iter = 1 baseline


def test_one_step_with_a_one_is_the_identity():
    """a = 1 (all weight on the old iterate) gives x_1 = x_0 = f exactly, for every model; with
    T = 0 the start f is a fixed point."""
    w0 = torch.randn(2, 16, 16)
    f = w0[:, None].expand(-1, 10, -1, -1)
    for model in ("vit", "vit-small", "vit-parallel", "vit-3d"):
        x1, _ = _op(model, n_iter=1, a=1.0)(w0)
        assert torch.equal(x1, f), model
    m = _op(n_iter=3)
    torch.nn.init.zeros_(m.T.head.weight)
    torch.nn.init.zeros_(m.T.head.bias)  # T = 0
    assert torch.equal(m(w0)[0], f)


def test_tolerance_stops_early():
    m = _op(n_iter=50, a=0.5, tol=1e9)
    _, stats = m(torch.randn(2, 16, 16))
    assert stats.status == "converged" and stats.steps == 1


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")  # x_0 = f needs no gradient
@pytest.mark.parametrize("model,head", [(m, "token") for m in MODELS] + [("vit", "cls")])
def test_gradients_reach_every_parameter_through_three_iterations(model, head):
    torch.manual_seed(1)
    m = PicardOperator(build_operator(model, 16, head=head, **SMALL), 10, n_iter=3).train()
    calls = []
    m.T.register_full_backward_hook(lambda *_: calls.append(1))
    out, _ = m(torch.randn(2, 16, 16))
    out.pow(2).mean().backward()
    assert len(calls) == 3  # backprop through every application of T
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    if model == "vit-small":
        assert m.T.blocks[0].attn.temperature.grad.abs() > 0


def test_run_picks_the_matching_recipe_cell():
    exp = registry.get("vit-pde")
    p = runner.plan(exp, None, "quick", {"model": "vit-3d", "n_iter": 3}, {}, cells="match")
    assert [r.cell for r in p.runs] == ["ViT3D/N3"] and p.runs[0].config["dim"] == 64  # quick widths
    assert (
        runner.plan(exp, None, "paper", {"model": "vit-small", "n_iter": 2}, {}, cells="match").runs[0].cell
        == "ViTsmall/N2"
    )
    assert (
        exp.table.rows == ("ViT", "ViTsmall", "ViTparallel", "ViT3D")
        and len(runner.plan(exp, None, "quick", {}, {}).runs) == 12
    )
    assert exp.table.paper[("ViT", "N_iter = 3")] == (0.0691, 0.0024) and exp.table.paper[("ViT3D", "N_iter = 3")] == (
        0.2529,
        0.0079,
    )


def test_table2_sweep_end_to_end(tmp_path):
    path, _ = _write(tmp_path / "data" / "ns16.h5")
    res = tmp_path / "res"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "COLUMNS": "250"}
    out = picard(
        "sweep",
        "vit-pde",
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
        "dim=16",
        "depth=2",
        "heads=2",
        "mlp=32",
        env=env,
    )
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in (res / "vit-pde.jsonl").read_text().splitlines()]
    assert sorted(r["cell"] for r in recs) == sorted(
        f"{m}/N{k}" for m in ("ViT", "ViTsmall", "ViTparallel", "ViT3D") for k in (1, 2, 3)
    )
    for r in recs:
        m, k, x = r["metrics"], r["config"]["n_iter"], r["extra"]
        assert r["status"] == "ok" and r["seed"] == 7 and x["amp"] == "fp32"
        for key in ("test_mse_last", "test_mse_best_val", "test_mse10_last", "test_mse10_best_val"):
            assert m[key] > 0
        assert r["solver"]["steps"] == r["solver"]["n_evals"] == k and len(r["solver"]["residual"]) == k
        assert r["solver"]["residual_out"] > 0 and len(x["train_loss"]) == 2
        assert x["iter_curve"]["k"] == list(range(1, k + 1))
        assert x["iter_curve"]["test_mse"][-1] == pytest.approx(m["test_mse_best_val"], rel=1e-4)
        assert x["n_params"] == count(build_operator(r["config"]["model"], 16, dim=16, depth=2, heads=2, mlp=32))
    rep = picard("report", "vit-pde", "--results", res, env=env)
    assert rep.returncode == 0, rep.stderr
    assert "Table 2" in rep.stdout and "paper 0.2472" in rep.stdout and "QUICK-SCALE" in rep.stdout
    assert (res / "vit-pde_table_best_val.md").exists() and (res / "vit-pde_iters.png").stat().st_size > 1000
    rep10 = picard("report", "vit-pde", "--results", res, "--protocol", "best-val-10", env=env)
    assert rep10.returncode == 0 and (res / "vit-pde_table_best_val_10.md").exists()


@pytest.mark.parametrize("model", list(MODELS))
def test_bf16_autocast_keeps_the_iterate_fp32(model):
    """amp=auto runs T under bf16 autocast on CUDA; the Picard state x_k stays fp32 (T(x_k) + f
    promotes). Checked with CPU autocast here (no GPU in the test environment)."""
    m = _op(model, n_iter=2).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = m(torch.randn(2, 16, 16))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    out.pow(2).mean().backward()
    assert all(p.grad is not None for p in m.parameters())
