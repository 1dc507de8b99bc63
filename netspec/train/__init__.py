"""netspec train: one trainer that every spec shares.

    >>> from netspec.train import train
    >>> run = train("specs/lenet5_digits.yaml", overrides={"epochs": 5})
    >>> run.dir, run.summary["test_acc"]

One module per concern:

- ``config.py``: the ``train:`` section: defaults, sources (spec, ``--config``, command
  line) and positioned validation (no torch);
- ``components.py``: loss, optimizer, scheduler and transforms by torch name, their
  arguments checked against the constructor's signature;
- ``data.py``: datasets (digits, torchvision, ImageFolder, FakeData), splits, in-memory
  batching, DataLoader streaming;
- ``device.py``: device choice, precision (autocast, grad scaler), channels_last, compile;
- ``distributed.py``: torchrun environment, process group, the ``--nproc-per-node`` launcher;
- ``checkpoint.py``: atomic, verified checkpoints; the spec's hash;
- ``output.py``: run folders, metrics.jsonl, TensorBoard, progress bar or plain lines;
- ``loop.py``: the training and evaluation loop, resume, Ctrl-C;
- ``predict.py``: ``netspec eval`` and ``netspec predict``;
- ``plot.py``: ``netspec plot``, loss and accuracy curves;
- ``commands.py``: the command-line arguments of those commands.

Importing this package does not import torch; each entry point does when it is called."""

from __future__ import annotations

from typing import Any

from netspec.train.config import ConfigError, TrainConfig


def train(*args: Any, **kwargs: Any) -> Any:
    """Train a spec; see :func:`netspec.train.loop.train`."""
    from netspec.train.loop import train as _train

    return _train(*args, **kwargs)


def evaluate(*args: Any, **kwargs: Any) -> Any:
    """Evaluate weights on a data split; see :func:`netspec.train.predict.evaluate`."""
    from netspec.train.predict import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def predict(*args: Any, **kwargs: Any) -> Any:
    """Top-k classes for image files; see :func:`netspec.train.predict.predict`."""
    from netspec.train.predict import predict as _predict

    return _predict(*args, **kwargs)


__all__ = ["ConfigError", "TrainConfig", "evaluate", "predict", "train"]
