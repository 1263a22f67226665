import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from openjukebox.convert.importer import prior_config, read_hparams, vqvae_config
from openjukebox.convert.openai import ConversionError, convert_prior_state
from openjukebox.prior.config import get_preset
from openjukebox.prior.model import build_prior
from openjukebox.sampling.sampler import sample_window

from ..conftest import FIXTURES

OPENAI = FIXTURES / "openai"
OFFICIAL = ["prior_5b", "prior_5b_lyrics", "prior_1b_lyrics", "upsampler_level_0", "upsampler_level_1"]


@pytest.mark.parametrize("name", OFFICIAL)
def test_official_shapes_have_the_original_parameter_counts(name):
    summary = json.loads((OPENAI / "keys_summary.json").read_text())[name]
    with torch.device("meta"):
        model = build_prior(get_preset(name))
    assert sum(p.numel() for p in model.parameters()) == summary["n_params"]
    assert model.transformer.block_ctx == summary["block_ctx"]
    assert model.transformer.kinds == summary["attn_funcs"]
    assert (model.x_out is None) == summary["x_out_tied_to_x_emb"]


@pytest.mark.parametrize("name", ["base_top_lyrics", "base_upsampler_1", "base_upsampler_0"])
def test_the_readme_gives_the_gpu_presets_shapes_and_parameters_with_the_shipped_vocabularies(name):
    import re

    from openjukebox.models import DEFAULT_MODEL

    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    said = re.search(rf"`{name}` \(W (\d+), depth (\d+),[^)]*?(\d+\.\d+) M", readme)
    assert said, f"the README does not give {name}'s shape and parameters"
    shipped = json.loads((DEFAULT_MODEL / "prior_level_2" / "config.json").read_text())["config"]
    cfg = get_preset(name)
    assert (cfg.width, cfg.depth) == (int(said[1]), int(said[2]))
    labels = dataclasses.replace(cfg.labels, **{k: shipped["labels"][k] for k in ("artist_bins", "genre_bins")})
    lyrics = cfg.lyrics and dataclasses.replace(cfg.lyrics, n_vocab=shipped["lyrics"]["n_vocab"])
    with torch.device("meta"):
        model = build_prior(dataclasses.replace(cfg, l_bins=shipped["l_bins"], labels=labels, lyrics=lyrics))
    assert f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}" == said[3]


@pytest.mark.parametrize("name", OFFICIAL)
def test_every_official_key_maps_onto_our_model(name):
    layout = json.loads((OPENAI / f"{name}_keys.json").read_text())
    with torch.device("meta"):
        model = build_prior(get_preset(name))
        state = {k: torch.empty(shape, dtype=getattr(torch, dtype)) for k, (shape, dtype) in layout.items()}
    converted = convert_prior_state(state, model)
    assert set(converted) == set(model.state_dict())
    state.pop(next(k for k in state if k.endswith("mlp.c_fc.w")))
    state["prior.transformer._attn_mods.0.attn.c_proj.w"] = torch.empty(3, 3, device="meta")
    state["prior.extra"] = torch.empty(1, device="meta")
    with pytest.raises(ConversionError) as info:
        convert_prior_state(state, model)
    msg = str(info.value)
    assert "unexpected keys: ['prior.extra']" in msg and "mlp.fc.weight" in msg and "checkpoint (3, 3)" in msg


def _load_original(checkpoint: str, hparams: str):
    """Our prior holding an original checkpoint's weights: its config from the original's hparams and
    the weights (hop lengths from the tiny VQ-VAE's), its keys through the key table."""
    state = torch.load(OPENAI / checkpoint, map_location="cpu", weights_only=True)["model"]
    vq_state = torch.load(OPENAI / "vqvae.pth.tar", map_location="cpu", weights_only=True)["model"]
    codec = vqvae_config(read_hparams(OPENAI / "vqvae_hparams.json"), vq_state)
    model = build_prior(prior_config(read_hparams(OPENAI / hparams), state, codec)).eval()
    model.load_state_dict(convert_prior_state(state, model), strict=True)
    return model


def _original_upsampler():
    """The original code's tiny level-1 upsampler."""
    return _load_original("upsampler_l1.pth.tar", "upsampler_l1_hparams.json")


def test_upsampler_matches_the_original_conditioning_logits_and_loss():
    model = _original_upsampler()
    ref = {k: torch.from_numpy(v) for k, v in np.load(OPENAI / "upsampler_l1_ref.npz").items()}
    with torch.no_grad():
        cond = model.condition(ref["y"], ref["z_cond"])
        torch.testing.assert_close(cond.start, ref["y_cond"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(cond.x_cond, ref["x_cond"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(model(ref["z"], cond), ref["logits"], atol=1e-4, rtol=1e-4)
        assert model.loss(ref["z"], cond).item() == pytest.approx(float(ref["gen_loss"]), rel=1e-5)


def test_upsampler_greedy_samples_match_the_original_token_for_token():
    model = _original_upsampler()
    ref = {k: torch.from_numpy(v) for k, v in np.load(OPENAI / "upsampler_l1_sample_ref.npz").items()}
    y = torch.from_numpy(np.load(OPENAI / "upsampler_l1_ref.npz")["y"])
    steps = torch.zeros_like(ref["ups1_greedy_step_logits"])
    with torch.no_grad():
        cond = model.condition(y, ref["ups1_z_cond"])
        tokens = sample_window(model, cond, 128, top_k=1, on_logits=lambda t, lg: steps[:, t].copy_(lg))
    assert torch.equal(tokens, ref["ups1_greedy_tokens"])
    torch.testing.assert_close(steps, ref["ups1_greedy_step_logits"], atol=1e-4, rtol=1e-4)


def test_cached_logits_equal_the_full_forward_with_timing():
    torch.manual_seed(0)
    model = build_prior(get_preset("tiny_top")).double().eval()
    sr = model.cfg.sample_rate
    y = torch.tensor([[30 * sr, 5 * sr, model.cfg.sample_length, 3, 7], [20 * sr, 0, model.cfg.sample_length, 1, -1]])
    codes = torch.randint(0, 64, (2, 256))
    with torch.no_grad():
        cond = model.condition(y)
        cond.start, cond.x_cond = cond.start.double(), cond.x_cond.double()
        full = model(codes, cond)
        caches = model.transformer.make_caches(2, dtype=torch.float64)
        prev = torch.nn.functional.pad(codes[:, :-1], (1, 0))
        steps = [model.forward_cached(prev[:, t : t + 37], t, cond, caches) for t in range(0, 256, 37)]
    torch.testing.assert_close(torch.cat(steps, 1), full)


def test_inputs_replace_the_past_fed_in_and_leave_the_targets_the_codes():
    torch.manual_seed(0)
    model = build_prior(get_preset("tiny_top")).double().eval()
    sr = model.cfg.sample_rate
    y = torch.tensor([[30 * sr, 5 * sr, model.cfg.sample_length, 3, 7]] * 2)
    codes = torch.randint(0, 64, (2, 96), generator=torch.Generator().manual_seed(1))
    inputs = codes.clone()
    inputs[:, 40] = (codes[:, 40] + 1) % 64  # position 40's code fed in as another one
    with torch.no_grad():
        cond = model.condition(y)
        cond.start, cond.x_cond = cond.start.double(), cond.x_cond.double()
        plain, same, moved = model(codes, cond), model(codes, cond, inputs=codes), model(codes, cond, inputs=inputs)
        bits = model.losses(codes, cond, inputs=inputs)["gen"]
    torch.testing.assert_close(same, plain)
    torch.testing.assert_close(moved[:, :41], plain[:, :41])  # positions up to 40 never see input 40
    assert (moved[:, 41:] - plain[:, 41:]).abs().amax(-1).min() > 1e-6  # every later position does
    want = F.cross_entropy(moved.reshape(-1, 64), codes.reshape(-1)) / math.log(2)  # scored on the codes
    torch.testing.assert_close(bits, want.float())  # the loss is taken in float32


@pytest.mark.parametrize("timing", [True, False])
def test_labels_at_every_position_add_the_start_embedding_to_every_position(timing):
    base = get_preset("tiny_top")
    cfg = dataclasses.replace(base, labels=dataclasses.replace(base.labels, timing=timing, every_position=False))
    torch.manual_seed(0)
    plain = build_prior(cfg)
    every = build_prior(dataclasses.replace(cfg, labels=dataclasses.replace(cfg.labels, every_position=True)))
    every.load_state_dict(plain.state_dict(), strict=True)  # the option adds no weights
    sr = cfg.sample_rate
    y = torch.tensor([[30 * sr, 5 * sr, cfg.sample_length, 3, 7], [20 * sr, 0, cfg.sample_length, 1, -1]])
    a, b = plain.condition(y), every.condition(y)
    torch.testing.assert_close(b.start, a.start)
    base_x = a.x_cond if timing else torch.zeros(2, cfg.n_ctx, cfg.width)
    torch.testing.assert_close(b.x_cond, base_x + a.start.expand(-1, cfg.n_ctx, -1))
    assert (a.start[0] - a.start[1]).abs().max() > 0  # two different label sets: the test can tell


def test_timing_refuses_a_song_shorter_than_the_minimum():
    model = build_prior(get_preset("tiny_top"))
    y = torch.tensor([[100, 0, 100, 0, 0]])
    with pytest.raises(ValueError, match="below this model's minimum"):
        model.condition(y)


def test_load_prior_maps_the_file_and_equals_the_saved_model(tmp_path):
    from openjukebox.checkpoint import load_prior, save_model

    torch.manual_seed(3)
    saved = build_prior(get_preset("tiny_upsampler_1")).eval()
    save_model(tmp_path, saved, "prior", saved.cfg.to_dict())
    loaded, vocab, _ = load_prior(tmp_path)
    assert vocab is None and not any(p.is_meta for p in loaded.parameters())
    z, above = torch.randint(0, 64, (2, 256)), torch.randint(0, 64, (2, 64))
    with torch.no_grad():
        torch.testing.assert_close(loaded(z, loaded.condition(None, above)), saved(z, saved.condition(None, above)))


def _original_single_prior():
    """The original code's tiny 1b_lyrics-style prior (lyrics and codes in one sequence)."""
    return _load_original("prior_top_single.pth.tar", "prior_top_single_hparams.json")


def test_single_lyrics_prior_matches_the_original_logits_losses_and_alignment():
    model = _original_single_prior()
    ref = {k: torch.from_numpy(v) for k, v in np.load(OPENAI / "prior_top_single_ref.npz").items()}
    with torch.no_grad():
        cond = model.condition(ref["y"])
        torch.testing.assert_close(cond.start, ref["y_cond"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(cond.x_cond, ref["x_cond"], atol=1e-4, rtol=1e-4)
        assert torch.equal(cond.lyrics, ref["prime"])
        lyric_logits, logits = model(ref["z"], cond, with_lyrics=True)
        torch.testing.assert_close(torch.cat([lyric_logits, logits], 1), ref["logits"], atol=1e-4, rtol=1e-4)
        losses = model.losses(ref["z"], cond)
    for ours, theirs in (("total", "loss"), ("gen", "gen_loss"), ("lyrics", "prime_loss")):
        assert losses[ours].item() == pytest.approx(float(ref[theirs]), rel=1e-5), ours
    attention = model.lyric_attention(ref["z"], cond, layer=15)
    torch.testing.assert_close(attention, ref["attn_alignment_layer"], atol=1e-4, rtol=1e-4)
    assert model.lyric_layers() == [15]


def test_single_lyrics_prior_greedy_samples_match_the_original_token_for_token():
    model = _original_single_prior()
    ref = {k: torch.from_numpy(v) for k, v in np.load(OPENAI / "prior_top_single_sample_ref.npz").items()}
    y = torch.from_numpy(np.load(OPENAI / "prior_top_single_ref.npz")["y"])
    steps = torch.zeros(2, 128, 335)
    with torch.no_grad():
        cond = model.condition(y)
        tokens = sample_window(model, cond, 128, top_k=1, on_logits=lambda t, lg: steps[:, t].copy_(lg))
        primed = sample_window(model, cond, 128, prompt=ref["single_primed_prompt"], top_k=1)
    # the second song draws lyric ids at code positions: fed back as drawn, output as code 0
    assert torch.equal(tokens, ref["single_greedy_tokens"]) and (tokens[1] == 0).any()
    torch.testing.assert_close(steps, ref["single_greedy_step_logits"][:, 32:], atol=1e-4, rtol=1e-4)
    assert torch.equal(primed, ref["single_primed_tokens"])


@pytest.mark.parametrize("preset", ["tiny_top_lyrics", "tiny_top_single"])
def test_lyrics_priors_incremental_decode_equals_the_full_forward(preset):
    torch.manual_seed(0)
    model = build_prior(get_preset(preset)).double().eval()
    for p in model.parameters():  # the original's zero-initialised cross-attention output would hide bugs
        p.data.normal_(0, 0.1) if p.dim() > 1 else None
    cfg = model.cfg
    sr = cfg.sample_rate
    lyrics = torch.randint(1, cfg.lyrics.n_vocab, (2, cfg.lyrics.n_tokens))
    y = torch.tensor([[30 * sr, 5 * sr, cfg.sample_length, 3, 7], [20 * sr, 0, cfg.sample_length, 1, -1]])
    codes = torch.randint(0, cfg.l_bins, (2, cfg.n_ctx))
    with torch.no_grad():
        cond = model.condition(torch.cat([y, lyrics], 1))
        full = model(codes, cond)
        other = model(codes, model.condition(torch.cat([y, lyrics.flip(1)], 1)))
        assert (full - other).abs().max() > 1e-3  # the lyrics matter
        caches = model.make_caches(cond)
        if not model.single:  # the encoder's keys/values are computed once, when the caches are made
            cross = [c for c, layer in zip(caches, model.transformer.layers, strict=True) if layer.attn.kind == 6]
            assert cross and all(c.k.abs().sum() > 0 for c in cross)
        prev = torch.nn.functional.pad(codes[:, :-1], (1, 0))
        steps = [model.forward_cached(prev[:, t : t + 29], t, cond, caches) for t in range(0, cfg.n_ctx, 29)]
    torch.testing.assert_close(torch.cat(steps, 1), full)
    with pytest.raises(ValueError, match="lyric tokens"):
        model.condition(y)


def test_separate_lyrics_prior_trains_its_lyric_prediction():
    torch.manual_seed(0)
    model = build_prior(get_preset("tiny_top_lyrics"))
    cfg = model.cfg
    y = torch.tensor([[30 * cfg.sample_rate, 0, cfg.sample_length, 1, 2]] * 2)
    lyrics = torch.randint(1, cfg.lyrics.n_vocab, (2, cfg.lyrics.n_tokens))
    losses = model.losses(torch.randint(0, cfg.l_bins, (2, cfg.n_ctx)), model.condition(torch.cat([y, lyrics], 1)))
    n_tok, n_ctx = cfg.lyrics.n_tokens, cfg.n_ctx
    expected = 0.4 * losses["lyrics"] * n_tok / (n_tok + n_ctx) + losses["gen"] * n_ctx / (n_tok + n_ctx)
    assert losses["total"].item() == pytest.approx(expected.item())
    losses["total"].backward()
    assert model.lyric_encoder.x_emb.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("preset", ["tiny_top_lyrics", "tiny_top_single"])
def test_the_alignment_loss_is_the_heads_bits_for_the_sung_character_and_trains_that_head(preset):
    torch.manual_seed(0)
    cfg = get_preset(preset)
    layer = [i for i, k in enumerate(build_prior(cfg).transformer.kinds) if k in (6, 7)][-1]
    cfg = dataclasses.replace(cfg, lyrics=dataclasses.replace(cfg.lyrics, alignment_layer=layer, alignment_head=1))
    model = build_prior(cfg)
    for p in model.parameters():  # away from the zero-initialised projections
        p.data.normal_(0, 0.05) if p.dim() > 1 else None
    sr, n_ctx, n_tok = cfg.sample_rate, cfg.n_ctx, cfg.lyrics.n_tokens
    y = torch.tensor([[30 * sr, 0, cfg.sample_length, 1, 2]] * 2)
    cond = model.condition(torch.cat([y, torch.randint(1, cfg.lyrics.n_vocab, (2, n_tok))], 1))
    codes = torch.randint(0, cfg.l_bins, (2, n_ctx))
    target = (torch.arange(n_ctx) * n_tok // n_ctx).repeat(2, 1)  # a diagonal: the letters sung in turn
    target[0, : n_ctx // 2] = -1  # codes where nothing is sung
    losses = model.losses(codes, cond, target)
    weights = model.lyric_attention(codes, cond, layer)[:, 1]  # (2, n_ctx, n_tok)
    known = target >= 0
    picked = weights.gather(-1, target.clamp_min(0)[..., None])[..., 0][known]
    assert losses["align"].item() == pytest.approx(-picked.log2().mean().item(), rel=1e-4)
    hits = (weights.argmax(-1) == target)[known].float().mean()
    assert losses["align_accuracy"].item() == pytest.approx(hits.item())
    assert losses["align_codes"].item() == known.sum().item() == 3 * n_ctx // 2
    assert losses["total"].item() == pytest.approx(model.losses(codes, cond)["total"].item())  # not in the total
    # a few steps on the alignment loss alone teach the head those targets
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(20):
        opt.zero_grad()
        model.losses(codes, model.condition(torch.cat([y, cond.lyrics], 1)), target)["align"].backward()
        opt.step()
    after = model.losses(codes, model.condition(torch.cat([y, cond.lyrics], 1)), target)
    assert after["align"].item() < losses["align"].item() - 1.0
