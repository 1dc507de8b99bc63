"""`netspec build FILE`: build the torch module and compare a dry forward pass with check."""

from __future__ import annotations

import argparse
import sys

from netspec.cli.common import Command, cannot_read, load_file, print_diagnostics, shape

OPTIONS = {
    "description": "Build the spec with PyTorch, print the module and check "
    "a forward pass on zeros against the static shapes.",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--input", type=shape, metavar="SHAPE", help="override the input shape")
    parser.add_argument("--batch", type=int, default=2, help="batch size of the dry run (2)")
    parser.add_argument("--ignore-memory", action="store_true",
                        help="build even when the model and the dry run's batch need more "
                        "memory than is available")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from netspec.core.diagnostics import SpecError
    from netspec.emit.memory import NotEnoughMemory, guard

    try:
        spec = load_file(args.file)
        from netspec.pipeline.check import check

        result = check(spec, args.input)
        if not result.ok:
            return print_diagnostics(args.file, result.diagnostics)
        guard(result, batch=max(1, args.batch), ignore=args.ignore_memory)  # the dry run too
        import torch

        from netspec.emit.build import build

        model = build(result, ignore_memory=True)  # guarded above, with the batch
    except OSError as exc:
        return cannot_read(args.file, exc)
    except SpecError as exc:
        return print_diagnostics(args.file, exc.diagnostics)
    except NotEnoughMemory as exc:
        print(f"netspec build: error: {exc}", file=sys.stderr)
        return 1
    print(model)
    from netspec.emit.export import flat_outputs

    net = result.network
    xs = [torch.zeros((args.batch, *i.shape), dtype=getattr(torch, i.dtype))
          for i in net.all_inputs]
    model.eval()
    with torch.no_grad():
        ys = flat_outputs(model(*xs))
    # in eval, forward returns the outputs that are not training_only
    kept = [o for o in net.outputs if not o.training_only]
    # a recurrent state (h_n) has its batch at dim 1
    expected = [(*o.shape[:o.batch_dim], args.batch, *o.shape[o.batch_dim:]) for o in kept] \
        or [(args.batch, *result.output_shape)]
    got = [tuple(y.shape) for y in ys]
    same = got == expected
    params = sum(p.numel() for p in model.parameters())

    def shown(items: list) -> str:
        return str(items[0]) if len(items) == 1 else ", ".join(map(str, items))

    print(
        f"dry run: {shown([tuple(x.shape) for x in xs])} -> {shown(got)}; static check said "
        f"{shown(expected)}: {'agrees' if same else 'DISAGREES'}; {params:,} parameters "
        f"(check said {result.total_params:,})"
    )
    return 0 if same and params == result.total_params else 1


COMMANDS = {"build": Command(OPTIONS, configure, run)}
