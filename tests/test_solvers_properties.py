"""Property tests of the spectral solvers over random centered mixtures (hypothesis).

Models: C = 1..3 classes, weights from a Dirichlet-like draw (independent uniforms normalised to
sum 1), variances in [0.05, 2], t log-uniform in [1e-3, 1], psi_n in [1.2, 20],
psi_p in [psi_n + 1.5, 80] (so the atom at s2 and the memorization bulk exist, spectrum.md §5),
activation tanh or erf (odd: mu0 = 0); built as ``Model`` and passed through
``SpectralParams.from_model``.

Properties (spectrum.md §2-5):

* ``solve_resolvent`` on a grid: where a point is flagged converged, Im m0, Im m1 >= -tiny
  (physical branch), the density is >= 0, and (F1, F2), re-evaluated here in plain numpy
  (independently of the emitted kernel), vanish at the returned (m0, m1, lambda + i eta).
* ``find_edges`` either says ``converged = True`` and then: bulk masses + atom = 1 within 1e-6;
  edges ascending, lower < upper <= next lower; every edge a fold: F1 = F2 = 0 re-evaluated with
  the float64 kernel, and the fold of (F1, F2, det d(F1, F2)/d(m0, m1)) polished with mpmath from
  the edge coincides with it (lambda to 1e-12, (m0, m1) to 1e-6; the float64 det J is too
  ill-conditioned next to the atom to be tested directly); density > 0 at every bulk midpoint,
  and zero (a real solution on the real axis) at every gap midpoint, between the atom and the
  leftmost bulk, and above the rightmost bulk -- or it says ``converged = False`` with a
  non-empty message that describes the returned result (a mass it quotes is the returned one).
  A flagged failure is allowed; a silent wrong number is not.

Models that failed once are kept in ``FOUND`` and checked on every run.

The default budget keeps this file well under a minute; the ``slow`` variants draw more models.
Tolerances are relative and stated where used (float64 solves; folds from a float64 Newton).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffmix.derivations import load_spectral
from diffmix.solvers import SpectralParams, find_edges, polish_edge, solve_resolvent
from diffmix.theory import Model

_residual = load_spectral("f64").residual

#: Budget of the default run (the whole file < 60 s on 2 cores) and of the slow variants.  A
#: flagged edge-search failure costs find_edges seconds per scan refinement (up to ~20 s with
#: the default max_refine = 3), so the default run allows one refinement; the slow run uses
#: find_edges' defaults.
N_RESOLVENT, N_EDGES, MAX_REFINE_FAST = 25, 15, 1
N_RESOLVENT_SLOW, N_EDGES_SLOW = 150, 60
_SETTINGS = dict(deadline=None, database=None, print_blob=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: The default run draws the same models every time (derandomize: a reproducible, time-bounded
#: check); the slow run draws new ones each time (to find new failures; add them to FOUND).
_FAST = dict(_SETTINGS, derandomize=True)

#: Physical branch: Im m >= -BRANCH_TOL |m| (round-off of a real solution).
BRANCH_TOL = 1e-10
#: Relative residual of F1, F2 (terms summed in absolute value) at a converged resolvent point.
RESOLVENT_RESIDUAL = 1e-10
#: An edge is a fold: relative residual of F1, F2 there (float64 kernel); and the fold of the
#: same equations polished with mpmath from the edge (verified at two precisions) is within
#: FOLD_LAM of lambda (the float64 edge accuracy the package promises elsewhere, 1e-12) and within
#: FOLD_M of (m0, m1) (sqrt(eps)-level: at a fold m is determined to ~sqrt of the lambda error).
#: The float64 det J itself is not a usable test: near the atom, |m0| ~ 1e7 and det J is
#: ill-conditioned (a correct float64 fold can show |det| / (|J00 J11| + |J01 J10|) ~ 1e-6).
FOLD_RESIDUAL = 1e-10
FOLD_LAM = 1e-12
FOLD_M = 1e-6
#: Mass completeness (find_edges' own default tolerance).
MASS_TOL = 1e-6
#: "Density > 0" at a bulk midpoint: Im m0 above round-off of |m0|; "zero" in a gap: below it.
INSIDE_TOL = 1e-8


@st.composite
def centered_models(draw):
    C = draw(st.integers(1, 3))
    raw = [draw(st.floats(0.05, 1.0)) for _ in range(C)]
    weights = [w / sum(raw) for w in raw]
    variances = [draw(st.floats(0.05, 2.0)) for _ in range(C)]
    t = 10.0 ** draw(st.floats(-3.0, 0.0))
    psi_n = draw(st.floats(1.2, 20.0))
    psi_p = draw(st.floats(psi_n + 1.5, 80.0))
    activation = draw(st.sampled_from(["tanh", "erf"]))
    return Model(activation, t, psi_p, psi_n, weights, variances)


def describe(model: Model) -> str:
    return (f"Model({model.activation!r}, t={model.t!r}, psi_p={model.psi_p!r}, "
            f"psi_n={model.psi_n!r}, weights={model.weights!r}, variances={model.variances!r})")


def term_scales(p: SpectralParams, m0, m1, z):
    """S1, S2: the terms of F1, F2 expanded in absolute value, with P and Q also expanded
    (|beta| + sum |rho alpha / D|, |s2| + |z| + sum |rho v2 / D|).  Near the atom Q = s2 - z + ...
    cancels to ~1e-7 of its terms, so a scale built from |Q| would call round-off a residual."""
    m0, m1, z = (np.asarray(a, dtype=complex).reshape(-1, 1) for a in (m0, m1, z))
    D = 1.0 + p.r * (p.alpha * m1 + p.v2 * m0)  # (n, C)
    aP = abs(p.beta) + np.abs(p.rho * p.alpha / D).sum(axis=1, keepdims=True)
    aQ = abs(p.s2) + np.abs(z) + np.abs(p.rho * p.v2 / D).sum(axis=1, keepdims=True)
    S1 = p.psi_p * aP * aQ * np.abs(m0)**2 + (aQ + abs(1 - p.psi_p) * aP) * np.abs(m0) + 1
    S2 = aP * np.abs(m1) + aQ * np.abs(m0) + 1
    return S1[:, 0], S2[:, 0]


def numpy_residual(p: SpectralParams, m0, m1, z):
    """max(|F1| / S1, |F2| / S2) of spectrum.md §2 in plain numpy (arrays of points)."""
    m0, m1, z = (np.asarray(a, dtype=complex).reshape(-1, 1) for a in (m0, m1, z))
    D = 1.0 + p.r * (p.alpha * m1 + p.v2 * m0)  # (n, C)
    P = p.beta + (p.rho * p.alpha / D).sum(axis=1, keepdims=True)
    Q = p.s2 - z + (p.rho * p.v2 / D).sum(axis=1, keepdims=True)
    F1 = (p.psi_p * P * Q * m0**2 + (Q + (1 - p.psi_p) * P) * m0 - 1)[:, 0]
    F2 = (P * m1 + Q * m0 - 1)[:, 0]
    S1, S2 = term_scales(p, m0, m1, z)
    return np.maximum(np.abs(F1) / S1, np.abs(F2) / S2)


# ----------------------------------------------------------------------------- resolvent


def check_resolvent(model: Model):
    p = SpectralParams.from_model(model)
    # From below the atom at s2 to far above the support, and points close to s2.
    lam = np.sort(np.r_[np.geomspace(1e-7, 1e3, 300),
                        p.s2 * (1 + np.array([-1e-2, -1e-6, 1e-6, 1e-4, 1e-2, 0.1, 0.5]))])
    res = solve_resolvent(p, lam)
    ok = res.converged
    assert ok.any(), f"{describe(model)}: no point converged: {res.message}"
    m0, m1 = res.m0[ok], res.m1[ok]
    assert np.all(res.density[ok] >= 0)
    assert np.all(m0.imag >= -BRANCH_TOL * np.abs(m0)), (
        f"{describe(model)}: Im m0 < 0 at lambda = {lam[ok][m0.imag < -BRANCH_TOL * np.abs(m0)]}")
    assert np.all(m1.imag >= -BRANCH_TOL * np.abs(m1)), (
        f"{describe(model)}: Im m1 < 0 at lambda = {lam[ok][m1.imag < -BRANCH_TOL * np.abs(m1)]}")
    resid = numpy_residual(p, m0, m1, lam[ok] + 1j * res.eta[ok])
    assert np.all(resid <= RESOLVENT_RESIDUAL), (
        f"{describe(model)}: flagged converged but F != 0 at lambda = "
        f"{lam[ok][resid > RESOLVENT_RESIDUAL]} (relative residual {resid.max():.3g})")
    # A non-converged point must say so in the message.
    if not ok.all():
        assert "did not converge" in res.message


@settings(max_examples=N_RESOLVENT, **_FAST)
@given(centered_models())
def test_resolvent_physical_branch(model):
    check_resolvent(model)


@pytest.mark.slow
@settings(max_examples=N_RESOLVENT_SLOW, **_SETTINGS)
@given(centered_models())
def test_resolvent_physical_branch_many(model):
    check_resolvent(model)


# ----------------------------------------------------------------------------- edges


def fold_error(p: SpectralParams, edge):
    """At an edge: (relative residual of F1, F2 with the float64 kernel, scaled by
    :func:`term_scales`; relative det J; relative distances in lambda and in (m0, m1) to the
    mpmath-polished fold)."""
    F1, F2, _, _, J00, J01, J10, J11 = _residual(float(edge.m0), float(edge.m1), float(edge.lam),
                                                 *p.args())
    S1, S2 = (float(v[0]) for v in term_scales(p, edge.m0, edge.m1, edge.lam))
    det = abs(J00 * J11 - J01 * J10) / (abs(J00 * J11) + abs(J01 * J10))
    try:
        fold = polish_edge(edge, p, 20)
    except ArithmeticError:  # the mpmath Newton from this edge does not verify a fold
        return max(abs(F1) / S1, abs(F2) / S2), det, math.inf, math.inf
    d_lam = abs(float(fold.lam) - float(edge.lam)) / abs(float(fold.lam))
    d_m = max(abs(float(fold.m0) - float(edge.m0)) / abs(float(fold.m0)),
              abs(float(fold.m1) - float(edge.m1)) / abs(float(fold.m1)))
    return max(abs(F1) / S1, abs(F2) / S2), det, d_lam, d_m


def check_edges(model: Model, **find_kwargs):
    p = SpectralParams.from_model(model)
    spec = find_edges(p, **find_kwargs)
    who = describe(model)
    if not spec.converged:
        # Allowed, but only when flagged with a reason that describes the returned result.
        assert spec.message and spec.message != "converged", f"{who}: unconverged, no message"
        said = re.search(r"bulk masses \+ atom = ([0-9.eE+-]+) != 1", spec.message)
        if said:
            assert abs(float(said.group(1)) - spec.total_mass) <= 1e-9, (
                f"{who}: flagged with {spec.message!r}, but the returned bulk masses + atom = "
                f"{spec.total_mass!r} ({len(spec.bulks)} bulks): the message is not about the "
                "returned result")
        return
    assert spec.bulks, f"{who}: converged without any bulk"
    assert spec.total_mass == pytest.approx(1.0, abs=MASS_TOL), f"{who}: mass {spec.total_mass}"
    edges = spec.edges
    flat = [x for pair in edges for x in pair]
    for (lo, hi) in edges:
        assert lo < hi, f"{who}: bulk [{lo}, {hi}] is empty or reversed"
    for (_, hi), (lo_next, _) in zip(edges[:-1], edges[1:]):
        assert hi <= lo_next, f"{who}: bulks overlap or are not ascending: {edges}"
    assert flat[0] > p.s2 or p.atom_weight == 0, f"{who}: a bulk below the atom at s2: {edges}"
    for b in spec.bulks:
        for e in (b.lower, b.upper):
            f, det, d_lam, d_m = fold_error(p, e)
            assert f <= FOLD_RESIDUAL and d_lam <= FOLD_LAM and d_m <= FOLD_M, (
                f"{who}: {e.side} edge at {float(e.lam)!r} (m0 = {float(e.m0)!r}, m1 = "
                f"{float(e.m1)!r}, n_iter = {e.n_iter}) is not a fold: residual {f:.3g}, relative "
                f"det J {det:.3g}; the polished fold is {d_lam:.3g} away in lambda, {d_m:.3g} in "
                f"(m0, m1) (relative)")
    # Density > 0 at bulk midpoints; 0 (real solution) at gap midpoints, between the atom and
    # the leftmost bulk, and above the rightmost bulk.
    mids = np.array([0.5 * (lo + hi) for lo, hi in edges])
    gaps = [0.5 * (hi + lo_next) for (_, hi), (lo_next, _) in zip(edges[:-1], edges[1:])
            if lo_next > hi]
    outside = np.array(gaps + ([0.5 * (p.s2 + flat[0])] if flat[0] > p.s2 else [])
                       + [2.0 * flat[-1]])
    r_in = solve_resolvent(p, mids)
    assert r_in.converged.all(), f"{who}: bulk midpoints {mids}: {r_in.message}"
    bad = r_in.m0.imag <= INSIDE_TOL * np.abs(r_in.m0)
    assert not bad.any(), (f"{who}: density not positive at bulk midpoints {mids[bad]} "
                           f"(Im m0 = {r_in.m0.imag[bad]}); edges {edges}")
    r_out = solve_resolvent(p, outside)
    assert r_out.converged.all(), f"{who}: gap points {outside}: {r_out.message}"
    bad = (r_out.eta > 0) | (np.abs(r_out.m0.imag) > INSIDE_TOL * np.abs(r_out.m0))
    assert not bad.any(), (f"{who}: density not zero at gap points {outside[bad]} (Im m0 = "
                           f"{r_out.m0.imag[bad]}, eta = {r_out.eta[bad]}); edges {edges}")


#: Failing models found by hypothesis and by benchmarks/bench_edges.py, checked every run.
FOUND = {
    # hypothesis: a narrow bulk right above the atom (t = 1: v2 = 1.3e-7, |m0| ~ 2e7 at its
    # edges).  Before 1c556a3 both its edges came back with n_iter = 0 and converged = True, m0
    # 1.6e-3 and lambda 8.8e-13 (relative) away from the fold (a silent wrong number).  Since
    # then: flagged ("edge search failed"), although the float64 fold Newton lands on the fold
    # (to 1e-16): its residual test (1e-12 of |terms| with |Q| after the cancellation
    # s2 - lambda + ..., ~1e-7 of s2) rejects it.
    "narrow-bulk-at-atom": Model("tanh", t=1.0, psi_p=4.0, psi_n=2.0, weights=(1.0,),
                                 variances=(0.125,)),
    # bench_edges.py, Fig. 2b sweep (rho = (0.5, 0.5), q = 0.19090909...): the 4000-point scan
    # gives masses + atom = 0.999998623, the refined 16000-point scan 1 + 1.3e-13; before
    # 1c556a3 the result said converged = False with the first scan's message.
    # hypothesis (t = 1): the fold Newton converged (step 4e-16, confirmed by mpmath) but the
    # residual scale used |Q| after Q = s2 - lambda + ... had cancelled to 3e-7 of its terms, so
    # the edge was rejected and the search reported a failure.
    "cancelled-Q-scale": Model("tanh", t=1.0, psi_p=3.7, psi_n=1.2, weights=(1.0,),
                               variances=(0.05,)),
    "stale-refinement-message": Model("tanh", t=0.001, psi_p=60.0, psi_n=30.0,
                                      weights=(0.5, 0.5),
                                      variances=(0.6297709923664122, 0.12022900763358779)),
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_found_examples(name):
    check_edges(FOUND[name], max_refine=MAX_REFINE_FAST)


@settings(max_examples=N_EDGES, **_FAST)
@given(centered_models())
def test_edges_are_folds_or_flagged(model):
    check_edges(model, max_refine=MAX_REFINE_FAST)


@pytest.mark.slow
@settings(max_examples=N_EDGES_SLOW, **_SETTINGS)
@given(centered_models())
def test_edges_are_folds_or_flagged_many(model):
    check_edges(model)
