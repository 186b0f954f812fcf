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
    "pign-lrgb": "picard_cli.experiments.pign_lrgb",
    "anie": "picard_cli.experiments.anie",
    "vit-pde": "picard_cli.experiments.vit_pde",
    "vit-mask": "picard_cli.experiments.vit_mask",
    "ddpm": "picard_cli.experiments.ddpm",
    "alphafold-recycle": "picard_cli.experiments.alphafold_recycle",
}
# experiment -> the family name users type for it (`picard sweep pign --recipe recipes/pign/table1.yaml`)
FAMILY = {"pign-lrgb": "pign"}

_loaded: dict = {}


def register(exp) -> None:
    if exp.name in _loaded and _loaded[exp.name] is not exp:
        raise RuntimeError(f"experiment {exp.name!r} registered twice")
    _loaded[exp.name] = exp


def names() -> list[str]:
    return sorted(MODULES)


def family(name: str) -> list[str]:
    """``name`` and the experiments that belong to its family."""
    return [name] + sorted(n for n, f in FAMILY.items() if f == name)


def for_recipe(name: str, recipe: str | None) -> str:
    """The experiment a command runs: the recipe's own ``experiment`` when it is ``name``
    or a member of ``name``'s family (recipes/pign/table1.yaml is pign-lrgb)."""
    if not recipe:
        return name
    from pathlib import Path

    import yaml

    from .recipes import load_yaml

    try:
        data = load_yaml(Path(recipe).read_text()) or {}
    except (OSError, ValueError, RecursionError, yaml.YAMLError):  # (ValueError: not UTF-8 text)
        return name  # read_recipe reports these with their own messages
    declared = data.get("experiment") if isinstance(data, dict) else None
    return declared if declared in family(name) else name


def get(name: str):
    if name not in MODULES:
        import difflib

        hint = difflib.get_close_matches(name, names(), n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise PicardError(f"unknown experiment {name!r}{extra}; known: {', '.join(names())}")
    if name not in _loaded:
        importlib.import_module(MODULES[name])
    return _loaded[name]
