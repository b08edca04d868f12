"""Spectrum of a centered mixture's U_gep: support, edges as folds, atoms, masses, timescales.

spectrum.md §4-5 (paper Sec. 3.2, App. F.3): the support is found on a scan of the real axis
(log-spaced in lambda - s2), each support boundary is then solved as a fold of the real solution
branch, F1 = F2 = det d(F1, F2)/d(m0, m1) = 0 in (m0, m1, lambda) (not read off the grid), and
polished with mpmath to any precision, verified at two precisions.  Bulk masses are integrated
between the edges; together with the atom at s2 they must sum to 1, otherwise the scan is refined
(a bulk narrower than the scan spacing would be missed) and, failing that, the result says so.

Timescales in units of 1/lambda (spectrum.md §5; paper Sec. 3.2): tau_gen = 1/(lower edge of the
rightmost bulk), tau_mem = 1/(upper edge of the bulk just left of it) (None when psi_n <= 1: no
memorization bulk), tau_final = 1/(lower edge of the leftmost bulk).  In flow time tau = k eta_e
multiply by p/2 (notation.md, Time).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import mpmath
import numpy as np

from diffmix.derivations import load_spectral

from ._resolvent import SpectralParams, solve_resolvent

__all__ = ["Bulk", "Edge", "Spectrum", "density_on_bulks", "find_edges", "polish_edge",
           "spectrum", "timescales"]

_fold = load_spectral("f64").fold
_residual = load_spectral("f64").residual
_mp = load_spectral("mp")


@dataclass(frozen=True)
class Edge:
    """One support edge: a real fold (m0, m1, lambda) of the spectral equations."""

    lam: object
    m0: object
    m1: object
    side: str  # "lower" or "upper" edge of its bulk
    residual: float
    n_iter: int
    dps: int | None = None


@dataclass(frozen=True)
class Bulk:
    """A connected piece of the continuous spectrum, [lower.lam, upper.lam], with its mass."""

    lower: Edge
    upper: Edge
    mass: float


@dataclass(frozen=True)
class Spectrum:
    """Bulks (ascending), atoms, total mass and the timescales of a centered mixture.

    ``converged`` is False when an edge failed or the masses do not sum to 1 within ``mass_tol``;
    ``message`` says which.
    """

    params: SpectralParams
    bulks: tuple
    atoms: tuple  # ((location, weight), ...)
    total_mass: float
    converged: bool
    message: str
    timescales: dict = field(default_factory=dict)

    @property
    def edges(self) -> list:
        """[[lower, upper], ...] as floats, one pair per bulk in ascending order."""
        return [[float(b.lower.lam), float(b.upper.lam)] for b in self.bulks]


def _upper_bound(p: SpectralParams) -> float:
    """A value above the support: ||U_gep|| <= s2 + beta ||K|| + sum_c rho_c ||T_c|| (1+sqrt(p/n_c))^2
    with ||K|| <= (1 + sqrt(psi_p))^2, T_c = alpha_c K + v2_c I; doubled for safety."""
    k = (1 + math.sqrt(p.psi_p)) ** 2
    cls = sum(rc * (ac * k + vc) * (1 + math.sqrt(p.r / rc)) ** 2
              for rc, ac, vc in zip(p.rho, p.alpha, p.v2))
    return 2.0 * (p.s2 + p.beta * k + cls)


def _inside(res, p: SpectralParams) -> np.ndarray:
    """Inside the support: the converged physical solution has Im m0 > 0, on the real axis, or
    at the end of the continuation (eta > 0) after removing the atom's Lorentzian
    w eta / ((lambda - s2)^2 + eta^2), which is not continuous spectrum (spectrum.md §3)."""
    z = res.lam + 1j * res.eta
    cont = res.m0 + p.atom_weight / (z - p.s2)
    # Round-off of the subtraction scales with |m0| near the atom.
    thr = np.where(res.eta > 0, 1e-6, 1e-9) * np.abs(cont) + 1e-9 * np.abs(res.m0)
    return res.converged & (cont.imag > thr)


def _term_scales(m0, m1, lam, p: SpectralParams):
    """Round-off scales of F1, F2 at a real point: their terms in absolute value with P and Q
    replaced by the sums of the absolute values of their own terms (Q = s2 - lambda + ... can
    cancel to ~1e-6 of its terms at an edge, and its round-off is that of the terms)."""
    D = 1.0 + p.r * (p.alpha * m1 + p.v2 * m0)
    aP = abs(p.beta) + float(np.sum(np.abs(p.rho * p.alpha / D)))
    aQ = abs(p.s2) + abs(lam) + float(np.sum(np.abs(p.rho * p.v2 / D)))
    S1 = p.psi_p * aP * aQ * m0 * m0 + (aQ + abs(1 - p.psi_p) * aP) * abs(m0) + 1.0
    S2 = aP * abs(m1) + aQ * abs(m0) + 1.0
    return S1, S2


def _fold_newton(m0, m1, lam, p: SpectralParams, maxit=60):
    """Real Newton on the fold system (F1, F2, det J) from a guess, damped to relative steps
    <= 1/2.  Converged when a full Newton step is below 1e-13 relative in every unknown and the
    relative residual of F1, F2 (terms summed in absolute value) is below 1e-12: the step, not
    the size of det J, decides (det J is ill-conditioned next to an atom, where |m0| ~ 1e7)."""
    args = p.args()
    x = np.array([m0, m1, lam], dtype=float)
    for it in range(1, maxit + 1):
        out = _fold(x[0], x[1], x[2], *args)
        g = np.array(out[:3])
        jac = np.array(out[3:]).reshape(3, 3)
        try:
            step = np.linalg.solve(jac, g)
        except np.linalg.LinAlgError:
            return x, np.inf, it
        if not np.all(np.isfinite(step)):
            return x, np.inf, it
        rel = np.abs(step) / (np.abs(x) + 1e-300)
        x = x - step / max(1.0, 2.0 * float(np.max(rel)))
        if np.max(rel) < 1e-13:
            F1, F2 = _residual(x[0], x[1], x[2], *args)[:2]
            S1, S2 = _term_scales(x[0], x[1], x[2], p)
            resid = max(abs(F1) / S1, abs(F2) / S2)
            return (x, resid, it) if resid < 1e-12 else (x, np.inf, it)
    return x, np.inf, maxit


def _edge_from_bracket(lam_out, lam_in, side, p: SpectralParams):
    """Edge between an outside point and an inside point of the scan."""
    for attempt in range(50):
        res = solve_resolvent(p, [lam_out])
        x, resid, it = _fold_newton(res.m0[0].real, res.m1[0].real, lam_out, p)
        lo, hi = sorted((lam_out, lam_in))
        span = hi - lo
        if np.isfinite(resid) and lo - 1e-9 * span <= x[2] <= hi + 1e-9 * span:
            return Edge(float(x[2]), float(x[0]), float(x[1]), side, float(resid), it)
        # Narrow the bracket by bisection on inside/outside and try again from closer.
        mid = 0.5 * (lam_out + lam_in)
        probe = solve_resolvent(p, [mid])
        if not probe.converged[0]:
            break
        if _inside(probe, p)[0]:
            lam_in = mid
        else:
            lam_out = mid
        if abs(lam_in - lam_out) <= 1e-15 * abs(lam_in):
            break
    return None


def _bulk_mass(p: SpectralParams, lo: float, hi: float) -> float:
    """Integral of the density over [lo, hi] by Gauss-Chebyshev (second kind) after
    lambda = (lo + hi)/2 - (hi - lo)/2 cos(theta): exact for sqrt edge behaviour times a
    polynomial; the node count doubles from 64 until two rules agree to 1e-10 (max 4096)."""
    prev = None
    n = 64
    while n <= 4096:
        k = np.arange(1, n + 1)
        theta = k * np.pi / (n + 1)
        lam = 0.5 * (lo + hi) - 0.5 * (hi - lo) * np.cos(theta)
        w = np.pi / (n + 1) * np.sin(theta) ** 2
        dens = solve_resolvent(p, lam).density
        sq = np.sqrt(np.maximum((lam - lo) * (hi - lam), 1e-300))
        mass = float(np.sum(w * dens / sq) * 0.25 * (hi - lo) ** 2)
        if prev is not None and abs(mass - prev) <= 1e-10:
            return mass
        prev, n = mass, 2 * n
    return mass


def find_edges(p: SpectralParams, *, n_scan: int = 4000, mass_tol: float = 1e-6,
               max_refine: int = 2) -> Spectrum:
    """All support edges and bulk masses of the continuous spectrum (float64).

    Parameters
    ----------
    p : SpectralParams
    n_scan : int
        Points of the initial scan, log-spaced in lambda - s2 from max(1e-10 x the upper bound,
        1e-8 s2) to the upper bound.
    mass_tol : float
        |sum of bulk masses + atom weight - 1| allowed.
    max_refine : int
        Scan refinements (x4 points each) when the masses do not add up.
    """
    top = _upper_bound(p)
    atom = p.atom_weight
    atoms = ((p.s2, atom),) if atom > 0 else ()
    for level in range(max_refine + 1):
        n = n_scan * 4**level
        # Closer to s2 than ~1e-8 s2 the equations are dominated by the atom's pole and the
        # continuous part is below round-off.
        lam = p.s2 + np.geomspace(max(1e-10 * top, 1e-8 * abs(p.s2)), top, n)
        res = solve_resolvent(p, lam)
        scan_message = "" if res.converged.all() else f"scan: {res.message}; "
        inside = _inside(res, p)
        if inside[-1]:
            raise ArithmeticError("the density does not vanish at the upper bound of the scan")
        bulks, failed = [], []
        starts = np.flatnonzero(~inside[:-1] & inside[1:])
        ends = np.flatnonzero(inside[:-1] & ~inside[1:])
        if inside[0]:
            starts = np.r_[-1, starts]
        for s_i, e_i in zip(starts, ends):
            lo_out = lam[s_i] if s_i >= 0 else p.s2 + 0.5 * (lam[0] - p.s2)
            lower = _edge_from_bracket(lo_out, lam[s_i + 1], "lower", p)
            upper = _edge_from_bracket(lam[e_i + 1], lam[e_i], "upper", p)
            if lower is None or upper is None:
                failed.append((lam[s_i + 1], lam[e_i]))
                continue
            bulks.append(Bulk(lower, upper, _bulk_mass(p, lower.lam, upper.lam)))
        total = sum(b.mass for b in bulks) + atom
        if not failed and abs(total - 1) <= mass_tol:
            # Unconverged scan points did not hide any mass: the bulks account for all of it.
            msg = "converged" + (f" ({scan_message.rstrip('; ')})" if scan_message else "")
            return _with_timescales(Spectrum(p, tuple(bulks), atoms, total, True, msg))
        message = scan_message + (
            f"edge search failed near {failed}" if failed else
            f"bulk masses + atom = {total:.9f} != 1 (tolerance {mass_tol:g}) after "
            f"{level + 1} scan(s) of up to {n} points")
    spec = Spectrum(p, tuple(bulks), atoms, total, False, message)
    return _with_timescales(spec)


def timescales(spec: Spectrum) -> dict:
    """tau_gen, tau_mem, tau_final and the windows in units of 1/lambda (spectrum.md §5).

    Floats, or mpmath numbers at the edges' precision when the edges were polished (``dps``).
    tau_mem (and W_gen, W_mem) is None when psi_n <= 1 or there is a single bulk.
    """
    b = spec.bulks
    if not b:
        return {}
    dps = b[0].lower.dps
    with mpmath.workdps(dps or 15):
        inv = (lambda e: 1 / e.lam) if dps else (lambda e: 1.0 / float(e.lam))
        tau_gen, tau_final = inv(b[-1].lower), inv(b[0].lower)
        tau_mem = inv(b[-2].upper) if spec.params.psi_n > 1 and len(b) >= 2 else None
        return {"tau_gen": tau_gen, "tau_mem": tau_mem, "tau_final": tau_final,
                "W_gen": None if tau_mem is None else tau_mem - tau_gen,
                "W_mem": None if tau_mem is None else tau_final - tau_mem,
                "time_unit": "1/lambda"}


def _with_timescales(spec: Spectrum) -> Spectrum:
    return Spectrum(spec.params, spec.bulks, spec.atoms, spec.total_mass, spec.converged,
                    spec.message, timescales(spec))


def _mp_fold_newton(x, p: SpectralParams, dps: int, maxit: int = 100):
    """Newton on the fold system at ``dps`` digits with the mpmath twin; returns x, |step|."""
    with mpmath.workdps(dps):
        if p.mp_inputs is not None:
            psi_p, psi_n, rho, alpha, v2, beta, s2 = p.mp_inputs
        else:
            psi_p, psi_n, beta, s2 = map(mpmath.mpf, (p.psi_p, p.psi_n, p.beta, p.s2))
            rho, alpha, v2 = ([mpmath.mpf(v) for v in arr] for arr in (p.rho, p.alpha, p.v2))
        args = (psi_p, psi_p / psi_n, beta, s2, list(rho), list(alpha), list(v2))
        x = mpmath.matrix([mpmath.mpf(v) for v in x])
        eps = mpmath.mpf(10) ** (-dps + 3)
        for it in range(maxit):
            out = _mp.fold(x[0], x[1], x[2], *args)
            g = mpmath.matrix(out[:3])
            jac = mpmath.matrix(3, 3)
            for i in range(3):
                for j in range(3):
                    jac[i, j] = out[3 + 3 * i + j]
            step = mpmath.lu_solve(jac, g)
            x = x - step
            rel = max(abs(step[i]) / abs(x[i]) for i in range(3))
            if rel < eps:
                return [x[0], x[1], x[2]], rel, it
        return [x[0], x[1], x[2]], rel, maxit


def polish_edge(edge: Edge, p: SpectralParams, dps: int) -> Edge:
    """Polish an edge to ``dps`` digits: Newton at dps + 10 and at dps + 20 digits from the
    float64 edge; the two must agree to dps digits or ``ArithmeticError`` is raised.

    The inputs are ``p.mp_inputs`` (coefficients at high precision, from
    ``SpectralParams.from_model(model, dps=...)``) if present; otherwise the float64 inputs are
    taken as exact and the digits are those of the fold of these equations.
    """
    if not isinstance(dps, int) or dps < 15:
        raise ValueError(f"dps = {dps!r}: must be an integer >= 15")
    x0 = [edge.m0, edge.m1, edge.lam]
    xa, ra, ia = _mp_fold_newton(x0, p, dps + 10)
    xb, rb, ib = _mp_fold_newton(xa, p, dps + 20)
    with mpmath.workdps(dps + 20):
        diff = abs(xa[2] - xb[2]) / abs(xb[2])
    if not diff < mpmath.mpf(10) ** (-dps):
        raise ArithmeticError(f"edge at lambda ~ {float(edge.lam):.9g} did not verify: "
                              f"{dps + 10} and {dps + 20} digits differ by {float(diff):.3g}")
    with mpmath.workdps(dps):
        return Edge(+xb[2], +xb[0], +xb[1], edge.side, float(rb), ia + ib, dps)


def spectrum(p: SpectralParams, *, dps: int | None = None, **kwargs) -> Spectrum:
    """:func:`find_edges`, then (with ``dps``) every edge polished to ``dps`` digits."""
    spec = find_edges(p, **kwargs)
    if dps is None:
        return spec
    bulks = tuple(Bulk(polish_edge(b.lower, p, dps), polish_edge(b.upper, p, dps), b.mass)
                  for b in spec.bulks)
    return _with_timescales(Spectrum(p, bulks, spec.atoms, spec.total_mass, spec.converged,
                                     spec.message))


def density_on_bulks(spec: Spectrum, n_per_bulk: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The continuous density on a grid adapted to the support: in every bulk, Chebyshev points
    lambda = lo + (hi - lo)(1 - cos theta)/2 (clustered at the square-root edges) plus the edges
    themselves, where the density is 0; a zero between bulks.

    Returns
    -------
    lam, rho : ndarray, shape (m,)
        Ascending points and rho(lambda) = Im g(lambda + i0) / pi; atoms are in ``spec.atoms``.

    Examples
    --------
    >>> p = SpectralParams(4.0, 2.0, np.array([1.0]), np.array([0.0]), np.array([0.0]), 1.0, 0.0)
    >>> lam, rho = density_on_bulks(find_edges(p), 50)
    >>> round(float(lam[0]), 12), round(float(lam[-1]), 12), float(rho[0])
    (1.0, 9.0, 0.0)
    """
    if n_per_bulk < 3:
        raise ValueError(f"n_per_bulk = {n_per_bulk}: must be >= 3")
    theta = np.linspace(0.0, np.pi, n_per_bulk)[1:-1]
    lams, rhos = [], []
    for b in spec.bulks:
        lo, hi = float(b.lower.lam), float(b.upper.lam)
        inner = lo + 0.5 * (hi - lo) * (1 - np.cos(theta))
        res = solve_resolvent(spec.params, inner)
        lams += [np.array([lo]), inner, np.array([hi])]
        rhos += [np.zeros(1), np.where(res.converged, res.density, np.nan), np.zeros(1)]
    if not lams:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(lams), np.concatenate(rhos)
