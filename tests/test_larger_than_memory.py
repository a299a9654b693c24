"""Data larger than the memory a process may allocate: a memory-mapped count matrix trains without being copied
(``fit`` on ``np.load(..., mmap_mode="r")``), and so do chunks of it (``partial_fit``), in a subprocess whose
anonymous memory (``RLIMIT_DATA``: heap and private mappings, not the file's pages) is capped below the size of
the counts."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA and /proc: Linux only")

ROWS, NEURONS, FEATURES, BLOCK = 250_000, 256, 8, 50_000
HEADROOM = 45_000_000  # bytes of anonymous memory the fit may add: less than the 64 MB of counts (it needs 20-30)

PROBE = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from sklearn_costs import PoissonSpikeRegressor

    def data_bytes():
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return int(fields["VmData"].split()[0]) * 1024

    x_path, y_path, mode, headroom = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    X, Y = np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r")
    make = lambda: PoissonSpikeRegressor(hidden_layer_sizes=(16,), n_members=1, batch_size=512, max_epochs=1,
                                         random_state=0)
    make().fit(X[:2000], Y[:2000])  # imports, the allocator's first arenas: before the cap
    limit = data_bytes() + headroom
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    try:
        np.array(Y)
        print("COPY FITS")  # the cap would not prove anything
    except MemoryError:
        pass
    model = make()
    if mode == "fit":
        model.fit(X, Y)
    else:
        chunk = len(X) // 4
        for start in range(0, len(X), chunk):  # contiguous chunks, each shuffled within by the fit
            model.partial_fit(X[start : start + chunk], Y[start : start + chunk])
    resource.setrlimit(resource.RLIMIT_DATA, (hard, hard))  # trained under the cap: the score is not the point
    print("D2", model.score(np.asarray(X[-5_000:]), np.asarray(Y[-5_000:])), model.n_iter_)
""")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recording")
    rng = np.random.default_rng(0)
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float32, shape=(ROWS, FEATURES))
    Y = np.lib.format.open_memmap(folder / "Y.npy", mode="w+", dtype=np.uint8, shape=(ROWS, NEURONS))
    W = rng.normal(scale=0.5, size=(FEATURES, NEURONS))
    x = rng.normal(size=(BLOCK, FEATURES)).astype(np.float32)
    y = rng.poisson(np.exp(-1.0 + np.tanh(x @ W))).astype(np.uint8)
    for start in range(0, ROWS, BLOCK):
        X[start : start + BLOCK], Y[start : start + BLOCK] = x, y
    X.flush()
    Y.flush()
    del X, Y
    return folder / "X.npy", folder / "Y.npy"


@pytest.mark.parametrize("mode", ["fit", "partial_fit"])
def test_a_memory_mapped_recording_larger_than_the_memory_cap_trains(recording, mode):
    out = subprocess.run([sys.executable, "-c", PROBE, *map(str, recording), mode, str(HEADROOM)],
                         capture_output=True, text=True, env={**os.environ, "MALLOC_ARENA_MAX": "2"}, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "COPY FITS" not in out.stdout, "the cap did not stop a copy of the counts: it proves nothing"
    d2, epochs = out.stdout.split("D2")[-1].split()
    assert float(d2) > 0.1  # one epoch of a small network learns the rates (0.14 on this machine, either way)
    assert int(epochs) == (1 if mode == "fit" else 4)
