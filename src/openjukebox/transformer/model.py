"""The Jukebox transformer: pre-LayerNorm residual blocks of factorized attention and an MLP.

    a = attn(ln_0(x));  m = mlp(ln_1(x + a));  x = x + a + m

As in the original, attention width is W * m_attn (W/4), the MLP hidden width W * m_mlp (W), the
activation quick-GELU x * sigmoid(1.702 x), and layer norms run in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from .attention import CROSS, Attention, attn_funcs
from .cache import LayerCache, attend_cached, set_encoder


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype (eps 1e-5)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else self.weight.float()
        b = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).type_as(x)


GELU_SCALE = 1.702  # quick-GELU: h * sigmoid(1.702 h)


def quick_gelu(h: torch.Tensor) -> torch.Tensor:
    return h * torch.sigmoid(GELU_SCALE * h)


class MLP(nn.Module):
    """fc, quick-GELU, proj. After ``fold_gelu_scale`` the weights carry the 1.702 (fc scaled by it,
    proj by its inverse) and the activation is SiLU: the same function, one operation instead of
    three (``prepare_prior`` does this on its int8 copy)."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc = nn.Linear(width, hidden)
        self.proj = nn.Linear(hidden, width)
        self.folded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        return self.proj(F.silu(h) if self.folded else quick_gelu(h))

    @torch.no_grad()
    def fold_gelu_scale(self) -> None:
        """silu(1.702 h) / 1.702 = h * sigmoid(1.702 h): move both factors into the float weights.

        For sampling copies only: ``folded`` is not in the state dict, so a folded MLP's weights
        must not be saved as, or loaded into, an ordinary one."""
        if not self.folded:
            self.fc.weight.mul_(GELU_SCALE)
            self.fc.bias.mul_(GELU_SCALE)
            self.proj.weight.div_(GELU_SCALE)
            self.folded = True


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, kind: int, block_ctx: int, prime_len: int, m_attn: float, m_mlp: float):
        super().__init__()
        self.ln_0 = LayerNorm(width)
        self.attn = Attention(width, int(width * m_attn), heads, kind, block_ctx, prime_len)
        self.ln_1 = LayerNorm(width)
        self.mlp = MLP(width, int(width * m_mlp))

    def forward(self, x: torch.Tensor, encoder: torch.Tensor | None = None, reference: bool = False) -> torch.Tensor:
        h = self.ln_0(x)
        a = self.attn.forward_reference(h, encoder) if reference else self.attn(h, encoder)
        return x + a + self.mlp(self.ln_1(x + a))

    def forward_cached(self, x: torch.Tensor, t0: int, cache: LayerCache) -> torch.Tensor:
        a = attend_cached(self.attn, self.ln_0(x), t0, cache)
        return x + a + self.mlp(self.ln_1(x + a))


class Transformer(nn.Module):
    """``depth`` blocks whose attention kinds follow ``attn_order``; (N, L, W) -> (N, L, W).

    ``n_ctx`` is the sequence length the blocks tile (``blocks`` rows of ``n_ctx // blocks``).
    With ``checkpointing`` set, training recomputes each block in the backward pass instead of
    keeping its activations (``torch.utils.checkpoint``): the same gradients, less memory.
    """

    def __init__(
        self,
        width: int,
        depth: int,
        heads: int,
        n_ctx: int,
        attn_order: int = 0,
        blocks: int | None = None,
        prime_len: int = 0,
        m_attn: float = 0.25,
        m_mlp: float = 1.0,
    ):
        super().__init__()
        block_ctx = n_ctx // blocks if blocks else n_ctx
        if blocks and n_ctx % blocks:
            raise ValueError(f"n_ctx {n_ctx} is not divisible into {blocks} blocks")
        self.n_ctx, self.block_ctx = n_ctx, block_ctx
        self.kinds = attn_funcs(attn_order, depth)
        self.layers = nn.ModuleList(
            ResidualAttentionBlock(width, heads, kind, block_ctx, prime_len, m_attn, m_mlp) for kind in self.kinds
        )
        self.checkpointing = False

    def forward(self, x: torch.Tensor, encoder: torch.Tensor | None = None, reference: bool = False) -> torch.Tensor:
        recompute = self.checkpointing and torch.is_grad_enabled()
        for layer in self.layers:
            if recompute:
                x = torch.utils.checkpoint.checkpoint(layer, x, encoder, reference, use_reentrant=False)
            else:
                x = layer(x, encoder, reference)
        return x

    def make_caches(self, batch: int, encoder: torch.Tensor | None = None, dtype=None, device=None) -> list:
        """Fresh caches for ``batch`` sequences; cross-attention layers get ``encoder``'s keys/values now."""
        enc_len = 0 if encoder is None else encoder.shape[1]
        caches = [LayerCache(layer.attn, batch, self.n_ctx, enc_len, dtype, device) for layer in self.layers]
        if CROSS in self.kinds:
            if encoder is None:
                raise ValueError("this transformer has cross-attention layers: pass encoder states")
            with torch.no_grad():
                for layer, cache in zip(self.layers, caches, strict=True):
                    if layer.attn.kind == CROSS:
                        set_encoder(layer.attn, cache, encoder)
        return caches

    def forward_cached(self, x: torch.Tensor, t0: int, caches: list[LayerCache]) -> torch.Tensor:
        """Positions [t0, t0+C) (N, C, W) through the caches; chunks are split at block boundaries."""
        outs = []
        start = 0
        while start < x.shape[1]:
            pos = t0 + start
            end = min(x.shape[1], start + self.block_ctx - pos % self.block_ctx)
            h = x[:, start:end]
            for layer, cache in zip(self.layers, caches, strict=True):
                h = layer.forward_cached(h, pos, cache)
            outs.append(h)
            start = end
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
