"""Edges followed along a parameter: float64 continuation of the folds (spectrum.md §5).

From one model to the next (a variance ratio, a weight, t, psi_p, psi_n swept), every edge of the
previous spectrum is the start of a Newton solve of the fold system with the new inputs.  The
continued spectrum is accepted only if every edge converged, the edges stay ordered, and each bulk
midpoint is inside the support and each gap midpoint outside it (one batched resolvent solve);
otherwise the bulk structure changed (a bulk split, merged or appeared) and the full search of
:func:`find_edges` runs again at that value, masses included.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._resolvent import SpectralParams, solve_resolvent
from ._spectrum import (Bulk, Edge, Spectrum, _fold_newton, _inside, _with_timescales,
                        find_edges)

__all__ = ["EdgePath", "edge_path"]


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
    for b in prev.bulks:
        for e in (b.lower, b.upper):
            x, resid, it = _fold_newton(e.m0, e.m1, e.lam, p)
            if not np.isfinite(resid):
                return None
            edges.append(Edge(float(x[2]), float(x[0]), float(x[1]), e.side, float(resid), it))
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
