"""Factorized attention of the Jukebox transformer, with a fast path, a reference path and a static cache.

A sequence of length L is viewed as ``blocks`` rows of ``block_ctx`` positions. Kinds (the original's
``attn_func`` numbers): 0 dense, 1 block (own row, causal), 2 transpose block (own column, causal),
3 previous block (the whole previous row, unmasked; row 0 sees nothing and outputs zero),
6 cross attention to encoder states, 7 prime attention (causal over the first ``prime_len`` keys).

Full sequences run through ``scaled_dot_product_attention`` on block-reshaped q/k/v (``forward``);
``forward_reference`` is a plain masked matmul over the whole sequence, kept for tests. Incremental
decoding (``forward_cached``) takes any chunk that lies inside one block: one token, or a prefill
chunk, written in place into a preallocated cache.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

DENSE, BLOCK, TRANSPOSE, PREV_BLOCK, CROSS, PRIME = 0, 1, 2, 3, 6, 7
KIND_NAMES = {
    DENSE: "dense",
    BLOCK: "block",
    TRANSPOSE: "transpose",
    PREV_BLOCK: "prev_block",
    CROSS: "cross",
    PRIME: "prime",
}


def attn_funcs(attn_order: int, depth: int) -> list[int]:
    """The attention kind of every layer for the original's ``attn_order`` patterns."""

    def kind(d: int) -> int:
        if attn_order == 0:
            return DENSE
        if attn_order == 1:
            return [BLOCK, TRANSPOSE][d % 2]
        if attn_order == 2:
            return [BLOCK, TRANSPOSE, PREV_BLOCK][d % 3]
        if attn_order == 8:
            return [BLOCK, TRANSPOSE, PREV_BLOCK, BLOCK, TRANSPOSE, PREV_BLOCK, BLOCK, TRANSPOSE, PREV_BLOCK, CROSS][
                d % 10
            ]
        if attn_order == 10:
            if d < 9:
                return [BLOCK, TRANSPOSE, PREV_BLOCK][d % 3]
            return [BLOCK, TRANSPOSE, PREV_BLOCK, BLOCK, TRANSPOSE, PREV_BLOCK, BLOCK, TRANSPOSE, PREV_BLOCK, CROSS][
                (d - 9) % 10
            ]
        if attn_order == 12:
            return [PRIME, PRIME, DENSE][d % 3] if d % 16 == 15 else [BLOCK, TRANSPOSE, PREV_BLOCK][d % 3]
        raise ValueError(f"attn_order {attn_order} is not supported (supported: 0, 1, 2, 8, 10, 12)")

    return [kind(d) for d in range(depth)]


def reference_mask(kind: int, length: int, block_ctx: int, prime_len: int = 0) -> torch.Tensor:
    """Boolean (L, L) mask of which key each query attends to (keys of the same sequence)."""
    q = torch.arange(length).view(-1, 1)
    k = torch.arange(length).view(1, -1)
    causal = k <= q
    if kind == DENSE:
        return causal
    if kind == BLOCK:
        return causal & (q // block_ctx == k // block_ctx)
    if kind == TRANSPOSE:
        return causal & (q % block_ctx == k % block_ctx)
    if kind == PREV_BLOCK:
        return k // block_ctx == q // block_ctx - 1
    if kind == PRIME:
        return causal & (k < prime_len)
    raise ValueError(f"no self-attention mask for kind {kind}")


class Attention(nn.Module):
    """One attention layer: width W -> n_state = W*m_attn split over heads -> W.

    q, k, v come from ``qkv`` (self attention), or q from ``q`` and k, v from ``kv`` applied to
    encoder states (cross attention).
    """

    def __init__(self, width: int, n_state: int, heads: int, kind: int, block_ctx: int, prime_len: int = 0):
        super().__init__()
        if n_state % heads:
            raise ValueError(f"attention width {n_state} is not divisible by {heads} heads")
        self.heads, self.n_state, self.kind = heads, n_state, kind
        self.block_ctx, self.prime_len = block_ctx, prime_len
        if kind == CROSS:
            self.q = nn.Linear(width, n_state)
            self.kv = nn.Linear(width, 2 * n_state)
        else:
            self.qkv = nn.Linear(width, 3 * n_state)
        self.proj = nn.Linear(n_state, width)
        self.record = False  # keep the softmax weights of the last call in self.weights (alignment)
        self.weights: torch.Tensor | None = None
        self.log_weights: torch.Tensor | None = None  # cross and prime attention only

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        return x.view(n, t, self.heads, -1).transpose(1, 2)  # (N, H, T, d)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, _ = x.shape
        return self.proj(x.transpose(1, 2).reshape(n, t, self.n_state))

    def _qkv(self, x: torch.Tensor, encoder: torch.Tensor | None):
        if self.kind == CROSS:
            if encoder is None:
                raise ValueError("a cross-attention layer needs encoder states")
            k, v = self.kv(encoder).chunk(2, dim=-1)
            return self._split(self.q(x)), self._split(k), self._split(v)
        return tuple(self._split(t) for t in self.qkv(x).chunk(3, dim=-1))

    def forward(self, x: torch.Tensor, encoder: torch.Tensor | None = None) -> torch.Tensor:
        """Full sequence (N, L, W) -> (N, L, W) through SDPA on block-reshaped q/k/v."""
        if self.record:
            return self._forward_recorded(x, encoder)
        q, k, v = self._qkv(x, encoder)
        n, h, length, d = q.shape
        bc = self.block_ctx
        if self.kind == DENSE:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif self.kind == CROSS:
            out = F.scaled_dot_product_attention(q, k, v)
        elif self.kind == PRIME:
            p = min(self.prime_len, length)
            mask = reference_mask(PRIME, length, bc, p)[:, :p].to(q.device)
            out = F.scaled_dot_product_attention(q, k[:, :, :p], v[:, :, :p], attn_mask=mask)
        else:
            rows = lambda t: t.reshape(n, h, length // bc, bc, d)  # noqa: E731
            q, k, v = rows(q), rows(k), rows(v)
            if self.kind == BLOCK:
                out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            elif self.kind == TRANSPOSE:
                cols = lambda t: t.transpose(2, 3)  # noqa: E731
                out = cols(F.scaled_dot_product_attention(cols(q), cols(k), cols(v), is_causal=True))
            else:  # PREV_BLOCK: row i attends the whole row i-1; row 0 attends zeros and outputs 0
                shift = lambda t: F.pad(t[:, :, :-1], (0, 0, 0, 0, 1, 0))  # noqa: E731
                out = F.scaled_dot_product_attention(q, shift(k), shift(v))
            out = out.reshape(n, h, length, d)
        return self._merge(out)

    def _forward_recorded(self, x: torch.Tensor, encoder: torch.Tensor | None) -> torch.Tensor:
        """``forward`` keeping the softmax weights in ``self.weights``; for cross and prime attention
        only the attended keys are kept ((N, H, L, S) and (N, H, L, prime_len)), not an (L, L) matrix."""
        if self.kind not in (CROSS, PRIME):
            return self.forward_reference(x, encoder)
        q, k, v = self._qkv(x, encoder)
        if self.kind == PRIME:
            p = min(self.prime_len, q.shape[2])
            k, v = k[:, :, :p], v[:, :, :p]
        scores = (q @ k.transpose(-1, -2)).float() / math.sqrt(q.shape[-1])
        if self.kind == PRIME:
            mask = reference_mask(PRIME, q.shape[2], self.block_ctx, self.prime_len)[:, : k.shape[2]]
            scores = scores.masked_fill(~mask.to(q.device), float("-inf"))
        self.log_weights = torch.log_softmax(scores, dim=-1)  # with their graph: the alignment loss trains them
        self.weights = self.log_weights.exp()
        return self._merge(self.weights.to(v.dtype) @ v)

    def forward_reference(self, x: torch.Tensor, encoder: torch.Tensor | None = None) -> torch.Tensor:
        """The same result as ``forward`` with an explicit (L, L) mask and a plain softmax (slow)."""
        q, k, v = self._qkv(x, encoder)
        scores = q @ k.transpose(-1, -2)
        scores = scores.to(torch.promote_types(scores.dtype, torch.float32)) / math.sqrt(q.shape[-1])
        if self.kind != CROSS:
            mask = reference_mask(self.kind, q.shape[2], self.block_ctx, self.prime_len).to(q.device)
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # rows with no key (prev block 0) -> 0
        if self.record:
            self.weights = weights.detach()
        return self._merge(weights.to(v.dtype) @ v)
