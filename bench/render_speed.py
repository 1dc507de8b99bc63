"""Does `netspec render` cost about what `netspec check` costs (plus dot)?

In process, without dot: the time to check a spec, and the time to render it to DOT text
(which checks it too), for 1,000 and 10,000 layers, without warnings and with a warning on
every layer (an LSTM without batch_first: true, repeated: the case that was cubic, 27 s for
2,000 copies against 0.16 s to check).  Best of --runs (timeit's rule), medians beside.

    python bench/render_speed.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netspec.emit import render  # noqa: E402
from netspec.pipeline.check import check, load  # noqa: E402


def flat_chain(n: int) -> str:
    """n top-level entries (Conv1d, BatchNorm1d, ReLU, Dropout), no warnings."""
    cycle = ["  - Conv1d: {out_channels: 16, kernel_size: 3, padding: 1}", "  - BatchNorm1d",
             "  - ReLU", "  - Dropout: 0.1"]
    lines = ["netspec: 1", "name: Deep", "input: [16, 32]", "layers:"]
    return "\n".join(lines + [cycle[i % len(cycle)] for i in range(n)]) + "\n"


def lstm_repeat(n: int, warned: bool) -> str:
    """One LSTM repeated n times: a warning on every copy unless batch_first is true."""
    args = "{hidden_size: 16}" if warned else "{hidden_size: 16, batch_first: true}"
    return (f"netspec: 1\nname: Stack\ninput: [10, 16]\nlayers:\n  - LSTM: {args}\n"
            f"    repeat: {n}\n")


def timed(fn, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cases = [(f"flat chain, {n:,} layers", flat_chain(n)) for n in (1_000, 10_000)]
    for n in (1_000, 10_000):
        cases.append((f"LSTM x{n:,}, no warnings", lstm_repeat(n, warned=False)))
        cases.append((f"LSTM x{n:,}, a warning each", lstm_repeat(n, warned=True)))
    print(f"render to DOT in process, against check (best of {args.runs}; median)")
    print(f"{'spec':32} {'warnings':>8} {'check':>15} {'render':>15} {'render/check':>12}")
    for title, text in cases:
        spec = load(text)
        warnings = len(check(spec).warnings)
        check_best, check_median = timed(lambda spec=spec: check(spec), args.runs)
        render_best, render_median = timed(lambda spec=spec: render.to_dot(spec), args.runs)
        print(f"{title:32} {warnings:>8,} {check_best:6.3f} s ({check_median:5.2f})"
              f" {render_best:6.3f} s ({render_median:5.2f}) {render_best / check_best:11.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
