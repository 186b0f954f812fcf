"""Vision Transformers as Picard operators for 2D Navier-Stokes: the paper's Table 2
(spec: navier-stokes §3; no author code exists, §3.1).

Every variant is an operator T: R^{F x S x S} -> R^{F x S x S} on the state = vorticity
at the F = 10 ANIE stamps (spec §3.3). The four names follow the four modules of
lucidrains/vit-pytorch (spec §3.2), built from timm blocks:

* ``ViT``         frames as channels, p x p patches (timm ``PatchEmbed``), pre-LN timm ``Block``s.
* ``ViTSmall``    "ViT for small datasets" (Lee et al. 2021): shifted-patch tokenisation (SPT:
                  the input plus 4 one-pixel shifts, 5F channels) and locality self-attention
                  (``LSA``: learnable temperature, diagonal of QK^T masked).
* ``ViTParallel`` timm ``ParallelThingsBlock`` (Touvron et al. 2022): per layer 2 attention
                  branches summed, then 2 MLP branches summed.
* ``ViT3D``       spatio-temporal tubelets pf x p x p (C = 1, frames as depth): Conv3d + LN.

All share: a cls token and learned positional embedding, a final LayerNorm and a head
(``head='token'``: Linear(dim -> values per token) on every patch token, un-patchified;
``head='cls'``: Linear(dim -> F*S*S) on the cls token, vit-pytorch's literal usage, spec §3.3).
vit-pytorch's LayerNorm over the raw patch (before the embedding) is left out: it would
normalise away each patch's amplitude, which a field regression needs.

``PicardOperator`` wraps T in the paper's Alg. 2 through the shared solver core.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import Attention, PatchEmbed
from timm.models.vision_transformer import Block, ParallelThingsBlock
from torch import nn

from ..solver import picard


def unpatchify(y, grid, patch):
    """(B, g0*g1*g2, q0*q1*q2) token values -> (B, g0*q0, g1*q1, g2*q2): the inverse of cutting
    a (F, S, S) field into q0 x q1 x q1 tubelets (the 2D ViT's patch is the tubelet F x p x p)."""
    B = y.shape[0]
    y = y.reshape(B, *grid, *patch).permute(0, 1, 4, 2, 5, 3, 6)
    return y.reshape(B, grid[0] * patch[0], grid[1] * patch[1], grid[2] * patch[2])


class ViT(nn.Module):
    """vit-pytorch ``ViT`` as a field operator (spec §3.3 "ViT"): (B, F, S, S) -> (B, F, S, S).
    Subclasses override ``embed`` (tokens), ``block`` (one layer) and the token geometry."""

    def __init__(
        self, size=64, frames=10, dim=256, depth=6, heads=8, mlp=512, patch=8, head="token", dropout=0.0, **kw
    ):
        super().__init__()
        if size % patch:
            raise ValueError(f"field size {size} is not a multiple of the patch size {patch}")
        if head not in ("token", "cls"):
            raise ValueError(f"head must be 'token' or 'cls', got {head!r}")
        self.size, self.frames, self.head_kind = size, frames, head
        self.setup(size, frames, dim, patch, **kw)  # -> self.embed, self.grid, self.patch
        n_tokens = self.grid[0] * self.grid[1] * self.grid[2]
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, n_tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*(self.block(dim, heads, mlp / dim, dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        per_token = self.patch[0] * self.patch[1] * self.patch[2]
        self.head = nn.Linear(dim, per_token if head == "token" else frames * size * size)

    def setup(self, size, frames, dim, patch):
        """Frames as channels: p x p patches -> Conv2d (timm ``PatchEmbed``) -> LN(dim)."""
        self.embed = PatchEmbed(size, patch, in_chans=frames, embed_dim=dim, norm_layer=nn.LayerNorm)
        self.grid, self.patch = (1, size // patch, size // patch), (frames, patch, patch)

    def block(self, dim, heads, mlp_ratio, dropout):
        return Block(dim, heads, mlp_ratio=mlp_ratio, proj_drop=dropout, attn_drop=dropout)

    def forward(self, x):
        t = self.embed(x)
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], 1) + self.pos
        t = self.norm(self.blocks(t))
        if self.head_kind == "cls":
            return self.head(t[:, 0]).view(len(x), self.frames, self.size, self.size)
        return unpatchify(self.head(t[:, 1:]), self.grid, self.patch)


class LSA(Attention):
    """Locality self-attention (Lee et al. 2021; vit-pytorch ``vit_for_small_dataset.LSA``, spec §3.2):
    timm ``Attention`` with a learnable temperature exp(tau), tau initialised at log(head_dim^-0.5),
    and the diagonal of QK^T masked (no token attends to itself)."""

    def __init__(self, dim, num_heads=8, **kw):
        super().__init__(dim, num_heads=num_heads, **kw)
        self.temperature = nn.Parameter(torch.tensor(self.head_dim**-0.5).log())

    def forward(self, x, attn_mask=None, is_causal=False):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        keep = ~torch.eye(N, dtype=torch.bool, device=x.device)  # True = may attend
        x = F.scaled_dot_product_attention(
            q * self.temperature.exp(),
            k,
            v,
            attn_mask=keep,
            scale=1.0,
            dropout_p=self.attn_drop.p if self.training else 0.0,
        )
        return self.proj_drop(self.proj(self.norm(x.transpose(1, 2).reshape(B, N, self.attn_dim))))


def shift_patches(x):
    """SPT's input (spec §3.2): x and its 4 one-pixel shifts (left, right, up, down; zero padding,
    as vit-pytorch's F.pad) stacked on channels: (B, C, S, S) -> (B, 5C, S, S)."""
    shifts = ((1, -1, 0, 0), (-1, 1, 0, 0), (0, 0, 1, -1), (0, 0, -1, 1))
    return torch.cat([x, *(F.pad(x, s) for s in shifts)], 1)


class ViTSmall(ViT):
    """ViTsmall = vit-pytorch ``vit_for_small_dataset.ViT`` (spec §3.2-3.3): SPT tokens + LSA blocks."""

    def setup(self, size, frames, dim, patch):
        super().setup(size, 5 * frames, dim, patch)  # the patch embedding sees 5F channels
        self.patch = (frames, patch, patch)  # ... but the head still predicts the F frames

    def block(self, dim, heads, mlp_ratio, dropout):
        return Block(dim, heads, mlp_ratio=mlp_ratio, proj_drop=dropout, attn_drop=dropout, attn_layer=LSA)

    def forward(self, x):
        return super().forward(shift_patches(x))


class ViTParallel(ViT):
    """vit-pytorch ``parallel_vit.ViT`` (spec §3.2): timm ``ParallelThingsBlock``,
    x += sum_i Attn_i(LN_i x); x += sum_i MLP_i(LN_i x) with ``branches`` branches."""

    def __init__(self, *args, branches=2, **kw):
        self.branches = branches
        super().__init__(*args, **kw)

    def block(self, dim, heads, mlp_ratio, dropout):
        return ParallelThingsBlock(
            dim, heads, num_parallel=self.branches, mlp_ratio=mlp_ratio, proj_drop=dropout, attn_drop=dropout
        )


class Transpose(nn.Module):
    def forward(self, x):  # (B, dim, N) -> (B, N, dim)
        return x.transpose(1, 2)


class ViT3D(ViT):
    """vit-pytorch ``vit_3d.ViT`` (spec §3.2-3.3): one channel, the F frames as depth, tubelets of
    frame_patch x p x p (Conv3d, then LN(dim)); the token head predicts one tubelet per token."""

    def setup(self, size, frames, dim, patch, frame_patch=2):
        if frames % frame_patch:
            raise ValueError(f"{frames} frames are not a multiple of frame_patch {frame_patch}")
        conv = nn.Conv3d(1, dim, (frame_patch, patch, patch), stride=(frame_patch, patch, patch))
        self.embed = nn.Sequential(conv, nn.Flatten(2), Transpose(), nn.LayerNorm(dim))
        self.grid, self.patch = (frames // frame_patch, size // patch, size // patch), (frame_patch, patch, patch)

    def forward(self, x):
        return super().forward(x.unsqueeze(1))


MODELS = {"vit": ViT, "vit-small": ViTSmall, "vit-parallel": ViTParallel, "vit-3d": ViT3D}


def sizes(model, dim=256, depth=6, heads=8, mlp=512, branches=2, small_reading="lsa-spt") -> dict:
    """The sizes a variant is built with, from the config's ViT sizes (spec §3.3): ``vit-parallel``
    has depth // branches layers (each holds ``branches`` attention + MLP pairs: parameter-matched,
    6 -> 3); the ``smaller`` reading of ViTsmall is a plain ViT at half width, heads and MLP and
    2/3 of the depth (256/6/8/512 -> 128/4/4/256, spec §3.3's alternative)."""
    if model == "vit-parallel":
        depth = max(1, depth // branches)
    if model == "vit-small" and small_reading == "smaller":
        dim, depth, heads, mlp = dim // 2, max(1, depth * 2 // 3), max(1, heads // 2), mlp // 2
    return {"dim": dim, "depth": depth, "heads": heads, "mlp": mlp}


def build_operator(
    model,
    size=64,
    frames=10,
    *,
    dim=256,
    depth=6,
    heads=8,
    mlp=512,
    patch=8,
    frame_patch=2,
    branches=2,
    head="token",
    dropout=0.0,
    small_reading="lsa-spt",
) -> ViT:
    """One of the four operators T by its config name (``small_reading='smaller'``: ``vit-small``
    is built as a plain ``ViT`` with the smaller sizes)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r} (choose from {', '.join(MODELS)})")
    kw = sizes(model, dim, depth, heads, mlp, branches, small_reading) | {
        "patch": patch,
        "head": head,
        "dropout": dropout,
    }
    if model == "vit-3d":
        kw["frame_patch"] = frame_patch
    if model == "vit-parallel":
        kw["branches"] = branches
    cls = ViT if (model == "vit-small" and small_reading == "smaller") else MODELS[model]
    return cls(size, frames, **kw)


class PicardOperator(nn.Module):
    """The paper's Alg. 2 around an operator T (spec §3.3), via ``picard_cli.solver.picard``:
    x_0 = f = w(t=0) broadcast to the F stamps; x_{k+1} = a x_k + (1 - a) (T(x_k) + f) for
    k = 0..N-1; prediction x_N. N_iter = N = applications of T (N = 1: x_1 = a f + (1-a)(T(f) + f),
    the single-pass baseline). Gradients flow through all N steps. ``tol`` (optional, > 0) stops
    early once the ``tol_norm`` norm of the whole batch falls below it."""

    def __init__(self, T: nn.Module, frames=10, n_iter=1, a=0.5, tol=0.0, tol_norm="step"):
        super().__init__()
        self.T, self.frames, self.n_iter, self.a = T, frames, n_iter, a
        self.tol, self.tol_norm = (tol or None), tol_norm

    def forward(self, w0, n_iter=None, trace=False):
        """(B, S, S) t=0 frames -> ((B, F, S, S) prediction x_N, SolverStats)."""
        f = w0.unsqueeze(1).expand(-1, self.frames, -1, -1)
        return picard(
            self.T,
            f,
            f,
            a=self.a,
            max_iter=n_iter or self.n_iter,
            tol=self.tol,
            tol_norm=self.tol_norm,
            divergence=None,
            trace=trace or self.tol is not None,
        )

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
