"""Losses: the contract (:mod:`~sklearn_costs.losses.base`), the registry, and the built-in families."""

from .base import (
    TASKS,
    ContinuousLoss,
    CountLoss,
    DistributionLoss,
    EmbeddingLoss,
    Loss,
    check_counts,
)
from .registry import (
    ENTRY_POINT_GROUP,
    LossInfo,
    LossPluginError,
    LossPluginWarning,
    available_losses,
    get_loss,
    refresh,
    register_loss,
)
from .counts import NegativeBinomialLoss, PoissonLoss, SquaredErrorCountLoss, ZeroInflatedPoissonLoss
from .continuous import BetaNLLLoss, GaussianLoss, LaplaceLoss, SquaredErrorLoss, StudentTLoss
from .embedding import (
    AllTripletsMiner,
    BatchHardMiner,
    ContrastiveLoss,
    SemiHardMiner,
    SoftMarginTripletLoss,
    TripletLoss,
)

__all__ = [
    "TASKS",
    "ENTRY_POINT_GROUP",
    "Loss",
    "DistributionLoss",
    "CountLoss",
    "ContinuousLoss",
    "EmbeddingLoss",
    "LossInfo",
    "LossPluginError",
    "LossPluginWarning",
    "available_losses",
    "get_loss",
    "refresh",
    "register_loss",
    "check_counts",
    "PoissonLoss",
    "NegativeBinomialLoss",
    "ZeroInflatedPoissonLoss",
    "SquaredErrorCountLoss",
    "GaussianLoss",
    "LaplaceLoss",
    "StudentTLoss",
    "BetaNLLLoss",
    "SquaredErrorLoss",
    "TripletLoss",
    "SoftMarginTripletLoss",
    "ContrastiveLoss",
    "AllTripletsMiner",
    "SemiHardMiner",
    "BatchHardMiner",
]
