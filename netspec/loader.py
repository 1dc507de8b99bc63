"""Stage 1, load: YAML text -> plain Python data plus the position of every node.

PyYAML's C composer builds the node tree (fast, safe: no objects are constructed from
tags); this module turns nodes into dicts/lists/scalars itself so that it can record
where each came from, refuse duplicate keys (PyYAML silently keeps the last) and bound
alias expansion."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Diagnostic, SpecError

try:  # libyaml is in the PyYAML wheels; the pure-Python composer is the fallback
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_BYTES = 8 * 1024 * 1024
MAX_NODES = 1_000_000  # nodes after alias expansion ("billion laughs" stops here)
MAX_DEPTH = 100

Path_ = tuple  # a path into the document: keys and list indices

_PLAIN = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
}
_SEQ, _MAP, _MERGE = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map", "tag:yaml.org,2002:merge"
_scalars = yaml.constructor.SafeConstructor()


@dataclass
class Document:
    """Loaded YAML: ``data`` and, for every path into it, the (line, col) and source text."""

    data: Any
    file: str
    text: str
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    raw: dict[Path_, str] = field(default_factory=dict)  # scalar source text, e.g. 'yes'
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)  # where each key is written

    def where(self, path: Path_) -> tuple[int, int]:
        """Position of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path not in self.positions and path:
            path = path[:-1]
        return self.positions.get(path, (1, 1))

    def diagnostic(self, path: Path_, message: str, severity: str = "error",
                   layer: dict | None = None, at_key: bool = False) -> Diagnostic:
        """A diagnostic at ``path``'s value, or at its key with ``at_key`` (unknown names)."""
        line, col = self.keys[tuple(path)] if at_key and tuple(path) in self.keys else self.where(path)
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
            raise _TooBig(node, f"document expands to more than {MAX_NODES:,} values "
                                "(too many aliases?)")
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
                self.fail(node, f"YAML tag {node.tag} is not allowed in a spec")
                return None
            return [self.build(item, path + (i,), depth + 1, active)
                    for i, item in enumerate(node.value)]
        if node.tag != _MAP:
            self.fail(node, f"YAML tag {node.tag} is not allowed in a spec")
            return None
        result: dict[Any, Any] = {}
        first_seen: dict[Any, yaml.Node] = {}
        for key_node, value_node in self.pairs(node):
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, "a mapping key must be a plain name, not a list or mapping")
                continue
            key = self.scalar(key_node, None)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                self.fail(key_node, f"a mapping key must be a name, got {key_node.value!r}")
                continue
            if key in first_seen:
                self.fail(key_node, f"duplicate key '{key}' (first given at line "
                                    f"{first_seen[key].start_mark.line + 1}); YAML would "
                                    f"silently keep only the last")
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
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
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
            kind = node.tag.rsplit(":", 1)[-1]
            self.fail(node, f"'{node.value}' reads as a YAML {kind}, which a spec cannot hold; "
                            "quote it to make it a string")
            return node.value
        try:
            return _scalars.construct_object(node)
        except yaml.YAMLError as exc:  # e.g. an unreadable number
            self.fail(node, f"cannot read value '{node.value}': {exc}")
            return node.value


class _TooBig(Exception):
    def __init__(self, node: yaml.Node, message: str):
        self.node, self.message = node, message


def load_text(text: str, file: str = "<spec>") -> Document:
    """Parse YAML text into a Document; raises SpecError with positioned diagnostics."""
    doc = Document(None, file, text)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError([Diagnostic(file, 1, 1, f"file is larger than {MAX_BYTES // 2**20} MiB; "
                                                "a spec should be far smaller")])
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        raise SpecError([Diagnostic(file, line, col, f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Diagnostic(file, 1, 1, f"invalid YAML: {exc}")]) from None
    if node is None:
        raise SpecError([Diagnostic(file, 1, 1, "the file is empty; a spec needs at least "
                                                "'netspec: 1', 'input:' and 'layers:'")])
    builder = _Builder(doc)
    try:
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
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([Diagnostic(str(path), line, col, "the file is not UTF-8 text")]) from None
    return load_text(text, str(path))
