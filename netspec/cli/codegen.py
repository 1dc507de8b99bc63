"""netspec codegen: the command line of netspec.emit.codegen."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from netspec.cli.common import Command, cannot_read, load_file, print_diagnostics
from netspec.core.diagnostics import SpecError
from netspec.emit.codegen import STYLES, CodegenError, StyleError, generate

CLI_EXAMPLES = """\
examples:
  netspec codegen specs/zoo/resnet18.yaml -o resnet18.py     classes BasicBlock, ResNet18
  netspec codegen specs/tutorial_cifar10.yaml --style ordereddict
  netspec codegen specs/vgg16.yaml --style sequential > vgg16.py

styles (the four ways the PyTorch tutorials write a model), what each writes for Net:
  class        class Net(nn.Module): self.conv1 = nn.Conv2d(...) ... in __init__ and an
               explicit forward (x = self.conv1(x) ...); each block its own class (one
               whose layers are all unnamed an nn.Sequential subclass, as torchvision's
               Conv2dNormActivation); every spec, branching ones included
  sequential   class Net(nn.Sequential): super().__init__(nn.Conv2d(...), ...), children
               numbered 0, 1, ...: the spec's names are given up, and the file says so
  add-module   class Net(nn.Sequential): self.add_module("conv1", nn.Conv2d(...)) ...
  ordereddict  class Net(nn.Sequential): super().__init__(OrderedDict([("conv1", ...), ...]))
The last three take chains only (no from:, merges, function ops or ties).  In class,
add-module and ordereddict, the top-level layers that the spec leaves unnamed are named as
the tutorials name them (conv1, pool1, bn1, fc1; otherwise the op's name lowercased:
relu1, flatten); inside groups and repeats unnamed children keep PyTorch's numbers
(features.0).  The file needs only torch.  Its state_dict keys are netspec.build's
where it keeps the spec's names; where it gives names up or gives them, its docstring says
so, and build's weights load by position:
  model.load_state_dict(dict(zip(model.state_dict(), weights.values())))
exit status: 0 written, 1 the spec has errors or the style cannot express it, 2 unreadable
file or bad usage"""

OPTIONS = {
    "description": "Write the spec as a Python file that defines the network with torch.nn "
    "only (the class named by the spec's name:), with each layer's output shape as a "
    "comment.  Formatted as ruff formats it; the same spec gives the same bytes.",
    "epilog": CLI_EXAMPLES,
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="SPEC")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="the .py file to write (default: standard output)")
    parser.add_argument("--style", choices=STYLES, default="class",
                        help="how the module is written (default: class)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    try:
        spec = load_file(args.file)
        source = generate(spec, args.style)
    except OSError as exc:
        return cannot_read(args.file, exc)
    except (StyleError, CodegenError) as exc:  # one line says it all: no error count
        for d in exc.diagnostics:
            print(d.format(), file=sys.stderr)
        return 1
    except SpecError as exc:
        return print_diagnostics(args.file, exc.diagnostics)
    if not args.output:
        sys.stdout.write(source)
        return 0
    out = Path(args.output)
    try:
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(source, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        print(f"netspec: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({args.style} style)", file=sys.stderr)
    return 0


COMMANDS = {"codegen": Command(OPTIONS, configure, run)}
