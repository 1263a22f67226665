import pytest

from openjukebox.lyrics.timed import Segment, SongLyrics, parse_lrc, read_lyrics
from openjukebox.lyrics.tokenizer import Tokenizer

TOK = Tokenizer("abcdefghijklmnopqrstuvwxyz \n")
SR = 100  # samples per second, to keep the numbers readable


def test_timed_lyrics_move_the_window_as_the_timestamps_say():
    # 40 characters: 30 sung in the first 3 s (fast), 10 in the remaining 57 s (slow)
    fast, slow = "abcdefghij" * 3, "klmnopqrst"
    song = SongLyrics.from_segments(TOK, [Segment(0.0, fast), Segment(3.0, slow), Segment(60.0, "")])
    linear = SongLyrics(song.tokens)
    total, duration = 60 * SR, 2 * SR
    # a window centred at 2 s: the linear rule thinks 1/30 of the song is sung; the times say 20 characters
    tokens, indices = song.window(8, total, 1 * SR, duration, SR)
    assert indices == list(range(16, 24))
    assert linear.window(8, total, 1 * SR, duration, SR)[1] == list(range(0, 8))  # clamped at the start
    # a window centred at 31.5 s: half-way through the slow part, character 30 + 5 (times 3 + 5.7 k)
    assert song.window(8, total, int(30.5 * SR), duration, SR)[1] == list(range(31, 39))
    assert linear.window(8, total, int(30.5 * SR), duration, SR)[1] == list(range(17, 25))
    assert tokens == [song.tokens[i] for i in indices]


def test_lrc_lines_and_enhanced_word_tags_become_timed_segments():
    lrc = "[ar:Someone]\n[00:01.00]hello world\n[00:03.50]<00:03.50>good <00:04.00>bye\n\n"
    segments = parse_lrc(lrc)
    assert segments == [Segment(1.0, "hello world\n"), Segment(3.5, "good "), Segment(4.0, "bye\n")]
    song = SongLyrics.from_segments(TOK, segments)
    assert TOK.decode(song.tokens) == "hello world\ngood bye\n"
    assert song.times[0] == 1.0 and song.times[12] == 3.5 and song.times[17] == 4.0
    assert song.times[6] == pytest.approx(1.0 + 2.5 * 6 / 12)  # spread evenly until the next line
    with pytest.raises(ValueError, match="line 1 has no"):
        parse_lrc("hello\n")


def test_lyrics_come_from_the_manifest_or_a_file_beside_the_audio(tmp_path):
    audio = tmp_path / "song.wav"
    assert read_lyrics({}, audio, TOK) is None
    (tmp_path / "song.txt").write_text("plain words")
    assert TOK.decode(read_lyrics({}, audio, TOK).tokens) == "plain words"
    (tmp_path / "song.lrc").write_text("[00:02.00]timed words\n")
    assert read_lyrics({}, audio, TOK).times[0] == 2.0
    timed = read_lyrics({"lyrics": [{"time": 1, "text": "ab"}, {"time": 2, "text": "cd"}]}, audio, TOK)
    assert timed.times == (1.0, 1.5, 2.0, 2.0 + 0.08)
    with pytest.raises(ValueError, match="list of"):
        read_lyrics({"lyrics": [{"text": "no time"}]}, audio, TOK)


def test_the_character_sung_at_each_moment_and_a_window_moved_by_a_shift():
    song = SongLyrics.from_segments(TOK, [Segment(1.0, "ab"), Segment(2.0, "c")])  # a 1.0, b 1.5, c 2.0-2.08
    assert song.sung_at([0.5, 1.0, 1.49, 1.5, 2.05, 2.2]).tolist() == [-1, 0, 0, 1, 2, -1]
    assert SongLyrics(song.tokens).sung_at([1.2]).tolist() == [-1]  # no times, nothing known
    fast, slow = "abcdefghij" * 3, "klmnopqrst"
    timed = SongLyrics.from_segments(TOK, [Segment(0.0, fast), Segment(3.0, slow), Segment(60.0, "")])
    total, duration = 60 * SR, 2 * SR
    # centred at 2 s, moved by 29.5 s: the window of the one centred at 31.5 s
    assert timed.window(8, total, 1 * SR, duration, SR, shift=29.5)[1] == list(range(31, 39))
    linear = SongLyrics(timed.tokens)
    assert linear.window(8, total, 1 * SR, duration, SR, shift=29.5)[1] == list(range(17, 25))
