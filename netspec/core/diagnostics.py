"""Diagnostics: every problem netspec reports points at a place in the user's file."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

# characters that act on a terminal or on line structure rather than print: C0 and C1 controls
# (ESC, BEL, newline, tab, ...), DEL, bidirectional overrides and marks (text shown in another
# order than written), line and paragraph separators; and what XML cannot carry (lone
# surrogates, U+FFFE, U+FFFF), so the same text is safe in a diagram label
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufffe\uffff]"
)


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match) -> str:
    char = match.group()
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` on one line, every control or direction-changing character written as an
    escape (``\\x1b``, ``\\n``, ``\\u202e``): spec text shown in a message cannot move the
    cursor, retitle the terminal or start a forged line."""
    return _INVISIBLE.sub(_escape_char, text)


def json_text(value: Any) -> str:
    """``value`` as one line of JSON (non-ASCII kept) whose strings carry no raw control or
    direction character: JSON escapes C0 controls itself; the rest become ``\\uXXXX``."""
    text = json.dumps(value, ensure_ascii=False)
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int  # 1-based, as editors count
    col: int  # 1-based
    message: str
    severity: str = "error"  # "error", "warning" or "note"
    layer: dict[str, Any] | None = field(default=None)  # {"index", "name", "type"}

    def __post_init__(self) -> None:
        # every message quotes spec text somewhere: escape it once, here, for all the places
        # a message goes (terminal, JSON, the report, the diagram)
        object.__setattr__(self, "message", visible(str(self.message)))

    def format(self) -> str:
        return f"{visible(self.file)}:{self.line}:{self.col}: {self.severity}: {self.message}"

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
    return f" (did you mean '{visible(match)}'?)" if match else ""


def number_text(n: int) -> str:
    """``n`` with thousands separators, or as ``3.8e26`` (three significant digits at
    most) from 10**18 on: sizes worked out from a spec can be astronomically large, and
    Python refuses to print an int of more than 4,300 digits."""
    size = abs(n)
    if size < 10**18:
        return f"{n:,}"
    digits = int(size.bit_length() * 0.30102999566398120)  # log10(2): at most one short
    while 10**digits <= size:
        digits += 1
    lead = size // 10 ** (digits - 3)  # the three leading digits
    mantissa = f"{lead // 100}.{lead % 100:02d}".rstrip("0").rstrip(".")
    return f"{'-' if n < 0 else ''}{mantissa}e{digits - 1}"
