"""Frozen noise: one set of dropout masks for every application of T within a solve.

A fixed point of a map that draws fresh dropout masks at every call does not exist; Anderson's
least squares, tolerances and implicit gradients assume one deterministic map. :func:`frozen_noise`
draws one seed per solve (advancing the global stream once, so successive solves still differ)
and replays it before every call, so all applications of T (forward steps, the implicit
gradient's retained application, the Jacobian penalty) see the same masks. The paper's protocol
(fresh masks per step) is untouched unless asked for (recipe field ``dropout_mask``).
"""

from __future__ import annotations

import torch


def frozen_noise(T, like: torch.Tensor):
    seed = int(torch.randint(0, 2**62, (1,), device="cpu"))
    cuda = like.is_cuda
    devices = [like.device.index if like.device.index is not None else torch.cuda.current_device()] if cuda else []

    def wrapped(x):
        with torch.random.fork_rng(devices=devices):
            torch.default_generator.manual_seed(seed)
            if cuda:
                torch.cuda.manual_seed(seed)
            return T(x)

    return wrapped
