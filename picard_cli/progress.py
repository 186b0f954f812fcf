"""Rich progress for sweeps: one bar for runs, one for the epochs of the group in flight."""
from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class SweepProgress:
    def __init__(self, console):
        self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)
        self.runs = self.group = None
        self.group_desc = ""

    def __enter__(self):
        self.p.__enter__()
        return self

    def __exit__(self, *exc):
        return self.p.__exit__(*exc)

    def start(self, total_runs: int, skipped: int):
        label = f"runs ({skipped} already recorded, skipped)" if skipped else "runs"
        self.runs = self.p.add_task(label, total=total_runs)

    def begin_group(self, cell: str, size: int):
        desc = f"  {cell} x{size} seeds" if size > 1 else f"  {cell}"
        self.group_desc = desc
        if self.group is None:
            self.group = self.p.add_task(desc, total=1)
        self.p.reset(self.group, description=desc, total=1)

    def epoch(self, done: int, total: int, info: str = ""):
        """Epoch progress of the group in flight; ``info`` (e.g. seconds per epoch) joins its label."""
        desc = self.group_desc
        self.p.update(self.group, completed=done, total=total, description=f"{desc} | {info}" if info else desc)

    def end_group(self, size: int):
        self.p.advance(self.runs, size)
