"""The command line: thin wrappers over the Python API.  `netspec --help` lists commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
    check.add_argument("--depth", type=positive("depth"), metavar="N",
                       help="show N levels of groups, blocks and repeats (1: the top-level "
                       "entries only; default: all)")

    build = sub.add_parser(
        "build",
        help="build the torch module and run a dry forward pass",
        description="Build the spec with PyTorch, print the module and check "
        "a forward pass on zeros against the static shapes.",
    )
    build.add_argument("file", metavar="FILE")
    build.add_argument("--input", type=_shape, metavar="SHAPE", help="override the input shape")
    build.add_argument("--batch", type=int, default=2, help="batch size of the dry run (2)")
    build.add_argument("--ignore-memory", action="store_true",
                       help="build even when the model and the dry run's batch need more "
                       "memory than is available")

    _render_parsers(sub)
    from netspec.cli.import_command import (
        add_import_parser,  # netspec import (torch imported when run)
    )

    add_import_parser(sub, _shape)
    from netspec.cli.export_command import (
        add_export_parser,  # netspec export (torch imported when run)
    )

    add_export_parser(sub, _shape)
    from netspec.cli.summary_command import add_summary_parser  # netspec summary (no torch)

    add_summary_parser(sub, _shape)
    from netspec.cli.codegen_command import add_codegen_parser  # netspec codegen (no torch)

    add_codegen_parser(sub)
    sub.add_parser("layers", help="list the layer types and their arguments")
    schema = sub.add_parser("schema", help="print the JSON Schema of a spec")
    schema.add_argument(
        "--write",
        action="store_true",
        help="regenerate schemas/netspec.schema.json from the layer registry",
    )
    from netspec.cli.train_commands import (
        add_parsers,  # train, eval, predict, plot (torch imported lazily)
    )

    add_parsers(sub)
    return parser


def _version() -> str:
    from netspec.core.version import __version__

    return f"netspec {__version__}"


def cmd_check(args: argparse.Namespace) -> int:
    from netspec.core.diagnostics import SpecError, json_text
    from netspec.pipeline.check import check

    status = 0
    for path in args.files:
        try:
            spec = load_file(path)
        except OSError as exc:
            status = max(status, cannot_read(path, exc))
            continue
        except SpecError as exc:
            result = _failed(path, exc)
        else:
            result = check(spec, args.input)

        if args.json:
            print(json_text(result.as_json()))
        else:
            print_diagnostics(path, result.diagnostics)
            if result.layers and result.ok and not args.quiet:
                print(result.table(args.depth))
        if not result.ok:
            status = max(status, 1)
    return status


def load_file(path: str):
    from pathlib import Path

    from netspec.core.document import read_file
    from netspec.pipeline.check import Spec

    if Path(path).is_dir():
        raise IsADirectoryError(21, "is a directory")
    return Spec(read_file(path))


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


def _failed(path: str, exc):
    from netspec.pipeline.check import CheckResult

    return CheckResult(path, exc.diagnostics)


def cmd_build(args: argparse.Namespace) -> int:
    from netspec.core.diagnostics import SpecError
    from netspec.emit.memory import NotEnoughMemory, guard

    try:
        spec = load_file(args.file)
        from netspec.pipeline.check import check

        result = check(spec, args.input)
        if not result.ok:
            return print_diagnostics(args.file, result.diagnostics)
        guard(result, batch=max(1, args.batch), ignore=args.ignore_memory)  # the dry run too
        import torch

        from netspec.emit.build import build

        model = build(result, ignore_memory=True)  # guarded above, with the batch
    except OSError as exc:
        return cannot_read(args.file, exc)
    except SpecError as exc:
        return print_diagnostics(args.file, exc.diagnostics)
    except NotEnoughMemory as exc:
        print(f"netspec build: error: {exc}", file=sys.stderr)
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
    from netspec.ops import REGISTRY
    from netspec.ops.declare import REQUIRED

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
    from netspec.pipeline import schema

    text = schema.dumps(schema.generate())
    if args.write:
        schema.SCHEMA_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {schema.SCHEMA_FILE}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _render_parsers(sub) -> None:
    render = sub.add_parser(
        "render",
        help="draw the network as a diagram (SVG, PNG, PDF or DOT; no torch)",
        description="Draw the network with Graphviz: a box per layer (type, key arguments, "
        "output shape, parameters), the shape on every edge, groups and blocks as clusters. "
        "A spec with errors is drawn too, its broken layers red with the message (exit 1). "
        "Exit 2: unreadable file, bad usage, or Graphviz's dot missing (the DOT is still "
        "written).",
    )
    render.add_argument("file", metavar="SPEC")
    render.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="the diagram file; its suffix picks the format (.svg .png .pdf .dot)")
    render.add_argument("--format", choices=("svg", "png", "pdf", "dot"),
                        help="the format, whatever the suffix")
    _diagram_options(render)
    render.add_argument("--compact", action="store_true",
                        help="fuse Conv + BN + ReLU (and Linear + ReLU) chains into one box")
    render.add_argument("--input", type=_shape, metavar="SHAPE", help="override the input shape")
    report = sub.add_parser(
        "report",
        help="one self-contained HTML page: diagram, summary table, check result",
        description="Write one HTML file with the rendered diagram (inline SVG), the summary "
        "table and the check result, for sharing.  Exit codes as for render.",
    )
    report.add_argument("file", metavar="SPEC")
    report.add_argument("-o", "--output", required=True, metavar="OUT", help="the .html file")
    _diagram_options(report)
    report.add_argument("--compact", action="store_true",
                        help="fuse Conv + BN + ReLU chains in the diagram")
    report.add_argument("--input", type=_shape, metavar="SHAPE", help="override the input shape")


def _diagram_options(parser) -> None:
    parser.add_argument("--depth", type=positive("depth"), metavar="N",
                        help="draw N levels: 1 = the top-level entries only, every group, block "
                        "and repeat one box (default: everything)")
    parser.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                        help="top to bottom (default) or left to right")


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


def cmd_render(args: argparse.Namespace) -> int:
    from netspec.core.diagnostics import SpecError
    from netspec.emit.render import (
        DiagramTooLarge,
        DotFailed,
        DotNotFound,
        _checked,
        format_for,
        render_checked,
    )

    try:
        format_for(args.output, args.format)
        spec = load_file(args.file)
    except ValueError as exc:
        print(f"netspec: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        return cannot_read(args.file, exc)
    except SpecError as exc:  # unreadable YAML: drawn as one red box with the error
        spec = _failed(args.file, exc)
    result, doc = _checked(spec, args.input)  # checked once, for the messages and the drawing
    for d in result.diagnostics:
        print(d.format(), file=sys.stderr)
    try:
        out, note = render_checked(result, doc, args.output, format=args.format,
                                   depth=args.depth, rankdir=args.rankdir, compact=args.compact)
    except (DotNotFound, DotFailed, DiagramTooLarge) as exc:
        print(f"netspec: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"netspec: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if note:
        print(f"netspec: note: {note}", file=sys.stderr)
    n = len(result.errors)
    print(f"wrote {out}" + (f" ({n} error{'s' if n != 1 else ''} marked red)" if n else ""),
          file=sys.stderr)
    return 1 if n else 0


def cmd_report(args: argparse.Namespace) -> int:
    from netspec.core.diagnostics import SpecError
    from netspec.emit.report import report

    try:
        spec = load_file(args.file)
    except OSError as exc:
        return cannot_read(args.file, exc)
    except SpecError as exc:
        spec = _failed(args.file, exc)
    try:
        result, no_diagram = report(spec, args.output, depth=args.depth,
                                    rankdir=args.rankdir, compact=args.compact,
                                    input_shape=args.input)
    except OSError as exc:
        print(f"netspec: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for d in result.diagnostics:
        print(d.format(), file=sys.stderr)
    print(f"wrote {args.output}", file=sys.stderr)
    if no_diagram:
        print(f"netspec: the report has no diagram: {no_diagram}", file=sys.stderr)
        return 2
    return 0 if result.ok else 1


COMMANDS = {"check": cmd_check, "build": cmd_build, "layers": cmd_layers, "schema": cmd_schema,
            "render": cmd_render, "report": cmd_report}

# commands whose module is imported only when they run (torch, onnx, ... stay unloaded
# for the others): command -> module holding cmd_<command>
LAZY_COMMANDS = {"import": "import_command", "export": "export_command",
                 "summary": "summary_command", "codegen": "codegen_command"}


def _lazy(command: str):
    def run(args: argparse.Namespace) -> int:
        from importlib import import_module

        module = import_module(f".{LAZY_COMMANDS[command]}", __package__)
        return getattr(module, f"cmd_{command}")(args)

    return run


COMMANDS.update({command: _lazy(command) for command in LAZY_COMMANDS})


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        if args.command not in COMMANDS:
            from netspec.cli.train_commands import COMMANDS as TRAIN_COMMANDS

            return TRAIN_COMMANDS[args.command](args, list(sys.argv[1:] if argv is None else argv))
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
