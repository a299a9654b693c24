"""PoissonSpikeRegressor: every neuron's expected spike count per time bin from behavioural covariates."""

from __future__ import annotations

from ._distribution import REGRESSOR_DOC, DistributionRegressor
from ._validation import validated_sample_weight
from .base import fill_common_parameters, shared_arguments
from .metrics import poisson_d2_per_target, poisson_d2_score


@fill_common_parameters(**REGRESSOR_DOC, split="the *last* rows, in time order: neighbouring bins are correlated, "
                        "so a random split would be optimistic")
class PoissonSpikeRegressor(DistributionRegressor):
    """One network predicting the spike-count rate ``lambda[i, t]`` of every neuron in each time bin.

    The firing rate of a neuron is a smooth function of the behaviour, while its spikes in successive milliseconds
    are random and nearly independent; counts in a short bin are then Poisson with mean ``lambda[i, t]``, and the
    network is trained by the Poisson negative log-likelihood summed over neurons and bins. All neurons share the
    hidden layers. For counts that are not quite Poisson choose another count ``loss``: ``"negative_binomial"``
    (over-dispersed neurons, one learned dispersion each), ``"zero_inflated_poisson"``, or the ``"mse"`` baseline.

    With ``hidden_layer_sizes=()`` the model is a Poisson GLM with exponential link (``coef_`` and ``intercept_``
    then hold its weights in the units of ``X``).

    Parameters
    ----------
    loss : str, Loss subclass or instance, default="poisson"
        A ``"counts"`` loss from the registry (``sklearn-costs losses`` lists them), or an instance such as
        ``PoissonLoss(rate_link="softplus")``.
    {common_parameters}

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained skorch net (its ``history`` has every epoch and batch).
    loss_ : Loss
        The loss instance used.
    history_ : pandas.DataFrame
        Training and validation objective per epoch: the loss's mean NLL per bin, summed over neurons, without
        ``log k!``, a constant of the counts that training leaves out (``log_likelihood`` includes it).
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Present when ``X`` was a DataFrame with string column names.
    n_outputs_ : int
        Number of neurons.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_costs import PoissonSpikeRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 3))
    >>> rates = np.exp(0.3 + X @ np.array([[0.5, -0.4], [0.0, 0.6], [0.3, 0.0]]))
    >>> Y = rng.poisson(rates)
    >>> model = PoissonSpikeRegressor(hidden_layer_sizes=(16,), max_epochs=20, random_state=0).fit(X, Y)
    >>> model.predict(X[:2]).shape
    (2, 2)
    >>> bool(model.score(X, Y) > 0.2)
    True
    """

    _task = "counts"
    _validation_split = "tail"

    def __init__(
        self,
        loss="poisson",
        *,
        n_members="auto",
        clip_inputs="auto",
        hidden_layer_sizes="auto",
        activation="relu",
        dropout=0.0,
        max_epochs=200,
        batch_size="auto",
        lr=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        warm_start=False,
        device="cpu",
        precision="float32",
        n_threads="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_members = n_members
        self.clip_inputs = clip_inputs
        super().__init__(**shared_arguments(locals()))

    def score(self, X, y, sample_weight=None):
        """Mean over neurons of D2, the fraction of Poisson deviance explained by the predicted rates.

        D2 is the pseudo-R2 of the spike-modelling literature and what ``sklearn.linear_model.PoissonRegressor``'s
        ``score`` returns: 1 is perfect, 0 is no better than each neuron's mean rate. It depends only on the
        predicted means, so it ranks models trained with different count losses fairly. Neurons without any spike
        in ``y`` have no defined D2 and are left out of the mean. With ``sample_weight`` the deviances (and the
        null's mean rate) are weighted.
        """
        mean = self.predict_distribution(X).mean
        weight = validated_sample_weight(sample_weight, X)
        return poisson_d2_score(self._check_y(y, len(mean)), mean, sample_weight=weight)

    def score_per_neuron(self, X, y):
        """D2 of each neuron (NaN for a neuron without spikes in ``y``), shape ``(n_neurons,)``."""
        mean = self.predict_distribution(X).mean
        return poisson_d2_per_target(self._check_y(y, len(mean)), mean)

    def _glm_layer(self):
        if getattr(self, "net_", None) is None or self.net_.module_.body:
            raise AttributeError("coef_ and intercept_ exist only for a fitted model with hidden_layer_sizes=()")
        module = self.net_.module_
        weight = module.head.linear.weight.detach().cpu().double().numpy()
        bias = module.head.linear.bias.detach().cpu().double().numpy()
        mean = module.standardize.mean.cpu().double().numpy()
        scale = module.standardize.scale.cpu().double().numpy()
        # raw = W (x - mean) / scale + b; keep the rate parameter's rows (the first output of each neuron).
        n_out = self.loss_.n_outputs - len(self.loss_.shared_parameters)
        weight, bias = weight[::n_out], bias[::n_out]
        coef = weight / scale
        return coef, bias - coef @ mean

    @property
    def coef_(self):
        """GLM weights in the units of ``X``, shape ``(n_features,)`` or ``(n_neurons, n_features)``."""
        coef = self._glm_layer()[0]
        return coef[0] if self._y_is_1d else coef

    @property
    def intercept_(self):
        """GLM intercepts (log rate at ``X = 0``), a float or shape ``(n_neurons,)``."""
        intercept = self._glm_layer()[1]
        return float(intercept[0]) if self._y_is_1d else intercept

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags


__all__ = ["PoissonSpikeRegressor"]
