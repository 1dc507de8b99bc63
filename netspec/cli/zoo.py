"""`netspec zoo [NAME] [-o FILE]`: list the example specs shipped with netspec, or copy one
out as the start of your own (no torch)."""

from __future__ import annotations

import argparse
import json
import sys

from netspec.cli.common import Command

EXAMPLES = """\
examples:
  netspec zoo                          every spec in the zoo: network, input, output, parameters
  netspec zoo --json                   the same, one JSON object per spec and line
  netspec zoo resnet18 -o my.yaml      copy resnet18's spec to my.yaml (comments and all)
  netspec zoo lenet5 > my.yaml         the same, through stdout
  netspec zoo lenet5 --path            where the shipped file is

exit status: 0 fine, 1 no such spec or a file that would be overwritten, 2 bad usage"""

OPTIONS = {
    "description": "List the zoo (the example specs shipped inside the package), or copy one "
    "to a file to start from.",
    "epilog": EXAMPLES,
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help="a zoo spec: resnet18, lenet5, ...")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write NAME's spec to FILE (a folder: FILE/NAME.yaml)")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    parser.add_argument("--path", action="store_true", help="print the shipped file's path")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per spec (network, shapes, total_params, title)")


def _table(entries) -> str:
    rows = [("name", "network", "input", "output", "params", "")]
    for e in entries:
        rows.append((
            e.name,
            e.network or "-",
            "×".join(map(str, e.input_shape)) if e.input_shape else "-",
            "×".join(map(str, e.output_shape)) if e.output_shape else "-",
            f"{e.params:,}" if e.params is not None else "-",
            e.title,
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for r in rows:
        cells = [r[i].rjust(widths[i]) if i == 4 else r[i].ljust(widths[i]) for i in range(5)]
        lines.append("  ".join([*cells, r[5]]).rstrip())
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    from netspec.pipeline import zoo

    if args.output:
        written = zoo.copy(args.name, args.output, overwrite=args.force)
        print(f"wrote {written} (from the zoo's {args.name}); next: netspec check {written}",
              file=sys.stderr)
    elif args.path:
        print(zoo.spec_path(args.name))
    elif args.json:
        print(json.dumps(zoo.entry(args.name).as_json(), ensure_ascii=False))
    else:
        sys.stdout.write(zoo.spec_path(args.name).read_text(encoding="utf-8"))
    return 0


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from netspec.pipeline import zoo

    if args.name is None and (args.output or args.path or args.force):
        print("netspec zoo: error: -o, --path and --force need a NAME (netspec zoo lists them)",
              file=sys.stderr)
        return 2
    try:
        if args.name is not None:
            return _show(args)
        entries = zoo.entries()
    except (zoo.ZooError, OSError) as exc:
        print(f"netspec zoo: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        for e in entries:
            print(json.dumps(e.as_json(), ensure_ascii=False))
    else:
        print(_table(entries))
        print(f"\n{len(entries)} specs in {zoo.ZOO_DIR}; copy one: netspec zoo NAME -o my.yaml")
    return 0


COMMANDS = {"zoo": Command(OPTIONS, configure, run)}
