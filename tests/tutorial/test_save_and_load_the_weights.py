"""The tutorial's "save and load the model" step: after `netspec train`, the student loads
the weights as the PyTorch tutorial does,

    model = Net()
    model.load_state_dict(torch.load("net.pt"))

with the model netspec builds and with the class `netspec codegen` writes.  best.pt is a
checkpoint (weights, optimizer, scheduler, RNG states, ...): torch.load gives that whole
dictionary, which load_state_dict refuses.  `netspec train` ends by printing the one command
that writes the plain state_dict; this test follows it."""

from __future__ import annotations

import contextlib
import json
import shlex
from pathlib import Path

import pytest
import torch
from student import generated_model, run

import netspec
from netspec.train.data import digits_arrays

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "specs" / "lenet5_digits.yaml"
KEYS = ("loss", "acc", "top5", "samples")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`netspec train` for one epoch in a folder of the student's; (folder, what it printed)."""
    folder = tmp_path_factory.mktemp("student")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with contextlib.chdir(folder):
        status, out, err = run(["train", str(LENET), "--epochs", "1", "--progress", "plain",
                                "--no-tensorboard", "--runs", "runs"])
    torch.set_num_threads(before)
    assert status == 0, err
    return folder, out + err


def test_training_ends_with_the_command_that_writes_plain_weights(trained, monkeypatch):
    folder, printed = trained
    monkeypatch.chdir(folder)
    (best,) = Path("runs").glob("LeNet5Digits/*/best.pt")
    assert ('best.pt is a checkpoint (for --resume, eval, predict); the plain weights for '
            'model.load_state_dict(torch.load("lenet5digits.pt")):') in printed
    command = printed.splitlines()[-1].strip()
    assert command == f"netspec weights {best} -o lenet5digits.pt"
    status, out, _ = run(shlex.split(command)[1:])
    assert status == 0
    assert out.startswith("wrote lenet5digits.pt: 10 tensors, ")
    assert "load with model.load_state_dict(torch.load('lenet5digits.pt'))" in out


def test_the_tutorial_two_lines_load_it_into_the_built_model(trained, monkeypatch):
    folder, _ = trained
    monkeypatch.chdir(folder)
    (best,) = Path("runs").glob("LeNet5Digits/*/best.pt")
    assert run(["weights", str(best), "-o", "lenet5digits.pt"])[0] == 0
    model = netspec.build(LENET)
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "model", '):
        model.load_state_dict(torch.load(best))  # what the student tried first
    model.load_state_dict(torch.load("lenet5digits.pt"))
    assert all(t.is_contiguous() for t in torch.load("lenet5digits.pt").values())
    # the same weights as best.pt: the same test loss and accuracy
    metrics = {}
    for weights in ("lenet5digits.pt", str(best)):
        status, out, _ = run(["eval", str(LENET), "--weights", weights, "--json"])
        assert status == 0
        metrics[weights] = {k: v for k, v in json.loads(out).items() if k in KEYS}
    assert metrics["lenet5digits.pt"] == metrics[str(best)]


def test_the_tutorial_two_lines_load_it_into_the_generated_class(trained, monkeypatch):
    folder, _ = trained
    monkeypatch.chdir(folder)
    (best,) = Path("runs").glob("LeNet5Digits/*/best.pt")
    assert run(["weights", str(best.parent), "-o", "lenet5digits.pt"])[0] == 0  # a run folder
    assert run(["codegen", str(LENET), "-o", "lenet5_model.py"])[0] == 0
    model = generated_model("lenet5_model.py", "LeNet5Digits", "lenet5digits.pt")
    built = netspec.build(LENET)
    built.load_state_dict(torch.load("lenet5digits.pt"))
    images = digits_arrays()[0][:64]
    with torch.inference_mode():
        assert torch.equal(model.eval()(images), built.eval()(images))


def test_netspec_weights_refuses_what_is_not_a_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(["weights", "missing.pt"])
    assert status == 1 and "netspec weights: error: missing.pt: no such checkpoint" in err
    Path("junk.pt").write_bytes(b"not a checkpoint")
    status, _, err = run(["weights", "junk.pt"])
    assert status == 1 and "junk.pt is not a readable checkpoint" in err
    torch.save({"w": torch.ones(2)}, "plain.pt")
    status, _, err = run(["weights", "plain.pt", "-o", "plain.pt"])
    assert status == 1 and "is the checkpoint itself" in err
    assert run(["weights", "plain.pt"])[0] == 0  # a state_dict already: copied
    assert torch.equal(torch.load("plain_weights.pt")["w"], torch.ones(2))


UNNAMED = """\
netspec: 1
name: Digits
input: [1, 8, 8]
layers:
  - Conv2d: [1, 8, 3, 1, 1]
  - ReLU
  - MaxPool2d: 2
  - Flatten
  - Linear: [8*4*4, 10]
"""


def test_a_spec_with_unnamed_layers_gets_the_generated_class_s_keys_too(tmp_path,
                                                                          monkeypatch):
    """netspec.build numbers unnamed layers (0.weight), the generated class names them as
    the tutorials do (conv.weight): training prints a second command, --style class, whose
    file the tutorial's two lines load into that class."""
    monkeypatch.chdir(tmp_path)
    Path("digits.yaml").write_text(UNNAMED)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        status, out, err = run(["train", "digits.yaml", "--epochs", "1", "--progress",
                                "plain", "--no-tensorboard", "--runs", "runs",
                                "--data", "digits"])
    finally:
        torch.set_num_threads(before)
    assert status == 0, err
    command = (out + err).strip().splitlines()[-1].strip()
    assert command.startswith("netspec weights ") and command.endswith(" --style class")
    assert run(shlex.split(command)[1:])[0] == 0
    assert run(["codegen", "digits.yaml", "-o", "digits_model.py"])[0] == 0
    model = generated_model("digits_model.py", "Digits", "digits_class.pt")  # the two lines
    (best,) = Path("runs").glob("Digits/*/best.pt")
    assert run(["weights", str(best), "-o", "digits.pt"])[0] == 0
    built = netspec.build("digits.yaml")
    built.load_state_dict(torch.load("digits.pt"))
    assert list(torch.load("digits.pt")) != list(torch.load("digits_class.pt"))
    images = digits_arrays()[0][:16]
    with torch.inference_mode():
        assert torch.equal(model.eval()(images), built.eval()(images))
