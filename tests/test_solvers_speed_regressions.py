"""Regression tests of the faster resolvent continuation and edge continuation (issue 5).

solve_resolvent now continues in eta with a Hermite predictor (values and tangents, in log m
against log eta or in m against eta) and an adaptive step, polishes the real-axis solution,
solves small batches on one thread and deals large ones to the threads interleaved; edge_path
runs its fold Newton compiled.  These tests pin what must not regress:

* the work: Newton iterations on the 1000-point Fig. 2 density grid (before: median 262 per
  point, 256036 in all; now: median 47, 47608), a deterministic stand-in for the timing of
  benchmarks/bench_density.py;
* results independent of the thread count and of the batch size (serial and parallel paths);
* points that the old continuation or an earlier state of the new one got wrong (near edges:
  the real-axis solve is now polished) or left unconverged, against 60-digit references
  (``mp_reference`` below: the script that produced them; the slow test recomputes them);
* the compiled fold Newton of edge_path against the Python one of find_edges.

Tolerances are stated where used (relative, float64 solves).
"""
from __future__ import annotations

import mpmath
import numba
import numpy as np
import pytest

from diffmix.derivations import load_spectral
from diffmix.solvers import SpectralParams, find_edges, solve_resolvent
from diffmix.theory import Model

#: Newton iterations allowed on the Fig. 2 grid: ~1.5x what the continuation needs now (median
#: 47, total 47608), a fifth of the old continuation's.
ITER_MEDIAN_MAX, ITER_TOTAL_MAX = 70, 72000
#: Points just outside an edge (real m, density 0): near a fold a residual of 1e-12 leaves m
#: wrong by ~sqrt(1e-12) with a spurious Im m, which the real-axis solve now polishes away (seen:
#: 1.3e-11 at the Fig. 2 point, 3.1e-9 in the near-cusp model; 1.2e-8 and 7.7e-6, density > 0,
#: without the polish; the old continuation: 2.6e-4, eta-broadened, and 7.7e-6, density > 0).
NEAR_FOLD = 1e-8
#: Away from folds the real-axis solution is as accurate as the residual (seen: <= 1e-15).
REGULAR = 1e-12
#: Compiled and Python fold Newton: the same iteration from the same start, stopped at a step
#: below 1e-13 relative (seen: <= 2e-14).
FOLD_NB_VS_PY = 1e-12

FIG2 = Model("tanh", 0.001, 60.0, 30.0, (0.5, 0.5), (0.5, 0.25))
#: Central bulk's lower edge of the Fig. 2 model (spectrum.md §5).
FIG2_CENTRAL_LOWER = 7.75408725179372748420807227576e-4
#: (model, lambda, m0, m1): 60-digit references by mp_reference (m1 and m0 are real there).
REFERENCES = {
    # In the gap just below the central bulk: the old continuation stalled short of eta_f (Im m at
    # round-off flipped sign) and returned m at eta = 7.8e-11.
    "fig2-near-edge": (FIG2, FIG2_CENTRAL_LOWER * (1 - 1e-10),
                       -454.1638539519696, -0.23717151946223206),
    # Between the upper edge of the first bulk (5.5e-6 below) and a crossing with the spurious
    # P = 0 branch: the real roots are nearly double; old and unpolished solves returned
    # Im m0 ~ 1e-3 (a density where there is none).
    "near-cusp-edge": (Model("erf", 0.001, 12.0, 1.203125, (1.0,), (2.0,)), 0.006135558524582861,
                       -170.13109663339208, -170.14368749574),
    # Below the atom: an intermediate version of the new continuation accepted steps with a
    # corrector residual of 1e-9, which leaves Im m1 ~ 1e-12 |m1| to the predictor's round-off;
    # its sign flipped and the continuation failed (flagged, not converged).
    "below-atom-3-classes": (Model("tanh", 0.0052252651002908865, 22.74013420167984,
                                   17.677903539241232,
                                   (0.4966547609554084, 0.14737273360452297, 0.3559725054400685),
                                   (0.21382991998565043, 1.6736560879241258, 1.5848416996029326)),
                             1e-7, 524.8045021410308, 1.0457651608449812),
    # Below the atom: the old continuation failed here (flagged, eta = 1.4e-12).
    "below-atom-1-class": (Model("erf", 0.01853794817028583, 12.77333745438725,
                                 1.7324098175347036, (1.0,), (0.6344381865479004,)),
                           1.080052374516254e-07, 206.00417203285852, 2.602039115333232),
}

_mp = load_spectral("mp")


def mp_reference(p: SpectralParams, lam: float, dps: int = 60) -> tuple[complex, complex]:
    """g(lambda + i0) and m1 by eta-continuation at ``dps`` digits: from eta = 10(|lambda| + 1),
    m = -1/z, down to 1e-25 lambda with a secant predictor and small steps (every correction
    < 1% and Im m0, Im m1 > 0, resolved at these digits), then Newton at eta = 0."""
    with mpmath.workdps(dps):
        args = (mpmath.mpf(p.psi_p), mpmath.mpf(p.psi_p) / mpmath.mpf(p.psi_n),
                mpmath.mpf(p.beta), mpmath.mpf(p.s2), [mpmath.mpf(x) for x in p.rho],
                [mpmath.mpf(x) for x in p.alpha], [mpmath.mpf(x) for x in p.v2])
        eps = mpmath.mpf(10) ** (10 - dps)

        def newton(m0, m1, z):
            for _ in range(100):
                F1, F2, _, _, J00, J01, J10, J11 = _mp.residual(m0, m1, z, *args)
                det = J00 * J11 - J01 * J10
                d0, d1 = (J11 * F1 - J01 * F2) / det, (J00 * F2 - J10 * F1) / det
                m0, m1 = m0 - d0, m1 - d1
                if abs(d0) <= eps * abs(m0) and abs(d1) <= eps * abs(m1):
                    return m0, m1, True
            return m0, m1, False

        lam = mpmath.mpf(lam)
        eta = 10 * (abs(lam) + 1)
        m0, m1, _ = newton(-1 / mpmath.mpc(lam, eta), -1 / mpmath.mpc(lam, eta),
                           mpmath.mpc(lam, eta))
        fac, prev = mpmath.mpf("0.5"), None
        while eta > mpmath.mpf(10) ** -25 * lam:
            new = eta * fac
            if prev is None:
                q0, q1 = m0, m1
            else:
                w = (new - eta) / (eta - prev[0])
                q0, q1 = m0 + (m0 - prev[1]) * w, m1 + (m1 - prev[2]) * w
            a0, a1, ok = newton(q0, q1, mpmath.mpc(lam, new))
            if (not ok or abs(a0 - q0) > 0.01 * abs(a0) or abs(a1 - q1) > 0.01 * abs(a1)
                    or a0.imag <= 0 or a1.imag <= 0):
                fac, prev = fac ** 0.5, None
                if fac > 0.9999:
                    raise ArithmeticError("reference continuation failed")
                continue
            prev, m0, m1, eta = (eta, m0, m1), a0, a1, new
            fac = max(fac ** 1.5, mpmath.mpf("0.1"))
        r0, r1, ok = newton(m0, m1, mpmath.mpc(lam, 0))
        if not ok or abs(r0 - m0) > mpmath.mpf(10) ** -6 * abs(m0):
            raise ArithmeticError("reference real-axis solve failed")
        return complex(r0), complex(r1)


@pytest.fixture(scope="module")
def fig2():
    return SpectralParams.from_model(FIG2)


def fig2_grid(p: SpectralParams) -> np.ndarray:
    """bench_density.py's points: 1000 log-spaced over the Fig. 2 support."""
    spec = find_edges(p)
    return np.geomspace(spec.edges[0][0], spec.edges[-1][1], 1000)


def test_fig2_density_iteration_budget(fig2):
    res = solve_resolvent(fig2, fig2_grid(fig2), strict=True)
    assert np.all(res.eta == 0)
    assert np.median(res.n_iter) <= ITER_MEDIAN_MAX and res.n_iter.sum() <= ITER_TOTAL_MAX, (
        f"Newton iterations: median {np.median(res.n_iter)}, total {res.n_iter.sum()}")


def test_results_independent_of_threads_and_batch(fig2):
    """Each point is solved by the same compiled code whatever the thread count, batch size
    (below 128 points: one thread) or order in which the threads take the points."""
    lam = np.geomspace(1e-5, 30, 301)
    ref = solve_resolvent(fig2, lam)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = solve_resolvent(fig2, lam)
    finally:
        numba.set_num_threads(threads)
    chunks = [solve_resolvent(fig2, lam[i:i + 50]) for i in range(0, lam.size, 50)]
    batched = (np.concatenate([c.m0 for c in chunks]), np.concatenate([c.n_iter for c in chunks]))
    for m0, its in ((one.m0, one.n_iter), batched):
        np.testing.assert_array_equal(m0, ref.m0)
        np.testing.assert_array_equal(its, ref.n_iter)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_points_against_60_digit_references(name):
    model, lam, m0_ref, m1_ref = REFERENCES[name]
    p = SpectralParams.from_model(model)
    res = solve_resolvent(p, [lam], strict=True)
    tol = NEAR_FOLD if "edge" in name else REGULAR
    assert res.eta[0] == 0, f"returned at eta = {res.eta[0]}, not on the real axis"
    assert abs(res.m0[0] - m0_ref) <= tol * abs(m0_ref), (res.m0[0], m0_ref)
    assert abs(res.m1[0] - m1_ref) <= tol * abs(m1_ref), (res.m1[0], m1_ref)
    assert res.density[0] <= tol * abs(m0_ref)  # outside the support: density 0


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_references_reproduce(name):
    """The stored references are what mp_reference gives (60 digits; ~10 s each)."""
    model, lam, m0_ref, m1_ref = REFERENCES[name]
    m0, m1 = mp_reference(SpectralParams.from_model(model), lam)
    assert m0.real == pytest.approx(m0_ref, rel=1e-15) and abs(m0.imag) <= 1e-30 * abs(m0)
    assert m1.real == pytest.approx(m1_ref, rel=1e-15) and abs(m1.imag) <= 1e-30 * abs(m1)


def test_compiled_fold_newton_matches_find_edges_one():
    """edge_path's fold Newton (compiled) against find_edges' (Python): from the Fig. 2 edges,
    the folds of neighbouring variance ratios (fixed mean variance 0.375) and of a model where
    the bulk structure changes (the Newton may fail there: both must say so alike)."""
    from diffmix.solvers._continuation import _fold_newton_nb
    from diffmix.solvers._spectrum import _fold_newton
    spec = find_edges(SpectralParams.from_model(FIG2))
    for q in (0.45, 0.55, 0.6, 0.2):
        s1 = 0.375 / (0.5 + 0.5 * q)
        p = SpectralParams.from_model(Model("tanh", 0.001, 60.0, 30.0, (0.5, 0.5), (s1, q * s1)))
        for b in spec.bulks:
            for e in (b.lower, b.upper):
                x, r_py, it_py = _fold_newton(e.m0, e.m1, e.lam, p)
                m0, m1, lam, r_nb, it_nb = _fold_newton_nb(e.m0, e.m1, e.lam, 60, *p.args())
                assert np.isfinite(r_py) == np.isfinite(r_nb) and it_py == it_nb
                if np.isfinite(r_py):
                    assert np.allclose([m0, m1, lam], x, rtol=FOLD_NB_VS_PY, atol=0)
