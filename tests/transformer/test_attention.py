import pytest
import torch

from openjukebox.transformer.attention import (
    BLOCK,
    CROSS,
    DENSE,
    PREV_BLOCK,
    PRIME,
    TRANSPOSE,
    Attention,
    attn_funcs,
    reference_mask,
)
from openjukebox.transformer.cache import LayerCache, attend_cached, set_encoder
from openjukebox.transformer.model import Transformer

KINDS = [DENSE, BLOCK, TRANSPOSE, PREV_BLOCK, CROSS, PRIME]
L, BC, W = 24, 6, 32


def _attn(kind, heads=2):
    torch.manual_seed(kind)
    return Attention(W, 16, heads, kind, block_ctx=BC, prime_len=10).double()


@pytest.mark.parametrize("kind", KINDS)
def test_fast_path_equals_reference_path(kind):
    attn = _attn(kind)
    x, enc = torch.randn(3, L, W).double(), torch.randn(3, 7, W).double()
    torch.testing.assert_close(attn(x, enc), attn.forward_reference(x, enc))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("chunk", [1, 4, 6])
def test_cached_chunks_equal_the_full_forward(kind, chunk):
    attn = _attn(kind)
    x, enc = torch.randn(2, L, W).double(), torch.randn(2, 7, W).double()
    full = attn(x, enc)
    cache = LayerCache(attn, 2, L, encoder_len=7, dtype=torch.float64)
    if kind == CROSS:
        set_encoder(attn, cache, enc)
    outs, t = [], 0
    while t < L:  # chunks never cross a block boundary here (Transformer splits them)
        c = min(chunk, BC - t % BC)
        outs.append(attend_cached(attn, x[:, t : t + c], t, cache))
        t += c
    torch.testing.assert_close(torch.cat(outs, 1), full)


def test_masks_follow_the_original_definitions():
    dense, block = reference_mask(DENSE, L, BC), reference_mask(BLOCK, L, BC)
    trans, prev = reference_mask(TRANSPOSE, L, BC), reference_mask(PREV_BLOCK, L, BC)
    prime = reference_mask(PRIME, L, BC, prime_len=10)
    assert dense[13].nonzero().flatten().tolist() == list(range(14))
    assert block[13].nonzero().flatten().tolist() == [12, 13]
    assert trans[13].nonzero().flatten().tolist() == [1, 7, 13]
    assert prev[13].nonzero().flatten().tolist() == [6, 7, 8, 9, 10, 11] and not prev[3].any()
    assert prime[13].nonzero().flatten().tolist() == list(range(10))
    assert prime[4].nonzero().flatten().tolist() == list(range(5))


def test_attn_order_patterns_match_the_official_layouts():
    assert attn_funcs(2, 6) == [1, 2, 3, 1, 2, 3]
    five_b_lyrics = attn_funcs(10, 79)
    assert [d for d, k in enumerate(five_b_lyrics) if k == CROSS] == [18, 28, 38, 48, 58, 68, 78]
    one_b = attn_funcs(12, 72)
    assert [d for d, k in enumerate(one_b) if k == PRIME] == [15, 31, 63]
    assert [d for d, k in enumerate(one_b) if k == DENSE] == [47]
    with pytest.raises(ValueError, match="attn_order 5 is not supported"):
        attn_funcs(5, 3)


PATTERNS = [(0, 4), (1, 4), (2, 6), (8, 10), (10, 20), (12, 48)]


def _transformer(order, depth):
    torch.manual_seed(order)
    return Transformer(W, depth, heads=2, n_ctx=L, attn_order=order, blocks=L // BC, prime_len=10).double().eval()


@pytest.mark.parametrize("order,depth", PATTERNS)
def test_transformer_incremental_and_chunked_prefill_equal_full_forward(order, depth):
    model = _transformer(order, depth)
    x, enc = torch.randn(2, L, W).double(), torch.randn(2, 5, W).double()
    enc = enc if CROSS in model.kinds else None
    with torch.no_grad():
        full = model(x, enc)
        torch.testing.assert_close(model(x, enc, reference=True), full)
        for chunk in (1, 5, L):  # one token at a time; uneven chunks; the whole prompt at once
            caches = model.make_caches(2, enc, dtype=torch.float64)
            out = torch.cat([model.forward_cached(x[:, t : t + chunk], t, caches) for t in range(0, L, chunk)], 1)
            torch.testing.assert_close(out, full)


@pytest.mark.parametrize("order,depth", PATTERNS)
def test_no_output_depends_on_a_later_input(order, depth):
    model = _transformer(order, depth)
    enc = torch.randn(1, 5, W).double() if CROSS in model.kinds else None
    x = torch.randn(1, L, W, dtype=torch.float64, requires_grad=True)
    for t in (0, 7, 13, L - 2):
        (grad,) = torch.autograd.grad(model(x, enc)[0, t].sum(), x)
        assert grad[0, t + 1 :].abs().max() == 0
        assert grad[0, t].abs().max() > 0
