"""Functions longer than a reader can hold in their head: `python tools/long_functions.py [N]`
lists every function in netspec/ over N lines (default 50), longest first."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def long_functions(limit: int) -> list[tuple[int, str]]:
    found = []
    for path in sorted((ROOT / "netspec").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found.append((length, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


if __name__ == "__main__":
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    rows = long_functions(limit)
    total = sum(1 for p in (ROOT / "netspec").rglob("*.py")
                for n in ast.walk(ast.parse(p.read_text()))
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    for length, where in rows:
        print(f"{length:4d}  {where}")
    print(f"{len(rows)} of {total} functions are over {limit} lines")
