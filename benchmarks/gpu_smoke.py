"""GPU smoke test: a few paper-scale training steps of every experiment's model, timed (<= 8 min on one GPU).

    python benchmarks/gpu_smoke.py                      # GPU: paper-scale models and batches
    python benchmarks/gpu_smoke.py --tiny --out /tmp/s.json   # CPU, well under a minute (CI)

Every model is the cell of its recipe at ``--scale paper`` (``--tiny``: the quick scale, shrunk
further), built and stepped by ``picard_cli/preflight.py``'s probes (the code `picard plan --measure`
times): Table 2's ViT, ViTsmall, ViTparallel and ViT3D at N_iter 3, Table 3's masked ViT at N_iter 3,
Table 4's ANIE 4H4B at N_iter 8, the DDPM UNet of Figs. 2/6-8 (113.7M parameters, batch 64, 32x32),
Table 1's PIGN on PascalVOC-SP-sized random graphs (~480 nodes, 14 features, batch 32) with each
backbone, and Table 5's PIGN-GCN / PIGN-GAT stacked 100 seeds deep on a Cora-sized random graph.
After warm-up steps each is timed over ``--steps`` steps (CUDA synchronised); peak memory is
``torch.cuda.max_memory_allocated`` (CPU: peak RSS growth, approximate).

The DDPM is also timed against the diffusers reference training step (the plain loop of diffusers'
examples/unconditional_image_generation/train_unconditional.py: fp32 UNet2DModel forward, MSE on
the noise, clip 1, torch.optim.AdamW, cosine warmup schedule; no accelerate, no data loader), the
two alternated in the same process; the JSON holds images/s of both and picard / reference.

Writes ``--out`` (default benchmarks/results/gpu_smoke.json): device, torch version, commit, and per
model steps/s, items/s (samples, images, graphs or seeds), peak memory and parameters. Exit status 1
when a model failed (its entry holds the error; the others are still measured).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

_VIT_TINY = {"dim": 32, "depth": 1, "heads": 2, "mlp": 64, "batch_size": 2}
# name: (experiment, cell regex, paper overrides, tiny overrides, paper shape, tiny shape, stacked seeds paper/tiny)
MODELS = {
    "vit": ("vit-pde", "^ViT/N3$", {}, _VIT_TINY, {"size": 64}, {"size": 16}, (1, 1)),
    "vit-small": ("vit-pde", "^ViTsmall/N3$", {}, _VIT_TINY, {"size": 64}, {"size": 16}, (1, 1)),
    "vit-parallel": ("vit-pde", "^ViTparallel/N3$", {}, _VIT_TINY, {"size": 64}, {"size": 16}, (1, 1)),
    "vit-3d": ("vit-pde", "^ViT3D/N3$", {}, _VIT_TINY, {"size": 64}, {"size": 16}, (1, 1)),
    "vit-mask": (
        "vit-mask",
        "^ViT/N3$",
        {},
        {"dim": 32, "depth": 1, "heads": 2, "dec_dim": 32, "dec_depth": 1, "dec_heads": 2, "batch_size": 4},
        {},
        {},
        (1, 1),
    ),
    "anie-4H4B-N8": (
        "anie",
        "^4H4B/N8$",
        {},
        {"dim": 8, "emb": 16, "n_ff": 32, "batch_size": 2},
        {"size": 64},
        {"size": 16},
        (1, 1),
    ),
    "ddpm-unet": ("ddpm", "^T=1000$", {}, {"batch_size": 4}, {}, {}, (1, 1)),
    "pign-lrgb-gcn": (
        "pign-lrgb",
        "^PIGN/GCN$",
        {},
        {"hidden": 16, "batch_size": 2},
        {},
        {"nodes_per_graph": 40, "edges_per_graph": 200},
        (1, 1),
    ),
    "pign-lrgb-gat": (
        "pign-lrgb",
        "^PIGN/GAT$",
        {},
        {"hidden": 16, "batch_size": 2},
        {},
        {"nodes_per_graph": 40, "edges_per_graph": 200},
        (1, 1),
    ),
    "pign-lrgb-sage": (
        "pign-lrgb",
        "^PIGN/SAGE$",
        {},
        {"hidden": 16, "batch_size": 2},
        {},
        {"nodes_per_graph": 40, "edges_per_graph": 200},
        (1, 1),
    ),
    "pign-gcn-cora-stacked": (
        "pign",
        "^PIGN-GCN/Cora$",
        {},
        {},
        {},
        {"nodes": 300, "edges": 1200, "features": 100},
        (100, 2),
    ),
    "pign-gat-cora-stacked": (
        "pign",
        "^PIGN-GAT/Cora$",
        {},
        {},
        {},
        {"nodes": 300, "edges": 1200, "features": 100},
        (100, 2),
    ),
}


def cell_config(experiment: str, pattern: str, scale: str, overrides: dict) -> tuple[str, dict]:
    """(cell name, resolved config) of the one recipe cell matching ``pattern`` at ``scale``."""
    from picard_cli import registry, runner

    exp = registry.get(experiment)
    p = runner.plan(exp, None, scale, overrides, {"seeds": 1}, filter_=pattern)
    if len({r.cell for r in p.runs}) != 1:
        raise RuntimeError(f"{experiment}: {pattern!r} matches {sorted({r.cell for r in p.runs})}")
    return p.runs[0].cell, p.runs[0].config


def smoke_one(name: str, spec: tuple, args, device: str) -> dict:
    from picard_cli import preflight

    experiment, pattern, paper_over, tiny_over, paper_shape, tiny_shape, seeds = spec
    scale, over, shape = ("quick", tiny_over, tiny_shape) if args.tiny else ("paper", paper_over, paper_shape)
    cell, cfg = cell_config(experiment, pattern, scale, dict(over))
    probe = preflight.probe_for(experiment, cfg, None, None, seeds=seeds[1] if args.tiny else seeds[0], shape=shape)
    m = preflight.measure(probe, device, args.steps, args.warmup)
    out = {
        "experiment": experiment,
        "cell": cell,
        "scale": scale,
        "overrides": over,
        "batch": probe.items,
        "item": probe.item,
        "seeds_stacked": probe.seeds,
        "notes": probe.notes,
    }
    if "error" in m:
        return out | {"error": m["error"]}
    return out | {
        "s_per_step": m["s_per_step"],
        "steps_per_s": 1.0 / m["s_per_step"],
        f"{probe.item}_per_s": probe.items / m["s_per_step"],
        "items_per_s": probe.items / m["s_per_step"],
        "peak_mem_bytes": m["peak_mem_bytes"],
        "params": m["params"],
        "timed_steps": m["steps"],
        "warmup_steps": m["warmup"],
        "_probe": probe,
    }


def reference_ddpm_step(cfg: dict, dev):
    """The diffusers reference training step (train_unconditional.py's loop body, fp32, no accelerate)."""
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler, UNet2DModel  # noqa: F401 - the reference's classes
    from diffusers.optimization import get_scheduler

    from picard_cli.models.ddpm import build_unet

    torch.manual_seed(0)
    model = (
        build_unet(
            cfg["resolution"],
            cfg["channels"],
            cfg["layers_per_block"],
            cfg["attn_down"],
            cfg["head_dim"],
            cfg["norm_groups"],
            cfg["dropout"],
        )
        .to(dev)
        .train()
    )  # a UNet2DModel, the script's layout
    noise_scheduler = DDPMScheduler(num_train_timesteps=cfg["timesteps"], beta_schedule="linear")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    lr_scheduler = get_scheduler("cosine", optimizer=optimizer, num_warmup_steps=500, num_training_steps=200000)
    R, B = cfg["resolution"], cfg["batch_size"]
    clean_images = torch.rand(B, 3, R, R, device=dev) * 2 - 1

    def step():
        noise = torch.randn(clean_images.shape, device=dev)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (B,), device=dev).long()
        noisy_images = noise_scheduler.add_noise(clean_images, noise, timesteps)
        model_output = model(noisy_images, timesteps).sample
        loss = F.mse_loss(model_output.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad()

    return step


def ddpm_versus_reference(probe, cfg: dict, args, device: str) -> dict:
    """picard's DDPM step and the reference step alternated: ``rounds`` x (steps of each), images/s."""
    import gc

    import torch

    from picard_cli.preflight import _sync

    dev = torch.device(device)
    ours, _ = probe.make(dev)
    ref = reference_ddpm_step(cfg, dev)
    for fn in (ours, ref):
        for _ in range(args.warmup):
            fn()
    times = {"picard": 0.0, "reference": 0.0}
    for _ in range(args.rounds):
        for label, fn in (("picard", ours), ("reference", ref)):
            _sync(dev)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            _sync(dev)
            times[label] += time.perf_counter() - t0
    n = args.rounds * args.steps * cfg["batch_size"]
    rate = {k: n / v for k, v in times.items()}
    del ours, ref
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "picard_images_per_s": rate["picard"],
        "reference_images_per_s": rate["reference"],
        "ratio_picard_over_reference": rate["picard"] / rate["reference"],
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "reference": "train_unconditional.py loop body: fp32, torch AdamW, "
        "clip 1, cosine warmup; no accelerate, no data loader",
        "picard": "bf16 autocast + channels_last + fused AdamW on CUDA (the config's amp / channels_last)",
    }


def run_all(names: list[str], args, device: str, t_start: float) -> tuple[dict, list[str]]:
    """Each model's entry (its error instead of numbers when it failed), and the names that failed."""
    models, failed = {}, []
    for name in names:
        if time.perf_counter() - t_start > args.budget_s:
            models[name] = {"skipped": f"time budget of {args.budget_s:g} s spent"}
            failed.append(name)
            continue
        t0 = time.perf_counter()
        try:
            r = smoke_one(name, MODELS[name], args, device)
            probe = r.pop("_probe", None)
            if name == "ddpm-unet" and probe is not None:
                _, cfg = cell_config("ddpm", MODELS[name][1], r["scale"], dict(r["overrides"]))
                r["vs_reference"] = ddpm_versus_reference(probe, cfg, args, device)
        except Exception as e:  # noqa: BLE001 - a smoke test reports every model
            r = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=6)}
        r["wall_s"] = round(time.perf_counter() - t0, 2)
        if "error" in r:
            failed.append(name)
        models[name] = r
        print(_line(name, r), flush=True)
    return models, failed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="shrunken models and batches (CPU, CI)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per model (default 10; --tiny 2)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps per model (default 2; --tiny 1)")
    ap.add_argument("--rounds", type=int, default=None, help="DDPM vs reference alternations (default 3; --tiny 1)")
    ap.add_argument("--only", default="", help="comma list of model names (default: all)")
    ap.add_argument("--budget-s", type=float, default=450.0, help="skip the models left after this many seconds")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's; --tiny 1: "
        "tiny steps on a shared CPU are far slower with more threads than free cores)",
    )
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu_smoke.json"))
    args = ap.parse_args(argv)
    args.steps = args.steps or (2 if args.tiny else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 2)
    args.rounds = args.rounds or (1 if args.tiny else 3)

    import warnings

    import torch

    from picard_cli import env

    warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")  # as picard's CLI
    warnings.filterwarnings("ignore", message=".*Sparse invariant checks.*")
    t_start = time.perf_counter()
    device = env.pick_device(args.device)
    threads = args.threads or (1 if args.tiny else None)
    if threads:
        torch.set_num_threads(threads)
    names = [n for n in args.only.split(",") if n] or list(MODELS)
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    models, failed = run_all(names, args, device, t_start)
    out = {
        "device": env.device_name(device),
        "device_type": device,
        "torch": torch.__version__,
        "commit": env.git_sha(),
        "versions": env.versions(),
        "tiny": args.tiny,
        "steps": args.steps,
        "warmup": args.warmup,
        "threads": torch.get_num_threads(),
        "wall_s": round(time.perf_counter() - t_start, 1),
        "failed": failed,
        "models": models,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"wrote {path} ({out['wall_s']} s on {out['device']})")
    return 1 if failed else 0


def _line(name: str, r: dict) -> str:
    if "error" in r or "skipped" in r:
        return f"{name:24s} {r.get('error') or r.get('skipped')}"
    mem = r["peak_mem_bytes"]
    mem = f"{mem / 2**30:.2f} GiB" if mem is not None else "n/a"
    extra = ""
    if "vs_reference" in r:
        extra = f"  vs diffusers reference: x{r['vs_reference']['ratio_picard_over_reference']:.2f} images/s"
    return (
        f"{name:24s} {r['steps_per_s']:8.2f} steps/s {r['items_per_s']:10.1f} {r['item']}/s  peak {mem}  "
        f"{r['params']:,} params{extra}"
    )


if __name__ == "__main__":
    sys.exit(main())
