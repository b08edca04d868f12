"""Symbolic derivations and the kernels emitted from them.

SymPy turns an activation (a built-in name or an expression in ``x``) into the integrands and
closed forms of the GEP coefficients (``shared/theory/gep.md`` §1; paper App. D, eqs. (33)-(37)
and (113)); :func:`emit` prints them into real modules, a float64 Numba twin and an mpmath twin.
Only this package imports SymPy at run time.
"""
from ._activations import BUILTIN_ACTIVATIONS, Activation, parse_activation
from ._coefficients import (GEPCoefficientArrays, GEPCoefficients, QuadratureError,
                            centered_coefficients, centered_coefficients_array)
from ._neuron import NeuronCoefficients, neuron_coefficients
from ._kernels import (GENERATED_DIR, cache_dir, emit, emit_spectral, emit_two_resolvent, load_kernels,
                       load_spectral, load_two_resolvent, module_texts, spectral_texts, two_resolvent_texts)

__all__ = ["BUILTIN_ACTIVATIONS", "Activation", "parse_activation", "GEPCoefficientArrays",
           "GEPCoefficients", "QuadratureError", "centered_coefficients",
           "centered_coefficients_array", "NeuronCoefficients", "neuron_coefficients", "GENERATED_DIR", "cache_dir", "emit", "emit_spectral",
           "load_kernels", "load_spectral", "module_texts", "spectral_texts", "emit_two_resolvent",
           "load_two_resolvent", "two_resolvent_texts"]
