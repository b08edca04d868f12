"""Mixture-level GEP quantities of a Model (gep.md §2-3) against spectrum.md's inputs."""
import numpy as np
import pytest

from diffmix.theory import Model, class_coefficients, load_model, mixture_gep
from diffmix.derivations import centered_coefficients

from test_cli import EXAMPLES


def test_fig2_inputs_of_spectrum_note():
    """spectrum.md, Fig. 2 parameters: alpha, v2, beta, s2 printed to 16 digits there."""
    g = mixture_gep(load_model(EXAMPLES / "fig2-variance.toml"))
    assert g.alpha == pytest.approx([0.26301117703356763, 0.17011981874491677], rel=1e-13)
    assert g.v2 == pytest.approx([0.009806924611766, 0.002712478025860307], rel=1e-12)
    assert g.beta == pytest.approx(0.001207708935412589, rel=1e-13)
    assert g.s2 == pytest.approx(9.878005229530421e-05, rel=1e-12)


def test_diagonal_identity_and_weights():
    """diag(U_gep) = sum_c rho_c kappa_c^2 (gep.md §2), from the per-class identity of §1."""
    m = Model("gelu", 0.2, 10.0, 4.0, [0.2, 0.3, 0.5], [0.3, 1.0, 2.0])
    g = mixture_gep(m)
    kappa2 = np.array([c.kappa2 for c in class_coefficients(m)])
    diag = g.rho @ (g.mu0**2 + g.alpha + g.v2 + g.b**2 + g.s2_c)
    assert diag == pytest.approx(g.rho @ kappa2, rel=1e-13)
    assert g.bbar == pytest.approx(g.rho @ g.b, rel=1e-15)


def test_class_coefficients_follow_model():
    m = Model("erf", 0.05, 8.0, 3.0, [0.6, 0.4], [1.0, 0.1])
    cs = class_coefficients(m, dps=20)
    assert cs[1].dps == 20
    assert float(cs[1].v_t2) == pytest.approx(centered_coefficients("erf", 0.05, 0.1).v_t2,
                                              rel=1e-14)
