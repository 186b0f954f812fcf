"""Provenance: device choice, library versions, git SHA, data root."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .errors import PicardError

TRACKED = ("picard", "torch", "torch_geometric", "numpy", "scipy", "pandas")


def pick_device(choice: str = "auto") -> str:
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise PicardError("--device cuda requested but no CUDA device is available (use --device auto or cpu)")
    return choice


def device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


@functools.cache
def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in TRACKED:
        try:
            out[name] = metadata.version(name.replace("_", "-") if name != "torch_geometric" else name)
        except metadata.PackageNotFoundError:
            pass
    return out


@functools.cache
def git_sha() -> str | None:
    """SHA of the code that ran, with '+dirty' when the tree has local changes. A tree exported
    with ``git archive`` (no .git) has it in ``picard_cli/COMMIT`` (git fills it in on export)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            exported = (here / "COMMIT").read_text().strip() if (here / "COMMIT").exists() else ""
            return exported + "+export" if exported and not exported.startswith("$") else None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def data_root(cli_value: str | None = None) -> Path:
    """--data-root, else $PICARD_DATA, else the user cache (~/.cache/picard/data)."""
    if cli_value:
        return Path(cli_value).expanduser()
    if os.environ.get("PICARD_DATA"):
        return Path(os.environ["PICARD_DATA"]).expanduser()
    return cache_dir() / "data"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "picard"


def tune_allocator() -> None:
    """Keep freed memory in the process (glibc): big tensors are otherwise mmapped and
    page-faulted afresh at every allocation, which made large stacked CPU steps ~3x
    slower (a 110 MB zeros+add went from 82 ms to 28 ms). No-op off glibc."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: serve blocks < 1 GiB from the heap
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: do not return freed heap to the OS eagerly
    except (OSError, AttributeError):
        pass


def resolve_threads(asked: int | None) -> int:
    """CPU threads for torch (and numba) in this process: ``asked`` (``--threads`` / ``sweep.threads``)
    when > 0, else ``$PICARD_THREADS``, else half the cores (at least 1). Half, by measurement
    (benchmarks/laptop_threads.py, 2 cores): two processes with 2 threads each ran 2.7x slower in
    total than with 1 each, while one process alone gained only 1.10x from its second thread, so
    the default leaves room for a second sweep instead of over-subscribing."""
    if asked:
        return int(asked)
    raw = os.environ.get("PICARD_THREADS", "").strip()
    if raw:
        from .errors import PicardError

        if not raw.isdigit() or int(raw) < 1:
            raise PicardError(f"PICARD_THREADS must be a whole number >= 1, got {raw!r}")
        return int(raw)
    return max(1, (os.cpu_count() or 1) // 2)


def set_threads(n: int) -> None:
    """Set torch's intra-op threads, and numba's where it is loaded (capped at its pool size)."""
    import sys

    import torch

    torch.set_num_threads(n)
    numba = sys.modules.get("numba")
    if numba is not None:
        try:
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        except (ValueError, AttributeError):
            pass
