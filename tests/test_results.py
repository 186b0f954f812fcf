import json

import pytest

from picard_cli.results import ResultStore


def test_append_and_read_back(tmp_path):
    store = ResultStore(tmp_path, "exp")
    store.append([{"key": "a", "v": 1}, {"key": "b", "v": float("nan")}])
    store.append([{"key": "c", "v": 3}])
    recs = store.records()
    assert [r["key"] for r in recs] == ["a", "b", "c"]
    assert store.done_keys() == {"a", "b", "c"}
    assert list(store.dataframe()["key"]) == ["a", "b", "c"]


def test_torn_last_line_is_tolerated_then_cut_before_next_append(tmp_path):
    store = ResultStore(tmp_path, "exp")
    store.append([{"key": "a"}])
    with open(store.path, "ab") as fh:  # a crash in the middle of a write
        fh.write(b'{"key": "b", "metr')
    with pytest.warns(UserWarning, match="torn last line"):
        assert store.done_keys() == {"a"}
    with pytest.warns(UserWarning, match="removed a torn last line"):
        store.append([{"key": "b"}])
    lines = store.path.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "b"]


def test_missing_file_is_empty(tmp_path):
    assert ResultStore(tmp_path, "none").records() == []
