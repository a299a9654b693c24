"""Likelihoods of real targets with a predicted spread: Gaussian, Laplace, Student-t, beta-NLL, least squares.

The spread parameter comes from an unconstrained raw output through ``softplus`` (default) or ``exp`` plus a floor
``min_std``. A network output can be any real number, including negative ones, so it can never be used as a
standard deviation directly (a "negative standard deviation" has no density); the link makes it positive, the floor
keeps ``log(std)`` and ``1/std`` finite when the network drives the std towards zero on points it fits exactly.
Every ``nll`` includes ``log sqrt(2 pi)`` (or the family's constant) so that it equals ``-scipy.stats.<dist>.logpdf``.
"""

from __future__ import annotations

import math
import numbers

import torch
from scipy import stats
from sklearn.utils._param_validation import Interval

from .base import LOG_SQRT_2PI, POSITIVE_FLOAT, POSITIVE_LINKS, ContinuousLoss, inverse_positive, positive
from .registry import register_loss


def _gaussian_nll(mean, std, y):
    z = (y - mean) / std
    return torch.log(std) + 0.5 * z * z + LOG_SQRT_2PI


#: The std floor of every built-in continuous loss, in standardised target units (the regressors standardise the
#: targets): a thousandth of the targets' spread keeps the NLL of a point fitted exactly finite without limiting
#: any real uncertainty. The estimators' ``min_std=None`` means this value.
DEFAULT_MIN_STD = 1e-3


class _LocationScaleLoss(ContinuousLoss):
    """Shared link of the location-scale families: mean as is, spread through ``std_link`` plus ``min_std``."""

    scale_name = "std"
    _parameter_constraints: dict = {"std_link": [POSITIVE_LINKS], "min_std": [POSITIVE_FLOAT]}

    def __init__(self, std_link="softplus", min_std=DEFAULT_MIN_STD):
        self.std_link = std_link
        self.min_std = min_std

    @property
    def scale_parameters(self):
        return (self.scale_name,)

    def link(self, raw):
        return {"mean": raw[..., 0], self.scale_name: positive(raw[..., 1], self.std_link, self.min_std)}

    def mean(self, params):
        return params["mean"]

    def init_raw(self, y):
        spread = (y.std(0) if len(y) > 1 else torch.ones_like(y[0])).clamp_min(1e-3)
        return torch.stack([y.mean(0), inverse_positive(spread, self.std_link)], dim=-1)


@register_loss
class GaussianLoss(_LocationScaleLoss):
    """Heteroscedastic Gaussian likelihood: ``log sigma + (y - mu)**2 / (2 sigma**2) + log sqrt(2 pi)``.

    Parameters
    ----------
    std_link : {"softplus", "exp"}, default="softplus"
        Maps the raw output to sigma. ``softplus`` grows linearly, so a large raw output does not overflow.
    min_std : float > 0, default=1e-3
        Floor added to sigma (in standardized target units).

    Examples
    --------
    The negative log-likelihood of two targets, 0 and 3, at raw network outputs of zero; an estimator takes the
    loss by its name, ``GaussianUncertaintyRegressor(loss="gaussian")``.

    >>> import torch
    >>> loss = GaussianLoss()
    >>> loss.nll(loss.link(torch.zeros(2, 2)), torch.tensor([0.0, 3.0]))
    tensor([0.5539, 9.8931])
    """

    name = "gaussian"
    parameter_names = ("mean", "std")

    def nll(self, params, y):
        return _gaussian_nll(params["mean"], params["std"], y)

    def std(self, params):
        return params["std"]

    def scipy_distribution(self, params):
        return stats.norm(params["mean"], params["std"])


@register_loss
class LaplaceLoss(_LocationScaleLoss):
    """Laplace likelihood ``log(2 b) + |y - mu| / b``: heavier tails than the Gaussian, a median-like fit.

    Parameters
    ----------
    std_link : {"softplus", "exp"}, default="softplus"
        Maps the raw output to the scale ``b`` (the std is ``sqrt(2) b``).
    min_std : float > 0, default=1e-3
        Floor added to ``b``.

    Examples
    --------
    The negative log-likelihood of two targets, 0 and 3, at raw network outputs of zero; an estimator takes the
    loss by its name, ``GaussianUncertaintyRegressor(loss="laplace")``.

    >>> import torch
    >>> loss = LaplaceLoss()
    >>> loss.nll(loss.link(torch.zeros(2, 2)), torch.tensor([0.0, 3.0]))
    tensor([0.3281, 4.6499])
    """

    name = "laplace"
    parameter_names = ("mean", "scale")
    scale_name = "scale"

    def nll(self, params, y):
        b = params["scale"]
        return torch.log(2 * b) + torch.abs(y - params["mean"]) / b

    def std(self, params):
        return math.sqrt(2.0) * params["scale"]

    def scipy_distribution(self, params):
        return stats.laplace(params["mean"], params["scale"])


@register_loss
class StudentTLoss(_LocationScaleLoss):
    """Student-t likelihood with learned degrees of freedom (one per output) for heavy-tailed noise.

    The degrees of freedom are ``2.01 + softplus(raw)`` so that the predictive std,
    ``scale * sqrt(df / (df - 2))``, always exists and stays finite.

    Parameters
    ----------
    std_link : {"softplus", "exp"}, default="softplus"
        Maps the raw output to the scale.
    min_std : float > 0, default=1e-3
        Floor added to the scale.

    Examples
    --------
    The negative log-likelihood of two targets, 0 and 3, at raw network outputs of zero; an estimator takes the
    loss by its name, ``GaussianUncertaintyRegressor(loss="student_t")``.

    >>> import torch
    >>> loss = StudentTLoss()
    >>> loss.nll(loss.link(torch.zeros(2, 3)), torch.tensor([0.0, 3.0]))
    tensor([0.6445, 4.4738])
    """

    name = "student_t"
    parameter_names = ("mean", "scale", "df")
    shared_parameters = ("df",)
    scale_name = "scale"

    def link(self, raw):
        params = super().link(raw)
        params["df"] = positive(raw[..., 2], "softplus", floor=2.01)
        return params

    def nll(self, params, y):
        df, scale = params["df"], params["scale"]
        z = (y - params["mean"]) / scale
        return (
            torch.lgamma(df / 2)
            - torch.lgamma((df + 1) / 2)
            + 0.5 * torch.log(df * math.pi)
            + torch.log(scale)
            + (df + 1) / 2 * torch.log1p(z * z / df)
        )

    def std(self, params):
        df = params["df"]
        return params["scale"] * torch.sqrt(df / (df - 2))

    def scipy_distribution(self, params):
        return stats.t(params["df"], params["mean"], params["scale"])

    def init_raw(self, y):
        base = super().init_raw(y)
        df_raw = inverse_positive(torch.full_like(y[0], 8.0), "softplus")  # df = 10: near-Gaussian start
        return torch.cat([base, df_raw[:, None]], dim=-1)


@register_loss
class BetaNLLLoss(GaussianLoss):
    """Gaussian likelihood trained with the beta-NLL of Seitzer et al. (ICLR 2022).

    Each point's Gaussian NLL is weighted by ``stop_gradient(sigma ** (2 beta))``, so that points with a large
    predicted variance do not stop the mean from being learned (the failure of the plain NLL). ``beta = 0`` is the
    Gaussian NLL, ``beta = 1`` gives the mean the gradient of least squares. ``nll`` is the plain Gaussian NLL.

    Parameters
    ----------
    beta : float in [0, 1], default=0.5
        The exponent; the paper recommends 0.5.
    std_link : {"softplus", "exp"}, default="softplus"
    min_std : float > 0, default=1e-3

    Examples
    --------
    The negative log-likelihood of two targets, 0 and 3, at raw network outputs of zero; an estimator takes the
    loss by its name, ``GaussianUncertaintyRegressor(loss="beta_nll")``.

    >>> import torch
    >>> loss = BetaNLLLoss()
    >>> loss.nll(loss.link(torch.zeros(2, 2)), torch.tensor([0.0, 3.0]))
    tensor([0.5539, 9.8931])
    """

    name = "beta_nll"
    _parameter_constraints: dict = {
        **GaussianLoss._parameter_constraints,
        "beta": [Interval(numbers.Real, 0, 1, closed="both")],
    }

    def __init__(self, beta=0.5, std_link="softplus", min_std=DEFAULT_MIN_STD):
        self.beta = beta
        super().__init__(std_link=std_link, min_std=min_std)

    def training_loss(self, params, y):
        weight = params["std"].detach() ** (2 * self.beta)
        return weight * self.nll(params, y)


@register_loss
class SquaredErrorLoss(GaussianLoss):
    """Homoscedastic baseline: the mean is trained by least squares, the std is one constant per output.

    After training the std is set to the root mean squared residual on the training data (the maximum-likelihood
    constant), so likelihoods and intervals are those of a Gaussian with constant noise.

    Parameters
    ----------
    min_std : float > 0, default=1e-3
        Floor of the constant std.

    Examples
    --------
    The negative log-likelihood of two targets, 0 and 3, at raw network outputs of zero; an estimator takes the
    loss by its name, ``GaussianUncertaintyRegressor(loss="mse")``.

    >>> import torch
    >>> loss = SquaredErrorLoss()
    >>> loss.nll(loss.link(torch.zeros(2, 2)), torch.tensor([0.0, 3.0]))
    tensor([0.9199, 5.4110])
    """

    name = "mse"
    shared_parameters = ("std",)
    _parameter_constraints: dict = {"min_std": [POSITIVE_FLOAT]}

    def __init__(self, min_std=DEFAULT_MIN_STD):
        self.min_std = min_std

    def link(self, raw):
        return {"mean": raw[..., 0], "std": positive(raw[..., 1], "exp", self.min_std)}

    def training_loss(self, params, y):
        return 0.5 * (y - params["mean"]) ** 2

    def fit_shared(self, params, y, weight=None):
        squares = (y - params["mean"]) ** 2
        mean_square = squares.mean(0) if weight is None else (weight[:, None] * squares).sum(0) / weight.sum()
        rms = torch.sqrt(mean_square).clamp_min(1e-6)
        return {"std": torch.log(rms)}

    def init_raw(self, y):
        return torch.stack([y.mean(0), torch.zeros_like(y[0])], dim=-1)
