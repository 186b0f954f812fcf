"""What the scores are: the GDT cutoffs, TM-score's distance scale d0, and the parameters of the
superposition search that finds GDT and TM-score (spec: ddpm-fid-alphafold §4.1, §4.3)."""

from __future__ import annotations

from dataclasses import dataclass

CUTOFFS = (0.5, 1.0, 2.0, 4.0, 8.0)  # union of the GDT_HA (0.5, 1, 2, 4) and GDT_TS (1, 2, 4, 8) cutoffs
TS_IDX, HA_IDX = (1, 2, 3, 4), (0, 1, 2, 3)
BIG = 1e12  # squared distance given to residues a model lacks


@dataclass(frozen=True)
class Search:
    """The GDT / TM-score superposition search (spec §4.3); the defaults were tuned against the
    TMscore program on perturbed CASP15 domains (tests/test_structure.py, README "AlphaFold recycling")."""

    min_window: int = 4  # shortest seed window (residues)
    step: float = 0.1  # windows of length l slide by at least ceil(step * l) ...
    seed_cells: int = 25000  # ... and number at most seed_cells / (residues x window lengths) per length
    # extension thresholds e (Å), spec §4.3 step 3: dense near the GDT cutoffs, up to 1.5 x the largest
    extend: tuple = (0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0)
    tm_extend: bool = True  # also extend at d0_search (the TM-score program's threshold)
    max_iter: int = 20  # superpositions per chain after the seed's
    min_subset: int = 3  # a subset smaller than this ends its chain
    beam: int = 8  # after the first extension, keep this many largest subsets per (model, threshold); 0 = all


def tm_d0(length: int) -> float:
    """TM-score's distance scale for a native of ``length`` residues (Zhang & Skolnick 2004)."""
    if length <= 21:
        return 0.5
    return max(0.5, 1.24 * (length - 15) ** (1.0 / 3.0) - 1.8)


def d0_search(length: int) -> float:
    """The TM-score program's extension threshold: d0 clipped to [4.5, 8] Å."""
    return min(8.0, max(4.5, tm_d0(length)))
