"""Analytic train error (paper eq. (134); dynamics.md §10b) against independent computations.

* The values dynamics.md §10b reports (its own solver on a 20000-point grid, 5 digits).
* Finite size: the gradient-flow train error of sampled GEP matrices (theory/_flow.py, one
  eigendecomposition per draw) at d = 300, 2 seeds: within the finite-size spread the note
  measured (<= 2e-3).
* The least-squares limit equals the tau -> inf limit of the curve; tau = 0 gives 1; the
  K-weighted mass is 1; an unconverged time is flagged, and raises with strict=True.
"""
from __future__ import annotations

import numpy as np
import pytest

from diffmix.solvers._train_error import train_error_analytic
from diffmix.theory import Model

MODEL = Model("tanh", 0.01, 4.0, 2.0, [0.5, 0.5], [0.5, 0.25])


def test_values_of_the_note():
    r = train_error_analytic(MODEL, [0.0, 1.0, 1e3, np.inf])
    assert r.converged.all() and r.time_unit == "tau/p"
    assert r.train[0] == 1.0
    # dynamics.md §10b: 0.93665 (tau/p = 1), 0.67487 (1e3); test-error.md §6b: LS 0.673951
    assert r.train[1] == pytest.approx(0.93665, abs=6e-6)
    assert r.train[2] == pytest.approx(0.67487, abs=6e-6)
    assert r.train[3] == pytest.approx(0.673951, abs=6e-7)
    assert r.kernel_mass == pytest.approx(1.0, abs=1e-8)


def test_against_finite_size_gradient_flow():
    from diffmix.validation._curves import gep_flow
    taus = np.array([1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3])
    theory = train_error_analytic(MODEL, taus).train
    for seed in (0, 1):
        flow = gep_flow(MODEL, 300, seed=seed, cache=False)
        finite = flow.errors(taus * flow.p).train
        np.testing.assert_allclose(finite, theory, atol=2e-3, rtol=0)
    # and the curve is not trivially flat: it spans 0.33 over these times
    assert theory[0] - theory[-1] > 0.3


def test_monotone_and_flagged():
    taus = np.geomspace(1e-3, 1e5, 30)
    r = train_error_analytic(MODEL, taus)
    assert np.all(np.diff(r.train) <= 1e-15)          # flat to round-off once converged to LS
    coarse = train_error_analytic(MODEL, taus, tol=1e-15, max_nodes=128)
    assert not coarse.converged.all()
    with pytest.raises(ArithmeticError, match="not converged"):
        train_error_analytic(MODEL, taus, tol=1e-15, max_nodes=128, strict=True)
    with pytest.raises(ValueError, match="tau_over_p"):
        train_error_analytic(MODEL, [-1.0])
