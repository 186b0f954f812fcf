"""Fréchet Inception Distance (FID) with honest provenance.

Spec: ddpm-fid-alphafold §2 (FID). In short:

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

* The statistics and the distance are torchmetrics' ``FrechetInceptionDistance``, with the identified
  network passed as its ``feature=`` module; the cached real statistics are loaded into its real side.

Heavy libraries (torch, torchmetrics) are imported inside the functions that need them.

Modules, in import order (each imports only those before it):
* :mod:`.provenance`: weight files identified by sha256, and where weights are looked for.
* :mod:`.extractors`: the feature networks and their loading.
* :mod:`.torchmetrics_fid`: the torchmetrics metric over an extractor, and its real side <-> (mu, sigma)
  (imports torch and torchmetrics at the top, so it is imported lazily).
* :mod:`.cache`: the on-disk cache of real-image statistics.
* :mod:`.compute`: :func:`compute_fid`, the record of one FID.

A function is looked up in the module that defines it; patch it there (e.g. ``provenance.fidhelper_weights_path``).
"""

from .cache import CACHE_FORMAT, reference_cache_file, reference_key, reference_stats
from .compute import compute_fid
from .extractors import INCEPTION_SIZE, Extractor, ProgressFn, extractor, random_extractor
from .provenance import (
    ENV_WEIGHTS,
    FIDHELPER_FILENAME,
    FIDHELPER_PACKAGE,
    KNOWN_WEIGHTS,
    NO_WEIGHTS_NOTE,
    RANDOM_NOTE,
    TORCH_FIDELITY_FILENAME,
    UNVERIFIED_NOTE,
    Weights,
    fidhelper_weights_path,
    file_sha256,
    identify_weights,
    resolve_weights,
    torch_fidelity_cache_path,
)

__all__ = [
    "ENV_WEIGHTS",
    "TORCH_FIDELITY_FILENAME",
    "FIDHELPER_PACKAGE",
    "FIDHELPER_FILENAME",
    "NO_WEIGHTS_NOTE",
    "UNVERIFIED_NOTE",
    "RANDOM_NOTE",
    "INCEPTION_SIZE",
    "CACHE_FORMAT",
    "ProgressFn",
    "KNOWN_WEIGHTS",
    "Weights",
    "file_sha256",
    "identify_weights",
    "torch_fidelity_cache_path",
    "fidhelper_weights_path",
    "resolve_weights",
    "Extractor",
    "extractor",
    "random_extractor",
    "reference_key",
    "reference_cache_file",
    "reference_stats",
    "compute_fid",
]
