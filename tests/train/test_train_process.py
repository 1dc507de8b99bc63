"""netspec train as processes: killed with SIGKILL mid-epoch (the last complete checkpoint
loads and resumes), stopped with Ctrl-C mid-epoch (saved, exit 130, and the resumed run is
bitwise-identical to one never stopped), and distributed over 2 gloo processes (the same
weights as 1 process with the same global batch; only rank 0 writes files)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from netspec.emit import checkpoint as ckpt_io
from netspec.train.output import TIMING_KEYS

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "specs" / "lenet5_digits.yaml"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
# small batches: ~300 steps an epoch, so that a signal lands inside an epoch
SLOW = ["--epochs", "3", "--batch-size", "4", "--no-tensorboard", "--progress", "plain"]


def netspec(*args: str, cwd: Path = ROOT, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "netspec", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "netspec", *args],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path_glob: Path, pattern: str, proc: subprocess.Popen, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(path_glob.glob(pattern))
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"no {pattern} under {path_glob}")


def rows(run_dir: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]


def test_sigkill_mid_epoch_then_resume(tmp_path):
    runs = tmp_path / "runs"
    proc = start("train", str(LENET), *SLOW, "--runs", str(runs))
    last = wait_for(runs, "*/*/last.pt", proc)
    time.sleep(0.3)  # into the second epoch
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    run_dir = last.parent
    state = ckpt_io.load(last)  # the last complete checkpoint: whole, verified
    assert state["epoch"] >= 1 and state["position"] is None
    done = state["epoch"]
    r = netspec("train", "--resume", str(run_dir), "--progress", "plain")
    assert r.returncode == 0, r.stderr
    assert f"resuming {last}: epoch {done} done" in r.stderr
    assert [row["epoch"] for row in rows(run_dir)] == [1, 2, 3]
    assert ckpt_io.load(run_dir / "last.pt")["epoch"] == 3
    assert not list(run_dir.glob(".*tmp*"))


def test_ctrl_c_mid_epoch_saves_and_resumes_exactly(tmp_path):
    runs = tmp_path / "runs"
    full = start("train", str(LENET), *SLOW, "--runs", str(runs), "--name", "full")
    proc = start("train", str(LENET), *SLOW, "--runs", str(runs), "--name", "stopped")
    last = wait_for(runs / "stopped", "*/last.pt", proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopping: finishing this step and saving last.pt" in err and "Traceback" not in err
    state = ckpt_io.load(last)
    position = state["position"]
    assert position is not None and position["epoch"] == state["epoch"] + 1
    assert 0 < position["batch"] < 324
    r = netspec("train", "--resume", str(last.parent))
    assert r.returncode == 0, r.stderr
    assert full.wait(timeout=240) == 0, full.communicate()
    reference = next((runs / "full").glob("*"))
    a = torch.load(reference / "last.pt", weights_only=True)
    b = torch.load(last.parent / "last.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert rows(reference) == rows(last.parent)


def test_two_resumes_of_one_run_at_once(tmp_path):
    """The second process to --resume a run that another is training is refused, naming
    the first one's pid, and writes nothing; a SIGKILL'ed holder releases the run."""
    runs = tmp_path / "runs"
    r = netspec("train", str(LENET), *SLOW[2:], "--epochs", "1", "--runs", str(runs))
    assert r.returncode == 0, r.stderr
    (run_dir,) = runs.glob("*/*")
    first = start("train", "--resume", str(run_dir), "--epochs", "50")  # still running below
    lock = run_dir / ".lock"
    deadline = time.monotonic() + 120
    while not (lock.is_file() and lock.read_text().strip() == str(first.pid)):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    before = (run_dir / "metrics.jsonl").read_bytes()
    second = netspec("train", "--resume", str(run_dir), "--epochs", "50")
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert second.stderr == (
        f"netspec: error: {run_dir} is in use by another netspec train (pid {first.pid}); two "
        "processes writing one run would mix its checkpoints and metrics: wait for that one "
        "to end, or stop it\n")
    assert first.poll() is None  # the first never noticed
    assert (run_dir / "metrics.jsonl").read_bytes()[: len(before)] == before
    first.send_signal(signal.SIGKILL)
    first.communicate()
    done = ckpt_io.load(run_dir / "last.pt")["epoch"]
    third = netspec("train", "--resume", str(run_dir), "--epochs", str(done + 1))
    assert third.returncode == 0, third.stderr
    assert [row["epoch"] for row in rows(run_dir)] == list(range(1, done + 2))


def test_two_gloo_processes_match_one(tmp_path):
    args = [
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--no-tensorboard",
        "--progress",
        "plain",
        "--runs",
        "runs",
    ]
    one = netspec("train", str(LENET), *args, "--name", "one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    two = netspec(
        "train", str(LENET), *args, "--name", "two", "--nproc-per-node", "2", cwd=tmp_path
    )
    assert two.returncode == 0, two.stderr
    assert "2 processes" in two.stderr
    assert sum(line.startswith("epoch ") for line in two.stderr.splitlines()) == 2
    # only rank 0 wrote: one run folder, nothing else anywhere under the working directory
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    (d_one,) = (tmp_path / "runs" / "one").iterdir()
    (d_two,) = (tmp_path / "runs" / "two").iterdir()
    expected = {"spec.yaml", "train.yaml", "metrics.jsonl", "last.pt", "best.pt", "summary.json",
                ".lock"}
    assert {p.name for p in d_two.iterdir()} == expected
    assert len(written) == 2 * len(expected)
    a = torch.load(d_one / "last.pt", weights_only=True)
    b = torch.load(d_two / "last.pt", weights_only=True)
    diff = max((a["model"][k] - b["model"][k]).abs().max().item() for k in a["model"])
    assert diff <= 1e-5, diff
    assert b["world_size"] == 2 and len(b["rng"]) == 2
    for ra, rb in zip(rows(d_one), rows(d_two), strict=True):
        assert abs(ra["train_loss"] - rb["train_loss"]) < 1e-5
        assert ra["val_acc"] == rb["val_acc"]


def test_torchrun_launches_workers_and_a_stopped_ddp_run_resumes(tmp_path):
    """`torchrun -m netspec train` (here torch.distributed.run, the same engine) works; a
    2-process run stopped after epoch 1 and resumed on 2 processes ends where an
    uninterrupted 2-process run does."""
    args = ["--epochs", "2", "--no-tensorboard", "--progress", "plain", "--runs", "runs"]
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "netspec",
        "train",
        str(LENET),
    ]
    r = subprocess.run(
        [*torchrun, *args, "--name", "stopped", "--stop-after", "1"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    (run_dir,) = (tmp_path / "runs" / "stopped").iterdir()
    assert ckpt_io.load(run_dir / "last.pt")["epoch"] == 1
    r = netspec("train", "--resume", str(run_dir), "--nproc-per-node", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = netspec(
        "train", str(LENET), *args, "--name", "whole", "--nproc-per-node", "2", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    (whole,) = (tmp_path / "runs" / "whole").iterdir()
    a = torch.load(whole / "last.pt", weights_only=True)["model"]
    b = torch.load(run_dir / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert rows(whole) == rows(run_dir)
