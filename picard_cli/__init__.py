"""picard: damped Picard iterations in neural networks, experiment by experiment.

The Python API (:mod:`picard_cli.api`, docs/api.md) is loaded on first use, so ``import picard_cli``
and ``picard --help`` stay light (no torch)::

    import picard_cli as picard

    picard.sweep(...), picard.run(...), picard.plan(...)   # DataFrames of runs
    picard.table(...), picard.load(...)                    # the paper's table, a results file
    picard.solve(T, x0, f, ...), picard.FixedPointSpec     # the fixed-point toolkit's front door
"""

from .errors import DataError, PicardError, RecipeError  # noqa: F401 - the API's errors

__version__ = "0.1.0"

_API = ("run", "sweep", "plan", "load", "table")


def __getattr__(name: str):
    """The API's names, imported on first use."""
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "solve":
        from .fixedpoint.front import solve

        return solve
    if name == "FixedPointSpec":
        from .fixedpoint.spec import FixedPointSpec

        return FixedPointSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API) | {"solve", "FixedPointSpec"})
