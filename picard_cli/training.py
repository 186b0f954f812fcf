"""One optimizer step, shared by the trainers and by the probes that time them (picard_cli/preflight.py),
so a benchmark times the step the experiments take. A leaf module: torch only."""

from __future__ import annotations


def optimizer_step(objective, params, opt, sched=None, grad_clip: float = 0.0) -> None:
    """zero_grad, backward of ``objective``, gradient-norm clip at ``grad_clip`` (0 = off), step, scheduler step."""
    import torch

    opt.zero_grad(set_to_none=True)
    objective.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
    if sched is not None:
        sched.step()
