"""Symbolic derivation of the centered-class GEP coefficients and their kernel functions.

For a centered class of per-coordinate variance sigma^2 at diffusion time t (notation.md;
gep.md §1; paper App. D, eqs. (33)-(37), and eq. (113) for the homogeneous coefficients):

    Gamma^2 = e^{-2t} sigma^2 + Delta_t,   Delta_t = 1 - e^{-2t}
    mu0    = E_z[ sigma(Gamma z) ]
    mu1    = E_z[ z sigma(Gamma z) ] / Gamma            (Stein: no derivative of a kink needed)
    kappa2 = E_z[ sigma(Gamma z)^2 ]
    a_t    = e^{-t} mu1,     b_t = sqrt(Delta_t) mu1
    m(u)   = E_zeta[ sigma(e^{-t} u + sqrt(Delta_t) zeta) ],   u ~ N(0, sigma^2)
    v_t^2  = E_u[ (m(u) - mu0 - a_t u)^2 ]
    s_t^2  = E_u E_zeta[ (sigma(e^{-t} u + sqrt(Delta_t) zeta) - m(u) - b_t zeta)^2 ]

s_t^2 is one integral of a non-negative integrand (a conditional variance), never a difference
of separately computed moments (gep.md §1, "Numerical advice").

The integrands are built here as SymPy expressions from the activation's expression and printed
into kernels.  Closed forms come from a documented table of Gaussian identities (below); each
entry says whether it is free of cancellation as t -> 0, and only those entries are used by
``method="auto"``.

Table of identities (A = e^{-2t} sigma^2, D = Delta_t, G2 = Gamma^2 = A + D, rho = A / G2,
eps = D / G2 = 1 - rho, theta = arccos(rho) = 2 asin(sqrt(eps / 2)))
  linear: mu0 = 0, mu1 = 1, kappa2 = G2, v2 = s2 = 0.
  erf (Price / arcsine law: E[erf(X) erf(Y)] = (2/pi) asin(2 C / sqrt((1+2 V_X)(1+2 V_Y)))):
      mu1 = 2 / sqrt(pi (1 + 2 G2)); kappa2 = (2/pi) asin(2 G2 / (1 + 2 G2));
      m(u) = erf(e^{-t} u / sqrt(1 + 2 D)), so v2 = (2/pi) [asin(y) - y] with y = 2A / (1 + 2 G2);
      s2 = kappa2 - E m^2 - b^2 = (2/pi) [asin(x) - asin(y) - (x - y)], x = 2 G2 / (1 + 2 G2).
      The s2 form subtracts O(D) terms of relative size O(G2): not used by "auto".
  relu (first-order arc-cosine kernel: E[relu(X) relu(Y)] = G2/(2 pi) (sin th + (pi - th) cos th)):
      mu0 = sqrt(G2 / (2 pi)), mu1 = 1/2, kappa2 = G2 / 2,
      v2 = G2/(2 pi) [rho asin(rho) - rho^2 / (1 + sqrt(eps (2 - eps)))],
      s2 = D/4 - G2/(2 pi) [sin th - th cos th].
  sign (zeroth-order arc-cosine kernel: E[sign X sign Y] = (2/pi) asin(rho)):
      mu0 = 0, mu1 = sqrt(2 / (pi G2)), kappa2 = 1, v2 = (2/pi) [asin(rho) - rho],
      s2 = (2/pi) [th - eps].
  any odd activation: mu0 = 0.
"""
from __future__ import annotations

import sympy as sp

from ._activations import X, Activation
from ._codegen import AsinMinusX, KernelFunction, SinMinusXCos
from ._neuron_gep import neuron_kernel_functions

__all__ = ["COEFFICIENTS", "closed_forms", "kernel_functions"]

#: Order of the coefficient vector returned by every kernel.
COEFFICIENTS = ("mu0", "mu1", "kappa2", "v2", "s2")

_z, _gamma, _u, _zeta, _e, _sd = sp.symbols("z gamma u zeta e sd", real=True)
_A, _D = sp.symbols("A D", positive=True)


def _erf_s2() -> sp.Expr:
    """s2 for erf as (2/pi)[atan((p - q)/(1 + p q)) - (x - y)], with p - q derived without cancellation.

    asin(x) = atan(p), asin(y) = atan(q) with p = 2 G2 / sqrt(1 + 4 G2) and
    q = 2 A / sqrt((1 + 2D)(1 + 4A + 2D)); p - q = (p^2 - q^2)/(p + q) and SymPy factors
    p^2 - q^2 into D times a polynomial with positive coefficients, so no digits are lost.
    """
    g2 = _A + _D
    p = 2 * g2 / sp.sqrt(1 + 4 * g2)
    q = 2 * _A / sp.sqrt((1 + 2 * _D) * (1 + 4 * _A + 2 * _D))
    num, den = sp.fraction(sp.factor(sp.together(sp.expand(p**2 - q**2))))
    poly = sp.Poly(sp.expand(num / _D), _A, _D)
    if sp.expand(num - _D * poly.as_expr()) != 0 or any(c <= 0 for c in poly.coeffs()):
        raise AssertionError("erf s2: p^2 - q^2 is not D times a positive polynomial")
    p_minus_q = _D * poly.as_expr() / (den * (p + q))
    x_minus_y = 2 * _D / (1 + 2 * g2)
    return 2 / sp.pi * (sp.atan(p_minus_q / (1 + p * q)) - x_minus_y)


def closed_forms(activation: Activation) -> tuple[dict[str, sp.Expr], frozenset[str]]:
    """Closed forms of the coefficients in the symbols A = e^{-2t} sigma^2 and D = Delta_t.

    Returns
    -------
    forms : dict
        Coefficient name (one of :data:`COEFFICIENTS`) -> SymPy expression in A, D.
    stable : frozenset
        The names whose form is free of cancellation as t -> 0 (used by ``method="auto"``).
    """
    g2 = _A + _D
    rho, eps = _A / g2, _D / g2
    theta = 2 * sp.asin(sp.sqrt(eps / 2))
    table = {
        "linear": ({"mu0": sp.S.Zero, "mu1": sp.S.One, "kappa2": g2, "v2": sp.S.Zero,
                    "s2": sp.S.Zero}, COEFFICIENTS),
        "erf": ({"mu0": sp.S.Zero, "mu1": 2 / sp.sqrt(sp.pi * (1 + 2 * g2)),
                 "kappa2": 2 / sp.pi * sp.asin(2 * g2 / (1 + 2 * g2)),
                 "v2": 2 / sp.pi * AsinMinusX(2 * _A / (1 + 2 * g2)), "s2": _erf_s2()},
                ("mu0", "mu1", "kappa2", "v2")),
        "relu": ({"mu0": sp.sqrt(g2 / (2 * sp.pi)), "mu1": sp.Rational(1, 2), "kappa2": g2 / 2,
                  "v2": g2 / (2 * sp.pi) * (rho * sp.asin(rho)
                                            - rho**2 / (1 + sp.sqrt(eps * (2 - eps)))),
                  "s2": _D / 4 - g2 / (2 * sp.pi) * SinMinusXCos(theta)}, COEFFICIENTS),
        "sign": ({"mu0": sp.S.Zero, "mu1": sp.sqrt(2 / (sp.pi * g2)), "kappa2": sp.S.One,
                  "v2": 2 / sp.pi * AsinMinusX(rho), "s2": 2 / sp.pi * (theta - eps)},
                 COEFFICIENTS),
    }
    if activation.builtin and activation.name in table:
        forms, stable = table[activation.name]
        return dict(forms), frozenset(stable)
    if activation.odd:
        return {"mu0": sp.S.Zero}, frozenset({"mu0"})
    return {}, frozenset()


_F64_QUADRATURE = '''\
    e = math.exp(-t)
    delta = -math.expm1(-2.0 * t)
    sd = math.sqrt(delta)
    gamma = math.sqrt(e * e * variance + delta)
    su = math.sqrt(variance)
    mu0 = 0.0
    mu1 = 0.0
    kappa2 = 0.0
    for k in range(z_out.shape[0]):
        mu0 += w_out[k] * integrand_mu0(z_out[k], gamma)
        mu1 += w_out[k] * integrand_mu1(z_out[k], gamma)
        kappa2 += w_out[k] * integrand_kappa2(z_out[k], gamma)
    a = e * mu1
    b = sd * mu1
    v2 = 0.0
    s2 = 0.0
    f_in = np.empty(z_in.shape[0])
    for k in range(z_out.shape[0]):
        u = su * z_out[k]
        m = 0.0
        for j in range(z_in.shape[0]):
            f_in[j] = feature(u, z_in[j], e, sd)
            m += w_in[j] * f_in[j]
        r = m - mu0 - a * u
        v2 += w_out[k] * r * r
        c = 0.0
        for j in range(z_in.shape[0]):
            q = f_in[j] - m - b * z_in[j]
            c += w_in[j] * q * q
        s2 += w_out[k] * c
    out = np.empty(5)
    out[0] = mu0
    out[1] = mu1
    out[2] = kappa2
    out[3] = v2
    out[4] = s2
    return out
'''

_MP_QUADRATURE = '''\
    t = mpmath.mpf(t)
    variance = mpmath.mpf(variance)
    e = mpmath.exp(-t)
    delta = -mpmath.expm1(-2 * t)
    sd = mpmath.sqrt(delta)
    gamma = mpmath.sqrt(e * e * variance + delta)
    su = mpmath.sqrt(variance)
    mu0 = mpmath.fsum(w * integrand_mu0(z, gamma) for z, w in zip(z_out, w_out))
    mu1 = mpmath.fsum(w * integrand_mu1(z, gamma) for z, w in zip(z_out, w_out))
    kappa2 = mpmath.fsum(w * integrand_kappa2(z, gamma) for z, w in zip(z_out, w_out))
    a = e * mu1
    b = sd * mu1
    v2_terms = []
    s2_terms = []
    for z, w in zip(z_out, w_out):
        u = su * z
        f_in = [feature(u, zeta, e, sd) for zeta in z_in]
        m = mpmath.fsum(wj * fj for wj, fj in zip(w_in, f_in))
        r = m - mu0 - a * u
        v2_terms.append(w * r * r)
        c = mpmath.fsum(wj * (fj - m - b * zeta) ** 2 for wj, fj, zeta in zip(w_in, f_in, z_in))
        s2_terms.append(w * c)
    return [mu0, mu1, kappa2, mpmath.fsum(v2_terms), mpmath.fsum(s2_terms)]
'''

_F64_MANY = '''\
    out = np.empty((t.shape[0], 5))
    for i in range(t.shape[0]):
        out[i, :] = centered_quadrature(t[i], variance[i], z_out, w_out, z_in, w_in)
    return out
'''

_F64_CLOSED_PRELUDE = '''\
    A = math.exp(-2.0 * t) * variance
    D = -math.expm1(-2.0 * t)'''

_MP_CLOSED_PRELUDE = '''\
    A = mpmath.exp(-2 * t) * variance
    D = -mpmath.expm1(-2 * t)'''


def kernel_functions(activation: Activation) -> tuple[list[KernelFunction], str]:
    """The functions emitted for one activation, and the module-level constants.

    Emitted (both targets): ``sigma(x)``; the SymPy-derived integrands ``integrand_mu0(z, gamma)``,
    ``integrand_mu1(z, gamma)`` (Stein form), ``integrand_kappa2(z, gamma)`` and the feature
    ``feature(u, zeta, e, sd) = sigma(e u + sd zeta)``; the quadrature kernel
    ``centered_quadrature(t, variance, z_out, w_out, z_in, w_in)`` returning
    ``[mu0, mu1, kappa2, v2, s2]`` for a rule given by nodes and weights of the standard normal
    measure (outer in u / sigma and z, inner in zeta); ``centered_closed(t, variance)`` with the
    closed forms (nan / None where none exists); float64 only: ``centered_quadrature_many``.
    """
    sigma_of = activation.expr
    integrands = {
        "integrand_mu0": sigma_of.subs(X, _gamma * _z),
        "integrand_mu1": _z * sigma_of.subs(X, _gamma * _z) / _gamma,
        "integrand_kappa2": sigma_of.subs(X, _gamma * _z) ** 2,
    }
    fns = [KernelFunction("sigma", ("x",), (sigma_of,), "The activation sigma(x).", lift_args=True)]
    fns += [KernelFunction(name, ("z", "gamma"), (expr,), f"{name[10:]} integrand: {expr}")
            for name, expr in integrands.items()]
    fns.append(KernelFunction(
        "feature", ("u", "zeta", "e", "sd"), (sigma_of.subs(X, _e * _u + _sd * _zeta),),
        "The feature sigma(e u + sd zeta) at data part u and noise part zeta."))
    fns.append(KernelFunction(
        "centered_quadrature", ("t", "variance", "z_out", "w_out", "z_in", "w_in"),
        doc="[mu0, mu1, kappa2, v2, s2] of a centered class by a nested quadrature rule (gep.md §1).",
        body=(("f64", _F64_QUADRATURE), ("mp", _MP_QUADRATURE))))
    fns.append(KernelFunction(
        "centered_quadrature_many", ("t", "variance", "z_out", "w_out", "z_in", "w_in"),
        doc="centered_quadrature over arrays t[i], variance[i]; returns shape (n, 5).",
        body=(("f64", _F64_MANY), ("mp", "    return [centered_quadrature(ti, vi, z_out, w_out, "
                                         "z_in, w_in) for ti, vi in zip(t, variance)]\n"))))
    forms, stable = closed_forms(activation)
    nan = sp.Symbol("_NAN")
    exprs = tuple(forms.get(name, nan) for name in COEFFICIENTS)
    closed = KernelFunction(
        "centered_closed_tuple", ("t", "variance"), exprs,
        doc="Closed forms (mu0, mu1, kappa2, v2, s2) in A = e^{-2t} variance, D = Delta_t.",
        prelude=(("f64", _F64_CLOSED_PRELUDE), ("mp", _MP_CLOSED_PRELUDE)), lift_args=True)
    wrap_f64 = ("f64", "    c = centered_closed_tuple(t, variance)\n    out = np.empty(5)\n"
                + "".join(f"    out[{i}] = c[{i}]\n" for i in range(5)) + "    return out\n")
    wrap_mp = ("mp", "    return list(centered_closed_tuple(t, variance))\n")
    fns += [closed, KernelFunction("centered_closed", ("t", "variance"),
                                   doc="Closed forms as an array (nan / None where none exists).",
                                   body=(wrap_f64, wrap_mp))]
    available = tuple(n for n in COEFFICIENTS if n in forms)
    extra = (f"COEFFICIENTS = {COEFFICIENTS!r}\n"
             f"CLOSED_AVAILABLE = {available!r}\n"
             f"CLOSED_STABLE = {tuple(n for n in COEFFICIENTS if n in stable)!r}\n"
             f"SMOOTH = {activation.smooth!r}\n"
             f"ODD = {activation.odd!r}\n")
    # Per-neuron coefficients with a mean (extensive centroids): derived in ._neuron_gep.
    neuron_fns, neuron_extra = neuron_kernel_functions(activation)
    return fns + neuron_fns, extra + neuron_extra
