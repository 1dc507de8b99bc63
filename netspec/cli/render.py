"""`netspec render SPEC -o OUT`: the network as a Graphviz diagram (no torch)."""

from __future__ import annotations

import argparse
import sys

from netspec.cli.common import Command, cannot_read, diagram_options, load_or_failed, shape

OPTIONS = {
    "description": "Draw the network with Graphviz: a box per layer (type, key arguments, "
    "output shape, parameters), the shape on every edge, groups and blocks as clusters. "
    "A spec with errors is drawn too, its broken layers red with the message (exit 1). "
    "Exit 2: unreadable file, bad usage, or Graphviz's dot missing (the DOT is still "
    "written).",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="SPEC")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="the diagram file; its suffix picks the format (.svg .png .pdf .dot)")
    parser.add_argument("--format", choices=("svg", "png", "pdf", "dot"),
                        help="the format, whatever the suffix")
    diagram_options(parser)
    parser.add_argument("--compact", action="store_true",
                        help="fuse Conv + BN + ReLU (and Linear + ReLU) chains into one box")
    parser.add_argument("--input", type=shape, metavar="SHAPE", help="override the input shape")


def run(args: argparse.Namespace, argv: list[str]) -> int:
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
        spec = load_or_failed(args.file)  # unreadable YAML: drawn as one red box with the error
    except ValueError as exc:
        print(f"netspec: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        return cannot_read(args.file, exc)
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


COMMANDS = {"render": Command(OPTIONS, configure, run)}
