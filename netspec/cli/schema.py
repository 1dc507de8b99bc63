"""`netspec schema [--write]`: the JSON Schema of a spec, generated from the layer registry."""

from __future__ import annotations

import argparse
import sys

from netspec.cli.common import Command


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--write",
        action="store_true",
        help="regenerate schemas/netspec.schema.json from the layer registry",
    )


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from netspec.pipeline import schema

    text = schema.dumps(schema.generate())
    if args.write:
        schema.SCHEMA_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {schema.SCHEMA_FILE}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


COMMANDS = {"schema": Command({}, configure, run)}
