"""Record what netspec prints for every spec, to prove a refactor changed nothing.

    python tools/snapshot_outputs.py OUT_DIR            # record
    diff -r BEFORE_DIR AFTER_DIR                         # compare two recordings

For every spec under specs/ (examples, zoo, broken) it records, in one subprocess per
spec (so one spec cannot disturb another's state): `check`, `check --json`,
`summary --json`, `codegen` in every style, `render -o x.dot` and `report -o x.html`,
each as stdout + stderr + exit status.  The spec's own path appears in messages, so the
recordings of two checkouts compare equal only when run from the same relative paths.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

STYLES = ("class", "sequential", "add-module", "ordereddict")

# one child process per spec: runs every command in process via netspec's own main()
CHILD = r"""
import contextlib, io, sys, pathlib
from netspec.cli import main
spec, out = sys.argv[1], pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
def record(label, argv, product=None):
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    text = f"exit {code}\n--- stdout\n{stdout.getvalue()}--- stderr\n{stderr.getvalue()}"
    if product is not None:
        p = pathlib.Path(product)
        text += "--- file\n" + (p.read_text() if p.exists() else "(none)\n")
        p.unlink(missing_ok=True)
    (out / label).write_text(text.replace(str(out), "OUT"))  # recordings compare across folders
record("check.txt", ["check", spec])
record("check.json", ["check", "--json", spec])
record("summary.json", ["summary", "--json", spec])
for style in STYLES:
    record(f"codegen-{style}.py", ["codegen", "--style", style, spec])
dot = str(out / "render.tmp.dot")
record("render.dot", ["render", spec, "-o", dot], dot)
html = str(out / "report.tmp.html")
record("report.html", ["report", spec, "-o", html], html)
"""


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    specs = sorted(Path("specs").rglob("*.yaml"))

    def run(spec: Path) -> int:
        child = CHILD.replace("STYLES", repr(STYLES))
        where = out / spec.with_suffix("")
        return subprocess.run([sys.executable, "-c", child, str(spec), str(where)]).returncode

    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = list(pool.map(run, specs))
    failed = [str(s) for s, c in zip(specs, codes, strict=True) if c]
    print(f"{len(specs)} specs recorded in {out}" + (f"; recorder failed on {failed}"
                                                     if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
