"""Batched continuation solver for the resolvent g(z) of a centered mixture's U_gep.

Method (spectrum.md §3): for each lambda, z = lambda + i eta with eta decreasing from
10(|lambda| + 1) to eta_f = eta_rel |lambda| + 1e-14, starting on the physical branch at
m0 = m1 = -1/z.  Each continuation step predicts (m0, m1) at the next eta by a cubic Hermite
extrapolation through the last two solutions and their tangents (the tangent dm/d log(eta) comes
from the Jacobian of the last Newton iteration), corrects it by damped complex Newton on (F1, F2)
(relative step <= 1/2 in each unknown), and is accepted only if the correction is small (a jump to
another root needs a large one) and Im m0, Im m1 stay > 0; the step length adapts to the
predictor error.  Then one Newton solve at eta = 0 from the continuation end point (polished
beyond the residual tolerance while Newton still converges: next to an edge the real roots are
nearly double and the residual alone leaves m wrong by ~1e-6), kept only if it converges and
stays on the physical branch (Im m0 >= 0, Im m1 >= 0 up to round-off) close to the end point.
Points that end off the branch or with a large residual are recomputed with a 5x finer
continuation; what still fails is flagged, never returned silently.

The equations and their Jacobian are the emitted kernel ``spectral_f64.residual`` (derived by SymPy
in :mod:`diffmix.derivations._spectral`).  Numba's cache of the kernels below does not track that
module: after re-emitting it, delete this package's ``__pycache__/*.nbi`` and ``*.nbc`` files.
"""
from __future__ import annotations

import cmath
import math
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from diffmix.derivations import load_spectral

__all__ = ["ResolventResult", "SpectralParams", "solve_resolvent", "stieltjes"]

_residual = load_spectral("f64").residual

#: Continuation step control: the predictor error (relative, per step) aimed at; a step whose
#: corrector moves m by more than _STEP_REFUSE relative is refused (another root).
_STEP_TARGET = 0.03
_STEP_REFUSE = 0.1
#: In the continuation Im m0, Im m1 > -_IM_FLOOR |m| count as > 0: close to the real axis Im m
#: can be below what the corrector's residual tolerance (1e-12) resolves, and the predictor's
#: round-off then decides its sign; the same bound as the branch test of returned points (_ok).
_IM_FLOOR = 1e-10


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


@njit(cache=True, error_model="numpy")
def _newton_polished(z, m0, m1, maxit, tol, branch_tol, psi_p, r, beta, s2, rho, alpha,
                     v2):
    """:func:`_newton` to ``tol``, then full Newton steps while they keep shrinking (by 0.9 or
    more each, from below 1e-3 relative, down to round-off; at most 40).  Near a fold of the
    real solutions (an edge) F is quadratic in the distance to the root, so a residual of 1e-12
    leaves m wrong by ~1e-6 (relative), typically with a spurious Im m; Newton still converges
    there (linearly), and the extra steps take m to ~1e-10 of the root.  Elsewhere they cost one
    or two iterations.  The polished point is kept only if its residual is still <= tol and it
    did not cross to Im m < -branch_tol |m| (the conjugate root).  Returns m0, m1, residual,
    iterations."""
    m0, m1, res, it = _newton(z, m0, m1, maxit, tol, psi_p, r, beta, s2, rho, alpha, v2)
    if not res <= tol:
        return m0, m1, res, it
    a, b, last, k = m0, m1, 1e-3 / 0.9, 0
    while k < 40:
        F1, F2, S1, S2, J00, J01, J10, J11 = _residual(a, b, z, psi_p, r, beta, s2, rho, alpha,
                                                       v2)
        det = J00 * J11 - J01 * J10
        d0 = (J11 * F1 - J01 * F2) / det
        d1 = (J00 * F2 - J10 * F1) / det
        size = max(abs(d0) / abs(a), abs(d1) / abs(b))
        if not 1e-15 < size <= 0.9 * last:  # (nan where det = 0)
            break
        a, b, last, k = a - d0, b - d1, size, k + 1
    F1, F2, S1, S2, J00, J01, J10, J11 = _residual(a, b, z, psi_p, r, beta, s2, rho, alpha, v2)
    polished = max(abs(F1) / S1, abs(F2) / S2)
    # Never worse than the tolerance reached, and never from Im m >= 0 to the conjugate root
    # (inside a bulk next to an edge the physical root and its conjugate are close).
    flipped = ((a.imag < -branch_tol * abs(a) and m0.imag >= -branch_tol * abs(m0))
               or (b.imag < -branch_tol * abs(b) and m1.imag >= -branch_tol * abs(m1)))
    if not polished <= tol or flipped:
        return m0, m1, res, it + k
    return a, b, polished, it + k


@njit(cache=True, error_model="numpy")
def _newton_tangent(z, m0, m1, maxit, tol, psi_p, r, beta, s2, rho, alpha, v2):
    """:func:`_newton`, and the tangent (dm0, dm1)/d log(eta) of the solution branch at the
    returned point, from the Jacobian evaluated there (no extra evaluation): F(m(z), z) = 0 gives
    J dm = -dF/dz dz with dF1/dz = -(psi_p P m0^2 + m0), dF2/dz = -m0 (Q = s2 - z + ...) and
    dz = i eta d log(eta).  Returns m0, m1, residual, iterations, t0, t1."""
    res = np.inf
    det = 0j
    for it in range(maxit + 1):
        F1, F2, S1, S2, J00, J01, J10, J11 = _residual(m0, m1, z, psi_p, r, beta, s2, rho,
                                                       alpha, v2)
        res = max(abs(F1) / S1, abs(F2) / S2)
        det = J00 * J11 - J01 * J10
        if res <= tol or it == maxit or det == 0:
            break
        d0 = (J11 * F1 - J01 * F2) / det
        d1 = (J00 * F2 - J10 * F1) / det
        scale = 1.0
        if abs(d0) > 0.5 * abs(m0):
            scale = min(scale, 0.5 * abs(m0) / abs(d0))
        if abs(d1) > 0.5 * abs(m1):
            scale = min(scale, 0.5 * abs(m1) / abs(d1))
        m0 = m0 - scale * d0
        m1 = m1 - scale * d1
    if det == 0:  # as _newton: converged or not, no tangent
        return m0, m1, res if res <= tol else np.inf, it, 0j, 0j
    P = beta + 0j
    for c in range(rho.shape[0]):
        P += rho[c] * alpha[c] / (1.0 + r * (alpha[c] * m1 + v2[c] * m0))
    g0 = (psi_p * P * m0 * m0 + m0) * complex(0.0, z.imag)
    g1 = m0 * complex(0.0, z.imag)
    return m0, m1, res, it, (J11 * g0 - J01 * g1) / det, (J00 * g1 - J10 * g0) / det


@njit(cache=True, error_model="numpy")
def _hermite(x, x1, y1, d1, x0, y0, d0):
    """Cubic Hermite through (x1, y1, y'=d1) and (x0, y0, y'=d0), evaluated at x."""
    D = x0 - x1
    t = (x - x1) / D
    t2 = t * t
    t3 = t2 * t
    return ((2 * t3 - 3 * t2 + 1) * y1 + (t3 - 2 * t2 + t) * D * d1 + (3 * t2 - 2 * t3) * y0
            + (t3 - t2) * D * d0)


@njit(cache=True, error_model="numpy")
def _continue_to(lam, log_eta, log_f, m0, m1, t0, t1, h, h_max, tol, psi_p, r, beta, s2, rho,
                 alpha, v2):
    """Continue (m0, m1) (tangent (t0, t1) = dm/d log(eta)) from eta = exp(log_eta) down to
    exp(log_f).

    Predictor: cubic Hermite through the last two accepted points (values and tangents; Euler
    from the first), either of log m in log(eta) (exact for m ~ i/eta at large eta) or of m in
    eta (exact to O(eta^4) when m is analytic at the real axis, as inside a bulk); the one that
    was closer to the corrected solution at the previous step is used.  A step is accepted when
    the Newton corrector converges, lands close to the prediction (within 10% in each unknown: a
    jump to another root needs a large correction), with Im m0, Im m1 > 0.  Step length: scaled
    by (target / error)^(1/4), within [1/2, 2] x, up to h_max, after a success; halved after a
    failure.  Returns m0, m1, t0, t1, log_eta reached, residual, iterations, success.
    """
    have_prev = False
    prev_log, p0m, p1m, pt0, pt1 = log_eta, m0, m1, t0, t1
    by_eta = False
    total = 0
    res = np.inf
    h_min = 1e-6 * h_max
    while log_eta > log_f:
        new = max(log_eta - h, log_f)
        eta, eta_new = math.exp(log_eta), math.exp(new)
        z = complex(lam, eta_new)
        if have_prev:
            # log(m / m_current): no branch cut between neighbouring points.
            eta_prev = math.exp(prev_log)
            a0 = m0 * cmath.exp(_hermite(new, log_eta, 0j, t0 / m0, prev_log,
                                         cmath.log(p0m / m0), pt0 / p0m))
            a1 = m1 * cmath.exp(_hermite(new, log_eta, 0j, t1 / m1, prev_log,
                                         cmath.log(p1m / m1), pt1 / p1m))
            b0 = _hermite(eta_new, eta, m0, t0 / eta, eta_prev, p0m, pt0 / eta_prev)
            b1 = _hermite(eta_new, eta, m1, t1 / eta, eta_prev, p1m, pt1 / eta_prev)
        else:
            a0 = m0 * cmath.exp((t0 / m0) * (new - log_eta))
            a1 = m1 * cmath.exp((t1 / m1) * (new - log_eta))
            b0 = m0 + t0 * (eta_new / eta - 1.0)
            b1 = m1 + t1 * (eta_new / eta - 1.0)
        if by_eta:
            q0, q1, o0, o1 = b0, b1, a0, a1
        else:
            q0, q1, o0, o1 = a0, a1, b0, b1
        a, b, rr, it, a_t, b_t = _newton_tangent(z, q0, q1, 8, tol, psi_p, r, beta, s2, rho,
                                                 alpha, v2)
        total += it
        # (error_model="numpy": an exact zero gives nan or inf here, and the step is refused.)
        err = max(abs(a - q0) / abs(a), abs(b - q1) / abs(b))
        if (rr <= tol and err <= _STEP_REFUSE and a.imag > -_IM_FLOOR * abs(a)
                and b.imag > -_IM_FLOOR * abs(b)):
            other = max(abs(a - o0) / abs(a), abs(b - o1) / abs(b))
            if other < err:
                by_eta = not by_eta
                err = other
            have_prev = True
            prev_log, p0m, p1m, pt0, pt1 = log_eta, m0, m1, t0, t1
            m0, m1, t0, t1, res, log_eta = a, b, a_t, b_t, rr, new
            h = min(h_max, h * min(2.0, max(0.5, (_STEP_TARGET / max(err, 1e-300)) ** 0.25)))
        else:
            h *= 0.5
            if h < h_min:
                return m0, m1, t0, t1, log_eta, np.inf, total, False
    return m0, m1, t0, t1, log_eta, res, total, True


@njit(cache=True)
def _solve_point(lam, eta_f, real_axis, atom_w, n_steps, tol, psi_p, r, beta, s2, rho, alpha,
                 v2):
    eta0 = max(10.0 * (abs(lam) + 1.0), 10.0 * eta_f)
    m0 = -1.0 / complex(lam, eta0)
    m1 = m0
    h0 = math.log(eta0 / eta_f) / n_steps
    m0, m1, res, total, t0, t1 = _newton_tangent(complex(lam, eta0), m0, m1, 30, tol, psi_p, r,
                                                 beta, s2, rho, alpha, v2)
    log_eta = math.log(eta0)
    m0, m1, t0, t1, log_eta, res, it, ok = _continue_to(lam, log_eta, math.log(eta_f), m0, m1,
                                                        t0, t1, h0, 8.0 * h0, tol, psi_p, r,
                                                        beta, s2, rho, alpha, v2)
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
        r0, r1, rres, it = _newton_polished(complex(lam, 0.0), m0, m1, 50, tol, branch_tol,
                                            psi_p, r, beta, s2, rho, alpha, v2)
        total += it
        c_r = r0 + atom_w / (lam - s2) if lam != s2 else r0
        c_m = m0 + atom_w / (complex(lam, eta) - s2)
        if (rres <= tol and r0.imag >= -branch_tol * abs(r0) and r1.imag >= -branch_tol * abs(r1)
                and abs(c_r - c_m) <= 1e-2 * abs(c_m) + 1e-9 * abs(m0)
                and abs(r1 - m1) <= 1e-2 * abs(m1)):
            return r0, r1, 0.0, rres, total
        if attempt == 3:
            break
        a, b, a_t, b_t, new_log, rr, it, ok = _continue_to(lam, log_eta,
                                                           log_eta - 2.0 * math.log(10.0), m0,
                                                           m1, t0, t1, h0, 8.0 * h0, tol, psi_p,
                                                           r, beta, s2, rho, alpha, v2)
        total += it
        if not ok:
            break
        m0, m1, t0, t1, log_eta, res = a, b, a_t, b_t, new_log, rr
    return m0, m1, math.exp(log_eta), res, total


@njit(cache=True)
def _solve_range(lam, eta_f, real_axis, atom_w, n_steps, tol, psi_p, r, beta, s2, rho, alpha, v2,
                 order, lo, hi, m0, m1, eta, res, its):
    for j in range(lo, hi):
        i = order[j]
        m0[i], m1[i], eta[i], res[i], its[i] = _solve_point(lam[i], eta_f[i], real_axis, atom_w,
                                                            n_steps, tol, psi_p, r, beta, s2,
                                                            rho, alpha, v2)


@njit(cache=True, parallel=True)
def _solve_parallel(lam, eta_f, real_axis, atom_w, n_steps, tol, psi_p, r, beta, s2, rho, alpha,
                    v2, order, n_chunks, m0, m1, eta, res, its):
    n = lam.shape[0]
    for c in prange(n_chunks):
        _solve_range(lam, eta_f, real_axis, atom_w, n_steps, tol, psi_p, r, beta, s2, rho, alpha,
                     v2, order, c * n // n_chunks, (c + 1) * n // n_chunks, m0, m1, eta, res,
                     its)


#: Below this many points one thread solves them: waking Numba's thread pool costs up to a
#: scheduler time slice (milliseconds) on a loaded machine, more than the solve of a few points.
_PARALLEL_MIN = 128


def _solve_many(lam, eta_f, real_axis, atom_w, n_steps, tol, psi_p, r, beta, s2, rho, alpha, v2):
    """Every point by :func:`_solve_point`; points are dealt to the threads interleaved
    (0, T, 2T, ... to the first), so that each thread gets points from the whole range (the cost
    per point varies smoothly along lambda: higher near the atom and the edges)."""
    n = lam.shape[0]
    m0 = np.empty(n, dtype=np.complex128)
    m1 = np.empty(n, dtype=np.complex128)
    eta = np.empty(n)
    res = np.empty(n)
    its = np.empty(n, dtype=np.int64)
    t = numba.get_num_threads()
    if n < _PARALLEL_MIN or t == 1:
        _solve_range(lam, eta_f, real_axis, atom_w, n_steps, tol, psi_p, r, beta, s2, rho, alpha,
                     v2, np.arange(n), 0, n, m0, m1, eta, res, its)
    else:
        order = np.concatenate([np.arange(j, n, t) for j in range(t)])
        _solve_parallel(lam, eta_f, real_axis, atom_w, n_steps, tol, psi_p, r, beta, s2, rho,
                        alpha, v2, order, t, m0, m1, eta, res, its)
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
        Sets the continuation step in log(eta): the first step is log(eta0 / eta_f) / n_steps,
        later ones adapt to the predictor error, up to 8 times that (a failing point is retried
        with 5 n_steps).
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
