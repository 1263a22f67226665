import dataclasses
import json
import math

import numpy as np
import pytest

from openjukebox.api import encode
from openjukebox.audio.sung_letters import write_sung_letters
from openjukebox.checkpoint import load_prior
from openjukebox.lyrics.timed import read_lyrics
from openjukebox.lyrics.tokenizer import Tokenizer
from openjukebox.prior.config import get_preset
from openjukebox.sampling.alignment import ALIGN_SPREAD, timing_errors
from openjukebox.training.metrics import read_csv
from openjukebox.training.prior import TRAIN_PRESETS, train_prior


@pytest.fixture(scope="module")
def sung_manifest(tmp_path_factory):
    return write_sung_letters(tmp_path_factory.mktemp("sung"), 22050, n_songs=5, seconds=6.0)


def test_sung_letters_carry_exact_character_times(sung_manifest):
    entries = [json.loads(line) for line in sung_manifest.read_text().splitlines()]
    timed = entries[0]["lyrics"]
    assert timed[0]["time"] == 0.0 and all(a["time"] < b["time"] for a, b in zip(timed, timed[1:], strict=False))
    assert {len(e["text"]) for e in timed} == {1} and len(entries) == 5


@pytest.mark.parametrize("preset", ["tiny_top_lyrics", "tiny_top_single"])
def test_lyrics_prior_trains_on_timed_lyrics_and_picks_its_alignment_head(
    sung_manifest, trained_vqvae, tmp_path, preset
):
    vqvae, _ = trained_vqvae
    tc = dataclasses.replace(TRAIN_PRESETS["tiny_top"], steps=60, eval_every=60, save_every=60)
    final = train_prior(sung_manifest, tmp_path / "top", 2, vqvae, get_preset(preset), tc, progress=False)
    prior, vocab, doc = load_prior(tmp_path / "top")
    chars = doc["vocab"]["lyrics"]["chars"]
    assert chars == " adeiklmnorsu" and prior.cfg.lyrics.n_vocab == len(chars) + 1
    # the lyric prediction learns: from about log2(14) = 3.8 bits towards the letters' own statistics
    assert final["lyrics_bits_per_token"] < math.log2(len(chars) + 1) - 0.5
    assert prior.cfg.lyrics.alignment_layer in prior.lyric_layers()
    assert 0 <= prior.cfg.lyrics.alignment_head < prior.cfg.heads
    # the exported alignment of a song with known times, against the truth and the linear rule
    entry = json.loads(sung_manifest.read_text().splitlines()[0])
    path = sung_manifest.parent / entry["path"]
    tokenizer = Tokenizer.from_dict(doc["vocab"]["lyrics"])
    song = read_lyrics(entry, path, tokenizer)
    codes = encode(path, vqvae, levels=[2]).codes[2]
    spreads = (ALIGN_SPREAD, 0.0)  # each width scored from the same pass, whatever their order
    by_spread, linear = timing_errors(prior, tokenizer, codes, song, artist=1, genres=(1,), spreads=spreads)
    errors = np.abs(by_spread[0.0])
    assert not np.array_equal(by_spread[ALIGN_SPREAD], errors)  # the prior around the linear rule moves the path
    seconds = codes.shape[1] * prior.cfg.hop_length / 22050
    assert errors.shape == linear.shape == (len(song.tokens),)
    assert 0 <= errors.min() and errors.max() <= seconds
    assert linear[0] == 0.0  # the first letter is sung at 0 s, where the linear rule puts it
    truth = np.array(song.times)
    np.testing.assert_allclose(linear, np.arange(len(truth)) / len(truth) * seconds - truth)
    # the windows' characters are chosen as sampling chooses them from plain text: the true times
    # only score the result (shifted past the song's end, the alignment itself does not move)
    late, later = (dataclasses.replace(song, times=tuple(t + s for t in song.times)) for s in (100.0, 200.0))
    e_late = timing_errors(prior, tokenizer, codes, late, artist=1, genres=(1,), spreads=spreads)[0]
    e_later = timing_errors(prior, tokenizer, codes, later, artist=1, genres=(1,), spreads=spreads)[0]
    for spread in spreads:  # neither the windows nor the prior's centres come from the true times
        np.testing.assert_allclose(
            np.array(late.times) + e_late[spread], np.array(later.times) + e_later[spread], atol=1e-6
        )
        aligned = np.array(late.times) + e_late[spread]
        np.testing.assert_allclose(aligned - truth, by_spread[spread], atol=1e-6)  # the song's alignment


def test_the_alignment_loss_teaches_its_head_the_sung_characters(sung_manifest, trained_vqvae, tmp_path):
    vqvae, _ = trained_vqvae
    base = dataclasses.replace(TRAIN_PRESETS["tiny_top"], steps=80, eval_every=40, save_every=80)
    tc = dataclasses.replace(base, align_weight=1.0, lyric_jitter=0.5, timed_share=1.0)
    train_prior(sung_manifest, tmp_path / "top", 2, vqvae, get_preset("tiny_top_lyrics"), tc, progress=False)
    val = read_csv(tmp_path / "top" / "val.csv")
    bits = [float(row["align_bits"]) for row in val]
    assert all(0 <= float(row["align_accuracy"]) <= 1 for row in val)
    # the supervised head is the last cross-attention layer's first, and the model exports it
    prior, _, _ = load_prior(tmp_path / "top")
    assert (prior.cfg.lyrics.alignment_layer, prior.cfg.lyrics.alignment_head) == (prior.lyric_layers()[-1], 0)
    # it starts about as far from the sung letter as a uniform guess among 64 (6 bits), and learns
    assert bits[0] > math.log2(32) and bits[-1] < bits[0] - 1.0
