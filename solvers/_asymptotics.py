"""Asymptotic spectral edges for psi_p >> psi_n >> 1 (paper App. F.3.1), as separate formulas.

Paper App. F.3.1, eqs. (118)-(128) (lost in extraction; re-derived here).  Centered mixture, odd
activation (spectrum.md §1-2): U_gep - s2 I = (1/n) G G^T + beta K, G = W X_a / sqrt(d) + Omega D_v,
X_a (d x n) with columns a_c x_nu, x_nu ~ N(0, sigma_c^2 I); D_v = diag(v_c) per sample.

Derivation (sketch).
(a) W / sqrt(d) = sqrt(psi_p) Q with Q^T Q = I_d up to O(psi_p^{-1/2}); split
    Omega = Q Z + Omega_perp.  Dropping Q Z D_v (relative O(psi_p^{-1/2})), the non-zero spectrum
    of U_gep - s2 I is that of the (n + d) x (n + d) matrix psi_p L^T L + diag(B^T B / n, 0),
    L = [Y, sqrt(beta) I_d], Y = X_a / sqrt(n), B = Omega_perp D_v ((p - d) x n, independent of Y).
(b) The psi_p scale: d eigenvalues psi_p eig(Y Y^T + beta), the rightmost bulk
    (:func:`rightmost_edges_asymptotic`).
(c) Below it, up to a relative O(v2 / (alpha psi_n)) (second order in the coupling to (b)), the
    compression of B^T B / n to ker L = {(u, -Y u / sqrt(beta))}, i.e. the pencil
    B^T B / n u = lambda (I + Y^T Y / beta) u.  Its eigenvalues are the non-zero eigenvalues of
    (1/n) Omega_perp S Omega_perp^T, S = D_v (I + Y^T Y / beta)^{-1} D_v independent of Omega_perp:
    a generalized Marchenko-Pastur (MP) law, p - d rows, n columns, population spec(S).
(d) spec(S) = spec of the pencil (D_v^2, I + Y^T Y / beta): mu = v2_c on the n_c - d samples u of
    class c with X_c u = 0; the other C d values solve beta / mu in spec T(mu),
    T(mu) = (1/n) Z diag_nu(alpha_c / (v2_c - mu)) Z^T (Z: d x n standard Gaussian), a generalized
    MP law of ratio 1/psi_n.  For psi_n -> infinity, T(mu) -> sum_c rho_c alpha_c / (v2_c - mu) I:
    C roots, mu_0 in (0, min v2) (d values: the leftmost bulk) and one between consecutive v2_c
    (d values each: the intermediate bulks of spectrum.md §5).  Classes with equal v2_c act as one
    class (n_G - d samples at v2_c, one root).
(e) p >> n: a population value s becomes lambda ~ s2 + (p/n) s, spread by O(sqrt(n_s / p)).
    * Memorization part (n - d eigenvalues): one piece per class at s2 + r v2_c (n_c - d
      eigenvalues; the paper's "C bulks" of eq. (118)) and C - 1 intermediate bulks of d
      eigenvalues between them (not in the paper's prose).  Its upper edge (1/tau_mem) is that of
      the v2_max piece: "leading" s2 + r v2_max; "mp" the MP edge of p - d rows and n_G - d
      columns, s2 + v2_max (sqrt(psi_p - 1) + sqrt(rho_G psi_n - 1))^2 / psi_n (rho_G: weight of the
      classes with v2_c = v2_max); "free" the generalized MP law of (c) with the population of (d)
      at psi_n = infinity (atoms v2_c of weight rho_c - 1/psi_n, the C roots of weight 1/psi_n),
      which adds the level repulsion of the other pieces (relative O(psi_n/psi_p), what "mp" misses
      for C >= 2).
    * Leftmost bulk (d eigenvalues): population mu ~ beta << v2.  The rest of the population
      (weight 1 - 1/psi_n) takes n - d of the p - d noise directions and leaves the ratio
      (p - n)/n: lambda = s2 + (r - 1) mu, mu_-+ solving beta / mu = (upper, lower) edge of T(mu)
      ("free"; for C = 1, s2 + (r - 1) v2 beta / (alpha (1 +- psi_n^{-1/2})^2 + beta)).
      "leading": s2 + r (mu_0 -+ dmu), dmu = 2 sigma_T / (beta / mu_0^2 + sum_c rho_c alpha_c /
      (v2_c - mu_0)^2), sigma_T^2 = sum_c rho_c (alpha_c / (v2_c - mu_0))^2 / psi_n.

Scalings (units of 1/lambda; r = psi_p / psi_n; beta and s2 are O(Delta_t) at small t):
* tau_mem ~ psi_n / (psi_p v2_max): linear in psi_n at fixed psi_p (the paper's claim) only while
  psi_n << psi_p; the "mp" form psi_n / (v2 (sqrt(psi_p - 1) + sqrt(psi_n - 1))^2) is sub-linear
  (tau_mem psi_p v2 / psi_n = 0.94, 0.91, 0.87, 0.83, 0.77 at psi_p = 8000, psi_n = 10 ... 160,
  C = 1).  In flow time (x p/2) tau_mem ~ n / (2 v2_max), independent of p (the paper's
  "psi_p-independent" memorization phase).
* lambda_min(leftmost) ~ s2 + r beta / H, H = sum_c rho_c alpha_c / v2_c (beta << alpha): linear
  in Delta_t, so tau_final ~ psi_n / (psi_p Delta_t).  The bulk lies near s2 only while
  r beta / H << s2 (r of order 1, as in Fig. 2); for r >> 1 it is far above s2.
* Leftmost width ~ 4 beta psi_p sqrt(sum_c rho_c (alpha_c / v2_c)^2) / (H^2 psi_n^{3/2}):
  proportional to Delta_t and to psi_n^{-3/2} at fixed psi_p (psi_n^{-1/2} at fixed r), not to
  psi_n^{-2} as the paper's prose says (a pre-asymptotic fit: the exact local exponent is -1.66
  at psi_n = 10-20 and tends to -1.5).

Errors seen against :func:`find_edges` (tests/test_solvers_asymptotics.py; tanh, t = 0.001,
C = 1, 2) along (psi_p, psi_n) = (400 k^2, 20 k), k = 1..5, where psi_n/psi_p, 1/psi_n and
psi_p^{-1/2} all shrink as 1/k: memorization upper edge "leading" +0.48 -> +0.21 (C = 1), i.e.
O(sqrt(psi_n/psi_p)); "mp" <= 1e-5 for C = 1, 8e-3 -> 1.7e-3 for C = 2; "free" 1e-4 -> 1e-6 for
C = 2.  Leftmost bulk: "free" edges 1.3e-2 -> 1.7e-3 and width 1.6e-2 -> 3.4e-3; "leading" edges
1e-1 -> 2e-2 and width 7e-2 -> 1.4e-2 (first order in the small ratios).

The rightmost bulk: for psi_p >> psi_n >> 1 its eigenvalues are those of W M W^T / d with
M = (1/n) sum_c a_c^2 X_c X_c^T, and W^T W / d ~ psi_p I_d, so they are psi_p times the spectrum of M
(plus beta psi_p from beta K):

* ``"mp"``: the paper's Marchenko-Pastur edges (its eq. (121)), psi_p sum_c rho_c alpha_c
  (1 -+ psi_n^{-1/2})^2, exact for one class;
* ``"free"``: M as a free sum of the class Wisharts (ratios d/n_c = 1/(rho_c psi_n)), whose
  spectrum has mean sum_c rho_c alpha_c and variance sum_c rho_c alpha_c^2 / psi_n, so the edges are
  psi_p (sum_c rho_c alpha_c + beta -+ 2 sqrt(sum_c rho_c alpha_c^2 / psi_n)) to first order.

Both have relative corrections O(psi_n^{-1/2}, psi_p^{-1/2}); spectrum.md §5 shows that the
exact edges differ from the "mp" ones by ~8% at psi_p = 60, psi_n = 30.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from ._resolvent import SpectralParams

__all__ = ["rightmost_edges_asymptotic", "memorization_edge_asymptotic",
           "leftmost_edges_asymptotic", "timescales_asymptotic"]


def rightmost_edges_asymptotic(p: SpectralParams, kind: str = "free") -> tuple[float, float]:
    """(lower, upper) asymptotic edges of the rightmost bulk (units of lambda; see module doc).

    Examples
    --------
    >>> p = SpectralParams(4e4, 200.0, np.array([1.0]), np.array([0.5]), np.array([0.01]), 0.0, 0.0)
    >>> [round(x) for x in rightmost_edges_asymptotic(p, "mp")]
    [17272, 22928]
    """
    m1 = float(p.rho @ p.alpha)
    if kind == "mp":
        return (p.psi_p * m1 * (1 - p.psi_n ** -0.5) ** 2,
                p.psi_p * m1 * (1 + p.psi_n ** -0.5) ** 2)
    if kind == "free":
        half = 2.0 * math.sqrt(float(p.rho @ p.alpha**2) / p.psi_n)
        return p.psi_p * (m1 + p.beta - half), p.psi_p * (m1 + p.beta + half)
    raise ValueError(f"kind = {kind!r}: must be 'mp' or 'free'")


def _root(f, lo, hi) -> float:
    """brentq to float64 precision; a bracket without a sign change is an error, not a guess."""
    flo, fhi = f(lo), f(hi)
    if not (np.isfinite(flo) and np.isfinite(fhi)) or np.sign(flo) == np.sign(fhi):
        raise ArithmeticError(f"no sign change on [{lo:.6g}, {hi:.6g}] ({flo:.3g}, {fhi:.3g})")
    x, info = brentq(f, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=400,
                     full_output=True)
    if not info.converged:
        raise ArithmeticError(f"brentq did not converge on [{lo:.6g}, {hi:.6g}]: {info.flag}")
    return float(x)


def _gmp_edge(s: np.ndarray, w: np.ndarray, gamma: float, side: str) -> float:
    """Upper or lower edge of the generalized MP law of (1/n) X diag(s) X^T (X: N x n standard,
    N/n = gamma, population values s > 0 with weights w): critical point of
    z(m) = -1/m + sum w s / (1 + gamma s m).  With m = -+ t / (gamma s_max), q = s / s_max, the
    condition is h(t) = 1 - (1/gamma) sum w (q t)^2 / (1 -+ q t)^2 = 0, monotone in t (one root):
    t in (0, 1) for the upper edge, t > 0 for the lower edge (needs sum w = 1, gamma < 1)."""
    smax = float(s.max())
    q = s / smax
    if side == "upper":
        h = lambda t: 1.0 - float(np.sum(w * (q * t) ** 2 / (1 - q * t) ** 2)) / gamma
        t = _root(h, 1e-300, 1.0 - 1e-15)
        return smax * (gamma / t + float(np.sum(w * q / (1 - q * t))))
    if gamma >= 1:
        raise ValueError(f"gamma = {gamma}: the lower edge needs N < n")
    h = lambda t: 1.0 - float(np.sum(w * (q * t) ** 2 / (1 + q * t) ** 2)) / gamma
    hi = 1.0
    while h(hi) > 0:
        hi *= 4.0
    t = _root(h, 1e-300, hi)
    return smax * (-gamma / t + float(np.sum(w * q / (1 + q * t))))


def _check_regime(p: SpectralParams) -> None:
    if not (p.psi_n > 1 and p.psi_p > p.psi_n + 1):
        raise ValueError(f"psi_p = {p.psi_p}, psi_n = {p.psi_n}: the asymptotic bulks need "
                         "psi_p > psi_n + 1 > 2 (and are meant for psi_p >> psi_n >> 1)")
    if np.any(p.v2 <= 0) or np.any(p.alpha <= 0):
        raise ValueError("alpha, v2: every class needs alpha_c > 0 and v2_c > 0 (got "
                         f"alpha = {p.alpha.tolist()}, v2 = {p.v2.tolist()})")


def _mu_floor(p: SpectralParams) -> float:
    """A mu where beta / mu exceeds every edge of T(mu): for mu <= min(v2)/2,
    alpha_c / (v2_c - mu) <= 2 max_c alpha_c / v2_c, and the edges of T(mu) are <= 4 times its
    largest population value."""
    return min(0.5 * float(p.v2.min()), p.beta / (16.0 * float(np.max(p.alpha / p.v2))))


def _population_roots(p: SpectralParams):
    """Distinct v2 values (ascending), the rho-weighted alpha and the weight of each, and the
    psi_n = infinity roots mu of beta / mu = sum_c rho_c alpha_c / (v2_c - mu): one in (0, min v2)
    (only if beta > 0), one between consecutive distinct v2 (module doc, (d)).

    Returns
    -------
    v2_g, rho_alpha_g, rho_g : ndarray, shape (G,)
    mu : ndarray, shape (G,) (G - 1 without beta)
    """
    vals = np.unique(p.v2)
    groups = [np.isclose(p.v2, v, rtol=1e-12, atol=0.0) for v in vals]
    ra = np.array([float(np.sum(p.rho[g] * p.alpha[g])) for g in groups])
    rg = np.array([float(np.sum(p.rho[g])) for g in groups])
    f = lambda mu: p.beta / mu - float(np.sum(ra / (vals - mu)))
    mus = []
    if p.beta > 0:
        mus.append(_root(f, _mu_floor(p), vals[0] * (1 - 1e-15)))
    for a, b in zip(vals[:-1], vals[1:]):
        mus.append(_root(f, a * (1 + 1e-15), b * (1 - 1e-15)))
    return vals, ra, rg, np.array(mus)


def memorization_edge_asymptotic(p: SpectralParams, kind: str = "free") -> float:
    """Upper edge of the memorization (central) part, 1/tau_mem, for psi_p >> psi_n >> 1.

    Paper App. F.3.1, eqs. (118)-(119), re-derived in the module doc, (e):

    * ``"leading"``: s2 + (psi_p / psi_n) max_c v2_c, so tau_mem ~ psi_n / (psi_p v2_max);
    * ``"mp"``: s2 + v2_max (sqrt(psi_p - 1) + sqrt(rho_G psi_n - 1))^2 / psi_n, rho_G the total
      weight of the classes with v2_c = v2_max (MP edge of their n_G - d noise directions);
    * ``"free"``: upper edge of the generalized MP law with (psi_p - 1)/psi_n rows per column and
      population atoms v2_c (weights rho_c - 1/psi_n) and mu_k (the psi_n = infinity roots,
      weights 1/psi_n).

    Parameters
    ----------
    p : SpectralParams
        Needs psi_p > psi_n + 1, psi_n > 1, alpha_c, v2_c > 0 and, for "mp" and "free",
        rho_c psi_n > 1 (more samples than dimensions in every class; classes with equal v2_c
        count together).
    kind : {"free", "mp", "leading"}

    Returns
    -------
    float
        lambda_mem in units of lambda (tau_mem = 1 / lambda_mem in units of 1/lambda).

    Examples
    --------
    >>> p = SpectralParams(3600.0, 60.0, np.array([1.0]), np.array([0.366]),
    ...                    np.array([0.0272]), 7.3e-4, 1.9e-4)
    >>> [round(memorization_edge_asymptotic(p, kind), 4) for kind in ("leading", "mp")]
    [1.6322, 2.0763]
    """
    _check_regime(p)
    vmax = float(p.v2.max())
    if kind == "leading":
        return p.s2 + p.r * vmax
    if kind not in ("mp", "free"):
        raise ValueError(f"kind = {kind!r}: must be 'leading', 'mp' or 'free'")
    vals, _, rg, mus = _population_roots(p)
    if np.any(rg * p.psi_n <= 1):
        raise ValueError(f"rho = {p.rho.tolist()}, psi_n = {p.psi_n}: every class (classes with "
                         "equal v2_c counted together) needs rho_c psi_n > 1 (n_c > d) for the "
                         "memorization pieces")
    if kind == "mp":
        half = math.sqrt(p.psi_p - 1) + math.sqrt(rg[-1] * p.psi_n - 1)
        return p.s2 + vmax * half**2 / p.psi_n
    # each distinct v2 (a group of classes) keeps n_G - d samples, each root mu has d (with
    # beta = 0 the leftmost d values sit at 0 and do not contribute)
    s = np.r_[vals, mus]
    w = np.r_[rg - 1.0 / p.psi_n, np.full(mus.size, 1.0 / p.psi_n)]
    return p.s2 + _gmp_edge(s, w, (p.psi_p - 1) / p.psi_n, "upper")


def leftmost_edges_asymptotic(p: SpectralParams, kind: str = "free") -> tuple[float, float]:
    """(lower, upper) edges of the leftmost ("final memorization") bulk for psi_p >> psi_n >> 1.

    Paper App. F.3.1, eqs. (124)-(127), re-derived in the module doc, (d)-(e).
    tau_final = 1 / lower.

    * ``"free"``: s2 + (psi_p/psi_n - 1) mu_-+, mu_- (mu_+) solving beta / mu = upper (lower) edge
      of the generalized MP law of T(mu) = (1/n) Z diag(alpha_c / (v2_c - mu)) Z^T, ratio
      1/psi_n; for C = 1, s2 + (r - 1) v2 beta / (alpha (1 +- psi_n^{-1/2})^2 + beta);
    * ``"leading"``: s2 + r (mu_0 -+ dmu), mu_0 the root of
      beta / mu = sum_c rho_c alpha_c / (v2_c - mu) in (0, min v2) and dmu its first-order spread
      (module doc); the width ~ Delta_t psi_p psi_n^{-3/2}.

    Parameters
    ----------
    p : SpectralParams
        Needs beta > 0 (with beta = 0 the leftmost bulk joins the atom at s2),
        psi_p > psi_n + 1, psi_n > 1, alpha_c, v2_c > 0.
    kind : {"free", "leading"}

    Returns
    -------
    (float, float)
        Lower and upper edge in units of lambda.

    Examples
    --------
    >>> p = SpectralParams(3600.0, 60.0, np.array([1.0]), np.array([0.366]),
    ...                    np.array([0.0272]), 7.3e-4, 1.9e-4)
    >>> [f"{x:.4e}" for x in leftmost_edges_asymptotic(p)]
    ['2.6968e-03', '4.3991e-03']
    """
    _check_regime(p)
    if not p.beta > 0:
        raise ValueError("beta = 0: no leftmost bulk (its d eigenvalues join the atom at s2)")
    alpha, v2, rho = p.alpha, p.v2, p.rho
    if kind == "leading":
        mu0 = float(_population_roots(p)[3][0])
        s = alpha / (v2 - mu0)
        sigma = math.sqrt(float(np.sum(rho * s**2)) / p.psi_n)
        dmu = 2.0 * sigma / (p.beta / mu0**2 + float(np.sum(rho * alpha / (v2 - mu0) ** 2)))
        return p.s2 + p.r * (mu0 - dmu), p.s2 + p.r * (mu0 + dmu)
    if kind != "free":
        raise ValueError(f"kind = {kind!r}: must be 'leading' or 'free'")
    gamma, vmin = 1.0 / p.psi_n, float(v2.min())

    def mu_at(side):
        f = lambda mu: p.beta / mu - _gmp_edge(alpha / (v2 - mu), rho, gamma, side)
        return _root(f, _mu_floor(p), vmin * (1 - 1e-15))

    return p.s2 + (p.r - 1) * mu_at("upper"), p.s2 + (p.r - 1) * mu_at("lower")


def timescales_asymptotic(p: SpectralParams, kind: str = "free") -> dict:
    """tau_gen, tau_mem, tau_final and the windows from the asymptotic edges (units of 1/lambda).

    Each is 1 / an edge (spectrum.md §5; flow time: multiply by p/2).  ``"free"``: the lower edge
    of :func:`rightmost_edges_asymptotic` "free", :func:`memorization_edge_asymptotic` "free" and
    the lower edge of :func:`leftmost_edges_asymptotic` "free".  ``"leading"``: the same rightmost
    edge, tau_mem = 1 / (s2 + r v2_max) ~ psi_n / (psi_p v2_max), and the lower edge of
    :func:`leftmost_edges_asymptotic` "leading", s2 + r (mu_0 - dmu).

    Examples
    --------
    >>> p = SpectralParams(3600.0, 60.0, np.array([1.0]), np.array([0.366]),
    ...                    np.array([0.0272]), 7.3e-4, 1.9e-4)
    >>> ts = timescales_asymptotic(p, "leading")
    >>> round(ts["tau_mem"], 4), round(ts["tau_mem"] * p.psi_p * 0.0272 / p.psi_n, 4)
    (0.6127, 0.9999)
    """
    if kind not in ("free", "leading"):
        raise ValueError(f"kind = {kind!r}: must be 'leading' or 'free'")
    lam_gen = rightmost_edges_asymptotic(p, "free")[0]
    lam_mem = memorization_edge_asymptotic(p, kind)
    lam_fin = leftmost_edges_asymptotic(p, kind)[0]
    tau_gen, tau_mem, tau_final = 1.0 / lam_gen, 1.0 / lam_mem, 1.0 / lam_fin
    return {"tau_gen": tau_gen, "tau_mem": tau_mem, "tau_final": tau_final,
            "W_gen": tau_mem - tau_gen, "W_mem": tau_final - tau_mem, "time_unit": "1/lambda"}
