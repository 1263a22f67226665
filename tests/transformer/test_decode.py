import pytest
import torch

from openjukebox.transformer.attention import BLOCK, CROSS, PREV_BLOCK, PRIME, TRANSPOSE
from openjukebox.transformer.decode import DecodePlan, StepTables, decode_step
from openjukebox.transformer.model import Transformer

L, BC, W = 24, 6, 32
PATTERNS = [(0, 4), (1, 4), (2, 6), (8, 10), (10, 20), (12, 48)]


def _transformer(order, depth):
    torch.manual_seed(order)
    return Transformer(W, depth, heads=2, n_ctx=L, attn_order=order, blocks=L // BC, prime_len=10).double().eval()


@pytest.mark.parametrize("order,depth", PATTERNS)
@pytest.mark.parametrize("prefill,host_position", [(0, True), (7, True), (0, False), (7, False)])
def test_decode_step_equals_the_full_forward(order, depth, prefill, host_position):
    """Every attention kind: a prompt prefilled by forward_cached, then one decode_step per position
    (position as an int on the CPU path, as a tensor on the CUDA-graph path) equals the full forward."""
    model = _transformer(order, depth)
    x, enc = torch.randn(2, L, W).double(), torch.randn(2, 5, W).double()
    enc = enc if CROSS in model.kinds else None
    with torch.no_grad():
        full = model(x, enc)
        caches = model.make_caches(2, enc, dtype=torch.float64)
        plan = DecodePlan.of(model, torch.device("cpu"), torch.float64)
        outs = [model.forward_cached(x[:, :prefill], 0, caches)] if prefill else []
        for t in range(prefill, L):
            pos = t if host_position else torch.tensor([t])
            outs.append(decode_step(plan, x[:, t : t + 1], pos, caches))
    torch.testing.assert_close(torch.cat(outs, 1), full)


def test_decode_step_and_forward_cached_leave_the_same_caches():
    model = _transformer(12, 48)  # every kind: block, transpose, previous block, prime, dense
    x = torch.randn(1, L, W).double()
    with torch.no_grad():
        ref, fast = model.make_caches(1, dtype=torch.float64), model.make_caches(1, dtype=torch.float64)
        plan = DecodePlan.of(model, torch.device("cpu"), torch.float64)
        for t in range(L):
            model.forward_cached(x[:, t : t + 1], t, ref)
            decode_step(plan, x[:, t : t + 1], t, fast)
    for layer, a, b in zip(model.layers, ref, fast, strict=True):
        if layer.attn.kind == PRIME:  # the decode step also writes the positions past prime_len to a spare slot
            a, b = a.kv[..., :10, :], b.kv[..., :10, :]
            torch.testing.assert_close(a, b)
        else:
            torch.testing.assert_close(a.kv, b.kv)
    # the host path keeps its views per slot only where slots repeat (4 blocks of 6 here)
    kept = {BLOCK: list(range(BC)), PREV_BLOCK: list(range(2 * BC)), PRIME: list(range(11))}
    for layer, cache in zip(model.layers, fast, strict=True):
        assert sorted(cache.views) == kept.get(layer.attn.kind, [])


def test_decode_step_in_float32_with_the_gelu_scale_folded():
    """The host path's float32 activation, and the SiLU of a prior whose MLP weights carry quick-GELU's
    scale (what prepare_prior's int8 copy has): both decode the unfolded model's full forward."""
    model = _transformer(12, 48).float()
    x = torch.randn(2, L, W)
    with torch.no_grad():
        full = model(x)
        for folded in (False, True):
            if folded:
                for layer in model.layers:
                    layer.mlp.fold_gelu_scale()
            caches = model.make_caches(2, dtype=torch.float32)
            plan = DecodePlan.of(model, torch.device("cpu"), torch.float32)
            out = torch.cat([decode_step(plan, x[:, t : t + 1], t, caches) for t in range(L)], 1)
            torch.testing.assert_close(out, full, rtol=1e-4, atol=1e-5)


def _visible(index) -> dict[int, list[int]]:
    """The slots each kind attends: the mask's zeros (device path) or the keys' slices (host path)."""
    if index.keys is not None:
        return {k: list(range(s.start, s.stop)) for k, s in index.keys.items()}
    return {k: (m == 0).flatten().nonzero().flatten().tolist() for k, m in index.masks.items() if m is not None}


def test_step_tables_slots_and_visible_keys():
    tables = StepTables(24, 6, 10, frozenset({BLOCK, TRANSPOSE, PREV_BLOCK, PRIME}), torch.device("cpu"), torch.float32)
    at = tables.at(13)  # block 2, column 1
    assert "_tables" not in vars(tables)  # the host path makes no tables
    of = tables.of(torch.tensor([13]))
    assert at.masks == {} and of.keys is None  # the host path reads slices, the device path masks
    for index in (at, of):
        assert int(index.slots[BLOCK]) == 1
        assert int(index.slots[TRANSPOSE]) == 1 * 4 + 2  # column-major: column 1, block 2
        assert int(index.slots[PREV_BLOCK]) == 0 * 6 + 1  # block 2 writes the first half of the ring
        assert int(index.slots[PRIME]) == 10  # past prime_len: the spare slot
        visible = _visible(index)
        assert visible[BLOCK] == [0, 1]
        assert visible[TRANSPOSE] == [0, 1, 2]  # of column 1
        assert visible[PREV_BLOCK] == [6, 7, 8, 9, 10, 11]  # the previous block: the other half
        assert visible[PRIME] == list(range(10))
        assert int(index.column) == 1
    for first in (tables.at(3), tables.of(torch.tensor([3]))):  # block 0 attends the zero half of the ring
        assert _visible(first)[PREV_BLOCK] == [6, 7, 8, 9, 10, 11]
        assert _visible(first)[PRIME] == [0, 1, 2, 3]


@pytest.mark.parametrize("host_position", [True, False])
def test_decode_step_in_bfloat16_follows_the_reference_path(host_position):
    """The GPU dtype (run here on the CPU): layer norms in float32, the rest in bf16."""
    model = _transformer(2, 6).to(torch.bfloat16)
    x = torch.randn(1, L, W).to(torch.bfloat16)
    with torch.no_grad():
        ref, fast = model.make_caches(1, dtype=torch.bfloat16), model.make_caches(1, dtype=torch.bfloat16)
        plan = DecodePlan.of(model, torch.device("cpu"), torch.bfloat16)
        for t in range(L):
            a = model.forward_cached(x[:, t : t + 1], t, ref)
            b = decode_step(plan, x[:, t : t + 1], t if host_position else torch.tensor([t]), fast)
            assert b.dtype == torch.bfloat16
            torch.testing.assert_close(b, a, rtol=0.02, atol=0.02)
