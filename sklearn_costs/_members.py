"""Members: ``n_members`` networks trained side by side as one batched network, each from its own random start
and on its own order of the rows, for the regressors (whose prediction is the members' mixture) and the embedder
(whose embedding is the members' embeddings side by side).

The one layout: a batched network's output holds the members one after the other along its second axis,
``(rows, members * k, ...)``. The one scaling of the objective: :func:`members_objective`.
"""

from __future__ import annotations

import torch


def by_member(output: torch.Tensor, members: int) -> torch.Tensor:
    """``(rows, members * k, ...)`` -> ``(rows, members, k, ...)``: each member's part of a batched output."""
    return output.reshape(output.shape[0], members, -1, *output.shape[2:])


def members_first(output: torch.Tensor, members: int) -> torch.Tensor:
    """``(rows, members * k, ...)`` -> ``(members, rows, k, ...)``: each member's output as a network of its own."""
    return by_member(output, members).transpose(0, 1)


def members_objective(mean_loss: torch.Tensor, members: int) -> torch.Tensor:
    """The objective of ``members`` networks trained side by side, from the mean of their losses.

    Its value is that mean, comparable to one network's loss (the history, early stopping and the divergence guard
    read it); its gradient is that of the members' sum, so that each member's weights get the gradient of its own
    loss, exactly as a separately trained network would (with the mean's gradient, plain SGD would train each
    member at ``lr / members``).
    """
    return mean_loss + (members - 1) * (mean_loss - mean_loss.detach())
