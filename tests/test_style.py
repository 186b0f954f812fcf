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
