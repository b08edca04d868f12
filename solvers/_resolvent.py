"""Batched continuation solver for the resolvent g(z) of a centered mixture's U_gep.

Method (spectrum.md §3): for each lambda, z = lambda + i eta with eta decreasing geometrically from
10(|lambda| + 1) to eta_f = eta_rel |lambda| + 1e-14, starting on the physical branch at
m0 = m1 = -1/z; damped complex Newton on (F1, F2) at every step (relative step <= 1/2 in each
unknown); then one Newton solve at eta = 0 from the continuation end point, kept only if it
converges and stays on the physical branch (Im m0 >= 0, Im m1 >= 0 up to round-off).  Points that
end off the branch or with a large residual are recomputed with a 5x finer continuation; what still
fails is flagged, never returned silently.

The equations and their Jacobian are the emitted kernel ``spectral_f64.residual`` (derived by SymPy
in :mod:`diffmix.derivations._spectral`).  Numba's cache of the kernels below does not track that
module: after re-emitting it, delete this package's ``__pycache__/*.nbi`` and ``*.nbc`` files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from diffmix.derivations import load_spectral

__all__ = ["ResolventResult", "SpectralParams", "solve_resolvent", "stieltjes"]

_residual = load_spectral("f64").residual


@dataclass(frozen=True)
class SpectralParams:
    """The numbers through which a centered mixture enters the spectrum (spectrum.md §1).

    Attributes
    ----------
    psi_p, psi_n : float
    rho, alpha, v2 : ndarray, shape (C,)
        Class weights, alpha_c = a_c^2 sigma_c^2, v_c^2.
    beta, s2 : float
        sum_c rho_c b_c^2 and sum_c rho_c s_c^2.
    """

    psi_p: float
    psi_n: float
    rho: np.ndarray
    alpha: np.ndarray
    v2: np.ndarray
    beta: float
    s2: float
    #: The same inputs as mpmath numbers at ``dps`` digits (``from_model(..., dps=)``), used by
    #: the mpmath polish of edges; None: the float64 inputs are taken as exact.
    mp_inputs: tuple | None = None

    def __post_init__(self):
        for name in ("psi_p", "psi_n"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} = {v!r}: must be a finite number > 0")
        for name in ("beta", "s2"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} = {v!r}: must be a finite number >= 0")
        arrays = {n: np.asarray(getattr(self, n), dtype=float) for n in ("rho", "alpha", "v2")}
        sizes = {a.shape for a in arrays.values()}
        if len(sizes) != 1 or arrays["rho"].ndim != 1 or arrays["rho"].size == 0:
            raise ValueError("rho, alpha, v2: must be 1-d arrays with one entry per class (got "
                             f"shapes {', '.join(str(a.shape) for a in arrays.values())})")
        for name, a in arrays.items():
            if not np.all(np.isfinite(a) & (a >= 0)) or (name == "rho" and np.any(a <= 0)):
                raise ValueError(f"{name} = {a.tolist()}: every entry must be finite and "
                                 f"{'> 0' if name == 'rho' else '>= 0'}")
            object.__setattr__(self, name, np.ascontiguousarray(a))
        if abs(arrays["rho"].sum() - 1) > 1e-12:
            raise ValueError(f"rho: must sum to 1 within 1e-12 (sum = {arrays['rho'].sum()!r})")

    @property
    def r(self) -> float:
        """p / n = psi_p / psi_n."""
        return self.psi_p / self.psi_n

    @property
    def atom_weight(self) -> float:
        """Weight of the atom at s2 (spectrum.md §4): 1 - rank/p, where the non-identity part of
        U_gep has rank d + n generically (beta K spans the d rows of W, the noise v_c Omega_c adds
        n independent columns), so the weight is max(0, 1 - (1 + psi_n)/psi_p).  Degenerate
        inputs: without noise (all v2_c = 0) G lies in the span of W (rank d if beta > 0, else
        min(n, d)); with beta = 0 only the n columns of G remain."""
        d, n = 1.0, self.psi_n  # in units of d
        if np.any(self.v2 > 0):
            rank = n + (d if self.beta > 0 else 0.0)
        elif self.beta > 0:
            rank = d
        else:
            rank = min(n, d) if np.any(self.alpha > 0) else 0.0
        return max(0.0, 1.0 - rank / self.psi_p)

    def args(self):
        return (self.psi_p, self.r, self.beta, self.s2, self.rho, self.alpha, self.v2)

    @classmethod
    def from_model(cls, model, *, dps: int | None = None) -> "SpectralParams":
        """From a :class:`diffmix.theory.Model`; refuses what the equations do not describe.

        With ``dps``, the GEP coefficients are also computed at ``dps`` digits (``mp_inputs``),
        so that polished edges are correct to those digits, not only to float64 inputs.
        """
        from diffmix.theory import class_coefficients, mixture_gep
        if not model.is_centered:
            raise ValueError("centroid_norm2: the spectral equations of spectrum.md hold for "
                             "centered classes (centroid_norm2 = 0); extensive centroids add "
                             "outliers (speciation work)")
        g = mixture_gep(model)
        if np.any(np.abs(g.mu0) > 1e-12 * np.sqrt(np.abs(g.alpha) + g.v2 + g.b**2 + g.s2_c)):
            raise ValueError(f"activation = {model.activation!r}: not odd (mu0 = "
                             f"{np.array2string(g.mu0, precision=3)} != 0); its even part adds "
                             "outliers (a rank <= C spike of norm O(p)) that the spectral equations "
                             "do not describe")
        mp_inputs = None
        if dps is not None:
            import mpmath
            with mpmath.workdps(dps):
                cs = class_coefficients(model, dps=dps)
                rho = [mpmath.mpf(w) for w in model.weights]
                alpha = [c.a_t**2 * mpmath.mpf(v) for c, v in zip(cs, model.variances)]
                v2 = [c.v_t2 for c in cs]
                beta = mpmath.fsum(r_ * c.b_t**2 for r_, c in zip(rho, cs))
                s2 = mpmath.fsum(r_ * c.s_t2 for r_, c in zip(rho, cs))
                mp_inputs = (mpmath.mpf(model.psi_p), mpmath.mpf(model.psi_n), rho, alpha, v2,
                             beta, s2)
        return cls(model.psi_p, model.psi_n, g.rho, g.alpha, g.v2, g.beta, g.s2, mp_inputs)


@dataclass(frozen=True)
class ResolventResult:
    """m0 = g(z) and m1 on the real axis (eta = 0) or at the continuation end point.

    Attributes
    ----------
    lam : ndarray, shape (n,)
    m0, m1 : ndarray of complex, shape (n,)
    eta : ndarray, shape (n,)
        The imaginary part of z at which (m0, m1) solve the equations (0 where the real-axis
        solve was accepted).
    residual : ndarray, shape (n,)
        max(|F1| / S1, |F2| / S2) at the returned point, S the sum of the absolute values of the
        terms of each equation (a relative residual: near an atom the terms are huge).
    converged : ndarray of bool, shape (n,)
        Residual <= tol and on the physical branch.
    n_iter : ndarray of int, shape (n,)
        Newton iterations spent on the point (all continuation steps).
    message : str
    """

    lam: np.ndarray
    m0: np.ndarray
    m1: np.ndarray
    eta: np.ndarray
    residual: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    message: str

    @property
    def density(self) -> np.ndarray:
        """rho(lambda) = Im m0 / pi (the continuous part; atoms are reported separately)."""
        return np.maximum(self.m0.imag, 0.0) / math.pi


@njit(cache=True)
def _newton(z, m0, m1, maxit, tol, psi_p, r, beta, s2, rho, alpha, v2):
    """Damped Newton on (F1, F2); returns m0, m1, residual, iterations."""
    res = 0.0
    for it in range(maxit):
        F1, F2, S1, S2, J00, J01, J10, J11 = _residual(m0, m1, z, psi_p, r, beta, s2, rho,
                                                       alpha, v2)
        res = max(abs(F1) / S1, abs(F2) / S2)
        if res <= tol:
            return m0, m1, res, it
        det = J00 * J11 - J01 * J10
        if det == 0:
            return m0, m1, np.inf, it
        d0 = (J11 * F1 - J01 * F2) / det
        d1 = (J00 * F2 - J10 * F1) / det
        scale = 1.0
        if abs(d0) > 0.5 * abs(m0):
            scale = min(scale, 0.5 * abs(m0) / abs(d0))
        if abs(d1) > 0.5 * abs(m1):
            scale = min(scale, 0.5 * abs(m1) / abs(d1))
        m0 = m0 - scale * d0
        m1 = m1 - scale * d1
    F1, F2, S1, S2, J00, J01, J10, J11 = _residual(m0, m1, z, psi_p, r, beta, s2, rho, alpha, v2)
    return m0, m1, max(abs(F1) / S1, abs(F2) / S2), maxit


@njit(cache=True)
def _continue_to(lam, log_eta, log_f, m0, m1, h, h_max, tol, psi_p, r, beta, s2, rho, alpha, v2):
    """Continue (m0, m1) from eta = exp(log_eta) down to exp(log_f).

    Secant predictor in log(eta); a step is accepted when the corrector lands close to the
    prediction (a jump to another root needs a large correction), in few iterations, with
    Im m0, Im m1 > 0.  Step length adapts: x2 on success (up to h_max), /2 on failure.
    Returns m0, m1, log_eta reached, residual, iterations, success.
    """
    prev_log, p0m, p1m = log_eta, m0, m1
    total = 0
    res = np.inf
    h_min = 1e-6 * h_max
    while log_eta > log_f:
        new = max(log_eta - h, log_f)
        z = complex(lam, math.exp(new))
        if prev_log > log_eta:
            w = (new - log_eta) / (log_eta - prev_log)
            q0 = m0 + (m0 - p0m) * w
            q1 = m1 + (m1 - p1m) * w
        else:
            q0, q1 = m0, m1
        step_tol = tol if new == log_f else 1e-9
        a, b, rr, it = _newton(z, q0, q1, 8, step_tol, psi_p, r, beta, s2, rho, alpha, v2)
        total += it
        if (rr <= step_tol and abs(a - q0) <= 0.1 * abs(a) and abs(b - q1) <= 0.1 * abs(b)
                and a.imag > 0 and b.imag > 0):
            prev_log, p0m, p1m = log_eta, m0, m1
            m0, m1, res, log_eta = a, b, rr, new
            h = min(h_max, 2.0 * h)
        else:
            h *= 0.5
            if h < h_min:
                return m0, m1, log_eta, np.inf, total, False
    return m0, m1, log_eta, res, total, True


@njit(cache=True)
def _solve_point(lam, eta_f, real_axis, atom_w, n_steps, tol, psi_p, r, beta, s2, rho, alpha,
                 v2):
    eta0 = max(10.0 * (abs(lam) + 1.0), 10.0 * eta_f)
    m0 = -1.0 / complex(lam, eta0)
    m1 = m0
    h0 = math.log(eta0 / eta_f) / n_steps
    m0, m1, res, total = _newton(complex(lam, eta0), m0, m1, 30, tol, psi_p, r, beta, s2, rho,
                                 alpha, v2)
    log_eta = math.log(eta0)
    m0, m1, log_eta, res, it, ok = _continue_to(lam, log_eta, math.log(eta_f), m0, m1, h0,
                                                8.0 * h0, tol, psi_p, r, beta, s2, rho, alpha, v2)
    total += it
    if not ok or not real_axis:
        return m0, m1, math.exp(log_eta), res, total
    # Real axis: accept a converged solution close to the continuation end point (a spurious
    # real root inside a bulk differs from it by O(|m0|)) on the physical branch.  The atom's
    # pole -w/(z - s2) moves a lot between eta and 0 near s2, so it is compared without it.
    # Near an edge the solution at eta differs from the real-axis one by O(sqrt(eta)): the
    # continuation then goes on to smaller eta (down to 1e-6 eta_f) before deciding.
    branch_tol = 1e-12
    for attempt in range(4):
        eta = math.exp(log_eta)
        r0, r1, rres, it = _newton(complex(lam, 0.0), m0, m1, 50, tol, psi_p, r, beta, s2, rho,
                                   alpha, v2)
        total += it
        c_r = r0 + atom_w / (lam - s2) if lam != s2 else r0
        c_m = m0 + atom_w / (complex(lam, eta) - s2)
        if (rres <= tol and r0.imag >= -branch_tol * abs(r0) and r1.imag >= -branch_tol * abs(r1)
                and abs(c_r - c_m) <= 1e-2 * abs(c_m) + 1e-9 * abs(m0)
                and abs(r1 - m1) <= 1e-2 * abs(m1)):
            return r0, r1, 0.0, rres, total
        if attempt == 3:
            break
        a, b, new_log, rr, it, ok = _continue_to(lam, log_eta, log_eta - 2.0 * math.log(10.0),
                                                 m0, m1, h0, 8.0 * h0, tol, psi_p, r, beta, s2,
                                                 rho, alpha, v2)
        total += it
        if not ok:
            break
        m0, m1, log_eta, res = a, b, new_log, rr
    return m0, m1, math.exp(log_eta), res, total


@njit(cache=True, parallel=True)
def _solve_many(lam, eta_f, real_axis, atom_w, n_steps, tol, psi_p, r, beta, s2, rho, alpha,
                v2):
    n = lam.shape[0]
    m0 = np.empty(n, dtype=np.complex128)
    m1 = np.empty(n, dtype=np.complex128)
    eta = np.empty(n)
    res = np.empty(n)
    its = np.empty(n, dtype=np.int64)
    for i in prange(n):
        a, b, e, rr, k = _solve_point(lam[i], eta_f[i], real_axis, atom_w, n_steps, tol, psi_p,
                                      r, beta, s2, rho, alpha, v2)
        m0[i] = a
        m1[i] = b
        eta[i] = e
        res[i] = rr
        its[i] = k
    return m0, m1, eta, res, its


def _ok(m0, m1, res, tol):
    branch = (m0.imag >= -1e-10 * np.abs(m0)) & (m1.imag >= -1e-10 * np.abs(m1))
    return branch & (res <= tol) & np.isfinite(m0) & np.isfinite(m1)


def solve_resolvent(params: SpectralParams, lam, *, n_steps: int = 120, eta_rel: float = 1e-7,
                    tol: float = 1e-12, strict: bool = False) -> ResolventResult:
    """Solve the spectral equations at real points lambda (z = lambda + i0).

    Parameters
    ----------
    params : SpectralParams
    lam : array_like, shape (n,)
        Real points; the result is g(lambda + i0) where the real-axis solve is accepted, else
        g(lambda + i eta_f) with eta_f = eta_rel |lambda| + 1e-14 (reported in ``eta``).
    n_steps : int
        Continuation steps in eta (a failing point is retried with 5 n_steps).
    eta_rel : float
        Relative end point of the continuation.
    tol : float
        Relative residual tolerance (see ``ResolventResult.residual``).
    strict : bool
        Raise ``ArithmeticError`` if any point did not converge.

    Returns
    -------
    ResolventResult

    Examples
    --------
    >>> p = SpectralParams(4.0, 2.0, np.array([1.0]), np.array([0.9]), np.array([0.03]), 0.004, 0.002)
    >>> res = solve_resolvent(p, [0.5, 2.0])
    >>> bool(res.converged.all())
    True
    """
    if n_steps < 1:
        raise ValueError(f"n_steps = {n_steps}: must be >= 1")
    if not 0 < eta_rel < 1:
        raise ValueError(f"eta_rel = {eta_rel}: must be in (0, 1)")
    lam = np.ascontiguousarray(np.asarray(lam, dtype=float).ravel())
    if not np.all(np.isfinite(lam)):
        raise ValueError("lam: every point must be finite")
    return _solve(params, lam, eta_rel * np.abs(lam) + 1e-14, True, n_steps, tol, strict)


def stieltjes(params: SpectralParams, z, *, n_steps: int = 120, tol: float = 1e-12,
              strict: bool = False) -> ResolventResult:
    """m0 = g(z) and m1 at points z of the upper half plane (Im z > 0), by the same continuation.

    Examples
    --------
    >>> p = SpectralParams(4.0, 2.0, np.array([1.0]), np.array([0.9]), np.array([0.03]), 0.004, 0.002)
    >>> bool(stieltjes(p, [1 + 0.1j]).m0[0].imag > 0)
    True
    """
    z = np.asarray(z, dtype=complex).ravel()
    if not np.all(np.isfinite(z)) or np.any(z.imag <= 0):
        raise ValueError("z: every point must be finite with Im z > 0")
    return _solve(params, np.ascontiguousarray(z.real), np.ascontiguousarray(z.imag), False,
                  n_steps, tol, strict)


def _solve(params, lam, eta_f, real_axis, n_steps, tol, strict):
    args = params.args()
    w = params.atom_weight
    m0, m1, eta, res, its = _solve_many(lam, eta_f, real_axis, w, n_steps, tol, *args)
    bad = ~_ok(m0, m1, res, tol)
    if bad.any():
        idx = np.flatnonzero(bad)
        b0, b1, be, br, bi = _solve_many(lam[idx], eta_f[idx], real_axis, w, 5 * n_steps, tol,
                                         *args)
        m0[idx], m1[idx], eta[idx], res[idx], its[idx] = b0, b1, be, br, its[idx] + bi
        bad = ~_ok(m0, m1, res, tol)
    message = "converged" if not bad.any() else (
        f"{int(bad.sum())} of {lam.size} points did not converge (first at lambda = "
        f"{lam[bad][0]!r}: residual {res[bad][0]:.3g}, m0 = {m0[bad][0]:.6g})")
    if bad.any() and strict:
        raise ArithmeticError(message)
    return ResolventResult(lam, m0, m1, eta, res, ~bad, its, message)
