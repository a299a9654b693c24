"""The :class:`~sklearn_costs.TripletEmbedder`'s rules for its ``"auto"`` settings: each a small documented
function of the data, chosen on some data sets and checked on the others (docs/benchmarks.rst)."""

from __future__ import annotations

import numpy as np

from ._training import holds_out_whole_identities

#: The working resolution: the longer side at most ``MAX_SIDE`` pixels, the shorter at least ``MIN_SIDE``.
MAX_SIDE = 24
MIN_SIDE = 16
#: Gradient steps aimed at when ``max_epochs="auto"``.
TARGET_STEPS = 3000
#: ``n_members="auto"`` trains ``MEMBER_ROWS / n_samples`` networks, 1 to ``MAX_MEMBERS``.
MEMBER_ROWS = 6000
MAX_MEMBERS = 5
#: The CNN's augmentation when ``augment`` is on: shifts up to this fraction of the size, rotations up to this many
#: degrees, scalings within 1 +- this.
AUGMENT_MAX_SHIFT = 0.08
AUGMENT_MAX_ROTATION = 10.0
AUGMENT_MAX_SCALE = 0.1
#: The CNN's last feature map is averaged to a ``POOL_GRID x POOL_GRID`` grid (1: global average pooling).
POOL_GRID = 1
#: ``n_iter_no_change="auto"``: ``max_epochs_`` divided by this many, when early stopping holds out whole identities
#: (at least ``MIN_PATIENCE``) and when it holds out a share of each identity's rows (at least ``MIN_ROWS_PATIENCE``).
PATIENCE_DIVISOR = 5
MIN_PATIENCE = 10
ROWS_PATIENCE_DIVISOR = 12
MIN_ROWS_PATIENCE = 5
#: ``loss="auto"`` trains with the multi-similarity loss on at most this many identities, the triplet loss above.
MULTI_SIMILARITY_MAX_IDENTITIES = 100


def embedding_loss(n_identities):
    """The loss that ``loss="auto"`` trains with on ``n_identities`` identities: ``"multi_similarity"`` on at
    most ``MULTI_SIMILARITY_MAX_IDENTITIES``, ``"triplet"`` on more.

    Measured with every other setting at its default (docs/benchmarks.rst): the multi-similarity loss, which
    weighs every positive and negative pair of a batch by how hard it is, gives the better one-shot accuracy on
    few identities (the 7 digits, the 30 people of Olivetti and of ORL; Omniglot folds trained on 60 of their
    characters). From 120 characters to whole Omniglot folds (153-203) the two are level (the multi-similarity
    loss ahead on 4 of 8 whole-fold fits, +0.008), so there the design's triplet loss, with semi-hard mining,
    stays. 100 was set between the 60 and the whole folds.

    Examples
    --------
    >>> embedding_loss(30), embedding_loss(182)
    ('multi_similarity', 'triplet')
    """
    return "multi_similarity" if n_identities <= MULTI_SIMILARITY_MAX_IDENTITIES else "triplet"


def early_stopping_patience(max_epochs, n_identities=None):
    """The epochs without a better validation loss after which ``n_iter_no_change="auto"`` stops a fit of
    ``max_epochs`` epochs on ``n_identities`` identities (None: many).

    When early stopping holds out whole identities (:func:`~sklearn_costs._training.holds_out_whole_identities`),
    their loss says how the embedding does for people it never saw: a fifth of ``max_epochs``, at least 10. With
    fewer identities it holds out a share of each one's rows, whose loss keeps falling slowly long after the
    embedding of unseen identities has stopped improving (the network learns the training identities' own images):
    a twelfth, at least 5. Measured with the one-shot accuracy of the unseen identities by epoch
    (docs/benchmarks.rst, ``benchmarks/recipe.py --curve --patience``): on the 7 digits it is level from about the
    fifth epoch, while a fifth as patience ran the fits 38 to 64 epochs; on Omniglot folds trained on 8 characters
    it gains little after the 50th, of 100 to 294. A twelfth halves the digits' epochs and cuts Omniglot-8's by a
    third, with the accuracy within 0.002 of a fifth's.

    Examples
    --------
    >>> early_stopping_patience(66, n_identities=7), early_stopping_patience(300, n_identities=30)
    (5, 60)
    """
    if n_identities is None or holds_out_whole_identities(n_identities):
        return max(MIN_PATIENCE, max_epochs // PATIENCE_DIVISOR)
    return max(MIN_ROWS_PATIENCE, max_epochs // ROWS_PATIENCE_DIVISOR)


def steps_per_epoch(n_samples, batch_size, n_identities=None, images_per_identity=4):
    """Gradient steps in one epoch of :class:`~sklearn_costs._training.IdentityBatchLoader`: a batch holds groups
    of ``images_per_identity`` images of at most ``batch_size // images_per_identity`` identities, so with fewer
    identities than that it is smaller than ``batch_size``: ``n_identities * images_per_identity`` rows (7 digits: 28
    rows, 46 steps an epoch over 1,264 images, not 10). ``n_identities`` None: as many as a full batch needs.

    Examples
    --------
    >>> steps_per_epoch(1264, 128, n_identities=7), steps_per_epoch(1264, 128)
    (46, 10)
    """
    rows = batch_size if n_identities is None else min(batch_size, n_identities * images_per_identity)
    return max(1, int(np.ceil(n_samples / max(1, rows))))


def resolve_embedder_settings(sample_shape, n_samples, batch_size, params, n_identities=None,
                              images_per_identity=4):
    """The :class:`~sklearn_costs.TripletEmbedder` settings for this data: ``params`` (the estimator's) with every
    ``"auto"`` replaced by the value its rule gives. ``sample_shape`` is one sample as the network takes it
    (``(C, H, W)`` for images, see :func:`~sklearn_costs._images.image_layout`; ``(n_features,)`` for table
    rows), ``batch_size`` the rows of a gradient step (the parameter's ``"auto"`` or -1 resolved),
    ``n_identities`` the labels in ``y`` (None: enough to fill every batch) and ``images_per_identity`` the
    estimator's. ``module="cnn"`` on table rows raises ``ValueError``.

    The rules were chosen on digits, Olivetti, ORL and Omniglot with the others held out (docs/benchmarks.rst):

    - ``module``: the CNN for images, the MLP for table rows.
    - ``input_size``: images are averaged down until the longer side is ``MAX_SIDE`` (24) pixels, but not below
      ``MIN_SIDE`` (16) on the shorter side, and enlarged for the CNN when the shorter side is under 16; the
      aspect ratio is kept. A network
      trained on tens to hundreds of identities generalises better from the coarse picture and trains in a
      fraction of the time (105x105 characters, 112x92 faces); too small an image leaves a CNN nothing to
      convolve (8x8 digits).
    - ``cnn_blocks``: ``floor(log2(shorter side / 4))``, at least one, so that the last block still sees a map of
      about 4 pixels a side; ``cnn_width``: 16 channels in the first block.
    - ``n_members``: ``MEMBER_ROWS / n_samples`` networks (1 to 5) trained side by side as one batched network,
      their embeddings concatenated: independently started networks make errors that average out, which matters
      most on small data, where one network's embedding depends much on its seed; the training cost stays about
      that of one network on ``MEMBER_ROWS`` images.
    - ``augment``: random rotations, scalings and shifts of images (no flips: a mirrored character can be another
      character); none for tables.
    - ``max_epochs``: about ``TARGET_STEPS`` (3000) gradient steps, 20 to 300 epochs, the steps of an epoch counted
      as the identity batches make them (:func:`steps_per_epoch`: with fewer identities than a batch has room for,
      ``n_identities``, the batches are smaller and an epoch has more of them; 7 digits: 66 epochs of 46 steps,
      where counting full batches of 128 gave 300 epochs of 46 steps); ``n_iter_no_change``:
      :func:`early_stopping_patience` (a fifth of that, at least 10, when early stopping holds out whole
      identities; a twelfth, at least 5, when it holds out rows of each). Training stops earlier when the held-out
      identities stop improving.
    """
    images = len(sample_shape) == 3
    resolved = {}
    module = params["module"]
    if module == "auto":
        module = "cnn" if images else "mlp"
    resolved["module_kind"] = module if isinstance(module, str) else "custom"
    cnn = resolved["module_kind"] == "cnn"
    if cnn and not images:
        raise ValueError(
            f"module='cnn' needs images, but X holds table rows of {sample_shape[0]} values: give images as arrays "
            "(n, H, W), (n, H, W, C) or (n, C, H, W), or flat rows with image_shape=(H, W) (or the shape of one "
            "image), or use module='mlp' (or 'auto') for table rows"
        )
    size = None
    if images:
        height, width = sample_shape[1:]
        if params["input_size"] == "auto":
            factor = min(max(max(height, width) / MAX_SIDE, 1.0), min(height, width) / MIN_SIDE)
            factor = factor if cnn else max(factor, 1.0)  # an MLP gains nothing from enlarged images
            size = (max(1, round(height / factor)), max(1, round(width / factor)))
        else:
            size = tuple(int(v) for v in params["input_size"])
    resolved["input_size"] = size
    blocks = params["cnn_blocks"]
    if blocks == "auto":
        blocks = max(1, int(np.floor(np.log2(min(size) / 4)))) if cnn else None
    resolved["cnn_blocks"] = blocks
    width = params["cnn_width"]
    resolved["cnn_width"] = (16 if cnn else None) if width == "auto" else width
    members = params["n_members"]
    if members == "auto":
        members = int(np.clip(round(MEMBER_ROWS / n_samples), 1, MAX_MEMBERS))
    resolved["n_members"] = members
    augment = params["augment"]
    resolved["augment"] = bool(images and cnn) if augment == "auto" else bool(augment)
    epochs = params["max_epochs"]
    if epochs == "auto":
        steps = steps_per_epoch(n_samples, batch_size, n_identities, images_per_identity)
        epochs = int(np.clip(np.ceil(TARGET_STEPS / steps), 20, 300))
    resolved["max_epochs"] = epochs
    patience = params["n_iter_no_change"]
    resolved["n_iter_no_change"] = (early_stopping_patience(resolved["max_epochs"], n_identities)
                                    if patience == "auto" else patience)
    return resolved
