"""scikit-learn estimators whose point is the cost function: likelihoods derived from what an expert knows."""

from importlib.metadata import PackageNotFoundError, version

from .distributions import PredictiveDistribution
from .ensemble import DeepEnsembleRegressor
from .exceptions import TrainingDivergedError
from .gaussian import GaussianUncertaintyRegressor
from .poisson import PoissonSpikeRegressor
from .simulation import simulate_recurrent
from .triplet import TripletEmbedder

try:
    __version__ = version("sklearn-costs")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = [
    "DeepEnsembleRegressor",
    "GaussianUncertaintyRegressor",
    "PoissonSpikeRegressor",
    "PredictiveDistribution",
    "TrainingDivergedError",
    "TripletEmbedder",
    "simulate_recurrent",
    "__version__",
]
