"""Continuation solvers for resolvents and densities, spectral edges, mpmath polish."""
from ._asymptotics import (leftmost_edges_asymptotic, memorization_edge_asymptotic,
                           rightmost_edges_asymptotic, timescales_asymptotic)
from ._centroid_spectrum import (CentroidResolventResult, CentroidSpectralParams, CentroidSpectrum,
                                 TypeQuadrature, centroid_spectrum, centroid_stieltjes, solve_centroid_resolvent)
from ._continuation import EdgePath, edge_path
from ._resolvent import ResolventResult, SpectralParams, solve_resolvent, stieltjes
from ._spectrum import (Bulk, Edge, Spectrum, density_on_bulks, find_edges, polish_edge, spectrum,
                        timescales)
from ._test_error import (ANALYTIC_TIME_UNIT, AnalyticCurves, AnalyticFlow, AnalyticTimes, Contour,
                          analytic_class_times, analytic_curves, analytic_flow, check_analytic_model,
                          default_contour, k_weighted_mean, two_resolvent_kernel)
from ._train_error import AnalyticTrainError, train_error_analytic

__all__ = ["ResolventResult", "SpectralParams", "solve_resolvent", "stieltjes", "Bulk", "Edge", "Spectrum",
           "density_on_bulks", "find_edges", "polish_edge", "spectrum", "timescales", "EdgePath", "edge_path",
           "rightmost_edges_asymptotic", "memorization_edge_asymptotic", "leftmost_edges_asymptotic",
           "timescales_asymptotic", "AnalyticTrainError", "train_error_analytic", "ANALYTIC_TIME_UNIT",
           "AnalyticCurves", "AnalyticFlow", "AnalyticTimes", "Contour", "analytic_class_times", "analytic_curves",
           "analytic_flow", "check_analytic_model", "default_contour", "k_weighted_mean", "two_resolvent_kernel",
           "CentroidResolventResult", "CentroidSpectralParams", "CentroidSpectrum", "TypeQuadrature",
           "centroid_spectrum", "centroid_stieltjes", "solve_centroid_resolvent"]
