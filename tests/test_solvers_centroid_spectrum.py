"""Bulk density of U_gep with extensive centroids (centroid-spectrum.md; solvers/_centroid_spectrum.py).

Checks against independent computations: the centered solver (spectrum.md) in the centered limit,
the closed-form cell averages against quadrature, the analytic Jacobian against finite
differences, reductions of duplicated classes, g(z) against the trace of sampled U_gep, the cell
model at two resolutions.  The comparison of the density with diagonalization (KS) is in
tests/test_validation_spectrum.py.
"""
import functools

import numpy as np
import pytest

from diffmix.gpu import gep_matrices_centroids
from diffmix.solvers import SpectralParams, solve_resolvent, stieltjes
from diffmix.solvers import _centroid_spectrum as cs
from diffmix.solvers._centroid_spectrum import (CentroidSpectralParams, centroid_spectrum,
                                                centroid_stieltjes, solve_centroid_resolvent)
from diffmix.theory import Model
from diffmix.validation import eigenvalues_of

from tolerances import (CELL_AVERAGE_VS_QUADRATURE, CENTROID_CELLS_50_VS_100,
                        CENTROID_CENTERED_LIMIT, CENTROID_DUPLICATE_CLASS,
                        CENTROID_JACOBIAN_VS_FD, CENTROID_MASS, CENTROID_STIELTJES_VS_TRACE)

#: Case A of centroid-spectrum.md §5: psi_p = 4, psi_n = 2, sigma^2 = (0.5, 0.25), t = 0.01,
#: orthogonal centroids with ||mu_c||^2 = d.
CASE_A = Model("tanh", 0.01, 4.0, 2.0, [0.5, 0.5], [0.5, 0.25], [1.0, 1.0])


@pytest.fixture(scope="module")
def params_a():
    return CentroidSpectralParams.from_model(CASE_A)


@pytest.fixture(scope="module")
def spectrum_a(params_a):
    # A 250-point scan over the range of the d = 200 samples, 200 points on the support (mass and
    # edges as with the default 400 / 400 points over the default range to 3e-4 and 1e-7).
    return centroid_spectrum(params_a, n_grid=250, n_per_component=200, lam_range=(1e-5, 3.0))


# ---------------------------------------------------------------------- centered limit


@pytest.mark.parametrize("model", [
    Model("tanh", 0.01, 4.0, 2.0, [0.5, 0.5], [0.5, 0.25]),
    Model("tanh", 0.1, 3.0, 1.5, [1.0], [1.0]),
    Model("erf", 0.05, 8.0, 3.0, [0.6, 0.3, 0.1], [1.0, 0.4, 0.1]),
], ids=["C2", "C1", "C3-erf"])
def test_centered_limit_reproduces_the_centered_solver(model):
    """Zero centroids: one type, the fixed point is spectrum.md's (centroid-spectrum.md §1,
    "Centered limit"); measured 3.7e-13 relative on the real axis (C = 2), <= 1e-14 off it."""
    p = CentroidSpectralParams.from_model(model)
    assert p.rank == 0 and p.n_unknowns == model.n_classes * (model.n_classes + 3) // 2
    ref = SpectralParams.from_model(model)
    lam = np.geomspace(1e-3, 10.0, 50)
    a, b = solve_centroid_resolvent(p, lam), solve_resolvent(ref, lam)
    assert a.converged.all() and b.converged.all()
    both = (a.eta == 0) & (b.eta == 0)
    assert both.sum() >= 45
    assert np.max(np.abs(a.g - b.m0)[both] / np.abs(b.m0[both])) < CENTROID_CENTERED_LIMIT
    z = lam[::5] + 1j * np.geomspace(1e-3, 1.0, 10)
    a, b = centroid_stieltjes(p, z), stieltjes(ref, z)
    assert np.max(np.abs(a.g - b.m0) / np.abs(b.m0)) < CENTROID_CENTERED_LIMIT


# ---------------------------------------------------------------------- building blocks


@functools.lru_cache(maxsize=8)
def _legendre(n):
    x, w = np.polynomial.legendre.leggauss(n)
    return x / 2, w / 2


def _cell_reference(D0, a, n):
    """Average of 1/D and 1/D^2 over the cell: exact (log) along dimension 0, Gauss-Legendre
    with n nodes along the others."""
    k = len(a)
    x, w = _legendre(n)
    if k == 1:
        shift, weight = np.zeros(1), np.ones(1)
    else:
        grids = np.meshgrid(*([x] * (k - 1)), indexing="ij")
        wgrid = np.meshgrid(*([w] * (k - 1)), indexing="ij")
        shift = sum(a[j + 1] * g.ravel() for j, g in enumerate(grids))
        weight = np.prod([g.ravel() for g in wgrid], axis=0)
    D = D0 + shift
    r = (np.log(D + a[0] / 2) - np.log(D - a[0] / 2)) / a[0]
    r2 = 1.0 / ((D + a[0] / 2) * (D - a[0] / 2))
    return np.sum(weight * r), np.sum(weight * r2)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_cell_average_matches_quadrature(k):
    """The cell model's closed forms (Taylor series far from resonance, finite differences of the
    antiderivatives of 1/x near it) against quadrature (exact along one dimension, Gauss-Legendre
    along the others, kept where n and 2n nodes agree to 1e-11); random cells, resonant ones
    included (|Im D0| down to 1e-3, shifts up to 3 |D0|).  Measured worst 3.4e-9."""
    rng = np.random.default_rng(10 + k)
    work = np.empty(3)
    worst, counted = 0.0, 0
    n = {1: 2, 2: 200, 3: 60}[k]
    for _ in range(300):
        D0 = complex(rng.normal(), -abs(rng.normal()) * 10 ** rng.uniform(-3, 0))
        a = rng.normal(size=k) * 10 ** rng.uniform(-4, 0.5, size=k)
        a[0] = np.sign(a[0]) * max(abs(a[0]), 1e-3)
        r, r2 = cs._cell_average(D0, a, k, work)
        ref1, ref2 = _cell_reference(D0, a, 2 * n)
        # Only cells where the reference quadrature itself has converged (near-resonant cells
        # need more nodes than these along the Gauss-Legendre dimensions).
        coarse1, coarse2 = _cell_reference(D0, a, n)
        if max(abs(coarse1 - ref1) / abs(ref1), abs(coarse2 - ref2) / abs(ref2)) > 1e-11:
            continue
        counted += 1
        worst = max(worst, abs(r - ref1) / abs(ref1), abs(r2 - ref2) / abs(ref2))
    assert counted >= 200
    assert worst < CELL_AVERAGE_VS_QUADRATURE


def test_analytic_jacobian_matches_finite_differences():
    """dF/dx and dF/dz of the fixed point (Gauss-Hermite: holomorphic) against central
    differences; non-orthogonal centroids, unequal weights.  Measured 1.7e-9 (difference error)."""
    m = Model("tanh", 0.01, 4.0, 2.0, [0.7, 0.3], [0.5, 0.25], [1.0, 2.0], [[1, 0.3], [0.3, 1]])
    p = CentroidSpectralParams.from_model(m, gh_orders=(10, 12))
    args = p._kernel_args(p.quadrature("gauss-hermite"))
    x = np.array([0.3 + 0.2j, 0.5 + 0.1j, 0.8 + 0.3j, 0.1 + 0.05j, 0.6 + 0.2j])
    z, h = 0.3 + 0.05j, 1e-6
    F, res, J, Fz, g, worst = cs._system(x, z, *args)
    Jn = np.empty_like(J)
    for u in range(x.size):
        dx = np.zeros(x.size, dtype=complex)
        dx[u] = h
        Jn[:, u] = (cs._system(x + dx, z, *args)[0] - cs._system(x - dx, z, *args)[0]) / (2 * h)
    Fzn = (cs._system(x, z + h, *args)[0] - cs._system(x, z - h, *args)[0]) / (2 * h)
    assert np.abs(J - Jn).max() / np.abs(J).max() < CENTROID_JACOBIAN_VS_FD
    assert np.abs(Fz - Fzn).max() / np.abs(Fz).max() < CENTROID_JACOBIAN_VS_FD


@pytest.mark.parametrize("split, merged", [
    (Model("tanh", 0.05, 4.0, 2.0, [0.5, 0.3, 0.2], [0.5, 0.25, 0.25], [1.0, 1.0, 1.0],
           [[1, 0, 0], [0, 1, 1], [0, 1, 1]]),
     Model("tanh", 0.05, 4.0, 2.0, [0.5, 0.5], [0.5, 0.25], [1.0, 1.0])),
    (Model("tanh", 0.1, 4.0, 2.0, [0.4, 0.6], [0.5, 0.5], [2.0, 2.0], [[1, 1], [1, 1]]),
     Model("tanh", 0.1, 4.0, 2.0, [1.0], [0.5], [2.0])),
], ids=["C3-to-C2", "C2-to-C1"])
def test_duplicated_class_gives_the_merged_model(split, merged):
    """Two classes with equal variance and the same centroid are one class of the summed weight:
    a C = 3 (C = 2) system with rank-2 (rank-1) types must reproduce the C = 2 (C = 1) one, with
    Gauss-Hermite grids in the whitened coordinates of each.  Measured 8e-16 relative."""
    ps = CentroidSpectralParams.from_model(split)
    pm = CentroidSpectralParams.from_model(merged)
    assert ps.rank == pm.rank
    z = np.array([0.02 + 0.01j, 0.5 + 0.1j, 1.5 + 0.05j])
    a, b = centroid_stieltjes(ps, z), centroid_stieltjes(pm, z)
    assert a.converged.all() and b.converged.all()
    assert np.max(np.abs(a.g - b.g) / np.abs(b.g)) < CENTROID_DUPLICATE_CLASS
    lam = np.array([0.3, 1.0, 1.8])
    a = solve_centroid_resolvent(ps, lam, quadrature="gauss-hermite")
    b = solve_centroid_resolvent(pm, lam, quadrature="gauss-hermite")
    assert np.max(np.abs(a.g - b.g) / np.abs(b.g)) < CENTROID_DUPLICATE_CLASS


@pytest.mark.parametrize("model", [
    CASE_A,
    Model("tanh", 0.05, 4.0, 2.0, [0.6, 0.4], [0.5, 0.25], [1.0, 2.0], [[1, 0.5], [0.5, 1]]),
    Model("tanh", 0.05, 4.0, 2.0, [0.4, 0.3, 0.3], [0.5, 0.25, 1.0], [1.0, 1.0, 1.5]),
], ids=["A", "C2-cosine", "C3"])
def test_stieltjes_matches_sampled_trace(model):
    """g(z) against (1/p) tr (U_gep - z)^{-1} of sampled U_gep with centroids (rows of W
    normalised, d = 200, p = 800, seed 1), off the axis where the finite-p noise is smooth.
    Measured per seed (1-6) <= 0.6% (A, C = 3), <= 0.9% (cosine 0.5)."""
    z = np.array([0.5 + 0.2j, 1.0 + 0.5j, 0.01 + 0.02j])
    theory = centroid_stieltjes(CentroidSpectralParams.from_model(model), z, strict=True)
    e = eigenvalues_of(gep_matrices_centroids(model, 200, seed=1, normalize_rows=True).U)
    sample = np.mean(1.0 / (e[:, None] - z[None, :]), axis=0)
    assert np.max(np.abs(sample - theory.g) / np.abs(theory.g)) < CENTROID_STIELTJES_VS_TRACE


# ---------------------------------------------------------------------- density and support


def test_mass_is_the_bulk_fraction(spectrum_a):
    """The density integrates to 1 (the bulk holds p - O(C) eigenvalues: fraction -> 1); case A
    has one support component (no gap resolved, centroid-spectrum.md §1) up to the top edge."""
    s = spectrum_a
    assert s.converged and abs(s.total_mass - 1.0) < CENTROID_MASS
    assert len(s.components) == 1
    lo, hi, mass = s.components[0]
    assert abs(mass - 1.0) < CENTROID_MASS
    # The top edge: inside it the density is > 0, just outside it is 0 (Gauss-Hermite converged:
    # 2.0085; the note's grid-read 1.993 is the 800-point grid's point below it).
    assert hi == pytest.approx(2.0085, rel=2e-4)
    r = solve_centroid_resolvent(s.params, [hi * (1 - 1e-3), hi * (1 + 1e-3)])
    assert r.density[0] > 1e-4 and r.density[1] == 0.0
    # Both quadratures were needed: cells in the smeared s2 band, Gauss-Hermite above it.
    assert set(s.method) == {"gauss-hermite", "cells"}
    assert s.lam[s.method == "cells"].max() < 0.01
    assert s.timescales["tau_gen"] is None and "not identified" in s.timescales["timescale_note"]


def test_cell_grid_convergence(params_a):
    """centroid-spectrum.md §5: max |CDF(50^2 cells) - CDF(100^2 cells)| = 0.0015 (case A); the
    same on the smeared band here (48 points, lambda in [1e-4, 2.5e-3], where the cells are
    used): measured 0.0015."""
    lam = np.geomspace(1e-4, 2.5e-3, 48)
    cums = []
    for n_cells in (50, 100):
        p = CentroidSpectralParams.from_model(CASE_A, n_cells=n_cells)
        r = solve_centroid_resolvent(p, lam, quadrature="cells", strict=True)
        f = lam * r.density
        cums.append(np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(np.log(lam)))]))
    diff = np.abs(cums[0] - cums[1]).max()
    assert 1e-4 < diff < CENTROID_CELLS_50_VS_100
    assert cums[1][-1] > 0.4          # the band holds ~45% of the mass


def test_gauss_hermite_is_spiky_in_the_band(params_a):
    """Why the cell model: in the smeared band a discrete type set has no self-consistent
    broadening, the two Gauss-Hermite orders disagree by O(1) (centroid-spectrum.md §3)."""
    lam = np.array([8e-4, 1e-3])
    a = cs._solve_quadrature(params_a, params_a.quadrature("gauss-hermite", 24), lam, 1e-7 * lam,
                             True, 120, 1e-12)[1]
    b = cs._solve_quadrature(params_a, params_a.quadrature("gauss-hermite", 30), lam, 1e-7 * lam,
                             True, 120, 1e-12)[1]
    assert np.max(np.abs(a.imag - b.imag) / np.abs(b.imag)) > 0.1
    auto = solve_centroid_resolvent(params_a, lam)
    assert list(auto.method) == ["cells", "cells"] and auto.converged.all()


# ---------------------------------------------------------------------- refusals


def test_refusals():
    four = Model("tanh", 0.1, 4.0, 2.0, [0.25] * 4, [1.0] * 4, [1.0] * 4)
    with pytest.raises(ValueError, match="weights: C = 4"):
        CentroidSpectralParams.from_model(four)
    centered = CentroidSpectralParams.from_model(Model("tanh", 0.1, 4.0, 2.0, [1.0], [1.0]))
    with pytest.raises(ValueError, match="centroid_norm2"):
        centroid_spectrum(centered)
    p = CentroidSpectralParams.from_model(Model("tanh", 0.1, 4.0, 2.0, [1.0], [1.0], [1.0]))
    with pytest.raises(ValueError, match="quadrature = 'simpson'"):
        solve_centroid_resolvent(p, [1.0], quadrature="simpson")
    with pytest.raises(ValueError, match="gh_orders"):
        CentroidSpectralParams.from_model(CASE_A, gh_orders=(20, 20))
    with pytest.raises(ValueError, match="z: every point"):
        centroid_stieltjes(p, [1.0 - 0.1j])
    # A residual tolerance that cannot be met: every point flagged, strict raises.
    r = solve_centroid_resolvent(p, [1.0], tol=1e-30, quadrature="gauss-hermite")
    assert not r.converged[0] and "did not converge" in r.message
    with pytest.raises(ArithmeticError, match="did not converge"):
        solve_centroid_resolvent(p, [1.0], tol=1e-30, quadrature="gauss-hermite", strict=True)


def test_one_class_has_a_generalization_gap():
    """One class at t = 0.1: the top component (mass 1/psi_p) is separated from the rest, so
    tau_gen and tau_mem are identified; the lowest component is the smeared band (no tau_final)."""
    m = Model("tanh", 0.1, 4.0, 2.0, [1.0], [0.5], [1.0])
    s = centroid_spectrum(CentroidSpectralParams.from_model(m), n_grid=200, n_per_component=200)
    assert s.converged and len(s.components) == 2
    assert s.components[1][2] == pytest.approx(0.25, abs=0.01)
    ts = s.timescales
    assert ts["tau_gen"] == pytest.approx(1 / s.components[1][0])
    assert ts["tau_mem"] == pytest.approx(1 / s.components[0][1])
    assert ts["tau_final"] is None and ts["W_gen"] == pytest.approx(ts["tau_mem"] - ts["tau_gen"])
    assert s.components[0][1] < s.components[1][0]
