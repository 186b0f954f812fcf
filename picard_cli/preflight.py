"""GPU preflight (``picard plan``): what a sweep would run, on which data, and for how long.

Nothing is trained. For each cell of a resolved recipe: the runs (cells x seeds, and how many the
results file already holds, which a re-run skips), the resolved config (fields that differ from the
experiment config's defaults plus the key fields), the data check (the cell's
:class:`~picard_cli.datacheck.DataFacts`, or one line saying what is missing) and an estimate of
device-hours and peak memory: optimizer steps per run (from the config and the data's split sizes)
times seconds per step.

Seconds per step and peak memory come from one of two sources, and the output says which:

* **measured** (``--measure``, the default when CUDA is available): a :class:`Probe` builds the
  cell's model with the experiment's own builders, synthetic inputs of the real shapes, and runs
  real training steps (forward, backward, optimizer step; after warm-up steps) on the device;
  peak memory is ``torch.cuda.max_memory_allocated`` on CUDA, the peak RSS growth on a CPU.
* **estimate, not measured**: the same model run once on the ``meta`` device (no memory, no
  arithmetic) under a dispatch mode that counts FLOPs (``torch.utils.flop_counter``), aten ops and
  the bytes saved for backward; GNNs from formulas of their layer sizes. Time per step =
  max(FLOPs / an assumed sustained throughput, ops x an assumed per-op overhead) plus the
  optimizer's memory traffic; memory = 16 bytes per parameter + the saved tensors. The assumptions
  are printed with the estimate (:data:`ASSUMED`).

The probes (``probe_for``, ``measure``) are also what ``benchmarks/gpu_smoke.py`` times.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import DataError, PicardError, RecipeError
from .recipes import as_config, to_dict
from .training import optimizer_step

# Assumed sustained rates of the estimate (not measured); printed with every estimate.
ASSUMED = {
    "gpu": {
        "device": "one H100/H200-class GPU",
        "bf16_tflops": 150.0,
        "fp32_tflops": 30.0,
        "op_us": 8.0,
        "mem_gbs": 2000.0,
    },
    "cpu": {"device": "a CPU", "bf16_tflops": 0.1, "fp32_tflops": 0.1, "op_us": 4.0, "mem_gbs": 10.0},
}
WARMUP = 2
KEY_FIELDS = {  # always shown in a cell's config (besides the fields that differ from the defaults)
    "pign": ("model", "backbone", "dataset", "noise", "depth", "epochs"),
    "pign-lrgb": ("framework", "backbone", "depth", "hidden", "epochs", "batch_size"),
    "anie": ("heads", "blocks", "n_iter", "n_train", "epochs", "batch_size"),
    "vit-pde": ("model", "n_iter", "n_train", "epochs", "batch_size"),
    "vit-mask": ("n_iter", "train_n", "epochs", "batch_size"),
    "ddpm": ("timesteps", "train_steps", "batch_size", "resolution"),
    "alphafold-recycle": ("source", "num_recycle", "num_models", "num_seeds"),
}
# Config fields that do not change the cost of one training step (probes with equal remaining fields share
# one measurement / count).
NOT_STEP_COST = {
    "seed",
    "epochs",
    "n_train",
    "n_val",
    "n_test",
    "data",
    "eval_iters",
    "patience",
    "lr",
    "weight_decay",
    "scheduler",
    "train_steps",
    "timesteps",
    "fig7_steps",
    "fig7_for_T",
    "fid",
    "fid_n",
    "fid_n_steps",
    "sample_batch",
    "eval_every",
    "checkpoint_every",
    "log_every",
    "train_n",
    "test_n",
    "val_n",
    "max_graphs",
    "noise_seed",
    "eval_seed",
    "grid_n",
    "loss_bins",
    "source",
    "mask_seed",
    "warmup_epochs",
    "warmup_steps",
    "diverge_loss",
    "budget",
    "diagnose",
}
PLANETOID = {  # nodes, directed edges, features, classes, train nodes, feature density (PyG's public split)
    "cora": {"N": 2708, "E": 10556, "F": 1433, "C": 7, "train": 140, "val": 500, "test": 1000, "density": 0.0127},
    "citeseer": {"N": 3327, "E": 9104, "F": 3703, "C": 6, "train": 120, "val": 500, "test": 1000, "density": 0.0086},
}
VOC = {"nodes_per_graph": 479.4, "edges_per_graph": 2710.5, "train_graphs": 8498}  # LRGB PascalVOC-SP means


@dataclass
class Counts:
    """Cost of one training step without running it."""

    flops: float  # forward + backward
    ops: int  # aten ops that are not views (each a kernel launch on a GPU)
    saved_bytes: int  # tensors kept for backward (fp32)
    params: int
    how: str


@dataclass
class Probe:
    """One cell's training step, buildable on any device (``make``) and countable (``counts``)."""

    key: tuple  # equal keys: equal step cost
    steps_per_run: int
    steps_note: str
    items: int  # items per step (images, samples, graphs, stacked seeds)
    item: str
    bf16: bool  # bf16 autocast on CUDA
    make: Callable  # make(torch.device) -> (step(), n_params)
    counts: Callable[[], Counts]
    seeds: int = 1  # seeds trained together by one step (stacked models)
    notes: list[str] = field(default_factory=list)


# ============================================================================ counting (estimates)
def _op_counter():
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class OpCounter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops, self.flops = 0, 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            if not func.is_view and func is not torch.ops.aten.detach.default:
                self.ops += 1
            fn = flop_registry.get(func._overloadpacket)
            if fn is not None:
                self.flops += fn(*args, **kwargs, out_val=out)
            return out

    return OpCounter()


def meta_counts(build: Callable, loss: Callable) -> Counts:
    """Build the model on the ``meta`` device (else on the CPU, then moved there) and run
    ``loss(model)`` and its backward once, counting FLOPs, ops and saved bytes."""
    import torch

    try:
        with torch.device("meta"):
            model = build()
        return _count(model, loss, "counted on the meta device")
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return _count(build().to("meta"), loss, "counted on the meta device")


def _count(model, loss, how: str) -> Counts:
    import torch

    params = {id(p) for p in model.parameters()}
    seen, saved = set(), [0]

    def pack(t):
        base = t._base if t._base is not None else t
        if id(t) not in seen and id(base) not in params and id(t) not in params:
            seen.add(id(t))
            saved[0] += t.numel() * t.element_size()
        return t

    mode = _op_counter()
    with mode:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            value = loss(model)
        value.backward()
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Counts(float(mode.flops), mode.ops, saved[0], n, how)


def iterated(count_k: Callable[[int], Counts], n: int) -> Counts:
    """Counts of N_iter = n from those of 1 and 2 (each iteration repeats the same work)."""
    if n <= 2:
        return count_k(n)
    c1, c2 = count_k(1), count_k(2)

    def grow(a, b):
        return a + (n - 1) * (b - a)

    return Counts(
        grow(c1.flops, c2.flops),
        int(grow(c1.ops, c2.ops)),
        int(grow(c1.saved_bytes, c2.saved_bytes)),
        c1.params,
        f"{c1.how}; N_iter={n} extrapolated from N_iter=1, 2",
    )


def estimate_step(c: Counts, bf16: bool, target: str) -> dict:
    a = ASSUMED[target]
    rate = (a["bf16_tflops"] if bf16 else a["fp32_tflops"]) * 1e12
    compute, launch = c.flops / rate, (c.ops + 20) * a["op_us"] * 1e-6  # + the optimizer's few kernels
    optimizer = 32 * c.params / (a["mem_gbs"] * 1e9)  # Adam: read / write weights, grads and two moments
    return {
        "s_per_step": max(compute, launch) + optimizer,
        "bound": "compute" if compute >= launch else "launch",
        "flops_per_step": c.flops,
        "ops_per_step": c.ops,
        "params": c.params,
        "peak_mem_bytes": 16 * c.params + c.saved_bytes,
        "count": c.how,
    }


def estimate_label(target: str) -> str:
    a = ASSUMED[target]
    return (
        f"estimate, not measured: for {a['device']}, max(FLOPs / {a['bf16_tflops']:g} TFLOP/s (bf16 autocast) "
        f"or {a['fp32_tflops']:g} TFLOP/s (fp32), aten ops x {a['op_us']:g} us) + Adam's traffic at "
        f"{a['mem_gbs']:g} GB/s; memory = 16 B/param (weights, grads, Adam) + tensors saved for backward "
        f"(fp32); assumed rates, not measured"
    )


# ============================================================================ probes
def _amp(dev, bf16: bool):
    import contextlib

    import torch

    if bf16 and dev.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def _step_key(name: str, c, *extra) -> tuple:
    rest = {k: v for k, v in to_dict(c).items() if k not in NOT_STEP_COST}
    return (name, json.dumps(rest, sort_keys=True, default=str), *extra)


def probe_for(name: str, cfg: dict, facts=None, data_root=None, seeds: int = 1, shape: dict | None = None):
    """The training-step probe of one cell of experiment ``name`` (None: no training, e.g.
    alphafold-recycle). ``facts``: the cell's DataFacts (split sizes) or None when the data is
    missing (then the config's / the paper's sizes); ``shape`` overrides synthetic input sizes
    (size, nodes_per_graph, edges_per_graph, nodes, edges, features)."""
    from . import registry

    shape = shape or {}
    makers = {
        "anie": _ns_probe,
        "vit-pde": _ns_probe,
        "vit-mask": _vit_mask_probe,
        "ddpm": _ddpm_probe,
        "pign-lrgb": _lrgb_probe,
        "pign": _pign_probe,
    }
    if name not in makers:
        return None
    c = as_config(registry.get(name).config_cls, cfg)  # the probes read the typed config (a dict works too)
    return makers[name](name, c, facts, data_root, seeds, shape)


def _split(facts, key: str, fallback: int) -> int:
    n = (facts.splits or {}).get(key) if facts is not None else None
    return int(n) if n else fallback


def _ns_size(c, data_root) -> int:
    """Field size of the Navier-Stokes file's header (64, the paper's, when it cannot be read)."""
    if data_root is None:
        return 64
    try:
        import h5py

        from .experiments.anie import data_path

        with h5py.File(data_path(to_dict(c), data_root), "r") as f:  # (anie's helpers read config dicts)
            return int(f["w"].shape[-1]) if "picard_format" in f.attrs else int(f["a"].shape[0])
    except (OSError, KeyError, ImportError):
        return 64


def _ns_probe(name, c, facts, data_root, seeds, shape) -> Probe:
    """ANIE (Table 4) and the ViTs (Table 2): ns_train's step, t=0 frame -> 10 stamps, Adam, MSE."""
    size, frames, bs = shape.get("size") or _ns_size(c, data_root), 10, c.batch_size
    n_train = _split(facts, "train", c.n_train)
    if name == "anie":
        from .experiments.anie import build_model

        build, bf16 = (lambda cc: build_model(to_dict(cc), size)), False  # (it reads a config dict)
        if size % 4:
            raise RecipeError(f"field size {size} is not a multiple of 4 (ANIE's 4x4 patches)")
    else:
        from .experiments.vit_pde import build_model

        build, bf16 = (lambda cc: build_model(to_dict(cc), size, frames)), c.amp == "auto"
        if size % c.patch:
            raise RecipeError(f"field size {size} is not a multiple of patch={c.patch}")

    def make(dev):
        import torch
        import torch.nn.functional as F

        model = build(c).to(dev).train()
        opt = torch.optim.Adam(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        X, amp = torch.randn(bs, frames, size, size, device=dev), _amp(dev, bf16)

        def step():
            opt.zero_grad(set_to_none=True)
            with amp():
                pred, _ = model(X[:, 0])
            loss = F.mse_loss(pred.float(), X)
            aux = getattr(model, "aux_loss", None)  # ANIE's Jacobian penalty (jac_reg > 0)
            if aux is not None:
                model.aux_loss, loss = None, loss + aux
            loss.backward()
            opt.step()

        return step, sum(p.numel() for p in model.parameters())

    def loss(model):
        import torch
        import torch.nn.functional as F

        X = torch.randn(bs, frames, size, size, device="meta")
        return F.mse_loss(model(X[:, 0])[0].float(), X)

    def counts():
        return iterated(lambda k: meta_counts(lambda: build(dataclasses.replace(c, n_iter=k)), loss), c.n_iter)

    note = f"{c.epochs} epochs x ceil({n_train:,} / {bs})" + (" (at most: early stopping)" if c.patience else "")
    return Probe(
        _step_key(name, c, size),
        c.epochs * math.ceil(n_train / bs),
        note,
        bs,
        "samples",
        bf16,
        make,
        counts,
        notes=[f"{size}x{size} fields, 10 stamps"],
    )


def _vit_mask_probe(name, c, facts, data_root, seeds, shape) -> Probe:
    """Table 3: masked images -> MaskedViT iterated by PicardImage; AdamW, warmup/cosine, clip."""
    from .models.vit_mask import MaskedViT, PicardImage

    bs, size = c.batch_size, 32
    n_img = _split(facts, "train", c.train_n + c.val_n if c.train_n else 50_000) - c.val_n
    if n_img < 1:
        raise RecipeError(f"val_n={c.val_n} leaves no training images")

    def build(k):
        T = MaskedViT(
            size,
            3,
            c.patch,
            c.dim,
            c.depth,
            c.heads,
            c.dec_dim,
            c.dec_depth,
            c.dec_heads,
            c.mlp_ratio,
            c.pos,
            c.dropout,
        )
        return PicardImage(T, k, c.a, c.first_step)

    try:
        import torch

        with torch.device("meta"):
            build(1)  # the model's own checks (patch / heads), as one line
    except ValueError as e:
        raise RecipeError(f"vit-mask: {e}") from None

    def make(dev):
        import numpy as np
        import torch
        import torch.nn.functional as F

        from .data.masks import pixel_masks

        model = build(c.n_iter).to(dev).train()
        opt = torch.optim.AdamW(model.parameters(), lr=c.lr, betas=(0.9, 0.95), weight_decay=c.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        Y, amp, calls = torch.rand(bs, 3, size, size, device=dev), _amp(dev, c.amp == "auto"), [0]

        def step():
            calls[0] += 1
            m = torch.from_numpy(pixel_masks(np.arange(bs), size, c.mask_ratio, c.seed, calls[0])).to(dev)
            x0 = Y.masked_fill(m.unsqueeze(1), 0.0)
            with amp():
                x, _ = model(x0)
            optimizer_step(F.mse_loss(x.float(), Y), model.parameters(), opt, sched, c.grad_clip)

        return step, model.n_params()

    def loss(model):
        import torch
        import torch.nn.functional as F

        Y = torch.rand(bs, 3, size, size, device="meta")
        return F.mse_loss(model(Y)[0].float(), Y)

    def counts():
        return iterated(lambda k: meta_counts(lambda: build(k), loss), c.n_iter)

    return Probe(
        _step_key(name, c),
        c.epochs * math.ceil(n_img / bs),
        f"{c.epochs} epochs x ceil({n_img:,} / {bs})",
        bs,
        "images",
        c.amp == "auto",
        make,
        counts,
    )


def _ddpm_probe(name, c, facts, data_root, seeds, shape) -> Probe:
    """Figs. 2/6-8: the diffusers reference step (add_noise, eps-MSE, AdamW, clip, warmup/cosine)."""
    from .models import ddpm as D

    R, B, T = c.resolution, c.batch_size, c.timesteps
    if c.attn_down >= len(c.channels):
        raise RecipeError(f"attn_down={c.attn_down} but the UNet has {len(c.channels)} blocks")
    if R >> (len(c.channels) - 1) < 1:
        raise RecipeError(f"{len(c.channels)} UNet blocks downsample {R}x{R} below 1 pixel")

    def build():
        return D.build_unet(R, c.channels, c.layers_per_block, c.attn_down, c.head_dim, c.norm_groups, c.dropout)

    def make(dev):
        import torch
        from .experiments.ddpm import make_optimizer

        cuda = dev.type == "cuda"
        unet = build().to(dev).train()
        if c.channels_last and cuda:
            unet = unet.to(memory_format=torch.channels_last)
        sched = D.build_scheduler(T, c.beta_schedule, c.variance_type, c.zero_snr)
        opt, lr_sched = make_optimizer(c, unet, cuda)
        fwd = torch.compile(unet) if c.compile else unet
        X0, amp = torch.rand(B, 3, R, R, device=dev) * 2 - 1, _amp(dev, c.amp == "auto")
        if c.channels_last and cuda:
            X0 = X0.contiguous(memory_format=torch.channels_last)
        gen = torch.Generator(device=dev).manual_seed(c.seed)

        def step():
            noise = torch.randn(X0.shape, generator=gen, device=dev)
            t = torch.randint(0, T, (B,), generator=gen, device=dev)
            xt = sched.add_noise(X0, noise, t)
            with amp():
                pred = fwd(xt, t).sample
            loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
            optimizer_step(loss, unet.parameters(), opt, lr_sched, c.grad_clip)

        return step, sum(p.numel() for p in unet.parameters())

    def loss(unet):
        import torch

        x = torch.randn(B, 3, R, R, device="meta")
        t = torch.zeros(B, dtype=torch.long, device="meta")
        return torch.nn.functional.mse_loss(unet(x, t).sample.float(), x)

    return Probe(
        _step_key(name, c),
        c.train_steps,
        f"train_steps = {c.train_steps:,}",
        B,
        "images",
        c.amp == "auto",
        make,
        lambda: meta_counts(build, loss),
        notes=[f"{R}x{R} images"],
    )


# ---------------------------------------------------------------------------- GNN probes
def _conv_cost(kind: str, N: float, E: float, fin: int, fout: int, heads: int = 1, nnz: float | None = None):
    """Rough forward (FLOPs, aten ops, saved fp32 bytes) of one layer on N nodes / E edges (self-loops
    added), its activation / dropout / damping included."""
    lin = 2.0 * (nnz if nnz is not None else N * fin) * fout * heads
    Es, out = E + N, N * fout * heads
    if kind == "gcn":
        flops, ops, saved = lin + 2.0 * Es * fout * heads, 10, Es * fout * heads + N * fin
    elif kind == "gat":
        flops, ops, saved = lin + Es * heads * (2.0 * fout + 12) + 4.0 * out, 30, Es * heads * (fout + 4) + N * fin
    elif kind == "sage":
        flops, ops, saved = 2 * lin + E * fout, 12, E * fout + N * fin + out
    else:  # linear
        flops, ops, saved = lin, 3, (nnz if nnz is not None else N * fin)
    return flops + 4.0 * out, ops + 6, 4 * (saved + 2 * out)


def _gnn_counts(layers: list, N: float, E: float, seeds: int, params: int, how: str) -> Counts:
    fl = ops = saved = 0.0
    for kind, fin, fout, heads, nnz in layers:
        f, o, s = _conv_cost(kind, N, E, fin, fout, heads, nnz)
        fl, ops, saved = fl + f, ops + o, saved + s
    return Counts(3 * fl * seeds, int(3 * ops), int(saved * seeds), params, how)


def _random_graphs(B: int, n_per: float, e_per: float, feats: int, classes: int, dev, seed: int = 0):
    """B random graphs of n_per nodes and e_per directed edges each (within the graph), as one batch."""
    import torch

    g = torch.Generator().manual_seed(seed)
    n, e = max(2, round(n_per)), max(1, round(e_per))
    offs = torch.arange(B).repeat_interleave(e) * n
    src, dst = torch.randint(0, n, (B * e,), generator=g) + offs, torch.randint(0, n, (B * e,), generator=g) + offs
    keep = src != dst
    x, y = torch.randn(B * n, feats, generator=g), torch.randint(0, classes, (B * n,), generator=g)
    batch = torch.arange(B).repeat_interleave(n)
    return x.to(dev), torch.stack([src[keep], dst[keep]]).to(dev), batch.to(dev), y.to(dev)


def _lrgb_probe(name, c, facts, data_root, seeds, shape) -> Probe:
    """Table 1: the fork's step on a batch of PascalVOC-SP-sized random graphs (14 features, 21
    classes): class-weighted cross-entropy, loss.item() (the divergence check), Adam, OneCycleLR."""
    from .experiments.pign_lrgb import build_model, count_params, fit_hidden
    from .models.lrgb_gnn import N_CLASSES, N_FEATS

    H, B, mg = fit_hidden(c), c.batch_size, c.max_graphs
    n_per, e_per = (
        shape.get("nodes_per_graph", VOC["nodes_per_graph"]),
        shape.get("edges_per_graph", VOC["edges_per_graph"]),
    )
    n_train = _split(facts, "train", min(mg, VOC["train_graphs"]) if mg else VOC["train_graphs"])

    def make(dev):
        import torch
        import torch.nn.functional as F

        from .metrics.classification import class_weights

        model = build_model(c, H).to(dev).train()
        opt = torch.optim.Adam(model.parameters(), lr=c.lr, eps=c.adam_eps, weight_decay=c.weight_decay)
        sched = (
            torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=c.lr, total_steps=10**6, pct_start=0.2)
            if c.scheduler == "onecycle"
            else None
        )
        x, ei, batch, y = _random_graphs(B, n_per, e_per, N_FEATS, N_CLASSES, dev)

        def step():
            opt.zero_grad(set_to_none=True)
            logits, _ = model(x, ei, batch)
            loss = F.cross_entropy(logits, y, weight=class_weights(y, N_CLASSES).to(dev))
            loss.item()  # the loop's divergence check: one host sync per batch
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()

        return step, model.n_params()

    def counts():
        kind, d = c.backbone, c.depth
        layers = [("linear", N_FEATS, H, 1, None)] + [(kind, H, H, 1, None)] * d
        layers += [("linear", H, H, 1, None)] * (c.head_layers - 1) + [("linear", H, N_CLASSES, 1, None)]
        return _gnn_counts(
            layers,
            B * n_per,
            B * e_per,
            1,
            count_params(c, H),
            "formula of the layer sizes" + (" (itergnn: all depth steps)" if c.framework == "itergnn" else ""),
        )

    note = f"{c.epochs} epochs x ceil({n_train:,} graphs / {B})"
    return Probe(
        _step_key(name, c, n_per, e_per),
        c.epochs * math.ceil(n_train / B),
        note,
        B,
        "graphs",
        False,
        make,
        counts,
        notes=[f"hidden {H}", f"random graphs of {round(n_per)} nodes, {round(e_per)} edges"],
    )


def _planetoid_shape(c, shape: dict) -> dict:
    d = dict(PLANETOID[c.dataset])
    for ours, theirs in (("nodes", "N"), ("edges", "E"), ("features", "F")):
        if ours in shape:
            d[theirs] = shape[ours]
    d["train"] = min(d["train"], d["N"])
    d["density"] = d["density"] + c.noise * (1 - d["density"])  # drop-in noise adds +1 entries
    return d


def _pign_layers(c, d: dict, sparse: bool) -> list:
    H, heads, F, C, depth, kind = c.hidden, c.heads, d["F"], d["C"], c.depth, c.backbone
    nnz = d["N"] * F * d["density"] if sparse else None
    if c.model == "plain":
        if kind == "gcn":
            dims = [F] + [H] * (depth - 1) + [C]
            return [("gcn", dims[i], dims[i + 1], 1, nnz if i == 0 else None) for i in range(depth)]
        wide = H * heads
        return (
            [("gat", F, H, heads, nnz)] + [("gat", wide, wide, heads, None)] * (depth - 2) + [("gat", wide, C, 1, None)]
        )
    conv = (kind, H, H, heads if (kind == "gat" and c.model == "pign") else 1, None)
    return [("linear", F, H, 1, nnz)] + [conv] * depth + [("linear", H, C, 1, None)]


def _pign_probe(name, c, facts, data_root, seeds, shape) -> Probe:
    """Table 5: the stacked full-batch step of ``seeds`` seeds (models/stacked_gnn.py) on a random graph
    of the dataset's size: per-seed cross-entropy on the train nodes, summed; Adam."""
    from .fixedpoint.fields import toolkit_in_use

    if c.model != "pign" and toolkit_in_use(c):
        raise RecipeError(
            f"the fixed-point fields (solver_method, grad_mode, jac_reg, diagnose, ...) apply to "
            f"model=pign only, not model={c.model}"
        )
    d = _planetoid_shape(c, shape)
    sparse = c.features == "sparse" or (c.features == "auto" and d["density"] < 0.05)
    S = max(1, seeds)

    def make(dev):
        import torch
        import torch.nn.functional as F

        g = torch.Generator().manual_seed(0)
        half = torch.randint(0, d["N"], (2, d["E"] // 2), generator=g)
        half = half[:, half[0] != half[1]]
        x = (torch.rand(d["N"], d["F"], generator=g) < d["density"]).float()
        x = x / x.sum(1, keepdim=True).clamp_min(1.0)
        X = (x.to_sparse_csr() if sparse else x).to(dev)
        from .models.stacked_gnn import Graph

        graph = Graph.build(torch.cat([half, half.flip(0)], 1), d["N"], dev)
        y = torch.randint(0, d["C"], (d["N"],), generator=g).to(dev)
        model = _stacked_model(c, d, S).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        ytr = y[: d["train"]].unsqueeze(1).expand(-1, S)

        def step():
            model.train()
            opt.zero_grad(set_to_none=True)
            logits, st = model(X, graph)
            loss_s = F.cross_entropy(logits[: d["train"]].transpose(1, 2), ytr, reduction="none").mean(0)
            if getattr(st, "jac", None) is not None:  # Jacobian penalty (jac_reg > 0)
                loss_s, st.jac = loss_s + c.jac_reg * st.jac, None
            torch.nan_to_num(loss_s, nan=0.0, posinf=0.0).sum().backward()
            opt.step()

        return step, sum(p.numel() for p in model.parameters()) // S

    def counts():
        layers = _pign_layers(c, d, sparse)
        params = sum(fi * fo * h + fo * h + (2 * fo * h if k == "gat" else 0) for k, fi, fo, h, _ in layers)
        return _gnn_counts(
            layers,
            d["N"],
            d["E"],
            S,
            params,
            "formula of the layer sizes, full graph" + (" (itergnn: all depth steps)" if c.model == "itergnn" else ""),
        )

    notes = [
        f"{S} seed(s) stacked per step",
        f"random graph of {d['N']:,} nodes, {d['E']:,} edges, {d['F']:,} features ({'sparse' if sparse else 'dense'})",
    ]
    return Probe(
        _step_key(name, c, S, d["N"], d["E"], d["F"]),
        c.epochs,
        f"{c.epochs} full-batch epochs",
        S,
        "seeds",
        False,
        make,
        counts,
        seeds=S,
        notes=notes,
    )


def _stacked_model(c, d: dict, S: int):
    import torch

    from .fixedpoint.fields import fixed_masks, spec_from_config
    from .models.stacked_gnn import PIGN, IterGNN, PlainGNN

    gens = [torch.Generator().manual_seed(s) for s in range(S)]
    common = dict(
        backbone=c.backbone,
        F_in=d["F"],
        C=d["C"],
        depth=c.depth,
        hidden=c.hidden,
        heads=c.heads,
        dropout=c.dropout,
        attn_dropout=c.attn_dropout,
    )
    if c.model == "pign":
        return PIGN(
            gens,
            a=c.a,
            init=c.init,
            fp=spec_from_config(c),
            forcing=c.forcing,
            fixed_masks=fixed_masks(c),
            spectral_cap=c.spectral_norm,
            **common,
        )
    if c.model == "itergnn":
        return IterGNN(gens, variant=c.itergnn_variant, readout=c.readout, stop_mass=c.stop_mass, **common)
    return PlainGNN(gens, **common)


# ============================================================================ measuring
class _RssPeak:
    """Peak resident memory growth of this process while it runs (polled every 2 ms; Linux)."""

    def __init__(self):
        import threading

        self.page = os.sysconf("SC_PAGE_SIZE")
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _poll(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self._rss()) - self.base


def _sync(dev):
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def measure(probe: Probe, device: str, steps: int = 5, warmup: int = WARMUP) -> dict:
    """Build the probe's model on ``device``, run ``warmup`` then ``steps`` timed training steps.
    Returns s_per_step, peak_mem_bytes (CUDA: max_memory_allocated above what was allocated before;
    CPU: peak RSS growth, None where it cannot be read), params; ``error`` instead on out-of-memory."""
    import torch

    dev = torch.device(device)
    cuda, step = dev.type == "cuda", None
    gc.collect()
    if cuda:
        torch.cuda.synchronize(dev)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    try:
        rss = None if cuda else _RssPeak()
    except OSError:
        rss = None
    torch.manual_seed(0)
    try:
        step, params = probe.make(dev)
        for _ in range(warmup):
            step()
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(dev)
        dt = (time.perf_counter() - t0) / steps
        peak = torch.cuda.max_memory_allocated(dev) - base if cuda else (rss.stop() if rss else None)
        return {"s_per_step": dt, "peak_mem_bytes": peak, "params": params, "steps": steps, "warmup": warmup}
    except torch.cuda.OutOfMemoryError as e:
        return {"error": f"out of memory on {device}: {str(e).splitlines()[0]}"}
    finally:
        if rss is not None and rss._thread.is_alive():
            rss.stop()
        del step
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()


# ============================================================================ data checks
DATA_FIELDS = {  # the config fields a cell's data check reads (cells equal in these share one check)
    "pign": ("dataset",),
    "pign-lrgb": ("dataset", "max_graphs"),
    "anie": ("data", "n_train", "n_val", "n_test"),
    "vit-pde": ("data", "n_train", "n_val", "n_test"),
    "vit-mask": ("source", "train_n", "val_n", "test_n"),
    "ddpm": ("source", "train_n", "test_n"),
    "alphafold-recycle": ("source", "targets", "targets_dir"),
}


def data_check(exp, cfg: dict, data_root: Path, scale: str, allow_partial: bool, cache: dict | None = None) -> dict:
    """The cell's data as a plain dict: ``status`` ok (with the DataFacts) or missing (one line)."""
    fields, c = DATA_FIELDS.get(exp.name), as_config(exp.config_cls, cfg)
    key = json.dumps([getattr(c, k) for k in fields] if fields else to_dict(c), sort_keys=True, default=str)
    if cache is not None and key in cache:
        return dict(cache[key])
    out = _data_check(exp, cfg, data_root, scale, allow_partial)
    if cache is not None:
        cache[key] = dict(out)
    return out


def _data_check(exp, cfg: dict, data_root: Path, scale: str, allow_partial: bool) -> dict:
    try:
        facts, checked = _facts(exp, cfg, data_root)
    except DataError as e:
        return {"status": "missing", "message": str(e), "facts": None}
    if facts is None:
        return {"status": "unchecked", "message": "no data to check", "facts": None}
    out = {"status": "ok", "checked_by": checked, "facts": facts, **facts.as_record()}
    out["refusal"] = None
    if scale == "paper" and not facts.is_paper:
        from .datacheck import refusal

        out["refusal"] = None if allow_partial else refusal(facts, "<cell>")
    if "torchvision" in facts.source and not (Path(data_root) / "cifar10" / "cifar-10-batches-py").is_dir():
        out["note"] = (
            f"not on disk: torchvision downloads the python batches into "
            f"{Path(data_root) / 'cifar10'} on the first run (needs the internet)"
        )
    return out


def _facts(exp, cfg: dict, data_root: Path):
    """(DataFacts or None, who checks it): the experiment's own data_facts (given ``cfg`` as it came),
    else preflight's check."""
    from .datacheck import DataFacts

    c = as_config(exp.config_cls, cfg)
    if exp.name == "pign-lrgb":  # absent raw pickles: say so here (PyG would try to download them)
        from .data.lrgb import NAMES, RAW

        raw = Path(data_root) / "lrgb" / c.dataset / "raw"
        missing = [f for f in RAW if not (raw / f).exists()]
        if missing:
            raise DataError(
                f"{NAMES[c.dataset]} is not under {raw} (missing {', '.join(missing)}); PyG's "
                f"LRGBDataset downloads pascalvocsp.zip on the first run when online"
            )
    facts = exp.data_facts(cfg, data_root)
    if facts is not None:
        return facts, "runner (picard run / sweep checks the same before training)"
    if exp.name == "pign":
        from .data.planetoid import NAMES, raw_files

        name, d = NAMES[c.dataset], PLANETOID[c.dataset]
        raw = Path(data_root) / "planetoid" / name / "raw"
        missing = [f for f in raw_files(c.dataset) if not (raw / f).exists()]
        if missing:
            raise DataError(
                f"{name} is not under {raw} (missing {', '.join(missing[:3])}"
                f"{', ...' if len(missing) > 3 else ''}); PyG downloads it on the first run when online"
            )
        splits = {k: d[k] for k in ("train", "val", "test")}
        label = f"Planetoid {name}: public split {d['train']} / {d['val']} / {d['test']} nodes (raw files present)"
        return DataFacts(
            f"Planetoid {name}", "pyg-planetoid", splits, label=label, file=str(raw)
        ), "preflight (raw files present; the run reads them when it loads them)"
    if exp.name == "alphafold-recycle":
        from .experiments.alphafold_recycle import resolve_targets

        targets = resolve_targets(c, data_root)
        where = Path(targets[0][1]).parent
        label = f"CASP15: {len(targets)} native domain file(s) under {where}"
        if c.source == "synthetic":
            label += " (SYNTHETIC predictions made from them)"
        return DataFacts(
            "CASP15", c.source, {"targets": len(targets)}, label=label, file=str(where)
        ), "preflight (the natives the run scores against)"
    return None, ""


# ============================================================================ the plan
def build(
    experiment: str,
    recipe: str | None,
    scale: str,
    overrides: dict,
    sweep_overrides: dict,
    *,
    filter_: str | None = None,
    steps: str | None = None,
    data_root: str | None = None,
    results: str | None = None,
    measure_mode: bool | None = None,
    measure_steps: int = 5,
    say: Callable[[str], None] = lambda s: None,
) -> dict:
    """The preflight of one command line, as a JSON-able dict (``render`` prints it)."""
    from . import env, registry, runner
    from .results import ResultStore, default_root

    if measure_steps < 1:
        raise PicardError(f"--measure-steps must be >= 1, got {measure_steps}")
    exp = registry.get(registry.for_recipe(experiment, recipe))
    p = runner.plan(
        exp, recipe, scale, overrides, sweep_overrides, cells="all", filter_=filter_, axis=runner.steps_axis(exp, steps)
    )
    store = ResultStore(Path(results) if results else default_root(), exp.name)
    done, root = store.done_keys(), env.data_root(data_root)
    device = _measure_device(p.sweep.device, measure_mode)
    trains = exp.name in ("pign", "pign-lrgb", "anie", "vit-pde", "vit-mask", "ddpm")
    target = "cpu" if p.sweep.device == "cpu" else "gpu"
    kind = "n/a" if not trains else ("measured" if device else "estimate")
    label = {
        "n/a": "n/a (inference through ColabFold)" if exp.name == "alphafold-recycle" else "n/a (no training)",
        "measured": f"measured on {device and env.device_name(device)} from {measure_steps} steps per probe "
        f"(after {WARMUP} warm-up steps)",
        "estimate": estimate_label(target),
    }[kind]
    cells, costs = [], {}
    for name in dict.fromkeys(r.cell for r in p.runs):
        runs = [r for r in p.runs if r.cell == name]
        cells.append(_cell(exp, p, name, runs, done, root, kind, device, target, measure_steps, costs, say))
    todo = sum(cell["todo"] for cell in cells)
    hours = [cell["estimate"].get("hours_cell") for cell in cells]
    hours_todo = [cell["estimate"].get("hours_todo") for cell in cells]
    known = all(h is not None for h in hours) and kind != "n/a"
    return {
        "experiment": exp.name,
        "recipe": p.recipe,
        "scale": scale,
        "seeds": p.sweep.seeds,
        "executor": p.sweep.executor,
        "results": str(store.path),
        "data_root": str(root),
        "allow_partial_data": p.sweep.allow_partial_data,
        "runs": {"cells": len(cells), "total": len(p.runs), "done": len(p.runs) - todo, "todo": todo},
        "estimate": {
            "kind": kind,
            "label": label,
            "device": device,
            "assumed": ASSUMED[target] if kind == "estimate" else None,
            "covers": "training steps only: evaluation, FID, sampling and data loading are not included",
        },
        "totals": {
            "device_hours_all": sum(hours) if known else None,
            "device_hours_todo": sum(hours_todo) if known else None,
        },
        "cells": cells,
    }


def _measure_device(sweep_device: str, mode: bool | None) -> str | None:
    """The device to measure on, or None (estimate): --measure on the sweep's device; by default only
    where CUDA is (and the sweep does not ask for the CPU)."""
    import torch

    from . import env

    if mode is False:
        return None
    if mode is None:
        return "cuda" if torch.cuda.is_available() and sweep_device != "cpu" else None
    return env.pick_device(sweep_device)


def _groups(exp, p, runs, done) -> tuple[list[int], list[int]]:
    """Sizes of the groups the runner forms for this cell (all runs / those still to do): seeds stacked
    into one model by the batched executor, else one run per group."""
    from .runner import EXECUTORS

    executor = EXECUTORS["inprocess" if not exp.batchable or p.sweep.executor == "inprocess" else "batched"](exp)
    batches = list(executor.batches(runs, p.sweep))
    return [len(b) for b in batches], [n for n in (len([r for r in b if r.key not in done]) for b in batches) if n]


def config_view(exp, cfg: dict) -> dict:
    defaults = _defaults(exp)
    keys = KEY_FIELDS.get(exp.name, ())
    return {k: v for k, v in cfg.items() if k != "seed" and (k in keys or defaults.get(k) != v)}


def _defaults(exp) -> dict:
    from .recipes import to_dict

    return to_dict(exp.config_cls())


def _cell(exp, p, name, runs, done, root, kind, device, target, measure_steps, costs, say) -> dict:
    cfg = runs[0].config
    todo = sum(r.key not in done for r in runs)
    data = data_check(exp, cfg, root, p.scale, p.sweep.allow_partial_data, costs.setdefault("data", {}))
    facts = data.pop("facts")
    if data.get("refusal"):
        data["refusal"] = data["refusal"].replace("cell <cell>", f"cell {name}")
    out = {
        "name": name,
        "runs": len(runs),
        "done": len(runs) - todo,
        "todo": todo,
        "config": config_view(exp, cfg),
        "data": data,
        "estimate": {"kind": kind},
    }
    if kind == "n/a":
        return out
    sizes_all, sizes_todo = _groups(exp, p, runs, done)
    per_size = {}
    for size in sorted(set(sizes_all) | set(sizes_todo)):
        probe = probe_for(exp.name, cfg, facts, root, seeds=size)
        per_size[size] = (probe, _cost(probe, kind, device, target, measure_steps, costs, say, name))
    probe, cost = per_size[max(sizes_all)]
    est = (
        out["estimate"]
        | {k: v for k, v in cost.items()}
        | {
            "steps_per_run": probe.steps_per_run,
            "steps_note": probe.steps_note,
            "items_per_step": probe.items,
            "item": probe.item,
            "seeds_per_step": probe.seeds,
            "notes": probe.notes,
            "groups": sizes_all,
        }
    )
    if "s_per_step" in cost:

        def hours(sizes):
            return sum(per_size[s][1]["s_per_step"] * probe.steps_per_run for s in sizes) / 3600

        est |= {
            "items_per_s": probe.items / cost["s_per_step"],
            "hours_cell": hours(sizes_all),
            "hours_todo": hours(sizes_todo),
            "hours_per_run": hours(sizes_all) / len(runs),
        }
        if any("s_per_step" not in per_size[s][1] for s in per_size):
            est["hours_cell"] = est["hours_todo"] = None
    out["estimate"] = est
    return out


def _cost(probe: Probe, kind, device, target, measure_steps, costs: dict, say, cell: str) -> dict:
    key = (probe.key, kind, device, target)
    if key not in costs:
        if kind == "measured":
            say(f"measuring {cell} on {device} ...")
            costs[key] = measure(probe, device, measure_steps)
        else:
            costs[key] = estimate_step(cached_counts(probe), probe.bf16, target)
    return costs[key]


def cached_counts(probe: Probe) -> Counts:
    """``probe.counts()``, kept in ``<cache>/preflight/counts-<code hash>.json``: counting on the meta
    device takes about a second per model; the hash covers the model code and library versions, so
    any change to them counts afresh."""
    from .env import cache_dir

    path = cache_dir() / "preflight" / f"counts-{_code_hash()}.json"
    key = json.dumps(probe.key, default=str)
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
    if key in table:
        return Counts(**table[key])
    counts = probe.counts()
    table[key] = counts.__dict__
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache: count again next time
    return counts


def _code_hash() -> str:
    import hashlib
    from importlib import metadata

    if not hasattr(_code_hash, "value"):
        here = Path(__file__).resolve().parent
        files = sorted(
            [
                *(here / "models").glob("*.py"),
                *(here / "fixedpoint").glob("*.py"),
                here / "solver.py",
                here / "preflight.py",
                *(here / "experiments").glob("*.py"),
            ]
        )
        h = hashlib.sha256()
        for f in files:
            h.update(f.name.encode() + f.read_bytes())
        for lib in ("torch", "timm", "diffusers", "torch_geometric"):
            try:
                h.update(f"{lib}={metadata.version(lib)}".encode())
            except metadata.PackageNotFoundError:
                pass
        _code_hash.value = h.hexdigest()[:16]
    return _code_hash.value


# ============================================================================ rendering
def _fmt_bytes(n) -> str:
    if n is None:
        return "not measured"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _fmt_hours(h) -> str:
    if h is None:
        return "?"
    return f"{h * 3600:.0f} s" if h < 1 / 60 else (f"{h * 60:.1f} min" if h < 1 else f"{h:,.1f} h")


def _fmt_cfg(cfg: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in cfg.items()) or "(the defaults)"


def render(rep: dict, console) -> None:
    """The preflight as a few readable sections on a rich console."""
    r, e = rep["runs"], rep["estimate"]
    console.print(
        f"[bold]{rep['experiment']}[/bold]: {r['cells']} cell(s) x {rep['seeds']} seed(s) = {r['total']} "
        f"runs; {r['done']} already in {rep['results']} (a re-run skips them), {r['todo']} to run",
        highlight=False,
    )
    console.print(
        f"  recipe {rep['recipe']}, scale {rep['scale']}, executor {rep['executor']}, data root {rep['data_root']}",
        highlight=False,
    )
    _render_configs(rep, console)
    _render_data(rep, console)
    console.print(f"\n[bold]Estimate[/bold] ({e['label']})", highlight=False)
    if e["kind"] == "n/a":
        return
    _render_table(rep, console)
    t = rep["totals"]
    console.print(
        f"  total: {_fmt_hours(t['device_hours_todo'])} of device time for the {r['todo']} run(s) to do "
        f"({_fmt_hours(t['device_hours_all'])} for all {r['total']}); {e['covers']}",
        highlight=False,
    )


def _render_configs(rep: dict, console) -> None:
    cells = rep["cells"]
    common = {
        k: v for k, v in cells[0]["config"].items() if all(cell["config"].get(k, object()) == v for cell in cells)
    }
    console.print("\n[bold]Configs[/bold] (fields that differ from the config's defaults, plus the key fields)")
    if len(cells) > 1 and common:
        console.print(f"  all cells: {_fmt_cfg(common)}", highlight=False)
    for cell in cells:
        own = {k: v for k, v in cell["config"].items() if k not in common} if len(cells) > 1 else cell["config"]
        console.print(f"  {cell['name']}: {_fmt_cfg(own) if own or len(cells) == 1 else '(as above)'}", highlight=False)


def _data_line(d: dict) -> list[str]:
    if d["status"] == "missing":
        return [f"[red]missing[/red]: {d['message']}"]
    if d["status"] == "unchecked":
        return [d["message"]]
    head = f"{d['label']} ({', '.join(f'{k} {v:,}' for k, v in d['splits'].items())})"
    lines = [head + (": [green]the paper's data[/green]" if d["paper"] else ": [yellow]not the paper's data[/yellow]")]
    lines += [f"  - {x}" for x in d["differs"]]
    if d.get("note"):
        lines.append(f"  note: {d['note']}")
    if d.get("refusal"):
        lines.append(
            "  [yellow]--scale paper: `picard run` / `picard sweep` would refuse this cell unless "
            "allow_partial_data=true[/yellow]"
        )
    return lines


def _render_data(rep: dict, console) -> None:
    console.print("\n[bold]Data[/bold]")
    groups: dict = {}
    for cell in rep["cells"]:
        d = {k: v for k, v in cell["data"].items() if k != "refusal"} | {"refusal": bool(cell["data"].get("refusal"))}
        groups.setdefault(json.dumps(d, sort_keys=True, default=str), (cell["data"], []))[1].append(cell["name"])
    for data, names in groups.values():
        who = "all cells" if len(groups) == 1 and len(names) > 1 else ", ".join(names)
        lines = _data_line(data)
        console.print(f"  {who}: {lines[0]}", highlight=False)
        for ln in lines[1:]:
            console.print(f"    {ln}", highlight=False)
    if rep["scale"] == "paper" and rep["allow_partial_data"]:
        console.print("  allow_partial_data=true: cells on other data run anyway (records and captions say so)")


def _fmt_time(s: float) -> str:
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def _fmt_rate(x: float) -> str:
    return f"{x / 1e3:.3g}k" if x >= 1e4 else (f"{x:,.0f}" if x >= 100 else f"{x:.3g}")


def _render_table(rep: dict, console) -> None:
    from rich.table import Table

    item = rep["cells"][0]["estimate"]["item"]
    t = Table(show_edge=False, pad_edge=False)
    for col in ("cell", "runs", "steps/run", "time/step", f"{item}/s", "to do", "peak mem"):
        t.add_column(col, justify="left" if col == "cell" else "right")
    for cell in rep["cells"]:
        e = cell["estimate"]
        runs = f"{cell['todo']}/{cell['runs']}"
        if "error" in e:
            t.add_row(cell["name"], runs, f"{e['steps_per_run']:,}", "[red]failed[/red]", "", "", "")
            continue
        t.add_row(
            cell["name"],
            runs,
            f"{e['steps_per_run']:,}",
            _fmt_time(e["s_per_step"]),
            _fmt_rate(e["items_per_s"]),
            _fmt_hours(e["hours_todo"]),
            _fmt_bytes(e.get("peak_mem_bytes")),
        )
    console.print(t)
    for cell in rep["cells"]:
        if "error" in cell["estimate"]:
            console.print(f"  [red]{cell['name']}[/red]: {cell['estimate']['error']}", highlight=False)
    first = rep["cells"][0]["estimate"]
    notes = "; ".join([first["steps_note"]] + first.get("notes", []))
    console.print(
        f"  runs: to do / all (done runs are skipped); steps/run, e.g. {rep['cells'][0]['name']}: {notes}",
        highlight=False,
    )
    params = sorted({cell["estimate"].get("params") for cell in rep["cells"]} - {None})
    if params:
        console.print(
            "  parameters per model: " + (f"{params[0]:,}" if len(params) == 1 else f"{params[0]:,} to {params[-1]:,}"),
            highlight=False,
        )
    if rep["estimate"]["kind"] == "measured" and rep["estimate"]["device"] == "cpu":
        console.print("  peak memory on a CPU: the process's peak RSS growth while the probe ran (approximate)")
