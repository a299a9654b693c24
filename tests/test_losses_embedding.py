import itertools

import numpy as np
import pytest
import torch

from sklearn_costs.losses import (
    AllTripletsMiner,
    BatchHardMiner,
    ContrastiveLoss,
    SemiHardMiner,
    SoftMarginTripletLoss,
    TripletLoss,
)
from sklearn_costs.losses.embedding import euclidean, squared_euclidean


def brute_force_triplets(x, labels, margin, choose):
    """Reference: loop over every anchor-positive pair and pick the negative by ``choose`` (or all of them)."""
    x = x.double()
    d = lambda i, j: float(((x[i] - x[j]) ** 2).sum())  # noqa: E731
    n = len(labels)
    losses = []
    for a, p in itertools.permutations(range(n), 2):
        if labels[a] != labels[p]:
            continue
        negatives = [k for k in range(n) if labels[k] != labels[a]]
        if not negatives:
            continue
        for k in choose(a, p, negatives, d):
            losses.append(max(0.0, d(a, p) - d(a, k) + margin))
    return np.mean(losses)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, 5, generator=g), torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4])


def test_pairwise_distances(batch):
    x, _ = batch
    expected = torch.cdist(x.double(), x.double()) ** 2
    np.testing.assert_allclose(squared_euclidean(x).double().numpy(), expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(euclidean(x).double().numpy(), expected.sqrt().numpy(), atol=1e-4)


def test_all_triplets_loss_equals_brute_force(batch):
    x, labels = batch
    loss = TripletLoss(margin=0.5, miner="all")(x, labels).item()
    expected = brute_force_triplets(x, labels.tolist(), 0.5, lambda a, p, negs, d: negs)
    assert loss == pytest.approx(expected, rel=1e-5)


def test_semi_hard_loss_equals_brute_force(batch):
    x, labels = batch

    def semi_hard(a, p, negs, d):
        farther = [k for k in negs if d(a, k) > d(a, p)]
        return [min(farther, key=lambda k: d(a, k))] if farther else [max(negs, key=lambda k: d(a, k))]

    loss = TripletLoss(margin=0.5, miner="semi_hard")(x, labels).item()
    assert loss == pytest.approx(brute_force_triplets(x, labels.tolist(), 0.5, semi_hard), rel=1e-5)


def test_batch_hard_loss_equals_brute_force(batch):
    x, labels = batch
    xd, lab = x.double(), labels.tolist()
    d = lambda i, j: float(((xd[i] - xd[j]) ** 2).sum())  # noqa: E731
    losses = []
    for a in range(len(lab)):
        pos = [k for k in range(len(lab)) if lab[k] == lab[a] and k != a]
        neg = [k for k in range(len(lab)) if lab[k] != lab[a]]
        if pos:
            losses.append(max(0.0, max(d(a, p) for p in pos) - min(d(a, n) for n in neg) + 0.3))
    loss = TripletLoss(margin=0.3, miner="batch_hard")(x, labels).item()
    assert loss == pytest.approx(np.mean(losses), rel=1e-5)


def test_soft_margin_and_contrastive_equal_brute_force(batch):
    x, labels = batch
    xd, lab = x.double(), labels.tolist()
    e = lambda i, j: float(((xd[i] - xd[j]) ** 2).sum()) ** 0.5  # noqa: E731
    soft = []
    for a in range(len(lab)):
        pos = [k for k in range(len(lab)) if lab[k] == lab[a] and k != a]
        neg = [k for k in range(len(lab)) if lab[k] != lab[a]]
        if pos:
            soft.append(np.log1p(np.exp(max(e(a, p) for p in pos) - min(e(a, n) for n in neg))))
    assert SoftMarginTripletLoss()(x, labels).item() == pytest.approx(np.mean(soft), rel=1e-4)
    pairs = [(e(i, j) ** 2 if lab[i] == lab[j] else max(0.0, 2.0 - e(i, j)) ** 2)
             for i, j in itertools.combinations(range(len(lab)), 2)]
    assert ContrastiveLoss(margin=2.0)(x, labels).item() == pytest.approx(np.mean(pairs), rel=1e-4)


def test_miners_on_a_hand_made_batch():
    # 1-D embeddings: identity A at 0 and 1, identity B at 1.5, 3 and -4.
    x = torch.tensor([[0.0], [1.0], [1.5], [3.0], [-4.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    dist = squared_euclidean(x)
    a, p, n = BatchHardMiner()(dist, labels, 0.2)
    chosen = {(int(i), int(j), int(k)) for i, j, k in zip(a, p, n)}
    # anchor 0: farthest positive 1, closest negative 2 (d=2.25); anchor 2: farthest positive 4, closest negative 1;
    # anchor 4: farthest positive 3 (d=49), closest negative 0 (d=16)
    assert chosen == {(0, 1, 2), (1, 0, 2), (2, 4, 1), (3, 4, 1), (4, 3, 0)}
    a, p, n = SemiHardMiner()(dist, labels, 0.2)
    semi = {(int(i), int(j)): int(k) for i, j, k in zip(a, p, n)}
    # pair (0, 1): d_ap = 1; negatives at d = 2.25 (id 2), 9 (id 3), 16 (id 4): the closest farther one is 2
    assert semi[(0, 1)] == 2
    # pair (1, 0): d_ap = 1; negatives at d = 0.25, 4, 25: the closest farther one is 3 (d = 4), not the harder 2
    assert semi[(1, 0)] == 3
    # pair (2, 4): d_ap = 30.25, no negative is farther: the farthest negative (0, d = 2.25) is taken
    assert semi[(2, 4)] == 0
    a, p, n = AllTripletsMiner()(dist, labels, 0.2)
    assert len(a) == 2 * 3 + 6 * 2  # A: 2 ordered pairs x 3 negatives; B: 6 ordered pairs x 2 negatives


def test_batches_without_triplets_or_pairs_give_zero_with_a_gradient():
    x = torch.randn(4, 3, requires_grad=True)
    for loss in (TripletLoss(), SoftMarginTripletLoss()):
        for labels in (torch.tensor([0, 1, 2, 3]), torch.tensor([5, 5, 5, 5])):  # no positive / no negative
            value = loss(x, labels)
            assert value.item() == 0.0
            value.backward()
    value = ContrastiveLoss()(x[:1], torch.tensor([0]))  # a single sample has no pair
    assert value.item() == 0.0
    value.backward()


def test_the_margin_stops_pushing_separated_triplets():
    x = torch.tensor([[0.0], [0.1], [5.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    loss = TripletLoss(margin=0.2, miner="all")(x, labels)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(x.grad == 0)


def test_unknown_miner_and_distance():
    x, labels = torch.randn(4, 2), torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="miner must be one of"):
        TripletLoss(miner="hardest")(x, labels)
    with pytest.raises(ValueError, match="distance must be one of"):
        TripletLoss(distance="cosine")(x, labels)
