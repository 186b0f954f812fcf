"""Progress for sweeps.

On a terminal: rich bars, one for the sweep's runs (with an ETA once a run has finished: the mean
time per run so far times the runs left) and one for the group in flight, labelled with its phase
(training, evaluation, sampling, FID) and starting at the epoch a resumed run continues from.

Elsewhere (nohup, tee, Slurm logs): plain timestamped lines, flushed as things happen: the sweep's
size, each group's start, each phase, epoch progress at most once every ``LOG_EVERY_S`` seconds, and
one line per finished run with its cell, seed, headline metric and wall time, then the ETA.

Ctrl-C, either way: one line with how many runs are recorded and that the same command resumes.
"""

from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

LOG_EVERY_S = 60.0


def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class SweepInterrupted(Exception):
    """Ctrl-C during a sweep, with the line to print (the CLI prints it and exits 130). Not a
    KeyboardInterrupt, which typer would turn into a bare exit code."""


def headline_metric(exp) -> str:
    """The metric a finished-run line shows: the experiment's table metric under its default protocol."""
    return exp.table.metric()


class SweepProgress:
    def __init__(self, console, metric: str | None = None):
        self.console, self.lines, self.metric = console, not console.is_terminal, metric
        self.p = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
            console=console,
            transient=False,
            disable=self.lines,
        )
        self.runs = self.group = None
        self.group_desc, self.phase_name, self.epoch_info = "", "", ""
        self.total = self.done = self.skipped = 0
        self.t0 = self.group_t0 = self.last_line = time.monotonic()

    def __enter__(self):
        self.p.__enter__()
        return self

    def __exit__(self, *exc):
        out = self.p.__exit__(*exc)
        if exc[0] is not None and issubclass(exc[0], KeyboardInterrupt):
            have = self.done + self.skipped
            raise SweepInterrupted(
                f"interrupted: {have} of {self.total + self.skipped} run(s) recorded "
                f"({self.done} in this session); the same command resumes from them"
            ) from None
        return out

    def _line(self, text: str) -> None:
        self.console.print(f"[{time.strftime('%H:%M:%S')}] {text}", highlight=False, markup=False, soft_wrap=True)
        self.console.file.flush()

    def note(self, text: str) -> None:
        """A message for terminal and log alike (e.g. waiting for another driver)."""
        if self.lines:
            self._line(text)
        else:
            self.p.console.print(f"[dim]{text}[/dim]", highlight=False)

    def _eta(self) -> str:
        if not self.done:
            return ""
        left = (time.monotonic() - self.t0) / self.done * (self.total - self.done)
        return f"ETA {_hms(left)}"

    def start(self, total_runs: int, skipped: int):
        label = f"runs ({skipped} already recorded, skipped)" if skipped else "runs"
        self.runs = self.p.add_task(label, total=total_runs, eta="")
        self.total, self.skipped, self.t0 = total_runs, skipped, time.monotonic()
        if self.lines:
            self._line(f"{total_runs} run(s) to do" + (f", {skipped} already recorded (skipped)" if skipped else ""))

    def begin_group(self, cell: str, size: int, new: int | None = None):
        """A group of ``size`` seeds starts (``new`` of them not yet recorded; a re-formed group re-trains the rest)."""
        desc = f"  {cell} x{size} seeds" if size > 1 else f"  {cell}"
        self.group_desc, self.group_t0, self.phase_name, self.epoch_info = desc, time.monotonic(), "", ""
        self.group_new = size if new is None else new
        if self.lines:
            again = f" ({size - self.group_new} already recorded, re-formed group)" if self.group_new < size else ""
            self._line(f"run {self.done + 1}/{self.total}: {desc.strip()} started{again}")
            self.last_line = time.monotonic()
        if self.group is None:
            self.group = self.p.add_task(desc, total=1, eta="")
        self.p.reset(self.group, description=desc, total=1)

    def _label(self) -> str:
        parts = [self.group_desc] + [x for x in (self.phase_name, self.epoch_info) if x]
        return " | ".join(parts)

    def phase(self, name: str):
        """The group in flight enters a phase (training, evaluation, sampling, FID, ...)."""
        self.phase_name = name
        self.p.update(self.group, description=self._label())
        if self.lines:
            self._line(f"  {self.group_desc.strip()}: {name}")
            self.last_line = time.monotonic()

    def epoch(self, done: int, total: int, info: str = ""):
        """Epoch progress of the group in flight; ``info`` (e.g. seconds per epoch) joins its label."""
        self.epoch_info = info
        self.p.update(self.group, completed=done, total=total, description=self._label())
        if self.lines and time.monotonic() - self.last_line >= LOG_EVERY_S:
            self._line(f"  {self.group_desc.strip()}: epoch {done}/{total}" + (f", {info}" if info else ""))
            self.last_line = time.monotonic()

    def end_group(self, records):
        """The group's new records are written (a list of records; an int counts runs without details)."""
        n = records if isinstance(records, int) else len(records)
        self.done += n
        self.p.advance(self.runs, n)
        self.p.update(self.runs, eta=self._eta())
        if not self.lines:
            return
        wall = time.monotonic() - self.group_t0
        for rec in [] if isinstance(records, int) else records:
            self._line(
                f"finished {rec.get('cell')} seed {rec.get('seed')}: {self._headline(rec)}, "
                f"{_hms(rec.get('wall_s') or wall)} ({rec.get('status')})"
            )
        self._line(
            f"run {self.done}/{self.total}: {self.group_desc.strip()} done in {_hms(wall)}; elapsed "
            f"{_hms(time.monotonic() - self.t0)}, {self._eta() or 'ETA n/a'} (the mean so far)"
        )

    def _headline(self, rec: dict) -> str:
        metrics = rec.get("metrics") or {}
        name = self.metric if self.metric in metrics else next(iter(metrics), None)
        value = metrics.get(name) if name else None
        return f"{name} {value:.4g}" if isinstance(value, (int, float)) else f"{name} {value}"

    def recorded_elsewhere(self, n: int):
        """``n`` runs of this sweep were recorded by another driver."""
        if n:
            self.done += n
            self.p.advance(self.runs, n)
            if self.lines:
                self._line(f"{n} run(s) recorded by another driver; {self.done}/{self.total} done")
