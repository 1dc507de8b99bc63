"""Arithmetic written where a number goes: ``Linear: [64*4*4, 64]``, as the tutorials write it.

Runs before validation.  A string that is arithmetic over numbers only (at least one
operator, no names) becomes its value in the document, so every later stage sees the number
and the tables show it; the text as written is kept in ``doc.folded`` for messages ("in_features
64*5*5 = 1600 does not match the 1024 features coming in").  Names are left alone: inside
a block they are its parameters, substituted when the block is used, and elsewhere a
string such as 'same' or 'nearest-exact' is an argument's value.  The text is parsed by
``netspec.core.expr``; nothing is handed to eval."""

from __future__ import annotations

import ast
from typing import Any

from netspec.core.diagnostics import Diagnostic
from netspec.core.document import Document
from netspec.core.expr import ExprError, evaluate, parse

# entry keys that hold names or conditions, never a number to compute
_NOT_NUMBERS = ("name", "from", "if", "tie", "inputs", "outputs")


def is_arithmetic(text: str) -> bool:
    """``64*4*4``, ``-(3 + 1)``, ``2**10``: operators over numbers, no names."""
    tree = parse(text)
    if tree is None or not isinstance(tree.body, (ast.BinOp, ast.UnaryOp)):
        return False
    return not any(isinstance(n, ast.Name) for n in ast.walk(tree))


def fold(doc: Document) -> list[Diagnostic]:
    """Replace arithmetic in ``input:``, in the layers (arguments, ``first:``, ``repeat:``,
    nested groups) and in the blocks (their bodies and their parameters' defaults:
    ``params: {stride: 2//2}``) by its value; an expression that cannot be computed
    (``64/0``) is an error at its position."""
    problems: list[Diagnostic] = []
    data = doc.data
    if isinstance(data, dict):
        for key in ("input", "layers"):
            if key in data:
                data[key] = _fold(doc, (key,), data[key], problems)
        blocks = data.get("blocks")
        for name, block in blocks.items() if isinstance(blocks, dict) else ():
            for key in ("params", "layers"):
                if isinstance(block, dict) and key in block:
                    block[key] = _fold(doc, ("blocks", name, key), block[key], problems)
    return problems


def _fold(doc: Document, path: tuple, value: Any, problems: list[Diagnostic]) -> Any:
    if isinstance(value, str):
        return _value(doc, path, value, problems)
    if isinstance(value, list):
        return [_fold(doc, path + (i,), v, problems) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: v if k in _NOT_NUMBERS else _fold(doc, path + (k,), v, problems)
                for k, v in value.items()}
    return value


def _value(doc: Document, path: tuple, text: str, problems: list[Diagnostic]) -> Any:
    if not is_arithmetic(text):
        return text
    try:
        value = evaluate(text, {})
    except ExprError as exc:
        problems.append(doc.diagnostic(path, f"{text.strip()} cannot be computed: {exc}"))
        return text
    if isinstance(value, float) and value.is_integer() and "/" in text and "//" not in text:
        # 64*4*4/2 is 512.0 in Python; a size written with / means the whole number
        value = int(value)
    doc.folded[path] = text.strip()
    return value
