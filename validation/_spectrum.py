"""Theory spectrum of a centered mixture against the eigenvalues of sampled finite-size matrices.

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

__all__ = ["DiagonalizationComparison", "EdgeExtrapolation", "SeedComparison", "TheoryCDF",
           "bulk_index_bounds", "compare_with_diagonalization", "eigenvalues_of",
           "extrapolate_extremes", "ks_distance", "l1_distance"]

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
