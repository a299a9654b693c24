"""TripletEmbedder: a transformer that maps images (or rows) to embeddings where one identity clusters together.

Its image layout lives in :mod:`sklearn_costs._images` and the rules of its ``"auto"`` settings in
:mod:`sklearn_costs._embedder_settings`; their public names are also importable from here.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from . import _embedder_settings as settings  # the network's constants, read when a fit builds it (recipe.py --rule)
from ._embedder_settings import (
    MAX_MEMBERS,
    MAX_SIDE,
    MEMBER_ROWS,
    MIN_SIDE,
    MULTI_SIMILARITY_MAX_IDENTITIES,
    TARGET_STEPS,
    early_stopping_patience,
    embedding_loss,
    resolve_embedder_settings,
    steps_per_epoch,
)
from ._images import CHANNEL_COUNTS, ImageInput, as_network_input, image_layout
from ._members import by_member, members_objective
from ._training import Criterion, IdentityBatchLoader
from ._validation import AUTO, IMAGE_SHAPE, IMAGE_SIZE, POSITIVE_INT, validated_sample_weight
from .base import NeuralCostEstimator, fill_common_parameters, keeps_state_on_error, shared_arguments
from .losses.embedding import PAIR_MINER_CONSTRAINT, TRIPLET_CONSTRAINTS
from .modules import (
    EmbeddingNetwork,
    ImageAugment,
    MemberMLP,
    ReplicateImages,
    ResizeImages,
    SmallCNN,
    Standardize,
    StandardizeEachImage,
)

#: Importable from here as before the split into modules.
__all__ = ["CHANNEL_COUNTS", "MAX_MEMBERS", "MAX_SIDE", "MEMBER_ROWS", "MIN_SIDE", "MULTI_SIMILARITY_MAX_IDENTITIES",
           "TARGET_STEPS", "TripletEmbedder", "as_network_input", "early_stopping_patience", "embedding_loss",
           "image_layout", "resolve_embedder_settings", "steps_per_epoch"]


@fill_common_parameters(split="whole identities, so that early stopping measures how the embedding does on "
                        "people it never saw; with fewer than ten identities, a share of each identity's rows",
                        epochs_type='int >= 1 or "auto"', patience_type='int >= 1 or "auto"',
                        epochs_doc='\n        ``"auto"``: about 3000 gradient steps (of identity batches, which are '
                                   'smaller with few identities), 20 to 300 epochs.',
                        patience_doc=' ``"auto"``: a fifth of ``max_epochs_``, at least 10; with fewer than ten '
                                     'identities (rows held out) a twelfth, at least 5.')
class TripletEmbedder(ImageInput, TransformerMixin, NeuralCostEstimator):
    """Embed images (or table rows) so that the same identity is near and different identities are far.

    A face seen from the front and from the side differs in nearly every pixel, so pixels are a poor space for
    recognising people. The network ``f`` is trained by the triplet loss

    ``max(0, ||f(a) - f(p)||^2 - ||f(a) - f(n)||^2 + margin)``

    over anchors ``a``, positives ``p`` of the same identity and negatives ``n`` of another, mined from batches of
    ``P`` identities x ``K`` images. The margin keeps a gap between positives and negatives; the hinge stops
    pushing triplets already separated by it, and L2 normalisation (default) stops the trivial solutions of
    shrinking or inflating the whole space. A new person is then recognised from a single photo by the nearest
    neighbour in embedding space: put the embedder in front of ``KNeighborsClassifier(1)``.

    By default (``loss="auto"``) the network trains with that triplet loss on data of many identities, and with
    the multi-similarity loss (Wang et al. 2019: every pair of a batch weighed by how hard it is) on data of at most
    100 identities, where it was measured to recognise new identities better (docs/benchmarks.rst); ``loss_`` says
    which. Every loss is one parameter away (``loss="triplet"``, ``loss="multi_similarity"``,
    ``loss="proxy_anchor"``, ...), and so ``GridSearchCV`` can try them.

    A proxy loss learns a proxy per identity of ``classes_`` with the network (each member its own), held by the
    net's criterion (``net_.criterion_.learned``) and saved with the model. A warm
    start or a continuing ``partial_fit`` keeps the proxies of the identities it saw before, by label, and starts
    new ones for new identities (a warm start drops those absent from its ``y``). The identities held out for
    early stopping never train their proxies: their validation loss takes each one's mean embedding in the batch
    for its proxy.

    Parameters
    ----------
    loss : "auto", str, Loss subclass or instance, default="auto"
        An ``"embedding"`` loss: ``"triplet"``, ``"soft_margin_triplet"``, ``"contrastive"``,
        ``"multi_similarity"`` (Wang et al. 2019, with its pair miner), ``"proxy_anchor"`` (Kim et al. 2020: a
        proxy per identity, learned with the network, one set per member), or a plugin's. ``"auto"``:
        ``"multi_similarity"`` on at most 100 identities, ``"triplet"`` on more
        (:func:`~sklearn_costs.triplet.embedding_loss`; a warm start or a continuing ``partial_fit`` keeps the loss
        the network was trained with); ``loss_`` is the loss it stood for. It counts the identities of each fit's
        ``y``: in a cross-validation whose training folds hold fewer identities than the whole data, the folds may
        be scored with one loss and the refit trained with the other, so search over named losses. ``"auto"``
        takes no ``margin`` or ``miner`` (they mean other things to the two losses): name the loss to set them.
    embedding_dim : int >= 1, default=64
        Dimension of each member's embedding; ``transform`` returns ``n_members_ * embedding_dim`` columns.
    margin : float > 0 or None, default=None
        Margin of the loss. It must be positive: with ``margin <= 0`` the mined triplets cost nothing and nothing
        is learned. None keeps the loss's own margin (0.2 for ``"triplet"``, 1.0 for ``"contrastive"``, 0.1 for
        ``"proxy_anchor"`` and for the pair mining of ``"multi_similarity"``); a loss without one
        (``"soft_margin_triplet"``) refuses any other value. Set on the estimator, it also applies to a loss given
        as an instance. With ``loss="auto"`` it must stay None.
    miner : {"auto", "semi_hard", "batch_hard", "all", "multi_similarity"} or callable, default="auto"
        Triplet (or pair) mining within a batch. ``"auto"`` keeps the loss's own miner (semi-hard for
        ``"triplet"``: batch-hard stalls when a batch holds near-duplicate identities; batch-hard for
        ``"soft_margin_triplet"``; the multi-similarity pair miner for ``"multi_similarity"``, which also takes the
        triplet miners), reported as ``miner_``; a loss without mining (``"contrastive"``, ``"proxy_anchor"``)
        refuses any other value. With ``loss="auto"`` it must stay ``"auto"``.
    normalize : bool, default=True
        L2-normalise the embeddings (distances then lie in [0, 4] for the squared Euclidean distance).
    module : {"auto", "mlp", "cnn"} or torch.nn.Module, default="auto"
        ``"auto"`` takes the CNN for image-shaped inputs (arrays ``(n, H, W)``, ``(n, H, W, C)``,
        ``(n, C, H, W)``, or flat rows with ``image_shape``) and the MLP for tables. The CNN standardises each
        image to zero mean and unit variance first, so that lighting and contrast do not count as identity. A
        ``torch.nn.Module`` (mapping a batch of inputs, table rows as they are given and images as
        ``(n, C, H, W)`` whatever their order in ``X``, to ``(n, embedding_dim)``) is used as it is, copied at
        each fit.
    image_shape : tuple or None, default=None
        The shape of one image, ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)``, when ``X`` holds flat rows that are
        images flattened by ``reshape``. Without it flat rows are table rows.
    input_size : "auto" or (int, int), default="auto"
        The working resolution ``(H, W)``: images are resized to it inside the network (by averaging over areas),
        so ``fit`` and ``transform`` take them as they come. ``"auto"``: the longer side brought down to 24 pixels
        (but the shorter not below 16), small images enlarged to 16 on the shorter side.
    n_members : "auto" or int >= 1, default="auto"
        Networks trained side by side as one batched network (grouped convolutions, batched matrix products), each
        with its own start, augmentations and loss; the embedding is their normalised embeddings side by side, so
        squared distances average over the members. ``"auto"``: ``6000 / n_samples``, between 1 and 5.
    augment : "auto" or bool, default="auto"
        Random rotations (up to 10 degrees), scalings (up to 10%) and shifts (up to 8% of the size) of each
        training image: with few images per identity, the strongest guard against overfitting. ``"auto"``: on
        for images, off for tables. No flips (a mirrored character can be another one).
    images_per_identity : int >= 2, default=4
        ``K`` of the P x K batches; ``P = batch_size // K``. At least 2: a batch needs two images of one identity
        for a positive pair.
    cnn_width : "auto" or int >= 1, default="auto"
        Channels of the CNN's first block, doubled at each further block. ``"auto"``: 16.
    cnn_blocks : "auto" or int >= 1, default="auto"
        Convolution blocks of the CNN, each halving the image size. ``"auto"``: ``floor(log2(s / 4))`` for the
        shorter working side ``s``, at least 1 (2 for 16-31 pixels).
    {common_parameters}

    Attributes
    ----------
    classes_ : ndarray
        Identity labels seen in fit (by a continuing ``partial_fit``: in every chunk so far), in the order of a
        proxy loss's proxies.
    net_ : skorch.NeuralNet
    loss_ : Loss
        The loss trained with (``loss="auto"`` resolved).
    history_ : pandas.DataFrame
    n_iter_ : int
    n_features_in_ : int
        Number of values per sample (pixels x channels for images).
    feature_names_in_ : ndarray of str
        Present when ``X`` was a DataFrame with string column names.
    input_shape_ : tuple
        Shape of one sample as the network takes it: ``(C, H, W)`` for images (however their axes were ordered in
        ``X``), ``(n_features,)`` for tables.
    module_kind_, input_size_, cnn_blocks_, cnn_width_, n_members_, augment_, max_epochs_, n_iter_no_change_, \
miner_
        The settings this fit used: each parameter's ``"auto"`` resolved from the data by
        :func:`resolve_embedder_settings`, or its explicit value (``input_size_`` and the CNN's are None for
        tables). ``verbose=1`` prints them.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_costs import TripletEmbedder
    >>> digits = load_digits()
    >>> images, labels = digits.images[:300], digits.target[:300]
    >>> embedder = TripletEmbedder(embedding_dim=16, max_epochs=3, random_state=0).fit(images, labels)
    >>> embedder.module_kind_, embedder.input_size_, embedder.cnn_blocks_, embedder.n_members_
    ('cnn', (16, 16), 2, 5)
    >>> embedder.transform(images[:3]).shape
    (3, 80)
    >>> one_shot = make_pipeline(TripletEmbedder(max_epochs=3, random_state=0), KNeighborsClassifier(1))
    >>> bool(one_shot.fit(images, labels).score(digits.images[600:700], digits.target[600:700]) > 0.5)
    True
    """

    _task = "embedding"
    _validation_split = "groups"
    _loss_option_names = ("margin", "miner")
    _network_parameters = ("embedding_dim", "normalize", "module", "module_kind", "input_size", "n_members", "augment",
                           "cnn_width", "cnn_blocks")
    _parameter_constraints: dict = {
        **NeuralCostEstimator._parameter_constraints,
        "embedding_dim": [POSITIVE_INT],
        "margin": [*TRIPLET_CONSTRAINTS["margin"], None],
        "miner": [*PAIR_MINER_CONSTRAINT, AUTO],  # each loss checks the miners it takes
        "normalize": ["boolean"],
        "module": [StrOptions({"auto", "mlp", "cnn"}), torch.nn.Module],
        "image_shape": [IMAGE_SHAPE, None],
        "input_size": [IMAGE_SIZE, AUTO],
        "n_members": [POSITIVE_INT, AUTO],
        "augment": ["boolean", AUTO],
        "images_per_identity": [Interval(numbers.Integral, 2, None, closed="left")],
        "cnn_width": [POSITIVE_INT, AUTO],
        "cnn_blocks": [POSITIVE_INT, AUTO],
        "max_epochs": [POSITIVE_INT, AUTO],
        "n_iter_no_change": [POSITIVE_INT, AUTO],
    }

    def __init__(
        self,
        loss="auto",
        *,
        embedding_dim=64,
        margin=None,
        miner="auto",
        normalize=True,
        module="auto",
        image_shape=None,
        input_size="auto",
        n_members="auto",
        augment="auto",
        images_per_identity=4,
        cnn_width="auto",
        cnn_blocks="auto",
        hidden_layer_sizes=(256, 128),
        activation="relu",
        dropout=0.0,
        max_epochs="auto",
        batch_size=128,
        lr=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change="auto",
        warm_start=False,
        device="cpu",
        precision="float32",
        n_threads=None,
        random_state=None,
        verbose=0,
    ):
        self.embedding_dim = embedding_dim
        self.margin = margin
        self.miner = miner
        self.normalize = normalize
        self.module = module
        self.image_shape = image_shape
        self.input_size = input_size
        self.n_members = n_members
        self.augment = augment
        self.images_per_identity = images_per_identity
        self.cnn_width = cnn_width
        self.cnn_blocks = cnn_blocks
        super().__init__(**shared_arguments(locals()))

    def _resolve_settings(self, X, y):
        names = ["module", "input_size", "cnn_blocks", "cnn_width", "n_members", "augment", "max_epochs",
                 "n_iter_no_change"]
        batch_size = self._batch_size(len(X), "cpu")  # rows per step, "auto" resolved (the same rule on every device)
        return resolve_embedder_settings(tuple(X.shape[1:]), len(X), len(X) if batch_size == -1 else batch_size,
                                         {name: getattr(self, name) for name in names},
                                         n_identities=len(np.unique(y)), images_per_identity=self.images_per_identity)

    # A batch holds P identities x K images, and a larger one changes which triplets the miner finds: the
    # embedder's accuracy at GPU-sized batches has not been measured, so "auto" takes the CPU's rule everywhere.
    _device_aware_batch = False

    def _loss_choice(self):
        if not (isinstance(self.loss, str) and self.loss == "auto"):
            return self.loss
        options = self._loss_options()
        if options:
            # a margin or miner means something else to each loss "auto" may pick (a triplet margin is a squared
            # distance, the multi-similarity one a gap in cosine similarity): the user names the loss they set
            raise ValueError(
                f"{', '.join(f'{k}={v!r}' for k, v in options.items())} with loss='auto': the loss, and so what "
                f"{'these options mean' if len(options) > 1 else 'this option means'}, depends on the number of "
                "identities (the multi-similarity loss on at most "
                f"{settings.MULTI_SIMILARITY_MAX_IDENTITIES}, the triplet loss above). Name the loss the option "
                "is for, e.g. loss='triplet' or loss='multi_similarity', or leave margin=None and miner='auto'."
            )
        if self._continues_fitted_net():
            # a fit that continues the fitted network keeps the loss it was trained with: the identities, which
            # the rule counts, may change from one call to the next
            chosen, why = type(self.loss_), "the fitted network's, which this fit continues"
        else:
            chosen = embedding_loss(len(self.classes_))
            why = f"{len(self.classes_)} identities"
        if self.verbose:
            name = getattr(chosen, "name", chosen)
            print(f"{type(self).__name__} loss='auto': {name!r} ({why})")
        return chosen

    def _criterion(self, loss):
        return _MemberCriterion(loss, self.n_members_, self.normalize, identities=self.classes_,
                                embedding_dim=self.embedding_dim)

    def _iterator_train(self):
        return {"iterator_train": IdentityBatchLoader,
                "iterator_train__images_per_identity": self.images_per_identity}

    @keeps_state_on_error
    def fit(self, X, y, sample_weight=None):
        """Train the embedding on samples ``X`` with identity labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n, features), (n, H, W), (n, H, W, C) or (n, C, H, W)
            Table rows, or images. An image's axes are read by :func:`image_layout`: channels-last when the last
            axis is 1, 3 or 4 (grey, RGB, RGBA) and the first is not, otherwise channels-first. Flat rows are
            images only with ``image_shape``.
        y : array-like of shape (n,)
            Identity labels (any hashable); at least two identities, none missing, and at least one identity with
            two or more samples (a pair to learn from).
        sample_weight : array-like of shape (n,), optional
            Non-negative weight of each sample: a mined triplet counts with its anchor's weight (a pair of the
            contrastive loss with the product of its two weights), so photos of doubtful quality can count less.
            Batches are drawn as without weights.

        Returns
        -------
        self

        Raises
        ------
        TrainingDivergedError
            Training ran away (a loss, the weights or the embeddings; see the user guide, "When training goes
            wrong"); the message names the epoch and what ran away.
        ValueError
            Invalid input, or ``warm_start=True`` with another loss, architecture or input shape than the fitted
            network was built for.

        Notes
        -----
        On any error, and on ``KeyboardInterrupt`` (Ctrl-C, which propagates), the estimator is left exactly as it
        was before this call.
        """
        self._begin_fit()
        continuing = self._continues_partial_fit()
        Xs = self._validate_images(X, reset=not continuing)
        if y is None:
            raise ValueError("TripletEmbedder requires y to be passed, but the target y is None: fit(X, y) needs the "
                             "identity label of every sample")
        y = np.asarray(y)
        if y.ndim != 1:
            y = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
        if y.ndim != 1:
            raise ValueError(f"y must be one identity label per sample; got shape {y.shape}")
        missing = [i for i, v in enumerate(y) if v is None or (isinstance(v, float) and np.isnan(v))]
        if missing:
            raise ValueError(f"y has missing identity labels (first at row {missing[0]}); label every sample")
        if type_of_target(y) == "continuous":
            raise ValueError("y must be identity labels (integers or strings), not continuous values")
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                f"TripletEmbedder needs at least two identities to tell apart; y holds one class only "
                f"({encoder.classes_!r})"
            )
        if np.bincount(encoder.transform(y)).max() < 2:
            raise ValueError(
                f"TripletEmbedder learns from pairs of samples of one identity, but each of the "
                f"{len(encoder.classes_)} identities in y has a single sample, so there is no pair to learn from "
                f"(the loss would be 0 in every epoch). Give at least one identity two or more samples."
            )
        if len(Xs) != len(y):
            raise ValueError(f"X has {len(Xs)} samples but y has {len(y)} labels")
        weight = validated_sample_weight(sample_weight, Xs.reshape(len(Xs), -1))
        # identities seen so far: the network has no output per identity, so each chunk may bring new ones
        self.classes_ = np.union1d(self.classes_, encoder.classes_) if continuing else encoder.classes_
        self.input_shape_ = tuple(Xs.shape[1:])
        encoder.classes_ = self.classes_  # the labels index classes_: a loss's proxies are rows in its order
        codes = encoder.transform(y).astype(np.int64)
        self._apply_settings(Xs, codes)
        loss = self._resolve_loss()
        self.miner_ = getattr(loss, "miner", None)
        return self._fit_tensors(Xs, codes, loss, weight)

    def _data_shape(self, X, y):
        # The identities may change between warm starts: the network has no output per identity.
        return {"input shape": tuple(X.shape[1:])}

    def _placeholder_data(self, spec):
        return torch.zeros(2, *spec["input shape"]), torch.arange(2)

    def _build_module(self, X, y, loss, hidden, weight=None):
        if isinstance(self.module, torch.nn.Module):
            return copy.deepcopy(self.module)
        members = self.n_members_
        images = X.dim() == 4  # (n, C, H, W)
        if self.module_kind_ == "cnn":
            if not images:
                raise ValueError("module='cnn' needs images: arrays (n, H, W) / (n, C, H, W) or image_shape=")
            channels = X.shape[1]
            layers = [ResizeImages(self.input_size_), StandardizeEachImage(), ReplicateImages(members)]
            if self.augment_:
                layers.append(ImageAugment(max_shift=settings.AUGMENT_MAX_SHIFT,
                                           max_rotation=settings.AUGMENT_MAX_ROTATION,
                                           max_scale=settings.AUGMENT_MAX_SCALE, flip=False, channels=channels))
            layers.append(SmallCNN(channels, self.embedding_dim, width=int(self.cnn_width_), dropout=self.dropout,
                                   blocks=int(self.cnn_blocks_), members=members, pool_grid=settings.POOL_GRID))
            body = torch.nn.Sequential(*layers)
        else:
            layers = [ResizeImages(self.input_size_)] if images else []
            flat = torch.nn.Sequential(*layers, torch.nn.Flatten())(X)
            body = torch.nn.Sequential(
                *layers,
                torch.nn.Flatten(),
                Standardize.of(flat),
                MemberMLP(members, flat.shape[1], hidden, self.embedding_dim, self.activation, self.dropout),
            )
        return EmbeddingNetwork(body, normalize=self.normalize, members=members)

    # ------------------------------------------------------------------------------------------ output

    def transform(self, X):
        """Embeddings of ``X``, shape ``(n, n_members_ * embedding_dim)`` (a DataFrame with
        ``set_output(transform="pandas")``).

        ``X`` holds samples of the shape ``fit`` took, read by the same rule (:func:`image_layout`): images of
        another size or number of channels, and flat rows of an embedder fitted on image arrays (unless
        ``image_shape`` says how to read them), are refused with a ``ValueError`` naming the fitted shape.
        """
        Xs = self._validate_images(X, reset=False)
        return self._forward(Xs).numpy().astype(np.float64)

    def _after_training(self, net, X, y, loss, weight):
        net.module_.eval()
        with torch.no_grad():
            self._n_features_out = int(net.module_(X[:1]).shape[1])

    def get_feature_names_out(self, input_features=None):
        """``embedding0``, ``embedding1``, ... one name per embedding dimension.

        ``input_features``, when given, must match what ``fit`` saw (its column names, or one name per input
        value), as for scikit-learn's transformers; the output names do not depend on it.
        """
        check_is_fitted(self, "net_")
        _check_feature_names_in(self, input_features, generate_names=False)
        return np.asarray([f"embedding{i}" for i in range(self._n_features_out)], dtype=object)

    def score(self, X, y, sample_weight=None):
        """Leave-one-out 1-NN accuracy (recall@1) in embedding space: the fraction of samples whose nearest other
        sample has the same label (weighted by ``sample_weight``). Samples whose label occurs once have no possible
        match and are left out.

        Higher is better; it needs no classifier, so ``GridSearchCV`` can compare losses and margins directly.
        """
        from .metrics import recall_at_1

        embedding = self.transform(X)
        return recall_at_1(embedding, np.asarray(y), sample_weight=validated_sample_weight(sample_weight, embedding))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.three_d_array = True
        return tags


class _MemberCriterion(Criterion):
    """The loss of each member's embedding on its own (each member mines its own triplets), scaled as every
    member objective is (:func:`~sklearn_costs._members.members_objective`): the members learn as if trained
    apart, although they run as one network.

    A loss that learns parameters per identity (a proxy loss's proxies, ``loss.identity_parameters``) gets them
    from here: one set per member, since each member embeds in a space of its own, stacked as ``(members,
    identities, ...)`` in ``learned``, with rows in the order of ``identities`` (the estimator's ``classes_``, which
    the training labels index). They are parameters of this module, so skorch trains them with the network's.
    ``seen`` marks the identities that training batches have held: evaluation (the validation loss, the
    divergence guard's loss before training) does not mark them, so a proxy held out for early stopping never
    learns and the loss stands in the batch's mean embedding for it.
    """

    def __init__(self, loss, members, normalized, identities=(), embedding_dim=None):
        super().__init__()
        self.loss = loss
        self.members = members
        self.normalized = normalized
        self.identities = np.asarray(identities)
        starts = [loss.identity_parameters(len(self.identities), embedding_dim) for _ in range(members)]
        self.learned = torch.nn.ParameterDict({name: torch.nn.Parameter(torch.stack([s[name] for s in starts]))
                                               for name in starts[0]})
        if len(self.learned):
            self.register_buffer("seen", torch.zeros(len(self.identities), dtype=torch.bool))

    def _member_loss(self, embeddings, labels, weight, member):
        if not len(self.learned):
            return self.loss(embeddings, labels, weight)
        learned = {name: value[member] for name, value in self.learned.items()}
        return self.loss(embeddings, labels, weight, **learned, seen=self.seen)

    def forward(self, y_pred, y_true):
        labels, weight = y_true if isinstance(y_true, (tuple, list)) else (y_true, None)  # (labels, weights)
        if len(self.learned) and self.training:
            self.seen[labels] = True
        if self.members == 1:
            return self._member_loss(y_pred, labels, weight, 0)
        per_member = by_member(y_pred, self.members)
        if self.normalized:  # undo EmbeddingNetwork's 1 / sqrt(members): each member's embedding has unit norm
            per_member = per_member * self.members**0.5
        mean = sum(self._member_loss(per_member[:, m], labels, weight, m) for m in range(self.members)) / self.members
        return members_objective(mean, self.members)

    def continue_from(self, previous):
        """Take over ``previous``'s learned parameters identity by identity (by label): an identity new here keeps
        its fresh start, unseen; one that ``previous`` had and this fit lacks (a warm start on other identities)
        is dropped."""
        before = getattr(previous, "identities", None)
        if not len(self.learned) or before is None or np.array_equal(before, self.identities):
            return super().continue_from(previous)
        where = {label: row for row, label in enumerate(before.tolist())}
        rows = torch.tensor([where.get(label, -1) for label in self.identities.tolist()], dtype=torch.long)
        kept = rows >= 0

        def remap(old):
            new = old.new_zeros((old.shape[0], len(rows), *old.shape[2:]))
            new[:, kept] = old[:, rows[kept].to(old.device)]
            return new

        with torch.no_grad():
            for name, value in self.learned.items():
                value[:, kept] = previous.learned[name][:, rows[kept]].to(value.device)
            self.seen[kept] = previous.seen[rows[kept]].to(self.seen.device)
        return {value: remap for value in self.learned.values()}
