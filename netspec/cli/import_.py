"""`netspec import TARGET`: the command line of netspec.importer (torch imported when run)."""

from __future__ import annotations

import argparse
import sys

from netspec.cli.common import Command, shape

IMPORT_EXAMPLES = """\
examples:
  netspec import torchvision:resnet18 -o resnet18.yaml
  netspec import torchvision:googlenet --kwargs '{"aux_logits": false, "init_weights": false}'
  netspec import my_package.models:make_net --input 1,28,28 --name Net

TARGET is module:callable, called with no arguments (or --kwargs, a JSON object); it must
return an nn.Module.  torchvision:NAME means torchvision.models.NAME.

Only model factories are called: nn.Module classes and functions not declared to return
anything else, never loaders (torch.hub, torch.load, ...).

exit status: 0 written and checked, 1 the model cannot be expressed as a spec (the message
names the module or operation) or the target exited (sys.exit) instead of returning a
model, 2 bad usage, or the target cannot be imported or called"""


OPTIONS = {
    "description": "Write a spec for an existing model: its modules become groups and "
    "layers with the same names (so its state_dict loads strictly), its forward's "
    "additions, concatenations and flattens become merges and layers.",
    "epilog": IMPORT_EXAMPLES,
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="module:callable, e.g. torchvision:resnet18")
    p.add_argument("-o", "--output", metavar="FILE", help="write the spec here (default: stdout)")
    p.add_argument("--input", type=shape, metavar="SHAPE",
                   help="one sample's shape, e.g. 3,224,224 (the default)")
    p.add_argument("--name", help="the spec's name (default: the model's class name)")
    p.add_argument("--kwargs", metavar="JSON",
                   help="keyword arguments for the callable, a JSON object: "
                   "'{\"num_classes\": 10}'")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from netspec.core.names import IDENTIFIER

    if args.name is not None and not IDENTIFIER.fullmatch(args.name):
        print(f"netspec import: --name '{args.name}' is not a Python identifier", file=sys.stderr)
        return 2
    from netspec.importer.fx import (
        DEFAULT_INPUT,
        ImportProblem,
        TargetError,
        parse_kwargs,
    )
    from netspec.pipeline.imported import import_target

    try:
        kwargs = parse_kwargs(args.kwargs)
        text, imported, result = import_target(args.target, kwargs, args.input or DEFAULT_INPUT,
                                               args.name)
    except TargetError as exc:
        print(f"netspec import: {exc}", file=sys.stderr)
        return exc.status  # 2; 1 for a target that exited instead of returning a model
    except ImportProblem as exc:
        print(f"netspec import: cannot express {args.target} as a spec: {exc}", file=sys.stderr)
        return 1
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            print(f"netspec import: cannot write {args.output}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
    else:
        sys.stdout.write(text)
    for note in imported.notes:
        print(f"netspec import: note: {note}", file=sys.stderr)
    from netspec.ops import fmt

    where = args.output or "the spec"
    print(f"netspec import: wrote {where}: {result.network.name}, input "
          f"{fmt(result.network.input_shape)} -> {fmt(result.output_shape)}, "
          f"{result.total_params:,} parameters; netspec check: ok", file=sys.stderr)
    return 0


COMMANDS = {"import": Command(OPTIONS, configure, run)}
