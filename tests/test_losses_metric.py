"""The metric losses beyond the triplet (issue 32, item 3): multi-similarity (with its pair miner) and proxy anchor
(with proxies that train with the network), checked against pytorch-metric-learning where it is installed and
against the paper's formulas written out by hand everywhere."""

import itertools

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_costs.losses import (
    MultiSimilarityLoss,
    MultiSimilarityMiner,
    ProxyAnchorLoss,
    get_loss,
    loss_options,
)


def _batch(seed, rows=24, identities=6, dim=8):
    """Random embeddings (float64) and labels in which every identity has at least two rows."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.arange(identities).repeat(2), torch.randint(0, identities, (rows - 2 * identities,),
                                                                          generator=g)])
    return torch.randn(rows, dim, generator=g, dtype=torch.float64), labels


def _cos(x, y):
    return float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y)))


# ------------------------------------------------------------------------------------ values, by hand and by pml


def _multi_similarity_by_hand(x, labels, alpha=2.0, beta=50.0, base=0.5, eps=0.1, mine=True):
    """The paper's loss, loop by loop: each anchor's mined pairs, then its two soft terms; the mean over anchors."""
    x, labels = x.numpy(), labels.tolist()
    n = len(labels)
    total = 0.0
    for i in range(n):
        pos = [j for j in range(n) if j != i and labels[j] == labels[i]]
        neg = [k for k in range(n) if labels[k] != labels[i]]
        s = {j: _cos(x[i], x[j]) for j in pos + neg}
        if mine and pos and neg:
            hardest_neg, hardest_pos = max(s[k] for k in neg), min(s[j] for j in pos)
            pos, neg = [j for j in pos if s[j] - eps < hardest_neg], [k for k in neg if s[k] + eps > hardest_pos]
        elif mine:
            pos, neg = [], []
        total += np.log1p(sum(np.exp(-alpha * (s[j] - base)) for j in pos)) / alpha
        total += np.log1p(sum(np.exp(beta * (s[k] - base)) for k in neg)) / beta
    return total / n


def _proxy_anchor_by_hand(x, labels, proxies, margin=0.1, alpha=32.0):
    x, labels, proxies = x.numpy(), labels.tolist(), proxies.numpy()
    present = sorted(set(labels))
    pull = sum(np.log1p(sum(np.exp(-alpha * (_cos(x[i], proxies[c]) - margin))
                            for i in range(len(labels)) if labels[i] == c)) for c in present)
    push = sum(np.log1p(sum(np.exp(alpha * (_cos(x[i], proxies[c]) + margin))
                            for i in range(len(labels)) if labels[i] != c)) for c in range(len(proxies)))
    return pull / len(present) + push / len(proxies)


@pytest.mark.parametrize("seed", [0, 1])
def test_multi_similarity_equals_the_paper_written_out(seed):
    x, labels = _batch(seed)
    assert MultiSimilarityLoss()(x, labels).item() == pytest.approx(_multi_similarity_by_hand(x, labels), rel=1e-9)
    assert MultiSimilarityLoss(alpha=1.0, beta=10.0, base=0.2, miner="all")(x, labels).item() == pytest.approx(
        _multi_similarity_by_hand(x, labels, 1.0, 10.0, 0.2, mine=False), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_proxy_anchor_equals_the_paper_written_out(seed):
    x, labels = _batch(seed)
    proxies = torch.randn(8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)  # 2 absent
    value = ProxyAnchorLoss(margin=0.2, alpha=16.0)(x, labels, proxies=proxies).item()
    assert value == pytest.approx(_proxy_anchor_by_hand(x, labels, proxies, 0.2, 16.0), rel=1e-9)


def test_the_values_and_gradients_are_those_of_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning", reason="pip install pytorch-metric-learning")
    from pytorch_metric_learning import losses, miners

    assert pml.__version__  # the reference
    for seed in range(4):
        x, labels = _batch(seed, rows=32)
        ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
        mine = MultiSimilarityLoss()(ours, labels)
        reference = losses.MultiSimilarityLoss()(theirs, labels, miners.MultiSimilarityMiner()(theirs, labels))
        mine.backward()
        reference.backward()
        assert mine.item() == pytest.approx(reference.item(), rel=1e-10)
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-9, atol=1e-12)

        ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
        all_pairs = MultiSimilarityLoss(miner="all")(ours, labels)  # every row has a positive and a negative
        assert all_pairs.item() == pytest.approx(losses.MultiSimilarityLoss()(theirs, labels).item(), rel=1e-10)

        proxy_anchor = losses.ProxyAnchorLoss(num_classes=8, embedding_size=8, margin=0.1, alpha=32).double()
        ours, proxies = x.clone().requires_grad_(), proxy_anchor.proxies.detach().clone().requires_grad_()
        mine = ProxyAnchorLoss()(ours, labels, proxies=proxies)
        reference = proxy_anchor(theirs, labels)
        mine.backward()
        reference.backward()
        assert mine.item() == pytest.approx(reference.item(), rel=1e-10)
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(proxies.grad, proxy_anchor.proxies.grad, rtol=1e-9, atol=1e-12)


def test_the_multi_similarity_miner_keeps_the_pairs_near_the_hardest_of_the_other_kind():
    x, labels = _batch(3)
    sim = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(x, dim=1).T
    a1, p, a2, n = MultiSimilarityMiner()(1 - sim, labels, margin=0.1)
    expected_pos, expected_neg = set(), set()
    for i, j in itertools.permutations(range(len(labels)), 2):
        pos = [k for k in range(len(labels)) if k != i and labels[k] == labels[i]]
        neg = [k for k in range(len(labels)) if labels[k] != labels[i]]
        if labels[j] == labels[i] and sim[i, j] - 0.1 < max(sim[i, k] for k in neg):
            expected_pos.add((i, j))
        if labels[j] != labels[i] and sim[i, j] + 0.1 > min(sim[i, k] for k in pos):
            expected_neg.add((i, j))
    assert set(zip(a1.tolist(), p.tolist())) == expected_pos
    assert set(zip(a2.tolist(), n.tolist())) == expected_neg
    assert 0 < len(expected_neg) < sum(labels[i] != labels[j] for i, j in itertools.permutations(range(24), 2))


# ----------------------------------------------------------------------------------------- gradients, weights


def test_gradients_reach_the_embeddings_and_the_proxies_of_the_identities_in_play():
    x, labels = _batch(0)
    x.requires_grad_()
    MultiSimilarityLoss()(x, labels).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0

    x = x.detach().requires_grad_()
    proxies = torch.randn(9, 8, dtype=torch.float64, requires_grad=True)
    seen = torch.tensor([True] * 6 + [False, True, False])  # 6 and 8 have not learned and are not in the batch
    ProxyAnchorLoss()(x, labels, proxies=proxies, seen=seen).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    grad = proxies.grad.abs().sum(1)
    assert (grad[seen] > 0).all() and (grad[~seen] == 0).all()


def test_an_identity_without_a_learned_proxy_is_scored_against_its_mean_embedding():
    x, labels = _batch(1)
    proxies = torch.randn(6, 8, dtype=torch.float64)
    seen = torch.tensor([True, True, True, True, False, False])
    means = torch.stack([torch.nn.functional.normalize(x[labels == c], dim=1).sum(0) for c in range(6)])
    stand_in = torch.where(seen[:, None], proxies, means)
    assert ProxyAnchorLoss()(x, labels, proxies=proxies, seen=seen).item() == pytest.approx(
        ProxyAnchorLoss()(x, labels, proxies=stand_in).item(), rel=1e-12)


def test_batches_without_pairs_give_zero_with_a_gradient():
    x = torch.randn(4, 3, requires_grad=True)
    for labels in (torch.tensor([0, 1, 2, 3]), torch.tensor([5, 5, 5, 5])):  # no positive / no negative
        value = MultiSimilarityLoss()(x, labels)
        assert value.item() == 0.0
        value.backward()


def test_sample_weights_count_each_row_so_many_times():
    x, labels = _batch(2)
    proxies = torch.randn(6, 8, dtype=torch.float64)
    ones = torch.ones(len(labels), dtype=torch.float64)
    for loss, learned in ((MultiSimilarityLoss(), {}), (ProxyAnchorLoss(), {"proxies": proxies})):
        assert loss(x, labels, ones, **learned).item() == pytest.approx(loss(x, labels, **learned).item(), rel=1e-12)
    # proxy anchor: a row of weight 0 is a row left out, a row of weight 2 a row given twice
    weight = ones.clone()
    weight[[0, 5]] = 0.0
    weight[7] = 2.0
    keep = torch.tensor([i for i in range(len(labels)) if i not in (0, 5)] + [7])
    assert ProxyAnchorLoss()(x, labels, weight, proxies=proxies).item() == pytest.approx(
        ProxyAnchorLoss()(x[keep], labels[keep], proxies=proxies).item(), rel=1e-12)


# ------------------------------------------------------------------------------------------------- the registry


def test_both_losses_are_registered_with_their_options_and_defaults():
    ms, pa = get_loss("multi_similarity", "embedding"), get_loss("proxy_anchor", "embedding")
    assert type(ms) is MultiSimilarityLoss and type(pa) is ProxyAnchorLoss
    assert loss_options(MultiSimilarityLoss) == ["alpha", "beta", "base", "margin", "miner"]
    assert (ms.alpha, ms.beta, ms.base, ms.margin, ms.miner) == (2.0, 50.0, 0.5, 0.1, "multi_similarity")
    assert loss_options(ProxyAnchorLoss) == ["margin", "alpha"] and (pa.margin, pa.alpha) == (0.1, 32.0)
    assert get_loss("multi_similarity", "embedding", margin=0.3, miner="batch_hard").miner == "batch_hard"
    with pytest.raises(ValueError, match=r"loss 'proxy_anchor' takes no option 'miner' \(its options: margin, alpha"):
        get_loss("proxy_anchor", "embedding", miner="semi_hard")
    with pytest.raises(InvalidParameterError, match="'miner' parameter of TripletLoss"):
        get_loss("triplet", "embedding", miner="multi_similarity")  # a pair miner gives no triplets
    with pytest.raises(InvalidParameterError, match="'alpha' parameter of ProxyAnchorLoss"):
        get_loss(ProxyAnchorLoss(alpha=0.0), "embedding")
