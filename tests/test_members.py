"""Members side by side (``n_members``) and the regressors' data-resolved settings (``"auto"``)."""

import numpy as np
import pytest
import torch
from scipy import stats

from sklearn_costs import DeepEnsembleRegressor, GaussianUncertaintyRegressor, PoissonSpikeRegressor
from sklearn_costs._distribution import resolve_regressor_settings
from sklearn_costs._training import MemberSliceLoader, TensorDataset
from sklearn_costs.base import THREAD_WORK, resolve_threads
from sklearn_costs.datasets import make_heteroscedastic_regression
from sklearn_costs.modules import MemberLinear

AUTO = {"hidden_layer_sizes": "auto", "n_members": "auto", "clip_inputs": "auto"}


@pytest.fixture(scope="module")
def data():
    return make_heteroscedastic_regression(600, random_state=0), make_heteroscedastic_regression(300, random_state=1)


@pytest.fixture(scope="module")
def fitted(data):
    train, _ = data
    # the members' own mixture (with the linear part: tests/test_linear_component.py)
    return GaussianUncertaintyRegressor(n_members=3, hidden_layer_sizes=(16,), max_epochs=40, lr=1e-2,
                                        linear_weight=0, random_state=0).fit(train.X, train.y)


def test_rules_for_a_small_table_a_large_table_and_many_neurons():
    small = {"hidden_layer_sizes": (64, 64), "n_members": 5, "clip_inputs": True}
    assert resolve_regressor_settings(50, 8, 1, AUTO) == small
    assert resolve_regressor_settings(10_000, 8, 1, AUTO) == small
    many = resolve_regressor_settings(12_000, 4, 150, AUTO)
    assert many["hidden_layer_sizes"] == (128, 128) and 1 <= many["n_members"] < 5  # fewer, for speed
    assert resolve_regressor_settings(10**7, 8, 200, AUTO)["n_members"] == 1
    # the same recording with every neuron's history on 4 bumps (4 + 600 inputs): the budget grows with the inputs
    with_history = resolve_regressor_settings(12_000, 604, 150, AUTO)
    assert with_history["n_members"] == 5 and many["n_members"] < 5
    # a GLM has one optimum: no members, and its linear predictor extrapolates as its model; explicit values are
    # taken as given
    glm = resolve_regressor_settings(50, 8, 1, {**AUTO, "hidden_layer_sizes": ()})
    assert glm["n_members"] == 1 and glm["clip_inputs"] is False
    assert resolve_regressor_settings(50, 8, 1, {"hidden_layer_sizes": 7, "n_members": 2, "clip_inputs": False}) == {
        "hidden_layer_sizes": (7,), "n_members": 2, "clip_inputs": False}


def test_threads_auto_takes_one_thread_for_a_small_step():
    small, large = torch.nn.Linear(10, 10), torch.nn.Linear(1000, 1000)
    assert resolve_threads("auto", small, 256, "cpu") == 1
    assert 256 * sum(p.numel() for p in large.parameters()) > THREAD_WORK
    assert resolve_threads("auto", large, 256, "cpu") is None
    assert resolve_threads(3, small, 256, "cpu") == 3


def test_defaults_resolve_and_report_and_explicit_values_override(data):
    train, _ = data
    model = GaussianUncertaintyRegressor(max_epochs=2, random_state=0).fit(train.X, train.y)
    assert model.hidden_layer_sizes_ == (64, 64) and model.n_members_ == 5 and model.n_threads_ == 1
    assert sum(isinstance(m, MemberLinear) for m in model.net_.module_.modules()) == 3  # one batched network
    explicit = GaussianUncertaintyRegressor(hidden_layer_sizes=(8,), n_members=1, n_threads=2, max_epochs=2,
                                            random_state=0).fit(train.X, train.y)
    assert (explicit.hidden_layer_sizes_, explicit.n_members_, explicit.n_threads_) == ((8,), 1, 2)
    assert not any(isinstance(m, MemberLinear) for m in explicit.net_.module_.modules())


def test_verbose_prints_the_resolved_settings(data, capsys):
    train, _ = data
    GaussianUncertaintyRegressor(max_epochs=1, verbose=1, random_state=0).fit(train.X, train.y)
    assert "hidden_layer_sizes=(64, 64), n_members=5" in capsys.readouterr().out


def test_members_differ_and_predictions_are_their_mixture(fitted, data):
    _, test = data
    params = fitted.predict_distribution(test.X)
    means, stds = params["mean"], params["std"]
    assert means.shape == (3, 300)
    assert not np.allclose(means[0], means[1], atol=1e-3)  # own start and own order of the rows
    mean, std = fitted.predict(test.X, return_std=True)
    np.testing.assert_allclose(mean, means.mean(0), rtol=1e-10)
    np.testing.assert_allclose(std**2, (stds**2).mean(0) + means.var(0), rtol=1e-6)
    density = np.mean([stats.norm.pdf(test.y, m, s) for m, s in zip(means, stds)], axis=0)
    np.testing.assert_allclose(fitted.log_likelihood(test.X, test.y), np.log(density), rtol=1e-5)
    cdf = np.mean([stats.norm.cdf(test.y, m, s) for m, s in zip(means, stds)], axis=0)
    np.testing.assert_allclose(fitted.predict_cdf(test.X, test.y), cdf, rtol=1e-6)
    lower, upper = fitted.predict_interval(test.X, coverage=0.8)
    below = np.mean([stats.norm.cdf(lower, m, s) for m, s in zip(means, stds)], axis=0)
    above = np.mean([stats.norm.cdf(upper, m, s) for m, s in zip(means, stds)], axis=0)
    np.testing.assert_allclose(below, 0.1, atol=1e-8)
    np.testing.assert_allclose(above, 0.9, atol=1e-8)


def test_samples_follow_the_mixture(fitted, data):
    _, test = data
    draws = fitted.sample(test.X.iloc[:4], n_samples=4000, random_state=0)
    assert draws.shape == (4000, 4)
    mean, std = fitted.predict(test.X.iloc[:4], return_std=True)
    np.testing.assert_allclose(draws.mean(0), mean, atol=4 * std.max() / np.sqrt(4000))
    np.testing.assert_allclose(draws.std(0), std, rtol=0.1)


def test_members_train_like_separate_networks_on_their_own_batches():
    X, y = torch.arange(10.0).reshape(10, 1), torch.arange(10.0).reshape(10, 1)
    loader = MemberSliceLoader(TensorDataset(X, y, torch.ones(10)), batch_size=4, shuffle=True, seed=0, members=3)
    seen = [[] for _ in range(3)]
    for Xb, (yb, wb) in loader:
        assert Xb.shape[1:] == (3, 1) and yb.shape[1:] == (3, 1) and wb.shape[1:] == (3,)
        torch.testing.assert_close(Xb, yb)  # each member's rows keep their targets
        for m in range(3):
            seen[m] += Xb[:, m, 0].tolist()
    assert all(sorted(s) == list(range(10)) for s in seen)  # every member sees every row once an epoch
    assert seen[0] != seen[1]  # in its own order


def test_count_members_and_glm_has_one_member():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 3))
    Y = rng.poisson(np.exp(0.2 + X @ rng.normal(scale=0.4, size=(3, 4))))
    model = PoissonSpikeRegressor(n_members=3, max_epochs=30, random_state=0).fit(X, Y)
    members = model.predict_distribution(X[:5])["rate"]
    assert members.shape == (3, 5, 4)
    np.testing.assert_allclose(model.predict(X[:5]), members.mean(0), rtol=1e-10)
    log_p = stats.poisson.logpmf(Y[:5], members)
    np.testing.assert_allclose(model.log_likelihood(X[:5], Y[:5]),
                               np.log(np.exp(log_p).mean(0)), rtol=1e-5)
    glm = PoissonSpikeRegressor(hidden_layer_sizes=(), max_epochs=5, random_state=0).fit(X, Y)
    assert glm.n_members_ == 1 and glm.coef_.shape == (4, 3)


def test_a_deep_ensemble_of_members_is_the_mixture_of_all(data):
    train, test = data
    member = GaussianUncertaintyRegressor(n_members=2, hidden_layer_sizes=(8,), max_epochs=10, linear_weight=0)
    ensemble = DeepEnsembleRegressor(member, n_estimators=2, random_state=0).fit(train.X, train.y)
    components = np.concatenate([m.predict_distribution(test.X)["mean"] for m in ensemble.estimators_])
    assert components.shape == (4, 300)
    np.testing.assert_allclose(ensemble.predict(test.X), components.mean(0), rtol=1e-10)
    lower, upper = ensemble.predict_interval(test.X.iloc[:20], coverage=0.5)
    np.testing.assert_allclose(ensemble.predict_cdf(test.X.iloc[:20], lower), 0.25, atol=1e-8)


def test_the_members_objective_weighs_rows_as_repeated_rows():
    from sklearn_costs._distribution import _MembersCriterion
    from sklearn_costs.losses import GaussianLoss

    criterion = _MembersCriterion(GaussianLoss(), members=2)
    gen = torch.Generator().manual_seed(0)
    raw, y = torch.randn(6, 2 * 1, 2, generator=gen), torch.randn(6, 1, generator=gen)
    weight = torch.tensor([2.0, 1, 1, 1, 1, 1])
    repeat = torch.tensor([0, 0, 1, 2, 3, 4, 5])
    for mode in (True, False):  # training and evaluation
        criterion.train(mode)
        torch.testing.assert_close(criterion(raw, (y, weight)), criterion(raw[repeat], y[repeat]))
    # in training each member has its own rows: (rows, members, targets), the weights (rows, members)
    criterion.train(True)
    own_y, own_w = torch.stack([y, y.flip(0)], 1), torch.stack([weight, weight.flip(0)], 1)
    single = GaussianLoss()
    expected = (single(raw[:, :1], y, weight) + single(raw[:, 1:], y.flip(0), weight.flip(0))) / 2
    torch.testing.assert_close(criterion(raw, (own_y, own_w)), expected)


def test_each_member_gets_the_gradient_of_its_own_loss():
    from sklearn_costs._distribution import _MembersCriterion
    from sklearn_costs.losses import GaussianLoss

    gen = torch.Generator().manual_seed(0)
    raw = torch.randn(6, 3, 2, generator=gen, requires_grad=True)
    y = torch.randn(6, 1, generator=gen)
    value = _MembersCriterion(GaussianLoss(), members=3).train()(raw, y)
    value.backward()
    single = GaussianLoss()
    for m in range(3):
        part = raw.detach()[:, m : m + 1].clone().requires_grad_(True)
        single(part, y).backward()
        torch.testing.assert_close(raw.grad[:, m : m + 1], part.grad)
    torch.testing.assert_close(value.detach(), sum(single(raw.detach()[:, m : m + 1], y) for m in range(3)) / 3)


@pytest.mark.parametrize("Estimator", [GaussianUncertaintyRegressor, PoissonSpikeRegressor])
def test_inputs_beyond_the_training_range_are_predicted_as_at_its_edge(Estimator):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(300, 2))
    y = rng.poisson(np.exp(0.5 + X[:, 0])) if Estimator is PoissonSpikeRegressor else X[:, 0] + rng.normal(0, .1, 300)
    far = np.array([[50.0, 0.3], [-50.0, 0.3]])
    edge = np.clip(far, X.min(0), X.max(0))
    kwargs = dict(hidden_layer_sizes=(16,), n_members=1, max_epochs=30, random_state=0)
    if Estimator is GaussianUncertaintyRegressor:  # the networks' clipping: the linear part is never clipped
        kwargs["linear_weight"] = 0
    clipped = Estimator(**kwargs).fit(X, y)
    assert clipped.clip_inputs_ is True
    np.testing.assert_allclose(clipped.predict(far), clipped.predict(edge), rtol=1e-6)
    inside = X[:20]  # within the range nothing changes: the same fit without clipping predicts the same there
    free = Estimator(clip_inputs=False, **kwargs).fit(X, y)
    assert free.clip_inputs_ is False
    np.testing.assert_allclose(clipped.predict(inside), free.predict(inside), rtol=1e-5)
    assert not np.allclose(free.predict(far), free.predict(edge), rtol=1e-3)
    # a GLM keeps its linear predictor everywhere
    glm = Estimator(hidden_layer_sizes=(), max_epochs=30, random_state=0).fit(X, y)
    assert glm.clip_inputs_ is False


def test_the_clipping_range_ignores_rows_of_zero_weight():
    X = np.concatenate([np.linspace(0, 1, 100), [100.0]])[:, None]
    y = X[:, 0].copy()
    weight = np.r_[np.ones(100), 0.0]
    model = GaussianUncertaintyRegressor(hidden_layer_sizes=(8,), n_members=1, max_epochs=5, linear_weight=0,
                                         random_state=0)
    model.fit(X, y, sample_weight=weight)
    np.testing.assert_allclose(model.predict([[100.0]]), model.predict([[1.0]]), rtol=1e-6)


def test_the_embedders_members_get_the_gradient_of_their_own_loss_as_the_regressors_do():
    from sklearn_costs.losses import TripletLoss
    from sklearn_costs.triplet import _MemberCriterion

    gen = torch.Generator().manual_seed(0)
    embeddings = torch.randn(12, 3 * 4, generator=gen, requires_grad=True)  # 3 members of 4 dimensions
    labels = torch.arange(12) % 4
    loss = TripletLoss(miner="all")
    value = _MemberCriterion(loss, members=3, normalized=False)(embeddings, labels)
    value.backward()
    for m in range(3):
        part = embeddings.detach()[:, 4 * m : 4 * (m + 1)].clone().requires_grad_(True)
        single = loss(part, labels)
        single.backward()
        torch.testing.assert_close(embeddings.grad[:, 4 * m : 4 * (m + 1)], part.grad)
    parts = [loss(embeddings.detach()[:, 4 * m : 4 * (m + 1)], labels) for m in range(3)]
    torch.testing.assert_close(value.detach(), sum(parts) / 3)
