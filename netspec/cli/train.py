"""The ``train``, ``eval``, ``predict`` and ``plot`` commands: argument parsing and the calls
into the train package.  Importing this module does not import torch (``netspec check``
stays fast); each command imports what it needs when it runs.

Exit status: 0 done, 1 a problem in the spec, the configuration or a checkpoint (printed as
``FILE:LINE:COL: error: ...`` or ``netspec: error: ...``), 2 an unreadable file or bad
usage, 130 stopped by Ctrl-C after saving."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from netspec.cli.common import Command, cannot_read
from netspec.train.config import CheckpointError, locate_flag, resolve_run

TRAIN_EXAMPLES = """\
examples:
  netspec train specs/lenet5_digits.yaml                     train as its train: section says
  netspec train specs/lenet5_digits.yaml --epochs 5 --lr 0.01 --device cpu
  netspec train spec.yaml --config train.yaml --set optimizer.SGD.momentum=0.9
  netspec train spec.yaml --nproc-per-node 2                 2 processes (torchrun, DDP)
  torchrun --nproc-per-node 4 -m netspec train spec.yaml     the same, launched by torchrun
  netspec train --resume runs/LeNet5Digits/20250101-120000    continue a stopped run
  netspec eval spec.yaml --weights runs/NAME/TIME/best.pt     test-set loss and accuracy
  netspec predict spec.yaml --weights best.pt digit.png      top-5 classes of an image
  netspec plot runs/NAME/TIME -o curves.png                  loss and accuracy curves

The batch size is global: with N processes each takes batch_size/N samples of every step,
so a run's result does not depend on how many processes run it."""

# flag -> (path in the train configuration, argparse type, help)
CONFIG_FLAGS: dict[str, tuple[tuple, Any, str]] = {
    "--epochs": (("epochs",), int, "number of epochs"),
    "--batch-size": (("batch_size",), int, "samples per optimizer step, over all processes"),
    "--eval-batch-size": (("eval_batch_size",), int, "samples per evaluation batch"),
    "--lr": (("lr",), float, "learning rate (overrides the optimizer's lr)"),
    "--optimizer": (("optimizer",), str, "torch.optim name: SGD, Adam, AdamW, ..."),
    "--loss": (("loss",), str, "torch.nn loss name: CrossEntropyLoss, MSELoss, ..."),
    "--scheduler": (("scheduler",), str, "torch.optim.lr_scheduler name: StepLR, ..."),
    "--accumulate": (("accumulate",), int, "batches per optimizer step (gradient accumulation)"),
    "--clip-grad-norm": (("clip_grad_norm",), float, "clip the gradient norm to this value"),
    "--seed": (("seed",), int, "random seed (weights, data order, dropout)"),
    "--device": (("device",), str, "auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps"),
    "--precision": (("precision",), str, "fp32, bf16 (autocast) or fp16 (cuda, scaled)"),
    "--data": (("data", "name"), str, "digits, FakeData, ImageFolder or a torchvision dataset"),
    "--data-root": (("data", "root"), str, "folder of the dataset's files"),
    "--val-split": (("data", "val_split"), float, "fraction of the training set held out"),
    "--workers": (("data", "workers"), int, "DataLoader worker processes"),
    "--runs": (("runs",), str, "folder that receives runs/NAME/TIMESTAMP (runs)"),
    "--name": (("name",), str, "run name (default: the spec's name)"),
    "--progress": (("progress",), str, "auto, bar, plain or none"),
}
BOOL_FLAGS: dict[str, tuple[tuple, str]] = {
    "--compile": (("compile",), "torch.compile the model"),
    "--download": (("data", "download"), "download a torchvision dataset if absent"),
    "--tensorboard": (("tensorboard",), "write TensorBoard event files"),
    "--deterministic": (("deterministic",), "deterministic algorithms (slower on GPUs)"),
}
DATA_FLAGS = (
    "--data",
    "--data-root",
    "--val-split",
    "--workers",
    "--device",
    "--precision",
    "--eval-batch-size",
    "--loss",
)


def _dest(flag: str) -> str:
    return "cfg_" + flag.lstrip("-").replace("-", "_")


def _add_config(p: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    group = p.add_argument_group("configuration (each overrides the train: section)")
    group.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="a YAML file of train settings (repeatable; later ones win)",
    )
    group.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any setting by its dotted path, the value in YAML: "
        "--set data.val_split=0.2 --set optimizer.SGD.momentum=0.9",
    )
    for flag, (_, kind, text) in CONFIG_FLAGS.items():
        if only is None or flag in only:
            group.add_argument(
                flag,
                type=kind,
                dest=_dest(flag),
                metavar=flag[2:].upper().replace("-", "_"),
                help=text,
            )
    for flag, (_, text) in BOOL_FLAGS.items():
        if only is None or flag in only:
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, dest=_dest(flag), help=text
            )


TRAIN_OPTIONS = {
    "description": "Train the network of a spec on the data of its train: section (default: "
    "the 8x8 digits scikit-learn ships), evaluating, checkpointing (last.pt, best.pt) and "
    "logging (metrics.jsonl, TensorBoard) into runs/NAME/TIMESTAMP/.",
    "epilog": TRAIN_EXAMPLES,
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


def configure_train(train: argparse.ArgumentParser) -> None:
    train.add_argument(
        "spec",
        nargs="?",
        metavar="SPEC",
        help="the spec file (optional with --resume: the run's spec.yaml)",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a run from its last.pt (a run folder or a .pt file)",
    )
    train.add_argument(
        "--stop-after",
        type=int,
        metavar="EPOCHS",
        help="end this invocation after EPOCHS epochs (resumable), e.g. to fit a job's time limit",
    )
    train.add_argument(
        "--ignore-memory",
        action="store_true",
        help="train even when the model, its gradients and one batch need more memory than "
        "is available",
    )
    _add_config(train)
    launch = train.add_argument_group("processes (torchrun's launcher, DDP)")
    launch.add_argument(
        "--nproc-per-node", type=int, metavar="N", help="start N worker processes on this machine"
    )
    launch.add_argument("--nnodes", metavar="N", help="number of machines (or MIN:MAX)")
    launch.add_argument("--node-rank", type=int, metavar="R", help="this machine's rank")
    launch.add_argument("--master-addr", metavar="HOST", help="rank 0's address")
    launch.add_argument("--master-port", type=int, metavar="PORT", help="rank 0's port")
    launch.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="c10d rendezvous endpoint")


EVAL_OPTIONS = {
    "description": "Evaluate weights (a netspec checkpoint or a state_dict "
    "file) on a split of the spec's data.",
}


def configure_eval(ev: argparse.ArgumentParser) -> None:
    ev.add_argument("spec", metavar="SPEC")
    ev.add_argument("--weights", required=True, metavar="FILE", help="best.pt, last.pt, ...")
    ev.add_argument("--split", choices=("test", "val", "train"), default="test")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    _add_config(ev, DATA_FLAGS)


PREDICT_OPTIONS = {
    "description": "Classify image files with trained weights: each image is "
    "converted to the spec's channels and size and through the data's "
    "transforms.",
}


def configure_predict(pr: argparse.ArgumentParser) -> None:
    pr.add_argument("spec", metavar="SPEC")
    pr.add_argument("images", nargs="+", metavar="IMAGE")
    pr.add_argument("--weights", required=True, metavar="FILE")
    pr.add_argument("--top-k", type=int, default=5, metavar="K")
    pr.add_argument("--json", action="store_true", help="one JSON object per image")
    _add_config(pr, ("--device", "--data"))


PLOT_OPTIONS = {"description": "Plot metrics.jsonl of a run folder to an image."}


def configure_plot(pl: argparse.ArgumentParser) -> None:
    pl.add_argument("run_dir", metavar="RUN_DIR")
    pl.add_argument("-o", "--output", metavar="FILE", help="image file (RUN_DIR/curves.png)")


def overrides(args: argparse.Namespace, argv: list[str]) -> list[tuple[tuple, Any, tuple]]:
    """The command line's settings, each with where it was written."""
    import yaml

    out = []
    for flag, (path, _, _) in CONFIG_FLAGS.items():
        value = getattr(args, _dest(flag), None)
        if value is not None:
            out.append((path, value, locate_flag(argv, flag)))
    for flag, (path, _) in BOOL_FLAGS.items():
        value = getattr(args, _dest(flag), None)
        if value is not None:
            name = flag if value else "--no-" + flag[2:]
            out.append((path, value, locate_flag(argv, name)))
    for item in args.set:
        origin = locate_flag(argv, "--set", item)
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise _Usage(f"--set {item}: write KEY=VALUE, e.g. --set data.val_split=0.2")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        out.append((tuple(p for p in key.strip().split(".")), value, origin))
    return out


class _Usage(Exception):
    pass


def _is_worker() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def _quiet_rank() -> bool:
    return _is_worker() and os.environ.get("RANK") != "0"


def _report(exc: BaseException) -> int:
    """Print a known error the way the rest of netspec does; its exit status."""
    from netspec.core.diagnostics import SpecError

    if _quiet_rank():
        return 1
    if isinstance(exc, SpecError):
        for d in exc.diagnostics:
            print(d.format(), file=sys.stderr)
        return 1
    if isinstance(exc, OSError):
        return cannot_read(getattr(exc, "filename", None) or "", exc)
    print(f"netspec: error: {exc}", file=sys.stderr)
    return 2 if isinstance(exc, _Usage) else 1


def _known_errors() -> tuple[type, ...]:
    from netspec.core.diagnostics import SpecError
    from netspec.emit.memory import NotEnoughMemory
    from netspec.train.plot import PlotError

    return (SpecError, CheckpointError, PlotError, OSError, _Usage, NotEnoughMemory)


def run_train(args: argparse.Namespace, argv: list[str]) -> int:
    if args.spec is None and args.resume is None:
        print("netspec train: error: give a SPEC file, or --resume RUN_DIR", file=sys.stderr)
        return 2
    try:
        settings = overrides(args, argv)
        resolve_run(args.spec, args.config, settings, args.resume)  # errors at once, no torch
        if args.nproc_per_node and not _is_worker():
            from netspec.train.distributed import launch, strip_launch_flags

            return launch(
                args.nproc_per_node,
                strip_launch_flags(argv),
                args.nnodes,
                args.node_rank,
                args.master_addr,
                args.master_port,
                args.rdzv_endpoint,
            )
        from netspec.train.loop import train

        run = train(
            args.spec,
            config_files=args.config,
            overrides=settings,
            resume=args.resume,
            stop_after=args.stop_after,
            ignore_memory=args.ignore_memory,
        )
    except _known_errors() as exc:
        return _report(exc)
    return 130 if run.interrupted else 0


def run_eval(args: argparse.Namespace, argv: list[str]) -> int:
    try:
        settings = overrides(args, argv)
        from netspec.train.predict import evaluate

        result = evaluate(args.spec, args.weights, args.split, args.config, settings)
    except _known_errors() as exc:
        return _report(exc)
    if args.json:
        print(json.dumps(result))
    else:
        top5 = "-" if result["top5"] is None else f"{100 * result['top5']:.2f}%"
        print(
            f"{result['split']}: loss {result['loss']:.4f}  top-1 {100 * result['acc']:.2f}%  "
            f"top-5 {top5}  ({result['samples']:,} samples, {args.weights})"
        )
    return 0


def run_predict(args: argparse.Namespace, argv: list[str]) -> int:
    if args.top_k < 1:
        print("netspec predict: error: --top-k must be at least 1", file=sys.stderr)
        return 2
    try:
        settings = overrides(args, argv)
        from netspec.train.predict import predict

        rows = predict(args.spec, args.weights, args.images, args.top_k, args.config, settings)
    except _known_errors() as exc:
        return _report(exc)
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            tops = "  ".join(f"{t['class']} {100 * t['prob']:.1f}%" for t in row["top"])
            print(f"{row['file']}: {tops}")
    return 0


def run_plot(args: argparse.Namespace, argv: list[str]) -> int:
    try:
        from netspec.train.plot import plot

        out = plot(args.run_dir, args.output)
    except _known_errors() as exc:
        return _report(exc)
    print(f"wrote {out}", file=sys.stderr)
    return 0


COMMANDS = {
    "train": Command(TRAIN_OPTIONS, configure_train, run_train),
    "eval": Command(EVAL_OPTIONS, configure_eval, run_eval),
    "predict": Command(PREDICT_OPTIONS, configure_predict, run_predict),
    "plot": Command(PLOT_OPTIONS, configure_plot, run_plot),
}
