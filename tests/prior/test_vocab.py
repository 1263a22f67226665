import pytest

from openjukebox.prior.vocab import LabelVocab, Vocab, normalise


def test_names_are_normalised_like_the_original():
    assert normalise("Céline Dion") == "c_line_dion"
    assert normalise("  Blues Rock!! ") == "blues_rock"


def test_vocab_ids_round_trip_and_unknown_names_list_the_closest():
    vocab = LabelVocab.from_metadata(
        [{"artist": "Frederic Chopin", "genre": "piano"}, {"artist": "Franz Liszt", "genre": "Piano"}, {}]
    )
    assert vocab.artists.names == ("unknown", "franz_liszt", "frederic_chopin")
    assert vocab.artists.id("Frederic  Chopin") == 2 and vocab.artists.id("FREDERIC CHOPIN!") == 2
    accented = LabelVocab.from_metadata([{"artist": "Frédéric Chopin"}])  # normalised alike on both sides
    assert accented.artists.names == ("unknown", "fr_d_ric_chopin") and accented.artists.id("Frédéric Chopin") == 1
    assert vocab.artists.id(None) == 0 and vocab.genres.id("PIANO") == 1
    assert vocab.genre_ids("piano", 3) == [1, -1, -1]
    with pytest.raises(
        ValueError, match="unknown artist 'Frederik Chopin' for this model; closest known: frederic_chopin"
    ):
        vocab.artists.id("Frederik Chopin")
    with pytest.raises(ValueError, match="unknown genre 'xyz'.*known genres: piano"):
        vocab.genres.id("xyz")
    assert LabelVocab.from_dict(vocab.to_dict()) == vocab
    assert len(Vocab.build("artist", [])) == 1
