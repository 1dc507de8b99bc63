"""What the command modules share: argument types, reading a spec file, printing problems.

Library code never imports this (import-linter's layers contract: cli is the top layer).
Importing it costs nothing beyond argparse: the pipeline is imported inside the functions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

EXAMPLES = """\
examples:
  netspec check specs/tutorial_cifar10.yaml          shapes and parameters of every layer
  netspec check specs/*.yaml --json                  one JSON object per file, for tools and CI
  netspec check specs/vgg16.yaml --input 3,64,64     the same network on another input size
  netspec build specs/lenet5.yaml                    build it in PyTorch and run a dry forward pass
  netspec summary specs/zoo/resnet18.yaml --depth 2  params, MACs and memory per layer (no torch)
  netspec render specs/zoo/resnet18.yaml -o net.svg --depth 2   the network as a diagram
  netspec report specs/zoo/resnet18.yaml -o report.html          diagram + table, one HTML file
  netspec export specs/zoo/resnet18.yaml -o r18.onnx  ONNX (or .ts, .pt2), verified
  netspec codegen specs/zoo/resnet18.yaml -o r18.py   a plain PyTorch file (no torch needed)
  netspec layers                                     every layer type netspec knows
  netspec schema -o netspec.schema.json              the JSON Schema, for editors
  netspec zoo                                        the example specs shipped with netspec
  netspec zoo resnet18 -o my.yaml                    copy one to start from
  netspec train specs/lenet5_digits.yaml             train, evaluate, checkpoint (see train -h)
  netspec eval SPEC --weights best.pt                test-set loss and accuracy of weights
  netspec predict SPEC --weights best.pt a.png       top-k classes of images
  netspec plot runs/NAME/TIME -o curves.png          loss and accuracy curves of a run
  netspec weights runs/NAME/TIME/best.pt -o net.pt   plain weights: torch.load, load_state_dict

exit status: 0 fine, 1 the spec has errors, 2 unreadable file or bad usage"""


class Command(NamedTuple):
    """One command of a command module: how its parser is made, and what runs it."""

    options: dict[str, Any]  # ArgumentParser keywords: description, epilog, formatter_class
    configure: Callable[[argparse.ArgumentParser], None]  # adds the arguments
    run: Callable[[argparse.Namespace, list[str]], int]  # (parsed arguments, argv) -> status


def shape(text: str) -> tuple[int, ...]:
    """An argparse type: an input shape such as 3,64,64 (or 3x64x64)."""
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").replace("×", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape such as 3,64,64") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"'{text}': every dimension must be a positive integer")
    return dims


def positive(what: str):
    """An argparse type: a whole number, 1 or more (the depth, the batch, ...)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"'{text}': the {what} is a whole number, 1 or more")
        return value

    return parse


def diagram_options(parser: argparse.ArgumentParser) -> None:
    """--depth and --rankdir, as render and report take them."""
    parser.add_argument("--depth", type=positive("depth"), metavar="N",
                        help="draw N levels: 1 = the top-level entries only, every group, block "
                        "and repeat one box (default: everything)")
    parser.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                        help="top to bottom (default) or left to right")


def load_file(path: str):
    """The spec in a file, read and parsed (not checked); OSError or SpecError if it cannot be."""
    from pathlib import Path

    from netspec.core.document import read_file
    from netspec.pipeline.check import Spec

    if Path(path).is_dir():
        raise IsADirectoryError(21, "is a directory")
    return Spec(read_file(path))


def failed(path: str, exc):
    """The CheckResult of a file that could not be parsed: only the SpecError's diagnostics."""
    from netspec.pipeline.check import CheckResult

    return CheckResult(path, exc.diagnostics)


def load_or_failed(path: str):
    """The spec in a file, or, if it does not parse, the CheckResult holding why (summary,
    render and report show a broken spec's errors their own way); OSError if unreadable."""
    from netspec.core.diagnostics import SpecError

    try:
        return load_file(path)
    except SpecError as exc:
        return failed(path, exc)


def cannot_read(path: str, exc: OSError) -> int:
    """One line for a file that cannot be read (exit status 2)."""
    print(f"netspec: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
    return 2


def print_diagnostics(path: str, diagnostics) -> int:
    """Every diagnostic, then 'PATH: N errors' where there are errors; exit status 1 if so."""
    for d in diagnostics:
        print(d.format(), file=sys.stderr)
    n = sum(d.severity == "error" for d in diagnostics)
    if n:
        print(f"{path}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
    return 1 if n else 0
