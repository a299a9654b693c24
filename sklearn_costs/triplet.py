"""TripletEmbedder: a transformer that maps images (or rows) to embeddings where one identity clusters together."""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from ._training import IdentityBatchLoader
from ._validation import check_positive_int
from .base import NeuralCostEstimator, fill_common_parameters, keeps_state_on_error, shared_arguments
from .modules import EmbeddingNetwork, ImageAugment, SmallCNN, Standardize, StandardizeEachImage, mlp


@fill_common_parameters(split="whole identities, so that early stopping measures how the embedding does on "
                        "people it never saw; random rows when there are fewer than four identities",
                        max_epochs=200, n_iter_no_change=20,
                        hidden_layer_sizes="(256, 128)")
class TripletEmbedder(TransformerMixin, NeuralCostEstimator):
    """Embed images (or table rows) so that the same identity is near and different identities are far.

    A face seen from the front and from the side differs in nearly every pixel, so pixels are a poor space for
    recognising people. The network ``f`` is trained by the triplet loss

    ``max(0, ||f(a) - f(p)||^2 - ||f(a) - f(n)||^2 + margin)``

    over anchors ``a``, positives ``p`` of the same identity and negatives ``n`` of another, mined from batches of
    ``P`` identities x ``K`` images. The margin keeps a gap between positives and negatives; the hinge stops
    pushing triplets already separated by it, and L2 normalisation (default) stops the trivial solutions of
    shrinking or inflating the whole space. A new person is then recognised from a single photo by the nearest
    neighbour in embedding space: put the embedder in front of ``KNeighborsClassifier(1)``.

    Parameters
    ----------
    loss : str, Loss subclass or instance, default="triplet"
        An ``"embedding"`` loss: ``"triplet"``, ``"soft_margin_triplet"``, ``"contrastive"``, or a plugin's.
    embedding_dim : int, default=64
    margin : float, default=0.2
        Margin of the triplet (and contrastive) loss when the loss is given by name.
    miner : {"semi_hard", "batch_hard", "all"} or callable, default="semi_hard"
        Triplet mining within a batch when the loss is given by name.
    normalize : bool, default=True
        L2-normalise the embeddings (distances then lie in [0, 4] for the squared Euclidean distance).
    module : {"auto", "mlp", "cnn"} or torch.nn.Module, default="auto"
        ``"auto"`` takes the CNN for image-shaped inputs (arrays ``(n, H, W)``, ``(n, C, H, W)``, or flat rows
        with ``image_shape``) and the MLP for tables. The CNN standardises each image to zero mean and unit
        variance first, so that lighting and contrast do not count as identity. A ``torch.nn.Module`` (mapping a
        batch of inputs in the shape they are given, images as ``(n, C, H, W)``, to ``(n, embedding_dim)``) is
        used as it is, copied at each fit.
    image_shape : tuple, optional
        ``(H, W)`` or ``(C, H, W)`` of flat rows that are images.
    augment : bool, default=False
        Random rotations (up to 10 degrees), scalings (up to 10%), shifts (up to 8% of the size) and horizontal
        flips during training (images only): with few photos per identity, the strongest guard against
        overfitting.
    images_per_identity : int, default=4
        ``K`` of the P x K batches; ``P = batch_size // K``.
    cnn_width : int, default=16
        Channels of the CNN's first block, doubled at each further block.
    cnn_blocks : int, default=3
        Convolution blocks of the CNN, each halving the image size: pick about ``log2(size / 4)`` (2 for 16x16
        images, 3 for 32x32).
    {common_parameters}

    Attributes
    ----------
    classes_ : ndarray
        Identity labels seen in fit.
    net_ : skorch.NeuralNet
    loss_ : Loss
    history_ : pandas.DataFrame
    n_iter_ : int
    n_features_in_ : int
        Number of values per sample (pixels x channels for images).
    feature_names_in_ : ndarray of str
        Present when ``X`` was a DataFrame with string column names.
    input_shape_ : tuple
        Shape of one sample as the network sees it (``(C, H, W)`` for images, ``(n_features,)`` for tables).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_costs import TripletEmbedder
    >>> digits = load_digits()
    >>> images, labels = digits.images[:600], digits.target[:600]
    >>> embedder = TripletEmbedder(embedding_dim=16, max_epochs=5, random_state=0).fit(images, labels)
    >>> embedder.transform(images[:3]).shape
    (3, 16)
    >>> one_shot = make_pipeline(TripletEmbedder(max_epochs=5, random_state=0), KNeighborsClassifier(1))
    >>> bool(one_shot.fit(images, labels).score(digits.images[600:700], digits.target[600:700]) > 0.5)
    True
    """

    _task = "embedding"
    _validation_split = "groups"
    _network_parameters = ("embedding_dim", "normalize", "module", "augment", "cnn_width", "cnn_blocks")

    def __init__(
        self,
        loss="triplet",
        *,
        embedding_dim=64,
        margin=0.2,
        miner="semi_hard",
        normalize=True,
        module="auto",
        image_shape=None,
        augment=False,
        images_per_identity=4,
        cnn_width=16,
        cnn_blocks=3,
        hidden_layer_sizes=(256, 128),
        activation="relu",
        dropout=0.0,
        max_epochs=200,
        batch_size=128,
        lr=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
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
        self.augment = augment
        self.images_per_identity = images_per_identity
        self.cnn_width = cnn_width
        self.cnn_blocks = cnn_blocks
        super().__init__(**shared_arguments(locals()))

    def _loss_defaults(self):
        return {"margin": self.margin, "miner": self.miner}

    def _iterator_train(self):
        return {"iterator_train": IdentityBatchLoader,
                "iterator_train__images_per_identity": self.images_per_identity}

    # ------------------------------------------------------------------------------------------ input

    def _sample_shape(self, X):
        """The shape of one sample for the network: ``(C, H, W)`` for images, ``(n_features,)`` for table rows."""
        if X.ndim == 3:
            return (1, *X.shape[1:])
        if X.ndim == 4:
            return tuple(X.shape[1:])
        if X.ndim != 2:
            raise ValueError(f"X must be a table (n, features) or images (n, H, W) / (n, C, H, W); got {X.shape}")
        if self.image_shape is not None:
            shape = tuple(int(s) for s in self.image_shape)
            shape = (1, *shape) if len(shape) == 2 else shape
            if len(shape) != 3 or int(np.prod(shape)) != X.shape[1]:
                raise ValueError(
                    f"image_shape={self.image_shape!r} does not fit rows of {X.shape[1]} values; "
                    f"H x W (x C) must equal the number of columns"
                )
            return shape
        return (X.shape[1],)

    def _validate_images(self, X, reset):
        """Validate with sklearn's utilities on flat rows; return the samples in network shape."""
        raw = np.asarray(X) if isinstance(X, (list, tuple)) else X
        sample_shape = None
        if isinstance(raw, np.ndarray) and raw.ndim in (3, 4):
            sample_shape = self._sample_shape(raw)
            raw = raw.reshape(len(raw), -1)
            if not reset:
                check_is_fitted(self, "net_")
                if sample_shape != self.input_shape_:
                    raise ValueError(
                        f"images of shape {tuple(np.shape(X)[1:])} were given, but this embedder was fitted on "
                        f"images of shape {self.input_shape_} (C, H, W); resize or crop them to that shape"
                    )
        # tables, DataFrames, sparse matrices and flattened images: sklearn's validation decides
        flat = self._validate_X(raw, reset=reset)
        if sample_shape is None:
            sample_shape = self._sample_shape(flat)
        return flat.reshape(len(flat), *sample_shape)

    @keeps_state_on_error
    def fit(self, X, y):
        """Train the embedding on samples ``X`` with identity labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n, features), (n, H, W) or (n, C, H, W)
        y : array-like of shape (n,)
            Identity labels (any hashable); at least two identities, none missing.

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
        loss = self._resolve_loss()
        Xs = self._validate_images(X, reset=True)
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
        if len(Xs) != len(y):
            raise ValueError(f"X has {len(Xs)} samples but y has {len(y)} labels")
        self.classes_ = encoder.classes_
        self.input_shape_ = tuple(Xs.shape[1:])
        return self._fit_tensors(Xs, encoder.transform(y).astype(np.int64), loss)

    def _data_shape(self, X, y):
        # The identities may change between warm starts: the network has no output per identity.
        return {"input shape": tuple(X.shape[1:])}

    def _build_module(self, X, y, loss, hidden):
        if isinstance(self.module, torch.nn.Module):
            return copy.deepcopy(self.module)
        if self.module not in ("auto", "mlp", "cnn"):
            raise ValueError(f"module must be 'auto', 'mlp', 'cnn' or a torch.nn.Module; got {self.module!r}")
        check_positive_int(self.embedding_dim, "embedding_dim")
        images = X.dim() == 4  # (n, C, H, W)
        if self.module == "cnn" or (self.module == "auto" and images):
            if not images:
                raise ValueError("module='cnn' needs images: arrays (n, H, W) / (n, C, H, W) or image_shape=")
            check_positive_int(self.cnn_blocks, "cnn_blocks")
            check_positive_int(self.cnn_width, "cnn_width")
            layers = [StandardizeEachImage()]
            if self.augment:
                layers.append(ImageAugment())
            layers.append(SmallCNN(X.shape[1], self.embedding_dim, width=int(self.cnn_width), dropout=self.dropout,
                                   blocks=int(self.cnn_blocks)))
            body = torch.nn.Sequential(*layers)
        else:
            flat = X.reshape(len(X), -1)
            width = hidden[-1] if hidden else flat.shape[1]
            body = torch.nn.Sequential(
                torch.nn.Flatten(),
                Standardize.of(flat),
                mlp(flat.shape[1], hidden, self.activation, self.dropout),
                torch.nn.Linear(width, self.embedding_dim),
            )
        return EmbeddingNetwork(body, normalize=self.normalize)

    # ------------------------------------------------------------------------------------------ output

    def transform(self, X):
        """Embeddings of ``X``, shape ``(n, embedding_dim)`` (a DataFrame with ``set_output(transform="pandas")``)."""
        Xs = self._validate_images(X, reset=False)
        return self._forward(Xs).numpy().astype(np.float64)

    def _after_training(self, net, X, y, loss):
        net.module_.eval()
        with torch.no_grad():
            self._n_features_out = int(net.module_(X[:1]).shape[1])

    def get_feature_names_out(self, input_features=None):
        """``embedding0``, ``embedding1``, ... one name per embedding dimension."""
        check_is_fitted(self, "net_")
        return np.asarray([f"embedding{i}" for i in range(self._n_features_out)], dtype=object)

    def score(self, X, y):
        """Leave-one-out 1-NN accuracy (recall@1) in embedding space: the fraction of samples whose nearest other
        sample has the same label. Samples whose label occurs once have no possible match and are left out.

        Higher is better; it needs no classifier, so ``GridSearchCV`` can compare losses and margins directly.
        """
        from .metrics import recall_at_1

        return recall_at_1(self.transform(X), np.asarray(y))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.three_d_array = True
        return tags
