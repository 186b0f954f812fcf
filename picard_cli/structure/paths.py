"""``picard score PRED TARGET``: which predicted files go with which native, then one batched scoring
call per native. PRED and TARGET may each be a file or a directory:

* file vs file: one pair;
* directory vs file: every structure file under the directory (recursively) against the file;
* anything vs directory of natives ``<ID>.pdb``: a prediction goes with native ID when its job (ColabFold
  naming ``<job>_unrelaxed_..._seed_NNN.rR.pdb``, else the file stem) is ID or ID's parent target
  (T1157s1 for T1157s1-D2), or starts with one of them followed by ``_`` or ``.``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import PicardError
from .colabfold import parent_id, parse_name
from .io import SUFFIXES, read_ca, structure_files


def _files(p: Path) -> list[Path]:
    return sorted((f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES), key=_natural)


def _natural(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p))]


def _key(p: Path) -> str:
    got = parse_name(p.name)
    return got[0] if got else p.stem


def _matches(key: str, target: str) -> bool:
    for base in dict.fromkeys((target, parent_id(target))):
        if key == base or key.startswith(base + "_") or key.startswith(base + "."):
            return True
    return False


def group(pred: str | Path, target: str | Path) -> list[tuple[Path, list[Path]]]:
    """(native file, prediction files) pairs; one-line PicardError when nothing matches."""
    pp, tp = Path(pred).expanduser(), Path(target).expanduser()
    for p in (pp, tp):
        if not p.exists():
            raise PicardError(f"not found: {p}")
    preds = _files(pp) if pp.is_dir() else [pp]
    if not preds:
        raise PicardError(f"{pp}: no structure files ({', '.join(SUFFIXES)})")
    if tp.is_file():
        return [(tp, preds)]
    natives = structure_files(tp)
    if not natives:
        raise PicardError(f"{tp}: no native structure files ({', '.join(SUFFIXES)})")
    out = []
    for nat in natives:
        mine = [p for p in preds if _matches(_key(p), nat.stem)]
        if mine:
            out.append((nat, mine))
    if not out:
        raise PicardError(
            f"no prediction in {pp} matches a native in {tp} (a prediction's job or file name must "
            f"be a native's ID or its parent target, e.g. {natives[0].stem} or {parent_id(natives[0].stem)})"
        )
    return out


def score_paths(
    pred, target, *, pair_by: str = "number", chain: str | None = None, device: str = "cpu", dtype: str = "float32"
) -> list[dict]:
    """One row per (prediction, native): RMSD (Å), GDT_TS, GDT_HA, TM-score (fractions, as TMscore
    prints them), residue counts and the pairing used."""
    from .scoring import score_models

    rows = []
    for nat_path, preds in group(pred, target):
        native = read_ca(nat_path)
        models = [read_ca(p, chain) for p in preds]
        _check_pairs(native, models, pair_by)
        out = score_models(native, models, pair_by=pair_by, device=device, dtype=dtype)
        for i, p in enumerate(preds):
            rows.append(
                {
                    "model": str(p),
                    "native": str(nat_path),
                    "length": int(out["length"][i]),
                    "n_common": int(out["n_common"][i]),
                    "rmsd": float(out["rmsd"][i]),
                    "gdt_ts": float(out["gdt_ts"][i]),
                    "gdt_ha": float(out["gdt_ha"][i]),
                    "tm": float(out["tm"][i]),
                    "pairing": str(out["pairing"][i]),
                    "resname_mismatch": int(out["resname_mismatch"][i]),
                }
            )
    return rows


def _check_pairs(native, models, pair_by: str) -> None:
    """Before scoring: every model shares residues with the native under ``pair_by`` (else its RMSD would
    be nan and its GDT 0); one line naming both numberings and the pairings that would fit."""
    from .scoring import pair

    seen: set = set()
    for m in models:
        sig = (m.resnum.tobytes(), tuple(m.icode.tolist()))
        if sig in seen:
            continue
        seen.add(sig)
        rows, _, how = pair(native, m, pair_by)
        if not len(rows):
            raise PicardError(
                f"{m.path}: no residue pairs with the native {native.path} by {how} (model residues "
                f"{_span(m)}, native {_span(native)}); renumbered models need --pair-by order "
                f"(i-th residue to i-th) or --pair-by auto"
            )


def _span(chain) -> str:
    return f"{int(chain.resnum.min())}..{int(chain.resnum.max())}" if len(chain) else "none"
