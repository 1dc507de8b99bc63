"""Does a netspec-built network run as fast as the hand-written one?

specs/zoo/resnet18.yaml built by netspec.build against torchvision.models.resnet18(), both in
eval mode under torch.inference_mode on the CPU, at batch 1 and batch 32.  The timings are
interleaved (each round times both models, alternating which goes first, so drift in clock
speed or load hits both alike), after warm-up; the ratio is median(netspec) /
median(torchvision), target at most 1.03.  Before timing, torchvision's weights are loaded
into the netspec model and the outputs are compared.

    python bench/forward_overhead.py [--rounds 15] [--threads N]

Threads: torch's default (torch.get_num_threads()) unless --threads is given.  Exit 1 if the
outputs differ (timings are reported either way; they depend on the machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import netspec  # noqa: E402

SPEC = ROOT / "specs" / "zoo" / "resnet18.yaml"
TARGET = 1.03


def per_call(model: torch.nn.Module, x: torch.Tensor, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        model(x)
    return (time.perf_counter() - start) / calls


def measure(ours, theirs, batch: int, rounds: int, calls: int, warmup: int):
    x = torch.randn(batch, 3, 224, 224)
    times = {"netspec": [], "torchvision": []}
    with torch.inference_mode():
        for _ in range(warmup):
            ours(x)
            theirs(x)
        for r in range(rounds):
            order = [("netspec", ours), ("torchvision", theirs)]
            if r % 2:
                order.reverse()
            for label, model in order:
                times[label].append(per_call(model, x, calls))
    return {k: statistics.median(v) for k, v in times.items()}, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per batch size")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    theirs = torchvision.models.resnet18().eval()
    ours = netspec.build(SPEC)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ours.eval()

    x = torch.randn(4, 3, 224, 224)
    with torch.inference_mode():
        a, b = ours(x), theirs(x)
    difference = (a - b).abs().max().item()
    equal = torch.equal(a, b)
    print(f"netspec.build({SPEC.relative_to(ROOT)}) vs torchvision.models.resnet18(), "
          "same weights (strict load)")
    print(f"outputs on 4 random images: max |difference| {difference:.3g} "
          f"({'bit-identical' if equal else 'not bit-identical'})")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, eval, "
          "inference_mode; median of interleaved rounds after warm-up")
    print()
    header = f"{'batch':>5}  {'netspec ms':>10}  {'torchvision ms':>14}  {'ratio':>6}"
    print(f"{header}  target ≤ {TARGET}")
    worst = 0.0
    for batch, calls, warmup in ((1, 10, 10), (32, 1, 2)):
        medians, _ = measure(ours, theirs, batch, args.rounds, calls, warmup)
        ratio = medians["netspec"] / medians["torchvision"]
        worst = max(worst, ratio)
        print(f"{batch:>5}  {medians['netspec'] * 1e3:>10.2f}  "
              f"{medians['torchvision'] * 1e3:>14.2f}  {ratio:>6.3f}  "
              f"{'ok' if ratio <= TARGET else 'ABOVE TARGET'}")
    print()
    print(f"worst ratio {worst:.3f} ({'within' if worst <= TARGET else 'above'} the "
          f"{(TARGET - 1) * 100:.0f}% target)")
    if difference > 1e-5:
        print("error: the outputs differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
