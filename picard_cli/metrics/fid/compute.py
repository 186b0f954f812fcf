"""The FID driver: generated vs real images to one JSON-able record (metric, value, provenance). The
value is torchmetrics' ``FrechetInceptionDistance`` over our identified network, its real side loaded
from the (cached) real statistics."""

from __future__ import annotations

import os
from typing import Any

from ...errors import PicardError
from . import extractors
from .cache import _check_key, reference_stats
from .extractors import Extractor, ProgressFn
from .provenance import NO_WEIGHTS_NOTE, Weights


def compute_fid(
    fake_uint8,
    real_uint8,
    *,
    weights: Weights | Extractor | None,
    device="cpu",
    real_key: dict,
    cache_dir: str | os.PathLike | None,
    batch_size: int = 50,
    progress: ProgressFn | None = None,
) -> dict:
    """FID of generated vs real uint8 (N, H, W, 3) images, as a JSON-able record.

    ``weights``: from :func:`resolve_weights`; None gives ``value: None`` and the note
    ``"no Inception weights"`` (nothing is computed). An :class:`Extractor` is used as is (tests).
    ``real_key``: describes the real images, at least ``dataset`` and ``split`` (add ``source``).
    """
    ref = _check_key(real_key)
    record: dict[str, Any] = {
        "metric": None,
        "value": None,
        "n_fake": len(fake_uint8),
        "n_real": len(real_uint8),
        "reference": ref,
        "implementation": None,
        "weights_sha256": None,
        "verified": False,
    }
    if weights is None:
        record["note"] = NO_WEIGHTS_NOTE
        return record
    if isinstance(weights, Extractor):
        ext = weights
    else:  # looked up on its module, where tests patch it
        ext = extractors.extractor(weights, device=device, batch_size=batch_size)
    n_fake, n_real = len(fake_uint8), len(real_uint8)
    if n_fake < 2 or n_real < 2:
        raise PicardError(f"FID needs at least 2 images per set, got {n_fake} generated and {n_real} real")

    value = _fid_value(ext, fake_uint8, real_uint8, ref, cache_dir, progress)
    record.update(
        metric=ext.metric,
        value=value,
        implementation=ext.implementation,
        weights_sha256=ext.weights_sha256,
        verified=bool(ext.verified),
    )
    if ext.note:
        record["note"] = ext.note
    return record


def _fid_value(ext: Extractor, fake_uint8, real_uint8, ref: dict, cache_dir, progress: ProgressFn | None) -> float:
    """torchmetrics' FID: the real side loaded from the (cached or just computed) real statistics, then the
    generated images fed through the metric; progress counts real then generated images."""
    from . import torchmetrics_fid

    n_real, total = len(real_uint8), len(real_uint8) + len(fake_uint8)

    def real_progress(done, _n):
        if progress is not None:
            progress(done, total)

    def fake_progress(done, _n):
        if progress is not None:
            progress(n_real + done, total)

    mu_r, s_r = reference_stats(ext, real_uint8, ref, cache_dir, progress=real_progress)
    metric = torchmetrics_fid.new_metric(ext)
    torchmetrics_fid.load_real_stats(metric, mu_r, s_r, n_real)  # cached or just computed: one path
    torchmetrics_fid.update(metric, fake_uint8, real=False, progress=fake_progress)
    return float(metric.compute())
