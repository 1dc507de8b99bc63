"""netspec train in one process: what a run writes, exact resume, gradient accumulation,
the batch plan, checkpoints (verified, refused from another spec), the streaming data
paths, eval, predict and plot.  Everything runs on the CPU in seconds (digits)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from netspec.cli import main
from netspec.emit import checkpoint as ckpt_io
from netspec.train import train
from netspec.train.config import CheckpointError
from netspec.train.data import BatchPlan
from netspec.train.output import METRIC_KEYS, TIMING_KEYS

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "specs" / "lenet5_digits.yaml"
TINY = """netspec: 1
name: Tiny
input: [1, 8, 8]
layers:
  - Flatten
  - Linear: {out_features: 32}
  - ReLU
  - Linear: {out_features: 10}
"""


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small models train fastest on one thread, and xdist runs two test processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def quick(tmp_path: Path, spec=LENET, **overrides):
    settings = {
        "runs": str(tmp_path / "runs"),
        "epochs": 2,
        "progress": "none",
        "tensorboard": False,
        **overrides,
    }
    return train(str(spec), overrides=settings, stream=io.StringIO())


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def test_a_run_folder_holds_everything(tmp_path):
    stream = io.StringIO()
    run = train(
        str(LENET),
        overrides={"runs": str(tmp_path / "runs"), "epochs": 2, "progress": "plain"},
        stream=stream,
    )
    d = run.dir
    assert d.parent == tmp_path / "runs" / "LeNet5Digits"
    assert {p.name for p in d.iterdir() if not p.name.startswith("events.")} == {
        ".lock",  # held by the process that trains into the folder
        "spec.yaml",
        "train.yaml",
        "metrics.jsonl",
        "last.pt",
        "best.pt",
        "summary.json",
    }
    assert (d / "spec.yaml").read_text() == LENET.read_text()
    rows = metrics(d)
    assert [r["epoch"] for r in rows] == [1, 2] and all(set(r) == set(METRIC_KEYS) for r in rows)
    assert rows[1]["train_loss"] < rows[0]["train_loss"]
    # plain output: the header, one line per epoch, the test result
    lines = stream.getvalue().splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 2
    assert any(line.startswith("test (best.pt, epoch") for line in lines)
    # TensorBoard
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(d))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr"} <= tags
    assert [e.step for e in events.Scalars("loss/val")] == [1, 2]
    # the checkpoint: complete, on the CPU, plain data (weights_only)
    state = torch.load(d / "last.pt", weights_only=True)
    for key in (
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "epoch",
        "step",
        "rng",
        "history",
        "spec_text",
        "spec_hash",
        "config",
        "classes",
        "digest",
    ):
        assert key in state, key
    assert state["epoch"] == 2 and state["spec_text"] == LENET.read_text()
    assert all(t.device.type == "cpu" for t in state["model"].values())
    assert ckpt_io.load(d / "best.pt")["epoch"] == run.summary["best_epoch"]
    summary = json.loads((d / "summary.json").read_text())
    assert summary["test_samples"] == 359 and 0 < summary["test_acc"] <= 1


def test_progress_bar_shows_loss_and_throughput(tmp_path):
    stream = io.StringIO()
    train(
        str(LENET),
        overrides={
            "runs": str(tmp_path / "runs"),
            "epochs": 1,
            "batch_size": 8,
            "progress": "bar",
            "tensorboard": False,
        },
        stream=stream,
    )
    text = stream.getvalue()
    assert "epoch 1/1" in text and "samples/s" in text and "loss " in text


def test_resume_is_bitwise_exact(tmp_path):
    full = quick(tmp_path, epochs=4, name="full")
    part = train(
        str(LENET),
        overrides={
            "runs": str(tmp_path / "runs"),
            "epochs": 4,
            "name": "part",
            "progress": "none",
            "tensorboard": False,
        },
        stop_after=2,
        stream=io.StringIO(),
    )
    assert part.stopped and not part.interrupted and len(part.history) == 2
    assert ckpt_io.load(part.dir / "last.pt")["epoch"] == 2
    resumed = train(resume=part.dir, stream=io.StringIO())
    assert resumed.dir == part.dir and not resumed.stopped
    a = torch.load(full.dir / "last.pt", weights_only=True)
    b = torch.load(resumed.dir / "last.pt", weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(
        a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True
    ):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert without_timing(metrics(full.dir)) == without_timing(metrics(resumed.dir))
    assert full.summary["test_acc"] == resumed.summary["test_acc"]


def test_resume_refuses_another_spec(tmp_path):
    run = quick(tmp_path, epochs=1)
    other = tmp_path / "other.yaml"
    other.write_text(LENET.read_text().replace("out_channels: 16", "out_channels: 8"))
    with pytest.raises(CheckpointError) as info:
        train(str(other), resume=run.dir, stream=io.StringIO())
    message = str(info.value)
    assert "trained from spec 'LeNet5Digits'" in message and str(LENET) in message
    assert str(other) in message and "layer 0 differs" in message
    # the same spec written differently (comments, the train section) is the same network
    same = tmp_path / "same.yaml"
    same.write_text("# a comment\n" + LENET.read_text().replace("epochs: 30", "epochs: 2"))
    train(str(same), resume=run.dir, overrides={"epochs": 2}, stream=io.StringIO())


def test_damaged_checkpoints_are_refused_clearly(tmp_path, capsys):
    run = quick(tmp_path, epochs=1)
    good = (run.dir / "last.pt").read_bytes()
    flipped = bytearray(good)
    # a byte inside the tensor data: PyTorch's zip reader would load it silently
    offset = good.index(b"data/0") + 200
    flipped[offset] ^= 0xFF
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="is corrupted: its content does not match"):
        ckpt_io.load(bad)
    short = tmp_path / "short.pt"
    short.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match=r"not a readable checkpoint .*truncated"):
        ckpt_io.load(short)
    assert main(["eval", str(LENET), "--weights", str(short)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("netspec: error:") and "Traceback" not in err


def test_gradient_accumulation_matches_a_bigger_batch(tmp_path):
    sgd = {"optimizer": {"SGD": {"lr": 0.05, "momentum": 0.9}}, "epochs": 1}
    big = quick(tmp_path, name="big", batch_size=64, **sgd)
    acc = quick(tmp_path, name="acc", batch_size=32, accumulate=2, **sgd)
    a = torch.load(big.dir / "last.pt", weights_only=True)["model"]
    b = torch.load(acc.dir / "last.pt", weights_only=True)["model"]
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    assert big.history[0]["step"] == acc.history[0]["step"]


@pytest.mark.parametrize(
    "n, batch, world, accumulate", [(10, 4, 1, 1), (103, 16, 3, 2), (64, 8, 2, 4), (9, 4, 2, 1)]
)
def test_batch_plan_shards_the_global_batches(n, batch, world, accumulate):
    one = BatchPlan(n, batch, seed=3)
    one.set_epoch(5)
    shards = []
    for rank in range(world):
        plan = BatchPlan(n, batch, world, rank, seed=3)
        plan.set_epoch(5)
        shards.append(list(plan))
    # N processes see the batches one process sees (the last one may be dropped: too small)
    for i, whole in enumerate(list(one)[: len(shards[0])]):
        union = sorted(torch.cat([s[i] for s in shards]).tolist())
        assert union == sorted(whole.tolist())
    # loss weights: what DDP averages over processes, summed over the accumulated batches,
    # is the mean over every sample of the optimizer step
    values = torch.rand(n, dtype=torch.float64)
    sizes = BatchPlan(n, batch, world, 0, seed=3).sizes
    got = [0.0] * len(sizes)
    for rank in range(world):
        for i, (w, idx) in enumerate(
            zip(
                shards[rank] and BatchPlan(n, batch, world, rank, seed=3).weights(accumulate),
                shards[rank],
                strict=True,
            )
        ):
            if len(idx):
                got[i // accumulate] += w * values[idx].mean().item() / world
    start = 0
    for c in range(0, len(sizes), accumulate):
        count = sum(sizes[c : c + accumulate])
        whole = torch.cat(list(one)[c : c + accumulate])
        assert len(whole) == count
        assert got[c // accumulate] == pytest.approx(values[whole].mean().item())
        start += count
    assert BatchPlan(n, batch, seed=3).weights(1) == [1.0] * len(BatchPlan(n, batch).sizes)
    # different epochs, different orders; the same epoch, the same order
    other = BatchPlan(n, batch, seed=3)
    other.set_epoch(6)
    assert torch.equal(torch.cat(list(one)), torch.cat(list(one)))
    assert not torch.equal(torch.cat(list(one)), torch.cat(list(other))) or n < 4


def test_streaming_digits_with_augmentation(tmp_path):
    run = quick(
        tmp_path, epochs=1, data={"augment": [{"RandomAffine": {"degrees": 10}}], "workers": 0}
    )
    assert run.history[0]["train_loss"] > 0
    run = quick(tmp_path, epochs=1, name="stream", data={"in_memory": False, "workers": 1})
    assert run.history[0]["train_acc"] > 0


def test_fakedata_and_imagefolder(tmp_path):
    rgb = tmp_path / "rgb.yaml"
    rgb.write_text(TINY.replace("[1, 8, 8]", "[3, 8, 8]"))
    run = quick(tmp_path, spec=rgb, epochs=1, data={"name": "FakeData", "args": {"size": 96}})
    assert run.summary["test_samples"] == 19
    from PIL import Image

    root = tmp_path / "images"
    for split in ("train", "val"):
        for label, color in (("ants", 30), ("bees", 220)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(6):
                Image.new("L", (12, 10), color + i).save(folder / f"{i}.png")
    spec2 = tmp_path / "two.yaml"
    spec2.write_text(TINY.replace("out_features: 10", "out_features: 2"))
    run = quick(
        tmp_path,
        spec=spec2,
        epochs=3,
        data={
            "name": "ImageFolder",
            "root": str(root),
            "val_split": 0,
            "transforms": ["Grayscale", {"Resize": {"size": [8, 8]}}],
        },
    )
    # val/ is the validation split (nothing held out of train/), and there is no test split
    assert run.summary["best_val_acc"] is not None and "test_samples" not in run.summary
    state = ckpt_io.load(run.dir / "last.pt")
    assert state["classes"] == ["ants", "bees"]


def test_other_losses_schedulers_precision(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    run = quick(
        tmp_path,
        spec=spec,
        name="mse",
        epochs=1,
        loss="MSELoss",
        scheduler={"OneCycleLR": {"max_lr": 0.01}},
        clip_grad_norm=1.0,
    )
    assert run.history[0]["train_loss"] > 0
    run = quick(
        tmp_path,
        spec=spec,
        name="bf16",
        epochs=1,
        precision="bf16",
        scheduler={"StepLR": {"step_size": 1, "gamma": 0.5}},
        optimizer="AdamW",
    )
    assert run.history[0]["lr"] == pytest.approx(0.001)


def test_eval_predict_and_plot(tmp_path, capsys):
    run = quick(tmp_path, epochs=6)
    best = run.dir / "best.pt"
    assert main(["eval", str(LENET), "--weights", str(best), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "test" and result["samples"] == 359
    assert result["acc"] == pytest.approx(run.summary["test_acc"])
    # a plain state_dict file works too
    plain = tmp_path / "weights.pt"
    torch.save(run.model.state_dict(), plain)
    assert main(["eval", str(LENET), "--weights", str(plain), "--split", "val"]) == 0
    assert capsys.readouterr().out.startswith("val: loss")

    from PIL import Image

    from netspec.train.data import digits_arrays

    x, y = digits_arrays()
    files, labels = [], []
    for i in range(0, 1797, 90):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray((x[i, 0].numpy() * 255).round().astype("uint8")).resize((32, 32)).save(path)
        files.append(str(path))
        labels.append(str(int(y[i])))
    assert main(["predict", str(LENET), "--weights", str(best), "--top-k", "3", *files]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(files) and lines[0].startswith(files[0] + ": ")
    top1 = [line.split(": ")[1].split()[0] for line in lines]
    assert sum(a == b for a, b in zip(top1, labels, strict=True)) >= 0.8 * len(files)

    out = tmp_path / "curves.png"
    assert main(["plot", str(run.dir), "-o", str(out)]) == 0
    with Image.open(out) as img:
        assert img.size[0] > 600
    assert main(["plot", str(tmp_path)]) == 1


def test_eval_and_predict_refuse_weights_of_another_network(tmp_path, capsys):
    """The same loader as export (train.checkpoint.load_weights): a checkpoint of another
    spec is refused naming both, a plain state_dict that does not fit names the keys."""
    run = quick(tmp_path, epochs=1)
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(TINY.replace("input: [1, 8, 8]", "input: [1, 8, 8]\ntrain: {data: digits}"))
    assert main(["eval", str(tiny), "--weights", str(run.dir / "best.pt")]) == 1
    err = capsys.readouterr().err
    assert "was trained from spec 'LeNet5Digits'" in err and "but this is 'Tiny'" in err, err
    plain = tmp_path / "plain.pt"
    torch.save({"fc.weight": torch.zeros(10, 64)}, plain)
    assert main(["predict", str(tiny), "--weights", str(plain), str(plain)]) == 1
    err = capsys.readouterr().err
    assert f"{plain} does not fit {tiny}: missing keys: 1.weight, 1.bias, 3.weight" in err, err
    assert "unexpected keys: fc.weight" in err


def test_compile_trains_and_checkpoints_the_plain_module(tmp_path):
    """--compile on the CPU (inductor): it trains like eager, and the checkpoint holds the
    plain module's keys (no _orig_mod.), so it resumes and evaluates uncompiled."""
    torch._dynamo.reset()
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    compiled = quick(tmp_path, spec=spec, name="compiled", epochs=1, compile=True, seed=3)
    eager = quick(tmp_path, spec=spec, name="eager", epochs=1, seed=3)
    state = ckpt_io.load(compiled.dir / "last.pt")["model"]
    assert set(state) == set(ckpt_io.load(eager.dir / "last.pt")["model"])
    assert not any(k.startswith("_orig_mod") for k in state)
    ours, theirs = compiled.history[0], eager.history[0]
    assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-3)
    assert ours["val_acc"] == pytest.approx(theirs["val_acc"], abs=0.02)
