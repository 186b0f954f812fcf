import os
import urllib.error

import pytest

from picard_cli.data.planetoid import load_planetoid, raw_files
from picard_cli.errors import DataError


def test_generated_graph_loads_through_pyg_from_read_only_root(tmp_path, monkeypatch):
    import picard_cli.data.planetoid as pl
    from picard_cli.data.synthetic import write_planetoid_raw

    synth_root = write_planetoid_raw(tmp_path / "ro", "cora", seed=2)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(pl, "_writable", lambda path: False)  # a shared read-only copy (CI runs as root)
    data = load_planetoid("cora", synth_root)
    assert data.num_nodes == 1700 and int(data.train_mask.sum()) == 80 and int(data.test_mask.sum()) == 1000
    work = list((tmp_path / "cache" / "picard" / "planetoid-work").glob("*/Cora"))
    assert len(work) == 1 and (work[0] / "processed").is_dir()  # PyG wrote next to the copy, not the source
    assert not (synth_root / "planetoid" / "Cora" / "processed").exists()


def test_generated_graph_features_are_row_normalised(synth_root):
    data = load_planetoid("cora", synth_root)
    sums = data.x.sum(1)
    assert ((sums - 1).abs() < 1e-5).all()
    assert int(data.val_mask.sum()) == 500


def test_missing_offline_is_one_clear_line(tmp_path, monkeypatch):
    from torch_geometric.datasets import Planetoid

    def offline(self):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(Planetoid, "download", offline)  # behave as offline even where online
    with pytest.raises(DataError) as e:
        load_planetoid("citeseer", tmp_path / "empty")
    msg = str(e.value)
    assert "\n" not in msg and "CiteSeer is not under" in msg and "PICARD_DATA" in msg
    assert "ind.citeseer.x" in msg


def test_real_planetoid_files_present_when_picard_data_is_set():
    """CI sets PICARD_DATA to the shared offline copy: it must hold Cora and CiteSeer."""
    root = os.environ.get("PICARD_DATA")
    if not root:
        pytest.skip("PICARD_DATA not set (CI sets it)")
    for name, Name in (("cora", "Cora"), ("citeseer", "CiteSeer")):
        raw = os.path.join(root, "planetoid", Name, "raw")
        missing = [f for f in raw_files(name) if not os.path.exists(os.path.join(raw, f))]
        assert not missing, f"PICARD_DATA={root} lacks {missing}"
