"""Finite-size twins of a Model in PyTorch: sampled data and weights, U_gep and the true U (gep.md §2-3)."""

from ._finite import (FeatureCovariance, FiniteSize, GEPMatrices, centroids, class_counts, gep_matrices,
                      sample_mixture, sample_weights, true_feature_covariance)

__all__ = ["FeatureCovariance", "FiniteSize", "GEPMatrices", "centroids", "class_counts", "gep_matrices",
           "sample_mixture", "sample_weights", "true_feature_covariance"]

# The finite-size gradient-descent simulator (dynamics.md §1-2, §6-7; issue 6 item 3).
from ._population import PopulationMatrices, gep_population_extensive, population_matrices
from ._simulate import (GDResult, GDStepper, GDSystem, build_system, log_grid, quadratic_loss, run_seeds,
                        simulate_gd)

__all__ += ["PopulationMatrices", "population_matrices", "GDResult", "GDStepper", "GDSystem", "build_system",
            "log_grid", "quadratic_loss", "run_seeds", "simulate_gd"]

# Fashion-MNIST: loader, class statistics, Sneaker-partner pair subsets and their Models (issue 8 item 1).
from ._fmnist import (ClassStatistics, FashionMNIST, FashionMNISTError, PairSubset, class_statistics,
                      load_fashion_mnist, pair_model, pair_subset)

__all__ += ["ClassStatistics", "FashionMNIST", "FashionMNISTError", "PairSubset", "class_statistics",
            "load_fashion_mnist", "pair_model", "pair_subset"]

# U_gep with extensive centroids and per-neuron coefficients (speciation.md §1.2, gep.md §4; issue 7 items 1, 4).
from ._finite import GEPCentroidMatrices, NeuronGEPCoefficients, gep_matrices_centroids, neuron_gep_coefficients

__all__ += ["GEPCentroidMatrices", "NeuronGEPCoefficients", "gep_matrices_centroids", "gep_population_extensive",
            "neuron_gep_coefficients"]

# The DDPM of App. J.1 (diffusers' UNet2DModel, built from a config; diffusers is imported lazily) and
# per-class memorization tracking of a Fashion-MNIST pair (issue 8 items 2-3).
from ._ddpm import (Checkpoint, DDPMConfig, DDPMTrainResult, NoiseSchedule, build_unet, checkpoint_schedule,
                    count_parameters, list_checkpoints, load_unet, sample_checkpoints, sample_ddpm, train_ddpm,
                    training_throughput)
from ._ddpm_cli import load_run_subset, track_memorization

__all__ += ["Checkpoint", "DDPMConfig", "DDPMTrainResult", "NoiseSchedule", "build_unet", "checkpoint_schedule",
            "count_parameters", "list_checkpoints", "load_unet", "sample_checkpoints", "sample_ddpm", "train_ddpm",
            "training_throughput", "load_run_subset", "track_memorization"]
from ._classifier import (ClassifierReport, PairResNet, balanced_accuracy, confusion_matrix, load_classifier,
                          macro_f1, predict_classes, save_classifier, train_pair_classifier)
from ._memorization import (MEMORIZATION_RATIO, bootstrap_fractions, class_fractions, log_memorization_gap,
                            memorization_gap, memorized_mask, nearest_two, threshold_crossing_time)

__all__ += ["ClassifierReport", "PairResNet", "balanced_accuracy", "confusion_matrix", "load_classifier", "macro_f1",
            "predict_classes", "save_classifier", "train_pair_classifier", "MEMORIZATION_RATIO",
            "bootstrap_fractions", "class_fractions", "log_memorization_gap", "memorization_gap", "memorized_mask",
            "nearest_two", "threshold_crossing_time"]
