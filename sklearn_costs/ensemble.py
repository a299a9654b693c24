"""DeepEnsembleRegressor: the equal mixture of several networks trained from different random starts."""

from __future__ import annotations

import copy

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._distribution import DistributionRegressor, mean_log_density
from ._targets import targets_like
from ._validation import POSITIVE_INT, Constraint, ParameterChecks, is_int, validated_sample_weight
from .distributions import PredictiveDistribution
from .gaussian import GaussianUncertaintyRegressor
from .metrics import poisson_d2_score


def _train_member(estimator, method, X, y, sample_weight):
    """``estimator.fit`` or ``estimator.partial_fit`` (``method``) on the data, in a joblib worker."""
    return getattr(estimator, method)(X, y, sample_weight=sample_weight)


class DeepEnsembleRegressor(MetaEstimatorMixin, RegressorMixin, ParameterChecks, BaseEstimator):
    """A deep ensemble (Lakshminarayanan et al. 2017): ``n_estimators`` copies of a distribution regressor, each
    trained from its own random start, predicting the equal mixture of their predictive distributions.

    One network's predicted std says how noisy the target is where the network has seen data; it says nothing
    of where the network is merely guessing. Networks started differently agree where the data pin them down and
    disagree elsewhere, so the mixture's variance, the mean of the members' variances plus the variance of their
    means, adds the model's own uncertainty to the noise. On small data sets this is what keeps a few
    over-confident predictions from dominating the test log-likelihood.

    Parameters
    ----------
    estimator : GaussianUncertaintyRegressor or PoissonSpikeRegressor, default=None
        The member, cloned ``n_estimators`` times with different ``random_state``; None means
        ``GaussianUncertaintyRegressor()``. Its parameters are searched as ``estimator__<name>``.
    n_estimators : int >= 1, default=5
    n_jobs : int or None, default=None
        Members trained in parallel by joblib, -1 for every core, not 0 (set the member's ``n_threads=1`` then).
    random_state : int, RandomState or None, default=None
        Draws the members' seeds.

    Attributes
    ----------
    estimators_ : list of fitted members
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Present when ``X`` was a DataFrame with string column names.

    Examples
    --------
    >>> from sklearn_costs import DeepEnsembleRegressor, GaussianUncertaintyRegressor
    >>> from sklearn_costs.datasets import make_heteroscedastic_regression
    >>> data = make_heteroscedastic_regression(300, random_state=0)
    >>> ensemble = DeepEnsembleRegressor(GaussianUncertaintyRegressor(max_epochs=20), n_estimators=3, random_state=0)
    >>> mean, std = ensemble.fit(data.X, data.y).predict(data.X.iloc[:2], return_std=True)
    >>> bool((std > 0).all()), len(ensemble.estimators_)
    (True, 3)
    """

    _parameter_constraints: dict = {
        "estimator": [
            Constraint("a GaussianUncertaintyRegressor or a PoissonSpikeRegressor (a regressor that predicts a "
                       "distribution)", lambda v: isinstance(v, DistributionRegressor)),
            None,
        ],
        "n_estimators": [POSITIVE_INT],
        "n_jobs": [Constraint("a non-zero int (-1: every core)", lambda v: is_int(v) and v != 0), None],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator=None, n_estimators=5, *, n_jobs=None, random_state=None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        """Train every member on ``(X, y)`` (with ``sample_weight``, as the member's ``fit`` takes it); the fitted
        state changes only when all of them trained.

        The ensemble's parameters and the member's are checked before any member trains.
        """
        members = self._new_members()
        members[0].check_parameters()  # each member checks its loss first thing in its fit
        return self._train(members, "fit", X, y, sample_weight)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch of every member on the chunk ``(X, y)`` (see the member's ``partial_fit``); the first call
        starts the members from their seeds. The fitted state changes only when all of them trained."""
        if hasattr(self, "estimators_"):
            members = self._continued_members()
        else:
            members = self._new_members()
        return self._train(members, "partial_fit", X, y, sample_weight)

    def _continued_members(self):
        """Copies of the fitted members with the member's current parameters (each keeps its own seed), for a
        partial_fit that continues them: each member then takes the new training parameters (``estimator__lr``)
        and refuses a change to its network, by its own partial_fit rule."""
        self._validate_params()
        if self.n_estimators != len(self.estimators_):
            raise ValueError(
                f"partial_fit continues the {len(self.estimators_)} members fitted so far, but n_estimators is now "
                f"{self.n_estimators}; call fit to train a new ensemble of {self.n_estimators} (the fitted one is "
                "left as it was)."
            )
        base = GaussianUncertaintyRegressor() if self.estimator is None else self.estimator
        params = {k: v for k, v in base.get_params(deep=False).items() if k != "random_state"}
        return [copy.deepcopy(member).set_params(**params) for member in self.estimators_]

    def _new_members(self):
        """Unfitted clones of the member, each with its own seed drawn from ``random_state``."""
        self._validate_params()
        base = GaussianUncertaintyRegressor() if self.estimator is None else self.estimator
        seeds = check_random_state(self.random_state).randint(np.iinfo(np.int32).max, size=self.n_estimators)
        return [clone(base).set_params(random_state=int(seed)) for seed in seeds]

    def _train(self, members, method, X, y, sample_weight):
        """Train the members (in parallel with ``n_jobs``) and make them the fitted state."""
        members = Parallel(n_jobs=self.n_jobs)(
            delayed(_train_member)(member, method, X, y, sample_weight) for member in members
        )
        self.estimators_ = members
        self.n_features_in_ = members[0].n_features_in_
        if hasattr(members[0], "feature_names_in_"):
            self.feature_names_in_ = members[0].feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    # ---------------------------------------------------------------------------------------- mixture

    def _members(self):
        check_is_fitted(self, "estimators_")
        return self.estimators_

    def predict_distribution(self, X):
        """The mixture of the members' predictive distributions, each member weighing ``1 / n_estimators``
        (its own components keep their weights within it): a
        :class:`~sklearn_costs.distributions.PredictiveDistribution`, which answers every prediction below."""
        return PredictiveDistribution.mixture([m.predict_distribution(X) for m in self._members()])

    def predict(self, X, return_std=False):
        """The mixture's mean, and with ``return_std=True`` its std: the square root of the members' mean
        variance plus the variance of their means."""
        dist = self.predict_distribution(X)
        return (dist.mean, dist.std) if return_std else dist.mean

    def log_likelihood(self, X, y):
        """Log-probability of each target under the mixture: ``log mean_m p_m(y | x)``."""
        return self.predict_distribution(X).log_pdf(y)

    def _members_are_continuous(self):
        member = self.estimators_[0] if hasattr(self, "estimators_") else self.estimator
        return member is None or hasattr(member, "predict_cdf")  # None: GaussianUncertaintyRegressor()

    @available_if(_members_are_continuous)
    def predict_cdf(self, X, y):
        """The mixture's CDF at the observed ``y``: the mean of the members' CDFs."""
        return self.predict_distribution(X).cdf(y)

    @available_if(_members_are_continuous)
    def predict_interval(self, X, coverage=0.9):
        """Central interval of the mixture holding ``coverage`` of its probability (mixture quantiles found by
        bisection between the members' own quantiles)."""
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must be in (0, 1); got {coverage!r}")
        return self.predict_distribution(X).interval(coverage)

    def sample(self, X, n_samples=1, random_state=None):
        """Draws from the mixture, shape ``(n_samples, *predict(X).shape)``: each draw of each row comes from a
        member picked at random."""
        return self.predict_distribution(X).sample(n_samples, random_state)

    def score(self, X, y, sample_weight=None):
        """The members' own score, of the mixture: mean log predictive density for continuous targets (higher is
        better), mean D2 over neurons for counts."""
        dist = self.predict_distribution(X)
        weight = validated_sample_weight(sample_weight, X)
        if dist.discrete:
            counts = targets_like(y, dist.shape)
            self.estimators_[0].loss_.check_target(counts.reshape(len(counts), -1))  # as a member's score does
            return poisson_d2_score(counts, dist.mean, sample_weight=weight)
        return mean_log_density(dist.log_pdf(y), weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        tags.target_tags.multi_output = True
        tags.non_deterministic = self.random_state is None
        return tags
