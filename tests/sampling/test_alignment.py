from types import SimpleNamespace

import numpy as np
import pytest
import torch

from openjukebox.lyrics.timed import SongLyrics
from openjukebox.sampling import alignment


def test_timing_errors_choose_windows_as_sampling_from_plain_text_does(monkeypatch):
    """The true character times score the alignment; they never choose the windows' characters,
    unless asked (as when a user gives timed lyrics)."""
    seen = []

    def align(prior, codes, y, lyrics, tokenizer, hop_fraction, spread, shifts):
        seen.append(lyrics[0])
        assert spread == 0.0  # the attention's matrix; each spread is applied to it after
        assert shifts == alignment.ALIGN_SHIFTS
        return [(SimpleNamespace(text="abc", times=[0.0, 1.0, 2.0]), None)], {"frame_seconds": 0.02}

    monkeypatch.setattr(alignment, "align_songs", align)
    cfg = SimpleNamespace(
        hop_length=128,
        sample_rate=22050,
        sample_length=128 * 64,
        labels=SimpleNamespace(max_bow_genre_size=1),
        lyrics=SimpleNamespace(n_tokens=2),
    )
    song = SongLyrics((3, 4, 5), times=(0.5, 1.0, 4.0))
    codes = torch.zeros(1, 640, dtype=torch.long)  # 640 codes x 128 / 22050 = 3.7 s
    errors, linear = alignment.timing_errors(SimpleNamespace(cfg=cfg), None, codes, song, spreads=(0.0,))
    assert seen[-1] == SongLyrics((3, 4, 5)) and seen[-1].times is None
    np.testing.assert_allclose(errors[0.0], [-0.5, 0.0, -2.0])  # aligned minus true: signed
    np.testing.assert_allclose(linear, np.arange(3) / 3 * 640 * 128 / 22050 - [0.5, 1.0, 4.0])
    alignment.timing_errors(SimpleNamespace(cfg=cfg), None, codes, song, windows_from_times=True)
    assert seen[-1] is song


def test_the_alignment_prior_is_centred_where_the_windows_put_each_character(monkeypatch):
    """align_songs: with attention that says nothing, a song's characters start where the linear
    rule (plain text) or the given times (timed lyrics) put them, counted from the codes' offset."""
    lyrics = SimpleNamespace(n_tokens=4, alignment_layer=0, alignment_head=0)
    cfg = SimpleNamespace(n_ctx=64, hop_length=441, sample_rate=22050, lyrics=lyrics)  # a code: one 20 ms frame

    def attention(prior, codes, y, lyrics, window, layers, shift):
        n = window.end - window.start
        return {0: np.full((len(lyrics), 1, n, 4), 0.25, dtype=np.float32)}, [[0, 1, 2, 3]] * len(lyrics)

    monkeypatch.setattr(alignment, "_window_attention", attention)
    tokenizer = SimpleNamespace(decode=lambda tokens: "abcd")
    codes = torch.zeros(2, 100, dtype=torch.long)  # 2 s of codes
    seconds = 100 * 441
    y = torch.tensor([[seconds, 0], [2 * seconds, seconds]])  # the second: the last 2 s of a 4 s song
    songs = [SongLyrics((1, 2, 3, 4)), SongLyrics((1, 2, 3, 4), times=(2.0, 2.5, 3.0, 3.5))]
    results, used = alignment.align_songs(SimpleNamespace(cfg=cfg), codes, y, songs, tokenizer, 0.5, spread=0.1)
    assert used["spread"] == 0.1 and used["frame_seconds"] == 0.02
    assert results[0][0].times == (0.0, 0.5, 1.0, 1.5)
    assert results[1][0].times == (0.0, 0.5, 1.0, 1.5)  # given times 2.0..3.5 s, from the offset at 2 s


def test_a_bad_spread_is_refused_before_any_window_runs():
    for bad in (-0.5, float("nan")):
        with pytest.raises(ValueError, match="spread must be 0 or more seconds"):
            alignment.align_songs(SimpleNamespace(), torch.zeros(1, 8), torch.zeros(1, 4), [], None, 0.5, spread=bad)


def test_shifted_lyric_windows_free_the_path_from_a_head_that_follows_the_window_centre(monkeypatch):
    """A head that gives 0.7 of its weight to its window's middle character and 0.3 to the one sung
    (when the window holds it): from one window placement its path follows where the linear rule
    puts the characters; averaged over shifted placements the middle's weight is spread over
    several characters and the sung one's adds up, so the path follows the singing."""
    n_tokens, n_chars, codes_per_second = 8, 40, 50
    lyrics_cfg = SimpleNamespace(n_tokens=n_tokens, alignment_layer=0, alignment_head=0)
    cfg = SimpleNamespace(n_ctx=200, hop_length=441, sample_rate=22050, sample_length=200 * 441, lyrics=lyrics_cfg)
    times = tuple(i + 3.0 * np.sin(np.pi * i / 20) for i in range(n_chars))  # up to 3 s from the linear rule
    song = SongLyrics(tuple(range(1, n_chars + 1)), times=times)
    total = 40 * codes_per_second * cfg.hop_length  # 40 s

    def attention(prior, codes, y, lyrics, window, layers, shift):
        _, idx = lyrics[0].window(n_tokens, total, window.start * cfg.hop_length, cfg.sample_length, 22050, shift)
        n = window.end - window.start
        seconds = (window.start + np.arange(n)) / codes_per_second
        sung = song.sung_at(seconds)
        weights = np.full((1, 1, n, n_tokens), 1e-3, dtype=np.float32)
        weights[0, 0, :, n_tokens // 2] += 0.7
        for k, i in enumerate(idx):
            weights[0, 0, sung == i, k] += 0.3
        return {0: weights}, [idx]

    monkeypatch.setattr(alignment, "_window_attention", attention)
    tokenizer = SimpleNamespace(decode=lambda tokens: "x" * len(tokens))
    codes = torch.zeros(1, 40 * codes_per_second, dtype=torch.long)
    y = torch.tensor([[total, 0]])
    plain = [SongLyrics(song.tokens)]
    errors = {}
    for shifts in ((0.0,), (-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0)):
        [(aligned, _)], used = alignment.align_songs(
            SimpleNamespace(cfg=cfg), codes, y, plain, tokenizer, 0.5, spread=0.0, shifts=shifts
        )
        assert used["shifts"] == list(shifts)
        errors[len(shifts)] = np.median(np.abs(np.array(aligned.times) - times))
    linear = np.median(np.abs(np.arange(n_chars) - np.array(times)))  # the linear rule: a character a second
    assert errors[1] >= 0.5 * linear  # one placement: the path stays with the windows' centres
    assert errors[9] <= 0.1 * linear  # shifted placements: it follows the singing


def test_shifts_must_be_given_and_finite():
    for bad in ((), (0.0, float("nan")), (float("inf"),), 2.0, ("a",)):
        with pytest.raises(ValueError, match="finite lyric-window shifts"):
            alignment.align_songs(SimpleNamespace(), torch.zeros(1, 8), torch.zeros(1, 4), [], None, 0.5, shifts=bad)
