"""Stage 1, load: YAML text -> plain Python data plus the position of every node.

PyYAML's C composer builds the node tree (fast, safe: no objects are constructed from
tags); this module turns nodes into dicts/lists/scalars itself so that it can record
where each came from, refuse duplicate keys (PyYAML silently keeps the last) and bound
alias expansion."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from netspec.core.diagnostics import Diagnostic, SpecError

try:  # libyaml is in the PyYAML wheels; the pure-Python composer is the fallback
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_BYTES = 8 * 1024 * 1024
MAX_NODES = 1_000_000  # nodes after alias expansion ("billion laughs" stops here)
MAX_DEPTH = 100

Path_ = tuple  # a path into the document: keys and list indices

_PLAIN = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_NULL = "tag:yaml.org,2002:null"
_INT = "tag:yaml.org,2002:int"
# an integer in a spec fits in 64 bits (int64, or a uint64 seed): 2**64 is 20 digits, and
# YAML's 0b/0x forms with _ separators stay under this length
MAX_INT_TEXT = 100
PY_KINDS = {int: "a number", float: "a number", bool: "true or false", type(None): "null"}
_SEQ, _MAP, _MERGE = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map", "tag:yaml.org,2002:merge"
_scalars = yaml.constructor.SafeConstructor()
_resolver = yaml.resolver.Resolver()


@dataclass
class Document:
    """Loaded YAML: ``data`` and, for every path into it, the (line, col) and source text."""

    data: Any
    file: str
    text: str
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    raw: dict[Path_, str] = field(default_factory=dict)  # scalar source text, e.g. 'yes'
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)  # where each key is written
    folded: dict[Path_, str] = field(default_factory=dict)  # arithmetic as written, e.g. '64*4*4'

    def where(self, path: Path_) -> tuple[int, int]:
        """Position of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path not in self.positions and path:
            path = path[:-1]
        return self.positions.get(path, (1, 1))

    def diagnostic(
        self,
        path: Path_,
        message: str,
        severity: str = "error",
        layer: dict | None = None,
        at_key: bool = False,
    ) -> Diagnostic:
        """A diagnostic at ``path``'s value, or at its key with ``at_key`` (unknown names)."""
        line, col = (
            self.keys[tuple(path)] if at_key and tuple(path) in self.keys else self.where(path)
        )
        return Diagnostic(self.file, line, col, message, severity, layer)


class _Builder:
    def __init__(self, doc: Document):
        self.doc = doc
        self.count = 0
        self.errors: list[Diagnostic] = []

    def fail(self, node: yaml.Node, message: str) -> None:
        m = node.start_mark
        self.errors.append(Diagnostic(self.doc.file, m.line + 1, m.column + 1, message))

    def build(self, node: yaml.Node, path: Path_, depth: int, active: set[int]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(
                node, f"document expands to more than {MAX_NODES:,} values (too many aliases?)"
            )
        if depth > MAX_DEPTH:
            raise _TooBig(node, f"document is nested more than {MAX_DEPTH} levels deep")
        if id(node) in active:
            raise _TooBig(node, "an alias refers to a node that contains it (a cycle)")
        m = node.start_mark
        self.doc.positions[path] = (m.line + 1, m.column + 1)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        active = active | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                self.fail(node, _tag_message(node.tag))
                return None
            return [
                self.build(item, path + (i,), depth + 1, active)
                for i, item in enumerate(node.value)
            ]
        if node.tag != _MAP:
            self.fail(node, _tag_message(node.tag))
            return None
        result: dict[Any, Any] = {}
        first_seen: dict[Any, yaml.Node] = {}
        for key_node, value_node in self.pairs(node):
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, "a mapping key must be a plain name, not a list or mapping")
                continue
            key = self.scalar(key_node, None)
            if not isinstance(key, str):  # 0:, 1.5:, yes:, null: are no name in a spec
                kind = PY_KINDS.get(type(key))
                self.fail(key_node, f"a mapping key must be a name, got {key_node.value!r}"
                          + (f", which YAML reads as {kind}" if kind and key_node.value else ""))
                continue
            if key in first_seen:
                self.fail(
                    key_node,
                    f"duplicate key '{key}' (first given at line "
                    f"{first_seen[key].start_mark.line + 1}); YAML would "
                    f"silently keep only the last",
                )
                continue
            first_seen[key] = key_node
            km = key_node.start_mark
            self.doc.keys[path + (key,)] = (km.line + 1, km.column + 1)
            result[key] = self.build(value_node, path + (key,), depth + 1, active)
        return result

    def pairs(self, node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
        """Key/value node pairs with YAML merge keys (<<) expanded; explicit keys win."""
        own, merged = [], []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        self.fail(source, "a merge key (<<) takes a mapping or a list of mappings")
                        continue
                    merged.extend(self.pairs(source))
            else:
                own.append((key_node, value_node))
        explicit = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
        seen: set[str] = set()
        inherited = []
        for k, v in merged:
            if k.value not in explicit and k.value not in seen:
                seen.add(k.value)
                inherited.append((k, v))
        return own + inherited

    def scalar(self, node: yaml.ScalarNode, path: Path_ | None) -> Any:
        if path is not None:
            self.doc.raw[path] = node.value
        if node.tag not in _PLAIN:
            implicit = _resolver.resolve(yaml.ScalarNode, node.value, (True, False))
            if not node.style and node.tag == implicit:  # a plain value, e.g. an unquoted date
                kind = node.tag.rsplit(":", 1)[-1]
                self.fail(
                    node,
                    f"'{node.value}' reads as a YAML {kind}, which a spec cannot "
                    "hold; quote it to make it a string",
                )
            else:
                self.fail(node, _tag_message(node.tag))
            return node.value
        if node.tag == _INT and len(node.value) > MAX_INT_TEXT:
            self.fail(node, _too_large(node.value))  # not even converted: int() would crawl
            return 0
        try:
            value = _scalars.construct_object(node)
        except (yaml.YAMLError, ValueError) as exc:  # e.g. an unreadable number
            self.fail(node, f"cannot read value '{node.value}': {exc}")
            return node.value
        if isinstance(value, int) and not -(2**63) <= value < 2**64:
            self.fail(node, _too_large(node.value))
            return 0
        return value


def _check_expansion(root: yaml.Node) -> None:
    """Refuse, before building anything, a document whose aliases expand it beyond MAX_NODES.

    Sizes are counted once per node (aliases share nodes), so a "billion laughs" document
    is measured in microseconds instead of being expanded until the builder's own count
    stops it.  Raises _TooBig at the first container (in document order) that is too big
    while each of its items is not: where the expansion crosses the limit."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    cap = MAX_NODES + 1

    def children(node: yaml.Node) -> list[yaml.Node]:
        if isinstance(node, yaml.SequenceNode):
            return node.value
        if isinstance(node, yaml.MappingNode):
            return [n for pair in node.value for n in pair]
        return []

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if isinstance(node, yaml.ScalarNode) or key in active or depth > MAX_DEPTH:
            return 1  # cycles and depth are the builder's to report
        active.add(key)
        total = 1
        for child in children(node):
            total = min(cap, total + size(child, depth + 1))
        active.discard(key)
        sizes[key] = total
        return total

    if size(root, 0) < cap:
        return
    node = root
    while True:
        big = next((c for c in children(node) if sizes.get(id(c), 0) >= cap), None)
        if big is None:
            break
        node = big
    raise _TooBig(
        node,
        f"aliases expand the document to more than {MAX_NODES:,} values; a "
        "spec is far smaller (is this an alias bomb?)",
    )


def _tag_message(tag: str) -> str:
    shown = "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag
    return (
        f"YAML tag {shown} is not allowed in a spec (netspec reads plain values only and "
        "never constructs objects from tags)"
    )


def _too_large(text: str) -> str:
    shown = text if len(text) <= 24 else f"{text[:12]}... ({len(text):,} characters)"
    return f"the number {shown} is too large: numbers in a spec fit in 64 bits"


class _TooBig(Exception):
    def __init__(self, node: yaml.Node, message: str):
        self.node, self.message = node, message


_BARE_ITEM = re.compile(r"^(\s*-\s+)([A-Za-z_][A-Za-z0-9_]*)\s*(#.*)?$")  # '  - ReLU  # ...'
_KEY_LINE = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:(\s|$)")  # '    name: act1'
_FLOW = {"while parsing a flow mapping": ("{", "}"), "while parsing a flow sequence": ("[", "]")}
_NO_SPACE = re.compile(r"^\s*(?:-\s+)?([A-Za-z_][A-Za-z0-9_]*):(?=[^\s:])")  # 'input:[1]'


def _previous_line(lines: list[str], index: int) -> int | None:
    """Index of the last line before ``index`` that holds more than a comment."""
    for i in range(index - 1, -1, -1):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return i
    return None


@dataclass
class _YamlMistake:
    """A YAML syntax error as the explanations read it; lines and columns from 1."""

    problem: str
    context: str
    problem_mark: Any
    context_mark: Any
    mark: Any  # the problem's position, else the context's
    lines: list[str]
    here: str  # the text of the mark's line
    line: int
    col: int
    c_line: int  # the context's position; (0, 0) when there is none
    c_col: int


_Explained = tuple[int, int, str]  # (line, col, message)


def _plain_string_item_with_keys(m: _YamlMistake) -> _Explained | None:
    """'- ReLU' followed by an indented 'name: act1': the entry is a string, not a mapping."""
    key = _KEY_LINE.match(m.here)
    before = _previous_line(m.lines, m.mark.line)
    bare = _BARE_ITEM.match(m.lines[before]) if key and before is not None else None
    if not bare or m.problem not in (
        "mapping values are not allowed in this context",
        "did not find expected '-' indicator",
    ):
        return None
    type_name, word = bare.group(2), key.group(2)
    type_col = len(bare.group(1)) + 1
    message = (
        f"'- {type_name}' is a plain string, so the '{word}:' line below cannot belong to it; "
    )
    if word == "name":
        message += f"to give the layer a name, write '- {type_name}:' with a colon"
        if len(key.group(1)) + 1 != type_col:
            message += f", and indent 'name:' to line up with '{type_name}' (column {type_col})"
    else:
        message += (
            f"to give arguments, write them after the colon: '- {type_name}: {{{word}: ...}}'"
        )
    return before + 1, type_col + len(type_name), message  # where the ':' belongs


def _line_outside_list(m: _YamlMistake) -> _Explained | None:
    if m.problem != "did not find expected '-' indicator" or not m.context_mark:
        return None
    return m.line, m.col, (
        f"this line does not fit the list that starts at line {m.c_line}: its items "
        f"start with '-' in column {m.c_col}, this line starts in column {m.col} (check "
        "the indentation)"
    )


def _line_outside_mapping(m: _YamlMistake) -> _Explained | None:
    if m.problem != "did not find expected key" or not m.context_mark:
        return None
    return m.line, m.col, (
        f"this line is indented to column {m.col}, which does not fit the mapping "
        f"that starts at line {m.c_line}: its keys are in column {m.c_col} (check the "
        "indentation)"
    )


def _value_that_is_a_mapping(m: _YamlMistake) -> _Explained | None:
    if m.problem != "mapping values are not allowed in this context":
        return None
    return m.line, m.col, (
        "unexpected ':' (a value cannot itself be 'key: value'): to give arguments "
        "write braces, as in '- Conv2d: {out_channels: 8}', or check the indentation "
        "of this line"
    )


def _character_that_starts_no_value(m: _YamlMistake) -> _Explained | None:
    if not (m.problem.startswith("found character") and "cannot start any token" in m.problem):
        return None
    char = m.here[m.mark.column] if m.mark.column < len(m.here) else ""
    return m.line, m.col, (
        "a tab character: YAML indentation must use spaces"
        if char == "\t"
        else f"'{char}' cannot start a value here; put the value in quotes"
    )


def _unclosed_bracket(m: _YamlMistake) -> _Explained | None:
    if m.context not in _FLOW or not m.context_mark or not m.problem_mark:
        return None
    opened, closing = _FLOW[m.context]
    if m.problem_mark.line != m.context_mark.line:
        return m.c_line, m.c_col, (
            f"this '{opened}' is never closed: a '{closing}' is missing (or a ',' "
            "between two of its items)"
        )
    return m.line, m.col, (
        f"expected ',' or '{closing}' here, inside the '{opened}' that starts at "
        f"column {m.c_col}"
    )


def _key_without_colon(m: _YamlMistake) -> _Explained | None:
    if m.context != "while scanning a simple key" or not m.context_mark:
        return None
    key_line = m.lines[m.context_mark.line] if m.context_mark.line < len(m.lines) else ""
    glued = _NO_SPACE.match(key_line)
    if glued:
        return m.c_line, glued.end(1) + 2, (
            f"put a space after the ':' of '{glued.group(1)}' (YAML reads "
            f"'{key_line.strip()}' as one word)"
        )
    return m.c_line, m.c_col, "this line has no ':' after its key"


def _unclosed_quote(m: _YamlMistake) -> _Explained | None:
    if m.context != "while scanning a quoted scalar" or not m.context_mark:
        return None
    return m.c_line, m.c_col, "the quoted string that starts here is never closed"


def _alias_without_anchor(m: _YamlMistake) -> _Explained | None:
    if not m.problem.startswith("found undefined alias"):
        return None
    alias = re.match(r"\*([^\s,\[\]{}]+)", m.here[m.mark.column :])
    name = alias.group(1) if alias else "?"
    return m.line, m.col, (
        f"alias '*{name}' refers to no anchor: an '&{name}' must come before it"
    )


def _second_document(m: _YamlMistake) -> _Explained | None:
    if m.context != "expected a single document in the stream":
        return None
    return m.line, m.col, (
        "a spec is one YAML document; remove this '---' separator and what follows, "
        "or split the file"
    )


# Tried in order; the first that recognises the mistake explains it.
_YAML_EXPLANATIONS = (
    _plain_string_item_with_keys,
    _line_outside_list,
    _line_outside_mapping,
    _value_that_is_a_mapping,
    _character_that_starts_no_value,
    _unclosed_bracket,
    _key_without_colon,
    _unclosed_quote,
    _alias_without_anchor,
    _second_document,
)


def explain_yaml_error(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, int, str]:
    """(line, col, message) for a YAML syntax error, in words a spec author can act on.

    PyYAML's messages name parser states ('while parsing a block collection did not find
    expected '-' indicator'); the common mistakes behind them are recognised here and
    pointed at where the fix goes.  Anything else keeps PyYAML's own words."""
    problem_mark, context_mark = exc.problem_mark, exc.context_mark
    mark = problem_mark or context_mark
    if mark is None:
        return 1, 1, " ".join(filter(None, [exc.context, exc.problem]))
    lines = text.splitlines()
    mistake = _YamlMistake(
        problem=exc.problem or "",
        context=exc.context or "",
        problem_mark=problem_mark,
        context_mark=context_mark,
        mark=mark,
        lines=lines,
        here=lines[mark.line] if mark.line < len(lines) else "",
        line=mark.line + 1,
        col=mark.column + 1,
        c_line=context_mark.line + 1 if context_mark else 0,
        c_col=context_mark.column + 1 if context_mark else 0,
    )
    for explain in _YAML_EXPLANATIONS:
        explained = explain(mistake)
        if explained is not None:
            return explained
    return mistake.line, mistake.col, " ".join(filter(None, [mistake.context, mistake.problem]))


def _compose(text: str, file: str) -> yaml.Node | None:
    """The YAML node tree of ``text``; SpecError, positioned and in words, when it is not
    YAML."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        line, col, message = explain_yaml_error(exc, text)
        raise SpecError([Diagnostic(file, line, col, f"invalid YAML: {message}")]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, e.g. NUL
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise SpecError(
            [
                Diagnostic(
                    file,
                    line,
                    col,
                    f"invalid YAML: the character U+{ord(char):04X} is not allowed in YAML text",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())  # one line, whatever PyYAML wrote
        raise SpecError([Diagnostic(file, 1, 1, f"invalid YAML: {message}")]) from None


def load_text(text: str, file: str = "<spec>") -> Document:
    """Parse YAML text into a Document; raises SpecError with positioned diagnostics."""
    doc = Document(None, file, text)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError(
            [
                Diagnostic(
                    file,
                    1,
                    1,
                    f"file is larger than {MAX_BYTES // 2**20} MiB; a spec should be far smaller",
                )
            ]
        )
    node = _compose(text, file)
    if node is None or (
        isinstance(node, yaml.ScalarNode) and node.tag == _NULL and node.value == ""
    ):  # only comments, or an empty document
        raise SpecError(
            [
                Diagnostic(
                    file,
                    1,
                    1,
                    "the file is empty; a spec needs at least 'netspec: 1', 'input:' and 'layers:'",
                )
            ]
        )
    builder = _Builder(doc)
    try:
        _check_expansion(node)
        doc.data = builder.build(node, (), 0, set())
    except _TooBig as exc:
        m = exc.node.start_mark
        raise SpecError([Diagnostic(file, m.line + 1, m.column + 1, exc.message)]) from None
    if builder.errors:
        raise SpecError(builder.errors)
    return doc


def read_file(path: str | Path) -> Document:
    """Read and parse a spec file.  OSError propagates (the CLI's exit 2); bad bytes are a
    positioned error like any other problem in the file."""
    with open(path, "rb") as f:
        raw = f.read(MAX_BYTES + 1)  # never more: a huge file is refused, not read
    if len(raw) > MAX_BYTES:
        raise SpecError(
            [
                Diagnostic(
                    str(path),
                    1,
                    1,
                    f"file is larger than {MAX_BYTES // 2**20} MiB; a spec should be far smaller",
                )
            ]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = (
            len(raw[raw.rfind(b"\n", 0, exc.start) + 1 : exc.start].decode("utf-8", "replace")) + 1
        )
        raise SpecError(
            [
                Diagnostic(
                    str(path),
                    line,
                    col,
                    f"the file is not UTF-8 text (byte "
                    f"0x{raw[exc.start]:02X} here); save it as UTF-8",
                )
            ]
        ) from None
    return load_text(text, str(path))
