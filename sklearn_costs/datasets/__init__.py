"""Simulators with known ground truth, loaders of the real benchmark data, and of NWB files."""

from .nwb import load_nwb
from .real import DataNotFoundError, data_home, load_faces, load_omniglot, load_stevenson_m1, load_uci
from .simulated import MOTORCYCLE_COVARIATES, make_heteroscedastic_regression, make_motorcycle_spikes

__all__ = [
    "DataNotFoundError",
    "data_home",
    "load_faces",
    "load_nwb",
    "load_omniglot",
    "load_stevenson_m1",
    "load_uci",
    "MOTORCYCLE_COVARIATES",
    "make_heteroscedastic_regression",
    "make_motorcycle_spikes",
]
