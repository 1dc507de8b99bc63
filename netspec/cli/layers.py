"""`netspec layers`: every layer type and its arguments, by family."""

from __future__ import annotations

import argparse

from netspec.cli.common import Command


def configure(parser: argparse.ArgumentParser) -> None:
    pass  # no arguments


def run(args: argparse.Namespace, argv: list[str]) -> int:
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


COMMANDS = {"layers": Command({}, configure, run)}
