"""Fully analytical train error of a centered mixture (paper eq. (134); ``dynamics.md`` §10b).

With V_gep = bbar W / sqrt(d) (``gep.md`` §3), ||V^T u_k||^2 = bbar^2 u_k^T K u_k, so the
gradient-flow train error of ``dynamics.md`` §3 becomes an integral over the spectral measure of
U_gep weighted by K:

    E_train(tau) = 1 - psi_p bbar^2 Integral rho_K(lambda) (1 - exp(-4 lambda tau / p)) / lambda d lambda,
    rho_K(lambda) = Im m1(lambda + i0) / pi,   m1(z) = (1/p) tr K (U_gep - z)^{-1},

m1 being the second unknown of the spectral equations (``spectrum.md`` §2). The atom at s2 does
not contribute (its eigenvectors satisfy K u = 0). Integral rho_K = (1/p) tr K -> 1 is checked.
Time is tau/p (the asymptotic theory's unit: the curve depends on tau and p only through it).

Each bulk [lo, hi] is integrated by Gauss-Chebyshev of the second kind after
lambda = (lo + hi)/2 - (hi - lo)/2 cos(theta) (exact for a square-root edge times a polynomial);
the node count doubles from 64 until two rules agree to ``tol`` at every requested time, else the
time is flagged (``converged``) and ``strict=True`` raises.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from diffmix.theory import Model, mixture_gep

from ._resolvent import SpectralParams, solve_resolvent
from ._spectrum import Spectrum, find_edges

__all__ = ["AnalyticTrainError", "train_error_analytic"]


@dataclass(frozen=True, eq=False)
class AnalyticTrainError:
    """E_train at times tau/p, with a convergence flag per time.

    Attributes
    ----------
    tau_over_p : (T,) times in units of p (tau is the flow time of ``dynamics.md`` §2).
    train : (T,) E_train.
    converged : (T,) bool: two Gauss-Chebyshev rules agreed to ``tol`` on every bulk.
    kernel_mass : Integral rho_K over the bulks (1 in theory).
    nodes : the largest node count used on a bulk.
    time_unit : "tau/p".
    """

    tau_over_p: np.ndarray
    train: np.ndarray
    converged: np.ndarray
    kernel_mass: float
    nodes: int
    time_unit: str = "tau/p"


def _bulk_integrals(p: SpectralParams, lo: float, hi: float, tau_over_p: np.ndarray, tol: float,
                    max_nodes: int):
    """Integrals over one bulk of rho_K(lambda) g_tau(lambda) for every tau, and of rho_K."""
    prev = None
    n = 64
    while True:
        k = np.arange(1, n + 1)
        theta = k * np.pi / (n + 1)
        lam = 0.5 * (lo + hi) - 0.5 * (hi - lo) * np.cos(theta)
        w = np.pi / (n + 1) * np.sin(theta) ** 2
        res = solve_resolvent(p, lam)
        if not res.converged.all():
            raise ArithmeticError(f"resolvent not converged at {np.count_nonzero(~res.converged)} "
                                  f"quadrature nodes of the bulk [{lo:.6g}, {hi:.6g}]: {res.message}")
        rho_k = np.maximum(res.m1.imag, 0.0) / math.pi
        sq = np.sqrt(np.maximum((lam - lo) * (hi - lam), 1e-300))
        weight = w * rho_k / sq * 0.25 * (hi - lo) ** 2
        fin = np.isfinite(tau_over_p)
        g = np.empty((tau_over_p.size, n))
        g[fin] = -np.expm1(-4.0 * np.outer(tau_over_p[fin], lam)) / lam
        g[~fin] = 1.0 / lam
        vals = g @ weight
        mass = float(weight.sum())
        if prev is not None:
            ok = np.abs(vals - prev[0]) <= tol
            if ok.all() and abs(mass - prev[1]) <= tol:
                return vals, mass, ok, n
            if 2 * n > max_nodes:
                return vals, mass, ok, n
        prev = (vals, mass)
        n *= 2


def train_error_analytic(model: Model, tau_over_p, *, spectrum: Spectrum | None = None,
                         tol: float = 1e-10, max_nodes: int = 8192, strict: bool = False,
                         mass_tol: float = 1e-6) -> AnalyticTrainError:
    """E_train(tau) of the GEP model from the spectral equations (paper eq. (134)).

    Parameters
    ----------
    model : Model
        Centered, odd activation (as :class:`SpectralParams` requires).
    tau_over_p : array_like
        Times tau/p >= 0 (inf allowed: the least-squares train error).
    spectrum : Spectrum, optional
        Edges from :func:`find_edges` if already computed (must be converged).
    tol : float
        Absolute agreement of two quadrature levels required per time (errors are O(1)).
    strict : bool
        Raise ``ArithmeticError`` when a time did not converge.
    mass_tol : float
        |Integral rho_K - 1| allowed; beyond it ``ArithmeticError`` (the bulks are incomplete).

    Examples
    --------
    >>> m = Model("tanh", 0.01, 4.0, 2.0, [0.5, 0.5], [0.5, 0.25])
    >>> r = train_error_analytic(m, [0.0, 1.0])
    >>> float(r.train[0]), round(float(r.train[1]), 5), r.time_unit
    (1.0, 0.93665, 'tau/p')
    """
    tau = np.atleast_1d(np.asarray(tau_over_p, dtype=float))
    if tau.ndim != 1 or np.any(np.isnan(tau)) or np.any(tau < 0):
        raise ValueError("tau_over_p: must be a 1-d array of times >= 0 (inf allowed)")
    if not (tol > 0):
        raise ValueError(f"tol: must be > 0, got {tol}")
    params = SpectralParams.from_model(model)
    spec = find_edges(params) if spectrum is None else spectrum
    if not spec.converged:
        raise ArithmeticError(f"spectrum not converged: {spec.message}")
    total = np.zeros(tau.size)
    ok = np.ones(tau.size, dtype=bool)
    mass, nodes = 0.0, 0
    for bulk in spec.bulks:
        vals, m, conv, n = _bulk_integrals(params, float(bulk.lower.lam), float(bulk.upper.lam), tau,
                                           tol, max_nodes)
        total += vals
        ok &= conv
        mass += m
        nodes = max(nodes, n)
    if abs(mass - 1.0) > mass_tol:
        raise ArithmeticError(f"Integral rho_K = {mass:.10f}, not 1 within mass_tol = {mass_tol:g}: "
                              "the bulks found do not carry the whole K-weighted spectrum")
    if strict and not ok.all():
        raise ArithmeticError(f"train error not converged at {np.count_nonzero(~ok)} of {tau.size} "
                              f"times (tau/p = {tau[~ok][:5]} ...) with {max_nodes} nodes")
    bbar = mixture_gep(model).bbar
    train = 1.0 - model.psi_p * bbar**2 * total
    train[tau == 0] = 1.0
    return AnalyticTrainError(tau, train, ok, mass, nodes)
