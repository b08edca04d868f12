"""diffmix: theory toolkit for diffusion models on heterogeneous, imbalanced data."""
__version__ = "0.1.0"
