"""Theory spectrum against the eigenvalues of sampled finite-size matrices (centered and centroids).

spectrum.md §5-6 (paper Sec. 3.2, App. F.3, Fig. 8): the eigenvalues of U_gep (or of the true
feature covariance U, gep.md §2) are split into the atom and the bulks **by eigenvalue index**
using the theory masses, never by gaps; each bulk's extremes are compared with the theory edges,
and the whole spectrum with the theory law by two distances,

* KS = sup_lambda |F_theory(lambda) - F_empirical(lambda)|, atom included;
* L1 = sum over 80 log-spaced bins of |empirical mass - theory mass| of the continuous part (plus
  the empirical mass outside the theory support, where the theory mass is 0).

The theory CDF integrates the density on the bulk-adapted grid of
:func:`diffmix.solvers.density_on_bulks`.  Finite-size extremes approach the edges like
p^(-2/3) (Tracy-Widom scaling); :func:`extrapolate_extremes` fits that law over several sizes.

Extensive centroids (centroid-spectrum.md §4-5): :func:`compare_centroid_with_diagonalization`
sets the outliers (the rank <= 2C mean part) apart and compares the remaining bulk by KS with the
deterministic equivalent of :mod:`diffmix.solvers._centroid_spectrum`, with the centered formula
(to show the difference the centroids make) and with a second seed (the sampling noise).
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from diffmix.gpu import FiniteSize, gep_matrices, true_feature_covariance
from diffmix.solvers import SpectralParams, Spectrum, density_on_bulks, find_edges
from diffmix.theory import Model

__all__ = ["CentroidDiagonalizationComparison", "CentroidSeedComparison",
           "DiagonalizationComparison", "EdgeExtrapolation", "GridCDF", "SeedComparison",
           "TheoryCDF", "bulk_index_bounds", "centered_formula_cdf", "centroid_spectrum_record",
           "compare_centroid_with_diagonalization", "compare_with_diagonalization",
           "draw_centroid_density", "eigenvalues_of", "extrapolate_extremes", "ks_distance",
           "ks_two_sample", "l1_distance", "outlier_prediction"]

_MATRICES = ("gep", "true")


def eigenvalues_of(u: torch.Tensor) -> np.ndarray:
    """Ascending eigenvalues of a symmetric matrix, computed on the CPU with one thread.

    On a machine with few cores, LAPACK right after other torch work oversubscribes the cores
    (torch's OpenMP threads still spin) and a 3600 x 3600 ``eigvalsh`` can take 10 s instead of
    3 s; one thread is both the fastest and the most predictable choice there.  The thread count
    is restored afterwards.

    Parameters
    ----------
    u : Tensor, shape (p, p)
        Symmetric; any device and floating dtype (computed in float64).

    Returns
    -------
    ndarray, shape (p,)

    Examples
    --------
    >>> eigenvalues_of(torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64))
    array([1., 3.])
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.linalg.eigvalsh(u.detach().to(device="cpu", dtype=torch.float64)).numpy()
    finally:
        torch.set_num_threads(threads)


def _single_atom(spec: Spectrum) -> tuple[float, float] | None:
    """The atom (location, weight), None without one; refuses layouts the index split cannot use."""
    if not spec.atoms:
        return None
    if len(spec.atoms) > 1:
        raise ValueError(f"{len(spec.atoms)} atoms: the index split of spectrum.md §5 needs at most one")
    loc, weight = (float(v) for v in spec.atoms[0])
    if spec.bulks and loc > float(spec.bulks[0].lower.lam):
        raise ValueError(f"atom at {loc:.6g} above the lower edge of the leftmost bulk: the index "
                         "split of spectrum.md §5 needs the atom below every bulk")
    return loc, weight


def bulk_index_bounds(spec: Spectrum, p: int) -> np.ndarray:
    """Index bounds of the atom and of every bulk among p ascending eigenvalues (spectrum.md §5).

    The atom holds the round(w_atom p) lowest eigenvalues, then each bulk in ascending order holds
    round(mass p) of them (d, n - d, d for the three-bulk picture).  The rounding is cumulative,
    bound_k = round(p (w_atom + m_1 + ... + m_k)), which equals the per-bulk rule whenever the
    m_k p are close to integers and always accounts for exactly p eigenvalues.

    Parameters
    ----------
    spec : Spectrum
        From :func:`diffmix.solvers.find_edges`; at most one atom, below every bulk.
    p : int
        Matrix size.

    Returns
    -------
    ndarray of int, shape (n_bulks + 2,)
        0, the atom count, then the cumulative bound after each bulk; the last entry is p.
        Bulk k is ``eigenvalues[bounds[k + 1]:bounds[k + 2]]``.

    Raises
    ------
    ValueError
        If the masses do not account for p eigenvalues or p leaves a bulk empty.

    Examples
    --------
    >>> from diffmix.solvers import SpectralParams, find_edges
    >>> p = SpectralParams(4.0, 2.0, np.array([1.0]), np.array([0.0]), np.array([0.0]), 1.0, 0.0)
    >>> bulk_index_bounds(find_edges(p), 40).tolist()
    [0, 30, 40]
    """
    atom = _single_atom(spec)
    weight = 0.0 if atom is None else atom[1]
    cum = weight + np.cumsum([float(b.mass) for b in spec.bulks])
    bounds = np.concatenate([[0, round(p * weight)], np.rint(p * cum)]).astype(int)
    if bounds[-1] != p:
        raise ValueError(f"atom and bulk masses account for {bounds[-1]} of p = {p} eigenvalues "
                         f"(total mass {float(spec.total_mass):.9f})")
    if np.any(np.diff(bounds[1:]) < 1):
        raise ValueError(f"p = {p} leaves a bulk without eigenvalues (masses "
                         f"{[round(float(b.mass), 6) for b in spec.bulks]}); increase the size")
    return bounds


@dataclass(frozen=True, eq=False)
class TheoryCDF:
    """Cumulative distribution of a theory spectrum: atoms plus the integrated bulk densities.

    In bulk k, lambda = lo + (hi - lo)(1 - cos theta)/2 on the uniform theta grid of
    :func:`diffmix.solvers.density_on_bulks`; the integrand rho(lambda) (hi - lo) sin(theta)/2
    vanishes smoothly at both square-root edges, so the cumulative trapezoidal rule in theta is
    spectrally accurate; each bulk's cumulative mass is then scaled to the bulk's Gauss-Chebyshev
    mass ``bulk.mass`` (a correction of order 1e-8 at 400 points).  Between grid points the CDF is
    interpolated linearly in theta.

    Attributes
    ----------
    spectrum : Spectrum
    theta : ndarray, shape (n_per_bulk,)
        Uniform grid on [0, pi].
    lower, upper, mass : ndarray, shape (n_bulks,)
        Bulk edges and masses.
    cumulative : ndarray, shape (n_bulks, n_per_bulk)
        Mass of bulk k below lambda_k(theta_j).
    lam, rho : ndarray, shape (n_bulks * n_per_bulk,)
        The density on the adapted grid (``density_on_bulks``), for plots.
    """

    spectrum: Spectrum
    theta: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    mass: np.ndarray
    cumulative: np.ndarray
    lam: np.ndarray
    rho: np.ndarray

    @classmethod
    def from_spectrum(cls, spec: Spectrum, n_per_bulk: int = 400) -> TheoryCDF:
        """Integrate the density of ``spec`` on ``n_per_bulk`` points per bulk.

        Raises
        ------
        ArithmeticError
            If the density solve fails at some grid point.

        Examples
        --------
        >>> from diffmix.solvers import SpectralParams, find_edges
        >>> p = SpectralParams(4.0, 2.0, np.array([1.0]), np.array([0.0]), np.array([0.0]), 1.0, 0.0)
        >>> cdf = TheoryCDF.from_spectrum(find_edges(p), 100)
        >>> [round(float(v), 6) for v in cdf([-1.0, 0.0, 9.0])]     # atom 0.75 at 0, MP bulk on [1, 9]
        [0.0, 0.75, 1.0]
        """
        lam, rho = density_on_bulks(spec, n_per_bulk)
        if np.isnan(rho).any():
            raise ArithmeticError(f"theory density did not converge at {int(np.isnan(rho).sum())} of "
                                  f"{rho.size} grid points")
        n_bulks = len(spec.bulks)
        theta = np.linspace(0.0, np.pi, n_per_bulk)
        lower = np.array([float(b.lower.lam) for b in spec.bulks])
        upper = np.array([float(b.upper.lam) for b in spec.bulks])
        mass = np.array([float(b.mass) for b in spec.bulks])
        integrand = rho.reshape(n_bulks, n_per_bulk) * (0.5 * (upper - lower))[:, None] * np.sin(theta)
        step = theta[1] - theta[0]
        cumulative = np.concatenate(
            [np.zeros((n_bulks, 1)), np.cumsum(0.5 * step * (integrand[:, 1:] + integrand[:, :-1]), axis=1)],
            axis=1)
        cumulative *= (mass / cumulative[:, -1])[:, None]
        return cls(spec, theta, lower, upper, mass, cumulative, lam, rho)

    def continuous(self, x) -> np.ndarray:
        """Mass of the continuous part below x; array_like of any shape -> ndarray of that shape."""
        x = np.asarray(x, dtype=float)
        out = np.zeros(x.shape)
        for lo, hi, mass, cum in zip(self.lower, self.upper, self.mass, self.cumulative):
            theta = np.arccos(np.clip(1.0 - 2.0 * (x - lo) / (hi - lo), -1.0, 1.0))
            out += np.where(x >= hi, mass, np.where(x > lo, np.interp(theta, self.theta, cum), 0.0))
        return out

    def __call__(self, x) -> np.ndarray:
        """F(x) = P(lambda <= x), atoms included (right-continuous)."""
        x = np.asarray(x, dtype=float)
        return self.continuous(x) + sum(w * (x >= loc) for loc, w in self.spectrum.atoms)

    def left(self, x) -> np.ndarray:
        """F(x^-) = P(lambda < x): the atoms at x itself excluded."""
        x = np.asarray(x, dtype=float)
        return self.continuous(x) + sum(w * (x > loc) for loc, w in self.spectrum.atoms)


def ks_distance(eigenvalues, cdf: TheoryCDF) -> float:
    """KS = sup_lambda |F_theory(lambda) - F_empirical(lambda)| (spectrum.md §6), atoms included.

    Between consecutive distinct eigenvalues the empirical CDF is constant and the theory CDF
    monotone, so the supremum is attained at an eigenvalue, from the left or from the right.
    Eigenvalues meant to sit on an atom must equal its location exactly
    (:func:`compare_with_diagonalization` places them there).

    Parameters
    ----------
    eigenvalues : array_like, shape (p,)
    cdf : TheoryCDF

    Returns
    -------
    float

    Examples
    --------
    >>> from diffmix.solvers import SpectralParams, find_edges
    >>> p = SpectralParams(4.0, 2.0, np.array([1.0]), np.array([0.0]), np.array([0.0]), 1.0, 0.0)
    >>> cdf = TheoryCDF.from_spectrum(find_edges(p), 100)
    >>> round(ks_distance([0.0, 0.0, 0.0, 0.0], cdf), 6)     # all on the atom of weight 0.75
    0.25
    """
    values, counts = np.unique(np.asarray(eigenvalues, dtype=float), return_counts=True)
    p = counts.sum()
    right = np.cumsum(counts) / p
    left = right - counts / p
    return float(max(np.max(np.abs(right - cdf(values))), np.max(np.abs(left - cdf.left(values)))))


def l1_distance(continuous_eigenvalues, cdf: TheoryCDF, p: int, n_bins: int = 80) -> float:
    """L1 distance of the continuous part over log-spaced bins (spectrum.md §6).

    L1 = sum_k |E_k - T_k| + E_out, with n_bins bins log-spaced between the lowest lower edge and
    the highest upper edge of the theory bulks, E_k the fraction of the p eigenvalues in bin k,
    T_k the theory mass of the bin and E_out the fraction outside the theory support (where the
    theory mass is 0).  It contains the sampling noise of the bin counts.

    Parameters
    ----------
    continuous_eigenvalues : array_like, shape (m,)
        The eigenvalues assigned to the bulks (the atom's removed), m <= p.
    cdf : TheoryCDF
    p : int
        Total number of eigenvalues (the normalisation).
    n_bins : int
        Number of log-spaced bins (80 in spectrum.md §6).

    Returns
    -------
    float

    Examples
    --------
    >>> from diffmix.solvers import SpectralParams, find_edges
    >>> p = SpectralParams(4.0, 2.0, np.array([1.0]), np.array([0.0]), np.array([0.0]), 1.0, 0.0)
    >>> cdf = TheoryCDF.from_spectrum(find_edges(p), 100)
    >>> round(l1_distance([10.0], cdf, 4), 6)   # theory mass 0.25 in the bulk, the sample 0 + 0.25 outside
    0.5
    """
    e = np.asarray(continuous_eigenvalues, dtype=float)
    bins = np.geomspace(cdf.lower.min(), cdf.upper.max(), n_bins + 1)
    counts, _ = np.histogram(e, bins)
    outside = np.count_nonzero((e < bins[0]) | (e > bins[-1]))
    theory = np.diff(cdf.continuous(bins))
    return float(np.sum(np.abs(counts / p - theory)) + outside / p)


@dataclass(frozen=True, eq=False)
class SeedComparison:
    """One sampled matrix against the theory.

    Attributes
    ----------
    seed : int
    eigenvalues : ndarray, shape (p,)
        Ascending eigenvalues of the sampled matrix.
    bounds : ndarray of int, shape (n_bulks + 2,)
        :func:`bulk_index_bounds`: bulk k is ``eigenvalues[bounds[k + 1]:bounds[k + 2]]``.
    atom_expected : int
        round(w_atom p), the eigenvalues the index split gives the atom.
    atom_found : int
        Eigenvalues within ``atom_tol`` (relative to the largest) of the sample's atom location
        (s2 with the sample's class fractions for U_gep; the theory s2 for the true U).
    extremes : ndarray, shape (n_bulks, 2)
        Smallest and largest eigenvalue of each bulk.
    rel_error : ndarray, shape (n_bulks, 2)
        (extreme - edge) / edge against the theory edges.
    ks, l1 : float
        The distances of :func:`ks_distance` and :func:`l1_distance`.
    """

    seed: int
    eigenvalues: np.ndarray
    bounds: np.ndarray
    atom_expected: int
    atom_found: int
    extremes: np.ndarray
    rel_error: np.ndarray
    ks: float
    l1: float


@dataclass(frozen=True, eq=False)
class DiagonalizationComparison:
    """Theory spectrum of a model against sampled matrices at one size, several seeds.

    Attributes
    ----------
    model : Model
    matrix : str
        "gep" (U_gep, gep.md §2) or "true" (the true feature covariance U, gep.md §2).
    normalize_rows : bool
        Whether the rows of W had norm sqrt(d).
    size : FiniteSize
        (d, p, n).
    theory : Spectrum
    edges : ndarray, shape (n_bulks, 2)
        Theory [lower, upper] edge of each bulk.
    per_seed : tuple of SeedComparison
    n_bins : int
        Bins of the L1 distance.
    seconds : float
        Wall time of the sampling and diagonalizations.
    """

    model: Model
    matrix: str
    normalize_rows: bool
    size: FiniteSize
    theory: Spectrum
    edges: np.ndarray
    per_seed: tuple
    n_bins: int
    seconds: float

    @property
    def ks(self) -> np.ndarray:
        """KS distance per seed, shape (n_seeds,)."""
        return np.array([s.ks for s in self.per_seed])

    @property
    def l1(self) -> np.ndarray:
        """L1 distance per seed, shape (n_seeds,)."""
        return np.array([s.l1 for s in self.per_seed])

    @property
    def rel_error(self) -> np.ndarray:
        """(extreme - edge) / edge, shape (n_seeds, n_bulks, 2)."""
        return np.stack([s.rel_error for s in self.per_seed])

    def sample_timescales(self) -> dict:
        """Timescales read off the samples (units of 1/lambda, spectrum.md §5), arrays (n_seeds,).

        tau_gen = 1/(smallest eigenvalue of the rightmost bulk), tau_mem = 1/(largest eigenvalue
        of the bulk left of it; None with a single bulk), tau_final = 1/(smallest eigenvalue of the
        leftmost bulk).  Compare with ``theory.timescales``.
        """
        ext = np.stack([s.extremes for s in self.per_seed])
        return {"tau_gen": 1.0 / ext[:, -1, 0],
                "tau_mem": 1.0 / ext[:, -2, 1] if ext.shape[1] >= 2 else None,
                "tau_final": 1.0 / ext[:, 0, 0]}

    def summary(self) -> dict:
        """A JSON-ready dictionary of the sizes, edges and per-seed numbers."""
        return {"matrix": self.matrix, "normalize_rows": self.normalize_rows,
                "d": self.size.d, "p": self.size.p, "n": self.size.n,
                "edges": self.edges.tolist(), "n_bins": self.n_bins, "seconds": self.seconds,
                "seeds": [{"seed": s.seed, "ks": s.ks, "l1": s.l1, "atom_expected": s.atom_expected,
                           "atom_found": s.atom_found, "bulk_counts": np.diff(s.bounds[1:]).tolist(),
                           "extremes": s.extremes.tolist(), "rel_error": s.rel_error.tolist()}
                          for s in self.per_seed]}


def compare_with_diagonalization(model: Model, d: int, seeds: Sequence[int], *, matrix: str = "gep",
                                 normalize_rows: bool = False, theory: Spectrum | None = None,
                                 n_per_bulk: int = 400, n_bins: int = 80,
                                 atom_tol: float = 1e-9) -> DiagonalizationComparison:
    """Diagonalize sampled finite-size matrices of ``model`` and compare them with the theory.

    For each seed: draw U_gep (``matrix="gep"``, :func:`diffmix.gpu.gep_matrices`) or the true
    feature covariance (``matrix="true"``, :func:`diffmix.gpu.true_feature_covariance`, Mehler
    order 5) at dimension d, take all p eigenvalues, split them by index into the atom and the bulks
    (:func:`bulk_index_bounds`, spectrum.md §5), compare each bulk's extremes with the theory edges
    and the distribution with the theory by KS and L1 (spectrum.md §6; paper Fig. 8).

    Eigenvalues within ``atom_tol`` times the largest eigenvalue of the sample's atom location
    are counted as the atom (``atom_found``) and placed at the theory location for the KS
    distance (for U_gep the two locations differ only through the class fractions n_c/n vs rho_c).

    Parameters
    ----------
    model : Model
        Centered, odd activation (as :meth:`SpectralParams.from_model` requires).
    d : int
        Data dimension; p = round(psi_p d), n = round(psi_n d).
    seeds : sequence of int
        One sampled matrix per seed.
    matrix : {"gep", "true"}
    normalize_rows : bool
        Rows of W rescaled to norm sqrt(d) (gep.md §2 recommends it for the true U).
    theory : Spectrum, optional
        ``find_edges`` of the model, to reuse across sizes; computed when None.
    n_per_bulk : int
        Grid points per bulk of the theory CDF.
    n_bins : int
        Bins of the L1 distance.
    atom_tol : float
        Relative tolerance of "equal to the atom location".

    Returns
    -------
    DiagonalizationComparison

    Raises
    ------
    ValueError
        For an unknown ``matrix``, no seeds, or a model the theory does not describe.
    ArithmeticError
        If the theory spectrum did not converge (its bulks could not be trusted).

    Examples
    --------
    >>> m = Model("tanh", 0.01, 4.0, 2.0, [1.0], [1.0])
    >>> c = compare_with_diagonalization(m, 10, [0])
    >>> c.size.p, c.per_seed[0].atom_found, c.per_seed[0].atom_expected
    (40, 10, 10)
    """
    if matrix not in _MATRICES:
        raise ValueError(f"matrix = {matrix!r}: must be one of {', '.join(_MATRICES)}")
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds: give at least one seed")
    if theory is None:
        theory = find_edges(SpectralParams.from_model(model))
    if not theory.converged:
        raise ArithmeticError(f"theory spectrum did not converge: {theory.message}")
    size = FiniteSize.from_model(model, d)
    bounds = bulk_index_bounds(theory, size.p)
    cdf = TheoryCDF.from_spectrum(theory, n_per_bulk)
    edges = np.array(theory.edges)
    atom = _single_atom(theory)
    start = time.perf_counter()
    per_seed = []
    for seed in seeds:
        if matrix == "gep":
            sample = gep_matrices(model, d, seed=seed, normalize_rows=normalize_rows)
            sample_atom = sample.s2
        else:
            sample = true_feature_covariance(model, d, seed=seed, normalize_rows=normalize_rows)
            sample_atom = None if atom is None else atom[0]
        e = eigenvalues_of(sample.U)
        del sample
        found = 0
        placed = e
        if atom is not None:
            on_atom = np.abs(e - sample_atom) <= atom_tol * np.abs(e).max()
            found = int(on_atom.sum())
            placed = np.where(on_atom, atom[0], e)
        extremes = np.array([[e[lo], e[hi - 1]] for lo, hi in zip(bounds[1:-1], bounds[2:])])
        per_seed.append(SeedComparison(
            seed, e, bounds, int(bounds[1]), found, extremes, (extremes - edges) / edges,
            ks_distance(placed, cdf), l1_distance(e[bounds[1]:], cdf, size.p, n_bins)))
    return DiagonalizationComparison(model, matrix, bool(normalize_rows), size, theory, edges,
                                     tuple(per_seed), n_bins, time.perf_counter() - start)


@dataclass(frozen=True)
class EdgeExtrapolation:
    """Fit of the relative extreme-vs-edge error against p^(-2/3) (Tracy-Widom scaling).

    err(p) = intercept + slope p^(-2/3), least squares over the sizes on the seed means; the
    intercept is the error extrapolated to p -> infinity (0 when the theory edges are exact).

    Attributes
    ----------
    p : ndarray, shape (n_sizes,)
    x : ndarray, shape (n_sizes,)
        p^(-2/3).
    mean_rel_error, sem_rel_error : ndarray, shape (n_sizes, n_bulks, 2)
        Seed mean and its standard error (nan with a single seed) of (extreme - edge) / edge.
    intercept, slope : ndarray, shape (n_bulks, 2)
    intercept_se : ndarray, shape (n_bulks, 2)
        Standard error of the intercept propagated from the per-size standard errors (the
        intercept is a linear combination of the means).
    """

    p: np.ndarray
    x: np.ndarray
    mean_rel_error: np.ndarray
    sem_rel_error: np.ndarray
    intercept: np.ndarray
    slope: np.ndarray
    intercept_se: np.ndarray


def extrapolate_extremes(comparisons: Sequence[DiagonalizationComparison]) -> EdgeExtrapolation:
    """Extrapolate bulk extremes to p -> infinity from comparisons at several sizes.

    Parameters
    ----------
    comparisons : sequence of DiagonalizationComparison
        Same theory edges, at least two distinct p.

    Returns
    -------
    EdgeExtrapolation

    Raises
    ------
    ValueError
        With fewer than two sizes or comparisons of different spectra.

    Examples
    --------
    >>> m = Model("tanh", 0.01, 4.0, 2.0, [1.0], [1.0])
    >>> theory = find_edges(SpectralParams.from_model(m))
    >>> cs = [compare_with_diagonalization(m, d, [0, 1], theory=theory) for d in (10, 20)]
    >>> extrapolate_extremes(cs).intercept.shape
    (3, 2)
    """
    comps = sorted(comparisons, key=lambda c: c.size.p)
    p = np.array([c.size.p for c in comps], dtype=float)
    if len(np.unique(p)) < 2:
        raise ValueError(f"sizes p = {p.astype(int).tolist()}: need at least two distinct p to extrapolate")
    if any(c.edges.shape != comps[0].edges.shape or not np.allclose(c.edges, comps[0].edges, rtol=1e-12)
           for c in comps):
        raise ValueError("comparisons of different theory spectra (edges differ)")
    x = p ** (-2.0 / 3.0)
    mean = np.stack([c.rel_error.mean(axis=0) for c in comps])
    sem = np.stack([c.rel_error.std(axis=0, ddof=1) / math.sqrt(len(c.per_seed))
                    if len(c.per_seed) > 1 else np.full(c.edges.shape, np.nan) for c in comps])
    design = np.column_stack([np.ones_like(x), x])
    coeffs = np.linalg.pinv(design)                                 # (2, n_sizes)
    fit = np.tensordot(coeffs, mean, axes=(1, 0))                   # (2, n_bulks, 2)
    intercept_se = np.sqrt(np.tensordot(coeffs[0] ** 2, sem ** 2, axes=(0, 0)))
    return EdgeExtrapolation(p, x, mean, sem, fit[0], fit[1], intercept_se)


# ---------------------------------------------------------------------- extensive centroids
#
# centroid-spectrum.md §4-5: the bulk density of U_gep with extensive centroids (the vector fixed
# point of diffmix.solvers._centroid_spectrum) against the eigenvalues of sampled U_gep
# (speciation.md §1.2, diffmix.gpu.gep_matrices_centroids) with the outliers removed, by KS; the
# same sample against the centered formula (spectrum.md with the coefficients at m = 0, atom
# included: what one gets by ignoring the centroids), and two seeds against each other (the
# finite-p sampling noise of the KS distance).

#: Large-t outlier formula of speciation.md §2 (eq. (10)-(11)) reported only where its
#: linearization holds: e^{-2t} max_c ||mu_c||^2/d <= this (the spread of the pre-activation
#: means e^{-t} m_ic; at 0.1 the neglected O(m^3) terms of mu0 are ~10%).
LARGE_T_MAX_SPREAD = 0.1


@dataclass(frozen=True, eq=False)
class GridCDF:
    """A CDF from a density tabulated on an ascending grid, plus atoms (trapezoid in log lambda).

    Attributes
    ----------
    lam : ndarray, shape (n,)
    cumulative : ndarray, shape (n,)
        Continuous mass below lam[j], normalised so that continuous mass + atoms = 1.
    atoms : tuple of (location, weight)
    mass : float
        The continuous mass before normalisation (1 - atoms up to the grid's quadrature error).
    rho : ndarray, shape (n,)
        The density integrated (for plots).
    """

    lam: np.ndarray
    cumulative: np.ndarray
    atoms: tuple
    mass: float
    rho: np.ndarray | None = None

    @classmethod
    def from_density(cls, lam, rho, atoms=()) -> GridCDF:
        """Integrate rho on the grid lam (> 0, ascending) by the trapezoid rule in log lambda.

        Examples
        --------
        >>> lam = np.linspace(1.0, 3.0, 2001)
        >>> cdf = GridCDF.from_density(lam, np.full(lam.size, 0.5))
        >>> round(float(cdf(2.0)), 6), float(cdf(5.0))
        (0.5, 1.0)
        """
        lam = np.asarray(lam, dtype=float)
        f = lam * np.asarray(rho, dtype=float)
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(np.log(lam)))])
        atoms = tuple((float(loc), float(w)) for loc, w in atoms)
        weight = sum(w for _, w in atoms)
        mass = float(cum[-1])
        return cls(lam, cum * ((1.0 - weight) / mass if mass > 0 else 0.0), atoms, mass,
                   np.asarray(rho, dtype=float))

    def continuous(self, x) -> np.ndarray:
        """Continuous mass below x (array_like of any shape)."""
        return np.interp(np.asarray(x, dtype=float), self.lam, self.cumulative,
                         left=0.0, right=float(self.cumulative[-1]))

    def __call__(self, x) -> np.ndarray:
        """F(x) = P(lambda <= x), atoms included."""
        x = np.asarray(x, dtype=float)
        return self.continuous(x) + sum(w * (x >= loc) for loc, w in self.atoms)

    def left(self, x) -> np.ndarray:
        """F(x^-) = P(lambda < x)."""
        x = np.asarray(x, dtype=float)
        return self.continuous(x) + sum(w * (x > loc) for loc, w in self.atoms)


def ks_two_sample(a, b) -> float:
    """Two-sample KS distance sup |F_a - F_b| of two sets of eigenvalues.

    Examples
    --------
    >>> ks_two_sample([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0])
    0.25
    """
    a, b = np.sort(np.asarray(a, dtype=float)), np.sort(np.asarray(b, dtype=float))
    x = np.concatenate([a, b])
    fa = np.searchsorted(a, x, side="right") / a.size
    fb = np.searchsorted(b, x, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def _ks_with_location(eigenvalues, cdf) -> tuple[float, float]:
    """KS distance (as :func:`ks_distance`) and the eigenvalue where it is attained."""
    values, counts = np.unique(np.asarray(eigenvalues, dtype=float), return_counts=True)
    right = np.cumsum(counts) / counts.sum()
    left = right - counts / counts.sum()
    dev = np.maximum(np.abs(right - cdf(values)), np.abs(left - cdf.left(values)))
    j = int(np.argmax(dev))
    return float(dev[j]), float(values[j])


def centered_formula_cdf(model: Model, lam) -> GridCDF | None:
    """The centered formula (spectrum.md) for ``model`` with its centroids ignored, on the grid lam.

    Coefficients at m = 0 (``centroid_norm2`` set to 0), density by
    :func:`diffmix.solvers.solve_resolvent` on lam, the atom's eta-broadened Lorentzian removed
    where the real-axis solve was not accepted (spectrum.md §3), the atom at s2 added.  None
    for an activation that is not odd (the centered equations refuse it).
    """
    from diffmix.solvers import solve_resolvent

    centered = model.replace(centroid_norm2=tuple(0.0 for _ in model.weights), cosine=None)
    try:
        params = SpectralParams.from_model(centered)
    except ValueError:
        return None
    res = solve_resolvent(params, lam)
    w = params.atom_weight
    z = res.lam + 1j * res.eta
    cont = np.where(res.eta > 0, res.m0 + w / (z - params.s2), res.m0)
    rho = np.where(res.converged, np.maximum(cont.imag, 0.0) / math.pi, 0.0)
    return GridCDF.from_density(lam, rho, ((params.s2, w),) if w > 0 else ())


def outlier_prediction(model: Model, d: int) -> tuple[np.ndarray | None, str]:
    """Outlier locations from ``theory/_speciation.py`` at the model's t and dimension d.

    That module has the large-t BBP formula of speciation.md §2 (eqs. (10)-(11)); it is used only
    where its linearization holds, e^{-2t} max_c centroid_norm2_c <= ``LARGE_T_MAX_SPREAD``.
    Returns (locations, note): locations sorted descending (modes without an outlier omitted),
    or None with the note "not predicted: ..." otherwise.
    """
    from diffmix.theory._speciation import outlier_eigenvalues

    spread = math.exp(-2.0 * model.t) * max(model.centroid_norm2)
    if spread > LARGE_T_MAX_SPREAD:
        return None, (f"not predicted: theory/_speciation.py has only the large-t formula "
                      f"(speciation.md §2), valid for e^{{-2t}} max ||mu_c||^2/d <= "
                      f"{LARGE_T_MAX_SPREAD:g}; here {spread:.3g}")
    try:
        lam = np.asarray(outlier_eigenvalues(model, d, model.t), dtype=float).ravel()
    except ValueError as exc:
        return None, f"not predicted: {exc}"
    lam = np.sort(lam[np.isfinite(lam)])[::-1]
    return lam, ("large-t BBP formula of speciation.md §2 (theory/_speciation.py "
                 "outlier_eigenvalues)")


@dataclass(frozen=True, eq=False)
class CentroidSeedComparison:
    """One sampled U_gep with centroids against the bulk theory.

    Attributes
    ----------
    seed : int
    eigenvalues : ndarray, shape (p,)
        All eigenvalues, ascending.
    outliers : ndarray, shape (n_out,)
        The eigenvalues set apart as outliers (descending): those among the top 2C that exceed
        the theory's top bulk edge by more than ``outlier_margin`` (relative).
    bulk : ndarray, shape (p - n_out,)
        The rest, compared with the density.
    ks : float
        KS distance of ``bulk`` to the deterministic equivalent.
    lam_max_deviation : float
        Eigenvalue at which ``ks`` is attained.
    ks_centered : float or None
        KS distance of ``bulk`` to the centered formula (None when it does not apply).
    largest_bulk : float
        Largest eigenvalue of ``bulk``.
    """

    seed: int
    eigenvalues: np.ndarray
    outliers: np.ndarray
    bulk: np.ndarray
    ks: float
    lam_max_deviation: float
    ks_centered: float | None
    largest_bulk: float


@dataclass(frozen=True, eq=False)
class CentroidDiagonalizationComparison:
    """The centroid bulk theory against sampled U_gep at one size, several seeds.

    Attributes
    ----------
    model : Model
    normalize_rows : bool
    size : FiniteSize
    theory : CentroidSpectrum
    cdf : CentroidSpectrum
        The theory CDF (``theory`` itself: its ``cdf``/``left`` are the bulk law normalised by
        its mass).
    centered_cdf : GridCDF or None
        The centered formula's CDF (atom included).
    per_seed : tuple of CentroidSeedComparison
    ks_seed_vs_seed : ndarray, shape (n_seeds // 2,)
        Two-sample KS between the bulks of seeds (0, 1), (2, 3), ...
    outliers_theory : ndarray or None
        :func:`outlier_prediction` (None: not predicted).
    outlier_note : str
    seconds : float
        Wall time of the sampling and diagonalizations.
    """

    model: Model
    normalize_rows: bool
    size: FiniteSize
    theory: object
    cdf: object
    centered_cdf: GridCDF | None
    per_seed: tuple
    ks_seed_vs_seed: np.ndarray
    outliers_theory: np.ndarray | None
    outlier_note: str
    seconds: float

    @property
    def ks(self) -> np.ndarray:
        """KS to the deterministic equivalent per seed, shape (n_seeds,)."""
        return np.array([s.ks for s in self.per_seed])

    @property
    def ks_centered(self) -> np.ndarray:
        """KS to the centered formula per seed (nan where it does not apply)."""
        return np.array([np.nan if s.ks_centered is None else s.ks_centered for s in self.per_seed])

    def summary(self) -> dict:
        """A JSON-ready dictionary: sizes, theory edges, per-seed KS and outliers."""
        first = self.per_seed[0]
        return {"matrix": "gep-centroids", "normalize_rows": self.normalize_rows,
                "d": self.size.d, "p": self.size.p, "n": self.size.n,
                "theory_edges": self.theory.edges, "theory_mass": self.theory.total_mass,
                "seconds": self.seconds,
                "outliers": first.outliers.tolist(),
                "outliers_theory": (None if self.outliers_theory is None
                                    else self.outliers_theory.tolist()),
                "outlier_note": self.outlier_note,
                "ks_seed_vs_seed": self.ks_seed_vs_seed.tolist(),
                "seeds": [{"seed": s.seed, "ks": s.ks, "ks_centered": s.ks_centered,
                           "lam_max_deviation": s.lam_max_deviation,
                           "outliers": s.outliers.tolist(), "n_bulk": int(s.bulk.size),
                           "largest_bulk": s.largest_bulk} for s in self.per_seed]}


def compare_centroid_with_diagonalization(model: Model, d: int, seeds: Sequence[int], *,
                                          theory=None, normalize_rows: bool = True,
                                          outlier_margin: float = 0.1,
                                          centered: bool = True) -> CentroidDiagonalizationComparison:
    """Diagonalize sampled U_gep with extensive centroids and compare the bulk with the theory.

    For each seed: U_gep of speciation.md §1.2 (:func:`diffmix.gpu.gep_matrices_centroids`) at
    dimension d, all p eigenvalues; the outliers (the mean part, rank <= 2C: the top 2C
    eigenvalues that exceed the theory's top edge by more than ``outlier_margin``, relative) are
    reported separately and the rest compared by KS with the deterministic equivalent
    (centroid-spectrum.md §1) and with the centered formula (coefficients at m = 0, atom
    included); consecutive seeds are compared with each other (two-sample KS: the sampling
    noise at this p).

    Parameters
    ----------
    model : Model
        With centroids (not all ``centroid_norm2`` zero), C <= 3.
    d : int
        Data dimension; p = round(psi_p d), n = round(psi_n d).
    seeds : sequence of int
    theory : CentroidSpectrum, optional
        :func:`~diffmix.solvers._centroid_spectrum.centroid_spectrum` of the model; computed
        when None.
    normalize_rows : bool
        Rows of W with norm sqrt(d) (default True): the theory takes ||w_i||^2/d = 1 in the
        coefficients (centroid-spectrum.md §6); with Gaussian rows the sampled coefficients are
        evaluated at the actual row norms, an O(d^{-1/2}) difference (case A of §5 at d = 200:
        KS 0.010-0.036 over seeds 1-6, against 0.0045-0.017 over seeds 1-20 with normalised
        rows).
    outlier_margin : float
        Relative margin above the theory's top edge for an eigenvalue to count as an outlier.
    centered : bool
        Also compute the KS distance to the centered formula.

    Returns
    -------
    CentroidDiagonalizationComparison

    Raises
    ------
    ValueError
        No seeds, a centered model, or a model the theory does not handle.
    ArithmeticError
        If the theory density did not converge.
    """
    from diffmix.gpu import gep_matrices_centroids
    from diffmix.solvers._centroid_spectrum import CentroidSpectralParams, centroid_spectrum

    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds: give at least one seed")
    if model.is_centered:
        raise ValueError("centroid_norm2: the model is centered; use compare_with_diagonalization")
    if not 0 <= outlier_margin < 10:
        raise ValueError(f"outlier_margin = {outlier_margin!r}: must be in [0, 10)")
    if theory is None:
        theory = centroid_spectrum(CentroidSpectralParams.from_model(model))
    if not theory.converged:
        raise ArithmeticError(f"theory density did not converge: {theory.message}")
    size = FiniteSize.from_model(model, d)
    cdf = theory  # CentroidSpectrum.cdf / .left: the bulk law normalised by its mass
    centered_cdf = centered_formula_cdf(model, theory.scan_lam) if centered else None
    top_edge = theory.components[-1][1]
    n_candidates = 2 * model.n_classes
    start = time.perf_counter()
    per_seed = []
    for seed in seeds:
        sample = gep_matrices_centroids(model, d, seed=seed, normalize_rows=normalize_rows)
        e = eigenvalues_of(sample.U)
        del sample
        top = e[-n_candidates:]
        n_out = int(np.count_nonzero(top > (1.0 + outlier_margin) * top_edge))
        bulk, outliers = e[:e.size - n_out], e[e.size - n_out:][::-1]
        ks, at = _ks_with_location(bulk, cdf)
        ks_c = None if centered_cdf is None else _ks_with_location(bulk, centered_cdf)[0]
        per_seed.append(CentroidSeedComparison(seed, e, outliers.copy(), bulk, ks, at, ks_c,
                                               float(bulk[-1])))
    pairs = np.array([ks_two_sample(per_seed[i].bulk, per_seed[i + 1].bulk)
                      for i in range(0, len(per_seed) - 1, 2)])
    predicted, note = outlier_prediction(model, d)
    return CentroidDiagonalizationComparison(model, bool(normalize_rows), size, theory, cdf,
                                             centered_cdf, tuple(per_seed), pairs, predicted, note,
                                             time.perf_counter() - start)


def centroid_spectrum_record(spec) -> dict:
    """The JSON object of ``diffmix spectrum`` for a model with centroids (time unit 1/lambda).

    Keys: ``spectrum`` ("centroids"), ``edges`` (support components [lower, upper], ascending),
    ``masses``, ``total_mass``, ``threshold`` and ``edge_note`` (how the edges are defined),
    ``atoms`` (none: the s2 atom is smeared), the timescales and windows with ``timescale_note``,
    ``outliers_theory`` / ``outliers_note`` (filled by the caller with a size), ``converged``,
    ``message``.
    """
    ts = spec.timescales
    return {"spectrum": "centroids",
            "edges": [[lo, hi] for lo, hi, _ in spec.components],
            "masses": [m for _, _, m in spec.components],
            "total_mass": spec.total_mass, "atoms": [],
            "threshold": spec.threshold,
            "edge_note": ("support = {lambda rho(lambda) > threshold}, threshold = 1e-4 of the "
                          "largest lambda rho; edges bisected to 1e-7 relative (1e-4 in the "
                          "smeared s2 band); not folds (centroid-spectrum.md §6); the outliers "
                          "are not in the density"),
            **{key: ts.get(key) for key in ("tau_gen", "tau_mem", "tau_final", "W_gen", "W_mem")},
            "time_unit": ts.get("time_unit", "1/lambda"),
            "timescale_note": ts.get("timescale_note", ""),
            "outliers_theory": None, "outliers_note": "needs a size: use --check-size",
            "converged": bool(spec.converged), "message": spec.message}


def draw_centroid_density(ax, spec, comparison: CentroidDiagonalizationComparison | None = None,
                          *, centered_cdf: GridCDF | None = None) -> None:
    """Draw lambda rho(lambda) of the centroid theory on a log lambda axis, optionally a sample.

    The deterministic equivalent (centroid-spectrum.md §1), the centered formula (coefficients at
    m = 0, atom marked) when given or held by ``comparison``, the support edges, and the sampled
    bulk eigenvalues (outliers removed; histogram on log bins normalised by the bulk count).  The
    outliers are far to the right and only listed in the legend.
    """
    lam = spec.lam.reshape(len(spec.components), -1)
    rho = spec.density.reshape(len(spec.components), -1)
    for k in range(lam.shape[0]):
        ax.plot(lam[k], lam[k] * rho[k], color="C0", lw=1.4,
                label="deterministic equivalent with centroids (centroid-spectrum.md)"
                if k == 0 else None)
    lam = spec.scan_lam
    centered = centered_cdf if centered_cdf is not None else (
        None if comparison is None else comparison.centered_cdf)
    if centered is not None and centered.rho is not None:
        ax.plot(centered.lam, centered.lam * centered.rho, color="C2", lw=1.0, ls="--",
                label="centered formula (centroids ignored, spectrum.md)")
        for loc, weight in centered.atoms:
            ax.axvline(loc, color="C2", lw=1.0, ls="-.",
                       label=f"its atom at $s^2$ = {loc:.3g}, weight {weight:.3f}")
    if comparison is not None:
        s = comparison.per_seed[0]
        bins = np.geomspace(min(s.bulk[0], lam[0]), max(s.bulk[-1], spec.edges[-1][1]),
                            int(np.clip(round(2 * math.sqrt(s.bulk.size)), 20, 80)) + 1)
        counts, _ = np.histogram(s.bulk, bins)
        shown = ", ".join(f"{v:.4g}" for v in s.outliers) or "none"
        ax.stairs(counts / (s.bulk.size * np.diff(np.log(bins))), bins, color="C1", fill=True,
                  alpha=0.35, label=f"sampled $U_{{gep}}$ bulk (seed {s.seed}); outliers removed: "
                                    f"{shown}")
    names = {}
    ts = spec.timescales
    if ts.get("tau_gen") is not None:
        names[(len(spec.components) - 1, 0)] = r"$1/\tau_{gen}$"
    if ts.get("tau_mem") is not None:
        names[(len(spec.components) - 2, 1)] = r"$1/\tau_{mem}$"
    if ts.get("tau_final") is not None:
        names[(0, 0)] = r"$1/\tau_{final}$"
    for k, (lo, hi, _) in enumerate(spec.components):
        for side, edge in enumerate((lo, hi)):
            ax.axvline(edge, color="0.4", ls=":", lw=0.8,
                       label="support edges (threshold)" if (k, side) == (0, 0) else None)
            if (k, side) in names:
                ax.annotate(names[(k, side)], (edge, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(2, -12), textcoords="offset points", fontsize=8, color="0.3")
    ax.set_xscale("log")
    ax.set_xlabel(r"eigenvalue $\lambda$ of $U_{gep}$ (unscaled, gep.md)")
    ax.set_ylabel(r"$\lambda\,\rho(\lambda)$  (density per unit $\ln\lambda$)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1)
