"""netspec train's configuration: every bad value is a positioned FILE:LINE:COL error (in the
spec, a --config file or the command line), exit 1 and never a traceback; `netspec check`
accepts a train: section and still imports no torch."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from netspec import SpecError
from netspec.train import ConfigError
from netspec.train.config import resolve_run

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(.+):(\d+):(\d+): error: (.+)$")
NET = """netspec: 1
name: Tiny
input: [1, 8, 8]
layers:
  - Flatten
  - Linear: {out_features: 10}
"""


def spec_file(tmp_path: Path, train: str = "", net: str = NET) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(net + train, encoding="utf-8")
    return path


def errors(spec: Path, overrides=None, configs=()) -> list:
    with pytest.raises(SpecError) as info:  # ConfigError is a SpecError
        resolve_run(str(spec), list(configs), overrides)
    return info.value.diagnostics


def one(spec: Path, line: int, col: int, fragment: str, **kw):
    found = errors(spec, **kw)
    assert len(found) == 1, [d.format() for d in found]
    d = found[0]
    assert (d.line, d.col) == (line, col) and fragment in d.message, d.format()
    return d


def cli(*args: str, cwd: Path = ROOT, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "netspec", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


# ---------------------------------------------------------------- the spec's train: section


@pytest.mark.parametrize(
    "train, line, col, fragment",
    [
        ("train:\n  epochs: 0\n", 8, 11, "train.epochs must be a positive integer, got 0"),
        ("train:\n  epochs: 2.5\n", 8, 11, "train.epochs must be an integer, got 2.5"),
        ("train:\n  epoch: 3\n", 8, 3, "unknown key 'epoch' in train (did you mean 'epochs'?)"),
        ("train:\n  batch_size: yes\n", 8, 15, "must be an integer, got true"),
        ("train:\n  lr: -0.1\n", 8, 7, "train.lr must be positive"),
        ("train:\n  precision: bf17\n", 8, 14, "(did you mean 'bf16'?)"),
        ("train:\n  device: gpu\n", 8, 11, "train.device must be auto, cpu, cuda, cuda:N or mps"),
        ("train:\n  data: {name: digits, val_split: 1.5}\n", 8, 35, "val_split must be a fraction"),
        ("train:\n  data: {nam: digits}\n", 8, 10, "unknown key 'nam' in train.data (did you mean"),
        ("train:\n  optimizer: {Adam: {lr: 0.1}, SGD: {}}\n", 8, 14, "exactly one optimizer name"),
        ("train:\n  optimizer: {name: Adam}\n", 8, 15, "write the optimizer as the key"),
        (
            "train:\n  scheduler: {StepLR: {step_size: 2}, interval: hour}\n",
            8,
            49,
            "train.scheduler.interval must be one of 'epoch', 'step'",
        ),
        ("train:\n  data:\n    transforms: Normalize\n", 9, 17, "must be a list of transforms"),
        ("train: 5\n", 7, 8, "train must be a mapping, got 5"),  # the spec's schema says so
    ],
)
def test_spec_section_errors_are_positioned(tmp_path, train, line, col, fragment):
    one(spec_file(tmp_path, train), line, col, fragment)


def test_every_error_is_reported_at_once(tmp_path):
    found = errors(spec_file(tmp_path, "train:\n  epochs: 0\n  batch_size: -1\n  seed: x\n"))
    assert [(d.line, d.col) for d in found] == [(8, 11), (9, 15), (10, 9)]


def test_config_file_and_command_line_positions(tmp_path):
    spec = spec_file(tmp_path, "train:\n  epochs: 3\n")
    config = tmp_path / "train.yaml"
    config.write_text("# settings\nbatch_size: 64\noptimizer: {Adam: {lr: 0.1}}\naccumulate: 0\n")
    d = one(spec, 4, 13, "train.accumulate must be a positive integer", configs=[str(config)])
    assert d.file == str(config)
    # a --config file may also hold its settings under train:
    config.write_text("train:\n  accumulate: 0\n")
    assert one(spec, 2, 15, "accumulate", configs=[str(config)]).file == str(config)
    # the command line: the column where the flag starts
    origin = ("<command line>", 1, 31)
    d = one(
        spec, 1, 31, "train.epochs must be a positive integer", overrides=[(("epochs",), 0, origin)]
    )
    assert d.format().startswith("<command line>:1:31: error:")


def test_later_sources_win_and_data_merges_key_by_key(tmp_path):
    spec = spec_file(
        tmp_path, "train:\n  epochs: 3\n  data: {name: digits, val_split: 0.2}\n  optimizer: SGD\n"
    )
    config = tmp_path / "c.yaml"
    config.write_text("data: {split_seed: 5}\nepochs: 4\n")
    _, _, cfg, _ = resolve_run(
        str(spec), [str(config)], {"epochs": 6, "optimizer.SGD.momentum": 0.9}
    )
    assert cfg.epochs == 6
    assert (cfg.data.name, cfg.data.val_split, cfg.data.split_seed) == ("digits", 0.2, 5)
    assert (cfg.optimizer.name, cfg.optimizer.kwargs) == ("SGD", {"momentum": 0.9})
    # the effective configuration round-trips through train.yaml
    (tmp_path / "again.yaml").write_text(cfg.dumps())
    _, _, again, _ = resolve_run(str(spec_file(tmp_path)), [str(tmp_path / "again.yaml")])
    assert again.as_dict() == cfg.as_dict()


def test_defaults_without_a_train_section(tmp_path):
    _, _, cfg, _ = resolve_run(str(spec_file(tmp_path)))
    assert cfg.data.name == "digits" and cfg.loss.name == "CrossEntropyLoss"
    assert cfg.optimizer.name == "Adam" and cfg.batch_size == 64


# ---------------------------------------------------------------- names checked against torch


def _components_error(tmp_path, train: str, build: str):
    import torch

    from netspec.train import components

    _, _, cfg, _ = resolve_run(str(spec_file(tmp_path, train)))
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ConfigError) as info:
        if build == "loss":
            components.build_loss(cfg)
        elif build == "optimizer":
            components.build_optimizer(cfg, model.parameters())
        elif build == "scheduler":
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            components.build_scheduler(cfg, opt, 10)
        else:
            components.build_transforms(cfg, cfg.data.transforms)
    (d,) = info.value.diagnostics
    return d


@pytest.mark.parametrize(
    "train, build, line, col, fragment",
    [
        (
            "train:\n  optimizer: Adamm\n",
            "optimizer",
            8,
            14,
            "unknown optimizer 'Adamm' (did you mean 'Adam'?)",
        ),
        (
            "train:\n  optimizer: {Adam: {lrr: 0.1}}\n",
            "optimizer",
            8,
            22,
            "unknown argument 'lrr' for optimizer Adam (did you mean 'lr'?)",
        ),
        (
            "train:\n  optimizer: {SGD: {lr: -1}}\n",
            "optimizer",
            8,
            14,
            "optimizer SGD: Invalid learning rate: -1",
        ),
        (
            "train:\n  loss: {CrossEntropyLoss: {label_smothing: 0.1}}\n",
            "loss",
            8,
            29,
            "unknown argument 'label_smothing' for loss CrossEntropyLoss (did you mean "
            "'label_smoothing'?)",
        ),
        ("train:\n  loss: CrossEntropy\n", "loss", 8, 9, "(did you mean 'CrossEntropyLoss'?)"),
        ("train:\n  scheduler: StepLR\n", "scheduler", 8, 14, "scheduler StepLR needs step_size"),
        (
            "train:\n  scheduler: {StepLR: [1, 0.5, 3, 4]}\n",
            "scheduler",
            8,
            23,
            "takes at most 3 positional arguments",
        ),
        (
            "train:\n  data:\n    transforms:\n      - Normalise: {mean: [0.5], std: [0.5]}\n",
            "transforms",
            10,
            9,
            "unknown transform 'Normalise' (did you mean 'Normalize'?)",
        ),
    ],
)
def test_torch_names_and_arguments_are_checked(tmp_path, train, build, line, col, fragment):
    d = _components_error(tmp_path, train, build)
    assert (d.line, d.col) == (line, col) and fragment in d.message, d.format()


def test_schedulers_fill_in_their_length(tmp_path):
    import torch

    from netspec.train import components

    _, _, cfg, _ = resolve_run(
        str(spec_file(tmp_path, "train:\n  epochs: 7\n  scheduler: {OneCycleLR: {max_lr: 0.5}}\n"))
    )
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    sched, interval = components.build_scheduler(cfg, opt, 13)
    assert interval == "step" and sched.total_steps == 7 * 13
    _, _, cfg, _ = resolve_run(
        str(spec_file(tmp_path, "train:\n  epochs: 7\n  scheduler: CosineAnnealingLR\n"))
    )
    sched, interval = components.build_scheduler(cfg, opt, 13)
    assert interval == "epoch" and sched.T_max == 7


# ---------------------------------------------------------------- data against the spec


def test_spec_input_is_checked_against_the_data(tmp_path):
    import torch

    from netspec.train import data

    net = NET.replace("input: [1, 8, 8]", "input: [1, 28, 28]")
    spec_path = spec_file(tmp_path, "", net)
    spec, result, cfg, _ = resolve_run(str(spec_path))
    d = data.prepare(cfg, (1, 28, 28), torch.device("cpu"))
    with pytest.raises(ConfigError) as info:
        data.check_shapes(cfg, d, spec, result)
    (diag,) = info.value.diagnostics
    assert (diag.line, diag.col) == (3, 8)
    assert "input is 1×28×28 but digits samples are 1×8×8" in diag.message
    assert "write input: [1, 8, 8]" in diag.message


def test_too_few_outputs_for_the_classes(tmp_path):
    import torch

    from netspec.train import data

    spec_path = spec_file(tmp_path, "", NET.replace("out_features: 10", "out_features: 4"))
    spec, result, cfg, _ = resolve_run(str(spec_path))
    d = data.prepare(cfg, (1, 8, 8), torch.device("cpu"))
    with pytest.raises(ConfigError) as info:
        data.check_shapes(cfg, d, spec, result)
    (diag,) = info.value.diagnostics
    assert diag.line == 6
    assert "outputs 4 scores per sample but digits has 10 classes" in diag.message


def test_absent_torchvision_dataset_without_network(tmp_path):
    import torch

    from netspec.train import data

    spec_path = spec_file(tmp_path, f"train:\n  data: {{name: MNIST, root: {tmp_path}}}\n")
    _, _, cfg, _ = resolve_run(str(spec_path))
    with pytest.raises(ConfigError) as info:
        data.prepare(cfg, (1, 8, 8), torch.device("cpu"))
    (diag,) = info.value.diagnostics
    assert (diag.line, diag.col) == (8, 16)
    assert f"MNIST is not under {tmp_path}" in diag.message
    assert "set data.download: true (needs network)" in diag.message


def test_unknown_dataset_name(tmp_path):
    import torch

    from netspec.train import data

    _, _, cfg, _ = resolve_run(str(spec_file(tmp_path, "train:\n  data: CIFAR-10\n")))
    with pytest.raises(ConfigError) as info:
        data.prepare(cfg, (1, 8, 8), torch.device("cpu"))
    message = info.value.diagnostics[0].message
    assert "unknown dataset 'CIFAR-10' (did you mean 'CIFAR10'?)" in message


# ---------------------------------------------------------------- the command line


def test_cli_config_errors_exit_1_without_traceback(tmp_path):
    spec = spec_file(tmp_path, "train:\n  optimizer: {Adam: {lrr: 0.1}}\n")
    r = cli("train", str(spec), "--epochs", "0", "--runs", str(tmp_path / "runs"))
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    col = len(f"netspec train {spec} ") + 1  # where --epochs starts
    assert line == f"<command line>:1:{col}: error: train.epochs must be a positive integer, got 0"
    # a torch-side problem: positioned in the spec, still exit 1
    r = cli("train", str(spec), "--runs", str(tmp_path / "runs"), "--progress", "none")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert LINE.match(r.stderr.strip().splitlines()[-1]).groups()[:3] == (str(spec), "8", "22")
    assert not (tmp_path / "runs").exists()


def test_cli_usage_errors_exit_2(tmp_path):
    r = cli("train")
    assert r.returncode == 2 and "give a SPEC file" in r.stderr
    r = cli("train", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr
    r = cli("train", str(spec_file(tmp_path)), "--set", "novalue")
    assert r.returncode == 2 and "KEY=VALUE" in r.stderr


def test_check_accepts_a_train_section_without_importing_torch(tmp_path):
    spec = spec_file(tmp_path, "train:\n  epochs: 3\n  optimizer: {SGD: {lr: 0.1}}\n")
    code = (
        f"import sys; from netspec.cli import main; rc = main(['check', '-q', {str(spec)!r}]); "
        "print(rc, 'torch' in sys.modules)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert r.stdout.split() == ["0", "False"], r.stderr
    r = cli("check", str(ROOT / "specs" / "lenet5_digits.yaml"))
    assert r.returncode == 0, r.stderr
