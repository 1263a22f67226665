import json

import pytest

from openjukebox.lyrics.timed import SongLyrics
from openjukebox.lyrics.tokenizer import Tokenizer
from openjukebox.prior.vocab import OfficialVocab

from ..conftest import FIXTURES

LABELS = json.loads((FIXTURES / "openai" / "labels_ref.json").read_text())


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_cleaning_and_token_ids_reproduce_the_original(version):
    ref = LABELS[version]
    tok = Tokenizer.official(version)
    assert tok.n_vocab == ref["n_vocab"] and tok.chars == ref["vocab_chars_in_id_order"]
    with pytest.warns(UserWarning, match="dropped 3 character\\(s\\) the model cannot sing: '%', '&', '🎵'"):
        assert tok.clean(ref["raw_lyrics"]) == ref["cleaned"]
    with pytest.warns(UserWarning):
        assert tok.encode(ref["raw_lyrics"]) == ref["full_tokens"]
    assert tok.decode(ref["full_tokens"]) == ref["textise_roundtrip"]


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_lyric_windows_reproduce_the_original(version):
    ref = LABELS[version]
    song = SongLyrics(tuple(ref["full_tokens"]))
    for w in ref["windows"]:
        tokens, indices = song.window(w["n_tokens"], w["total_length"], w["offset"], w["duration"], 44100)
        assert (tokens, indices) == (w["tokens"], w["indices"]), w


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_artist_genre_ids_and_label_rows_reproduce_the_original(version):
    ref = LABELS[version]
    # an id table holding the names the reference knows (id 0 entries left out: they must be unknown)
    artists = {a["normalised"]: a["id"] for a in ref["artists"].values() if a["id"]}
    genres = {n: i for g in ref["genres"].values() for n, i in zip(g["normalised"], g["ids"], strict=True) if i}
    vocab = OfficialVocab(version, artists, genres)
    with pytest.warns(UserWarning, match="not in the"):
        for name, a in ref["artists"].items():
            assert vocab.artist_id(name) == a["id"], name
        for name, g in ref["genres"].items():
            assert vocab.genre_ids(name, len(g["ids"]))[: len(g["ids"])] == g["ids"], name
    tok = Tokenizer.official(version)
    for label in ref["labels"]:
        meta, n_tokens = label["meta"], label["n_tokens"]
        with pytest.warns(UserWarning):
            song = SongLyrics.from_text(tok, meta["lyrics"])
        tokens, _ = song.window(n_tokens, meta["total_length"], meta["offset"], label["sample_length"], 44100)
        genre_ids = vocab.genre_ids(meta["genre"], label["max_genre_words"])
        row = [meta["total_length"], meta["offset"], label["sample_length"], vocab.artist_id(meta["artist"])]
        assert row + genre_ids + tokens == label["y"]


def test_official_ids_are_read_from_the_original_files(tmp_path):
    (tmp_path / "v2_artist_ids.txt").write_text("unknown;0\nalan_jackson;145\n")
    (tmp_path / "v2_genre_ids.txt").write_text("unknown;0\nblues;2\nrock;8\n")
    vocab = OfficialVocab.read(tmp_path, "v2")
    assert vocab.artist_id("Alan Jackson") == 145 and vocab.genre_ids("Blues Rock", 5) == [2, 8, -1, -1, -1]
    with pytest.raises(FileNotFoundError, match="data/ids folder"):
        OfficialVocab.read(tmp_path, "v3")
    with pytest.raises(ValueError, match="at most 1"):
        OfficialVocab("v2", {}, {"blues": 2, "rock": 8}).genre_ids("Blues Rock", 1)


def test_a_vocabulary_built_from_training_lyrics_keeps_other_languages():
    tok = Tokenizer.build(["Wachet auf, ruft uns die Stimme", "Größe\\Ende"])
    assert "ö" in tok.chars and "ß" in tok.chars and "\n" in tok.chars and tok.n_vocab == len(tok.chars) + 1
    assert tok.decode(tok.encode("Größe")) == "Größe"
    with pytest.warns(UserWarning, match="'€'"):
        assert tok.decode(tok.encode("Größe €")) == "Größe "
    assert Tokenizer.from_dict(tok.to_dict()) == tok
    spaced = Tokenizer.build(["Nun danket alle Gott"])  # no newline in its vocabulary
    assert spaced.clean("Gott\nNun") == "Gott Nun"
