"""`netspec export SPEC -o FILE`: the command line of netspec.export (torch imported when run)."""

from __future__ import annotations

import argparse
import sys

from netspec.cli.common import Command, cannot_read, load_file, print_diagnostics, shape

EXPORT_EXAMPLES = """\
examples:
  netspec export specs/zoo/resnet18.yaml -o resnet18.onnx                   ONNX, dynamic batch
  netspec export specs/lenet5_digits.yaml --weights runs/L/T/best.pt -o lenet.onnx
  netspec export specs/zoo/text_lstm.yaml -o text.ts                        TorchScript
  netspec export specs/zoo/unet.yaml -o unet.pt2                            torch.export program
  netspec export SPEC --format onnx -o model.bin --fixed-batch 1            format named, batch 1

The format comes from --format, else the suffix: .onnx (onnx), .ts or .torchscript
(torchscript), .pt2 (exported-program).  --weights takes a netspec checkpoint (its spec
hash must match) or a torch.save(model.state_dict()) file; it is loaded strictly, with
weights_only=True.  Without --weights the file holds freshly initialised weights.

After writing, the file is loaded back (onnxruntime, torch.jit.load, torch.export.load) and
run on random inputs at batch 2 and 3 against the PyTorch model; the largest absolute
difference is printed.

exit status: 0 written and verified, 1 the spec has errors, the weights do not fit, the
model needs more memory than is available (--ignore-memory), the export failed or the
difference exceeds --atol; 2 unreadable file or bad usage"""


OPTIONS = {
    "description": "Export the network of a spec (and its trained weights) to ONNX, "
    "TorchScript or a torch.export program with a dynamic batch dimension, then load the "
    "file back and compare its outputs with PyTorch's.",
    "epilog": EXPORT_EXAMPLES,
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


def configure(p: argparse.ArgumentParser) -> None:
    from netspec.emit.export import ATOL, FORMATS

    p.add_argument("file", metavar="SPEC")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the file to write (.onnx, .ts, .pt2)")
    p.add_argument("--format", choices=FORMATS, help="default: from the output's suffix")
    p.add_argument("--weights", metavar="CKPT",
                   help="a netspec checkpoint (best.pt, last.pt) or a state_dict .pt file")
    p.add_argument("--input", type=shape, metavar="SHAPE",
                   help="override the spec's input shape, e.g. 3,64,64 (fixed in the file)")
    p.add_argument("--fixed-batch", type=int, metavar="N",
                   help="fix the batch size at N instead of a dynamic batch dimension")
    p.add_argument("--opset", type=int, metavar="N",
                   help="ONNX opset (default: the exporter's own, 20 with torch 2.9+; at least 17)")
    p.add_argument("--no-verify", action="store_true",
                   help="write the file without loading it back and comparing outputs")
    p.add_argument("--atol", type=float, default=ATOL,
                   help=f"largest absolute difference accepted ({ATOL:g})")
    p.add_argument("--ignore-memory", action="store_true",
                   help="export even when the model and its verification batches need more "
                   "memory than is available")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from netspec.core.diagnostics import SpecError
    from netspec.emit.export import ExportError, describe, export
    from netspec.emit.memory import NotEnoughMemory

    if args.fixed_batch is not None and args.fixed_batch < 1:
        print(f"netspec export: --fixed-batch must be at least 1, not {args.fixed_batch}",
              file=sys.stderr)
        return 2
    if not args.atol >= 0:
        print(f"netspec export: --atol must be a non-negative number, not {args.atol}",
              file=sys.stderr)
        return 2
    try:
        spec = load_file(args.file)
    except OSError as exc:
        return cannot_read(args.file, exc)
    except SpecError as exc:
        return print_diagnostics(args.file, exc.diagnostics)
    try:
        report = export(
            spec,
            args.format,
            args.output,
            args.weights,
            batch_dynamic=args.fixed_batch is None,
            input_shape=args.input,
            batch=args.fixed_batch or 2,
            verify=not args.no_verify,
            atol=args.atol,
            opset=args.opset,
            ignore_memory=args.ignore_memory,
        )
    except SpecError as exc:
        return print_diagnostics(args.file, exc.diagnostics)
    except NotEnoughMemory as exc:
        print(f"netspec export: error: {exc}", file=sys.stderr)
        return 1
    except ExportError as exc:
        print(f"netspec export: {exc}", file=sys.stderr)
        return exc.status
    name = spec.data.get("name", "") if isinstance(spec.data, dict) else ""
    for line in describe(report, args.file, name or "network"):
        print(line)
    if not report.ok:
        print(
            f"netspec export: the exported file differs from PyTorch by "
            f"{report.max_difference:.3g} (more than {report.atol:g})",
            file=sys.stderr,
        )
        return 1
    return 0


COMMANDS = {"export": Command(OPTIONS, configure, run)}
