"""`netspec weights CHECKPOINT [-o FILE]`: the plain state_dict inside a checkpoint, for the
tutorial's two lines ``model = Net(); model.load_state_dict(torch.load("FILE"))``."""

from __future__ import annotations

import argparse
import json
import sys

from netspec.cli.common import Command

EXAMPLES = """\
examples:
  netspec weights runs/Tudui/20250101-120000/best.pt -o tudui.pt
  netspec weights runs/Tudui/20250101-120000 -o tudui.pt     a run folder: its best.pt
  netspec weights best.pt                                    writes best_weights.pt beside it

then, in Python, with the built model or the class netspec codegen wrote:
  model = netspec.build("tudui.yaml")        # or: from tudui import Tudui; model = Tudui()
  model.load_state_dict(torch.load("tudui.pt"))

best.pt and last.pt are checkpoints (weights, optimizer, scheduler, epoch, RNG states, ...)
for netspec train --resume, eval and predict; torch.load gives their whole dictionary.

exit status: 0 written, 1 an unusable checkpoint or a file that cannot be written"""

OPTIONS = {
    "description": "Write the model weights of a netspec checkpoint (best.pt, last.pt) as a "
    "plain state_dict file that model.load_state_dict(torch.load(FILE)) loads.",
    "epilog": EXAMPLES,
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT",
                        help="best.pt, last.pt, or a run folder (its best.pt)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="the state_dict file (default: CHECKPOINT's folder/<stem>_weights.pt)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: weights, checkpoint, epoch, tensors, values")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from netspec.emit.checkpoint import CheckpointError, save_weights

    try:
        written = save_weights(args.checkpoint, args.output)
    except CheckpointError as exc:
        print(f"netspec weights: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(written))
    else:
        epoch = f", epoch {written['epoch']}" if written["epoch"] is not None else ""
        print(f"wrote {written['weights']}: {written['tensors']} tensors, "
              f"{written['values']:,} values (from {written['checkpoint']}{epoch}); load with "
              f"model.load_state_dict(torch.load({written['weights']!r}))")
    return 0


COMMANDS = {"weights": Command(OPTIONS, configure, run)}
