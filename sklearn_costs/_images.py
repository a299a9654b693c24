"""The image layout: how the samples of ``X`` are read into the ``(n, C, H, W)`` images a network takes, the one
rule for every path of the :class:`~sklearn_costs.TripletEmbedder` (fit, transform, partial_fit, flat rows with
``image_shape``)."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

#: Sizes of a last axis that make a 3-D sample channels-last: grey, RGB, RGBA.
CHANNEL_COUNTS = (1, 3, 4)


def image_layout(sample_shape):
    """How one sample of shape ``sample_shape`` is read: the one rule for the image layout of
    :class:`TripletEmbedder`, which ``fit``, ``transform`` and every other path follow.

    ``sample_shape`` is the shape of one sample as the user gives it: ``X.shape[1:]`` of an array of images, or
    ``image_shape`` for flat rows (which are then images of that shape flattened by ``reshape``).

    - ``(H, W)``: a grey image, one channel.
    - ``(a, b, c)``: channels-last ``(H, W, C)`` when ``c`` is 1, 3 or 4 (grey, RGB, RGBA) and ``a`` is not;
      otherwise channels-first ``(C, H, W)``, PyTorch's order. So ``(32, 32, 3)`` and ``(3, 32, 32)`` are both
      RGB images of 32 x 32 pixels; a sample both of whose ends could be channels (``(3, 4, 4)``, an image with a
      side of at most 4 pixels) is read channels-first.
    - ``(n_features,)`` or None: a table row, no image.

    Parameters
    ----------
    sample_shape : tuple of int or None

    Returns
    -------
    network_shape : tuple of int or None
        ``(C, H, W)``, the shape in which the network takes the image, or None for a table row.
    channels_last : bool
        Whether the channels are the last axis of ``sample_shape``.

    Examples
    --------
    >>> image_layout((28, 28))
    ((1, 28, 28), False)
    >>> image_layout((32, 32, 3))
    ((3, 32, 32), True)
    >>> image_layout((3, 32, 32))
    ((3, 32, 32), False)
    """
    if sample_shape is None or len(sample_shape) == 1:
        return None, False
    shape = tuple(int(s) for s in sample_shape)
    if len(shape) == 2:
        return (1, *shape), False
    if len(shape) != 3:
        raise ValueError(f"an image is (H, W), (H, W, C) or (C, H, W); got a sample of shape {shape}")
    if shape[2] in CHANNEL_COUNTS and shape[0] not in CHANNEL_COUNTS:
        return (shape[2], shape[0], shape[1]), True
    return shape, False


def as_network_input(rows, sample_shape):
    """Validated flat rows ``(n, features)`` as the network takes them: images ``(n, C, H, W)`` read from samples
    of shape ``sample_shape`` by :func:`image_layout`, or the rows themselves when ``sample_shape`` is None (a
    table)."""
    network_shape, channels_last = image_layout(sample_shape)
    if network_shape is None:
        return rows
    if channels_last:
        return np.ascontiguousarray(rows.reshape(len(rows), *sample_shape).transpose(0, 3, 1, 2))
    return rows.reshape(len(rows), *network_shape)


class ImageInput:
    """The embedder's reading of ``X``: arrays of images in either channel order, or flat rows (table rows, or
    images with ``image_shape``), validated by scikit-learn's utilities and checked against the fitted input."""

    def _row_shape(self, n_values, reset):
        """The shape of one sample of flat rows of ``n_values`` values: ``image_shape`` (checked against the number
        of values) or None (table rows)."""
        if self.image_shape is not None:
            if int(np.prod(self.image_shape)) != n_values:
                raise ValueError(
                    f"image_shape={self.image_shape!r} does not fit rows of {n_values} values; "
                    f"H x W (x C) must equal the number of columns"
                )
            return tuple(int(s) for s in self.image_shape)
        if not reset and len(self.input_shape_) == 3:
            raise ValueError(
                f"this embedder was fitted on images of shape {self.input_shape_} (C, H, W) but was given flat rows "
                f"of {n_values} values; give the images as arrays, e.g. "
                f"X.reshape(len(X), {', '.join(str(v) for v in self.input_shape_)}), "
                f"or set image_shape (the shape of one image) to read flat rows as images"
            )
        return None

    def _validate_images(self, X, reset):
        """Validate with sklearn's utilities on flat rows; return the samples as the network takes them (read by
        :func:`image_layout`)."""
        raw = np.asarray(X) if isinstance(X, (list, tuple)) else X
        sample_shape = None
        if isinstance(raw, np.ndarray) and raw.ndim > 2:
            sample_shape = tuple(raw.shape[1:])
            if raw.ndim > 4:
                raise ValueError(f"X must be a table (n, features) or images (n, H, W), (n, H, W, C) or (n, C, H, W); "
                                 f"got an array of shape {raw.shape}")
            raw = raw.reshape(len(raw), -1)
            if not reset:  # before sklearn's count of the values, whose message would not name the shapes
                self._check_fitted_shape(sample_shape)
        # tables, DataFrames, sparse matrices and flattened images: sklearn's validation decides
        flat = self._validate_X(raw, reset=reset)
        if sample_shape is None:
            sample_shape = self._row_shape(flat.shape[1], reset)
            if not reset and sample_shape is not None:
                self._check_fitted_shape(sample_shape)
        return as_network_input(flat, sample_shape)

    def _check_fitted_shape(self, sample_shape):
        """Raise ValueError unless samples of shape ``sample_shape`` are read as the fitted network's input."""
        check_is_fitted(self, "net_")
        if image_layout(sample_shape)[0] != self.input_shape_:
            fitted = (f"images of shape {self.input_shape_} (C, H, W)" if len(self.input_shape_) == 3
                      else f"table rows of {self.input_shape_[0]} values")
            raise ValueError(
                f"images of shape {sample_shape} were given, but this embedder was fitted on {fitted}; "
                f"resize or crop them to that shape"
            )
