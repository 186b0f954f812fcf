import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A data root with a generated Cora-format graph (Planetoid raw files)."""
    from picard_cli.data.synthetic import write_planetoid_raw

    root = tmp_path_factory.mktemp("synth-data")
    write_planetoid_raw(root, "cora", seed=1)
    return root


@pytest.fixture
def tiny_recipe(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("""
experiment: pign
description: tiny grid on the generated graph
sweep: {seeds: 2}
scales: {quick: {sweep: {seeds: 2}}, paper: {sweep: {seeds: 3}}}
defaults: {epochs: 5, hidden: 8}
cells:
  GCN/Cora:      {model: plain, backbone: gcn, depth: 2, lr: 0.02}
  PIGN-GCN/Cora: {model: pign, backbone: gcn, depth: 3, a: 0.6, lr: 0.02}
  GAT/Cora-50%:  {model: plain, backbone: gat, noise: 0.5, hidden: 4, heads: 2, lr: 0.01}
""")
    return path


def picard(*args, env=None, timeout=300):
    """Run the CLI as a user would (a fresh process)."""
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("XDG_CACHE_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "picard-test-cache"))
    return subprocess.run(
        [sys.executable, "-m", "picard_cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
    )
