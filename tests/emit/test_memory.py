"""The memory guard: build, train and export compare what netspec summary says a model
needs (parameters, buffers, one batch) with the memory available, and refuse before
allocating anything unless told to go ahead (--ignore-memory, ignore_memory=True).

The available memory is faked (netspec.memory.available patched) so that small models
trip the guard on any machine; the real `input: [3, 100000, 100000]` case runs as a
process whose peak memory is measured."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import netspec
from netspec.cli import main
from netspec.emit import memory
from netspec.emit.summary import summarize
from netspec.train import train

ROOT = Path(__file__).resolve().parents[2]
TINY = """netspec: 1
name: Tiny
input: [1, 8, 8]
layers:
  - Flatten
  - Linear: {out_features: 32}
  - ReLU
  - Linear: {out_features: 10}
"""
HUGE_INPUT = """netspec: 1
name: HugeInput
input: [3, 100000, 100000]
layers:
  - Conv2d: {out_channels: 2, kernel_size: 3}
  - AdaptiveAvgPool2d: 1
  - Flatten
  - Linear: {out_features: 10}
"""


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture
def scarce(monkeypatch):
    """1 kB of memory: less than Tiny's 9.8 kB of parameters."""
    monkeypatch.setattr(memory, "available", lambda device=None: 1000)
    return 1000


def test_the_figures_are_summarys(tiny):
    result = netspec.check(tiny)
    summary = summarize(result, batch=8)
    params, buffers, batch = memory.needed(result, 8)
    assert params == summary.param_bytes == 4 * result.total_params
    assert buffers == summary.buffer_bytes
    assert batch == summary.input_bytes + summary.activation_bytes
    assert memory.needed(result)[2] == 0  # no batch: weights only


def test_build_refuses_a_model_beyond_the_memory(tiny, scarce):
    need = 4 * netspec.check(tiny).total_params
    with pytest.raises(memory.NotEnoughMemory) as info:
        netspec.build(tiny)
    message = str(info.value)
    assert message == (
        f"the model needs {memory.size_text(need)} for its parameters and buffers; 1.0 kB is "
        "available; pass --ignore-memory (Python: ignore_memory=True) to go ahead anyway"
    )
    model = netspec.build(tiny, ignore_memory=True)
    assert sum(p.numel() for p in model.parameters()) * 4 == need


def test_cli_build_counts_the_dry_runs_batch(tiny, monkeypatch, capsys):
    weights = 4 * netspec.check(tiny).total_params
    batch = memory.needed(netspec.check(tiny), 1000)[2]
    monkeypatch.setattr(memory, "available", lambda device=None: weights + batch - 1)
    assert main(["build", str(tiny), "--batch", "1000"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("netspec build: error: the model needs ") and "Traceback" not in err
    assert f"{memory.size_text(batch)} for one batch of 1000" in err
    assert main(["build", str(tiny), "--batch", "999"]) == 0  # one sample less fits
    assert main(["build", str(tiny), "--batch", "1000", "--ignore-memory"]) == 0


def test_train_refuses_before_creating_the_run(tiny, tmp_path, scarce, capsys):
    runs = tmp_path / "runs"
    settings = {"runs": str(runs), "epochs": 1, "progress": "none", "tensorboard": False}
    with pytest.raises(memory.NotEnoughMemory, match="parameters, their gradients and buffers"):
        train(str(tiny), overrides=settings, stream=io.StringIO())
    assert not runs.exists()
    argv = ["train", str(tiny), "--runs", str(runs), "--epochs", "1", "--progress", "none",
            "--no-tensorboard"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("netspec: error: the model needs ") and "--ignore-memory" in err
    assert not runs.exists()
    assert main([*argv, "--ignore-memory"]) == 0
    assert len(list(runs.glob("Tiny/*/last.pt"))) == 1


def test_training_on_cuda_compares_with_the_gpu_and_the_weights_with_main_memory(tiny,
                                                                                 monkeypatch):
    result = netspec.check(tiny)
    gpu = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (123_000, 10**9))
    assert memory.available(gpu) == 123_000
    monkeypatch.setattr(memory, "available",
                        lambda device=None: 10**12 if device is not None else 1000)
    with pytest.raises(memory.NotEnoughMemory) as info:
        memory.guard(result, batch=64, training=True, device=gpu)
    assert "for its parameters and buffers; 1.0 kB is available;" in str(info.value)
    monkeypatch.setattr(memory, "available",
                        lambda device=None: 1000 if device is not None else 10**12)
    with pytest.raises(memory.NotEnoughMemory, match=r"1\.0 kB is available on cuda:0"):
        memory.guard(result, batch=64, training=True, device=gpu)


def test_export_refuses_before_writing(tiny, tmp_path, scarce, capsys):
    from netspec.emit.export import export

    out = tmp_path / "tiny.ts"
    with pytest.raises(memory.NotEnoughMemory, match="for one batch of 3"):
        export(str(tiny), None, out)  # verification runs batches 2 and 3
    assert main(["export", str(tiny), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("netspec export: error: the model needs ") and not out.exists()
    assert main(["export", str(tiny), "-o", str(out), "--ignore-memory"]) == 0
    assert out.is_file()


def test_available_memory_is_read(monkeypatch):
    free = memory.available()
    assert free is not None and free > 0
    if Path("/proc/meminfo").is_file():
        line = next(x for x in Path("/proc/meminfo").read_text().splitlines()
                    if x.startswith("MemAvailable:"))
        assert abs(free - int(line.split()[1]) * 1024) < 2**30  # read a moment apart


# Runs netspec's main in a fresh interpreter and writes that process's own peak resident
# memory (VmHWM) when it ends.  wait4's ru_maxrss would not do: Linux carries the parent's
# high-water mark across fork + exec, so a child of a 3 GB pytest worker reports 3 GB.
PEAK_WRAPPER = """
import atexit, sys
from netspec.cli import main
def peak():
    with open('/proc/self/status') as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith('VmHWM:'))
    with open(sys.argv[1], 'w') as out:
        out.write(str(kb * 1024))
atexit.register(peak)
sys.exit(main(sys.argv[2:]))
"""


def run_measured(args: list[str], cwd: Path) -> tuple[int, str, int]:
    """(exit status, stderr, peak resident memory in bytes) of `python -m netspec ARGS`."""
    err_path, peak_path = cwd / "stderr.txt", cwd / "peak.txt"
    with open(err_path, "w") as err:
        code = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, str(peak_path), *args],
                              cwd=cwd, stdout=subprocess.DEVNULL, stderr=err).returncode
    return code, err_path.read_text(), int(peak_path.read_text())


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
@pytest.mark.parametrize("args", [["build", "huge.yaml"],
                                  ["export", "huge.yaml", "-o", "huge.onnx"],
                                  ["train", "huge.yaml", "--runs", "runs"]])
def test_a_100000_by_100000_input_is_refused_at_once(args, tmp_path):
    """input: [3, 100000, 100000] checks fine (86 parameters); one batch is hundreds of GB.
    Each command refuses within seconds, one line, having allocated next to nothing."""
    (tmp_path / "huge.yaml").write_text(HUGE_INPUT)
    result = netspec.check(tmp_path / "huge.yaml")
    assert result.ok and result.total_params == 86
    if (memory.available() or 0) > memory.needed(result, 2)[2]:
        pytest.skip("this machine has the memory for it")
    start = time.perf_counter()
    status, err, peak = run_measured(args, tmp_path)
    seconds = time.perf_counter() - start
    assert status == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert " GB for one batch of " in err and " is available; pass --ignore-memory" in err
    assert seconds < 60 and peak < 2e9  # torch imported, nothing of the batch allocated
    assert not (tmp_path / "runs").exists() and not (tmp_path / "huge.onnx").exists()
