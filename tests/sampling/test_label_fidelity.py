"""Label rows and start embeddings as the original makes them, checked with values."""

import torch

from openjukebox.lyrics.timed import SongLyrics
from openjukebox.prior.config import get_preset
from openjukebox.prior.model import build_prior
from openjukebox.prior.vocab import OfficialVocab
from openjukebox.sampling.engine import LevelSettings, sample_level, window_labels


def _top():
    torch.manual_seed(0)
    return build_prior(get_preset("tiny_top")).eval()


def test_a_window_of_a_song_starting_at_10_s_is_timed_from_10_s():
    cfg = get_preset("tiny_top")
    sr, hop = cfg.sample_rate, cfg.hop_length
    y = torch.tensor([[60 * sr, 10 * sr, 12345, 1, 2, -1, -1]])[:, : 4 + cfg.labels.max_bow_genre_size]
    row, _ = window_labels(y, 40, cfg)
    # the original's get_y: y[:, 2] = sample_length; y[:, 1] += start * raw_to_tokens
    assert row[0, :4].tolist() == [60 * sr, 10 * sr + 40 * hop, cfg.sample_length, 1]
    assert torch.equal(y[0, 1], torch.tensor(10 * sr))  # the caller's row is not changed


def test_lyric_windows_follow_the_song_offset():
    cfg = get_preset("tiny_top_single")
    n, sr = cfg.lyrics.n_tokens, cfg.sample_rate
    song = SongLyrics(tuple(range(1, 4 * n + 1)))  # 4 windows' worth of characters over 60 s
    width = 4 + cfg.labels.max_bow_genre_size
    y = torch.zeros(1, width + n, dtype=torch.long)
    y[0, :3] = torch.tensor([60 * sr, 30 * sr, 0])
    row, indices = window_labels(y, 0, cfg, [song])
    tokens, expected = song.window(n, 60 * sr, 30 * sr, cfg.sample_length, sr)  # the half-way window
    assert row[0, -n:].tolist() == tokens and indices[0] == expected and expected[0] > n
    at_zero, _ = window_labels(y.index_fill(1, torch.tensor([1]), 0), 0, cfg, [song])
    assert at_zero[0, -n:].tolist() != tokens


def test_a_shift_moves_the_lyric_window_by_that_many_seconds_of_the_song():
    cfg = get_preset("tiny_top_single")
    n, sr = cfg.lyrics.n_tokens, cfg.sample_rate
    song = SongLyrics(tuple(range(1, 4 * n + 1)))  # 4n characters over 60 s: n / 15 characters a second
    y = torch.zeros(1, 4 + cfg.labels.max_bow_genre_size + n, dtype=torch.long)
    y[0, :3] = torch.tensor([60 * sr, 30 * sr, 0])
    _, centred = window_labels(y, 0, cfg, [song])
    for shift in (-6.0, 3.0):
        row, indices = window_labels(y, 0, cfg, [song], shift)
        tokens, expected = song.window(n, 60 * sr, 30 * sr, cfg.sample_length, sr, shift)
        assert row[0, -n:].tolist() == tokens and indices[0] == expected
        assert abs(indices[0][0] - centred[0][0] - shift * n / 15) < 1  # the linear rule: n / 15 characters a second


def test_sample_level_takes_label_rows_with_an_offset_as_they_are():
    prior = _top()
    seen = []
    condition = prior.condition

    def record(y=None, above=None, batch=None):
        seen.append(y.clone())
        return condition(y, above, batch=batch)

    prior.condition = record
    cfg, sr = prior.cfg, prior.cfg.sample_rate
    slots = cfg.labels.max_bow_genre_size
    y = torch.tensor([[30 * sr, 10 * sr, cfg.sample_length, 1] + [1] + [-1] * (slots - 1)])
    total = cfg.n_ctx + cfg.n_ctx // 2
    settings = LevelSettings(hop_fraction=0.5)
    sample_level(prior, 1, total, y, None, settings, seed=0)
    starts = [int(s[0, 1]) for s in seen]
    assert starts == [10 * sr, 10 * sr + (cfg.n_ctx // 2) * cfg.hop_length]


def test_the_empty_genre_name_is_id_0_as_in_the_original():
    for version in ("v2", "v3"):
        vocab = OfficialVocab(version, {"unknown": 0}, {"unknown": 0, "rock": 8})
        assert vocab.genre_ids("", 5) == [0, -1, -1, -1, -1]
        assert vocab.genre_ids(None, 5) == [-1] * 5
        assert vocab.genre_ids(["", "rock"], 5)[:2] == [0, 8]


def test_the_start_embedding_of_the_empty_genre_adds_genre_0():
    prior = _top()
    slots = prior.cfg.labels.max_bow_genre_size
    vocab = OfficialVocab("v2", {}, {})
    base = [prior.cfg.sample_rate * 5, 0, prior.cfg.sample_length, 1]
    with torch.no_grad():
        empty = prior.condition(torch.tensor([base + vocab.genre_ids("", slots)])).start
        none = prior.condition(torch.tensor([base + vocab.genre_ids(None, slots)])).start
        genre_0 = prior.labels.genre_emb.weight[0]
        artist = prior.labels.artist_emb.weight[1]
    torch.testing.assert_close(empty[0, 0], artist + genre_0)
    torch.testing.assert_close(none[0, 0], artist)
