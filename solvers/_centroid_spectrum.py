"""Bulk spectral density of U_gep with extensive class centroids (centroid-spectrum.md).

With ||mu_c||^2 = O(d) every neuron i has its own GEP coefficients, through its projected
centroids m_i = (w_i . mu_c / sqrt(d))_c, whose law over the draw of W is the Gaussian "type" law
N(0, S), S_cc' = mu_c . mu_c' / d = sqrt(n_c n_c') cosine_cc' (n_c = ``centroid_norm2``).  The
deterministic equivalent of the resolvent is diagonal, R ~ diag(r_i), with (centroid-spectrum.md §1;
the bulk of the paper's eq. (107), arXiv 2605.06367 App. F.2, which the paper solves only centered):

    theta_c = rho_c (Delta + e2 sigma_c^2 / (1 + delta_c)),   Theta = diag(theta),  e2 = e^{-2t}
    M       = Theta (I + Lambda Theta)^{-1}
    r_i     = 1 / (s2_i - z + sum_c rho_c v2_ic / (1 + delta_c) + mu1_i^T M mu1_i)
    Lambda  = psi_p E_i[mu1_i mu1_i^T r_i]
    delta_c = (psi_p/psi_n) E_i[v2_ic r_i] + (1/psi_n) e2 sigma_c^2 [Lambda (I + Theta Lambda)^{-1}]_cc
    g(z)    = E_i[r_i],   rho(lambda) = Im g(lambda + i0) / pi

with C + C(C+1)/2 complex unknowns x = (delta_c, Lambda_ab for a <= b).  The per-neuron
coefficients mu1_ic, v2_ic, s2_ic (s2_i = sum_c rho_c s2_ic) are gep.md §1 "Generalization" at the
pre-activation mean e^{-t} m_ic, from :func:`diffmix.theory.neuron_coefficients` (any activation
it handles), tabulated once per class on a 1-d grid of m and interpolated by cubic splines.

Every r_i enters only through D_i = s2_i - z + sum_k beta_k phi_ik, linear in K = C + C(C+1)/2
type features phi = (v2_c ; mu1_a mu1_b, a <= b) with coefficients beta(x) = (rho_c/(1+delta_c) ;
(2 - [a = b]) M_ab).  So one evaluation of the fixed point is a sum over the type nodes of
r_i phi_i (and, for the analytic Jacobian, of r_i' phi_i phi_i^T with r' = dr/dz = r^2), and the
small C x C algebra around it.

Type integral E_i (centroid-spectrum.md §3).  The types are whitened, m = L y with L L^T = S and
y ~ N(0, I_k), k = rank(S) <= C (non-orthogonal centroids included, §6), and integrated by

* ``"gauss-hermite"``: tensor Gauss-Hermite in y (probabilists' nodes);
* ``"cells"``: the cell model of §3: a uniform grid of cells on [-R, R]^k, cell weight = Gaussian
  mass, r_i replaced by its exact average over the cell assuming D linear in the cell with real
  shifts a_j = h Re dD/dy_j (closed forms by finite differences of the k-th antiderivative of 1/x,
  a Taylor series in the cell's moments when the cell is far from resonance).  Near the real axis a
  discrete type set gives a spiky density wherever some r_i is nearly resonant (the smeared s2
  band); the cell model does not;
* ``"auto"`` (default): Gauss-Hermite at two orders; where they disagree (relative difference
  of g or of Im g > ``switch_tol``, 0.2% as in §3) and cells of weight > 1e-8 are nearly resonant
  at the solution (the cell model's closed-form branch), or where Gauss-Hermite did not
  converge, the cell model, continued from the Gauss-Hermite solution at eta = 0.02 |lambda|.

Solver ("the same machinery" as :func:`diffmix.solvers.solve_resolvent`): per lambda, continuation
in eta from eta0 = 10(|lambda| + 1) down to eta_f = eta_rel |lambda| with a cubic Hermite predictor
(in log eta for log x, or in eta for x, whichever predicted the last step better), damped complex
Newton with the analytic Jacobian (holomorphic for Gauss-Hermite; for cells the shifts a_j are
frozen at the current iterate, a quasi-Newton step), adaptive steps, then a real-axis (eta = 0)
Newton solve kept only if it converges on the physical branch (Im r_i >= 0 for every node) close to
the continuation end point.  Per-point converged flags; points that fail (a leg gives up after
1000 steps) are retried with a 5x finer continuation; ``strict=True`` raises.  Numba kernels
(cached; the first call compiles them, about a minute), parallel over lambda.

The outliers (the mean part sum_c rho_c mu0_c mu0_c^T and its cross terms, rank <= 2C, norm O(p);
speciation.md) are NOT in this density: it describes the p - O(C) bulk eigenvalues.
"""
from __future__ import annotations

import cmath
import math
from dataclasses import dataclass, field

import numba
import numpy as np
from numba import njit, prange
from scipy.interpolate import CubicSpline
from scipy.special import ndtr

from ._resolvent import _hermite

__all__ = ["CentroidResolventResult", "CentroidSpectralParams", "CentroidSpectrum",
           "TypeQuadrature", "centroid_spectrum", "centroid_stieltjes",
           "solve_centroid_resolvent"]

#: Largest type dimension k = rank(S) (and number of classes C) supported: the tensor quadrature
#: of the type integral costs n^k nodes.
MAX_CLASSES = 3
#: Default Gauss-Hermite orders (the two of the "auto" comparison) and cells per dimension, by k.
_GH_ORDERS = {1: (60, 80), 2: (24, 30), 3: (14, 18)}
_N_CELLS = {1: 400, 2: 50, 3: 24}
#: Nodes / cells whose normalised weight is below this are dropped (their total is < 1e-12).
_WEIGHT_FLOOR = 1e-16
#: Continuation step control (as in _resolvent): predictor error aimed at, correction refused.
_STEP_TARGET = 0.03
_STEP_REFUSE = 0.1
#: A continuation leg gives up after this many steps (accepted or refused): next to a fold
#: tiny steps can be accepted forever.
_MAX_STEPS = 1000
#: Im r_i >= -_IM_FLOOR |r_i| counts as the physical branch (round-off of the subtraction in D).
_IM_FLOOR = 1e-10
#: Cell average: Taylor series in the cell moments when sum_j |a_j| / (2 |D0|) <= _TAYLOR_RATIO
#: (truncation <= ratio^8 ~ 1e-8 relative); in the closed form a dimension with |a_j| below
#: _SMALL_SHIFT times the smallest |D| in the cell is taken by its derivative plus the a^2/24
#: correction.
_TAYLOR_RATIO = 0.1
_SMALL_SHIFT = 0.02
#: "auto": the cell model's continuation starts from the Gauss-Hermite solution at
#: eta = _CELL_START |lambda| (centroid-spectrum.md §3).
_CELL_START = 0.02
#: "auto": the two Gauss-Hermite orders may disagree only where cells of total weight above
#: this are nearly resonant (see _resonant_weight); elsewhere Gauss-Hermite is kept.
_RESONANT_WEIGHT = 1e-8


# ---------------------------------------------------------------------- type quadratures


@dataclass(frozen=True, eq=False)
class TypeQuadrature:
    """Nodes of the type integral E_i[.] over y ~ N(0, I_k), m = L y (centroid-spectrum.md §3).

    Attributes
    ----------
    kind : str
        "point" (k = 0: one type, the centered limit), "gauss-hermite" or "cells".
    order : int
        Nodes (Gauss-Hermite) or cells per dimension; 1 for "point".
    weight : ndarray, shape (N,)
        Normalised weights (sum 1).
    y : ndarray, shape (N, k)
        Nodes (cell centres) in the whitened coordinates.
    m : ndarray, shape (N, C)
        Projected centroids m_i = L y_i (gep.md convention: without e^{-t}).
    s2 : ndarray, shape (N,)
        s2_i = sum_c rho_c s2_ic.
    phi : ndarray, shape (N, K)
        Features (v2_i1..v2_iC, mu1_ia mu1_ib for a <= b), K = C + C(C+1)/2.
    ds2, dphi : ndarray, shapes (N, k), (N, K, k)
        Derivatives of s2_i and phi_i along y_j (used by the cell model only).
    h : ndarray, shape (k,)
        Cell widths (zeros unless "cells").
    mu0 : ndarray, shape (N, C)
        mu0_ic (the mean part; not used by the bulk equations).
    """

    kind: str
    order: int
    weight: np.ndarray
    y: np.ndarray
    m: np.ndarray
    s2: np.ndarray
    phi: np.ndarray
    ds2: np.ndarray
    dphi: np.ndarray
    h: np.ndarray
    mu0: np.ndarray

    @property
    def size(self) -> int:
        """N, the number of nodes."""
        return self.weight.shape[0]


def _tensor(nodes_1d, weights_1d, k):
    grids = np.meshgrid(*([nodes_1d] * k), indexing="ij")
    y = np.stack([g.ravel() for g in grids], axis=1) if k else np.zeros((1, 0))
    wg = np.meshgrid(*([weights_1d] * k), indexing="ij")
    w = np.prod(np.stack([g.ravel() for g in wg], axis=1), axis=1) if k else np.ones(1)
    return y, w


# ---------------------------------------------------------------------- parameters


@dataclass(frozen=True, eq=False)
class CentroidSpectralParams:
    """What a mixture with extensive centroids puts into the bulk equations (centroid-spectrum.md §0-1).

    Build it with :meth:`from_model`.  The per-class coefficient tables mu1_c, v2_c, s2_c, mu0_c
    (functions of m, gep.md §1 "Generalization" at mean e^{-t} m, ||w_i||^2/d = 1 as in the note's
    §6) are computed once at construction; the quadratures are built on first use and cached.

    Attributes
    ----------
    model : Model
    psi_p, psi_n, t : float
    rho, variance : ndarray, shape (C,)
    gram : ndarray, shape (C, C)
        S = sqrt(n n^T) o cosine, the covariance of the types m_i.
    whitening : ndarray, shape (C, k)
        L with L L^T = S (eigenvectors of S with eigenvalue > 1e-12 of the largest, times their
        square roots); k = rank(S).
    table_m : tuple of ndarray
        Per class, the grid of m of the coefficient tables.
    gh_orders : tuple of int
        The two Gauss-Hermite orders (nodes per dimension) of the "auto" quadrature.
    n_cells : int
        Cells per dimension of the cell model, on [-cell_range, cell_range]^k.
    cell_range : float
    """

    model: object
    psi_p: float
    psi_n: float
    t: float
    rho: np.ndarray
    variance: np.ndarray
    gram: np.ndarray
    whitening: np.ndarray
    table_m: tuple
    gh_orders: tuple
    n_cells: int
    cell_range: float
    _splines: tuple = field(repr=False, default=())
    _cache: dict = field(repr=False, default_factory=dict)

    @property
    def n_classes(self) -> int:
        """C."""
        return self.rho.shape[0]

    @property
    def rank(self) -> int:
        """k = rank(S), the dimension of the type integral (0: centered)."""
        return self.whitening.shape[1]

    @property
    def n_unknowns(self) -> int:
        """K = C + C(C+1)/2 complex unknowns (delta_c, Lambda_ab for a <= b)."""
        c = self.n_classes
        return c + c * (c + 1) // 2

    @property
    def e2(self) -> float:
        """e^{-2t}."""
        return math.exp(-2.0 * self.t)

    @property
    def delta_t(self) -> float:
        """Delta_t = 1 - e^{-2t}."""
        return -math.expm1(-2.0 * self.t)

    @classmethod
    def from_model(cls, model, *, gh_orders: tuple | None = None, n_cells: int | None = None,
                   cell_range: float = 6.0, table_step: float = 0.02) -> "CentroidSpectralParams":
        """Coefficient tables and type law of a :class:`diffmix.theory.Model` (centroids allowed).

        Parameters
        ----------
        model : Model
            C <= 3 classes (``weights``); any activation that
            :func:`diffmix.theory.neuron_coefficients` handles.  A centered model gives k = 0 (one
            type: the centered equations of spectrum.md, the centered limit of §1).
        gh_orders : (int, int), optional
            Gauss-Hermite nodes per dimension of the two "auto" orders; default (60, 80) for k = 1,
            (24, 30) for k = 2, (14, 18) for k = 3.
        n_cells : int, optional
            Cells per dimension of the cell model; default 400, 50, 24 for k = 1, 2, 3.
        cell_range : float
            The cells cover [-cell_range, cell_range]^k in the whitened coordinates (mass outside
            ~1e-9 k at 6).
        table_step : float
            Spacing of the 1-d coefficient tables in m (cubic-spline error ~1e-9 relative at 0.02).

        Raises
        ------
        ValueError
            More than 3 classes, or bad quadrature options (the message names the parameter).

        Examples
        --------
        >>> from diffmix.theory import Model
        >>> p = CentroidSpectralParams.from_model(Model("tanh", 0.1, 4.0, 2.0, [1.0], [0.5], [1.0]))
        >>> p.rank, p.n_unknowns, p.gh_orders
        (1, 2, (60, 80))
        """
        from diffmix.theory import neuron_coefficients

        n_classes = model.n_classes
        if n_classes > MAX_CLASSES:
            raise ValueError(f"weights: C = {n_classes} classes; the centroid spectrum supports "
                             f"C <= {MAX_CLASSES} (the type integral is a tensor quadrature of "
                             "dimension rank(S) <= C)")
        if not (np.isfinite(cell_range) and cell_range > 0):
            raise ValueError(f"cell_range = {cell_range!r}: must be a finite number > 0")
        if not (np.isfinite(table_step) and 0 < table_step <= 0.1):
            raise ValueError(f"table_step = {table_step!r}: must be in (0, 0.1]")
        norms = np.sqrt(np.array(model.centroid_norm2))
        gram = np.outer(norms, norms) * np.array(model.cosine)
        ev, vec = np.linalg.eigh(0.5 * (gram + gram.T))
        top = max(float(ev.max()), 0.0)
        keep = ev > 1e-12 * top if top > 0 else np.zeros(n_classes, dtype=bool)
        whitening = vec[:, keep] * np.sqrt(ev[keep])
        k = whitening.shape[1]
        if k == 0:
            orders, cells = (1, 1), 1
        else:
            orders = tuple(int(o) for o in (gh_orders if gh_orders is not None else _GH_ORDERS[k]))
            cells = int(n_cells if n_cells is not None else _N_CELLS[k])
            if len(orders) != 2 or min(orders) < 2 or orders[0] == orders[1]:
                raise ValueError(f"gh_orders = {gh_orders!r}: must be two different integers >= 2")
            if cells < 4:
                raise ValueError(f"n_cells = {n_cells!r}: must be an integer >= 4")
        # Coefficient tables over the range of m the nodes reach (Gauss-Hermite's largest node or
        # the cell range, whichever is larger, times the spread of m_c along the whitened axes).
        y_max = max(float(np.polynomial.hermite_e.hermegauss(max(orders))[0].max()), cell_range)
        e = math.exp(-model.t)
        splines, grids = [], []
        for c, var in enumerate(model.variances):
            reach = float(np.abs(whitening[c]).sum()) * y_max * 1.02 + 0.1 if k else 0.1
            n_tab = int(math.ceil(2 * reach / table_step)) + 1
            m_grid = np.linspace(-reach, reach, n_tab)
            coeff = neuron_coefficients(model.activation, model.t, var, e * m_grid, strict=False)
            # Far in the tails (|y| ~ 8-10, weight < 1e-14) the quadrature of a kinked activation
            # may not reach its relative tolerance on values ~1e-70: those table points are
            # dropped (the spline continues from the converged ones); inside |y| <= cell_range
            # every point must converge.
            ok = np.asarray(coeff.converged, dtype=bool)
            core = np.abs(m_grid) <= float(np.abs(whitening[c]).sum()) * cell_range if k else ok
            if not ok[core].all() or ok.sum() < 4:
                raise ValueError(f"activation = {model.activation!r}: per-neuron coefficients did "
                                 f"not converge for class {c}: {coeff.message}")
            m_grid = m_grid[ok]
            splines.append({name: CubicSpline(m_grid,
                                              np.asarray(getattr(coeff, attr), dtype=float)[ok])
                            for name, attr in (("mu1", "mu1"), ("v2", "v_t2"), ("s2", "s_t2"),
                                               ("mu0", "mu0"))})
            grids.append(m_grid)
        return cls(model, float(model.psi_p), float(model.psi_n), float(model.t),
                   np.array(model.weights), np.array(model.variances), gram, whitening,
                   tuple(grids), orders, cells, float(cell_range), tuple(splines))

    # ------------------------------------------------------------------ quadratures

    def coefficients(self, m) -> dict:
        """Per-class coefficients at projected centroids m (shape (..., C)): dict of arrays
        (..., C) for mu1, v2, s2, mu0 and their derivatives d/dm (keys "dmu1", ...); v2, s2 are
        clipped at 0 (spline undershoot in the tails)."""
        m = np.asarray(m, dtype=float)
        out = {}
        for name in ("mu1", "v2", "s2", "mu0"):
            val = np.stack([self._splines[c][name](m[..., c]) for c in range(self.n_classes)], -1)
            der = np.stack([self._splines[c][name](m[..., c], 1) for c in range(self.n_classes)], -1)
            if name in ("v2", "s2"):
                der = np.where(val > 0, der, 0.0)
                val = np.clip(val, 0.0, None)
            out[name], out["d" + name] = val, der
        return out

    def quadrature(self, kind: str, order: int | None = None) -> TypeQuadrature:
        """The type quadrature of ``kind`` ("gauss-hermite" or "cells"; "point" when k = 0).

        ``order``: nodes (cells) per dimension; default the larger Gauss-Hermite order or
        ``n_cells``.  Cached.
        """
        k = self.rank
        if k == 0:
            kind, order = "point", 1
        elif kind == "gauss-hermite":
            order = int(order or max(self.gh_orders))
        elif kind == "cells":
            order = int(order or self.n_cells)
        else:
            raise ValueError(f"quadrature = {kind!r}: must be 'gauss-hermite' or 'cells'")
        key = (kind, order)
        if key not in self._cache:
            self._cache[key] = self._build(kind, order)
        return self._cache[key]

    def _build(self, kind: str, order: int) -> TypeQuadrature:
        k, n_classes = self.rank, self.n_classes
        h = np.zeros(k)
        if kind == "point":
            y, w = np.zeros((1, 0)), np.ones(1)
        elif kind == "gauss-hermite":
            x1, w1 = np.polynomial.hermite_e.hermegauss(order)
            y, w = _tensor(x1, w1 / w1.sum(), k)
        else:
            edges = np.linspace(-self.cell_range, self.cell_range, order + 1)
            mass = np.diff(ndtr(edges))
            y, w = _tensor(0.5 * (edges[1:] + edges[:-1]), mass, k)
            h[:] = edges[1] - edges[0]
        keep = w > _WEIGHT_FLOOR * w.max()
        y, w = y[keep], w[keep] / w[keep].sum()
        m = y @ self.whitening.T if k else np.zeros((1, n_classes))
        cf = self.coefficients(m)
        qa, qb = np.triu_indices(n_classes)
        phi = np.concatenate([cf["v2"], cf["mu1"][:, qa] * cf["mu1"][:, qb]], axis=1)
        s2 = cf["s2"] @ self.rho
        # d/dy_j = sum_c L_cj d/dm_c
        L = self.whitening
        ds2 = (cf["ds2"] * self.rho) @ L if k else np.zeros((1, 0))
        dphi_v2 = cf["dv2"][:, :, None] * L[None, :, :]
        dq = (cf["dmu1"][:, qa, None] * L[None, qa, :] * cf["mu1"][:, qb, None]
              + cf["mu1"][:, qa, None] * cf["dmu1"][:, qb, None] * L[None, qb, :])
        dphi = np.concatenate([dphi_v2, dq], axis=1)
        return TypeQuadrature(kind, order, np.ascontiguousarray(w), y, m, np.ascontiguousarray(s2),
                              np.ascontiguousarray(phi), np.ascontiguousarray(ds2),
                              np.ascontiguousarray(dphi), h, cf["mu0"])

    def _kernel_args(self, quad: TypeQuadrature):
        qa, qb = np.triu_indices(self.n_classes)
        return (self.psi_p, self.psi_n, self.delta_t, np.ascontiguousarray(self.rho),
                np.ascontiguousarray(self.e2 * self.variance), qa.astype(np.int64),
                qb.astype(np.int64), quad.weight, quad.s2, quad.phi, quad.kind == "cells",
                quad.ds2, quad.dphi, np.ascontiguousarray(quad.h))

    def s2_range(self, quantile: float = 1e-6) -> tuple[float, float]:
        """(lower ``quantile``, max) of s2_i under the type law (cell model; the single type when
        k = 0).  The bulk eigenvalue of a type sits above its s2_i, so the density below the
        lower value carries a mass of order ``quantile``."""
        quad = self.quadrature("cells")
        order = np.argsort(quad.s2, kind="stable")
        cum = np.cumsum(quad.weight[order])
        low = quad.s2[order][min(int(np.searchsorted(cum, quantile)), order.size - 1)]
        sel = quad.weight >= 1e-12 * quad.weight.max()
        return float(low), float(quad.s2[sel].max())

    def upper_bound(self) -> float:
        """A value above the bulk: 2 (max s2_i + beta_max ||K|| + sum_c rho_c ||T_c||
        (1 + sqrt(p/n_c))^2), ||K|| <= (1 + sqrt(psi_p))^2, with the largest per-type coefficients
        (the bound of spectrum.md's centered solver with the worst neuron)."""
        quad = self.quadrature("cells")
        cf = self.coefficients(quad.m)
        mu1_max = np.abs(cf["mu1"]).max(axis=0)
        v2_max = cf["v2"].max(axis=0)
        kk = (1 + math.sqrt(self.psi_p)) ** 2
        beta = self.delta_t * float(self.rho @ mu1_max**2)
        r = self.psi_p / self.psi_n
        cls_ = sum(rc * (self.e2 * vc * mc**2 * kk + v2c) * (1 + math.sqrt(r / rc)) ** 2
                   for rc, vc, mc, v2c in zip(self.rho, self.variance, mu1_max, v2_max))
        return 2.0 * (float(quad.s2.max()) + beta * kk + cls_)


# ---------------------------------------------------------------------- Numba kernels


@njit(cache=True)
def _solve_linear(A, b):
    """x = A^{-1} b for a small complex system (Gaussian elimination, partial pivoting); the
    second return value is False when A is singular."""
    n = A.shape[0]
    M = A.copy()
    x = b.copy()
    for col in range(n):
        piv = col
        best = abs(M[col, col])
        for r in range(col + 1, n):
            if abs(M[r, col]) > best:
                best = abs(M[r, col])
                piv = r
        if best == 0.0 or not np.isfinite(best):
            return x, False
        if piv != col:
            for j in range(n):
                tmp = M[col, j]
                M[col, j] = M[piv, j]
                M[piv, j] = tmp
            tmp = x[col]
            x[col] = x[piv]
            x[piv] = tmp
        for r in range(col + 1, n):
            f = M[r, col] / M[col, col]
            if f != 0:
                for j in range(col, n):
                    M[r, j] -= f * M[col, j]
                x[r] -= f * x[col]
    for r in range(n - 1, -1, -1):
        s = x[r]
        for j in range(r + 1, n):
            s -= M[r, j] * x[j]
        x[r] = s / M[r, r]
    return x, True


@njit(cache=True)
def _inverse(A):
    n = A.shape[0]
    out = np.zeros((n, n), dtype=np.complex128)
    ok = True
    for j in range(n):
        e = np.zeros(n, dtype=np.complex128)
        e[j] = 1.0
        col, good = _solve_linear(A, e)
        ok = ok and good
        out[:, j] = col
    return out, ok


@njit(cache=True)
def _small(x, C, qa, qb, rho, e2var, delta_t, psi_n):
    """The C x C algebra of the fixed point (module docstring).

    With N = (I + Lambda Theta)^{-1} (so (I + Theta Lambda)^{-1} = N^T), M = Theta N and
    Q = Lambda N^T: dM = dtheta_c N[c,:]^T N[c,:] for delta_c, -(M[:,a] M[b,:] + M[:,b] M[a,:])
    for Lambda_ab (a != b; once for a = b); dQ_cc = -dtheta_c' Q[c,c'] Q[c',c] for delta_c',
    N[c,a] N[c,b] + N[c,b] N[c,a] for Lambda_ab.  Returns beta (K,), dbeta (K, K) =
    d beta_k / d x_u, T (C,) = e2 sigma_c^2 Q_cc / psi_n, dT (C, K) and an ok flag (False: a
    singular C x C matrix).
    """
    K = x.shape[0]
    nq = K - C
    lam = np.zeros((C, C), dtype=np.complex128)
    for q in range(nq):
        lam[qa[q], qb[q]] = x[C + q]
        lam[qb[q], qa[q]] = x[C + q]
    theta = np.empty(C, dtype=np.complex128)
    dtheta = np.empty(C, dtype=np.complex128)
    for c in range(C):
        inv = 1.0 / (1.0 + x[c])
        theta[c] = rho[c] * (delta_t + e2var[c] * inv)
        dtheta[c] = -rho[c] * e2var[c] * inv * inv
    A = np.empty((C, C), dtype=np.complex128)
    for a in range(C):
        for b in range(C):
            A[a, b] = (1.0 if a == b else 0.0) + lam[a, b] * theta[b]   # I + Lambda Theta
    Nm, ok = _inverse(A)
    Mm = np.empty((C, C), dtype=np.complex128)
    Qm = np.zeros((C, C), dtype=np.complex128)
    for a in range(C):
        for b in range(C):
            Mm[a, b] = theta[a] * Nm[a, b]
            for c in range(C):
                Qm[a, b] += lam[a, c] * Nm[b, c]
    beta = np.empty(K, dtype=np.complex128)
    dbeta = np.zeros((K, K), dtype=np.complex128)
    T = np.empty(C, dtype=np.complex128)
    dT = np.zeros((C, K), dtype=np.complex128)
    for c in range(C):
        beta[c] = rho[c] / (1.0 + x[c])
        dbeta[c, c] = -rho[c] / ((1.0 + x[c]) * (1.0 + x[c]))
        T[c] = e2var[c] * Qm[c, c] / psi_n
    for q in range(nq):
        e, f = qa[q], qb[q]
        mult = 1.0 if e == f else 2.0
        beta[C + q] = mult * Mm[e, f]
        for c in range(C):                      # u = delta_c
            dbeta[C + q, c] = mult * dtheta[c] * Nm[c, e] * Nm[c, f]
        for u in range(nq):                     # u = Lambda_ab
            a, b = qa[u], qb[u]
            if a == b:
                dm = -Mm[e, a] * Mm[a, f]
            else:
                dm = -(Mm[e, a] * Mm[b, f] + Mm[e, b] * Mm[a, f])
            dbeta[C + q, C + u] = mult * dm
    for c in range(C):
        s = e2var[c] / psi_n
        for cc in range(C):
            dT[c, cc] = -s * dtheta[cc] * Qm[c, cc] * Qm[cc, c]
        for u in range(nq):
            a, b = qa[u], qb[u]
            if a == b:
                dT[c, C + u] = s * Nm[c, a] * Nm[c, a]
            else:
                dT[c, C + u] = 2.0 * s * Nm[c, a] * Nm[c, b]
    return beta, dbeta, T, dT, ok


@njit(cache=True)
def _cell_average(D0, a, k, large):
    """Average of 1/D and of 1/D^2 over a cell where D = D0 + sum_j a_j x_j, x_j uniform on
    [-1/2, 1/2] (real a_j, Im D0 < 0): the cell model of centroid-spectrum.md §3 in k <= 3
    dimensions (``large``: a work array of length >= k)."""
    total = 0.0
    for j in range(k):
        total += abs(a[j])
    absd = abs(D0)
    if total <= 2.0 * _TAYLOR_RATIO * absd:
        # Moments of u = sum_j a_j x_j (odd ones vanish), from power sums of c_j = a_j^2/12 and
        # e_j = a_j^4/80: E u^4 = sum e + 6 e_2(c), E u^6 = sum a^6/448 + 15 sum_{i != j} e_i c_j
        # + 90 e_3(c); then 1/(D0 + u) = sum_n (-u)^n / D0^{n+1}.
        p1 = 0.0
        p2 = 0.0
        p3 = 0.0
        se = 0.0
        sec = 0.0
        s6 = 0.0
        for j in range(k):
            a2 = a[j] * a[j]
            c = a2 / 12.0
            e = a2 * a2 / 80.0
            p1 += c
            p2 += c * c
            p3 += c * c * c
            se += e
            sec += e * c
            s6 += a2 * a2 * a2 / 448.0
        m2 = p1
        m4 = se + 3.0 * (p1 * p1 - p2)
        m6 = s6 + 15.0 * (se * p1 - sec) + 15.0 * (p1 * p1 * p1 - 3.0 * p1 * p2 + 2.0 * p3)
        inv = 1.0 / D0
        inv2 = inv * inv
        r = inv * (1.0 + inv2 * (m2 + inv2 * (m4 + inv2 * m6)))
        r2 = inv2 * (1.0 + inv2 * (3.0 * m2 + inv2 * (5.0 * m4 + inv2 * 7.0 * m6)))
        return r, r2
    # |D| over the cell is at least dmin (the shifts are real); a dimension much narrower than
    # that is taken by its derivative plus the a^2/24 correction (error ~ (a/dmin)^4 / 1920).
    dmin = max(abs(D0.imag), abs(D0.real) - 0.5 * total)
    nl = 0
    corr = 0.0
    prod = 1.0
    for j in range(k):
        if abs(a[j]) >= _SMALL_SHIFT * dmin:
            large[nl] = a[j]
            nl += 1
            prod *= a[j]
        else:
            corr += a[j] * a[j] / 24.0
    # avg 1/D = (1/prod a) sum over corners of sign F_nl (+ corr F_{nl-2}) with F_n the n-th
    # antiderivative of 1/x up to a polynomial of degree < n that the differences remove
    # (F_1 = log x, F_2 = x log x, F_3 = x^2 log x / 2; F_0 = 1/x, F_{-1} = -1/x^2, F_{-2} = 2/x^3);
    # avg 1/D^2 = -d/dD0 of it.  Im x = Im D0 < 0 at every corner: no branch cut is crossed.
    r = 0j
    r2 = 0j
    for s in range(1 << nl):
        x = D0
        sign = 1.0
        for j in range(nl):
            if (s >> j) & 1:
                x += 0.5 * large[j]
            else:
                x -= 0.5 * large[j]
                sign = -sign
        # F_nl + corr F_{nl-2} and F_{nl-1} + corr F_{nl-3} from one log per corner.
        lg = cmath.log(x)
        inv = 1.0 / x
        if nl == 1:
            r += sign * (lg - corr * inv * inv)
            r2 -= sign * (inv + 2.0 * corr * inv * inv * inv)
        elif nl == 2:
            r += sign * (x * lg + corr * inv)
            r2 -= sign * (lg - corr * inv * inv)
        else:
            r += sign * (0.5 * x * x * lg + corr * lg)
            r2 -= sign * (x * lg + corr * inv)
    return r / prod, r2 / prod


@njit(cache=True)
def _type_sums(beta, z, w, s2, phi, cells, ds2, dphi, h):
    """Sums over the type nodes at coefficients beta and spectral parameter z.

    Returns g = E[r], E (K,) = E[phi r], A (K,) = E[|phi r|], Hz (K,) = E[phi r'], H (K, K) =
    E[phi phi^T r'] (r' = dr/dz: r^2, or the cell average of 1/D^2), and worst = max_i
    Im D_i / |D_i| (<= 0 on the physical branch)."""
    N = w.shape[0]
    K = beta.shape[0]
    k = h.shape[0]
    E = np.zeros(K, dtype=np.complex128)
    A = np.zeros(K)
    Hz = np.zeros(K, dtype=np.complex128)
    H = np.zeros((K, K), dtype=np.complex128)
    g = 0j
    worst = -np.inf
    a = np.empty(k)
    large = np.empty(max(k, 1))
    for i in range(N):
        D = s2[i] - z
        for q in range(K):
            D += beta[q] * phi[i, q]
        # Im D / (|Re D| + |Im D|): the branch indicator without a square root.
        im = D.imag / (abs(D.real) + abs(D.imag))
        if im > worst:
            worst = im
        if cells:
            for j in range(k):
                gr = ds2[i, j]
                for q in range(K):
                    gr += (beta[q] * dphi[i, q, j]).real
                a[j] = h[j] * gr
            if D.imag > -1e-300:
                D = complex(D.real, -1e-300)
            r, r2 = _cell_average(D, a, k, large)
        else:
            den = D.real * D.real + D.imag * D.imag
            r = complex(D.real / den, -D.imag / den)
            r2 = r * r
        wi = w[i]
        g += wi * r
        absr = wi * abs(r)
        for q in range(K):
            fq = wi * phi[i, q]
            E[q] += fq * r
            A[q] += abs(phi[i, q]) * absr
            t = fq * r2
            Hz[q] += t
            for l in range(q, K):
                H[q, l] += t * phi[i, l]
    for q in range(K):
        for l in range(q):
            H[q, l] = H[l, q]
    return g, E, A, Hz, H, worst


@njit(cache=True)
def _resonant_weight(x, z, psi_n, delta_t, rho, e2var, qa, qb, w, s2, phi, ds2, dphi, h):
    """Weight of the cells where the linearised D_i varies over the cell by more than
    2 _TAYLOR_RATIO |D_i| (the cell model's closed-form branch): types with a nearly resonant
    r_i, where a discrete type set misses the self-consistent broadening."""
    C = rho.shape[0]
    K = x.shape[0]
    k = h.shape[0]
    beta, dbeta, T, dT, ok = _small(x, C, qa, qb, rho, e2var, delta_t, psi_n)
    total = 0.0
    for i in range(w.shape[0]):
        D = s2[i] - z
        for q in range(K):
            D += beta[q] * phi[i, q]
        spread = 0.0
        for j in range(k):
            gr = ds2[i, j]
            for q in range(K):
                gr += (beta[q] * dphi[i, q, j]).real
            spread += abs(h[j] * gr)
        if spread > 2.0 * _TAYLOR_RATIO * abs(D):
            total += w[i]
    return total


@njit(cache=True)
def _system(x, z, psi_p, psi_n, delta_t, rho, e2var, qa, qb, w, s2, phi, cells, ds2, dphi, h):
    """Residual F = x - G(x, z), its relative size, the Jacobian dF/dx, dF/dz, g and the branch
    indicator (see _type_sums)."""
    C = rho.shape[0]
    K = x.shape[0]
    beta, dbeta, T, dT, ok = _small(x, C, qa, qb, rho, e2var, delta_t, psi_n)
    g, E, A, Hz, H, worst = _type_sums(beta, z, w, s2, phi, cells, ds2, dphi, h)
    coef = np.empty(K)
    for c in range(C):
        coef[c] = psi_p / psi_n
    for q in range(C, K):
        coef[q] = psi_p
    F = np.empty(K, dtype=np.complex128)
    Fz = np.empty(K, dtype=np.complex128)
    res = 0.0
    for u in range(K):
        G = coef[u] * E[u]
        scale = abs(x[u]) + coef[u] * A[u]
        if u < C:
            G += T[u]
            scale += abs(T[u])
        F[u] = x[u] - G
        Fz[u] = -coef[u] * Hz[u]
        rel = abs(F[u]) / scale if scale > 0 else abs(F[u])
        if rel > res:
            res = rel
    if not ok:
        res = np.inf
    # dG/dx = coef * dE/dbeta dbeta/dx (+ dT/dx), dE/dbeta = -H
    HB = H @ dbeta
    J = np.zeros((K, K), dtype=np.complex128)
    for u in range(K):
        for v in range(K):
            dG = -coef[u] * HB[u, v]
            if u < C:
                dG += dT[u, v]
            J[u, v] = (1.0 if u == v else 0.0) - dG
    return F, res, J, Fz, g, worst


@njit(cache=True)
def _newton(x, z, maxit, tol, args):
    """Damped Newton (relative step <= 1/2 per unknown).  Returns x, residual, iterations, g,
    worst, tangent dx/d log(eta) at the returned point (zeros if the Jacobian is singular)."""
    psi_p, psi_n, delta_t, rho, e2var, qa, qb, w, s2, phi, cells, ds2, dphi, h = args
    K = x.shape[0]
    x = x.copy()
    res = np.inf
    g = 0j
    worst = 0.0
    tangent = np.zeros(K, dtype=np.complex128)
    for it in range(maxit + 1):
        F, res, J, Fz, g, worst = _system(x, z, psi_p, psi_n, delta_t, rho, e2var, qa, qb, w, s2,
                                          phi, cells, ds2, dphi, h)
        if res <= tol or it == maxit or not np.isfinite(res):
            if np.isfinite(res):
                rhs = -Fz * complex(0.0, z.imag)
                t, good = _solve_linear(J, rhs)
                if good:
                    tangent = t
            return x, res, it, g, worst, tangent
        step, good = _solve_linear(J, F)
        if not good:
            return x, np.inf, it, g, worst, tangent
        xmax = 0.0
        for u in range(K):
            xmax = max(xmax, abs(x[u]))
        scale = 1.0
        for u in range(K):
            lim = 0.5 * (abs(x[u]) + 1e-6 * xmax)
            if abs(step[u]) > lim:
                scale = min(scale, lim / abs(step[u]))
        for u in range(K):
            x[u] -= scale * step[u]
    return x, res, maxit, g, worst, tangent


@njit(cache=True, error_model="numpy")
def _predict(new, log_eta, x, t, prev_log, px, pt, have_prev, by_eta):
    """Predictor at log(eta) = new: cubic Hermite (Euler without a previous point) of log x in
    log eta, or of x in eta (module docstring)."""
    K = x.shape[0]
    out = np.empty(K, dtype=np.complex128)
    other = np.empty(K, dtype=np.complex128)
    eta, eta_new = math.exp(log_eta), math.exp(new)
    for u in range(K):
        if x[u] == 0:
            a = 0j
        elif have_prev and px[u] != 0:
            a = x[u] * cmath.exp(_hermite(new, log_eta, 0j, t[u] / x[u], prev_log,
                                          cmath.log(px[u] / x[u]), pt[u] / px[u]))
        else:
            a = x[u] * cmath.exp((t[u] / x[u]) * (new - log_eta))
        if have_prev:
            eta_prev = math.exp(prev_log)
            b = _hermite(eta_new, eta, x[u], t[u] / eta, eta_prev, px[u], pt[u] / eta_prev)
        else:
            b = x[u] + t[u] * (eta_new / eta - 1.0)
        if by_eta:
            out[u], other[u] = b, a
        else:
            out[u], other[u] = a, b
    return out, other


@njit(cache=True, error_model="numpy")
def _rel_diff(a, b):
    amax = 0.0
    for u in range(a.shape[0]):
        amax = max(amax, abs(a[u]))
    err = 0.0
    for u in range(a.shape[0]):
        err = max(err, abs(a[u] - b[u]) / (abs(a[u]) + 1e-6 * amax))
    return err


@njit(cache=True, error_model="numpy")
def _continue_to(lam, log_eta, log_f, x, t, h, h_max, tol, args):
    """Continue x (tangent t = dx/d log eta) from eta = exp(log_eta) down to exp(log_f); as
    _resolvent._continue_to, giving up after _MAX_STEPS steps.  Returns x, t, log_eta reached,
    residual, iterations, success."""
    have_prev = False
    by_eta = False
    prev_log, px, pt = log_eta, x.copy(), t.copy()
    total = 0
    res = np.inf
    h_min = 1e-6 * h_max
    steps = 0
    while log_eta > log_f:
        steps += 1
        if steps > _MAX_STEPS:
            return x, t, log_eta, np.inf, total, False
        new = max(log_eta - h, log_f)
        z = complex(lam, math.exp(new))
        q, o = _predict(new, log_eta, x, t, prev_log, px, pt, have_prev, by_eta)
        a, rr, it, g, worst, a_t = _newton(q, z, 8, tol, args)
        total += it
        err = _rel_diff(a, q)
        if rr <= tol and err <= _STEP_REFUSE and worst <= _IM_FLOOR and np.isfinite(err):
            other = _rel_diff(a, o)
            if other < err:
                by_eta = not by_eta
                err = other
            have_prev = True
            prev_log, px, pt = log_eta, x, t
            x, t, res, log_eta = a, a_t, rr, new
            h = min(h_max, h * min(2.0, max(0.5, (_STEP_TARGET / max(err, 1e-300)) ** 0.25)))
        else:
            h *= 0.5
            if h < h_min:
                return x, t, log_eta, np.inf, total, False
    return x, t, log_eta, res, total, True


@njit(cache=True)
def _solve_point(lam, eta_f, real_axis, n_steps, tol, args, eta_start, x_start, eta_mark):
    """One point: continuation to eta_f, then (``real_axis``) the eta = 0 solve.

    With eta_start > 0 the continuation starts from x_start at eta_start (a solution of another
    quadrature there: Newton first corrects it), else from the large-|z| start at
    eta0 = 10(|lambda| + 1).  With eta_f < eta_mark < eta0 the solution at eta_mark is recorded.
    Returns x, g, eta, residual, iterations, worst, x_mark, mark_ok.
    """
    psi_p, psi_n, delta_t, rho, e2var, qa, qb, w, s2, phi, cells, ds2, dphi, h = args
    C = rho.shape[0]
    K = C + qa.shape[0]
    x_mark = np.zeros(K, dtype=np.complex128)
    mark_ok = False
    total = 0
    started = False
    eta0 = max(10.0 * (abs(lam) + 1.0), 10.0 * eta_f)
    if eta_start > eta_f:
        x, res, total, g, worst, t = _newton(x_start, complex(lam, eta_start), 30, tol, args)
        if res <= tol and worst <= _IM_FLOOR:
            eta0 = eta_start
            started = True
    if not started:
        z0 = complex(lam, eta0)
        # Start: one evaluation of the map at x = 0 (exact to O(1/z^2) at large |z|).
        x = np.zeros(K, dtype=np.complex128)
        F, res, J, Fz, g, worst = _system(x, z0, psi_p, psi_n, delta_t, rho, e2var, qa, qb, w,
                                          s2, phi, cells, ds2, dphi, h)
        x, res, it, g, worst, t = _newton(-F, z0, 30, tol, args)
        total += it
    h0 = math.log(eta0 / eta_f) / n_steps
    log_eta = math.log(eta0)
    ok = True
    if eta_f < eta_mark < eta0:
        x, t, log_eta, res, it, ok = _continue_to(lam, log_eta, math.log(eta_mark), x, t, h0,
                                                  8.0 * h0, tol, args)
        total += it
        if ok:
            x_mark[:] = x
            mark_ok = True
    if ok:
        x, t, log_eta, res, it, ok = _continue_to(lam, log_eta, math.log(eta_f), x, t, h0,
                                                  8.0 * h0, tol, args)
        total += it
    if not ok or not real_axis:
        F, res2, J, Fz, g, worst = _system(x, complex(lam, math.exp(log_eta)), psi_p, psi_n,
                                           delta_t, rho, e2var, qa, qb, w, s2, phi, cells, ds2,
                                           dphi, h)
        return x, g, math.exp(log_eta), res if ok else np.inf, total, worst, x_mark, mark_ok
    # Real axis: a converged solution on the physical branch close to the continuation end point
    # (near an edge the end point differs from it by O(sqrt(eta)): continue two more decades).
    for attempt in range(4):
        eta = math.exp(log_eta)
        F, res_e, J, Fz, g_e, worst_e = _system(x, complex(lam, eta), psi_p, psi_n, delta_t, rho,
                                                e2var, qa, qb, w, s2, phi, cells, ds2, dphi, h)
        xr, rres, it, gr, worst_r, tr = _newton(x, complex(lam, 0.0), 50, tol, args)
        total += it
        if (rres <= tol and worst_r <= _IM_FLOOR and gr.imag >= -_IM_FLOOR * abs(gr)
                and abs(gr - g_e) <= 1e-2 * abs(g_e) and _rel_diff(x, xr) <= 1e-2):
            return xr, gr, 0.0, rres, total, worst_r, x_mark, mark_ok
        if attempt == 3:
            break
        a, a_t, new_log, rr, it, ok = _continue_to(lam, log_eta, log_eta - 2.0 * math.log(10.0),
                                                   x, t, h0, 8.0 * h0, tol, args)
        total += it
        if not ok:
            break
        x, t, log_eta, res = a, a_t, new_log, rr
    F, res2, J, Fz, g, worst = _system(x, complex(lam, math.exp(log_eta)), psi_p, psi_n, delta_t,
                                       rho, e2var, qa, qb, w, s2, phi, cells, ds2, dphi, h)
    return x, g, math.exp(log_eta), res, total, worst, x_mark, mark_ok


@njit(cache=True)
def _solve_range(lam, eta_f, real_axis, n_steps, tol, args, eta_start, x_start, eta_mark, order,
                 lo, hi, xs, gs, etas, res, its, worst, x_marks, mark_ok):
    for j in range(lo, hi):
        i = order[j]
        out = _solve_point(lam[i], eta_f[i], real_axis, n_steps, tol, args, eta_start[i],
                           x_start[i], eta_mark[i])
        xs[i, :] = out[0]
        gs[i] = out[1]
        etas[i] = out[2]
        res[i] = out[3]
        its[i] = out[4]
        worst[i] = out[5]
        x_marks[i, :] = out[6]
        mark_ok[i] = out[7]


@njit(cache=True, parallel=True)
def _solve_parallel(lam, eta_f, real_axis, n_steps, tol, args, eta_start, x_start, eta_mark,
                    order, n_chunks, xs, gs, etas, res, its, worst, x_marks, mark_ok):
    n = lam.shape[0]
    for c in prange(n_chunks):
        _solve_range(lam, eta_f, real_axis, n_steps, tol, args, eta_start, x_start, eta_mark,
                     order, c * n // n_chunks, (c + 1) * n // n_chunks, xs, gs, etas, res, its,
                     worst, x_marks, mark_ok)


_PARALLEL_MIN = 16


def _solve_many(lam, eta_f, real_axis, n_steps, tol, args, K, eta_start=None, x_start=None,
                eta_mark=None):
    n = lam.shape[0]
    if eta_start is None:
        eta_start = np.zeros(n)
        x_start = np.zeros((n, K), dtype=np.complex128)
    if eta_mark is None:
        eta_mark = np.zeros(n)
    xs = np.zeros((n, K), dtype=np.complex128)
    gs = np.zeros(n, dtype=np.complex128)
    etas = np.zeros(n)
    res = np.full(n, np.inf)
    its = np.zeros(n, dtype=np.int64)
    worst = np.zeros(n)
    x_marks = np.zeros((n, K), dtype=np.complex128)
    mark_ok = np.zeros(n, dtype=np.bool_)
    outs = (xs, gs, etas, res, its, worst, x_marks, mark_ok)
    ins = (lam, eta_f, real_axis, n_steps, tol, args, np.ascontiguousarray(eta_start, dtype=float),
           np.ascontiguousarray(x_start, dtype=np.complex128),
           np.ascontiguousarray(eta_mark, dtype=float))
    threads = numba.get_num_threads()
    if n < _PARALLEL_MIN or threads == 1:
        _solve_range(*ins, np.arange(n), 0, n, *outs)
    else:
        order = np.concatenate([np.arange(j, n, threads) for j in range(threads)])
        _solve_parallel(*ins, order, threads, *outs)
    return outs


# ---------------------------------------------------------------------- public solver


@dataclass(frozen=True)
class CentroidResolventResult:
    """g(z) of the centroid fixed point on the real axis (eta = 0) or at the continuation end.

    Attributes
    ----------
    lam : ndarray, shape (n,)
    g : ndarray of complex, shape (n,)
        g(lambda + i eta) = E_i[r_i].
    x : ndarray of complex, shape (n, K)
        The unknowns (delta_1..delta_C, Lambda_ab for a <= b, row-major upper triangle).
    eta : ndarray, shape (n,)
        Im z of the returned solution (0 where the real-axis solve was accepted).
    residual : ndarray, shape (n,)
        max_k |x_k - G_k(x)| / (|x_k| + sum of the absolute values of the terms of G_k).
    converged : ndarray of bool, shape (n,)
        Residual <= tol and on the physical branch (Im r_i >= -1e-10 |r_i| at every node).
    n_iter : ndarray of int, shape (n,)
        Newton iterations spent on the point (all continuation steps and quadratures).
    method : ndarray of str, shape (n,)
        The type quadrature of the returned value: "point", "gauss-hermite" or "cells".
    message : str
    """

    lam: np.ndarray
    g: np.ndarray
    x: np.ndarray
    eta: np.ndarray
    residual: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    method: np.ndarray
    message: str

    @property
    def density(self) -> np.ndarray:
        """rho(lambda) = Im g / pi, shape (n,) (the bulk density; the outliers are not in it)."""
        return np.maximum(self.g.imag, 0.0) / math.pi


def _solve_quadrature(params, quad, lam, eta_f, real_axis, n_steps, tol, eta_start=None,
                      x_start=None, eta_mark=None):
    """All points with one quadrature; failures retried from eta0 with 5 n_steps.  Returns
    x, g, eta, residual, iterations, ok, x_mark, mark_ok."""
    args = params._kernel_args(quad)
    K = params.n_unknowns
    xs, gs, etas, res, its, worst, x_marks, mark_ok = _solve_many(
        lam, eta_f, real_axis, n_steps, tol, args, K, eta_start, x_start, eta_mark)
    ok = (res <= tol) & (worst <= _IM_FLOOR) & np.isfinite(gs)
    if not ok.all():
        idx = np.flatnonzero(~ok)
        b = _solve_many(lam[idx], eta_f[idx], real_axis, 5 * n_steps, tol, args, K, None, None,
                        None if eta_mark is None else eta_mark[idx])
        xs[idx], gs[idx], etas[idx], res[idx], worst[idx] = b[0], b[1], b[2], b[3], b[5]
        its[idx] += b[4]
        x_marks[idx], mark_ok[idx] = b[6], b[7]
        ok = (res <= tol) & (worst <= _IM_FLOOR) & np.isfinite(gs)
    return xs, gs, etas, res, its, ok, x_marks, mark_ok


def _solve(params, lam, eta_f, real_axis, quadrature, n_steps, tol, switch_tol, strict):
    if params.rank == 0:
        quadrature = "point"
    n = lam.shape[0]
    method = np.empty(n, dtype=object)
    if quadrature in ("point", "gauss-hermite", "cells"):
        quad = params.quadrature("cells" if quadrature == "cells" else "gauss-hermite")
        xs, gs, etas, res, its, ok, _, _ = _solve_quadrature(params, quad, lam, eta_f,
                                                             real_axis, n_steps, tol)
        method[:] = quad.kind
    elif quadrature == "auto":
        lo_order, hi_order = sorted(params.gh_orders)
        q1 = params.quadrature("gauss-hermite", lo_order)
        q2 = params.quadrature("gauss-hermite", hi_order)
        x1, g1, e1, r1, i1, ok1, _, _ = _solve_quadrature(params, q1, lam, eta_f, real_axis,
                                                          n_steps, tol)
        # The higher order records its solution at eta = _CELL_START |lambda|, where the cell
        # model's continuation starts (centroid-spectrum.md §3: from the Gauss-Hermite solution
        # at eta = 0.02 lambda).
        mark = _CELL_START * np.abs(lam)
        xs, gs, etas, res, its, ok, x_mark, mark_ok = _solve_quadrature(
            params, q2, lam, eta_f, real_axis, n_steps, tol, eta_mark=mark)
        its = its + i1
        method[:] = "gauss-hermite"
        # Where the two orders agree the discrete type set resolves the integral; elsewhere
        # (a nearly resonant r_i: the smeared s2 band) the cell model (centroid-spectrum.md §3).
        agree = (ok & ok1 & (np.abs(g1 - gs) <= switch_tol * np.abs(gs))
                 & (np.abs(g1.imag - gs.imag) <= switch_tol * np.maximum(gs.imag, 0.0)
                    + 1e-10 * np.abs(gs)))
        # Where they disagree but (at the higher order's solution) no cell of the type law is
        # nearly resonant, the discrete set is not the problem (typically: next to a bulk edge,
        # one order's real-axis solve accepted and the other's not): keep Gauss-Hermite.
        qc = params.quadrature("cells")
        cargs = params._kernel_args(qc)
        for i in np.flatnonzero(ok & ~agree):
            weight = _resonant_weight(xs[i], complex(lam[i], etas[i]), params.psi_n,
                                      params.delta_t, cargs[3], cargs[4], cargs[5], cargs[6],
                                      qc.weight, qc.s2, qc.phi, qc.ds2, qc.dphi, qc.h)
            agree[i] = weight <= _RESONANT_WEIGHT
        idx = np.flatnonzero(~agree)
        if idx.size:
            start = np.where(mark_ok[idx], mark[idx], 0.0)
            b = _solve_quadrature(params, qc, lam[idx], eta_f[idx], real_axis, n_steps, tol,
                                  eta_start=start, x_start=x_mark[idx])
            xs[idx], gs[idx], etas[idx], res[idx], ok[idx] = b[0], b[1], b[2], b[3], b[5]
            its[idx] += b[4]
            method[idx] = "cells"
    else:
        raise ValueError(f"quadrature = {quadrature!r}: must be 'auto', 'gauss-hermite' or "
                         "'cells'")
    bad = ~ok
    message = "converged" if not bad.any() else (
        f"{int(bad.sum())} of {n} points did not converge (first at lambda = {lam[bad][0]!r}: "
        f"residual {res[bad][0]:.3g}, g = {gs[bad][0]:.6g})")
    if bad.any() and strict:
        raise ArithmeticError(message)
    return CentroidResolventResult(lam, gs, xs, etas, res, ok, its, method, message)


def _check_solver_options(n_steps, tol, switch_tol):
    if not (isinstance(n_steps, (int, np.integer)) and n_steps >= 1):
        raise ValueError(f"n_steps = {n_steps!r}: must be an integer >= 1")
    if not (0 < tol < 1e-6):
        raise ValueError(f"tol = {tol!r}: must be in (0, 1e-6)")
    if not (0 < switch_tol < 1):
        raise ValueError(f"switch_tol = {switch_tol!r}: must be in (0, 1)")


def solve_centroid_resolvent(params: CentroidSpectralParams, lam, *, quadrature: str = "auto",
                             n_steps: int = 120, eta_rel: float = 1e-7, tol: float = 1e-12,
                             switch_tol: float = 2e-3,
                             strict: bool = False) -> CentroidResolventResult:
    """Solve the centroid fixed point at real points lambda (z = lambda + i0), centroid-spectrum.md §1.

    Parameters
    ----------
    params : CentroidSpectralParams
    lam : array_like, shape (n,)
        Real points; g(lambda + i0) where the real-axis solve is accepted, else g(lambda + i eta_f)
        with eta_f = eta_rel |lambda| + 1e-14 (reported in ``eta``).
    quadrature : {"auto", "gauss-hermite", "cells"}
        Type integral (module docstring); ignored for a centered model (one type).
    n_steps : int
        Continuation: first step log(eta0/eta_f)/n_steps, adaptive up to 8x (failures retried
        with 5 n_steps).
    eta_rel : float
        Relative end point of the continuation, in (0, 1).
    tol : float
        Relative residual tolerance (see ``CentroidResolventResult.residual``).
    switch_tol : float
        "auto": relative difference of g (and of its imaginary part) between the two
        Gauss-Hermite orders above which the cell model is used.
    strict : bool
        Raise ``ArithmeticError`` if any point did not converge.

    Returns
    -------
    CentroidResolventResult

    Examples
    --------
    >>> from diffmix.theory import Model
    >>> m = Model("tanh", 0.1, 4.0, 2.0, [1.0], [0.5], [1.0])
    >>> p = CentroidSpectralParams.from_model(m, gh_orders=(8, 10))
    >>> r = solve_centroid_resolvent(p, [1.0, 3.0], quadrature="gauss-hermite")
    >>> bool(r.converged.all()), bool(r.density[0] > 0.01), bool(r.density[1] < 1e-12)
    (True, True, True)
    """
    _check_solver_options(n_steps, tol, switch_tol)
    if not 0 < eta_rel < 1:
        raise ValueError(f"eta_rel = {eta_rel!r}: must be in (0, 1)")
    lam = np.ascontiguousarray(np.asarray(lam, dtype=float).ravel())
    if not np.all(np.isfinite(lam)):
        raise ValueError("lam: every point must be finite")
    return _solve(params, lam, eta_rel * np.abs(lam) + 1e-14, True, quadrature, int(n_steps), tol,
                  switch_tol, strict)


def centroid_stieltjes(params: CentroidSpectralParams, z, *, quadrature: str = "gauss-hermite",
                       n_steps: int = 120, tol: float = 1e-12,
                       strict: bool = False) -> CentroidResolventResult:
    """g(z) at points of the upper half plane (Im z > 0), by the same continuation.

    Off the real axis the integrand is smooth, so Gauss-Hermite is the default quadrature.

    Examples
    --------
    >>> from diffmix.theory import Model
    >>> p = CentroidSpectralParams.from_model(Model("tanh", 0.1, 4.0, 2.0, [1.0], [0.5], [1.0]))
    >>> bool(centroid_stieltjes(p, [1 + 0.1j]).g[0].imag > 0)
    True
    """
    _check_solver_options(n_steps, tol, 2e-3)
    z = np.asarray(z, dtype=complex).ravel()
    if not np.all(np.isfinite(z)) or np.any(z.imag <= 0):
        raise ValueError("z: every point must be finite with Im z > 0")
    return _solve(params, np.ascontiguousarray(z.real), np.ascontiguousarray(z.imag), False,
                  quadrature, int(n_steps), tol, 2e-3, strict)


# ---------------------------------------------------------------------- support and masses


@dataclass(frozen=True)
class CentroidSpectrum:
    """The bulk density of U_gep with centroids, its support components, masses and timescales.

    In each support component [lo, hi] the density is tabulated on the log-Chebyshev grid
    lambda(theta) = lo (hi/lo)^{(1 - cos theta)/2}, theta uniform on [0, pi]: log-spaced in the
    middle (components span decades), clustered at the edges so that the mass integral
    int rho lambda ln(hi/lo) sin(theta)/2 dtheta stays accurate at square-root edges, steps and
    inverse-square-root (van Hove) edges of the smeared s2 band.

    Attributes
    ----------
    params : CentroidSpectralParams
    lam, density : ndarray, shape (n,)
        All components' grids, ascending (edges included), and rho(lambda).
    method : ndarray of str, shape (n,)
        Type quadrature used per point.
    point_converged : ndarray of bool, shape (n,)
    components : tuple of (lower, upper, mass)
        Connected pieces of the support {lambda rho(lambda) > threshold}, ascending; edges
        refined by bisection (see :func:`centroid_spectrum`).
    theta : ndarray, shape (n_per_component,)
    cumulative : ndarray, shape (n_components, n_per_component)
        Mass of component k below lambda_k(theta_j).
    total_mass : float
        Sum of the component masses (1 up to quadrature error and the mass outside the support
        below the threshold; the O(C)/p outliers are not in the density).
    threshold : float
        The support threshold on lambda rho(lambda) (absolute).
    scan_lam, scan_density : ndarray, shape (n_grid,)
        The log-spaced scan that located the components.
    timescales : dict
        tau_gen, tau_mem, tau_final, W_gen, W_mem (units of 1/lambda, spectrum.md §5) where the
        bulk picture identifies them (see :func:`centroid_spectrum`), None otherwise, and
        "timescale_note" saying why.
    converged : bool
    message : str
    """

    params: CentroidSpectralParams
    lam: np.ndarray
    density: np.ndarray
    method: np.ndarray
    point_converged: np.ndarray
    components: tuple
    theta: np.ndarray
    cumulative: np.ndarray
    total_mass: float
    threshold: float
    scan_lam: np.ndarray
    scan_density: np.ndarray
    timescales: dict
    converged: bool
    message: str

    @property
    def edges(self) -> list:
        """[[lower, upper], ...] of the support components."""
        return [[lo, hi] for lo, hi, _ in self.components]

    def cdf(self, x) -> np.ndarray:
        """P(lambda <= x) for the bulk law (the density normalised by ``total_mass``; no atoms),
        interpolated linearly in theta inside each component.  Any shape."""
        x = np.asarray(x, dtype=float)
        out = np.zeros(x.shape)
        for (lo, hi, mass), cum in zip(self.components, self.cumulative):
            u = np.log(np.clip(x, lo, hi) / lo) / math.log(hi / lo)
            theta = np.arccos(np.clip(1.0 - 2.0 * u, -1.0, 1.0))
            out += np.where(x >= hi, mass, np.where(x > lo, np.interp(theta, self.theta, cum), 0.0))
        return out / self.total_mass

    __call__ = cdf

    def left(self, x) -> np.ndarray:
        """P(lambda < x): the same (no atoms)."""
        return self.cdf(x)


def _bisect_edge(params, lam_in, lam_out, thr, rtol, **solve):
    """Boundary of {lambda rho > thr} between an inside and an outside point (geometric bisection)."""
    while abs(math.log(lam_out / lam_in)) > rtol:
        mid = math.sqrt(lam_in * lam_out)
        r = solve_centroid_resolvent(params, [mid], **solve)
        if r.converged[0] and mid * r.density[0] > thr:
            lam_in = mid
        else:
            lam_out = mid
    return math.sqrt(lam_in * lam_out)


def centroid_spectrum(params: CentroidSpectralParams, *, lam_range: tuple | None = None,
                      n_grid: int = 400, n_per_component: int = 400, threshold: float = 1e-4,
                      edge_rtol: float = 1e-7, cell_edge_rtol: float = 1e-4,
                      min_mass: float = 1e-3, quadrature: str = "auto",
                      n_steps: int = 120, strict: bool = False) -> CentroidSpectrum:
    """Bulk density, support components with refined edges, masses, timescales.

    A log-spaced scan of ``n_grid`` points over ``lam_range`` (default: from half the 1e-6
    quantile of s2_i under the type law to :meth:`CentroidSpectralParams.upper_bound`) locates
    the support {lambda : lambda rho(lambda) > threshold * max lambda rho} (the density per unit
    log lambda, as spectrum.md §5's scan); each boundary between scan points is refined by
    geometric bisection to a relative bracket ``edge_rtol`` (Gauss-Hermite on both sides), or
    ``cell_edge_rtol`` next to a cell-model point (the smeared band, where the edge is the
    threshold's and the cell model converges slowly at a fold); pieces of mass below ``min_mass``
    are joined to the nearer neighbour (with the gap between them: in the tail of the smeared
    s2 band the thresholded density fragments).  Each component is then tabulated on
    ``n_per_component`` log-Chebyshev points (see :class:`CentroidSpectrum`) and integrated.

    Edge precision: a square-root edge rho ~ c sqrt(lambda - edge) is displaced inward by
    (thr / (lambda c))^2 by the threshold (~1e-8 relative for the top edge of case A), and the
    smeared s2 band has no hard edge at small t (its lower end is the threshold's), so edges are
    not folds (centroid-spectrum.md §6: the edge equations are C + C(C+1)/2 + 1 dimensional).

    Timescales (units of 1/lambda): when there are at least two components and the top one has
    mass 1/psi_p within 5% (it is then the generalization bulk of the top d eigenvalues,
    spectrum.md §5), tau_gen = 1/(its lower edge) and tau_mem = 1/(upper edge of the component
    below it; the note says when that component also has mass 1/psi_p); tau_final = 1/(lower
    edge of the lowest component) only when that edge lies above
    the largest s2_i of the types (a hard edge, not the smeared band).  Otherwise None, with the
    reason in ``timescales["timescale_note"]``.

    Raises
    ------
    ValueError
        For a centered model (k = 0; use :func:`diffmix.solvers.spectrum`, which has the atom) or
        bad options.
    ArithmeticError
        If the density does not vanish at the top of the scan, or (``strict``) a point did not
        converge.

    Examples
    --------
    >>> from diffmix.theory import Model
    >>> m = Model("tanh", 0.1, 4.0, 2.0, [1.0], [0.5], [1.0])
    >>> s = centroid_spectrum(CentroidSpectralParams.from_model(m), n_grid=60, n_per_component=40)
    >>> s.converged, len(s.components), round(s.components[1][2], 2)
    (True, 2, 0.25)
    """
    if params.rank == 0:
        raise ValueError("centroid_norm2: all centroids are zero; the centered spectrum (with its "
                         "atom at s2) is diffmix.solvers.spectrum")
    if n_grid < 20:
        raise ValueError(f"n_grid = {n_grid!r}: must be >= 20")
    if n_per_component < 8:
        raise ValueError(f"n_per_component = {n_per_component!r}: must be >= 8")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold = {threshold!r}: must be in (0, 1)")
    s2_min, s2_max = params.s2_range()
    if lam_range is None:
        top = params.upper_bound()
        lam_range = (max(0.5 * s2_min, 1e-12 * top), top)
    lo, hi = (float(v) for v in lam_range)
    if not (0 < lo < hi and np.isfinite(hi)):
        raise ValueError(f"lam_range = {lam_range!r}: must be 0 < lower < upper")
    solve = dict(quadrature=quadrature, n_steps=n_steps)
    lam = np.geomspace(lo, hi, n_grid)
    res = solve_centroid_resolvent(params, lam, **solve)
    dens = np.where(res.converged, res.density, 0.0)
    f = lam * dens
    thr = threshold * float(f.max())
    inside = res.converged & (f > thr)
    messages = [] if res.converged.all() else [f"scan: {res.message}"]
    if inside[-1]:
        raise ArithmeticError(f"the density does not vanish at the top of the grid ({hi:.6g})")
    starts = list(np.flatnonzero(~inside[:-1] & inside[1:]) + 1)
    ends = list(np.flatnonzero(inside[:-1] & ~inside[1:]))
    if inside[0]:
        starts = [0] + starts
        messages.append(f"the density is above the threshold at the bottom of the grid ({lo:.4g})")

    def bisect(i_in, i_out):
        # Between two Gauss-Hermite points ("auto" kept Gauss-Hermite at both) the edge is
        # bisected with Gauss-Hermite alone, to edge_rtol; next to a cell-model point (the
        # smeared band, where the threshold defines the edge) to cell_edge_rtol.
        q, rtol = quadrature, max(edge_rtol, cell_edge_rtol)
        if res.method[i_in] == res.method[i_out] == "gauss-hermite":
            q, rtol = ("gauss-hermite" if q == "auto" else q), edge_rtol
        return _bisect_edge(params, lam[i_in], lam[i_out], thr, rtol, quadrature=q,
                            n_steps=n_steps)

    # Scan masses (trapezoid in log lambda) decide which small pieces are joined.
    scan_cum = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(np.log(lam)))])
    pieces = [[s_i, e_i, scan_cum[min(e_i + 1, lam.size - 1)] - scan_cum[max(s_i - 1, 0)]]
              for s_i, e_i in zip(starts, ends)]
    while len(pieces) > 1:
        j = int(np.argmin([p[2] for p in pieces]))
        if pieces[j][2] >= min_mass:
            break
        gaps = [lam[pieces[j][0]] / lam[pieces[j - 1][1]] if j > 0 else np.inf,
                lam[pieces[j + 1][0]] / lam[pieces[j][1]] if j + 1 < len(pieces) else np.inf]
        o = j - 1 if gaps[0] <= gaps[1] else j + 1
        a, b = sorted((j, o))
        pieces[a:b + 1] = [[pieces[a][0], pieces[b][1], pieces[a][2] + pieces[b][2]]]
    theta = np.linspace(0.0, math.pi, n_per_component)
    components, cums, lams, denss, meths, convs = [], [], [], [], [], []
    for s_i, e_i, _ in pieces:
        lower = lam[0] if s_i == 0 else bisect(s_i, s_i - 1)
        upper = bisect(e_i, e_i + 1)
        span = math.log(upper / lower)
        grid = lower * np.exp(span * 0.5 * (1.0 - np.cos(theta)))
        grid[0], grid[-1] = lower, upper
        r = solve_centroid_resolvent(params, grid, **solve)
        d = np.where(r.converged, r.density, 0.0)
        integrand = d * grid * span * 0.5 * np.sin(theta)
        integrand[[0, -1]] = 0.0
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (integrand[1:] + integrand[:-1])
                                               * np.diff(theta))])
        components.append((float(lower), float(upper), float(cum[-1])))
        cums.append(cum)
        lams.append(grid)
        denss.append(d)
        meths.append(r.method)
        convs.append(r.converged)
        if not r.converged.all():
            messages.append(f"component [{lower:.4g}, {upper:.4g}]: {r.message}")
    if not components:
        raise ArithmeticError("no support found on the scan (the density is below the threshold "
                              "everywhere)")
    total = float(sum(c[2] for c in components))
    ts = _timescales(params, components, s2_max)
    conv = np.concatenate(convs)
    converged = bool(conv.all()) and not inside[0]
    message = "converged" if converged else "; ".join(messages)
    if strict and not converged:
        raise ArithmeticError(message)
    return CentroidSpectrum(params, np.concatenate(lams), np.concatenate(denss),
                            np.concatenate(meths), conv, tuple(components), theta,
                            np.array(cums), total, thr, lam, dens, ts, converged, message)


def _timescales(params, components, s2_max) -> dict:
    out = {"tau_gen": None, "tau_mem": None, "tau_final": None, "W_gen": None, "W_mem": None,
           "time_unit": "1/lambda"}
    notes = []
    def holds_d(mass):        # d eigenvalues: mass 1/psi_p within 5%
        return abs(mass * params.psi_p - 1.0) <= 0.05

    if len(components) >= 2 and holds_d(components[-1][2]):
        out["tau_gen"] = 1.0 / components[-1][0]
        if params.psi_n > 1:
            out["tau_mem"] = 1.0 / components[-2][1]
            out["W_gen"] = out["tau_mem"] - out["tau_gen"]
            if len(components) >= 3 and holds_d(components[-2][2]):
                notes.append(
                    f"the component below the top one, [{components[-2][0]:.4g}, "
                    f"{components[-2][1]:.4g}], also holds d eigenvalues (mass 1/psi_p; no such "
                    "bulk above the memorization part in the centered picture): tau_mem is its "
                    "upper edge by spectrum.md's rule (the bulk just left of the rightmost); the "
                    f"next component below ends at {components[-3][1]:.4g}")
    else:
        notes.append("no gap below a top component of mass 1/psi_p: tau_gen and tau_mem not "
                     "identified")
    if components and components[0][0] > s2_max:
        out["tau_final"] = 1.0 / components[0][0]
        if out["tau_mem"] is not None:
            out["W_mem"] = out["tau_final"] - out["tau_mem"]
    else:
        notes.append("the lowest component starts inside the range of s2_i (the smeared s2 "
                     "band, no hard lower edge): tau_final not identified")
    out["timescale_note"] = "; ".join(notes) if notes else "all identified"
    return out
