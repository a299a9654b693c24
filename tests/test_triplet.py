import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from sklearn_costs import TrainingDivergedError, TripletEmbedder
from sklearn_costs._training import IdentityBatchLoader, TensorDataset
from sklearn_costs.losses import ContrastiveLoss
from sklearn_costs.metrics import few_shot_accuracy, one_shot_accuracy, recall_at_1
from sklearn_costs.modules import ImageAugment, SmallCNN


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.images.astype(np.float32), d.target


def quick(**kw):
    kw.setdefault("n_members", 1)
    kw.setdefault("max_epochs", 8)
    kw.setdefault("random_state", 0)
    kw.setdefault("embedding_dim", 16)
    return TripletEmbedder(**kw)


def test_images_pick_the_cnn_and_tables_the_mlp(digits):
    images, labels = digits
    on_images = quick(max_epochs=2).fit(images[:300], labels[:300])
    assert any(isinstance(m, SmallCNN) for m in on_images.net_.module_.modules())
    assert on_images.input_shape_ == (1, 8, 8) and on_images.n_features_in_ == 64
    flat = images[:300].reshape(300, -1)
    on_rows = quick(max_epochs=2).fit(flat, labels[:300])
    assert not any(isinstance(m, SmallCNN) for m in on_rows.net_.module_.modules())
    with_shape = quick(max_epochs=2, image_shape=(8, 8)).fit(flat, labels[:300])
    assert any(isinstance(m, SmallCNN) for m in with_shape.net_.module_.modules())
    four_d = quick(max_epochs=2).fit(images[:300, None], labels[:300])
    np.testing.assert_allclose(four_d.transform(images[:5, None]), on_images.transform(images[:5]), rtol=1e-5)


def test_embedding_separates_identities_it_was_trained_on(digits):
    images, labels = digits
    model = quick(module="mlp", max_epochs=30).fit(images[:1200], labels[:1200])
    emb = model.transform(images[1200:])
    assert emb.shape == (597, 16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)  # L2-normalised
    assert model.score(images[1200:], labels[1200:]) > 0.9
    assert model.score(images[1200:], labels[1200:]) == pytest.approx(recall_at_1(emb, labels[1200:]))


def test_few_shot_accuracy_matches_the_exact_expectation_over_enrolments():
    from itertools import combinations, product

    embeddings = np.array([[0.0], [1.0], [4.0], [3.0], [6.0], [7.0]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    for shots in (1, 2):
        exact = []
        for enrolled in product(combinations([0, 1, 2], shots), combinations([3, 4, 5], shots)):
            enrolled = list(sum(enrolled, ()))
            queries = np.setdiff1d(np.arange(6), enrolled)
            knn = KNeighborsClassifier(n_neighbors=1).fit(embeddings[enrolled], labels[enrolled])
            exact.append(np.mean(knn.predict(embeddings[queries]) == labels[queries]))
        estimate = few_shot_accuracy(embeddings, labels, shots=shots, n_trials=4000, random_state=1)
        assert estimate == pytest.approx(np.mean(exact), abs=0.015)
    assert 0 < few_shot_accuracy(embeddings, labels, shots=1, n_trials=50) < 1
    assert one_shot_accuracy(embeddings, labels) == few_shot_accuracy(embeddings, labels, shots=1)
    # a label with exactly `shots` samples is always enrolled: a distractor without queries
    with_gallery = few_shot_accuracy(np.vstack([embeddings, [[0.5]]]), np.append(labels, 2), n_trials=200)
    assert with_gallery < few_shot_accuracy(embeddings, labels, n_trials=200)
    with pytest.raises(ValueError, match="label 0 has 3 samples; 4-shot accuracy enrols 4"):
        few_shot_accuracy(embeddings, labels, shots=4)
    with pytest.raises(ValueError, match="no sample is left to classify"):
        few_shot_accuracy(embeddings, labels, shots=3)
    with pytest.raises(ValueError, match="shots must be a positive integer"):
        few_shot_accuracy(embeddings, labels, shots=0)


def test_one_shot_pipeline_with_knn(digits):
    images, labels = digits
    train = labels < 6
    pipe = make_pipeline(quick(module="mlp", max_epochs=20), KNeighborsClassifier(1))
    pipe.fit(images[train], labels[train])
    # one-shot on new identities: enrol one image of each unseen class, recognise the rest
    new = np.flatnonzero(~train)
    enrolled = np.array([new[labels[new] == c][0] for c in range(6, 10)])
    queries = np.setdiff1d(new, enrolled)
    knn = KNeighborsClassifier(1).fit(pipe[0].transform(images[enrolled]), labels[enrolled])
    accuracy = knn.score(pipe[0].transform(images[queries]), labels[queries])
    assert accuracy > 0.4  # 4-way, chance 0.25
    assert one_shot_accuracy(pipe[0].transform(images[new]), labels[new], n_trials=5) > 0.4


def test_set_output_pandas_names_the_embedding(digits):
    images, labels = digits
    model = quick(max_epochs=2, module="mlp").set_output(transform="pandas")
    frame = pd.DataFrame(images[:200].reshape(200, -1), columns=[f"px{i}" for i in range(64)])
    out = model.fit(frame, labels[:200]).transform(frame)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == [f"embedding{i}" for i in range(16)]
    np.testing.assert_array_equal(model.feature_names_in_, frame.columns)


def test_custom_module_and_augmentation(digits):
    images, labels = digits
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8))
    model = quick(module=net, max_epochs=3).fit(images[:300], labels[:300])
    assert model.transform(images[:4]).shape == (4, 8)
    assert net[1].weight.grad is None  # the user's module is copied, not trained in place
    augmented = quick(augment=True, max_epochs=2).fit(images[:300], labels[:300])
    assert any(isinstance(m, ImageAugment) for m in augmented.net_.module_.modules())
    aug = ImageAugment()
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    aug.eval()
    assert torch.equal(aug(x), x)  # no augmentation at prediction time
    aug.train()
    torch.manual_seed(0)
    assert aug(x).shape == x.shape and not torch.equal(aug(x), x)


def test_identities_with_one_image_are_handled(digits):
    images, labels = digits
    X = np.concatenate([images[:200], images[-3:]])
    y = np.concatenate([labels[:200], [100, 101, 102]])  # three identities seen once
    model = quick(max_epochs=3, module="mlp").fit(X, y)
    assert np.isfinite(model.history_["train_loss"]).all()


def test_identity_batches_hold_p_identities_of_k_images():
    labels = torch.tensor(np.repeat(np.arange(10), 6))
    loader = IdentityBatchLoader(TensorDataset(torch.zeros(60, 2), labels), batch_size=16, seed=0,
                                 images_per_identity=4)
    n_batches = len(loader)  # asking for the length must not change the batches drawn
    batches = [y.numpy() for _, y in loader]
    assert n_batches == len(batches)
    again = IdentityBatchLoader(TensorDataset(torch.zeros(60, 2), labels), batch_size=16, seed=0,
                                images_per_identity=4)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in again]), np.concatenate(batches))
    assert sum(len(b) for b in batches) == 60
    seen = np.sort(np.concatenate(batches))
    np.testing.assert_array_equal(seen, np.sort(labels.numpy()))
    first = batches[0]
    assert len(np.unique(first)) == 4 and all(np.sum(first == c) == 4 for c in np.unique(first))


def test_grid_search_over_losses_and_margins(digits):
    images, labels = digits
    search = GridSearchCV(quick(module="mlp", max_epochs=5),
                          {"loss": ["triplet", ContrastiveLoss(margin=1.0)], "margin": [0.1, 0.5]}, cv=2)
    search.fit(images[:400].reshape(400, -1), labels[:400])
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.parametrize(
    "y, message",
    [
        (None, "requires y to be passed"),
        (np.zeros(50), "at least two identities"),
        (np.array([0, 1] * 24 + [None, 1], dtype=object), "missing identity labels \\(first at row 48\\)"),
        (np.array([0.0, 1.0] * 24 + [np.nan, 1.0]), "missing identity labels \\(first at row 48\\)"),
    ],
)
def test_bad_labels_are_refused(digits, y, message):
    images, _ = digits
    with pytest.raises(ValueError, match=message):
        quick().fit(images[:50], y)


def test_wrong_image_shape_names_the_expected_shape(digits):
    images, labels = digits
    model = quick(max_epochs=1).fit(images[:100], labels[:100])
    with pytest.raises(ValueError, match=r"images of shape \(9, 9\) were given.*fitted on images of shape "
                                         r"\(1, 8, 8\)"):
        model.transform(np.zeros((2, 9, 9)))
    with pytest.raises(ValueError, match="image_shape=\\(7, 7\\) does not fit rows of 64 values"):
        quick(image_shape=(7, 7)).fit(images[:100].reshape(100, -1), labels[:100])


def test_pickle_and_reproducibility(digits):
    images, labels = digits
    a = quick(max_epochs=2).fit(images[:200], labels[:200])
    b = quick(max_epochs=2).fit(images[:200], labels[:200])
    np.testing.assert_array_equal(a.transform(images[:20]), b.transform(images[:20]))
    again = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(again.transform(images[:20]), a.transform(images[:20]))


def test_cnn_standardizes_each_image_and_stacks_cnn_blocks(digits):
    from sklearn_costs.modules import StandardizeEachImage

    x = torch.rand(3, 1, 8, 8) * torch.tensor([1.0, 5.0, 0.1])[:, None, None, None] + 7
    z = StandardizeEachImage()(x)
    torch.testing.assert_close(z.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(dim=(1, 2, 3)), torch.ones(3))
    # brighter or higher-contrast copies of a photo embed alike
    images, labels = digits
    model = quick(max_epochs=2, cnn_blocks=2).fit(images[:300], labels[:300])
    pools = [m for m in model.net_.module_.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 2
    np.testing.assert_allclose(model.transform(3 * images[:5] + 10), model.transform(images[:5]), atol=1e-4)
    with pytest.raises(ValueError, match=r"'cnn_blocks' parameter of TripletEmbedder must be an int in the range "
                                         r"\[1, inf\) or a str among \{'auto'\}. Got 0"):
        quick(cnn_blocks=0).fit(images[:300], labels[:300])
    before = model.transform(images[:5])
    with pytest.raises(ValueError, match=r"'cnn_width' parameter of TripletEmbedder must be an int .* Got 2\.5"):
        model.set_params(cnn_width=2.5).fit(images[:300], labels[:300])
    np.testing.assert_array_equal(model.transform(images[:5]), before)  # the failed fit kept the fitted model


def test_augmentation_without_distortion_only_mirrors_and_keeps_flat_images_flat():
    aug = ImageAugment(max_shift=0.0, max_rotation=0.0, max_scale=0.0, flip=True)
    x = torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8).repeat(64, 1, 1, 1)
    torch.manual_seed(0)
    out = aug.train()(x)
    flipped = torch.isclose(out, x.flip(3), atol=1e-4).flatten(1).all(1)
    same = torch.isclose(out, x, atol=1e-4).flatten(1).all(1)
    assert (flipped | same).all() and flipped.any() and same.any()  # no distortion left: only mirror images
    constant = torch.full((4, 1, 16, 16), 0.5)
    torch.testing.assert_close(ImageAugment(max_rotation=30, max_scale=0.3).train()(constant), constant)


def test_embedders_of_several_seeds_side_by_side_in_a_feature_union(digits):
    from sklearn.pipeline import make_union

    images, labels = digits
    members = [quick(module="mlp", embedding_dim=4, max_epochs=2, random_state=seed) for seed in range(2)]
    union = make_union(*members).fit(images[:300], labels[:300])
    out = union.transform(images[300:310])
    assert out.shape == (10, 8)
    np.testing.assert_allclose(out[:, :4], members[0].fit(images[:300], labels[:300]).transform(images[300:310]),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[:, :4], out[:, 4:])  # different seeds, different embeddings
    assert union.get_feature_names_out()[0] == "tripletembedder-1__embedding0"


AUTO = dict(module="auto", input_size="auto", cnn_blocks="auto", cnn_width="auto", n_members="auto", augment="auto",
            max_epochs="auto", n_iter_no_change="auto")


@pytest.mark.parametrize("shape, n, expected", [
    ((1, 8, 8), 1257, dict(module_kind="cnn", input_size=(16, 16), cnn_blocks=2, n_members=5, augment=True)),
    ((1, 64, 64), 300, dict(module_kind="cnn", input_size=(24, 24), cnn_blocks=2, n_members=5, max_epochs=300)),
    ((1, 112, 92), 300, dict(module_kind="cnn", input_size=(24, 20), cnn_blocks=2)),
    ((1, 105, 105), 4840, dict(module_kind="cnn", input_size=(24, 24), n_members=1, max_epochs=79,
                               n_iter_no_change=15)),
    ((3, 200, 50), 100, dict(input_size=(64, 16), cnn_blocks=2)),  # the shorter side stays at 16
    ((64,), 500, dict(module_kind="mlp", input_size=None, cnn_blocks=None, augment=False)),
])
def test_auto_settings_follow_the_data(shape, n, expected):
    from sklearn_costs.triplet import resolve_embedder_settings

    settings = resolve_embedder_settings(shape, n, 128, AUTO)
    assert {k: settings[k] for k in expected} == expected


def test_explicit_values_override_auto(digits):
    images, labels = digits
    explicit = dict(module="cnn", input_size=(8, 8), cnn_blocks=1, cnn_width=4, n_members=2, augment=False,
                    max_epochs=2, n_iter_no_change=7, miner="batch_hard")
    model = TripletEmbedder("triplet", embedding_dim=8, random_state=0, **explicit).fit(images[:200], labels[:200])
    assert {k: getattr(model, ("module_kind" if k == "module" else k) + "_") for k in explicit} == explicit
    assert model.n_iter_ == 2 and model.loss_.miner == "batch_hard"
    convs = [m for m in model.net_.module_.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2 and convs[0].groups == 2 and convs[0].out_channels == 8  # one block, 4 channels x 2
    assert not any(isinstance(m, ImageAugment) for m in model.net_.module_.modules())
    assert model.transform(images[:3]).shape == (3, 16)  # 2 members x 8
    auto = TripletEmbedder(embedding_dim=8, max_epochs=2, random_state=0).fit(images[:200], labels[:200])
    assert (auto.module_kind_, auto.input_size_, auto.cnn_blocks_, auto.n_members_) == ("cnn", (16, 16), 2, 5)


def test_members_train_as_one_network_each_with_its_own_unit_embedding(digits):
    images, labels = digits
    model = quick(n_members=3, max_epochs=3).fit(images[:300], labels[:300])
    emb = model.transform(images[300:320]).reshape(20, 3, 16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=2), 1 / np.sqrt(3), rtol=1e-5)
    # squared distances of the whole embedding are the mean of the members' squared distances (unit members)
    whole = ((emb[0] - emb[1]) ** 2).sum()
    members = ((emb[0] - emb[1]) ** 2).sum(1) * 3
    assert whole == pytest.approx(members.mean(), rel=1e-5)


def test_verbose_prints_the_resolved_settings(digits, capsys):
    images, labels = digits
    quick(max_epochs=1, verbose=1).fit(images[:100], labels[:100])
    out = capsys.readouterr().out
    assert "TripletEmbedder settings: module_kind='cnn', input_size=(16, 16), cnn_blocks=2" in out
    assert "TripletEmbedder loss='auto': 'multi_similarity' (10 identities)" in out


def test_defaults_on_the_digits_protocol_resolve_the_benchmarks_settings(digits):
    """The digits protocol of the demo (train on 0-6, 3-way one-shot on 7-9) with the defaults and one epoch on 300
    of the digits: the 8x8 images are read as images and enlarged to 16x16 for two blocks, five members train side
    by side; on all 1,264 digits 0-6 the rules give the benchmark's fit at most 66 epochs. Whether that fit beats
    raw pixels is ``python benchmarks/faces.py --claims digits-defaults`` (docs/benchmarks.rst)."""
    from sklearn_costs.triplet import resolve_embedder_settings

    images, labels = digits
    seen = labels < 7
    model = TripletEmbedder(max_epochs=1, random_state=0).fit(images[seen][:300], labels[seen][:300])
    assert (model.input_shape_, model.module_kind_, model.input_size_, model.cnn_blocks_, model.n_members_,
            model.augment_) == ((1, 8, 8), "cnn", (16, 16), 2, 5, True)
    emb = model.transform(images[~seen])
    assert emb.shape == (533, 5 * 64) and np.isfinite(emb).all()
    assert one_shot_accuracy(emb, labels[~seen]) > 0.5  # 3-way, chance 0.33
    full = resolve_embedder_settings(model.input_shape_, seen.sum(), model.batch_size, TripletEmbedder().get_params(),
                                     n_identities=7)
    assert (full["n_members"], full["max_epochs"], full["n_iter_no_change"]) == (5, 66, 5)


def test_warm_start_refuses_another_image_shape_or_embedding_size_and_keeps_the_model(digits):
    images, labels = digits
    model = quick(max_epochs=1, warm_start=True, cnn_width=4, cnn_blocks=1).fit(images[:200], labels[:200])
    before = model.transform(images[:20])
    with pytest.raises(ValueError, match=r"input shape changed from \(1, 8, 8\) to \(1, 4, 4\).*warm_start=False"):
        model.fit(images[:200, :4, :4], labels[:200])
    with pytest.raises(ValueError, match=r"embedding_dim changed from 16 to 8.*warm_start=False"):
        model.set_params(embedding_dim=8).fit(images[:200], labels[:200])
    np.testing.assert_array_equal(model.transform(images[:20]), before)
    assert model.input_shape_ == (1, 8, 8) and model.n_iter_ == 1
    # other identities (the network has no output per identity) continue the same network
    model.set_params(embedding_dim=16).fit(images[200:400], labels[200:400] + 100)
    assert model.n_iter_ == 2 and model.transform(images[:3]).shape == (3, 16)


@pytest.mark.parametrize(
    "params, what",
    [
        ({"optimizer": "adam", "lr": 1e6, "normalize": False}, "training loss"),
        ({"optimizer": "sgd", "lr": 100.0, "normalize": False}, "(training|validation) loss"),
        ({"optimizer": "adam", "lr": 1e6}, "weights"),  # normalised embeddings: the loss cannot run away
        # the batched MLP members overflow within the first epoch's batches: the batch guard stops them there
        ({"optimizer": "sgd", "lr": 100.0, "module": "mlp", "normalize": False},
         "(training loss became nan|validation loss ran away) at epoch 1"),
    ],
)
def test_a_runaway_fit_is_stopped_and_the_previous_embedder_kept(digits, params, what):
    images, labels = digits
    # the triplet loss: how each run away shows (the loss, the weights) depends on the loss
    model = quick(loss="triplet", max_epochs=1, cnn_width=4, cnn_blocks=1, hidden_layer_sizes=(16,)).fit(
        images[:200], labels[:200])
    before = model.transform(images[:20])
    with pytest.raises(TrainingDivergedError, match=f"({what} ran away at epoch 1|{what}).*lower learning rate"):
        model.set_params(max_epochs=4, **params).fit(images[:200], labels[:200])
    np.testing.assert_array_equal(model.transform(images[:20]), before)


class _InfiniteAtPrediction(torch.nn.Module):
    """Trains normally, but its embeddings in evaluation mode are not finite."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(64, 4)

    def forward(self, x):
        z = self.linear(x.flatten(1))
        return z if self.training else z * float("inf")


def test_embeddings_that_are_not_finite_on_the_training_data_stop_the_fit(digits):
    images, labels = digits
    model = quick(module=_InfiniteAtPrediction(), normalize=False, early_stopping=False, max_epochs=2)
    with pytest.raises(TrainingDivergedError, match=r"predictions on its training data are not finite"):
        model.fit(images[:200], labels[:200])
    assert not hasattr(model, "net_")


SMALL_CNN = dict(input_size=(8, 8), cnn_blocks=1, cnn_width=4)


def test_identities_seen_once_each_are_refused_with_what_is_needed(digits):
    """Ten identities of one image each hold no pair: the loss was 0 in every epoch and nothing was learned."""
    images, labels = digits
    first = np.unique(labels, return_index=True)[1]
    with pytest.raises(ValueError, match="each of the 10 identities in y has a single sample.*at least one "
                                         "identity two or more samples"):
        quick(max_epochs=2, module="mlp").fit(images[first], labels[first])
    one_pair = np.concatenate([first, [first[0] + 10]])  # a second image of one digit is enough to learn from
    assert labels[first[0] + 10] == labels[first[0]]
    assert quick(max_epochs=2, module="mlp").fit(images[one_pair], labels[one_pair]).n_iter_ == 2


@pytest.mark.parametrize("layout", ["channels_last", "channels_first", "flat_with_image_shape"])
def test_colour_images_are_read_in_either_channel_order(digits, layout):
    """(n, 8, 8, 3) was read as 8 channels of 8x3 pixels and resized to 43x16; one rule reads every layout."""
    from sklearn_costs.triplet import image_layout

    images, labels = digits
    rgb = np.stack([images[:60], images[:60] * 0.5, 16 - images[:60]], axis=-1)  # (n, 8, 8, 3)
    given = {"channels_last": rgb, "channels_first": rgb.transpose(0, 3, 1, 2),
             "flat_with_image_shape": rgb.reshape(60, -1)}[layout]
    image_shape = (8, 8, 3) if layout.startswith("flat") else None
    model = quick(max_epochs=1, cnn_width=4, image_shape=image_shape).fit(given, labels[:60])
    assert model.input_shape_ == (3, 8, 8) and model.input_size_ == (16, 16)
    reference = quick(max_epochs=1, cnn_width=4).fit(rgb.transpose(0, 3, 1, 2), labels[:60])
    np.testing.assert_allclose(model.transform(given[:5]), reference.transform(rgb[:5].transpose(0, 3, 1, 2)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.transform(rgb[:5]), model.transform(rgb[:5].transpose(0, 3, 1, 2)))
    assert image_layout((28, 28, 1)) == ((1, 28, 28), True) and image_layout((1, 28, 28)) == ((1, 28, 28), False)
    assert image_layout((64,)) == (None, False)


def test_cnn_on_table_rows_names_the_fix(digits):
    images, labels = digits
    with pytest.raises(ValueError, match=r"module='cnn' needs images, but X holds table rows of 64 values.*"
                                         r"image_shape=\(H, W\).*module='mlp'"):
        quick(module="cnn", max_epochs=1).fit(images[:100].reshape(100, -1), labels[:100])


def test_flat_rows_given_to_an_embedder_fitted_on_images_name_the_reshape(digits):
    images, labels = digits
    model = quick(max_epochs=1, **SMALL_CNN).fit(images[:60], labels[:60])
    with pytest.raises(ValueError, match=r"fitted on images of shape \(1, 8, 8\).*flat rows of 64 values.*"
                                         r"X.reshape\(len\(X\), 1, 8, 8\)"):
        model.transform(images[:5].reshape(5, -1))
    # flat rows are images when image_shape says how to read them, in fit and in transform alike
    on_rows = quick(max_epochs=1, image_shape=(8, 8), **SMALL_CNN).fit(images[:60].reshape(60, -1), labels[:60])
    np.testing.assert_allclose(on_rows.transform(images[:5].reshape(5, -1)), on_rows.transform(images[:5]))
    with pytest.raises(ValueError, match=r"images of shape \(2, 32\) were given.*fitted on images of shape "
                                         r"\(1, 8, 8\)"):
        on_rows.set_params(image_shape=(2, 32)).transform(images[:5].reshape(5, -1))


def test_epochs_count_the_steps_of_identity_batches():
    """Seven digits fill a batch of 128 with 28 images: an epoch of 1,264 images is 46 steps, not 10, and 3000
    steps are 66 epochs (it was 300, 248 s); data with enough identities to fill a batch keeps its epochs."""
    from sklearn_costs.triplet import resolve_embedder_settings, steps_per_epoch

    assert steps_per_epoch(1264, 128, n_identities=7) == 46 and steps_per_epoch(1264, 128) == 10
    digits = resolve_embedder_settings((1, 8, 8), 1264, 128, AUTO, n_identities=7)
    assert (digits["max_epochs"], digits["n_iter_no_change"]) == (66, 5)
    assert resolve_embedder_settings((1, 64, 64), 300, 128, AUTO, n_identities=30)["max_epochs"] == 300  # Olivetti
    assert resolve_embedder_settings((1, 105, 105), 4840, 128, AUTO, n_identities=1200)["max_epochs"] == 79


def test_patience_is_shorter_where_early_stopping_holds_out_rows_of_each_identity():
    """Below ten identities the validation rows belong to identities that train, and their loss keeps falling
    after the embedding of new identities has stopped improving: a twelfth of the epochs, not a fifth."""
    from sklearn_costs._training import MIN_IDENTITIES_HELD_OUT_WHOLE
    from sklearn_costs.triplet import early_stopping_patience

    few, many = MIN_IDENTITIES_HELD_OUT_WHOLE - 1, MIN_IDENTITIES_HELD_OUT_WHOLE
    assert [early_stopping_patience(66, n) for n in (few, many, None)] == [5, 13, 13]
    assert [early_stopping_patience(300, n) for n in (few, many)] == [25, 60]
    assert [early_stopping_patience(20, n) for n in (few, many)] == [5, 10]  # the floors
    rng = np.random.default_rng(0)
    for n_identities, patience in [(few, 5), (many, 10)]:  # the fit's own count of identities reaches the rule
        labels = np.repeat(np.arange(n_identities), 6)
        model = TripletEmbedder(module="mlp", max_epochs=2, random_state=0).fit(rng.normal(size=(len(labels), 6)),
                                                                                labels)
        assert model.n_iter_no_change_ == patience
        assert dict(model.net_.callbacks_)["early_stopping"].patience == patience


def test_early_stopping_holds_out_whole_identities_or_with_few_of_them_a_share_of_each():
    from sklearn_costs._training import MIN_IDENTITIES_HELD_OUT_WHOLE, TensorDataset, ValidationSplit

    def split(n_identities, rows_each):
        labels = torch.arange(n_identities).repeat_interleave(rows_each)
        train, valid = ValidationSplit(0.1, "groups", seed=0)(TensorDataset(torch.zeros(len(labels), 2), labels))
        return set(train.y.tolist()), valid.y

    train, valid = split(MIN_IDENTITIES_HELD_OUT_WHOLE + 6, 10)  # whole identities: none of them also trains
    assert len(set(valid.tolist())) == 2 and not train & set(valid.tolist())
    train, valid = split(MIN_IDENTITIES_HELD_OUT_WHOLE - 1, 10)  # every identity trains, one row of each held out
    assert train == set(range(MIN_IDENTITIES_HELD_OUT_WHOLE - 1))
    assert sorted(valid.tolist()) == list(range(MIN_IDENTITIES_HELD_OUT_WHOLE - 1))
    train, valid = split(2, 1)  # one row each: nothing of an identity to spare, so random rows
    assert len(train) == len(valid) == 1


def test_the_recipe_benchmark_sets_rule_constants_and_refuses_unknown_ones(monkeypatch):
    from pathlib import Path

    import sklearn_costs._embedder_settings as settings
    import sklearn_costs._training as training

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "benchmarks"))
    monkeypatch.setattr(settings, "TARGET_STEPS", settings.TARGET_STEPS)  # restored after the test
    monkeypatch.setattr(training, "MIN_IDENTITIES_HELD_OUT_WHOLE", training.MIN_IDENTITIES_HELD_OUT_WHOLE)
    for name in ("POOL_GRID", "AUGMENT_MAX_ROTATION", "MULTI_SIMILARITY_MAX_IDENTITIES"):
        monkeypatch.setattr(settings, name, getattr(settings, name))
    recipe = __import__("recipe")
    recipe.apply_rules(["TARGET_STEPS=6000", "MIN_IDENTITIES_HELD_OUT_WHOLE=10", "POOL_GRID=2",
                        "AUGMENT_MAX_ROTATION=20"])
    assert settings.TARGET_STEPS == 6000 and training.MIN_IDENTITIES_HELD_OUT_WHOLE == 10
    # the network's constants reach the network built by the next fit
    digits = load_digits()
    model = TripletEmbedder(embedding_dim=4, n_members=2, max_epochs=1, random_state=0).fit(
        digits.images[:60], digits.target[:60])
    cnn, = (m for m in model.net_.module_.modules() if isinstance(m, SmallCNN))
    augment, = (m for m in model.net_.module_.modules() if isinstance(m, ImageAugment))
    assert cnn.pool_grid == 2 and augment.max_rotation == 20.0 and augment.max_shift == settings.AUGMENT_MAX_SHIFT
    # --tta: the mean of augmented views, each member's part renormalised; the network is left in eval mode
    images = digits.images[60:70]
    np.testing.assert_allclose(recipe.augmented_embedding(model, images, 0), model.transform(images), rtol=1e-5)
    views = recipe.augmented_embedding(model, images, 3).reshape(10, 2, 4)
    np.testing.assert_allclose(np.linalg.norm(views, axis=2), np.sqrt(0.5), rtol=1e-5)
    assert not np.allclose(views.reshape(10, 8), model.transform(images)) and not augment.training
    with pytest.raises(ValueError, match="--tta needs a CNN trained with augmentation"):
        recipe.augmented_embedding(model.set_params(augment=False).fit(digits.images[:60], digits.target[:60]),
                                   images, 3)
    for bad in ("NO_SUCH_RULE=1", "TARGET_STEPS", "np=1"):
        with pytest.raises(ValueError, match="NAME=VALUE"):
            recipe.apply_rules([bad])
    recipe.apply_rules(["MULTI_SIMILARITY_MAX_IDENTITIES=3"])  # loss="auto" takes the threshold set
    assert type(TripletEmbedder(loss="auto", embedding_dim=4, max_epochs=1, random_state=0).fit(
        digits.images[:60], digits.target[:60]).loss_).__name__ == "TripletLoss"
    # --identities: the training rows of that many of the split's identities, the same draw every time
    labels = np.repeat(np.arange(10), 3)
    train = labels < 8
    kept = recipe.some_identities(labels, train, 5, random_state=1)
    assert len(np.unique(labels[kept])) == 5 and not (kept & ~train).any()
    assert np.bincount(labels[kept]).max() == 3  # whole identities
    np.testing.assert_array_equal(kept, recipe.some_identities(labels, train, 5, random_state=1))
    with pytest.raises(ValueError, match="trains on 2 to 8 identities"):
        recipe.some_identities(labels, train, 9)


def test_the_recipe_benchmark_scores_every_epoch_and_replays_early_stopping(monkeypatch):
    """--curve and --patience: the weights of every epoch, scored; a replay with the fit's own patience ends
    where the fit ended and restores the epoch the fit restored."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "benchmarks"))
    recipe = __import__("recipe")
    from patience import replay

    digits = load_digits()

    def accuracy(embedding):
        return one_shot_accuracy(embedding, digits.target[90:150])

    params = {"embedding_dim": 4, "n_members": 1, "max_epochs": 30, "n_iter_no_change": 2}
    threads = torch.get_num_threads()
    try:
        row = recipe._fit_and_score(digits.images[:90], digits.target[:90], digits.images[90:150], accuracy, 0,
                                    params, [], {"curve": 1, "patience": [1, 2]})
        with pytest.raises(ValueError, match="longer than the fit's own patience"):
            recipe._fit_and_score(digits.images[:90], digits.target[:90], digits.images[90:150], accuracy, 0,
                                  params, [], {"patience": [3]})
        with pytest.raises(ValueError, match="this fit had none"):
            recipe._fit_and_score(digits.images[:90], digits.target[:90], digits.images[90:150], accuracy, 0,
                                  {**params, "early_stopping": False, "max_epochs": 2}, [], {"patience": [1]})
    finally:
        torch.set_num_threads(threads)
    assert row["epochs"] < 30  # early stopping ended the fit: its last epoch is scored too
    assert list(row["curve"]) == list(range(1, row["epochs"] + 1))
    assert row["patience"][2] == (round(row["one-shot"], 4), row["epochs"])
    best_at, epochs = replay(row["valid_loss"], 1)
    assert row["patience"][1] == (row["curve"][best_at + 1], epochs) and epochs < row["epochs"]
    lines = recipe.measured_lines([row, row])
    assert lines[0].startswith("one-shot by epoch (fits that ran so long): 1: ") and "(2)" in lines[0]
    assert lines[2] == f"patience 2: {row['epochs']:.1f} epochs ({row['epochs']}-{row['epochs']}), one-shot " \
                       f"{row['one-shot']:.3f}"


@pytest.mark.parametrize("pool_grid", [1, 3])
def test_cnn_members_side_by_side_are_separate_networks_and_pool_to_their_grid(pool_grid):
    torch.manual_seed(0)
    grouped = SmallCNN(1, 5, width=4, blocks=2, members=2, pool_grid=pool_grid).eval()
    alone = [SmallCNN(1, 5, width=4, blocks=2, pool_grid=pool_grid).eval() for _ in range(2)]
    for m, net in enumerate(alone):  # member m's weights: the m-th group of each grouped layer
        for mine, theirs in zip(net.state_dict().values(), grouped.state_dict().values()):
            if mine.ndim:  # every grouped tensor holds the members one after the other along its first axis
                mine.copy_(theirs.reshape(2, -1)[m].reshape(mine.shape))
    x = torch.randn(6, 2, 24, 24)
    np.testing.assert_allclose(grouped(x).detach().numpy(), torch.cat(
        [alone[0](x[:, :1]), alone[1](x[:, 1:])], dim=1).detach().numpy(), rtol=1e-5, atol=1e-6)
    features = alone[0].features(x[:, :1])  # (6, 8, 6, 6): a grid of cells of 2x2 when pool_grid is 3
    pooled = features.reshape(6, 8, pool_grid, 6 // pool_grid, pool_grid, 6 // pool_grid).mean(dim=(3, 5))
    np.testing.assert_allclose(alone[0](x[:, :1]).detach().numpy(),
                               alone[0].out(pooled.reshape(6, -1)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_cnn_feature_maps_are_channels_last_with_the_values_of_the_default_layout():
    torch.manual_seed(0)
    last = SmallCNN(1, 6, width=4, blocks=2, members=2)
    first = SmallCNN(1, 6, width=4, blocks=2, members=2, channels_last=False)
    first.load_state_dict(last.state_dict())
    conv = last.features[3].weight  # the second convolution: 4 input channels a member
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    x = torch.randn(8, 2, 12, 12)
    out_last, out_first = last(x), first(x)
    np.testing.assert_allclose(out_last.detach().numpy(), out_first.detach().numpy(), rtol=1e-5, atol=1e-6)
    out_last.pow(2).sum().backward()
    out_first.pow(2).sum().backward()
    scale = float(conv.grad.abs().max())  # summed in another order: near-zero entries differ by rounding alone
    np.testing.assert_allclose(conv.grad.numpy(), first.features[3].weight.grad.numpy(), rtol=1e-4,
                               atol=1e-5 * scale)
    del last.channels_last  # a network saved before the layout existed: the class's default, channels first
    np.testing.assert_allclose(last(x.contiguous()).detach().numpy(), out_first.detach().numpy(), rtol=1e-5,
                               atol=1e-6)
