"""Learning curves of a Model at a finite size: the matrices, the flow, the class times.

Glue between :mod:`diffmix.gpu` (which draws W, the training set and builds the matrices) and
:class:`diffmix.theory.GradientFlow` (which turns them into curves):

* ``matrices="gep"``: the Gaussian-equivalent matrices of ``gep.md`` §2-4 (centered models):
  U_gep = G G^T / n + beta W W^T / d + s2 I_p, V_gep = bbar W / sqrt(d), and per class
  U_c^pop = (a_c^2 sigma_c^2 + b_c^2) K + (v_c^2 + s_c^2) I_p, V_c^pop = b_c W / sqrt(d), handed to
  :meth:`GradientFlow.from_factor` (only the (n + d) x (n + d) Gram matrix is diagonalized).
  Models with centroids (or mu0 != 0) get the extensive-centroid GEP instead (``speciation.md`` §1.2,
  ``gep.md`` §4; dense, :meth:`GradientFlow.from_matrices`).
* ``matrices="exact"``: the matrices of the actual random-features model, exact in the noise
  (``dynamics.md`` §6: Mehler series for U, Stein for V, and the same for the class populations),
  handed to :meth:`GradientFlow.from_matrices`. Centroids are allowed.

Both are cached on disk (:func:`diffmix.theory.cached_flow`), keyed by the model's content hash,
d, the seed, the kind and its options.
"""
from __future__ import annotations

import math

import numpy as np

from diffmix import __version__
from diffmix.gpu import gep_matrices, gep_matrices_centroids, gep_population_extensive
from diffmix.theory import (ClassPopulation, GradientFlow, Model, cached_flow, class_coefficients,
                            needs_extensive_gep)

__all__ = ["gep_flow", "exact_flow", "model_flow", "score_floors"]

#: Bumped when the cached layout or the construction changes.
_CACHE_LAYOUT = 1


def score_floors(model: Model) -> np.ndarray:
    """e^{-2t} sigma_c^2 / Gamma_c^2 per class: the floor of E_test^c and the score-MSE offset (dynamics.md §3-4)."""
    return math.exp(-2.0 * model.t) * np.asarray(model.variances) / model.gamma2


def _key(model: Model, d: int, seed: int, kind: str, **options) -> dict:
    return {"model": model.content_hash(), "d": int(d), "seed": int(seed), "kind": kind,
            "layout": _CACHE_LAYOUT, "diffmix": __version__, **options}


def gep_flow(model: Model, d: int, *, seed: int, normalize_rows: bool = False,
             cache: bool = True) -> GradientFlow:
    """Gradient flow on the GEP matrices of one draw (W, training set, Omega) at dimension d.

    Sizes p = round(psi_p d), n = round(psi_n d); draws as :func:`diffmix.gpu.gep_matrices`.
    The class test errors use the model's weights rho_c for the mixture and the population GEP
    matrices of ``gep.md`` §4 (centered classes).

    A model with centroids or a non-odd activation (mu0 != 0) takes the extensive-centroid route:
    U_gep, V_gep of :func:`diffmix.gpu.gep_matrices_centroids` (``speciation.md`` §1.2, per-neuron
    coefficients, same draws) and the per-neuron population GEP of ``gep.md`` §4
    (:func:`diffmix.gpu.gep_population_extensive`), all dense, handed to
    :meth:`GradientFlow.from_matrices` (U's diagonal shift is per neuron, so ``from_factor`` does not
    apply). Centered odd models are unchanged.
    """
    if needs_extensive_gep(model):
        return _gep_flow_extensive(model, d, seed=seed, normalize_rows=normalize_rows, cache=cache)

    def build() -> GradientFlow:
        g = gep_matrices(model, d, seed=seed, normalize_rows=normalize_rows, dense=False)
        W = g.W.cpu().numpy()
        n = g.G.shape[1]
        dd = W.shape[1]
        B = np.hstack([g.G.cpu().numpy() / math.sqrt(n), math.sqrt(g.beta) * W / math.sqrt(dd)])
        Wn = W / math.sqrt(dd)
        classes = []
        for var, k in zip(model.variances, class_coefficients(model)):
            a, b = float(k.a_t), float(k.b_t)
            classes.append(ClassPopulation(b * Wn, factor=math.sqrt(a * a * var + b * b) * Wn,
                                           shift=float(k.v_t2) + float(k.s_t2)))
        return GradientFlow.from_factor(B, g.s2, g.V.cpu().numpy(), classes,
                                        weights=model.weights, delta_t=model.delta_t,
                                        floors=score_floors(model))

    return cached_flow(_key(model, d, seed, "gep", normalize_rows=bool(normalize_rows)), build,
                       cache=cache)


def _gep_flow_extensive(model: Model, d: int, *, seed: int, normalize_rows: bool, cache: bool) -> GradientFlow:
    """The extensive-centroid branch of :func:`gep_flow` (dense matrices, ``from_matrices``)."""
    def build() -> GradientFlow:
        g = gep_matrices_centroids(model, d, seed=seed, normalize_rows=normalize_rows, dense=True)
        u_pop, v_pop = gep_population_extensive(model, g.coefficients, g.W)
        classes = [ClassPopulation(v.cpu().numpy(), U=u.cpu().numpy()) for u, v in zip(u_pop, v_pop)]
        return GradientFlow.from_matrices(g.U.cpu().numpy(), g.V.cpu().numpy(), classes,
                                          weights=model.weights, delta_t=model.delta_t,
                                          floors=score_floors(model))

    return cached_flow(_key(model, d, seed, "gep", normalize_rows=bool(normalize_rows), extensive=True),
                       build, cache=cache)


def exact_flow(model: Model, d: int, *, seed: int, order: int = 10, pop_order: int = 40,
               n_nodes: int = 80, pop_nodes: int = 120, cache: bool = True) -> GradientFlow:
    """Gradient flow on the exact-in-noise matrices of the random-features model (dynamics.md §6).

    The matrices are those of :func:`diffmix.gpu.build_system` with ``matrices="exact"`` and the
    same seed, i.e. exactly the ones the gradient-descent simulator trains on and evaluates with.
    ``order``/``pop_order`` are the Mehler orders of the training and population U, ``n_nodes``/
    ``pop_nodes`` their Gauss-Hermite nodes. Centroids and cosines of the model are honoured.
    """
    from diffmix.gpu import build_system

    def build() -> GradientFlow:
        system = build_system(model, d, seed=seed, matrices="exact", order=order, n_nodes=n_nodes,
                              population_order=pop_order, population_nodes=pop_nodes)
        pop = system.population
        classes = [ClassPopulation(pop.V[c].cpu().numpy(), U=pop.U[c].cpu().numpy())
                   for c in range(model.n_classes)]
        return GradientFlow.from_matrices(system.U.cpu().numpy(), system.V.cpu().numpy(), classes,
                                          weights=model.weights, delta_t=model.delta_t,
                                          floors=score_floors(model))

    return cached_flow(_key(model, d, seed, "exact", order=order, pop_order=pop_order,
                            n_nodes=n_nodes, pop_nodes=pop_nodes), build, cache=cache)


def model_flow(model: Model, d: int, *, seed: int, matrices: str = "gep", cache: bool = True) -> GradientFlow:
    """:func:`gep_flow` or :func:`exact_flow` by name."""
    if matrices == "gep":
        return gep_flow(model, d, seed=seed, cache=cache)
    if matrices == "exact":
        return exact_flow(model, d, seed=seed, cache=cache)
    raise ValueError(f"matrices = {matrices!r}: must be 'gep' or 'exact'")
