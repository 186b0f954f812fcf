"""Append-only JSON Lines results store: ``<root>/<experiment>.jsonl``.

One JSON object per run. Appends are atomic at the line level: all records of a
batch are written with a single ``write`` on an ``O_APPEND`` descriptor under an
exclusive ``flock`` and fsynced, so a crash leaves at most one torn last line.
A torn last line is reported with a warning and cut off before the next append,
so it is re-run rather than duplicated. A sweep resumes by skipping the run keys
already present.

One run, one record: drivers claim run keys before training (``picard_cli/leases.py``), so two
sweeps on one file split the work instead of doubling it; and the reader keeps the first complete
record of each key and says how many copies it ignored, so no table counts a run twice.

Runs whose task failed on a ray / slurm executor (after its retries) are recorded
with ``status: failed`` and the error. They stay in the file (append-only) but are
not results: :meth:`ResultStore.records` leaves them out unless asked, and a
re-run of the sweep runs them again (their keys are not "done").
"""

from __future__ import annotations

import fcntl
import json
import os
import warnings
from pathlib import Path

from .errors import PicardError


def default_root() -> Path:
    return Path(os.environ.get("PICARD_RESULTS", "results"))


def records_frame(records: list[dict]):
    """Records as a pandas DataFrame, one row per record; nested fields one level deep become
    dotted columns (``metrics.test_acc_last``, ``config.lr``)."""
    import pandas as pd

    return pd.json_normalize(records, max_level=1)


class ResultStore:
    def __init__(self, root: str | Path, experiment: str):
        self.path = Path(root) / f"{experiment}.jsonl"

    # -- reading --------------------------------------------------------------
    def records(self, include_failed: bool = False) -> list[dict]:
        """All complete records, one per run key: the first complete one (later copies, written by
        two drivers before leases existed, are ignored with a count); ``status: failed`` ones only
        with ``include_failed``. A torn last line, a line that is not JSON or not a picard record
        (no ``key`` / ``config``) is skipped with a warning."""
        out, seen, dups = [], set(), 0
        for rec in self._parsed():
            if rec.get("status") == "failed":
                if include_failed:
                    out.append(rec)
                continue
            if rec["key"] in seen:
                dups += 1
                continue
            seen.add(rec["key"])
            out.append(rec)
        if dups:
            warnings.warn(
                f"{self.path}: ignored {dups} duplicate record(s) of runs already recorded "
                f"(the first record of each run counts)"
            )
        return out

    def _parsed(self) -> list[dict]:
        if self.path.is_dir():
            raise PicardError(f"{self.path} is a directory, not a results file; use --results to choose another folder")
        if not self.path.exists():
            return []
        try:
            lines = self.path.read_bytes().split(b"\n")
        except OSError as e:
            raise PicardError(f"{self.path}: cannot read the results file ({e.strerror})") from None
        out = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                if i == len(lines) - 1:  # no trailing newline: a write cut short by a crash
                    warnings.warn(f"{self.path}: ignoring a torn last line (an interrupted write); it will be re-run")
                else:
                    warnings.warn(f"{self.path}: line {i + 1} is not valid JSON; skipped")
                continue
            if not (isinstance(rec, dict) and isinstance(rec.get("key"), str) and "config" in rec):
                warnings.warn(f"{self.path}: line {i + 1} is not a picard record (no key / config); skipped")
                continue
            out.append(rec)
        return out

    def failed(self, keys: set[str] | None = None) -> list[dict]:
        """The last failure of each run (of ``keys``) that has no result: failed and not re-run since."""
        done, last = self.done_keys(), {}
        for r in self.records(include_failed=True):
            if r.get("status") == "failed" and r["key"] not in done and (keys is None or r["key"] in keys):
                last[r["key"]] = r
        return list(last.values())

    def done_keys(self) -> set[str]:
        return {r["key"] for r in self.records()}

    def dataframe(self):
        return records_frame(self.records())

    # -- writing --------------------------------------------------------------
    def probe(self) -> None:
        """Before any work: the results file can be appended to (its folder created, a probe file
        created, written, fsynced and removed beside it). One line naming the path otherwise, so a
        read-only, full or mistyped location fails in seconds, not after training."""
        where = self.path.parent
        try:
            if where.exists() and not where.is_dir():
                raise PicardError(f"results location {where} is a file, not a folder; use --results to choose one")
            if self.path.is_dir():
                raise PicardError(
                    f"{self.path} is a directory, not a results file; use --results to choose another folder"
                )
            where.mkdir(parents=True, exist_ok=True)
            probe = where / f".{self.path.name}.probe.{os.getpid()}"
            with open(probe, "wb") as fh:
                fh.write(b"picard write probe\n")
                fh.flush()
                os.fsync(fh.fileno())
            probe.unlink()
            if self.path.exists() and not os.access(self.path, os.W_OK):
                raise PicardError(f"{self.path} is not writable; use --results to choose another folder")
        except OSError as e:
            raise PicardError(
                f"results location {where} is not writable ({e.strerror}); use --results to choose another folder"
            ) from None

    def append(self, records: list[dict]) -> None:
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        blob = b"".join(json.dumps(r, sort_keys=True, allow_nan=True).encode() + b"\n" for r in records)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._cut_torn_tail(fd)
            os.write(fd, blob)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _cut_torn_tail(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size == 0:
            return
        if os.pread(fd, 1, size - 1) == b"\n":
            return
        # Walk back to the last newline and truncate the partial record.
        pos, chunk = size, 4096
        while pos > 0:
            start = max(0, pos - chunk)
            buf = os.pread(fd, pos - start, start)
            nl = buf.rfind(b"\n")
            if nl >= 0:
                cut = start + nl + 1
                break
            pos = start
        else:
            cut = 0
        warnings.warn(f"{self.path}: removed a torn last line ({size - cut} bytes) left by an interrupted write")
        os.ftruncate(fd, cut)
