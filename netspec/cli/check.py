"""`netspec check FILE...`: validate specs and print every layer's shape (no torch)."""

from __future__ import annotations

import argparse

from netspec.cli.common import (
    EXAMPLES,
    Command,
    cannot_read,
    failed,
    load_file,
    positive,
    print_diagnostics,
    shape,
)

OPTIONS = {
    "description": "Validate specs and print the shape and parameter count "
    "of every layer.  Errors are FILE:LINE:COL: error: message.",
    "epilog": EXAMPLES,
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per file (a line each)"
    )
    parser.add_argument(
        "--input",
        type=shape,
        metavar="SHAPE",
        help="override the spec's input shape, e.g. 3,64,64",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    parser.add_argument("--depth", type=positive("depth"), metavar="N",
                        help="show N levels of groups, blocks and repeats (1: the top-level "
                        "entries only; default: all)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
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
            result = failed(path, exc)
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


COMMANDS = {"check": Command(OPTIONS, configure, run)}
