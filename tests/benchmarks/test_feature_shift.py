"""benchmarks/feature_shift.py: how far clips sit from the real data, per feature, in the real data's
standard deviations."""

import numpy as np
import pytest

from .scripts import load_benchmark


@pytest.fixture(scope="module")
def feature_shift():
    return load_benchmark("feature_shift")


def test_the_shift_is_in_the_reference_columns_standard_deviations(feature_shift):
    rng = np.random.default_rng(0)
    reference = rng.normal([0.0, 10.0], [1.0, 4.0], (20000, 2))
    other = rng.normal([2.0, 10.0], [1.0, 0.5], (20000, 2))  # column 0 moved by 2 sd, column 1 only narrower
    np.testing.assert_allclose(feature_shift.shift(reference, other), [2.0, 0.0], atol=0.05)
    moved = reference + reference.std(0) * [3.0, -1.0]
    np.testing.assert_allclose(feature_shift.shift(reference, moved), [3.0, -1.0])  # exactly


def test_every_feature_has_a_name(feature_shift):
    names = feature_shift.FEATURE_NAMES
    assert len(names) == len(set(names)) == 118
    assert names[80] == "chroma_interval_0" and names[103] == "onsets_per_second" and names[-1] == "contrast_std_6"
