"""The same quick Table-5 sweep in-process (batched executor; all cores, then 1 thread), on a local Ray
instance with 1 worker and with 2 workers: wall time, and whether the records are identical in content.

    python benchmarks/executor_scaling.py                              # GCN and PIGN-GCN cells, 100 epochs
    python benchmarks/executor_scaling.py --filter '^GAT/' --epochs 200 --seeds 5

Every executor forms the same tasks (one per cell: its seeds stacked into one model). In-process,
torch uses all cores for intra-op parallelism; a Ray worker gets ``task_cpus`` = 1 core and one
thread, so 2 workers run 2 cells at once. Ray's wall time includes starting the local instance
(measured separately too). Records are compared without the fields that say where and when a run
ran (executor, wall_s, started): bit for bit with the 1-thread in-process sweep (a 1-CPU task runs
torch on 1 thread, and CPU reductions split by thread), by cell mean accuracy with the all-cores one.
Writes results/bench_executor_scaling.json. Needs the real
Planetoid data ($PICARD_DATA). Timings on shared machines are noisy: compare ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from picard_cli import env, registry, runner  # noqa: E402
from picard_cli.results import ResultStore  # noqa: E402

WHERE_AND_WHEN = {"executor", "wall_s", "started"}


def sweep(args, executor: str, workers: int, root: Path, threads: int = 0) -> tuple[float, list[dict]]:
    import torch

    exp = registry.get("pign")
    p = runner.plan(
        exp,
        None,
        "quick",
        {"epochs": args.epochs},
        {"executor": executor, "workers": workers, "seeds": args.seeds, "device": "cpu", "group_size": args.group_size},
        filter_=args.filter,
    )
    res = root / f"{executor}-{workers}-{threads}"
    ctx = runner.Context(device="cpu", data_root=env.data_root(), results_root=res)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        records = runner.execute(exp, p, ResultStore(res, "pign"), ctx)
        return time.perf_counter() - t0, records
    finally:
        torch.set_num_threads(before)


def ray_start_s() -> float:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=128 * 2**20, log_to_driver=False)
    ray.get(ray.remote(lambda: 0).remote())  # a first task: a worker is up
    wall = time.perf_counter() - t0
    ray.shutdown()
    return wall


def task_seconds(records: list[dict]) -> list[float]:
    """Wall time of each task (group of seeds), as measured where it ran."""
    groups = {(r["cell"], tuple(r["executor"]["group_seeds"])): r["executor"]["group_wall_s"] for r in records}
    return sorted(groups.values(), reverse=True)


def content(records: list[dict]) -> dict:
    return {r["key"]: {k: v for k, v in r.items() if k not in WHERE_AND_WHEN} for r in records}


def cell_means(records: list[dict]) -> dict:
    """Mean last-epoch test accuracy per cell."""
    by: dict = {}
    for r in records:
        by.setdefault(r["cell"], []).append(r["metrics"]["test_acc_last"])
    return {c: sum(v) / len(v) for c, v in sorted(by.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--filter", default="^(GCN|PIGN-GCN)/", help="cells of recipes/pign/table5.yaml")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--group-size", type=int, default=100, help="seeds per task (sweep.group_size)")
    args = ap.parse_args()
    import torch

    root = Path(tempfile.mkdtemp(prefix="picard-bench-exec-"))
    try:
        registry.get("pign")
        sweep(
            argparse.Namespace(**{**vars(args), "filter": "^GCN/Cora$", "seeds": 1, "epochs": 2}),
            "batched",
            0,
            root / "warm",
        )  # data loaded and cached on disk before timing
        rows = []
        # in-process on every core, in-process on 1 thread (what a 1-CPU Ray task runs with), Ray 1 and 2 workers
        for executor, workers, threads in (("batched", 0, 0), ("batched", 0, 1), ("ray", 1, 0), ("ray", 2, 0)):
            wall, recs = sweep(args, executor, workers, root, threads)
            tasks = task_seconds(recs)
            name = (
                f"ray, {workers} worker(s)"
                if executor == "ray"
                else f"in-process, {threads or torch.get_num_threads()} thread(s)"
            )
            rows.append(
                {
                    "executor": name,
                    "means": cell_means(recs),
                    "wall_s": round(wall, 2),
                    "records": len(recs),
                    "tasks": len(tasks),
                    "task_s_sum": round(sum(tasks), 2),
                    "task_s_max": round(tasks[0], 2),
                    "content": content(recs),
                }
            )
            print(
                f"{rows[-1]['executor']:<24} {wall:8.1f} s  ({len(recs)} records, {len(tasks)} tasks: "
                f"{sum(tasks):.1f} task-seconds, longest {tasks[0]:.1f} s)",
                flush=True,
            )
        start = ray_start_s()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    # A Ray task runs torch on task_cpus = 1 thread; CPU reductions split by thread, so its records are
    # compared bit for bit with the 1-thread in-process sweep, and by cell means with the all-cores one.
    ref = rows[1]["content"]
    same = {r["executor"]: r["content"] == ref for r in rows[2:]}
    dmean = {
        r["executor"]: max(abs(a - b) for a, b in zip(r["means"].values(), rows[0]["means"].values())) for r in rows[1:]
    }
    walls = {r["executor"]: r["wall_s"] for r in rows}
    w_in, w_in1, w1, w2 = (r["wall_s"] for r in rows)
    out = {
        "machine": env.device_name("cpu"),
        "torch_threads_in_process": torch.get_num_threads(),
        "filter": args.filter,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "runs": rows[0]["records"],
        "tasks": rows[0]["tasks"],
        "wall_s": walls,
        "ray_start_s": round(start, 2),
        "tasks_s": {r["executor"]: {"sum": r["task_s_sum"], "max": r["task_s_max"]} for r in rows},
        "group_size": args.group_size,
        "speedup_ray2_vs_ray1": round(w1 / w2, 3),
        "speedup_ray2_vs_in_process": round(w_in / w2, 3),
        "identical_content_to_in_process_1_thread": same,
        "max_cell_mean_acc_diff_to_all_cores": dmean,
        "ray1_overhead_vs_in_process_1_thread": round(w1 / w_in1, 3),
        "excluded_fields": sorted(WHERE_AND_WHEN),
        "python": platform.python_version(),
    }
    print(
        f"ray start (local instance + first worker): {start:.1f} s; 2 workers can at best take "
        f"max(task-seconds / 2, longest task) = {max(rows[3]['task_s_sum'] / 2, rows[3]['task_s_max']):.1f} s"
    )
    print(
        f"speed-up, 2 vs 1 Ray worker: {out['speedup_ray2_vs_ray1']:.2f}x; 2 Ray workers vs in-process: "
        f"{out['speedup_ray2_vs_in_process']:.2f}x"
    )
    print(f"1 Ray worker vs 1-thread in-process: {out['ray1_overhead_vs_in_process_1_thread']:.2f}x the time")
    print(
        f"records identical in content to the 1-thread in-process sweep (ignoring "
        f"{', '.join(sorted(WHERE_AND_WHEN))}): {same}"
    )
    print(f"largest difference of a cell's mean test accuracy from the all-cores in-process sweep: {dmean}")
    dest = REPO / "results" / "bench_executor_scaling.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
