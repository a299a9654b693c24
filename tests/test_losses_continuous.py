import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sklearn_costs.losses import BetaNLLLoss, GaussianLoss, LaplaceLoss, SquaredErrorLoss, StudentTLoss

reals = st.floats(-1e3, 1e3)
raw_spread = st.floats(-20.0, 20.0)
N = 6


def _tensor(values):
    return torch.tensor(values, dtype=torch.float64)


def _check_grad(loss, raw, y):
    raw = raw.clone().requires_grad_(True)
    loss.nll(loss.link(raw), y).sum().backward()
    assert torch.isfinite(raw.grad).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(reals, min_size=N, max_size=N), st.lists(reals, min_size=N, max_size=N),
       st.lists(raw_spread, min_size=N, max_size=N), st.sampled_from(["softplus", "exp"]))
def test_gaussian_and_beta_nll_equal_scipy_norm(y, mu, s, link):
    y = _tensor(y)
    raw = torch.stack([_tensor(mu), _tensor(s)], dim=-1)
    for loss in (GaussianLoss(std_link=link), BetaNLLLoss(std_link=link)):
        params = loss.link(raw)
        expected = -stats.norm.logpdf(y.numpy(), params["mean"].numpy(), params["std"].numpy())
        np.testing.assert_allclose(loss.nll(params, y).numpy(), expected, rtol=1e-5, atol=1e-5)
        _check_grad(loss, raw, y)


# scipy's Laplace logpdf is log(pdf): it loses digits once the density underflows (|z| > ~700), so |z| is kept
# below 100 here; the closed form at tiny scales is checked below.
@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=N, max_size=N), st.lists(st.floats(-100, 100), min_size=N, max_size=N),
       st.lists(st.floats(2.0, 20.0), min_size=N, max_size=N))
def test_laplace_nll_equals_scipy(y, mu, s):
    y = _tensor(y)
    raw = torch.stack([_tensor(mu), _tensor(s)], dim=-1)
    loss = LaplaceLoss()
    params = loss.link(raw)
    expected = -stats.laplace.logpdf(y.numpy(), params["mean"].numpy(), params["scale"].numpy())
    np.testing.assert_allclose(loss.nll(params, y).numpy(), expected, rtol=1e-5, atol=1e-5)
    _check_grad(loss, raw, y)


def test_laplace_nll_at_a_tiny_scale():
    loss = LaplaceLoss(min_std=0.0)
    params = loss.link(torch.tensor([[-63.0, -20.0]], dtype=torch.float64))
    b = params["scale"].item()
    expected = np.log(2 * b) + 513.0 / b
    np.testing.assert_allclose(loss.nll(params, torch.tensor([450.0], dtype=torch.float64)).item(), expected,
                               rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(reals, min_size=N, max_size=N), st.lists(reals, min_size=N, max_size=N),
       st.lists(raw_spread, min_size=N, max_size=N), st.lists(st.floats(-10.0, 30.0), min_size=N, max_size=N))
def test_student_t_nll_equals_scipy(y, mu, s, d):
    y = _tensor(y)
    raw = torch.stack([_tensor(mu), _tensor(s), _tensor(d)], dim=-1)
    loss = StudentTLoss()
    params = loss.link(raw)
    assert (params["df"] > 2).all()
    expected = -stats.t.logpdf(y.numpy(), params["df"].numpy(), params["mean"].numpy(), params["scale"].numpy())
    np.testing.assert_allclose(loss.nll(params, y).numpy(), expected, rtol=1e-5, atol=1e-5)
    _check_grad(loss, raw, y)


@settings(max_examples=40, deadline=None)
@given(st.lists(reals, min_size=N, max_size=N), st.lists(reals, min_size=N, max_size=N),
       st.lists(st.floats(-10.0, 10.0), min_size=N, max_size=N))
def test_mse_baseline_is_a_gaussian_with_its_constant_std(y, mu, s):
    y = _tensor(y)
    raw = torch.stack([_tensor(mu), _tensor(s)], dim=-1)
    loss = SquaredErrorLoss()
    params = loss.link(raw)
    expected = -stats.norm.logpdf(y.numpy(), params["mean"].numpy(), params["std"].numpy())
    np.testing.assert_allclose(loss.nll(params, y).numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loss.training_loss(params, y).numpy(), 0.5 * (y - params["mean"]).numpy() ** 2)


def test_mse_std_is_the_rms_training_residual():
    loss = SquaredErrorLoss(min_std=0.0)
    y = torch.tensor([[1.0], [2.0], [4.0]])
    params = {"mean": torch.tensor([[1.5], [1.5], [4.0]])}
    raw_std = loss.fit_shared(params, y)["std"]
    np.testing.assert_allclose(torch.exp(raw_std).numpy(), [np.sqrt((0.25 + 0.25 + 0) / 3)], rtol=1e-6)


@pytest.mark.parametrize("loss", [GaussianLoss(), GaussianLoss(std_link="exp"), LaplaceLoss(), StudentTLoss(),
                                  BetaNLLLoss(), SquaredErrorLoss()])
def test_spread_stays_positive_and_nll_finite_at_extreme_float32_outputs(loss):
    extremes = torch.tensor([-1e30, -1e6, -100.0, 0.0, 100.0, 1e6, 1e30])
    raw = torch.stack([torch.zeros(7)] + [extremes] * (loss.n_outputs - 1), dim=-1).requires_grad_(True)
    params = loss.link(raw)
    assert (loss.std(params) > 0).all() and torch.isfinite(loss.std(params)).all()
    y = torch.tensor([0.0, 1.0, -1.0, 3.0, 1e3, -1e3, 0.5])
    nll = loss.nll(params, y)
    assert torch.isfinite(nll).all()
    nll.sum().backward()
    assert torch.isfinite(raw.grad).all()


def test_beta_nll_weights_each_point_by_its_detached_variance():
    y = torch.tensor([0.0, 2.0])
    raw = torch.tensor([[1.0, 0.3], [0.5, 2.0]], requires_grad=True)
    beta = BetaNLLLoss(beta=0.5)
    beta.training_loss(beta.link(raw), y).sum().backward()
    grad_beta = raw.grad.clone()
    raw.grad = None
    gauss = GaussianLoss()
    params = gauss.link(raw)
    gauss.nll(params, y).sum().backward()
    weight = params["std"].detach() ** 1.0
    np.testing.assert_allclose(grad_beta.numpy(), (raw.grad * weight[:, None]).numpy(), rtol=1e-6)
    assert BetaNLLLoss(beta=0.0).training_loss(beta.link(raw), y).allclose(gauss.nll(gauss.link(raw), y))


@pytest.mark.parametrize("loss", [GaussianLoss(), LaplaceLoss(), StudentTLoss(), SquaredErrorLoss()])
def test_std_matches_the_scipy_distribution_and_samples(loss):
    raw = torch.tensor([[0.5, 0.2, 1.0]])[:, : loss.n_outputs]
    params = loss.link(raw)
    dist = loss.scipy_distribution({k: v.double().numpy() for k, v in params.items()})
    np.testing.assert_allclose(dist.std(), loss.std(params).numpy(), rtol=1e-5)
    draws = loss.sample({k: v.double().numpy().repeat(40000) for k, v in params.items()}, np.random.default_rng(0))
    np.testing.assert_allclose(draws.mean(), 0.5, atol=0.03)
    np.testing.assert_allclose(draws.std(), loss.std(params).item(), rtol=0.05)


def test_rescale_reports_parameters_in_target_units():
    loss = StudentTLoss()
    params = loss.link(torch.tensor([[1.0, 0.0, 3.0]]))
    out = loss.rescale(params, torch.tensor(10.0), torch.tensor(2.0))
    assert out["mean"].item() == pytest.approx(12.0)
    assert out["scale"].item() == pytest.approx(2 * params["scale"].item())
    assert out["df"].item() == pytest.approx(params["df"].item())
