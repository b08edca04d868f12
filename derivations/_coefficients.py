"""GEP coefficients of a centered class: closed forms where stable, else checked quadrature.

Formulas: gep.md §1 (paper App. D, eqs. (33)-(37); homogeneous coefficients of eq. (113)); their
integrands and closed forms are derived in :mod:`._gep` and run from the emitted kernels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import mpmath
import numpy as np

from ._activations import Activation, parse_activation
from ._gep import COEFFICIENTS
from ._kernels import load_kernels
from ._quadrature import gauss_hermite, trapezoid, trapezoid_mp, trapezoid_steps

__all__ = ["GEPCoefficients", "GEPCoefficientArrays", "QuadratureError", "centered_coefficients",
           "centered_coefficients_array"]

_METHODS = ("auto", "closed", "quadrature")
_RULES = ("gauss-hermite", "trapezoid")
#: Gauss-Hermite ladder: (outer, inner) node counts; consecutive levels must agree.
_GH_LEVELS = tuple((40 * 2**k, 20 * 2**k) for k in range(6))
_MAX_DPS = 1000


class QuadratureError(ArithmeticError):
    """Two quadrature levels did not agree within tolerance: no value is returned."""


@dataclass(frozen=True)
class GEPCoefficients:
    """GEP coefficients of one centered class at one diffusion time (gep.md §1).

    Values are floats (``dps is None``) or ``mpmath.mpf`` at ``dps`` digits.

    Attributes
    ----------
    mu0, mu1, a_t, b_t, v_t2, s_t2, kappa2 : float or mpf
        E sigma(Gamma z); E sigma'(Gamma z) (Stein form); e^{-t} mu1; sqrt(Delta_t) mu1;
        nonlinear data variance; noise conditional variance beyond linear; E sigma(Gamma z)^2.
    gamma2 : float or mpf
        Gamma^2 = e^{-2t} sigma^2 + Delta_t.
    methods : dict
        Per coefficient (mu0, mu1, kappa2, v2, s2): ``"closed"`` or ``"quadrature:<rule>"``.
    error : dict
        Per coefficient, the difference between the last two quadrature levels (0 for closed forms).
    """

    activation: str
    t: float
    variance: float
    mu0: object
    mu1: object
    a_t: object
    b_t: object
    v_t2: object
    s_t2: object
    kappa2: object
    gamma2: object
    dps: int | None
    methods: dict = field(default_factory=dict)
    error: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The coefficients as JSON-ready values: floats, or decimal strings at ``dps`` digits."""
        def fmt(v):
            return float(v) if self.dps is None else mpmath.nstr(v, self.dps, min_fixed=-1,
                                                                 max_fixed=-1)
        out = {k: fmt(getattr(self, k)) for k in ("mu0", "mu1", "a_t", "b_t", "v_t2", "s_t2")}
        out.update(activation=self.activation, t=self.t, variance=self.variance)
        return out


@dataclass(frozen=True)
class GEPCoefficientArrays:
    """Float64 coefficients over arrays of (t, variance), one entry per point.

    ``converged[i]`` is False where the quadrature levels disagreed (values there are nan).
    ``error`` has shape (n, 5) in the order mu0, mu1, kappa2, v2, s2.
    """

    activation: str
    t: np.ndarray
    variance: np.ndarray
    mu0: np.ndarray
    mu1: np.ndarray
    a_t: np.ndarray
    b_t: np.ndarray
    v_t2: np.ndarray
    s_t2: np.ndarray
    kappa2: np.ndarray
    converged: np.ndarray
    error: np.ndarray
    message: str


def _check_positive(name: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} = {value!r}: must be a finite number > 0") from None
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} = {value!r}: must be a finite number > 0")
    return x


def _check_options(method: str, rule: str | None):
    if method not in _METHODS:
        raise ValueError(f"method = {method!r}: must be one of {', '.join(_METHODS)}")
    if rule is not None and rule not in _RULES:
        raise ValueError(f"rule = {rule!r}: must be one of {', '.join(_RULES)}")


def plan_methods(act: Activation, method: str, names, available, stable, *,
                 qualifier: str = "") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split ``names`` into (closed forms, quadrature) for ``method`` ("auto", "closed",
    "quadrature"): ``auto`` takes the closed forms listed as ``stable``; ``closed`` requires all of
    them to be ``available`` (``qualifier`` completes the error message, e.g. " with a mean")."""
    names = tuple(names)
    if method == "quadrature":
        return (), names
    if method == "closed":
        missing = [n for n in names if n not in available]
        if missing:
            raise ValueError(f"method = 'closed': activation '{act.name}' has no closed form{qualifier} for "
                             f"{', '.join(missing)} (available: {', '.join(available) or 'none'})")
        return names, ()
    closed = tuple(n for n in names if n in stable)
    return closed, tuple(n for n in names if n not in closed)


def _plan(act: Activation, kern, method: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Which centered coefficients come from closed forms and which from quadrature."""
    return plan_methods(act, method, COEFFICIENTS, kern.CLOSED_AVAILABLE, kern.CLOSED_STABLE)


def _tolerance(values, digits: float):
    """Allowed |level difference| per coefficient: relative 10^-digits plus a round-off floor.

    The floor scales with sqrt(value * kappa2) for v2 and s2 (their integrands are squares of
    differences of O(sqrt(kappa2)) numbers) and with sqrt(kappa2) for mu0, mu1.
    """
    mu0, mu1, kappa2, v2, s2 = values
    eps = 10.0 ** (-digits)
    scale = abs(kappa2)
    root = scale ** 0.5
    return [eps * (abs(mu0) + root), eps * (abs(mu1) + root), eps * (abs(kappa2) + 1e-300),
            eps * (abs(v2) + 10 * (abs(v2) * scale) ** 0.5) + 1e-300,
            eps * (abs(s2) + 10 * (abs(s2) * scale) ** 0.5) + 1e-300]


def _not_converged(act: Activation, t, variance, worst: str, diff, tol, levels: str) -> str:
    hint = ("; the activation is not smooth (a kink or a jump), where quadrature converges only "
            "algebraically: closed forms exist for relu and sign" if not act.smooth else "")
    return (f"quadrature did not converge for activation '{act.name}' at t = {t!r}, variance = "
            f"{variance!r}: {worst} differs by {float(diff):.3g} between the last two levels "
            f"({levels}; tolerance {float(tol):.3g}){hint}")


def _ladder(evaluate, n: int, rule: str, rtol_digits: float):
    """Level ladder over n points at once: ``evaluate(idx, zo, wo, zi, wi) -> (len(idx), 5)``
    with the outer and inner rules of a level; a point is done when two consecutive levels agree
    (:func:`_tolerance`). Returns values (n, 5; NaN where not converged), the last level's values,
    the differences, the converged flags and the level names."""
    if rule == "gauss-hermite":
        rules = [(gauss_hermite(no), gauss_hermite(ni)) for no, ni in _GH_LEVELS]
        names = [f"gauss-hermite {no}x{ni}" for no, ni in _GH_LEVELS]
    else:
        h0, L = trapezoid_steps(16.0)
        rules = [(trapezoid(h0 / 2**k, L), trapezoid(h0 / 2**k, L)) for k in range(6)]
        names = [f"trapezoid h={h0 / 2**k:.3g}" for k in range(6)]
    values = np.full((n, 5), np.nan)
    last = np.full((n, 5), np.nan)
    errors = np.full((n, 5), np.inf)
    done = np.zeros(n, dtype=bool)
    prev = None
    for (zo, wo), (zi, wi) in rules:
        todo = np.flatnonzero(~done)
        cur = evaluate(todo, zo, wo, zi, wi)
        if prev is not None:
            diff = np.abs(cur - prev[todo])
            tol = np.array([_tolerance(row, rtol_digits) for row in cur])
            ok = np.all(diff <= tol, axis=1)
            values[todo[ok]] = cur[ok]
            last[todo] = cur
            errors[todo] = diff
            done[todo[ok]] = True
            if done.all():
                break
        full = np.full((n, 5), np.nan)
        full[todo] = cur
        prev = full
    return values, last, errors, done, names


def _quadrature_f64(kern, t: np.ndarray, var: np.ndarray, rule: str, rtol_digits: float):
    """Level ladder over all points at once; returns values (n, 5), errors (n, 5), converged (n,)."""
    return _ladder(lambda idx, zo, wo, zi, wi: kern.centered_quadrature_many(t[idx], var[idx], zo, wo, zi, wi),
                   t.shape[0], rule, rtol_digits)


def centered_coefficients_array(activation, t, variance, *, method: str = "auto",
                                rule: str = "gauss-hermite", rtol_digits: float = 12.0,
                                strict: bool = True) -> GEPCoefficientArrays:
    """Float64 GEP coefficients of centered classes at many (t, variance) points.

    Parameters
    ----------
    activation : str or Activation
        Built-in name or expression in x (:func:`parse_activation`).
    t, variance : array_like
        Diffusion times and per-coordinate variances, broadcast together; each > 0.
    method : {"auto", "closed", "quadrature"}
        ``auto``: closed forms that are free of cancellation at small t, quadrature otherwise.
    rule : {"gauss-hermite", "trapezoid"}
        Quadrature family (two independent rules; tests check that they agree).
    rtol_digits : float
        Two consecutive quadrature levels must agree to 10^-rtol_digits (relative, plus a
        round-off floor, see ``_tolerance``).
    strict : bool
        Raise :class:`QuadratureError` if any point did not converge; otherwise flag it.

    Returns
    -------
    GEPCoefficientArrays
        Arrays of shape (n,) (after broadcasting and flattening).

    Examples
    --------
    >>> c = centered_coefficients_array("erf", [0.01, 0.1], 1.0)
    >>> bool(abs(c.mu1[0] - 2 / (math.pi * (1 + 2)) ** 0.5) < 1e-15)
    True
    """
    _check_options(method, rule)
    act = activation if isinstance(activation, Activation) else parse_activation(activation)
    t_arr, var_arr = np.broadcast_arrays(np.asarray(t, dtype=float).ravel(),
                                         np.asarray(variance, dtype=float).ravel())
    for name, arr in (("t", t_arr), ("variance", var_arr)):
        bad = ~(np.isfinite(arr) & (arr > 0))
        if bad.any():
            raise ValueError(f"{name}[{int(np.flatnonzero(bad)[0])}] = {float(arr[bad][0])!r}: "
                             "must be a finite number > 0")
    t_arr, var_arr = np.ascontiguousarray(t_arr), np.ascontiguousarray(var_arr)
    kern = load_kernels(act, "f64")
    closed, quad = _plan(act, kern, method)
    n = t_arr.shape[0]
    values = np.empty((n, 5))
    errors = np.zeros((n, 5))
    converged = np.ones(n, dtype=bool)
    message = "converged"
    if quad:
        qv, last, qe, converged, names = _quadrature_f64(kern, t_arr, var_arr, rule,
                                                         rtol_digits)
        values[:], errors[:] = qv, qe
        if not converged.all():
            i = int(np.flatnonzero(~converged)[0])
            tol = _tolerance(last[i], rtol_digits)
            k = int(np.argmax(qe[i] / np.asarray(tol)))
            message = (f"{int((~converged).sum())} of {n} points did not converge; first: " +
                       _not_converged(act, float(t_arr[i]), float(var_arr[i]), COEFFICIENTS[k], qe[i, k],
                                      tol[k], " vs ".join(names[-2:])))
            if strict:
                raise QuadratureError(message)
    if closed:
        idx = [COEFFICIENTS.index(c) for c in closed]
        for i in range(n):
            values[i, idx] = kern.centered_closed(t_arr[i], var_arr[i])[idx]
        errors[:, idx] = 0.0
    values[~converged] = np.nan
    mu0, mu1, kappa2, v2, s2 = values.T
    return GEPCoefficientArrays(
        act.name, t_arr, var_arr, mu0, mu1, np.exp(-t_arr) * mu1,
        np.sqrt(-np.expm1(-2.0 * t_arr)) * mu1, v2, s2, kappa2, converged, errors, message)


def _quadrature_mp(kern, act: Activation, t, variance, dps: int, rule: str):
    if rule != "trapezoid":
        raise ValueError(f"rule = {rule!r}: the mpmath twin uses rule = 'trapezoid' (nodes at "
                         "the working precision; Gauss-Hermite would need ~1500 nodes for 50 digits)")
    digits = dps + 2
    h0, L = trapezoid_steps(digits + 3)
    with mpmath.workdps(dps + 10):
        sd = mpmath.sqrt(-mpmath.expm1(-2 * mpmath.mpf(t)))
        prev, q_prev, h_prev = None, None, None
        for k in range(7):
            h = h0 / 2**k
            zo, wo = trapezoid_mp(h, L)
            zi, wi = trapezoid_mp(min(h0, h / float(sd)), L)
            cur = kern.centered_quadrature(t, variance, zo, wo, zi, wi)
            if prev is not None:
                diff = [abs(a - b) for a, b in zip(cur, prev)]
                tol = _tolerance(cur, digits)
                # q: worst level difference in units of the relative scale (tol at 0 digits).
                q = max(float(d / e) for d, e in zip(diff, tol)) * 10.0 ** (-digits)
                # The trapezoidal rule converges like exp(-c/h): halving h squares the error, so
                # once the differences are seen to square, the finer level's error is ~ q^2 <= 10^-(digits+2).
                squaring = q_prev is not None and q <= q_prev ** 1.8
                if q <= 10.0 ** (-digits) or (squaring and q <= 10.0 ** (-(digits / 2 + 1))):
                    return cur, diff, f"trapezoid h={h:.3g}"
                q_prev = q
            prev, h_prev = cur, h
    worst = int(np.argmax([float(d / e) for d, e in zip(diff, tol)]))
    raise QuadratureError(_not_converged(act, t, variance, COEFFICIENTS[worst], diff[worst],
                                         tol[worst], f"trapezoid h={h_prev * 2:.3g} vs h={h:.3g}"))


def centered_coefficients(activation, t, variance, *, dps: int | None = None,
                          method: str = "auto", rule: str | None = None,
                          rtol_digits: float = 12.0) -> GEPCoefficients:
    """GEP coefficients of one centered class (gep.md §1; paper eqs. (33)-(37), (113)).

    Parameters
    ----------
    activation : str or Activation
    t : float
        Diffusion time, > 0 (a string is accepted when ``dps`` is set, read exactly).
    variance : float
        Per-coordinate class variance sigma^2, > 0.
    dps : int, optional
        Decimal digits.  None: float64 (Numba kernels).  Otherwise the mpmath twin at ``dps``
        digits (computed with 10 guard digits; quadrature levels must agree to dps + 2 digits).
    method : {"auto", "closed", "quadrature"}
    rule : {"gauss-hermite", "trapezoid"}, optional
        Default: Gauss-Hermite in float64, trapezoid at high precision.
    rtol_digits : float
        Float64 only: agreement required between quadrature levels.

    Raises
    ------
    ValueError
        Bad t, variance, dps, method or rule (the message names it), or ``method="closed"`` for
        an activation without closed forms.
    QuadratureError
        The quadrature levels did not agree (e.g. a user activation with a kink).

    Examples
    --------
    >>> c = centered_coefficients("tanh", 0.01, 1.0)
    >>> round(c.s_t2, 10)
    0.0018735496
    """
    _check_options(method, rule)
    act = activation if isinstance(activation, Activation) else parse_activation(activation)
    if dps is None:
        t, variance = _check_positive("t", t), _check_positive("variance", variance)
        arr = centered_coefficients_array(act, t, variance, method=method,
                                          rule=rule or "gauss-hermite", rtol_digits=rtol_digits)
        methods = {n: ("quadrature:" + (rule or "gauss-hermite")) for n in COEFFICIENTS}
        kern = load_kernels(act, "f64")
        closed, _ = _plan(act, kern, method)
        methods.update({n: "closed" for n in closed})
        return GEPCoefficients(
            act.name, float(arr.t[0]), float(arr.variance[0]), float(arr.mu0[0]),
            float(arr.mu1[0]), float(arr.a_t[0]), float(arr.b_t[0]), float(arr.v_t2[0]),
            float(arr.s_t2[0]), float(arr.kappa2[0]),
            float(math.exp(-2 * arr.t[0]) * arr.variance[0] - math.expm1(-2 * arr.t[0])),
            None, methods, dict(zip(COEFFICIENTS, map(float, arr.error[0]))))
    if isinstance(dps, bool) or not isinstance(dps, int) or not 15 <= dps <= _MAX_DPS:
        raise ValueError(f"dps = {dps!r}: must be an integer in [15, {_MAX_DPS}]")
    t_f = _check_positive("t", t)
    var_f = _check_positive("variance", variance)
    kern = load_kernels(act, "mp")
    closed, quad = _plan(act, kern, method)
    rule = rule or "trapezoid"
    with mpmath.workdps(dps + 10):
        t_mp = mpmath.mpf(t) if isinstance(t, str) else mpmath.mpf(t_f)
        var_mp = mpmath.mpf(variance) if isinstance(variance, str) else mpmath.mpf(var_f)
        values = [None] * 5
        errors = [mpmath.mpf(0)] * 5
        methods = {}
        if quad:
            qv, qe, level = _quadrature_mp(kern, act, t_mp, var_mp, dps, rule)
            for n in quad:
                i = COEFFICIENTS.index(n)
                values[i], errors[i], methods[n] = qv[i], qe[i], f"quadrature:{level}"
        if closed:
            cv = kern.centered_closed(t_mp, var_mp)
            for n in closed:
                i = COEFFICIENTS.index(n)
                values[i], methods[n] = mpmath.mpf(cv[i]), "closed"
        mu0, mu1, kappa2, v2, s2 = values
        a = mpmath.exp(-t_mp) * mu1
        b = mpmath.sqrt(-mpmath.expm1(-2 * t_mp)) * mu1
        gamma2 = mpmath.exp(-2 * t_mp) * var_mp - mpmath.expm1(-2 * t_mp)
    with mpmath.workdps(dps):
        r = [+x for x in (mu0, mu1, a, b, v2, s2, kappa2, gamma2)]
    return GEPCoefficients(act.name, t_f, var_f, *r, dps, methods,
                           {n: float(e) for n, e in zip(COEFFICIENTS, errors)})
