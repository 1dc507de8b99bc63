"""Diagnostics: every problem netspec reports points at a place in the user's file."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int  # 1-based, as editors count
    col: int  # 1-based
    message: str
    severity: str = "error"  # "error", "warning" or "note"
    layer: dict[str, Any] | None = field(default=None)  # {"index", "name", "type"}

    def format(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "layer": self.layer,
            "message": self.message,
        }


class SpecError(Exception):
    """Raised by the Python API when a spec has errors; carries every diagnostic."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("\n".join(d.format() for d in diagnostics))


def closest(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """The choice ``word`` most likely misspells, case-insensitively, or None."""
    lowered = {c.lower(): c for c in choices}
    key = word.lower()
    if key in lowered:
        return lowered[key] if lowered[key] != word else None
    close = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.75)
    if not close and len(key) >= 3:  # 'kernel' -> 'kernel_size', 'ceil' -> 'ceil_mode'
        close = [c for c in lowered if c.startswith(key)][:1]
    return lowered[close[0]] if close else None


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'X'?)' for the closest choice, case-insensitively, or ''."""
    match = closest(word, choices)
    return f" (did you mean '{match}'?)" if match else ""
