"""Single-class limit (C = 1) of our 2-unknown spectral equations against the predecessor's system.

Predecessor: Bonnaire, Urfin, Biroli, Mezard, arXiv 2505.17638, appendix on the spectrum of U, and
their script Theory/src/plot_spectrum_U.py (github tbonnair/Why-Diffusion-Models-Don-t-Memorize),
which solves "6 real equations for 3 complex unknowns" (q, r, s) for Gaussian data of covariance
Sigma.  The system below is written from that script's equations (read, not copied), in our
notation, for a spectrum of Sigma given as atoms l_i with weights w_i (isotropic: one atom sigma^2):

    hat_s = beta psi_p + 1/q,
    D     = 1 + (p/n) (a^2 r + v2 q),                 hat_r = psi_p a^2 / D,
    s     = sum_i w_i / (hat_s + l_i hat_r),          r = sum_i w_i l_i / (hat_s + l_i hat_r),
    0     = psi_p (s2 - z) + psi_p v2 / D + (1 - psi_p)/q - s / q^2,

with a^2 = alpha / sigma^2 the squared linear coefficient per unit variance (the script's
a_t^2 e^{-2t}; its a_t is E[sigma'], our a = e^{-t} E[sigma']), v2 = v_t^2, beta = b_t^2,
s2 = s_t^2.
The coefficients are ours (Gauss-Hermite, gep.md), not the script's Monte Carlo ones (its s_t^2 is
~30% off), so that only the equations are compared.  The script evaluates at z = lambda - i eps;
the system has real coefficients, so we solve it at z = lambda + i eta (conjugate solution) on the
branch q ~ -1/z, s ~ -1/z for |z| -> infinity (from the last equation at large z): q is then
g(z) = (1/p) tr (U - z)^{-1}, s = (1/p) tr K (U - z)^{-1} and r = sigma^2 s.

Our solver (solvers/_resolvent.py) eliminates the Marchenko-Pastur transform of K and keeps
(m0, m1); for C = 1 we expect q = m0 and s = m1 (eliminating hat_s, hat_r gives F1 = 0 and
m1 = m0 / (psi_p P m0 + 1), equivalent to F2 = 0).  Independent solver here: scipy.optimize.root
(hybr, finite-difference Jacobian) on the 6 real equations, continued in log(eta) from
10 (|lambda| + 1) down to the target from q = s = -1/z (60 steps, halved where hybr fails).

Tolerances: both solvers converge to ~1e-12 relative residuals; g(z) and m1 are compared to 1e-9
relative (seen <= 6e-11; a 1e-6 change of v2 moves g by 1e-8).  Densities: ours on the real axis
(eta = 0) against Im q(lambda + i eta)/pi with eta = 1e-13 (|lambda| + 1), less the atom's
Lorentzian, at 7 points inside every bulk, to 1e-7 of the largest density (the eta-broadening;
seen 5e-10, 3e-11, 2e-8; at the same z the two solvers agree to 6e-12).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import root

from diffmix.solvers import SpectralParams, find_edges, solve_resolvent, stieltjes
from diffmix.theory import Model

PARAMS = [  # (t, psi_p, psi_n, sigma^2): the predecessor's unit-variance data, and the Fig. 2 sizes
    (0.01, 4.0, 2.0, 1.0),
    (0.1, 8.0, 3.0, 1.0),
    (0.001, 60.0, 30.0, 0.5),
]


def _predecessor_equations(q, r, s, z, c, atoms):
    """Residuals of the 3-unknown system (module doc) at complex z."""
    l, w = atoms
    hat_s = c["beta"] * c["psi_p"] + 1.0 / q
    D = 1.0 + c["p_over_n"] * (c["a2"] * r + c["v2"] * q)
    hat_r = c["psi_p"] * c["a2"] / D
    den = hat_s + l * hat_r
    return (s - np.sum(w / den),
            r - np.sum(w * l / den),
            c["psi_p"] * (c["s2"] - z) + c["psi_p"] * c["v2"] / D + (1.0 - c["psi_p"]) / q
            - s / q**2)


def solve_predecessor(z, c, atoms, n_steps: int = 60):
    """(q, r, s) at complex z (Im z > 0) by continuation in log(eta) from q = s = -1/z at
    eta = 10 (|lambda| + 1): linear predictor from the last two points, step halved when hybr fails
    (next to the atom at s2, where |q| ~ 1e4, the unknowns move fast), doubled back on success."""
    lam, log_f = z.real, np.log(z.imag)

    def real_eqs(v, zc):
        q, r, s = v[0] + 1j * v[1], v[2] + 1j * v[3], v[4] + 1j * v[5]
        res = _predecessor_equations(q, r, s, zc, c, atoms)
        scale = [abs(s), abs(r), c["psi_p"] * (abs(zc) + 1) + abs((1 - c["psi_p"]) / q)
                 + abs(s / q**2)]
        return np.array([f(e / k) for e, k in zip(res, scale) for f in (np.real, np.imag)])

    log_eta = np.log(10.0 * (abs(lam) + 1.0))
    h0 = (log_eta - log_f) / n_steps
    zz = complex(lam, np.exp(log_eta))
    x = np.array([(-1 / zz).real, (-1 / zz).imag] * 3)
    x[2:4] *= float(np.sum(atoms[0] * atoms[1]))  # r ~ E[l] s
    sol = root(real_eqs, x, args=(zz,), method="hybr", options={"xtol": 1e-14})
    x, prev, h = sol.x, None, h0
    while log_eta > log_f:
        new = max(log_eta - h, log_f)
        guess = x if prev is None else x + (x - prev[1]) * (new - log_eta) / (log_eta - prev[0])
        zc = complex(lam, np.exp(new))
        sol = root(real_eqs, guess, args=(zc,), method="hybr", options={"xtol": 1e-14})
        if np.max(np.abs(sol.fun)) < 1e-12 and sol.x[1] > 0 and sol.x[5] > 0:
            prev, x, log_eta, h = (log_eta, x), sol.x, new, min(2 * h, h0)
        else:
            h /= 2
            if h < 1e-6 * h0:
                raise ArithmeticError(f"predecessor system failed at z = {zc}: {sol.message}")
    q, r, s = x[0] + 1j * x[1], x[2] + 1j * x[3], x[4] + 1j * x[5]
    assert np.max(np.abs(real_eqs(x, z))) < 1e-11
    return q, r, s


def _setup(t, psi_p, psi_n, sig2):
    p = SpectralParams.from_model(Model("tanh", t, psi_p, psi_n, [1.0], [sig2]))
    c = {"psi_p": psi_p, "p_over_n": psi_p / psi_n, "a2": float(p.alpha[0]) / sig2,
         "v2": float(p.v2[0]), "beta": p.beta, "s2": p.s2}
    return p, c, (np.array([sig2]), np.array([1.0]))


@pytest.mark.parametrize("t, psi_p, psi_n, sig2", PARAMS)
def test_stieltjes_matches_predecessor_system(t, psi_p, psi_n, sig2):
    p, c, atoms = _setup(t, psi_p, psi_n, sig2)
    z = np.array([1 + 0.1j, 10 + 1j, 0.3 + 0.01j, 0.01 + 0.001j, 3 + 1e-4j, 50 + 5j])
    ours = stieltjes(p, z, strict=True)
    for zi, m0, m1 in zip(z, ours.m0, ours.m1):
        q, r, s = solve_predecessor(zi, c, atoms)
        assert abs(q - m0) <= 1e-9 * abs(m0), (zi, q, m0)
        assert abs(s - m1) <= 1e-9 * abs(m1), (zi, s, m1)
        assert abs(r - sig2 * s) <= 1e-9 * abs(r)
        assert q.imag > 0 and s.imag > 0  # physical branch for Im z > 0


def test_predecessor_two_atom_form_with_equal_atoms():
    """The script's Sigma spectrum 0.5 delta(l1) + 0.5 delta(l2) with l1 = l2 = sigma^2 is the
    isotropic case: same (q, r, s) as one atom."""
    p, c, atoms = _setup(0.01, 4.0, 2.0, 1.0)
    two = (np.array([1.0, 1.0]), np.array([0.5, 0.5]))
    for z in (1 + 0.1j, 0.2 + 0.02j):
        a, b = solve_predecessor(z, c, atoms), solve_predecessor(z, c, two)
        assert np.allclose(a, b, rtol=1e-11, atol=0)


@pytest.mark.parametrize("t, psi_p, psi_n, sig2", PARAMS)
def test_density_matches_predecessor_system(t, psi_p, psi_n, sig2):
    p, c, atoms = _setup(t, psi_p, psi_n, sig2)
    spec = find_edges(p)
    assert spec.converged, spec.message
    lam = np.concatenate([lo + (hi - lo) * np.array([0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98])
                          for lo, hi in spec.edges])
    ours = solve_resolvent(p, lam, strict=True).density
    z = lam + 1j * 1e-13 * (np.abs(lam) + 1)
    q = np.array([solve_predecessor(zi, c, atoms)[0] for zi in z])
    # the atom at s2 (weight 1 - (1 + psi_n)/psi_p, spectrum.md §4) adds its eta-broadened
    # Lorentzian to Im q; it is not continuous density
    atom = 1.0 - (1.0 + psi_n) / psi_p
    theirs = (q + atom / (z - p.s2)).imag / np.pi
    assert np.all(ours > 0)
    assert np.max(np.abs(ours - theirs)) <= 1e-7 * ours.max()
