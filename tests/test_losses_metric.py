"""The metric losses beyond the triplet (issue 32, item 3): multi-similarity (with its pair miner) and proxy anchor
(with proxies that train with the network), checked against pytorch-metric-learning where it is installed and
against the paper's formulas written out by hand everywhere."""

import copy
import io
import itertools
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError
from skorch.history import History

from sklearn_costs import TripletEmbedder, _embedder_settings, persistence
from sklearn_costs._training import EarlyStopping
from sklearn_costs.losses import (
    MultiSimilarityLoss,
    MultiSimilarityMiner,
    ProxyAnchorLoss,
    TripletLoss,
    get_loss,
    loss_options,
)
from sklearn_costs.metrics import recall_at_1
from sklearn_costs.triplet import MULTI_SIMILARITY_MAX_IDENTITIES, _MemberCriterion, embedding_loss


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


# ------------------------------------------------------------------------------------------------ the estimator


def _identities(n_identities=12, per_identity=8, seed=0):
    """Identities told apart by 3 of 10 features; the other 7 are louder noise (raw 1-NN recall about 0.2)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_identities), per_identity)
    centres = 2.0 * rng.normal(size=(n_identities, 3))
    X = np.hstack([centres[labels] + 0.3 * rng.normal(size=(len(labels), 3)),
                   3.0 * rng.normal(size=(len(labels), 7))])
    return X, labels


def _embedder(loss, **params):
    settings = {"hidden_layer_sizes": (16,), "embedding_dim": 4, "n_members": 1, "max_epochs": 20, "lr": 0.01,
                "random_state": 0, **params}
    return TripletEmbedder(loss=loss, **settings)


def _proxies(model):
    return model.net_.criterion_.learned["proxies"].detach().clone()


@pytest.mark.parametrize("loss", ["multi_similarity", "proxy_anchor"])
def test_the_loss_decreases_and_the_embedding_separates_identities_it_never_saw(loss):
    X, y = _identities()
    X_new, y_new = _identities(10, seed=1)
    model = _embedder(loss, early_stopping=False).fit(X, y)
    losses = model.history_["train_loss"]
    assert losses.iloc[-3:].mean() < 0.9 * losses.iloc[:3].mean()
    assert model.score(X_new, y_new) > 2 * recall_at_1(X_new, y_new)


def test_the_proxies_get_gradients_and_train_with_the_network_all_but_those_held_out():
    X, y = _identities()
    model = _embedder("proxy_anchor", n_members=2, max_epochs=2).fit(X, y)
    criterion = model.net_.criterion_
    proxies = criterion.learned["proxies"]
    assert proxies.shape == (2, 12, 4)  # one set per member
    optimized = [p for group in model.net_.optimizer_.param_groups for p in group["params"]]
    assert any(p is proxies for p in optimized)
    assert proxies.grad is not None and proxies.grad[:, criterion.seen].abs().sum(-1).gt(0).all()
    held_out = ~criterion.seen  # the identities held out for early stopping
    assert 2 <= int(held_out.sum()) <= 3
    before = _proxies(model)
    model.set_params(warm_start=True, max_epochs=2).fit(X, y)
    after = _proxies(model)
    assert (after[:, ~held_out] - before[:, ~held_out]).abs().sum(-1).gt(0).all()  # every learning proxy moved
    torch.testing.assert_close(after[:, held_out], before[:, held_out], rtol=0, atol=0)


@pytest.mark.parametrize("loss", ["multi_similarity", "proxy_anchor"])
def test_in_a_pipeline_before_nearest_neighbours(loss):
    X, y = _identities()
    train = np.arange(len(y)) % 8 < 6  # 6 photos of each person to train, 2 to recognise
    pipeline = make_pipeline(_embedder(loss, early_stopping=False), KNeighborsClassifier(1)).fit(X[train], y[train])
    raw = KNeighborsClassifier(1).fit(X[train], y[train]).score(X[~train], y[~train])
    assert pipeline.score(X[~train], y[~train]) > raw + 0.1
    assert pipeline[0].transform(X[:5]).shape == (5, 4)
    assert pipeline[0].miner_ == ("multi_similarity" if loss == "multi_similarity" else None)


def test_grid_search_tries_the_losses_and_their_margins():
    X, y = _identities(8, 6)
    search = GridSearchCV(_embedder("triplet", max_epochs=3, early_stopping=False),
                          {"loss": ["triplet", "multi_similarity", "proxy_anchor"]}, cv=2).fit(X, y)
    assert list(search.cv_results_["param_loss"]) == ["triplet", "multi_similarity", "proxy_anchor"]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    margins = GridSearchCV(_embedder("proxy_anchor", max_epochs=2, early_stopping=False),
                           {"margin": [0.05, 0.2]}, cv=2).fit(X, y)
    assert margins.best_estimator_.loss_.margin == margins.best_params_["margin"]


def test_the_estimator_hands_its_margin_and_miner_to_the_new_losses():
    X, y = _identities(6, 4)
    quick = {"max_epochs": 1}
    assert _embedder("multi_similarity", margin=0.3, miner="batch_hard", **quick).fit(X, y).loss_.get_params() == {
        "alpha": 2.0, "base": 0.5, "beta": 50.0, "margin": 0.3, "miner": "batch_hard"}
    assert _embedder("proxy_anchor", margin=0.3, **quick).fit(X, y).loss_.margin == 0.3
    with pytest.raises(ValueError, match="takes no option 'miner'"):
        _embedder("proxy_anchor", miner="all", **quick).fit(X, y)
    with pytest.raises(InvalidParameterError, match="'miner' parameter of TripletLoss"):
        _embedder("triplet", miner="multi_similarity", **quick).fit(X, y)


@pytest.fixture(scope="module")
def fitted_proxy_anchor():
    X, y = _identities()
    return _embedder("proxy_anchor", n_members=2, max_epochs=3).fit(X, y), X, y


@pytest.mark.parametrize("how", ["pickle", "dump"])
def test_pickle_and_dump_keep_the_proxies_and_their_optimizer_state(fitted_proxy_anchor, how):
    model, X, y = fitted_proxy_anchor
    if how == "pickle":
        loaded = pickle.loads(pickle.dumps(model))
    else:
        buffer = io.BytesIO()
        persistence.dump(model, buffer)
        loaded = persistence.load(buffer)
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    for name, value in model.net_.criterion_.state_dict().items():
        torch.testing.assert_close(loaded.net_.criterion_.state_dict()[name], value, rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.net_.criterion_.identities, model.classes_)
    # trained on, the copy does what the model does: the proxies and Adam's moments came back
    continued = copy.deepcopy(model)
    for m in (continued, loaded):
        m.set_params(warm_start=True, max_epochs=1).fit(X, y)
    np.testing.assert_array_equal(loaded.transform(X), continued.transform(X))
    torch.testing.assert_close(_proxies(loaded), _proxies(continued), rtol=0, atol=0)


def test_a_file_without_the_proxies_is_refused(fitted_proxy_anchor, monkeypatch):
    model, _, _ = fitted_proxy_anchor
    buffer = io.BytesIO()
    original = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: original({**obj, "criteria": {}}, f))
    persistence.dump(model, buffer)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="the file lacks the learned parameters of the loss"):
        persistence.load(buffer)


def test_partial_fit_keeps_each_identitys_proxy_and_starts_new_ones_for_new_identities():
    X, codes = _identities(6, 8)
    names = np.array(["ann", "cy", "eve", "bo", "dee", "fay"])[codes]  # the new ones sort between the old ones
    first = np.isin(names, ["ann", "cy", "eve"])
    model = _embedder("proxy_anchor", n_members=2, lr=1e-3)
    model.partial_fit(X[first], names[first])
    before = _proxies(model)
    assert list(model.classes_) == ["ann", "cy", "eve"] and before.shape == (2, 3, 4)
    model.partial_fit(X, names)  # one epoch, with three identities more
    after = _proxies(model)
    assert list(model.classes_) == ["ann", "bo", "cy", "dee", "eve", "fay"] and after.shape == (2, 6, 4)
    assert model.net_.criterion_.seen.all()  # the new proxies trained in this epoch
    old = [0, 2, 4]
    assert (after[:, old] - before).abs().max() < 0.05  # the same identities' proxies, moved by a few small steps
    assert (after[:, old] - before[:, [1, 2, 0]]).abs().max() > 0.2  # (unlike another identity's)
    adam = model.net_.optimizer_.state[model.net_.criterion_.learned["proxies"]]
    assert adam["exp_avg"].shape == (2, 6, 4)


def test_continuing_takes_over_the_proxies_by_label_and_a_warm_start_drops_absent_identities():
    loss = ProxyAnchorLoss()
    torch.manual_seed(0)
    previous = _MemberCriterion(loss, 2, True, identities=np.array(["ann", "cy"]), embedding_dim=3)
    previous.seen[0] = True
    grown = _MemberCriterion(loss, 2, True, identities=np.array(["ann", "bo", "cy"]), embedding_dim=3)
    fresh = grown.learned["proxies"].detach().clone()
    moved = grown.continue_from(previous)
    old, new = previous.learned["proxies"].detach(), grown.learned["proxies"].detach()
    torch.testing.assert_close(new[:, [0, 2]], old)
    torch.testing.assert_close(new[:, 1], fresh[:, 1])  # "bo" keeps its fresh start
    assert grown.seen.tolist() == [True, False, False]
    (remap,) = moved.values()
    torch.testing.assert_close(remap(old), torch.stack([old[:, 0], torch.zeros(2, 3), old[:, 1]], 1))
    shrunk = _MemberCriterion(loss, 2, True, identities=np.array(["cy"]), embedding_dim=3)
    shrunk.continue_from(previous)
    torch.testing.assert_close(shrunk.learned["proxies"].detach(), old[:, 1:])


def test_early_stopping_restores_the_best_epochs_proxies_with_its_weights():
    criterion = _MemberCriterion(ProxyAnchorLoss(), 1, True, identities=np.arange(3), embedding_dim=2)
    net = SimpleNamespace(history=History(), module_=torch.nn.Linear(2, 2), criterion_=criterion, verbose=0)
    stopping = EarlyStopping(patience=5, load_best=True)
    stopping.on_train_begin(net)
    best = copy.deepcopy(criterion.state_dict())
    for epoch, valid_loss in ((1, 1.0), (2, 2.0)):
        net.history.new_epoch()
        net.history.record("epoch", epoch)
        net.history.record("valid_loss", valid_loss)
        stopping.on_epoch_end(net)
        with torch.no_grad():
            criterion.learned["proxies"].add_(1.0)
            criterion.seen[epoch] = True
    stopping.on_train_end(net)
    for name, value in best.items():
        torch.testing.assert_close(criterion.state_dict()[name], value)
    assert pickle.loads(pickle.dumps(stopping)).best_criterion_state_ is None


def test_the_default_chooses_the_loss_and_the_triplet_loss_is_one_parameter_away():
    assert TripletEmbedder().loss == "auto"
    X, y = _identities(6, 4)
    default = TripletEmbedder(hidden_layer_sizes=(8,), embedding_dim=4, max_epochs=1, random_state=0).fit(X, y)
    assert isinstance(default.loss_, MultiSimilarityLoss)  # 6 identities
    assert isinstance(_embedder("triplet", max_epochs=1).fit(X, y).loss_, TripletLoss)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_proxies_train_on_the_gpu_and_move_with_the_model():
    X, codes = _identities(6, 8)
    names = np.array(["ann", "cy", "eve", "bo", "dee", "fay"])[codes]
    first = np.isin(names, ["ann", "cy", "eve"])
    model = _embedder("proxy_anchor", n_members=2, device="cuda").fit(X[first], names[first])
    assert model.net_.criterion_.learned["proxies"].device.type == "cuda"
    model.set_params(warm_start=True, max_epochs=2).fit(X, names)  # new identities: the proxies grow on the GPU
    proxies = model.net_.criterion_.learned["proxies"]
    assert proxies.device.type == "cuda" and proxies.shape == (2, 6, 4)
    assert model.net_.optimizer_.state[proxies]["exp_avg"].device.type == "cuda"
    buffer = io.BytesIO()
    persistence.dump(model, buffer)
    for copy_ in (persistence.load(buffer), pickle.loads(pickle.dumps(model))):
        torch.testing.assert_close(_proxies(copy_).cpu(), proxies.detach().cpu(), rtol=0, atol=0)
    on_cpu = pickle.loads(pickle.dumps(model)).set_params(device="cpu", max_epochs=1)
    on_cpu.fit(X, names)  # continued on the CPU: the proxies and their optimizer state come along
    moved = on_cpu.net_.criterion_.learned["proxies"]
    assert moved.device.type == "cpu" and on_cpu.net_.optimizer_.state[moved]["exp_avg"].device.type == "cpu"
    assert np.isfinite(on_cpu.transform(X)).all()


# ----------------------------------------------------------------------------------------------- loss="auto"


def test_auto_takes_multi_similarity_on_few_identities_and_the_triplet_loss_on_many(monkeypatch):
    assert [embedding_loss(n) for n in (2, 30, MULTI_SIMILARITY_MAX_IDENTITIES, MULTI_SIMILARITY_MAX_IDENTITIES + 1,
                                        1000)] == ["multi_similarity"] * 3 + ["triplet"] * 2
    monkeypatch.setattr(_embedder_settings, "MULTI_SIMILARITY_MAX_IDENTITIES", 5)  # recipe.py --rule sets it so
    X, y = _identities(6, 4)
    few = _embedder("auto", max_epochs=1).fit(X[y < 5], y[y < 5])
    many = _embedder("auto", max_epochs=1).fit(X, y)
    assert (type(few.loss_), few.miner_) == (MultiSimilarityLoss, "multi_similarity")
    assert (type(many.loss_), many.loss_.margin, many.miner_) == (TripletLoss, TripletLoss().margin, "semi_hard")
    assert many.get_params()["loss"] == "auto"  # the parameter as given; loss_ says what it stood for


@pytest.mark.parametrize("option", [{"margin": 0.3}, {"miner": "multi_similarity"}, {"miner": "batch_hard"}])
def test_auto_refuses_a_margin_or_miner_whose_meaning_depends_on_the_loss_it_picks(option):
    X, y = _identities(6, 4)
    model = _embedder("auto", max_epochs=1).fit(X, y)
    before = model.transform(X)
    with pytest.raises(ValueError, match=r"with loss='auto'.*Name the loss the option is for"):
        model.set_params(**option).fit(X, y)
    np.testing.assert_array_equal(model.transform(X), before)  # the fitted model is left as it was
    assert type(model.set_params(loss="multi_similarity").fit(X, y).loss_) is MultiSimilarityLoss


@pytest.mark.parametrize("continuing", ["partial_fit", "warm_start"])
def test_auto_keeps_the_fitted_networks_loss_when_training_continues_on_more_identities(monkeypatch, continuing,
                                                                                         capsys):
    monkeypatch.setattr(_embedder_settings, "MULTI_SIMILARITY_MAX_IDENTITIES", 5)
    X, y = _identities(8, 4)
    first = y < 4
    model = _embedder("auto", max_epochs=1, early_stopping=False)
    if continuing == "partial_fit":
        model.partial_fit(X[first], y[first]).partial_fit(X, y)
    else:
        model.fit(X[first], y[first]).set_params(warm_start=True).fit(X, y)
    assert type(model.loss_) is MultiSimilarityLoss and len(model.classes_) == 8
    assert model.n_iter_ == 2  # continued, not started afresh
    model.set_params(verbose=1)
    model.partial_fit(X, y) if continuing == "partial_fit" else model.fit(X, y)
    said = capsys.readouterr().out
    assert "loss='auto': 'multi_similarity' (the fitted network's, which this fit continues)" in said
    model.set_params(verbose=0)
    assert type(model.set_params(warm_start=False).fit(X, y).loss_) is TripletLoss  # a new network: the rule again


def test_grid_search_tries_auto_beside_the_losses_it_stands_for():
    X, y = _identities(8, 6)
    search = GridSearchCV(_embedder("auto", max_epochs=2, early_stopping=False),
                          {"loss": ["auto", "triplet"]}, cv=2).fit(X, y)
    assert list(search.cv_results_["param_loss"]) == ["auto", "triplet"]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = {"auto": MultiSimilarityLoss, "triplet": TripletLoss}[search.best_params_["loss"]]  # 8 identities
    assert type(search.best_estimator_.loss_) is best
