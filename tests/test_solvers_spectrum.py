"""Resolvent, density, edges and timescales of centered mixtures against independent values.

References: spectrum.md §5-7 (30-digit edges and g(z) spot values computed there with mpmath
folds and a separate numpy solver, checked against diagonalization); Marchenko-Pastur in closed
form; total mass 1.
"""
import math

import mpmath
import numpy as np
import pytest

from diffmix.solvers import (SpectralParams, find_edges, polish_edge, solve_resolvent, spectrum,
                             stieltjes)
from diffmix.theory import Model, load_model

from test_cli import EXAMPLES


@pytest.fixture(scope="module")
def fig2():
    return SpectralParams.from_model(load_model(EXAMPLES / "fig2-variance.toml"))


def test_spot_values_of_g(fig2):
    """spectrum.md §7: physical-branch values (double precision there, residual <= 1e-14)."""
    z = [1 + 0.1j, 10 + 1j, 0.01 + 0.001j, 1e-4 + 1e-5j]
    ref = [-9.781061942678e-01 + 9.859442905202e-02j, -9.489782092676e-02 + 1.427635627690e-02j,
           -7.046576669987e+01 + 4.531776072544e+01j, -5.127956073733e+03 + 4.787133592381e+04j]
    res = stieltjes(fig2, z, strict=True)
    assert np.all(np.abs(res.m0 - ref) <= 1e-11 * np.abs(ref))
    assert res.m1[0] == pytest.approx(8.517574146911e-02 + 9.010134436724e-04j, rel=1e-11)
    single = SpectralParams.from_model(Model("tanh", 0.01, 4.0, 2.0, [1.0], [1.0]))
    r1 = stieltjes(single, [1 + 0.1j, 10 + 1j], strict=True)
    assert r1.m0 == pytest.approx([-8.225528419889e-01 + 3.323598610092e-01j,
                                   -1.042404735837e-01 + 1.119929441622e-02j], rel=1e-11)


def test_marchenko_pastur_limit():
    """alpha = v2 = s2 = 0, beta = 1: U_gep = K = W W^T/d, MP with ratio psi_p (atom 1 - 1/psi_p at 0)."""
    psi = 4.0
    p = SpectralParams(psi, 2.0, np.array([1.0]), np.array([0.0]), np.array([0.0]), 1.0, 0.0)
    lo, hi = (1 - math.sqrt(psi)) ** 2, (1 + math.sqrt(psi)) ** 2
    lam = np.linspace(lo, hi, 50)[1:-1]
    mp_density = np.sqrt((hi - lam) * (lam - lo)) / (2 * np.pi * psi * lam)
    res = solve_resolvent(p, lam, strict=True)
    assert np.max(np.abs(res.density - mp_density)) <= 1e-10 * mp_density.max()
    spec = find_edges(p)
    assert spec.converged, spec.message
    assert len(spec.edges) == 1 and spec.edges[0] == pytest.approx([lo, hi], rel=1e-12)
    assert spec.atoms[0][1] == pytest.approx(1 - 1 / psi) and spec.total_mass == pytest.approx(1, abs=1e-8)


def test_density_is_physical_and_normalized(fig2):
    lam = np.geomspace(1e-5, 30, 3000)
    res = solve_resolvent(fig2, lam, strict=True)
    assert np.all(res.m0.imag >= -1e-12 * np.abs(res.m0)) and np.all(res.m1.imag >= -1e-12 * np.abs(res.m1))
    # outside the support the physical solution is real and increasing in lambda
    out = res.density == 0
    assert np.all(np.diff(res.m0.real[out][lam[out] > 20]) > 0)


FIG2_EDGES = [  # spectrum.md §5, Fig. 2 table, 30 digits
    ("1.14305703218834486620790399741e-4", "1.44485663145196850667420557831e-4"),
    ("7.75408725179372748420807227576e-4", "4.46074549644135435560749796410e-2"),
    ("7.97380217079669204301519645709", "19.8556041017495756161678816957"),
]


def test_fig2_edges_masses_timescales(fig2):
    spec = find_edges(fig2)
    assert spec.converged, spec.message
    assert len(spec.bulks) == 3
    for (lo, hi), b in zip(FIG2_EDGES, spec.bulks):
        assert b.lower.lam == pytest.approx(float(lo), rel=1e-12)
        assert b.upper.lam == pytest.approx(float(hi), rel=1e-12)
    assert [b.mass for b in spec.bulks] == pytest.approx([1 / 60, 29 / 60, 1 / 60], abs=1e-8)
    assert spec.atoms[0] == pytest.approx((fig2.s2, 29 / 60))
    ts = spec.timescales
    assert ts["tau_gen"] == pytest.approx(0.125410685966402, rel=1e-12)
    assert ts["tau_mem"] == pytest.approx(22.4177774947656, rel=1e-12)
    assert ts["tau_final"] == pytest.approx(8748.46986493345, rel=1e-12)
    assert ts["W_gen"] == pytest.approx(22.29236681, rel=1e-9)


def test_fig2_edges_polished_against_note():
    """spectrum.md's 30-digit folds are those of its own float64 inputs, printed there with only
    13-16 digits (v2_1 = 0.009806924611766): with the printed inputs taken as exact the polished
    edges match to the precision those inputs carry (1e-13 relative)."""
    p = SpectralParams(60.0, 30.0, np.array([0.5, 0.5]),
                       np.array([0.26301117703356763, 0.17011981874491677]),
                       np.array([0.009806924611766, 0.002712478025860307]),
                       0.001207708935412589, 9.878005229530421e-05)
    spec = spectrum(p, dps=30)
    with mpmath.workdps(40):
        for (lo, hi), b in zip(FIG2_EDGES, spec.bulks):
            for ref, e in ((lo, b.lower), (hi, b.upper)):
                assert e.dps == 30
                assert abs(mpmath.mpf(ref) - e.lam) <= mpmath.mpf(10) ** -13 * abs(e.lam), (ref, e.lam)


def test_edges_with_high_precision_coefficients():
    """Coefficients at 40 digits (mpmath twin) carried into the polish: 30-digit edges agree with
    the float64 edges to float64 accuracy and are self-consistent at 30 vs 45 digits."""
    model = load_model(EXAMPLES / "fig2-variance.toml")
    p = SpectralParams.from_model(model, dps=40)
    spec = find_edges(p)
    b = spec.bulks[-1]
    e30, e45 = polish_edge(b.lower, p, 30), polish_edge(b.lower, p, 45)
    with mpmath.workdps(50):
        assert abs(e30.lam - e45.lam) <= mpmath.mpf(10) ** -25 * abs(e45.lam)
    assert float(e30.lam) == pytest.approx(b.lower.lam, rel=1e-13)


def test_polish_30_against_50_digits(fig2):
    spec = find_edges(fig2)
    for b in spec.bulks:
        e30, e50 = polish_edge(b.upper, fig2, 30), polish_edge(b.upper, fig2, 50)
        with mpmath.workdps(60):
            assert abs(e30.lam - e50.lam) <= mpmath.mpf(10) ** -25 * abs(e50.lam)


@pytest.mark.parametrize("sig2, rho, ref", [  # spectrum.md §5 window tables (8 digits)
    ((0.5, 1.0), (0.5, 0.5), (0.086218825, 7.9627676, 5333.0909)),
    ((0.5, 0.125), (0.7, 0.3), (0.12831269, 20.568088, 9227.2744)),
    ((0.6, 0.15), (0.5, 0.5), (0.13642689, 17.251683, 9878.9318)),
])
def test_window_table(sig2, rho, ref):
    p = SpectralParams.from_model(Model("tanh", 0.001, 60.0, 30.0, rho, sig2))
    ts = find_edges(p).timescales
    assert (ts["tau_gen"], ts["tau_mem"], ts["tau_final"]) == pytest.approx(ref, rel=1e-7)


def test_three_class_mass_and_split_bulks():
    spec = find_edges(SpectralParams.from_model(Model("tanh", 0.001, 60.0, 30.0, [0.7, 0.3],
                                                      [0.5, 0.125])))
    assert spec.converged and len(spec.bulks) == 5
    assert [b.mass for b in spec.bulks] == pytest.approx(
        [1 / 60, 0.1333333, 1 / 60, 1 / 3, 1 / 60], abs=2e-6)
    spec3 = find_edges(SpectralParams.from_model(load_model(EXAMPLES / "three-class.toml")))
    assert spec3.converged and spec3.total_mass == pytest.approx(1.0, abs=1e-6)


def test_refuses_what_the_equations_do_not_describe():
    with pytest.raises(ValueError, match="not odd"):
        SpectralParams.from_model(Model("relu", 0.01, 4.0, 2.0, [1.0], [1.0]))
    with pytest.raises(ValueError, match="centroid_norm2"):
        SpectralParams.from_model(load_model(EXAMPLES / "fig3-baseline.toml"))
    p = SpectralParams.from_model(Model("tanh", 0.01, 4.0, 2.0, [1.0], [1.0]))
    with pytest.raises(ValueError, match="Im z > 0"):
        stieltjes(p, [1.0 + 0j])
    with pytest.raises(ValueError, match="lam"):
        solve_resolvent(p, [np.nan])


def test_edge_path_matches_full_search_and_restarts_on_split():
    """Continuation along the variance ratio (fixed mean variance 0.375, rho = (0.7, 0.3)) gives
    the same edges as a full search at every sampled value, and restarts where the memorization
    bulk splits (3 -> 5 bulks)."""
    from diffmix.solvers import edge_path
    rho, mean = (0.7, 0.3), 0.375
    qs = np.geomspace(0.2, 1.0, 12)
    models = [Model("tanh", 0.001, 60.0, 30.0, rho, [mean / (rho[0] + rho[1] * q),
                                                      q * mean / (rho[0] + rho[1] * q)]) for q in qs]
    path = edge_path(models, qs)
    assert path.restarted[0] and not path.restarted.all()
    for i in (0, 5, 11):
        full = find_edges(SpectralParams.from_model(models[i]))
        assert len(full.edges) == len(path.spectra[i].edges)
        for a, b in zip(full.edges, path.spectra[i].edges):
            assert a == pytest.approx(b, rel=1e-11)
    assert np.all(np.isfinite(path.timescale("W_gen")))
    with pytest.raises(ValueError, match="one entry per model"):
        edge_path(models[:2], [1.0])


def test_rightmost_bulk_approaches_asymptotic_edges():
    """App. F.3.1: for psi_p >> psi_n >> 1 the rightmost bulk tends to psi_p times the spectrum of
    a (free) sum of class Wisharts; the error shrinks as the ratios grow (seen: lower / upper
    8.9% / 5.0% at (psi_p, psi_n) = (400, 20), 1.7% / 1.3% at (6400, 80))."""
    from diffmix.solvers import rightmost_edges_asymptotic
    rho, alpha, v2 = np.array([0.5, 0.5]), np.array([0.263, 0.170]), np.array([0.0098, 0.0027])
    errors = []
    for k in (1, 3):
        p = SpectralParams(400.0 * k * k, 20.0 * k, rho, alpha, v2, 0.0012, 9.9e-5)
        spec = find_edges(p)
        assert spec.converged, spec.message
        exact = np.array(spec.edges[-1])
        for kind in ("free", "mp"):
            approx = np.array(rightmost_edges_asymptotic(p, kind))
            errors.append((k, kind, np.max(np.abs(exact / approx - 1))))
    err = {(k, kind): e for k, kind, e in errors}
    assert err[(3, "free")] < 0.5 * err[(1, "free")] and err[(3, "free")] < 0.03
    assert err[(3, "mp")] < 0.02
    # one class: the MP formula is the exact limit (beta = 0: atom weight 1 - psi_n/psi_p)
    single = SpectralParams(3200.0, 40.0, np.array([1.0]), np.array([0.3]), np.array([0.01]), 0.0, 1e-4)
    spec = find_edges(single)
    assert spec.converged, spec.message
    assert spec.atoms[0][1] == pytest.approx(1 - 40 / 3200)
    lo, hi = spec.edges[-1]
    mp_lo, mp_hi = rightmost_edges_asymptotic(single, "mp")
    assert lo / mp_lo - 1 == pytest.approx(0, abs=0.03) and hi / mp_hi - 1 == pytest.approx(0, abs=0.03)


@pytest.mark.parametrize("kwargs, message", [
    (dict(psi_p=-1.0), r"psi_p = -1.0: must be a finite number > 0"),
    (dict(psi_n=0.0), r"psi_n = 0.0: must be a finite number > 0"),
    (dict(s2=-1e-3), r"s2 = -0.001: must be a finite number >= 0"),
    (dict(beta=float("nan")), r"beta = nan"),
    (dict(rho=np.array([0.5, 0.6])), r"rho: must sum to 1"),
    (dict(rho=np.array([1.0, 0.0])), r"rho = \[1.0, 0.0\]: every entry must be finite and > 0"),
    (dict(alpha=np.array([0.3])), r"rho, alpha, v2: must be 1-d arrays"),
    (dict(v2=np.array([0.01, -0.01])), r"v2 = .*>= 0"),
])
def test_spectral_params_reject_nonsense(kwargs, message):
    args = dict(psi_p=4.0, psi_n=2.0, rho=np.array([0.5, 0.5]), alpha=np.array([0.3, 0.2]),
                v2=np.array([0.01, 0.02]), beta=0.01, s2=0.001)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        SpectralParams(**args)
