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

a spec that leaves layers unnamed: netspec.build numbers them (0.weight), the class netspec
codegen writes names them as the tutorials do (conv1.weight); --style class writes the
file's keys:
  netspec weights runs/Tudui/20250101-120000 -o tudui_class.pt --style class

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
    parser.add_argument("--style", choices=("build", "class", "add-module", "ordereddict"),
                        default="build",
                        help="whose state_dict keys: netspec.build's (default), or those of "
                        "the file netspec codegen --style STYLE writes (they differ only "
                        "where the spec leaves layers unnamed)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: weights, checkpoint, epoch, tensors, values")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from netspec.emit.checkpoint import CheckpointError, save_weights

    try:
        renames = _renames(args.checkpoint, args.style) if args.style != "build" else {}
        written = save_weights(args.checkpoint, args.output, renames)
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


def _renames(checkpoint: str, style: str) -> dict[str, str]:
    """The generated file's names for what netspec.build numbers, from the spec the
    checkpoint holds."""
    from netspec.core.diagnostics import SpecError
    from netspec.emit.checkpoint import CheckpointError, checkpoint_spec_text
    from netspec.emit.codegen import state_dict_renames

    text = checkpoint_spec_text(checkpoint)
    if text is None:
        raise CheckpointError(f"{checkpoint} holds no spec, so the keys of --style {style} "
                              "cannot be known; write the default keys")
    try:
        return state_dict_renames(text, style)
    except SpecError as exc:
        raise CheckpointError(f"the spec in {checkpoint} does not check: "
                              f"{exc.diagnostics[0].message}") from None


COMMANDS = {"weights": Command(OPTIONS, configure, run)}
