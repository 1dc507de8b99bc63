"""netspec summary: the command line of netspec.emit.summary."""

from __future__ import annotations

import argparse
import json

from netspec.cli.common import (
    Command,
    cannot_read,
    failed,
    load_file,
    positive,
    print_diagnostics,
    shape,
)
from netspec.core.diagnostics import SpecError
from netspec.emit.summary import summarize
from netspec.pipeline.check import check

SUMMARY_EXAMPLES = """\
examples:
  netspec summary specs/zoo/resnet18.yaml                 every layer, nested, with totals
  netspec summary specs/zoo/resnet18.yaml --depth 1       the top-level entries only
  netspec summary specs/zoo/vgg16.yaml --batch 64         memory at batch 64
  netspec summary specs/zoo/vgg16.yaml --input 3,32,32    the same network on 32x32 images
  netspec summary specs/zoo/unet.yaml --json              the same data as one JSON object

Params are sum(p.numel()) of the built module, all trainable; buffers (BatchNorm running
statistics) are the non-trainable state.  MACs are the multiply-accumulates per sample of
the matrix multiplications and convolutions (torch's FlopCounterMode count, halved);
activations, norms, pooling, biases and merges count 0.  Forward/backward pass size is
torchinfo's: the outputs of the layers with parameters, and their gradients, at --batch.

exit status: 0 fine, 1 the spec has errors, 2 unreadable file or bad usage"""

OPTIONS = {
    "description": "Print a torchinfo-style summary of a spec without importing torch: every "
    "layer nested under its group, block or repeat, with its output shape, parameters, "
    "buffers and multiply-accumulates, then totals and memory at a batch size.  Errors "
    "are FILE:LINE:COL: error: message, as for check.",
    "epilog": SUMMARY_EXAMPLES,
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="SPEC")
    p.add_argument("--depth", type=positive("depth"), metavar="N",
                   help="show N levels of groups, blocks and repeats, as check --depth "
                   "(1: the top-level entries only; default: all); totals are unchanged")
    p.add_argument("--batch", type=positive("batch"), default=1, metavar="B",
                   help="the batch size for memory and per-batch MACs (default 1)")
    p.add_argument("--input", type=shape, metavar="SHAPE",
                   help="override the spec's input shape, e.g. 3,64,64")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: the rows (down to --depth) and the totals")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    try:
        spec = load_file(args.file)
    except OSError as exc:
        return cannot_read(args.file, exc)
    except SpecError as exc:
        result = failed(args.file, exc)
    else:
        result = check(spec, args.input)
    if not result.ok or not result.layers:
        if args.json:
            print(json.dumps({"file": result.file, "ok": False,
                              "errors": [d.as_json() for d in result.errors]},
                             ensure_ascii=False))
        else:
            print_diagnostics(args.file, result.diagnostics)
        return 1
    summary = summarize(result, batch=args.batch)
    if args.json:
        data = {"ok": True, **summary.as_json(args.depth),
                "warnings": [d.as_json() for d in result.diagnostics if d.severity != "error"]}
        print(json.dumps(data, ensure_ascii=False))
    else:
        print_diagnostics(args.file, result.diagnostics)  # warnings only
        print(summary.table(args.depth))
    return 0


COMMANDS = {"summary": Command(OPTIONS, configure, run)}
