"""Style rules ruff has no check for: no tuple expressions used as statements (``a(), b()`` for their
side effects) and no lambdas assigned to names, ``noqa`` or not, in the package."""

import ast

from conftest import REPO


def _offences():
    for path in sorted((REPO / "picard_cli").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Tuple):
                yield f"{path.relative_to(REPO)}:{node.lineno}: tuple expression as a statement"
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
                yield f"{path.relative_to(REPO)}:{node.lineno}: lambda assigned to a name (use def)"


def test_no_tuple_statements_or_assigned_lambdas():
    assert list(_offences()) == []


def test_the_check_sees_both(tmp_path):
    tree = ast.parse("a(), b()\nf = lambda x: x\n")
    kinds = [type(n.value).__name__ for n in ast.walk(tree) if isinstance(n, (ast.Expr, ast.Assign))]
    assert kinds == ["Tuple", "Lambda"]


# Code that a newcomer reads to change an experiment or how runs are driven: functions fit on a screen.
SMALL = [
    "experiments",
    "runner.py",
    "records.py",
    "executors",
    "report",
    "cli.py",
    "experiment.py",
    "leases.py",
    "models/stacked_gnn",
    "structure/scoring",
    "metrics/fid",
]
MAX_LINES = 60


def long_functions(paths, root=REPO) -> list[str]:
    out = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    out.append(f"{path.relative_to(root)}:{node.lineno}: {node.name} has {n} lines")
    return out


def test_functions_fit_on_a_screen():
    paths = []
    for name in SMALL:
        p = REPO / "picard_cli" / name
        assert p.exists(), p
        paths += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    assert long_functions(paths) == []


def test_the_length_check_counts_lines(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n" + "    x = 1\n" * MAX_LINES + "\n\ndef g():\n    pass\n")
    assert long_functions([f], tmp_path) == [f"m.py:1: f has {MAX_LINES + 1} lines"]
