"""Population feature matrices of each class: U_c^pop and V_c^pop, exact in expectation or GEP.

For the class-conditional test error E_test^c (``theory/dynamics.md`` §1; paper arXiv 2605.06367,
eq. (14)) the quadratic form of the loss needs, per class c,

    U_c^pop = E_{x_0 ~ c, xi}[ phi(x_t) phi(x_t)^T ],   V_c^pop = E_{x_0 ~ c, xi}[ phi(x_t) xi^T ]

(paper eqs. (38)-(39)), phi(x) = sigma(W x / sqrt(d)). Since x_t = e^{-t} mu_c + Gamma_c g with
g ~ N(0, I_d), neuron i has a Gaussian pre-activation of mean m^c_i = e^{-t} w_i . mu_c / sqrt(d)
and width varsigma^c_i = Gamma_c ||w_i|| / sqrt(d), and two neurons have correlation
R_ij = K_ij / sqrt(K_ii K_jj), K = W W^T / d. :func:`population_matrices` evaluates these
expectations either

* ``kind="exact"`` (``dynamics.md`` §6): Gauss-Hermite quadrature and the Mehler series off the
  diagonal, the exact second moment on the diagonal, V_c^pop by Stein's lemma; no sampling; or
* ``kind="gep"`` (``theory/gep.md`` §4): the Gaussian-equivalent population matrices of a centered
  class, U_c = (a_c^2 sigma_c^2 + b_c^2) K + (v_c^2 + s_c^2) I_p, V_c = b_c W / sqrt(d).

The centroids. The training set of :func:`diffmix.gpu.sample_mixture` (and so of
:func:`~diffmix.gpu.true_feature_covariance`, :func:`~diffmix.gpu.gep_matrices` and the simulator)
places mu_c along the coordinate axes, ``centroids(model, d)`` with no generator: they are not
drawn, so a data seed fixes W and the training noise z but never the centroids. That matrix is the
default here; pass ``centroids=`` explicitly only for another geometry (e.g. random directions from
``centroids(model, d, generator=...)``), and then use the same matrix for the training data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from diffmix.theory import Model, class_coefficients

from ._finite import _ACTIVATIONS, _MAX_NODES, _MU0_TOL, _check_int, _hermite_weights
from ._finite import NeuronGEPCoefficients, neuron_gep_coefficients
from ._finite import centroids as _axis_centroids

__all__ = ["PopulationMatrices", "population_matrices", "gep_population_extensive"]

_KINDS = ("exact", "gep")


@dataclass(frozen=True, eq=False)
class PopulationMatrices:
    """U_c^pop and V_c^pop of every class (paper eqs. (38)-(39); ``dynamics.md`` §1, §6).

    Attributes
    ----------
    U : Tensor, shape (C, p, p)
        U[c] = E_{x_0 ~ c, xi}[phi phi^T].
    V : Tensor, shape (C, p, d)
        V[c] = E_{x_0 ~ c, xi}[phi xi^T].
    centroids : Tensor, shape (C, d)
        The class centroids mu_c used (float64, CPU).
    weights : tuple of float, length C
        The model's rho_c: the mixture test error is sum_c rho_c E_test^c.
    kind : str
        ``"exact"`` or ``"gep"``.
    order, n_nodes : int or None
        Mehler truncation order and Gauss-Hermite nodes of ``kind="exact"`` (None for ``"gep"``).
    """

    U: torch.Tensor
    V: torch.Tensor
    centroids: torch.Tensor
    weights: tuple[float, ...]
    kind: str
    order: int | None
    n_nodes: int | None


def _check_weights_matrix(W: object) -> torch.Tensor:
    if not isinstance(W, torch.Tensor) or W.ndim != 2 or W.shape[0] < 1 or W.shape[1] < 1:
        shape = tuple(W.shape) if isinstance(W, torch.Tensor) else type(W).__name__
        raise ValueError(f"W: must be a 2-d tensor of shape (p, d), got {shape}")
    if not torch.isfinite(W).all():
        raise ValueError("W: contains non-finite entries")
    if torch.any(torch.linalg.vector_norm(W.double(), dim=1) == 0):
        raise ValueError("W: a row is zero (the correlation R_ij = K_ij / sqrt(K_ii K_jj) is undefined)")
    return W


def _check_centroids(model: Model, d: int, centroids: object) -> torch.Tensor:
    if centroids is None:
        return _axis_centroids(model, d)
    if not isinstance(centroids, torch.Tensor) or tuple(centroids.shape) != (model.n_classes, d):
        shape = tuple(centroids.shape) if isinstance(centroids, torch.Tensor) else type(centroids).__name__
        raise ValueError(f"centroids: must be a tensor of shape (C, d) = ({model.n_classes}, {d}), got {shape}")
    if not torch.isfinite(centroids).all():
        raise ValueError("centroids: contains non-finite entries")
    return centroids.detach().to(device="cpu", dtype=torch.float64)


def _exact_class(activation, mean: torch.Tensor, width: torch.Tensor, correlation: torch.Tensor,
                 W: torch.Tensor, delta_t: float, order: int, nodes: torch.Tensor,
                 he_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """U_c^pop, V_c^pop of one class from its pre-activation means (p,) and widths (p,) (float64)."""
    d = W.shape[1]
    phi = activation(mean[:, None] + width[:, None] * nodes)              # (p, n_nodes)
    coeff = phi @ he_weights.T                                            # c_k(i), (p, order + 1)
    second_moment = phi**2 @ he_weights[0]                                 # E_y[sigma^2], (p,)
    # Mehler series sum_k R^k / k! c_k c_k^T by Horner: S <- c_k c_k^T + R o S / (k + 1).
    u = torch.outer(coeff[:, order], coeff[:, order])
    for k in range(order - 1, -1, -1):
        u.mul_(correlation)
        u.addr_(coeff[:, k], coeff[:, k], beta=1.0 / (k + 1))
    u = 0.5 * (u + u.T)
    u.diagonal().copy_(second_moment)
    # Stein: E[sigma(h_i) xi_j] = sqrt(Delta_t) W_ij / sqrt(d) E[sigma'(h_i)], E[sigma'] = c_1 / width.
    v = (math.sqrt(delta_t / d) * coeff[:, 1] / width)[:, None] * W
    return u, v


def gep_population_extensive(model: Model, coefficients: NeuronGEPCoefficients,
                             W: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-class GEP population matrices with extensive centroids (``gep.md`` §4), from given coefficients.

    U_c = mu0_c mu0_c^T + Gamma_c^2 diag(mu1_c) K diag(mu1_c) + diag(v2_c + s2_c),
    V_c = diag(b_c) W / sqrt(d), K = W W^T / d; the coefficients (arrays (C, p)) are those of
    :func:`~diffmix.gpu.neuron_gep_coefficients` for this W (the training U_gep of
    :func:`~diffmix.gpu.gep_matrices_centroids` carries them, so they need not be recomputed).

    Returns
    -------
    U_list, V_list : lists of C tensors, shapes (p, p) and (p, d), float64 on W's device

    Examples
    --------
    >>> from diffmix.gpu import centroids, neuron_gep_coefficients, sample_weights
    >>> m = Model("tanh", 0.5, 2.0, 1.0, [0.5, 0.5], [1.0, 1.0], [1.0, 1.0])
    >>> W = sample_weights(4, 2, generator=torch.Generator().manual_seed(0))
    >>> U, V = gep_population_extensive(m, neuron_gep_coefficients(m, W, centroids(m, 2)), W)
    >>> bool(torch.allclose(U[0].diagonal(), torch.as_tensor(neuron_gep_coefficients(m, W, centroids(m, 2)).kappa2[0])))
    True
    """
    w = W.detach().to(dtype=torch.float64)
    d = w.shape[1]
    kernel = w @ w.T / d
    to = dict(dtype=torch.float64, device=w.device)
    u_list, v_list = [], []
    for c, gamma2 in enumerate(model.gamma2):
        mu0 = torch.as_tensor(coefficients.mu0[c], **to)
        mu1 = torch.as_tensor(coefficients.mu1[c], **to)
        b = torch.as_tensor(coefficients.b_t[c], **to)
        u = torch.outer(mu0, mu0) + gamma2 * torch.outer(mu1, mu1) * kernel
        u.diagonal().add_(torch.as_tensor(coefficients.v_t2[c] + coefficients.s_t2[c], **to))
        u_list.append(0.5 * (u + u.T))
        v_list.append(b[:, None] * w / math.sqrt(d))
    return u_list, v_list


def population_matrices(model: Model, W: torch.Tensor, *, centroids: torch.Tensor | None = None,
                        kind: str = "exact", order: int = 40, n_nodes: int = 120,
                        device: torch.device | str | None = None,
                        dtype: torch.dtype = torch.float64, extensive: bool = False) -> PopulationMatrices:
    """The population matrices U_c^pop, V_c^pop of every class of ``model`` for the weights W.

    ``kind="exact"`` (``dynamics.md`` §6, paper eqs. (38)-(39)): with
    m^c_i = e^{-t} w_i . mu_c / sqrt(d), varsigma^c_i = Gamma_c ||w_i|| / sqrt(d),
    Gamma_c^2 = e^{-2t} sigma_c^2 + Delta_t and the Mehler convention of ``gep.md`` §0,

        c_k(i) = E_y[ sigma(m^c_i + varsigma^c_i y) He_k(y) ]         (probabilists' Hermite),
        U_c,ij = sum_{k=0..order} R_ij^k / k! c_k(i) c_k(j)               (i != j),
        U_c,ii = E_y[ sigma(m^c_i + varsigma^c_i y)^2 ]                     (exact),
        V_c    = sqrt(Delta_t / d) diag(g^c) W,   g^c_i = E[sigma'(h_i)] = c_1(i) / varsigma^c_i.

    g^c is evaluated without derivatives (as in :func:`~diffmix.gpu.true_feature_covariance`), so
    kinked activations are accepted; V_c carries sqrt(Delta_t), not Gamma_c: only the xi-part of x_t
    correlates with xi. Every E_y is an n_nodes-point Gauss-Hermite rule; the only truncation is the
    Mehler order (terms ~ R_ij^k / k!; ``dynamics.md`` §6 uses 40 for the population, whose widths
    Gamma_c ~ 0.5-0.9 are not small). Cost O(order p^2) per class, computed in float64.

    ``kind="gep"`` (``gep.md`` §4), centered classes with an odd activation only:

        U_c = (a_c^2 sigma_c^2 + b_c^2) K + (v_c^2 + s_c^2) I_p,   V_c = b_c W / sqrt(d),

    with a_t, b_t, v_t2, s_t2 from :func:`diffmix.theory.class_coefficients`. These coefficients are
    those of unit-norm rows: with Gaussian rows the GEP is off by the row-norm spread (~4e-2 relative
    at d = 100, ``gep.md`` §4); normalise the rows of W (``normalize_rows=True`` of
    :func:`~diffmix.gpu.sample_weights`) for ~1e-3.

    ``kind="gep", extensive=True`` (``gep.md`` §4, "Extensive centroids"; any centroids, any activation
    that :func:`diffmix.derivations.neuron_coefficients` handles): per-neuron coefficients of
    :func:`~diffmix.gpu.neuron_gep_coefficients` (mean m^c_i, row norm r_i = ||w_i|| / sqrt(d)),

        U_c = mu0_c mu0_c^T + Gamma_c^2 diag(mu1_c) K diag(mu1_c) + diag(v2_c + s2_c),
        V_c = diag(b_c) W / sqrt(d)

    (Gamma_c^2 mu1^2 = sigma_c^2 a_c^2 + b_c^2). With exact row norms it needs no row normalisation
    (~1e-3 relative to ``"exact"`` at d = 100, ``gep.md`` §4). ``extensive=False`` (the default)
    keeps the centered formula above, bit for bit, and its refusals.

    Parameters
    ----------
    model : Model
        For ``"exact"`` its activation must be built in (tanh, erf, relu, gelu, sigmoid-centered,
        linear, sign).
    W : Tensor, shape (p, d)
        The first-layer weights (the same as the training matrices'; rows nonzero).
    centroids : Tensor, shape (C, d), optional
        mu_c row by row. Default: ``centroids(model, d)``, the coordinate-axis centroids that
        :func:`~diffmix.gpu.sample_mixture` uses for the training set (see the module docstring).
    kind : {"exact", "gep"}
    order : int, optional
        Mehler truncation order, >= 1 (default 40; ``"exact"`` only).
    n_nodes : int, optional
        Gauss-Hermite nodes, 2..150 (default 120; ``"exact"`` only).
    device : optional
        Where to compute and return (default: W's device).
    dtype : torch.dtype, optional
        Of the returned matrices (default float64; the computation is always float64).
    extensive : bool, optional
        ``kind="gep"`` only: use the per-neuron GEP of extensive centroids (default False).

    Returns
    -------
    PopulationMatrices
        U (C, p, p), V (C, p, d), centroids (C, d), weights, kind, order, n_nodes.

    Raises
    ------
    ValueError
        For an unknown kind, a malformed W or centroid matrix, order < 1, n_nodes outside 2..150,
        an activation that is not built in (``"exact"``), or a model with centroids or a non-odd
        activation (``"gep"``).

    Examples
    --------
    >>> from diffmix.gpu import sample_weights
    >>> m = Model("tanh", 0.01, 2.0, 1.0, [0.5, 0.5], [0.5, 0.25], [1.0, 1.0])
    >>> W = sample_weights(8, 4, generator=torch.Generator().manual_seed(0))
    >>> pop = population_matrices(m, W)
    >>> tuple(pop.U.shape), tuple(pop.V.shape), pop.centroids[1].tolist()
    ((2, 8, 8), (2, 8, 4), [0.0, 2.0, 0.0, 0.0])
    """
    if kind not in _KINDS:
        raise ValueError(f"kind = {kind!r}: must be one of {', '.join(map(repr, _KINDS))}")
    W = _check_weights_matrix(W)
    device = W.device if device is None else torch.device(device)
    p, d = W.shape
    if d < model.n_classes:
        raise ValueError(f"W: d = {d} columns is below the number of classes {model.n_classes}")
    mu = _check_centroids(model, d, centroids)
    w = W.detach().to(device=device, dtype=torch.float64)
    kernel = w @ w.T / d

    if kind == "gep" and extensive:
        u_list, v_list = gep_population_extensive(model, neuron_gep_coefficients(model, w, mu), w)
        order_out = n_nodes_out = None
    elif kind == "gep":
        if not model.is_centered or torch.any(mu != 0):
            raise ValueError(f"kind = 'gep': the population GEP of gep.md §4 implemented here is that of "
                             f"centered classes (model.centroid_norm2 = {model.centroid_norm2}); "
                             "use kind='exact', or kind='gep' with extensive=True")
        coeffs = class_coefficients(model)
        u_list, v_list = [], []
        eye = torch.eye(p, dtype=torch.float64, device=device)
        for c, (coeff, var) in enumerate(zip(coeffs, model.variances)):
            if abs(float(coeff.mu0)) > _MU0_TOL:
                raise ValueError(f"model.activation = {model.activation!r}: non-odd activation (mu0 of class "
                                 f"{c} is {float(coeff.mu0):.3g}); kind='gep' needs an odd one, use kind='exact'")
            a, b = float(coeff.a_t), float(coeff.b_t)
            u_list.append((a * a * var + b * b) * kernel + (float(coeff.v_t2) + float(coeff.s_t2)) * eye)
            v_list.append(b * w / math.sqrt(d))
        order_out = n_nodes_out = None
    else:
        activation = _ACTIVATIONS.get(model.activation.strip())
        if activation is None:
            raise ValueError(f"activation {model.activation!r}: kind='exact' supports the built-in activations "
                             f"{', '.join(_ACTIVATIONS)} only")
        order = _check_int("order", order, 1)
        n_nodes = _check_int("n_nodes", n_nodes, 2)
        if n_nodes > _MAX_NODES:
            raise ValueError(f"n_nodes = {n_nodes}: must be at most {_MAX_NODES} (Gauss-Hermite via hermegauss)")
        nodes, he_weights = _hermite_weights(order, n_nodes, device, torch.float64)
        norm = torch.sqrt(torch.diagonal(kernel))                          # ||w_i|| / sqrt(d)
        correlation = kernel / (norm[:, None] * norm[None, :])
        means = math.exp(-model.t) * (mu.to(device) @ w.T) / math.sqrt(d)   # m^c_i, (C, p)
        u_list, v_list = [], []
        for c, gamma2 in enumerate(model.gamma2):
            u, v = _exact_class(activation, means[c], math.sqrt(gamma2) * norm, correlation, w,
                                model.delta_t, order, nodes, he_weights)
            u_list.append(u)
            v_list.append(v)
        order_out, n_nodes_out = order, n_nodes
    U = torch.stack(u_list).to(dtype=dtype)
    V = torch.stack(v_list).to(dtype=dtype)
    return PopulationMatrices(U, V, mu, tuple(model.weights), kind, order_out, n_nodes_out)
