import json

import numpy as np
import pytest

from openjukebox.lyrics.alignment import Alignment, SongAttention, choose_head, expected_centres, monotonic_path


def _diagonal(frames_per_char: list[int], noise: float = 0.02, seed: int = 0) -> np.ndarray:
    """Attention that dwells on character j for frames_per_char[j] frames, plus noise."""
    rng = np.random.default_rng(seed)
    rows = [np.eye(len(frames_per_char))[j] for j, n in enumerate(frames_per_char) for _ in range(n)]
    w = np.array(rows) + noise * rng.random((len(rows), len(frames_per_char)))
    return w / w.sum(1, keepdims=True)


def test_the_exporter_turns_a_known_attention_matrix_into_the_expected_lrc(tmp_path):
    text = "la la\nhey"
    # 20 ms frames (the pooling keeps them): "l" from 0 s, "a" 0.1 s, " " 0.2, "l" 1.0, "a" 1.1, "\n" 1.2, "h" 2.0 ...
    frames = [5, 5, 40, 5, 5, 40, 5, 5, 5]
    matrix = _diagonal(frames)
    align = Alignment.from_matrix(text, matrix, 0.02)
    assert align.times == (0.0, 0.1, 0.2, 1.0, 1.1, 1.2, 2.0, 2.1, 2.2)
    assert align.to_lrc() == "[00:00.00]<00:00.00>la <00:01.00>la\n[00:02.00]<00:02.00>hey\n"
    words = align.words()
    assert [(w["word"], w["start"], w["end"], w["line"]) for w in words] == [
        ("la", 0.0, 1.0, 0),
        ("la", 1.0, 2.0, 0),
        ("hey", 2.0, 2.7, 1),
    ]
    written = align.save(tmp_path / "song", matrix, 0.02)
    assert json.loads((tmp_path / "song.json").read_text())["characters"][3] == {"char": "l", "start": 1.0}
    assert (tmp_path / "song.lrc").read_text() == align.to_lrc() and (tmp_path / "song.png").stat().st_size > 1000
    assert len(written) == 3


def test_the_path_is_monotonic_even_when_the_attention_jumps_back():
    w = _diagonal([3, 3, 3, 3])
    w[7] = [0.9, 0.04, 0.03, 0.03]  # one frame looks back at the first character
    path = monotonic_path(w)
    assert (np.diff(path) >= 0).all() and path[0] == 0 and path[-1] == 3


def test_windows_fill_the_song_matrix_at_their_characters():
    song = SongAttention(total_codes=6, n_chars=5)
    song.add(0, np.full((4, 3), 1.0), [-1, 0, 1])
    song.add(2, np.full((4, 3), 2.0), [2, 3, 4], first_new=2)  # rows 2-3 were sampled by the first window
    assert song.matrix[:4, :2].tolist() == [[1, 1]] * 4 and song.matrix[4:, 2:].tolist() == [[2, 2, 2]] * 2
    assert song.matrix[:4, 2:].sum() == 0 and song.matrix[4:, :2].sum() == 0
    pooled = SongAttention(total_codes=6, n_chars=2, pool=3)  # frames average 3 codes
    pooled.add(0, np.array([[1.0, 0.0]] * 3 + [[0.0, 0.5]] * 3), [0, 1])
    assert pooled.matrix.tolist() == [[1.0, 0.0], [0.0, 0.5]]


def test_the_most_monotonic_head_is_chosen():
    rng = np.random.default_rng(1)
    good = _diagonal([4] * 8)
    noisy = rng.random(good.shape)
    noisy /= noisy.sum(1, keepdims=True)
    layer_weights = {3: [np.stack([noisy, noisy])], 7: [np.stack([noisy, good])]}
    layer, head, score = choose_head(layer_weights)
    assert (layer, head) == (7, 1) and score > 0.8


def test_expected_centres_are_the_middles_of_the_linear_rule_or_of_the_given_times():
    np.testing.assert_allclose(expected_centres(4, 8.0), [1.0, 3.0, 5.0, 7.0])
    # the last character lasts as long as the median step before it
    np.testing.assert_allclose(expected_centres(3, 99.0, (0.0, 1.0, 3.0)), [0.5, 2.0, 3.75])
    np.testing.assert_allclose(expected_centres(1, 99.0, (2.0,)), [2.04])  # one character: 0.08 s long
    with pytest.raises(ValueError, match="2 character times for 3 characters"):
        expected_centres(3, 9.0, (0.0, 1.0))


def test_the_spread_weighs_the_attention_against_where_the_windows_put_the_characters():
    text = "abcd"
    matrix = _diagonal([10, 10, 10, 10], noise=0.0)  # attention: a character every 0.2 s from 0 s
    attention_only = Alignment.from_matrix(text, matrix, 0.02)
    assert attention_only.times == (0.0, 0.2, 0.4, 0.6)
    late = np.array([0.1, 0.3, 0.5, 0.7]) + 0.1  # the windows put each character 0.1 s later
    # a wide prior leaves clear attention alone; a narrow one moves the path to the expected times
    assert Alignment.from_matrix(text, matrix, 0.02, late, spread=10.0).times == attention_only.times
    assert Alignment.from_matrix(text, matrix, 0.02, late, spread=0.001).times == (0.0, 0.3, 0.5, 0.7)
    # where the attention says nothing, the characters start where they were expected
    flat = np.full((40, 4), 0.25)
    assert Alignment.from_matrix(text, flat, 0.02, late, spread=0.2).times == (0.0, 0.3, 0.5, 0.7)
    assert Alignment.from_matrix(text, flat, 0.02, late, spread=0.0).times != (0.0, 0.3, 0.5, 0.7)  # (ties)


def test_the_band_needs_one_expected_frame_per_character():
    with pytest.raises(ValueError, match="2 expected positions for 3 characters"):
        monotonic_path(np.ones((5, 3)), expected=np.zeros(2), spread=1.0)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="spread must be 0 or more"):
            monotonic_path(np.ones((5, 3)), expected=np.zeros(3), spread=bad)
