"""benchmarks/alignment_blend.py: a blend of the attention's and the linear rule's times, its weight
chosen on the other fold of pieces only."""

import numpy as np
import pytest

from .scripts import load_benchmark


@pytest.fixture(scope="module")
def blend():
    return load_benchmark("alignment_blend")


def test_errors_that_cancel_are_blended_away_and_the_median_is_of_absolute_errors(blend):
    attention, linear = [np.array([1.0, -2.0, 3.0])], [np.array([-1.0, 2.0, -3.0])]
    assert blend.median_error(attention, linear, 1.0) == 2.0  # |1|, |-2|, |3|
    assert blend.median_error(attention, linear, 0.0) == 2.0
    assert blend.median_error(attention, linear, 0.5) == 0.0  # opposite errors: the mean is right
    assert blend.median_error(attention, linear, 0.75) == 1.0  # 0.5, -1, 1.5


def test_each_fold_is_timed_with_the_weight_the_other_fold_chose(blend):
    # pieces a, c (fold 0) favour the attention; b, d (fold 1) the linear rule
    good, bad = np.array([0.1, -0.1]), np.array([5.0, -5.0])
    attention = [good, bad, good, bad]
    linear = [bad, good, bad, good]
    out = blend.cross_fitted(attention, linear, ["a", "b", "c", "d"])
    # fold 0 gets fold 1's choice (the linear rule), fold 1 gets fold 0's (the attention): both wrong
    assert out["weights"] == [0.0, 1.0]
    for errors in out["errors"]:
        np.testing.assert_allclose(errors, [5.0, 5.0])


def test_songs_of_one_piece_stay_in_one_fold(blend):
    # pieces x and z (fold 0) favour the attention, y (fold 1) the linear rule; both songs of x
    # are timed with y's choice (the linear rule): split across folds, one would get the attention
    good, bad = np.array([0.1]), np.array([5.0])
    attention = [good, good, bad, good]
    linear = [bad, np.array([4.0]), good, bad]
    out = blend.cross_fitted(attention, linear, ["x", "x", "y", "z"])
    assert out["weights"] == [0.0, 1.0]
    np.testing.assert_allclose(np.concatenate(out["errors"]), [5.0, 4.0, 5.0, 5.0])


def test_ties_keep_the_linear_rule_and_one_piece_cannot_be_cross_fitted(blend):
    same = [np.array([1.0]), np.array([-1.0]), np.array([2.0])]
    out = blend.cross_fitted(same, same, ["x", "x", "y"])  # every weight ties: the first, the linear rule
    assert out["weights"] == [0.0, 0.0]
    np.testing.assert_allclose(np.concatenate(out["errors"]), [1.0, 1.0, 2.0])  # absolute errors
    assert blend.median_abs([np.array([-3.0, 1.0]), np.array([-2.0])]) == 2.0  # signed in, absolute out
    with pytest.raises(ValueError, match="2 pieces or more"):
        blend.cross_fitted(same, same, ["x", "x", "x"])
