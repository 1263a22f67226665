import json
import zlib

import numpy as np
import pytest

from openjukebox.audio.io import load_audio


def test_a_rendered_score_plays_its_notes(tmp_path):
    from openjukebox.data.scores import build_scores

    manifest = build_scores(tmp_path, composers=["bach"], per_composer=1, sets=["piano", "organ"], max_seconds=6.0)
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [(e["artist"], e["genre"]) for e in entries] == [
        ("Johann Sebastian Bach", "piano"),
        ("Johann Sebastian Bach", "organ"),
    ]
    assert [(e["piece"], e["path"]) for e in entries] == [
        ("bach/bwv1.6", "bach_bwv1.6_piano.flac"),
        ("bach/bwv1.6", "bach_bwv1.6_organ.flac"),
    ]
    piano, organ = (load_audio(tmp_path / e["path"], 22050) for e in entries)
    assert len(piano) == 6 * 22050 and np.sqrt(np.mean(piano**2)) > 0.02
    # two instrument sets of one score: the same notes, different sounds
    spec = lambda a: np.abs(np.fft.rfft(a[: 4 * 22050]))  # noqa: E731
    assert np.corrcoef(spec(piano), spec(organ))[0, 1] < 0.95


def test_a_sung_chorale_has_a_voice_on_its_syllables(tmp_path):
    pytest.importorskip("pyworld")
    from openjukebox.data.chorales import build_chorales

    manifest = build_chorales(tmp_path, limit=1, max_seconds=12.0)
    (entry,) = [json.loads(line) for line in manifest.read_text().splitlines()]
    timed = entry["lyrics"]
    assert entry["genre"] == "sung chorale" and len(timed) >= 8
    assert (entry["piece"], entry["path"]) == ("bach/bwv269", "chorale_bwv269.flac")
    assert all(a["time"] < b["time"] for a, b in zip(timed, timed[1:], strict=False))
    assert "".join(t["text"] for t in timed).startswith("Aus mei")  # BWV 269: "Aus meines Herzens Grunde"
    audio = load_audio(tmp_path / entry["path"], 22050)
    assert len(audio) == 12 * 22050 and np.sqrt(np.mean(audio**2)) > 0.02


def test_a_spoken_syllable_is_sung_at_the_notes_pitch_and_length():
    pw = pytest.importorskip("pyworld")
    from openjukebox.data.chorales import Espeak, sing_syllable

    espeak = Espeak("de")
    speech = espeak.speak("Herz")
    assert len(speech) > 1000 and np.abs(speech).max() > 0.05  # espeak-ng really speaks
    sr = espeak.sample_rate
    sung = sing_syllable(speech, sr, [(440.0, 0.4), (330.0, 0.4)]).astype(np.float64)
    assert abs(len(sung) / sr - 0.8) < 0.02
    f0, _ = pw.dio(sung, sr, frame_period=5.0)
    first, second = f0[10:70], f0[90:150]
    assert np.median(first[first > 0]) == pytest.approx(440.0, rel=0.03)
    assert np.median(second[second > 0]) == pytest.approx(330.0, rel=0.03)


def test_every_piece_once_under_its_own_name():
    from openjukebox.data.scores import corpus_paths, file_stem, piece_id

    mozart = [piece_id(p) for p in corpus_paths("mozart", 6)]
    assert mozart[:4] == [
        "mozart/k155/movement1",
        "mozart/k155/movement2",
        "mozart/k155/movement3",
        "mozart/k156/movement1",
    ]
    beethoven = corpus_paths("beethoven", 100)
    pieces = [piece_id(p) for p in beethoven]
    assert len(pieces) == len(set(pieces))  # opus18no1/movement1 exists as .krn and .mxl: used once, as .mxl
    assert [p.suffix for p in beethoven if piece_id(p) == "beethoven/opus18no1/movement1"] == [".mxl"]
    stems = [file_stem(p) for p in pieces + mozart]
    assert len(set(stems)) == len(set(pieces + mozart))
    assert piece_id("bach/bwv153.1") == "bach/bwv153.1" != piece_id("bach/bwv153.5")  # chorales' corpus names
    bach = corpus_paths("bach", 3)
    assert piece_id(bach[0]) == "bach/bwv1.6" and bach[0].suffix == ".mxl"


def test_a_time_map_varies_the_tempo_per_phrase_and_rests_after_each():
    from openjukebox.data.scores import TimeMap

    steady = TimeMap(0.5)
    assert steady(0) == 0 and steady(3) == 1.5
    tm = TimeMap(0.5, phrase_ends=(4.0, 8.0), factors=(1.0, 2.0, 0.5), pauses=(1.0, 0.25))
    assert [tm(q) for q in (2, 4, 6, 8, 10)] == [1.0, 2.0, 2.0 + 1.0 + 2.0, 3.0 + 4.0, 7.25 + 0.5]
    assert [tm.quarters_at(tm(q)) for q in (2, 4, 6, 8, 10)] == [2, 4, 6, 8, 10]
    assert tm.quarters_at(2.5) == 4.0  # in the rest after the first phrase
    uneven = TimeMap.uneven(0.5, [8.0, 4.0, 4.0], seed=3)
    assert uneven.phrase_ends == (4.0, 8.0) and uneven == TimeMap.uneven(0.5, [4.0, 8.0], seed=3)
    assert all(0.75 <= f <= 1.35 for f in uneven.factors) and all(0.4 <= p <= 1.5 for p in uneven.pauses)


def test_chorales_skip_the_songs_of_another_build_and_sing_in_rubato(tmp_path):
    pytest.importorskip("pyworld")
    import music21

    from openjukebox.data.chorales import build_chorales, fermata_ends
    from openjukebox.data.scores import TimeMap, tempo_spq

    steady = build_chorales(tmp_path / "a", limit=1, max_seconds=10.0, skip=1)
    uneven = build_chorales(tmp_path / "b", limit=1, max_seconds=10.0, skip=1, uneven=True)
    (a,), (b,) = ([json.loads(line) for line in m.read_text().splitlines()] for m in (steady, uneven))
    assert a["piece"] == b["piece"] == "bach/bwv347"  # the second chorale: the first (bwv269) was skipped
    assert (a["performance"], b["performance"]) == ("steady", "uneven")
    score = music21.corpus.parse("bach/bwv347")
    spq, ends = tempo_spq(score), fermata_ends(score)
    tm = TimeMap.uneven(spq, ends, zlib.crc32(b"bach/bwv347"))
    steady_times = [t["time"] for t in a["lyrics"]]
    expected = [round(tm(t / spq), 4) for t in steady_times if tm(t / spq) < 10.0]
    np.testing.assert_allclose([t["time"] for t in b["lyrics"]], expected, atol=2e-4)
    assert np.abs(np.array(expected) - steady_times[: len(expected)]).max() > 0.5  # not the steady timing
