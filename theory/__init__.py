"""The Model (one frozen description of a mixture) and the formulas built on it."""

from ._flow import (TIME_UNIT, ClassPopulation, ClassTimes, FlowAverage, GradientFlow, LearningCurves,
                    cached_flow, class_times, class_times_on_grid, flow_cache_dir, time_gaps)
from ._gep import MixtureGEP, class_coefficients, mixture_gep, needs_extensive_gep, neuron_coefficients
from ._model import Model, ModelError, load_model, save_model
from ._speciation import SpeciationMode, SpeciationResult, model_at, speciation_times

__all__ = ["Model", "ModelError", "load_model", "save_model", "MixtureGEP", "class_coefficients",
           "mixture_gep", "needs_extensive_gep", "neuron_coefficients", "TIME_UNIT", "ClassPopulation", "ClassTimes", "FlowAverage", "GradientFlow",
           "LearningCurves", "cached_flow", "class_times", "class_times_on_grid", "flow_cache_dir", "time_gaps",
           "SpeciationMode", "SpeciationResult", "model_at", "speciation_times"]
