"""benchmarks/clip_classifier.py: the conditioning classifier's settings come from grouped
cross-validation on real clips, scored by the target's metric."""

from pathlib import Path

import numpy as np
import pytest

from .scripts import load_benchmark


@pytest.fixture(scope="module")
def clf():
    return load_benchmark("clip_classifier")


def _rows(x: np.ndarray, width: int = 118) -> np.ndarray:
    """``x``'s columns first, then constant ones: rows as wide as clip_features'."""
    return np.hstack([x, np.zeros((len(x), width - x.shape[1]))])


def _imbalanced(seed: int = 0):
    """One feature; 300 clips of a common class around 0, 30 of a rare one around 1.2."""
    rng = np.random.default_rng(seed)
    x = _rows(np.r_[rng.normal(0.0, 1.0, 300), rng.normal(1.2, 1.0, 30)][:, None])
    y = np.array(["common"] * 300 + ["rare"] * 30)
    return x, y, list(range(len(y)))  # every clip its own piece


def test_the_targets_metric_decides_between_weighted_and_unweighted_classes(clf):
    x, y, groups = _imbalanced()
    by_accuracy, _ = clf.choose(x, y, groups, "accuracy")
    by_balance, table = clf.choose(x, y, groups, "balanced_accuracy")
    assert by_accuracy["class_weight"] is None  # the rare class costs accuracy when weighted up
    assert by_balance["class_weight"] == "balanced"
    mel = [t for t in table if t["settings"]["features"] == "mel"]  # one column: both sets alike
    means = {(t["settings"]["C"], t["settings"]["class_weight"]): t["mean"] for t in mel}
    assert means[(by_balance["C"], "balanced")] == max(means.values())
    assert max(v for (_, w), v in means.items() if w is None) < 0.6 < means[(by_balance["C"], "balanced")]
    assert len(table) == len(clf.CANDIDATES) and all(len(t["folds"]) == 5 for t in table)


def test_a_piece_never_sits_on_both_sides_of_a_fold(clf):
    # Each piece's clips carry its one-hot code and its label: memorisable, not learnable. Folds that
    # split pieces would score near 1; grouped folds see only unknown pieces and guess.
    rng = np.random.default_rng(1)
    pieces = np.repeat(np.arange(40), 5)
    x = _rows(np.eye(40)[pieces] + rng.normal(0, 0.01, (200, 40)))
    y = np.where(rng.random(40) < 0.5, "a", "b")[pieces]
    _, table = clf.choose(x, y, pieces.tolist(), "balanced_accuracy")
    assert max(t["mean"] for t in table) < 0.7


def test_ties_keep_the_first_candidate_the_setting_of_earlier_figures(clf):
    x = _rows(np.r_[np.zeros(20), np.full(20, 10.0)][:, None] + np.linspace(0, 0.1, 40)[:, None])
    y = np.array(["low"] * 20 + ["high"] * 20)
    best, table = clf.choose(x, y, list(range(40)), "accuracy")
    assert all(t["mean"] == 1.0 for t in table)
    assert best == clf.CANDIDATES[0] == {"features": "mel", "C": 1.0, "class_weight": None}


def test_few_pieces_give_fewer_folds_and_one_piece_none(clf):
    x, y, _ = _imbalanced()
    _, table = clf.choose(x, y, [i % 3 for i in range(len(y))], "accuracy")  # 3 pieces: 3 folds
    assert all(len(t["folds"]) == 3 for t in table)
    assert clf.choose(x, y, [0] * len(y), "accuracy") == (clf.CANDIDATES[0], [])


def test_the_music_features_join_only_when_they_recognise_unseen_pieces_better(clf):
    # column 0 stands for the timbre (noise), column 80 for what is played (the label, noisily):
    # the "mel" candidates see only the first 80 columns
    rng = np.random.default_rng(2)
    pieces = np.repeat(np.arange(60), 4)
    y = np.where(pieces % 2 == 0, "a", "b")
    x = rng.normal(0, 1, (240, len(clf.FEATURE_NAMES)))
    x[:, clf.MEL_DIMS] += np.where(y == "a", 3.0, -3.0)
    best, table = clf.choose(x, y, pieces.tolist(), "accuracy")
    assert best["features"] == "mel+music"
    means = {t["settings"]["features"]: [] for t in table}
    for t in table:
        means[t["settings"]["features"]].append(t["mean"])
    assert max(means["mel"]) < 0.65 < 0.9 < max(means["mel+music"])
    with pytest.raises(ValueError, match="'mel' or 'mel\\+music'"):
        clf.fit(x, y, features="chroma")
    with pytest.raises(ValueError, match="rows of 81 features"):  # neither mel_features' nor clip_features'
        clf.fit(x[:, : clf.MEL_DIMS + 1], y)
    with pytest.raises(ValueError, match="rows of 80 features"):  # mel_features' rows hold no music
        clf.fit(x[:, : clf.MEL_DIMS], y, features="mel+music")
    kept = clf.fit(x[:, : clf.MEL_DIMS], y)  # mel_features' rows (finetune_new_artist.py) fit as they are
    np.testing.assert_allclose(kept[-1].coef_, clf.fit(x, y)[-1].coef_)  # the same 80 columns of the wider rows


def test_music_features_ignore_the_key_and_hear_the_tempo(clf):
    sr = clf.SR
    t = np.arange(4 * sr) / sr

    def notes(freqs, per_second):  # a triad's notes in turn, each ringing for 1 / per_second s
        step = int(sr / per_second)
        out = np.zeros_like(t)
        for i in range(0, len(t), step):
            f = freqs[(i // step) % len(freqs)]
            n = min(step, len(t) - i)
            out[i : i + n] = np.sin(2 * np.pi * f * t[:n]) * np.exp(-3 * t[:n])
        return out.astype(np.float32)

    c_major = notes([261.63, 329.63, 392.0], 4)
    d_major = notes([293.66, 369.99, 440.0], 4)  # the same intervals, two semitones up
    faster = notes([261.63, 329.63, 392.0], 8)
    a, b, f = (clf.music_features(x) for x in (c_major, d_major, faster))
    assert a.shape == (38,) and np.all(np.isfinite(a))
    np.testing.assert_allclose(a[:19], b[:19], atol=0.03)  # interval profile and sorted chroma: no key
    assert f[23] > 1.5 * a[23]  # onsets per second
    assert clf.clip_features(c_major).shape == (len(clf.FEATURE_NAMES),) == (clf.MEL_DIMS + 38,)


def test_best_picks_the_first_of_the_best_among_one_feature_set(clf):
    row = lambda f, c, mean: {"settings": {"features": f, "C": c, "class_weight": None}, "mean": mean}  # noqa: E731
    table = [row("mel", 1.0, 0.30), row("mel", 10.0, 0.31), row("mel", 0.1, 0.31), row("mel+music", 1.0, 0.40)]
    assert clf.best(table, "mel") == {"features": "mel", "C": 10.0, "class_weight": None}
    assert clf.best(table) == {"features": "mel+music", "C": 1.0, "class_weight": None}
    assert clf.best(table, "mel+music")["C"] == 1.0
    with pytest.raises(ValueError, match="no candidate"):
        clf.best(table, "chroma")


def test_the_mel_columns_are_read_as_a_view_as_every_figure_was_measured(clf):
    x = np.arange(2 * 118, dtype=np.float64).reshape(2, 118)
    mel, every = clf._first_columns(x, clf.MEL_DIMS), clf._first_columns(x, None)
    assert np.shares_memory(mel, x) and np.shares_memory(every, x)  # views: a copy sums in another order
    np.testing.assert_array_equal(mel, x[:, :80])
    np.testing.assert_array_equal(every, x)


def test_codec_features_are_the_clips_through_the_codec_and_a_cache_is_read_only_for_its_key(clf, bundle, tmp_path):
    from openjukebox.checkpoint import load_vqvae

    vq = load_vqvae(bundle / "vqvae")
    rng = np.random.default_rng(0)
    clips = [(rng.normal(0, 0.3, 22050).astype(np.float32), "organ", "Bach", "p") for _ in range(2)]
    want = np.array([clf.clip_features(clf.through_codec(vq, a, 1)) for a, *_ in clips])
    cache = tmp_path / "f.npz"
    np.testing.assert_array_equal(clf.codec_features(vq, clips, 1, cache, "vq-a"), want)
    np.savez(cache, x=np.zeros_like(want), key=np.load(cache)["key"])  # a cache of these clips reads back...
    assert not clf.codec_features(vq, clips, 1, cache, "vq-a").any()
    np.testing.assert_array_equal(clf.codec_features(vq, clips, 1, cache, "vq-b"), want)  # ...another VQ-VAE's not
    level_0 = clf.codec_features(vq, clips, 0, cache, "vq-b")  # nor another level's
    np.testing.assert_array_equal(level_0, [clf.clip_features(clf.through_codec(vq, a, 0)) for a, *_ in clips])


def test_a_split_read_from_another_folder_stops_instead_of_dropping_files(clf, tmp_path, monkeypatch):
    import json

    import soundfile as sf

    runs = tmp_path / "runs"
    (runs / "top").mkdir(parents=True)
    sf.write(runs / "a.flac", np.random.default_rng(0).uniform(-0.5, 0.5, clf.SR), clf.SR)
    (runs / "all.jsonl").write_text(json.dumps({"path": "a.flac", "genre": "g", "artist": "x"}) + "\n")
    (runs / "top" / "split.json").write_text(json.dumps({"train": ["runs/a.flac"], "validation": []}))
    monkeypatch.chdir(tmp_path)  # where the run was started: its split's relative paths resolve
    train, held = clf.split_clips(Path("runs"), clf.SR // 4)
    assert len(train) == 4 and train[0][1:3] == ("g", "x") and held == []  # 4 whole quarters of the second
    monkeypatch.chdir(runs)  # elsewhere: the same paths name no file of the manifest
    with pytest.raises(SystemExit, match="1 of the split's 1 files are not in .*e.g. .*runs/runs/a.flac"):
        clf.split_clips(Path("."), clf.SR // 4)
