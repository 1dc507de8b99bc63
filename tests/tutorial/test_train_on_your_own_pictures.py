"""The tutorial's "train on your own pictures" step: the student has a folder of photos, one
folder per class (cat/, dog/), in one of the usual layouts, and trains with
`data: {name: ImageFolder, root: pets}`.  netspec says which folder is which split, refuses
a single class, splits whose class folders differ, and a network whose output size is not
the number of classes (the tutorial's 10-way head on 2 classes), naming both numbers.

The pictures are made here: 8×8 PNGs, dark for cats and bright for dogs."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from netspec.cli import main

SPEC = """netspec: 1
name: Pets
input: [3, 8, 8]
layers:
  - Flatten
  - Linear: {{out_features: 16}}
  - ReLU
  - Linear: {{out_features: {outputs}}}
train:
  data: {{name: ImageFolder, root: pets, workers: 0}}
  epochs: 1
  optimizer: {{Adam: {{lr: 0.05}}}}
"""
SHADES = {"cat": 30, "dog": 220, "fox": 120}


@pytest.fixture(autouse=True)
def student_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path
    torch.set_num_threads(before)


def pictures(folder: str, classes=("cat", "dog"), each: int = 10) -> None:
    for name in classes:
        path = Path(folder, name)
        path.mkdir(parents=True)
        for i in range(each):
            shade = SHADES[name] + 2 * i
            Image.new("RGB", (8, 8), (shade, shade, shade)).save(path / f"{name}{i}.png")


def spec(outputs: int = 2) -> str:
    Path("pets.yaml").write_text(SPEC.format(outputs=outputs))
    return "pets.yaml"


def train(*extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = ["train", spec(), "--progress", "plain", "--no-tensorboard", "--runs", "runs", *extra]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue() + err.getvalue(), err.getvalue()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_a_train_folder_alone_holds_the_classes_not_one_class_called_train():
    pictures("pets/train")
    status, out, err = train()
    assert status == 0, err
    assert ("ImageFolder: 18 train / 2 val, 3×8×8, 2 classes" in out)
    assert ("splits: train = pets/train, val = 10% of the train images, held out "
            "(data.val_split), test = none (a test/ folder beside train/ would be one)") in out


@pytest.mark.parametrize(("folders", "counts", "splits"), [
    (("train", "val"), "20 train / 6 val",
     "train = pets/train, val = pets/val (data.val_split is not used), test = none"),
    (("train", "test"), "18 train / 2 val / 6 test",
     "train = pets/train, val = 10% of the train images, held out (data.val_split), "
     "test = pets/test"),
    (("train", "val", "test"), "20 train / 6 val / 6 test",
     "train = pets/train, val = pets/val (data.val_split is not used), test = pets/test"),
    (("train", "valid"), "20 train / 6 val", "val = pets/valid (data.val_split is not used)"),
    ((), "18 train / 2 val",
     "train = pets (a folder per class), val = 10% of the train images, held out "
     "(data.val_split), test = none (the classes in pets/train/ and pets/test/ would give "
     "one)"),
], ids=["train+val", "train+test", "train+val+test", "train+valid", "classes-at-the-root"])
def test_each_usual_layout_says_which_folder_is_which_split(folders, counts, splits):
    if not folders:
        pictures("pets")
    for folder in folders:
        pictures(f"pets/{folder}", each=10 if folder == "train" else 3)
    status, out, err = train()
    assert status == 0, err
    assert f"ImageFolder: {counts}, 3×8×8, 2 classes" in out
    assert splits in out
    assert ("test (best.pt" in out) == ("test" in folders)


def test_the_classes_are_learned_and_predict_names_them():
    pictures("pets/train")
    pictures("pets/test", each=4)
    status, out, err = train("--epochs", "8")  # out: what the run printed
    assert status == 0, err
    accuracy = float(re.search(r"test \(best\.pt, epoch \d+\): loss \S+ acc ([\d.]+)%", out)[1])
    assert accuracy == 100.0
    (best,) = Path("runs").glob("Pets/*/best.pt")
    status, out, _ = run("predict", "pets.yaml", "--weights", str(best), "--top-k", "1",
                         "pets/test/cat/cat0.png", "pets/test/dog/dog3.png")
    assert status == 0
    assert re.fullmatch(r"pets/test/cat/cat0.png: cat \S+%\npets/test/dog/dog3.png: dog \S+%\n",
                        out)


def test_a_single_class_is_refused():
    pictures("pets/train", classes=("cat",))
    status, _, err = train()
    assert status == 1 and "Traceback" not in err
    assert re.fullmatch(
        r"pets\.yaml:10:35: error: ImageFolder pets/train holds one class folder \(cat/\); a "
        r"classifier needs two or more, a folder of images per class: pets/train/cat/, "
        r"pets/train/other/, \.\.\.\n", err)


def test_a_ten_way_head_on_two_classes_is_refused_naming_both():
    pictures("pets/train")
    Path("pets.yaml").write_text(SPEC.format(outputs=10))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["train", "pets.yaml", "--progress", "none", "--runs", "runs"])
    assert status == 1
    assert err.getvalue() == (
        "pets.yaml:8:5: error: the network outputs 10 scores per sample but ImageFolder has 2 "
        "classes (cat, dog): the last layer needs 2 outputs (e.g. out_features: 2); to train "
        "10 outputs on 2 classes anyway, set train.more_outputs_than_classes: true\n")


def test_more_outputs_than_classes_when_asked_and_predict_says_which_have_no_class():
    pictures("pets/train")
    Path("pets.yaml").write_text(SPEC.format(outputs=10))
    status, _, err = run("train", "pets.yaml", "--progress", "none", "--no-tensorboard",
                         "--runs", "runs", "--set", "more_outputs_than_classes=true")
    assert status == 0, err
    (best,) = Path("runs").glob("Pets/*/best.pt")
    status, out, err = run("predict", "pets.yaml", "--weights", str(best), "--json",
                           "pets/train/cat/cat0.png")
    assert status == 0, err  # the checkpoint's setting holds for predict and eval
    names = re.findall(r'"class": "([^"]+)"', out)
    assert len(names) == 5 and {"cat", "dog"} <= set(names)
    assert all(n in ("cat", "dog") or n.endswith(" (no class)") for n in names)


def test_splits_whose_class_folders_differ_are_refused():
    pictures("pets/train")
    pictures("pets/val", classes=("cat", "fox"), each=2)
    status, _, err = train()
    assert status == 1
    assert ("error: ImageFolder pets/val has the classes cat, fox but pets/train has cat, dog "
            "(missing there: dog; not in train/: fox); every split needs the same class "
            "folders, or its labels would mean other classes") in err


def test_a_hidden_folder_is_not_taken_for_a_class():
    pictures("pets/train")
    Path("pets/train/.ipynb_checkpoints").mkdir()  # what Jupyter leaves behind
    Image.new("RGB", (8, 8)).save("pets/train/.ipynb_checkpoints/cat0-checkpoint.png")
    status, _, err = train()
    assert status == 1
    assert ("error: ImageFolder pets/train holds .ipynb_checkpoints/, which torchvision's "
            "ImageFolder would take as a class; remove it (only class folders there)") in err


@pytest.mark.parametrize(("folders", "message"), [
    (("val/cat",), "ImageFolder: pets has val/ but no train/: put the training images in "
                   "pets/train/ (a folder per class) beside it"),
    (("train/cat", "train/dog", "cat"), "ImageFolder: pets holds train/ and also cat/: beside "
                                        "train/ netspec takes only val/ (or valid/, validation/) "
                                        "and test/"),
])
def test_a_mix_of_layouts_is_refused_saying_what_to_move(folders, message):
    for folder in folders:
        split, _, name = folder.rpartition("/")
        pictures(f"pets/{split}" if split else "pets", classes=(name,), each=2)
    status, _, err = train()
    assert status == 1 and message in err
