"""Finite-size twins of a Model: sampled data, the matrix U_gep and the true feature covariance.

At a finite data dimension d a :class:`~diffmix.theory.Model` fixes p = round(psi_p d) features and
n = round(psi_n d) training samples (``theory/notation.md``). This module draws the random objects
of that finite system with PyTorch and builds from them

* the Gaussian-equivalent matrices U_gep, V_gep of a centered mixture (``theory/gep.md`` §2-3; paper
  arXiv 2605.06367, eq. (50) and App. E), and
* the exact-in-expectation feature covariance U, V of the actual random-features model on the same
  W and X0 (``gep.md`` §2, "Verification against the TRUE U"): the average over the diffusion noise
  xi is done by Gauss-Hermite quadrature and the Mehler series, never by sampling xi.

Randomness comes only from an explicit ``seed`` (an int, turned into a CPU ``torch.Generator``) or a
``torch.Generator``. Numbers are drawn in float64 on the generator's device and then moved to
``device`` and ``dtype``, so one seed gives the same W and X0 on every device. The draw order is
fixed, so that :func:`gep_matrices` and :func:`true_feature_covariance` with the same seed share W
and X0:

1. W: p x d standard normals (:func:`sample_weights`; rows rescaled afterwards if asked);
2. Z: n x d standard normals, giving X0 = mu_c + sigma_c z row by row, samples grouped by class in
   class order (:func:`sample_mixture`; the centroid directions are the coordinate axes, no draw);
3. Omega: p x n standard normals, :func:`gep_matrices` only; the columns of the class-c samples
   form Omega_c.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from diffmix.theory import Model, class_coefficients

__all__ = ["FiniteSize", "FeatureCovariance", "GEPMatrices", "centroids", "class_counts",
           "gep_matrices", "sample_mixture", "sample_weights", "true_feature_covariance",
           "GEPCentroidMatrices", "NeuronGEPCoefficients", "gep_matrices_centroids", "neuron_gep_coefficients"]

#: |mu0_c| above which an activation is treated as not odd (U_gep would get a mean part).
_MU0_TOL = 1e-12
#: Largest Gauss-Hermite rule accepted (numpy's hermegauss is accurate up to here).
_MAX_NODES = 150
#: Elements of the (p, samples, nodes) block of activations evaluated at once.
_BLOCK_ELEMENTS = 2**24


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.special.ndtr(x)


def _sigmoid_centered(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.tanh(0.5 * x)


def _linear(x: torch.Tensor) -> torch.Tensor:
    return x


#: The built-in activations of notation.md as torch functions.
_ACTIVATIONS = {
    "tanh": torch.tanh,
    "erf": torch.special.erf,
    "relu": torch.relu,
    "gelu": _gelu,
    "sigmoid-centered": _sigmoid_centered,
    "linear": _linear,
    "sign": torch.sign,
}


# ---------------------------------------------------------------------- sizes and validation


def _check_int(name: str, value: object, minimum: int, reason: str = "") -> int:
    """``value`` as an int >= ``minimum``, or a ValueError naming ``name``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)) or value < minimum:
        raise ValueError(f"{name} = {value!r}: must be an integer >= {minimum}{reason}")
    return int(value)


def _check_dimension(model: Model, d: object) -> int:
    return _check_int("d", d, model.n_classes, f" (the number of classes C = {model.n_classes})")


def _resolve_generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    """The generator of a call that takes exactly one of ``seed`` and ``generator``."""
    if (seed is None) == (generator is None):
        raise ValueError("seed, generator: give exactly one (an int seed or a torch.Generator)")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"generator: must be a torch.Generator, got {type(generator).__name__}")
        return generator
    seed = _check_int("seed", seed, 0)
    return torch.Generator().manual_seed(seed)


def _normal(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Standard normals of ``shape``, float64, on the generator's device."""
    return torch.randn(shape, generator=generator, dtype=torch.float64, device=generator.device)


def class_counts(model: Model, n: int) -> tuple[int, ...]:
    """Class counts n_c = round(rho_c n), the remainder given to the largest class.

    The rule of every note (``theory/notation.md``, ``gep.md`` §0): each n_c is ``round(rho_c * n)``
    (Python's rounding, half to even), then n - sum_c n_c is added to the class of largest weight
    (the first one on ties), so that the counts sum to n.

    Parameters
    ----------
    model : Model
    n : int
        Number of training samples, >= C.

    Returns
    -------
    tuple of int, length C

    Raises
    ------
    ValueError
        If n < C, or if the rule leaves a class without samples.

    Examples
    --------
    Two equal classes and n = 5: round(2.5) = 2 twice, and the remainder 1 goes to class 0.

    >>> class_counts(Model("tanh", 0.01, 2.0, 1.0, [0.5, 0.5], [1.0, 1.0]), 5)
    (3, 2)
    """
    n = _check_int("n", n, model.n_classes, f" (the number of classes C = {model.n_classes})")
    counts = [round(w * n) for w in model.weights]
    counts[int(np.argmax(model.weights))] += n - sum(counts)
    for c, n_c in enumerate(counts):
        if n_c < 1:
            raise ValueError(f"n = {n}: class {c} (weight {model.weights[c]!r}) gets {n_c} samples; "
                             "increase n")
    return tuple(counts)


@dataclass(frozen=True)
class FiniteSize:
    """The sizes of a finite system: data dimension d, features p, training samples n.

    Attributes
    ----------
    d, p, n : int
    """

    d: int
    p: int
    n: int

    @classmethod
    def from_model(cls, model: Model, d: int) -> FiniteSize:
        """The sizes of ``model`` at dimension d: p = round(psi_p d), n = round(psi_n d).

        Raises
        ------
        ValueError
            If d < C (the number of classes), p < 1 or n < C.

        Examples
        --------
        >>> FiniteSize.from_model(Model("tanh", 0.01, 6.0, 3.0, [0.5, 0.5], [0.5, 0.25]), 60)
        FiniteSize(d=60, p=360, n=180)
        """
        d = _check_dimension(model, d)
        p, n = round(model.psi_p * d), round(model.psi_n * d)
        if p < 1:
            raise ValueError(f"d = {d}: p = round(psi_p d) = {p}; increase d")
        if n < model.n_classes:
            raise ValueError(f"d = {d}: n = round(psi_n d) = {n} is below the number of classes "
                             f"{model.n_classes}; increase d")
        return cls(d, p, n)


# ---------------------------------------------------------------------- sampling


def centroids(model: Model, d: int, *, generator: torch.Generator | None = None,
              device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The C centroid vectors of ``model`` in dimension d (``examples/README.md``).

    With L L^T = cosine (Cholesky factor, or Q sqrt(Lambda) from an eigendecomposition when the
    cosine matrix is only semi-definite) and orthonormal directions e_1..e_C in R^d,
    mu_c = sqrt(d * centroid_norm2_c) * sum_k L[c, k] e_k, so that
    mu_c . mu_c' / d = sqrt(centroid_norm2_c centroid_norm2_c') cosine[c, c'].

    Parameters
    ----------
    model : Model
    d : int
        Data dimension, >= C.
    generator : torch.Generator, optional
        None (the default): e_k are the first C coordinate axes. Otherwise e_k are random
        orthonormal directions (QR of a d x C standard normal matrix, signs fixed so that R has a
        positive diagonal), drawn from this generator.
    device, dtype
        Of the result (default CPU, float64).

    Returns
    -------
    Tensor, shape (C, d)
        Row c is mu_c.

    Examples
    --------
    >>> m = Model("tanh", 0.01, 2.0, 1.0, [0.5, 0.5], [1.0, 1.0], [1.0, 4.0])
    >>> centroids(m, 3)
    tensor([[1.7321, 0.0000, 0.0000],
            [0.0000, 3.4641, 0.0000]], dtype=torch.float64)
    """
    d = _check_dimension(model, d)
    n_classes = model.n_classes
    cosine = np.array(model.cosine)
    try:
        factor = np.linalg.cholesky(cosine)
    except np.linalg.LinAlgError:
        eigenvalues, eigenvectors = np.linalg.eigh(cosine)
        factor = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
    if generator is None:
        directions = torch.eye(d, n_classes, dtype=torch.float64)
    else:
        q, r = torch.linalg.qr(_normal((d, n_classes), generator))
        directions = (q * torch.sign(torch.diagonal(r))).cpu()
    scale = np.sqrt(d * np.array(model.centroid_norm2))
    mu = torch.from_numpy(scale[:, None] * factor) @ directions.T
    return mu.to(device=device, dtype=dtype)


def sample_mixture(model: Model, d: int, n: int, *, seed: int | None = None,
                   generator: torch.Generator | None = None, device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw n training samples of the mixture in dimension d, grouped by class in class order.

    x_0 = mu_c + sigma_c z, z ~ N(0, I_d) (``theory/notation.md``), with the class counts of
    :func:`class_counts` and the centroids of :func:`centroids` along the coordinate axes.

    Parameters
    ----------
    model : Model
    d : int
        Data dimension, >= C.
    n : int
        Number of samples, >= C.
    seed, generator
        Exactly one: an int seed or a torch.Generator (n x d standard normals are drawn from it).
    device, dtype
        Of the results (default CPU, float64).

    Returns
    -------
    X0 : Tensor, shape (n, d)
        One sample per row; the first n_1 rows are class 0, and so on.
    labels : Tensor, shape (n,), dtype long
        The class of each row.

    Examples
    --------
    >>> m = Model("tanh", 0.01, 2.0, 1.0, [0.5, 0.5], [1.0, 0.25])
    >>> X0, labels = sample_mixture(m, 4, 6, seed=0)
    >>> tuple(X0.shape), labels.tolist()
    ((6, 4), [0, 0, 0, 1, 1, 1])
    """
    counts = class_counts(model, n)
    mu = centroids(model, d, dtype=torch.float64)
    gen = _resolve_generator(seed, generator)
    z = _normal((n, d), gen).cpu()
    labels = torch.repeat_interleave(torch.arange(model.n_classes), torch.tensor(counts))
    sigma = torch.sqrt(torch.tensor(model.variances, dtype=torch.float64))
    x0 = mu[labels] + sigma[labels, None] * z
    return x0.to(device=device, dtype=dtype), labels.to(device=device)


def sample_weights(p: int, d: int, *, generator: torch.Generator, normalize_rows: bool = False,
                   device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The random first-layer weights W with i.i.d. N(0, 1) entries (``theory/notation.md``).

    Parameters
    ----------
    p, d : int
        Number of features and data dimension, >= 1.
    generator : torch.Generator
        The p x d standard normals are drawn from it (row by row).
    normalize_rows : bool, optional
        If True, each row is rescaled to norm sqrt(d), so that K = W W^T / d has unit diagonal.
        ``gep.md`` §2 recommends it: it removes the finite-d spread of ||w_i||^2/d
        (relative s.d. sqrt(2/d)) from the comparison of the true U with U_gep.
    device, dtype
        Of the result (default CPU, float64).

    Returns
    -------
    Tensor, shape (p, d)

    Examples
    --------
    >>> W = sample_weights(3, 4, generator=torch.Generator().manual_seed(0), normalize_rows=True)
    >>> [round(x, 12) for x in (W**2).sum(dim=1).tolist()]
    [4.0, 4.0, 4.0]
    """
    p, d = _check_int("p", p, 1), _check_int("d", d, 1)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator: must be a torch.Generator, got {type(generator).__name__}")
    w = _normal((p, d), generator)
    if normalize_rows:
        w = w * (math.sqrt(d) / torch.linalg.vector_norm(w, dim=1, keepdim=True))
    return w.to(device=device, dtype=dtype)


def _draw_system(model: Model, d: int, seed: int | None, generator: torch.Generator | None,
                 normalize_rows: bool, device, dtype):
    """Sizes, generator, W and (X0, labels, counts), drawn in the documented order (W, then Z)."""
    size = FiniteSize.from_model(model, d)
    counts = class_counts(model, size.n)
    gen = _resolve_generator(seed, generator)
    w = sample_weights(size.p, size.d, generator=gen, normalize_rows=normalize_rows, device=device,
                       dtype=dtype)
    x0, labels = sample_mixture(model, size.d, size.n, generator=gen, device=device, dtype=dtype)
    return size, gen, w, x0, labels, counts


# ---------------------------------------------------------------------- U_gep


@dataclass(frozen=True, eq=False)
class GEPMatrices:
    """The Gaussian-equivalent feature matrices of one finite draw (``gep.md`` §2-3).

    Attributes
    ----------
    U : Tensor, shape (p, p)
        U_gep = sum_c rho_c (1/n_c) G_c G_c^T + beta W W^T/d + s2 I_p (paper eq. (50)).
    V : Tensor, shape (p, d)
        V_gep = bbar W / sqrt(d).
    W : Tensor, shape (p, d)
    X0 : Tensor, shape (n, d)
        The training samples, grouped by class.
    labels : Tensor, shape (n,), dtype long
    counts : tuple of int, length C
        n_c; the weights used are rho_c = n_c / n.
    beta, s2, bbar : float
        sum_c rho_c b_c^2, sum_c rho_c s_c^2 and sum_c rho_c b_c with rho_c = n_c / n.
    G : Tensor, shape (p, n)
        [G_1, ..., G_C]: U_gep = G G^T / n + beta W W^T / d + s2 I_p (rho_c / n_c = 1 / n).
    """

    U: torch.Tensor | None
    V: torch.Tensor
    W: torch.Tensor
    X0: torch.Tensor
    labels: torch.Tensor
    counts: tuple[int, ...]
    beta: float
    s2: float
    bbar: float
    G: torch.Tensor | None = None


def gep_matrices(model: Model, d: int, *, seed: int | None = None, generator: torch.Generator | None = None,
                 normalize_rows: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float64, dense: bool = True) -> GEPMatrices:
    """U_gep and V_gep of a centered mixture at dimension d, with their W and training set.

    Implements ``gep.md`` §2 (paper arXiv 2605.06367, eq. (50), App. E) and §3:

        G_c   = a_c W X_c / sqrt(d) + v_c Omega_c                    (p x n_c)
        U_gep = sum_c rho_c (1/n_c) G_c G_c^T + beta W W^T/d + s2 I_p,
        V_gep = bbar W / sqrt(d),

    with X_c the d x n_c matrix of the class-c samples (sigma_c z, the model being centered),
    Omega_c independent p x n_c standard normals, rho_c = n_c / n, beta = sum_c rho_c b_c^2,
    s2 = sum_c rho_c s_c^2, bbar = sum_c rho_c b_c, and a_c, b_c, v_c^2, s_c^2 from
    :func:`diffmix.theory.class_coefficients` (float64). Sizes: p = round(psi_p d),
    n = round(psi_n d) (:class:`FiniteSize`). Random draws in the order of the module docstring (W,
    then the data, then Omega), so :func:`true_feature_covariance` with the same seed uses the same W
    and X0.

    Parameters
    ----------
    model : Model
        Centered (every centroid_norm2 zero) with an activation whose mu0_c vanishes (odd).
    d : int
        Data dimension, >= C.
    seed, generator
        Exactly one: an int seed or a torch.Generator.
    normalize_rows : bool, optional
        Rescale the rows of W to norm sqrt(d) (see :func:`sample_weights`).
    device, dtype
        Of the results (default CPU, float64).
    dense : bool, optional
        Form U (p x p, O(p^2 n) work); with False, U is None and only its factor G is returned.

    Returns
    -------
    GEPMatrices
        U (p x p, or None), V (p x d), W (p x d), X0 (n x d), labels (n,), counts, beta, s2, bbar,
        G (p x n).

    Raises
    ------
    ValueError
        For a model with nonzero centroids or a non-odd activation (both add a mean part to U_gep,
        not implemented here), and for d < C or sizes that leave a class empty.

    Examples
    --------
    >>> m = Model("tanh", 0.01, 2.0, 1.0, [0.5, 0.5], [0.5, 0.25])
    >>> g = gep_matrices(m, 4, seed=0)
    >>> tuple(g.U.shape), tuple(g.V.shape), g.counts
    ((8, 8), (8, 4), (2, 2))
    """
    if not model.is_centered:
        raise ValueError(f"model.centroid_norm2 = {model.centroid_norm2}: gep_matrices builds the centered "
                         "U_gep of gep.md §2 only; extensive centroids (per-neuron coefficients, gep.md §4) "
                         "belong to later work")
    coeffs = class_coefficients(model)
    for c, coeff in enumerate(coeffs):
        if abs(float(coeff.mu0)) > _MU0_TOL:
            raise ValueError(f"model.activation = {model.activation!r}: non-odd activation: U_gep has a mean "
                             f"part sum_c rho_c mu0_c mu0_c^T (mu0 of class {c} is {float(coeff.mu0):.3g}), "
                             "not implemented here")
    size, gen, w, x0, labels, counts = _draw_system(model, d, seed, generator, normalize_rows, device, dtype)
    omega = _normal((size.p, size.n), gen).to(device=w.device, dtype=dtype)
    rho = [n_c / size.n for n_c in counts]
    beta = math.fsum(r * float(k.b_t) ** 2 for r, k in zip(rho, coeffs))
    s2 = math.fsum(r * float(k.s_t2) for r, k in zip(rho, coeffs))
    bbar = math.fsum(r * float(k.b_t) for r, k in zip(rho, coeffs))
    a = torch.tensor([float(k.a_t) for k in coeffs], dtype=dtype, device=w.device)
    v = torch.sqrt(torch.tensor([float(k.v_t2) for k in coeffs], dtype=dtype, device=w.device))
    # G = [G_1, ..., G_C] column by column: a_c W x_nu / sqrt(d) + v_c omega_nu for a class-c sample nu
    # (the model is centered, so x_nu = sigma_c z_nu is already the data without its centroid).
    g = a[labels] * (w @ x0.T) / math.sqrt(size.d) + v[labels] * omega
    v_gep = bbar * w / math.sqrt(size.d)
    if not dense:
        return GEPMatrices(None, v_gep, w, x0, labels, counts, beta, s2, bbar, g)
    kernel = w @ w.T / size.d
    u = g @ g.T / size.n + beta * kernel + s2 * torch.eye(size.p, dtype=dtype, device=w.device)
    return GEPMatrices(0.5 * (u + u.T), v_gep, w, x0, labels, counts, beta, s2, bbar, g)


# ---------------------------------------------------------------------- true U


@dataclass(frozen=True, eq=False)
class FeatureCovariance:
    """The feature covariance of the random-features model, exact in expectation over xi.

    Attributes
    ----------
    U : Tensor, shape (p, p)
        (1/n) sum_nu E_xi[phi phi^T], phi = sigma(W x_t^nu / sqrt(d)) (``theory/notation.md``).
    V : Tensor, shape (p, d)
        (1/n) sum_nu E_xi[phi xi^T].
    W : Tensor, shape (p, d)
    X0 : Tensor, shape (n, d)
    labels : Tensor, shape (n,), dtype long
    counts : tuple of int, length C
    order, n_nodes : int
        Mehler truncation order of the off-diagonal entries and Gauss-Hermite nodes used.
    """

    U: torch.Tensor
    V: torch.Tensor
    W: torch.Tensor
    X0: torch.Tensor
    labels: torch.Tensor
    counts: tuple[int, ...]
    order: int
    n_nodes: int


def _hermite_weights(order: int, n_nodes: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Hermite nodes y_g (n_nodes,) for N(0, 1) and the matrix w_g He_k(y_g), shape (order+1, n_nodes)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)
    weights = weights / math.sqrt(2.0 * math.pi)
    he = np.empty((order + 1, n_nodes))
    he[0] = 1.0
    he[1] = nodes
    for k in range(1, order):
        he[k + 1] = nodes * he[k] - k * he[k - 1]
    to = dict(device=device, dtype=dtype)
    return torch.from_numpy(nodes).to(**to), torch.from_numpy(he * weights).to(**to)


def true_feature_covariance(model: Model, d: int, *, seed: int | None = None,
                            generator: torch.Generator | None = None, order: int = 5,
                            normalize_rows: bool = False, n_nodes: int = 80,
                            device: torch.device | str | None = None,
                            dtype: torch.dtype = torch.float64) -> FeatureCovariance:
    """U and V of the actual random-features model, averaged over the noise xi without sampling it.

    The "true U" of ``gep.md`` §2 ("Verification against the TRUE U"). For sample nu and neuron i
    the pre-activation is h_i = m_i + sqrt(Delta_t K_ii) zeta_i with m_i = e^{-t} w_i.x0_nu / sqrt(d),
    K = W W^T / d and zeta standard normals of correlation R_ij = K_ij / sqrt(K_ii K_jj). With the
    Mehler convention of ``gep.md`` §0,

        c_k(i, nu) = E_y[ sigma(m_i + sqrt(Delta_t K_ii) y) He_k(y) ]    (probabilists' Hermite),
        U_ij = (1/n) sum_nu sum_{k=0..order} R_ij^k / k! c_k(i, nu) c_k(j, nu)      (i != j),
        U_ii = (1/n) sum_nu E_y[ sigma(m_i + sqrt(Delta_t K_ii) y)^2 ]                (exact),
        V_i  = (1/n) sum_nu E_xi[phi_i xi] = (1/n) sum_nu c_1(i, nu) / sqrt(K_ii) * w_i / sqrt(d).

    V is Stein's lemma per sample, sqrt(Delta_t) E[sigma'(h_i)] w_i / sqrt(d), with
    E[sigma'(h_i)] = c_1(i, nu) / sqrt(Delta_t K_ii) evaluated without derivatives, so kinked
    activations (relu, sign) are handled. Every E_y is an n_nodes-point Gauss-Hermite rule (exact
    for polynomials of degree < 2 n_nodes; for relu and sign it converges slowly in n_nodes). The
    only truncation is that of the Mehler series off the diagonal: its terms decay like
    R_ij^k / k! for smooth sigma, so order 3-5 suffices at small t (``gep.md`` §2); kinked
    activations need a higher order where |R_ij| is not small.

    W and X0 are drawn exactly as in :func:`gep_matrices` (W, then the data; see the module
    docstring), so the same seed gives the same W and X0; centroids are allowed here.

    Parameters
    ----------
    model : Model
        Its activation must be a built-in name: tanh, erf, relu, gelu, sigmoid-centered, linear, sign.
    d : int
        Data dimension, >= C.
    seed, generator
        Exactly one: an int seed or a torch.Generator.
    order : int, optional
        Mehler truncation order, >= 1 (default 5).
    normalize_rows : bool, optional
        Rescale the rows of W to norm sqrt(d) (see :func:`sample_weights`).
    n_nodes : int, optional
        Gauss-Hermite nodes, 2..150 (default 80).
    device, dtype
        Of the results and the computation (default CPU, float64).

    Returns
    -------
    FeatureCovariance
        U (p x p), V (p x d), W (p x d), X0 (n x d), labels (n,), counts, order, n_nodes.

    Raises
    ------
    ValueError
        For an activation that is not built in, order < 1, n_nodes outside 2..150, d < C or sizes
        that leave a class empty.

    Examples
    --------
    >>> m = Model("tanh", 0.01, 2.0, 1.0, [0.5, 0.5], [0.5, 0.25])
    >>> tuple(true_feature_covariance(m, 4, seed=0).U.shape)
    (8, 8)
    """
    activation = _ACTIVATIONS.get(model.activation.strip())
    if activation is None:
        raise ValueError(f"activation {model.activation!r}: true_feature_covariance supports the built-in "
                         f"activations {', '.join(_ACTIVATIONS)} only")
    order = _check_int("order", order, 1)
    n_nodes = _check_int("n_nodes", n_nodes, 2)
    if n_nodes > _MAX_NODES:
        raise ValueError(f"n_nodes = {n_nodes}: must be at most {_MAX_NODES} (Gauss-Hermite via hermegauss)")
    size, _, w, x0, labels, counts = _draw_system(model, d, seed, generator, normalize_rows, device, dtype)
    nodes, he_weights = _hermite_weights(order, n_nodes, w.device, dtype)

    kernel = w @ w.T / size.d
    k_diag = torch.diagonal(kernel)
    norm = torch.sqrt(k_diag)
    mean = math.exp(-model.t) * (w @ x0.T) / math.sqrt(size.d)          # m_i for each sample, (p, n)
    scale = torch.sqrt(model.delta_t * k_diag)                          # sqrt(Delta_t K_ii), (p,)

    coeff = torch.empty((order + 1, size.p, size.n), dtype=dtype, device=w.device)
    second_moment = torch.zeros(size.p, dtype=dtype, device=w.device)
    block = max(1, _BLOCK_ELEMENTS // (size.p * n_nodes))
    for start in range(0, size.n, block):
        stop = min(start + block, size.n)
        phi = activation(mean[:, start:stop, None] + scale[:, None, None] * nodes)   # (p, block, n_nodes)
        coeff[:, :, start:stop] = torch.einsum("ibg,kg->kib", phi, he_weights)
        second_moment += (phi**2 @ he_weights[0]).sum(dim=1)

    correlation = kernel / (norm[:, None] * norm[None, :])
    u = torch.zeros((size.p, size.p), dtype=dtype, device=w.device)
    mehler = torch.ones_like(correlation)
    for k in range(order + 1):
        if k > 0:
            mehler = mehler * correlation / k
        u += mehler * (coeff[k] @ coeff[k].T)
    u = 0.5 * (u + u.T) / size.n
    u.diagonal().copy_(second_moment / size.n)
    v = (coeff[1].mean(dim=1) / norm)[:, None] * w / math.sqrt(size.d)
    return FeatureCovariance(u, v, w, x0, labels, counts, order, n_nodes)


# ---------------------------------------------------------------------- U_gep with extensive centroids


@dataclass(frozen=True, eq=False)
class NeuronGEPCoefficients:
    """Per-class, per-neuron GEP coefficients of one W (``speciation.md`` §1.1; float64, CPU).

    Every array has shape (C, p): row c holds the coefficients of the p neurons for a class-c input,
    from :func:`diffmix.derivations.neuron_coefficients` at mean m_{c,i} = e^{-t} w_i.mu_c / sqrt(d)
    (includes e^{-t}) and row norm r_i = ||w_i|| / sqrt(d).

    Attributes
    ----------
    mean : ndarray, shape (C, p)
        m_{c,i}.
    row_norm : ndarray, shape (p,)
        r_i.
    mu0, mu1, a_t, b_t, v_t2, s_t2, kappa2 : ndarray, shape (C, p)
        As in :class:`diffmix.derivations.NeuronCoefficients` (a_t = e^{-t} mu1, b_t = sqrt(Delta_t) mu1,
        no factor r_i); v_t2 is clipped at 0.
    """

    mean: np.ndarray
    row_norm: np.ndarray
    mu0: np.ndarray
    mu1: np.ndarray
    a_t: np.ndarray
    b_t: np.ndarray
    v_t2: np.ndarray
    s_t2: np.ndarray
    kappa2: np.ndarray


def neuron_gep_coefficients(model: Model, W: torch.Tensor, mu: torch.Tensor) -> NeuronGEPCoefficients:
    """Per-neuron GEP coefficients of every class for the weights W and centroids mu (``speciation.md`` §1.1).

    Parameters
    ----------
    model : Model
    W : Tensor, shape (p, d)
    mu : Tensor, shape (C, d)
        The centroids (e.g. :func:`centroids`).

    Returns
    -------
    NeuronGEPCoefficients
        Arrays of shape (C, p); the same values serve the training U_gep (:func:`gep_matrices_centroids`)
        and the population GEP (:func:`diffmix.gpu.population_matrices` with ``extensive=True``), since
        a class-c input has the same pre-activation mean and width in both.

    Examples
    --------
    >>> m = Model("tanh", 0.5, 2.0, 1.0, [0.5, 0.5], [1.0, 1.0], [1.0, 1.0])
    >>> W = sample_weights(3, 2, generator=torch.Generator().manual_seed(0), normalize_rows=True)
    >>> k = neuron_gep_coefficients(m, W, centroids(m, 2))
    >>> k.mu0.shape, bool(np.allclose(k.row_norm, 1.0))
    ((2, 3), True)
    """
    from diffmix.theory import neuron_coefficients

    w = W.detach().to(device="cpu", dtype=torch.float64).numpy()
    mu_np = mu.detach().to(device="cpu", dtype=torch.float64).numpy()
    d = w.shape[1]
    row_norm = np.linalg.norm(w, axis=1) / math.sqrt(d)
    mean = math.exp(-model.t) * (mu_np @ w.T) / math.sqrt(d)                 # (C, p)
    fields = {k: np.empty_like(mean) for k in ("mu0", "mu1", "a_t", "b_t", "v_t2", "s_t2", "kappa2")}
    for c, var in enumerate(model.variances):
        k = neuron_coefficients(model.activation, model.t, var, mean[c], row_norm=row_norm)
        for name in fields:
            fields[name][c] = getattr(k, name)
    fields["v_t2"] = np.clip(fields["v_t2"], 0.0, None)
    return NeuronGEPCoefficients(mean, row_norm, **fields)


@dataclass(frozen=True, eq=False)
class GEPCentroidMatrices:
    """U_gep, V_gep of a mixture with extensive centroids (``speciation.md`` §1.2, ``gep.md`` §4).

    Attributes
    ----------
    U : Tensor, shape (p, p), or None
        U_gep = F F^T / n + sum_c rho_c diag(b_c) K diag(b_c) + diag(s2)  (paper eq. (50)).
    V : Tensor, shape (p, d)
        V_gep = diag(bbar) W / sqrt(d).
    W : Tensor, shape (p, d)
    X0 : Tensor, shape (n, d)
    labels : Tensor, shape (n,), dtype long
    counts : tuple of int, length C
        n_c; the weights used are rho_c = n_c / n.
    F : Tensor, shape (p, n)
        Column nu: mu0_c + sigma_c a_c o (W z_nu / sqrt(d)) + sqrt(v2_c) o eta_nu, c = c(nu).
    s2 : Tensor, shape (p,)
        sum_c rho_c s2_c (per neuron: U's diagonal shift is not a multiple of I_p).
    bbar : Tensor, shape (p,)
        sum_c rho_c b_c.
    coefficients : NeuronGEPCoefficients
        The per-class, per-neuron coefficients used (arrays (C, p)).
    """

    U: torch.Tensor | None
    V: torch.Tensor
    W: torch.Tensor
    X0: torch.Tensor
    labels: torch.Tensor
    counts: tuple[int, ...]
    F: torch.Tensor
    s2: torch.Tensor
    bbar: torch.Tensor
    coefficients: NeuronGEPCoefficients

    def factor(self) -> torch.Tensor:
        """B of shape (p, n + C d) with U_gep = B B^T + diag(s2).

        B = [F / sqrt(n), sqrt(rho_1) diag(b_1) W / sqrt(d), ..., sqrt(rho_C) diag(b_C) W / sqrt(d)].
        The shift is per neuron, so :meth:`diffmix.theory.GradientFlow.from_factor` (scalar s2) does not
        apply; use the dense U with ``from_matrices``.
        """
        n, d = self.F.shape[1], self.W.shape[1]
        b = torch.as_tensor(self.coefficients.b_t, dtype=self.W.dtype, device=self.W.device)
        blocks = [self.F / math.sqrt(n)]
        for c, n_c in enumerate(self.counts):
            blocks.append(math.sqrt(n_c / n) * b[c][:, None] * self.W / math.sqrt(d))
        return torch.cat(blocks, dim=1)


def gep_matrices_centroids(model: Model, d: int, *, seed: int | None = None,
                           generator: torch.Generator | None = None, normalize_rows: bool = False,
                           device: torch.device | str | None = None, dtype: torch.dtype = torch.float64,
                           dense: bool = True) -> GEPCentroidMatrices:
    """U_gep and V_gep with extensive centroids and per-neuron coefficients, with their W and training set.

    Implements ``speciation.md`` §1.2 (paper arXiv 2605.06367, eq. (50), App. D-E) and the training V
    of ``gep.md`` §4:

        F_nu  = mu0_c + sigma_c a_c o (W z_nu / sqrt(d)) + sqrt(v2_c) o eta_nu,     c = c(nu),
        U_gep = (1/n) sum_nu F_nu F_nu^T + sum_c rho_c diag(b_c) K diag(b_c) + diag(sum_c rho_c s2_c),
        V_gep = diag(bbar) W / sqrt(d),  bbar = sum_c rho_c b_c,

    with K = W W^T / d, sigma_c z_nu = x0_nu - mu_c, eta_nu the columns of Omega, rho_c = n_c / n and
    the coefficients of :func:`neuron_gep_coefficients` (mean m_{c,i} = e^{-t} w_i.mu_c / sqrt(d),
    exact row norms r_i = ||w_i|| / sqrt(d), which removes an O(d^{-1/2}) diagonal mismatch). Any
    activation that :func:`diffmix.derivations.neuron_coefficients` handles is accepted, odd or not,
    centered or not (the mean part mu0 is kept). Draws as :func:`gep_matrices` (W, then the data, then
    Omega, p x n), so :func:`true_feature_covariance` with the same seed has the same W and X0, and a
    centered model gets the same Omega as :func:`gep_matrices`. Cost: C per-neuron coefficient
    evaluations of p points (~1.5 ms per point for tanh) plus O(p^2 n) for the dense U.

    Parameters
    ----------
    model : Model
    d : int
        Data dimension, >= C.
    seed, generator
        Exactly one: an int seed or a torch.Generator.
    normalize_rows : bool, optional
        Rescale the rows of W to norm sqrt(d) (see :func:`sample_weights`).
    device, dtype
        Of the results (default CPU, float64).
    dense : bool, optional
        Form U; with False, U is None (use :meth:`GEPCentroidMatrices.factor` and ``s2``).

    Returns
    -------
    GEPCentroidMatrices

    Examples
    --------
    >>> m = Model("tanh", 0.5, 2.0, 1.0, [0.5, 0.5], [1.0, 1.0], [1.0, 1.0])
    >>> g = gep_matrices_centroids(m, 4, seed=0)
    >>> B = g.factor()
    >>> tuple(g.U.shape), bool(torch.allclose(g.U, B @ B.T + torch.diag(g.s2)))
    ((8, 8), True)
    """
    size, gen, w, x0, labels, counts = _draw_system(model, d, seed, generator, normalize_rows, device, dtype)
    omega = _normal((size.p, size.n), gen).to(device=w.device, dtype=dtype)
    mu = centroids(model, size.d, dtype=torch.float64)
    coeffs = neuron_gep_coefficients(model, w, mu)
    to = dict(dtype=dtype, device=w.device)
    rho = torch.tensor([n_c / size.n for n_c in counts], **to)
    mu0 = torch.as_tensor(coeffs.mu0, **to)
    a = torch.as_tensor(coeffs.a_t, **to)
    b = torch.as_tensor(coeffs.b_t, **to)
    v = torch.sqrt(torch.as_tensor(coeffs.v_t2, **to))
    s2 = rho @ torch.as_tensor(coeffs.s_t2, **to)
    bbar = rho @ b
    # F column by column: sigma_c a_c o W z_nu / sqrt(d) = a_c o W (x0_nu - mu_c) / sqrt(d).
    fluct = w @ (x0 - mu.to(**to)[labels]).T / math.sqrt(size.d)             # (p, n)
    f = mu0[labels].T + a[labels].T * fluct + v[labels].T * omega
    v_gep = bbar[:, None] * w / math.sqrt(size.d)
    if not dense:
        return GEPCentroidMatrices(None, v_gep, w, x0, labels, counts, f, s2, bbar, coeffs)
    kernel = w @ w.T / size.d
    diag_b = (rho[:, None, None] * b[:, :, None] * b[:, None, :]).sum(dim=0)   # sum_c rho_c b_c b_c^T
    u = f @ f.T / size.n + diag_b * kernel
    u.diagonal().add_(s2)
    return GEPCentroidMatrices(0.5 * (u + u.T), v_gep, w, x0, labels, counts, f, s2, bbar, coeffs)
