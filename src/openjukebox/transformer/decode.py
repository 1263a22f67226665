"""The one-token decode step over preallocated caches: the fast sampling path.

``attend_cached`` (cache.py) takes any chunk at a Python position and slices the caches to the
keys it needs, so every position has its own shapes: right for prefill, and the reference. The
step here is for one position and has two ways to find its slots. On the device path the position
is a tensor: the new keys/values go in with ``index_copy_`` and every layer attends over its
cache's full, fixed size through an additive mask built once per step. Same shapes at every
position, no host synchronisation: captured in a CUDA graph on a GPU. On the host path (a CPU, the
position an int) each layer attends only the slots it sees, a view of its cache, without a mask:
fewer keys read (half, on average, for block and previous-block layers) and attention's unmasked
kernel. Block, previous-block and prime caches reuse their slots, so their views are made once per
slot and kept on the cache (``LayerCache.views``).

Per kind (cache layouts as in cache.py): dense writes slot ``pos``; transpose writes slot
(column, block) of its column-major cache and reads its column (contiguous) up to the current
block; block writes slot ``pos % block_ctx`` of its one-block ring;
previous-block writes slot ``(block % 2) * block_ctx + pos % block_ctx`` and attends the other
half of its ring (still zero in block 0, so the output is the original's 0 there); prime writes
``min(pos, prime_len)`` (the extra last slot is never attended).

A ``DecodePlan`` is built once per sampling window: per layer, plain callables for its linear
layers (PyTorch's module call costs more than a one-row matmul here), its MLP activation and
layer-norm parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import BLOCK, CROSS, DENSE, PREV_BLOCK, PRIME, TRANSPOSE
from .model import GELU_SCALE, quick_gelu

_RING = frozenset((BLOCK, PREV_BLOCK, PRIME))  # kinds whose slots repeat within a window

Linear = Callable[[torch.Tensor], torch.Tensor]


def linear_fn(module: nn.Module) -> Linear:
    """A plain callable computing ``module(x)`` for a float or dynamically quantized linear layer."""
    if isinstance(module, nn.Linear):
        weight, bias = module.weight, module.bias
        return lambda x: F.linear(x, weight, bias)
    packed = getattr(module, "_packed_params", None)
    if packed is not None and packed.dtype == torch.qint8 and getattr(module, "version", 0) >= 4:
        packet = torch.ops.quantized.linear_dynamic
        op = getattr(packet, "_op", packet)  # the C++ function: 39 us a call here, the module's call 66 us
        params = packed._packed_params
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
    act: Callable[[torch.Tensor], torch.Tensor]
    mlp_proj: Linear


def _ln(ln: nn.LayerNorm) -> tuple:
    return (ln.normalized_shape, ln.weight, ln.bias, ln.eps)


def _activation(mlp: nn.Module, device: torch.device, dtype: torch.dtype) -> Callable[[torch.Tensor], torch.Tensor]:
    """The MLP's quick-GELU: one SiLU when its weights carry the scale (``MLP.fold_gelu_scale``);
    in float32 with the scale as a tensor made once (a Python number becomes a tensor every call),
    the same values; otherwise as the module computes it."""
    if mlp.folded:
        return F.silu
    if dtype == torch.float32:
        scale = torch.tensor(GELU_SCALE, dtype=dtype, device=device)
        return lambda h: torch.sigmoid(h * scale).mul_(h)  # in place: decoding never needs gradients
    return quick_gelu


@dataclass(frozen=True)
class DecodePlan:
    """What ``decode_step`` needs of a ``Transformer``, gathered once."""

    layers: tuple[LayerPlan, ...]
    tables: StepTables

    @classmethod
    def of(cls, transformer, device: torch.device, dtype: torch.dtype) -> DecodePlan:
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
                    _activation(layer.mlp, device, dtype),
                    linear_fn(layer.mlp.proj),
                )
            )
        prime_len = transformer.layers[0].attn.prime_len
        kinds = frozenset(transformer.kinds)
        return cls(tuple(layers), StepTables(transformer.n_ctx, transformer.block_ctx, prime_len, kinds, device, dtype))


@dataclass
class StepIndex:
    """Per kind: the cache slot to write and what to attend.

    Device path: ``slots`` (1,) long tensors, ``masks`` additive (1, S) over the whole cache (None:
    none), ``column`` a (1,) long tensor. Host path: ``slots`` ints, ``keys`` the visible slots
    (of the column, for transpose layers), no masks, ``column`` an int.
    """

    slots: dict[int, torch.Tensor | int | None]
    masks: dict[int, torch.Tensor | None]
    column: int | torch.Tensor  # pos % block_ctx, the transpose layers' column
    keys: dict[int, slice] | None = None


class StepTables:
    """A window's cache slots and what each position attends: a host-path step computes its integer
    slots and slices (``at``); a device-path step looks up tables of every position's slots and
    masks (``of``), made on its first call (warm-up, before a CUDA graph's capture).

    Masks are tabulated by what they depend on: the block (transpose), the position in the block
    (block), the block's parity (previous block), the position up to ``prime_len`` (prime). Dense
    masks are computed per step (a table would be n_ctx x n_ctx).
    """

    def __init__(self, n_ctx: int, block_ctx: int, prime_len: int, kinds: frozenset[int], device, dtype):
        self.n_ctx, self.bc, self.prime_len, self.device, self.dtype = n_ctx, block_ctx, prime_len, device, dtype
        self.kinds = [k for k in kinds if k != CROSS]

    @functools.cached_property
    def _tables(self) -> tuple[dict, dict, dict, torch.Tensor]:
        """Per kind, each position's slot, its mask-table key and the mask table; and its column."""
        n_ctx, block_ctx, prime_len, device = self.n_ctx, self.bc, self.prime_len, self.device
        pos = torch.arange(n_ctx, device=device)
        block, s0 = pos // block_ctx, pos % block_ctx
        blocks = n_ctx // block_ctx
        slot = {
            DENSE: pos,
            TRANSPOSE: s0 * blocks + block,  # column-major cache
            BLOCK: s0,
            PREV_BLOCK: (block % 2) * block_ctx + s0,
            PRIME: pos.clamp(max=prime_len),
        }
        key = {TRANSPOSE: block, BLOCK: s0, PREV_BLOCK: block % 2, PRIME: pos.clamp(max=prime_len)}
        keys = torch.arange(prime_len + 1, device=device)
        visible = {  # (keys of the table, S)
            TRANSPOSE: torch.arange(blocks, device=device) <= torch.arange(blocks, device=device).view(-1, 1),
            BLOCK: torch.arange(block_ctx, device=device) <= torch.arange(block_ctx, device=device).view(-1, 1),
            PREV_BLOCK: torch.arange(2 * block_ctx, device=device) // block_ctx
            != torch.arange(2, device=device).view(-1, 1),
            PRIME: (keys <= keys.view(-1, 1)) & (keys < prime_len),
        }
        return (
            {k: slot[k] for k in self.kinds},
            {k: key[k] for k in self.kinds if k != DENSE},
            {k: self._additive(visible[k]) for k in self.kinds if k != DENSE},
            s0,
        )

    def _additive(self, visible: torch.Tensor) -> torch.Tensor:
        return torch.zeros(visible.shape, dtype=self.dtype, device=visible.device).masked_fill_(~visible, float("-inf"))

    def at(self, t: int) -> StepIndex:
        """Position ``t`` known on the host: integer slots, and the visible slots as slices (the
        cheapest on a CPU: no mask, and only the keys a layer sees are read)."""
        bc = self.bc
        block, s0 = divmod(t, bc)
        slots = {
            DENSE: t,
            TRANSPOSE: s0 * (self.n_ctx // bc) + block,
            BLOCK: s0,
            PREV_BLOCK: (block % 2) * bc + s0,
            PRIME: min(t, self.prime_len),
        }
        prev = (1 - block % 2) * bc  # in block 0 the other half is still zero: the original's output 0
        keys = {
            DENSE: slice(0, t + 1),
            TRANSPOSE: slice(0, block + 1),  # of the column
            BLOCK: slice(0, s0 + 1),
            PREV_BLOCK: slice(prev, prev + bc),
            PRIME: slice(0, min(t + 1, self.prime_len)),
        }
        return StepIndex({k: slots[k] for k in self.kinds}, {}, s0, {k: keys[k] for k in self.kinds})

    def of(self, pos: torch.Tensor) -> StepIndex:
        """Position ``pos`` ((1,) long tensor) on the device: no host synchronisation (CUDA graphs)."""
        slot, key, mask, column = self._tables
        slots: dict[int, torch.Tensor | None] = {CROSS: None}
        masks: dict[int, torch.Tensor | None] = {CROSS: None}
        for k in self.kinds:
            slots[k] = slot[k].index_select(0, pos)
            masks[k] = self._dense(pos) if k == DENSE else mask[k].index_select(0, key[k].index_select(0, pos))
        return StepIndex(slots, masks, column.index_select(0, pos))

    def _dense(self, pos: torch.Tensor) -> torch.Tensor:
        return self._additive(torch.arange(self.n_ctx, device=pos.device) <= pos).view(1, -1)


def _layer_norm(x: torch.Tensor, ln: tuple) -> torch.Tensor:
    if x.dtype == torch.float32:
        return torch.layer_norm(x, *ln)  # F.layer_norm's Python checks cost more than the norm here
    shape, w, b, eps = ln  # float32 inside, as in training
    return torch.layer_norm(x.float(), shape, w.float(), b.float(), eps).to(x.dtype)


def _attend(p: LayerPlan, x: torch.Tensor, cache, index: StepIndex) -> torch.Tensor:
    """One position (N, 1, W) -> (N, 1, W) through the layer's cache (``cache.kv``: (N, 2, H, S, d))."""
    n, h, d = x.shape[0], p.heads, p.n_state // p.heads
    if p.kind == CROSS:
        out = F.scaled_dot_product_attention(p.q(x).view(n, h, 1, d), cache.k, cache.v)
        return p.proj(out.view(n, 1, p.n_state))
    qkv = p.qkv(x).view(n, 3, h, 1, d)
    if index.keys is not None:  # host path: write the slot, attend a view of the visible slots
        slot, k, v = _host_views(p, cache, index)
        slot.copy_(qkv[:, 1:])
        out = F.scaled_dot_product_attention(qkv[:, 0], k, v)
        return p.proj(out.view(n, 1, p.n_state))
    cache.kv.index_copy_(3, index.slots[p.kind], qkv[:, 1:])
    if p.kind == TRANSPOSE:  # the column, gathered
        k, v = cache.kv.view(n, 2, h, p.block_ctx, -1, d).index_select(3, index.column).squeeze(3).unbind(1)
    else:
        k, v = cache.k, cache.v
    out = F.scaled_dot_product_attention(qkv[:, 0], k, v, attn_mask=index.masks[p.kind])
    return p.proj(out.view(n, 1, p.n_state))


def _host_views(p: LayerPlan, cache, index: StepIndex) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Views of ``cache.kv`` for the host path: the slot to write, the visible keys and values.
    They depend on the slot only, so ring-like caches keep them per slot (``cache.views``)."""
    slot = index.slots[p.kind]
    views = cache.views.get(slot)
    if views is None:
        kv = cache.kv
        if p.kind == TRANSPOSE:
            n, _, h, _, d = kv.shape
            visible = kv.view(n, 2, h, p.block_ctx, -1, d)[:, :, :, index.column, index.keys[TRANSPOSE]]
        else:
            visible = kv[:, :, :, index.keys[p.kind]]
        views = (kv.narrow(3, slot, 1), *visible.unbind(1))
        if p.kind in _RING:
            cache.views[slot] = views
    return views


def decode_step(plan: DecodePlan, x: torch.Tensor, pos: int | torch.Tensor, caches: list) -> torch.Tensor:
    """Position ``pos`` (an int, or a (1,) long tensor on the device) of every sequence:
    (N, 1, W) -> (N, 1, W).

    Equal to ``transformer.forward_cached(x, int(pos), caches)`` up to float rounding; the caches
    come from ``transformer.make_caches`` and hold the positions before ``pos``.
    """
    index = plan.tables.at(pos) if isinstance(pos, int) else plan.tables.of(pos)
    for p, cache in zip(plan.layers, caches, strict=True):
        x = x + _attend(p, _layer_norm(x, p.ln_0), cache, index)
        h = p.fc(_layer_norm(x, p.ln_1))
        x = x + p.mlp_proj(p.act(h))
    return x
