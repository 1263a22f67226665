"""benchmarks/clip_classifier.py: the conditioning classifier's settings come from grouped
cross-validation on real clips, scored by the target's metric."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def clf():
    spec = importlib.util.spec_from_file_location("clip_classifier", BENCHMARKS / "clip_classifier.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _imbalanced(seed: int = 0):
    """One feature; 300 clips of a common class around 0, 30 of a rare one around 1.2."""
    rng = np.random.default_rng(seed)
    x = np.r_[rng.normal(0.0, 1.0, 300), rng.normal(1.2, 1.0, 30)][:, None]
    y = np.array(["common"] * 300 + ["rare"] * 30)
    return x, y, list(range(len(y)))  # every clip its own piece


def test_the_targets_metric_decides_between_weighted_and_unweighted_classes(clf):
    x, y, groups = _imbalanced()
    by_accuracy, _ = clf.choose(x, y, groups, "accuracy")
    by_balance, table = clf.choose(x, y, groups, "balanced_accuracy")
    assert by_accuracy["class_weight"] is None  # the rare class costs accuracy when weighted up
    assert by_balance["class_weight"] == "balanced"
    means = {(t["settings"]["C"], t["settings"]["class_weight"]): t["mean"] for t in table}
    assert means[(by_balance["C"], "balanced")] == max(means.values())
    assert max(v for (_, w), v in means.items() if w is None) < 0.6 < means[(by_balance["C"], "balanced")]
    assert len(table) == len(clf.CANDIDATES) and all(len(t["folds"]) == 5 for t in table)


def test_a_piece_never_sits_on_both_sides_of_a_fold(clf):
    # Each piece's clips carry its one-hot code and its label: memorisable, not learnable. Folds that
    # split pieces would score near 1; grouped folds see only unknown pieces and guess.
    rng = np.random.default_rng(1)
    pieces = np.repeat(np.arange(40), 5)
    x = np.eye(40)[pieces] + rng.normal(0, 0.01, (200, 40))
    y = np.where(rng.random(40) < 0.5, "a", "b")[pieces]
    _, table = clf.choose(x, y, pieces.tolist(), "balanced_accuracy")
    assert max(t["mean"] for t in table) < 0.7


def test_ties_keep_the_first_candidate_the_setting_of_earlier_figures(clf):
    x = np.r_[np.zeros(20), np.full(20, 10.0)][:, None] + np.linspace(0, 0.1, 40)[:, None]
    y = np.array(["low"] * 20 + ["high"] * 20)
    best, table = clf.choose(x, y, list(range(40)), "accuracy")
    assert all(t["mean"] == 1.0 for t in table)
    assert best == clf.CANDIDATES[0] == {"C": 1.0, "class_weight": None}


def test_few_pieces_give_fewer_folds_and_one_piece_none(clf):
    x, y, _ = _imbalanced()
    _, table = clf.choose(x, y, [i % 3 for i in range(len(y))], "accuracy")  # 3 pieces: 3 folds
    assert all(len(t["folds"]) == 3 for t in table)
    assert clf.choose(x, y, [0] * len(y), "accuracy") == (clf.CANDIDATES[0], [])
