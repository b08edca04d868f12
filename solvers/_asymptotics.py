"""Asymptotic edges of the spectrum (paper App. F.3.1), as separate formulas to compare with.

Only the rightmost (generalization) bulk is implemented: for psi_p >> psi_n >> 1 the top d
eigenvalues of U_gep are those of W M W^T / d with M = (1/n) sum_c a_c^2 X_c X_c^T, and
W^T W / d ~ psi_p I_d, so they are psi_p times the spectrum of M (plus beta psi_p from beta K):

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

from ._resolvent import SpectralParams

__all__ = ["rightmost_edges_asymptotic"]


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
