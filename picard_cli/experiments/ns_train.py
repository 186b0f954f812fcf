"""The Navier-Stokes training protocol shared by ANIE (Table 4) and the ViTs (Table 2)
(spec ../shared/specs/navier-stokes.md §2.2-2.3): input = the t=0 frame, target =
the 10 stamps; Adam, batch reshuffled every epoch by a seeded generator, MSE on all
10 frames; the authors' CosineAnnealingLR(T_max 101, eta_min 1e-9) stepped once per
epoch after epoch 15; the best-validation weights kept (their SaveBestModel);
validation = MSE on the 10 frames; optional early stopping (patience).

A model here is any module whose ``forward(w0, n_iter=None, trace=False)`` maps
the t=0 frames (B, S, S) to a prediction (B, T, S, S) and solver stats.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field


@dataclass
class Fit:
    losses: list = field(default_factory=list)  # mean train loss per epoch
    val_mse: list = field(default_factory=list)
    epoch_s: list = field(default_factory=list)
    lrs: list = field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int = -1
    best_state: dict | None = None
    diverged: bool = False

    def extra(self) -> dict:
        """The curves for a record's ``extra``."""
        g = lambda v: float(f"{v:.6g}")  # noqa: E731
        out = {"epoch_s_mean": round(sum(self.epoch_s) / max(1, len(self.epoch_s)), 3),
               "train_loss": [g(v) for v in self.losses], "val_mse": [g(v) for v in self.val_mse]}
        if self.lrs:  # (vit-mask's loop does not log its learning rate)
            out["lr"] = [g(v) for v in self.lrs[:: max(1, len(self.lrs) // 100)]]
        return out


def per_sample_mse(model, X, frames, batch_size: int, n_iter=None, amp=contextlib.nullcontext):
    """Per-sample MSE over ``frames`` of the samples ``X`` (N, T, S, S), eval mode, compared
    in fp32: an (N,) tensor on the CPU."""
    import torch

    model.eval()
    out = []
    with torch.no_grad(), amp():
        for i in range(0, len(X), batch_size):
            pred, _ = model(X[i:i + batch_size, 0], n_iter)
            out.append((pred.float()[:, frames] - X[i:i + batch_size, frames]).pow(2).flatten(1).mean(1).cpu())
    return torch.cat(out)


def fit(model, Xtr, Xva, c: dict, ctx, amp=contextlib.nullcontext) -> Fit:
    """Train ``model`` with config ``c`` (lr, weight_decay, scheduler, batch_size, epochs,
    patience, seed); a non-finite loss stops training and marks the fit diverged."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(model.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=101, eta_min=1e-9)
             if c["scheduler"] == "authors" else None)
    g = torch.Generator().manual_seed(c["seed"])
    bs, out = c["batch_size"], Fit()
    for epoch in range(c["epochs"]):
        t0 = time.perf_counter()
        model.train()
        total = 0.0
        out.lrs.append(opt.param_groups[0]["lr"])
        perm = torch.randperm(len(Xtr), generator=g).to(Xtr.device)
        for i in range(0, len(Xtr), bs):
            batch = Xtr[perm[i:i + bs]]
            opt.zero_grad(set_to_none=True)
            with amp():
                pred, _ = model(batch[:, 0])  # gradients through every solver iteration
            loss = F.mse_loss(pred.float(), batch)  # all 10 frames, t=0 included (spec §2.2)
            if not torch.isfinite(loss):
                out.diverged = True
                break
            aux = getattr(model, "aux_loss", None)  # e.g. ANIE's Jacobian penalty (jac_reg > 0)
            if aux is not None:
                model.aux_loss = None
                (loss + aux).backward()
            else:
                loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        if out.diverged:
            out.losses.append(float("nan"))
            return out
        out.losses.append(total / len(Xtr))
        out.val_mse.append(per_sample_mse(model, Xva, slice(None), bs, amp=amp).mean().item())
        if out.val_mse[-1] < out.best_val:  # SaveBestModel
            out.best_val, out.best_epoch = out.val_mse[-1], epoch
            out.best_state = copy.deepcopy(model.state_dict())
        if sched is not None and epoch > 15:
            sched.step()
        out.epoch_s.append(time.perf_counter() - t0)
        ctx.on_epoch(epoch + 1, c["epochs"], f"{out.epoch_s[-1]:.1f} s/epoch")
        if c["patience"] and epoch - out.best_epoch >= c["patience"]:
            break
    return out
