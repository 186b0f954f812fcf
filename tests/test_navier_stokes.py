"""Navier-Stokes generator (spec navier-stokes.md §4): exact solutions of the full nonlinear
equation, time-step convergence, field statistics, the file format, resume, FNO .mat reading."""

import math

import h5py
import numpy as np
import pytest
import torch

from conftest import picard
from picard_cli.data.navier_stokes import ANIE_TIMES, generate, load_ns, parse_times
from picard_cli.errors import DataError
from picard_cli.pde.navier_stokes import grf, sample_ics, simulate


def grid(s):
    x = torch.arange(s, dtype=torch.float64) / s
    return torch.meshgrid(x, x, indexing="ij")


@pytest.mark.parametrize("k", [(1, 0), (2, 1), (3, -2)])
def test_single_mode_decays_exactly_without_forcing(k):
    """A plane wave has u . grad w = 0, so w(t) = w0 exp(-nu 4 pi^2 |k|^2 t) exactly."""
    s, nu, t = 32, 1e-3, 2.0
    X1, X2 = grid(s)
    w0 = torch.cos(2 * math.pi * (k[0] * X1 + k[1] * X2))[None]
    out = simulate(w0, [t], dt=2e-3, nu=nu, forced=False)  # CN error ~ (nu L dt)^3 per step
    exact = w0[0] * math.exp(-nu * 4 * math.pi**2 * (k[0] ** 2 + k[1] ** 2) * t)
    assert torch.allclose(out[0, 0], exact, atol=2e-7, rtol=0)


def test_forced_mode_from_rest_is_exact():
    """From w0 = 0 the forced (1,1) plane wave solves the full equation:
    w(t) = 0.1 / (8 pi^2 nu) (1 - exp(-8 pi^2 nu t)) (sin + cos)(2 pi (x1 + x2))."""
    s, nu = 32, 1e-3
    X1, X2 = grid(s)
    times = [0.0, 1.0, 5.0]
    out = simulate(torch.zeros(1, s, s, dtype=torch.float64), times, dt=1e-2, nu=nu)
    shape = torch.sin(2 * math.pi * (X1 + X2)) + torch.cos(2 * math.pi * (X1 + X2))
    for j, t in enumerate(times):
        exact = 0.1 / (8 * math.pi**2 * nu) * (1 - math.exp(-8 * math.pi**2 * nu * t)) * shape
        assert torch.allclose(out[0, j], exact, atol=1e-7, rtol=0), t
    # the float32 path (the default) agrees to single precision
    out32 = simulate(torch.zeros(1, s, s), [5.0], dt=1e-2, nu=nu)
    assert torch.allclose(out32[0, 0].double(), out[0, 2], atol=2e-5)


def test_halving_dt_converges_at_first_order():
    """Explicit Euler for advection: the error against a fine reference halves with dt."""
    w0 = torch.tensor(sample_ics([0, 1], seed=3, resolution=32, ic_resolution=32), dtype=torch.float64) * 4
    ref = simulate(w0, [1.0], dt=1.25e-3)
    errs = [float((simulate(w0, [1.0], dt=dt) - ref).norm()) for dt in (2e-2, 1e-2, 5e-3)]
    r1, r2 = errs[0] / errs[1], errs[1] / errs[2]
    assert 1.7 < r1 < 2.6 and 1.7 < r2 < 2.6, errs


def test_initial_field_statistics_and_variance_convention():
    """std(w0) ~ 0.25 with the original variance (spec §4.2, §4.5: 0.262 at s = 256), ~0.185 ported."""
    orig = grf(64, 64, np.random.default_rng(0))
    ported = grf(64, 64, np.random.default_rng(0), variance="ported")
    assert abs(orig.mean()) < 0.02 and 0.22 < orig.std() < 0.30
    assert ported.std() == pytest.approx(orig.std() / math.sqrt(2), rel=1e-9)
    # a sample does not depend on the batch it is drawn in
    assert np.array_equal(sample_ics([5], 0, 64, 256)[0], sample_ics([4, 5, 6], 0, 64, 256)[1])


def test_generated_trajectories_match_the_published_statistics(tmp_path):
    """Field std at the ANIE stamps t = 5 and 11 (spec §2.3: mean squares 0.20, 0.54)."""
    params = dict(
        samples=6,
        resolution=32,
        solve_resolution=32,
        ic_resolution=128,
        dt=1e-2,
        nu=1e-3,
        times=[0.0, 5.0, 11.0],
        variance="original",
        seed=0,
        precision="float32",
    )
    generate(tmp_path / "s.h5", params, "cpu", batch=6)
    d = load_ns(tmp_path / "s.h5")
    ms = (d.w.astype(np.float64) ** 2).mean(axis=(0, 2, 3))
    assert 0.03 < ms[0] < 0.10 and 0.12 < ms[1] < 0.30 and 0.35 < ms[2] < 0.75, ms


def small_params(**kw):
    p = dict(
        samples=5,
        resolution=16,
        solve_resolution=16,
        ic_resolution=64,
        dt=0.05,
        nu=1e-3,
        times=[0.0, 0.5, 1.0],
        variance="original",
        seed=1,
        precision="float32",
    )
    p.update(kw)
    return p


def test_interrupted_generation_resumes_to_the_same_file(tmp_path):
    full = tmp_path / "full.h5"
    generate(full, small_params(), "cpu", batch=2)
    part = tmp_path / "part.h5"

    def stop_after_first_batch(done, total):
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(part, small_params(), "cpu", batch=2, progress=stop_after_first_batch)
    assert load_ns(part).meta["n_done"] == 2
    made, had = generate(part, small_params(), "cpu", batch=2)
    assert (made, had) == (3, 2)
    a, b = load_ns(full), load_ns(part)
    assert a.w.shape == (5, 3, 16, 16) and np.array_equal(a.w, b.w)
    assert list(b.t) == [0.0, 0.5, 1.0] and b.meta["seed"] == 1
    with pytest.raises(DataError, match="differ: seed"):
        generate(part, small_params(seed=2), "cpu", batch=2)


def test_reads_the_published_fno_mat_layout(tmp_path):
    """MATLAB v7.3 stores column-major: h5py sees a as (64, 64, N), u as (T, 64, 64, N)."""
    N, S, T = 3, 8, 4
    a = np.arange(N * S * S, dtype=np.float32).reshape(N, S, S)  # a[n, i, j], i = x1
    u = np.arange(N * S * S * T, dtype=np.float32).reshape(N, S, S, T) + 1000
    path = tmp_path / "NavierStokes_V1e-3_N5000_T50.mat"
    with h5py.File(path, "w") as f:
        f["a"], f["u"] = a.transpose(2, 1, 0), u.transpose(3, 2, 1, 0)
        f["t"] = np.arange(1, T + 1, dtype=np.float64)[:, None]
    d = load_ns(path)
    assert d.w.shape == (N, T + 1, S, S) and list(d.t) == [0, 1, 2, 3, 4]
    assert np.array_equal(d.w[:, 0], a) and np.array_equal(d.w[:, 2], u[..., 1])
    assert d.at_times([0, 4]).shape == (N, 2, S, S)
    with pytest.raises(DataError, match="time 5 is not in the dataset"):
        d.at_times([5])


def test_parse_times():
    assert parse_times("anie") == [float(t) for t in ANIE_TIMES]
    assert parse_times("all")[-1] == 50.0 and len(parse_times("all")) == 51
    assert parse_times("0,2.5,1") == [0.0, 1.0, 2.5]
    with pytest.raises(DataError):
        parse_times("soon")


def test_cli_generates_resumes_and_rejects_bad_input(tmp_path):
    out = tmp_path / "ns.h5"
    args = (
        "data",
        "navier-stokes",
        "--samples",
        3,
        "--resolution",
        16,
        "--ic-resolution",
        64,
        "--dt",
        0.05,
        "--times",
        "0,1",
        "--batch",
        2,
        "--out",
        out,
    )
    r = picard(*args)
    assert r.returncode == 0, r.stderr
    assert "3 samples (3 new, 0 resumed)" in " ".join(r.stdout.split())
    r = picard(*args)
    assert r.returncode == 0 and "(0 new, 3 resumed)" in " ".join(r.stdout.split())
    assert load_ns(out).w.shape == (3, 2, 16, 16)
    for bad, msg in (
        (("--samples", 0), "--samples"),
        (("--variance", "double"), "--variance"),
        (("--times", "later"), "--times"),
    ):
        r = picard("data", "navier-stokes", *bad, "--out", tmp_path / "bad.h5")
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = picard(*args[:-1], tmp_path / "other.h5", "--seed", 5)
    r2 = picard(
        "data",
        "navier-stokes",
        "--samples",
        3,
        "--resolution",
        16,
        "--ic-resolution",
        64,
        "--dt",
        0.05,
        "--times",
        "0,1",
        "--out",
        tmp_path / "other.h5",
    )
    assert r.returncode == 0 and r2.returncode == 2 and "differ: seed" in r2.stderr


def test_default_file_is_what_anie_reads():
    from picard_cli.data.navier_stokes import default_file
    from picard_cli.experiments.anie import DEFAULT_DATA

    assert default_file(1e-3, 64) == DEFAULT_DATA == "navier-stokes/ns_V1e-3_S64.h5"
    assert default_file(1.5e-4, 256) == "navier-stokes/ns_V1.5e-4_S256.h5"
