"""Asymptotic edges of App. F.3.1 (solvers/_asymptotics.py) against the full solution (find_edges).

The full spectrum (spectrum.md §2-5) is solved at (psi_p, psi_n) = (400 k^2, 20 k), k = 1 and 3, so
that psi_n/psi_p = 1/(20 k) and 1/psi_n = 1/(20 k) both shrink by 3 (and sqrt(psi_n/psi_p) by
sqrt 3); the coefficients are those of tanh at t = 0.001 for the stated variances.  Each formula's
relative error must shrink by the factor written in the test, a bit below the factor seen when the
test was written (seen values in the comments; errors = exact / formula - 1).

Besides, the scalings stated in the paper's prose (Sec. 3.2, App. F.3.1, Fig. 9) are checked on
the full solution: the leftmost bulk's lower edge and width are linear in Delta_t; its width
decays as psi_n^{-3/2} at fixed psi_p (local exponent -1.54 between psi_n = 40 and 80 at
psi_p = 8000), not as the paper's psi_n^{-2}.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from diffmix.solvers import (SpectralParams, find_edges, leftmost_edges_asymptotic,
                             memorization_edge_asymptotic, timescales_asymptotic)
from diffmix.theory import Model

CASES = {  # name: (weights, variances)
    "one-class": ((1.0,), (1.0,)),
    "fig2": ((0.5, 0.5), (0.5, 0.25)),
    "imbalanced": ((0.7, 0.3), (0.5, 0.125)),
}


@functools.lru_cache(maxsize=None)
def _coefficients(case: str, t: float = 0.001) -> SpectralParams:
    rho, sig2 = CASES[case]
    return SpectralParams.from_model(Model("tanh", t, 60.0, 30.0, list(rho), list(sig2)))


@functools.lru_cache(maxsize=None)
def _solved(case: str, psi_p: float, psi_n: float, t: float = 0.001):
    b = _coefficients(case, t)
    p = SpectralParams(psi_p, psi_n, b.rho, b.alpha, b.v2, b.beta, b.s2)
    spec = find_edges(p)
    assert spec.converged, spec.message
    return p, spec


def _at(case: str, k: int):
    return _solved(case, 400.0 * k * k, 20.0 * k)


@pytest.mark.parametrize("case", list(CASES))
def test_memorization_edge_approaches_formulas(case):
    """Upper edge of the bulk left of the rightmost one (1/tau_mem).  Seen (k = 1 -> 3):
    leading +0.48 -> +0.27 (one class), +0.33 -> +0.19, +0.39 -> +0.23 (ratio ~ sqrt 3: the MP
    spread 2 sqrt(psi_n/psi_p)); mp -6e-6, +1e-7 (one class), +8.4e-3 -> +2.8e-3, +1.0e-3 -> +3.0e-4
    (level repulsion of the other pieces, O(psi_n/psi_p)); free +9.8e-5 -> +4.8e-6,
    +1.4e-5 -> +6.6e-7."""
    err = {}
    for k in (1, 3):
        p, spec = _at(case, k)
        exact = spec.edges[-2][1]
        for kind in ("leading", "mp", "free"):
            err[kind, k] = exact / memorization_edge_asymptotic(p, kind) - 1
    assert abs(err["leading", 3]) < abs(err["leading", 1]) / 1.5
    if case == "one-class":
        assert max(abs(err[kind, k]) for kind in ("mp", "free") for k in (1, 3)) < 2e-5
    else:
        assert abs(err["mp", 3]) < abs(err["mp", 1]) / 2.5 and abs(err["mp", 1]) < 1e-2
        assert abs(err["free", 3]) < abs(err["free", 1]) / 8 and abs(err["free", 1]) < 2e-4


@pytest.mark.parametrize("case", list(CASES))
def test_leftmost_edges_approach_formulas(case):
    """Leftmost bulk [lower, upper] (1/tau_final = lower).  Seen (k = 1 -> 3), largest edge error
    and width error: free 1.3e-2 -> 3.2e-3 and 1.6e-2 -> 5.7e-3 (one class), 1.1e-2 -> 2.5e-3 and
    1.9e-2 -> 6.3e-3, 7.5e-3 -> 1.9e-3 and 1.1e-2 -> 3.8e-3; leading 9.7e-2 -> 3.3e-2 and
    6.9e-2 -> 2.3e-2, 1.2e-1 -> 4.1e-2 and 7.6e-2 -> 2.5e-2, 2.2e-1 -> 7.6e-2 and
    1.1e-1 -> 3.5e-2."""
    edge_err, width_err = {}, {}
    for k in (1, 3):
        p, spec = _at(case, k)
        lo, hi = spec.edges[0]
        assert spec.bulks[0].mass == pytest.approx(1 / p.psi_p, rel=1e-6)  # the d eigenvalues
        for kind in ("leading", "free"):
            a_lo, a_hi = leftmost_edges_asymptotic(p, kind)
            edge_err[kind, k] = max(abs(lo / a_lo - 1), abs(hi / a_hi - 1))
            width_err[kind, k] = abs((hi - lo) / (a_hi - a_lo) - 1)
    for kind in ("leading", "free"):
        assert edge_err[kind, 3] < edge_err[kind, 1] / 2.5
        assert width_err[kind, 3] < width_err[kind, 1] / 2.5
    assert edge_err["free", 1] < 1.5e-2 and width_err["free", 1] < 2.5e-2


def test_one_class_closed_forms():
    """For C = 1 the formulas are closed: memorization upper edge
    s2 + v2 (sqrt(psi_p - 1) + sqrt(psi_n - 1))^2 / psi_n ("mp"), leftmost edges
    s2 + (r - 1) v2 beta / (alpha (1 +- psi_n^{-1/2})^2 + beta) ("free"); the general root-finding
    code must reproduce them (float64 round-off)."""
    p = SpectralParams(3600.0, 60.0, np.array([1.0]), np.array([0.366]), np.array([0.0272]),
                       7.3e-4, 1.9e-4)
    a, v, b, s2, x = 0.366, 0.0272, 7.3e-4, 1.9e-4, 60.0 ** -0.5
    lo, hi = leftmost_edges_asymptotic(p, "free")
    assert lo == pytest.approx(s2 + (60 - 1) * v * b / (a * (1 + x) ** 2 + b), rel=1e-12)
    assert hi == pytest.approx(s2 + (60 - 1) * v * b / (a * (1 - x) ** 2 + b), rel=1e-12)
    assert memorization_edge_asymptotic(p, "mp") == pytest.approx(
        s2 + v * (math.sqrt(3599) + math.sqrt(59)) ** 2 / 60, rel=1e-14)
    assert memorization_edge_asymptotic(p, "leading") == pytest.approx(s2 + 60 * v, rel=1e-14)


def test_timescales_asymptotic_against_full_solution():
    """Fig. 2 variances at (psi_p, psi_n) = (3600, 60): tau_mem and tau_final from the "free"
    formulas within 0.5% (seen 5e-6, 0.25%), tau_gen within 6% (the rightmost "free" formula is
    first order in psi_n^{-1/2}; seen 2.3%); "leading": tau_mem within 25% (seen 19%, the
    O(sqrt(psi_n/psi_p)) spread) and tau_final within 6% (seen 4.1%)."""
    p, spec = _at("fig2", 3)
    ts = spec.timescales
    free, lead = timescales_asymptotic(p, "free"), timescales_asymptotic(p, "leading")
    assert free["tau_mem"] == pytest.approx(ts["tau_mem"], rel=5e-3)
    assert free["tau_final"] == pytest.approx(ts["tau_final"], rel=5e-3)
    assert free["W_mem"] == pytest.approx(ts["W_mem"], rel=5e-3)
    assert free["tau_gen"] == pytest.approx(ts["tau_gen"], rel=6e-2)
    assert lead["tau_mem"] == pytest.approx(ts["tau_mem"], rel=0.25)
    assert lead["tau_final"] == pytest.approx(ts["tau_final"], rel=6e-2)
    assert free["time_unit"] == "1/lambda"


def test_leftmost_width_decays_as_psi_n_to_minus_three_halves():
    """Paper (App. F.3.1, Fig. 9): width of the leftmost bulk ~ Delta_t / psi_n^2.  At fixed
    psi_p = 8000 the full solution gives the local exponent d log(width) / d log(psi_n) = -1.542
    between psi_n = 40 and 80 (-1.657 between 10 and 20, tending to -3/2 from below), and the
    "free" formula -1.546: the correct scaling is psi_n^{-3/2} (width ~ beta psi_p psi_n^{-3/2})."""
    widths, formula = [], []
    for psi_n in (40.0, 80.0):
        p, spec = _solved("fig2", 8000.0, psi_n)
        widths.append(spec.edges[0][1] - spec.edges[0][0])
        lo, hi = leftmost_edges_asymptotic(p, "free")
        formula.append(hi - lo)
    exponent = math.log(widths[1] / widths[0]) / math.log(2.0)
    assert -1.6 < exponent < -1.5
    assert math.log(formula[1] / formula[0]) / math.log(2.0) == pytest.approx(exponent, abs=0.01)


def test_leftmost_bulk_linear_in_diffusion_time():
    """Paper (Sec. 3.2, Fig. 9): lambda_min(leftmost) and its width are linear in Delta_t as
    t -> 0.
    (psi_p, psi_n) = (1600, 40), Fig. 2 variances: lambda_min / Delta_t = 0.4320, 0.4289 and
    width / Delta_t = 0.3810, 0.3763 at t = 0.0005, 0.001 (equal within 1.5%)."""
    ratios = []
    for t in (0.0005, 0.001):
        p, spec = _solved("fig2", 1600.0, 40.0, t)
        delta = -math.expm1(-2 * t)
        lo, hi = spec.edges[0]
        ratios.append((lo / delta, (hi - lo) / delta))
    assert ratios[0] == pytest.approx(ratios[1], rel=1.5e-2)


@pytest.mark.parametrize("call, message", [
    (lambda p: memorization_edge_asymptotic(p, "bulk"), "kind = 'bulk'"),
    (lambda p: leftmost_edges_asymptotic(p, "mp"), "kind = 'mp'"),
    (lambda p: timescales_asymptotic(p, "mp"), "kind = 'mp'"),
    (lambda p: leftmost_edges_asymptotic(SpectralParams(
        p.psi_p, p.psi_n, p.rho, p.alpha, p.v2, 0.0, p.s2)), "beta = 0"),
    (lambda p: memorization_edge_asymptotic(SpectralParams(
        4.0, 3.5, p.rho, p.alpha, p.v2, p.beta, p.s2)), "psi_p > psi_n \\+ 1"),
    (lambda p: memorization_edge_asymptotic(SpectralParams(
        400.0, 1.5, p.rho, p.alpha, p.v2, p.beta, p.s2), "free"), "rho_c psi_n > 1"),
])
def test_refuses_outside_the_regime(call, message):
    with pytest.raises(ValueError, match=message):
        call(_coefficients("fig2"))
