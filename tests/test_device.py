"""benchmarks/device_check.py: its quick mode on the CPU writes the whole check (the GPU run is the real one)."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
device_check = pytest.importorskip("device_check")


@pytest.mark.slow  # 17 fits of tiny data (a CNN among them), reading Omniglot, collecting one test module: 5-10 s
def test_the_quick_check_on_the_cpu_writes_tests_table_and_omniglot_fit(tmp_path, capsys):
    # in this process (the script's own imports are done), as `python benchmarks/device_check.py --device cpu
    # --quick` runs it; its part 1 starts pytest in a subprocess
    printed = device_check.main(["--device", "cpu", "--quick", "--out", str(tmp_path / "check.md")])
    text = (tmp_path / "check.md").read_text()
    assert text == printed and text in capsys.readouterr().out
    assert "## Tests" in text and "tests collected" in text and "(exit code 0" in text
    table = [line for line in text.split("## Training throughput")[1].split("##")[0].splitlines()
             if line.startswith("| ") and "rows/s" not in line]
    assert len(table) == 8  # 2 models x 2 batch sizes x 2 precisions
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2] in ("float32", "bfloat16")
        assert all(float(c.replace(",", "")) > 0 for c in cells[-3:])  # fit, bare loop, their ratio
    assert "## Default TripletEmbedder on Omniglot" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_cuda_check_without_cuda_says_how_to_run_it(capsys):
    with pytest.raises(SystemExit):
        device_check.main(["--device", "cuda"])
    assert "PyTorch finds no CUDA device here" in capsys.readouterr().err
