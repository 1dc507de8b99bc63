"""The command line: thin wrappers over the Python API.  `netspec --help` lists commands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

EXAMPLES = """\
examples:
  netspec check specs/tutorial_cifar10.yaml          shapes and parameters of every layer
  netspec check specs/*.yaml --json                  one JSON object per file, for tools and CI
  netspec check specs/vgg16.yaml --input 3,64,64     the same network on another input size
  netspec build specs/lenet5.yaml                    build it in PyTorch and run a dry forward pass
  netspec layers                                     every layer type netspec knows
  netspec schema > netspec.schema.json               the JSON Schema, for editors
  netspec train specs/lenet5_digits.yaml             train, evaluate, checkpoint (see train -h)
  netspec eval SPEC --weights best.pt                test-set loss and accuracy of weights
  netspec predict SPEC --weights best.pt a.png       top-k classes of images
  netspec plot runs/NAME/TIME -o curves.png          loss and accuracy curves of a run

exit status: 0 fine, 1 the spec has errors, 2 unreadable file or bad usage"""


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").replace("×", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape such as 3,64,64") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"'{text}': every dimension must be a positive integer")
    return dims


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netspec",
        description="Declare a PyTorch network in YAML; check every shape statically, build it.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="validate specs and infer every shape (no torch)",
        description="Validate specs and print the shape and parameter count "
        "of every layer.  Errors are FILE:LINE:COL: error: message.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument(
        "--json", action="store_true", help="print one JSON object per file (a line each)"
    )
    check.add_argument(
        "--input",
        type=_shape,
        metavar="SHAPE",
        help="override the spec's input shape, e.g. 3,64,64",
    )
    check.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    check.add_argument("--depth", type=int, metavar="N",
                       help="show groups and blocks only N levels deep (default: all)")

    build = sub.add_parser(
        "build",
        help="build the torch module and run a dry forward pass",
        description="Build the spec with PyTorch, print the module and check "
        "a forward pass on zeros against the static shapes.",
    )
    build.add_argument("file", metavar="FILE")
    build.add_argument("--input", type=_shape, metavar="SHAPE", help="override the input shape")
    build.add_argument("--batch", type=int, default=2, help="batch size of the dry run (2)")

    sub.add_parser("layers", help="list the layer types and their arguments")
    schema = sub.add_parser("schema", help="print the JSON Schema of a spec")
    schema.add_argument(
        "--write",
        action="store_true",
        help="regenerate schemas/netspec.schema.json from the layer registry",
    )
    from .train.commands import add_parsers  # train, eval, predict, plot (torch imported lazily)

    add_parsers(sub)
    return parser


def _version() -> str:
    from . import __version__

    return f"netspec {__version__}"


def cmd_check(args: argparse.Namespace) -> int:
    from .check import check
    from .errors import SpecError

    status = 0
    for path in args.files:
        try:
            spec = load_file(path)
        except OSError as exc:
            print(f"netspec: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
            status = max(status, 2)
            continue
        except SpecError as exc:
            result = _failed(path, exc)
        else:
            result = check(spec, args.input)

        if args.json:
            print(json.dumps(result.as_json(), ensure_ascii=False))
        else:
            for d in result.diagnostics:
                print(d.format(), file=sys.stderr)
            if result.layers and result.ok and not args.quiet:
                print(result.table(args.depth))
            elif not result.ok:
                n = len(result.errors)
                print(f"{path}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
        if not result.ok:
            status = max(status, 1)
    return status


def load_file(path: str):
    from pathlib import Path

    from .check import Spec
    from .loader import read_file

    if Path(path).is_dir():
        raise IsADirectoryError(21, "is a directory")
    return Spec(read_file(path))


def _failed(path: str, exc):
    from .check import CheckResult

    return CheckResult(path, exc.diagnostics)


def cmd_build(args: argparse.Namespace) -> int:
    from .errors import SpecError

    try:
        spec = load_file(args.file)
        from .check import check

        result = check(spec, args.input)
        if not result.ok:
            for d in result.diagnostics:
                print(d.format(), file=sys.stderr)
            return 1
        import torch

        from .build import build

        model = build(spec, args.input)
    except OSError as exc:
        print(f"netspec: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except SpecError as exc:
        for d in exc.diagnostics:
            print(d.format(), file=sys.stderr)
        return 1
    print(model)
    net = result.network
    dtype = getattr(torch, net.input_dtype)
    x = torch.zeros((args.batch, *net.input_shape), dtype=dtype)
    model.eval()
    with torch.no_grad():
        y = model(x)
    expected = (args.batch, *result.output_shape)
    same = tuple(y.shape) == expected
    params = sum(p.numel() for p in model.parameters())
    print(
        f"dry run: {tuple(x.shape)} -> {tuple(y.shape)}; static check said {expected}: "
        f"{'agrees' if same else 'DISAGREES'}; {params:,} parameters "
        f"(check said {result.total_params:,})"
    )
    return 0 if same and params == result.total_params else 1


def cmd_layers(args: argparse.Namespace) -> int:
    from .layers import REGISTRY
    from .layers._base import REQUIRED

    by_family: dict[str, list[str]] = {}
    for name in sorted(REGISTRY):
        lt = REGISTRY[name]
        parts = []
        for a in lt.args:
            if a.infer is not None:
                parts.append(f"{a.name}=<inferred>")
            elif a.default is REQUIRED:
                parts.append(a.name)
            else:
                parts.append(f"{a.name}={a.default!r}")
        by_family.setdefault(lt.family, []).append(f"  {name}({', '.join(parts)})")
    for family in sorted(by_family):
        print(f"{family}:")
        print("\n".join(by_family[family]))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from . import schema

    text = schema.dumps(schema.generate())
    if args.write:
        schema.SCHEMA_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {schema.SCHEMA_FILE}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


COMMANDS = {"check": cmd_check, "build": cmd_build, "layers": cmd_layers, "schema": cmd_schema}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        if args.command not in COMMANDS:
            from .train.commands import COMMANDS as TRAIN_COMMANDS

            return TRAIN_COMMANDS[args.command](args, list(sys.argv[1:] if argv is None else argv))
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
