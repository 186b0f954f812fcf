"""Training memory of the gradient modes as the iteration count K grows (issue 9).

    python benchmarks/fixedpoint_memory.py                       # PIGN (Cora) and ANIE, K = 2..64
    python benchmarks/fixedpoint_memory.py --exp pign --ks 2,8,32 --modes unrolled,implicit

One training step (forward, loss, backward) per (experiment, gradient mode, K), K ascending, each
gradient mode in a fresh subprocess. Three measures:

* saved MB: bytes of the distinct storages autograd saves for backward during the forward pass
  (``picard_cli.fixedpoint.diagnostics.saved_tensor_bytes``; exact and deterministic; parameters
  included): what grows with K when gradients are unrolled.
* peak RSS MB: the process's peak resident set size (``ru_maxrss``) after the step, minus the
  resident set before the first step (data and model loaded). A high-water mark: it reflects the
  largest step so far, which is the current one when memory grows with K.
* on CUDA (when available, ``--device cuda``): ``torch.cuda.max_memory_allocated`` of the step.

Models: PIGN-GCN on Cora (``$PICARD_DATA``, else a generated Planetoid-format graph of Cora's size),
4 seeds stacked, hidden 64, f = encoder output (``forcing=input``), spectral cap 0.9 on the conv
weight (so the implicit backward solve converges), dropout 0.5 with one mask per solve; ANIE 1H1B
on 32x32 fields (random, batch 8), ``forcing=input``. The forward always runs exactly K steps (no
tolerance); ``implicit`` keeps one application of T for backward, ``phantom:1`` one step.
Writes results/bench_fixedpoint_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def build(exp: str, K: int, mode: str, device):
    """(model, step) where step() runs one training forward + backward and returns the loss."""
    import torch
    import torch.nn.functional as F

    from picard_cli.fixedpoint.spec import FixedPointSpec

    spec = FixedPointSpec(grad_mode=mode, implicit_max_iter=20, implicit_tol=1e-4)
    if exp == "pign":
        from picard_cli.experiments.pign import _data
        from picard_cli.models.stacked_gnn import PIGN, Graph

        root = os.environ.get("PICARD_DATA")
        if not root or not (Path(root) / "planetoid").exists():
            import tempfile

            from picard_cli.data.synthetic import write_planetoid_raw

            root = tempfile.mkdtemp()
            write_planetoid_raw(Path(root), "cora", seed=1)
        data, x = _data("cora", 0.0, 2147483647, str(root))
        X, y = x.to_sparse_csr().to(device), data.y.to(device)
        graph = Graph.build(data.edge_index, data.num_nodes, device)
        gens = [torch.Generator().manual_seed(s) for s in range(4)]
        model = PIGN(
            gens,
            "gcn",
            x.shape[1],
            int(data.y.max()) + 1,
            K,
            64,
            1,
            0.5,
            0.0,
            0.5,
            "xavier",
            fp=spec,
            forcing="input",
            fixed_masks=True,
            spectral_cap=0.9,
        ).to(device)
        mask = data.train_mask.to(device)

        def step():
            logits, _ = model(X, graph)
            loss = F.cross_entropy(logits[mask].transpose(1, 2), y[mask].unsqueeze(1).expand(-1, 4))
            return loss
    else:
        from picard_cli.models.anie import ANIE

        torch.manual_seed(0)
        model = ANIE(size=32, n_iter=K, fp=spec, forcing="input", fixed_masks=True).to(device)
        w = torch.randn(8, 10, 32, 32, device=device)

        def step():
            pred, _ = model(w[:, 0])
            return F.mse_loss(pred, w)

    model.train()
    return model, step


def child(exp: str, mode: str, ks: list[int], device: str) -> list[dict]:
    import torch

    from picard_cli.fixedpoint.diagnostics import saved_tensor_bytes

    torch.manual_seed(0)
    dev = torch.device(device)
    out = []
    base = None
    for K in ks:
        model, step = build(exp, K, mode, dev)
        if base is None:
            base = _rss_mb()
        if dev.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            start = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        with saved_tensor_bytes() as acc:
            loss = step()
        loss.backward()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        row = {
            "exp": exp,
            "mode": mode,
            "K": K,
            "saved_mb": round(acc["bytes"] / 2**20, 2),
            "peak_rss_mb": round(_rss_mb() - base, 1),
            "step_s": round(time.perf_counter() - t0, 3),
        }
        if dev.type == "cuda":
            row["cuda_peak_mb"] = round((torch.cuda.max_memory_allocated() - start) / 2**20, 1)
        out.append(row)
        del model, step, loss
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exp", default="pign,anie")
    ap.add_argument("--modes", default="unrolled,implicit,phantom:1")
    ap.add_argument("--ks", default="2,4,8,16,32,64")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    if args.child:
        print(json.dumps(child(args.exp, args.modes, ks, args.device)))
        return
    rows = []
    for exp in args.exp.split(","):
        for mode in args.modes.split(","):
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    "--exp",
                    exp,
                    "--modes",
                    mode,
                    "--ks",
                    args.ks,
                    "--device",
                    args.device,
                ],
                capture_output=True,
                text=True,
                cwd=REPO,
            )
            if proc.returncode:
                sys.exit(proc.stderr)
            rows += json.loads(proc.stdout.strip().splitlines()[-1])
    cols = ["saved_mb", "peak_rss_mb", "step_s"] + (["cuda_peak_mb"] if args.device == "cuda" else [])
    for exp in args.exp.split(","):
        print(f"\n{exp}: one training step, memory vs K (saved MB | peak RSS MB | seconds)")
        print("| mode | " + " | ".join(f"K={k}" for k in ks) + " |")
        print("|---" * (len(ks) + 1) + "|")
        for mode in args.modes.split(","):
            cells = [r for r in rows if r["exp"] == exp and r["mode"] == mode]
            print(f"| {mode} | " + " | ".join(" / ".join(str(r[c]) for c in cols) for r in cells) + " |")
    import torch

    path = REPO / "results" / "bench_fixedpoint_memory.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        json.dumps(
            {"rows": rows, "device": args.device, "torch": torch.__version__, "cpu_count": os.cpu_count()}, indent=1
        )
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
