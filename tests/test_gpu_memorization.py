"""Memorization metrics (diffmix.gpu._memorization; issue 8 item 3): constructed cases with known answers.

The nearest-two search is compared with an independent brute force (NumPy float64 distance matrix
by explicit differences, full sort); the memorization indicator, class fractions, threshold
crossing, gap and bootstrap intervals with hand-computed values.
"""
import math

import numpy as np
import pytest
import torch

from diffmix.gpu._memorization import (MEMORIZATION_RATIO, bootstrap_fractions, class_fractions,
                                       log_memorization_gap, memorization_gap, memorized_mask, nearest_two,
                                       threshold_crossing_time)
from tolerances import BOOTSTRAP_WIDTH_RATIO, KNN_VS_BRUTE


def brute_force(queries, train):
    """d1, d2, index1 from the full float64 distance matrix (explicit differences, stable full sort)."""
    q = np.asarray(queries, dtype=np.float64).reshape(len(queries), -1)
    x = np.asarray(train, dtype=np.float64).reshape(len(train), -1)
    dist = np.sqrt(((q[:, None, :] - x[None, :, :]) ** 2).sum(axis=-1))
    order = np.argsort(dist, axis=1, kind="stable")
    rows = np.arange(len(q))
    return dist[rows, order[:, 0]], dist[rows, order[:, 1]], order[:, 0]


def assert_matches(ours, reference, *, exact=False):
    d1, d2, i1 = ours
    r1, r2, j1 = reference
    assert d1.dtype == np.float64 and d2.dtype == np.float64 and i1.dtype == np.int64
    if exact:
        np.testing.assert_array_equal(d1, r1)
        np.testing.assert_array_equal(d2, r2)
    else:
        np.testing.assert_allclose(d1, r1, rtol=KNN_VS_BRUTE, atol=0)
        np.testing.assert_allclose(d2, r2, rtol=KNN_VS_BRUTE, atol=0)
    np.testing.assert_array_equal(i1, j1)


# ---------------------------------------------------------------------- nearest_two


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_exact_copies_have_d1_zero_and_are_memorized(precision):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (300, 784)).astype(np.float64) / 255.0
    picks = rng.choice(300, size=40, replace=False)
    d1, d2, i1 = nearest_two(train[picks], train, precision=precision)
    assert np.all(d1 == 0.0)
    np.testing.assert_array_equal(i1, picks)
    assert np.all(d2 > 5.0)  # random uint8 images are ~ sqrt(784/6) ~ 11 apart
    assert memorized_mask(d1, d2).all()


def test_near_copies_are_memorized():
    rng = np.random.default_rng(1)
    train = rng.random((500, 784))
    picks = rng.choice(500, size=50, replace=False)
    noise = rng.standard_normal((50, 784))
    noise *= 0.05 / np.linalg.norm(noise, axis=1, keepdims=True)   # ||noise|| = 0.05 << d2 ~ 11
    d1, d2, i1 = nearest_two(train[picks] + noise, train)
    np.testing.assert_array_equal(i1, picks)
    np.testing.assert_allclose(d1, 0.05, rtol=1e-10)
    assert memorized_mask(d1, d2).all()
    assert np.max(d1 / d2) < 0.01


def test_fresh_gaussian_samples_are_not_memorized():
    # In high dimension all distances concentrate: d1/d2 -> 1 (D = 1000, N = 400, m = 100).
    rng = np.random.default_rng(2)
    train = rng.standard_normal((400, 1000))
    d1, d2, _ = nearest_two(rng.standard_normal((100, 1000)), train)
    assert not memorized_mask(d1, d2).any()
    assert np.min(d1 / d2) > 0.9


@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("batch_size", [None, 7])
def test_nearest_two_matches_brute_force_random(precision, batch_size):
    rng = np.random.default_rng(3)
    train = rng.random((257, 64))
    queries = np.concatenate([rng.random((30, 64)), train[[5, 9]] + 1e-3 * rng.standard_normal((2, 64)),
                              train[[100]]])
    ours = nearest_two(queries, train, precision=precision, batch_size=batch_size)
    assert_matches(ours, brute_force(queries, train))


@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("n_candidates", [2, 3, 8])
def test_nearest_two_ties_and_duplicates(precision, n_candidates):
    """Small-integer data: many exactly tied distances, duplicated training rows, a query equal to a duplicate.

    Squared distances of integer vectors are exact in float64, so d1, d2 must equal the brute force
    exactly, and index1 must be the smallest index among the tied nearest rows (the stable sort's
    first). n_candidates = 2 forces the certified fallback on every row.
    """
    rng = np.random.default_rng(4)
    train = rng.integers(0, 3, (120, 6)).astype(np.float64)
    train[50] = train[10]
    train[51] = train[10]
    queries = np.concatenate([rng.integers(0, 3, (40, 6)).astype(np.float64), train[[10, 50, 7]]])
    ours = nearest_two(queries, train, precision=precision, batch_size=9, n_candidates=n_candidates)
    assert_matches(ours, brute_force(queries, train), exact=True)
    d1, d2, i1 = ours
    assert d1[40] == 0.0 and d2[40] == 0.0 and i1[40] == 10 and i1[41] == 10
    assert memorized_mask(d1, d2)[40:42].all()


def test_nearest_two_accepts_torch_and_image_shapes():
    rng = np.random.default_rng(5)
    train = rng.random((50, 28, 28))
    queries = rng.random((9, 28, 28))
    flat = nearest_two(queries.reshape(9, -1), train.reshape(50, -1))
    for got in (nearest_two(queries, train), nearest_two(torch.from_numpy(queries).float(), train)):
        # float32 queries are rounded: agreement with the float64 answer to float32 precision only
        np.testing.assert_allclose(got[0], flat[0], rtol=1e-6)
        np.testing.assert_array_equal(got[2], flat[2])
    assert_matches(nearest_two(queries, train), brute_force(queries, train))


def test_nearest_two_bad_inputs():
    rng = np.random.default_rng(6)
    train = rng.random((10, 4))
    with pytest.raises(ValueError, match="queries, train"):
        nearest_two(rng.random((3, 5)), train)
    with pytest.raises(ValueError, match="train: 1 row"):
        nearest_two(rng.random((3, 4)), train[:1])
    bad = rng.random((3, 4))
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="queries: contains NaN"):
        nearest_two(bad, train)
    with pytest.raises(ValueError, match="train: contains NaN"):
        nearest_two(rng.random((3, 4)), np.where(train > 0.9, np.inf, train))
    with pytest.raises(ValueError, match="precision"):
        nearest_two(rng.random((3, 4)), train, precision="float16")
    with pytest.raises(ValueError, match="batch_size"):
        nearest_two(rng.random((3, 4)), train, batch_size=0)
    with pytest.raises(ValueError, match="n_candidates"):
        nearest_two(rng.random((3, 4)), train, n_candidates=1)


@pytest.mark.gpu
def test_nearest_two_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(7)
    train = rng.integers(0, 256, (3000, 784)).astype(np.float64) / 255.0
    queries = np.concatenate([rng.integers(0, 256, (200, 784)) / 255.0, train[:20]])
    reference = brute_force(queries, train)
    for precision in ("float32", "float64"):
        assert_matches(nearest_two(queries, train, device="cuda", precision=precision), reference)
    assert np.all(nearest_two(queries, train, device="cuda")[0][200:] == 0.0)


# ---------------------------------------------------------------------- indicator and fractions


def test_memorized_mask_threshold_and_duplicates():
    d1 = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 2.0])
    d2 = np.array([0.0, 5.0, 3.0, 3.0 + 1e-12, 2.0, 2.0])
    # d2 == 0 (the training set holds the sample twice): memorized; ratio exactly 1/3: not (strict <).
    assert memorized_mask(d1, d2, ratio=1 / 3).tolist() == [True, True, False, True, False, False]
    assert memorized_mask(d1, d2, ratio=0.6).tolist() == [True, True, True, True, True, False]
    assert MEMORIZATION_RATIO == 1 / 3
    with pytest.raises(ValueError, match="d1 > d2"):
        memorized_mask([2.0], [1.0])
    with pytest.raises(ValueError, match="ratio"):
        memorized_mask([0.0], [1.0], ratio=0.0)


def test_mixed_set_fractions_exactly_as_constructed():
    """Class 0: 30 of 40 samples copy a training row; class 1: 10 of 60; all others fresh."""
    rng = np.random.default_rng(8)
    train = rng.standard_normal((600, 400))
    copies = rng.choice(600, size=40, replace=False)
    fresh = rng.standard_normal((60, 400))
    near = train[copies] + 1e-3 * rng.standard_normal((40, 400))
    queries = np.concatenate([near[:30], fresh[:10], near[30:], fresh[10:]])
    classes = np.repeat([0, 1], [40, 60])
    d1, d2, _ = nearest_two(queries, train)
    fractions, counts = class_fractions(memorized_mask(d1, d2), classes)
    assert counts.tolist() == [40, 60]
    assert fractions[0] == 30 / 40 and fractions[1] == 10 / 60


def test_class_fractions_empty_class_is_nan():
    fractions, counts = class_fractions(np.array([True, False, True]), np.array([0, 0, 0]), 2)
    assert fractions[0] == 2 / 3 and math.isnan(fractions[1]) and counts.tolist() == [3, 0]
    with pytest.raises(ValueError, match="classes"):
        class_fractions(np.array([True]), np.array([2]), 2)
    with pytest.raises(ValueError, match="memorized"):
        class_fractions(np.array([1]), np.array([0]), 2)


# ---------------------------------------------------------------------- bootstrap


def test_bootstrap_covers_narrows_and_is_reproducible():
    rng = np.random.default_rng(9)

    def sample(m):
        classes = rng.integers(0, 2, m)
        memorized = rng.random(m) < np.where(classes == 0, 0.3, 0.6)
        return memorized, classes

    mem, cls = sample(400)
    point, _ = class_fractions(mem, cls)
    lo, hi = bootstrap_fractions(mem, cls, n_boot=2000, seed=1)
    assert np.all(lo <= point) and np.all(point <= hi)
    again = bootstrap_fractions(mem, cls, n_boot=2000, seed=1)
    np.testing.assert_array_equal(again[0], lo)
    np.testing.assert_array_equal(again[1], hi)
    assert not np.array_equal(bootstrap_fractions(mem, cls, n_boot=2000, seed=2)[0], lo)
    # Width ~ 1/sqrt(m): 4x the samples halves the interval.
    mem4, cls4 = sample(1600)
    lo4, hi4 = bootstrap_fractions(mem4, cls4, n_boot=2000, seed=1)
    ratio = (hi - lo) / (hi4 - lo4)
    assert np.all((BOOTSTRAP_WIDTH_RATIO[0] < ratio) & (ratio < BOOTSTRAP_WIDTH_RATIO[1])), ratio
    # Level: the 90 % interval of a proportion is close to +-1.645 sqrt(f (1 - f) / m_c).
    expected = 2 * 1.645 * np.sqrt(point * (1 - point) / np.bincount(cls))
    np.testing.assert_allclose(hi - lo, expected, rtol=0.2)


def test_bootstrap_absent_class_and_bad_inputs():
    lo, hi = bootstrap_fractions(np.array([True, False, True]), np.array([0, 0, 0]), n_boot=50, seed=0)
    assert math.isnan(lo[1]) and math.isnan(hi[1]) and 0.0 <= lo[0] <= hi[0] <= 1.0
    with pytest.raises(ValueError, match="level"):
        bootstrap_fractions(np.array([True]), np.array([0]), seed=0, level=1.0)
    with pytest.raises(ValueError, match="seed"):
        bootstrap_fractions(np.array([True]), np.array([0]), seed=-1)


# ---------------------------------------------------------------------- threshold crossing and gap


def test_threshold_crossing_hand_example():
    # First crossing of 1/3 between 1e3 (0.2) and 1e4 (0.6): weight (1/3 - 0.2) / 0.4 = 1/3 of a decade.
    steps = [10, 100, 1000, 10000, 100000]
    t = threshold_crossing_time(steps, [0.0, 0.1, 0.2, 0.6, 0.2])
    assert t == pytest.approx(10 ** (3 + 1 / 3), rel=1e-14)
    # Linear in the step instead: 1000 + (1/3) * 9000.
    assert threshold_crossing_time(steps, [0.0, 0.1, 0.2, 0.6, 0.2], log=False) == pytest.approx(4000.0, rel=1e-14)


def test_threshold_crossing_never_exact_first_and_nan():
    steps = np.array([1.0, 10.0, 100.0, 1000.0])
    assert threshold_crossing_time(steps, [0.0, 0.1, 0.3, 0.33]) is None
    assert threshold_crossing_time(steps, [0.0, 0.25, 0.5, 0.7], threshold=0.5) == 100.0   # exactly at threshold
    assert threshold_crossing_time(steps, [0.4, 0.5, 0.6, 0.7]) == 1.0                    # already above
    # A NaN (no sample of the class) is skipped: bracket is (1, 0.0) -> (100, 2/3), midpoint in log = 10.
    assert threshold_crossing_time(steps, [0.0, np.nan, 2 / 3, 0.7]) == pytest.approx(10.0, rel=1e-14)
    with pytest.raises(ValueError, match="steps"):
        threshold_crossing_time([0, 10, 100], [0.0, 0.1, 0.5])
    with pytest.raises(ValueError, match="steps"):
        threshold_crossing_time([10, 10, 100], [0.0, 0.1, 0.5])


def test_memorization_gap_eq147():
    assert memorization_gap(5000.0, 2000.0) == 3000.0      # partner memorized first: positive
    assert memorization_gap(2000.0, 5000.0) == -3000.0
    assert memorization_gap(None, 2000.0) is None and memorization_gap(2000.0, None) is None
    assert log_memorization_gap(1e5, 1e3) == pytest.approx(2.0, rel=1e-15)
    assert log_memorization_gap(None, 1e3) is None
