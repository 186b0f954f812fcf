"""Protein structure scoring: C-alpha RMSD, GDT_TS / GDT_HA and TM-score of predicted models against a
native, residues paired by number (spec: ddpm-fid-alphafold §4; docs/scoring.md). Parsing goes
through biotite (``io.py``); scoring is batched torch (``scoring/``); ``tmscore.py`` wraps the
external TMscore program used to validate it."""

from .io import CAChain, read_ca, structure_files, write_ca_pdb
from .scoring import CUTOFFS, Search, score_coords, score_models, score_pair, tm_d0

__all__ = [
    "CAChain",
    "read_ca",
    "structure_files",
    "write_ca_pdb",
    "CUTOFFS",
    "Search",
    "score_coords",
    "score_models",
    "score_pair",
    "tm_d0",
]
