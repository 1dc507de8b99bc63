"""How long does `netspec codegen` take for the whole zoo, next to merely importing torch?

Contender: a fresh Python that generates every spec in specs/zoo/ in every style it
supports (class for all; sequential, add-module, ordereddict for the chains), in one
process, and asserts that torch was never imported.  Baseline: a fresh Python running
`import torch`.  Both are timed end to end as subprocesses (median of several runs); the
in-process generation time (after imports) is printed too.  Also timed, as a fresh process:
`netspec summary` of ResNet-50 (netspec.summary, also without torch).

    python bench/codegen_speed.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CODEGEN = """
import sys, time
from pathlib import Path
start = time.perf_counter()
from netspec.emit.codegen import STYLES, StyleError, generate
imported = time.perf_counter()
files = chars = 0
for spec in sorted(Path("specs/zoo").glob("*.yaml")):
    for style in STYLES:
        try:
            chars += len(generate(spec, style))
            files += 1
        except StyleError:
            pass
done = time.perf_counter()
assert "torch" not in sys.modules, "codegen imported torch"
print(files, chars, imported - start, done - imported)
"""

SUMMARY = """
import sys
from netspec.emit.summary import summarize
summarize("specs/zoo/resnet50.yaml", batch=1).table()
assert "torch" not in sys.modules
"""


def wall(code: str, runs: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                             capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        out = run.stdout
    return statistics.median(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    torch_time, _ = wall("import torch", args.runs)
    codegen_time, out = wall(CODEGEN, args.runs)
    files, chars, import_s, generate_s = out.split()
    print(f"import torch (fresh process):                 {torch_time:6.2f} s")
    print(f"codegen of the zoo (fresh process, no torch): {codegen_time:6.2f} s  "
          f"({int(files)} files, {int(chars):,} characters; in-process "
          f"{float(generate_s):.2f} s after {float(import_s):.2f} s of imports)")
    print(f"ratio codegen / import torch:                 {codegen_time / torch_time:6.2f}")
    summary_time, _ = wall(SUMMARY, args.runs)
    print(f"summary of ResNet-50 (fresh process):         {summary_time:6.2f} s  "
          f"(ratio to import torch {summary_time / torch_time:.2f})")
    met = codegen_time < 1 and summary_time < 1
    print(f"target: each under 1 s: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
