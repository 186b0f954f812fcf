"""IterGNN (Tang et al., 2020), the iterative GNN the paper compares PIGN with
(Tables 1 and 5), as the authors ran it (spec pign.md §4.3, their fork's
``IterGNN``) and, as options, Tang et al.'s original confidence and its decaying
variant.

IterGNN is not a Picard iteration: it mixes the iterates of one shared *linear*
conv by learned confidences,

    out_t   = Conv(inp_t),  inp_0 = h0,  inp_{t+1} = out_t
    c_t     = sigmoid(Linear(Readout(inp_t)))        # "fork": readout of the layer INPUT
            = sigmoid(Linear(Readout(out_t)))        # "original"/"decay": of the new output
    x      += c_left * c_t * out_t
    c_left *= 1 - c_t
    stop when max(c_left) <= stop_mass, or after t_max convs.

so the output is sum_t c_t prod_{s<t}(1 - c_s) out_t, whose weights sum to
1 - c_left <= 1. The "decay" variant (the original ``DecIterGNN``) multiplies each
new state and each confidence by ``decay`` (1 - 1e-4), compounding over steps.
This function holds the loop once; the Planetoid (stacked seeds) and LRGB
(mini-batch) models supply ``conv`` and ``confidence``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

VARIANTS = ("fork", "original", "decay")


@dataclass
class IterStats:
    """Per problem: convs executed (``iters``) and the total mixing weight
    ``1 - c_left`` (<= 1), both as lists (one entry per problem)."""

    iters: list[int]
    weight_sum: list[float]


def _per_problem_max(x: torch.Tensor, dim: int | None) -> torch.Tensor:
    """max over every dimension but ``dim`` (None: one problem, the whole tensor)."""
    if dim is None:
        return x.detach().amax().reshape(1)
    return x.detach().transpose(0, dim).reshape(x.shape[dim], -1).amax(1)


def _expand(mask: torch.Tensor, like: torch.Tensor, dim: int | None) -> torch.Tensor:
    if dim is None:
        return mask.reshape([1] * like.dim())
    shape = [1] * like.dim()
    shape[dim] = -1
    return mask.reshape(shape)


def iterate(
    conv: Callable[[torch.Tensor], torch.Tensor],
    confidence: Callable[[torch.Tensor], torch.Tensor],
    h0: torch.Tensor,
    t_max: int,
    *,
    stop_mass: float = 1e-7,
    variant: str = "fork",
    decay: float = 1.0 - 1e-4,
    problem_dim: int | None = None,
) -> tuple[torch.Tensor, IterStats]:
    """Run IterGNN from ``h0``; return the confidence-weighted mix and its stats.

    ``confidence(x)`` returns values in (0, 1) broadcastable to ``x`` (one per graph,
    gathered to its nodes). ``problem_dim``: the dimension of independent problems
    (stacked seeds) that stop on their own; None = one problem (a mini-batch of
    graphs stops together, as in the fork: ``max(c_left)`` over the whole batch).
    A stopped problem's state is frozen (masked), so its result is exactly what it
    would be had it run alone and broken out of the loop.
    """
    if variant not in VARIANTS:
        raise ValueError(f"IterGNN variant must be one of {VARIANTS}, got {variant!r}")
    n_problems = 1 if problem_dim is None else h0.shape[problem_dim]
    x = torch.zeros_like(h0)
    c_left = None  # starts at 1 everywhere; shaped by the first confidence
    iters = torch.zeros(n_problems, dtype=torch.long, device=h0.device)  # counted on the device: no copy per conv
    inp = h0
    for t in range(t_max):
        if c_left is not None:
            active = _per_problem_max(c_left, problem_dim) > stop_mass  # fork: break if max(c_left) <= 1e-7
            if not bool(active.any()):
                break
        else:
            active = torch.ones(n_problems, dtype=torch.bool, device=h0.device)
        out = conv(inp)  # one shared conv, no activation / BN / dropout
        if variant == "decay":
            out = out * decay
        c = confidence(inp if variant == "fork" else out)
        if variant == "decay":
            c = c * decay ** (t + 1)
        left = torch.ones_like(c) if c_left is None else c_left
        on = _expand(active.to(h0.device), c, problem_dim).to(c.dtype)
        x = x + on * left * c * out
        c_left = left * (1 - on * c)
        iters += active.long()
        inp = out
    weight = 1 - c_left if c_left is not None else torch.zeros(1)
    return x, IterStats(iters=iters.tolist(), weight_sum=_per_problem_weight(weight, problem_dim))


def _per_problem_weight(w: torch.Tensor, dim: int | None) -> list[float]:
    """The largest mixing weight per problem (all nodes of a graph share one)."""
    return [float(v) for v in _per_problem_max(w, dim)]
