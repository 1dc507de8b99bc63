"""`netspec schema [-o FILE] [--write]`: the JSON Schema of a spec, generated from the layer
registry, for editor completion (see the README's "Editor completion")."""

from __future__ import annotations

import argparse
import sys

from netspec.cli.common import Command

EXAMPLES = """\
examples:
  netspec schema -o netspec.schema.json    the schema, for your editor (yaml-language-server)
  netspec schema > netspec.schema.json     the same, through stdout
  netspec schema --write                   regenerate the copy netspec ships and validates with
                                           (after adding an op; make schema)"""

OPTIONS = {
    "description": "Print or write the JSON Schema of a spec (generated from the layer "
    "registry; editors complete and check specs with it).",
    "epilog": EXAMPLES,
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write the schema to FILE")
    parser.add_argument(
        "--write",
        action="store_true",
        help="regenerate the package's own copy (schemas/netspec.schema.json in a clone)",
    )


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from netspec.pipeline import schema

    text = schema.dumps(schema.generate())
    targets = ([args.output] if args.output else []) + ([schema.SCHEMA_FILE] if args.write else [])
    for target in targets:
        try:
            with open(target, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            return cannot_write(target, exc)
        print(f"wrote {target}", file=sys.stderr)
    if not targets:
        sys.stdout.write(text)
    return 0


def cannot_write(path, exc: OSError) -> int:
    print(f"netspec schema: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
    return 1


COMMANDS = {"schema": Command(OPTIONS, configure, run)}
