"""Per-neuron (vector) GEP coefficients: a pre-activation with a data mean (extensive centroids).

Formulas: gep.md §1, "Generalization to a neuron with a mean (extensive centroid)", and
speciation.md §1.1 (paper App. D-E, eqs. (47)-(53)); integrands, smoothings and closed forms are
derived in :mod:`._neuron_gep` and run from the emitted kernels (the same modules as the centered
coefficients).  Conventions: ``mean`` is speciation.md's m_{c,i} = e^{-t} w_i.mu_c / sqrt(d), i.e. it
INCLUDES e^{-t} (gep.md writes it e^{-t} m_{ic}); ``row_norm`` is r_i = ||w_i|| / sqrt(d) (1 in the
paper-level formula), which scales both fluctuations: G = r_i Gamma_{c,t}.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import mpmath
import numpy as np

from ._activations import Activation, parse_activation
from ._coefficients import (_MAX_DPS, QuadratureError, _check_options, _check_positive, _ladder,
                            _tolerance, centered_coefficients, centered_coefficients_array, plan_methods)
from ._kernels import load_kernels
from ._neuron_gep import NEURON_COEFFICIENTS
from ._quadrature import trapezoid_mp, trapezoid_steps

__all__ = ["NeuronCoefficients", "neuron_coefficients"]


@dataclass(frozen=True)
class NeuronCoefficients:
    """GEP coefficients of neurons with pre-activation mean ``mean`` (speciation.md §1.1).

    Float64 (``dps is None``): arrays of the broadcast shape of ``mean`` and ``row_norm`` (floats
    when both are scalars).  mpmath: ``mpf`` (object arrays for array input) at ``dps`` digits.

    Attributes
    ----------
    mean, row_norm : array or float
        m_{c,i} (includes e^{-t}) and r_i, as given (broadcast).
    mu0, mu1, kappa2 : array
        E sigma(m + G z); E sigma'(m + G z) (Stein form); E sigma(m + G z)^2; G = r Gamma_{c,t}.
    a_t, b_t : array
        e^{-t} mu1 and sqrt(Delta_t) mu1 (speciation.md §1.1; no factor r).
    v_t2, s_t2 : array
        Data nonlinear variance and noise conditional variance beyond linear (direct integrals).
    ef2 : array
        Ef2 of speciation.md §1.1 = mu0^2 + r^2 sigma_c^2 a_t^2 + v_t2.
    gamma2 : array
        G^2 = r^2 (e^{-2t} sigma_c^2 + Delta_t).
    methods : dict
        Per coefficient (mu0, mu1, kappa2, v2, s2): ``"closed"`` or ``"quadrature:<rule>"``
        for the points with a nonzero mean; points with mean = 0 and r = 1 come from
        :func:`centered_coefficients` (then the key ``"mean = 0"`` is present).
    error : array, shape (..., 5)
        Difference between the last two quadrature levels (0 for closed forms).
    converged : array of bool
        False where the quadrature levels disagreed (values nan; only with ``strict=False``).
    """

    activation: str
    t: float
    variance: float
    mean: object
    row_norm: object
    mu0: object
    mu1: object
    a_t: object
    b_t: object
    v_t2: object
    s_t2: object
    kappa2: object
    ef2: object
    gamma2: object
    dps: int | None
    methods: dict = field(default_factory=dict)
    error: object = None
    converged: object = True
    message: str = "converged"

    def as_dict(self) -> dict:
        """JSON-ready values: floats (lists for arrays), or decimal strings at ``dps`` digits."""
        def fmt(v):
            if isinstance(v, np.ndarray):
                return [fmt(x) for x in v]
            return float(v) if self.dps is None else mpmath.nstr(v, self.dps, min_fixed=-1,
                                                                 max_fixed=-1)
        out = {k: fmt(getattr(self, k))
               for k in ("mu0", "mu1", "a_t", "b_t", "v_t2", "s_t2", "kappa2")}
        out.update(activation=self.activation, t=self.t, variance=self.variance,
                   mean=self._plain(self.mean), row_norm=self._plain(self.row_norm))
        return out

    @staticmethod
    def _plain(v):
        return v.tolist() if isinstance(v, np.ndarray) else float(v)


def _check_array(name: str, value, positive: bool) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} = {value!r}: must be a number or an array of numbers") from None
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else False)
    if np.any(bad):
        i = int(np.flatnonzero(np.ravel(bad))[0])
        need = "a finite number > 0" if positive else "finite"
        raise ValueError(f"{name}[{i}] = {float(np.ravel(arr)[i])!r}: must be {need}"
                         if arr.ndim else f"{name} = {value!r}: must be {need}")
    return arr


def _plan(act: Activation, kern, method: str):
    return plan_methods(act, method, NEURON_COEFFICIENTS, kern.NEURON_CLOSED_AVAILABLE,
                        kern.NEURON_CLOSED_STABLE, qualifier=" with a mean")


def _not_converged(act, t, variance, mean, worst, diff, tol, levels) -> str:
    hint = ("; the activation is not smooth (a kink or a jump): closed smoothings exist for relu "
            "and sign" if not act.smooth else "")
    return (f"quadrature did not converge for activation '{act.name}' at t = {t!r}, variance = "
            f"{variance!r}, mean = {mean!r}: {worst} differs by {float(diff):.3g} between the last "
            f"two levels ({levels}; tolerance {float(tol):.3g}){hint}")


def _ladder_f64(kern, mean, su, sd, rule, rtol_digits):
    """The float64 level ladder of :func:`diffmix.derivations._coefficients._ladder` on the neuron kernels."""
    return _ladder(lambda idx, zo, wo, zi, wi: kern.neuron_quadrature_many(mean[idx], su[idx], sd[idx],
                                                                            zo, wo, zi, wi),
                   mean.shape[0], rule, rtol_digits)


def _ladder_mp(kern, act, t, variance, mean, su, sd, dps, rule):
    if rule != "trapezoid":
        raise ValueError(f"rule = {rule!r}: the mpmath twin uses rule = 'trapezoid'")
    digits = dps + 2
    h0, L = trapezoid_steps(digits + 3)
    prev, q_prev, h_prev = None, None, None
    for k in range(7):
        h = h0 / 2**k
        zo, wo = trapezoid_mp(h, L)
        zi, wi = trapezoid_mp(min(h0, h / float(sd)), L)
        cur = kern.neuron_quadrature(mean, su, sd, zo, wo, zi, wi)
        if prev is not None:
            diff = [abs(a - b) for a, b in zip(cur, prev)]
            tol = _tolerance(cur, digits)
            q = max(float(d / e) for d, e in zip(diff, tol)) * 10.0 ** (-digits)
            squaring = q_prev is not None and q <= q_prev ** 1.8
            if q <= 10.0 ** (-digits) or (squaring and q <= 10.0 ** (-(digits / 2 + 1))):
                return cur, diff, f"trapezoid h={h:.3g}"
            q_prev = q
        prev, h_prev = cur, h
    worst = int(np.argmax([float(d / e) for d, e in zip(diff, tol)]))
    raise QuadratureError(_not_converged(act, t, variance, float(mean), NEURON_COEFFICIENTS[worst],
                                         diff[worst], tol[worst],
                                         f"trapezoid h={h_prev * 2:.3g} vs h={h:.3g}"))


def neuron_coefficients(activation, t, variance, mean, *, row_norm=1.0, dps: int | None = None,
                        method: str = "auto", rule: str | None = None, rtol_digits: float = 12.0,
                        strict: bool = True) -> NeuronCoefficients:
    """Per-neuron GEP coefficients with a data mean (gep.md §1 "Generalization"; speciation.md
    §1.1; paper eqs. (47)-(53)).

    The pre-activation of neuron i on a class-c sample at time t is mean + G z with
    G^2 = r^2 Gamma_{c,t}^2 = r^2 (e^{-2t} sigma_c^2 + Delta_t), split into a data part
    e^{-t} r sigma_c z and a noise part r sqrt(Delta_t) zeta (module docstring of
    :mod:`._neuron_gep` for every integral).

    Parameters
    ----------
    activation : str or Activation
    t : float
        Diffusion time, > 0.
    variance : float
        Class variance sigma_c^2, > 0.
    mean : float or array_like
        m_{c,i} = e^{-t} w_i.mu_c / sqrt(d) (INCLUDES e^{-t}); any shape, finite.
    row_norm : float or array_like
        r_i = ||w_i|| / sqrt(d), > 0, broadcast with ``mean`` (default 1).
    dps : int, optional
        None: float64 (Numba kernels, vectorized).  Otherwise the mpmath twin at ``dps`` digits
        (10 guard digits; trapezoid levels must agree to dps + 2 digits), point by point.
    method : {"auto", "closed", "quadrature"}
        ``auto``: closed forms with a mean where they exist (linear: all; erf: mu0, mu1; relu:
        mu0, mu1, kappa2; sign: mu0, mu1, kappa2), quadrature otherwise.
    rule : {"gauss-hermite", "trapezoid"}, optional
        Default: Gauss-Hermite in float64 (for relu / sign, points where its levels disagree are
        redone with the trapezoid ladder; ``methods["fallback"]`` says how many), trapezoid at
        high precision.
    rtol_digits : float
        Float64 only: agreement required between consecutive quadrature levels.
    strict : bool
        Float64 only: raise :class:`QuadratureError` if a point did not converge, else flag it.

    Returns
    -------
    NeuronCoefficients
        Points with mean = 0 and r = 1 are the centered coefficients of
        :func:`centered_coefficients` (identical values), except with ``method="quadrature"``.

    Raises
    ------
    ValueError
        Bad t, variance, mean, row_norm, dps, method or rule (the message names it).
    QuadratureError
        Quadrature levels did not agree.

    Examples
    --------
    >>> c = neuron_coefficients("erf", 0.5, 1.0, [0.0, 0.7])
    >>> bool(abs(c.mu0[1] - math.erf(0.7 / math.sqrt(1 + 2 * c.gamma2[1]))) < 1e-15)
    True
    >>> neuron_coefficients("tanh", 0.1, 0.5, 0.0).mu0
    0.0
    """
    _check_options(method, rule)
    act = activation if isinstance(activation, Activation) else parse_activation(activation)
    t_f, var_f = _check_positive("t", t), _check_positive("variance", variance)
    if dps is not None and (isinstance(dps, bool) or not isinstance(dps, int)
                            or not 15 <= dps <= _MAX_DPS):
        raise ValueError(f"dps = {dps!r}: must be an integer in [15, {_MAX_DPS}]")
    mean_a = _check_array("mean", mean, positive=False)
    r_a = _check_array("row_norm", row_norm, positive=True)
    try:
        mean_b, r_b = np.broadcast_arrays(mean_a, r_a)
    except ValueError:
        raise ValueError(f"row_norm: shape {r_a.shape} does not broadcast with mean's "
                         f"{mean_a.shape}") from None
    shape = mean_b.shape
    m_flat = np.ascontiguousarray(mean_b.ravel())
    r_flat = np.ascontiguousarray(r_b.ravel())
    # mean = 0, r = 1: the centered coefficients themselves (not with method='quadrature', which
    # then runs the neuron kernels: an independent check of the centered path).
    centered = (m_flat == 0.0) & (r_flat == 1.0) & (method != "quadrature")
    if dps is None:
        return _neuron_f64(act, t_f, var_f, m_flat, r_flat, centered, shape, method, rule,
                           rtol_digits, strict)
    return _neuron_mp(act, t, variance, t_f, var_f, m_flat, r_flat, centered, shape, dps, method,
                      rule)


def _neuron_f64(act, t, var, m, r, centered, shape, method, rule, rtol_digits, strict):
    # rule=None (auto): Gauss-Hermite, and for a non-smooth activation the points where its levels
    # disagree (a kink or jump near the mean at small t, where Gauss-Hermite nodes resolve it
    # poorly) are redone with the trapezoid ladder before anything is flagged.
    fallback = rule is None and not act.smooth
    rule = rule or "gauss-hermite"
    kern = load_kernels(act, "f64")
    closed, quad = _plan(act, kern, method)
    e, delta = math.exp(-t), -math.expm1(-2.0 * t)
    su = np.ascontiguousarray(e * math.sqrt(var) * r)
    sd = np.ascontiguousarray(math.sqrt(delta) * r)
    n = m.shape[0]
    values = np.empty((n, 5))
    errors = np.zeros((n, 5))
    converged = np.ones(n, dtype=bool)
    message = "converged"
    methods = {c: ("closed" if c in closed else f"quadrature:{rule}") for c in NEURON_COEFFICIENTS}
    rest = np.flatnonzero(~centered)
    if centered.any():
        c = centered_coefficients_array(act, t, var, method=method, rule=rule,
                                        rtol_digits=rtol_digits, strict=strict)
        values[centered] = [c.mu0[0], c.mu1[0], c.kappa2[0], c.v_t2[0], c.s_t2[0]]
        errors[centered] = c.error[0]
        converged[centered] = c.converged[0]
        methods["mean = 0"] = "centered_coefficients"
        if not c.converged[0]:
            message = c.message
    if rest.size and quad:
        qv, last, qe, ok, names = _ladder_f64(kern, m[rest], su[rest], sd[rest], rule, rtol_digits)
        if fallback and not ok.all():
            bad = np.flatnonzero(~ok)
            tv, tl, te, tok, tnames = _ladder_f64(kern, m[rest][bad], su[rest][bad], sd[rest][bad],
                                                  "trapezoid", rtol_digits)
            qv[bad], last[bad], qe[bad], ok[bad] = tv, tl, te, tok
            if tok.any():
                methods["fallback"] = (f"quadrature:trapezoid at {int(tok.sum())} point(s) where "
                                       "Gauss-Hermite levels disagreed")
            names = tnames if not tok.all() else names
        values[rest], errors[rest], converged[rest] = qv, qe, ok
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            tol = _tolerance(last[i], rtol_digits)
            k = int(np.argmax(qe[i] / np.asarray(tol)))
            message = (f"{int((~ok).sum())} of {rest.size} points did not converge; first: " +
                       _not_converged(act, t, var, float(m[rest][i]), NEURON_COEFFICIENTS[k],
                                      qe[i, k], tol[k], " vs ".join(names[-2:])) +
                       ("; Gauss-Hermite was tried first" if fallback else ""))
            if strict:
                raise QuadratureError(message)
    if rest.size and closed:
        idx = [NEURON_COEFFICIENTS.index(c) for c in closed]
        for i in rest:
            values[i, idx] = kern.neuron_closed(m[i], su[i], sd[i])[idx]
        errors[np.ix_(rest, idx)] = 0.0
    values[~converged] = np.nan
    mu0, mu1, kappa2, v2, s2 = (values[:, k].reshape(shape) for k in range(5))
    su_s, mean_s, r_s = su.reshape(shape), m.reshape(shape), r.reshape(shape)
    ef2 = mu0**2 + (su_s * mu1) ** 2 + v2
    gamma2 = r_s**2 * (math.exp(-2.0 * t) * var + delta)
    out = dict(mean=mean_s, row_norm=r_s, mu0=mu0, mu1=mu1, a_t=e * mu1,
               b_t=math.sqrt(delta) * mu1, v_t2=v2, s_t2=s2, kappa2=kappa2, ef2=ef2,
               gamma2=gamma2)
    if not shape:
        out = {k: float(v) for k, v in out.items()}
    return NeuronCoefficients(act.name, t, var, dps=None, methods=methods,
                              error=errors.reshape(shape + (5,)),
                              converged=converged.reshape(shape) if shape else bool(converged[0]),
                              message=message, **out)


def _neuron_mp(act, t, variance, t_f, var_f, m, r, centered, shape, dps, method, rule):
    kern = load_kernels(act, "mp")
    closed, quad = _plan(act, kern, method)
    rule = rule or "trapezoid"
    n = m.shape[0]
    rows, errs = [None] * n, [None] * n
    methods = {c: "closed" for c in closed}
    methods.update({c: f"quadrature:{rule}" for c in quad})
    cent = None
    with mpmath.workdps(dps + 10):
        t_mp = mpmath.mpf(t) if isinstance(t, str) else mpmath.mpf(t_f)
        var_mp = mpmath.mpf(variance) if isinstance(variance, str) else mpmath.mpf(var_f)
        e = mpmath.exp(-t_mp)
        delta = -mpmath.expm1(-2 * t_mp)
        for i in range(n):
            r_i = mpmath.mpf(float(r[i]))
            m_i = mpmath.mpf(float(m[i]))
            if centered[i]:
                if cent is None:
                    cent = centered_coefficients(act, t, variance, dps=dps, method=method, rule=rule)
                with mpmath.workdps(dps + 10):
                    rows[i] = [mpmath.mpf(cent.mu0), mpmath.mpf(cent.mu1), mpmath.mpf(cent.kappa2),
                               mpmath.mpf(cent.v_t2), mpmath.mpf(cent.s_t2)]
                errs[i] = [cent.error[k] for k in NEURON_COEFFICIENTS]
                methods["mean = 0"] = "centered_coefficients"
                continue
            su = e * mpmath.sqrt(var_mp) * r_i
            sd = mpmath.sqrt(delta) * r_i
            vals, err = [None] * 5, [0.0] * 5
            if quad:
                qv, qe, level = _ladder_mp(kern, act, t_f, var_f, m_i, su, sd, dps, rule)
                for name in quad:
                    k = NEURON_COEFFICIENTS.index(name)
                    vals[k], err[k] = qv[k], float(qe[k])
                    methods[name] = f"quadrature:{level}"
            if closed:
                cv = kern.neuron_closed(m_i, su, sd)
                for name in closed:
                    k = NEURON_COEFFICIENTS.index(name)
                    vals[k] = mpmath.mpf(cv[k])
            rows[i], errs[i] = vals, err
        fields = {k: [] for k in ("mu0", "mu1", "a_t", "b_t", "v_t2", "s_t2", "kappa2", "ef2",
                                  "gamma2")}
        for i in range(n):
            mu0, mu1, kappa2, v2, s2 = rows[i]
            r_i = mpmath.mpf(float(r[i]))
            su = e * mpmath.sqrt(var_mp) * r_i
            for k, v in (("mu0", mu0), ("mu1", mu1), ("a_t", e * mu1),
                         ("b_t", mpmath.sqrt(delta) * mu1), ("v_t2", v2), ("s_t2", s2),
                         ("kappa2", kappa2), ("ef2", mu0**2 + (su * mu1) ** 2 + v2),
                         ("gamma2", r_i**2 * (e * e * var_mp + delta))):
                fields[k].append(v)
    with mpmath.workdps(dps):
        out = {}
        for k, vals in fields.items():
            vals = [+v for v in vals]
            if shape:
                arr = np.empty(n, dtype=object)
                arr[:] = vals
                out[k] = arr.reshape(shape)
            else:
                out[k] = vals[0]
    mean_o = m.reshape(shape) if shape else float(m[0])
    r_o = r.reshape(shape) if shape else float(r[0])
    return NeuronCoefficients(act.name, t_f, var_f, mean_o, r_o, dps=dps, methods=methods,
                              error=np.array(errs, dtype=float).reshape(shape + (5,)),
                              **out)
