"""One run, one record whatever runs at once; seed groups re-form exactly; failures before the work;
progress lines in logs (issue 23)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, picard
from picard_cli import leases as L
from picard_cli.results import ResultStore

WHERE_AND_WHEN = {"executor", "wall_s", "started"}


def _lines(res: Path, name: str = "pign") -> list[dict]:
    path = res / f"{name}.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _content(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in WHERE_AND_WHEN}


def _start(args: list, log: Path):
    """A driver in the background, its output to a log file (as under nohup); SIGINT as on a terminal
    (a shell starts background jobs with SIGINT ignored, and Python then keeps ignoring it)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", XDG_CACHE_HOME=str(log.parent / "cache"))
    return subprocess.Popen(
        [sys.executable, "-m", "picard_cli", *map(str, args)],
        cwd=REPO,
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


# ------------------------------------------------------------------------------------------ leases
def test_a_lease_is_held_against_other_drivers_and_released(tmp_path):
    a, b = L.Leases(tmp_path / "l"), L.Leases(tmp_path / "l")
    assert a.claim(["k1", "k2"]) is None
    held = b.claim(["k2", "k3"])
    assert held is not None and held["pid"] == os.getpid()
    assert not (tmp_path / "l" / "k3").exists()  # all or none
    a.release(["k2"])
    assert b.claim(["k2", "k3"]) is None
    assert a.claim(["k1"]) is None  # its own lease: claimable again
    a.release_all()
    b.release_all()
    assert sorted(p.name for p in (tmp_path / "l").iterdir()) == [".lock"]


def test_a_dead_drivers_lease_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = tmp_path / "l"
    folder.mkdir()
    me = L.Leases(folder)
    (folder / "k").write_text(json.dumps({"host": me.me["host"], "pid": int(dead.stdout), "token": "x"}))
    assert me.claim(["k"]) is None  # its pid runs no more on this host


def test_a_lease_without_heartbeat_expires(tmp_path, monkeypatch):
    folder = tmp_path / "l"
    folder.mkdir()
    (folder / "k").write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "x"}))
    me = L.Leases(folder)
    assert me.claim(["k"]) is not None  # another host, fresh
    monkeypatch.setenv("PICARD_LEASE_S", "5")
    old = time.time() - 60
    os.utime(folder / "k", (old, old))
    assert me.claim(["k"]) is None


# ---------------------------------------------------------------------------------- reading copies
def test_the_reader_keeps_the_first_record_of_a_key_and_counts_the_copies(tmp_path):
    store = ResultStore(tmp_path, "exp")
    store.append([{"key": "a", "config": {}, "v": 1}, {"key": "b", "config": {}, "v": 2}])
    store.append([{"key": "a", "config": {}, "v": 9}])
    with pytest.warns(UserWarning, match="ignored 1 duplicate"):
        recs = store.records()
    assert [(r["key"], r["v"]) for r in recs] == [("a", 1), ("b", 2)]


@pytest.mark.parametrize("line", [b"[1, 2, 3]", b'{"key": "a"}', b'"text"', b"42", b"\xff\xfe{"])
def test_a_line_that_is_no_record_is_skipped_with_a_warning(tmp_path, line):
    store = ResultStore(tmp_path, "exp")
    store.append([{"key": "z", "config": {}}])
    with open(store.path, "ab") as fh:
        fh.write(line + b"\n")
    store.append([{"key": "y", "config": {}}])
    with pytest.warns(UserWarning, match="not a picard record|not valid JSON"):
        assert [r["key"] for r in store.records()] == ["z", "y"]


def test_report_never_counts_a_key_twice(synth_root, tiny_recipe, tmp_path):
    res = tmp_path / "res"
    out = picard(
        "sweep",
        "pign",
        "--recipe",
        tiny_recipe,
        "--data-root",
        synth_root,
        "--results",
        res,
        "--filter",
        "^GCN/Cora$",
        "--seeds",
        2,
        "epochs=3",
    )
    assert out.returncode == 0, out.stderr
    path = res / "pign.jsonl"
    path.write_text(path.read_text() * 3)  # what two drivers without leases used to leave
    rep = picard("report", "pign", "--results", res)
    assert rep.returncode == 0, rep.stderr
    assert "(n=2" in rep.stdout and "(n=6" not in rep.stdout, rep.stdout


# ----------------------------------------------------------------------------------- two drivers
def test_two_identical_sweeps_at_once_record_every_run_exactly_once(synth_root, tiny_recipe, tmp_path):
    res = tmp_path / "res"
    args = [
        "sweep",
        "pign",
        "--recipe",
        tiny_recipe,
        "--data-root",
        synth_root,
        "--results",
        res,
        "--seeds",
        3,
        "--executor",
        "inprocess",
        "epochs=15",
    ]
    procs = [_start(args, tmp_path / f"driver{i}.log") for i in range(2)]
    for p in procs:
        assert p.wait(timeout=600) == 0, (tmp_path / "driver0.log").read_text()[-2000:]
    recs = _lines(res)
    keys = [r["key"] for r in recs]
    assert len(keys) == 9 and len(set(keys)) == 9, sorted(keys)
    logs = [(tmp_path / f"driver{i}.log").read_text() for i in range(2)]
    assert all("9 run(s) to do" in log for log in logs)
    rep = picard("report", "pign", "--results", res)
    assert rep.returncode == 0 and rep.stdout.count("(n=3") == 3, rep.stdout
    assert not [p for p in (res / "pign-leases").iterdir() if p.name != ".lock"]  # all released


# ------------------------------------------------------------------------------ seed groups re-form
def test_a_torn_line_inside_a_seed_group_reruns_the_whole_group_and_equals_an_uninterrupted_sweep(
    synth_root, tiny_recipe, tmp_path
):
    args = [
        "sweep",
        "pign",
        "--recipe",
        tiny_recipe,
        "--data-root",
        synth_root,
        "--filter",
        "^PIGN-GCN/Cora$",
        "--seeds",
        4,
        "epochs=6",
        "dropout=0.5",
    ]
    ref_root, cut_root = tmp_path / "ref", tmp_path / "cut"
    out = picard(*args, "--results", ref_root, env={"OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    ref = _lines(ref_root)
    assert [r["executor"]["group_seeds"] for r in ref] == [[0, 1, 2, 3]] * 4
    lines = (ref_root / "pign.jsonl").read_bytes().splitlines(keepends=True)
    cut_root.mkdir()
    (cut_root / "pign.jsonl").write_bytes(b"".join(lines[:2]) + lines[2][: len(lines[2]) // 2])  # seeds 2, 3 lost
    out = picard(*args, "--results", cut_root, env={"OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    got = _lines(cut_root)
    assert [r["seed"] for r in got] == [0, 1, 2, 3]
    for a, b in zip(got, ref):
        assert _content(a) == _content(b), a["seed"]
    assert got[2]["executor"]["group_seeds"] == [0, 1, 2, 3]


# ------------------------------------------------------------------------------ fail before the work
def test_a_results_location_that_is_a_file_fails_in_seconds(synth_root, tiny_recipe, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    t0 = time.time()
    out = picard(
        "sweep", "pign", "--recipe", tiny_recipe, "--data-root", synth_root, "--results", blocker, "epochs=100000"
    )
    assert out.returncode == 2 and time.time() - t0 < 60
    assert out.stderr.strip().count("\n") == 0 and "is a file" in out.stderr and "Traceback" not in out.stderr


def test_a_results_file_that_is_a_directory_is_one_line(synth_root, tiny_recipe, tmp_path):
    (tmp_path / "pign.jsonl").mkdir()
    for cmd in (
        ["sweep", "pign", "--recipe", tiny_recipe, "--data-root", synth_root, "epochs=100000"],
        ["report", "pign"],
    ):
        out = picard(*cmd, "--results", tmp_path)
        assert out.returncode == 2, out.stderr
        assert "is a directory" in out.stderr and out.stderr.strip().count("\n") == 0, out.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_results_location_fails_before_training(synth_root, tiny_recipe, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    out = picard("sweep", "pign", "--recipe", tiny_recipe, "--data-root", synth_root, "--results", ro, "epochs=100000")
    assert out.returncode == 2 and "not writable" in out.stderr


def test_a_corrupt_checkpoint_stops_the_sweep_before_training(synth_root, tiny_recipe, tmp_path):
    from picard_cli import registry, runner

    exp = registry.get("pign")
    p = runner.plan(
        exp,
        str(tiny_recipe),
        "quick",
        {"epochs": 100000},
        {"seeds": 1, "executor": "inprocess"},
        cells="all",
        filter_="^GCN/Cora$",
    )
    ck = tmp_path / "res" / "pign-runs" / p.runs[0].key / "checkpoint.pt"
    ck.parent.mkdir(parents=True)
    for content in (b"", b"not a checkpoint at all"):
        ck.write_bytes(content)
        out = picard(
            "sweep",
            "pign",
            "--recipe",
            tiny_recipe,
            "--data-root",
            synth_root,
            "--results",
            tmp_path / "res",
            "--filter",
            "^GCN/Cora$",
            "--seeds",
            1,
            "--executor",
            "inprocess",
            "epochs=100000",
            timeout=120,
        )
        assert out.returncode == 2, out.stderr
        assert "unreadable checkpoint" in out.stderr and str(ck) in out.stderr and "start" in out.stderr
        assert out.stderr.strip().count("\n") == 0
        assert not (tmp_path / "res" / "pign.jsonl").exists() or not _lines(tmp_path / "res")


# ----------------------------------------------------------------------------------- progress lines
def test_a_sweep_under_nohup_logs_a_line_per_finished_run(synth_root, tiny_recipe, tmp_path):
    log = tmp_path / "nohup.out"
    p = _start(
        [
            "sweep",
            "pign",
            "--recipe",
            tiny_recipe,
            "--data-root",
            synth_root,
            "--results",
            tmp_path / "r",
            "--seeds",
            2,
            "--executor",
            "inprocess",
            "epochs=3",
        ],
        log,
    )
    assert p.wait(timeout=600) == 0
    text = log.read_text()
    finished = [ln for ln in text.splitlines() if "] finished " in ln]
    assert len(finished) == 6, text
    assert all(" seed " in ln and "test_acc" in ln for ln in finished), finished
    assert "ETA" in text and "6 run(s) to do" in text


def test_ctrl_c_says_how_many_runs_are_recorded_and_that_the_command_resumes(synth_root, tiny_recipe, tmp_path):
    res = tmp_path / "r"
    log = tmp_path / "log"
    p = _start(
        [
            "sweep",
            "pign",
            "--recipe",
            tiny_recipe,
            "--data-root",
            synth_root,
            "--results",
            res,
            "--seeds",
            2,
            "--executor",
            "inprocess",
            "epochs=400",
        ],
        log,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not _lines(res):
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=120) == 130
    text = log.read_text()
    n = len(_lines(res))
    assert f"interrupted: {n} of 6 run(s) recorded" in text and "the same command resumes" in text, text[-1500:]
    assert "Traceback" not in text


def test_threads_come_from_the_flag_then_the_environment_then_half_the_cores(monkeypatch):
    from picard_cli import env

    monkeypatch.delenv("PICARD_THREADS", raising=False)
    assert env.resolve_threads(3) == 3
    assert env.resolve_threads(0) == max(1, (os.cpu_count() or 1) // 2)
    monkeypatch.setenv("PICARD_THREADS", "5")
    assert env.resolve_threads(None) == 5 and env.resolve_threads(2) == 2
    monkeypatch.setenv("PICARD_THREADS", "lots")
    from picard_cli.errors import PicardError

    with pytest.raises(PicardError, match="PICARD_THREADS"):
        env.resolve_threads(0)


def test_numba_imported_before_the_kernels_keeps_its_pool_size():
    """torch_geometric may import numba first; the kernels must not then set NUMBA_NUM_THREADS to another
    value (numba re-reads it at compilation and refuses a change once its pool runs)."""
    code = """
import numba, torch
torch.set_num_threads(1)
from picard_cli.models import gat_kernels, spmm_kernels
import numpy as np
@numba.njit(parallel=True)
def f(x):
    s = 0.0
    for i in numba.prange(x.shape[0]):
        s += x[i]
    return s
gat_kernels._call(f, np.ones(10))
@numba.njit(parallel=True)
def g(x):
    return x.sum()
g(np.ones(4))
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_progress_lines_show_phases_resumed_epochs_finished_runs_and_the_eta():
    import io

    from rich.console import Console

    from picard_cli.progress import SweepProgress

    buf = io.StringIO()
    with SweepProgress(Console(file=buf, force_terminal=False, width=200), "test_mse_best_val") as prog:
        prog.start(total_runs=2, skipped=1)
        prog.begin_group("ViT/N3", 1)
        prog.phase("training (resumed at epoch 4)")
        prog.epoch(4, 30, "resumed")
        prog.phase("FID (last, N=1000)")
        prog.end_group(
            [{"cell": "ViT/N3", "seed": 7, "metrics": {"test_mse_best_val": 0.01234}, "wall_s": 61, "status": "ok"}]
        )
    text = buf.getvalue()
    assert "2 run(s) to do, 1 already recorded" in text
    assert "ViT/N3: training (resumed at epoch 4)" in text and "ViT/N3: FID (last, N=1000)" in text
    assert "finished ViT/N3 seed 7: test_mse_best_val 0.01234, 0:01:01 (ok)" in text
    assert "run 1/2: ViT/N3 done in" in text and "ETA 0:" in text
