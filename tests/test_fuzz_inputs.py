"""Fuzzer (issue 23): every malformed input is ONE line on stderr starting ``error:``, exit code 2, no
traceback, and no ``*.jsonl`` in the results folder.

The cases are generated from the experiments' own config schemas (``recipes.describe`` and the fields'
``range`` / ``choices`` / ``check``): for every field of every experiment (and of the sweep) a wrong type,
a value out of range, nan, inf, -inf or a huge number, as a ``key=value`` / ``--key value`` override and
inside a copy of the experiment's default recipe (top-level defaults, a cell, a scale preset); then YAML
shapes and encodings, CLI usage errors, paths, ``picard score`` and ``picard data navier-stokes``.

The CLI runs in this process (``cli.main`` with ``sys.argv`` patched) and a few cases in a fresh process.
Nothing may train, load data, score or solve: those steps are replaced by a sentinel that fails the case.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from pathlib import Path

import pytest
import yaml

from picard_cli import cli, registry, runner
from picard_cli.recipes import Sweep, describe, load_yaml

from conftest import picard

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ReachedWork(BaseException):
    """Raised where the CLI would train, load data, score or solve: the input passed validation."""


def _sentinel(what: str):
    def hit(*args, **kwargs):
        raise ReachedWork(f"the input reached {what}: it was not refused up front")

    return hit


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    from picard_cli.data import navier_stokes
    from picard_cli.structure import scoring

    monkeypatch.setattr(runner, "check_data", _sentinel("data loading (runner.check_data)"))
    monkeypatch.setattr(runner, "_run_here", _sentinel("training (runner._run_here)"))
    monkeypatch.setattr(runner.Driver, "remote", _sentinel("training (Driver.remote)"))
    monkeypatch.setattr(navier_stokes, "generate", _sentinel("the Navier-Stokes solver"))
    monkeypatch.setattr(scoring, "score_models", _sentinel("structure scoring"))


@pytest.fixture(autouse=True)
def built_once(monkeypatch):
    """Typer rebuilds the click command tree on every call (~40 ms, most of a case): build it once."""
    import typer.main

    build = typer.main.get_command
    tree = _TREE.setdefault("app", build(cli.app))
    monkeypatch.setattr(typer.main, "get_command", lambda app: tree if app is cli.app else build(app))


_TREE: dict = {}


# ----------------------------------------------------------------------------- running and checking
def invoke(argv: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    """``picard <argv>`` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["picard", *map(str, argv)])
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, ANSI.sub("", out), ANSI.sub("", err)


def assert_refused(code: int, out: str, err: str, results: Path | None = None) -> None:
    lines = err.strip().splitlines()
    assert "Traceback" not in out + err, err
    assert code == 2, f"exit code {code}; stderr: {err!r}"
    assert len(lines) == 1 and lines[0].strip(), f"stderr is not one line: {err!r}"
    assert lines[0].startswith("error:"), lines[0]
    if results is not None:
        assert not list(results.rglob("*.jsonl")), "a results file was written"


def run_case(argv, tmp_path, capsys, monkeypatch, results=True):
    res = tmp_path / "res"
    full = [*argv, "--results", res] if results else argv
    assert_refused(*invoke(full, capsys, monkeypatch), res)


# ----------------------------------------------------------------------------- bad values from the schemas
NAN, INF = float("nan"), float("inf")


def _bad_values(f: dataclasses.Field, tp) -> list[tuple[str, str, object]]:
    """(label, text as typed on the command line, value as written in a YAML file) of values the field
    must refuse: wrong types, out of its range or choices, nan, inf, -inf, huge."""
    rng, choices, check = (f.metadata.get(k) for k in ("range", "choices", "check"))
    origin = typing.get_origin(tp) or tp
    if tp is bool:
        return [("word", "maybe", "maybe"), ("int", "3", 3), ("nan", "nan", NAN)]
    if tp is int:
        out = [
            ("word", "abc", "abc"),
            ("fraction", "1.5", 1.5),
            ("nan", "nan", NAN),
            ("inf", "inf", INF),
            ("-inf", "-inf", -INF),
            ("huge", str(10**20), 10**20),
            ("list", "[1, 2]", [1, 2]),
        ]
        if rng:
            out += [("below", str(rng[0] - 1), rng[0] - 1), ("above", str(rng[1] + 1), rng[1] + 1)]
        if choices:
            out.append(("not-a-choice", str(max(choices) + 1), max(choices) + 1))
        return out
    if tp is float:
        out = [
            ("word", "abc", "abc"),
            ("nan", "nan", NAN),
            ("inf", "inf", INF),
            ("-inf", "-inf", -INF),
            ("bool", "true", True),
            ("mapping", "{a: 1}", {"a": 1}),
        ]
        if rng is None or rng[1] < 1e30:
            out.append(("huge", "1e30", 1e30))
        if rng and rng[0] > -1e300:
            out.append(("below", repr(rng[0] - 1.0), rng[0] - 1.0))
        return out
    if tp is str:
        out = [("list", "[1, 2]", [1, 2]), ("mapping", "{a: 1}", {"a": 1})]
        if choices:
            out += [("not-a-choice", "nosuch", "nosuch"), ("huge", str(10**20), 10**20)]
        if check:
            out += [
                ("unparsable", "abc", "abc"),
                ("out-of-range", "0:5", "0:5"),
                ("huge-range", f"1:{10**20}", f"1:{10**20}"),
            ]
        return out
    if origin is list:
        item = (typing.get_args(tp) or (typing.Any,))[0]
        out = [("word", "abc", "abc"), ("mapping", "{a: 1}", {"a": 1})]
        if item is int:
            out += [("nan-item", "[.nan]", [NAN]), ("huge-item", f"[{10**20}]", [10**20]), ("word-item", "[x]", ["x"])]
        if item is str:
            out += [("list-item", "[[1]]", [[1]])]
        if rng:
            out.append(("below-item", f"[{rng[0] - 1}]", [rng[0] - 1]))
        return out
    raise AssertionError(f"no bad values for a field of type {tp!r}: extend the fuzzer")


def _schema(cls) -> list[tuple[str, dataclasses.Field, object]]:
    """(name, field, type) of every user field, as ``picard list`` shows them."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return [(name, fields[name], hints[name]) for name, *_ in describe(cls)]


def _typed(name: str) -> str:
    """The experiment name a user types (pign-lrgb runs as `picard sweep pign --recipe ...`)."""
    return registry.FAMILY.get(name, name)


def _override_cases():
    """One bad value per field (kinds rotate over the fields), alternating key=value and --key value."""
    for exp_name in registry.names():
        exp = registry.get(exp_name)
        for i, (name, f, tp) in enumerate(_schema(exp.config_cls)):
            label, text, _ = (vals := _bad_values(f, tp))[i % len(vals)]
            args = [f"{name}={text}"] if i % 2 else [f"--{name.replace('_', '-')}", text]
            recipe = [] if exp_name == _typed(exp_name) else ["--recipe", runner.default_recipe(exp)]
            yield pytest.param([_typed(exp_name), *recipe, *args], id=f"{exp_name}-{name}-{label}")
    for i, (name, f, tp) in enumerate(_schema(Sweep)):
        for label, text, _ in _bad_values(f, tp)[i % 2 :: 3]:
            yield pytest.param(["pign", f"sweep.{name}={text}"], id=f"sweep-{name}-{label}")


OVERRIDES = list(_override_cases())


@pytest.mark.parametrize("argv", OVERRIDES)
def test_bad_override_is_one_line(argv, tmp_path, capsys, monkeypatch):
    run_case(["run", *argv], tmp_path, capsys, monkeypatch)


def _recipe_cases():
    """Bad values inside a copy of each experiment's default recipe: in defaults, in its first cell and in
    the quick scale preset, six fields (and kinds) per place; and in the recipe's sweep section."""
    places = ("defaults", "cell", "preset")
    for exp_name in registry.names():
        schema = _schema(registry.get(exp_name).config_cls)
        for p, place in enumerate(places):
            for k in range(6):
                name, f, tp = schema[(p * 7 + k * 11) % len(schema)]
                vals = _bad_values(f, tp)
                label, _, value = vals[(k + p) % len(vals)]
                yield pytest.param(exp_name, place, name, value, id=f"{exp_name}-{place}-{name}-{label}")
    for i, (name, f, tp) in enumerate(_schema(Sweep)):
        label, _, value = (vals := _bad_values(f, tp))[i % len(vals)]
        yield pytest.param("pign", "sweep", name, value, id=f"pign-sweep-{name}-{label}")


def _recipe_copy(exp_name: str) -> dict:
    return load_yaml(runner.default_recipe(registry.get(exp_name)).read_text())


def _put(recipe: dict, place: str, name: str, value) -> dict:
    if place == "defaults":
        recipe.setdefault("defaults", {})[name] = value
    elif place == "cell":
        first = next(iter(recipe["cells"]))
        recipe["cells"][first] = dict(recipe["cells"][first] or {}, **{name: value})
    elif place == "preset":
        preset = recipe.setdefault("scales", {}).setdefault("quick", {})
        preset.setdefault("config", {})[name] = value
    else:
        recipe.setdefault("sweep", {})[name] = value
    return recipe


def write_recipe(tmp_path: Path, recipe: dict, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(recipe, Dumper=dumper, sort_keys=False, allow_unicode=True))
    return path


@pytest.mark.parametrize("exp_name, place, name, value", list(_recipe_cases()))
def test_bad_value_in_recipe_is_one_line(exp_name, place, name, value, tmp_path, capsys, monkeypatch):
    path = write_recipe(tmp_path, _put(_recipe_copy(exp_name), place, name, value))
    run_case(["sweep", _typed(exp_name), "--recipe", path], tmp_path, capsys, monkeypatch)


SEED_CASES = [
    ["run", "pign", "seed=7"],
    ["run", "pign", "--seed", "7"],
    ["run", "ddpm", "seed=3"],
    ["run", "anie", "--seed", "8"],
]


@pytest.mark.parametrize("argv", SEED_CASES, ids=lambda a: "-".join(a[1:]))
def test_seed_is_not_a_user_field(argv, tmp_path, capsys, monkeypatch):
    res = tmp_path / "res"
    code, out, err = invoke([*argv, "--results", res], capsys, monkeypatch)
    assert_refused(code, out, err, res)
    assert "--seeds" in err and "seed_base" in err


@pytest.mark.parametrize("place", ["defaults", "cell", "preset"])
def test_seed_in_a_recipe_is_refused(place, tmp_path, capsys, monkeypatch):
    path = write_recipe(tmp_path, _put(_recipe_copy("pign"), place, "seed", 7))
    run_case(["sweep", "pign", "--recipe", path], tmp_path, capsys, monkeypatch)


def test_picard_list_does_not_show_the_run_seed(capsys, monkeypatch):
    for name in registry.names():
        code, out, err = invoke(["list", name], capsys, monkeypatch)
        assert code == 0 and err == ""
        assert not re.search(r"^\s*seed:", out, re.MULTILINE), out


# ----------------------------------------------------------------------------- YAML shapes and encodings
PIGN_TEXT = "experiment: pign\ncells:\n  GCN/Cora: {model: plain, lr: 0.01}\n"
SHAPES = {
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00",
    "random-bytes": bytes(range(256)),
    "utf16-bom": PIGN_TEXT.encode("utf-16"),
    "utf16-be-bom": b"\xfe\xff" + PIGN_TEXT.encode("utf-16-be"),
    "utf16-no-bom": PIGN_TEXT.encode("utf-16-le"),
    "utf32": PIGN_TEXT.encode("utf-32"),
    "latin1": "experiment: pign\ncells: {Caf\xe9: {lr: 0.01}}\n".encode("latin-1"),
    "nul-byte": b"experiment: pign\x00\n",
    "list-top": b"- experiment: pign\n- cells: {}\n",
    "scalar-top": b"just a sentence\n",
    "number-top": b"42\n",
    "empty": b"",
    "only-comments": b"# nothing here\n",
    "only-experiment": b"experiment: pign\n",
    "cells-empty": b"experiment: pign\ncells: {}\n",
    "cells-null": b"experiment: pign\ncells:\n",
    "cells-list": b"experiment: pign\ncells: [a, b]\n",
    "cells-scalar": b"experiment: pign\ncells: 3\n",
    "cell-scalar": b"experiment: pign\ncells: {A: 3}\n",
    "cell-list": b"experiment: pign\ncells: {A: [lr, 0.1]}\n",
    "cell-name-int": b"experiment: pign\ncells: {1: {lr: 0.1}}\n",
    "duplicate-top-key": b"experiment: pign\nexperiment: pign\ncells: {A: {lr: 0.1}}\n",
    "duplicate-field": b"experiment: pign\ncells:\n  A: {lr: 0.1, lr: 0.2}\n",
    "duplicate-field-block": b"experiment: pign\ndefaults:\n  epochs: 5\n  epochs: 6\ncells: {A: {}}\n",
    "duplicate-cell": b"experiment: pign\ncells:\n  A: {lr: 0.1}\n  A: {lr: 0.2}\n",
    "duplicate-scale": b"experiment: pign\nscales: {quick: {}, quick: {}}\ncells: {A: {}}\n",
    "tabs": b"experiment: pign\ncells:\n\tA: {lr: 0.1}\n",
    "unclosed-bracket": b"experiment: pign\ncells: {A: {lr: 0.1}\n",
    "unclosed-quote": b"experiment: 'pign\ncells: {A: {}}\n",
    "bad-indent": b"experiment: pign\ncells:\n  A:\n    lr: 0.1\n   hidden: 3\n",
    "colon-soup": b"experiment: pign\ncells: : :\n",
    "unhashable-key": b"experiment: pign\n? [a, b]\n: 1\ncells: {A: {}}\n",
    "python-tag": b"experiment: pign\ncells: !!python/object/apply:os.system ['true']\n",
    "deep-nesting": b"experiment: pign\ncells: " + b"[" * 1000 + b"]" * 1000 + b"\n",
    "sweep-scalar": b"experiment: pign\nsweep: 3\ncells: {A: {}}\n",
    "sweep-list": b"experiment: pign\nsweep: [seeds, 3]\ncells: {A: {}}\n",
    "defaults-list": b"experiment: pign\ndefaults: [1]\ncells: {A: {}}\n",
    "scales-scalar": b"experiment: pign\nscales: fast\ncells: {A: {}}\n",
    "preset-scalar": b"experiment: pign\nscales: {quick: 3}\ncells: {A: {}}\n",
    "preset-unknown-key": b"experiment: pign\nscales: {quick: {seeds: 3}}\ncells: {A: {}}\n",
    "preset-cells-int": b"experiment: pign\nscales: {quick: {cells: 3}}\ncells: {A: {}}\n",
    "preset-cells-bad-regex": b"experiment: pign\nscales: {quick: {cells: '('}}\ncells: {A: {}}\n",
    "preset-sweep-scalar": b"experiment: pign\nscales: {quick: {sweep: 3}}\ncells: {A: {}}\n",
    "preset-config-list": b"experiment: pign\nscales: {quick: {config: [1]}}\ncells: {A: {}}\n",
    "scale-name-int": b"experiment: pign\nscales: {1: {}}\ncells: {A: {}}\n",
    "no-quick-scale": b"experiment: pign\nscales: {paper: {}}\ncells: {A: {}}\n",
    "other-experiment": b"experiment: ddpm\ncells: {A: {}}\n",
    "experiment-list": b"experiment: [pign]\ncells: {A: {}}\n",
    "unknown-top-key": b"experiment: pign\ncels: {A: {}}\n",
    "unknown-field": b"experiment: pign\ncells: {A: {lrr: 0.1}}\n",
    "unknown-sweep-key": b"experiment: pign\nsweep: {sedes: 3}\ncells: {A: {}}\n",
    "binary-value": b"experiment: pign\ncells: {A: {lr: !!binary aGVsbG8=}}\n",
    "date-value": b"experiment: pign\ncells: {A: {lr: 2022-01-01}}\n",
    "markup-in-key": b"experiment: pign\ncells: {A: {'[bold]lr[/bold]': 1}}\n",
    "newline-in-key": b'experiment: pign\ncells: {A: {"l\\nr": 1}}\n',
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_malformed_recipe_file_is_one_line(name, tmp_path, capsys, monkeypatch):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(SHAPES[name])
    run_case(["sweep", "pign", "--recipe", path], tmp_path, capsys, monkeypatch)


def test_duplicate_key_is_named(tmp_path, capsys, monkeypatch):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(SHAPES["duplicate-field"])
    code, out, err = invoke(["sweep", "pign", "--recipe", path, "--results", tmp_path / "res"], capsys, monkeypatch)
    assert code == 2 and "duplicate key 'lr'" in err and "line 3" in err


@pytest.mark.parametrize("name", ["empty", "cells-empty", "only-experiment", "cells-null"])
def test_recipe_without_cells_says_so(name, tmp_path, capsys, monkeypatch):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(SHAPES[name])
    code, out, err = invoke(["sweep", "pign", "--recipe", path, "--results", tmp_path / "res"], capsys, monkeypatch)
    assert code == 2 and "has no cells" in err and "--filter" not in err


# ----------------------------------------------------------------------------- command-line usage
USAGE = [
    ["sweep"],
    ["run"],
    ["plan"],
    ["report", "pign", "extra"],
    ["nosuchcommand"],
    ["data", "nosuch"],
    ["run", "pign", "--seeds", "abc"],
    ["run", "pign", "--seeds", "1.5"],
    ["run", "pign", "--seeds"],
    ["run", "pign", "--threads", "x"],
    ["sweep", "pign", "--nproc", "two"],
    ["sweep", "pign", "--time", "soon"],
    ["sweep", "pign", "--gpus-per-task", "some"],
    ["report", "--bogus"],
    ["list", "pign", "--x"],
    ["list", "nosuch"],
    ["score", "only-one.pdb"],
    ["data", "navier-stokes", "--samples", "many"],
    ["data", "navier-stokes", "--bogus"],
    ["plan", "pign", "--measure-steps", "x"],
    ["run", "nosuch"],
    ["sweep", "pignn"],
    ["run", "пign"],
    ["report", "nosuch"],
    ["plan", "nosuch"],
    ["run", "pign", "positional"],
    ["run", "pign", "-x"],
    ["run", "pign", "=5"],
    ["run", "pign", "lr"],
    ["run", "pign", "--seeds", "0"],
    ["run", "pign", "--seeds", "-1"],
    ["run", "pign", "--seeds", str(10**20)],
    ["run", "pign", "--threads", "-1"],
    ["run", "pign", "--device", "gpu"],
    ["run", "pign", "--executor", "x"],
    ["run", "pign", "--scale", "huge"],
    ["run", "pign", "--scale", ""],
    ["sweep", "pign", "--filter", "("],
    ["sweep", "pign", "--filter", "no-such-cell"],
    ["sweep", "pign", "--steps", "100"],
    ["sweep", "ddpm", "--steps", "abc"],
    ["sweep", "ddpm", "--steps", "0"],
    ["sweep", "ddpm", "--steps", "5:1"],
    ["sweep", "ddpm", "--steps", "1:1000000:1"],
    ["sweep", "ddpm", "--steps", f"1:{10**30}"],
    ["sweep", "ddpm", "--steps", "100:200:0"],
    ["sweep", "ddpm", "--steps", "1:2:3:4"],
    ["sweep", "ddpm", "--steps", "200000"],
    ["sweep", "ddpm", "--steps", "nan"],
    ["sweep", "ddpm", "--steps", "100", "timesteps=200"],
    ["sweep", "pign", "--address", "head:6379"],
    ["sweep", "pign", "--partition", "gpu"],
    ["sweep", "pign", "--nproc", "0"],
    ["run", "pign", "sweep=3"],
    ["run", "pign", "sweep=[1]"],
    ["run", "pign", "sweep.seeds=abc"],
    ["run", "pign", "sweep.nosuch=1"],
    ["run", "pign", "lr=1", "lr.x=2"],
    ["run", "pign", "lrö=1"],
    ["run", "pign", "--dataset", "[bold]x"],
    ["run", "pign", "--dataset", "[/x]"],
    ["run", "pign", 'dataset="a\\nb"'],
    ["run", "pign", "lr\nx=1"],
    ["run", "pign", "allow_partial_data=maybe"],
    ["run", "pign", "eval_iters=1:99999999999999999999999"],
    ["report", "pign", "--select-on", "x"],
    ["plan", "pign", "lr=inf", "--no-measure"],
    ["plan", "pign", "seed=7", "--no-measure"],
    ["plan", "ddpm", "--steps", "1:1000000:1", "--no-measure"],
    ["plan", "pign", "--measure-steps", "0", "--no-measure"],
    ["plan", "pign", "--recipe", "", "--no-measure"],
    ["run", "pign", "--data-root", ""],
]


@pytest.mark.parametrize("argv", USAGE, ids=lambda a: " ".join(a) or "-")
def test_usage_error_is_one_line(argv, tmp_path, capsys, monkeypatch):
    results = argv[0] in ("run", "sweep", "report", "plan") and len(argv) > 1
    run_case(argv, tmp_path, capsys, monkeypatch, results=results)


def test_help_still_works(capsys, monkeypatch):
    for argv in (["--help"], ["run", "--help"], ["data", "navier-stokes", "--help"]):
        code, out, err = invoke(argv, capsys, monkeypatch)
        assert code == 0 and "Usage" in out and "error" not in err


# ----------------------------------------------------------------------------- paths
def _paths(tmp_path: Path) -> dict[str, list]:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    (tmp_path / "a-file").write_text("x")
    bad = tmp_path / "récipe-ü.yaml"
    bad.write_text("experiment: pign\ncells: {A: {lr: nope}}\n")
    return {
        "missing-recipe": ["sweep", "pign", "--recipe", tmp_path / "nope.yaml"],
        "recipe-is-directory": ["sweep", "pign", "--recipe", folder],
        "recipe-under-a-file": ["sweep", "pign", "--recipe", tmp_path / "a-file" / "r.yaml"],
        "unicode-missing-recipe": ["sweep", "pign", "--recipe", tmp_path / "ñö-рецепт.yaml"],
        "unicode-bad-recipe": ["sweep", "pign", "--recipe", bad],
        "recipe-empty-name": ["sweep", "pign", "--recipe", ""],
        "run-recipe-is-directory": ["run", "pign", "--recipe", folder],
    }


PATH_CASES = [
    "missing-recipe",
    "recipe-is-directory",
    "recipe-under-a-file",
    "unicode-missing-recipe",
    "unicode-bad-recipe",
    "recipe-empty-name",
    "run-recipe-is-directory",
]


@pytest.mark.parametrize("name", PATH_CASES)
def test_bad_path_is_one_line(name, tmp_path, capsys, monkeypatch):
    run_case(_paths(tmp_path)[name], tmp_path, capsys, monkeypatch)


def test_results_path_is_a_file(tmp_path, capsys, monkeypatch):
    res = tmp_path / "results-file"
    res.write_text("")
    code, out, err = invoke(["run", "pign", "--seeds", "1", "--results", res], capsys, monkeypatch)
    assert_refused(code, out, err)


def test_results_file_is_a_directory(tmp_path, capsys, monkeypatch):
    res = tmp_path / "res"
    (res / "pign.jsonl").mkdir(parents=True)
    assert_refused(*invoke(["report", "pign", "--results", res], capsys, monkeypatch))


# ----------------------------------------------------------------------------- picard score
@pytest.fixture
def structures(tmp_path):
    import numpy as np

    from picard_cli.structure import CAChain, write_ca_pdb

    n, rng = 24, np.random.default_rng(0)
    xyz = np.cumsum(rng.normal(size=(n, 3)) * 2.0, axis=0)
    names = np.array(["ALA", "GLY", "LEU"])[np.arange(n) % 3]
    d = tmp_path / "structures"
    nat = write_ca_pdb(d / "native.pdb", CAChain(xyz, np.arange(1, n + 1), np.full(n, ""), names, "A"))
    renum = write_ca_pdb(d / "renumbered.pdb", CAChain(xyz, np.arange(101, 101 + n), np.full(n, ""), names, "A"))
    short = write_ca_pdb(d / "short.pdb", CAChain(xyz[:10], np.arange(1, 11), np.full(10, ""), names[:10], "A"))
    (d / "garbage.pdb").write_text("this is not a PDB file\n")
    (d / "binary.pdb").write_bytes(bytes(range(256)))
    (d / "empty").mkdir()
    return {
        "native": nat,
        "renumbered": renum,
        "short": short,
        "garbage": d / "garbage.pdb",
        "binary": d / "binary.pdb",
        "empty": d / "empty",
        "dir": d,
    }


SCORE = {
    "renumbered": ["{renumbered}", "{native}"],
    "renumbered-json": ["{renumbered}", "{native}", "--json"],
    "order-length-mismatch": ["{short}", "{native}", "--pair-by", "order"],
    "csv-missing-folder": ["{native}", "{native}", "--csv", "{dir}/missing/dir/s.csv"],
    "csv-is-directory": ["{native}", "{native}", "--csv", "{empty}"],
    "csv-under-a-file": ["{native}", "{native}", "--csv", "{native}/s.csv"],
    "pred-missing": ["{dir}/nope.pdb", "{native}"],
    "target-missing": ["{native}", "{dir}/nope.pdb"],
    "pred-dir-empty": ["{empty}", "{native}"],
    "target-dir-empty": ["{native}", "{empty}"],
    "garbage-pdb": ["{garbage}", "{native}"],
    "binary-pdb": ["{binary}", "{native}"],
    "garbage-native": ["{native}", "{garbage}"],
    "no-such-chain": ["{native}", "{native}", "--chain", "Z"],
    "pair-by-bad": ["{native}", "{native}", "--pair-by", "alignment"],
    "device-bad": ["{native}", "{native}", "--device", "gpu"],
}


@pytest.mark.parametrize("name", list(SCORE))
def test_bad_score_input_is_one_line(name, structures, tmp_path, capsys, monkeypatch):
    argv = ["score", *(a.format(**structures) for a in SCORE[name])]
    run_case(argv, tmp_path, capsys, monkeypatch, results=False)


def test_renumbered_model_suggests_another_pairing(structures, capsys, monkeypatch):
    code, out, err = invoke(["score", structures["renumbered"], structures["native"]], capsys, monkeypatch)
    assert code == 2 and "no residue pairs" in err and "--pair-by order" in err


# ----------------------------------------------------------------------------- picard data navier-stokes
NS = [
    ["--dt", "inf"],
    ["--dt", "nan"],
    ["--dt", "0"],
    ["--dt", "-1e-3"],
    ["--dt", "1e-300"],
    ["--dt", "100"],
    ["--dt", "-inf"],
    ["--nu", "inf"],
    ["--nu", "0"],
    ["--nu", "-1"],
    ["--nu", "nan"],
    ["--resolution", "0"],
    ["--resolution", "7"],
    ["--resolution", "-8"],
    ["--resolution", str(10**6)],
    ["--solve-resolution", "0"],
    ["--solve-resolution", "-8"],
    ["--solve-resolution", "96"],
    ["--ic-resolution", "0"],
    ["--ic-resolution", "32"],
    ["--ic-resolution", "100"],
    ["--ic-resolution", str(10**9)],
    ["--times", "nan"],
    ["--times", "inf"],
    ["--times", "-1"],
    ["--times", "abc"],
    ["--times", ""],
    ["--times", "1,,2"],
    ["--times", "0.0001"],
    ["--times", "1e300"],
    ["--samples", "0"],
    ["--samples", "-1"],
    ["--samples", str(10**20)],
    ["--batch", "0"],
    ["--seed", "-1"],
    ["--seed", str(2**40)],
    ["--variance", "double"],
    ["--precision", "float16"],
    ["--device", "gpu"],
    ["--out", "{tmp}"],
    ["--out", "{tmp}/a-file/ns.h5"],
]


@pytest.mark.parametrize("args", NS, ids=lambda a: " ".join(a))
def test_bad_navier_stokes_parameter_is_one_line(args, tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    out = [] if "--out" in args else ["--out", tmp_path / "ns.h5"]
    argv = ["data", "navier-stokes", *(a.format(tmp=tmp_path) for a in args), *out, "--data-root", tmp_path]
    run_case(argv, tmp_path, capsys, monkeypatch, results=False)
    assert not list(tmp_path.rglob("*.h5"))


# ----------------------------------------------------------------------------- a few as a user runs them
SUBPROCESS = {
    "no-experiment": lambda tmp: ["sweep"],
    "seeds-abc": lambda tmp: ["run", "pign", "--seeds", "abc", "--results", tmp / "res"],
    "binary-recipe": lambda tmp: [
        "sweep",
        "pign",
        "--recipe",
        _write(tmp / "r.yaml", SHAPES["binary"]),
        "--results",
        tmp / "res",
    ],
    "lr-inf": lambda tmp: ["run", "pign", "lr=inf", "--results", tmp / "res"],
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", list(SUBPROCESS))
def test_bad_input_in_a_fresh_process(name, tmp_path):
    r = picard(*SUBPROCESS[name](tmp_path), timeout=120)
    assert_refused(r.returncode, r.stdout, r.stderr, tmp_path / "res")


def test_malformed_results_line_in_a_fresh_process(tmp_path):
    """The skipped line is one warning line, then the error is one line: no traceback, exit 2."""
    res = tmp_path / "res"
    res.mkdir()
    (res / "pign.jsonl").write_text("[1, 2]\n")
    r = picard("report", "pign", "--results", res, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 2 and lines[0].startswith("warning: ") and "not a picard record" in lines[0], lines
    assert lines[1].startswith("error: no results"), lines


def test_the_fuzzer_has_enough_cases():
    n = (
        len(OVERRIDES)
        + len(list(_recipe_cases()))
        + len(SEED_CASES)
        + len(SHAPES)
        + len(USAGE)
        + len(PATH_CASES)
        + len(SCORE)
        + len(NS)
        + len(SUBPROCESS)
    )
    assert n >= 150, n
