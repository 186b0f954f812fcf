"""The stacked models: IM's GCN(L) / GAT(L) baselines (:class:`PlainGNN`), PIGN (:class:`PIGN`,
the paper's Algorithm 1) and the fork's IterGNN (:class:`IterGNN`).

In the paper's notation (Eq. 1, ``lambda T(x) + f = x`` with lambda = 1; Alg. 1): ``T`` is one
message-passing step of a shared conv (Alg. 1's backbone block, also called ``f`` there), ``f`` the
free term (0, or the encoder output with ``forcing='input'``), ``a`` the damping weight on the OLD
iterate (Alg. 1's alpha), ``K`` the number of Picard steps (Alg. 1's n).
"""

from __future__ import annotations

import torch
from torch import nn

from ...fixedpoint.front import FixedPointSpec, solve
from ...solver import picard
from .layers import StackedGATConv, StackedGCNConv, StackedLinear
from .ops import dropout


# ----------------------------------------------------------------------------- baselines
class PlainGNN(nn.Module):
    """IM's GCN(L) / GAT(L) baselines (spec §4.1); no input-feature dropout."""

    def __init__(self, seeds, backbone, F_in, C, depth, hidden, heads, dropout, attn_dropout):
        super().__init__()
        self.backbone, self.dropout = backbone, dropout
        layers = []
        if backbone == "gcn":
            dims = [F_in] + [hidden] * (depth - 1) + [C]
            for i in range(depth):
                layers.append(StackedGCNConv(seeds, dims[i], dims[i + 1]))
        else:  # GAT: F -> hidden x heads (concat), [hidden*heads -> same, mean], -> C (1 head)
            wide = hidden * heads
            layers.append(StackedGATConv(seeds, F_in, hidden, heads, True, attn_dropout))
            for _ in range(depth - 2):
                layers.append(StackedGATConv(seeds, wide, wide, heads, False, attn_dropout))
            layers.append(StackedGATConv(seeds, wide, C, 1, False, attn_dropout))
        self.layers = nn.ModuleList(layers)

    def forward(self, x, graph, trace=False, field=None):
        """``field`` (:class:`..field.Field` over ``depth`` layers): outputs for its targets only."""
        h = x
        act = "relu" if self.backbone == "gcn" else "elu"
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            g = graph if field is None else field.layers[k]
            h = layer(h, g, in_rows=field.input_rows()[0] if field is not None and k == 0 else None)
            if k < last:
                h = dropout(h, self.dropout, self.training, act, rows=g.node_rows)
        return h, None


# ----------------------------------------------------------------------------- PIGN (Alg. 1)
class PIGN(nn.Module):
    """IM's iterativeGCN_Planetoid / iterativeGAT (spec §1.2-1.3):
    encoder -> K damped Picard steps of one shared conv (Alg. 1) -> decoder.

    Beyond the paper (issue 9; all off by default): ``fp`` (a :class:`FixedPointSpec`: Anderson,
    tolerance, implicit / phantom gradients, Jacobian penalty), ``forcing='input'`` (x = T(x) + h0
    with h0 the encoder output, instead of f = 0), ``fixed_masks`` (one dropout mask per solve) and
    ``spectral_cap`` (spectral norm of the conv weight at most this, per seed)."""

    def __init__(
        self,
        seeds,
        backbone,
        F_in,
        C,
        depth,
        hidden,
        heads,
        dropout,
        attn_dropout,
        a,
        init,
        fp: FixedPointSpec | None = None,
        forcing: str = "none",
        fixed_masks: bool = False,
        spectral_cap: float = 0.0,
    ):
        super().__init__()
        self.dropout, self.K, self.a = dropout, depth, a
        self.backbone = backbone
        self.enc = StackedLinear(seeds, F_in, hidden, init)
        if backbone == "gcn":
            self.conv = StackedGCNConv(seeds, hidden, hidden)
        else:  # 8 heads averaged back to H (concat=False), ReLU not ELU (spec §1.3)
            self.conv = StackedGATConv(seeds, hidden, hidden, heads, False, attn_dropout)
        self.dec = StackedLinear(seeds, hidden, C, init)
        self.fp, self.forcing, self.fixed_masks = fp, forcing, fixed_masks
        if spectral_cap > 0:
            from ...fixedpoint.spectral import cap_spectral_norm

            cap_spectral_norm(self.conv, spectral_cap)
        self.fp_log: list = []  # training-time (forward evaluations, backward steps) per step, toolkit runs only

    def problem(self, x, graph, field=None):
        """The fixed-point problem of one forward pass: (T, x0, f), x = T(x) + f from x0.
        ``field``: step k of T runs on the field's layer k (its output: fewer rows each step)."""
        # Alg. 1 line 1: x_0 <- X, here the encoded features, dropout once before the loop.
        h, rows = self.enc(x), None if field is None else field.input_rows()
        if rows is not None:
            h = h.index_select(0, rows[0])
        h = dropout(h, self.dropout, self.training, "relu", rows=rows)
        layers = None if field is None else iter(field.layers)

        # Alg. 1 line 4: z_{k+1} = T(x_k) = Drop(ReLU(Conv(G, x_k))), f = 0 (or the encoder output).
        def T(hk):
            g = graph if layers is None else next(layers)
            return dropout(self.conv(hk, g), self.dropout, self.training, "relu", rows=g.node_rows)

        if self.fixed_masks and self.training and self.dropout > 0:
            from ...fixedpoint.noise import frozen_noise

            T = frozen_noise(T, h)
        return T, h, (h if self.forcing == "input" else None)

    def supports_field(self) -> bool:
        """Field passes need the plain K-step solve (no tolerance, Anderson, implicit gradients)
        and fresh masks each step."""
        return (self.fp is None or self.fp.plain) and not self.fixed_masks

    def forward(self, x, graph, trace=False, iters=None, callback=None, field=None):
        """``iters`` overrides K at evaluation (iteration-count curves; spec §6). ``field``
        (:class:`..field.Field` over K layers): logits of its targets only, each step over the
        rows later steps read (no traces)."""
        if field is not None:
            return self._forward_field(x, graph, field, trace, iters, callback)
        T, h, f = self.problem(x, graph)
        if self.fp is None or self.fp.plain:
            # Alg. 1 lines 3-6: x_{k+1} = a x_k + (1 - a) z_{k+1}, exactly K steps (no epsilon in the
            # authors' code); norms per seed (dim 1) when traced.
            h, stats = picard(
                T,
                h,
                f,
                a=self.a,
                max_iter=iters or self.K,
                batch_dim=1,
                trace=trace,
                divergence=None,
                callback=callback,
            )
        else:
            h, stats = solve(
                T,
                h,
                f,
                spec=self.fp,
                a=self.a,
                max_iter=iters or self.K,
                batch_dim=1,
                trace=trace,
                divergence=None,
                callback=callback,
            )
            if self.training:
                self.fp_log.append(stats)
        # Alg. 1 line 7: return x_n, read out by the decoder.
        return self.dec(h), stats

    def _forward_field(self, x, graph, field, trace, iters, callback):
        """Alg. 1 over a receptive field: the same K steps, step k on the field's layer k."""
        if not self.supports_field() or trace or callback is not None or (iters or self.K) != len(field.layers):
            raise ValueError("a field pass needs the plain K-step solve, no traces and K field layers")
        T, h, f = self.problem(x, graph, field)
        h, stats = picard(
            T, h, f, a=self.a, max_iter=self.K, batch_dim=1, trace=False, divergence=None, leading_rows=True
        )
        return self.dec(h), stats

    def lipschitz_bound(self, graph) -> tuple[list | None, str]:
        """A-priori Lipschitz bound of T (evaluation mode) per seed, and a note. GCN:
        ||A||_2 (Collatz-Wielandt upper bound) x sigma_max(W_s) (ReLU is 1-Lipschitz). GAT: none
        (attention coefficients depend on the input: no global bound)."""
        if self.backbone != "gcn":
            return None, "GAT: attention depends on the input, no a-priori bound"
        from ...fixedpoint.certify import lipschitz_product, matrix_spectral_norm, symmetric_nonneg_norm_upper

        adj = graph.gcn_adj
        a_norm = symmetric_nonneg_norm_upper(
            lambda v: torch.sparse.mm(adj, v.to(torch.float32)).double(), adj.shape[0], device=adj.device
        )
        w = matrix_spectral_norm(self.conv.weight)
        return lipschitz_product([a_norm, w]), f"||A||_2 <= {a_norm:.6f} (Collatz-Wielandt) x sigma_max(W)"


# ----------------------------------------------------------------------------- IterGNN
class IterGNN(nn.Module):
    """The fork's IterGNN on Planetoid (spec §4.3, §2.4): Linear encoder -> IterGNN
    loop over one shared linear conv (GCNConv, or single-head GATConv without
    attention dropout) -> Linear decoder; no dropout anywhere. The whole graph is
    one graph, so each seed has one confidence per step (readout over all nodes)."""

    def __init__(
        self, seeds, backbone, F_in, C, depth, hidden, variant="fork", readout="max", stop_mass=1e-7, init="torch", **_
    ):
        super().__init__()
        self.t_max, self.variant, self.readout, self.stop_mass = depth, variant, readout, stop_mass
        self.enc = StackedLinear(seeds, F_in, hidden, init)
        if backbone == "gcn":
            self.conv = StackedGCNConv(seeds, hidden, hidden)
        else:
            self.conv = StackedGATConv(seeds, hidden, hidden, 1, True, 0.0)
        self.conf = StackedLinear(seeds, hidden, 1, "torch")  # LobsterEncoder(H, 1): Linear + sigmoid
        self.dec = StackedLinear(seeds, hidden, C, init)

    def confidence(self, h):  # (N, S, H) -> (1, S, 1): one value per seed (whole graph)
        r = {"max": lambda: h.amax(0), "mean": lambda: h.mean(0), "sum": lambda: h.sum(0)}[self.readout]()
        return torch.sigmoid(torch.einsum("sh,sho->so", r, self.conf.weight) + self.conf.bias).unsqueeze(0)

    def forward(self, x, graph, trace=False):
        from ..itergnn import iterate

        h0 = self.enc(x)
        h, stats = iterate(
            lambda h: self.conv(h, graph),
            self.confidence,
            h0,
            self.t_max,
            stop_mass=self.stop_mass,
            variant=self.variant,
            problem_dim=1,
        )
        return self.dec(h), stats
