"""Loaders of the real data sets used by the benchmarks (not shipped: they are read from a data folder).

The folder is ``$SKLEARN_COSTS_DATA`` when set, else the first ``shared/data`` found beside the current directory
or one of its parents (the layout of this project's checkouts). Every loader raises :class:`DataNotFoundError`
naming the path it looked for, so tests and benchmarks can skip with that reason.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

UCI_SETS = {
    # name: (folder, target column, n_splits, hidden units), from the data README
    "concrete": ("concrete", 8, 20, 50),
    "energy": ("energy", 8, 20, 50),
    "yacht": ("yacht", 6, 20, 50),
    "kin8nm": ("kin8nm", 8, 20, 50),
    "naval": ("naval-propulsion-plant", 16, 20, 50),
    "protein": ("protein-tertiary-structure", 9, 5, 100),
}


class DataNotFoundError(FileNotFoundError):
    """A real data set is not on this machine.

    Examples
    --------
    >>> issubclass(DataNotFoundError, FileNotFoundError)
    True
    """


def data_home() -> Path:
    """The folder holding ``spikes/``, ``uci/``, ``faces/`` and ``omniglot/``; raises :class:`DataNotFoundError`
    if none.

    Examples
    --------
    >>> {"faces", "omniglot", "spikes", "uci"} <= {p.name for p in data_home().iterdir() if p.is_dir()}
    True
    """
    env = os.environ.get("SKLEARN_COSTS_DATA")
    if env:
        path = Path(env)
        if path.is_dir():
            return path
        raise DataNotFoundError(f"SKLEARN_COSTS_DATA={env} is not a folder")
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder / "shared" / "data"
        if candidate.is_dir():
            return candidate
    raise DataNotFoundError(
        f"no shared/data folder beside {here} or its parents, and SKLEARN_COSTS_DATA is not set; "
        "the real data sets are not distributed with the package"
    )


def _file(*parts) -> Path:
    path = data_home().joinpath(*parts)
    if not path.is_file():
        raise DataNotFoundError(f"{path} does not exist")
    return path


def load_stevenson_m1():
    """Macaque M1 spike counts in 50 ms bins with hand kinematics (Stevenson et al. 2011; 171 neurons).

    Returns
    -------
    Bunch with ``counts`` (DataFrame, bins x neurons, integer), ``kinematics`` (DataFrame: ``pos_x``, ``pos_y``,
    ``vel_x``, ``vel_y``), ``time`` (ndarray, seconds).

    Examples
    --------
    >>> m1 = load_stevenson_m1()
    >>> m1.counts.shape[1], list(m1.kinematics.columns)
    (171, ['pos_x', 'pos_y', 'vel_x', 'vel_y'])
    """
    from scipy.io import loadmat

    mat = loadmat(_file("spikes", "m1_stevenson_2011.mat"))
    time = mat["time"].ravel()
    counts = pd.DataFrame(mat["spikes"].T.astype(np.int64), columns=[f"n{i:03d}" for i in range(len(mat["spikes"]))])
    kinematics = pd.DataFrame(
        {
            "pos_x": mat["handPos"][0],
            "pos_y": mat["handPos"][1],
            "vel_x": mat["handVel"][0],
            "vel_y": mat["handVel"][1],
        }
    )
    return Bunch(counts=counts, kinematics=kinematics, time=time)


def load_uci(name):
    """One UCI regression set of the predictive-uncertainty benchmark, with its published splits.

    Returns
    -------
    Bunch with ``X``, ``y`` (ndarrays), ``splits`` (list of ``(train_index, test_index)``, drawn as in
    Hernandez-Lobato and Adams 2015), ``hidden_units``.

    Examples
    --------
    >>> energy = load_uci("energy")
    >>> energy.X.shape, len(energy.splits)
    ((768, 8), 20)
    """
    if name not in UCI_SETS:
        raise ValueError(f"unknown UCI set {name!r}; one of {sorted(UCI_SETS)}")
    folder, target, n_splits, hidden = UCI_SETS[name]
    data = np.loadtxt(_file("uci", folder, "data.txt"))
    X = data[:, :target]
    y = data[:, target]
    n = len(data)
    rng = np.random.RandomState(1)  # the stream of the published np.random.seed(1) protocol
    splits = []
    for _ in range(n_splits):
        perm = rng.choice(range(n), n, replace=False)
        cut = int(round(0.9 * n))
        splits.append((perm[:cut], perm[cut:]))
    return Bunch(X=X, y=y, splits=splits, hidden_units=hidden)


def load_faces(name="olivetti"):
    """The Olivetti (64x64) or ORL (112x92) face photographs: 40 people x 10 grey images, uint8.

    Returns
    -------
    Bunch with ``images`` (n, H, W) uint8 and ``target`` (n,) person ids.

    Examples
    --------
    >>> faces = load_faces("olivetti")
    >>> faces.images.shape, len(set(faces.target))
    ((400, 64, 64), 40)
    """
    files = {"olivetti": "olivetti_faces.npz", "orl": "orl_faces_112x92.npz"}
    if name not in files:
        raise ValueError(f"name must be one of {sorted(files)}; got {name!r}")
    with np.load(_file("faces", files[name])) as d:
        return Bunch(images=d["images"], target=d["target"])


def load_omniglot(alphabets=None):
    """The handwritten characters of Lake et al.'s two small background sets: 8 alphabets, 242 characters, 20
    drawings of each by 20 people, as the 105x105 images they come in.

    Greek and Latin stand in both zips with the same characters; each drawing is kept once. Reading the PNGs
    needs Pillow (installed with matplotlib).

    Parameters
    ----------
    alphabets : list of str or None, default=None
        Read only these alphabets' drawings (a fraction of the time): any of ``"Balinese"``, ``"Early_Aramaic"``,
        ``"Greek"``, ``"Japanese_(katakana)"``, ``"Korean"``, ``"Latin"``, ``"Sanskrit"``, ``"Tagalog"``. None:
        all eight.

    Returns
    -------
    Bunch with ``images`` (4840, 105, 105) uint8 with ink as 1 and paper as 0, ``target`` (n,) character names
    ``"<alphabet>/<characterNN>"``, ``alphabet`` (n,) and ``drawer`` (n,) int, the person who drew it.

    Examples
    --------
    >>> omniglot = load_omniglot()
    >>> omniglot.images.shape, len(set(omniglot.target)), len(set(omniglot.alphabet))
    ((4840, 105, 105), 242, 8)
    >>> load_omniglot(alphabets=["Tagalog"]).images.shape
    (340, 105, 105)
    """
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - Pillow comes with matplotlib
        raise ImportError("load_omniglot reads PNG files with Pillow: pip install pillow") from error
    wanted = None if alphabets is None else ([alphabets] if isinstance(alphabets, str) else list(alphabets))
    if wanted == []:
        raise ValueError("alphabets is empty: give the names of the alphabets to read, or None for all eight")
    drawings = {}
    found = set()
    for part in ("images_background_small1.zip", "images_background_small2.zip"):
        with zipfile.ZipFile(_file("omniglot", part)) as archive:
            for name in sorted(archive.namelist()):
                if not name.endswith(".png"):
                    continue
                _, alphabet, character, file = name.split("/")
                found.add(alphabet)
                key = (alphabet, character, file)
                if key not in drawings and (wanted is None or alphabet in wanted):
                    with Image.open(io.BytesIO(archive.read(name))) as image:
                        drawings[key] = np.asarray(image.convert("L")) < 128  # ink is black
    unknown = sorted(set(wanted or ()) - found)
    if unknown:
        raise ValueError(f"alphabets {unknown} are not in the Omniglot background sets; they hold {sorted(found)}")
    keys = sorted(drawings)
    return Bunch(
        images=np.stack([drawings[k] for k in keys]).astype(np.uint8),
        target=np.array([f"{a}/{c}" for a, c, _ in keys]),
        alphabet=np.array([a for a, _, _ in keys]),
        drawer=np.array([int(f.split("_")[1].split(".")[0]) for _, _, f in keys]),
    )
