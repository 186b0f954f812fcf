"""C-alpha RMSD, GDT_TS / GDT_HA and TM-score of many models against one native, batched in torch
(CPU or GPU). Definitions: spec ddpm-fid-alphafold §4.1; the GDT search: §4.3.

* Residues are paired by residue number (``pair``); the denominator of GDT and TM-score is the
  native's residue count, so residues a model lacks count as misses.
* RMSD: one least-squares (Kabsch/SVD) superposition over all common residues, in float64.
* GDT: P_d = the largest fraction of native residues within d Å under *some* superposition, each
  cutoff with its own; GDT_TS = mean P_{1,2,4,8}, GDT_HA = mean P_{0.5,1,2,4}. Found by seeded
  iterative superposition (§4.3): seeds are contiguous windows of the common residues (all of them,
  half, a quarter, ... down to ``min_window``) slid along the chain; from every seed, one chain of
  superpositions per extension threshold e (Kabsch on the subset, then the subset := residues within
  e Å, until it stops changing or ``max_iter``); every superposition visited updates the best count of
  every cutoff and the best TM-score. The result is a lower bound of the true optimum.
* TM-score (Zhang & Skolnick 2004): max over the same superpositions of
  (1/L) sum 1/(1 + (d_i/d0)^2), d0 = 1.24 (L - 15)^(1/3) - 1.8 (0.5 when L <= 21 or smaller),
  L = native length; the search also extends at d0_search = d0 clipped to [4.5, 8] Å, as the
  TM-score program's search does. Heuristic like the program's own: agreement in ``README "AlphaFold recycling"``.

Batching: all models of a target share the native, so every subset of every model is one row of
(subsets x residues) tensors, and both the sums a superposition needs and the distances it gives are
batched matmuls with per-residue features (``superposition._features``); the rotations come from a
vectorised quaternion solver. A (model, threshold, subset) reached before is not followed again (its
future is known), and after the first extension each (model, threshold) keeps its ``beam`` largest
subsets. Models are searched in order of their RMSD so that neighbours need similar numbers of subsets.

Modules, in import order (each imports only those before it):
* :mod:`.definitions`: cutoffs, TM-score's d0, the :class:`Search` parameters.
* :mod:`.pairing`: residue pairing (:func:`pair`) and the models laid out on the native's rows.
* :mod:`.rotations`: optimal rotations of 3x3 correlation matrices (SVD, Horn's quaternion).
* :mod:`.superposition`: Kabsch RMSD, and superpositions / distances from per-residue feature sums.
* :mod:`.search`: the seeded GDT / TM-score search.
* :mod:`.api`: :func:`score_coords`, :func:`score_models`, :func:`score_pair`.
"""

from .api import score_coords, score_models, score_pair
from .definitions import BIG, CUTOFFS, HA_IDX, TS_IDX, Search, d0_search, tm_d0
from .pairing import pair, stack
from .rotations import quaternion_rotation
from .search import windows
from .superposition import rmsd_batch

__all__ = [
    "CUTOFFS",
    "TS_IDX",
    "HA_IDX",
    "BIG",
    "Search",
    "tm_d0",
    "d0_search",
    "windows",
    "pair",
    "stack",
    "rmsd_batch",
    "quaternion_rotation",
    "score_coords",
    "score_models",
    "score_pair",
]
