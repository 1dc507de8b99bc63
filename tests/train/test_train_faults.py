"""Trainer faults: hand-made checkpoints (no digest) of every wrong kind are refused with
one line naming the file and what is wrong, before anything of them is used; a full disk
while saving leaves the previous checkpoint whole and exits 1 naming the file; a run folder
is held by one process at a time."""

from __future__ import annotations

import copy
import errno
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from netspec.cli import main
from netspec.emit import checkpoint as ckpt_io
from netspec.train import output, train
from netspec.train.config import CheckpointError

TINY = """netspec: 1
name: Tiny
input: [1, 8, 8]
layers:
  - Flatten
  - Linear: {out_features: 32}
  - ReLU
  - Linear: {out_features: 10}
train:
  scheduler: {StepLR: {step_size: 1}}
  progress: none
  tensorboard: false
"""
QUIET = {"progress": "none", "tensorboard": False}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run folder after one epoch of Tiny (Adam, StepLR)."""
    root = tmp_path_factory.mktemp("trained")
    spec = root / "tiny.yaml"
    spec.write_text(TINY)
    run = train(str(spec), overrides={"runs": str(root / "runs"), "epochs": 1},
                stream=io.StringIO())
    return run.dir


@pytest.fixture
def run_dir(trained, tmp_path) -> Path:
    """A copy of the trained run, for a test to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _state(run_dir: Path) -> dict:
    return ckpt_io.load(run_dir / "last.pt")  # verified; the digest is popped


def _optimizer_of(model: torch.nn.Module, kind=torch.optim.Adam, **kwargs) -> dict:
    """The state of a ``kind`` optimizer of ``model`` after one step."""
    opt = kind(model.parameters(), **kwargs)
    first = next(m for m in model if isinstance(m, torch.nn.Linear))
    model(torch.ones(2, first.in_features)).sum().backward()
    opt.step()
    return opt.state_dict()


def _tiny_shaped() -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 10))


def _cosine(state: dict) -> dict:
    model = _tiny_shaped()
    opt = torch.optim.Adam(model.parameters())
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5).state_dict()


def _set(key, value):
    def craft(state):
        state[key] = value(state) if callable(value) else value
        return state
    return craft


def _drop(*keys):
    def craft(state):
        for k in keys:
            state.pop(k)
        return state
    return craft


def _position(**changes):
    def craft(state):
        state["position"] = {"epoch": state["epoch"] + 1, "batch": 3,
                             "loss_sum": [torch.tensor(1.5, dtype=torch.float64)],
                             "correct": [torch.tensor(2)], "seen": [12], "time": 0.1,
                             "lr": 0.001, **changes}
        for k, v in changes.items():
            if v is None:
                state["position"].pop(k)
        return state
    return craft


CRAFTED = {
    # name: (what is done to a good checkpoint, a fragment of the one-line error)
    "no_step": (_drop("step"), "cannot be resumed from: it has no 'step'"),
    "no_epoch": (_drop("epoch"), "it has no 'epoch'"),
    "no_model": (_drop("model"), "it has no 'model'"),
    "no_optimizer": (_drop("optimizer"), "holds weights only; --resume needs a checkpoint"),
    "position_without_loss_sum": (_position(loss_sum=None), "'position' has no 'loss_sum'"),
    "position_sums_of_ints": (_position(loss_sum=[3]), "'position' has 'loss_sum' [3], not "
                              "a list of one-number float tensors"),
    "position_past_the_epoch": (_position(batch=10**6), "'position' is batch 1000000 of an "
                                "epoch that has"),
    "position_in_another_epoch": (_position(epoch=7), "'position' is inside epoch 7, but the "
                                  "checkpoint is at the end of epoch 1"),
    "top_level_list": (lambda s: [s], "is neither a netspec checkpoint nor a model state_dict"),
    "optimizer_list": (_set("optimizer", []), "'optimizer' is [], not an optimizer state_dict"),
    "optimizer_without_groups": (_set("optimizer", {"state": {}}), "'optimizer' has "
                                 "'param_groups' None"),
    "optimizer_of_another_model": (
        _set("optimizer", lambda s: _optimizer_of(torch.nn.Sequential(torch.nn.Linear(3, 4)),
                                                  torch.optim.SGD, momentum=0.9)),
        "its optimizer state is for 1 parameter group(s) of 2 parameters; this network's "
        "Adam has 1 of 4 (another network's optimizer?)"),
    "optimizer_of_another_kind": (
        _set("optimizer", lambda s: _optimizer_of(_tiny_shaped(), torch.optim.SGD,
                                                  momentum=0.9)),
        "its optimizer state is not Adam's: its parameter groups set dampening, momentum, "
        "nesterov, which Adam does not have"),
    "optimizer_states_of_other_shapes": (
        _set("optimizer", lambda s: _optimizer_of(torch.nn.Sequential(
            torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10)))),
        "its optimizer state 'exp_avg' of parameter 0 has shape (16, 64), the parameter "
        "(32, 64)"),
    "scheduler_of_another_kind": (_set("scheduler", _cosine),
                                  "its scheduler state is not StepLR's (it sets T_max, eta_min; "
                                  "it lacks gamma, step_size)"),
    "scheduler_missing": (_set("scheduler", None), "it holds no scheduler state, but this run "
                          "is configured with StepLR"),
    "scheduler_list": (_set("scheduler", [1]), "'scheduler' is [1], not a scheduler"),
    "scaler_list": (_set("scaler", [1]), "'scaler' is [1], not a gradient scaler"),
    "epoch_tensor": (_set("epoch", torch.tensor(1)), "'epoch' is a tensor of shape (), not a "
                     "whole number of epochs"),
    "step_float": (_set("step", 63.0), "'step' is 63.0, not a whole number of steps"),
    "epoch_negative": (_set("epoch", -1), "'epoch' is -1, not a whole number"),
    "elapsed_text": (_set("elapsed", "soon"), "'elapsed' is 'soon', not seconds"),
    "rng_not_states": (_set("rng", [{"torch": 5}]), "'rng' entry 0 is {'torch': 5}, not a "
                       "random generator state with a 'torch' tensor"),
    "rng_wrong_tensor": (_set("rng", [{"torch": torch.zeros(3)}]),
                         "its random generator state does not load: "),
    "history_dict": (_set("history", {"a": 1}), "'history' is {'a': 1}, not a list of epoch "
                     "rows"),
    "history_rows_of_tensors": (_set("history", [{"epoch": torch.tensor(1)}]),
                                "'history' row 0 is not a mapping of names to numbers"),
    "best_list": (_set("best", [1]), "'best' is [1], not {acc, epoch}"),
    "model_list": (_set("model", [1]), "'model' is [1], not a state_dict"),
    "model_of_ints": (_set("model", lambda s: {k: 1 for k in s["model"]}),
                      "'model' holds '1.weight': 1; a state_dict maps names to tensors"),
    "model_of_other_shapes": (_set("model", {"1.weight": torch.zeros(3)}),
                              "its weights do not fit"),
}


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_crafted_checkpoints_are_refused_clearly(kind, run_dir, capsys):
    craft, fragment = CRAFTED[kind]
    before = (run_dir / "metrics.jsonl").read_bytes()
    bad = run_dir / f"{kind}.pt"
    torch.save(craft(copy.deepcopy(_state(run_dir))), bad)  # no digest: hand-made
    with pytest.raises(CheckpointError) as info:
        train(resume=bad, stream=io.StringIO())
    assert str(info.value).startswith(str(bad)) and fragment in str(info.value)
    assert main(["train", "--resume", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err == f"netspec: error: {info.value}\n"
    assert (run_dir / "metrics.jsonl").read_bytes() == before  # nothing of the run touched


def test_a_hand_made_checkpoint_that_is_whole_resumes(run_dir):
    """Without a digest but with every key right (and an optimizer state of the same
    shapes made elsewhere), it is used: validation refuses what is wrong, not what is
    unusual."""
    state = _state(run_dir)
    state["optimizer"] = _optimizer_of(_tiny_shaped())
    del state["spec_hash"], state["spec_layers"]
    state = _position()(state)
    torch.save(state, run_dir / "hand.pt")
    run = train(resume=run_dir / "hand.pt", overrides={"epochs": 2}, stream=io.StringIO())
    assert [row["epoch"] for row in run.history] == [1, 2]


# ---------------------------------------------------------------------- a full disk


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _torch_enospc(obj, f, *args, **kwargs):
    """What torch.save does on a full disk: its writer raises RuntimeError ("unexpected
    pos") while handling the file object's OSError."""
    f.write(b"PK\x03\x04partial")
    try:
        _enospc()
    except OSError:  # chained as torch chains it: the OSError is only the __context__
        raise RuntimeError(  # noqa: B904
            "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")


@pytest.mark.parametrize("failing_save", [_enospc, _torch_enospc])
def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(failing_save, run_dir,
                                                               monkeypatch, capsys):
    last = run_dir / "last.pt"
    before = last.read_bytes()
    monkeypatch.setattr(torch, "save", failing_save)
    assert main(["train", "--resume", str(run_dir), "--epochs", "2"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1] == (
        f"netspec: error: cannot write {last}: no space left on device; the previous last.pt "
        f"is whole (resume from it with netspec train --resume {run_dir} once there is room)")
    assert last.read_bytes() == before and ckpt_io.load(last)["epoch"] == 1
    assert not list(run_dir.glob(".*tmp*"))
    assert len(output.read_metrics(run_dir)) == 1


def test_a_full_metrics_file_keeps_whole_rows(run_dir, monkeypatch):
    before = (run_dir / "metrics.jsonl").read_bytes()
    real_write = os.write

    def half(fd, data):
        real_write(fd, data[: len(data) // 2])
        _enospc()

    monkeypatch.setattr(os, "write", half)
    with pytest.raises(ckpt_io.WriteError, match=re.escape(
            "metrics.jsonl: no space left on device; its earlier rows are whole")):
        output.append_metrics(run_dir, {"epoch": 2})
    assert (run_dir / "metrics.jsonl").read_bytes() == before


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root only; skipped where it cannot be mounted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_really_full_disk(small_disk, tmp_path, capsys):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    runs = small_disk / "runs"
    assert main(["train", str(spec), "--runs", str(runs), "--epochs", "1"]) == 0
    (run_dir,) = runs.glob("Tiny/*")
    last = run_dir / "last.pt"
    before = last.read_bytes()
    stat = os.statvfs(small_disk)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 16 * 1024))  # 16 kB left
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--epochs", "2"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(
        f"netspec: error: cannot write {last}: no space left on device; the previous last.pt "
        "is whole"), err
    assert "Traceback" not in err
    assert last.read_bytes() == before and ckpt_io.load(last)["epoch"] == 1
    assert not list(run_dir.glob(".*tmp*"))
    filler.unlink()  # room again: the run goes on from the checkpoint that was kept
    assert main(["train", "--resume", str(run_dir), "--epochs", "2"]) == 0
    assert [r["epoch"] for r in output.read_metrics(run_dir)] == [1, 2]


# ---------------------------------------------------------------------- one writer per run


def test_a_run_folder_in_use_is_refused(run_dir, capsys):
    held = output.lock_run(run_dir)  # another open file description: flock conflicts
    try:
        with pytest.raises(output.RunInUse) as info:
            train(resume=run_dir, stream=io.StringIO())
        assert str(info.value).startswith(f"{run_dir} is in use by another netspec train "
                                          f"(pid {os.getpid()})")
        assert main(["train", "--resume", str(run_dir), "--epochs", "2"]) == 1
        assert capsys.readouterr().err == f"netspec: error: {info.value}\n"
        assert len(output.read_metrics(run_dir)) == 1
    finally:
        output.unlock_run(held)
    run = train(resume=run_dir, overrides={"epochs": 2, **QUIET}, stream=io.StringIO())
    assert [row["epoch"] for row in output.read_metrics(run.dir)] == [1, 2]
    assert (run_dir / output.LOCK).read_text() == f"{os.getpid()}\n"  # the last holder
    output.unlock_run(output.lock_run(run_dir))  # released when train() returned
