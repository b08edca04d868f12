"""The Model (one frozen description of a mixture) and the formulas built on it."""

from ._gep import MixtureGEP, class_coefficients, mixture_gep
from ._model import Model, ModelError, load_model, save_model

__all__ = ["Model", "ModelError", "load_model", "save_model", "MixtureGEP", "class_coefficients",
           "mixture_gep"]
