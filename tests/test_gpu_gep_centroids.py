"""U_gep with extensive centroids (speciation.md §1.2, gep.md §4; issue 7 items 1 and 4).

Checks of :func:`diffmix.gpu.gep_matrices_centroids`, ``population_matrices(kind="gep", extensive=True)``
and the extensive route of :func:`diffmix.validation._curves.gep_flow`, each against an independent
computation: the NumPy build of validation/_speciation.py on the same draws, the TRUE feature
covariance (Mehler series, no sampling) on the same W and X0, the exact population matrices, and the
exact-in-noise gradient flow. Tolerances are tied to the method, size and seed stated in each test.
"""
import math

import numpy as np
import pytest
import torch

from diffmix.gpu import (centroids, gep_matrices, gep_matrices_centroids, population_matrices, sample_weights,
                         true_feature_covariance)
from diffmix.theory import Model, class_times

from tolerances import (CENTROID_GEP_VS_NUMPY_BUILD as GEP_VS_NUMPY_BUILD, CENTROID_GEP_VS_TRUE as GEP_VS_TRUE,
                        CENTROID_OUTLIERS_GEP_VS_TRUE as OUTLIERS_GEP_VS_TRUE,
                        CENTROID_POPULATION_GEP_VS_EXACT as POPULATION_GEP_VS_EXACT)

#: The training set of speciation.md §1.4 (C = 2, rho = (0.7, 0.3), sigma^2 = (1, 0.5), ||mu_c||^2 = d).
SPECIATION = Model("tanh", 0.5, 10.0, 5.0, [0.7, 0.3], [1.0, 0.5], [1.0, 1.0])
#: Fig. 3's centroid-norm ablation (validation/_learning.py fig3_models).
FIG3_CENTROIDS = Model("tanh", 0.01, 60.0, 30.0, [0.5, 0.5], [0.5, 0.5], [1.0, 2.25])


def rel(a, b):
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def test_same_draws_as_true_and_numpy_build():
    """Draw order W, X0, Omega as gep_matrices; the formula equals validation/_speciation.py's on those draws."""
    from diffmix.validation._speciation import SpeciationInstance, extensive_gep_matrix

    d, seed = 20, 3
    m = SPECIATION
    g = gep_matrices_centroids(m, d, seed=seed)
    tr = true_feature_covariance(m, d, seed=seed, order=1, n_nodes=10)
    assert torch.equal(g.W, tr.W) and torch.equal(g.X0, tr.X0) and g.counts == tr.counts
    # Omega: the p x n normals drawn after W and Z.
    gen = torch.Generator().manual_seed(seed)
    torch.randn(tuple(g.W.shape), generator=gen, dtype=torch.float64)
    torch.randn(tuple(g.X0.shape), generator=gen, dtype=torch.float64)
    eta = torch.randn(tuple(g.F.shape), generator=gen, dtype=torch.float64).numpy()
    mu = centroids(m, d).numpy()
    W, labels = g.W.numpy(), g.labels.numpy()
    z = (g.X0.numpy() - mu[labels]) / np.sqrt(np.array(m.variances))[labels, None]
    inst = SpeciationInstance(m, d, W.shape[0], z.shape[0], seed, W, z, eta, mu, g.counts,
                              W @ mu.T / math.sqrt(d))
    U_np = torch.from_numpy(extensive_gep_matrix(inst, m.t))
    assert rel(g.U, U_np) < GEP_VS_NUMPY_BUILD
    # The factor form, and V = diag(bbar) W / sqrt(d).
    B = g.factor()
    assert torch.allclose(g.U, B @ B.T + torch.diag(g.s2), rtol=0, atol=1e-12)
    rho = np.array(g.counts) / sum(g.counts)
    bbar = rho @ g.coefficients.b_t
    assert torch.allclose(g.V, torch.from_numpy(bbar)[:, None] * g.W / math.sqrt(d), rtol=1e-14, atol=0)
    # Diagonal: (1/n) sum F^2 + sum_c rho_c r^2 b_c^2 + s2 ~ sum_c rho_c kappa2_c up to the finite-n_c
    # fluctuation of the sample average (not an identity at finite n).
    kappa2 = torch.from_numpy(rho @ g.coefficients.kappa2)
    assert rel(torch.diagonal(g.U), kappa2) < 0.1


@pytest.mark.parametrize("t", [0.5, 1.0])
def test_gep_vs_true_feature_covariance(t):
    """speciation.md §1.4 at d = 60 (p = 600, n = 300), normalised rows, seed 1: matrix and outliers."""
    m = SPECIATION.replace(t=t)
    g = gep_matrices_centroids(m, 60, seed=1, normalize_rows=True)
    tr = true_feature_covariance(m, 60, seed=1, order=6, n_nodes=41, normalize_rows=True)
    assert rel(g.U, tr.U) < GEP_VS_TRUE[t]
    lam_g = torch.linalg.eigvalsh(g.U).flip(0)
    lam_t = torch.linalg.eigvalsh(tr.U).flip(0)
    assert lam_t[0] > 5.0                      # the extensive (mu0 mu0^T) outliers are there
    assert torch.max(torch.abs(lam_g[:2] / lam_t[:2] - 1)) < OUTLIERS_GEP_VS_TRUE
    assert rel(g.V, tr.V) < GEP_VS_TRUE[t]


def test_centered_model_reduces_to_gep_matrices():
    """Centered, odd, unit rows: the per-neuron build equals gep_matrices (same W, X0, Omega)."""
    m = Model("tanh", 0.1, 4.0, 2.0, [0.5, 0.5], [0.5, 0.25])
    g0 = gep_matrices(m, 15, seed=2, normalize_rows=True)
    g1 = gep_matrices_centroids(m, 15, seed=2, normalize_rows=True)
    assert torch.equal(g0.W, g1.W) and torch.equal(g0.X0, g1.X0)
    assert rel(g1.U, g0.U) < 1e-10 and rel(g1.V, g0.V) < 1e-10
    assert np.allclose(g1.coefficients.mu0, 0.0, atol=1e-14)


@pytest.mark.parametrize("t", [0.1, 0.5])
def test_population_gep_extensive_vs_exact(t):
    """gep.md §4, extensive centroids: d = 100, p = 300, normalised rows, seed 1; V equal to round-off."""
    m = Model("tanh", t, 3.0, 1.0, [0.5, 0.5], [0.5, 0.25], [1.0, 1.0])
    W = sample_weights(300, 100, generator=torch.Generator().manual_seed(1), normalize_rows=True)
    ex = population_matrices(m, W, kind="exact")
    ge = population_matrices(m, W, kind="gep", extensive=True)
    for c in range(2):
        assert rel(ge.U[c], ex.U[c]) < POPULATION_GEP_VS_EXACT[t]
        assert rel(ge.V[c], ex.V[c]) < 1e-12


def test_population_gep_default_unchanged():
    """extensive=False keeps the centered formula bit for bit and its refusal of centroids; with unit
    rows the per-neuron population GEP reduces to it."""
    from diffmix.theory import class_coefficients

    m = Model("tanh", 0.01, 2.0, 1.0, [0.5, 0.5], [0.5, 0.25])
    W = sample_weights(12, 6, generator=torch.Generator().manual_seed(0), normalize_rows=True)
    a = population_matrices(m, W, kind="gep")
    K = W @ W.T / 6
    for c, (k, var) in enumerate(zip(class_coefficients(m), m.variances)):
        a_t, b_t = float(k.a_t), float(k.b_t)
        by_hand = (a_t * a_t * var + b_t * b_t) * K + (float(k.v_t2) + float(k.s_t2)) * torch.eye(12,
                                                                                         dtype=torch.float64)
        assert torch.equal(a.U[c], by_hand) and torch.equal(a.V[c], b_t * W / math.sqrt(6))
    b = population_matrices(m, W, kind="gep", extensive=True)
    assert rel(b.U, a.U) < 1e-10 and rel(b.V, a.V) < 1e-10
    with pytest.raises(ValueError, match="kind = 'gep': .* centered classes"):
        population_matrices(m.replace(centroid_norm2=(1.0, 0.0)), W, kind="gep")


def test_fig3_centroid_ablation_flow_vs_exact():
    """Fig. 3 centroid-norm ablation at d = 12 (p = 720, n = 360), seed 1: GEP flow vs exact flow.

    Measured (seed 1, d = 12): E_test^c and E_train equal to 3.4e-4 / 1.6e-4 up to the first tau_gen;
    min E_test^c to 6e-4; start of the flat interval (E_test^c within 1e-3 of its minimum; tau_gen itself
    is ill-conditioned there) 66 vs 64 and 164 vs 125; tau_mem of the GEP early by a finite-d factor
    0.83 / 0.70, as for the centered GEP (0.61 at d = 10, 0.79 at d = 16 on Fig. 3's baseline).
    """
    from diffmix.validation._curves import exact_flow, gep_flow

    fg = gep_flow(FIG3_CENTROIDS, 12, seed=1, cache=False)
    fe = exact_flow(FIG3_CENTROIDS, 12, seed=1, cache=False)
    assert fg.info["construction"] == "dense eigh"
    tg, te = class_times(fg), class_times(fe)
    for c in range(2):
        assert abs(tg[c].min_error - te[c].min_error) < 1.5e-3
        # tau_gen sits on a flat minimum (E within 1e-3 over decades): compare the flat interval's start.
        assert 0.7 < tg[c].flat_interval[0] / te[c].flat_interval[0] < 1.6
        assert tg[c].tau_mem is not None and te[c].tau_mem is not None
        assert 0.5 < tg[c].tau_mem / te[c].tau_mem < 1.0
    tau = np.geomspace(0.1, min(t.tau_gen for t in te), 50)       # up to the first tau_gen
    eg, ee = fg.errors(tau), fe.errors(tau)
    assert np.max(np.abs(eg.test_c - ee.test_c)) < 2e-3
    assert np.max(np.abs(eg.train - ee.train)) < 2e-3


@pytest.mark.gpu
def test_cuda_matches_cpu():
    """The same seed gives the same extensive U_gep on CUDA as on the CPU (draws are made on the CPU)."""
    cpu = gep_matrices_centroids(SPECIATION, 20, seed=4, normalize_rows=True)
    cuda = gep_matrices_centroids(SPECIATION, 20, seed=4, normalize_rows=True, device="cuda")
    assert cuda.U.device.type == "cuda" and torch.equal(cuda.W.cpu(), cpu.W)
    assert rel(cuda.U.cpu(), cpu.U) < 1e-12 and rel(cuda.V.cpu(), cpu.V) < 1e-12
    pop = population_matrices(SPECIATION, cuda.W, kind="gep", extensive=True)
    assert pop.U.device.type == "cuda"
    assert rel(pop.U.cpu(), population_matrices(SPECIATION, cpu.W, kind="gep", extensive=True).U) < 1e-12
