"""Exact asymptotic class learning curves of a centered mixture, from contour integrals (no sampling).

``shared/theory/test-error.md`` §2-5.  With f_tau(z) = (1 - exp(-2 z tau/p)) / z (entire) the
gradient-flow readout of ``dynamics.md`` (6') gives, for class c of a centered mixture with an odd
activation (GEP matrices, ``gep.md`` §2-4),

    E_test^c(tau) = 1 - 2 psi_p b_c bbar I1 + psi_p bbar^2 (A_c I3 + B_c I2),
    E_train(tau)  = 1 - psi_p bbar^2 (2 I1 - Itr)                                   (dynamics.md §10b),
    I1  = -(1/2 pi i) oint f m1 dz,     I2 = -(1/2 pi i) oint f^2 m1 dz,     Itr = -(1/2 pi i) oint z f^2 m1 dz,
    I3  = (1/2 pi i)^2 oint oint f(z1) f(z2) S(z1, z2) dz1 dz2,

A_c = alpha_c + b_c^2, B_c = v_c^2 + s_c^2 (the population GEP of class c), m1 the second unknown of
the spectral equations (``spectrum.md`` §2) and S the two-resolvent kernel of test-error.md §3
(emitted by :mod:`diffmix.derivations._two_resolvent`).  The contour is the log-ellipse
z(theta) = exp(c + r cos(theta) + i h sin(theta)) crossing the real axis at x0 (below the spectrum:
s2/2, since U_gep >= s2 I) and xR (above it), so Re z > 0 and |exp(-2 z tau/p)| <= 1.  The
trapezoid rule in theta with N nodes (midpoints; conjugate symmetry halves the work) converges
exponentially; every integral is also evaluated with the nested N/3-node rule (every third node),
and a time whose two values differ by more than ``tol`` is flagged (``converged``), ``strict=True``
raises.  S is computed once on the N/2 x N/2 pairs of upper-half nodes (and their conjugates);
each time then costs one real quadratic form of size N (conjugate symmetry).  Pairs where the closed form of the K-traces cancels
(factor ``kappa`` above ``kappa_max``; always on the diagonal) use the Marchenko-Pastur quadrature
instead, itself checked against half its nodes; the exact identity of test-error.md §5 (i)
(A = I) is evaluated on the whole grid and reported.

Time unit: tau/p (:data:`ANALYTIC_TIME_UNIT`), tau the flow time of ``dynamics.md`` §2 (the curves
depend on tau and p only through tau/p; an eigenvalue lambda relaxes at tau/p = 1/(2 lambda), i.e.
half the 1/lambda units of ``spectrum.md``).  Multiply by p for the flow time of a finite model.

Where it stops: centered classes (no extensive centroids) and odd activations (mu0 = 0) only; other
models raise ``ValueError`` (use the finite-size gradient flow of :mod:`diffmix.validation`).
The formula is that of the GEP matrices (``gep.md`` §2-4), not of the true tanh features, and the
two-resolvent equivalent is derived by the (non-rigorous) leave-one-out argument, verified
numerically (test-error.md §6-7).

The kernels are the emitted module ``two_resolvent_f64`` (SymPy, :mod:`diffmix.derivations._two_resolvent`).
Numba's cache of the kernels below does not track that module: after re-emitting it, delete this
package's ``__pycache__/_test_error.*.nbi`` and ``*.nbc`` files.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from diffmix.derivations._kernels import load_two_resolvent
from diffmix.theory import LearningCurves, Model, class_times, mixture_gep

from ._resolvent import SpectralParams, stieltjes
from ._spectrum import _upper_bound, find_edges

__all__ = ["ANALYTIC_TIME_UNIT", "ANALYTIC_TIME_UNIT_TEXT", "AnalyticCurves", "AnalyticFlow", "AnalyticTimes",
           "Contour", "analytic_class_times", "analytic_curves", "analytic_flow", "check_analytic_model",
           "default_contour", "k_weighted_mean", "two_resolvent_kernel"]

#: The time unit of every analytic curve and class time.
ANALYTIC_TIME_UNIT = "tau/p"
#: Longer statement of the unit, for headers and axis labels.
ANALYTIC_TIME_UNIT_TEXT = ("tau/p: flow time tau = k eta_e (dynamics.md §2) divided by p; an eigenvalue "
                           "lambda of U relaxes at tau/p = 1/(2 lambda)")

_k = load_two_resolvent("f64")
_pq, _dm_dz = _k.pq, _k.dm_dz
_traces_closed, _traces_quadrature = _k.traces_closed, _k.traces_quadrature
_kernel, _identity = _k.kernel, _k.identity
_MU0_TOL = 1e-12


def check_analytic_model(model: Model) -> None:
    """Raise ``ValueError`` unless the analytic formula applies: centered classes, odd activation."""
    if not model.is_centered:
        raise ValueError(f"centroid_norm2 = {list(model.centroid_norm2)}: the analytic method applies to "
                         "centered mixtures (centroid_norm2 = 0) with odd activations (test-error.md §7); "
                         "extensive centroids are not covered: use the finite-size gradient flow "
                         "(--method finite)")
    mu0 = mixture_gep(model).mu0
    if np.any(np.abs(mu0) > _MU0_TOL):
        raise ValueError(f"activation = {model.activation!r}: not odd (mu0 = {np.array2string(mu0, precision=3)}); "
                         "the analytic method applies to centered mixtures with odd activations "
                         "(test-error.md §7): use the finite-size gradient flow (--method finite)")


# ---------------------------------------------------------------------- kernel on the contour


@njit(cache=True, parallel=True)
def _kernel_block(za, m0a, m1a, Pa, Qa, dm1a, zb, m0b, m1b, Pb, Qb, same, kappa_max, nq, psi_p, r,
                  rho, alpha, v2, S, ident, quad_gap, quad_used):
    """S[i, j] = S(za[i], zb[j]); ``same``: zb is za (its diagonal uses D12 = m1'(z)).

    ident[i, j]: relative residual of the A = I identity; quad_gap[i, j]: relative difference of
    the Marchenko-Pastur quadrature at nq and nq // 2 nodes where it was used (quad_used)."""
    Ma = za.shape[0]
    Mb = zb.shape[0]
    for i in prange(Ma):
        for j in range(Mb):
            diag = same and i == j
            k0 = 0j
            k1 = 0j
            k2 = 0j
            kap = np.inf
            if not diag:
                k0, k1, k2, kap = _traces_closed(m0a[i], m1a[i], Pa[i], Qa[i], m0b[j], m1b[j], Pb[j],
                                                 Qb[j])
            if diag or not kap <= kappa_max:
                k0, k1, k2 = _traces_quadrature(Pa[i], Qa[i], Pb[j], Qb[j], psi_p, nq)
                h0, h1, h2 = _traces_quadrature(Pa[i], Qa[i], Pb[j], Qb[j], psi_p, nq // 2)
                quad_gap[i, j] = max(abs(k0 - h0) / abs(k0), max(abs(k1 - h1) / abs(k1),
                                                                 abs(k2 - h2) / abs(k2)))
                quad_used[i, j] = True
            if diag:
                D = dm1a[i]
            else:
                D = (m1a[i] - m1b[j]) / (za[i] - zb[j])
            s = _kernel(m0a[i], m1a[i], m0b[j], m1b[j], k1, k2, D, psi_p, r, rho, alpha, v2)
            S[i, j] = s
            pred = _identity(m0a[i], m1a[i], m0b[j], m1b[j], k0, k1, s, D, psi_p, r, rho, alpha, v2)
            ident[i, j] = abs(pred - D) / abs(D)


def _real_form(S_pp, S_pm):
    """The real symmetric 2M x 2M matrix G with x^T G x = Re[wf^T S_pp wf - wf^T S_pm conj(wf)],
    x = [Re wf, Im wf]: the double contour sum over all N nodes (upper half and conjugates) of
    wf_i S_ij wf_j, using S(conj z1, conj z2) = conj S(z1, z2), S_pp symmetric, S_pm Hermitian."""
    X, Y, U, V = S_pp.real, S_pp.imag, S_pm.real, S_pm.imag
    G = np.block([[X - U, -(Y + V)], [-(Y + V).T, -X - U]])
    return np.ascontiguousarray(0.5 * (G + G.T))


@njit(cache=True, parallel=True)
def _time_sums(s, z, dz, w):
    """For each time s_t = tau/p: X[t] = [Re(f dz), Im(f dz)] (T x 2M), f_j = f_s(z_j) =
    (1 - exp(-2 z_j s)) / z_j (1/z_j at s = inf; the complex expm1 without cancellation), and the
    one-resolvent sums J[r, k, t] = sum_j g_k(z_j) w_j over the nodes of rule r (0: all, 1: j = 3i + 1)
    with g = f, f^2, z f^2 (w = m1 dz)."""
    T, M = s.shape[0], z.shape[0]
    X = np.empty((T, 2 * M))
    J = np.zeros((2, 3, T), dtype=np.complex128)
    for t in prange(T):
        a0 = 0j
        a1 = 0j
        a2 = 0j
        b0 = 0j
        b1 = 0j
        b2 = 0j
        for j in range(M):
            if math.isinf(s[t]):
                f = 1.0 / z[j]
            else:
                u = -2.0 * s[t] * z[j].real
                v = -2.0 * s[t] * z[j].imag
                h = math.sin(0.5 * v)
                em1 = complex(math.expm1(u) * math.cos(v) - 2.0 * h * h, math.exp(u) * math.sin(v))
                f = -em1 / z[j]
            wf = f * dz[j]
            X[t, j] = wf.real
            X[t, M + j] = wf.imag
            c0 = f * w[j]
            c1 = f * c0
            c2 = z[j] * c1
            a0 += c0
            a1 += c1
            a2 += c2
            if j % 3 == 1:
                b0 += c0
                b1 += c1
                b2 += c2
        J[0, 0, t], J[0, 1, t], J[0, 2, t] = a0, a1, a2
        J[1, 0, t], J[1, 1, t], J[1, 2, t] = b0, b1, b2
    return X, J


@njit(cache=True)
def _node_data(z, m0, m1, psi_p, r, beta, s2, rho, alpha, v2):
    n = z.shape[0]
    P = np.empty(n, dtype=np.complex128)
    Q = np.empty(n, dtype=np.complex128)
    dm1 = np.empty(n, dtype=np.complex128)
    for i in range(n):
        P[i], Q[i] = _pq(m0[i], m1[i], z[i], psi_p, r, beta, s2, rho, alpha, v2)
        dm1[i] = _dm_dz(m0[i], m1[i], z[i], psi_p, r, beta, s2, rho, alpha, v2)[1]
    return P, Q, dm1


#: Relative residual asked of the spectral equations at the contour nodes: D12 and the closed-form
#: traces divide differences of m1 at neighbouring nodes (about 1% apart), so the 1e-12 default of
#: :func:`stieltjes` would leave the A = I identity at ~1e-9; at 1e-14 it is at round-off (~5e-13).
_NODE_TOL = 1e-14


def _solve_nodes(params: SpectralParams, z_up):
    """m0, m1 at upper-half-plane points (physical branch, spectrum.md §3); raises if any fails.

    Solved to a relative residual of ``_NODE_TOL``; nodes where that is not reached are solved
    again at the continuation's default 1e-12 (the largest residual is reported)."""
    res = stieltjes(params, z_up, tol=_NODE_TOL)
    if not res.converged.all():
        bad = ~res.converged
        again = stieltjes(params, z_up[bad])
        m0, m1, resid, conv, eta = (res.m0.copy(), res.m1.copy(), res.residual.copy(), res.converged.copy(),
                                    res.eta.copy())
        m0[bad], m1[bad], resid[bad], conv[bad], eta[bad] = (again.m0, again.m1, again.residual,
                                                            again.converged, again.eta)
        res = dataclasses.replace(res, m0=m0, m1=m1, residual=resid, converged=conv, eta=eta,
                                  message=again.message)
    if not res.converged.all():
        raise ArithmeticError(f"spectral equations not solved at {np.count_nonzero(~res.converged)} of "
                              f"{z_up.size} contour nodes: {res.message}")
    if np.any(np.abs(res.eta - z_up.imag) > 1e-12 * z_up.imag):
        raise ArithmeticError("spectral continuation did not reach every contour node")
    return res.m0, res.m1, float(res.residual.max())


def two_resolvent_kernel(model_or_params, z1, z2, *, quad_nodes: int = 600) -> np.ndarray:
    """S(z1, z2) ~ (1/p) tr K R(z1) K R(z2) at arbitrary points off the real axis (test-error.md §3).

    Parameters
    ----------
    model_or_params : Model or SpectralParams
    z1, z2 : array_like of complex, broadcastable, Im != 0
    quad_nodes : int
        Marchenko-Pastur quadrature nodes used where the closed form cancels (z1 close to z2).

    Returns
    -------
    ndarray of complex, the broadcast shape of z1, z2.

    Examples
    --------
    >>> m = Model("tanh", 0.01, 4.0, 2.0, [0.5, 0.5], [0.5, 0.25])
    >>> complex(two_resolvent_kernel(m, 1 + 0.5j, 2 - 0.3j)).real.__round__(4)   # test-error.md §6a: 2.74641
    2.7464
    """
    params = _as_params(model_or_params)
    z1, z2 = np.broadcast_arrays(np.asarray(z1, dtype=complex), np.asarray(z2, dtype=complex))
    shape = z1.shape
    z1, z2 = z1.ravel(), z2.ravel()
    if np.any(z1.imag == 0) or np.any(z2.imag == 0) or not np.all(np.isfinite(z1) & np.isfinite(z2)):
        raise ValueError("z1, z2: every point must be finite with Im z != 0")
    allz = np.concatenate([z1, z2])
    up = np.where(allz.imag > 0, allz, np.conj(allz))
    m0, m1, _ = _solve_nodes(params, up)
    flip = allz.imag < 0
    m0, m1 = np.where(flip, np.conj(m0), m0), np.where(flip, np.conj(m1), m1)
    args = params.args()
    P, Q, dm1 = _node_data(allz, m0, m1, *args)
    n = z1.size
    out = np.empty(n, dtype=complex)
    for i in range(n):
        a, b = i, n + i
        same = z1[i] == z2[i]
        S = np.empty((1, 1), dtype=complex)
        ident = np.empty((1, 1))
        gap = np.zeros((1, 1))
        used = np.zeros((1, 1), dtype=bool)
        _kernel_block(allz[a:a + 1], m0[a:a + 1], m1[a:a + 1], P[a:a + 1], Q[a:a + 1], dm1[a:a + 1],
                      allz[b:b + 1], m0[b:b + 1], m1[b:b + 1], P[b:b + 1], Q[b:b + 1], bool(same),
                      1e4, int(quad_nodes), params.psi_p, params.r, params.rho, params.alpha, params.v2,
                      S, ident, gap, used)
        out[i] = S[0, 0]
    return out.reshape(shape)


def _as_params(model_or_params) -> SpectralParams:
    if isinstance(model_or_params, SpectralParams):
        return model_or_params
    check_analytic_model(model_or_params)
    return SpectralParams.from_model(model_or_params)


# ---------------------------------------------------------------------- curves


@dataclass(frozen=True, eq=False)
class AnalyticCurves(LearningCurves):
    """Analytic learning curves (a :class:`diffmix.theory.LearningCurves` in tau/p) with flags.

    Attributes (beyond LearningCurves: ``tau`` holds tau/p, ``time_unit`` is "tau/p")
    ----------
    converged : (T,) bool
        The N-node and the nested N/3-node contour rules agree within ``tol`` (scaled by
        max(1, |E|)) on the train error and every class test error.
    error_estimate : (T,) float
        max over train and classes of |E(N nodes) - E(N/3 nodes)| / max(1, |E|).
    nodes : int
        N.
    """

    converged: np.ndarray | None = None
    error_estimate: np.ndarray | None = None
    nodes: int = 0

    @property
    def tau_over_p(self) -> np.ndarray:
        return self.tau


@dataclass(frozen=True)
class Contour:
    """The log-ellipse z(theta) = exp(c + r cos(theta) + i h sin(theta)), crossing the real axis at
    x0 (theta = pi) and xR (theta = 0); ``nodes`` midpoints theta_j = (2j + 1) pi / nodes."""

    x0: float
    xR: float
    h: float
    nodes: int

    def __post_init__(self):
        if not (0 < self.x0 < self.xR and math.isfinite(self.xR)):
            raise ValueError(f"contour: need 0 < x0 < xR (got x0 = {self.x0}, xR = {self.xR})")
        if not (0 < self.h < math.pi / 2):
            raise ValueError(f"contour: h = {self.h} must be in (0, pi/2) so that Re z > 0")
        if self.nodes < 12 or self.nodes % 6:
            raise ValueError(f"nodes = {self.nodes}: must be a multiple of 6, >= 12 (the N/3 rule is "
                             "nested in the N rule and both are split into conjugate halves)")

    def upper(self):
        """Upper-half nodes z_j and z'(theta_j), j = 0 .. nodes/2 - 1."""
        c = 0.5 * (math.log(self.x0) + math.log(self.xR))
        r = 0.5 * (math.log(self.xR) - math.log(self.x0))
        theta = (2 * np.arange(self.nodes // 2) + 1) * math.pi / self.nodes
        z = np.exp(c + r * np.cos(theta) + 1j * self.h * np.sin(theta))
        return z, z * (-r * np.sin(theta) + 1j * self.h * np.cos(theta))


def k_weighted_mean(params: SpectralParams) -> float:
    """(1/p) tr K U_gep in the limit: beta E[k^2] + s2 + sum_c rho_c (alpha_c E[k^2] + v2_c), with
    E[k] = 1, E[k^2] = 1 + psi_p over the Marchenko-Pastur law of K (the mean of the K-weighted
    spectral measure, whose mass is (1/p) tr K = 1)."""
    k2 = 1.0 + params.psi_p
    return float(params.beta * k2 + params.s2 + np.sum(params.rho * (params.alpha * k2 + params.v2)))


def default_contour(params: SpectralParams, nodes: int, *, h: float = 1.0, loose: bool = False) -> Contour:
    """The default contour: x0 = s2/2 (U_gep >= s2 I; if s2 = 0, half the lowest edge of
    :func:`find_edges`); xR = 20 max(1, 1/psi_n) times the mean of the K-weighted spectral measure
    (:func:`k_weighted_mean`; the top edge was 1.5-5.4 times that mean in every case tried), capped
    by the doubled norm bound of ``_spectrum._upper_bound``, which ``loose=True`` takes outright.
    :class:`AnalyticFlow` verifies the enclosure (mass and mean of the K-weighted measure on the
    contour) and falls back to the loose contour when it fails."""
    if params.s2 > 0:
        x0 = 0.5 * params.s2
    else:
        spec = find_edges(params)
        if not spec.converged:
            raise ArithmeticError(f"s2 = 0 and the spectrum's edges did not converge: {spec.message}")
        x0 = 0.5 * float(spec.bulks[0].lower.lam)
    bound = _upper_bound(params)
    xR = bound if loose else min(bound, 20.0 * max(1.0, 1.0 / params.psi_n) * k_weighted_mean(params))
    return Contour(x0, max(xR, 4.0 * x0), h, nodes)


class AnalyticFlow:
    """Exact asymptotic learning curves of a centered Model, in tau/p (module docstring).

    Build with :func:`analytic_flow`; :meth:`errors` at any times (a :class:`AnalyticCurves`);
    :func:`diffmix.theory.class_times` accepts it like a finite-size flow (its times are then in
    tau/p; :func:`analytic_class_times` wraps this and checks convergence).

    Attributes
    ----------
    model : Model
    contour : Contour
    identity_residual : float
        max over the N/2 x N node pairs of the relative residual of the A = I identity
        (test-error.md §5 (i); round-off level when S is right).
    quadrature_gap : float
        Largest relative change of the Marchenko-Pastur traces between quad_nodes and half of them,
        over the pairs that use the quadrature.
    quadrature_pairs : int
        How many pairs used it (the diagonal at least).
    spectral_residual : float
        Largest relative residual of the spectral equations at the nodes.
    moment_residual : float
        Relative error of the K-weighted mass (1) and mean (:func:`k_weighted_mean`) integrated on
        the contour: small only if the contour encloses the K-weighted spectrum.
    quad_nodes : int
        Marchenko-Pastur quadrature nodes finally used.
    nodes : int
        Contour nodes N.
    tol : float
    """

    def __init__(self, model: Model, contour: Contour, *, kappa_max: float = 1e4,
                 quad_nodes: int = 300, max_quad_nodes: int = 4800, tol: float = 1e-8,
                 quad_tol: float = 1e-11, mass_tol: float = 1e-8, identity_tol: float = 1e-6,
                 fallback: Contour | None = None):
        check_analytic_model(model)
        if not (tol > 0):
            raise ValueError(f"tol: must be > 0, got {tol}")
        if not (kappa_max >= 1):
            raise ValueError(f"kappa_max: must be >= 1, got {kappa_max}")
        if int(quad_nodes) < 16:
            raise ValueError(f"quad_nodes: must be >= 16, got {quad_nodes}")
        self.model = model
        self._contour = contour
        self._fallback = fallback
        self.tol = float(tol)
        self.params = params = SpectralParams.from_model(model)
        g = mixture_gep(model)
        self.n_classes = model.n_classes
        self._psi_p = model.psi_p
        self._b, self._bbar = g.b, g.bbar
        self._A = g.alpha + g.b**2
        self._B = g.v2 + g.s2_c
        self._weights = np.asarray(model.weights, dtype=float)
        self._floors = math.exp(-2.0 * model.t) * np.asarray(model.variances) / model.gamma2
        self._delta_t = model.delta_t

        z, dz, m0, m1, self.spectral_residual, self.moment_residual = self._nodes(params, contour, mass_tol)
        self.contour = contour = self._contour
        args = params.args()
        P, Q, dm1 = _node_data(z, m0, m1, *args)
        nq = int(quad_nodes)
        while True:
            blocks, ident_max, gap_max, n_quad = self._blocks(z, m0, m1, P, Q, dm1, float(kappa_max), nq)
            if gap_max <= quad_tol or 2 * nq > max_quad_nodes:
                break
            nq *= 2
        if not (gap_max <= quad_tol):
            raise ArithmeticError(f"Marchenko-Pastur quadrature of the K-traces not converged: relative change "
                                  f"{gap_max:.2e} between {nq} and {nq // 2} nodes (quad_tol = {quad_tol:g}, "
                                  f"max_quad_nodes = {max_quad_nodes})")
        self.quad_nodes = nq
        if not np.all(np.isfinite(blocks[0])) or not np.all(np.isfinite(blocks[1])):
            raise ArithmeticError("S(z1, z2) is not finite on the contour")
        if not (ident_max <= identity_tol):
            raise ArithmeticError(f"the A = I identity of test-error.md §5 fails on the contour (relative residual "
                                  f"{ident_max:.2e} > identity_tol = {identity_tol:g}): S(z1, z2) is not reliable here")
        self._S_pp, self._S_pm = blocks
        self._G = _real_form(*blocks)
        self.identity_residual = ident_max
        self.quadrature_gap = gap_max
        self.quadrature_pairs = n_quad
        self._z, self._dz, self._m1 = z, dz, m1
        self._w = m1 * dz
        self._sub = np.arange(1, z.size, 3)     # the nested N/3 rule (theta_j, j = 3k + 1)
        self._sub2 = np.concatenate([self._sub, z.size + self._sub])
        self._G_sub = np.ascontiguousarray(self._G[np.ix_(self._sub2, self._sub2)])
        self.nodes = contour.nodes

    def _nodes(self, params, contour, mass_tol):
        """Solve the spectral equations on the contour and check that it encloses the K-weighted
        spectrum: -(1/2 pi i) oint m1 dz = (1/p) tr K = 1 and -(1/2 pi i) oint z m1 dz =
        :func:`k_weighted_mean`, both to ``mass_tol`` (relative); else the fallback contour."""
        mean = k_weighted_mean(params)
        for attempt in (contour, self._fallback):
            if attempt is None:
                break
            z, dz = attempt.upper()
            m0, m1, resid = _solve_nodes(params, z)
            N = attempt.nodes
            mass = -(2.0 / N) * float(np.sum(m1 * dz).imag)
            first = -(2.0 / N) * float(np.sum(z * m1 * dz).imag)
            moment = max(abs(mass - 1.0), abs(first - mean) / mean)
            if moment <= mass_tol:
                self._contour = attempt
                return z, dz, m0, m1, resid, moment
        raise ArithmeticError(f"the contour (x0 = {attempt.x0:.4g}, xR = {attempt.xR:.4g}, {attempt.nodes} nodes) "
                              f"does not reproduce the K-weighted mass 1 and mean {mean:.6g} (relative error "
                              f"{moment:.2e} > mass_tol = {mass_tol:g}): it cuts the spectrum or needs more nodes")

    def _blocks(self, z, m0, m1, P, Q, dm1, kappa_max, nq):
        """S on (upper, upper) and (upper, lower) node pairs, with the diagnostics of _kernel_block."""
        params = self.params
        M = z.size
        blocks = []
        ident_max, gap_max, n_quad = 0.0, 0.0, 0
        for same, (zb, m0b, m1b, Pb, Qb) in ((True, (z, m0, m1, P, Q)),
                                             (False, (np.conj(z), np.conj(m0), np.conj(m1), np.conj(P),
                                                      np.conj(Q)))):
            S = np.empty((M, M), dtype=complex)
            ident = np.empty((M, M))
            gap = np.zeros((M, M))
            used = np.zeros((M, M), dtype=bool)
            _kernel_block(z, m0, m1, P, Q, dm1, zb, m0b, m1b, Pb, Qb, same, kappa_max, nq, params.psi_p,
                          params.r, params.rho, params.alpha, params.v2, S, ident, gap, used)
            blocks.append(S)
            ident_max = max(ident_max, float(ident.max()))
            gap_max = max(gap_max, float(gap.max()))
            n_quad += int(used.sum())
        return blocks, ident_max, gap_max, n_quad

    @property
    def z_nodes(self) -> np.ndarray:
        """(N/2,) the upper-half contour nodes (the lower half are their conjugates)."""
        return self._z.copy()

    def kernel_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(S(z_i, z_j), S(z_i, conj z_j)) over the upper-half nodes, each (N/2, N/2) complex."""
        return self._S_pp.copy(), self._S_pm.copy()

    # ------------------------------------------------------------------ evaluation

    def _integrals(self, s: np.ndarray):
        """(I1, I2, I3, Itr) at times s = tau/p with the N-node rule and with the nested N/3 rule."""
        X, J = _time_sums(s, self._z, self._dz, self._w)
        out = []
        for r, (G, N) in enumerate(((self._G, self.nodes), (self._G_sub, self.nodes // 3))):
            Xs = X if r == 0 else X[:, self._sub2]
            I1, I2, Itr = (-(2.0 / N) * J[r, k].imag for k in range(3))
            I3 = -(2.0 / N**2) * np.einsum("ti,ti->t", Xs @ G, Xs)
            out.append((I1, I2, I3, Itr))
        return out

    def _errors_from(self, I1, I2, I3, Itr):
        psi, b, bbar = self._psi_p, self._b, self._bbar
        train = 1.0 - psi * bbar**2 * (2.0 * I1 - Itr)
        test_c = (1.0 - 2.0 * psi * bbar * np.outer(b, I1)
                  + psi * bbar**2 * (np.outer(self._A, I3) + np.outer(self._B, I2)))
        return train, test_c

    def functionals(self, tau_over_p) -> dict:
        """The spectral functionals of test-error.md §2 at times tau/p (N-node rule): ``I1``,
        ``I2``, ``I3`` and the train functional ``Itr`` = (1/p) tr K U f(U)^2, each (T,)."""
        s = np.atleast_1d(np.asarray(tau_over_p, dtype=float))
        if s.ndim != 1 or np.any(np.isnan(s)) or np.any(s < 0):
            raise ValueError("tau_over_p: must be a 1-d array of times >= 0 (inf allowed)")
        I1, I2, I3, Itr = self._integrals(s)[0]
        return {"I1": I1, "I2": I2, "I3": I3, "Itr": Itr, "time_unit": ANALYTIC_TIME_UNIT}

    def errors(self, tau_over_p, *, strict: bool = False) -> AnalyticCurves:
        """Train, class test, mixture test errors and class score MSE at times tau/p (inf allowed).

        Parameters
        ----------
        tau_over_p : array_like, shape (T,)
        strict : bool
            Raise ``ArithmeticError`` if a time did not converge (see :class:`AnalyticCurves`).

        Returns
        -------
        AnalyticCurves
            ``tau`` = tau/p, ``test_c`` (C, T), ``mse_c`` (C, T) = (E_test^c - floor_c) / Delta_t
            (dynamics.md (146')).
        """
        s = np.atleast_1d(np.asarray(tau_over_p, dtype=float))
        if s.ndim != 1 or np.any(np.isnan(s)) or np.any(s < 0):
            raise ValueError("tau_over_p: must be a 1-d array of times >= 0 (inf allowed)")
        fine, coarse = self._integrals(s)
        train, test_c = self._errors_from(*fine)
        train_c, test_cc = self._errors_from(*coarse)
        scale = np.maximum(1.0, np.maximum(np.abs(train), np.abs(test_c).max(axis=0)))
        est = np.maximum(np.abs(train - train_c), np.abs(test_c - test_cc).max(axis=0)) / scale
        zero = s == 0
        train[zero] = 1.0
        test_c[:, zero] = 1.0
        est[zero] = 0.0
        ok = est <= self.tol
        if strict and not ok.all():
            raise ArithmeticError(f"analytic curves not converged at {np.count_nonzero(~ok)} of {s.size} times "
                                  f"(tau/p = {s[~ok][:4]} ...; |N - N/3 rule| up to {est.max():.2e} > tol = "
                                  f"{self.tol:g}) with {self.nodes} contour nodes; raise nodes")
        test = self._weights @ test_c
        mse = (test_c - self._floors[:, None]) / self._delta_t
        return AnalyticCurves(s, train, test_c, test, mse, None, ANALYTIC_TIME_UNIT, ok, est, self.nodes)

    def time_range(self, decades_out: float = 1.0) -> tuple[float, float]:
        """A tau/p interval covering every relaxation time 1/(2 lambda) of the spectrum (which lies
        inside [x0, xR] of the contour), widened by ``decades_out`` decades."""
        return (0.5 / self.contour.xR * 10.0 ** -decades_out, 0.5 / self.contour.x0 * 10.0 ** decades_out)


def analytic_flow(model: Model, *, nodes: int = 600, contour: Contour | None = None, h: float = 1.0,
                  kappa_max: float = 1e4, quad_nodes: int = 300, max_quad_nodes: int = 4800,
                  tol: float = 1e-8, quad_tol: float = 1e-11, mass_tol: float = 1e-8,
                  identity_tol: float = 1e-6) -> AnalyticFlow:
    """Build the analytic curves of a centered Model with an odd activation (test-error.md §4-5).

    Parameters
    ----------
    model : Model
        Centered (centroid_norm2 = 0), odd activation; anything else raises ``ValueError``.
    nodes : int
        Contour nodes N (multiple of 6); the check rule uses N/3.
    contour : Contour, optional
        Default :func:`default_contour` (x0 = s2/2, xR = a bound above the spectrum, ``h``).
    kappa_max : float
        Pairs whose closed-form K-traces cancel by more than this use the quadrature.
    quad_nodes : int
        Marchenko-Pastur quadrature nodes (checked against half of them, to ``quad_tol``).
    max_quad_nodes : int
        The quadrature doubles its nodes up to this until the check passes (else ArithmeticError).
    tol : float
        Convergence tolerance of a time: |E(N) - E(N/3)| <= tol max(1, |E|).
    mass_tol : float
        Enclosure check (``AnalyticFlow.moment_residual``); failing it on the default contour and
        on the loose fallback raises ArithmeticError.
    identity_tol : float
        The A = I identity must hold to this (relative) on every node pair, else ArithmeticError.

    Returns
    -------
    AnalyticFlow

    Examples
    --------
    >>> m = Model("tanh", 0.01, 4.0, 2.0, [0.5, 0.5], [0.5, 0.25])
    >>> c = analytic_flow(m).errors([1.0, np.inf])
    >>> np.round(c.test_c[:, 0], 5).tolist(), c.time_unit, bool(c.converged.all())   # test-error.md §6b
    ([0.97266, 0.94126], 'tau/p', True)
    """
    check_analytic_model(model)
    fallback = None
    if contour is None:
        params = SpectralParams.from_model(model)
        contour = default_contour(params, int(nodes), h=h)
        loose = default_contour(params, int(nodes), h=h, loose=True)
        fallback = loose if loose.xR > contour.xR else None
    return AnalyticFlow(model, contour, kappa_max=kappa_max, quad_nodes=quad_nodes, max_quad_nodes=max_quad_nodes,
                        tol=tol, quad_tol=quad_tol, mass_tol=mass_tol, identity_tol=identity_tol,
                        fallback=fallback)


def analytic_curves(model: Model, tau_over_p, *, nodes: int = 600, max_nodes: int = 5400,
                    strict: bool = False, **options) -> AnalyticCurves:
    """Analytic learning curves at times tau/p; the node count triples (up to ``max_nodes``) until
    every time converges; what still does not is flagged (``strict=True``: raises).

    ``options`` are the keyword options of :func:`analytic_flow` (``contour`` excepted: its node
    count is the one tripled).

    Examples
    --------
    >>> m = Model("tanh", 0.01, 4.0, 2.0, [0.5, 0.5], [0.5, 0.25])
    >>> round(float(analytic_curves(m, [1e3]).train[0]), 5)      # dynamics.md §10b: 0.67487
    0.67487
    """
    n = int(nodes)
    while True:
        flow = analytic_flow(model, nodes=n, **options)
        curves = flow.errors(tau_over_p)
        if curves.converged.all() or 3 * n > max_nodes:
            break
        n *= 3
    if strict and not curves.converged.all():
        flow.errors(tau_over_p, strict=True)
    return curves


@dataclass(frozen=True)
class AnalyticTimes:
    """Class times of the analytic curves (paper eq. (15); ``dynamics.md`` §5), in tau/p.

    Attributes
    ----------
    classes : tuple of :class:`diffmix.theory.ClassTimes` (time_unit "tau/p")
    converged : bool
        Every time of the search grid and every returned time passed the contour check.
    error_estimate : float
        Largest |E(N) - E(N/3)| / max(1, |E|) met.
    nodes : int
    message : str
    time_unit : str
    """

    classes: tuple
    converged: bool
    error_estimate: float
    nodes: int
    message: str
    time_unit: str = ANALYTIC_TIME_UNIT

    def as_dict(self) -> dict:
        return {"classes": [t.as_dict() for t in self.classes], "converged": self.converged,
                "error_estimate": self.error_estimate, "nodes": self.nodes, "time_unit": self.time_unit}


def analytic_class_times(model_or_flow, *, threshold: float = 1.0, flat_tol: float = 1e-3,
                         points: int = 2000, tau_range: tuple[float, float] | None = None,
                         strict: bool = False, **options) -> AnalyticTimes:
    """tau_gen^c (with the flat interval of the minimum), min E_test^c and tau_mem^c of every class,
    in tau/p, by :func:`diffmix.theory.class_times` on the analytic curves.

    ``model_or_flow``: a Model (``options`` go to :func:`analytic_flow`) or an :class:`AnalyticFlow`.
    The grid and the returned times are checked (``converged``); ``strict=True`` raises otherwise.

    Examples
    --------
    >>> m = Model("tanh", 0.01, 4.0, 2.0, [0.5, 0.5], [0.5, 0.25])
    >>> t = analytic_class_times(m, points=400)
    >>> round(t.classes[0].tau_gen, 3), round(t.classes[0].tau_mem, 3), t.time_unit   # note §6c: 0.5874, 1.975
    (0.587, 1.975, 'tau/p')
    """
    flow = model_or_flow if isinstance(model_or_flow, AnalyticFlow) else analytic_flow(model_or_flow, **options)
    lo, hi = tau_range if tau_range is not None else flow.time_range()
    times = class_times(flow, threshold=threshold, flat_tol=flat_tol, points=points, tau_range=(lo, hi))
    times = tuple(dataclasses.replace(t, time_unit=ANALYTIC_TIME_UNIT) for t in times)
    probe = [t.tau_gen for t in times] + [t.tau_mem for t in times if t.tau_mem is not None]
    probe += [x for t in times for x in t.flat_interval]
    grid = np.concatenate([np.geomspace(lo, hi, int(points)), probe, [np.inf]])
    check = flow.errors(grid)
    est = float(check.error_estimate.max())
    ok = bool(check.converged.all())
    message = "converged" if ok else (f"{np.count_nonzero(~check.converged)} checked times did not converge "
                                      f"(error estimate up to {est:.2e} > tol = {flow.tol:g})")
    if strict and not ok:
        raise ArithmeticError(f"analytic class times: {message} with {flow.nodes} contour nodes")
    return AnalyticTimes(times, ok, est, flow.nodes, message)
