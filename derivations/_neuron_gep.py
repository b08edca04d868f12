"""Symbolic derivation of the per-neuron (vector) GEP coefficients: a pre-activation with a mean.

For neuron i and class c with an extensive centroid (gep.md §1, "Generalization to a neuron with a
mean (extensive centroid)"; speciation.md §1.1, paper App. D-E, eqs. (47)-(53)) the pre-activation of
a class-c sample at time t is

    h = mean + su z + sd zeta,     z, zeta ~ N(0, 1) independent,
    mean = m_{c,i} = e^{-t} w_i.mu_c / sqrt(d)     (speciation.md's m_{c,i}: INCLUDES e^{-t};
                                                     gep.md's e^{-t} m_{ic})
    su = e^{-t} r_i sigma_c   (data fluctuation),    sd = r_i sqrt(Delta_t)   (diffusion noise),
    G^2 = su^2 + sd^2 = r_i^2 Gamma_{c,t}^2,         r_i = ||w_i|| / sqrt(d) (1 for the paper formula).

Coefficients (all scale-free in z, zeta; a and b are formed by the caller as in speciation.md):

    mu0    = E sigma(mean + G z)
    mu1    = E sigma'(mean + G z) = E[z sigma(mean + G z)] / G          (Stein: no derivative of a kink)
    kappa2 = E sigma(mean + G z)^2
    a_t    = e^{-t} mu1,     b_t = sqrt(Delta_t) mu1
    f(x)   = E_zeta sigma(x + sd zeta)                                  (noise-averaged activation)
    v2     = E_z[ (f(mean + su z) - mu0 - su mu1 z)^2 ]                 (= Ef2 - mu0^2 - r^2 sigma^2 a^2)
    s2     = E_z E_zeta[ (sigma(h) - f(mean + su z) - sd mu1 zeta)^2 ]  (= kappa2 - Ef2 - r^2 b^2)

(su mu1 z is gep.md's a_{ic} u with u = r sigma z; sd mu1 zeta is its b_{ic} zeta with zeta ~ N(0, r^2).)
s2 is one integral of a non-negative integrand (gep.md §1, "Numerical advice"), never a difference.

Inner integral.  Smooth activations: a quadrature in zeta.  Activations with a kink or jump (relu,
sign) and linear: the Gaussian smoothing f, the conditional variance and the mean slope

    f(x) = E sigma(x + sd zeta),  var(x) = Var_zeta sigma(x + sd zeta),  h(x) = E sigma'(x + sd zeta)

are closed forms (table below), so the inner residual is exact,
c(x) = E_zeta[(sigma - f - beta zeta)^2] = var(x) - 2 beta sd h(x) + beta^2 (beta = sd mu1; E[sigma zeta] = sd h
by Stein), and every outer integrand (f, h, var + f^2, (f - mu0 - su mu1 z)^2, c) is smooth: the outer
quadrature then converges geometrically instead of algebraically.  With s = x / sd, Phi, Phic = 1 - Phi, phi:

    relu:   f = x Phi + sd phi,   h = Phi,   var = sd^2 (s^2 Phi Phic + Phi + s phi (Phic - Phi) - phi^2)
    sign:   f = erf(s / sqrt 2),  h = 2 phi / sd,   var = 4 Phi Phic
    linear: f = x,  h = 1,  var = sd^2

Closed forms of the coefficients with a mean (M = mean, G^2 = su^2 + sd^2, s = M / G):

    linear: mu0 = M, mu1 = 1, kappa2 = M^2 + G^2, v2 = s2 = 0
    erf:    mu0 = erf(M / sqrt(1 + 2 G^2)),  mu1 = 2 exp(-M^2 / (1 + 2 G^2)) / sqrt(pi (1 + 2 G^2))
            (kappa2, v2, s2 need the bivariate normal law (Owen's T): quadrature)
    relu:   mu0 = M Phi(s) + G phi(s), mu1 = Phi(s), kappa2 = (M^2 + G^2) Phi(s) + M G phi(s)
            (absolute accuracy ~1e-16 G; relative digits are lost for s << -3, where mu0 ~ G phi(s)/s^2)
    sign:   mu0 = erf(s / sqrt 2), mu1 = 2 phi(s) / G, kappa2 = 1
All reduce to the centered table of :mod:`._gep` at M = 0.
"""
from __future__ import annotations

import sympy as sp

from ._activations import X, Activation
from ._codegen import KernelFunction, NormalCdf

__all__ = ["NEURON_COEFFICIENTS", "neuron_closed_forms", "neuron_kernel_functions",
           "smoothing_forms"]

#: Order of the coefficient vector returned by every neuron kernel (same as the centered one).
NEURON_COEFFICIENTS = ("mu0", "mu1", "kappa2", "v2", "s2")

_z, _mean, _gamma, _x, _zeta = sp.symbols("z mean gamma x zeta", real=True)
_sd, _su, _beta = sp.symbols("sd su beta", real=True)
_G2 = sp.Symbol("G2", positive=True)


def _Phi(s):
    return NormalCdf(s)


def _Phic(s):
    return NormalCdf(-s)


def _phi(s):
    return sp.exp(-s**2 / 2) / sp.sqrt(2 * sp.pi)


def smoothing_forms(activation: Activation) -> dict[str, sp.Expr] | None:
    """Closed Gaussian smoothings f(x), var(x), h(x) in the symbols x, sd (module docstring), or None."""
    if not activation.builtin:
        return None
    s = _x / _sd
    P, Pc, p = _Phi(s), _Phic(s), _phi(s)
    table = {
        "relu": {"f": _x * P + _sd * p, "h": P,
                 "var": _sd**2 * (s**2 * P * Pc + P + s * p * (Pc - P) - p**2)},
        "sign": {"f": sp.erf(s / sp.sqrt(2)), "h": 2 * p / _sd, "var": 4 * P * Pc},
        "linear": {"f": _x, "h": sp.S.One, "var": _sd**2},
    }
    return table.get(activation.name)


def neuron_closed_forms(activation: Activation) -> tuple[dict[str, sp.Expr], frozenset[str]]:
    """Closed forms with a mean, in the symbols ``mean`` and ``G2`` = G^2 (module docstring).

    Returns the forms (coefficient name -> expression) and the names used by ``method="auto"``.
    """
    M, G = _mean, sp.sqrt(_G2)
    s = M / G
    q = 1 + 2 * _G2
    table = {
        "linear": {"mu0": M, "mu1": sp.S.One, "kappa2": M**2 + _G2, "v2": sp.S.Zero,
                   "s2": sp.S.Zero},
        "erf": {"mu0": sp.erf(M / sp.sqrt(q)), "mu1": 2 * sp.exp(-M**2 / q) / sp.sqrt(sp.pi * q)},
        "relu": {"mu0": M * _Phi(s) + G * _phi(s), "mu1": _Phi(s),
                 "kappa2": (M**2 + _G2) * _Phi(s) + M * G * _phi(s)},
        "sign": {"mu0": sp.erf(s / sp.sqrt(2)), "mu1": 2 * _phi(s) / G, "kappa2": sp.S.One},
    }
    if activation.builtin and activation.name in table:
        forms = table[activation.name]
        return dict(forms), frozenset(forms)
    return {}, frozenset()


_F64_NEURON_QUADRATURE = '''\
    gamma = math.sqrt(su * su + sd * sd)
    mu0 = 0.0
    mu1 = 0.0
    kappa2 = 0.0
    for k in range(z_out.shape[0]):
        mu0 += w_out[k] * neuron_integrand_mu0(z_out[k], mean, gamma)
        mu1 += w_out[k] * neuron_integrand_mu1(z_out[k], mean, gamma)
        kappa2 += w_out[k] * neuron_integrand_kappa2(z_out[k], mean, gamma)
    beta = sd * mu1
    v2 = 0.0
    s2 = 0.0
    f_in = np.empty(z_in.shape[0])
    for k in range(z_out.shape[0]):
        x = mean + su * z_out[k]
        m = 0.0
        for j in range(z_in.shape[0]):
            f_in[j] = neuron_feature(x, z_in[j], sd)
            m += w_in[j] * f_in[j]
        r = m - mu0 - su * mu1 * z_out[k]
        v2 += w_out[k] * r * r
        c = 0.0
        for j in range(z_in.shape[0]):
            q = f_in[j] - m - beta * z_in[j]
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

_MP_NEURON_QUADRATURE = '''\
    mean = mpmath.mpf(mean)
    su = mpmath.mpf(su)
    sd = mpmath.mpf(sd)
    gamma = mpmath.sqrt(su * su + sd * sd)
    mu0 = mpmath.fsum(w * neuron_integrand_mu0(z, mean, gamma) for z, w in zip(z_out, w_out))
    mu1 = mpmath.fsum(w * neuron_integrand_mu1(z, mean, gamma) for z, w in zip(z_out, w_out))
    kappa2 = mpmath.fsum(w * neuron_integrand_kappa2(z, mean, gamma) for z, w in zip(z_out, w_out))
    beta = sd * mu1
    v2_terms = []
    s2_terms = []
    for z, w in zip(z_out, w_out):
        x = mean + su * z
        f_in = [neuron_feature(x, zeta, sd) for zeta in z_in]
        m = mpmath.fsum(wj * fj for wj, fj in zip(w_in, f_in))
        r = m - mu0 - su * mu1 * z
        v2_terms.append(w * r * r)
        c = mpmath.fsum(wj * (fj - m - beta * zeta) ** 2 for wj, fj, zeta in zip(w_in, f_in, z_in))
        s2_terms.append(w * c)
    return [mu0, mu1, kappa2, mpmath.fsum(v2_terms), mpmath.fsum(s2_terms)]
'''

# Smoothed path: the inner integral is closed (neuron_smooth_f, _h, _var), every outer integrand smooth.
_F64_NEURON_SMOOTHED = '''\
    mu0 = 0.0
    mu1 = 0.0
    kappa2 = 0.0
    for k in range(z_out.shape[0]):
        x = mean + su * z_out[k]
        f = neuron_smooth_f(x, sd)
        mu0 += w_out[k] * f
        mu1 += w_out[k] * neuron_smooth_h(x, sd)
        kappa2 += w_out[k] * (neuron_smooth_var(x, sd) + f * f)
    beta = sd * mu1
    v2 = 0.0
    s2 = 0.0
    for k in range(z_out.shape[0]):
        x = mean + su * z_out[k]
        r = neuron_smooth_f(x, sd) - mu0 - su * mu1 * z_out[k]
        v2 += w_out[k] * r * r
        c = neuron_smooth_var(x, sd) - 2.0 * beta * sd * neuron_smooth_h(x, sd) + beta * beta
        s2 += w_out[k] * max(c, 0.0)
    out = np.empty(5)
    out[0] = mu0
    out[1] = mu1
    out[2] = kappa2
    out[3] = v2
    out[4] = s2
    return out
'''

_MP_NEURON_SMOOTHED = '''\
    mean = mpmath.mpf(mean)
    su = mpmath.mpf(su)
    sd = mpmath.mpf(sd)
    xs = [mean + su * z for z in z_out]
    fs = [neuron_smooth_f(x, sd) for x in xs]
    hs = [neuron_smooth_h(x, sd) for x in xs]
    vs = [neuron_smooth_var(x, sd) for x in xs]
    mu0 = mpmath.fsum(w * f for w, f in zip(w_out, fs))
    mu1 = mpmath.fsum(w * h for w, h in zip(w_out, hs))
    kappa2 = mpmath.fsum(w * (v + f * f) for w, v, f in zip(w_out, vs, fs))
    beta = sd * mu1
    v2 = mpmath.fsum(w * (f - mu0 - su * mu1 * z) ** 2 for w, f, z in zip(w_out, fs, z_out))
    s2 = mpmath.fsum(w * max(v - 2 * beta * sd * h + beta * beta, 0)
                     for w, v, h in zip(w_out, vs, hs))
    return [mu0, mu1, kappa2, v2, s2]
'''

_F64_NEURON_MANY = '''\
    out = np.empty((mean.shape[0], 5))
    for i in range(mean.shape[0]):
        out[i, :] = neuron_quadrature(mean[i], su[i], sd[i], z_out, w_out, z_in, w_in)
    return out
'''

_F64_NEURON_CLOSED_PRELUDE = "    G2 = su * su + sd * sd"
_MP_NEURON_CLOSED_PRELUDE = "    G2 = su * su + sd * sd"


def neuron_kernel_functions(activation: Activation) -> tuple[list[KernelFunction], str]:
    """The per-neuron functions emitted for one activation, and their module-level constants.

    Emitted (both targets): ``neuron_integrand_mu0/mu1/kappa2(z, mean, gamma)`` (SymPy:
    sigma(mean + gamma z), z sigma(mean + gamma z) / gamma, sigma(mean + gamma z)^2),
    ``neuron_feature(x, zeta, sd) = sigma(x + sd zeta)``; where a closed smoothing exists
    ``neuron_smooth_f/h/var(x, sd)``; the kernel ``neuron_quadrature(mean, su, sd, z_out, w_out,
    z_in, w_in)`` returning ``[mu0, mu1, kappa2, v2, s2]`` (module docstring of this file);
    ``neuron_closed(mean, su, sd)`` (nan / None where no closed form); float64 only:
    ``neuron_quadrature_many`` over arrays mean[i], su[i], sd[i].
    """
    sig = activation.expr
    h = sig.subs(X, _mean + _gamma * _z)
    integrands = {"neuron_integrand_mu0": h, "neuron_integrand_mu1": _z * h / _gamma,
                  "neuron_integrand_kappa2": h**2}
    fns = [KernelFunction(name, ("z", "mean", "gamma"), (expr,),
                          f"{name[17:]} integrand with a mean: {expr}")
           for name, expr in integrands.items()]
    fns.append(KernelFunction("neuron_feature", ("x", "zeta", "sd"), (sig.subs(X, _x + _sd * _zeta),),
                              "The feature sigma(x + sd zeta) at data part x and noise part zeta."))
    smooth = smoothing_forms(activation)
    args = ("mean", "su", "sd", "z_out", "w_out", "z_in", "w_in")
    doc = ("[mu0, mu1, kappa2, v2, s2] of a neuron with pre-activation mean + su z + sd zeta "
           "(gep.md §1 'Generalization'; speciation.md §1.1)")
    if smooth is None:
        fns.append(KernelFunction("neuron_quadrature", args, doc=doc + " by a nested rule.",
                                  body=(("f64", _F64_NEURON_QUADRATURE),
                                        ("mp", _MP_NEURON_QUADRATURE))))
    else:
        for key, what in (("f", "E sigma(x + sd zeta)"), ("h", "E sigma'(x + sd zeta)"),
                          ("var", "Var sigma(x + sd zeta)")):
            fns.append(KernelFunction(f"neuron_smooth_{key}", ("x", "sd"), (smooth[key],),
                                      f"Closed Gaussian smoothing {what}: {smooth[key]}"))
        fns.append(KernelFunction("neuron_quadrature", args,
                                  doc=doc + ": outer rule, inner integral closed.",
                                  body=(("f64", _F64_NEURON_SMOOTHED), ("mp", _MP_NEURON_SMOOTHED))))
    fns.append(KernelFunction(
        "neuron_quadrature_many", args, doc="neuron_quadrature over arrays mean[i], su[i], sd[i]; "
        "returns shape (n, 5).",
        body=(("f64", _F64_NEURON_MANY), ("mp", "    return [neuron_quadrature(m, a, b, z_out, w_out, "
                                                "z_in, w_in) for m, a, b in zip(mean, su, sd)]\n"))))
    forms, stable = neuron_closed_forms(activation)
    nan = sp.Symbol("_NAN")
    exprs = tuple(forms.get(name, nan) for name in NEURON_COEFFICIENTS)
    fns.append(KernelFunction(
        "neuron_closed_tuple", ("mean", "su", "sd"), exprs,
        doc="Closed forms (mu0, mu1, kappa2, v2, s2) with a mean, in G2 = su^2 + sd^2.",
        prelude=(("f64", _F64_NEURON_CLOSED_PRELUDE), ("mp", _MP_NEURON_CLOSED_PRELUDE)),
        lift_args=True))
    wrap_f64 = ("f64", "    c = neuron_closed_tuple(mean, su, sd)\n    out = np.empty(5)\n"
                + "".join(f"    out[{i}] = c[{i}]\n" for i in range(5)) + "    return out\n")
    wrap_mp = ("mp", "    return list(neuron_closed_tuple(mean, su, sd))\n")
    fns.append(KernelFunction("neuron_closed", ("mean", "su", "sd"),
                              doc="Closed forms with a mean as an array (nan / None where none).",
                              body=(wrap_f64, wrap_mp)))
    available = tuple(n for n in NEURON_COEFFICIENTS if n in forms)
    extra = (f"NEURON_CLOSED_AVAILABLE = {available!r}\n"
             f"NEURON_CLOSED_STABLE = {tuple(n for n in NEURON_COEFFICIENTS if n in stable)!r}\n"
             f"NEURON_SMOOTHED = {smooth is not None!r}\n")
    return fns, extra
