"""The README and the documentation site (docs/, mkdocs.yml): a short README whose links resolve, every
page in the navigation, one page per registered experiment on the shared template, every generated
block known and filled, no references to the workspace, issue numbers or dated logs, and a strict
mkdocs build (broken links and anchors fail)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from picard_cli import registry
from picard_cli.runner import REPO

sys.path.insert(0, str(REPO / "scripts"))
import laptop_docs  # noqa: E402

DOCS = REPO / "docs"
TEMPLATE = [
    "The paper's claim",
    "Command and recipe",
    "Choices where the paper is silent",
    "Our table",
    "Deviations and why",
]


def nav_pages(nav) -> list[str]:
    out = []
    for item in nav:
        for value in item.values() if isinstance(item, dict) else [item]:
            out += nav_pages(value) if isinstance(value, list) else [value]
    return out


def test_readme_is_short_and_its_links_resolve():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "PICARD_DATA" in text and "--data-root" in text and "make install" in text
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not target.startswith(("http://", "https://")):
            assert (REPO / target).exists(), target


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    cfg = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    nav = nav_pages(cfg["nav"])
    assert len(nav) == len(set(nav))
    assert all((DOCS / p).exists() for p in nav), [p for p in nav if not (DOCS / p).exists()]
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages
    # reading order: getting started, then data
    assert nav.index("getting-started.md") + 1 == nav.index("data.md")


@pytest.mark.parametrize("name", registry.names())
def test_one_page_per_experiment_on_the_template(name):
    page = DOCS / "experiments" / f"{name}.md"
    assert page.exists(), f"no docs page for experiment {name}"
    heads = re.findall(r"^## (.+)$", page.read_text(), flags=re.M)
    assert heads == TEMPLATE, heads


def test_laptop_tables_are_on_their_experiment_pages():
    for name in laptop_docs.EXPERIMENTS:
        if laptop_docs.archived(name):
            assert f"<!-- laptop:{name}:begin -->" in (DOCS / "experiments" / f"{name}.md").read_text(), name


def test_generated_blocks_are_known_closed_and_filled():
    texts = {p: p.read_text() for p in laptop_docs.pages()}
    assert REPO / "README.md" in texts and DOCS / "benchmarks.md" in texts
    assert laptop_docs.marker_errors(texts) == []
    blocks = 0
    for p, t in texts.items():
        for kind, name, body in re.findall(
            r"<!-- (laptop|archive):([\w.-]+):begin -->(.*?)<!-- \1:\2:end -->", t, flags=re.S
        ):
            blocks += 1
            assert body.strip(), f"{p.name}: block {kind}:{name} is empty (run scripts/laptop_docs.py)"
    assert blocks >= len(laptop_docs.ARCHIVE_BLOCKS)
    used = {n for t in texts.values() for n in re.findall(r"<!-- archive:([\w.-]+):begin -->", t)}
    assert used == set(laptop_docs.ARCHIVE_BLOCKS), "every archive block is shown somewhere"


def test_an_unknown_or_unclosed_marker_is_an_error():
    texts = {
        DOCS / "x.md": "<!-- archive:no-such-block:begin -->\n<!-- archive:no-such-block:end -->\n"
        "<!-- laptop:vit-pde:begin -->\n"
    }
    errors = laptop_docs.marker_errors(texts)
    assert any("unknown block archive:no-such-block" in e for e in errors)
    assert any("no end marker" in e for e in errors)


def test_docs_state_their_facts_themselves():
    """No links into the shared workspace, no issue numbers, no dated measurement logs or commit hashes."""
    bad = re.compile(
        r"shared/|\bissue #?\d+|\b(?:measured|state of|runs from|at commit|commit) "
        r"(?:on )?(?:20\d\d-\d\d-\d\d|[0-9a-f]{7,40})\b|(?<![\w-])20\d\d-\d\d-\d\d(?![\w-])",
        re.I,
    )
    allowed = {"2022-01-01"}  # the paper's AlphaFold template cutoff: a fact about the paper, not a log
    # (dates inside file names, e.g. weights-inception-2015-12-05-6726825d.pth, are not logs either)
    for p in [REPO / "README.md", *DOCS.rglob("*.md")]:
        for i, line in enumerate(p.read_text().splitlines(), 1):
            hits = [m.group(0) for m in bad.finditer(line) if m.group(0) not in allowed]
            assert not hits, f"{p.relative_to(REPO)}:{i}: {hits}"


def test_mkdocs_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    # no -q: quiet mode hides the warnings that --strict turns into errors
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "site" / "experiments" / "pign" / "index.html").exists()
