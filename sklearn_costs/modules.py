"""PyTorch networks behind the estimators: an input standardizer, an MLP body, the distribution head, a small CNN
and its image preprocessing."""

from __future__ import annotations

import math

import torch
from torch import nn

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


class Standardize(nn.Module):
    """``(x - mean) / scale`` with statistics fixed at fit time (buffers: they move with the module)."""

    def __init__(self, mean: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    @classmethod
    def of(cls, X: torch.Tensor) -> Standardize:
        """The standardizer of the rows of ``X`` ``(n, features)``: their column means and (sample) standard
        deviations. A constant column, or a single row (which has no spread), is scaled by 1."""
        mean = X.mean(0)
        scale = X.std(0) if len(X) > 1 else torch.ones_like(mean)
        return cls(mean, torch.where(scale > 0, scale, torch.ones_like(scale)))

    def forward(self, x):
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
    """

    def __init__(self, n_in, n_targets, shared_mask, init_raw=None):
        super().__init__()
        self.n_targets = n_targets
        self.register_buffer("shared_mask", torch.tensor(shared_mask, dtype=torch.bool))
        n_per_sample = int((~self.shared_mask).sum())
        n_shared = int(self.shared_mask.sum())
        self.linear = nn.Linear(n_in, n_targets * n_per_sample)
        self.shared = nn.Parameter(torch.zeros(n_targets, n_shared))
        if init_raw is not None:
            init_raw = torch.as_tensor(init_raw, dtype=torch.float32).reshape(n_targets, len(shared_mask))
            with torch.no_grad():
                self.linear.bias.copy_(init_raw[:, ~self.shared_mask].reshape(-1))
                self.shared.copy_(init_raw[:, self.shared_mask])

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
    """Any feature extractor followed by an optional L2 normalisation of the embedding."""

    def __init__(self, body: nn.Module, normalize: bool = True):
        super().__init__()
        self.body = body
        self.normalize = normalize

    def forward(self, x):
        z = self.body(x)
        return nn.functional.normalize(z, dim=1) if self.normalize else z


class SmallCNN(nn.Module):
    """A small convolutional embedder for grey or colour images.

    ``blocks`` blocks of (conv 3x3, batch norm, ReLU, conv 3x3, batch norm, ReLU, 2x2 max pool) with
    ``width, 2 width, 4 width, ...`` channels, global average pooling, then a linear layer to ``embedding_dim``.
    """

    def __init__(self, in_channels: int, embedding_dim: int, width: int = 32, dropout: float = 0.0, blocks: int = 3):
        super().__init__()
        layers = []
        channels = in_channels
        for b in range(blocks):
            out = width * 2**b
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(),
                nn.Conv2d(out, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out = nn.Linear(channels, embedding_dim)

    def forward(self, x):
        h = self.features(x).mean(dim=(2, 3))
        return self.out(self.dropout(h))


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
    shift up to ``max_shift`` of the size), resampled bilinearly with border padding.
    """

    def __init__(self, max_shift: float = 0.08, max_rotation: float = 10.0, max_scale: float = 0.1,
                 flip: bool = True):
        super().__init__()
        self.max_shift = max_shift
        self.max_rotation = max_rotation
        self.max_scale = max_scale
        self.flip = flip

    def forward(self, x):
        if not self.training:
            return x
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
