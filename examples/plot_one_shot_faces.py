"""
One-shot face recognition with a triplet embedding
==================================================

To recognise a person from a single photo, compare photos in a space where the same person is near and
different people are far. ``TripletEmbedder`` learns that space with the triplet loss
:math:`\\max(0, d(a, p) - d(a, n) + \\alpha)` over anchor, positive (same person) and negative (someone else)
images; then a 1-nearest-neighbour classifier, fitted on one photo per person, recognises the rest.

The people we test on are never seen in training. The example uses the Olivetti faces when the project's data
folder is present (``sklearn_costs.datasets.load_faces``) and scikit-learn's bundled digits otherwise, so it runs
anywhere.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from sklearn_costs import TripletEmbedder
from sklearn_costs.datasets import DataNotFoundError, load_faces
from sklearn_costs.plotting import plot_embedding_2d, plot_nearest_neighbors

try:
    faces = load_faces("olivetti")
    images, people = faces.images.astype(np.float32) / 255.0, faces.target
    # 64x64 photos averaged over 4x4 blocks to 16x16: with 30 people to learn from, the coarse picture
    # generalises better to new people (and trains in seconds)
    images = images.reshape(-1, 16, 4, 16, 4).mean(axis=(2, 4))
    source = "Olivetti faces"
except DataNotFoundError:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, people = digits.images.astype(np.float32), digits.target
    source = "digits (the face data are not on this machine)"

rng = np.random.default_rng(0)
identities = rng.permutation(np.unique(people))
test_ids = identities[: len(identities) // 4]
seen = ~np.isin(people, test_ids)
print(f"{source}: {len(images)} images of {len(identities)} identities; {len(test_ids)} held out for testing")

# %%
# Train on the seen identities
# ----------------------------
# Image-shaped input selects the small CNN (two blocks suit 16x16 or 8x8 images). Batches hold several images of
# several people (P x K), so that the semi-hard miner always finds positives and negatives. With ten photos per
# person, random small rotations, scalings and shifts (``augment=True``) are what keeps the network from
# memorising the training people. ``loss="triplet"``: the defaults' ``loss="auto"`` would take the multi-similarity
# loss for 30 people (sklearn_costs.triplet.embedding_loss); this example shows the triplet loss.
embedder = TripletEmbedder(loss="triplet", embedding_dim=32, margin=0.2, cnn_blocks=2, augment=True, max_epochs=15,
                           random_state=0)
embedder.fit(images[seen], people[seen])
print(f"{embedder.n_iter_} epochs; recall@1 on the unseen people: {embedder.score(images[~seen], people[~seen]):.3f}")

# %%
# One-shot recognition in a Pipeline
# ----------------------------------
# Enrol one photo per unseen person, recognise the others by their nearest enrolled photo.
unseen_images, unseen_people = images[~seen], people[~seen]
first = np.array([np.flatnonzero(unseen_people == p)[0] for p in test_ids])
rest = np.setdiff1d(np.arange(len(unseen_people)), first)
pipe = Pipeline([("embed", embedder), ("knn", KNeighborsClassifier(n_neighbors=1))])
pipe.steps[1][1].fit(embedder.transform(unseen_images[first]), unseen_people[first])
accuracy = np.mean(pipe.predict(unseen_images[rest]) == unseen_people[rest])
pixels = KNeighborsClassifier(1).fit(unseen_images[first].reshape(len(first), -1), unseen_people[first])
baseline = np.mean(pixels.predict(unseen_images[rest].reshape(len(rest), -1)) == unseen_people[rest])
print(f"one-shot accuracy: embedding {accuracy:.3f}, raw pixels {baseline:.3f}")

# %%
# ``set_output(transform="pandas")`` names the embedding's columns for a notebook.
embedder.set_output(transform="pandas")
embedder.transform(unseen_images[:3]).iloc[:, :5]

# %%
# Nearest neighbours of a few queries
# -----------------------------------
# Green: the nearest enrolled photo is the same person (a correct one-shot match); red: someone else.
queries = np.array([rest[unseen_people[rest] == p][0] for p in test_ids[:4]])  # four different people
plot_nearest_neighbors(embedder, unseen_images[queries], unseen_images[first], query_labels=unseen_people[queries],
                       gallery_labels=unseen_people[first], n_neighbors=4)
plt.tight_layout()

# %%
# The embedding of the unseen people
# ----------------------------------
embedder.set_output(transform="default")
plot_embedding_2d(embedder.transform(unseen_images), unseen_people)
plt.title("unseen identities, 2-D PCA of the embedding")
plt.tight_layout()
