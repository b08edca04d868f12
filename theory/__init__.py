"""diffmix.theory"""

from ._model import Model, ModelError, load_model, save_model

__all__ = ["Model", "ModelError", "load_model", "save_model"]
