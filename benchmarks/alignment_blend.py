"""A lyric alignment blended with the linear rule, judged without fitting the songs it is scored on
(benchmarks/eval_model.py; the rule was fixed in advance: docs/measurements/alignment_blend_rule.md).

A character's time is ``w * attention + (1 - w) * linear``; with signed errors (aligned minus
true) its error is the same mean of theirs. ``w`` is chosen per fold of songs on the other fold.
"""

from __future__ import annotations

import numpy as np

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # 0: the linear rule; 1: the attention's path


def median_abs(songs: list) -> float:
    """Median absolute error of every character of the songs (signed errors, one array per song)."""
    return float(np.median(np.abs(np.concatenate(songs))))


def paired_interval(a: list, b: list, draws: int = 2000) -> list[float]:
    """90 % interval of median_abs(a) - median_abs(b) over the songs drawn with replacement (paired)."""
    rng = np.random.default_rng(0)
    picks = (rng.integers(0, len(a), len(a)) for _ in range(draws))
    diffs = [median_abs([a[i] for i in k]) - median_abs([b[i] for i in k]) for k in picks]
    return [round(float(x), 3) + 0.0 for x in np.percentile(diffs, [5, 95])]  # + 0.0: no -0.0


def median_error(attention: list, linear: list, w: float) -> float:
    """``median_abs`` of the blend of weight ``w``."""
    return median_abs([w * a + (1 - w) * b for a, b in zip(attention, linear, strict=True)])


def cross_fitted(attention: list, linear: list, pieces: list[str], weights: tuple = WEIGHTS) -> dict:
    """Two folds by piece (pieces sorted, alternating; a piece's songs in one fold): each fold's
    characters timed with the weight that has the lowest median error on the other fold (ties:
    the first, nearest the linear rule). Returns the weights chosen and every song's absolute
    errors so timed, in the songs' order."""
    if len(set(pieces)) < 2:
        raise ValueError(f"cross-fitting needs songs of 2 pieces or more, not {len(set(pieces))}")
    order = {p: i % 2 for i, p in enumerate(sorted(set(pieces)))}
    fold = [order[p] for p in pieces]
    chosen, errors = [], [None] * len(pieces)
    for f in (0, 1):
        other = [i for i, g in enumerate(fold) if g != f]
        w = min(weights, key=lambda w: median_error([attention[i] for i in other], [linear[i] for i in other], w))
        chosen.append(w)
        for i, g in enumerate(fold):
            if g == f:
                errors[i] = np.abs(w * attention[i] + (1 - w) * linear[i])
    return {"weights": chosen, "errors": errors}
