"""The Navier-Stokes training protocol shared by ANIE (Table 4) and the ViTs (Table 2)
(spec ../shared/specs/navier-stokes.md §2.2-2.3): input = the t=0 frame, target =
the 10 stamps; Adam, batch reshuffled every epoch by a seeded generator, MSE on all
10 frames; the authors' CosineAnnealingLR(T_max 101, eta_min 1e-9) stepped once per
epoch after epoch 15; the best-validation weights kept (their SaveBestModel);
validation = MSE on the 10 frames; optional early stopping (patience).

A model here is any module whose ``forward(w0, n_iter=None, trace=False)`` maps
the t=0 frames (B, S, S) to a prediction (B, T, S, S) and solver stats.

Checkpoints (``picard_cli/checkpoint.py``): ``fit`` saves at epoch ends into the run's folder and a
re-run of the same run continues at the next epoch, bit for bit as if never interrupted (CPU).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field, fields


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
    resumed_from: list = field(default_factory=list)  # epochs done whenever the run resumed from a checkpoint

    def extra(self) -> dict:
        """The curves for a record's ``extra``."""

        def g(v):
            return float(f"{v:.6g}")

        out = {
            "epoch_s_mean": round(sum(self.epoch_s) / max(1, len(self.epoch_s)), 3),
            "train_loss": [g(v) for v in self.losses],
            "val_mse": [g(v) for v in self.val_mse],
            "resumed_from_epoch": list(self.resumed_from),
        }
        if self.lrs:  # (vit-mask's loop does not log its learning rate)
            out["lr"] = [g(v) for v in self.lrs[:: max(1, len(self.lrs) // 100)]]
        return out

    def state(self) -> dict:
        """Every field, for a checkpoint (lists, numbers and the best weights' tensors)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_state(cls, state: dict) -> "Fit":
        return cls(**state)


def autocast(bf16: bool):
    """A trainer's ``amp``: a factory of bf16 autocast contexts on CUDA when ``bf16``, else of no-ops."""

    def amp():
        import torch

        return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    return amp


def on_device(dev, *arrays) -> list:
    """numpy arrays as (contiguous) tensors on ``dev``."""
    import numpy as np
    import torch

    return [torch.from_numpy(np.ascontiguousarray(a)).to(dev) for a in arrays]


def per_sample_mse(model, X, frames, batch_size: int, n_iter=None, amp=contextlib.nullcontext):
    """Per-sample MSE over ``frames`` of the samples ``X`` (N, T, S, S), eval mode, compared
    in fp32: an (N,) tensor on the CPU."""
    import torch

    model.eval()
    out = []
    with torch.no_grad(), amp():
        for i in range(0, len(X), batch_size):
            pred, _ = model(X[i : i + batch_size, 0], n_iter)
            out.append((pred.float()[:, frames] - X[i : i + batch_size, frames]).pow(2).flatten(1).mean(1).cpu())
    return torch.cat(out)


def fit(model, Xtr, Xva, c, ctx, amp=contextlib.nullcontext) -> Fit:
    """Train ``model`` with the typed config ``c`` (an AnieConfig or VitPdeConfig: lr, weight_decay,
    scheduler, batch_size, epochs, patience, seed); an epoch whose loss turned non-finite stops training and
    marks the fit
    diverged (NaN last in its curve).

    Checkpoint (``ctx.run_dir/checkpoint.pt``, when due: picard_cli/checkpoint.py) after an epoch:
    the model, Adam, the LR scheduler, every RNG (torch CPU/CUDA: dropout; numpy; python; the
    data-order generator), the whole Fit (curves, epoch times, lrs, best_val / best_epoch /
    best_state), the model's training solver log (``fp_log``), the epoch and the config. A run
    that finds one (same config) continues at the next epoch with the same numbers as an
    uninterrupted run; ``Fit.resumed_from`` lists the epochs done at each resume."""
    import torch

    from ..checkpoint import Checkpointer

    opt = torch.optim.Adam(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=101, eta_min=1e-9) if c.scheduler == "authors" else None
    )
    g = torch.Generator().manual_seed(c.seed)
    bs, ck = c.batch_size, Checkpointer(ctx, c)
    out, start = resume_fit(ck, model, opt, sched, g)
    ctx.on_phase("training" + (f" (resumed at epoch {start})" if start else ""))
    if start:
        ctx.on_epoch(start, c.epochs, "resumed")

    def stop(epoch):
        return bool(c.patience) and epoch - out.best_epoch >= c.patience

    if start and stop(start - 1):  # the checkpoint is of the epoch that stopped early
        start = c.epochs
    for epoch in range(start, c.epochs):
        t0 = time.perf_counter()
        out.lrs.append(opt.param_groups[0]["lr"])
        mean = _train_epoch(model, opt, Xtr, g, bs, amp)
        if not math.isfinite(mean):
            out.diverged = True
            out.losses.append(float("nan"))
            return out
        out.losses.append(mean)
        out.val_mse.append(per_sample_mse(model, Xva, slice(None), bs, amp=amp).mean().item())
        if out.val_mse[-1] < out.best_val:  # SaveBestModel
            out.best_val, out.best_epoch = out.val_mse[-1], epoch
            out.best_state = copy.deepcopy(model.state_dict())
        if sched is not None and epoch > 15:
            sched.step()
        out.epoch_s.append(time.perf_counter() - t0)
        ck.epoch_end(epoch == c.epochs - 1 or stop(epoch), lambda: fit_state(epoch, model, opt, sched, out, g))
        ctx.log(epoch + 1, {"train_loss": mean, "val_mse": out.val_mse[-1], "learning_rate": out.lrs[-1]})
        ctx.on_epoch(epoch + 1, c.epochs, f"{out.epoch_s[-1]:.1f} s/epoch")
        if stop(epoch):
            break
    return out


def _train_epoch(model, opt, Xtr, g, bs: int, amp) -> float:
    """One epoch over a fresh permutation drawn from ``g``: the mean train loss, non-finite once a
    batch loss was. The loss sum stays on the device (float64, the same doubles as summing
    ``loss.item() * n``): no host sync per step."""
    import torch
    import torch.nn.functional as F

    model.train()
    perm = torch.randperm(len(Xtr), generator=g).to(Xtr.device)
    acc = torch.zeros((), dtype=torch.float64, device=Xtr.device)
    for i in range(0, len(Xtr), bs):
        batch = Xtr[perm[i : i + bs]]
        opt.zero_grad(set_to_none=True)
        with amp():
            pred, _ = model(batch[:, 0])  # gradients through every solver iteration
        loss = F.mse_loss(pred.float(), batch)  # all 10 frames, t=0 included (spec §2.2)
        aux = getattr(model, "aux_loss", None)  # e.g. ANIE's Jacobian penalty (jac_reg > 0)
        if aux is not None:
            model.aux_loss = None
            (loss + aux).backward()
        else:
            loss.backward()
        opt.step()
        acc += loss.detach().double() * len(batch)
    return acc.item() / len(Xtr)


def fit_state(epoch: int, model, opt, sched, out: Fit, *generators) -> dict:
    """What a checkpoint after ``epoch`` holds (shared with vit-mask's loop): the model, optimizer and
    scheduler states, every RNG (``generators``: the data order), the Fit and the model's solver log."""
    from ..checkpoint import rng_state

    return {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "lr_scheduler": sched.state_dict() if sched is not None else None,
        "rng": rng_state(*generators),
        "fit": out.state(),
        "solver_log": _solver_log(model),
    }


def resume_fit(ck, model, opt, sched, *generators) -> tuple[Fit, int]:
    """(the Fit so far, the first epoch to run) from the run's checkpoint (:func:`fit_state`, read
    by ``ck``: a picard_cli.checkpoint.Checkpointer), restoring everything it holds; (Fit(), 0)
    when there is none."""
    from ..checkpoint import set_rng_state

    state = ck.resume()
    if state is None:
        return Fit(), 0
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if sched is not None:
        sched.load_state_dict(state["lr_scheduler"])
    set_rng_state(state["rng"], *generators)
    if state["solver_log"] is not None:
        from types import SimpleNamespace

        model.fp_log[:] = [SimpleNamespace(**e) for e in state["solver_log"]]
    out = Fit.from_state(state["fit"])
    out.resumed_from.append(state["epoch"] + 1)
    return out, state["epoch"] + 1


def _solver_log(model) -> list | None:
    """The model's per-step training solver stats (``fp_log``: ANIE's toolkit path) reduced to what
    the training summary reads, as plain data; None when the model keeps no log."""
    log = getattr(model, "fp_log", None)
    if log is None:
        return None
    return [{"n_evals": st.n_evals, "backward": st.backward, "jac_value": getattr(st, "jac_value", None)} for st in log]


def trivial_baselines(train, test) -> dict:
    """Test MSE on the 9 stamps t > 0 (the reported metric, mean over test samples) of three
    predictors that learn nothing: zero vorticity, the input frame w(t=0) held constant, and the
    per-stamp mean field of the training targets (the best constant prediction). ``train`` and
    ``test`` are (N, 10, S, S) numpy arrays; the same numbers for every seed and N_iter."""
    import numpy as np

    target = test[:, 1:].astype(np.float64)

    def per(pred):
        return float(((target - pred) ** 2).reshape(len(test), -1).mean(1).mean())

    return {
        "baseline_zero": per(0.0),
        "baseline_input": per(test[:, :1].astype(np.float64)),
        "baseline_mean_field": per(train[:, 1:].astype(np.float64).mean(0, keepdims=True)),
    }


# Row labels of the baselines above in the report (report.baseline_rows).
BASELINE_ROWS = {
    "baseline_zero": "baseline: predict zero",
    "baseline_input": "baseline: predict w(t=0)",
    "baseline_mean_field": "baseline: training mean field",
}
