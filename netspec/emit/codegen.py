"""Code generation: a checked spec -> the source of a plain PyTorch module file.

    >>> from netspec.codegen import generate
    >>> print(generate("specs/zoo/resnet18.yaml"))            # style "class"

Four styles, the four ways PyTorch's tutorials write a model:

- ``class``: a ``nn.Module`` subclass with the layers in ``__init__`` and an explicit
  ``forward``; blocks become their own classes (one per block and shape of body, its
  ``__init__`` taking the arguments that differ between uses, as torchvision's
  ``BasicBlock(inplanes, planes)``), repeats and chain groups ``nn.Sequential``.  A block
  whose children are all unnamed (``0``, ``1``, ...) subclasses ``nn.Sequential``, as
  torchvision's ``Conv2dNormActivation`` does.  Every spec can be written this way.
- ``sequential``: ``nn.Sequential(nn.Conv2d(...), ...)``; children are numbered, so the
  spec's names are given up (the docstring says which).
- ``add-module``: ``self.add_module("conv1", nn.Conv2d(...))``.
- ``ordereddict``: ``nn.Sequential(OrderedDict([("conv1", nn.Conv2d(...)), ...]))``.

In ``class``, ``add-module`` and ``ordereddict`` the top-level entries that the spec leaves
unnamed are named as the tutorials name them (conv1, pool1, fc1: _name_unnamed).

The three sequential styles run one layer after another, so they cannot express a
network that branches (``from:``, merges): :class:`StyleError` says where it branches.

The file imports only torch (and ``collections`` for OrderedDict), defines the class named
by the spec's ``name``, carries each layer's inferred output shape as a comment
(``# -> 32×16×16``, batch excluded), and is formatted as ``ruff format`` formats it (line
length 100) and clean under ``ruff check``.  The same spec gives the same bytes.  Its
``state_dict`` keys are those of ``netspec.build(spec)`` wherever it keeps the spec's names;
where it gives or gives up names, the docstring says so and how build's weights load by
position.

Safety: nothing from the spec reaches the source except names that are re-checked here as
ASCII Python identifiers (or the default numbers ``0``, ``1``, ...) and literal numbers,
strings and booleans rendered with ``repr``; block-parameter arithmetic (``planes * 4``) is
re-parsed and re-rendered from its checked syntax tree.  Anything else is refused.  Nothing
here imports torch.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math
import os
import re
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netspec.core.diagnostics import Diagnostic, SpecError
from netspec.core.expr import ExprError, evaluate, is_expression
from netspec.core.expr import parse as parse_expr
from netspec.core.graph import Node
from netspec.core.names import MODULE_ATTRIBUTES, MODULE_NAME, list_place, split_source
from netspec.emit.build import (
    calls_function,
    constructor_kwargs,
    is_chain,
    is_parameter,
    part_path,
    states_taken,
)
from netspec.ops import REGISTRY, Args, fmt
from netspec.ops.declare import REQUIRED, InputSize
from netspec.pipeline.check import CheckResult, Spec, check
from netspec.pipeline.resolve import Output, keyword_form

STYLES = ("class", "sequential", "add-module", "ordereddict")
LINE_LENGTH = 100
INDENT = "    "

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_MODULE_NAME = re.compile(MODULE_NAME.pattern, re.ASCII)  # block1-0, via getattr
_INDEX = re.compile(r"(0|[1-9][0-9]*)", re.ASCII)
# Module-level names the generated file defines or uses: a class may not take them.
# Functions and classes the generated file defines once (Code.helper): crop_to, LayerNorm2d
# every function and class the ops' helper sources define at the top of a generated file
_HELPER_FUNCTIONS = frozenset(
    name for lt in REGISTRY.values() if lt.code.helper
    for name in re.findall(r"^(?:def|class) (\w+)", lt.code.helper, re.M))
# Module ops whose class is not torch's and that the file does not define
# (torchvision.ops.StochasticDepth): the file imports them by name, which no class may take
_IMPORTED = {lt.torch.target.rpartition(".")[2]: lt.torch.target.rpartition(".")[0]
             for lt in REGISTRY.values()
             if lt.torch.module and not lt.torch.target.startswith("torch.")
             and not lt.code.helper}
_GLOBALS = frozenset({"torch", "nn", "OrderedDict", "collections", "annotations"}
                     ) | _HELPER_FUNCTIONS | frozenset(_IMPORTED)
# Module ops returning a tuple (RNN, LSTM, GRU return (output, state)): in nn.Sequential, a
# subclass that returns the output that flows on
_OUTPUT_ONLY_HELPER = {name: f"{name}Output" for name, lt in REGISTRY.items()
                       if lt.torch.module and lt.torch.returns is not None and not lt.takes_several}
# Names a function's local variables must not take (they would shadow what it uses).
_LOCALS_RESERVED = frozenset(
    {"self", "x", "torch", "nn", "OrderedDict", "super", "getattr", "float"}
) | frozenset(dir(builtins)) | _HELPER_FUNCTIONS | frozenset(_OUTPUT_ONLY_HELPER.values()) \
    | frozenset(_IMPORTED)
# Python's parser refuses more than 200 nested brackets in one statement ("too many nested
# parentheses"): containers nested deeper than this are built in local variables first.
MAX_NESTING = 16


class StyleError(SpecError):
    """The spec is fine, but the chosen style cannot express it (a branching network in a
    sequential style, a tie).  Carries positioned
    diagnostics, like SpecError."""


class CodegenError(SpecError):
    """Something in the spec cannot safely become source text (a name that is not a Python
    identifier, a value that is not a plain literal)."""


# ---------------------------------------------------------------- literals and layout


def literal(value: Any) -> str:
    """Python source for a plain value: numbers, booleans, None, strings (double-quoted, as
    ruff formats them), tuples and lists of those.  Anything else is refused."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return 'float("inf")' if value > 0 else '-float("inf")'
        return repr(float(value))
    if isinstance(value, str):
        text = repr(str(value))
        if text.startswith("'") and '"' not in value:
            text = '"' + text[1:-1] + '"'
        return text
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise ValueError(f"{type(value).__name__} value {value!r} is not a plain literal")


@dataclass
class Item:
    """One element of a bracketed list, with an optional trailing comment."""

    expr: Expr
    comment: str | None = None


@dataclass
class Expr:
    """Source text that may break over lines: ``head`` + ``open`` items ``close``, or an
    atom (``items`` None).  ``layout`` renders it the way ``ruff format`` would."""

    head: str
    items: list[Item] | None = None
    open: str = "("
    close: str = ")"
    # a module's construction that may move into a local variable of this name (hoist)
    hint: str | None = None

    def flat(self) -> str | None:
        """One-line text, or None when a comment inside forces it over several lines."""
        if self.items is None:
            return self.head
        parts = []
        for item in self.items:
            if item.comment:
                return None
            text = item.expr.flat()
            if text is None:
                return None
            parts.append(text)
        inner = ", ".join(parts)
        if self.open == "(" and not self.head and len(parts) == 1:
            inner += ","  # a one-element tuple
        return f"{self.head}{self.open}{inner}{self.close}"


def atom(text: str) -> Expr:
    return Expr(text)


def call(head: str, args: list[str | Expr | Item]) -> Expr:
    items = [a if isinstance(a, Item) else Item(atom(a) if isinstance(a, str) else a)
             for a in args]
    return Expr(head, items)


def layout(expr: Expr, indent: int, prefix: str = "", suffix: str = "",
           comment: str | None = None) -> list[str]:
    """Lines for ``prefix + expr + suffix`` at ``indent`` spaces, with ``comment`` trailing
    the last line (or on its own line above when the line would be too long)."""
    pad = " " * indent
    flat = expr.flat()
    if flat is not None:
        line = f"{pad}{prefix}{flat}{suffix}"
        if len(line) <= LINE_LENGTH:
            if comment is None:
                return [line]
            if len(line) + 2 + len(comment) <= LINE_LENGTH:
                return [f"{line}  {comment}"]
            return [f"{pad}{comment}", line]
    if expr.items is None:  # an atom too long for the line: nothing to break
        lines = [f"{pad}{prefix}{flat}{suffix}"]
        return lines if comment is None else [f"{pad}{comment}", *lines]
    lines = [f"{pad}{prefix}{expr.head}{expr.open}"]
    items = expr.items
    inner = [None if item.comment else item.expr.flat() for item in items]
    joined = ", ".join(t for t in inner if t is not None)
    if (None not in inner and len(pad) + 4 + len(joined) <= LINE_LENGTH
            and not (len(items) == 1 and items[0].expr.items is not None)
            and not (not expr.head and expr.open == "(" and len(items) == 1)):
        lines.append(f"{pad}    {joined}")  # the right-hand split: items on one line
    else:
        hug = len(items) == 1 and not items[0].comment and items[0].expr.items is not None
        for item in items:
            lines += layout(item.expr, indent + 4, suffix="" if hug else ",",
                            comment=item.comment)
    close = f"{pad}{expr.close}{suffix}"
    if comment is not None and len(close) + 2 + len(comment) <= LINE_LENGTH:
        lines.append(f"{close}  {comment}")
    elif comment is not None:
        lines = [f"{pad}{comment}", *lines, close]
    else:
        lines.append(close)
    return lines


def hoist(expr: Expr, fresh: Callable[[str], str]) -> tuple[Expr, list[tuple[str, Expr]]]:
    """``expr`` with the module constructions nested more than MAX_NESTING brackets deep
    replaced by local variables, and the (variable, construction) assignments to write
    before it, innermost first.  Shallow expressions come back unchanged."""
    assignments: list[tuple[str, Expr]] = []

    def visit(e: Expr) -> tuple[Expr, int]:
        if e.items is None:
            return e, 0
        items, depth = [], 0
        for item in e.items:
            inner, d = visit(item.expr)
            items.append(Item(inner, item.comment) if inner is not item.expr else item)
            depth = max(depth, d)
        new = Expr(e.head, items, e.open, e.close, e.hint) if any(
            a is not b for a, b in zip(items, e.items, strict=True)) else e
        if e.hint is not None and depth + 1 > MAX_NESTING:
            var = fresh(e.hint)
            assignments.append((var, new))
            return atom(var), 0
        return new, depth + 1

    out, _ = visit(expr)
    return out, assignments


def statement(expr: Expr, indent: int, fresh: Callable[[str], str], prefix: str = "",
              comment: str | None = None) -> list[str]:
    """layout() for one statement, with deep constructions assigned to locals first."""
    expr, assignments = hoist(expr, fresh)
    lines = []
    for var, part in assignments:
        lines += layout(part, indent, prefix=f"{var} = ")
    return lines + layout(expr, indent, prefix=prefix, comment=comment)


def shape_comment(result: Node) -> str | None:
    if result.output_shape is None:
        return None
    if result.outputs:  # an op giving several tensors: each one's
        return f"# -> {', '.join(fmt(shape) for _, shape in result.outputs)}"
    return f"# -> {fmt(result.output_shape)}"


# ---------------------------------------------------------------- the tree, with raw entries


@dataclass
class CodeNode:
    """A checked entry with the YAML it came from (for parameter names) and its place in
    the document (for positioned errors)."""

    r: Node
    raw: Any  # the entry as written (a block body's entry: before parameter substitution)
    raw_args: dict[str, Any]  # its arguments as written, in keyword form
    path: tuple
    children: list[CodeNode] = field(default_factory=list)
    unit: Unit | None = None  # class style: the generated class this entry instantiates
    # expressions over block parameters are only taken from the block's own body
    in_block: str | None = None
    alias: str | None = None  # the readable name given to an entry the spec leaves unnamed
    _by_name: dict[str, CodeNode] | None = field(default=None, repr=False, compare=False)
    _kwargs: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.alias or self.r.name

    @property
    def kwargs(self) -> dict[str, Any]:
        """A layer's constructor arguments as torch takes them (computed once)."""
        if self._kwargs is None:
            self._kwargs = constructor_kwargs(self.r)
        return self._kwargs

    def child(self, name: str) -> CodeNode:
        if self._by_name is None:  # one lookup per child, not a scan (repeats of 10,000)
            self._by_name = {c.name: c for c in self.children}
        return self._by_name[name]

    def descendant(self, path: list[str]) -> CodeNode:
        """The entry at a qualname's parts below this one; an entry named by a key path
        (convs.3) takes several parts."""
        node, at = self, 0
        while at < len(path):
            self_names = node._by_name if node._by_name is not None else \
                {c.name: c for c in node.children}
            end = next(k for k in range(len(path), at, -1) if ".".join(path[at:k]) in self_names)
            node, at = node.child(".".join(path[at:end])), end
        return node

    @property
    def kind(self) -> str:
        return self.r.kind


def _raw_args(raw: Any, type_name: str) -> dict[str, Any]:
    """An entry's arguments in keyword form, as written (the way resolve reads them)."""
    args = raw.get(type_name) if isinstance(raw, dict) else None
    lt = REGISTRY.get(type_name)
    if lt is None:  # a block: its parameters
        return dict(args) if isinstance(args, dict) else {}
    return keyword_form(lt, args)[1]


class _Tree:
    """The checked graph as CodeNodes, and the document for positioned errors."""

    def __init__(self, doc: Any, blocks: dict[str, dict]):
        self.blocks = blocks  # block name -> its declared parameters
        self.doc = doc
        self.file = doc.file

    def nodes(self, results: list[Node]) -> list[CodeNode]:
        return [self.node(r) for r in results]

    def node(self, r: Node) -> CodeNode:
        args = _raw_args(r.written, r.type) if r.kind in ("layer", "merge", "block") else {}
        node = CodeNode(r, r.written, args, r.path, in_block=r.block)
        node.children = self.nodes(r.children)
        return node

    def diagnostic(self, path: tuple, message: str) -> Diagnostic:
        try:
            return self.doc.diagnostic(path, message)
        except Exception:  # pragma: no cover - a path the document does not have
            return Diagnostic(self.file, 1, 1, message)


# ---------------------------------------------------------------- checks shared by the styles


def _scope_is_chain(children: list[CodeNode], output: str | None) -> bool:
    """An nn.Sequential expresses the scope: build's chain, whose output is its last entry."""
    last = children[-1].name if children else None
    return is_chain([c.r for c in children]) and output in (last, None)


def _default_names(children: list[CodeNode]) -> bool:
    return all(c.name == str(i) for i, c in enumerate(children))


def _walk(nodes: list[CodeNode]):
    for n in nodes:
        yield n
        yield from _walk(n.children)


def _check_names(tree: _Tree, nodes: list[CodeNode], class_name: str) -> None:
    problems = []
    if not (isinstance(class_name, str) and _IDENTIFIER.fullmatch(class_name)) or \
            keyword.iskeyword(class_name) or class_name in _GLOBALS or \
            class_name in _OUTPUT_ONLY_HELPER.values():
        problems.append(tree.diagnostic(("name",), f"name {class_name!r} cannot name the "
                                        "generated class: it must be an ASCII Python "
                                        "identifier, not a keyword, and not one of "
                                        f"{', '.join(sorted(_GLOBALS))}"))
    for n in _walk(nodes):
        if n.kind == "block" and (not _IDENTIFIER.fullmatch(n.r.type)
                                  or keyword.iskeyword(n.r.type)):
            problems.append(tree.diagnostic(("blocks",), f"block name {n.r.type!r} cannot "
                                            "name a generated class: it must be an ASCII "
                                            "Python identifier"))
        name = n.name.split(".")[0]  # convs.3: a module of the ModuleList convs
        if _INDEX.fullmatch(name):
            continue
        if not _MODULE_NAME.fullmatch(name) or keyword.iskeyword(name) or \
                name.startswith("_") or name in MODULE_ATTRIBUTES:
            problems.append(tree.diagnostic(n.path, f"entry name {name!r} ({n.r.qualname!r}) "
                                            "cannot be written as code: a child name must be "
                                            "an ASCII Python identifier (or such identifiers "
                                            "joined by '-') that is not a keyword, "
                                            "does not start with '_' and is not an nn.Module "
                                            "attribute"))
    if problems:
        raise CodegenError(problems)


def _branching(nodes: list[CodeNode], output: str | None) -> CodeNode | None:
    """The first entry that makes a scope not a plain chain, or None."""
    if not _scope_is_chain(nodes, output):  # a merge, a from:, or another output
        return next((n for n in nodes if calls_function(n.r) or n.r.sources
                     or n.kind in ("merge", "branches") or list_place(n.r.name) is not None),
                    nodes[-1])
    for n in nodes:
        if _has_ports(n):  # forward(self, x, skip) -> (a, b): not a step of a chain
            return n
        if n.children:
            inner = _branching(n.children, n.r.output if n.kind != "repeat" else None)
            if inner is not None:
                return inner
    return None


def _attribute_prefix(n: CodeNode) -> str:
    """What an unnamed entry is called: its op's Code.attribute (fc, pool, bn), else the
    op's name without 1d/2d/3d, lowercased (conv, relu, flatten); a block's name
    lowercased; a group or repeat by its kind."""
    lt = REGISTRY.get(n.r.type) if n.kind in ("layer", "merge") else None
    if lt is not None:
        prefix = lt.code.attribute or re.sub(r"[123]d$", "", lt.name).lower()
    else:
        prefix = n.r.type.lower() if n.kind == "block" else n.kind
    return prefix if _IDENTIFIER.fullmatch(prefix) else "layer"


def _name_unnamed(nodes: list[CodeNode], modules_only: bool = False) -> dict[str, str]:
    """Give the entries of one scope that the spec leaves unnamed (0, 1, ...) the names the
    tutorials would (conv1, pool1, conv2, ..., flatten, fc1, fc2): their prefix, numbered
    in order among the scope's entries of that prefix where there are several.  Sets each
    one's alias; returns {number: name}.  ``modules_only``: leave function ops (called in
    forward, no attribute) numbered.  An entry whose outputs from: takes by its number
    ('0.1') keeps it."""
    by_number = {_base(s, [n.name for n in nodes]) for n in nodes for s in n.r.sources}
    prefixes = [_attribute_prefix(n) for n in nodes]
    total = {p: prefixes.count(p) for p in prefixes}
    taken = {n.name for n in nodes} | {place[0] for n in nodes  # convs of convs.3
                                       if (place := list_place(n.name)) is not None}
    seen: dict[str, int] = {}
    renamed = {}
    for n, prefix in zip(nodes, prefixes, strict=True):
        seen[prefix] = k = seen.get(prefix, 0) + 1
        if not _INDEX.fullmatch(n.name) or (modules_only and calls_function(n.r)) or \
                n.name in by_number:
            continue
        name = prefix if total[prefix] == 1 else f"{prefix}{k}"
        while name in taken or name in MODULE_ATTRIBUTES or keyword.iskeyword(name):
            k += 1
            name = f"{prefix}{k}"
        taken.add(name)
        renamed[n.name] = n.alias = name
    return renamed


def _listed(pairs: list[tuple[str, str]], limit: int = 3) -> str:
    """'0 is conv1, 1 is pool1, 2 is conv2, ...'"""
    text = ", ".join(f"{a} is {b}" for a, b in pairs[:limit])
    return text + (", ..." if len(pairs) > limit else "")


BY_POSITION = "model.load_state_dict(dict(zip(model.state_dict(), weights.values())))"
LOADS_BY_POSITION = ("Weights saved from netspec.build's model (weights: its state_dict) load "
                     "by position:")


def _renamed_note(renamed: dict[str, str]) -> list[str]:
    """The docstring paragraph of a file that names entries netspec.build numbers."""
    if not renamed:
        return []
    first_old, first_new = next(iter(renamed.items()))
    listed = _listed(list(renamed.items()))
    return ["netspec.build numbers the layers the spec leaves unnamed; this file names them "
            f"as the tutorials do ({listed}), so its state_dict keys read {first_new}.* "
            f"where netspec.build's read {first_old}.*.  " + LOADS_BY_POSITION, BY_POSITION]


def _given_up_note(nodes: list[CodeNode]) -> list[str]:
    """The docstring paragraph of a sequential-style file for a spec with names."""
    pairs = []  # (the spec's qualified name, the numbered one), for each named entry

    def visit(children: list[CodeNode], prefix: str) -> None:
        for i, c in enumerate(children):
            numbered = f"{prefix}{i}"
            if not _INDEX.fullmatch(c.name):
                pairs.append((c.r.qualname, numbered))
            visit(c.children, numbered + ".")

    visit(nodes, "")
    if not pairs:
        return []
    names = "name is" if len(pairs) == 1 else f"{len(pairs)} names are"
    return [f"nn.Sequential(...) numbers its children, so the spec's {names} given up here "
            f"({_listed(pairs)}): the state_dict keys read {pairs[0][1]}.* where "
            f"netspec.build's read {pairs[0][0]}.*.  " + LOADS_BY_POSITION, BY_POSITION]


# ---------------------------------------------------------------- layer constructors


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _constructor(type_name: str, args: dict[str, str], in_sequential: bool) -> Expr:
    """``nn.Conv2d(3, 32, 5, padding=2)``: required arguments positional (in PyTorch's
    order), the others as keywords; ``args`` holds rendered values, without defaults."""
    lt = REGISTRY[type_name]
    head = _torch_name(lt.torch.target)
    if type_name in _OUTPUT_ONLY_HELPER and in_sequential:
        head = _OUTPUT_ONLY_HELPER[type_name]
    positional, keywords = [], []
    for arg in lt.args:
        if arg.name not in args:
            continue
        text = args[arg.name]
        if arg.default is REQUIRED and not arg.keyword_only and not keywords:
            positional.append(text)
        else:
            keywords.append(f"{arg.name}={text}")
    return call(head, positional + keywords)


def _arg_text(value: Any, default: Any) -> str | None:
    """``value`` as a literal, or None to leave it out (it equals PyTorch's default)."""
    if default is not REQUIRED and _same(value, default):
        return None
    return literal(value)


def _sequential_expr(children: list[tuple[CodeNode, Expr, str | None]], named: bool) -> Expr:
    """``nn.Sequential(a, b)`` from (entry, its module, its comment), or with ``named``
    ``nn.Sequential(OrderedDict([("conv1", a), ...]))``, which keeps the entries' names."""
    for c, module, _ in children:
        if module.items is not None and module.hint is None:
            module.hint = c.name
    items = [Item(Expr("", [Item(atom(literal(c.name))), Item(module)]) if named else module,
                  comment) for c, module, comment in children]
    if named:
        return call("nn.Sequential", [call("OrderedDict", [Expr("", items, "[", "]")])])
    return Expr("nn.Sequential", items)


def _layer_args(n: CodeNode, render: Callable[[str, Any, Any], str | None] | None = None
                ) -> dict[str, str]:
    """Rendered arguments of a layer: ``render(arg, value, default)`` gives the text, or None
    to leave the argument out; without ``render``, each value as a literal (_arg_text)."""
    lt = REGISTRY[n.r.type]
    out = {}
    for arg, value in n.kwargs.items():
        default = lt.arg_by_name[arg].default
        text = render(arg, value, default) if render else _arg_text(value, default)
        if text is not None:
            out[arg] = text
    return out


# ---------------------------------------------------------------- class style: units


@dataclass
class Param:
    name: str
    default: Any = REQUIRED  # REQUIRED: positional, no default


@dataclass
class Unit:
    """One generated class: a block (per shape of its body), a branching group, or the
    network itself.  Its instances differ only in the values of ``params``."""

    name: str
    base: str  # block type, group name, or the network name
    instances: list[CodeNode] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    # position -> how the value is written in the class body: ("lit", value),
    # ("name", param) or ("expr", text)
    rendering: dict[tuple, tuple] = field(default_factory=dict)
    note: str = ""

    known: dict[str, tuple] = field(default_factory=dict)  # parameter -> value per instance

    def args_of(self, node: CodeNode) -> dict[str, Any]:
        """The values of this class's parameters for one instance."""
        j = next(j for j, i in enumerate(self.instances) if i is node)
        return {p.name: self.known[p.name][j] for p in self.params}

    def text(self, pos: tuple, value: Any, default: Any) -> str | None:
        """How the class body writes the value at ``pos``: a literal (None where it is the
        default), a parameter, or an expression."""
        how = self.rendering.get(pos, ("lit", value))
        return _arg_text(how[1], default) if how[0] == "lit" else how[1]


def _camel(name: str) -> str:
    text = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)
    return text if _IDENTIFIER.fullmatch(text or "0") else f"Group{name}"


def _structure(node: CodeNode) -> tuple:
    """What must be equal for two entries to share a generated class: every child's kind,
    type, name, sources and argument names (values apart); nested classes by identity."""

    def scope(children: list[CodeNode]) -> tuple:
        return tuple(one(c) for c in children)

    def one(c: CodeNode) -> tuple:
        head = (c.name, c.kind, tuple(c.r.sources), c.r.output, _ports_key(c))
        if c.unit is not None:
            return (*head, "unit", id(c.unit))
        if c.kind in ("layer", "merge"):
            values = c.kwargs
            if calls_function(c.r):  # its values are written in forward
                return (*head, c.r.type, tuple(sorted((k, repr(v)) for k, v in values.items())))
            return (*head, c.r.type, tuple(sorted(values)))
        return (*head, scope(c.children))

    return (node.r.type if node.kind == "block" else node.name, node.r.output,
            _ports_key(node), scope(node.children))


def _ports_key(node: CodeNode) -> tuple:
    """A group's or block's inputs: and outputs: (forward's signature and return)."""
    return (tuple(node.r.port_inputs), tuple(node.r.port_outputs), node.r.returns)


def _has_ports(node: CodeNode) -> bool:
    return bool(node.r.port_inputs or node.r.port_outputs)


def _positions(node: CodeNode) -> list[tuple[tuple, CodeNode, str, Any, bool]]:
    """(position, entry, argument, raw value, whether the entry reads the instance's own
    input) for every value in an instance's body: layer arguments, and the parameters of
    nested classes."""
    out = []

    def visit(children: list[CodeNode], prefix: tuple, at_input: bool, repeat: bool) -> None:
        previous = "input"
        for c in children:
            here = (*prefix, c.name)
            sources = c.r.sources or [previous]
            reads_input = at_input and (sources == ["input"] if not repeat
                                        else c is children[0])
            if c.unit is not None:
                for p in c.unit.params:
                    out.append(((*here, "call", p.name), c, p.name, c.raw_args.get(p.name),
                                reads_input))
            elif c.kind in ("layer", "merge") and not calls_function(c.r):
                for arg in c.kwargs:
                    out.append(((*here, "kw", arg), c, arg, c.raw_args.get(arg), reads_input))
            elif c.kind in ("group", "repeat"):
                visit(c.children, here, reads_input, c.kind == "repeat")
            elif c.kind == "branches":  # each branch reads the entry's input
                for b in c.children:
                    visit([b], here, reads_input, True)
            previous = c.name

    visit(node.children, (), True, False)
    return out


def _position_values(node: CodeNode, positions: list[tuple]) -> list[Any]:
    found = {pos: (c, arg) for pos, c, arg, _, _ in _positions(node)}
    values = []
    for pos in positions:
        c, arg = found[pos]
        if pos[-2] == "call":
            values.append(c.unit.args_of(c)[arg])
        else:
            values.append(c.kwargs[arg])
    return values


@dataclass
class _Naming:
    """What parametrizing one class has found so far."""

    declared: dict[str, Any]  # a block's parameters and their defaults
    in_block: bool
    inputs: tuple  # the channels coming into each instance
    positions: list[tuple]
    vectors: list[tuple]  # per position, its value in each instance
    known: dict[str, tuple] = field(default_factory=dict)  # parameter -> value per instance
    varying: list[str] = field(default_factory=list)  # the class's parameters
    rendering: dict[tuple, tuple] = field(default_factory=dict)
    index_of: dict[tuple, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index_of = {p: k for k, p in enumerate(self.positions)}

    def bare(self, raw: Any) -> str | None:
        """A block parameter (or in_channels) written bare: out_channels: planes."""
        if isinstance(raw, str) and _IDENTIFIER.fullmatch(raw) and (
                raw in self.declared or raw == "in_channels"):
            return raw
        return None

    def known_values(self, found: list[tuple], instances: list) -> None:
        """Parameters written bare, with their value in every instance; in a block also
        in_channels and the values written at each use (ResNet's layer2 passes planes: 128)
        or the declared default: parameters only used in arithmetic (expand_ratio)."""
        for (_, _, _, raw, _), vec in zip(found, self.vectors, strict=True):
            name = self.bare(raw)
            if name and self.known.get(name, vec) == vec:
                self.known[name] = vec
        if not self.in_block:
            return
        self.known.setdefault("in_channels", self.inputs)
        for p, default in self.declared.items():
            if p in self.known or not _IDENTIFIER.fullmatch(str(p)):
                continue
            vec = []
            for i in instances:
                v = i.raw_args.get(p, default)
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    break
                vec.append(v)
            else:
                self.known[p] = tuple(vec)

    def earlier_equal(self, vec: tuple) -> tuple | None:
        """How the latest position with the same values (not a literal) is written."""
        return next((how for p, how in reversed(self.rendering.items())
                     if how[0] != "lit" and self.vectors[self.index_of[p]] == vec), None)


class _Classes:
    """Class style: assign every block and branching group to a generated class, then give
    each class the parameters its instances differ in."""

    def __init__(self, tree: _Tree, network: str):
        self.tree = tree
        self.units: list[Unit] = []
        self.by_key: dict[tuple, Unit] = {}
        self.taken = set(_GLOBALS) | set(_OUTPUT_ONLY_HELPER.values()) | {network}
        self.names_per_base: dict[str, int] = {}

    def assign(self, nodes: list[CodeNode]) -> None:
        for n in nodes:
            self.assign(n.children)
            if n.kind == "block" or (n.kind == "group" and not self.inline_group(n)):
                key = _structure(n)
                unit = self.by_key.get(key)
                if unit is None:
                    unit = self.new_unit(n, key)
                unit.instances.append(n)
                n.unit = unit

    @staticmethod
    def inline_group(n: CodeNode) -> bool:
        return _scope_is_chain(n.children, n.r.output) and not _has_ports(n)

    def new_unit(self, n: CodeNode, key: tuple) -> Unit:
        base = n.r.type if n.kind == "block" else _camel(n.name)
        count = self.names_per_base.get(base, 0) + 1
        self.names_per_base[base] = count
        name = base if count == 1 else f"{base}{count}"
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        unit = Unit(name, base)
        if count > 1:
            first = next(u for u in self.units if u.base == base)
            extra = [c.name for c in n.children
                     if c.name not in {x.name for x in first.instances[0].children}]
            unit.note = f"{base}, variant {count}" + (
                f": with {', '.join(extra)}" if extra else "")
        self.units.append(unit)
        self.by_key[key] = unit
        return unit

    def finalize(self) -> None:
        for unit in self.units:  # inner classes come first (assigned bottom-up)
            self.parametrize(unit)

    def parametrize(self, unit: Unit) -> None:
        """The parameters of ``unit``'s class: the values its instances differ in, named as
        the spec names them (a block's parameters, in_channels) or freshly, and how the
        class body writes each argument position."""
        template = unit.instances[0]
        in_block = template.kind == "block"
        declared = {}  # a block's params (and their defaults)
        if in_block:
            params = self.tree.blocks.get(template.r.type) or {}
            declared = dict(params) if isinstance(params, dict) else {}
        # a raw value names block parameters only when written in this block's own body
        found = [(pos, c, arg, raw if in_block and c.in_block == template.r.type else None,
                  at_input) for pos, c, arg, raw, at_input in _positions(template)]
        positions = [p for p, *_ in found]
        vectors = list(zip(*(_position_values(i, positions) for i in unit.instances),
                           strict=True)) if positions else []
        inputs = tuple(i.r.input_shape[0] if i.r.input_shape else None for i in unit.instances)
        state = _Naming(declared, in_block, inputs, positions, vectors)
        state.known_values(found, unit.instances)
        for (pos, _, _, raw, at_input), vec in zip(found, vectors, strict=True):
            self.render_position(state, pos, raw, at_input, vec)
        unit.rendering = state.rendering
        unit.params = self.signature(state, unit)

    def render_position(self, state: _Naming, pos: tuple, raw: Any, at_input: bool,
                        vec: tuple) -> None:
        """How the class body writes the argument at ``pos`` (values ``vec`` per instance):
        a literal, the block's arithmetic, or a parameter."""
        if _constant(vec):
            state.rendering[pos] = ("lit", vec[0])
            return
        name = state.bare(raw)
        if name is not None and state.known.get(name) != vec:
            name = None
        if name is None and raw is None and at_input and vec == state.inputs:
            name = "in_channels"  # an inferred in_channels / num_features
            state.known[name] = vec
        if name is None and isinstance(raw, str):
            text = self.expression(raw, state.known, vec, state.varying)
            if text is not None:
                state.rendering[pos] = ("expr", text)
                return
        if name is None:
            # inferred (num_features after a conv): as the latest value equal to it
            earlier = state.earlier_equal(vec)
            if earlier is not None:
                state.rendering[pos] = earlier
                return
        if name is None and vec == state.inputs and state.in_block:
            name = "in_channels"
        if name is None:
            name = self.fresh(pos, state.varying, state.declared)
            state.known[name] = vec
        if name not in state.varying:
            state.varying.append(name)
        state.rendering[pos] = ("name", self.pyname(name))

    def signature(self, state: _Naming, unit: Unit) -> list[Param]:
        """The class's parameters: in_channels, then the block's in declared order, then the
        fresh ones; required before those with defaults."""
        declared = state.declared
        order = ["in_channels", *declared]
        state.varying.sort(key=lambda p: order.index(p) if p in order else len(order))
        params = []
        for p in state.varying:
            default = declared.get(p, REQUIRED)
            # a number, or a string that is neither "required" nor arithmetic, is a default
            plain = isinstance(default, (int, float)) or (
                isinstance(default, str) and default != "required"
                and not is_expression(default, {*declared, "in_channels"}))
            params.append(Param(self.pyname(p), default if plain else REQUIRED))
            unit.known[self.pyname(p)] = state.known[p]
        return ([p for p in params if p.default is REQUIRED]
                + [p for p in params if p.default is not REQUIRED])

    def expression(self, raw: str, known: dict[str, tuple], vec: tuple,
                   varying: list[str]) -> str | None:
        """``planes * 4``: the block's own arithmetic, re-rendered from its checked syntax
        tree, when it gives this value in every instance."""
        tree = parse_expr(raw)
        if tree is None:
            return None
        allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Constant, ast.Load,
                   ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Div, ast.Mod, ast.Pow,
                   ast.USub, ast.UAdd)
        for node in ast.walk(tree):
            if not isinstance(node, allowed):
                return None
            if isinstance(node, ast.Constant) and (
                    isinstance(node.value, bool) or not isinstance(node.value, (int, float))):
                return None
            if isinstance(node, ast.Name) and (node.id not in known
                                               or not _IDENTIFIER.fullmatch(node.id)):
                return None
        for j, want in enumerate(vec):
            try:
                got = evaluate(raw, {k: v[j] for k, v in known.items()})
            except ExprError:
                return None
            if not _same(got, want) or type(got) is not type(want):
                return None

        pyname = self.pyname

        class Substitute(ast.NodeTransformer):
            def visit_Name(self, node: ast.Name) -> ast.AST:
                values = known[node.id]
                if not _constant(values):
                    return ast.copy_location(ast.Name(pyname(node.id), ast.Load()), node)
                number = values[0]
                if isinstance(number, (int, float)) and math.copysign(1, number) < 0:
                    # -2 as -(2): unparse then writes (-2) ** 2, where -2 ** 2 is -4
                    return ast.copy_location(
                        ast.UnaryOp(ast.USub(), ast.Constant(-number)), node)
                return ast.copy_location(ast.Constant(number), node)

        used = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                       and not _constant(known[n.id])}, key=list(known).index)
        if not used:
            return None
        new = ast.fix_missing_locations(Substitute().visit(tree))
        text = ast.unparse(new.body)
        for j, want in enumerate(vec):  # the text written must give each instance's value
            try:
                got = evaluate(text, {pyname(k): known[k][j] for k in used})
            except ExprError:
                return None
            if not _same(got, want) or type(got) is not type(want):
                return None
        for name in used:
            if name not in varying:
                varying.append(name)
        return text

    def pyname(self, name: str) -> str:
        """A parameter's name in __init__: never one that shadows a generated class."""
        name = _python_name(name)
        while name in self.taken:
            name = _python_name(name + "_")
        return name

    def fresh(self, pos: tuple, varying: list[str], declared: dict) -> str:
        """A new parameter: the argument's own name (input_size) where free, else qualified
        by where it is used (conv3_out_channels)."""
        if pos[-1] not in varying and pos[-1] not in declared and pos[-1] != "in_channels" \
                and _IDENTIFIER.fullmatch(pos[-1]):
            return pos[-1]
        parts = [p for p in pos if p not in ("kw", "call")]
        name = "_".join(p if not _INDEX.fullmatch(p) else f"n{p}" for p in parts)
        name = name if _IDENTIFIER.fullmatch(name) else "arg"
        while name in varying or name == "in_channels":
            name += "_"
        return name


def _constant(vec: tuple) -> bool:
    return all(_same(v, vec[0]) and repr(v) == repr(vec[0]) for v in vec)


def _python_name(name: str) -> str:
    """A parameter name as a local variable of __init__: never one that shadows what the
    generated code uses (nn, torch, self, builtins) or a keyword."""
    while name in _LOCALS_RESERVED or keyword.iskeyword(name) or keyword.issoftkeyword(name):
        name += "_"
    return name


# ---------------------------------------------------------------- class style: rendering


def _every_part(sources: list[str], children: list[CodeNode]) -> str | None:
    """The branches entry whose every output ``sources`` names, in order (convs.0, convs.1,
    ...), or None."""
    base = _base(sources[0], [c.name for c in children])
    entry = next((c for c in children if c.name == base), None)
    if entry is None or entry.kind != "branches" or len(sources) < 2:
        return None
    return base if sources == [f"{base}.{b.name}" for b in entry.children] else None


def _base(source: str, names: Iterable[str] = ()) -> str:
    """The entry a source names among ``names``: halves for halves.0, convs.3 for convs.3
    (an entry named by a key path)."""
    return split_source(source, names)[0]


def _attribute(name: str) -> str:
    """How forward reaches the child ``name``: self.conv1, getattr(self, "block1-0"), and
    a ModuleList's module by its key path, self.convs[3]."""
    place = list_place(name)
    if place is not None:
        return _attribute(place[0]) + "".join(f"[{k}]" for k in place[1])
    return f"self.{name}" if _IDENTIFIER.fullmatch(name) else f"getattr(self, {literal(name)})"


class _Where(dict):
    """The variable holding each value; one output of an entry giving several is an index
    of what torch returned (halves.0: halves[0]; lstm.h_n: lstm[1][0])."""

    def __init__(self, values: dict[str, str], entries: dict[str, Node]):
        super().__init__(values)
        self.entries = entries
        self.returned: dict[str, str] = {}  # entry -> the variable holding its whole tuple

    def __missing__(self, name: str) -> str:
        base, key = split_source(name, self.entries)
        if not key:
            raise KeyError(name)
        path = part_path(self.entries[base], key)
        return self.returned.get(base, self[base]) + "".join(f"[{literal(i)}]" for i in path)


@dataclass
class Ports:
    """The network's named inputs and outputs, for the top class's forward."""

    name: str  # the network's class
    inputs: list[str]
    outputs: list[Any]  # netspec.pipeline.resolve.Output
    returns: str
    training_only: set[str]  # entries computed only in training

    @property
    def namedtuple(self) -> str:
        return f"{self.name}Outputs"


class _ClassWriter:
    def __init__(self, classes: set[str], ports: Ports | None = None) -> None:
        self.ports = ports or Ports("", [], [], "tensor", set())
        self.classes = classes  # the generated classes' names: no local may shadow one
        self.locals: set[str] = set()
        self.uses_od = False
        self.uses_torch = False
        self.helper_ops: set[str] = set()  # function ops whose Code.helper the file defines
        self.helpers: set[str] = set()

    def module_expr(self, n: CodeNode, unit: Unit, prefix: tuple,
                    in_sequential: bool) -> Expr:
        """The expression that constructs entry ``n`` inside ``unit``'s body."""
        here = (*prefix, n.name)
        if n.unit is not None:
            return self.instantiate(n, unit, here)
        # a layer, or a module op taking several inputs (MultiheadAttention)
        if n.kind == "layer" or (n.kind == "merge" and not calls_function(n.r)):
            args = _layer_args(n, lambda arg, value, default:
                               unit.text((*here, "kw", arg), value, default))
            if n.r.type in _OUTPUT_ONLY_HELPER and in_sequential:
                self.helpers.add(n.r.type)
            if REGISTRY[n.r.type].code.helper:  # a class the file defines (LayerNorm2d)
                self.helper_ops.add(n.r.type)
            return _constructor(n.r.type, args, in_sequential)
        if n.kind == "branches":  # nn.ModuleList([...]), each called on the input in forward
            return self.module_list(n.children, unit, here)
        # a chain group or a repeat: nn.Sequential
        return self.sequential(n.children, unit, here)

    def keyed_list(self, head: str, children: list[CodeNode], unit: Unit) -> Expr:
        """nn.ModuleList([...]) of the entries named head.0, head.1, ... in their order of
        position; nested ModuleLists for head.0.0, head.0.1, ..."""
        members = {place[1]: c for c in children
                   if (place := list_place(c.name)) is not None and place[0] == head}

        def level(prefix: tuple[int, ...]) -> Expr:
            items = []
            for k in sorted({n[len(prefix)] for n in members if n[:len(prefix)] == prefix}):
                c = members.get((*prefix, k))
                items.append(Item(level((*prefix, k))) if c is None else
                             Item(self.module_expr(c, unit, (), in_sequential=True),
                                  self.comment(c, unit)))
            return call("nn.ModuleList", [Expr("", items, "[", "]")])

        return level(())

    def module_list(self, children: list[CodeNode], unit: Unit, prefix: tuple) -> Expr:
        items = []
        for c in children:
            module = self.module_expr(c, unit, prefix, in_sequential=True)
            if module.items is not None and module.hint is None:
                module.hint = f"branch{c.name}"
            items.append(Item(module, self.comment(c, unit)))
        return call("nn.ModuleList", [Expr("", items, "[", "]")])

    def sequential(self, children: list[CodeNode], unit: Unit, prefix: tuple) -> Expr:
        named = not _default_names(children)
        self.uses_od |= named
        return _sequential_expr([(c, self.module_expr(c, unit, prefix, in_sequential=True),
                                  self.comment(c, unit)) for c in children], named)

    def comment(self, n: CodeNode, unit: Unit) -> str | None:
        """The output shape, where it is the same in every instance of the class."""
        if len(unit.instances) == 1:
            return shape_comment(n.r)
        template = unit.instances[0]
        path = n.r.qualname[len(template.r.qualname) + 1:].split(".") if \
            template.r.qualname else n.r.qualname.split(".")
        shapes = set()
        for instance in unit.instances:
            shapes.add(instance.descendant(path).r.output_shape)
        return shape_comment(n.r) if len(shapes) == 1 else None

    def instantiate(self, n: CodeNode, unit: Unit, here: tuple) -> Expr:
        target = n.unit
        values = target.args_of(n)
        args = []
        for p in target.params:
            text = unit.text((*here, "call", p.name), values[p.name], p.default)
            if text is None:
                continue
            args.append(text if p.default is REQUIRED else f"{p.name}={text}")
        return call(target.name, args)

    # one class
    def unit_source(self, unit: Unit) -> list[str]:
        t = unit.instances[0]
        children, output = t.children, t.r.output
        ports = self.ports if t.r.qualname == "" and unit.name == self.ports.name else None
        if ports is None and _has_ports(t):  # forward(self, x, skip) -> (a, b)
            ports = Ports(unit.name, t.r.port_inputs,
                          [Output(key, source) for key, source in t.r.port_outputs],
                          t.r.returns, set())
        named = ports is not None and bool(ports.inputs or ports.outputs)
        # a tie is a statement after the layers: not an nn.Sequential(...) call
        chain = _scope_is_chain(children, output) and not named and \
            not any(c.r.ties for c in children)
        sig = ", ".join(["self"] + [p.name if p.default is REQUIRED
                                    else f"{p.name}={literal(p.default)}" for p in unit.params])
        lines = []
        if unit.note:
            lines.append(f"# {unit.note}")
        # __init__'s locals: never a parameter, a generated class or what the file uses
        self.locals = {p.name for p in unit.params} | set(_LOCALS_RESERVED) | self.classes
        if chain and any(_INDEX.fullmatch(c.name) for c in children):
            # unnamed children (0, 1, ...): an nn.Sequential subclass, as torchvision's
            # Conv2dNormActivation
            seq = self.sequential(children, unit, ())
            lines.append(f"class {unit.name}(nn.Sequential):")
            lines.append(f"{INDENT}def __init__({sig}) -> None:")
            lines += statement(Expr("super().__init__", seq.items), 8, self.local)
            return lines
        lines.append(f"class {unit.name}(nn.Module):")
        lines.append(f"{INDENT}def __init__({sig}) -> None:")
        lines.append(f"{INDENT * 2}super().__init__()")
        listed: set[str] = set()  # the ModuleLists whose modules are entries (convs.3)
        for c in children:
            if is_parameter(c.r):  # a learnable tensor: self.<name> = nn.Parameter(...)
                lines += self.parameter_lines(c)
                continue
            if calls_function(c.r):  # called in forward, not a module
                continue
            place = list_place(c.name)
            if place is not None:  # convs.3: the ModuleList, written where its first module is
                if place[0] not in listed:
                    listed.add(place[0])
                    expr = self.keyed_list(place[0], children, unit)
                    lines += statement(expr, 8, self.local, prefix=f"self.{place[0]} = ") \
                        if _IDENTIFIER.fullmatch(place[0]) else statement(
                            call("self.add_module", [literal(place[0]), expr]), 8, self.local)
                continue
            if _IDENTIFIER.fullmatch(c.name) and self.nested_named(c):
                # DenseNet's features: named containers in named containers read better
                # filled with add_module than as OrderedDicts nested in OrderedDicts
                lines += self.add_lines(f"self.{c.name}", c, unit, ())
                continue
            expr = self.module_expr(c, unit, (), in_sequential=False)
            comment = self.comment(c, unit)
            if _IDENTIFIER.fullmatch(c.name):
                lines += statement(expr, 8, self.local, prefix=f"self.{c.name} = ",
                                   comment=comment)
            else:
                lines += statement(call("self.add_module", [literal(c.name), expr]), 8,
                                   self.local, comment=comment)
        lines += self.tie_lines(children)
        self.uses_torch = True
        lines.append("")
        lines.append(f"{INDENT}def forward(self, {self.signature(ports)}:")
        lines += self.forward(children, output, unit, ports)
        return lines

    @staticmethod
    def signature(ports: Ports | None) -> str:
        """forward's parameters and return annotation."""
        if ports is None or not ports.inputs:
            args = "x: torch.Tensor"
        else:
            args = ", ".join(f"{name}: torch.Tensor" for name in ports.inputs)
        returns = {"tensor": "torch.Tensor", "tuple": "tuple[torch.Tensor, ...]",
                   "dict": "dict[str, torch.Tensor]"}.get(ports.returns if ports else "tensor",
                                                          "Any")
        if ports is not None and ports.training_only and ports.returns != "namedtuple":
            returns = "Any"  # the outputs in training, fewer in eval
        if ports is not None and ports.returns == "namedtuple":
            returns = f"{ports.namedtuple} | torch.Tensor" if ports.training_only \
                else ports.namedtuple
        return f"{args}) -> {returns}"

    @staticmethod
    def tie_lines(children: list[CodeNode]) -> list[str]:
        """self.lm_head.weight = self.embed.weight: a parameter tied to an earlier
        entry's of the same list (tie:)."""
        lines = []
        for c in children:
            # the list's own prefix of qualified names ('' at the top, 'encoder.' in a group)
            scope = c.r.qualname.removesuffix(c.r.name) if c.r.qualname else ""
            for param, target in c.r.ties.items():
                owner, _, name = target.rpartition(".")
                lines.append(f"{INDENT * 2}{_attribute(c.name)}.{param} = "
                             f"{_attribute(owner.removeprefix(scope))}.{name}  # tied")
        return lines

    def parameter_lines(self, c: CodeNode) -> list[str]:
        op = REGISTRY[c.r.type]
        values = Args.filled(op, c.r.kwargs).values
        if op.torch.buffer:  # self.register_buffer("index", relative_position_index(7, 7))
            if op.code.helper:
                self.helper_ops.add(op.name)
            persistent = [] if op.torch.persistent is None or \
                values[op.torch.persistent] else ["persistent=False"]
            return statement(call("self.register_buffer", [literal(c.name),
                                                           atom(op.code.tensor(values)),
                                                           *persistent]),
                             8, self.local, comment=shape_comment(c.r))
        args = [atom(op.code.tensor(values))]
        if not values.get("requires_grad", True):
            args.append("requires_grad=False")
        expr = call("nn.Parameter", args)
        self.uses_torch = True
        if _IDENTIFIER.fullmatch(c.name):
            return statement(expr, 8, self.local, prefix=f"self.{c.name} = ",
                             comment=shape_comment(c.r))
        return statement(call("self.register_parameter", [literal(c.name), expr]), 8,
                         self.local, comment=shape_comment(c.r))

    @staticmethod
    def named_container(n: CodeNode) -> bool:
        return n.unit is None and n.kind in ("group", "repeat") and \
            not _default_names(n.children)

    def nested_named(self, n: CodeNode) -> bool:
        return self.named_container(n) and any(self.named_container(g) for g in n.children)

    def add_lines(self, target: str, n: CodeNode, unit: Unit, prefix: tuple) -> list[str]:
        here = (*prefix, n.name)
        lines = [f"{INDENT * 2}{target} = nn.Sequential()"]
        for g in n.children:
            if self.named_container(g):
                var = self.local(g.name)
                lines += self.add_lines(var, g, unit, here)
                expr = atom(var)
            else:
                expr = self.module_expr(g, unit, here, in_sequential=True)
            lines += statement(call(f"{target}.add_module", [literal(g.name), expr]), 8,
                               self.local, comment=self.comment(g, unit))
        return lines

    def local(self, name: str) -> str:
        """A new local variable of __init__ for the container named ``name``."""
        var = name.replace("-", "_")  # block1-0: a local block1_0
        var = var if _IDENTIFIER.fullmatch(var) else f"n{var}"
        var = var if _IDENTIFIER.fullmatch(var) else "part"
        while var in self.locals or keyword.iskeyword(var) or keyword.issoftkeyword(var):
            var += "_"
        self.locals.add(var)
        return var

    def forward(self, children: list[CodeNode], output: str | None, unit: Unit,
                ports: Ports | None = None) -> list[str]:
        inputs = ports.inputs if ports is not None and ports.inputs else ["input"]
        names = [c.name for c in children]
        # who reads each value: (index of the reader, position among its sources, whether
        # the reader names its sources with from:); halves.0 is read from halves
        readers: dict[str, list[tuple[int, int, bool]]] = {name: [] for name in inputs}
        previous = inputs[0]
        for i, c in enumerate(children):
            sources = c.r.sources or [previous]
            for k, s in enumerate(sources):
                readers.setdefault(_base(s, names), []).append((i, k, bool(c.r.sources)))
            readers.setdefault(c.name, [])
            previous = c.name
        results = [o.source for o in ports.outputs] if ports and ports.outputs else \
            [output or previous]
        last_use = {name: max([i for i, _, _ in uses], default=-1)
                    for name, uses in readers.items()}
        for name in results:
            last_use[_base(name, names)] = len(children)
        named_vars = {}
        states = states_taken([c.r for c in children], results)  # lstm.h_n read: lstm[1][0]
        taken = set(_LOCALS_RESERVED) | {"out"} | set(inputs)
        for i, c in enumerate(children):
            # an op giving several tensors keeps a name: its parts are read as halves[0]
            keep = bool(c.r.outputs) or c.name in states or any(
                explicit and (j != i + 1 or k > 0) for j, k, explicit in readers[c.name])
            if keep:
                # stem-conv, convs.3: locals stem_conv, convs_3
                var = c.name.replace("-", "_").replace(".", "_")
                var = var if _IDENTIFIER.fullmatch(var) else f"out{var}"  # 3: out3
                while var in taken or keyword.issoftkeyword(var):
                    var += "_"
                taken.add(var)
                named_vars[c.name] = var
        chain_vars = [v for v in ["out"] + [f"out{k}" for k in range(2, len(children) + 3)]
                      if v not in named_vars.values()]
        # value -> the variable that holds it
        where = _Where({"input": "x"} if inputs == ["input"] else {n: n for n in inputs},
                       {c.name: c.r for c in children})
        taken = states_taken([c.r for c in children], results)
        live = set(where.values())
        lines = []
        previous = inputs[0]
        skip = ports.training_only if ports is not None else set()
        for i, c in enumerate(children):
            if is_parameter(c.r):  # read where it is used: self.pos_embedding
                where[c.name] = f"self.{c.name}" if _IDENTIFIER.fullmatch(c.name) else \
                    f"getattr(self, {literal(c.name)})"
                previous = c.name
                continue
            sources = c.r.sources or [previous]
            args = [where[s] for s in sources]
            every = _every_part(sources, children)
            if every is not None and calls_function(c.r) and \
                    REGISTRY[c.r.type].torch.inputs == "list":
                args = [where[every]]  # torch.cat(convs, dim=1): the list itself
            first = _base(sources[0], names)
            if c.name in named_vars:
                var = named_vars[c.name]
            elif where[first] in ("x", *chain_vars) and last_use.get(first, -1) <= i and \
                    args.count(where[first]) == 1:
                var = where[first]  # the chain goes on in the same variable
            else:
                var = next(v for v in [*chain_vars, "x"] if v not in live)
            for s in {_base(s, names) for s in sources}:
                if last_use.get(s, -1) <= i:
                    live.discard(where[s])
            live.add(var)
            whole = bool(c.r.states) and c.name in taken  # lstm.h_n is read: keep the tuple
            expr = self.call_expr(c, args, whole=whole)
            comment = self.comment(c, unit) if calls_function(c.r) else None
            if c.name in skip:  # computed only in training, as torchvision's aux heads
                lines.append(f"{INDENT * 2}if self.training:")
                lines += layout(expr, 12, prefix=f"{var} = ", comment=comment)
            else:
                lines += layout(expr, 8, prefix=f"{var} = ", comment=comment)
            where[c.name] = var
            if whole:  # lstm = self.lstm(x): its output lstm[0], its h_n lstm[1][0]
                where.returned[c.name] = var
                where[c.name] = f"{var}[{REGISTRY[c.r.type].flow_index}]"
            if last_use.get(c.name, -1) < i:  # nothing reads it
                live.discard(var)
            previous = c.name
        if ports is None or not ports.outputs or ports.returns == "tensor":
            lines.append(f"{INDENT * 2}return {where[results[0]]}")
            return lines
        return lines + self.return_lines(ports, where)

    def return_lines(self, ports: Ports, where: dict[str, str]) -> list[str]:
        """return the outputs as written: a tuple, a dict, a namedtuple; training_only ones
        in training only (in eval a lone output is the tensor itself)."""
        def packed(outputs: list) -> str:
            values = [where[o.source] for o in outputs]
            if ports.returns == "dict":
                return "{" + ", ".join(f"{literal(o.key)}: {v}"
                                       for o, v in zip(outputs, values, strict=True)) + "}"
            if ports.returns == "namedtuple" and len(outputs) == len(ports.outputs):
                return f"{ports.namedtuple}(" + ", ".join(
                    f"{o.key}={v}" for o, v in zip(outputs, values, strict=True)) + ")"
            return "(" + ", ".join(values) + ("," if len(values) == 1 else "") + ")"

        if not ports.training_only:
            return [f"{INDENT * 2}return {packed(ports.outputs)}"]
        kept = [o for o in ports.outputs if not o.training_only]
        last = where[kept[0].source] if len(kept) == 1 else packed(kept)
        return [f"{INDENT * 2}if self.training:",
                f"{INDENT * 3}return {packed(ports.outputs)}",
                f"{INDENT * 2}return {last}"]

    def call_expr(self, c: CodeNode, args: list[str], whole: bool = False) -> Expr:
        op = REGISTRY[c.r.type] if c.kind in ("layer", "merge") else None
        if calls_function(c.r):
            return self.function_call(op, c, args)
        target = _attribute(c.name)
        if c.kind == "branches":  # as torchvision's ASPP: [conv(x) for conv in self.convs]
            module = "module" if "module" not in args else "branch"
            if len(args) > 1:  # one input per branch: HRNet's zip(self.branches, x)
                value = "x_k" if "x_k" not in args else "input_k"
                return atom(f"[{module}({value}) for {module}, {value} in zip({target}, "
                            f"({', '.join(args)}))]")
            return atom(f"[{module}({args[0]}) for {module} in {target}]")
        if op is not None and (op.takes_several or len(args) > 1):
            # optional ports filled in (attention's key, value), a tuple for (h, c)
            args = [a if isinstance(a, str) else f"({', '.join(a)}{',' * (len(a) == 1)})"
                    for a in op.call_inputs(args)]
        if op is not None:  # need_weights=False: what the built model passes too
            args = [*args, *(f"{k}={literal(v)}" for k, v in op.torch.call_with)]
        text = f"{target}({', '.join(args)})"
        if op is not None and op.torch.returns is not None and not whole:
            text += f"[{op.flow_index}]"  # a tuple (RNN: output, state): one output flows on
        return atom(text)

    def function_call(self, op: Any, c: CodeNode, args: list[str]) -> Expr:
        """A function op: ``a + b``, ``x * 0.5``, ``torch.cat([a, b], 1)``, ``crop_to(a, b)``,
        ``torch.div(a, b, rounding_mode="floor")``."""
        values = Args.filled(op, c.r.kwargs).values
        scalar = op.scalar_given(values)
        if scalar:  # a number in place of the last tensor
            args = [*args, literal(values[scalar])]
        keywords = {k: literal(v) for k, v in op.keyword_values(values).items()}
        sized = {i for i, p in enumerate(op.inputs) if p.size_of and i < len(args)}
        for i in sized:  # its spatial size, read at run time
            keywords[op.inputs[i].size_of] = f"{args[i]}.shape[2:]"
        args = [a for i, a in enumerate(args) if i not in sized]
        keywords = {k: keywords[k] for k in op.torch.keywords if k in keywords}  # torch's order
        if op.code.infix and not keywords:
            return atom(op.code.infix.join(args))
        if op.code.helper:
            self.helper_ops.add(op.name)
        values = Args.filled(op, c.r.kwargs).values
        if op.torch.arguments is not None:  # x.reshape(x.shape[0], 8, -1), x[:, 0]
            return self.arguments_call(op, values, args, c.r.input_shape)
        if op.code.method:  # a Tensor method taking the other inputs: x.reshape_as(grid)
            return call(f"{args[0]}.{op.code.method}", [
                *args[1:], *(f"{k}={v}" for k, v in keywords.items())])
        name = op.code.call or op.torch.target
        self.uses_torch |= name.startswith("torch.")
        listed = op.torch.inputs == "list" and len(args) == 1  # a list already (convs)
        inputs = [Expr("", [Item(atom(a)) for a in args], "[", "]")] \
            if op.torch.inputs == "list" and not listed else list(args)
        return call(name, [*inputs, *(literal(op.arg_by_name[k].type.to_torch(values[k]))
                                      for k in op.torch.call_args),
                           *(f"{k}={v}" for k, v in keywords.items())])

    def arguments_call(self, op: Any, values: dict, args: list[str],
                       shape: tuple[int, ...]) -> Expr:
        """``x.method(...)``, ``x[...]`` or ``f(x, ...)`` with Torch.arguments, sizes the
        input has when it runs read from it (``x.shape[0]``), or another input's batch size
        (``self.class_token.expand(x.shape[0], -1, -1)``)."""
        x = args[0]
        texts = [argument_text(a, x) for a in op.torch.arguments(values, shape)]
        port = op.batch_port(len(args))
        if port is not None:
            texts[op.inputs[port].batch_size_at] = f"{args[port]}.shape[0]"
        if op.code.subscript:
            (index,) = texts
            return atom(f"{x}[{index}]")
        if op.code.method:
            return call(f"{x}.{op.code.method}", texts)
        name = op.code.call or op.torch.target
        self.uses_torch |= name.startswith("torch.")
        return call(name, [x, *texts])


def argument_text(value: Any, x: str) -> str:
    """Source of one Torch.arguments value: a literal, ``x.shape[d]`` for an InputSize, and
    an index tuple's slices and Ellipsis as Python writes them (``:, 2:5``, ``..., 0``)."""
    if isinstance(value, InputSize):
        return f"{x}.shape[{value.dim}]"
    if isinstance(value, tuple) and (len(value) == 1 or any(
            isinstance(v, (slice, type(Ellipsis))) for v in value)):  # x[-1], x[:, 0]
        return ", ".join(argument_text(v, x) for v in value)
    if isinstance(value, slice):
        step = "" if value.step in (None, 1) else f":{value.step}"
        start = "" if value.start is None else literal(value.start)
        stop = "" if value.stop is None else literal(value.stop)
        return f"{start}:{stop}{step}"
    if value is Ellipsis:
        return "..."
    return literal(value)


# ---------------------------------------------------------------- sequential styles


class _SequentialWriter:
    def __init__(self, style: str):
        self.style = style
        self.helpers: set[str] = set()
        self.helper_ops: set[str] = set()  # module ops whose class the file defines
        self.uses_od = False
        self.local_names: set[str] = set()

    def module_expr(self, n: CodeNode) -> Expr:
        if n.kind == "layer":
            if n.r.type in _OUTPUT_ONLY_HELPER:
                self.helpers.add(n.r.type)
            if REGISTRY[n.r.type].code.helper:
                self.helper_ops.add(n.r.type)
            return _constructor(n.r.type, _layer_args(n), in_sequential=True)
        return self.container(n.children)

    def container(self, children: list[CodeNode]) -> Expr:
        named = self.style == "ordereddict"
        self.uses_od |= named
        return _sequential_expr([(c, self.module_expr(c), shape_comment(c.r))
                                 for c in children], named)

    def add_modules(self, target: str, children: list[CodeNode]) -> list[str]:
        """add-module style: fill ``target`` (an nn.Sequential) child by child."""
        lines = []
        for c in children:
            if c.kind == "layer":
                lines += statement(call(f"{target}.add_module", [literal(c.name),
                                                                self.module_expr(c)]),
                                   8, self.local, comment=shape_comment(c.r))
                continue
            var = self.local(c.r.qualname)
            lines.append(f"{INDENT * 2}{var} = nn.Sequential()")
            lines += self.add_modules(var, c.children)
            lines += layout(call(f"{target}.add_module", [literal(c.name), atom(var)]), 8,
                            comment=shape_comment(c.r))
        return lines

    def local(self, qualname: str) -> str:
        parts = [p.replace("-", "_") if not _INDEX.fullmatch(p) else f"n{p}"
                 for p in qualname.split(".")]
        name = "_".join(parts)
        if len(name) > 40:  # deep nesting: the last part, so that lines stay short
            name = parts[-1]
        if not _IDENTIFIER.fullmatch(name):
            name = "block"
        while name in self.local_names or name in _LOCALS_RESERVED or keyword.iskeyword(name):
            name += "_"
        self.local_names.add(name)
        return name

    def network(self, name: str, nodes: list[CodeNode]) -> list[str]:
        lines = [f"class {name}(nn.Sequential):", f"{INDENT}def __init__(self) -> None:"]
        if self.style == "add-module":
            lines.append(f"{INDENT * 2}super().__init__()")
            lines += self.add_modules("self", nodes)
            return lines
        seq = self.container(nodes)
        # nn.Sequential(a, b) or nn.Sequential(OrderedDict(...)): the same arguments
        lines += statement(Expr("super().__init__", seq.items), 8, self.local)
        return lines


# ---------------------------------------------------------------- the file


def _torch_name(target: str) -> str:
    """``torch.nn.Conv2d`` as the generated file writes it: ``nn.Conv2d``; a class from
    outside torch (``torchvision.ops.StochasticDepth``) by its name, imported (_imports)."""
    if target.startswith("torch."):
        return target.removeprefix("torch.")
    return target.rpartition(".")[2]


def _imports(results: list[Node]) -> list[str]:
    """``from torchvision.ops import StochasticDepth`` for each class from outside torch that
    the network's modules are."""
    names = {r.type for top in results for _, r in top.walk()
             if r.kind in ("layer", "merge") and r.type in REGISTRY}
    used = sorted({_torch_name(REGISTRY[n].torch.target) for n in names} & set(_IMPORTED))
    return [f"from {_IMPORTED[name]} import {name}" for name in used]


def _helper_class(type_name: str) -> str:
    lt = REGISTRY[type_name]
    base = _torch_name(lt.torch.target)
    return (f"class {_OUTPUT_ONLY_HELPER[type_name]}({base}):\n"
            f'    """{base} that returns only its output tensor (not the state), so '
            'it can\n    sit in nn.Sequential."""\n\n'
            f"    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
            f"        return super().forward(x)[{lt.flow_index}]")


def _helper_definitions(helper_ops: set[str]) -> list[str]:
    """The definitions the ops' helpers make (Code.helper: definitions apart by two blank
    lines), each once: ops that share a function (Swin's shifted_window_attention) write it
    once."""
    definitions: list[str] = []
    for op_name in sorted(helper_ops):
        for text in REGISTRY[op_name].code.helper.split("\n\n\n"):
            if text not in definitions:
                definitions.append(text)
    return definitions


def _doc_text(text: str) -> str:
    """``repr`` of a file name, safe inside a triple-quoted docstring."""
    return repr(text).replace("\\", "\\\\").replace('"', '\\"')


def _assemble(file: str, name: str, style: str, classes: list[list[str]], uses_od: bool,
              uses_torch: bool, helper_ops: set[str], helpers: set[str], input_text: str,
              imports: list[str], note: list[str] | None = None) -> str:
    base = Path(file).name if file and not file.startswith("<") else file or "<spec>"
    doc = [f'"""{name}: generated by netspec from {_doc_text(base)} (style {style}).', "",
           f"Needs only PyTorch.  Input: a batch of {input_text}; the comments give each "
           "layer's", 'output shape per sample (batch excluded)."""']
    torchvision = any(not line.startswith(("from collections", "from typing"))
                      for line in imports)  # a torchvision module (StochasticDepth)
    if torchvision or " and a batch of " in input_text:
        needs = "PyTorch and torchvision" if torchvision else "PyTorch"
        text = (f"Needs only {needs}.  Input: a batch of {input_text}; the comments give each "
                'layer\'s output shape per sample (batch excluded)."""')
        doc[2:] = textwrap.wrap(text, 88, break_on_hyphens=False)
    if note:  # names this file gives or gives up, and how weights load then
        closing = doc[-1].removesuffix('"""')
        doc[-1:] = [closing, "", *textwrap.wrap(note[0], 88, break_on_hyphens=False), "",
                    *(INDENT + line for line in note[1:]), '"""']
    lines = list(doc) + [""]
    standard = [line for line in imports if line.startswith(("from collections", "from typing"))]
    imports = [line for line in imports if line not in standard]
    if uses_od:
        standard.insert(0, "from collections import OrderedDict")
    names = [line.removeprefix("from collections import ") for line in standard
             if line.startswith("from collections import ")]
    if len(names) > 1:  # one line, as isort writes it: OrderedDict, namedtuple
        standard = [line for line in standard if not line.startswith("from collections")]
        standard.append(f"from collections import {', '.join(sorted(names))}")
    if standard:
        lines += sorted(standard) + [""]
    torch_needed = uses_torch or bool(helper_ops) or bool(helpers)
    if torch_needed:
        lines.append("import torch")
    lines.append("from torch import nn")
    lines += imports
    blocks = []
    for text in _helper_definitions(helper_ops):
        blocks.append(text.split("\n"))
    for type_name in sorted(helpers):
        blocks.append(_helper_class(type_name).split("\n"))
    blocks += classes
    for i, block in enumerate(blocks):
        # after the imports, a statement (GoogLeNetOutputs = namedtuple(...)) takes one
        # blank line, a class or function two (isort, ruff format)
        statement = i == 0 and not block[0].startswith(("class ", "def ", "@"))
        lines += ["", *block] if statement else ["", "", *block]
    return "\n".join(lines) + "\n"


def _input_text(result: CheckResult) -> str:
    net = result.network
    return " and a batch of ".join(
        (f"{i.name}: " if net.inputs else "") + f"{fmt(i.shape)} samples"
        + (f" ({i.dtype})" if i.dtype != "float32" else "") for i in net.all_inputs)


def _load(spec: CheckResult | Spec | str | os.PathLike) -> tuple[CheckResult, Any]:
    """The check of ``spec`` and the document it checked (``base:`` expanded by check: the
    expanded document still says base:, so it is not checked a second time)."""
    result = spec if isinstance(spec, CheckResult) else check(spec)
    if not result.ok:
        raise SpecError(result.errors)
    if result.document is None:
        raise ValueError("generate needs a spec, or the CheckResult netspec.check returned")
    return result, result.document


def state_dict_renames(spec: CheckResult | Spec | str | os.PathLike,
                       style: str = "class") -> dict[str, str]:
    """{netspec.build's name: the generated file's} for the top-level entries the file of
    ``style`` names differently (those the spec leaves unnamed: 0 is conv1, ...); empty
    where the keys are the same.  Sequential style gives every name up: its file says how
    to load by position, and this raises StyleError."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    result, doc = _load(spec)
    tree = _Tree(doc, result.network.blocks)
    nodes = tree.nodes(result.layers)
    if style == "sequential":
        raise StyleError([tree.diagnostic(("layers",), "style 'sequential' gives every name "
                                          "up: load weights by position, as its file says")])
    return _name_unnamed(nodes, modules_only=style == "class")


def generate(spec: CheckResult | Spec | str | os.PathLike, style: str = "class") -> str:
    """The source text of a PyTorch module file for ``spec`` (a path, YAML text, a loaded
    Spec, or what ``netspec.check`` returned for one) in ``style`` (see STYLES).

    Raises SpecError (every error) when the spec does not check, StyleError when the style
    cannot express it, CodegenError when a name or value cannot be written as code, and
    ValueError for an unknown style."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    result, doc = _load(spec)
    tree = _Tree(doc, result.network.blocks)
    nodes = tree.nodes(result.layers)
    name = result.network.name
    _check_names(tree, nodes, name)
    try:
        if style == "class":
            return _class_style(tree, nodes, name, result)
        return _sequential_style(tree, nodes, name, result, style)
    except ValueError as exc:  # a value that is not a plain literal
        raise CodegenError([tree.diagnostic(("layers",), f"cannot write code: {exc}")]) from None


def _class_style(tree: _Tree, nodes: list[CodeNode], name: str, result: CheckResult) -> str:
    net = result.network
    # the network as a tutorial writes its class: self.conv1 = ..., an explicit forward
    renamed = _name_unnamed(nodes, modules_only=True)
    classes = _Classes(tree, name)
    classes.assign(nodes)
    root = CodeNode(Node(0, name, name, result.network.input_shape, result.output_shape,
                            result.total_params, kind="group", qualname="",
                            output=nodes[-1].name if nodes else None, children=result.layers),
                {}, {}, ("layers",), nodes)
    top = Unit(name, name, [root])
    classes.units.append(top)
    classes.finalize()
    ports = Ports(name, [i.name for i in net.inputs], net.outputs, net.returns,
                  {renamed.get(n, n) for n in result.training_only()})
    writer = _ClassWriter({u.name for u in classes.units} | {ports.namedtuple}, ports)
    sources = [writer.unit_source(u) for u in classes.units]
    imports = _imports(result.layers)
    if net.returns == "namedtuple":
        keys = ", ".join(literal(o.key) for o in net.outputs)
        sources.insert(0, [f"{ports.namedtuple} = namedtuple({literal(ports.namedtuple)}, "
                           f"[{keys}])"])
        imports.insert(0, "from collections import namedtuple")
    if any("-> Any" in line for source in sources for line in source):
        imports.insert(0, "from typing import Any")
    return _assemble(result.file, name, "class", sources, writer.uses_od, writer.uses_torch,
                     writer.helper_ops, writer.helpers, _input_text(result), imports,
                     _renamed_note(renamed))


def _ports_text(type_name: str) -> str:
    return ", ".join(p.doc or p.name for p in REGISTRY[type_name].inputs)


def _sequential_style(tree: _Tree, nodes: list[CodeNode], name: str, result: CheckResult,
                      style: str) -> str:
    where = _branching(nodes, None)  # the network's output is its last entry's
    if where is not None:
        parent = where.r.qualname.removesuffix(where.r.name).removesuffix(".")
        at = f" (in {parent})" if parent else ""
        place = list_place(where.r.name)
        what = (f"its {where.r.type} '{where.name}'{at} declares inputs: or outputs: (a "
                f"forward taking {len(where.r.port_inputs) or 1} and returning "
                f"{len(where.r.port_outputs) or 1})" if _has_ports(where)
                else f"the network branches{at}: its {where.r.type} '{where.name}' merges "
                f"{', '.join(repr(s) for s in where.r.sources)}"
                if where.kind == "merge" and where.r.sources
                else f"the network branches{at}: '{where.name}' takes from: "
                f"{', '.join(where.r.sources)}" if where.r.sources
                else f"the network branches{at}: '{where.name}' runs its "
                f"{len(where.children)} branches side by side" if where.kind == "branches"
                else f"'{where.name}'{at} is module {'.'.join(map(str, place[1]))} of the "
                f"nn.ModuleList '{place[0]}', which an nn.Sequential cannot hold"
                if place is not None
                else f"its {where.r.type} '{where.name}'{at} takes several inputs "
                f"({_ports_text(where.r.type)}), called in forward" if where.kind == "merge"
                else f"its {where.r.type} '{where.name}'{at} is a function called in forward "
                f"({REGISTRY[where.r.type].torch.target}), not a module"
                if calls_function(where.r)
                else f"the network branches{at}: '{where.name}' is not the last entry's output")
        raise StyleError([tree.diagnostic(where.path, (
            f"style '{style}' cannot express {name}: {what}; "
            "nn.Sequential runs each layer on the previous one's output only. Use --style "
            "class, which writes an explicit forward"))])
    tied = next((n for n in _walk(nodes) if n.r.ties), None)
    if tied is not None:
        raise StyleError([tree.diagnostic(tied.path, (
            f"style '{style}' cannot express {name}: '{tied.name}' ties its "
            f"{', '.join(tied.r.ties)} to {', '.join(tied.r.ties.values())}, which takes a "
            "statement after the layers are made. Use --style class"))])
    # sequential gives up the spec's names; the other two name what the spec leaves unnamed
    note = _given_up_note(nodes) if style == "sequential" else \
        _renamed_note(_name_unnamed(nodes))
    writer = _SequentialWriter(style)
    source = writer.network(name, nodes)
    return _assemble(result.file, name, style, [source], writer.uses_od, False,
                     writer.helper_ops, writer.helpers, _input_text(result),
                     _imports(result.layers), note)
