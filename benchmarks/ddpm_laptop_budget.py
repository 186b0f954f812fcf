"""What a laptop-scale DDPM timesteps study (Figs. 2, 6-8: 10 models, T = 100..1000, 3 seeds each,
FID from N >= 1,000 samples drawn with T steps) would cost on this machine, measured piece by piece:

    python benchmarks/ddpm_laptop_budget.py [--train-steps 2000] [--fid-n 1000] [--seeds 3]
        [--out benchmarks/results/ddpm_laptop_budget.json]

For each candidate UNet (picard's own builder, the reference architecture at reduced widths) it
times, in this run, a training step (batch 64, forward + backward + AdamW), one denoising step of a
sampling batch (scaled to fid_n images) and the Inception features of fid_n images (the FID weights
picard resolves, when present), then projects: per model = train_steps x train step + T x sampling
step + Inception; table = the sum over T = 100, 200, ..., 1000, times the seeds. One torch thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CANDIDATES = [  # (resolution, channels, layers per block, attention down block, norm groups)
    (16, [16, 32, 32], 1, 1, 8),  # the quick scale's UNet (0.3M parameters)
    (16, [32, 64, 64], 1, 1, 16),
    (8, [16, 32, 32], 1, 1, 8),
]
T_VALUES = list(range(100, 1001, 100))


def timed(fn, repeat: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(res, ch, layers, attn, groups, fid_n: int) -> dict:
    import torch
    import torch.nn.functional as F

    from picard_cli.models.ddpm import build_unet

    unet = build_unet(res, ch, layers, attn, norm_groups=groups)
    opt = torch.optim.AdamW(unet.parameters(), 1e-4)
    x, t = torch.randn(64, 3, res, res), torch.randint(0, 100, (64,))

    def train():
        loss = F.mse_loss(unet(x, t).sample, x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    xs = torch.randn(250, 3, res, res)
    with torch.no_grad():
        sample_s = timed(lambda: unet(xs, torch.full((250,), 5)), repeat=2) * fid_n / 250
    return {
        "resolution": res,
        "channels": ch,
        "params": sum(p.numel() for p in unet.parameters()),
        "train_step_s": round(timed(train), 4),
        "sampling_step_s_for_fid_n": round(sample_s, 3),
    }


def inception_s(fid_n: int) -> float | None:
    import numpy as np

    from picard_cli.metrics import fid

    weights = fid.resolve_weights(None, allow_unverified=True)
    if weights is None:
        return None
    ext = fid.extractor(weights, "cpu")
    imgs = np.random.default_rng(0).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    return timed(lambda: ext.features(imgs), repeat=1) * fid_n / 50


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-steps", type=int, default=2000)
    ap.add_argument("--fid-n", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    inc = inception_s(a.fid_n)
    rows = []
    for cand in CANDIDATES:
        m = measure(*cand, a.fid_n)
        per_t = {
            T: a.train_steps * m["train_step_s"] + T * m["sampling_step_s_for_fid_n"] + (inc or 0.0) for T in T_VALUES
        }
        m["projected_model_s"] = {str(T): round(v) for T, v in per_t.items()}
        m["projected_table_core_h"] = round(a.seeds * sum(per_t.values()) / 3600, 2)
        m["projected_sampling_share"] = round(
            sum(T * m["sampling_step_s_for_fid_n"] for T in T_VALUES) / sum(per_t.values()), 3
        )
        rows.append(m)
    out = {
        "train_steps": a.train_steps,
        "fid_n": a.fid_n,
        "seeds": a.seeds,
        "T": T_VALUES,
        "inception_s_for_fid_n": None if inc is None else round(inc, 1),
        "candidates": rows,
        "threads": 1,
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
    }
    from _out import emit  # benchmarks/_out.py (this script's folder is on sys.path)

    emit(out, a.out)


if __name__ == "__main__":
    main()
