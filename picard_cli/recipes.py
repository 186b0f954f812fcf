"""Recipes: YAML deltas over typed defaults, validated strictly.

A config is a dataclass whose fields carry a one-line ``help`` and optional
``choices`` / ``range`` in their metadata (see :func:`fld`). Every layer that
touches a config (recipe defaults, a cell, a scale preset, CLI flags,
``key=value`` overrides) goes through :func:`apply`, which rejects unknown keys
(naming the dotted path and the closest valid key), wrong types and
out-of-range values with a one-line :class:`RecipeError`.

Recipe file layout (``recipes/<experiment>/<name>.yaml``)::

    experiment: pign              # must match the experiment it is run with
    description: one line
    sweep: {seeds: 100}           # Sweep fields (how many runs, executor, device)
    defaults: {epochs: 200}       # experiment-config fields shared by all cells
    scales:                       # named presets: {sweep: {...}, config: {...}, cells: regex}
      quick: {sweep: {seeds: 5}}
    cells:                        # one entry per table cell: config fields
      GCN/Cora: {model: plain, lr: 0.01}
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import difflib
import functools
import hashlib
import itertools
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from .errors import RecipeError


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's base-60 integers and floats, so ``1:40`` (an
    iteration range) stays the string it looks like instead of becoming 100."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if not rx.match("1:40") and not rx.match("1:40.5")]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# Put the plain int/float resolvers back (the filtered regexes also held base-10 forms).
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|0o?[0-7_]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
        r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _no_duplicate_keys(loader, node, deep=False):
    """A mapping that names a key twice is refused (YAML would keep the last silently)."""
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, typing.Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        if isinstance(key, typing.Hashable):
            seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_Loader.construct_mapping = _no_duplicate_keys

if getattr(yaml, "__with_libyaml__", False):

    class _FastLoader(yaml.CSafeLoader):
        """_Loader's rules over libyaml's parser (the same values, ~10x faster on the recipes)."""

    _FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
    _FastLoader.construct_mapping = _no_duplicate_keys
else:
    _FastLoader = _Loader


def load_yaml(text: str):
    return yaml.load(text, Loader=_FastLoader)


SEED_RANGE = (0, 2**32 - 1)  # seeds numpy and torch both take


def fld(
    default,
    help: str,
    *,
    choices=None,
    range=None,
    added: bool = False,
    per_run: bool = False,
    check=None,
    was: str | None = None,
):
    """A config field with its documentation and constraints.

    ``added=True`` marks a field introduced after results already existed: it
    enters a run's identity (:func:`identity`) only when set away from its
    default, so records written before the field existed keep their keys.
    ``per_run=True``: the sweep sets it for each run (the run seed); recipes and
    overrides may not, and ``picard list`` does not show it. ``check(value, path)``
    validates a value further (raising :class:`RecipeError`). Floats must be finite;
    integers without a ``range`` must fit in 64 bits. ``was="old"``: the field was renamed from
    ``old``; a run's identity (and so its key) still uses the old name, stored records under the old
    name are read as this field (:func:`migrate`), and recipes or overrides that set ``old`` work,
    with a one-line warning naming the new name.
    """
    meta = {
        "help": help,
        "choices": choices,
        "range": range,
        "added": added,
        "per_run": per_run,
        "check": check,
        "was": was,
    }
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Sweep:
    """How a recipe becomes runs; never part of a run's identity (hash)."""

    seeds: int = fld(5, "runs per cell (seed indices 0..seeds-1)", range=(1, 100000))
    seed_base: int = fld(0, "run i uses seed seed_base + i", range=(0, 2**31 - 1))
    executor: str = fld(
        "batched",
        "inprocess (one run at a time), batched (many seeds of a cell as one stacked "
        "model), ray (runs / groups as Ray tasks) or slurm (as Slurm jobs through submitit)",
        choices=("inprocess", "batched", "ray", "slurm"),
    )
    group_size: int = fld(100, "batched executor: at most this many seeds per stacked model", range=(1, 100000))
    group_memory_gb: float = fld(
        3.0, "batched executor: shrink groups so one group's activations stay near this", range=(0.01, 10000.0)
    )
    device: str = fld("auto", "auto (cuda if available, else cpu), cpu or cuda", choices=("auto", "cpu", "cuda"))
    # -- ray / slurm executors (picard_cli/executors/): one task = one run, or one group of seeds where the
    #    experiment stacks seeds (the batched grouping above), so every executor forms the same groups.
    task_cpus: float = fld(1.0, "ray/slurm: CPUs per task (torch uses this many threads on CPU)", range=(0.01, 1024.0))
    task_gpus: float = fld(0.0, "ray/slurm: GPUs per task (--gpus-per-task)", range=(0.0, 64.0))
    task_memory_gb: float = fld(0.0, "ray/slurm: memory per task in GiB (0 = no request)", range=(0.0, 100000.0))
    retries: int = fld(
        1, "ray/slurm: re-submissions of a failed task before its runs are recorded as failed", range=(0, 100)
    )
    workers: int = fld(
        0,
        "ray without --address, slurm_cluster=local: tasks at once on this machine (0 = CPUs / task_cpus)",
        range=(0, 100000),
    )
    ray_address: str = fld("", "ray: address of a running cluster (--address; '' = start a local Ray instance)")
    slurm_cluster: str = fld(
        "slurm",
        "slurm: submit with sbatch (slurm), run the jobs as local processes with "
        "submitit's local executor (local) or in this process (debug)",
        choices=("slurm", "local", "debug"),
    )
    slurm_partition: str = fld("", "slurm: partition (--partition; '' = the cluster's default)")
    slurm_time_min: int = fld(240, "slurm: time limit per job in minutes (--time)", range=(1, 10**6))
    threads: int = fld(
        0,
        "torch (and numba) CPU threads of this process (--threads; 0 = $PICARD_THREADS, else half the cores). The "
        "laptop presets use 1: on 2 cores, two processes training at once with 2 threads each ran "
        "2.7x slower in total than with 1 each (benchmarks/laptop_threads.py)",
        range=(0, 4096),
    )
    allow_partial_data: bool = fld(
        False,
        "--scale paper: run even when the data is not the paper's (a subset, "
        "lossy pixels, other generator parameters); records and captions say which "
        "data was used. On the command line: allow_partial_data=true",
    )


RECIPE_KEYS = {"experiment", "description", "sweep", "defaults", "scales", "cells"}


# ----------------------------------------------------------------------------- coercion
def _type_name(tp) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value, tp, path: str):
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arm in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arm, path)
            except RecipeError:
                continue
        raise RecipeError(f"{path}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise RecipeError(f"{path}: must be one of {', '.join(map(str, args))}; got {value!r}")
        return value
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"{path}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return [_coerce(v, inner, f"{path}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise RecipeError(f"{path}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise RecipeError(f"{path}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "5e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise RecipeError(f"{path}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):  # eval_iters=4 is the string '4'
            return str(value)
        if isinstance(value, (datetime.date, datetime.datetime)):  # YAML reads 2022-01-01 as a date
            return value.isoformat()
        raise RecipeError(f"{path}: expected a string, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise RecipeError(f"{path}: expected a mapping, got {value!r}")
        return value  # merged field by field in apply()
    raise RecipeError(f"{path}: unsupported field type {tp!r}")


INT_BOUNDS = (-(2**63), 2**63 - 1)  # integers without a declared range: what torch / numpy can hold


def _check_numbers(value, rng, path: str):
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, float) and not math.isfinite(v):
            raise RecipeError(f"{path}: must be a finite number; got {v!r}")
        if rng is None and isinstance(v, int) and not isinstance(v, bool) and not INT_BOUNDS[0] <= v <= INT_BOUNDS[1]:
            raise RecipeError(f"{path}: must lie in [-2**63, 2**63 - 1]; got {v!r}")


def _check(value, f: dataclasses.Field, path: str):
    choices, rng = f.metadata.get("choices"), f.metadata.get("range")
    _check_numbers(value, rng, path)
    if f.metadata.get("check") is not None and value is not None:
        f.metadata["check"](value, path)
    if choices is not None and value not in choices:
        hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise RecipeError(f"{path}: must be one of {', '.join(map(str, choices))}; got {value!r}{extra}")
    if rng is not None and value is not None:
        lo, hi = rng
        for v in value if isinstance(value, list) else [value]:
            if not lo <= v <= hi:
                raise RecipeError(f"{path}: must lie in [{lo}, {hi}]; got {v!r}")


@functools.cache
def _schema(cls) -> tuple[dict, dict]:
    """(type hints, fields by name) of a config class (apply runs per cell and layer: resolve them once)."""
    return typing.get_type_hints(cls), {f.name: f for f in dataclasses.fields(cls)}


def apply(cfg, delta: dict | None, where: str = "", *, prefix: str = ""):
    """Return a copy of dataclass ``cfg`` with ``delta`` merged in, strictly."""
    if delta is None:
        return cfg
    if not isinstance(delta, dict):
        raise RecipeError(f"{where}{prefix.rstrip('.') or 'recipe'}: expected a mapping, got {delta!r}")
    hints, fields = _schema(type(cfg))
    changes = {}
    for key, value in delta.items():
        path = f"{prefix}{key}"
        key = _renamed(fields, key, path, where, delta)
        if key not in fields:
            hint = difflib.get_close_matches(str(key), list(fields), n=1)
            extra = f" (did you mean '{prefix}{hint[0]}'?)" if hint else f" (valid: {', '.join(fields)})"
            raise RecipeError(f"{where}unknown key {path!r}{extra}")
        if fields[key].metadata.get("per_run"):
            raise RecipeError(f"{where}{_per_run_message(path, value)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            changes[key] = apply(getattr(cfg, key), value, where, prefix=f"{path}.")
            continue
        try:
            v = _coerce(value, tp, path)
        except RecipeError as e:
            raise RecipeError(f"{where}{e}") from None
        try:
            _check(v, fields[key], path)
        except RecipeError as e:
            raise RecipeError(f"{where}{e}") from None
        changes[key] = v
    return dataclasses.replace(cfg, **changes)


def _renamed(fields: dict, key, path: str, where: str, delta: dict):
    """The field a recipe key names: ``key`` itself, or the field renamed from it (with a warning)."""
    if key in fields:
        return key
    new = next((n for n, f in fields.items() if key is not None and f.metadata.get("was") == key), None)
    if new is None:
        return key
    if new in delta:
        raise RecipeError(f"{where}{path} was renamed to {new!r}: set only {new!r}")
    if (key, new) not in _WARNED_RENAMES:  # once per process: a plan applies the same delta several times
        import warnings

        _WARNED_RENAMES.add((key, new))
        warnings.warn(
            f"{where}{path} was renamed to {new!r} (same meaning, same run keys); the old name still works",
            stacklevel=2,
        )
    return new


_WARNED_RENAMES: set = set()


def _per_run_message(path: str, value) -> str:
    first = value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 7
    return f"{path} is set per run by the sweep: use --seeds N (runs per cell) and sweep.seed_base={first} (first seed)"


# ----------------------------------------------------------------------------- overrides
def parse_overrides(pairs: list[str]) -> dict:
    """``["lr=0.01", "sweep.seeds=3"]`` -> nested dict; values parsed as YAML scalars."""
    out: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise RecipeError(f"override {pair!r}: expected key=value")
        key, raw = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise RecipeError(f"override {pair!r}: empty key")
        value = _scalar(raw)
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise RecipeError(f"override {pair!r}: {p!r} is set twice")
        node[parts[-1]] = value
    return out


def _scalar(raw: str):
    """One override value as YAML reads it (``0.01`` a float, ``gat`` a string, ``[16, 32]`` a list);
    text YAML cannot parse stays the text; an empty value is the empty string."""
    try:
        return load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


# ----------------------------------------------------------------------------- grids
MAX_GRID = 1000  # combinations of one command line's comma lists: each is a cell trained per seed


@dataclass(frozen=True)
class GridPoint:
    """One combination of a command line's comma lists: the overrides with one value per list,
    ``labels`` (``lr=0.01``, in the order given) and the dotted ``keys`` that vary."""

    overrides: dict
    labels: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


def multiplies(tp, f: dataclasses.Field) -> bool:
    """Whether a comma list given to a field of type ``tp`` makes a grid: scalar ints, floats and
    bools, and strings with ``choices`` (or a Literal); plain strings (``eval_iters=1,2,4``,
    ``targets=T1104-D1,T1119-D1``) and lists (``channels=[16,32]``) keep the value as given."""
    arms = (
        [a for a in get_args(tp) if a is not type(None)] if get_origin(tp) in (typing.Union, types.UnionType) else [tp]
    )
    return bool(arms) and all(
        a in (int, float, bool) or get_origin(a) is Literal or (a is str and bool(f.metadata.get("choices")))
        for a in arms
    )


def grid_axes(cls, overrides: dict, prefix: str = "") -> list[tuple[str, list[tuple[str, Any]]]]:
    """The comma lists of ``overrides`` that make a grid (see :func:`multiplies`): (dotted key,
    [(text, value), ...]) each, values parsed as YAML scalars like any override. Unknown keys are left
    to :func:`apply`, which names them."""
    hints, fields = _schema(cls)
    axes = []
    for key, value in overrides.items():
        f = fields.get(key) or next((g for g in fields.values() if key and g.metadata.get("was") == key), None)
        if f is None:
            continue
        tp, path = hints[f.name], f"{prefix}{key}"
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            axes += grid_axes(tp, value, f"{path}.")
        elif isinstance(value, str) and "," in value and multiplies(tp, f):
            texts = [t.strip() for t in value.split(",")]
            if not all(texts):
                raise RecipeError(f"command line: {path}={value!r}: an empty value in a comma list (e.g. {path}=A,B)")
            axes.append((path, [(t, _scalar(t)) for t in texts]))
    return axes


def expand_grid(cls, overrides: dict) -> list[GridPoint]:
    """The combinations of the comma lists in ``overrides`` (config ``cls``): their product, first
    list slowest; without lists one point, ``overrides`` itself."""
    axes = grid_axes(cls, overrides)
    if not axes:
        return [GridPoint(overrides)]
    count = math.prod(len(values) for _, values in axes)
    if count > MAX_GRID:
        raise RecipeError(
            f"command line: the comma lists make {count} combinations, at most {MAX_GRID} "
            f"(each is a cell trained per seed); use shorter lists"
        )
    points = []
    for combo in itertools.product(*(values for _, values in axes)):
        ov = copy.deepcopy(overrides)
        for (path, _), (_, value) in zip(axes, combo):
            *parents, last = path.split(".")
            node = ov
            for part in parents:
                node = node[part]
            node[last] = value
        labels = tuple(f"{path}={text}" for (path, _), (text, _) in zip(axes, combo))
        points.append(GridPoint(ov, labels, tuple(path for path, _ in axes)))
    return points


# ----------------------------------------------------------------------------- files
def read_recipe(path: str | Path, experiment: str) -> dict:
    """Load a recipe file and check its top-level layout (not the cell contents)."""
    p = Path(path)
    data = _parse_recipe(p, _recipe_text(p))
    if not isinstance(data, dict):
        raise RecipeError(f"{p}: a recipe must be a mapping at top level, got {type(data).__name__}")
    for key in data:
        if key not in RECIPE_KEYS:
            hint = difflib.get_close_matches(str(key), sorted(RECIPE_KEYS), n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise RecipeError(f"{p}: unknown key {key!r}{extra}")
    if data.get("experiment", experiment) != experiment:
        raise RecipeError(f"{p}: recipe is for experiment {data['experiment']!r}, not {experiment!r}")
    for key in ("sweep", "defaults", "scales", "cells"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise RecipeError(f"{p}: {key!r} must be a mapping")
    _check_sections(p, data)
    data["_path"] = str(p)
    return data


def _recipe_text(p: Path) -> str:
    """The file's text: UTF-8 (a UTF-8 byte-order mark is allowed); anything else is one line."""
    if p.is_dir():
        raise RecipeError(f"recipe is a directory, not a YAML file: {p}")
    if not p.is_file():
        raise RecipeError(f"recipe not found: {p}")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise RecipeError(f"{p}: cannot read the recipe ({e.strerror or e})") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise RecipeError(f"{p}: the recipe is UTF-16 (or UTF-32) text; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RecipeError(
            f"{p}: not a UTF-8 text file (byte {raw[e.start]:#04x} at offset {e.start}); a recipe is UTF-8 YAML"
        ) from None


def _parse_recipe(p: Path, text: str):
    try:
        return load_yaml(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise RecipeError(f"{p}:{where} malformed YAML: {problem}") from None
    except RecursionError:
        raise RecipeError(f"{p}: malformed YAML: nested too deeply") from None


def _check_sections(p: Path, data: dict) -> None:
    """Cells and scale presets: named by strings, at least one cell, presets of the right shape."""
    if not data.get("cells"):
        raise RecipeError(
            f"{p}: the recipe has no cells (add a 'cells:' mapping, one entry per table cell, "
            f"e.g. cells: {{GCN/Cora: {{model: plain}}}})"
        )
    for section in ("cells", "scales"):
        for name in data.get(section) or {}:
            if not isinstance(name, str):
                raise RecipeError(f"{p}: {section}: names must be strings, got {name!r}")
    for name, preset in (data.get("scales") or {}).items():
        if not isinstance(preset, dict) or set(preset) - {"sweep", "config", "cells"}:
            raise RecipeError(
                f"{p}: scales.{name}: a preset holds only 'sweep' and 'config' mappings "
                f"and 'cells' (a regular expression of the cells it runs)"
            )
        if "cells" in preset and not isinstance(preset["cells"], str):
            raise RecipeError(f"{p}: scales.{name}.cells must be a regular expression (a string)")


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def as_config(cls, cfg):
    """The typed config ``cls`` for ``cfg``: ``cfg`` itself when it already is one, else built from a
    resolved config dict (a record's ``config``, what :func:`to_dict` gave), renamed keys migrated
    (:func:`migrate`). Experiments call this where a run enters them, so they read ``c.lr``, never
    ``c["lr"]``."""
    if isinstance(cfg, cls):
        return cfg
    if not isinstance(cfg, dict):
        raise TypeError(f"expected a {cls.__name__} or a dict, got {type(cfg).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    d = migrate(cls, cfg)
    unknown = sorted(set(d) - names)
    if unknown:
        raise RecipeError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
    return cls(**d)


def migrate(cls, cfg: dict) -> dict:
    """A stored config dict with the names of today's fields: a field declared ``fld(..., was="old")``
    takes the value stored under ``old`` by records written before the rename."""
    out = dict(cfg)
    for f in dataclasses.fields(cls):
        old = f.metadata.get("was")
        if old and old in out and f.name not in out:
            out[f.name] = out.pop(old)
    return out


def parse_int_list(spec: str, name: str = "value") -> list[int]:
    """'1:40' -> 1..40 inclusive; '1,2,4' -> [1, 2, 4]; '' -> [] (iteration counts)."""
    spec = spec.strip()
    if not spec:
        return []
    try:
        if ":" in spec:
            lo, hi = (int(v) for v in spec.split(":"))
            ks = list(range(lo, hi + 1)) if 1 <= lo <= hi <= 1000 else []  # (never a list of 10**20)
        else:
            ks = [int(v) for v in spec.split(",")]
    except ValueError:
        raise RecipeError(f"{name}={spec!r}: expected 'first:last' or a comma list of integers") from None
    if not ks or min(ks) < 1 or max(ks) > 1000:
        raise RecipeError(f"{name}={spec!r}: iteration counts must lie in 1..1000")
    return ks


def int_list_field(value: str, path: str) -> None:
    """``check`` of an iteration-list field (``eval_iters``): parses as :func:`parse_int_list`."""
    parse_int_list(value, path)


def identity(cfg) -> dict:
    """The part of a config that names a run: every field, except ``added``
    fields still at their default (see :func:`fld`)."""
    out = to_dict(cfg)
    for f in dataclasses.fields(cfg):
        if f.metadata.get("added"):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if out[f.name] == default:
                del out[f.name]
        if f.metadata.get("was") and f.name in out:  # renamed: the key is the one it had before
            out[f.metadata["was"]] = out.pop(f.name)
    return out


def config_hash(d: dict, exclude: tuple[str, ...] = ()) -> str:
    """Short stable hash of a resolved config (canonical JSON)."""
    body = {k: v for k, v in d.items() if k not in exclude}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def describe(cls) -> list[tuple[str, str, str, str]]:
    """(name, type, default, help) for every field, for ``picard list``."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("per_run"):
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append((f.name, _type_name(hints[f.name]), repr(default), f.metadata.get("help", "")))
    return rows
