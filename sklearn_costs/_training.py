"""The skorch pieces every estimator trains with: in-memory tensor batches, the split, early stopping, the net.

skorch's default path builds every batch by indexing a ``Dataset`` row by row and collating the rows; for data
that already sits in memory as one tensor this dominates the cost of a small network. Here a batch is a slice of a
tensor that lives on the training device, reordered by one permutation per epoch. skorch still runs the training
(callbacks, history, early stopping, checkpoints); only ``dataset``, ``iterator_*`` and ``train_split`` differ.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping as _SkorchEarlyStopping

# the guard's names as models pickled by earlier versions hold them (sklearn_costs._training.DivergenceGuard)
from ._divergence import DivergenceGuard, StopOnNonFiniteLoss  # noqa: F401
from .exceptions import DeviceWarning


class Criterion(torch.nn.Module):
    """The base of the estimators' skorch criteria, ``criterion(y_pred, y_true)``.

    A criterion may hold parameters that train with the network (the proxies of a proxy loss). skorch hands them to
    the optimizer with the module's (``NeuralNet.get_all_learnable_params`` yields the criterion's parameters after
    the module's), moves the criterion to the device and pickles it with the net; :class:`EarlyStopping` restores
    them with the best epoch's weights, and :meth:`continue_from` carries them on to the net that continues this one
    (a warm start, a continuing ``partial_fit``).
    """

    def continue_from(self, previous) -> dict:
        """Take over the state of ``previous``, the criterion of the net that this one continues.

        Returns ``{parameter: remap}`` for each parameter of this criterion whose rows moved or grew (identities
        added or dropped): ``remap`` maps a tensor shaped like ``previous``'s parameter to one shaped like this
        one's, so that the optimizer's state of that parameter (Adam's moments) follows its rows. Here nothing
        moves: the state is loaded as it is.
        """
        self.load_state_dict(previous.state_dict())
        return {}


class TensorDataset(torch.utils.data.Dataset):
    """``X``, optional ``y`` and optional sample weights ``w`` as tensors (already on the training device);
    skorch's ``dataset`` parameter. With weights, the targets of a batch are the pair ``(y, w)``, which the
    criterion unpacks. With ``y_dtype``, each batch's targets are converted to it as the batch is cut, so that
    ``y`` can stay in a compact dtype (counts as ``uint8``) for the whole data set."""

    def __init__(self, X, y=None, w=None, y_dtype=None):
        self.X = X if torch.is_tensor(X) else torch.as_tensor(np.asarray(X))
        self.y = y if (y is None or torch.is_tensor(y)) else torch.as_tensor(np.asarray(y))
        self.w = w
        self.y_dtype = y_dtype

    def __len__(self):
        return len(self.X)

    def targets(self, rows):
        """The targets of ``rows`` as a batch carries them: ``y[rows]``, or ``(y[rows], w[rows])``."""
        if self.y is None:
            return None
        y = self.y[rows]
        if self.y_dtype is not None:
            y = y.to(self.y_dtype)
        return y if self.w is None else (y, self.w[rows])

    def __getitem__(self, i):
        return self.X[i], (self.targets(i) if self.y is not None else torch.zeros(0))

    def weighs_nothing(self):
        """Whether sample weights are given and none of them is positive (no row to learn from)."""
        return self.w is not None and not float(self.w.sum()) > 0

    def subset(self, index):
        return TensorDataset(self.X[index], None if self.y is None else self.y[index],
                             None if self.w is None else self.w[index], self.y_dtype)


class SliceLoader:
    """Batches cut by slicing the dataset's tensors; with ``shuffle`` a new permutation each epoch.

    The permutation is drawn on the CPU from a seeded generator, so a fixed seed gives the same batches on every
    device.
    """

    def __init__(self, dataset, batch_size=128, shuffle=False, seed=None):
        if not isinstance(dataset, TensorDataset):
            raise TypeError(f"SliceLoader needs a TensorDataset; got {type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator()
        self.generator.manual_seed(0 if seed is None else int(seed))

    def __len__(self):
        return math.ceil(len(self.dataset) / self.batch_size)

    def _order(self):
        n = len(self.dataset)
        if not self.shuffle:
            return None
        return torch.randperm(n, generator=self.generator).to(self.dataset.X.device)

    def __iter__(self):
        X = self.dataset.X
        order = self._order()
        for start in range(0, len(X), self.batch_size):
            # Each batch gathers its own rows: a permuted copy of the whole data set would double the memory.
            rows = slice(start, start + self.batch_size) if order is None else order[start : start + self.batch_size]
            yield X[rows], self.dataset.targets(rows)


class MemberSliceLoader(SliceLoader):
    """Training batches for ``members`` networks side by side (a batched network), each member with its own
    permutation of the rows each epoch: batch ``k`` holds every member's own ``k``-th slice, as inputs
    ``(rows, members, ...)`` and targets ``(rows, members, ...)``. The members then see the data in different
    orders, as separately trained networks do, which makes them differ more than their random starts alone."""

    def __init__(self, dataset, batch_size=128, shuffle=True, seed=None, members=1):
        super().__init__(dataset, batch_size, shuffle, seed)
        self.members = members

    def _member_order(self):
        order = self._order()
        return torch.arange(len(self.dataset), device=self.dataset.X.device) if order is None else order

    def __iter__(self):
        n = len(self.dataset)
        orders = torch.stack([self._member_order() for _ in range(self.members)])
        for start in range(0, n, self.batch_size):
            rows = orders[:, start : start + self.batch_size]  # (members, batch)
            targets = self.dataset.targets(rows)
            if isinstance(targets, tuple):
                targets = tuple(t.transpose(0, 1) for t in targets)
            elif targets is not None:
                targets = targets.transpose(0, 1)
            yield self.dataset.X[rows].transpose(0, 1), targets


#: ``"groups"`` holds out whole identities only when there are at least this many; with fewer, every identity
#: trains and a fraction of each one's rows is held out: holding out two of seven identities takes a third of what
#: there is to learn from. With the defaults (docs/benchmarks.rst), 10 against 4 gave 0.806 +- 0.021 against
#: 0.751 +- 0.064 on the 7 digits (seeds 0-5) and +0.049 on Omniglot folds trained on 8 characters (12 of 12 fits
#: higher), in fits about 1.5 times as long (``benchmarks/recipe.py --rule MIN_IDENTITIES_HELD_OUT_WHOLE=4``).
MIN_IDENTITIES_HELD_OUT_WHOLE = 10


def holds_out_whole_identities(n_identities):
    """Whether early stopping on data of ``n_identities`` identities holds out whole identities (at least
    ``MIN_IDENTITIES_HELD_OUT_WHOLE``), or a share of each identity's rows.

    Examples
    --------
    >>> holds_out_whole_identities(7), holds_out_whole_identities(30)
    (False, True)
    """
    return n_identities >= MIN_IDENTITIES_HELD_OUT_WHOLE


def _rows_of_each_label(labels, fraction, generator):
    """A boolean mask of about ``fraction`` of the rows of each label (at least one, never all), drawn with
    ``generator``."""
    valid = torch.zeros(len(labels), dtype=torch.bool)
    for label in torch.unique(labels):
        rows = torch.nonzero(labels == label).flatten()
        if len(rows) < 2:
            continue
        n_valid = min(max(1, int(round(fraction * len(rows)))), len(rows) - 1)
        valid[rows[torch.randperm(len(rows), generator=generator)[:n_valid]]] = True
    return valid


class ValidationSplit:
    """skorch ``train_split``: hold out ``fraction`` of the rows, at random (seeded), as the last rows, or by label.

    ``"tail"`` keeps time order: for autocorrelated series (spike counts in consecutive bins) a random split would
    put each validation bin between two training neighbours and make early stopping optimistic. ``"groups"`` holds
    out whole labels (identities, at least two), so that early stopping measures what an embedding does for people
    it never saw; with fewer than ``MIN_IDENTITIES_HELD_OUT_WHOLE`` identities it holds out a share of each one's
    rows instead (every identity then trains).
    """

    def __init__(self, fraction, how="random", seed=0):
        self.fraction = fraction
        self.how = how
        self.seed = seed

    def __call__(self, dataset, y=None, **kwargs):
        train, valid = self._split(dataset)
        if train.weighs_nothing():
            raise ValueError(
                f"every row with a positive sample_weight fell among the {len(valid)} rows held out for early "
                "stopping, so the network would train on rows that all weigh 0. Give weight to more rows, or set "
                "early_stopping=False to train on all of them."
            )
        if valid.weighs_nothing():
            raise ValueError(
                f"sample_weight is zero on all {len(valid)} rows held out for early stopping ({self._held_out()}), so "
                "their validation loss would be 0 every epoch and early stopping would keep the first epoch's "
                "weights. Give some of those rows a positive weight, or set early_stopping=False to train on all "
                "rows without a validation split."
            )
        return train, valid

    def _held_out(self) -> str:
        """Which rows the split holds out, in words for a message."""
        return {"tail": "the last rows, in time order",
                "groups": "whole identities drawn at random, or with few identities some rows of each"}.get(
            self.how, "rows drawn at random")

    def _split(self, dataset):
        n = len(dataset)
        n_valid = min(max(1, int(round(self.fraction * n))), n - 1)
        generator = torch.Generator().manual_seed(int(self.seed))
        if self.how == "groups":
            labels = dataset.y.cpu()
            groups = torch.unique(labels)
            if holds_out_whole_identities(len(groups)):
                n_groups = min(max(2, int(round(self.fraction * len(groups)))), len(groups) - 2)
                held = groups[torch.randperm(len(groups), generator=generator)[:n_groups]]
                valid = torch.isin(labels, held).to(dataset.X.device)
                return dataset.subset(~valid), dataset.subset(valid)
            valid = _rows_of_each_label(labels, self.fraction, generator)
            if valid.any():
                valid = valid.to(dataset.X.device)
                return dataset.subset(~valid), dataset.subset(valid)
        if self.how == "tail":  # slices are views: no copy of the data
            return dataset.subset(slice(0, n - n_valid)), dataset.subset(slice(n - n_valid, n))
        index = torch.randperm(n, generator=generator)
        index = index.to(dataset.X.device)
        return dataset.subset(index[: n - n_valid]), dataset.subset(index[n - n_valid :])




class _PermutationSampler(torch.utils.data.Sampler):
    """Row order of :class:`SliceLoader`: one seeded permutation per epoch (or none)."""

    def __init__(self, n, shuffle, seed):
        self.n = n
        self.shuffle = shuffle
        self.generator = torch.Generator()
        self.generator.manual_seed(0 if seed is None else int(seed))

    def __len__(self):
        return self.n

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


def seeded_dataloader(dataset, batch_size=128, shuffle=False, seed=None, **kwargs):
    """skorch's default path (a torch ``DataLoader`` indexing ``dataset`` row by row and collating the rows), with
    rows visited in the order :class:`SliceLoader` visits them for the same seed.

    The loader gets a generator of its own, since a ``DataLoader`` draws a seed for its workers at every epoch and
    would otherwise draw it from PyTorch's global generator (which also drives dropout).
    """
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size,
                                       sampler=_PermutationSampler(len(dataset), shuffle, seed),
                                       generator=torch.Generator(), **kwargs)


#: How batches are built: ``"slices"`` (the default, tensors sliced in place) or ``"dataloader"`` (skorch's
#: default path, kept to check that both train the same network and to measure the difference).
BATCHING = {"slices": SliceLoader, "dataloader": seeded_dataloader}

#: ``precision`` to the autocast dtype (None: no autocast).
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}


class StopTraining(KeyboardInterrupt):
    """How :class:`EarlyStopping` ends the training. skorch's own raises a bare ``KeyboardInterrupt``, which
    :class:`CostNet` could not tell from the user's Ctrl-C."""


class EarlyStopping(_SkorchEarlyStopping):
    """skorch's ``EarlyStopping``, ending the training by :class:`StopTraining`; with ``load_best`` it restores the
    best epoch's criterion state (a proxy loss's proxies) with the module's weights (skorch's restores the module's
    alone)."""

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.best_criterion_state_ = None

    def on_epoch_end(self, net, **kwargs):
        try:
            super().on_epoch_end(net, **kwargs)
        except KeyboardInterrupt:
            if self.misses_ < self.patience:  # not the patience running out: the user pressed Ctrl-C
                raise
            raise StopTraining from None
        if self.load_best and self.best_epoch_ == net.history[-1, "epoch"]:
            state = net.criterion_.state_dict()
            self.best_criterion_state_ = copy.deepcopy(state) if state else None

    def on_train_end(self, net, **kwargs):
        restores = (self.load_best and self.best_epoch_ != net.history[-1, "epoch"]
                    and self.best_model_weights_ is not None)
        super().on_train_end(net, **kwargs)
        if restores and getattr(self, "best_criterion_state_", None) is not None:
            net.criterion_.load_state_dict(self.best_criterion_state_)

    def __getstate__(self):
        return {**super().__getstate__(), "best_criterion_state_": None}  # as skorch leaves out the best weights


class _Interrupted(BaseException):
    """Carries the user's ``KeyboardInterrupt`` past ``NeuralNet.partial_fit``, which swallows it."""

    def __init__(self, interrupt):
        super().__init__()
        self.interrupt = interrupt


def loading_device(device):
    """The device a model trained on ``device`` runs on once loaded here: ``device`` itself, or the CPU, with a
    :class:`~sklearn_costs.exceptions.DeviceWarning` saying so, when it is a CUDA device and this machine has none
    (a model trained on a GPU, loaded where there is none). Unpickling and :func:`sklearn_costs.persistence.load`
    both place a model by it."""
    if device is None or torch.device(device).type != "cuda" or torch.cuda.is_available():
        return device
    warnings.warn(
        f"this model was trained on device={str(device)!r}, but PyTorch finds no CUDA device on this machine: it "
        "was loaded onto the CPU, where it predicts the same values. To train it on here (fit, partial_fit, "
        "warm_start), set device='cpu' (or 'auto').",
        DeviceWarning,
        stacklevel=3,
    )
    return "cpu"


class CostNet(NeuralNet):
    """skorch's ``NeuralNet`` trained on :class:`TensorDataset` batches by :class:`SliceLoader`.

    ``autocast_dtype`` runs the module's forward pass under ``torch.autocast`` (mixed precision); the loss is
    always computed in float32 on the float32 output.

    A ``KeyboardInterrupt`` (Ctrl-C) during training reaches the caller: skorch's ``partial_fit`` would catch it
    and return the partly trained net as if training had finished. Only :class:`StopTraining` (early stopping)
    ends the training quietly.

    A net trained on a GPU unpickles where there is none, onto the CPU (see :func:`loading_device`).
    """

    #: Attributes pickled apart and loaded with their tensors mapped to the loading device. skorch lists
    #: ``module_``, ``criterion_`` and ``optimizer_``; the estimators pass the module and the criterion as instances,
    #: so the parameters ``module`` and ``criterion`` are those very objects, and were pickled as plain attributes:
    #: a GPU model then failed to unpickle without CUDA ("Attempting to deserialize object on a CUDA device").
    cuda_dependent_attributes_ = ["module", "criterion"]

    def __init__(self, *args, autocast_dtype=None, **kwargs):
        kwargs.setdefault("dataset", TensorDataset)
        kwargs.setdefault("iterator_train", SliceLoader)
        kwargs.setdefault("iterator_valid", SliceLoader)
        super().__init__(*args, **kwargs)
        self.autocast_dtype = autocast_dtype

    def __setstate__(self, state):
        # skorch maps the CUDA-dependent attributes to the device it is given: the one this machine has
        super().__setstate__({**state, "device": loading_device(state["device"])})

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        try:
            return super().fit_loop(X, y, epochs, **fit_params)
        except StopTraining:
            raise
        except KeyboardInterrupt as interrupt:
            raise _Interrupted(interrupt) from None

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        try:
            return super().partial_fit(X, y, classes, **fit_params)
        except _Interrupted as interrupted:
            raise interrupted.interrupt from None

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch, with one wait for the device per epoch instead of one per batch.

        skorch records each batch's loss as a Python float (``loss.item()``), which makes the host wait for the
        device's every step. Here the batch losses are written into one tensor on the device until the epoch ends
        and then into the history in one transfer, before any ``on_epoch_end`` callback reads them
        (``train_loss`` and ``valid_loss`` are their means). Callbacks still get each batch's loss tensor in
        ``on_batch_end``. One preallocated tensor, not a list of the batches' losses: hundreds of small tensors
        kept alive between the batches' large buffers fragment the CPU allocator's heap, about a batch's worth
        of memory per batch (``tests/test_larger_than_memory.py``).
        """
        if iterator is None:
            return
        losses, count = None, 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            loss = step["loss"].detach()
            if losses is None or count == len(losses):
                extra = loss.new_empty(_expected_batches(iterator, count))
                losses = extra if losses is None else torch.cat([losses, extra])
            losses[count] = loss
            count += 1
            self.history.record_batch(prefix + "_batch_size", len(batch[0]))
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if count:
            values = losses[:count].float().cpu().tolist()
            for row, value in zip(self.history[-1]["batches"][-count:], values):
                row[prefix + "_loss"] = value
        self.history.record(prefix + "_batch_count", count)

    def get_dataset(self, X, y=None):
        if isinstance(X, TensorDataset):
            return X
        return TensorDataset(X, y)  # prediction (y None) or skorch's own calls

    def infer(self, x, **fit_params):
        if self.autocast_dtype is None:
            return super().infer(x, **fit_params)
        device_type = torch.device(self.device).type
        with torch.autocast(device_type=device_type, dtype=self.autocast_dtype):
            output = super().infer(x, **fit_params)
        return output.float()

    def _set_training(self, training=True):
        # skorch sets the mode before every batch, and Module.train walks every submodule: for a small network
        # that is a tenth of the step. Only a change of mode needs the walk.
        modules = [getattr(self, name + "_", None) for name in self._modules + self._criteria]
        if any(isinstance(m, torch.nn.Module) and m.training != training for m in modules):
            super()._set_training(training)


def _expected_batches(iterator, seen):
    """How many more batch losses to make room for: the iterator's length where it has one, else as many again
    as seen so far (at least 64)."""
    try:
        return max(len(iterator) - seen, seen, 1)  # a length that fell short: double, not one by one
    except TypeError:
        return max(seen, 64)


class IdentityBatchLoader(SliceLoader):
    """Batches of ``P`` identities x ``K`` images each (P = batch_size // K), so that every batch holds positives
    and negatives to mine. Each epoch visits every image once: identities are shuffled, each identity's images are
    shuffled and cut into groups of ``K`` (the last group may be smaller; an identity with one image still serves
    as a negative), and batches take groups of ``P`` different identities.
    """

    def __init__(self, dataset, batch_size=128, shuffle=True, seed=None, images_per_identity=4):
        super().__init__(dataset, batch_size=batch_size, shuffle=shuffle, seed=seed)
        self.images_per_identity = images_per_identity
        labels = dataset.y.cpu().numpy()
        self._members = [np.flatnonzero(labels == c) for c in np.unique(labels)]

    def _identities_per_batch(self):
        return max(2, self.batch_size // self.images_per_identity)

    def __len__(self):
        # Round r takes one group from every identity that has more than r groups: counted without drawing
        # from the generator, so asking for the length never changes the batches.
        groups = np.array([-(-len(m) // self.images_per_identity) for m in self._members])
        p = self._identities_per_batch()
        return int(sum(-(-int(np.sum(groups > r)) // p) for r in range(groups.max(initial=0))))

    def _batches(self):
        k = self.images_per_identity
        p = self._identities_per_batch()
        rng = np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=self.generator)))
        queues = []
        for members in self._members:
            members = rng.permutation(members) if self.shuffle else members
            queues.append([members[i : i + k] for i in range(0, len(members), k)])
        batches = []
        while any(queues):
            order = [i for i in (rng.permutation(len(queues)) if self.shuffle else range(len(queues))) if queues[i]]
            for start in range(0, len(order), p):
                batches.append(np.concatenate([queues[i].pop(0) for i in order[start : start + p]]))
        return batches

    def __iter__(self):
        X = self.dataset.X
        for index in self._batches():
            index = torch.as_tensor(index, device=X.device)
            yield X[index], self.dataset.targets(index)
