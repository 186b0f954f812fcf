"""ColabFold: the ``colabfold_batch`` command line, checks of the user's install (binary, weights,
inputs) with one-line errors, and the per-recycle file naming it writes (spec:
ddpm-fid-alphafold §3.1; read from sokrypton/ColabFold ``colabfold/batch.py``).

``--save-recycles`` writes one PDB per recycle r = 0..num_recycle (r0 = the first pass) named
``{job}_unrelaxed_{model_type}_{model_name}_seed_{seed:03d}.r{r}.pdb``; after ranking ColabFold
renames a model's files to ``{job}_unrelaxed_rank_{k:03d}_{model_type}_{model_name}_seed_{seed:03d}.r{r}.pdb``.
Both forms are read. The job name is the input file's stem (a3m / fasta in a directory).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from ..errors import DataError, PicardError

MODEL_TYPES = (
    "alphafold2_multimer_v3",
    "alphafold2_multimer_v2",
    "alphafold2_multimer_v1",
    "alphafold2_ptm",
    "alphafold2",
)
MSA_MODES = ("mmseqs2_uniref_env", "mmseqs2_uniref", "single_sequence")
INPUT_SUFFIXES = (".a3m", ".fasta", ".faa")  # what colabfold_batch reads from an input directory
# model-type -> (model name suffix in the weight files and tags, ColabFold's "download finished" marker)
_WEIGHTS = {
    "alphafold2_multimer_v3": ("_multimer_v3", "download_complexes_multimer_v3_finished.txt"),
    "alphafold2_multimer_v2": ("_multimer_v2", "download_complexes_multimer_v2_finished.txt"),
    "alphafold2_multimer_v1": ("_multimer", "download_complexes_multimer_v1_finished.txt"),
    "alphafold2_ptm": ("_ptm", "download_finished.txt"),
    "alphafold2": ("", "download_finished.txt"),
}
RECYCLE_RE = re.compile(
    r"^(?P<job>.+?)_unrelaxed_(?:rank_\d+_)?(?P<tag>.+?)_seed_(?P<seed>\d+)\.r(?P<r>\d+)\.(?:pdb|cif)$"
)
MODEL_RE = re.compile(r"model_(\d+)")
INSTALL_HINT = (
    "install ColabFold (pip install colabfold with its alphafold extra and a CUDA jax, or localcolabfold) "
    "or set colabfold_bin=/path/to/colabfold_batch; to score predictions already on disk use "
    "--source predictions --predictions-dir DIR; offline demo: --source synthetic"
)


@dataclass(frozen=True)
class RecycleFile:
    job: str
    model: int
    seed: int
    recycle: int
    path: Path


def model_name(model_type: str, i: int) -> str:
    return f"model_{i}{_WEIGHTS[model_type][0]}"


def recycle_filename(job: str, model_type: str, model: int, seed: int, recycle: int) -> str:
    """The name ``--save-recycles`` gives recycle ``recycle`` of model ``model``, seed ``seed``."""
    return f"{job}_unrelaxed_{model_type}_{model_name(model_type, model)}_seed_{seed:03d}.r{recycle}.pdb"


def parse_name(name: str) -> tuple[str, int, int, int] | None:
    """(job, model, seed, recycle) of a per-recycle file name, or None for any other file."""
    m = RECYCLE_RE.match(name)
    if not m:
        return None
    mm = MODEL_RE.search(m["tag"])
    return m["job"], int(mm.group(1)) if mm else 1, int(m["seed"]), int(m["r"])


def scan(folder: str | Path) -> dict[str, list[RecycleFile]]:
    """Per-recycle files under ``folder`` (recursively), grouped by job. One-line error when none."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"predictions directory not found: {root}")
    out: dict[str, dict[tuple, RecycleFile]] = {}
    for p in sorted(root.rglob("*.r*.*")):
        got = parse_name(p.name)
        if got is None or not p.is_file():
            continue
        job, model, seed, r = got
        # a ranked and an unranked copy of the same structure: keep one
        out.setdefault(job, {}).setdefault((model, seed, r), RecycleFile(job, model, seed, r, p))
    if not out:
        raise DataError(
            f"{root}: no per-recycle structures named like ColabFold's --save-recycles output "
            "(<job>_unrelaxed_<model type>_model_<i>_..._seed_<NNN>.r<recycle>.pdb)"
        )
    return {job: sorted(files.values(), key=lambda f: (f.recycle, f.model, f.seed)) for job, files in out.items()}


def parent_id(target: str) -> str:
    """CASP domain ID -> its target / subunit ID (T1157s1-D2 -> T1157s1)."""
    return re.sub(r"-D\d+$", "", target)


def job_for(target: str, jobs) -> str | None:
    """The prediction job of a CASP domain: one named like the domain, else its parent target."""
    for cand in (target, parent_id(target)):
        if cand in jobs:
            return cand
    return None


def default_data_dir() -> Path:
    """ColabFold's default ``--data`` folder (appdirs user cache: $XDG_CACHE_HOME/colabfold)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "colabfold"


def find_binary(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise PicardError(f"ColabFold not found: {name!r} is not an executable on PATH; {INSTALL_HINT}")
    return exe


def check_weights(model_type: str, num_models: int, data_dir: Path) -> None:
    """One line naming the first missing weight file (colabfold_batch would otherwise try to download
    several GB, which fails offline)."""
    suffix, marker = _WEIGHTS[model_type]
    params = data_dir / "params"
    for i in range(1, num_models + 1):
        f = params / f"params_model_{i}{suffix}.npz"
        if not f.is_file():
            raise PicardError(
                f"ColabFold weights missing: {f} (fetch them once with `python -m colabfold.download` "
                f"where storage.googleapis.com is reachable, or set weights_dir=DIR holding params/)"
            )
    if not (params / marker).is_file():
        raise PicardError(
            f"ColabFold's marker {params / marker} is missing: colabfold_batch would download the "
            "weights again; create it (touch) if the .npz files above are complete"
        )


def command(cfg, input_dir: str | Path, out_dir: str | Path, exe: str = "colabfold_batch") -> list[str]:
    """The argument list (never a shell string) for one ``colabfold_batch`` call (spec §3.1). ``cfg``: the
    run's config (an ``AlphafoldRecycleConfig``; its resolved dict is read by the same field names)."""
    c = SimpleNamespace(**cfg) if isinstance(cfg, dict) else cfg
    argv = [
        exe,
        str(input_dir),
        str(out_dir),
        "--model-type",
        c.model_type,
        "--num-recycle",
        str(c.num_recycle),
        "--recycle-early-stop-tolerance",
        f"{c.recycle_early_stop_tolerance:g}",
        "--num-models",
        str(c.num_models),
        "--num-seeds",
        str(c.num_seeds),
        "--random-seed",
        str(c.seed),
        "--msa-mode",
        c.msa_mode,
        "--save-recycles",
    ]
    if c.weights_dir:
        argv += ["--data", str(Path(c.weights_dir).expanduser())]
    if c.templates:  # only with a custom folder (experiments/alphafold_recycle.check_templates)
        argv += ["--templates", "--custom-template-path", str(Path(c.custom_template_path).expanduser())]
    return argv + [str(a) for a in c.colabfold_args or []]


def link_inputs(targets: list[str], inputs: Path, dest: Path) -> dict[str, str]:
    """Link the input file (a3m preferred, then fasta / faa) of each target's job into ``dest``; job per
    target (the domain ID or its parent). One line listing what is missing."""
    if not inputs.is_dir():
        raise DataError(f"ColabFold inputs directory not found: {inputs}")
    have = {}
    for p in sorted(inputs.iterdir()):
        if p.suffix.lower() in INPUT_SUFFIXES and p.is_file():
            prev = have.get(p.stem)
            if prev is None or INPUT_SUFFIXES.index(p.suffix.lower()) < INPUT_SUFFIXES.index(prev.suffix.lower()):
                have[p.stem] = p
    jobs, missing = {}, []
    for t in targets:
        job = job_for(t, have)
        if job is None:
            missing.append(t)
        else:
            jobs[t] = job
    if missing:
        raise DataError(
            f"{inputs}: no .a3m / .fasta input for {len(missing)} target(s) "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); name them <target>.a3m "
            f"or <parent target>.a3m (e.g. {parent_id(missing[0])}.a3m)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    for job in set(jobs.values()):
        src = have[job]
        link = dest / src.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(src.resolve())
    return jobs


def write_fasta_inputs(targets: list[str], sequences: dict[str, str], dest: Path) -> dict[str, str]:
    """One ``<target>.fasta`` per domain from the observed-residue sequences (targets.fasta): a
    departure from CASP practice (full sequences), recorded as a caveat by the caller."""
    dest.mkdir(parents=True, exist_ok=True)
    missing = [t for t in targets if t not in sequences]
    if missing:
        raise DataError(f"targets.fasta has no sequence for {', '.join(missing[:5])}")
    for t in targets:
        (dest / f"{t}.fasta").write_text(f">{t}\n{sequences[t]}\n")
    return {t: t for t in targets}


def read_fasta(path: Path) -> dict[str, str]:
    out, name = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith(">"):
            name = line[1:].split()[0]
            out[name] = ""
        elif name and line:
            out[name] += line
    return out
