"""The one paired difference every findings writer uses, against scipy's t-test and a hand-counted sign test."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bnnprobe.analysis.stats import IDENTICAL, LARGER, NOT_CLEAR, SMALLER, UNDETERMINED, paired, paired_difference


def test_ci_is_scipys_one_sample_t_interval():
    diff = np.array([0.3, -0.1, 0.5, 0.2, 0.05, 0.4])
    got = paired(diff)
    ci = stats.ttest_1samp(diff, 0.0).confidence_interval(0.95)
    assert (got.low, got.high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert got.mean == pytest.approx(diff.mean()) and got.n == 6 and (got.above, got.below) == (5, 1)


def test_sign_test_is_the_binomial_tail_counted_by_hand():
    got = paired([1.0, 2.0, 3.0, 4.0, 5.0, 0.0, -1.0])  # 5 above, 1 below, one zero dropped
    tail = sum(math.comb(6, k) for k in (0, 1, 5, 6)) / 2**6
    assert got.sign_p == pytest.approx(tail)
    assert paired([0.5] * 5).sign_p == pytest.approx(2 / 2**5)


@pytest.mark.parametrize("diff,word", [
    ([1.0, 1.2, 0.9], LARGER), ([-1.0, -1.2, -0.9], SMALLER), ([1.0, -1.0, 0.1], NOT_CLEAR),
    ([0.0, 0.0, 0.0], IDENTICAL), ([0.4], UNDETERMINED)])
def test_one_vocabulary(diff, word):
    assert paired(diff).verdict == word


def test_pairs_are_matched_by_index_and_nans_dropped():
    a = pd.Series([1.0, 2.0, 3.0, np.nan], index=[(0, 0), (0, 1), (1, 0), (1, 1)])
    b = pd.Series([0.5, 1.0, 9.0], index=[(0, 1), (0, 0), (2, 0)])
    got = paired_difference(a, b)
    assert got.n == 2 and got.mean == pytest.approx(((1.0 - 1.0) + (2.0 - 0.5)) / 2)
