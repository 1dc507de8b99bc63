"""What the tutorial tests share: the command line run as a student types it."""

from __future__ import annotations

import contextlib
import io

from netspec.cli import main


def run(argv: list[str]) -> tuple[int, str, str]:
    """``netspec ARGV...`` in this process: (exit status, what it printed, its errors)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def generated_model(path: str, class_name: str, weights: str):
    """``from <file> import <Class>; model = Class(); model.load_state_dict(torch.load(...))``:
    the tutorial's lines, for a file netspec codegen wrote."""
    import importlib.util
    import sys
    from pathlib import Path

    import torch

    name = Path(path).stem
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
        model = getattr(module, class_name)()
        model.load_state_dict(torch.load(weights))
    finally:
        del sys.modules[name]
    return model
