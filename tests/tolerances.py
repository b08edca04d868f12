"""Tolerances of the test suite, in one place, tied to the method they judge (house style)."""

#: Closed form against our nested quadrature (both float64, smooth integrands): relative.
CLOSED_VS_QUADRATURE = 1e-12
#: Closed form of a kinked activation against scipy.integrate.quad split at the kink: relative.
CLOSED_VS_SCIPY_QUAD = 1e-11
#: Gauss-Hermite against the trapezoidal rule (two independent float64 quadratures): relative.
GH_VS_TRAPEZOID = 1e-12
#: Float64 kernels against the mpmath twin: relative.
F64_VS_MP = 1e-13
#: Digits on which the 30-digit and 50-digit mpmath results must agree.
DIGITS_30_VS_50 = 25
#: Reference values of shared/theory/gep.md, printed with 14 significant digits: relative.
REFERENCE_TABLE = 2e-13
#: Monte Carlo agreement, in standard errors.
MC_SIGMAS = 5.0
