import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sklearn_costs.losses import (
    NegativeBinomialLoss,
    PoissonLoss,
    SquaredErrorCountLoss,
    ZeroInflatedPoissonLoss,
    check_counts,
)

counts = st.lists(st.integers(0, 100_000), min_size=1, max_size=8)
raw_values = st.floats(-30.0, 12.0)  # rates from 1e-13 to 1.6e5 through the log link


def _pairs(draw_counts, draw_raw):
    n = len(draw_counts)
    y = torch.tensor(draw_counts, dtype=torch.float64)
    raw = torch.tensor(draw_raw[:n] + [0.0] * (n - len(draw_raw[:n])), dtype=torch.float64)
    return y, raw


def _finite_grad(loss, raw, y):
    raw = raw.clone().requires_grad_(True)
    loss.nll(loss.link(raw), y).sum().backward()
    return bool(torch.isfinite(raw.grad).all())


@settings(max_examples=60, deadline=None)
@given(counts, st.lists(raw_values, min_size=8, max_size=8), st.sampled_from(["log", "softplus"]))
def test_poisson_nll_equals_scipy(k, r, link):
    y, raw = _pairs(k, r)
    loss = PoissonLoss(rate_link=link)
    params = loss.link(raw[:, None])
    expected = -stats.poisson.logpmf(y.numpy(), params["rate"].numpy())
    np.testing.assert_allclose(loss.nll(params, y).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert _finite_grad(loss, raw[:, None], y)


# scipy computes log(1 - p) as log1p(-p), which loses digits when the mean is below ~1e-6 of 1/alpha: compare with
# scipy where it is exact, and with 50-digit arithmetic (mpmath) over the whole range.
@settings(max_examples=60, deadline=None)
@given(counts, st.lists(st.floats(-12.0, 12.0), min_size=8, max_size=8),
       st.lists(st.floats(-8.0, 4.0), min_size=8, max_size=8))
def test_negative_binomial_nll_equals_scipy(k, r, a):
    y, raw_mu = _pairs(k, r)
    log_alpha = torch.tensor(a[: len(y)], dtype=torch.float64)
    loss = NegativeBinomialLoss()
    params = loss.link(torch.stack([raw_mu, log_alpha], dim=-1))
    mu, alpha = params["rate"].numpy(), params["dispersion"].numpy()
    n = 1.0 / alpha
    expected = -stats.nbinom.logpmf(y.numpy(), n, n / (n + mu))
    np.testing.assert_allclose(loss.nll(params, y).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert _finite_grad(loss, torch.stack([raw_mu, log_alpha], dim=-1), y)


@settings(max_examples=40, deadline=None)
@given(counts, st.lists(raw_values, min_size=8, max_size=8), st.lists(st.floats(-8.0, 4.0), min_size=8, max_size=8))
def test_negative_binomial_nll_is_exact_at_extreme_rates(k, r, a):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    y, raw_mu = _pairs(k, r)
    log_alpha = torch.tensor(a[: len(y)], dtype=torch.float64)
    loss = NegativeBinomialLoss()
    got = loss.nll(loss.link(torch.stack([raw_mu, log_alpha], dim=-1)), y).numpy()
    for gi, yi, lm, la in zip(got, y.tolist(), raw_mu.tolist(), log_alpha.tolist()):
        mu, n = mpmath.exp(mpmath.mpf(lm)), mpmath.exp(-mpmath.mpf(la))
        logpmf = (mpmath.loggamma(yi + n) - mpmath.loggamma(n) - mpmath.loggamma(yi + 1)
                  + n * mpmath.log(n / (n + mu)) + yi * mpmath.log(mu / (n + mu)))
        assert abs(gi + float(logpmf)) <= 1e-5 * max(1.0, abs(float(logpmf)))


@settings(max_examples=60, deadline=None)
@given(counts, st.lists(raw_values, min_size=8, max_size=8), st.lists(st.floats(-15.0, 15.0), min_size=8, max_size=8))
def test_zero_inflated_poisson_nll_equals_mixture(k, r, z):
    y, raw_rate = _pairs(k, r)
    logit = torch.tensor(z[: len(y)], dtype=torch.float64)
    loss = ZeroInflatedPoissonLoss()
    params = loss.link(torch.stack([raw_rate, logit], dim=-1))
    lam, pi = params["rate"].numpy(), params["zero_probability"].numpy()
    yn = y.numpy()
    expected = -np.where(
        yn == 0,
        np.log(pi + (1 - pi) * stats.poisson.pmf(0, lam)),
        np.log1p(-pi) + stats.poisson.logpmf(yn, lam),
    )
    np.testing.assert_allclose(loss.nll(params, y).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert _finite_grad(loss, torch.stack([raw_rate, logit], dim=-1), y)


def test_zero_inflated_poisson_std_of_near_certain_zeros_stays_positive_in_float32():
    # at zero logits above ~17, 1 - pi rounds to 0 in float32: the std, like the mean, is computed in log space
    loss = ZeroInflatedPoissonLoss()
    raw = torch.tensor([[0.5, 20.0], [1.0, -2.0], [2.0, 0.3]])
    wide, narrow = loss.link(raw.double()), loss.link(raw)
    pi, rate = wide["zero_probability"].numpy(), wide["rate"].numpy()
    expected = np.sqrt((1 - pi) * rate * (1 + pi * rate))
    np.testing.assert_allclose(loss.std(wide).numpy(), expected, rtol=1e-7)  # 1 - pi: 1e-8 off
    np.testing.assert_allclose(loss.std(narrow).numpy(), expected, rtol=1e-5)
    assert (loss.std(narrow) ** 2 > loss.mean(narrow)).all()  # a ZIP's variance exceeds its mean


@settings(max_examples=40, deadline=None)
@given(counts, st.lists(st.floats(-30.0, 1e4), min_size=8, max_size=8))
def test_mse_baseline_reports_the_poisson_likelihood_of_its_mean(k, r):
    y, raw = _pairs(k, r)
    loss = SquaredErrorCountLoss()
    params = loss.link(raw[:, None])
    assert (params["rate"] > 0).all()
    expected = -stats.poisson.logpmf(y.numpy(), params["rate"].numpy())
    np.testing.assert_allclose(loss.nll(params, y).numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loss.training_loss(params, y).numpy(), 0.5 * (y - params["rate"]).numpy() ** 2)


def test_negative_binomial_tends_to_poisson_as_dispersion_vanishes():
    y = torch.tensor([0.0, 1.0, 3.0, 10.0, 40.0], dtype=torch.float64)
    raw_mu = torch.log(torch.tensor([0.5, 1.0, 2.0, 12.0, 35.0], dtype=torch.float64))
    poisson = PoissonLoss()
    p_nll = poisson.nll(poisson.link(raw_mu[:, None]), y)
    nb = NegativeBinomialLoss()
    for log_alpha, tol in [(-6.0, 1e-1), (-12.0, 1e-4), (-18.0, 1e-6)]:
        params = nb.link(torch.stack([raw_mu, torch.full_like(raw_mu, log_alpha)], dim=-1))
        np.testing.assert_allclose(nb.nll(params, y).numpy(), p_nll.numpy(), atol=tol)


@pytest.mark.parametrize("loss", [PoissonLoss(), PoissonLoss(rate_link="softplus"), NegativeBinomialLoss(),
                                  ZeroInflatedPoissonLoss(), SquaredErrorCountLoss()])
def test_links_are_valid_and_nll_finite_for_extreme_float32_outputs(loss):
    raw = torch.tensor([-1e6, -200.0, -30.0, 0.0, 30.0, 200.0, 1e6], dtype=torch.float32)
    raw = raw[:, None].repeat(1, loss.n_outputs).requires_grad_(True)
    params = loss.link(raw)
    for name in ("rate", "dispersion"):
        if name in params:
            assert (params[name] > 0).all() and torch.isfinite(params[name]).all()
    y = torch.tensor([0.0, 1.0, 5.0, 0.0, 100.0, 3.0, 7.0])
    nll = loss.nll(params, y)
    assert torch.isfinite(nll).all()
    nll.sum().backward()
    assert torch.isfinite(raw.grad).all()


@pytest.mark.parametrize("loss", [PoissonLoss(), NegativeBinomialLoss(), ZeroInflatedPoissonLoss()])
def test_mean_std_and_samples_agree(loss):
    torch.manual_seed(0)
    raw = torch.tensor([[0.7, -1.0]])[:, : loss.n_outputs].repeat(20000, 1)
    params = loss.link(raw)
    draws = loss.sample({k: v.double().numpy() for k, v in params.items()}, np.random.default_rng(0))
    assert draws.dtype.kind in "iu" and (draws >= 0).all()
    np.testing.assert_allclose(draws.mean(), loss.mean(params)[0].item(), rtol=0.03)
    np.testing.assert_allclose(draws.std(), loss.std(params)[0].item(), rtol=0.03)


def test_init_raw_starts_at_the_mean_count():
    y = torch.tensor([[0.0, 10.0], [2.0, 30.0], [1.0, 20.0]])
    for loss in (PoissonLoss(), PoissonLoss(rate_link="softplus"), NegativeBinomialLoss(), ZeroInflatedPoissonLoss()):
        raw = loss.init_raw(y)
        assert raw.shape == (2, loss.n_outputs)
        np.testing.assert_allclose(loss.link(raw)["rate"].numpy(), [1.0, 20.0], rtol=1e-4)


@pytest.mark.parametrize(
    "y, message",
    [
        (np.array([[1, 2], [3, -1]]), "found -1 at row 1, column 1"),
        (np.array([0.0, 1.5]), "found 1.5 at row 1"),
        (np.array([[0.0], [np.nan]]), "found nan at row 1, column 0"),
        (np.array([np.inf, 1.0]), "found inf at row 0"),
    ],
)
def test_check_counts_names_the_first_bad_entry(y, message):
    with pytest.raises(ValueError, match="y must hold non-negative integer spike counts; " + message):
        check_counts(y)


@pytest.mark.parametrize("loss", [PoissonLoss(), PoissonLoss(rate_link="softplus"), NegativeBinomialLoss(),
                                  ZeroInflatedPoissonLoss()])
def test_the_training_objective_is_the_nll_without_log_k_factorial_and_has_its_gradient(loss):
    torch.manual_seed(0)
    raw = torch.randn(50, 3, loss.n_outputs, dtype=torch.float64, requires_grad=True)
    y = torch.poisson(torch.full((50, 3), 2.0, dtype=torch.float64))
    objective, nll = loss.training_loss(loss.link(raw), y), loss.nll(loss.link(raw), y)
    np.testing.assert_allclose((nll - objective).detach().numpy(), torch.lgamma(y + 1).numpy(), atol=1e-9)
    (g_objective,) = torch.autograd.grad(objective.sum(), raw)
    (g_nll,) = torch.autograd.grad(nll.sum(), raw)
    np.testing.assert_allclose(g_objective.numpy(), g_nll.numpy(), atol=1e-12)


def test_a_poisson_training_step_computes_no_lgamma():
    loss = PoissonLoss()
    raw, y = torch.zeros(8, 2, 1, requires_grad=True), torch.ones(8, 2)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        loss(raw, y).backward()
    assert not [e.key for e in prof.key_averages() if "lgamma" in e.key]


def test_a_subclass_that_redefines_the_nll_trains_on_it():
    class Shifted(PoissonLoss):
        def nll(self, params, y):
            return super().nll(params, y) + params["rate"]

    params, y = PoissonLoss().link(torch.zeros(4, 1, 1)), torch.ones(4, 1)
    assert torch.equal(Shifted().training_loss(params, y), Shifted().nll(params, y))


def test_the_poisson_training_objective_skips_the_clamp_but_not_a_subclass_link():
    loss = PoissonLoss()
    raw, y = torch.linspace(-50, 50, 40).reshape(20, 2, 1), torch.poisson(torch.full((20, 2), 3.0))
    expected = loss.training_loss(loss.link(raw), y).sum(-1).mean()
    torch.testing.assert_close(loss(raw, y), expected)
    # beyond the clamp the objective is that of the raw output: a runaway shows as an infinite loss
    assert torch.isinf(loss(torch.full((1, 1, 1), 100.0), torch.ones(1, 1)))

    class Capped(PoissonLoss):
        def link(self, raw):
            return super().link(raw.clamp(max=1.0))

    assert torch.isfinite(Capped()(torch.full((1, 1, 1), 100.0), torch.ones(1, 1)))
