"""The masked-pixel ViT of the paper's Table 3 as an image operator T, and its Picard wrapper.

Caption of Table 3 (the paper): 12 encoder layers, 4 decoder layers, 3 heads in
both, embedding dim 192, patch size 2. Built from timm blocks (``PatchEmbed``, pre-LN ``Block``):

    image (3, 32, 32) -> 2x2 patches -> Linear(12 -> 192) + pos -> 12 encoder Blocks -> LN
      -> Linear(192 -> dec_dim) + pos -> 4 decoder Blocks -> LN -> Linear(dec_dim -> 12) -> image

Unlike MAE no token is dropped: the pixel dropout blacks out single pixels, so every 2x2 patch
is a token (256 tokens) and the network maps a whole image to a whole image, which is what an
operator iterated by Picard needs. No cls token (nothing reads it). Positional embeddings are
learned (``pos='learned'``, init N(0, 0.02)) or fixed 2D sin-cos (``pos='sincos'``, MAE's).
"""

from __future__ import annotations

import torch
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block
from torch import nn

from ..solver import picard


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """(1, grid*grid, dim) fixed 2D sin-cos positional table: half the channels encode the row,
    half the column, each as sin/cos at geometric frequencies (MAE's construction)."""
    if dim % 4:
        raise ValueError(f"sincos positions need dim divisible by 4, got {dim}")
    q = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(q, dtype=torch.float64) / q)
    ys, xs = torch.meshgrid(
        torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing="ij"
    )
    parts = []
    for pos in (ys.flatten(), xs.flatten()):
        ang = pos[:, None] * omega[None]
        parts += [ang.sin(), ang.cos()]
    return torch.cat(parts, 1).float().unsqueeze(0)


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, S, S) -> (B, (S/p)^2, p*p*C): row-major patches (PatchEmbed's token order), each
    flattened as (row, col, channel)."""
    B, C, S, _ = x.shape
    g = S // p
    return x.reshape(B, C, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(B, g * g, p * p * C)


def unpatchify(y: torch.Tensor, p: int, C: int) -> torch.Tensor:
    """The inverse of ``patchify``: (B, g*g, p*p*C) -> (B, C, g*p, g*p)."""
    B, n, _ = y.shape
    g = int(round(n**0.5))
    return y.reshape(B, g, g, p, p, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, g * p, g * p)


class MaskedViT(nn.Module):
    """Operator T: (B, C, S, S) -> (B, C, S, S), an encoder-decoder ViT over p x p patches."""

    def __init__(
        self,
        size=32,
        channels=3,
        patch=2,
        dim=192,
        depth=12,
        heads=3,
        dec_dim=192,
        dec_depth=4,
        dec_heads=3,
        mlp_ratio=4.0,
        pos="learned",
        dropout=0.0,
    ):
        super().__init__()
        if size % patch:
            raise ValueError(f"image size {size} is not a multiple of the patch size {patch}")
        if dim % heads or dec_dim % dec_heads:
            raise ValueError(f"dim {dim} / dec_dim {dec_dim} must be divisible by heads {heads} / {dec_heads}")
        self.size, self.channels, self.patch, self.grid = size, channels, patch, size // patch
        n = self.grid**2
        self.embed = PatchEmbed(size, patch, in_chans=channels, embed_dim=dim)
        if pos == "learned":
            self.pos = nn.Parameter(torch.randn(1, n, dim) * 0.02)
            self.dec_pos = nn.Parameter(torch.randn(1, n, dec_dim) * 0.02)
        elif pos == "sincos":
            self.register_buffer("pos", sincos_2d(self.grid, dim), persistent=False)
            self.register_buffer("dec_pos", sincos_2d(self.grid, dec_dim), persistent=False)
        else:
            raise ValueError(f"pos must be 'learned' or 'sincos', got {pos!r}")

        def blk(d, h):
            return Block(d, h, mlp_ratio=mlp_ratio, proj_drop=dropout, attn_drop=dropout)

        self.encoder = nn.Sequential(*(blk(dim, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.bridge = nn.Linear(dim, dec_dim)
        self.decoder = nn.Sequential(*(blk(dec_dim, dec_heads) for _ in range(dec_depth)))
        self.dec_norm = nn.LayerNorm(dec_dim)
        self.head = nn.Linear(dec_dim, patch * patch * channels)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):  # timm / MAE: xavier-uniform linear layers, zero bias
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x):
        t = self.embed(x) + self.pos
        t = self.norm(self.encoder(t))
        t = self.bridge(t) + self.dec_pos
        return unpatchify(self.head(self.dec_norm(self.decoder(t))), self.patch, self.channels)


def damping(a: float, n_iter: int, first_step: str = "damped") -> list[float]:
    """Per-step weights on the old iterate for ``n_iter`` applications of T: Table 3's
    x_{i+1} = (1 - λ) T(x_i) + λ x_i with λ = ``a`` at every step (``damped``), or an undamped first step
    x_1 = T(x_0) (``plain``: N_iter = 1 is then the plain one-pass ViT)."""
    if first_step not in ("damped", "plain"):
        raise ValueError(f"first_step must be 'damped' or 'plain', got {first_step!r}")
    return [0.0 if (k == 0 and first_step == "plain") else a for k in range(n_iter)]


class PicardImage(nn.Module):
    """Table 3's iteration through the shared solver core: x_0 = the masked image, f = 0,
    damping a = Table 3's λ (the weight on the old iterate), N_iter applications of T; the prediction
    is x_N and the loss MSE(x_N, y) (the caption's MSE((1-λ) T(x_{N-1}) + λ x_{N-1}, y)).
    Gradients flow through every application."""

    def __init__(self, T: nn.Module, n_iter=1, a=0.5, first_step="damped"):
        super().__init__()
        self.T, self.n_iter, self.a, self.first_step = T, n_iter, a, first_step
        damping(a, n_iter, first_step)  # validates

    def forward(self, x0, n_iter=None, trace=False):
        n = n_iter or self.n_iter
        return picard(
            self.T,
            x0,
            None,
            a=damping(self.a, n, self.first_step),
            max_iter=n,
            divergence=None,
            trace=trace,
            batch_dim=None,
        )

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def flops_per_image(size=32, patch=2, dim=192, depth=12, dec_dim=192, dec_depth=4, mlp_ratio=4.0) -> float:
    """Forward FLOPs (2 x multiply-adds) of one T application on one image, matmuls only."""
    n = (size // patch) ** 2

    def layer(d):
        return 2 * n * (4 * d * d + 2 * d * int(d * mlp_ratio)) + 2 * 2 * n * n * d

    return (
        depth * layer(dim)
        + dec_depth * layer(dec_dim)
        + 2 * n * (patch * patch * 3 * dim + dim * dec_dim + dec_dim * patch * patch * 3)
    )
