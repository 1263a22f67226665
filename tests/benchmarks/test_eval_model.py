"""benchmarks/eval_model.py: which songs the lyric alignment is measured on (benchmarks/lyric_songs.py),
and which validation row stands for a prior (the pure parts; the measures need a trained model)."""

from pathlib import Path

import pytest

from .scripts import load_benchmark


@pytest.fixture(scope="module")
def eval_model():
    return load_benchmark("eval_model")


def _song(path: str, piece: str, text: str) -> dict:
    words = text.split(" ")
    return {"path": path, "piece": piece, "lyrics": [{"time": float(i), "text": w + " "} for i, w in enumerate(words)]}


def test_lyric_songs_leave_out_extra_songs_that_share_a_trained_piece_or_hymn(eval_model):
    entries = {
        "/d/held.flac": _song("/d/held.flac", "bach/bwv1", "Wie schoen leuchtet der Morgenstern"),
        "/d/a.flac": _song("/d/a.flac", "bach/bwv2", "Ach Gott vom Himmel sieh darein"),
        "/d/b.flac": _song("/d/b.flac", "bach/bwv3", "Nun komm der Heiden Heiland"),
        "/d/piano.flac": {"path": "/d/piano.flac", "piece": "bach/bwv4"},  # no lyrics, a trained piece
    }
    extra = [
        _song("/t/same_piece.flac", "bach/bwv2", "Ganz andere Worte hier gesungen"),
        _song("/t/same_hymn.flac", "bach/bwv99", "NUN KOMM, der Heiden Heiland!"),  # case and commas aside
        _song("/t/played.flac", "bach/bwv4", "Ein Lied das nur gespielt wurde"),
        _song("/t/new.flac", "bach/bwv50", "Jesu meine Freude"),
        {"path": "/t/untimed.flac", "piece": "bach/bwv60", "lyrics": "plain text lyrics"},
    ]
    songs, training, left_out = eval_model.lyric_songs(entries, ["/d/held.flac"], extra)
    assert [path for path, _ in songs] == ["/d/held.flac", "/t/new.flac"]
    assert [path for path, _ in training] == ["/d/a.flac", "/d/b.flac"]
    assert left_out == 3


def test_lyric_songs_keep_extra_songs_that_share_only_a_held_out_song_and_compare_40_letters(eval_model):
    long = "Allein Gott in der Hoeh sei Ehr und Dank fuer seine Gnade"  # 47 letters
    entries = {
        "/d/held.flac": _song("/d/held.flac", "bach/bwv1", "Wie schoen leuchtet der Morgenstern"),
        "/d/long.flac": _song("/d/long.flac", "bach/bwv2", long),
        "/d/again.flac": _song("/d/again.flac", "bach/bwv3", "Wie schoen leuchtet der Morgenstern"),
    }
    extra = [
        _song("/t/held_piece.flac", "bach/bwv1", "Ein ganz anderer Text"),  # the held-out song's piece
        _song("/t/same_40.flac", "bach/bwv7", long.replace("Gnade", "Guete")),  # differs after 40 letters
    ]
    songs, _, left_out = eval_model.lyric_songs(entries, ["/d/held.flac"], extra)
    # the held-out song sings a trained song's hymn, so it is left out too; the song sharing only
    # the held-out piece is kept; one whose first 40 letters are a trained text's is left out
    assert [path for path, _ in songs] == ["/t/held_piece.flac"]
    assert left_out == 1


def test_lyric_songs_spread_the_training_songs_they_keep(eval_model):
    order = [3, 7, 0, 9, 1, 5, 8, 2, 6, 4]  # not in path order: the choice sorts them
    entries = {f"/d/{i:02d}.flac": _song(f"/d/{i:02d}.flac", f"p{i}", f"lied nummer {i}") for i in order}
    _, training, _ = eval_model.lyric_songs(entries, [], [], max_training=4)
    assert [path for path, _ in training] == ["/d/00.flac", "/d/03.flac", "/d/06.flac", "/d/09.flac"]
    _, training, _ = eval_model.lyric_songs(entries, [], [], max_training=30)
    assert len(training) == 10


def test_prior_quality_reads_the_kept_best_step_else_the_last(eval_model, tmp_path):
    rows = ["step,bits_per_token,unigram_bits,align_bits", "0,3.5,8.6,5.0", "250,3.2,8.6,4.5", "500,3.3,8.6,4.1"]
    (tmp_path / "val.csv").write_text("\n".join(rows) + "\n")
    assert eval_model.prior_quality(tmp_path) == {"bits_per_token": 3.3, "unigram_bits": 8.6, "align_bits": 4.1}
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "config.json").write_text('{"trained_steps": 250}')
    assert eval_model.prior_quality(tmp_path) == {"bits_per_token": 3.2, "unigram_bits": 8.6, "align_bits": 4.5}


@pytest.mark.parametrize(
    ("levels", "top_only", "name"), [(3, (3.0, 1.0, 1.0), "3,1,1"), (2, (3.0, 1.0), "3,1"), (1, 3.0, "3")]
)
def test_default_guidances_guide_the_top_prior_alone_at_every_bundle_depth(eval_model, levels, top_only, name):
    class Bundle:  # what default_guidances reads of a bundle
        prior_dirs = {lv: Path(f"level_{lv}") for lv in range(levels)}

    assert eval_model.default_guidances(Bundle()) == [1.0, top_only, None]
    assert eval_model._name(top_only) == name  # the clips folder: guidance_3,1,1 for the shipped model
