"""Feature networks: map uint8 RGB images to feature vectors in batches, without gradients. One
:class:`Extractor` subclass per kind of weights (each with its calling convention and preprocessing),
:func:`extractor` to load the network for identified :class:`~.provenance.Weights`, and
:func:`random_extractor`, a random-init network that exists only to unit-test the plumbing.

torch (and torchmetrics for the standard weights) is imported inside the functions that need it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...errors import PicardError
from .provenance import RANDOM_NOTE, UNVERIFIED_NOTE, Weights

INCEPTION_SIZE = 299

ProgressFn = Callable[[int, int], None]


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

    def __init__(
        self,
        net,
        *,
        device,
        batch_size: int,
        metric: str,
        implementation: str,
        weights_sha256: str | None,
        verified: bool,
        dim: int | None,
        note: str | None = None,
    ):
        import torch

        self.device = torch.device(device)
        self.net = net.to(self.device).eval() if net is not None else None
        self.batch_size = int(batch_size)
        self.metric, self.implementation = metric, implementation
        self.weights_sha256, self.verified, self.dim = weights_sha256, verified, dim
        self.note = note if note is not None or verified else UNVERIFIED_NOTE

    def _forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def batches(self, images, batch_size: int | None = None):
        """Yield ``images`` (uint8 (N, H, W, 3) numpy array or torch tensor; (N, 3, H, W) is also accepted
        when the last axis is not 3) as contiguous uint8 (B, 3, H, W) tensors on ``self.device``."""
        import torch

        channels_last = _check_images(images)
        bs = int(batch_size or self.batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be >= 1, got {bs}")
        for start in range(0, len(images), bs):
            chunk = images[start : start + bs]
            x = torch.from_numpy(np.ascontiguousarray(chunk)) if isinstance(chunk, np.ndarray) else chunk
            x = x.to(self.device)
            yield (x.permute(0, 3, 1, 2) if channels_last else x).contiguous()

    def forward(self, x):
        """float64 (B, D) features of one uint8 (B, 3, H, W) batch, checked for shape and finiteness."""
        f = self._forward(x.to(self.device))
        if f.ndim != 2 or f.shape[0] != x.shape[0]:
            raise PicardError(
                f"FID feature network {self.implementation} returned shape "
                f"{tuple(f.shape)} for a batch of {x.shape[0]} images; expected (B, D)"
            )
        f = f.double()
        if not bool(f.isfinite().all()):
            raise PicardError(f"FID feature network {self.implementation} produced non-finite features")
        self.dim = int(f.shape[1])
        return f

    def features(self, images, batch_size: int | None = None, progress: ProgressFn | None = None) -> np.ndarray:
        """(N, D) float64 features of ``images`` (as for :meth:`batches`), without grad."""
        import torch

        n, done, out = len(images), 0, []
        with torch.inference_mode():
            for x in self.batches(images, batch_size):
                out.append(self.forward(x).cpu().numpy())
                done += x.shape[0]
                if progress is not None:
                    progress(done, n)
        return np.concatenate(out) if out else np.zeros((0, self.dim or 0), np.float64)


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
        raise PicardError(
            f"the standard FID weights need torchmetrics and torch-fidelity (with torchvision): {_one_line(e)}"
        ) from None
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
    common = dict(
        device=device,
        batch_size=batch_size,
        metric=weights.metric,
        weights_sha256=weights.sha256,
        verified=weights.verified,
    )
    try:
        if weights.kind == "torch-fidelity-state-dict":
            return _TorchFidelityExtractor(
                _load_torch_fidelity(weights.path), dim=2048, implementation=weights.implementation, **common
            )
        if weights.kind == "nvidia-torchscript":
            return _NvidiaTSExtractor(
                _jit_load(weights.path, device), dim=2048, implementation=weights.implementation, **common
            )
        if weights.kind == "fidhelper-torchscript":
            return _TF2015TSExtractor(
                _jit_load(weights.path, device), dim=2048, implementation=weights.implementation, **common
            )
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
            raise PicardError(
                f"cannot load FID weights {weights.path}: neither TorchScript "
                f"({_one_line(ts_err)}) nor a state dict ({_one_line(sd_err)})"
            ) from None
        return _TorchFidelityExtractor(
            _load_torch_fidelity(weights.path),
            dim=2048,
            implementation="unverified:torch-fidelity-state-dict",
            **common,
        )
    return _TF2015TSExtractor(net, dim=None, implementation="unverified:torchscript", **common)


def random_extractor(seed: int = 0, device="cpu", batch_size: int = 50) -> Extractor:
    """TEST ONLY: a small deterministic random-init conv net with 64-d features (metric
    ``fid_random_test``). Its numbers mean nothing; it exists to test the FID plumbing."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(int(seed))
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    net.requires_grad_(False)
    return _RandomExtractor(
        net,
        device=device,
        batch_size=batch_size,
        metric="fid_random_test",
        implementation=f"random-init-test-net(seed={int(seed)})",
        weights_sha256=None,
        verified=False,
        dim=64,
        note=RANDOM_NOTE,
    )
