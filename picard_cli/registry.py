"""Experiment registry: name -> experiment object. Experiments are imported
explicitly (no glob auto-import), so an import error points at its file; a
duplicate name raises."""
from __future__ import annotations

import importlib

from .errors import PicardError

# name -> module path; the module is imported only when the experiment is used,
# so `picard --help` and `picard list` stay light (no torch_geometric import).
MODULES = {
    "pign": "picard_cli.experiments.pign",
}

_loaded: dict = {}


def register(exp) -> None:
    if exp.name in _loaded and _loaded[exp.name] is not exp:
        raise RuntimeError(f"experiment {exp.name!r} registered twice")
    _loaded[exp.name] = exp


def names() -> list[str]:
    return sorted(MODULES)


def get(name: str):
    if name not in MODULES:
        import difflib

        hint = difflib.get_close_matches(name, names(), n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise PicardError(f"unknown experiment {name!r}{extra}; known: {', '.join(names())}")
    if name not in _loaded:
        importlib.import_module(MODULES[name])
    return _loaded[name]
