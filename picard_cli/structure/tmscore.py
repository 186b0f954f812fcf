"""The external oracle: the ``TMscore`` program (Zhang & Skolnick 2004; Debian package ``tm-align``,
spec: ddpm-fid-alphafold §4.2). It pairs residues by number and normalises by the
SECOND structure, so it is called as ``TMscore MODEL NATIVE``. Used by the tests and the benchmark;
the library's own scorer (``scoring/``) does not need it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ..errors import PicardError

_NUM = r"([-+]?\d+(?:\.\d*)?)"
_PATTERNS = {
    "length": re.compile(r"Structure2:.*?Length=\s*(\d+)"),
    "n_common": re.compile(r"Number of residues in common=\s*(\d+)"),
    "rmsd": re.compile(r"RMSD of\s+the common residues=\s*" + _NUM),
    "tm": re.compile(r"TM-score\s*=\s*" + _NUM),
    "gdt_ts": re.compile(r"GDT-TS-score=\s*" + _NUM),
    "gdt_ha": re.compile(r"GDT-HA-score=\s*" + _NUM),
}


def find() -> str | None:
    """Path of the TMscore binary: $PICARD_TMSCORE, else ``TMscore`` on PATH."""
    exe = os.environ.get("PICARD_TMSCORE") or shutil.which("TMscore")
    return exe if exe and Path(exe).is_file() else None


def parse(text: str) -> dict:
    out = {}
    for key, rx in _PATTERNS.items():
        m = rx.search(text)
        if m is None:
            raise ValueError(f"TMscore output lacks {key!r}: {text.strip().splitlines()[-1] if text.strip() else ''}")
        out[key] = int(m.group(1)) if key in ("length", "n_common") else float(m.group(1))
    for line in text.splitlines():  # per-cutoff fractions: %(d<0.5)=... %(d<8)=...
        if line.startswith(("GDT-TS-score", "GDT-HA-score")):
            for c, v in re.findall(r"%\(d<([\d.]+)\)=\s*" + _NUM, line):
                out[f"p{float(c):g}"] = float(v)
    return out


def tmscore(model: str | Path, native: str | Path, exe: str | None = None, timeout: float = 120) -> dict:
    """{length, n_common, rmsd, tm, gdt_ts, gdt_ha} as TMscore prints them (4 decimals; RMSD 3)."""
    exe = exe or find()
    if exe is None:
        raise PicardError(
            "TMscore not found: install Debian's tm-align package (apt-get install tm-align) or set PICARD_TMSCORE"
        )
    res = subprocess.run([exe, str(model), str(native)], capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise PicardError(f"TMscore {model} {native} failed (exit {res.returncode}): {res.stderr.strip()[:200]}")
    return parse(res.stdout)
