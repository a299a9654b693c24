"""PyTorch networks behind the estimators: an input standardizer, an MLP body, the distribution head, a small CNN
and its image preprocessing."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._embedder_settings import AUGMENT_MAX_ROTATION, AUGMENT_MAX_SCALE, AUGMENT_MAX_SHIFT
from ._members import by_member

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
}


def get_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {name!r}")
    return ACTIVATIONS[name]()


#: Rows of a block in the input statistics of :meth:`Standardize.of`.
MOMENT_ROWS = 65_536


class Standardize(nn.Module):
    """``(x - mean) / scale`` with statistics fixed at fit time (buffers: they move with the module); with
    ``clip``, each feature is first held within ``[low, high]``, its range in the training data, so that the
    network is never evaluated beyond the data it was fitted on (its value there is that at the edge)."""

    def __init__(self, mean: torch.Tensor, scale: torch.Tensor, low: torch.Tensor | None = None,
                 high: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.clip = low is not None
        inf = torch.full_like(self.mean, float("inf"))
        self.register_buffer("low", -inf if low is None else torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", inf if high is None else torch.as_tensor(high, dtype=torch.float32))

    @classmethod
    def of(cls, X: torch.Tensor, weight: torch.Tensor | None = None, clip: bool = False) -> Standardize:
        """The standardizer of the rows of ``X`` ``(n, features)``: their column means and (sample) standard
        deviations; with ``weight``, the weighted mean and the weighted root mean square deviation (which the
        weights' overall scale does not change). A constant column, or a single row (which has no spread), is
        scaled by 1. With ``clip``, inputs are held within the range of the rows (of positive weight)."""
        w = None if weight is None else weight.to(X.dtype)
        mean = X.mean(0) if w is None else (w @ X) / w.sum()
        # the squared deviations a block of rows at a time: no temporary of the size of X (a recording of
        # millions of bins), and faster than torch's column-wise std of a tall, narrow matrix (5x on 60,000 x 12)
        squares = torch.zeros_like(mean)
        for start in range(0, len(X), MOMENT_ROWS):
            deviation = (X[start : start + MOMENT_ROWS] - mean) ** 2
            squares += deviation.sum(0) if w is None else w[start : start + MOMENT_ROWS] @ deviation
        if w is None:
            scale = torch.sqrt(squares / (len(X) - 1)) if len(X) > 1 else torch.ones_like(mean)
        else:
            scale = torch.sqrt(squares / w.sum())
        low, high = torch.aminmax(X if weight is None else X[weight > 0], dim=0)
        # a constant column has no spread: its float32 mean is not exact, which would leave a scale of ~1e-8
        varies = (scale > 0) & (high > low)
        scale = torch.where(varies, scale, torch.ones_like(scale))
        return cls(mean, scale, low if clip else None, high if clip else None)

    def forward(self, x):
        if self.clip:
            x = torch.clamp(x, self.low, self.high)
        return (x - self.mean) / self.scale


def mlp(n_inputs: int, hidden_layer_sizes, activation: str = "relu", dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of ``hidden_layer_sizes`` with ``activation`` and dropout after each; empty for ``()``."""
    layers: list[nn.Module] = []
    width = n_inputs
    for size in hidden_layer_sizes:
        layers += [nn.Linear(width, size), get_activation(activation)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    return nn.Sequential(*layers)


class DistributionHead(nn.Module):
    """Raw distribution parameters ``(n, n_targets, n_outputs)`` from features ``(n, n_in)``.

    Per-sample outputs come from one linear layer; *shared* outputs (one value per target, such as a neuron's
    dispersion) are free parameters broadcast over the batch. ``init_raw`` ``(n_targets, n_outputs)`` sets the bias
    and the shared values, so training starts at the targets' marginal distribution.

    With ``members`` > 1 the features are ``(n, members, n_in)`` (a :class:`MemberMLP` without output layer), each
    member has its own linear layer and shared values (all started at ``init_raw``), and the output holds the
    members' parameters one after the other along the targets: ``(n, members * n_targets, n_outputs)``.
    """

    def __init__(self, n_in, n_targets, shared_mask, init_raw=None, members=1):
        super().__init__()
        self.members = members
        self.n_targets = n_targets * members
        self.register_buffer("shared_mask", torch.tensor(shared_mask, dtype=torch.bool))
        n_per_sample = int((~self.shared_mask).sum())
        n_shared = int(self.shared_mask.sum())
        per_member = n_targets * n_per_sample
        self.linear = nn.Linear(n_in, per_member) if members == 1 else MemberLinear(members, n_in, per_member)
        self.shared = nn.Parameter(torch.zeros(self.n_targets, n_shared))
        if init_raw is not None:
            init_raw = torch.as_tensor(init_raw, dtype=torch.float32).reshape(n_targets, len(shared_mask))
            with torch.no_grad():
                bias = init_raw[:, ~self.shared_mask].reshape(-1)
                self.linear.bias.copy_(bias if members == 1 else bias.expand(members, -1))
                self.shared.copy_(init_raw[:, self.shared_mask].repeat(members, 1))

    def forward(self, h):
        per_sample = self.linear(h).reshape(len(h), self.n_targets, -1)
        if self.shared.shape[1] == 0:
            return per_sample
        raw = per_sample.new_empty(len(h), self.n_targets, len(self.shared_mask))
        raw[..., ~self.shared_mask] = per_sample
        raw[..., self.shared_mask] = self.shared.expand(len(h), -1, -1)
        return raw


class DistributionNetwork(nn.Module):
    """Standardize, MLP body, distribution head."""

    def __init__(self, standardize, body, head):
        super().__init__()
        self.standardize = standardize
        self.body = body
        self.head = head

    def forward(self, x):
        return self.head(self.body(self.standardize(x)))


class EmbeddingNetwork(nn.Module):
    """Any feature extractor followed by an optional L2 normalisation of the embedding.

    With ``members`` > 1 the extractor's output holds one embedding per member side by side; each is normalised
    on its own and scaled by ``1 / sqrt(members)``, so that the squared distance between two outputs is the mean
    of the members' squared distances (and the whole vector has unit norm).
    """

    def __init__(self, body: nn.Module, normalize: bool = True, members: int = 1):
        super().__init__()
        self.body = body
        self.normalize = normalize
        self.members = members

    def forward(self, x):
        z = self.body(x)
        if not self.normalize:
            return z
        if self.members == 1:
            return nn.functional.normalize(z, dim=1)
        z = nn.functional.normalize(by_member(z, self.members), dim=2) / math.sqrt(self.members)
        return z.reshape(len(z), -1)


class MemberLinear(nn.Module):
    """``members`` independent linear layers applied side by side: ``(n, members, in)`` -> ``(n, members, out)``,
    one batched matrix product for all members. Each member is initialised like ``nn.Linear``."""

    def __init__(self, members: int, n_in: int, n_out: int):
        super().__init__()
        bound = 1 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(members, n_in, n_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, n_out).uniform_(-bound, bound))

    def forward(self, x):
        return torch.einsum("nmi,mio->nmo", x, self.weight) + self.bias


class MemberMLP(nn.Module):
    """``members`` MLPs of the same shape trained side by side (batched matrix products).

    With ``n_out``, each ends in a linear layer to ``n_out`` and the output is their ``(n, members * n_out)``
    concatenation; without, the output is the last hidden layer of each, ``(n, members, width)`` (the input of a
    :class:`DistributionHead` with as many members; with no hidden layer, the input repeated for each member).
    """

    def __init__(self, members, n_inputs, hidden_layer_sizes, n_out=None, activation="relu", dropout=0.0):
        super().__init__()
        self.members = members
        layers: list[nn.Module] = []
        width = n_inputs
        for size in hidden_layer_sizes:
            layers += [MemberLinear(members, width, size), get_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.flatten = n_out is not None
        if self.flatten:
            layers.append(MemberLinear(members, width, n_out))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        """``x``: ``(n, features)``, the same rows for every member, or ``(n, members, features)``, rows of each
        member's own (a batch of :class:`~sklearn_costs._training.MemberSliceLoader`)."""
        if x.ndim == 2:
            x = x.reshape(len(x), 1, -1).expand(-1, self.members, -1)
        out = self.layers(x)
        return out.reshape(len(x), -1) if self.flatten else out


class SmallCNN(nn.Module):
    """A small convolutional embedder for grey or colour images.

    ``blocks`` blocks of (conv 3x3, batch norm, ReLU, conv 3x3, batch norm, ReLU, 2x2 max pool) with
    ``width, 2 width, 4 width, ...`` channels, global average pooling (``pool_grid=1``; with ``pool_grid=g``,
    average pooling to a ``g x g`` grid, flattened, which keeps where in the image each feature was), then a linear
    layer to ``embedding_dim``. The feature maps are held channels last (``channels_last=True``), the faster
    layout for these convolutions.

    With ``members`` > 1, that many such networks run side by side as one network of grouped convolutions: the
    input holds ``members`` copies of each image along the channels (see :class:`ReplicateImages`), member ``m``
    sees only copy ``m``, and the output is the members' embeddings side by side, ``(n, members * embedding_dim)``.
    """

    #: Models saved before ``pool_grid`` and ``channels_last`` existed pooled globally, in the default layout.
    pool_grid = 1
    channels_last = False

    def __init__(self, in_channels: int, embedding_dim: int, width: int = 32, dropout: float = 0.0, blocks: int = 3,
                 members: int = 1, pool_grid: int = 1, channels_last: bool = True):
        super().__init__()
        layers = []
        channels = in_channels
        for b in range(blocks):
            out = width * 2**b
            layers += [
                nn.Conv2d(channels * members, out * members, 3, padding=1, bias=False, groups=members),
                nn.BatchNorm2d(out * members),
                nn.ReLU(),
                nn.Conv2d(out * members, out * members, 3, padding=1, bias=False, groups=members),
                nn.BatchNorm2d(out * members),
                nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.pool_grid = int(pool_grid)
        pooled = channels * self.pool_grid**2
        if members == 1:
            self.out = nn.Linear(pooled, embedding_dim)
        else:  # one linear map per member: a grouped 1x1 convolution over the pooled features
            self.out = nn.Sequential(nn.Unflatten(1, (pooled * members, 1)),
                                     nn.Conv1d(pooled * members, embedding_dim * members, 1, groups=members),
                                     nn.Flatten())
        # channels last (NHWC): on the CPU, oneDNN's convolutions, batch norms and poolings take about 30% less time
        # a step at 128 images (benchmarks/cnn_layout.py); the same values as the default layout, to rounding
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.features.to(memory_format=torch.channels_last)

    def forward(self, x):
        h = self.features(x.contiguous(memory_format=torch.channels_last) if self.channels_last else x)
        if self.pool_grid == 1:
            h = h.mean(dim=(2, 3))
        else:  # (n, members * C, g, g): each member's channels and cells together, member by member
            h = nn.functional.adaptive_avg_pool2d(h, self.pool_grid).reshape(len(h), -1)
        return self.out(self.dropout(h))


class ResizeImages(nn.Module):
    """Images to ``size`` ``(H, W)`` by averaging over areas (anti-aliased down-sampling; an identity when the
    images already have that size). Part of the network, so that ``transform`` takes images as ``fit`` did."""

    def __init__(self, size):
        super().__init__()
        self.size = tuple(int(s) for s in size)

    def forward(self, x):
        if tuple(x.shape[-2:]) == self.size:
            return x
        return nn.functional.adaptive_avg_pool2d(x, self.size)


class ReplicateImages(nn.Module):
    """``copies`` copies of each image along the channels, ``(n, C, H, W)`` -> ``(n, copies * C, H, W)``: the input
    of a :class:`SmallCNN` with ``members`` = ``copies``."""

    def __init__(self, copies: int):
        super().__init__()
        self.copies = copies

    def forward(self, x):
        return x if self.copies == 1 else x.repeat(1, self.copies, 1, 1)


class StandardizeEachImage(nn.Module):
    """Each image to zero mean and unit variance over its pixels: removes differences of lighting and contrast
    between photos, which otherwise dominate distances between faces."""

    def forward(self, x):
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
        return (x - mean) / std


class ImageAugment(nn.Module):
    """Random small rotations, scalings, shifts and horizontal flips, in training mode only.

    One random affine map per image (rotation up to ``max_rotation`` degrees, scale within ``1 +- max_scale``,
    shift up to ``max_shift`` of the size), resampled bilinearly with border padding. With ``channels`` set, an
    input of more channels holds several copies of each image (:class:`ReplicateImages`), and each copy gets a map
    of its own. The default strengths are the TripletEmbedder's (``AUGMENT_MAX_*`` of
    :mod:`sklearn_costs._embedder_settings`).
    """

    def __init__(self, max_shift: float = AUGMENT_MAX_SHIFT, max_rotation: float = AUGMENT_MAX_ROTATION,
                 max_scale: float = AUGMENT_MAX_SCALE, flip: bool = True, channels: int | None = None):
        super().__init__()
        self.max_shift = max_shift
        self.max_rotation = max_rotation
        self.max_scale = max_scale
        self.flip = flip
        self.channels = channels

    def forward(self, x):
        if not self.training:
            return x
        if self.channels is not None and x.shape[1] != self.channels:
            # copies of each image side by side along the channels (ReplicateImages): each copy its own map
            n, c, h, w = x.shape
            return self(x.reshape(n * c // self.channels, self.channels, h, w)).reshape(n, c, h, w)
        n = len(x)

        def uniform(*shape):  # in [-1, 1)
            return torch.rand(*shape, device=x.device) * 2 - 1

        angle = uniform(n) * math.radians(self.max_rotation)
        scale = 1 + uniform(n) * self.max_scale
        mirror = torch.ones(n, device=x.device)
        if self.flip:
            mirror = torch.where(torch.rand(n, device=x.device) < 0.5, -mirror, mirror)
        theta = torch.zeros(n, 2, 3, device=x.device)
        theta[:, 0, 0] = torch.cos(angle) / scale * mirror
        theta[:, 0, 1] = -torch.sin(angle) / scale
        theta[:, 1, 0] = torch.sin(angle) / scale * mirror
        theta[:, 1, 1] = torch.cos(angle) / scale
        theta[:, :, 2] = uniform(n, 2) * 2 * self.max_shift  # grid coordinates span [-1, 1]: 2 x the fraction
        grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        return nn.functional.grid_sample(x, grid.to(x.dtype), padding_mode="border", align_corners=False)
