"""`netspec report SPEC -o OUT.html`: diagram, summary table and check result in one page."""

from __future__ import annotations

import argparse
import sys

from netspec.cli.common import Command, cannot_read, diagram_options, load_or_failed, shape

OPTIONS = {
    "description": "Write one HTML file with the rendered diagram (inline SVG), the summary "
    "table and the check result, for sharing.  Exit codes as for render.",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="SPEC")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="the .html file")
    diagram_options(parser)
    parser.add_argument("--compact", action="store_true",
                        help="fuse Conv + BN + ReLU chains in the diagram")
    parser.add_argument("--input", type=shape, metavar="SHAPE", help="override the input shape")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from netspec.emit.report import report

    try:
        spec = load_or_failed(args.file)
    except OSError as exc:
        return cannot_read(args.file, exc)
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


COMMANDS = {"report": Command(OPTIONS, configure, run)}
