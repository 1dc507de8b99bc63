"""The command line: thin wrappers over the Python API.  `netspec --help` lists commands.

One module per command (train, eval, predict and plot share one), each with the parser
options, arguments and code of its command(s) as a `COMMANDS` dict of `common.Command`.
`netspec CMD ...` imports and builds the parser of CMD alone, so `netspec check` loads
neither codegen, nor export, nor the train package; only help, a missing or unknown command
build the full parser."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

# command -> (its module in netspec.cli, its line in `netspec --help`), in --help's order
COMMANDS = {
    "check": ("check", "validate specs and infer every shape (no torch)"),
    "build": ("build", "build the torch module and run a dry forward pass"),
    "render": ("render", "draw the network as a diagram (SVG, PNG, PDF or DOT; no torch)"),
    "report": ("report", "one self-contained HTML page: diagram, summary table, check result"),
    "import": ("import_", "turn an existing nn.Module into a spec (torch.fx)"),
    "export": ("export", "export to ONNX, TorchScript or a torch.export program, verified"),
    "summary": ("summary", "a table of parameters, buffers, MACs and memory per layer (no torch)"),
    "codegen": ("codegen", "write the network as a plain PyTorch module file (no torch needed)"),
    "layers": ("layers", "list the layer types and their arguments"),
    "schema": ("schema", "print the JSON Schema of a spec"),
    "zoo": ("zoo", "list the example specs shipped with netspec, or copy one to start from"),
    "train": ("train", "train a spec: evaluate, checkpoint and log every epoch"),
    "eval": ("train", "loss and top-1/top-5 accuracy of trained weights"),
    "predict": ("train", "top-k classes of image files"),
    "plot": ("train", "draw a run's loss and accuracy curves"),
    "weights": ("weights", "a checkpoint's weights as a plain state_dict file (torch.load)"),
}


def _command(name: str):
    """The common.Command of a command, from its module."""
    return import_module(f"netspec.cli.{COMMANDS[name][0]}").COMMANDS[name]


def _top_parser(with_commands: bool) -> argparse.ArgumentParser:
    """`netspec`'s parser: every command's subparser, or only a COMMAND placeholder whose
    usage line is the same (for the errors of a single command's parse)."""
    from netspec.cli.common import EXAMPLES
    from netspec.core.version import __version__

    parser = argparse.ArgumentParser(
        prog="netspec",
        description="Declare a PyTorch network in YAML; check every shape statically, build it.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"netspec {__version__}")
    if not with_commands:
        parser.add_argument("command", metavar="COMMAND", nargs=argparse.PARSER)
        return parser
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_line) in COMMANDS.items():
        command = _command(name)
        command.configure(sub.add_parser(name, help=help_line, **command.options))
    return parser


def _parse(argv: list[str]) -> argparse.Namespace | None:
    """The arguments, parsed exactly as the full parser would, building as little as can be;
    None, after printing the help, when no command is given."""
    if not argv or argv[0] not in COMMANDS:
        parser = _top_parser(with_commands=True)
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return None
        return args
    name = argv[0]
    command = _command(name)
    parser = argparse.ArgumentParser(prog=f"netspec {name}", **command.options)
    command.configure(parser)
    args, extra = parser.parse_known_args(argv[1:])
    if extra:  # reported by `netspec` itself, as a subparser's leftovers are
        _top_parser(with_commands=False).error(f"unrecognized arguments: {' '.join(extra)}")
    args.command = name
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse(argv)
    if args is None:
        return 2
    try:
        return _command(args.command).run(args, argv)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
