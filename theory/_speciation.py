"""Class speciation in the backward diffusion: large-t expansion of U_gep, outliers, speciation times.

Implements ``shared/theory/speciation.md`` §2-3 and §5 (paper arXiv 2605.06367, Sec. 3.1, eqs. (10)-(13),
Result 1). Notation: ``theory/notation.md``; d data dimension, p = psi_p d features, class c with
weight rho_c, centroid mu_c (||mu_c||^2 = d * ``centroid_norm2_c``) and variance sigma_c^2.

Large-t expansion (eq. (10), speciation.md §2). For t >> 1,

    U_gep ~= mu1_inf^2 W [ Gammabar_t^2 I_d + e^{-2t} M ] W^T / d + s^2 I_p,
    M = sum_c rho_c mu_c mu_c^T,   Gammabar_t^2 = 1 + e^{-2t} (sigmabar^2 - 1),   sigmabar^2 = sum_c rho_c sigma_c^2,

with mu1_inf = E[sigma'(z)], z ~ N(0, 1) (a constant: the slope at Gamma = 1) and s^2 = sum_c rho_c s_c^2(t)
(centered GEP coefficients of class c at time t; -> s2_inf = E[sigma(z)^2] - E[sigma(z)]^2 - mu1_inf^2).
The signal is the rank-<=C matrix e^{-2t} M inside the column space of W, so the BBP results for a spiked
sample covariance with aspect ratio d/p apply (not the additive deformed-Wigner ones).

Modes. Let lambda_k (k = 1..C) be the eigenvalues of M, obtained from the C x C matrix
(B B^T)_{cc'} = sqrt(rho_c rho_c') mu_c . mu_c' (same nonzero spectrum as M), with unit eigenvectors v_k.
Mode k has signal-to-bulk ratio q_k(t) = e^{-2t} lambda_k / Gammabar_t^2 and

    outlier (eq. (11), sharp form)   q_k(t) > psi_p^{-1/2}
    speciation time                  t_s^(k) = (1/2) log( sqrt(psi_p) lambda_k + 1 - sigmabar^2 )   (speciation.md §5)
                                     (None if sqrt(psi_p) lambda_k <= sigmabar^2: no outlier at any t >= 0)
    outlier location                 lambda_out = mu1_inf^2 Gammabar^2 (1 + q)(psi_p + 1/q) + s^2
    bulk right edge                  lambda_+   = mu1_inf^2 Gammabar^2 (1 + sqrt(psi_p))^2 + s^2
    eigenvector overlap (R^p)        cos_k^2 = 1 - 1 / (psi_p q_k^2)   (0 below the transition)

An outlier is present for 0 <= t < t_s^(k): "earlier" in the paper's sense is smaller t (later in the
backward process). For orthogonal centroids lambda_c = rho_c ||mu_c||^2 and mode c is class c; with
sigmabar^2 = 1, t_s^c = (1/2) log(sqrt(psi_p) rho_c ||mu_c||^2). Extensive centroids ||mu_c||^2 = k_c d and
weak imbalance give t_s^c = (1/2) log d + (1/2) log(k_c rho_c) + (1/4) log psi_p + o(1) (eq. (12));
rho_c ~ d^{-alpha_c} gives ((1 - alpha_c)/2) log d + O(1) (eq. (13)); a subextensive centroid
||mu_c||^2 ~ d^{1 - beta_c} gives ((1 - alpha_c - beta_c)/2) log d + O(1) (end of paper Sec. 3.1).

Class composition and a class's time. The composition of mode k is (v_{k,c}^2)_c (sums to 1 over classes).
The share of class c's centroid carried by mode k is w_{c,k} = (mu_c . u_k)^2 / ||mu_c||^2
= lambda_k v_{k,c}^2 / (rho_c ||mu_c||^2) (u_k the unit eigenvector of M in R^d; sums to 1 over k).
Class c has speciated when its whole centroid lies in the span of outlier directions, so its time is
the smallest t_s^(k) over the modes that carry it (w_{c,k} > ``composition_tol``); None if one of those
modes never gives an outlier or if mu_c = 0. Orthogonal centroids: t_s^c = t_s^(c). Example: mu_2 = -mu_1,
rho = (1/2, 1/2): one mode (lambda = ||mu||^2) carrying both classes, so both classes speciate together.
With cosines the first outlier is the common direction and classes separate only when the
"difference" mode emerges: that later (smaller-t) time is the class time. The predicted RMS overlap of
the projected centroid mutilde_c = W mu_c / sqrt(d) with the top eigenvectors is
RMS_c(t)^2 = sum_k w_{c,k} cos_k^2(t) (``overlap_curve``).

d-dependent weights and norms (not part of the Model schema). ``weight_exponents`` alpha_c give
rho_c(d) = rho_c d^{-alpha_c} / sum_c' rho_c' d^{-alpha_c'} (the model's weights renormalized to sum 1;
only differences of the alpha_c matter, and with min alpha = 0 the minority weight is
rho_c d^{-alpha_c} / sum_{alpha_c'=0} rho_c' + o(d^{-alpha_c})). ``norm_exponents`` beta_c give
||mu_c||^2 = centroid_norm2_c d^{1 - beta_c}. :func:`model_at` returns the Model of dimension d with these
weights and norms, on which everything else is evaluated. The model's own t is not used: times are outputs.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from diffmix.derivations import centered_coefficients

from ._model import Model, ModelError

__all__ = ["LargeTExpansion", "SpeciationMode", "SpeciationResult", "bulk_edge", "large_t_expansion",
           "model_at", "outlier_eigenvalues", "overlap_curve", "perturbation_modes", "signal_to_bulk",
           "speciation_time_slopes", "speciation_times"]

#: Below this share w_{c,k} a mode is not counted as carrying class c (see the module docstring).
COMPOSITION_TOL = 1e-9


# ---------------------------------------------------------------------- inputs


def _check_d(d: object) -> float:
    if isinstance(d, bool) or not isinstance(d, (int, float, np.integer, np.floating)):
        raise ValueError(f"d = {d!r}: must be a number >= 1 (the data dimension)")
    d = float(d)
    if not math.isfinite(d) or d < 1:
        raise ValueError(f"d = {d!r}: must be a finite number >= 1 (the data dimension)")
    return d


def _exponents(name: str, values, n_classes: int) -> np.ndarray:
    if values is None:
        return np.zeros(n_classes)
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ValueError(f"{name}: must be a sequence of numbers, one per class (C = {n_classes})")
    try:
        arr = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{name} = {values!r}: must be numbers, one per class") from None
    if arr.shape[0] != n_classes:
        raise ValueError(f"{name}: has {arr.shape[0]} entries, the model has C = {n_classes} classes")
    bad = ~(np.isfinite(arr) & (arr >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] = {float(arr[i])!r}: must be a finite number >= 0")
    return arr


def model_at(model: Model, d: float, *, weight_exponents=None, norm_exponents=None) -> Model:
    """The model at dimension d with d-dependent weights and centroid norms (module docstring).

    rho_c(d) = rho_c d^{-alpha_c} / sum_c' rho_c' d^{-alpha_c'} and
    centroid_norm2_c(d) = ||mu_c||^2 / d = centroid_norm2_c d^{-beta_c}.

    Parameters
    ----------
    model : Model
    d : float
        Data dimension, >= 1.
    weight_exponents, norm_exponents : sequence of float, optional
        alpha_c >= 0 and beta_c >= 0, one per class (default all 0: ``model`` unchanged).

    Examples
    --------
    >>> m = Model("tanh", 1.0, 4.0, 2.0, [0.5, 0.5], [1.0, 1.0], [1.0, 1.0])
    >>> [round(w, 6) for w in model_at(m, 100, weight_exponents=[0, 0.5]).weights]
    [0.909091, 0.090909]
    >>> model_at(m, 100, norm_exponents=[0, 0.5]).centroid_norm2
    (1.0, 0.1)
    """
    d = _check_d(d)
    alpha = _exponents("weight_exponents", weight_exponents, model.n_classes)
    beta = _exponents("norm_exponents", norm_exponents, model.n_classes)
    if not alpha.any() and not beta.any():
        return model
    log_w = np.log(np.array(model.weights)) - (alpha - alpha.min()) * math.log(d)
    w = np.exp(log_w - log_w.max())
    w = w / math.fsum(w)
    w[int(np.argmax(w))] += 1.0 - math.fsum(w)       # sum exactly 1 in floating point
    norms = np.array(model.centroid_norm2) * np.power(d, -beta)
    try:
        return model.replace(weights=tuple(float(x) for x in w), centroid_norm2=tuple(float(x) for x in norms))
    except ModelError as exc:
        raise ValueError(f"weight_exponents/norm_exponents at d = {d:g}: {exc}") from None


# ---------------------------------------------------------------------- constants of the activation


@functools.lru_cache(maxsize=64)
def _activation_constants(activation: str) -> tuple[float, float]:
    """(mu1_inf, s2_inf): E[sigma'(z)] and the large-t noise floor (speciation.md §0), Gamma = 1."""
    c = centered_coefficients(activation, 30.0, 1.0)
    return float(c.mu1), float(c.s_t2)


def _mu1_inf(model: Model) -> float:
    mu1 = _activation_constants(model.activation)[0]
    if abs(mu1) < 1e-12:
        raise ValueError(f"activation {model.activation!r}: E[sigma'(z)] = {mu1:.3g}; the large-t expansion "
                         "(eq. 10) has no linear term, so centroids give no outlier at this order")
    return mu1


def _s2_at(model: Model, t: float) -> float:
    """s^2 = sum_c rho_c s_c^2(t), centered coefficients of each class at time t."""
    return math.fsum(w * float(centered_coefficients(model.activation, t, v).s_t2)
                     for w, v in zip(model.weights, model.variances))


def _gammabar2(model: Model, t) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    return 1.0 + np.exp(-2.0 * t) * (model.mean_variance - 1.0)


def _check_times(t) -> np.ndarray:
    arr = np.asarray(t, dtype=float)
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        raise ValueError(f"t = {arr[bad].ravel()[0]!r}: diffusion times must be finite numbers > 0")
    return arr


# ---------------------------------------------------------------------- modes of M


@dataclass(frozen=True)
class SpeciationMode:
    """One eigen-direction of M = sum_c rho_c mu_c mu_c^T (speciation.md §5).

    Attributes
    ----------
    t_s : float or None
        Speciation time (1/2) log(sqrt(psi_p) lambda + 1 - sigmabar^2); None if no outlier at any t >= 0.
    lam : float
        Eigenvalue lambda_k of M (the JSON key is ``lambda``).
    composition : tuple of float, length C
        v_{k,c}^2, the class composition of the mode (sums to 1).
    shares : tuple of float, length C
        w_{c,k} = (mu_c . u_k)^2 / ||mu_c||^2, the share of class c's centroid along this mode (0 if mu_c = 0).
    """

    t_s: float | None
    lam: float
    composition: tuple[float, ...]
    shares: tuple[float, ...]

    def as_dict(self) -> dict:
        return {"t_s": self.t_s, "lambda": self.lam, "classes": list(self.composition)}


def _gram(model: Model, d: float) -> np.ndarray:
    norms = np.sqrt(np.array(model.centroid_norm2))
    return d * np.outer(norms, norms) * np.array(model.cosine)


def _speciation_time(model: Model, lam: float) -> float | None:
    arg = math.sqrt(model.psi_p) * lam + 1.0 - model.mean_variance
    return 0.5 * math.log(arg) if arg > 1.0 else None


def perturbation_modes(model: Model, d: float, *, weight_exponents=None,
                       norm_exponents=None) -> tuple[SpeciationMode, ...]:
    """Eigen-directions of M = sum_c rho_c mu_c mu_c^T with their speciation times (speciation.md §5).

    Parameters
    ----------
    model : Model
    d : float
        Data dimension, >= 1.
    weight_exponents, norm_exponents : sequence of float, optional
        See :func:`model_at`.

    Returns
    -------
    tuple of SpeciationMode, length C
        Sorted by decreasing lambda (so by decreasing t_s).

    Examples
    --------
    Opposite centroids with equal weights: one mode carries both classes, the other is empty.

    >>> m = Model("tanh", 1.0, 4.0, 2.0, [0.5, 0.5], [1.0, 1.0], [1.0, 1.0], [[1, -1], [-1, 1]])
    >>> [(round(k.lam, 6), k.composition, k.shares) for k in perturbation_modes(m, 100)]
    [(100.0, (0.5, 0.5), (1.0, 1.0)), (0.0, (0.5, 0.5), (0.0, 0.0))]
    """
    d = _check_d(d)
    model = model_at(model, d, weight_exponents=weight_exponents, norm_exponents=norm_exponents)
    rho = np.array(model.weights)
    gram = _gram(model, d)
    bbt = np.sqrt(np.outer(rho, rho)) * gram
    lam, vec = np.linalg.eigh(0.5 * (bbt + bbt.T))
    order = np.argsort(-lam, kind="stable")
    lam, vec = lam[order], vec[:, order]
    scale = max(float(lam[0]), 0.0)
    norm2 = rho * np.diag(gram)                          # rho_c ||mu_c||^2
    modes = []
    for k in range(model.n_classes):
        lam_k = float(lam[k]) if lam[k] > 1e-13 * scale else 0.0
        comp = vec[:, k] ** 2
        comp = comp / comp.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(norm2 > 0, lam_k * comp / np.where(norm2 > 0, norm2, 1.0), 0.0)
        t_s = _speciation_time(model, lam_k) if lam_k > 0 else None
        modes.append(SpeciationMode(t_s, lam_k, tuple(float(x) + 0.0 for x in comp),
                                    tuple(float(x) + 0.0 for x in share)))
    return tuple(modes)


# ---------------------------------------------------------------------- result


@dataclass(frozen=True)
class SpeciationResult:
    """Speciation times of a model at dimension d (speciation.md §3, §5; paper eqs. (11)-(13)).

    Attributes
    ----------
    classes : tuple of dict
        Per class {"t_s": float or None}: the class time read from the modes (module docstring).
    modes : tuple of SpeciationMode
        The eigen-directions of M, by decreasing lambda.
    d : float
    weights : tuple of float
        rho_c(d) used (after ``weight_exponents``).
    centroid_norm2 : tuple of float
        ||mu_c||^2 / d used (after ``norm_exponents``).
    mean_variance : float
        sigmabar^2.
    slopes : tuple of float or None
        Leading coefficient of log d in t_s^c for orthogonal centroids: (1 - alpha_c' - beta_c) / 2 with
        alpha_c' = alpha_c - min alpha (eqs. (12)-(13)); None where it is <= 0 (no speciation at leading order).
    """

    classes: tuple[dict, ...]
    modes: tuple[SpeciationMode, ...]
    d: float
    weights: tuple[float, ...]
    centroid_norm2: tuple[float, ...]
    mean_variance: float
    slopes: tuple[float | None, ...]

    @property
    def t_s(self) -> tuple[float | None, ...]:
        """The class times as a tuple."""
        return tuple(c["t_s"] for c in self.classes)

    def as_dict(self) -> dict:
        """The JSON object of ``diffmix speciation --json``."""
        return {"classes": [dict(c) for c in self.classes], "modes": [k.as_dict() for k in self.modes]}


def speciation_time_slopes(model: Model, *, weight_exponents=None,
                           norm_exponents=None) -> tuple[float | None, ...]:
    """lim t_s^c / log d = (1 - alpha_c' - beta_c) / 2 (eqs. (12), (13); end of paper Sec. 3.1).

    alpha_c' = alpha_c - min_c alpha_c is the exponent left after renormalizing the weights (see
    :func:`model_at`). Valid for orthogonal centroids with centroid_norm2_c > 0; None where the slope
    is <= 0 or the centroid is zero (no speciation at leading order).

    Examples
    --------
    >>> m = Model("tanh", 1.0, 4.0, 2.0, [0.5, 0.5], [1.0, 1.0], [1.0, 1.0])
    >>> speciation_time_slopes(m, weight_exponents=[0, 0.5], norm_exponents=[0, 0.25])
    (0.5, 0.125)
    """
    alpha = _exponents("weight_exponents", weight_exponents, model.n_classes)
    beta = _exponents("norm_exponents", norm_exponents, model.n_classes)
    slopes = 0.5 * (1.0 - (alpha - alpha.min()) - beta)
    return tuple(float(s) if s > 0 and m > 0 else None for s, m in zip(slopes, model.centroid_norm2))


def speciation_times(model: Model, d: float, *, weight_exponents=None, norm_exponents=None,
                     composition_tol: float = COMPOSITION_TOL) -> SpeciationResult:
    """Speciation time of each class and of each eigen-direction of M (speciation.md §3, §5; eqs. (11)-(13)).

    t_s^(k) = (1/2) log(sqrt(psi_p) lambda_k + 1 - sigmabar^2) for each eigenvalue lambda_k of
    M = sum_c rho_c mu_c mu_c^T (None if sqrt(psi_p) lambda_k <= sigmabar^2); class c's time is the smallest
    t_s^(k) over the modes carrying a share > ``composition_tol`` of its centroid (None if one of them
    has none, or mu_c = 0). For orthogonal centroids t_s^c = (1/2) log(sqrt(psi_p) rho_c ||mu_c||^2 + 1 - sigmabar^2).
    mu1_inf cancels: the times do not depend on the activation (only E[sigma'(z)] != 0 is needed),
    nor on psi_n or the model's t.

    Parameters
    ----------
    model : Model
        Centroid norms ||mu_c||^2 = d * centroid_norm2_c and cosines from the model.
    d : float
        Data dimension, >= 1 (non-integer values are accepted, for curves in d).
    weight_exponents : sequence of float, optional
        alpha_c >= 0: rho_c(d) = rho_c d^{-alpha_c} / sum_c' rho_c' d^{-alpha_c'} (strong imbalance, eq. (13)).
    norm_exponents : sequence of float, optional
        beta_c >= 0: ||mu_c||^2 = centroid_norm2_c d^{1 - beta_c} (subextensive centroids).
    composition_tol : float
        Share below which a mode does not count as carrying a class.

    Returns
    -------
    SpeciationResult
        ``.classes`` (dicts {"t_s": float or None}) and ``.modes``.

    Raises
    ------
    ValueError
        Bad d, exponents (naming the parameter and entry) or an activation with E[sigma'(z)] = 0.

    Examples
    --------
    Weak imbalance rho = (0.7, 0.3), orthogonal extensive centroids, psi_p = 4, d = 200 (speciation.md §5):

    >>> m = Model("tanh", 1.0, 4.0, 2.0, [0.7, 0.3], [1.0, 1.0], [1.0, 1.0])
    >>> r = speciation_times(m, 200)
    >>> [round(t / math.log(200), 3) for t in r.t_s]
    [0.532, 0.452]
    >>> r.as_dict()["modes"][1]["classes"]
    [0.0, 1.0]
    """
    d = _check_d(d)
    if not (isinstance(composition_tol, (int, float)) and 0 <= composition_tol < 1):
        raise ValueError(f"composition_tol = {composition_tol!r}: must be a number in [0, 1)")
    _mu1_inf(model)
    slopes = speciation_time_slopes(model, weight_exponents=weight_exponents, norm_exponents=norm_exponents)
    m_d = model_at(model, d, weight_exponents=weight_exponents, norm_exponents=norm_exponents)
    modes = perturbation_modes(m_d, d)
    classes = []
    for c in range(m_d.n_classes):
        carrying = [k for k in modes if k.shares[c] > composition_tol]
        if not carrying or any(k.t_s is None for k in carrying):
            t_s = None
        else:
            t_s = min(k.t_s for k in carrying)
        classes.append({"t_s": t_s})
    return SpeciationResult(tuple(classes), modes, d, m_d.weights, m_d.centroid_norm2, m_d.mean_variance, slopes)


# ---------------------------------------------------------------------- curves in t


def signal_to_bulk(model: Model, d: float, t, *, weight_exponents=None, norm_exponents=None) -> np.ndarray:
    """q_k(t) = e^{-2t} lambda_k / Gammabar_t^2 for each mode of M (speciation.md §2).

    Mode k gives an outlier iff q_k(t) > psi_p^{-1/2} (eq. (11), sharp form).

    Returns
    -------
    ndarray, shape t.shape + (C,)
        Modes in the order of :func:`perturbation_modes`.

    Examples
    --------
    >>> m = Model("tanh", 1.0, 4.0, 2.0, [0.7, 0.3], [1.0, 1.0], [1.0, 1.0])
    >>> t_s = speciation_times(m, 200).t_s
    >>> [round(float(q), 12) for q in signal_to_bulk(m, 200, t_s[0])]
    [0.5, 0.214285714286]
    """
    t = _check_times(t)
    modes = perturbation_modes(model, d, weight_exponents=weight_exponents, norm_exponents=norm_exponents)
    m_d = model_at(model, d, weight_exponents=weight_exponents, norm_exponents=norm_exponents)
    lam = np.array([k.lam for k in modes])
    return (np.exp(-2.0 * t) / _gammabar2(m_d, t))[..., None] * lam


def bulk_edge(model: Model, t) -> np.ndarray:
    """Right edge of the bulk in the large-t limit: mu1_inf^2 Gammabar_t^2 (1 + sqrt(psi_p))^2 + s^2(t).

    s^2(t) = sum_c rho_c s_c^2(t) (centered coefficients). speciation.md §2, §5 (3.329 for tanh, psi_p = 4,
    Gammabar = 1, s^2 = s2_inf).

    Examples
    --------
    >>> m = Model("tanh", 1.0, 4.0, 2.0, [0.7, 0.3], [1.0, 1.0], [1.0, 1.0])
    >>> round(float(bulk_edge(m, 10.0)), 3)
    3.329
    """
    t = _check_times(t)
    mu1 = _mu1_inf(model)
    s2 = np.vectorize(lambda x: _s2_at(model, float(x)), otypes=[float])(t)
    return mu1**2 * _gammabar2(model, t) * (1.0 + math.sqrt(model.psi_p)) ** 2 + s2


def outlier_eigenvalues(model: Model, d: float, t, *, weight_exponents=None, norm_exponents=None) -> np.ndarray:
    """BBP location of the outlier of each mode (speciation.md §2): NaN where there is none.

    lambda_out = mu1_inf^2 Gammabar_t^2 (1 + q)(psi_p + 1/q) + s^2(t) for q > psi_p^{-1/2}.

    Returns
    -------
    ndarray, shape t.shape + (C,)

    Examples
    --------
    >>> m = Model("tanh", 1.0, 4.0, 2.0, [0.7, 0.3], [1.0, 1.0], [1.0, 1.0])
    >>> t_s = speciation_times(m, 200).t_s[0]
    >>> lam = outlier_eigenvalues(m, 200, [t_s - 1e-9, 2.0])
    >>> round(float(lam[0, 0] - bulk_edge(m, t_s)), 6), round(float(lam[1, 0]), 3)
    (0.0, 5.768)
    """
    t = _check_times(t)
    m_d = model_at(model, d, weight_exponents=weight_exponents, norm_exponents=norm_exponents)
    q = signal_to_bulk(m_d, d, t)
    mu1 = _mu1_inf(model)
    s2 = np.vectorize(lambda x: _s2_at(m_d, float(x)), otypes=[float])(t)[..., None]
    g2 = _gammabar2(m_d, t)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = mu1**2 * g2 * (1.0 + q) * (m_d.psi_p + 1.0 / q) + s2
    return np.where(q > 1.0 / math.sqrt(m_d.psi_p), lam, np.nan)


def overlap_curve(model: Model, d: float, t, *, weight_exponents=None, norm_exponents=None) -> np.ndarray:
    """Predicted RMS overlap of each projected centroid with the top-C eigenvectors (speciation.md §2, §5).

    RMS_c(t) = sqrt( sum_k w_{c,k} max(0, 1 - 1/(psi_p q_k(t)^2)) ); orthogonal centroids:
    sqrt(max(0, 1 - 1/(psi_p q_c^2))). It vanishes for t >= t_s^c and equals 1/sqrt(2) at t_s^c - (1/4) log 2
    when sigmabar^2 = 1. Zero centroids give 0.

    Returns
    -------
    ndarray, shape t.shape + (C,)

    Examples
    --------
    >>> m = Model("tanh", 1.0, 4.0, 2.0, [0.7, 0.3], [1.0, 1.0], [1.0, 1.0])
    >>> t_s = speciation_times(m, 200).t_s
    >>> round(float(overlap_curve(m, 200, t_s[1] - math.log(2) / 4)[1]), 12)
    0.707106781187
    """
    t = _check_times(t)
    modes = perturbation_modes(model, d, weight_exponents=weight_exponents, norm_exponents=norm_exponents)
    q = signal_to_bulk(model, d, t, weight_exponents=weight_exponents, norm_exponents=norm_exponents)
    psi_p = model.psi_p
    with np.errstate(divide="ignore"):
        cos2 = np.where(q > 1.0 / math.sqrt(psi_p), 1.0 - 1.0 / (psi_p * q**2), 0.0)
    shares = np.array([k.shares for k in modes])          # (K, C)
    return np.sqrt(np.clip(cos2 @ shares, 0.0, None))


# ---------------------------------------------------------------------- eq. (10) as a matrix


@dataclass(frozen=True)
class LargeTExpansion:
    """The large-t expansion of U_gep at one t (eq. (10), speciation.md §2).

    U_gep ~= mu1_inf^2 W [ Gammabar_t^2 I + e^{-2t} M ] W^T / d + s^2 I  with M = sum_c rho_c mu_c mu_c^T.

    Attributes
    ----------
    t, mu1_inf, gammabar2, s2 : float
        Diffusion time, E[sigma'(z)], Gammabar_t^2 and s^2 = sum_c rho_c s_c^2(t).
    weights : tuple of float
        rho_c used.
    spike : float
        mu1_inf^2 e^{-2t}: U_gep - U_gep^(0) = spike * sum_c rho_c mutilde_c mutilde_c^T, mutilde_c = W mu_c / sqrt(d).
    """

    t: float
    mu1_inf: float
    gammabar2: float
    s2: float
    weights: tuple[float, ...]
    spike: float

    def matrix(self, W: np.ndarray, centroids: np.ndarray) -> np.ndarray:
        """The p x p matrix of eq. (10) for weights W (p, d) and centroids (C, d) (rows mu_c).

        Examples
        --------
        >>> m = Model("tanh", 1.0, 4.0, 2.0, [0.7, 0.3], [1.0, 1.0], [1.0, 1.0])
        >>> e = large_t_expansion(m, 3.0)
        >>> W = np.random.default_rng(0).standard_normal((8, 2))
        >>> e.matrix(W, np.sqrt(2) * np.eye(2)).shape
        (8, 8)
        """
        W = np.asarray(W, dtype=float)
        mu = np.asarray(centroids, dtype=float)
        if W.ndim != 2 or mu.ndim != 2 or mu.shape != (len(self.weights), W.shape[1]):
            raise ValueError(f"W {W.shape}, centroids {mu.shape}: need W (p, d) and centroids (C, d), "
                             f"C = {len(self.weights)}")
        d = W.shape[1]
        proj = W @ mu.T / math.sqrt(d)                    # (p, C): mutilde_c as columns
        u = self.mu1_inf**2 * self.gammabar2 * (W @ W.T) / d
        u += self.spike * (proj * np.array(self.weights)) @ proj.T
        u[np.diag_indices_from(u)] += self.s2
        return u


def large_t_expansion(model: Model, t: float) -> LargeTExpansion:
    """The coefficients of eq. (10) at diffusion time t > 0 (speciation.md §2).

    Examples
    --------
    >>> e = large_t_expansion(Model("tanh", 1.0, 4.0, 2.0, [0.7, 0.3], [1.0, 1.0], [1.0, 1.0]), 10.0)
    >>> round(e.mu1_inf**2, 6), round(e.s2, 6), e.gammabar2
    (0.366879, 0.027415, 1.0)
    """
    t = float(_check_times(t))
    mu1 = _mu1_inf(model)
    return LargeTExpansion(t, mu1, float(_gammabar2(model, t)), _s2_at(model, t), model.weights,
                           mu1**2 * math.exp(-2.0 * t))
