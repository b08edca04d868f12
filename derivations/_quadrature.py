"""Quadrature rules for expectations over a standard normal variable, at float64 or any precision.

Two independent families, each returned as (nodes, weights) with sum(weights * f(nodes))
approximating E[f(z)], z ~ N(0, 1):

* Gauss-Hermite (probabilists'), float64, from ``scipy.special.roots_hermitenorm``; the default
  float64 rule.  For the tanh family it converges like exp(-c sqrt(n)) (the poles of tanh at
  +-i pi/2 limit it): 200 nodes give ~1e-15, but 50 digits would need ~1500 nodes.
* The trapezoidal rule on the real line, z_k = k h, w_k = h phi(z_k), |z_k| <= L, computed at the
  working precision with mpmath (or in float64).  For integrands analytic in a strip it converges
  like exp(-2 pi a / h), so high precision is cheap: this is the mpmath rule.

Both are used with a level ladder (n doubling, or h halving) and a convergence check in
``_coefficients``; nothing here decides accuracy.
"""
from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
from scipy.special import roots_hermitenorm

__all__ = ["gauss_hermite", "trapezoid", "trapezoid_mp", "trapezoid_steps"]


@functools.lru_cache(maxsize=32)
def gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite rule with ``n`` nodes, weights normalized to sum 1."""
    if n < 1:
        raise ValueError(f"n = {n}: must be >= 1")
    z, w = roots_hermitenorm(n)
    w = w / math.sqrt(2.0 * math.pi)
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


def trapezoid_steps(digits: float) -> tuple[float, float]:
    """(h0, L) for ``digits`` decimal digits: the step at which the Gaussian factor alone is
    resolved (error ~ exp(-2 pi^2 / h^2)) and the truncation where phi(L) < 10^-(digits + 3)
    (plus a margin of 2 for integrands of polynomial growth)."""
    ln = (digits + 3) * math.log(10.0)
    return math.pi * math.sqrt(2.0 / ln), math.sqrt(2.0 * ln) + 2.0


def trapezoid(h: float, L: float) -> tuple[np.ndarray, np.ndarray]:
    """Float64 trapezoidal rule for N(0, 1) with step ``h`` on [-L, L]."""
    k = np.arange(-int(math.ceil(L / h)), int(math.ceil(L / h)) + 1)
    z = k * h
    return z, h * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


@functools.lru_cache(maxsize=64)
def _trapezoid_mp_cached(h: str, L: str, dps: int):
    with mpmath.workdps(dps):
        h_mp, L_mp = mpmath.mpf(h), mpmath.mpf(L)
        kmax = int(mpmath.ceil(L_mp / h_mp))
        norm = h_mp / mpmath.sqrt(2 * mpmath.pi)
        z = [k * h_mp for k in range(-kmax, kmax + 1)]
        w = [norm * mpmath.exp(-zk * zk / 2) for zk in z]
    return tuple(z), tuple(w)


def trapezoid_mp(h, L) -> tuple[list, list]:
    """Trapezoidal rule for N(0, 1) with nodes and weights computed at the current mpmath
    precision (``mpmath.mp.dps``); ``h`` and ``L`` are taken as exact decimal strings."""
    z, w = _trapezoid_mp_cached(mpmath.nstr(mpmath.mpf(h), 30), mpmath.nstr(mpmath.mpf(L), 30),
                                mpmath.mp.dps)
    return list(z), list(w)
