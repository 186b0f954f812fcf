"""ANIE (Attentional Neural Integral Equations, Zappala et al. 2022) for 2D
Navier-Stokes, as the authors built it (spec: navier-stokes §1).

    w(t=0) --encoder--> f (one latent per 4x4 patch, copied to the T time stamps)
    solve  y = G(y),  G(y) = y + N([y, pos])[..., :dim]      (N: Galerkin transformer)
    prediction = decoder(y*) frame by frame                   -> (B, T, S, S)

N_iter semantics (paper Table 4 caption: "a single iteration means that the
integral operator is applied once"): N_iter = number of evaluations of N.
The authors' solver (spec §1.5) with ``max_iterations = m`` does y0 = f,
g0 = G(y0), then m times {y_k = a y_{k-1} + (1-a) g_{k-1}; g_k = G(y_k)} and
returns g_m: m + 1 evaluations. Here N_iter evaluations = the shared damped
Picard solver (paper Alg. 2, ``picard_cli.solver.picard``, a = 0.5) run for
``max_iter = N_iter - 1`` steps on T = G from x0 = f, then one final undamped G
of its result; N_iter = 1 is one plain application G(f); the authors' released
NS run (m = 3) is N_iter = 4. Gradients flow through every iteration.

The three quirks of the authors' code are flags (spec §1.3-§1.5, §5):
``coord_scramble`` (token n gets space grid[n mod P] and time stamp[n // P]
instead of its own (x, y, t)), ``kv_dropout_always`` (p = 0.5 dropout on
K^T V / n also at evaluation) and ``eval_adds_f`` (c = f in G at evaluation).
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.navier_stokes import ANIE_TIMES
from ..fixedpoint.front import FixedPointSpec, solve
from ..solver import picard


class Encoder(nn.Module):
    """``SingleConvNeuralNet(1, dim, dim, K=4, S=4)`` (spec §1.2): 4x4/stride-4 conv, then
    a per-patch MLP dim -> 2 dim -> dim. (B, S, S) -> (B, P, dim), p = row * S/4 + col."""

    def __init__(self, dim: int = 32):
        super().__init__()
        self.conv = nn.Conv2d(1, dim, kernel_size=4, stride=4)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))

    def forward(self, w0):
        z = self.conv(w0.unsqueeze(1))  # (B, dim, S/4, S/4)
        return self.mlp(z.flatten(2).transpose(1, 2))


class Decoder(nn.Module):
    """``Decoder_NN_2D(P * dim, S * S, [64, 256])`` (spec §1.6), applied per time stamp."""

    def __init__(self, n_patches: int, dim: int, size: int):
        super().__init__()
        self.size = size
        self.net = nn.Sequential(
            nn.Linear(n_patches * dim, 64), nn.ELU(), nn.Linear(64, 256), nn.ELU(), nn.Linear(256, size * size)
        )

    def forward(self, y):  # (B, P, T, dim) -> (B, T, S, S)
        B, P, T, D = y.shape
        return self.net(y.transpose(1, 2).reshape(B, T, P * D)).view(B, T, self.size, self.size)


class GalerkinAttention(nn.Module):
    """``SimpleAttention(attention_type='galerkin')`` (spec §1.4): per head
    out = Q (K^T V) / n, no softmax, no output projection (the authors' ``fc`` is
    only used with ``pos`` and is omitted here), heads concatenated."""

    def __init__(self, emb: int, heads: int, dropout: float, kv_dropout_always: bool = False):
        super().__init__()
        if emb % heads:
            raise ValueError(f"emb={emb} is not divisible by heads={heads}")
        self.heads, self.dropout, self.always = heads, dropout, kv_dropout_always
        self.q, self.k, self.v = (nn.Linear(emb, emb) for _ in range(3))
        for lin in (self.q, self.k, self.v):  # xavier_init 1e-2 + diagonal_weight 1e-2, biases 0
            nn.init.xavier_uniform_(lin.weight, gain=1e-2)
            with torch.no_grad():
                lin.weight += 1e-2 * torch.eye(emb)
            nn.init.zeros_(lin.bias)

    def forward(self, x):  # (B, n, emb)
        B, n, E = x.shape
        q, k, v = (lin(x).view(B, n, self.heads, E // self.heads).transpose(1, 2) for lin in (self.q, self.k, self.v))
        kv = k.transpose(-2, -1) @ v / n  # (B, h, d_k, d_k)
        if self.always:  # the authors' F.dropout(p_attn): p = 0.5, training=True, also at evaluation
            kv = nn.functional.dropout(kv, p=0.5, training=True)
        else:
            kv = nn.functional.dropout(kv, p=self.dropout, training=self.training)
        return (q @ kv).transpose(1, 2).reshape(B, n, E)


class EncoderLayer(nn.Module):
    """``SimpleTransformerEncoderLayer``, post-LN (spec §1.4):
    x = LN1(x + Drop(Attn x)); x = LN2(x + Drop(FF x)), FF = Lin -> ReLU -> Drop -> Lin."""

    def __init__(self, emb: int, heads: int, n_ff: int, dropout: float, kv_dropout_always: bool = False):
        super().__init__()
        self.attn = GalerkinAttention(emb, heads, dropout, kv_dropout_always)
        self.ff = nn.Sequential(nn.Linear(emb, n_ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(n_ff, emb))
        self.ln1, self.ln2 = nn.LayerNorm(emb), nn.LayerNorm(emb)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x):
        x = self.ln1(x + self.drop1(self.attn(x)))
        return self.ln2(x + self.drop2(self.ff(x)))


class IntegralOperator(nn.Module):
    """N = ``model_blocks`` (spec §1.4): Linear(dim+3 -> emb), n_blocks layers,
    Linear(emb -> dim+3)."""

    def __init__(self, dim, emb, heads, blocks, n_ff, dropout, kv_dropout_always=False):
        super().__init__()
        self.first = nn.Linear(dim + 3, emb)
        self.layers = nn.ModuleList(EncoderLayer(emb, heads, n_ff, dropout, kv_dropout_always) for _ in range(blocks))
        self.last = nn.Linear(emb, dim + 3)

    def forward(self, tokens):
        x = self.first(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.last(x)


def token_coords(n_side: int, times, scramble: bool = False) -> torch.Tensor:
    """(P*T, 3) coordinates of the tokens, token n = patch (n // T) at stamp (n % T)
    (spec §1.3). Space: the (row, col) of the patch on linspace(0, 1, n_side);
    time: the stamp / the last stamp (ANIE: linspace(0,1,51)[t_ids]). ``scramble``:
    the authors' tiling, token n gets grid[n mod P] and stamp[n // P]."""
    lin = torch.linspace(0, 1, n_side)
    grid = torch.stack(torch.meshgrid(lin, lin, indexing="ij"), -1).reshape(-1, 2)  # (P, 2), p = row*n_side+col
    ts = torch.as_tensor(times, dtype=torch.float32)
    ts = ts / ts[-1] if ts[-1] > 0 else ts
    P, T = grid.shape[0], ts.numel()
    n = torch.arange(P * T)
    p, t = (n % P, n // P) if scramble else (n // T, n % T)
    return torch.cat([grid[p], ts[t, None]], -1)


class ANIE(nn.Module):
    """Encoder -> damped Picard solve of y = G(y) -> decoder. ``forward(w0)`` maps the
    t=0 frames (B, S, S) to all stamps (B, T, S, S); returns (prediction, SolverStats)."""

    def __init__(
        self,
        size=64,
        times=ANIE_TIMES,
        dim=32,
        emb=64,
        heads=1,
        blocks=1,
        n_ff=128,
        dropout=0.1,
        n_iter=1,
        a=0.5,
        coord_scramble=False,
        kv_dropout_always=False,
        eval_adds_f=False,
        fp: FixedPointSpec | None = None,
        forcing="none",
        fixed_masks=False,
        spectral_cap=0.0,
        jac_reg=0.0,
    ):
        super().__init__()
        if size % 4:
            raise ValueError(f"field size {size} is not a multiple of the 4x4 patch")
        self.n_side, self.T, self.dim = size // 4, len(times), dim
        self.n_iter, self.a, self.eval_adds_f = n_iter, a, eval_adds_f
        self.encoder = Encoder(dim)
        self.N = IntegralOperator(dim, emb, heads, blocks, n_ff, dropout, kv_dropout_always)
        self.decoder = Decoder(self.n_side**2, dim, size)
        self.register_buffer("pos", token_coords(self.n_side, times, coord_scramble), persistent=False)
        # Beyond the paper (issue 9; all off by default): solver spec, forcing c = f in training and
        # evaluation, one dropout mask per solve, spectral caps on N's weights, Jacobian penalty.
        self.fp, self.forcing, self.fixed_masks, self.jac_reg = fp, forcing, fixed_masks, jac_reg
        if spectral_cap > 0:
            from ..fixedpoint.spectral import cap_spectral_norm

            cap_spectral_norm(self.N, spectral_cap)
        self.aux_loss = None  # training: jac_reg x the Jacobian penalty of the last forward (ns_train adds it)
        self.fp_log: list = []

    def G(self, y, c=None):
        """G(y) = c + y + N([y, pos])[..., :dim] on tokens (B, P*T, dim) (spec §1.4 item 4)."""
        out = y + self.N(torch.cat([y, self.pos.expand(y.shape[0], -1, -1)], -1))[..., : self.dim]
        return out if c is None else out + c

    def forcing_term(self, f):
        """c of G(y) = c + y + N(y): f with ``forcing='input'`` (always) or the ``eval_adds_f`` quirk
        (evaluation only), else none."""
        if self.forcing == "input" or (self.eval_adds_f and not self.training):
            return f
        return None

    def solve(self, f, n_iter=None, trace=False):
        """N_iter evaluations of N: Alg. 2 with max_iter = N_iter - 1 from x0 = f (forcing 0 in
        training, c = f at evaluation with ``eval_adds_f``), then one undamped G (spec §1.5)."""
        n_iter = n_iter or self.n_iter
        c = self.forcing_term(f)
        if (self.fp is None or self.fp.plain) and not self.fixed_masks:
            y, stats = picard(self.G, f, c, a=self.a, max_iter=n_iter - 1, divergence=None, trace=trace)
            return self.G(y, c), stats
        # Toolkit path: one problem per sample (Anderson coefficients and stopping per sample),
        # traces reported for the whole batch as in the paper path (SolverStats.total()).
        T = self.G
        if self.fixed_masks and self.training:
            from ..fixedpoint.noise import frozen_noise

            T = frozen_noise(self.G, f)
        y, stats = solve(
            T, f, c, spec=self.fp, a=self.a, max_iter=n_iter - 1, divergence=None, trace=trace, batch_dim=0
        )
        if self.training:
            if stats.jac is not None:
                self.aux_loss = self.jac_reg * stats.jac.mean()
                stats.jac_value = float(stats.jac.detach().mean())  # for the training summary
                stats.jac = None
            self.fp_log.append(stats)
        out = T(y)
        return (out if c is None else out + c), stats.total()

    def problem(self, w0):
        """(T, x0, f) of the fixed-point problem y = G(y) + c for the t=0 frames ``w0``."""
        f = self.encode(w0)
        return self.G, f, self.forcing_term(f)

    def predict(self, y, c=None):
        """The prediction the model makes from iterate y: the final undamped G, then the decoder."""
        y = self.G(y, c)
        return self.decoder(y.view(y.shape[0], self.n_side**2, self.T, self.dim))

    def encode(self, w0):  # (B, S, S) -> f tokens (B, P*T, dim), token n = (patch n // T, stamp n % T)
        z = self.encoder(w0)
        return z.unsqueeze(2).expand(-1, -1, self.T, -1).reshape(z.shape[0], -1, self.dim)

    def forward(self, w0, n_iter=None, trace=False):
        f = self.encode(w0)
        y, stats = self.solve(f, n_iter, trace)
        if trace:  # residual of the returned iterate, ||G(y) - y|| over the batch (the authors' error metric)
            with torch.no_grad():
                c = self.forcing_term(f)
                stats.residual_out = torch.linalg.vector_norm(self.G(y, c) - y).item()
        return self.decoder(y.view(y.shape[0], self.n_side**2, self.T, self.dim)), stats

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def unused_fc_params(emb: int, heads: int, blocks: int) -> int:
    """Parameters of the authors' unused ``attn.fc`` (Linear(emb + heads -> emb) per block),
    present in their checkpoints but never applied: add to ``n_params`` to compare with
    their counts (4H4B transformer: 121,827 + 17,664 = 139,491; spec §1.4)."""
    return blocks * ((emb + heads) * emb + emb)
