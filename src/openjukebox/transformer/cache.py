"""Static key/value caches for incremental decoding, one per layer, sized by its attention kind.

dense and transpose-block layers keep the whole context (transpose layers column-major, so that a
column's keys are contiguous); a block layer keeps one block (a ring);
a previous-block layer two blocks (a ring of the previous and the current); prime attention the
first ``prime_len`` positions; cross attention the encoder's keys and values, computed once.
Positions are written in place; nothing grows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .attention import BLOCK, CROSS, DENSE, PREV_BLOCK, PRIME, TRANSPOSE, Attention


class LayerCache:
    """Preallocated keys and values for one attention layer: ``kv`` (N, 2, H, size, d), with ``k``
    and ``v`` (N, H, size, d) views of it (one buffer, so the decode step writes both at once).

    Prime attention keeps one slot more than it attends, where the decode step writes the
    positions past ``prime_len`` (static shapes: there is always a slot to write). ``views`` is the
    host-path decode step's store of views of ``kv`` per slot (decode.py); ``kv`` is never replaced,
    so they stay valid.
    """

    def __init__(self, attn: Attention, batch: int, n_ctx: int, encoder_len: int = 0, dtype=None, device=None):
        bc = attn.block_ctx
        size = {
            DENSE: n_ctx,
            TRANSPOSE: n_ctx,
            BLOCK: bc,
            PREV_BLOCK: 2 * bc,
            PRIME: attn.prime_len + 1,
            CROSS: encoder_len,
        }[attn.kind]
        self.kv = torch.zeros(batch, 2, attn.heads, size, attn.n_state // attn.heads, dtype=dtype, device=device)
        self.k, self.v = self.kv[:, 0], self.kv[:, 1]
        self.views: dict[int, tuple[torch.Tensor, ...]] = {}

    @property
    def nbytes(self) -> int:
        return self.kv.numel() * self.kv.element_size()


@torch.no_grad()
def set_encoder(attn: Attention, cache: LayerCache, encoder: torch.Tensor) -> None:
    """Compute a cross-attention layer's keys/values from encoder states (N, S, W), once."""
    k, v = attn.kv(encoder).chunk(2, dim=-1)
    cache.k.copy_(attn._split(k))
    cache.v.copy_(attn._split(v))


def _causal(q_len: int, k_len: int, offset: int, device) -> torch.Tensor | None:
    """Bool (q_len, k_len) mask: query i sees keys <= offset + i (None when all keys are visible)."""
    if q_len == 1 and k_len <= offset + 1:
        return None
    return torch.arange(k_len, device=device) <= offset + torch.arange(q_len, device=device).view(-1, 1)


def attend_cached(attn: Attention, x: torch.Tensor, t0: int, cache: LayerCache) -> torch.Tensor:
    """Positions [t0, t0+C) of one sequence, (N, C, W) -> (N, C, W), through the layer's cache.

    The chunk must lie inside one block; earlier positions must have been passed before.
    """
    bc, kind = attn.block_ctx, attn.kind
    c = x.shape[1]
    block, s0 = divmod(t0, bc)
    if (t0 + c - 1) // bc != block:
        raise ValueError(f"chunk [{t0}, {t0 + c}) crosses a block boundary (block_ctx {bc})")
    if kind == CROSS:
        return attn._merge(F.scaled_dot_product_attention(attn._split(attn.q(x)), cache.k, cache.v))
    q, k, v = (attn._split(t) for t in attn.qkv(x).chunk(3, dim=-1))
    kv = torch.stack([k, v], dim=1)  # (N, 2, H, C, d), written through the base (autograd-safe)
    if kind == DENSE:
        cache.kv[:, :, :, t0 : t0 + c] = kv
    elif kind == TRANSPOSE:  # column-major: (N, 2, H, block_ctx, blocks, d)
        cache.kv.view(*cache.kv.shape[:3], bc, -1, cache.kv.shape[-1])[:, :, :, s0 : s0 + c, block] = kv
    elif kind == BLOCK:
        cache.kv[:, :, :, s0 : s0 + c] = kv
    elif kind == PREV_BLOCK:
        half = (block % 2) * bc
        cache.kv[:, :, :, half + s0 : half + s0 + c] = kv
    elif kind == PRIME:
        end = min(t0 + c, attn.prime_len)
        if end > t0:
            cache.kv[:, :, :, t0:end] = kv[:, :, :, : end - t0]

    if kind == DENSE:
        out = F.scaled_dot_product_attention(
            q, cache.k[:, :, : t0 + c], cache.v[:, :, : t0 + c], attn_mask=_causal(c, t0 + c, t0, x.device)
        )
    elif kind == BLOCK:
        out = F.scaled_dot_product_attention(
            q, cache.k[:, :, : s0 + c], cache.v[:, :, : s0 + c], attn_mask=_causal(c, s0 + c, s0, x.device)
        )
    elif kind == PREV_BLOCK:
        if block == 0:
            out = torch.zeros_like(q)  # row 0 attends a zero block: the original's output is 0
        else:
            prev = ((block - 1) % 2) * bc
            out = F.scaled_dot_product_attention(q, cache.k[:, :, prev : prev + bc], cache.v[:, :, prev : prev + bc])
    elif kind == TRANSPOSE:
        columns = cache.kv.view(*cache.kv.shape[:3], bc, -1, cache.kv.shape[-1])[:, :, :, s0 : s0 + c, : block + 1]
        out = F.scaled_dot_product_attention(q.unsqueeze(3), columns[:, 0], columns[:, 1]).squeeze(3)
    else:  # PRIME
        keys = min(t0 + c, attn.prime_len)
        out = F.scaled_dot_product_attention(
            q, cache.k[:, :, :keys], cache.v[:, :, :keys], attn_mask=_causal(c, keys, t0, x.device)
        )
    return attn._merge(out)
