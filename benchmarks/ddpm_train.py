"""DDPM training throughput (images/s): picard's loop against the diffusers reference loop settings.

    python benchmarks/ddpm_train.py                     # GPU: paper UNet, batch 64; CPU: tiny config
    python benchmarks/ddpm_train.py --config paper --steps 20 --compile

Both loops do the same work per step (spec ../shared/specs/ddpm-fid-alphafold.md §1.1): batch of
CIFAR-10-sized images -> t ~ U{0..T-1}, x_t = add_noise(x0, eps, t), eps-MSE, backward, grad-clip 1,
AdamW (lr 1e-4, betas 0.95/0.999, wd 1e-6), cosine LR with warmup, on the same UNet2DModel.

* reference: as train_unconditional.py runs by default: fp32 eager, a DataLoader with 0 workers
  applying per-image PIL transforms (Resize bilinear, RandomCrop, ToTensor, Normalize(0.5, 0.5)),
  batches copied to the device each step, torch.optim.AdamW with its default implementation.
* picard: the experiment's own model and step (``picard_cli.experiments.ddpm.build_model`` and
  ``train_step``, imported, not re-implemented): the dataset as a uint8 tensor on the device (indexing +
  scaling on the device), bf16 autocast and channels_last on CUDA, fused AdamW on CUDA (foreach on
  CPU), optional torch.compile.

Measured in the same process, after ``--warmup`` untimed steps, over ``--steps`` timed steps each
(CUDA synchronised). On a CPU the tiny quick-scale config runs (no bf16 there: the ratio then
measures the data path and optimizer only). Writes results/bench_ddpm_train.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CONFIGS = {  # resolution, channels, layers_per_block, attn_down, norm_groups
    "paper": (32, (128, 128, 256, 256, 512, 512), 2, 4, 32),
    "tiny": (16, (16, 32, 32), 1, 1, 8),  # recipes/ddpm/fig2.yaml quick scale
}


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def images(n: int, data_root: str | None) -> tuple[np.ndarray, str]:
    """CIFAR-10 training images when available under the data root, else random uint8 ones."""
    from picard_cli import env
    from picard_cli.data.cifar10 import load_cifar10
    from picard_cli.errors import DataError

    try:
        data = load_cifar10(env.data_root(data_root), "train", "npz", limit=n)
        return data.images, f"cifar10 ({data.meta['source']})"
    except DataError:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), "random uint8"


def make_reference(cfg, dev, T):
    """The reference script's model and optimizer: fp32, torch.optim.AdamW's default implementation."""
    from diffusers.optimization import get_scheduler

    from picard_cli.models import ddpm as D

    torch.manual_seed(0)
    R, ch, lpb, attn, groups = cfg
    unet = D.build_unet(R, ch, lpb, attn, 8, groups).to(dev).train()
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    lr = get_scheduler("cosine", opt, num_warmup_steps=500, num_training_steps=200000)
    return unet, unet, opt, lr, D.build_scheduler(T)


def reference_step(unet, fwd, opt, lr, sched, x0, T, amp):
    """train_unconditional.py's step: eps-MSE at t ~ U{0..T-1}, backward, clip 1, AdamW and LR steps."""
    noise = torch.randn_like(x0)
    t = torch.randint(0, T, (x0.shape[0],), device=x0.device)
    xt = sched.add_noise(x0, noise, t)
    with amp():
        pred = fwd(xt, t).sample
    loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
    opt.step()
    lr.step()
    opt.zero_grad(set_to_none=True)
    return loss


def reference_loop(cfg, dev, imgs, args):
    """fp32 eager; per-image PIL transforms through a 0-worker DataLoader; host-to-device copies."""
    from PIL import Image
    from torchvision import transforms

    R = cfg[0]
    tf = transforms.Compose(
        [
            transforms.Resize(R, interpolation=transforms.InterpolationMode.BILINEAR),
            transforms.RandomCrop(R),
            transforms.ToTensor(),
            transforms.Normalize([0.5], [0.5]),
        ]
    )

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(imgs)

        def __getitem__(self, i):
            return tf(Image.fromarray(imgs[i]).convert("RGB"))

    loader = torch.utils.data.DataLoader(DS(), batch_size=args.batch, shuffle=True, num_workers=0, drop_last=True)
    unet, fwd, opt, lr, sched = make_reference(cfg, dev, args.T)

    def batches():
        while True:
            yield from loader

    it = batches()
    return _time(
        lambda: reference_step(unet, fwd, opt, lr, sched, next(it).to(dev), args.T, contextlib.nullcontext), dev, args
    )


def picard_loop(cfg, dev, imgs, args):
    """The ddpm experiment's own pieces at the recipe defaults (bf16 and channels_last on CUDA, fused
    AdamW there, foreach on CPU): ``build_model`` and ``train_step`` on batches of the uint8 images."""
    from picard_cli.experiments import ddpm
    from picard_cli.models import ddpm as D

    R, ch, lpb, attn, groups = cfg
    c = ddpm.DdpmConfig(
        resolution=R,
        channels=list(ch),
        layers_per_block=lpb,
        attn_down=attn,
        norm_groups=groups,
        batch_size=args.batch,
        timesteps=args.T,
        compile=args.compile,
    )
    m = ddpm.build_model(c, dev)
    fwd = torch.compile(m.unet) if c.compile else m.unet
    m.unet.train()
    X = torch.from_numpy(np.ascontiguousarray(D.pool_uint8(imgs, R).transpose(0, 3, 1, 2))).to(dev)
    g = torch.Generator(device=dev).manual_seed(0)

    def one():
        idx = torch.randint(0, len(X), (args.batch,), generator=g, device=dev)
        return ddpm.train_step(m, fwd, X[idx], c)

    return _time(one, dev, args)


def _time(fn, dev, args) -> float:
    for _ in range(args.warmup):
        fn()
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = fn()
    sync(dev)
    assert torch.isfinite(loss)
    return args.steps * args.batch / (time.perf_counter() - t0)


def main() -> None:
    from picard_cli import env

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default=None, help="default: paper on CUDA, tiny on CPU")
    ap.add_argument("--batch", type=int, default=None, help="default: 64 (paper), 32 (tiny)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per loop (default 30 on CUDA, 10 on CPU)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--compile", action="store_true", help="torch.compile picard's forward")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--out", default=str(REPO / "results" / "bench_ddpm_train.json"))
    args = ap.parse_args()
    dev = torch.device(env.pick_device(args.device))
    cuda = dev.type == "cuda"
    args.config = args.config or ("paper" if cuda else "tiny")
    args.batch = args.batch or (64 if args.config == "paper" else 32)
    args.steps = args.steps or (30 if cuda else 10)
    if args.compile:
        args.warmup = max(args.warmup, 5)
    cfg = CONFIGS[args.config]
    imgs, source = images(max(2000, 4 * args.batch), args.data_root)
    ref = reference_loop(cfg, dev, imgs, args)
    ours = picard_loop(cfg, dev, imgs, args)
    row = {
        "device": env.device_name(dev.type),
        "config": args.config,
        "resolution": cfg[0],
        "channels": cfg[1],
        "batch": args.batch,
        "timed_steps": args.steps,
        "data": source,
        "compile": args.compile,
        "reference_img_per_s": round(ref, 2),
        "picard_img_per_s": round(ours, 2),
        "speedup": round(ours / ref, 3),
        "picard_settings": "bf16 autocast, channels_last, fused AdamW, data on device"
        if cuda
        else "fp32 (no bf16 on CPU), foreach AdamW, data as a uint8 tensor",
    }
    print(
        f"{row['device']}: {args.config} UNet {cfg[1]} at {cfg[0]}x{cfg[0]}, batch {args.batch}: "
        f"reference {ref:.1f} img/s, picard {ours:.1f} img/s, ratio {ours / ref:.2f}x"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import diffusers

    out.write_text(
        json.dumps({"versions": env.versions() | {"diffusers": diffusers.__version__}, "rows": [row]}, indent=1) + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
