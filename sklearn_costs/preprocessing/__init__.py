"""Preprocessing for spike data: binning spike times and covariates, and history (lag) features."""

from .binning import bin_covariates, bin_spikes
from .lags import LagFeatures, raised_cosine_basis

__all__ = ["bin_spikes", "bin_covariates", "LagFeatures", "raised_cosine_basis"]
