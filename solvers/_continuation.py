"""Edges followed along a parameter: float64 continuation of the folds (spectrum.md §5).

From one model to the next (a variance ratio, a weight, t, psi_p, psi_n swept), every edge of the
previous spectrum is the start of a Newton solve of the fold system with the new inputs.  The
continued spectrum is accepted only if every edge converged, the edges stay ordered, and each bulk
midpoint is inside the support and each gap midpoint outside it (one batched resolvent solve);
otherwise the bulk structure changed (a bulk split, merged or appeared) and the full search of
:func:`find_edges` runs again at that value, masses included.  The fold Newton is
:func:`diffmix.solvers._spectrum._fold_newton` compiled (the same iteration and criteria; a sweep
runs it thousands of times, where numpy's per-call overhead dominated).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from diffmix.derivations import load_spectral

from ._resolvent import SpectralParams, solve_resolvent
from ._spectrum import Bulk, Edge, Spectrum, _inside, _with_timescales, find_edges

__all__ = ["EdgePath", "edge_path"]

_fold = load_spectral("f64").fold
_residual = load_spectral("f64").residual


@njit(cache=True)
def _solve3(a, g):
    """x with a x = g for a 3x3 a (Gaussian elimination, partial pivoting, as LAPACK gesv);
    ok = False where a pivot is exactly 0 (np.linalg.solve raises there)."""
    a = a.copy()
    x = g.copy()
    for k in range(3):
        p = k
        for i in range(k + 1, 3):
            if abs(a[i, k]) > abs(a[p, k]):
                p = i
        if a[p, k] == 0.0:
            return x, False
        if p != k:
            for j in range(3):
                a[k, j], a[p, j] = a[p, j], a[k, j]
            x[k], x[p] = x[p], x[k]
        for i in range(k + 1, 3):
            f = a[i, k] / a[k, k]
            for j in range(k + 1, 3):
                a[i, j] -= f * a[k, j]
            x[i] -= f * x[k]
    for k in range(2, -1, -1):
        acc = x[k]
        for j in range(k + 1, 3):
            acc -= a[k, j] * x[j]
        x[k] = acc / a[k, k]
    return x, True


@njit(cache=True, error_model="numpy")
def _fold_newton_nb(m0, m1, lam, maxit, psi_p, r, beta, s2, rho, alpha, v2):
    """:func:`diffmix.solvers._spectrum._fold_newton` compiled (the same damping, step and
    residual criteria, the same term scales): real Newton on (F1, F2, det J) in (m0, m1, lambda),
    relative steps damped to <= 1/2; converged when a full step is below 1e-13 relative in every
    unknown and max(|F1| / S1, |F2| / S2) < 1e-12.  Returns m0, m1, lambda, residual (inf:
    failed), iterations."""
    x = np.array([m0, m1, lam])
    g = np.empty(3)
    jac = np.empty((3, 3))
    for it in range(1, maxit + 1):
        out = _fold(x[0], x[1], x[2], psi_p, r, beta, s2, rho, alpha, v2)
        g[0], g[1], g[2] = out[0], out[1], out[2]
        jac[0, 0], jac[0, 1], jac[0, 2] = out[3], out[4], out[5]
        jac[1, 0], jac[1, 1], jac[1, 2] = out[6], out[7], out[8]
        jac[2, 0], jac[2, 1], jac[2, 2] = out[9], out[10], out[11]
        step, ok = _solve3(jac, g)
        if not ok:
            return x[0], x[1], x[2], np.inf, it
        rel = 0.0
        for i in range(3):
            if not math.isfinite(step[i]):
                return x[0], x[1], x[2], np.inf, it
            rel = max(rel, abs(step[i]) / (abs(x[i]) + 1e-300))
        damp = max(1.0, 2.0 * rel)
        for i in range(3):
            x[i] -= step[i] / damp
        if rel < 1e-13:
            F1, F2 = _residual(x[0], x[1], x[2], psi_p, r, beta, s2, rho, alpha, v2)[:2]
            # _spectrum._term_scales: terms in absolute value, P and Q expanded.
            aP = abs(beta)
            aQ = abs(s2) + abs(x[2])
            for c in range(rho.shape[0]):
                D = 1.0 + r * (alpha[c] * x[1] + v2[c] * x[0])
                aP += abs(rho[c] * alpha[c] / D)
                aQ += abs(rho[c] * v2[c] / D)
            S1 = psi_p * aP * aQ * x[0] * x[0] + (aQ + abs(1 - psi_p) * aP) * abs(x[0]) + 1.0
            S2 = aP * abs(x[1]) + aQ * abs(x[0]) + 1.0
            resid = max(abs(F1) / S1, abs(F2) / S2)
            return x[0], x[1], x[2], (resid if resid < 1e-12 else np.inf), it
    return x[0], x[1], x[2], np.inf, maxit


@dataclass(frozen=True)
class EdgePath:
    """Spectra of a sequence of models.

    Attributes
    ----------
    values : ndarray, shape (n,)
        The swept parameter (as given).
    spectra : tuple of Spectrum
        One per value; a continued spectrum carries the bulk masses of the last full search
        (they are constant while the bulk structure does not change: multiples of 1/psi_p for
        fixed psi's) and says so in its message.
    restarted : ndarray of bool, shape (n,)
        Where the full edge search ran (the first value, and wherever continuation was refused).
    """

    values: np.ndarray
    spectra: tuple
    restarted: np.ndarray

    def timescale(self, name: str) -> np.ndarray:
        """tau_gen, tau_mem, tau_final, W_gen or W_mem along the path (nan where undefined)."""
        return np.array([np.nan if s.timescales.get(name) is None else s.timescales[name]
                         for s in self.spectra])


def _continue(prev: Spectrum, p: SpectralParams) -> Spectrum | None:
    edges = []
    args = p.args()
    for b in prev.bulks:
        for e in (b.lower, b.upper):
            m0, m1, lam, resid, it = _fold_newton_nb(float(e.m0), float(e.m1), float(e.lam), 60,
                                                     *args)
            if not np.isfinite(resid):
                return None
            edges.append(Edge(lam, m0, m1, e.side, resid, it))
    lam = np.array([e.lam for e in edges])
    if np.any(np.diff(lam) <= 0) or lam[0] <= p.s2:
        return None
    # Bulk midpoints must be inside, gap midpoints outside.
    mids = 0.5 * (lam[:-1] + lam[1:])
    res = solve_resolvent(p, mids)
    if not res.converged.all():
        return None
    inside = _inside(res, p)
    expected = np.arange(mids.size) % 2 == 0
    if np.any(inside != expected):
        return None
    bulks = tuple(Bulk(edges[2 * i], edges[2 * i + 1], b.mass) for i, b in enumerate(prev.bulks))
    atoms = ((p.s2, p.atom_weight),) if p.atom_weight > 0 else ()
    spec = Spectrum(p, bulks, atoms, sum(b.mass for b in bulks) + p.atom_weight, prev.converged,
                    "continued from the previous value (masses of the last full search)")
    return _with_timescales(spec)


def edge_path(models, values=None, **find_kwargs) -> EdgePath:
    """Spectra (edges, atoms, timescales) of a sequence of models by continuation.

    Parameters
    ----------
    models : sequence of diffmix.theory.Model or SpectralParams
        Consecutive models should be close (a fine sweep of one parameter).
    values : array_like, optional
        The swept parameter, stored in the result (default 0, 1, ...).
    find_kwargs
        Passed to :func:`find_edges` where a full search runs.

    Examples
    --------
    >>> from diffmix.theory import Model
    >>> ms = [Model("tanh", 0.001, 60.0, 30.0, [0.5, 0.5], [0.5, q * 0.5]) for q in (0.5, 0.55)]
    >>> path = edge_path(ms, [0.5, 0.55])
    >>> bool(path.restarted[1]), round(float(path.timescale("tau_gen")[0]), 6)
    (False, 0.125411)
    """
    params = [m if isinstance(m, SpectralParams) else SpectralParams.from_model(m) for m in models]
    if not params:
        raise ValueError("models: need at least one model")
    values = np.arange(len(params)) if values is None else np.asarray(values)
    if values.shape != (len(params),):
        raise ValueError(f"values: must have one entry per model ({len(params)}), got shape "
                         f"{values.shape}")
    spectra, restarted = [], []
    prev = None
    for p in params:
        spec = _continue(prev, p) if prev is not None and prev.converged else None
        restarted.append(spec is None)
        if spec is None:
            spec = find_edges(p, **find_kwargs)
        spectra.append(spec)
        prev = spec
    return EdgePath(values, tuple(spectra), np.array(restarted))
