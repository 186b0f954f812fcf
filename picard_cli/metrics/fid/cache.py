"""On-disk cache of real-image statistics (mu, sigma), keyed by dataset, split, N, metric,
implementation, weights sha256 and a hash of the image bytes; a file is used only when the key stored
inside it equals the wanted one. The statistics are those of torchmetrics' ``FrechetInceptionDistance``
(see :mod:`.torchmetrics_fid`); the file format is unchanged, so files written before keep working."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .extractors import Extractor, ProgressFn

CACHE_FORMAT = 1


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
    full.update(
        n=len(images),
        metric=ext.metric,
        implementation=ext.implementation,
        weights_sha256=ext.weights_sha256,
        images_sha256=_images_sha256(images),
        format=CACHE_FORMAT,
    )
    return full


def reference_cache_file(cache_dir: str | os.PathLike, full_key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(full_key, sort_keys=True).encode()).hexdigest()
    name = f"fidref_{_slug(full_key['dataset'])}_{_slug(full_key['split'])}_n{full_key['n']}_{digest[:20]}.npz"
    return Path(cache_dir) / name


def reference_stats(
    ext: Extractor, images, key: dict, cache_dir: str | os.PathLike | None, progress: ProgressFn | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of the real images, cached in ``cache_dir`` as .npz (None: no cache).

    The key (see :func:`reference_key`) is hashed into the file name and stored inside; a file is
    used only when its stored key equals the wanted one.
    """
    full = reference_key(ext, images, key)
    key_json = json.dumps(full, sort_keys=True)
    path = reference_cache_file(cache_dir, full) if cache_dir is not None else None
    cached = _read_cached(path, key_json) if path is not None else None
    if cached is not None:
        if progress is not None:
            progress(len(images), len(images))
        return cached
    from . import torchmetrics_fid

    metric = torchmetrics_fid.new_metric(ext)
    torchmetrics_fid.update(metric, images, real=True, progress=progress)
    mu, sigma = torchmetrics_fid.real_stats(metric)
    if path is not None:
        _write_cached(path, mu, sigma, key_json)
    return mu, sigma


def _read_cached(path: Path, key_json: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(mu, sigma) from the file when it exists and its stored key equals ``key_json``, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key_json:
                return z["mu"].astype(np.float64), z["sigma"].astype(np.float64)
    except (OSError, KeyError, ValueError, EOFError):
        pass  # unreadable or foreign file: recompute and overwrite
    return None


def _write_cached(path: Path, mu, sigma, key_json: str) -> None:
    """Write the .npz atomically (a temporary file, then a rename); a failure only warns."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, mu=mu, sigma=sigma, key=np.array(key_json))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
    except OSError as e:  # stacklevel 3: the caller of reference_stats
        warnings.warn(f"could not write the FID reference cache {path}: {e}", stacklevel=3)
