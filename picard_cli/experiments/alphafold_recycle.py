"""AlphaFold-Multimer recycling on CASP15 targets: the paper's Figures 3-5 (../shared/paper/paper.md §4
"AlphaFold": 0-20 recycles, 29 monomer targets, GDT and RMSD vs recycles; spec
../shared/specs/ddpm-fid-alphafold.md §3 for ColabFold and the targets, §4 for the metrics).

One run = the whole study for one source of structures:
* ``colabfold``: runs ``colabfold_batch`` (the user's install, weights and MSAs; spec §3.1) with
  ``--model-type alphafold2_multimer_v3 --num-recycle 20 --recycle-early-stop-tolerance 0
  --num-models 5 --num-seeds 5 --save-recycles`` (all config fields), then scores its output;
* ``predictions``: a directory of per-recycle files in ColabFold's naming, already computed;
* ``synthetic``: SYNTHETIC trajectories made by perturbing the real natives (``structure/synthetic.py``),
  for offline tests and the demo; every output made from them says so.

Every structure of a target (recycles x models x seeds) is scored against the native in one batch
(``structure/scoring.py``: C-alpha RMSD, GDT_TS, GDT_HA, TM-score; residues paired by number).
Targets: every CASP15 domain file in the data root by default (45 domains of 30 target / subunit
IDs); the paper's exact 29 "monomers" are unknown (spec §3.3), ``targets=`` takes a list file.
A domain is scored against the prediction job named like it, else its parent target (T1157s1-D2 ->
T1157s1), by residue number, so a full-chain prediction is scored per domain as CASP does.

Convergence (Figs. 4-5 and the non-convergence table): per target, the mean over models x seeds of
each recycle; the target "did not converge" when its last recycle is worse than its best earlier
recycle by more than ``tol_gdt`` GDT points (x100) / ``tol_rmsd`` Å.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path

from ..metrics.curves import convergence
from ..metrics.structure_names import HIGHER_BETTER, ROW_NAMES, SCALE
from ..recipes import as_config, fld, to_dict
from ..experiment import Experiment, Outcome, TableSpec
from ..registry import register

SOURCES = ("colabfold", "predictions", "synthetic")
METRICS = ("gdt_ts", "gdt_ha", "rmsd", "tm")
TARGETS_CAVEAT = (
    "targets: the paper's 29 CASP15 'monomer' targets are not listed anywhere; by default every "
    "public CASP15 domain file in the data root is used (45 domains of 30 target/subunit IDs, "
    "spec 3.3); recipes/alphafold-recycle/targets-monomers.txt holds the 10 domains of the 9 "
    "assessor-classified monomers"
)


@dataclass
class AlphafoldRecycleConfig:
    source: str = fld(
        "colabfold",
        "where structures come from: colabfold (run it), predictions (a directory of "
        "per-recycle PDBs), synthetic (perturbed natives; offline demo, labelled SYNTHETIC)",
        choices=SOURCES,
    )
    targets: str = fld(
        "",
        "target list: a file (one CASP domain ID per line, # comments) or a comma list; "
        "empty = every <targets_dir>/*.pdb",
    )
    targets_dir: str = fld("", "native structures <ID>.pdb (empty = <data root>/casp15/targets)")
    model_type: str = fld(
        "alphafold2_multimer_v3",
        "ColabFold --model-type (the paper: AlphaFold-Multimer)",
        choices=(
            "alphafold2_multimer_v3",
            "alphafold2_multimer_v2",
            "alphafold2_multimer_v1",
            "alphafold2_ptm",
            "alphafold2",
        ),
    )
    num_recycle: int = fld(20, "--num-recycle: recycles 0..N are scored (r0 = the first pass)", range=(0, 200))
    recycle_early_stop_tolerance: float = fld(
        0.0,
        "--recycle-early-stop-tolerance (0: never stop early; ColabFold's multimer default 0.5 would)",
        range=(0.0, 100.0),
    )
    num_models: int = fld(5, "--num-models (predictions / synthetic: models 1..N are used)", range=(1, 5))
    num_seeds: int = fld(5, "--num-seeds (predictions: the N smallest seeds found are used)", range=(1, 1000))
    msa_mode: str = fld(
        "mmseqs2_uniref_env",
        "--msa-mode when inputs are sequences (a3m inputs bypass the MSA server)",
        choices=("mmseqs2_uniref_env", "mmseqs2_uniref", "single_sequence"),
    )
    inputs: str = fld(
        "",
        "colabfold: directory of <target>.a3m / .fasta inputs (or of the parent target, "
        "e.g. T1157s1.a3m); empty = FASTA of the observed residues from casp15/targets.fasta",
    )
    colabfold_bin: str = fld("colabfold_batch", "colabfold: the colabfold_batch executable (name on PATH or path)")
    weights_dir: str = fld("", "colabfold: --data folder holding params/ (empty = ColabFold's default cache)")
    colabfold_args: list[str] = fld([], "colabfold: extra arguments appended as they are (a list, no shell)")
    predictions_dir: str = fld("", "predictions: folder searched recursively for <job>_unrelaxed_..._seed_NNN.rR.pdb")
    pair_by: str = fld(
        "auto",
        "residue pairing: number (CASP / TMscore), order (i-th to i-th), auto (number, "
        "unless a model built from the observed sequence is numbered 1..L)",
        choices=("auto", "number", "order"),
    )
    synth_wander: float = fld(
        0.3, "synthetic: fraction of targets whose trajectories wander off again", range=(0.0, 1.0)
    )
    synth_hinge: float = fld(0.3, "synthetic: fraction of trajectories with a closing hinge motion", range=(0.0, 1.0))
    synth_write_pdbs: bool = fld(
        True,
        "synthetic: write the structures as PDB files in ColabFold's naming and "
        "score them through the predictions reader (else score in memory)",
    )
    tol_gdt: float = fld(
        0.0,
        "not converged: last recycle worse than the best earlier one by more than this (GDT points x100)",
        range=(0.0, 100.0),
    )
    tol_rmsd: float = fld(
        0.0, "not converged: last recycle's RMSD above the best earlier one by more than this (Å)", range=(0.0, 100.0)
    )
    dtype: str = fld(
        "float32",
        "scoring precision of the superposition search (RMSD is always float64)",
        choices=("float32", "float64"),
    )
    templates: bool = fld(
        False,
        "colabfold: use structural templates (the paper: full databases with templates, "
        "max template date 2022-01-01); only from custom_template_path, because ColabFold's server "
        "templates have no date cutoff and would include the CASP15 structures",
        added=True,
    )
    custom_template_path: str = fld(
        "",
        "colabfold: folder of template mmCIF files (--custom-template-path), all released before max_template_date",
        added=True,
    )
    max_template_date: str = fld(
        "",
        "colabfold: the release-date cutoff (YYYY-MM-DD) the custom templates respect "
        "(recorded; ColabFold cannot enforce one)",
        added=True,
    )
    seed: int = fld(
        0, "run seed: ColabFold --random-seed (seeds seed..seed+num_seeds-1); synthetic noise", per_run=True
    )


def recycle_cols(last: int) -> list[int]:
    return sorted({r for r in (0, 1, 3, 10, last) if r <= last})


class AlphafoldRecycle(Experiment):
    name = "alphafold-recycle"
    config_cls = AlphafoldRecycleConfig
    default_recipe = "figs3-5.yaml"
    batchable = False
    table = TableSpec(
        title="Figs. 3-5: AlphaFold-Multimer recycling on CASP15 targets (mean over targets of the mean over "
        "models x seeds)",
        rows=tuple(ROW_NAMES[m] for m in METRICS),
        cols=tuple(f"recycle {r}" for r in recycle_cols(20)),
        paper={},  # the paper gives Figures 3-5 only as plots
        metrics={"last": "gdt_ts_last"},
        default_protocol="last",
        metric_scale=1.0,
        digits=2,
        show_params=False,
    )

    @staticmethod
    def tag(cfg) -> str:
        # tag / row / col read a record's stored config DICT by key (the report): fields the study always had.
        return {"colabfold": "", "predictions": " [predictions]", "synthetic": " [SYNTHETIC]"}[cfg["source"]]

    def row(self, cfg):
        return ROW_NAMES["gdt_ts"] + self.tag(cfg)

    @staticmethod
    def col(cfg):
        return f"recycle {cfg['num_recycle']}"

    @staticmethod
    def match(cell, wanted, given):
        return 0 if cell.source == wanted.source else 1

    def table_values(self, record: dict, protocol: str) -> list[dict]:
        """One entry per metric and shown recycle: the mean over targets (std over targets)."""
        ex = record.get("extra") or {}
        curve = ex.get("curve") or {}
        out = []
        for m in METRICS:
            cv = curve.get(m)
            if not cv:
                continue
            for r in recycle_cols(len(cv["mean"]) - 1):
                out.append(
                    {
                        "row": ROW_NAMES[m] + self.tag(record["config"]),
                        "col": f"recycle {r}",
                        "value": None if cv["mean"][r] is None else cv["mean"][r] * SCALE[m],
                        "std_within": None if cv["std"][r] is None else cv["std"][r] * SCALE[m],
                        "std_label": "over targets",
                    }
                )
        return out

    def run_group(self, configs, ctx):
        return [run_one(c, ctx) for c in configs]


# ------------------------------------------------------------------------------------------- targets
def resolve_targets(c, data_root: Path) -> list[tuple[str, Path]]:
    """(domain ID, native file) of the configured targets (``c``: an AlphafoldRecycleConfig or its dict);
    one-line DataError when anything is missing."""
    from ..errors import DataError
    from ..runner import REPO
    from ..structure import structure_files

    c = as_config(AlphafoldRecycleConfig, c)
    tdir = Path(c.targets_dir).expanduser() if c.targets_dir else Path(data_root) / "casp15" / "targets"
    if not tdir.is_dir():
        raise DataError(
            f"CASP15 targets not found: {tdir} (set PICARD_DATA or --data-root to the folder holding "
            "casp15/targets/, or targets_dir=DIR)"
        )
    have = {p.stem: p for p in structure_files(tdir)}
    spec = c.targets.strip()
    if not spec:
        ids = sorted(have)
    else:
        path = next((p for p in (Path(spec).expanduser(), REPO / spec) if p.is_file()), None)
        if path is not None:
            lines = (ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines())
            ids = [ln for ln in lines if ln]
        elif "/" in spec or spec.endswith(".txt"):
            raise DataError(f"targets file not found: {spec}")
        else:
            ids = [t.strip() for t in spec.split(",") if t.strip()]
    missing = [t for t in ids if t not in have]
    if missing:
        raise DataError(
            f"{tdir}: no native for {len(missing)} target(s): {', '.join(missing[:6])}"
            f"{', ...' if len(missing) > 6 else ''}"
        )
    if not ids:
        raise DataError(f"{tdir}: no targets (*.pdb / *.cif)")
    return [(t, have[t]) for t in ids]


# ------------------------------------------------------------------------------------------- run
def run_one(c, ctx) -> dict:
    """The whole study for one source of structures (an AlphafoldRecycleConfig or its dict): make or
    read every recycle of every model x seed, score each against its native, then the curves and
    convergence of Figs. 3-5 (paper §4 "AlphaFold")."""
    from ..structure import read_ca
    from ..structure import synthetic as synth

    c = as_config(AlphafoldRecycleConfig, c)
    t_start = time.perf_counter()
    targets = resolve_targets(c, ctx.data_root)
    natives = {t: read_ca(p) for t, p in targets}
    work = _workdir(ctx, c)
    caveats = [TARGETS_CAVEAT]
    extra: dict = {"source": c.source, "synthetic": c.source == "synthetic", "workdir": str(work)}
    if c.source == "synthetic":
        extra["label"] = synth.LABEL
        caveats.insert(0, synth.LABEL + ": a demo of the pipeline, says nothing about AlphaFold")

    # 1. structures: (target -> list of (model, seed, recycle, CAChain)), made or predicted, then read
    pred_dir, structures, jobs = _make_structures(c, targets, natives, work, ctx.data_root, extra, caveats)
    t_read = time.perf_counter()
    if not structures:
        structures, jobs = _read_structures(c, pred_dir, targets)
    extra["missing_targets"] = [t for t, _ in targets if t not in structures]
    if extra["missing_targets"]:
        caveats.append(
            f"{len(extra['missing_targets'])} of {len(targets)} target(s) had no predictions and are "
            f"left out: {', '.join(extra['missing_targets'][:8])}"
        )

    # 2. scoring: all structures of a target in one batch (spec §4: RMSD, GDT_TS, GDT_HA, TM-score)
    t_score = time.perf_counter()
    per_target, rows, n_struct = _score(c, targets, natives, structures, jobs, ctx)
    t_end = time.perf_counter()
    csv_path = work / "scores.csv"
    _write_csv(csv_path, rows)
    caveats += _scoring_caveats(c, per_target)

    # 3. the curves over targets (Fig. 3) and the targets that did not converge (Figs. 4-5)
    curve = {m: _curve([per_target[t][m]["mean"] for t in per_target]) for m in METRICS}
    notconv = {m: sorted(t for t, v in per_target.items() if not v[m]["converged"]) for m in ("gdt_ts", "rmsd")}
    metrics = _study_metrics(c, curve, notconv, len(per_target), n_struct, t_end - t_score)
    extra |= {
        "targets": per_target,
        "curve": curve,
        "not_converged": notconv,
        "caveats": caveats,
        "scores_csv": str(csv_path),
        "n_recycles": c.num_recycle + 1,
        "timing_s": {
            "generate_or_predict": round(t_read - t_start, 2),
            "read": round(t_score - t_read, 2),
            "score": round(t_end - t_score, 2),
        },
    }
    return Outcome("ok", metrics, extra=extra)


def _make_structures(
    c: AlphafoldRecycleConfig, targets: list, natives: dict, work: Path, data_root, extra: dict, caveats: list
) -> tuple[Path, dict, dict]:
    """(the folder of per-recycle files, structures held in memory, their jobs) of the configured source:
    SYNTHETIC trajectories (written as ColabFold-named files, or kept in memory), a folder of
    predictions, or a colabfold_batch run."""
    from ..errors import DataError

    if c.source == "synthetic":
        return _synthetic_structures(c, targets, natives, work, extra)
    if c.source == "predictions":
        if not c.predictions_dir:
            raise DataError(
                "source=predictions needs predictions_dir=DIR (a folder of ColabFold --save-recycles output)"
            )
        return Path(c.predictions_dir).expanduser(), {}, {}
    pred_dir, argv, info = run_colabfold(c, [t for t, _ in targets], work, data_root)
    extra["colabfold"] = {"argv": argv, **info}
    caveats += info.get("caveats", [])
    return pred_dir, {}, {}


def _synthetic_structures(
    c: AlphafoldRecycleConfig, targets: list, natives: dict, work: Path, extra: dict
) -> tuple[Path, dict, dict]:
    """SYNTHETIC perturbed-native trajectories, recycles 0..num_recycle per model x seed
    (structure/synthetic.py); every output made from them says so."""
    from ..structure import colabfold, write_ca_pdb
    from ..structure import synthetic as synth

    structures: dict[str, list] = {}
    wander = synth.wandering_targets(len(targets), c.synth_wander, c.seed)
    extra["wandering_targets"] = [t for (t, _), w in zip(targets, wander) if w]
    pred_dir = work / "predictions"
    for k, (t, _) in enumerate(targets):
        nat = natives[t]
        for m in range(1, c.num_models + 1):
            for s in range(c.seed, c.seed + c.num_seeds):
                X = synth.trajectory(nat.coords, c.num_recycle, c.seed, k, m, s, bool(wander[k]), c.synth_hinge)
                for r in range(c.num_recycle + 1):
                    if c.synth_write_pdbs:
                        name = colabfold.recycle_filename(t, c.model_type, m, s, r)
                        write_ca_pdb(
                            pred_dir / t / name,
                            nat,
                            X[r],
                            chain_id="A",
                            remarks=[synth.LABEL, f"target {t} model {m} seed {s} recycle {r}"],
                        )
                    else:
                        structures.setdefault(t, []).append((m, s, r, nat.with_coords(X[r])))
    jobs = {} if c.synth_write_pdbs else {t: t for t, _ in targets}
    return pred_dir, structures, jobs


def _read_structures(c: AlphafoldRecycleConfig, pred_dir: Path, targets: list) -> tuple[dict, dict]:
    """The per-recycle files of each target's job (named like the domain or its parent target)."""
    from ..errors import DataError
    from ..structure import colabfold, read_ca

    structures: dict[str, list] = {}
    jobs: dict[str, str] = {}
    index = colabfold.scan(pred_dir)
    for t, _ in targets:
        job = colabfold.job_for(t, index)
        if job is None:
            continue
        files = _select(index[job], c)
        if files:
            jobs[t] = job
            structures[t] = [(f.model, f.seed, f.recycle, read_ca(f.path)) for f in files]
    if not structures:
        raise DataError(
            f"{pred_dir}: no predictions for any of the {len(targets)} target(s) "
            f"(jobs found: {', '.join(sorted(index)[:6])}{', ...' if len(index) > 6 else ''}; "
            "a job must be named like the domain or its parent target)"
        )
    return structures, jobs


def _score(
    c: AlphafoldRecycleConfig, targets: list, natives: dict, structures: dict, jobs: dict, ctx
) -> tuple[dict, list, int]:
    """(per-target summaries, one CSV row per structure, structures scored); all structures of a
    target are scored against its native in one batch (structure/scoring.py)."""
    from ..structure import score_models

    per_target, rows, n_struct = {}, [], 0
    for t, _ in targets:
        if t not in structures:
            continue
        items = structures[t]
        out = score_models(natives[t], [x[3] for x in items], pair_by=c.pair_by, device=ctx.device, dtype=c.dtype)
        n_struct += len(items)
        per_target[t] = _summarise(t, natives[t], items, out, c, jobs.get(t, t))
        for i, (m, s, r, ch) in enumerate(items):
            rows.append(
                {
                    "target": t,
                    "job": jobs.get(t, t),
                    "model": m,
                    "seed": s,
                    "recycle": r,
                    **{k: _num(out[k][i]) for k in ("rmsd", "gdt_ts", "gdt_ha", "tm", "n_common", "length")},
                    "pairing": out["pairing"][i],
                    "file": ch.path,
                }
            )
        ctx.on_epoch(len(per_target), len(structures), t)
    return per_target, rows, n_struct


def _scoring_caveats(c: AlphafoldRecycleConfig, per_target: dict) -> list[str]:
    out = []
    if any(v["pairing"] == "order" for v in per_target.values()):
        out.append(
            "some predictions were paired with the native by residue order (numbered 1..L from the "
            "observed-residue sequence), not by CASP residue number"
        )
    if c.source == "colabfold" and not c.inputs:
        out.append(
            "inputs: sequences of the observed residues only (casp15/targets.fasta; the full CASP15 "
            "sequences are not available offline), one job per domain: departs from CASP practice"
        )
    return out


def _study_metrics(
    c: AlphafoldRecycleConfig, curve: dict, notconv: dict, n_targets: int, n_struct: int, scoring_s: float
) -> dict:
    """The record's metrics: counts, non-converged targets, scoring speed, each metric's mean over
    targets at recycle 0 and at the last recycle."""
    metrics = {
        "n_targets": n_targets,
        "n_structures": n_struct,
        "not_converged_gdt_ts": len(notconv["gdt_ts"]),
        "not_converged_rmsd": len(notconv["rmsd"]),
        "scoring_s": round(scoring_s, 3),
        "structures_per_s": round(n_struct / max(1e-9, scoring_s), 2),
    }
    for m in METRICS:
        for r, tag in ((0, "r0"), (min(c.num_recycle, len(curve[m]["mean"]) - 1), "last")):
            metrics[f"{m}_{tag}"] = curve[m]["mean"][r]
    return metrics


def _workdir(ctx, c: AlphafoldRecycleConfig) -> Path:
    """The run's folder (checkpoints of ColabFold, synthetic PDBs, scores.csv)."""
    import hashlib
    import json
    import tempfile

    if getattr(ctx, "run_dir", None) is not None:
        d = Path(ctx.run_dir)
    elif getattr(ctx, "results_root", None) is not None:
        key = hashlib.sha256(json.dumps(to_dict(c), sort_keys=True).encode()).hexdigest()[:12]
        d = Path(ctx.results_root) / "alphafold-recycle-runs" / key
    else:
        d = Path(tempfile.mkdtemp(prefix="picard-af-"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _select(files: list, c: AlphafoldRecycleConfig) -> list:
    """Models 1..num_models, the num_seeds smallest seeds, recycles 0..num_recycle."""
    seeds = sorted({f.seed for f in files})[: c.num_seeds]
    return [f for f in files if f.model <= c.num_models and f.seed in seeds and f.recycle <= c.num_recycle]


def _num(v):
    v = v.item() if hasattr(v, "item") else v
    return round(v, 5) if isinstance(v, float) else v


def _curve(means: list[list]) -> dict:
    """Mean and std over targets of per-target curves (None where no target has a value)."""
    import numpy as np

    if not means:
        return {"mean": [], "std": []}
    R = max(len(m) for m in means)
    A = np.full((len(means), R), np.nan)
    for i, m in enumerate(means):
        A[i, : len(m)] = [np.nan if v is None else v for v in m]
    out = {"mean": [], "std": [], "n": []}
    for r in range(R):
        col = A[:, r][np.isfinite(A[:, r])]
        out["mean"].append(round(float(col.mean()), 6) if len(col) else None)
        out["std"].append(round(float(col.std()), 6) if len(col) else None)
        out["n"].append(int(len(col)))
    return out


def _summarise(t: str, native, items: list, out: dict, c: AlphafoldRecycleConfig, job: str) -> dict:
    """Per-target curves (mean / std over models x seeds per recycle), the min / max over every
    structure (for min-max normalisation, spec §4.1) and convergence of the mean curve and of each
    (model, seed) trajectory."""
    import numpy as np

    R = max(x[2] for x in items) + 1
    trajs = sorted({(x[0], x[1]) for x in items})
    col = {k: j for j, k in enumerate(trajs)}
    summary = {
        "length": len(native),
        "job": job,
        "n_structures": len(items),
        "trajectories": len(trajs),
        "recycles": R,
        "n_common_min": int(np.min(out["n_common"])),
        "pairing": "order" if "order" in set(out["pairing"].tolist()) else "number",
        "resname_mismatch_max": int(np.max(out["resname_mismatch"])),
    }
    for m in METRICS:
        A = np.full((R, len(trajs)), np.nan)
        for i, (mod, s, r, _) in enumerate(items):
            A[r, col[(mod, s)]] = out[m][i]
        with np.errstate(all="ignore"):
            mean = np.nanmean(A, 1)
            std = np.nanstd(A, 1)

        def rnd(a):
            return [None if not np.isfinite(v) else round(float(v), 6) for v in a]

        hb = HIGHER_BETTER[m]
        tol = c.tol_gdt / 100.0 if m.startswith("gdt") else c.tol_rmsd if m == "rmsd" else 0.0
        conv = convergence(rnd(mean), hb, tol)  # on the stored (rounded) curve, as the report recomputes it
        per_traj = [convergence(A[:, j], hb, tol)["converged"] for j in range(len(trajs))]
        summary[m] = {
            "mean": rnd(mean),
            "std": rnd(std),
            "min": _finite(np.nanmin(A)),
            "max": _finite(np.nanmax(A)),
            **conv,
            "trajectories_not_converged": int(sum(not v for v in per_traj)),
        }
    return summary


def _finite(v):
    return round(float(v), 6) if v is not None and math.isfinite(float(v)) else None


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        if rows:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


# ------------------------------------------------------------------------------------------- colabfold
TEMPLATE_CAVEAT = (
    "MSAs from MMseqs2 (ColabFold), no templates; the paper used AlphaFold's full databases with "
    "templates (max template date 2022-01-01)"
)


def check_templates(c) -> None:
    """Templates only with a date cutoff: a custom folder and its cutoff date (ColabFold's own template search
    has no date cutoff, so the CASP15 natives themselves could serve as templates). ``c``: an
    AlphafoldRecycleConfig or its dict."""
    import datetime

    from ..errors import RecipeError

    c = as_config(AlphafoldRecycleConfig, c)
    asked = c.templates or any(a == "--templates" for a in c.colabfold_args)
    if not asked:
        return
    if not c.templates or not c.custom_template_path:
        raise RecipeError(
            "templates need custom_template_path=DIR (templates released before a cutoff) and "
            "max_template_date=YYYY-MM-DD: ColabFold's server templates have no date cutoff and would "
            "include the CASP15 structures"
        )
    try:
        datetime.date.fromisoformat(c.max_template_date)
    except ValueError:
        raise RecipeError(
            f"max_template_date={c.max_template_date!r}: give the cutoff the custom "
            f"templates respect as YYYY-MM-DD (the paper: 2022-01-01)"
        ) from None
    if not Path(c.custom_template_path).expanduser().is_dir():
        raise RecipeError(f"custom_template_path: no folder {c.custom_template_path}")


def run_colabfold(c: AlphafoldRecycleConfig, targets: list[str], work: Path, data_root: Path):
    """Check the install (binary, weights, inputs), run colabfold_batch once for all targets (it skips
    jobs it has finished: a re-run resumes), return (output folder, argv, info)."""
    import subprocess

    from ..errors import DataError, PicardError
    from ..structure import colabfold as cf

    exe = cf.find_binary(c.colabfold_bin)
    data_dir = Path(c.weights_dir).expanduser() if c.weights_dir else cf.default_data_dir()
    cf.check_weights(c.model_type, c.num_models, data_dir)
    inp, out = work / "colabfold_input", work / "colabfold"
    info: dict = {"weights": str(data_dir), "caveats": []}
    if c.inputs:
        info["jobs"] = cf.link_inputs(targets, Path(c.inputs).expanduser(), inp)
    else:
        fasta = Path(data_root) / "casp15" / "targets.fasta"
        if not fasta.is_file():
            raise DataError(f"no inputs= folder and no {fasta} to build FASTA inputs from")
        info["jobs"] = cf.write_fasta_inputs(targets, cf.read_fasta(fasta), inp)
        if c.msa_mode != "single_sequence":
            info["caveats"].append(f"MSAs from the ColabFold server ({c.msa_mode}): needs internet access")
    check_templates(c)
    info["caveats"].append(
        TEMPLATE_CAVEAT
        if not c.templates
        else f"templates from {c.custom_template_path} (released before {c.max_template_date}, "
        f"as the user states; ColabFold cannot check a date)"
    )
    argv = cf.command(c, inp, out, exe)
    log = work / "colabfold.log"
    with log.open("w") as fh:
        res = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if res.returncode != 0:
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:] or ["(no output)"]
        raise PicardError(
            f"colabfold_batch exited with status {res.returncode}: {tail[0].strip()[:200]} (full log: {log})"
        )
    info["log"] = str(log)
    return out, argv, info


register(AlphafoldRecycle())
