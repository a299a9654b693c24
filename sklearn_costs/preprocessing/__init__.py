"""Preprocessing for spike data: binning spike times and covariates, history (lag) features of covariates and of
spike counts, and the segments (trials, epochs, gaps) that lags must not cross."""

from .binning import bin_covariates, bin_spikes
from .history import SpikeHistory
from .lags import LagFeatures, raised_cosine_basis
from .segments import segment_labels

__all__ = ["bin_spikes", "bin_covariates", "LagFeatures", "SpikeHistory", "raised_cosine_basis", "segment_labels"]
