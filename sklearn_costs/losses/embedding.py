"""Metric-learning losses on embeddings: triplet (with a miner), soft-margin triplet, contrastive, multi-similarity
(with its pair miner) and proxy anchor (with a learned proxy per identity).

The pieces compose as in pytorch-metric-learning: a *distance* turns a batch of embeddings into a pairwise matrix,
a *miner* picks (anchor, positive, negative) index triplets, or (anchor, positive) and (anchor, negative) pairs, from
that matrix and the labels, and the *loss* scores them. Every loss averages over the triplets, pairs or proxies it
scores and returns 0 (with a gradient) when the batch offers none (a batch of one identity, or identities with a
single image).

The multi-similarity and proxy-anchor losses are written here rather than taken from pytorch-metric-learning (no
extra dependency); ``tests/test_losses_metric.py`` checks their values and gradients against that package's
``MultiSimilarityLoss`` with ``MultiSimilarityMiner`` and ``ProxyAnchorLoss``.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions

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


def cosine_similarity(x: torch.Tensor) -> torch.Tensor:
    """Pairwise cosine similarities of the rows of ``x`` (each row L2-normalised first)."""
    x = F.normalize(x, dim=1)
    return x @ x.T


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


class MultiSimilarityMiner:
    """The pair mining of the multi-similarity loss (Wang et al. 2019, as pytorch-metric-learning's
    ``MultiSimilarityMiner``): a positive pair (a, p) is kept when it is less similar than the anchor's most similar
    negative plus ``margin``, a negative pair (a, n) when it is more similar than the anchor's least similar positive
    less ``margin``. In distances (``1 - cosine similarity``, what the multi-similarity loss hands it):
    ``d(a, p) + margin > min_n d(a, n)`` and ``d(a, n) - margin < max_p d(a, p)``.

    Returns pairs ``(a1, p, a2, n)``: the anchors and positives of the positive pairs, then those of the negative
    pairs.

    Examples
    --------
    Anchor 0's positive 1 lies at 0.5 and its negatives at 0.55 and 2: the near negative 2 is kept, the far one 3 is
    not.

    >>> import torch
    >>> dist = torch.tensor([[0.0, 0.5, 0.55, 2.0], [0.5, 0.0, 1.0, 2.0], [0.55, 1.0, 0.0, 0.3],
    ...                      [2.0, 2.0, 0.3, 0.0]])
    >>> a1, p, a2, n = MultiSimilarityMiner()(dist, torch.tensor([0, 0, 1, 1]), margin=0.1)
    >>> sorted(n[a2 == 0].tolist())
    [2]
    """

    name = "multi_similarity"

    def __call__(self, dist, labels, margin):
        pos, neg = _masks(labels)
        inf = torch.finfo(dist.dtype).max
        closest_negative = torch.where(neg, dist, torch.full_like(dist, inf)).amin(1, keepdim=True)
        farthest_positive = torch.where(pos, dist, torch.full_like(dist, -inf)).amax(1, keepdim=True)
        a1, p = (pos & (dist + margin > closest_negative)).nonzero(as_tuple=True)
        a2, n = (neg & (dist - margin < farthest_positive)).nonzero(as_tuple=True)
        return a1, p, a2, n


#: Miners of triplets ``(a, p, n)``, for every loss that takes a miner.
MINERS = {m.name: m for m in (AllTripletsMiner, SemiHardMiner, BatchHardMiner)}
#: Miners of pairs ``(a1, p, a2, n)``, for the pair losses (multi-similarity).
PAIR_MINERS = {m.name: m for m in (MultiSimilarityMiner,)}


def _weighted_mean(values, weight):
    return (values * weight).sum() / weight.sum().clamp_min(torch.finfo(values.dtype).tiny)

#: The constraints of the triplet losses' parameters. The margin must be positive: with ``margin <= 0`` a mined
#: semi-hard triplet (``d(a, n) > d(a, p)``) already has zero loss and nothing is learned.
TRIPLET_CONSTRAINTS = {
    "margin": [POSITIVE_FLOAT],
    "miner": [StrOptions(set(MINERS)), callable],
    "distance": [StrOptions(set(DISTANCES))],
}


#: The constraint of a pair loss's miner: a triplet miner (whose triplets become pairs), a pair miner, or a callable.
PAIR_MINER_CONSTRAINT = [StrOptions(set(MINERS) | set(PAIR_MINERS)), callable]


def get_miner(miner, pairs=False):
    """A miner instance from its name (``"all"``, ``"semi_hard"``, ``"batch_hard"``, and with ``pairs`` the pair
    miner ``"multi_similarity"``) or a callable."""
    if isinstance(miner, str):
        known = {**MINERS, **PAIR_MINERS} if pairs else MINERS
        if miner not in known:
            raise ValueError(f"miner must be one of {sorted(known)} or a callable; got {miner!r}")
        return known[miner]()
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


def _log_one_plus_sum_exp(x, mask, dim):
    """``log(1 + sum exp(x))`` over the entries of ``mask`` along ``dim`` (0 where there are none), computed stably:
    the ``1`` is an extra entry of 0 in the log-sum-exp."""
    x = x.masked_fill(~mask, float("-inf"))
    zeros = torch.zeros_like(x.narrow(dim, 0, 1))
    return torch.logsumexp(torch.cat([x, zeros], dim=dim), dim=dim)


def _as_pairs(mined):
    """Mined indices as pairs ``(a1, p, a2, n)``: a triplet ``(a, p, n)`` is the positive pair (a, p) and the
    negative pair (a, n), as pytorch-metric-learning converts them."""
    if len(mined) == 3:
        a, p, n = mined
        return a, p, a, n
    if len(mined) == 4:
        return mined
    raise ValueError(f"a miner must return triplets (a, p, n) or pairs (a1, p, a2, n); got {len(mined)} arrays")


@register_loss
class MultiSimilarityLoss(EmbeddingLoss):
    """Multi-similarity loss (Wang et al. 2019) over mined pairs of cosine similarities ``S``: per anchor ``i``

    ``1/alpha log(1 + sum_P exp(-alpha (S_ip - base))) + 1/beta log(1 + sum_N exp(beta (S_in - base)))``

    over its mined positive pairs ``P`` and negative pairs ``N``, averaged over the anchors of the batch. Each pair
    is weighted by how it stands against all the others of its anchor: the hard ones count most. The values are
    pytorch-metric-learning's ``MultiSimilarityLoss`` with ``MultiSimilarityMiner(epsilon=margin)``.

    Parameters
    ----------
    alpha : float > 0, default=2.0
        Sharpness of the weighting of the positive pairs.
    beta : float > 0, default=50.0
        Sharpness of the weighting of the negative pairs.
    base : float, default=0.5
        The similarity ``lambda`` that positives are pulled above and negatives pushed below.
    margin : float > 0, default=0.1
        The ``epsilon`` of the pair mining: a pair is kept when it is within ``margin`` of violating the hardest
        pair of the other kind (see :class:`MultiSimilarityMiner`).
    miner : {"multi_similarity", "semi_hard", "batch_hard", "all"} or callable, default="multi_similarity"
        How pairs are chosen from a batch, on the distances ``1 - S``: the loss's own pair miner, or a triplet
        miner whose triplets (a, p, n) become the pairs (a, p) and (a, n) (``"all"``: every pair of an anchor that
        has both a positive and a negative). A callable ``(dist, labels, margin)`` returns triplets or pairs
        ``(a1, p, a2, n)``.

    Examples
    --------
    >>> import torch
    >>> embeddings = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> value = MultiSimilarityLoss()(embeddings, torch.tensor([0, 0, 1, 1]))
    >>> value.ndim, bool(value >= 0)
    (0, True)
    """

    name = "multi_similarity"
    _parameter_constraints: dict = {
        "alpha": [POSITIVE_FLOAT],
        "beta": [POSITIVE_FLOAT],
        "base": [Interval(numbers.Real, None, None, closed="neither")],
        "margin": [POSITIVE_FLOAT],
        "miner": PAIR_MINER_CONSTRAINT,
    }

    def __init__(self, alpha=2.0, beta=50.0, base=0.5, margin=0.1, miner="multi_similarity"):
        self.alpha = alpha
        self.beta = beta
        self.base = base
        self.margin = margin
        self.miner = miner

    def forward(self, embeddings, labels, weight=None):
        """The mean loss of the anchors of the batch (an anchor without mined pairs counts 0); with sample weights
        ``weight``, each anchor weighted by its weight."""
        sim = cosine_similarity(embeddings)
        with torch.no_grad():
            a1, p, a2, n = _as_pairs(get_miner(self.miner, pairs=True)(1.0 - sim.detach(), labels, self.margin))
        pos = torch.zeros_like(sim, dtype=torch.bool)
        neg = torch.zeros_like(pos)
        pos[a1, p] = True
        neg[a2, n] = True
        losses = (_log_one_plus_sum_exp(-self.alpha * (sim - self.base), pos, dim=1) / self.alpha
                  + _log_one_plus_sum_exp(self.beta * (sim - self.base), neg, dim=1) / self.beta)
        return losses.mean() if weight is None else _weighted_mean(losses, weight)


@register_loss
class ProxyAnchorLoss(EmbeddingLoss):
    """Proxy-anchor loss (Kim et al. 2020): a learned *proxy* per identity, and cosine similarities ``s(x, p)``
    between the batch's embeddings and the proxies,

    ``1/|P+| sum_{p in P+} log(1 + sum_{x in X_p+} exp(-alpha (s(x, p) - margin)))
    + 1/|P| sum_{p in P} log(1 + sum_{x in X_p-} exp(alpha (s(x, p) + margin)))``

    where ``P+`` are the proxies of the identities in the batch, ``X_p+`` the embeddings of ``p``'s identity and
    ``X_p-`` the others. Each proxy is an anchor that pulls its identity's embeddings and pushes the others away,
    weighted by how hard each one is; the proxies make every batch see every identity, so it needs no mining.

    The proxies train with the network: :meth:`identity_parameters` gives their start (as pytorch-metric-learning,
    Kaiming-normal), and the estimator holds one set per member network, in its net's criterion. The values are
    pytorch-metric-learning's ``ProxyAnchorLoss`` given the same proxies.

    Parameters
    ----------
    margin : float > 0, default=0.1
        The margin ``delta``: embeddings are pulled until their similarity to their proxy exceeds ``margin`` and
        pushed until that to the other proxies is below ``-margin``, from where they cost little.
    alpha : float > 0, default=32.0
        The scale of the similarities: how sharply the hardest embeddings dominate each proxy's term.

    Examples
    --------
    >>> import torch
    >>> loss = ProxyAnchorLoss()
    >>> proxies = loss.identity_parameters(2, 2)["proxies"]
    >>> embeddings = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> value = loss(embeddings, torch.tensor([0, 0, 1, 1]), proxies=proxies)
    >>> value.ndim, bool(value >= 0)
    (0, True)
    """

    name = "proxy_anchor"
    _parameter_constraints: dict = {"margin": [POSITIVE_FLOAT], "alpha": [POSITIVE_FLOAT]}

    def __init__(self, margin=0.1, alpha=32.0):
        self.margin = margin
        self.alpha = alpha

    def identity_parameters(self, n_identities, embedding_dim):
        """The proxies' start: ``{"proxies": (n_identities, embedding_dim)}``, Kaiming-normal (fan out)."""
        proxies = torch.empty(n_identities, embedding_dim)
        return {"proxies": torch.nn.init.kaiming_normal_(proxies, mode="fan_out")}

    def forward(self, embeddings, labels, weight=None, *, proxies, seen=None):
        """The loss of the batch against ``proxies`` (one row per identity label ``0 .. n_identities - 1``); with
        sample weights ``weight``, each embedding counts as that many in the sums.

        ``seen`` (a boolean per identity, None for all) marks the proxies that have learned: the loss takes only
        those, and the proxy of an identity of the batch that has not learned (one held out for early stopping, or
        new to a warm start) is the mean of its embeddings in the batch."""
        n_identities = len(proxies)
        if len(labels) and int(labels.max()) >= n_identities:
            raise ValueError(f"identity label {int(labels.max())} has no proxy: there are {n_identities}")
        x = F.normalize(embeddings, dim=1)
        here = torch.zeros(n_identities, dtype=torch.bool, device=labels.device)
        here[labels] = True
        active = torch.ones_like(here) if seen is None else seen | here
        if seen is not None and bool((here & ~seen).any()):
            means = torch.zeros_like(proxies).index_add(0, labels, x.to(proxies.dtype))
            proxies = torch.where((here & ~seen)[:, None], means, proxies)
        cos = x @ F.normalize(proxies, dim=1).to(x.dtype).T  # (rows, identities)
        own = labels[:, None] == torch.arange(n_identities, device=labels.device)
        log_weight = 0.0 if weight is None else torch.log(weight.to(cos.dtype))[:, None]
        pull = _log_one_plus_sum_exp(-self.alpha * (cos - self.margin) + log_weight, own, dim=0)
        push = _log_one_plus_sum_exp(self.alpha * (cos + self.margin) + log_weight, ~own & active, dim=0)
        return pull[here].sum() / here.sum().clamp_min(1) + push[active].sum() / active.sum().clamp_min(1)
