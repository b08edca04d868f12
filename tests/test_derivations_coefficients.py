"""GEP coefficients of a centered class (gep.md §1) against independent computations.

Ladder of checks: the reference table of gep.md (GH 300x120 and scipy quad there); closed forms
against quadrature; two quadrature families against each other; scipy.integrate.quad split at the
kink for relu and sign; Monte Carlo of the features; exact polynomial moments for a user
expression; float64 against the mpmath twin; 30 against 50 digits; t -> 0 and t -> infinity.
"""
import math

import mpmath
import numpy as np
import pytest
from scipy import integrate

from diffmix.derivations import (QuadratureError, centered_coefficients,
                                 centered_coefficients_array, load_kernels)

from tolerances import (CLOSED_VS_QUADRATURE, CLOSED_VS_SCIPY_QUAD, DIGITS_30_VS_50,
                        F64_VS_MP, GH_VS_TRAPEZOID, MC_SIGMAS, REFERENCE_TABLE)

NAMES = ("mu0", "mu1", "kappa2", "v_t2", "s_t2")


def _vec(c):
    return np.array([float(getattr(c, n)) for n in NAMES])


def _rel(x, y, floor=1e-300):
    return np.abs(np.asarray(x, float) - np.asarray(y, float)) / np.maximum(np.abs(y), floor)


# gep.md §1, "Reference values, tanh": sigma^2, t, mu1, a, b, v^2, s^2, kappa^2
GEP_TABLE = [
    (1, 0.01, 6.0570550960216e-01, 5.9967863908257e-01, 8.5233175410076e-02, 2.5541776444365e-02, 1.8735495910654e-03, 3.9429449039784e-01),
    (0.5, 0.001, 7.2599962226002e-01, 7.2527398551660e-01, 3.2451463057255e-02, 9.8069246117660e-03, 1.2917864008997e-04, 2.7400037773998e-01),
    (0.25, 0.001, 8.2573700134845e-01, 8.2491167707802e-01, 3.6909624981417e-02, 2.7124780258603e-03, 6.8381464500640e-05, 1.7426299865155e-01),
    (0.5, 0.01, 7.2313262140588e-01, 7.1593733160150e-01, 1.0175718825064e-01, 8.9879383664908e-03, 1.2417834766145e-03, 2.7686737859412e-01),
    (0.25, 0.01, 8.1918215420061e-01, 8.1103115557659e-01, 1.1527300831000e-01, 2.4224958124858e-03, 6.6459971309415e-04, 1.8081784579939e-01),
    (1, 0.1, 6.0570550960216e-01, 5.4806500939857e-01, 2.5788351989872e-01, 1.3841453738220e-02, 1.3573872297211e-02, 3.9429449039784e-01),
]


@pytest.mark.parametrize("row", GEP_TABLE, ids=lambda r: f"var{r[0]}-t{r[1]}")
def test_tanh_reference_table(row):
    var, t, *ref = row
    c = centered_coefficients("tanh", t, var)
    got = [c.mu1, c.a_t, c.b_t, c.v_t2, c.s_t2, c.kappa2]
    assert np.all(_rel(got, ref) < REFERENCE_TABLE), _rel(got, ref)
    assert abs(c.mu0) < 1e-16
    # identity of gep.md §1: kappa^2 = mu0^2 + a^2 sigma^2 + v^2 + b^2 + s^2 (quadrature, tanh)
    assert c.mu0**2 + c.a_t**2 * var + c.v_t2 + c.b_t**2 + c.s_t2 == pytest.approx(c.kappa2, rel=1e-14)


POINTS = [(0.01, 1.0), (0.1, 0.5), (1.0, 2.0), (0.3, 0.05)]


@pytest.mark.parametrize("name", ["erf", "linear"])
@pytest.mark.parametrize("t, var", POINTS)
def test_closed_forms_against_quadrature(name, t, var):
    closed = _vec(centered_coefficients(name, t, var, method="closed"))
    quad = _vec(centered_coefficients(name, t, var, method="quadrature"))
    scale = closed[2]  # kappa2: absolute floor for coefficients that vanish (mu0, linear v2, s2)
    assert np.all(np.abs(closed - quad) <= CLOSED_VS_QUADRATURE * np.maximum(np.abs(closed), scale))


def _scipy_reference(sigma, t, var):
    """Nested scipy.integrate.quad with the kink as a breakpoint (independent of our kernels)."""
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    e, D = math.exp(-t), -math.expm1(-2 * t)
    sd, G, su = math.sqrt(D), math.sqrt(e * e * var + D), math.sqrt(var)

    def q(f, kink=0.0):
        return integrate.quad(lambda z: f(z) * phi(z), -40, 40, points=(kink,), epsabs=1e-15,
                              epsrel=1e-13, limit=400)[0]

    mu0, mu1, kappa2 = q(lambda z: sigma(G * z)), q(lambda z: z * sigma(G * z)) / G, \
        q(lambda z: sigma(G * z) ** 2)
    a, b = e * mu1, sd * mu1
    m = lambda u: q(lambda z: sigma(e * u + sd * z), -e * u / sd)
    v2 = q(lambda z: (m(su * z) - mu0 - a * su * z) ** 2)

    def cond_var(u):
        mu = m(u)
        return q(lambda z: (sigma(e * u + sd * z) - mu - b * z) ** 2, -e * u / sd)

    return np.array([mu0, mu1, kappa2, v2, q(lambda z: cond_var(su * z))])


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("name, sigma", [("relu", lambda x: max(0.0, x)),
                                         ("sign", lambda x: math.copysign(1.0, x) if x else 0.0)])
@pytest.mark.parametrize("t, var", POINTS[:3])
def test_kinked_closed_forms_against_scipy_quad(name, sigma, t, var):
    closed = _vec(centered_coefficients(name, t, var))
    assert all(m == "closed" for m in centered_coefficients(name, t, var).methods.values())
    ref = _scipy_reference(sigma, t, var)
    assert np.all(np.abs(closed - ref) <= CLOSED_VS_SCIPY_QUAD * np.maximum(np.abs(ref), 1e-3))


@pytest.mark.parametrize("name", ["tanh", "gelu", "sigmoid-centered", "erf"])
def test_gauss_hermite_against_trapezoid(name):
    t = np.array([1e-4, 0.003, 0.1, 1.0, 3.0])
    var = np.array([0.25, 1.0, 0.5, 2.0, 0.1])
    gh = centered_coefficients_array(name, t, var, method="quadrature", rule="gauss-hermite")
    tr = centered_coefficients_array(name, t, var, method="quadrature", rule="trapezoid")
    for n in NAMES:
        x, y = getattr(gh, n), getattr(tr, n)
        assert np.all(np.abs(x - y) <= GH_VS_TRAPEZOID * np.maximum(np.abs(y), 1e-3 * gh.kappa2**0.5)), n


def _mc(sigma, t, var, seed, n=10**6, k=4):
    """Monte Carlo of the features sigma(e^{-t} u + sqrt(Delta) zeta) with n data samples u and k
    noise draws each.  For a neuron with ||w||^2 = d this is exactly the pre-activation
    w.x_t / sqrt(d) of the random-features model (gep.md §0).  Returns estimates and standard
    errors of mu0, mu1 (Stein: E[h sigma(h)] / Gamma^2), kappa2, and, given the exact a, b, mu0,
    v2 (pairs of noise draws sharing u) and s2 (per-u unbiased variance of sigma(h) - b zeta)."""
    rng = np.random.default_rng(seed)
    e, D = math.exp(-t), -math.expm1(-2 * t)
    G2 = e * e * var + D
    u = math.sqrt(var) * rng.standard_normal(n)
    zeta = rng.standard_normal((n, k))
    h = e * u[:, None] + math.sqrt(D) * zeta
    f = sigma(h)
    return u, zeta, f, h, G2


def _mean_se(x):
    return x.mean(), x.std(ddof=1) / math.sqrt(x.size)


MC_CASES = [(name, t, var) for name in ("tanh", "erf", "relu")
            for t in (0.001, 0.05, 1.0) for var in (0.25, 1.0, 3.0)]
SIGMAS = {"tanh": np.tanh, "erf": lambda x: __import__("scipy.special").special.erf(x),
          "relu": lambda x: np.maximum(x, 0.0)}


@pytest.mark.parametrize("name, t, var", MC_CASES)
def test_monte_carlo_of_features(name, t, var):
    seed = 1000 + MC_CASES.index((name, t, var))
    c = centered_coefficients(name, t, var)
    u, zeta, f, h, G2 = _mc(SIGMAS[name], t, var, seed)
    k = f.shape[1]
    checks = {
        "mu0": (f.mean(axis=1), c.mu0),
        "mu1": ((h * f).mean(axis=1) / G2, c.mu1),
        "kappa2": ((f * f).mean(axis=1), c.kappa2),
    }
    r = f - c.mu0 - c.a_t * u[:, None]
    checks["v_t2"] = ((r.sum(axis=1) ** 2 - (r * r).sum(axis=1)) / (k * (k - 1)), c.v_t2)
    checks["s_t2"] = ((f - c.b_t * zeta).var(axis=1, ddof=1), c.s_t2)
    for n, (per_u, exact) in checks.items():
        est, se = _mean_se(per_u)
        assert abs(est - exact) <= MC_SIGMAS * se, (n, est, exact, se, seed)


def test_user_polynomial_against_exact_moments():
    """sigma(x) = x + c x^3: Gaussian moments give, with A = e^{-2t} sigma^2, D = Delta_t,
    mu1 = 1 + 3c(A + D), kappa2 = G2 + 6c G2^2 + 15c^2 G2^3, v2 = 6 c^2 A^3,
    s2 = 6 c^2 D (3A^2 + 3AD + D^2) (derived by hand through Hermite orthogonality)."""
    cc = 0.1
    for t, var in [(0.001, 0.5), (0.2, 1.0), (2.0, 3.0)]:
        A, D = math.exp(-2 * t) * var, -math.expm1(-2 * t)
        G2 = A + D
        c = centered_coefficients("x + 0.1*x**3", t, var)
        exact = [0.0, 1 + 3 * cc * G2, G2 + 6 * cc * G2**2 + 15 * cc**2 * G2**3,
                 6 * cc**2 * A**3, 6 * cc**2 * D * (3 * A**2 + 3 * A * D + D**2)]
        assert np.all(np.abs(_vec(c) - exact) <= 1e-13 * np.maximum(np.abs(exact), 1e-3))


def test_linear_has_no_nonlinear_part():
    for t, var in POINTS:
        c = centered_coefficients("linear", t, var)
        assert c.v_t2 == 0.0 and c.s_t2 == 0.0 and c.mu1 == 1.0
        q = centered_coefficients("linear", t, var, method="quadrature")
        assert abs(q.v_t2) < 1e-25 and abs(q.s_t2) < 1e-25


@pytest.mark.parametrize("name", ["tanh", "erf", "relu", "sign", "gelu", "sigmoid-centered"])
def test_float64_against_mpmath_twin(name):
    rng = np.random.default_rng(7)
    pts = list(zip(10 ** rng.uniform(-4, 0.5, 2), 10 ** rng.uniform(-1, 0.5, 2)))
    for t, var in pts:
        f = _vec(centered_coefficients(name, t, var))
        m = _vec(centered_coefficients(name, t, var, dps=20))
        scale = np.array([abs(m[2]) ** 0.5, 0, 0, 0, 0])
        assert np.all(np.abs(f - m) <= F64_VS_MP * np.maximum(np.abs(m), scale) + 1e-300), (t, var)


@pytest.mark.parametrize("name", ["tanh", "erf", "relu", "sign", "gelu"])
def test_emitted_twins_agree_pointwise(name):
    """Every emitted scalar function, float64 module against mpmath module, at random points."""
    f64, mp = load_kernels(name, "f64"), load_kernels(name, "mp")
    # Closed forms that are not free of cancellation (erf's s2 at small Gamma) lose a few digits.
    rtol = [F64_VS_MP if n in f64.CLOSED_STABLE else 1e-9 for n in f64.COEFFICIENTS]
    rng = np.random.default_rng(11)
    for z, g in zip(rng.normal(0, 3, 20), rng.uniform(0.05, 2, 20)):
        for fn in ("integrand_mu0", "integrand_mu1", "integrand_kappa2"):
            with mpmath.workdps(30):
                ref = float(getattr(mp, fn)(z, g))
            assert getattr(f64, fn)(z, g) == pytest.approx(ref, rel=F64_VS_MP, abs=1e-300)
    for t, var in zip(10 ** rng.uniform(-5, 1, 20), 10 ** rng.uniform(-2, 1, 20)):
        with mpmath.workdps(30):
            ref = mp.centered_closed(t, var)
        got = f64.centered_closed(t, var)
        for x, y, tol in zip(got, ref, rtol):
            if y is None:
                assert math.isnan(x)
            else:
                assert x == pytest.approx(float(y), rel=tol, abs=1e-300)


@pytest.mark.parametrize("name, t, var", [
    ("tanh", 0.01, 0.5), ("relu", 1e-4, 0.25), ("sign", 0.3, 2.0),
    pytest.param("erf", 0.001, 1.0, marks=pytest.mark.slow),
    pytest.param("gelu", 0.5, 2.0, marks=pytest.mark.slow)])
def test_30_digits_against_50_digits(name, t, var):
    c30 = centered_coefficients(name, str(t), str(var), dps=30)
    c50 = centered_coefficients(name, str(t), str(var), dps=50)
    with mpmath.workdps(60):
        for n in NAMES:
            x, y = getattr(c30, n), getattr(c50, n)
            assert abs(x - y) <= mpmath.mpf(10) ** (-DIGITS_30_VS_50) * max(abs(y), 1e-40), n


@pytest.mark.parametrize("name", ["tanh", "erf", "relu", "sign", "gelu", "sigmoid-centered",
                                  "linear"])
def test_small_t_free_of_cancellation(name):
    """At t = 1e-4 the float64 result agrees with 30 digits to 1e-12 (s2 ~ Delta ~ 2e-4)."""
    f = _vec(centered_coefficients(name, 1e-4, 0.5))
    m = _vec(centered_coefficients(name, "1e-4", "0.5", dps=30))
    assert np.all(np.abs(f - m) <= 1e-12 * np.abs(m) + 1e-17 * abs(m[2])), _rel(f, m)


def _gauss(f, n=400):
    from diffmix.derivations._quadrature import gauss_hermite
    z, w = gauss_hermite(n)
    return float(np.sum(w * f(z)))


@pytest.mark.parametrize("name, sigma, dsigma", [
    ("tanh", np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    ("gelu", lambda x: x * (1 + __import__("scipy.special").special.erf(x / 2**0.5)) / 2,
     lambda x: (1 + __import__("scipy.special").special.erf(x / 2**0.5)) / 2
     + x * np.exp(-x * x / 2) / (2 * np.pi) ** 0.5),
])
def test_limits_t_to_zero_and_infinity(name, sigma, dsigma):
    var = 0.7
    s = var**0.5
    # t -> 0: Gamma -> sigma; a -> E sigma'(u), b -> 0 like sqrt(Delta) and
    # s2 / Delta -> Var_u sigma'(u); v2 -> E sigma(u)^2 - mu0^2 - a^2 var.
    t = 1e-7
    c = centered_coefficients(name, t, var)
    D = -math.expm1(-2 * t)
    e1 = _gauss(lambda z: dsigma(s * z))
    assert c.a_t == pytest.approx(e1, rel=1e-6)
    assert c.b_t / D**0.5 == pytest.approx(e1, rel=1e-6)
    assert c.s_t2 / D == pytest.approx(_gauss(lambda z: dsigma(s * z) ** 2) - e1**2, rel=1e-5)
    m0 = _gauss(lambda z: sigma(s * z))
    assert c.v_t2 == pytest.approx(_gauss(lambda z: sigma(s * z) ** 2) - m0**2 - e1**2 * var,
                                   rel=1e-5)
    # t -> infinity: Gamma -> 1; a ~ e^{-t}, v2 -> 0 (odd: ~e^{-6t}), b -> E sigma'(z),
    # s2 -> E sigma(z)^2 - mu0^2 - b^2.
    t = 12.0
    c = centered_coefficients(name, t, var)
    e1 = _gauss(lambda z: dsigma(z))
    m0 = _gauss(lambda z: sigma(z))
    assert c.b_t == pytest.approx(e1, rel=1e-9)
    assert c.a_t / math.exp(-t) == pytest.approx(e1, rel=1e-9)
    assert c.v_t2 < 1e-15
    assert c.s_t2 == pytest.approx(_gauss(lambda z: sigma(z) ** 2) - m0**2 - e1**2, rel=1e-9)


def test_kinked_user_expression_raises_not_converged():
    with pytest.raises(QuadratureError, match="did not converge.*not smooth"):
        centered_coefficients("abs(x)", 0.01, 1.0)
    arr = centered_coefficients_array("abs(x)", [0.01, 0.1], 1.0, strict=False)
    assert not arr.converged.any() and np.isnan(arr.v_t2).all()
    assert "did not converge" in arr.message


@pytest.mark.parametrize("kwargs, message", [
    (dict(t=0.0), r"t = 0.0: must be a finite number > 0"),
    (dict(t=-1.0), r"t = -1.0: must be a finite number > 0"),
    (dict(t=float("nan")), r"t = nan: must be a finite number > 0"),
    (dict(variance=0.0), r"variance = 0.0: must be a finite number > 0"),
    (dict(variance=-2.0, dps=20), r"variance = -2.0: must be a finite number > 0"),
    (dict(t="abc", dps=20), r"t = 'abc': must be a finite number > 0"),
    (dict(method="exact"), r"method = 'exact': must be one of auto, closed, quadrature"),
    (dict(rule="simpson"), r"rule = 'simpson': must be one of gauss-hermite, trapezoid"),
    (dict(dps=10), r"dps = 10: must be an integer in \[15, 1000\]"),
    (dict(dps=30, rule="gauss-hermite"), r"mpmath twin uses rule = 'trapezoid'"),
])
def test_invalid_arguments(kwargs, message):
    args = dict(activation="tanh", t=0.1, variance=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        centered_coefficients(**args)


def test_closed_method_without_closed_form():
    with pytest.raises(ValueError, match="no closed form for mu1, kappa2, v2, s2"):
        centered_coefficients("tanh", 0.1, 1.0, method="closed")


def test_array_interface_matches_scalar():
    t = np.array([0.001, 0.01, 0.1])
    arr = centered_coefficients_array("tanh", t, 0.5)
    for i, ti in enumerate(t):
        c = centered_coefficients("tanh", ti, 0.5)
        assert arr.s_t2[i] == c.s_t2 and arr.a_t[i] == c.a_t and arr.converged[i]
