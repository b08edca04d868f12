"""Per-neuron GEP coefficients with a data mean (gep.md §1 "Generalization"; speciation.md §1.1).

Ladder of checks: speciation.md's sanity values; mean = 0 against the centered coefficients (the
same numbers, and the neuron quadrature as an independent path); closed forms with a mean (erf:
E erf(m + G z) = erf(m / sqrt(1 + 2 G^2)); relu, sign, linear) against quadrature; the closed
Gaussian smoothings of relu / sign against scipy quad; odd symmetry; the Nishimori identity for tanh;
float64 against the mpmath twin; Monte Carlo of the actual random features of a d-dimensional model
with an extensive centroid (stated seeds, 5 standard errors); bad input.
"""
import math

import numpy as np
import pytest
from scipy import integrate

from diffmix.derivations import (centered_coefficients, load_kernels, neuron_coefficients)
from diffmix.derivations._coefficients import QuadratureError
from diffmix.theory._cli import coefficients_main

from tolerances import CLOSED_VS_QUADRATURE, F64_VS_MP, MC_SIGMAS

NAMES = ("mu0", "mu1", "kappa2", "v_t2", "s_t2")


def _vec(c, i=None):
    return np.array([float(getattr(c, n) if i is None else getattr(c, n)[i]) for n in NAMES])


def test_speciation_reference_values():
    # speciation.md §1.1, "Sanity values (r=1, sigma_c=1)", printed with 5 digits.
    c = neuron_coefficients("tanh", 0.5, 1.0, 1.0)
    for got, ref in ((c.mu0, 0.55040), (c.mu1, 0.44960), (c.v_t2, 0.00499), (c.s_t2, 0.04033),
                     (c.ef2, 0.38230)):
        assert abs(got - ref) <= 5e-6, (got, ref)
    c0 = neuron_coefficients("tanh", 2.0, 1.0, 0.0)
    assert abs(c0.mu1 - 0.60571) <= 5e-6 and abs(c0.kappa2 - 0.39429) <= 5e-6
    assert abs(c0.s_t2 - 0.02742) <= 5e-6
    # Nishimori identity: E tanh(X) = E tanh(X)^2 for X ~ N(m, m) (here m = G^2 = 1).
    assert c.kappa2 == pytest.approx(c.mu0, rel=1e-13)


@pytest.mark.parametrize("act", ["tanh", "erf", "relu", "sign", "linear", "gelu"])
def test_mean_zero_is_centered(act):
    t, var = 0.1, 0.5
    cen = centered_coefficients(act, t, var)
    c = neuron_coefficients(act, t, var, np.array([0.0, 0.0]))
    for i in range(2):
        assert np.array_equal(_vec(c, i), _vec(cen))          # identical numbers (auto)
    assert neuron_coefficients(act, t, var, 0.0).a_t == cen.a_t
    # The neuron quadrature kernels themselves at mean 0 (an independent path for relu / sign:
    # outer rule over the closed smoothing instead of the centered closed forms).
    q = _vec(neuron_coefficients(act, t, var, 0.0, method="quadrature"))
    ref = _vec(cen)
    assert np.all(np.abs(q - ref) <= CLOSED_VS_QUADRATURE * np.maximum(np.abs(ref), ref[2])), q - ref


MEANS = np.array([-4.0, -1.3, -0.2, 0.35, 0.9, 2.5, 6.0])


@pytest.mark.parametrize("t, var", [(0.05, 1.0), (0.5, 0.3), (2.0, 2.0)])
def test_erf_closed_form_with_mean(t, var):
    c = neuron_coefficients("erf", t, var, MEANS, method="quadrature")
    G2 = math.exp(-2 * t) * var - math.expm1(-2 * t)
    mu0 = np.array([math.erf(m / math.sqrt(1 + 2 * G2)) for m in MEANS])
    mu1 = 2 * np.exp(-MEANS**2 / (1 + 2 * G2)) / math.sqrt(math.pi * (1 + 2 * G2))
    assert np.all(np.abs(c.mu0 - mu0) <= 1e-13 * np.maximum(np.abs(mu0), 1e-3))
    assert np.all(np.abs(c.mu1 - mu1) <= 1e-12 * np.maximum(mu1, 1e-3))
    assert np.allclose(c.gamma2, G2, rtol=1e-15)
    auto = neuron_coefficients("erf", t, var, MEANS)
    assert np.array_equal(auto.mu0, [float(load_kernels("erf").neuron_closed(
        m, math.exp(-t) * math.sqrt(var), math.sqrt(-math.expm1(-2 * t)))[0]) for m in MEANS])


@pytest.mark.parametrize("act", ["relu", "sign", "linear"])
@pytest.mark.parametrize("t, var", [(0.1, 1.0), (0.5, 0.3), (1.5, 2.0)])
def test_closed_forms_with_mean_against_quadrature(act, t, var):
    means = MEANS[np.abs(MEANS) < 5]
    closed = neuron_coefficients(act, t, var, means, method="auto")
    quad = neuron_coefficients(act, t, var, means, method="quadrature")
    for name in ("mu0", "mu1", "kappa2"):
        a, b = getattr(closed, name), getattr(quad, name)
        scale = np.maximum(np.abs(a), np.sqrt(closed.kappa2) * 1e-3)
        assert np.all(np.abs(a - b) <= CLOSED_VS_QUADRATURE * scale), (name, a - b)
    if act == "linear":
        G2 = closed.gamma2
        assert np.allclose(closed.kappa2, means**2 + G2, rtol=1e-15)
        assert np.all(np.abs(quad.v_t2) < 1e-28) and np.all(np.abs(quad.s_t2) < 1e-28)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("act", ["relu", "sign"])
def test_smoothings_against_scipy(act):
    kern = load_kernels(act)
    sigma = {"relu": lambda y: max(y, 0.0), "sign": lambda y: float(np.sign(y))}[act]
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    for x, sd in ((0.3, 0.2), (-0.4, 0.7), (1.5, 0.1)):
        kink = -x / sd
        q = lambda f: integrate.quad(lambda z: f(z) * phi(z), -40, 40, points=(kink,),
                                     epsabs=1e-15, epsrel=1e-13, limit=400)[0]
        f = q(lambda z: sigma(x + sd * z))
        var = q(lambda z: (sigma(x + sd * z) - f) ** 2)
        cov = q(lambda z: sigma(x + sd * z) * z)                 # = sd E sigma'(x + sd zeta)
        assert kern.neuron_smooth_f(x, sd) == pytest.approx(f, rel=1e-11, abs=1e-14)
        assert kern.neuron_smooth_var(x, sd) == pytest.approx(var, rel=1e-11, abs=1e-14)
        assert sd * kern.neuron_smooth_h(x, sd) == pytest.approx(cov, rel=1e-11, abs=1e-14)


@pytest.mark.parametrize("act", ["tanh", "erf", "sign", "sigmoid-centered"])
def test_odd_symmetry(act):
    c = neuron_coefficients(act, 0.2, 0.7, np.concatenate([MEANS, -MEANS]))
    n = MEANS.size
    scale = np.sqrt(c.kappa2[:n])
    assert np.all(np.abs(c.mu0[:n] + c.mu0[n:]) <= 1e-14 * scale)
    for name in ("mu1", "kappa2", "v_t2", "s_t2"):
        v = getattr(c, name)
        assert np.all(np.abs(v[:n] - v[n:]) <= 1e-13 * np.maximum(np.abs(v[:n]), 1e-3 * scale)), name


def test_identity_and_row_norm():
    # kappa2 = mu0^2 + r^2 sigma^2 a^2 + v2 + r^2 b^2 + s2 (gep.md §1 identity, per neuron).
    t, var = 0.3, 0.6
    m, r = np.array([0.4, -1.7, 2.2]), np.array([0.8, 1.0, 1.3])
    c = neuron_coefficients("tanh", t, var, m, row_norm=r)
    total = c.mu0**2 + r**2 * var * c.a_t**2 + c.v_t2 + r**2 * c.b_t**2 + c.s_t2
    assert np.allclose(total, c.kappa2, rtol=1e-13)
    assert np.allclose(c.ef2 + r**2 * c.b_t**2 + c.s_t2, c.kappa2, rtol=1e-13)
    # r scales both fluctuations: G^2 = r^2 Gamma^2.
    assert np.allclose(c.gamma2, r**2 * (math.exp(-2 * t) * var - math.expm1(-2 * t)), rtol=1e-15)


@pytest.mark.parametrize("act, m", [("tanh", 0.8), ("tanh", -3.5), ("relu", 0.8), ("relu", -1.2)])
def test_f64_against_mp_twin(act, m):
    c64 = neuron_coefficients(act, 0.3, 0.5, m)
    cmp = neuron_coefficients(act, 0.3, 0.5, m, dps=30)
    for name in NAMES:
        ref = float(getattr(cmp, name))
        assert abs(getattr(c64, name) - ref) <= F64_VS_MP * abs(ref), name


def _mc_features(t, var, mu_norm, rows, seed, n_x=4000, n_xi=16, d=64, p=6):
    """Actual features tanh(W x_t / sqrt d) of class samples x_0 = mu + sigma z (one class)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p, d))
    if rows == "normalised":
        W *= math.sqrt(d) / np.linalg.norm(W, axis=1, keepdims=True)
    mu = np.zeros(d)
    mu[:3] = mu_norm * math.sqrt(d) * np.array([1.0, -0.6, 0.3]) / math.sqrt(1.45)
    e, sd = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    r = np.linalg.norm(W, axis=1) / math.sqrt(d)
    m = e * W @ mu / math.sqrt(d)                                 # m_{c,i}, includes e^{-t}
    Z = rng.standard_normal((n_x, d))
    u = (math.sqrt(var) * Z) @ W.T / math.sqrt(d)                 # (n_x, p) data fluctuation
    Xi = rng.standard_normal((n_x, n_xi, d))
    zeta = Xi @ W.T / math.sqrt(d)                                # (n_x, n_xi, p) noise part
    phi = np.tanh(m + e * u[:, None, :] + sd * zeta)
    return m, r, u, zeta, phi


@pytest.mark.parametrize("t, var, mu_norm, rows, seed", [
    (0.1, 0.5, 1.0, "normalised", 11), (0.5, 1.0, 3.5, "gaussian", 12),
    (1.0, 0.25, 8.0, "gaussian", 13)])
def test_monte_carlo_actual_features(t, var, mu_norm, rows, seed):
    m, r, u, zeta, phi = _mc_features(t, var, mu_norm, rows, seed)
    c = neuron_coefficients("tanh", t, var, m, row_norm=r)
    n_x, n_xi = phi.shape[:2]
    e, sd = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    assert np.max(np.abs(m)) > (2.0 if mu_norm >= 3 else 0.3)     # saturation reached where meant
    # per-sample (group) statistics: groups are independent, so SE = std over groups / sqrt(n_x)
    g_mu0 = phi.mean(1)
    g_k2 = (phi**2).mean(1)
    g_mu1 = ((phi * (e * u[:, None, :] + sd * zeta)).mean(1)) / c.gamma2   # Stein: E[sigma(h) h~]/G^2
    q = phi - c.b_t * zeta                                        # E[q | x_0] = m(u): no b bias
    within = q.var(1, ddof=1)                                     # unbiased E[(sigma - m - b zeta)^2 | u]
    g_s2 = within
    lin = c.mu0 + c.a_t * u                                       # a_t u = e^{-t} mu1 u
    g_v2 = (phi.mean(1) - lin) ** 2 - phi.var(1, ddof=1) / n_xi  # unbiased for (m(u) - mu0 - a u)^2
    for name, g in (("mu0", g_mu0), ("kappa2", g_k2), ("mu1", g_mu1), ("s_t2", g_s2), ("v_t2", g_v2)):
        est, se = g.mean(0), g.std(0, ddof=1) / math.sqrt(n_x)
        dev = np.abs(est - getattr(c, name)) / se
        assert np.all(dev < MC_SIGMAS), (name, est, getattr(c, name), se)


def test_bad_input_names_parameter():
    with pytest.raises(ValueError, match="mean"):
        neuron_coefficients("tanh", 0.1, 0.5, [0.1, np.nan])
    with pytest.raises(ValueError, match="row_norm"):
        neuron_coefficients("tanh", 0.1, 0.5, 0.3, row_norm=0.0)
    with pytest.raises(ValueError, match="row_norm"):
        neuron_coefficients("tanh", 0.1, 0.5, [0.3, 0.2], row_norm=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="variance"):
        neuron_coefficients("tanh", 0.1, -0.5, 0.3)
    with pytest.raises(ValueError, match="^t "):
        neuron_coefficients("tanh", 0.0, 0.5, 0.3)
    with pytest.raises(ValueError, match="dps"):
        neuron_coefficients("tanh", 0.1, 0.5, 0.3, dps=3)
    with pytest.raises(ValueError, match="method"):
        neuron_coefficients("gelu", 0.1, 0.5, 0.3, method="closed")


def test_cli_mean(capsys):
    import json
    assert coefficients_main(["--activation", "tanh", "--t", "0.1", "--variance", "0.5",
                              "--mean", "0.7", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    c = neuron_coefficients("tanh", 0.1, 0.5, 0.7)
    assert out["mean"] == 0.7 and out["mu0"] == c.mu0 and out["s_t2"] == c.s_t2
    assert coefficients_main(["--activation", "tanh", "--t", "0.1", "--variance", "0.5",
                              "--mean", "0.7"]) == 0
    assert "mean = 0.7" in capsys.readouterr().out
    assert coefficients_main(["--activation", "tanh", "--t", "0.1", "--variance", "0.5",
                              "--mean", "inf"]) == 2
    assert "--mean" in capsys.readouterr().err
    assert coefficients_main(["--activation", "tanh", "--t", "0.1", "--variance", "0.5",
                              "--row-norm", "2"]) == 2
    assert "--row-norm" in capsys.readouterr().err


@pytest.mark.parametrize("act", ["relu", "sign"])
def test_kinked_activation_falls_back_to_trapezoid(act):
    # Regression: at t = 1e-3 the Gauss-Hermite ladder cannot resolve the kink of relu / sign next
    # to the mean and raised; the automatic rule now redoes those points with the trapezoid ladder.
    means = np.linspace(-1.0, 1.0, 5)
    with pytest.raises(QuadratureError):
        neuron_coefficients(act, 1e-3, 0.5, means, rule="gauss-hermite")
    auto = neuron_coefficients(act, 1e-3, 0.5, means)
    trap = neuron_coefficients(act, 1e-3, 0.5, means, rule="trapezoid")
    assert np.all(auto.converged) and "fallback" in auto.methods
    for name in ("mu0", "mu1", "v_t2", "s_t2"):
        assert np.array_equal(getattr(auto, name), getattr(trap, name))
    # Smooth activations never take the fallback (their Gauss-Hermite ladder is the reference).
    assert "fallback" not in neuron_coefficients("tanh", 1e-3, 0.5, means).methods


def test_closed_method_without_closed_forms_raises():
    """method='closed' names the coefficients that lack a closed form (centered and with a mean)."""
    with pytest.raises(ValueError, match=r"'tanh' has no closed form for mu1, kappa2, v2, s2 \(available: mu0\)"):
        centered_coefficients("tanh", 0.1, 0.5, method="closed")
    with pytest.raises(ValueError, match=r"'tanh' has no closed form with a mean for mu0, .* \(available: none\)"):
        neuron_coefficients("tanh", 0.1, 0.5, 0.3, method="closed")
    # linear has every closed form with a mean: method='closed' equals the quadrature
    closed = neuron_coefficients("linear", 0.1, 0.5, 0.3, method="closed")
    quad = neuron_coefficients("linear", 0.1, 0.5, 0.3, method="quadrature")
    assert closed.v_t2 == pytest.approx(quad.v_t2, rel=1e-10, abs=1e-14)
