"""Finite-size twins of a Model in PyTorch: sampled data and weights, U_gep and the true U (gep.md §2-3)."""

from ._finite import (FeatureCovariance, FiniteSize, GEPMatrices, centroids, class_counts, gep_matrices,
                      sample_mixture, sample_weights, true_feature_covariance)

__all__ = ["FeatureCovariance", "FiniteSize", "GEPMatrices", "centroids", "class_counts", "gep_matrices",
           "sample_mixture", "sample_weights", "true_feature_covariance"]
