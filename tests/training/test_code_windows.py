import numpy as np
import pytest

from openjukebox.audio.dataset import Track
from openjukebox.lyrics.timed import read_lyrics
from openjukebox.lyrics.tokenizer import Tokenizer
from openjukebox.prior.vocab import LabelVocab
from openjukebox.training.code_windows import CodeWindows, level_file

SR, HOP, N_CTX, N_TOKENS = 1000, 10, 50, 8  # codes of 10 ms, windows of 0.5 s, 8 characters
TOK = Tokenizer("abcdefghijklmnopqrstuvwxyz ")
LETTERS = "abcdefghijklmnopqrst"  # distinct, so a token names its position in the song


def _tracks(tmp_path, metas: list[dict]) -> tuple[list[Track], list]:
    """4 s tracks of ``metas`` whose level-2 codes are their own positions (0..399), and their prefixes."""
    tracks, prefixes = [], []
    for k, meta in enumerate(metas):
        prefix = tmp_path / f"t{k}"
        np.save(level_file(prefix, 2), np.arange(400, dtype=np.int16))
        tracks.append(Track(str(tmp_path / f"t{k}.wav"), str(prefix) + ".npy", 400 * HOP, meta))
        prefixes.append(prefix)
    return tracks, prefixes


@pytest.fixture()
def two_tracks(tmp_path):
    """A 4 s song with timed lyrics (a letter every 0.1 s from 0.5 s) and a 4 s instrumental, whose
    codes are their own positions (0..399)."""
    timed = [{"time": 0.5 + 0.1 * i, "text": c} for i, c in enumerate(LETTERS)]
    metas = [{"artist": "x", "genre": "sung", "lyrics": timed}, {"artist": "y", "genre": "organ"}]
    tracks, prefixes = _tracks(tmp_path, metas)
    vocab = LabelVocab.from_metadata(metas)

    def windows(tokenizer=TOK, n_tokens=N_TOKENS, only=slice(None), **kw):
        return CodeWindows(
            tracks[only], prefixes[only], 2, N_CTX, HOP, None, vocab, 1, 0, tokenizer, n_tokens, SR, **kw
        )

    return windows, read_lyrics(metas[0], None, TOK), vocab.artist_id("x")


def test_alignment_targets_name_the_character_sung_wherever_the_lyrics_window_moved(two_tracks):
    windows, song, sung_artist = two_tracks
    codes, y, above, align = windows(align=True, jitter=0.3, timed_share=0.5).batch(16, step=3)
    assert above is None and align.shape == (16, N_CTX)
    assert windows().batch(16, step=3)[3] is None  # no targets unless asked for
    rows, moved = 0, 0
    for row in range(16):
        start = int(codes[row, 0])
        sung = song.sung_at((start + np.arange(N_CTX) + 0.5) * HOP / SR)  # the letter of every code
        lyric, target = y[row, -N_TOKENS:].numpy(), align[row].numpy()
        if int(y[row, 3]) != sung_artist:  # the instrumental: nothing to align
            assert (target == -1).all()
            continue
        rows += 1
        in_window = [song.tokens.index(t) for t in lyric if t]  # song positions of the window's letters
        known = target >= 0
        assert np.array_equal(known, np.isin(sung, in_window) & (sung >= 0))
        assert np.array_equal(lyric[target[known]], np.array(song.tokens)[sung[known]])
        centred = song.window(N_TOKENS, 400 * HOP, start * HOP, N_CTX * HOP, SR)[0]
        moved += centred != lyric.tolist()
        reachable = [song.window(N_TOKENS, 400 * HOP, start * HOP, N_CTX * HOP, SR, s)[0] for s in (-0.3, 0.3)]
        assert reachable[0][0] <= lyric[np.flatnonzero(lyric)[0]] <= reachable[1][0]  # within 0.3 s either way
    assert rows >= 8  # half the batch comes from the song with timed lyrics
    assert moved >= 1


def test_without_the_new_options_the_draws_are_those_of_before(two_tracks):
    windows, _, _ = two_tracks
    codes, y, _, _ = windows().batch(6, step=11)
    rng = np.random.default_rng([0, 11, 0])  # the draw a resumed run of an earlier version made
    picks = rng.choice(2, size=6, p=[0.5, 0.5])
    starts = [int(rng.integers(400 - N_CTX + 1)) for _ in picks]
    assert codes[:, 0].tolist() == starts
    assert y[:, 3].tolist() == [[1, 2][i] for i in picks]


def test_a_share_of_timed_songs_needs_timed_songs(two_tracks):
    windows, _, _ = two_tracks
    with pytest.raises(ValueError, match="no training file has any"):
        windows(tokenizer=None, n_tokens=0, timed_share=0.5)
    with pytest.raises(ValueError, match="no training file has any"):  # training windows of an alignment loss
        windows(only=slice(1, 2), align=True, need_timed=True)
    held_out = windows(only=slice(1, 2), align=True).fixed(3)  # validation: an instrumental is fine
    assert held_out[3].shape == (3, N_CTX) and (held_out[3] == -1).all()
    assert windows(timed_share=1.0).batch(4, step=0)[1][:, 3].tolist() == [1] * 4
    # a share below one window per batch is drawn at random: about that share of all windows
    timed = sum(int(windows(timed_share=0.25).batch(1, step=k)[1][0, 3] == 1) for k in range(400))
    assert 0.5 * 400 + 0.25 * 0.5 * 400 - 40 < timed < 0.5 * 400 + 0.25 * 0.5 * 400 + 40


def test_artist_balance_draws_every_artist_equally_often(tmp_path):
    """Artist x has three 4 s tracks, y one: by length y gets a quarter of the windows, with
    full balance half of them, and a share b of balance gives (1 - b) / 4 + b / 2."""
    metas = [{"artist": "x"}] * 3 + [{"artist": "y"}]
    tracks, prefixes = _tracks(tmp_path, metas)
    vocab = LabelVocab.from_metadata(metas)
    y_id = vocab.artist_id("y")

    def share_of_y(balance: float) -> float:
        w = CodeWindows(tracks, prefixes, 2, N_CTX, HOP, None, vocab, 1, 0, artist_balance=balance)
        return float(np.mean([(w.batch(50, step=k)[1][:, 3] == y_id).float().mean() for k in range(40)]))

    for balance, expected in ((0.0, 0.25), (0.5, 0.375), (1.0, 0.5)):
        assert abs(share_of_y(balance) - expected) < 0.035, balance  # 2,000 draws: about 3 standard errors
    with pytest.raises(ValueError, match="share from 0 to 1"):
        CodeWindows(tracks, prefixes, 2, N_CTX, HOP, None, vocab, 1, 0, artist_balance=1.5)
