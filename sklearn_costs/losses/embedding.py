"""Metric-learning losses on embeddings: triplet (with a miner), soft-margin triplet, contrastive.

The pieces compose as in pytorch-metric-learning: a *distance* turns a batch of embeddings into a pairwise matrix,
a *miner* picks (anchor, positive, negative) index triplets from that matrix and the labels, and the *loss* scores
them. Every loss averages over the triplets or pairs it scores and returns 0 (with a gradient) when the batch offers
none (a batch of one identity, or identities with a single image).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import StrOptions

from .base import POSITIVE_FLOAT, EmbeddingLoss
from .registry import register_loss

# ----------------------------------------------------------------------------------------------------- distances


def squared_euclidean(x: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances ``||x_i - x_j||^2`` of the rows of ``x``."""
    sq = (x * x).sum(1)
    dist = (sq[:, None] + sq[None, :] - 2.0 * x @ x.T).clamp_min(0.0)
    eye = torch.eye(len(x), dtype=torch.bool, device=x.device)
    return dist.masked_fill(eye, 0.0)  # exactly 0 to itself, whatever the rounding of the expansion


def euclidean(x: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances, with a gradient that stays finite at zero distance."""
    return torch.sqrt(squared_euclidean(x) + 1e-12)


DISTANCES = {"squared_euclidean": squared_euclidean, "euclidean": euclidean}


def _distance(name):
    if name not in DISTANCES:
        raise ValueError(f"distance must be one of {sorted(DISTANCES)}; got {name!r}")
    return DISTANCES[name]


def _masks(labels):
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


# -------------------------------------------------------------------------------------------------------- miners


class AllTripletsMiner:
    """Every valid triplet: ``a != p`` of one identity, ``n`` of another.

    Examples
    --------
    >>> import torch
    >>> labels = torch.tensor([0, 0, 1])
    >>> a, p, n = AllTripletsMiner()(torch.zeros(3, 3), labels, margin=0.2)
    >>> list(zip(a.tolist(), p.tolist(), n.tolist()))
    [(0, 1, 2), (1, 0, 2)]
    """

    name = "all"

    def __call__(self, dist, labels, margin):
        pos, neg = _masks(labels)
        valid = pos[:, :, None] & neg[:, None, :]
        return valid.nonzero(as_tuple=True)


class SemiHardMiner:
    """FaceNet's semi-hard negatives (Schroff et al. 2015).

    For each positive pair (a, p): the closest negative that is farther than the positive,
    ``argmin {d(a, n) : d(a, n) > d(a, p)}``; when no negative is farther, the farthest negative (as in
    TensorFlow Addons' ``triplet_semihard_loss``).

    Examples
    --------
    Anchor 0 has its positive at distance 1; negative 3 (at 1.5) is the closest one farther than that.

    >>> import torch
    >>> from sklearn_costs.losses.embedding import squared_euclidean
    >>> x = torch.tensor([[0.0], [1.0], [0.5], [1.5], [4.0]])
    >>> a, p, n = SemiHardMiner()(torch.cdist(x, x), torch.tensor([0, 0, 1, 1, 2]), margin=1.0)
    >>> (a[0].item(), p[0].item(), n[0].item())
    (0, 1, 3)
    """

    name = "semi_hard"

    def __call__(self, dist, labels, margin):
        # Each anchor's negatives sorted by distance once; a binary search then finds, for every positive pair,
        # the first negative farther than the positive. O(B^2 log B) time and O(B^2) memory, where comparing
        # every pair with every negative would take O(B^2 K) memory for K images per identity.
        pos, neg = _masks(labels)
        inf = torch.finfo(dist.dtype).max
        sorted_d, order = torch.where(neg, dist, torch.full_like(dist, inf)).sort(dim=1, stable=True)
        first_farther = torch.searchsorted(sorted_d, dist.contiguous(), right=True)
        n_neg = neg.sum(1)
        a, p = pos.nonzero(as_tuple=True)
        k = first_farther[a, p]
        last = (n_neg[a] - 1).clamp_min(0)
        n = torch.where(k < n_neg[a], order[a, k.clamp_max(len(labels) - 1)], order[a, last])
        keep = n_neg[a] > 0
        return a[keep], p[keep], n[keep]


class BatchHardMiner:
    """Batch-hard triplets (Hermans et al. 2017): per anchor its farthest positive and closest negative.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0], [1.0], [3.0], [0.5], [5.0]])
    >>> a, p, n = BatchHardMiner()(torch.cdist(x, x), torch.tensor([0, 0, 0, 1, 1]), margin=0.2)
    >>> (a[0].item(), p[0].item(), n[0].item())  # farthest positive 2, closest negative 3
    (0, 2, 3)
    """

    name = "batch_hard"

    def __call__(self, dist, labels, margin):
        pos, neg = _masks(labels)
        inf = torch.finfo(dist.dtype).max
        p = torch.where(pos, dist, torch.full_like(dist, -inf)).argmax(1)
        n = torch.where(neg, dist, torch.full_like(dist, inf)).argmin(1)
        a = torch.arange(len(labels), device=labels.device)
        keep = pos.any(1) & neg.any(1)
        return a[keep], p[keep], n[keep]


MINERS = {m.name: m for m in (AllTripletsMiner, SemiHardMiner, BatchHardMiner)}


def _weighted_mean(values, weight):
    return (values * weight).sum() / weight.sum().clamp_min(torch.finfo(values.dtype).tiny)

#: The constraints of the triplet losses' parameters. The margin must be positive: with ``margin <= 0`` a mined
#: semi-hard triplet (``d(a, n) > d(a, p)``) already has zero loss and nothing is learned.
TRIPLET_CONSTRAINTS = {
    "margin": [POSITIVE_FLOAT],
    "miner": [StrOptions(set(MINERS)), callable],
    "distance": [StrOptions(set(DISTANCES))],
}


def get_miner(miner):
    """A miner instance from its name (``"all"``, ``"semi_hard"``, ``"batch_hard"``) or a callable."""
    if isinstance(miner, str):
        if miner not in MINERS:
            raise ValueError(f"miner must be one of {sorted(MINERS)} or a callable; got {miner!r}")
        return MINERS[miner]()
    if callable(miner):
        return miner
    raise TypeError(f"miner must be a name or a callable (dist, labels, margin) -> (a, p, n); got {miner!r}")


# -------------------------------------------------------------------------------------------------------- losses


class _TripletBase(EmbeddingLoss):
    """Distance, then miner, then ``triplet_loss(d(a, p) - d(a, n))`` averaged over the mined triplets."""

    margin = 0.0
    _parameter_constraints: dict = TRIPLET_CONSTRAINTS

    def forward(self, embeddings, labels, weight=None):
        """The mean loss of the mined triplets; with sample weights ``weight``, each triplet weighted by its
        anchor's weight."""
        dist = _distance(self.distance)(embeddings)
        with torch.no_grad():
            a, p, n = get_miner(self.miner)(dist.detach(), labels, self.margin)
        if len(a) == 0:
            return embeddings.sum() * 0.0
        losses = self.triplet_loss(dist[a, p] - dist[a, n])
        return losses.mean() if weight is None else _weighted_mean(losses, weight[a])


@register_loss
class TripletLoss(_TripletBase):
    """Triplet loss ``max(0, d(a, p) - d(a, n) + margin)`` over mined triplets.

    Parameters
    ----------
    margin : float > 0, default=0.2
        The gap ``alpha`` wanted between positive and negative distances (FaceNet: 0.2 on L2-normalised
        embeddings). A margin of 0 or less gives the semi-hard triplets, whose negative is already farther than
        the positive, no loss at all.
    miner : {"semi_hard", "batch_hard", "all"} or callable, default="semi_hard"
        How triplets are chosen from a batch.
    distance : {"squared_euclidean", "euclidean"}, default="squared_euclidean"

    Examples
    --------
    >>> import torch
    >>> embeddings = torch.tensor([[0.0, 0.0], [0.1, 0.0], [1.0, 0.0], [1.0, 0.1]])
    >>> value = TripletLoss()(embeddings, torch.tensor([0, 0, 1, 1]))
    >>> value.ndim, bool(value >= 0)
    (0, True)
    """

    name = "triplet"

    def __init__(self, margin=0.2, miner="semi_hard", distance="squared_euclidean"):
        self.margin = margin
        self.miner = miner
        self.distance = distance

    def triplet_loss(self, gap):
        return F.relu(gap + self.margin)


@register_loss
class SoftMarginTripletLoss(_TripletBase):
    """Soft-margin triplet loss ``log(1 + exp(d(a, p) - d(a, n)))`` (Hermans et al. 2017): no margin to tune.

    Parameters
    ----------
    miner : {"batch_hard", "semi_hard", "all"} or callable, default="batch_hard"
    distance : {"euclidean", "squared_euclidean"}, default="euclidean"

    Examples
    --------
    >>> import torch
    >>> embeddings = torch.tensor([[0.0, 0.0], [0.1, 0.0], [1.0, 0.0], [1.0, 0.1]])
    >>> value = SoftMarginTripletLoss()(embeddings, torch.tensor([0, 0, 1, 1]))
    >>> value.ndim, bool(value >= 0)
    (0, True)
    """

    name = "soft_margin_triplet"

    def __init__(self, miner="batch_hard", distance="euclidean"):
        self.miner = miner
        self.distance = distance

    def triplet_loss(self, gap):
        return F.softplus(gap)


@register_loss
class ContrastiveLoss(EmbeddingLoss):
    """Contrastive loss on all pairs (Hadsell et al. 2006): ``d**2`` for a same-identity pair,
    ``max(0, margin - d)**2`` for a different-identity pair, with ``d`` the Euclidean distance.

    Parameters
    ----------
    margin : float > 0, default=1.0
        Pairs of different identities farther apart than this cost nothing (with 0 or less, all of them: the
        loss would only pull identities together).

    Examples
    --------
    >>> import torch
    >>> embeddings = torch.tensor([[0.0, 0.0], [0.1, 0.0], [1.0, 0.0], [1.0, 0.1]])
    >>> value = ContrastiveLoss()(embeddings, torch.tensor([0, 0, 1, 1]))
    >>> value.ndim, bool(value >= 0)
    (0, True)
    """

    name = "contrastive"
    _parameter_constraints: dict = {"margin": [POSITIVE_FLOAT]}

    def __init__(self, margin=1.0):
        self.margin = margin

    def forward(self, embeddings, labels, weight=None):
        """The mean cost of the pairs; with sample weights ``weight``, each pair weighted by the product of its two
        samples' weights."""
        d = euclidean(embeddings)
        pos, neg = _masks(labels)
        upper = torch.triu(torch.ones_like(pos), diagonal=1)
        pos, neg = pos & upper, neg & upper
        n_pairs = pos.sum() + neg.sum()
        if n_pairs == 0:
            return embeddings.sum() * 0.0
        cost = torch.where(pos, d**2, torch.where(neg, F.relu(self.margin - d) ** 2, torch.zeros_like(d)))
        if weight is None:
            return cost.sum() / n_pairs
        pairs = (pos | neg).to(cost.dtype) * (weight[:, None] * weight[None, :])
        return (cost * pairs).sum() / pairs.sum().clamp_min(torch.finfo(cost.dtype).tiny)
