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
