"""The one-token decode step with static shapes: the fast sampling path.

``attend_cached`` (cache.py) takes any chunk at a Python position and slices the caches to the
keys it needs, so every position has its own shapes: right for prefill, and the reference. The
step here takes the position as a tensor, writes the new keys/values with ``index_copy_`` and
attends over each cache's full, fixed size through an additive mask built once per step for all
layers. Same shapes at every position, no host synchronisation: the same code runs eagerly on a
CPU and is captured in a CUDA graph on a GPU.

Per kind (cache layouts as in cache.py): dense writes slot ``pos``; transpose writes slot
(column, block) of its column-major cache, reads its column (contiguous) and masks the blocks
after the current one; block writes slot ``pos % block_ctx`` of its one-block ring;
previous-block writes slot ``(block % 2) * block_ctx + pos % block_ctx`` and attends the other
half of its ring (still zero in block 0, so the output is the original's 0 there); prime writes
``min(pos, prime_len)`` (the extra last slot is never attended).

A ``DecodePlan`` is built once per sampling window: per layer, plain callables for its linear
layers (PyTorch's module call costs more than a one-row matmul here) and layer-norm parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import BLOCK, CROSS, DENSE, PREV_BLOCK, PRIME, TRANSPOSE

Linear = Callable[[torch.Tensor], torch.Tensor]


def linear_fn(module: nn.Module) -> Linear:
    """A plain callable computing ``module(x)`` for a float or dynamically quantized linear layer."""
    if isinstance(module, nn.Linear):
        weight, bias = module.weight, module.bias
        return lambda x: F.linear(x, weight, bias)
    packed = getattr(module, "_packed_params", None)
    if packed is not None and packed.dtype == torch.qint8 and getattr(module, "version", 0) >= 4:
        op, params = torch.ops.quantized.linear_dynamic, packed._packed_params
        return lambda x: op(x, params, True)  # reduce_range, as the module's own forward
    return module


@dataclass(frozen=True)
class LayerPlan:
    kind: int
    heads: int
    n_state: int
    block_ctx: int
    ln_0: tuple
    qkv: Linear | None
    q: Linear | None
    proj: Linear
    ln_1: tuple
    fc: Linear
    mlp_proj: Linear


def _ln(ln: nn.LayerNorm) -> tuple:
    return (ln.normalized_shape, ln.weight, ln.bias, ln.eps)


@dataclass(frozen=True)
class DecodePlan:
    """What ``decode_step`` needs of a ``Transformer``, gathered once."""

    layers: tuple[LayerPlan, ...]
    kinds: frozenset[int]
    n_ctx: int
    block_ctx: int
    prime_len: int

    @classmethod
    def of(cls, transformer) -> DecodePlan:
        layers = []
        for layer in transformer.layers:
            a = layer.attn
            cross = a.kind == CROSS
            layers.append(
                LayerPlan(
                    a.kind,
                    a.heads,
                    a.n_state,
                    a.block_ctx,
                    _ln(layer.ln_0),
                    None if cross else linear_fn(a.qkv),
                    linear_fn(a.q) if cross else None,
                    linear_fn(a.proj),
                    _ln(layer.ln_1),
                    linear_fn(layer.mlp.fc),
                    linear_fn(layer.mlp.proj),
                )
            )
        prime_len = transformer.layers[0].attn.prime_len
        return cls(tuple(layers), frozenset(transformer.kinds), transformer.n_ctx, transformer.block_ctx, prime_len)


@dataclass
class StepIndex:
    """Per kind: the cache slot to write ((1,) long) and the additive mask (1, S) or None."""

    slots: dict[int, torch.Tensor | None]
    masks: dict[int, torch.Tensor | None]
    column: torch.Tensor  # (1,) long: pos % block_ctx, the transpose layers' column


def step_index(pos: torch.Tensor, plan: DecodePlan, dtype: torch.dtype) -> StepIndex:
    """Slots and masks of position ``pos`` ((1,) long tensor) for every layer kind of ``plan``."""
    dev, bc, kinds = pos.device, plan.block_ctx, plan.kinds
    block, s0 = pos // bc, pos % bc
    zero = torch.zeros((), dtype=dtype, device=dev)
    minus_inf = torch.full((), float("-inf"), dtype=dtype, device=dev)

    def additive(visible: torch.Tensor) -> torch.Tensor:
        return torch.where(visible, zero, minus_inf).view(1, -1)

    slots: dict[int, torch.Tensor | None] = {CROSS: None}
    masks: dict[int, torch.Tensor | None] = {CROSS: None}
    if DENSE in kinds:
        slots[DENSE], masks[DENSE] = pos, additive(torch.arange(plan.n_ctx, device=dev) <= pos)
    if TRANSPOSE in kinds:  # column-major cache: slot (column, block)
        slots[TRANSPOSE] = s0 * (plan.n_ctx // bc) + block
        masks[TRANSPOSE] = additive(torch.arange(plan.n_ctx // bc, device=dev) <= block)
    if BLOCK in kinds:
        slots[BLOCK], masks[BLOCK] = s0, additive(torch.arange(bc, device=dev) <= s0)
    if PREV_BLOCK in kinds:
        slots[PREV_BLOCK] = (block % 2) * bc + s0
        masks[PREV_BLOCK] = additive(torch.arange(2 * bc, device=dev) // bc != block % 2)
    if PRIME in kinds:
        keys = torch.arange(plan.prime_len + 1, device=dev)
        slots[PRIME] = pos.clamp(max=plan.prime_len)
        masks[PRIME] = additive((keys <= pos) & (keys < plan.prime_len))
    return StepIndex(slots, masks, s0)


def _layer_norm(x: torch.Tensor, ln: tuple) -> torch.Tensor:
    if x.dtype == torch.float32:
        return F.layer_norm(x, *ln)
    shape, w, b, eps = ln  # float32 inside, as in training
    return F.layer_norm(x.float(), shape, w.float(), b.float(), eps).to(x.dtype)


def _attend(p: LayerPlan, x: torch.Tensor, cache, index: StepIndex) -> torch.Tensor:
    """One position (N, 1, W) -> (N, 1, W) through the layer's cache (``cache.kv``: (N, 2, H, S, d))."""
    n, h, d = x.shape[0], p.heads, p.n_state // p.heads
    if p.kind == CROSS:
        out = F.scaled_dot_product_attention(p.q(x).view(n, h, 1, d), cache.k, cache.v)
        return p.proj(out.view(n, 1, p.n_state))
    qkv = p.qkv(x).view(n, 3, h, 1, d)
    cache.kv.index_copy_(3, index.slots[p.kind], qkv[:, 1:])
    if p.kind == TRANSPOSE:
        k, v = cache.kv.view(n, 2, h, p.block_ctx, -1, d).index_select(3, index.column).squeeze(3).unbind(1)
    else:
        k, v = cache.k, cache.v
    out = F.scaled_dot_product_attention(qkv[:, 0], k, v, attn_mask=index.masks[p.kind])
    return p.proj(out.view(n, 1, p.n_state))


def decode_step(plan: DecodePlan, x: torch.Tensor, pos: torch.Tensor, caches: list) -> torch.Tensor:
    """Position ``pos`` ((1,) long tensor) of every sequence: (N, 1, W) -> (N, 1, W).

    Equal to ``transformer.forward_cached(x, int(pos), caches)`` up to float rounding; the caches
    come from ``transformer.make_caches`` and hold the positions before ``pos``.
    """
    index = step_index(pos, plan, x.dtype)
    for p, cache in zip(plan.layers, caches, strict=True):
        x = x + _attend(p, _layer_norm(x, p.ln_0), cache, index)
        h = p.fc(_layer_norm(x, p.ln_1))
        x = x + p.mlp_proj(h * torch.sigmoid(1.702 * h))
    return x
