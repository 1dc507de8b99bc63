"""A small, safe evaluator for block-parameter arithmetic: ``planes * 4``, ``width // 2``,
``stride != 1 or in_channels != planes``.

The text is parsed with ``ast`` and walked here; only numbers, booleans, parameter names,
arithmetic, comparisons, and/or/not, conditional expressions and lists are allowed.
Nothing is ever handed to eval/exec."""

from __future__ import annotations

import ast
import operator
from typing import Any

MAX_LENGTH = 200
MAX_POWER = 64  # 2 ** 64 is already absurd for a layer size
# no result may exceed what torch can hold in an int64: (2 ** 64) ** 64 ** ... would
# otherwise take all memory, and a float past 1e308 raises OverflowError or becomes inf
MAX_MAGNITUDE = 2**63

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Div: operator.truediv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_COMPARE_SYMBOLS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Div: "/",
            ast.Mod: "%", ast.Pow: "**"}


class ExprError(Exception):
    pass


def parse(text: str) -> ast.Expression | None:
    """The parsed expression, or None when ``text`` is not an expression at all."""
    if len(text) > MAX_LENGTH:
        return None
    try:
        return ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None


def names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def is_expression(text: str, params: set[str] | frozenset[str]) -> bool:
    """True when ``text`` is an expression over ``params`` (so 'same', 'nearest-exact' and
    other strings stay strings unless every name in them is a parameter), or arithmetic over
    numbers alone (``64*4*4``)."""
    tree = parse(text)
    if tree is None:
        return False
    used = names(tree)
    if not used:
        return isinstance(tree.body, (ast.BinOp, ast.UnaryOp))
    return used <= set(params)


def evaluate(text: str, env: dict[str, Any]) -> Any:
    tree = parse(text)
    if tree is None:
        raise ExprError(f"'{text}' is not an expression")
    return _eval(tree.body, env)


def _eval(node: ast.AST, env: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("True", "False"):
            return node.id == "True"
        if node.id not in env:
            raise ExprError(f"unknown parameter '{node.id}'")
        return env[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, env), _eval(node.right, env)
        _numbers(left, right, _SYMBOLS[type(node.op)])
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_POWER:
            raise ExprError(f"exponent {right} is too large")
        if isinstance(node.op, (ast.FloorDiv, ast.Div, ast.Mod)) and right == 0:
            raise ExprError("division by zero")
        try:
            value = _BINARY[type(node.op)](left, right)
        except (OverflowError, ZeroDivisionError):  # 0.0 ** -1, 10.0 ** 64 ** ...
            value = float("inf")
        if isinstance(value, complex):  # (-8) ** 0.5
            raise ExprError(f"'{ast.unparse(node)}' is not a real number")
        if not abs(value) <= MAX_MAGNITUDE:  # also catches inf and nan
            raise ExprError(f"'{ast.unparse(node)}' is too large (more than 2**63)")
        return value
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, env)
        if isinstance(node.op, ast.Not):
            return not value
        _numbers(value, 0, "unary -")
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, env) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops):
        left = _eval(node.left, env)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, env)
            if not isinstance(op, (ast.Eq, ast.NotEq)):  # ordering: numbers only
                _numbers(left, right, _COMPARE_SYMBOLS[type(op)])
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body, env) if _eval(node.test, env) else _eval(node.orelse, env)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, env) for e in node.elts]
    raise ExprError(f"'{ast.unparse(node)}' is not allowed in a parameter expression "
                    "(numbers, parameter names, + - * / // % **, comparisons, and/or/not, "
                    "'a if c else b' and lists only)")


def _numbers(a: Any, b: Any, op: str) -> None:
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ExprError(f"'{op}' needs numbers, got {v!r}")
