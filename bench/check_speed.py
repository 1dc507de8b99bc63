"""How much faster is a static `netspec check` than what torchinfo-style tools do?

Baseline (same run, same machine): a fresh Python that imports torch, builds the same
VGG-16 and runs one dry forward pass with a hook on every module to record shapes.
Contender: a fresh Python running `netspec check` on specs/vgg16.yaml (no torch import).
Both are timed end to end as subprocesses (median of several runs), and in-process
without interpreter start-up.  Then a 10,000-layer spec, against the 2 s target.  Last, the
start-up cost of `netspec check -q specs/vgg16.yaml` against a bare `python -c pass`
(medians of interleaved runs, CPU and wall time, bytecode compiled), against the 4x target.

    python bench/check_speed.py [--runs 5] [--startup-runs 21] [--only startup] [--strict]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VGG = ROOT / "specs" / "vgg16.yaml"

BASELINE = """
import torch, torchvision
shapes = []
model = torchvision.models.vgg16(weights=None).eval()
for m in model.modules():
    m.register_forward_hook(lambda mod, i, o: shapes.append(tuple(o.shape)))
with torch.no_grad():
    model(torch.zeros(1, 3, 224, 224))
assert shapes[-1] == (1, 1000)
"""


def wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def startup(runs: int, args: tuple[str, ...] = ("check", "-q", str(VGG))) -> dict[str, float]:
    """Median wall and CPU seconds of `python -m netspec ARGS` and of a bare `python -c pass`.

    The two alternate run by run, so a busy moment of a shared machine hits both alike.  CPU
    time is the children's user + system time (less noisy than wall time there).  This
    environment may set PYTHONDONTWRITEBYTECODE: the children run without it, after one warm
    run each, so both read compiled bytecode as an installed netspec would."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    commands = {"bare": [sys.executable, "-c", "pass"],
                "netspec": [sys.executable, "-m", "netspec", *args]}
    samples: dict[str, dict[str, list[float]]] = {
        name: {"wall": [], "cpu": []} for name in commands}
    for warm in (True,) + (False,) * runs:
        for name, cmd in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
            elapsed = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if not warm:
                samples[name]["wall"].append(elapsed)
                samples[name]["cpu"].append(after.ru_utime - before.ru_utime
                                            + after.ru_stime - before.ru_stime)
    return {f"{name}_{kind}": statistics.median(values)
            for name, kinds in samples.items() for kind, values in kinds.items()}


STARTUP_TARGET = 4.0


def print_startup(runs: int) -> bool:
    """Print the start-up ratio of `netspec check`; whether it meets the 4x target."""
    m = startup(runs)
    print(f"\nstart-up: `netspec check -q specs/vgg16.yaml` vs `python -c pass` "
          f"(median of {runs} interleaved runs, bytecode compiled):")
    met = True
    for kind in ("cpu", "wall"):
        ratio = m[f"netspec_{kind}"] / m[f"bare_{kind}"]
        met = met and ratio <= STARTUP_TARGET
        print(f"  {kind:4}  netspec check {m[f'netspec_{kind}'] * 1000:6.1f} ms, bare python "
              f"{m[f'bare_{kind}'] * 1000:5.1f} ms: {ratio:.1f}x")
    print(f"  {'meets' if met else 'MISSES'} the <= {STARTUP_TARGET:g}x target")
    return met


def big_spec(n: int) -> str:
    cycle = [
        "  - Conv1d: {out_channels: 16, kernel_size: 3, padding: 1}",
        "  - BatchNorm1d",
        "  - ReLU",
        "  - Dropout: 0.1",
    ]
    lines = ["netspec: 1", "name: Deep", "input: [16, 32]", "layers:"]
    lines += [cycle[i % len(cycle)] for i in range(n)]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--startup-runs", type=int, default=21)
    parser.add_argument("--only", choices=("startup",),
                        help="run only this part (startup: the start-up ratio)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when the start-up ratio misses the 4x target")
    args = parser.parse_args()
    if args.only == "startup":
        met = print_startup(args.startup_runs)
        return 0 if met or not args.strict else 1
    py = sys.executable

    print(f"VGG-16, end to end (fresh interpreter, median of {args.runs}):")
    ours = wall([py, "-m", "netspec", "check", "-q", str(VGG)], args.runs)
    theirs = wall([py, "-c", BASELINE], args.runs)
    print(f"  netspec check                         {ours * 1000:8.0f} ms")
    print(f"  import torch + build + hooked forward {theirs * 1000:8.0f} ms")
    print(f"  ratio: netspec check is {theirs / ours:.1f}x faster (target >= 10x)")

    import netspec

    spec = netspec.load(VGG)
    start = time.perf_counter()
    for _ in range(20):
        result = netspec.check(spec)
    check_ms = (time.perf_counter() - start) / 20 * 1000
    assert result.ok and result.output_shape == (1000,)
    print(f"\nVGG-16 in process: netspec.check {check_ms:.1f} ms per call")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deep.yaml"
        path.write_text(big_spec(10_000))
        start = time.perf_counter()
        result = netspec.check(str(path))
        in_process = time.perf_counter() - start
        assert result.ok and len(result.layers) == 10_000, result.errors[:3]
        end_to_end = wall([py, "-m", "netspec", "check", "-q", str(path)], max(1, args.runs // 2))
    verdict = "meets" if end_to_end < 2.0 else "MISSES"
    print(
        f"\n10,000-layer spec: {in_process:.2f} s in process, {end_to_end:.2f} s end to end "
        f"({verdict} the 2 s target; ratio to target {end_to_end / 2.0:.2f})"
    )
    met = print_startup(args.startup_runs)
    return 0 if met or not args.strict else 1


if __name__ == "__main__":
    raise SystemExit(main())
