"""Mid-run checkpoints of the long trainings (ddpm; anie and vit-pde through ``ns_train.fit``;
vit-mask; pign-lrgb): one place for writing, reading and checking them.

A checkpoint is one file, ``<run folder>/checkpoint.pt`` (``ctx.run_dir``, named by the hash of the
run's config), holding only tensors and plain Python data (dicts, lists, tuples, str, int, float,
bool, None). It therefore loads with ``torch.load(weights_only=True)``: reading one runs no pickled
code. Guarantees:

* atomic: written to a temporary file in the same folder, fsynced, renamed over the old one and the
  folder fsynced, so a kill at any moment leaves the previous checkpoint or the new one, never half;
* one owner: it stores the run's config, and a run refuses a checkpoint of another config;
* unreadable files (empty, truncated, garbage) stop the run with one line naming the file;
* exact resume: the RNG helpers capture torch's CPU (and CUDA) generator, numpy's and python's
  global state and the run's own torch.Generators, so a resumed run draws what it would have drawn.

How often (:class:`Interval`): at the end of an epoch once ``PICARD_CHECKPOINT_S`` seconds (default
300) have passed since the last save, and always after the last epoch; ``PICARD_CHECKPOINT_S=0``
saves every epoch. It is deliberately no config field: it changes neither run keys nor results.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from pathlib import Path
from typing import Callable

from .errors import PicardError

FILENAME = "checkpoint.pt"
ENV_INTERVAL = "PICARD_CHECKPOINT_S"
DEFAULT_INTERVAL_S = 300.0


def path_for(ctx) -> Path | None:
    """The checkpoint file of the run ``ctx`` is for; None without a run folder (stacked groups,
    no results root): such runs never checkpoint."""
    run_dir = getattr(ctx, "run_dir", None)
    return Path(run_dir) / FILENAME if run_dir else None


# ------------------------------------------------------------------------------ file I/O
def save(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, os.replace, fsync of the folder)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def load(path: Path) -> dict | None:
    """The checkpoint at ``path`` (None when absent), read with ``weights_only=True`` onto the CPU;
    stale temporary files of killed writers are removed first. An unreadable file raises a one-line
    PicardError naming it."""
    import torch

    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    if not path.is_file():
        return None
    try:
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as first:  # written before this module: numpy's RNG state as a pickled ndarray
            if "numpy" not in str(first):
                raise
            with torch.serialization.safe_globals(_numpy_globals()):
                ck = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ck, dict):
            raise ValueError(f"holds a {type(ck).__name__}, not a checkpoint")
    except Exception as e:
        raise PicardError(
            f"{path}: unreadable checkpoint ({_reason(e, path)}); delete or move it away to start the run over"
        ) from None
    return ck


def _reason(e: Exception, path: Path) -> str:
    """The gist of torch.load's (multi-line) error, as a short phrase."""
    if path.stat().st_size == 0:
        return "empty file"
    boiler = ("Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.strip().startswith(boiler)]
    return (lines[0].split(". ")[0].rstrip(".:") if lines else type(e).__name__)[:160]


def _numpy_globals() -> list:
    """What a pickled numpy RNG state array needs (legacy ddpm checkpoints): array reconstruction only."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def check_config(ck: dict, config, path: Path, cls: type | None = None) -> None:
    """Refuse (one line) a checkpoint written for another config. ``config``: the run's typed config
    (a dataclass) or its dict (then ``cls``, the config class, if known). A checkpoint written before a
    field was renamed (``fld(..., was="old")``) stores the old name: it is read with today's names."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        cls, config = type(config), dataclasses.asdict(config)
    stored = ck.get("config")
    if cls is not None and isinstance(stored, dict):
        from .recipes import migrate

        stored = migrate(cls, stored)
    if stored != config:
        raise PicardError(f"{path} belongs to another config; move it away to start afresh")


# ------------------------------------------------------------------------------ RNG states
def rng_state(*generators) -> dict:
    """Every RNG a training draws from, as tensors and plain data: torch's CPU generator, CUDA's
    (once CUDA is initialised), numpy's and python's global state, and ``generators`` in order."""
    import numpy as np
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": [version, list(internal), gauss_next],
        "generators": [g.get_state() for g in generators],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, *generators) -> None:
    """Restore what :func:`rng_state` captured (``generators`` in the same order)."""
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    if isinstance(npst, dict):
        np.random.set_state(
            (
                npst["name"],
                npst["keys"].numpy().astype(np.uint32),
                npst["pos"],
                npst["has_gauss"],
                npst["cached_gaussian"],
            )
        )
    else:  # legacy: numpy's own tuple
        np.random.set_state(npst)
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    for g, s in zip(generators, state.get("generators", []), strict=True):
        g.set_state(s)
    if "cuda" in state and torch.cuda.is_available():
        for i, s in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)


# ------------------------------------------------------------------------------ when to save
def interval_s() -> float:
    """``PICARD_CHECKPOINT_S`` (seconds between saves; default 300, 0 = every epoch)."""
    raw = os.environ.get(ENV_INTERVAL, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise PicardError(f"{ENV_INTERVAL}={raw!r}: expected seconds between checkpoints, a number >= 0")
    return value


class Checkpointer:
    """One run's checkpoint: :meth:`resume` reads and checks it, :meth:`epoch_end` saves when due.

    ``main=False`` (DDP ranks other than 0) reads but never writes. Saved files hold
    ``{"format", "config", **state}``."""

    FORMAT = 1

    def __init__(self, ctx, config, main: bool = True):
        """``config``: the run's typed config (stored as its dict) or its dict."""
        self.cls = type(config) if dataclasses.is_dataclass(config) and not isinstance(config, type) else None
        self.config = dataclasses.asdict(config) if self.cls else config
        self.path, self.main = path_for(ctx), main
        self.every = interval_s()
        self.last_save = time.monotonic()

    def resume(self) -> dict | None:
        """The checkpoint of this run (config checked), or None: start from scratch."""
        if self.path is None:
            return None
        ck = load(self.path)
        if ck is not None:
            check_config(ck, self.config, self.path, self.cls)
        return ck

    def epoch_end(self, last: bool, state: Callable[[], dict]) -> bool:
        """Save ``state()`` (built only when due) if this is the last epoch or the interval has passed."""
        if self.path is None or not self.main:
            return False
        if not last and time.monotonic() - self.last_save < self.every:
            return False
        save(self.path, {"format": self.FORMAT, "config": self.config, **state()})
        self.last_save = time.monotonic()
        return True
