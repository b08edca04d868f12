"""Theory against finite size: diagonalization checks of the spectrum and the paper's figures.

spectrum.md §5-6: eigenvalues of sampled U_gep (or of the true feature covariance) split into the
atom and the bulks by index, extremes against the edges, KS and L1 distances, the p^(-2/3)
extrapolation of the extremes; paper Figs. 2b and 8 regenerated with their numbers and provenance.
"""
from ._figures import FigureOutput, draw_density, fig8_model, figure_fig2b, figure_fig8
from ._spectrum import (DiagonalizationComparison, EdgeExtrapolation, SeedComparison, TheoryCDF,
                        bulk_index_bounds, compare_with_diagonalization, eigenvalues_of,
                        extrapolate_extremes, ks_distance, l1_distance)

__all__ = ["DiagonalizationComparison", "EdgeExtrapolation", "FigureOutput", "SeedComparison",
           "TheoryCDF", "bulk_index_bounds", "compare_with_diagonalization", "draw_density",
           "eigenvalues_of", "extrapolate_extremes", "fig8_model", "figure_fig2b", "figure_fig8",
           "ks_distance", "l1_distance"]
