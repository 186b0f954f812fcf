import json

import pytest

from picard_cli.results import ResultStore


def test_append_and_read_back(tmp_path):
    store = ResultStore(tmp_path, "exp")
    store.append([{"key": "a", "config": {}, "v": 1}, {"key": "b", "config": {}, "v": float("nan")}])
    store.append([{"key": "c", "config": {}, "v": 3}])
    recs = store.records()
    assert [r["key"] for r in recs] == ["a", "b", "c"]
    assert store.done_keys() == {"a", "b", "c"}
    assert list(store.dataframe()["key"]) == ["a", "b", "c"]


def test_torn_last_line_is_tolerated_then_cut_before_next_append(tmp_path):
    store = ResultStore(tmp_path, "exp")
    store.append([{"key": "a", "config": {}}])
    with open(store.path, "ab") as fh:  # a crash in the middle of a write
        fh.write(b'{"key": "b", "metr')
    with pytest.warns(UserWarning, match="torn last line"):
        assert store.done_keys() == {"a"}
    with pytest.warns(UserWarning, match="removed a torn last line"):
        store.append([{"key": "b", "config": {}}])
    lines = store.path.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "b"]


def test_missing_file_is_empty(tmp_path):
    assert ResultStore(tmp_path, "none").records() == []


def test_a_git_archive_export_still_records_its_commit(tmp_path):
    """Long sweeps run from a frozen export of the code (git archive): its records must still name
    the commit (picard_cli/COMMIT is filled in by git on export)."""
    import subprocess
    import sys

    from picard_cli.runner import REPO

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    archive = subprocess.run(["git", "archive", "HEAD", "picard_cli"], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    out = subprocess.run(
        [sys.executable, "-c", "from picard_cli import env; print(env.git_sha())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == head.stdout.strip() + "+export"
