"""Progress for sweeps. On a terminal: rich bars, one for runs, one for the epochs of the group in
flight. Elsewhere (nohup, tee, Slurm logs): plain lines as things happen, flushed, so a log file
shows the sweep's state while it runs: each run group's start and end with the elapsed time and an
ETA, and the epoch progress at most once every ``LOG_EVERY_S`` seconds."""
from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

LOG_EVERY_S = 60.0


def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class SweepProgress:
    def __init__(self, console):
        self.console, self.lines = console, not console.is_terminal
        self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
                          disable=self.lines)
        self.runs = self.group = None
        self.group_desc = ""
        self.total = self.done = 0
        self.t0 = self.group_t0 = self.last_line = time.monotonic()

    def __enter__(self):
        self.p.__enter__()
        return self

    def __exit__(self, *exc):
        if self.lines and exc[0] is KeyboardInterrupt:
            self._line("interrupted: re-run the same command to resume (finished runs are kept)")
        return self.p.__exit__(*exc)

    def _line(self, text: str) -> None:
        self.console.print(f"[{time.strftime('%H:%M:%S')}] {text}", highlight=False, markup=False, soft_wrap=True)
        self.console.file.flush()

    def start(self, total_runs: int, skipped: int):
        label = f"runs ({skipped} already recorded, skipped)" if skipped else "runs"
        self.runs = self.p.add_task(label, total=total_runs)
        self.total, self.t0 = total_runs, time.monotonic()
        if self.lines:
            self._line(f"{total_runs} run(s) to do" + (f", {skipped} already recorded (skipped)" if skipped else ""))

    def begin_group(self, cell: str, size: int):
        desc = f"  {cell} x{size} seeds" if size > 1 else f"  {cell}"
        self.group_desc, self.group_t0 = desc, time.monotonic()
        if self.lines:
            self._line(f"run {self.done + 1}/{self.total}: {desc.strip()} started")
            self.last_line = time.monotonic()
        if self.group is None:
            self.group = self.p.add_task(desc, total=1)
        self.p.reset(self.group, description=desc, total=1)

    def epoch(self, done: int, total: int, info: str = ""):
        """Epoch progress of the group in flight; ``info`` (e.g. seconds per epoch) joins its label."""
        desc = self.group_desc
        self.p.update(self.group, completed=done, total=total, description=f"{desc} | {info}" if info else desc)
        if self.lines and time.monotonic() - self.last_line >= LOG_EVERY_S:
            self._line(f"  {desc.strip()}: epoch {done}/{total}" + (f", {info}" if info else ""))
            self.last_line = time.monotonic()

    def end_group(self, size: int):
        self.p.advance(self.runs, size)
        self.done += size
        if self.lines:
            now = time.monotonic()
            eta = (now - self.t0) / self.done * (self.total - self.done)
            self._line(f"run {self.done}/{self.total}: {self.group_desc.strip()} finished in "
                       f"{_hms(now - self.group_t0)}; elapsed {_hms(now - self.t0)}, ETA {_hms(eta)} "
                       f"(the mean so far)")
