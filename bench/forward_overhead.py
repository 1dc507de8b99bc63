"""Does a netspec-built network run as fast as the hand-written one?

specs/zoo/resnet18.yaml built by netspec.build against torchvision.models.resnet18() (at
batch 1 and 32), specs/zoo/vit_b_16.yaml against torchvision.models.vit_b_16() (at batch 1
and 8), and specs/zoo/llama_tiny.yaml against transformers' LlamaForCausalLM of the same
configuration (64 tokens, batch 1 and 8; its logits), all in eval mode under
torch.inference_mode on the CPU.  The timings are
interleaved (each round times both models, alternating which goes first, so drift in clock
speed or load hits both alike), after warm-up; the ratio is median(netspec) /
median(reference), target at most 1.03.  Before timing, the reference's weights are loaded
into the netspec model and the outputs are compared.

    python bench/forward_overhead.py [--model resnet18|vit_b_16|llama_tiny] [--rounds 15]
                                     [--threads N]

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


class LlamaLogits(torch.nn.Module):
    """transformers' LlamaForCausalLM as specs/zoo/llama_tiny.yaml declares it (random
    weights, its default sdpa attention), called as a decoder is for logits: no cache."""

    def __init__(self):
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM

        self.reference = LlamaForCausalLM(LlamaConfig(
            vocab_size=1000, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
            num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=512,
            rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False))

    def state_dict(self, *args, **kwargs):
        return self.reference.state_dict(*args, **kwargs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.reference(ids, use_cache=False).logits


def images(batch: int) -> torch.Tensor:
    return torch.randn(batch, 3, 224, 224)


def tokens(batch: int) -> torch.Tensor:
    return torch.randint(0, 1000, (batch, 64))


# the zoo spec -> (the reference's constructor, its name, the input of a batch, the batch
# sizes timed: (batch, calls, warm-up))
MODELS = {
    "resnet18": (torchvision.models.resnet18, "torchvision.models.resnet18()", images,
                 ((1, 10, 10), (32, 1, 2))),
    "vit_b_16": (torchvision.models.vit_b_16, "torchvision.models.vit_b_16()", images,
                 ((1, 3, 3), (8, 1, 2))),
    "llama_tiny": (LlamaLogits, "transformers' LlamaForCausalLM", tokens,
                   ((1, 20, 10), (8, 5, 3))),
}
TARGET = 1.03


def per_call(model: torch.nn.Module, x: torch.Tensor, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        model(x)
    return (time.perf_counter() - start) / calls


def measure(ours, theirs, x: torch.Tensor, rounds: int, calls: int, warmup: int):
    times = {"netspec": [], "reference": []}
    with torch.inference_mode():
        for _ in range(warmup):
            ours(x)
            theirs(x)
        for r in range(rounds):
            order = [("netspec", ours), ("reference", theirs)]
            if r % 2:
                order.reverse()
            for label, model in order:
                times[label].append(per_call(model, x, calls))
    return {k: statistics.median(v) for k, v in times.items()}, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), action="append",
                        help="the zoo spec to time (repeatable; default: all)")
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per batch size")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, eval, "
          "inference_mode; median of interleaved rounds after warm-up")
    worst, status = 0.0, 0
    for name in args.model or list(MODELS):
        ratio, ok = compare(name, args.rounds)
        worst, status = max(worst, ratio), status or (0 if ok else 1)
    print()
    print(f"worst ratio {worst:.3f} ({'within' if worst <= TARGET else 'above'} the "
          f"{(TARGET - 1) * 100:.0f}% target)")
    return status


def compare(name: str, rounds: int) -> tuple[float, bool]:
    """Time one zoo spec against its reference model: (the worst ratio, outputs equal)."""
    make, label, example, batches = MODELS[name]
    spec = ROOT / "specs" / "zoo" / f"{name}.yaml"
    torch.manual_seed(0)
    theirs = make().eval()
    with torch.no_grad():  # ViT's head starts at zero: drawn, so that outputs compare
        for p in theirs.parameters():
            if not p.any():
                p.normal_(std=0.02)
    ours = netspec.build(spec)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ours.eval()
    x = example(4)
    with torch.inference_mode():
        a, b = ours(x), theirs(x)
    difference = (a - b).abs().max().item()
    print()
    print(f"netspec.build({spec.relative_to(ROOT)}) vs {label}, same weights (strict load); "
          f"outputs on 4 random inputs: max |difference| {difference:.3g} "
          f"({'bit-identical' if torch.equal(a, b) else 'not bit-identical'})")
    header = f"{'batch':>5}  {'netspec ms':>10}  {'reference ms':>12}  {'ratio':>6}"
    print(f"{header}  target ≤ {TARGET}")
    worst = 0.0
    for batch, calls, warmup in batches:
        medians, _ = measure(ours, theirs, example(batch), rounds, calls, warmup)
        ratio = medians["netspec"] / medians["reference"]
        worst = max(worst, ratio)
        print(f"{batch:>5}  {medians['netspec'] * 1e3:>10.2f}  "
              f"{medians['reference'] * 1e3:>12.2f}  {ratio:>6.3f}  "
              f"{'ok' if ratio <= TARGET else 'ABOVE TARGET'}")
    if difference > 1e-5:
        print(f"error: the outputs of {name} differ", file=sys.stderr)
    return worst, difference <= 1e-5


if __name__ == "__main__":
    sys.exit(main())
