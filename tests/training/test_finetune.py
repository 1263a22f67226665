"""Fine-tuning the shipped model: vocabulary extension, the three modes, LoRA adapters, resume."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from openjukebox.adapters import apply_adapter, read_adapter
from openjukebox.checkpoint import load_prior
from openjukebox.errors import UserError
from openjukebox.models import DEFAULT_MODEL
from openjukebox.prior.extend import grow_labels
from openjukebox.prior.model import Conditioning
from openjukebox.prior.vocab import OfficialVocab
from openjukebox.sampling.bundle import Bundle
from openjukebox.training.finetune import FinetuneSpec, train_config
from openjukebox.training.prior import train_prior

BASE = DEFAULT_MODEL / "prior_level_2"
_VOCAB = load_prior(BASE)[1]
OLD = list(_VOCAB.artists.names)  # the shipped model's artists, "unknown" first
A, G = len(OLD), len(_VOCAB.genres.names)  # the rows a new artist and a new genre get
HAYDN, PIANO = _VOCAB.artist_id("Joseph Haydn"), _VOCAB.genre_ids("piano", 1)[0]


@pytest.fixture(scope="module")
def new_artist(tmp_path_factory):
    """Four 6-second pieces: three by an artist the shipped model never heard of, one by Bach."""
    root = tmp_path_factory.mktemp("finetune_data")
    lines = []
    for i, f in enumerate((196, 262, 330, 392)):
        t = np.arange(22050 * 6) / 22050
        audio = 0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
        sf.write(root / f"t{i}.wav", audio.astype(np.float32), 22050)
        artist = "Claude Debussy" if i < 3 else "Johann Sebastian Bach"
        lines.append(json.dumps({"path": f"t{i}.wav", "artist": artist, "genre": "harp" if i < 3 else "organ"}))
    (root / "m.jsonl").write_text("\n".join(lines) + "\n")
    return root / "m.jsonl"


@pytest.fixture(scope="module")
def lora_run(new_artist, tmp_path_factory):
    """A 3-step LoRA fine-tune of the shipped model on ``new_artist``: its adapter folder."""
    out = tmp_path_factory.mktemp("lora") / "run"
    _finetune(new_artist, out, "lora", 3)
    return out


def _finetune(data, out, mode, steps, resume=False, **kw):
    spec = None if resume else FinetuneSpec(str(DEFAULT_MODEL), mode, lora_rank=4, lora_alpha=8)
    tc = dataclasses.replace(train_config(FinetuneSpec(str(DEFAULT_MODEL), mode), None), **kw)
    tc = dataclasses.replace(tc, steps=steps, batch_size=2, eval_every=1000, log_every=1, save_every=1000)
    vq = DEFAULT_MODEL / "vqvae"
    return train_prior(data, out, None, vq, None, tc, resume=resume, progress=False, finetune=spec)


def _logits(prior, y, seed=0):
    torch.manual_seed(seed)
    codes = torch.randint(0, prior.cfg.l_bins, (y.shape[0], prior.cfg.n_ctx))
    cond = prior.condition(y)
    with torch.no_grad():
        return prior(codes, Conditioning(cond.start, cond.x_cond, cond.lyrics, cond.encoder)).float()


def _rows(prior, artist: int, genre: int) -> torch.Tensor:
    lc = prior.cfg
    return torch.tensor([[lc.sample_length * 4, 0, lc.sample_length, artist, genre] + [0] * lc.lyrics.n_tokens])


def test_new_names_are_appended_and_old_rows_and_logits_stay():
    prior, vocab, _ = load_prior(BASE)
    grown = vocab.extend([{"artist": "Claude Debussy", "genre": "harp"}, {"artist": "Joseph Haydn"}])
    assert grown.artists.names == (*OLD, "claude_debussy") and grown.genres.names[-1] == "harp"
    assert all(grown.artist_id(n) == vocab.artist_id(n) for n in OLD[1:])
    big = grow_labels(prior.float(), A + 1, G + 1, "mean")
    old_a, new_a = prior.labels.artist_emb.weight, big.labels.artist_emb.weight
    assert torch.equal(new_a[:A], old_a) and torch.equal(big.labels.genre_emb.weight[:G], prior.labels.genre_emb.weight)
    assert torch.allclose(new_a[A], old_a[1:].mean(0))
    assert torch.equal(grow_labels(prior, A + 1, G, "unknown").labels.artist_emb.weight[A], old_a[0])
    y = _rows(prior, HAYDN, PIANO)  # an old artist and genre: the same logits from the grown model
    assert torch.equal(_logits(prior.float(), y), _logits(big, y))


def test_official_ids_grow_after_the_models_rows():
    v = OfficialVocab("v2", {"unknown": 0, "bach": 7}, {"unknown": 0, "classical": 3})
    grown = v.extend([{"artist": "Bach", "genre": "classical"}, {"artist": "Debussy", "genre": "harp pop"}], 10, 5)
    assert grown.artists == {"unknown": 0, "bach": 7, "debussy": 10}
    assert grown.genres == {"unknown": 0, "classical": 3, "harp": 5, "pop": 6} and grown.sizes == (11, 7)


def test_lora_adapter_learns_a_new_artist_and_the_bundle_samples_old_and_new_names(lora_run):
    doc = read_adapter(lora_run)
    assert doc["new_artists"] == ["claude_debussy"] and doc["new_genres"] == ["harp"]
    assert doc["vocab"]["artists"] == [*OLD, "claude_debussy"] and doc["label_dropout"] == 0.2
    weights = load_file(lora_run / "adapter_model.safetensors")
    assert any("lora_B" in k for k in weights) and all(k.count("lora_") or "labels" in k for k in weights)
    base, _, _ = load_prior(BASE)
    merged = apply_adapter(base, lora_run)
    wrapped = apply_adapter(load_prior(BASE)[0], lora_run, merge=False)
    assert any(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k)  # it trained
    for y in (_rows(base, A, G), _rows(base, HAYDN, PIANO)):  # new and old names
        # float32 rounding only: merged weights sum in another order (the shipped W 256 prior: at most
        # 1.4e-4 on logits up to 21, mean 1e-6); a wrong merge would be off by the adapter's effect
        assert torch.allclose(_logits(merged, y), _logits(wrapped, y), atol=5e-4)
    old = _rows(base, HAYDN, PIANO)
    assert not torch.allclose(_logits(merged, old), _logits(base.float(), old))
    bundle = Bundle(DEFAULT_MODEL, lora_run)
    bundle.check()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = bundle.labels(1, "Claude Debussy", "harp")
    assert rows[2][0, 3:5].tolist() == [A, G] and rows[1][0, 3:5].tolist() == [0, -1]  # upsamplers: unknown
    said = sorted(str(w.message)[:42] for w in caught)
    assert said == [f"level {lv} does not know the artist and genre" for lv in (0, 1)]
    assert bundle.labels(1, "Joseph Haydn", "piano")[2][0, 3:5].tolist() == [HAYDN, PIANO]
    with pytest.raises(UserError, match="unknown artist 'Claude Debussy'"):
        Bundle(DEFAULT_MODEL).labels(1, "Claude Debussy", None)
    assert torch.equal(bundle.load_prior(2).x_emb.weight, merged.x_emb.weight)


def test_an_adapter_for_another_prior_is_refused(lora_run, bundle):
    with pytest.raises(UserError, match="--adapter .* was made for another prior"):
        Bundle(bundle, lora_run)


def test_frozen_keeps_the_transformer_and_full_changes_it(new_artist, tmp_path):
    base = load_file(BASE / "model.safetensors")
    for mode in ("frozen", "full"):
        _finetune(new_artist, tmp_path / mode, mode, 1, lr=1e-3)
        tuned = load_file(tmp_path / mode / "model.safetensors")
        blocks = [k for k in base if k.startswith("transformer.")]
        same = [torch.equal(base[k], tuned[k]) for k in blocks]
        assert all(same) if mode == "frozen" else not any(same)
        assert not torch.equal(base["x_emb.weight"], tuned["x_emb.weight"])
        assert torch.equal(
            base["lyric_encoder.transformer.layers.0.mlp.fc.weight"],
            tuned["lyric_encoder.transformer.layers.0.mlp.fc.weight"],
        ) == (mode == "frozen")
        prior, vocab, doc = load_prior(tmp_path / mode)
        assert vocab.artists.names[-1] == "claude_debussy" and doc["finetuned_from"]["mode"] == mode


def test_a_resumed_lora_fine_tune_is_the_unbroken_one(new_artist, lora_run, tmp_path):
    _finetune(new_artist, tmp_path / "b", "lora", 2)
    _finetune(new_artist, tmp_path / "b", "lora", 3, resume=True)
    a = load_file(lora_run / "adapter_model.safetensors")
    b = load_file(tmp_path / "b" / "adapter_model.safetensors")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_compose_takes_the_adapter_and_its_new_artist(lora_run, tmp_path, capsys):
    from openjukebox.cli.main import main
    from openjukebox.codes import CodesFile
    from openjukebox.compose import compose

    meta = compose(
        DEFAULT_MODEL, tmp_path / "c", 1.0, 1.0, lambda files: 0, "Claude Debussy", "harp", 2, 3, adapter=lora_run
    )
    final = CodesFile.load(tmp_path / "c" / "final" / "codes.codes")
    assert meta["adapter"] == str(lora_run.resolve()) and meta["mode"] == "upsample"
    assert final.extra["sampling"]["labels"]["2"][0][3:5] == [A, G]  # the adapter's ids of the new names
    with pytest.raises(UserError, match="unknown artist 'Claude Debussy'"):  # without it the name is unknown
        compose(DEFAULT_MODEL, tmp_path / "d", 1.0, 1.0, lambda files: 0, "Claude Debussy", candidates=2)
    args = ["compose", "--model", str(DEFAULT_MODEL), "--adapter", str(tmp_path), "--seconds", "1", "--out", "x"]
    assert main(args) == 2  # not an adapter folder: a one-line error
    assert f"{tmp_path} is not an adapter folder" in capsys.readouterr().err
