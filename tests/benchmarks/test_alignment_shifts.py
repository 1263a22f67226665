"""benchmarks/alignment_shifts.py: every candidate of the shifted-windows rule from one pass of
summed shift groups, on the shipped top prior and a sung song with exact character times."""

import json

import numpy as np
import pytest

from openjukebox.api import encode
from openjukebox.audio.sung_letters import write_sung_letters
from openjukebox.checkpoint import load_prior
from openjukebox.lyrics.timed import read_lyrics
from openjukebox.lyrics.tokenizer import Tokenizer
from openjukebox.models import DEFAULT_MODEL
from openjukebox.prior.vocab import LabelVocab
from openjukebox.sampling.alignment import timing_errors

from .scripts import load_benchmark


@pytest.fixture(scope="module")
def shifts():
    return load_benchmark("alignment_shifts")


def test_the_candidates_are_the_packages_alignment_with_those_shifts(shifts, tmp_path):
    manifest = write_sung_letters(tmp_path, 22050, n_songs=1, seconds=24.0)  # more characters than a window holds
    entry = json.loads(manifest.read_text().splitlines()[0]) | {"artist": None, "genre": "sung chorale"}
    path = str(manifest.parent / entry["path"])
    prior, _, doc = load_prior(DEFAULT_MODEL / "prior_level_2")
    tokenizer, vocab = Tokenizer.from_dict(doc["vocab"]["lyrics"]), LabelVocab.from_dict(doc["vocab"])
    vqvae = DEFAULT_MODEL / "vqvae"
    out = shifts.song_errors(prior, tokenizer, vocab, path, entry, vqvae, timed_range=2)
    candidates = {(r, s) for r in (0, *shifts.RANGES) for s in shifts.SPREADS}
    assert set(out) == candidates | {"linear", "timed"}
    song = read_lyrics(entry, path, tokenizer)
    codes = encode(path, vqvae, levels=[2]).codes[2]
    genres = tuple(g for g in vocab.genre_ids("sung chorale", 1) if g >= 0)
    assert genres  # the labels the benchmark gives the song, which the model knows
    args = (prior, tokenizer, codes, song, vocab.artist_id(None), genres)
    today, linear = timing_errors(*args, spreads=(0.0, 1.0))
    np.testing.assert_array_equal(out[(0, 0.0)], today[0.0])  # the shift-0 group is today's alignment
    np.testing.assert_array_equal(out[(0, 1.0)], today[1.0])
    np.testing.assert_allclose(out["linear"], linear)
    two = tuple(float(s) for s in range(-2, 3))  # the groups summed ({0}, then +-1..2) are the mean over them
    np.testing.assert_allclose(out[(2, 0.0)], timing_errors(*args, spreads=(0.0,), shifts=two)[0][0.0], atol=0.03)
    timed = timing_errors(*args, windows_from_times=True, spreads=(0.0,), shifts=two)[0][0.0]
    np.testing.assert_allclose(out["timed"], timed, atol=0.03)
    assert len(song.tokens) > prior.cfg.lyrics.n_tokens  # so that a shift moves the lyric window
    assert not np.array_equal(out[(8, 0.0)], out[(0, 0.0)])  # and the path


def test_the_paired_interval_brackets_the_difference_of_medians():
    blend = load_benchmark("alignment_blend")
    a = [np.array([0.1, -0.2]), np.array([0.3]), np.array([-0.1, 0.2])]
    worse = [x * 3 for x in a]
    assert blend.paired_interval(a, a) == [0.0, 0.0]
    low, high = blend.paired_interval(a, worse)
    assert low < 0 and high < 0  # every resampling of the songs: a is better
    assert low <= blend.median_abs(a) - blend.median_abs(worse) <= high
