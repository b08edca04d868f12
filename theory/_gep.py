"""GEP coefficients of a Model's classes and the mixture-level quantities built from them.

Per class c (centered coefficients of gep.md §1; paper App. D, eqs. (33)-(37), (113)) and, for the
centered-mixture U_gep of gep.md §2 (paper eq. (50) with subextensive centroids; spectrum.md §1):
alpha_c = a_c^2 sigma_c^2, beta = sum_c rho_c b_c^2, s2 = sum_c rho_c s_c^2, and for V_gep
(gep.md §3) bbar = sum_c rho_c b_c.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffmix.derivations import GEPCoefficients, centered_coefficients, neuron_coefficients

from ._model import Model

__all__ = ["MixtureGEP", "class_coefficients", "mixture_gep", "neuron_coefficients", "needs_extensive_gep"]

# neuron_coefficients (per-neuron coefficients with a data mean, gep.md §1 "Generalization") is
# re-exported so that diffmix.gpu reaches the derivations through theory only.


def class_coefficients(model: Model, *, dps: int | None = None,
                       method: str = "auto") -> tuple[GEPCoefficients, ...]:
    """Centered GEP coefficients of every class of ``model`` at its diffusion time.

    Centroids do not enter: these are the homogeneous coefficients (eq. (113)).  The per-neuron
    coefficients of extensive centroids (eqs. (47)-(49)) are a separate computation.

    Examples
    --------
    >>> m = Model("tanh", 0.001, 60.0, 30.0, [0.5, 0.5], [0.5, 0.25])
    >>> [round(c.v_t2, 8) for c in class_coefficients(m)]
    [0.00980692, 0.00271248]
    """
    return tuple(centered_coefficients(model.activation, model.t, var, dps=dps, method=method)
                 for var in model.variances)


@dataclass(frozen=True)
class MixtureGEP:
    """The numbers through which a centered mixture enters U_gep and V_gep (spectrum.md §1).

    Attributes
    ----------
    rho, variance : ndarray, shape (C,)
    alpha : ndarray, shape (C,)
        a_c^2 sigma_c^2 (linear data part of class c).
    v2, b, s2_c, mu0 : ndarray, shape (C,)
        Per-class v_c^2, b_c, s_c^2 and mu0_c.
    beta : float
        sum_c rho_c b_c^2 (coefficient of K = W W^T / d).
    s2 : float
        sum_c rho_c s_c^2 (coefficient of the identity; the atom of the spectrum).
    bbar : float
        sum_c rho_c b_c (V_gep = bbar W / sqrt(d)).
    """

    rho: np.ndarray
    variance: np.ndarray
    alpha: np.ndarray
    v2: np.ndarray
    b: np.ndarray
    s2_c: np.ndarray
    mu0: np.ndarray
    beta: float
    s2: float
    bbar: float


def mixture_gep(model: Model, *, method: str = "auto") -> MixtureGEP:
    """Mixture-level GEP quantities of a Model in float64 (gep.md §2-3).

    Examples
    --------
    >>> g = mixture_gep(Model("tanh", 0.001, 60.0, 30.0, [0.5, 0.5], [0.5, 0.25]))
    >>> f"{g.beta:.10e} {g.s2:.10e}"
    '1.2077089354e-03 9.8780052295e-05'
    """
    coeffs = class_coefficients(model, method=method)
    rho = np.array(model.weights)
    var = np.array(model.variances)
    a = np.array([c.a_t for c in coeffs])
    b = np.array([c.b_t for c in coeffs])
    s2 = np.array([c.s_t2 for c in coeffs])
    return MixtureGEP(rho, var, a**2 * var, np.array([c.v_t2 for c in coeffs]), b, s2,
                      np.array([c.mu0 for c in coeffs]), float(rho @ b**2), float(rho @ s2),
                      float(rho @ b))


#: |mu0_c| above which an activation counts as not odd for the centered GEP (gep.md §2).
MU0_ODD_TOL = 1e-12


def needs_extensive_gep(model: Model) -> bool:
    """True when the centered GEP of ``gep.md`` §2 does not describe ``model``.

    That GEP needs centered classes (every ``centroid_norm2`` zero) and an odd activation
    (mu0_c = 0 for every class, to ``MU0_ODD_TOL``); otherwise U_gep has a mean part and
    per-neuron coefficients (``gep.md`` §4, ``speciation.md`` §1.2; paper eqs. (47)-(53)).

    Examples
    --------
    >>> m = Model("tanh", 0.1, 2.0, 1.0, [0.5, 0.5], [1.0, 0.5], [0.0, 0.0])
    >>> needs_extensive_gep(m), needs_extensive_gep(m.replace(centroid_norm2=[1.0, 1.0]))
    (False, True)
    >>> needs_extensive_gep(m.replace(activation="relu"))
    True
    """
    return not (model.is_centered
                and all(abs(float(k.mu0)) <= MU0_ODD_TOL for k in class_coefficients(model)))
