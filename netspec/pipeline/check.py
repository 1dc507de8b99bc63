"""The pipeline up to inference: load -> validate -> resolve -> infer, as one CheckResult."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netspec.core.diagnostics import Diagnostic, SpecError
from netspec.core.document import Document, load_text, read_file
from netspec.core.graph import Node
from netspec.core.names import split_source
from netspec.ops import fmt
from netspec.pipeline.arithmetic import fold as fold_arithmetic
from netspec.pipeline.infer import infer
from netspec.pipeline.resolve import Network, resolve
from netspec.pipeline.validate import validate


@dataclass
class Spec:
    """A loaded spec: the YAML document with positions.  Make one with ``netspec.load``."""

    doc: Document

    @property
    def file(self) -> str:
        return self.doc.file

    @property
    def data(self) -> Any:
        return self.doc.data


@dataclass(repr=False)
class CheckResult:
    """What ``netspec.check`` found: ``ok``, the ``errors`` and ``warnings`` (positioned
    ``Diagnostic``s), every layer's shape and parameter count (``layers``, ``table()``),
    ``output_shape`` and ``total_params``.  ``print(result)`` shows the table (or the
    messages); ``as_json()`` is what ``netspec check --json`` prints.

    >>> result = netspec.check("specs/zoo/tutorial_cifar10.yaml")
    >>> result.ok, result.output_shape, result.total_params
    (True, (10,), 145578)
    """

    file: str  # the spec's file, or "<spec>" for YAML text
    diagnostics: list[Diagnostic]  # errors, warnings and notes, in the order of the file
    layers: list[Node] = field(default_factory=list)  # top-level entries, each with children
    network: Network | None = None  # inputs, outputs, name (None when nothing validated)
    # the document checked, base: expanded (codegen reads the entries as written)
    document: Document | None = None

    def __str__(self) -> str:
        """The table ``netspec check`` prints, then any warnings; the messages if not ok."""
        if not self.ok or self.network is None:
            return "\n".join(d.format() for d in self.diagnostics)
        return "\n".join([self.table(), *(d.format() for d in self.diagnostics)])

    def __repr__(self) -> str:
        if not self.ok or self.network is None:
            count = len(self.errors)
            return f"<CheckResult {self.file}: {count} error{'s' if count != 1 else ''}>"
        net = self.network
        return (f"<CheckResult {self.file}: ok, {net.name}, {self._inputs_text()} -> "
                f"{fmt(self.output_shape) if self.output_shape else '?'}, "
                f"{self.total_params:,} parameters>")

    @property
    def errors(self) -> list[Diagnostic]:
        """The diagnostics of severity error: any of them means ``ok`` is False."""
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        """What PyTorch accepts but is likely a mistake (the spec is still ok)."""
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error: every other command works on this spec."""
        return not self.errors

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """The shape forward returns (the first output's where there are several)."""
        if not self.layers:
            return None
        outputs = self.network.outputs if self.network else []
        if outputs:
            return next((o for o in outputs if not o.training_only), outputs[0]).shape
        return self.layers[-1].output_shape

    def training_only(self) -> set[str]:
        """The top-level entries computed only in training: those whose output reaches
        nothing but training_only outputs (GoogLeNet's aux heads)."""
        outputs = self.network.outputs if self.network else []
        if not any(o.training_only for o in outputs):
            return set()
        names = [n.name for n in self.layers]
        needed = {split_source(o.source, names)[0] for o in outputs if not o.training_only}
        for node in reversed(self.layers):  # sources come before their users
            if node.name in needed:
                needed.update(split_source(s, names)[0] for s in self.sources_of(node))
        return {n.name for n in self.layers} - needed

    def sources_of(self, node: Node) -> list[str]:
        """The names a top-level node takes (the previous entry's when it has no from:)."""
        if node.sources:
            return node.sources
        at = self.layers.index(node)
        if at:
            return [self.layers[at - 1].name]
        return [self.network.all_inputs[0].name if self.network.inputs else "input"]

    @property
    def total_params(self) -> int:
        """Parameters of the whole network (tied weights counted once)."""
        return sum(r.params or 0 for r in self.layers)

    def as_json(self) -> dict[str, Any]:
        """The result as ``netspec check --json`` prints it (shapes without the batch)."""
        net = self.network
        return {
            "file": self.file,
            "ok": self.ok,
            "name": net.name if net else None,
            "input_shape": list(net.input_shape) if net else None,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            **self._ports_json(),
            "total_params": self.total_params if self.layers else None,
            "errors": [d.as_json() for d in self.errors],
            "warnings": [d.as_json() for d in self.diagnostics if d.severity != "error"],
            "layers": [r.as_json() for r in self.layers],
        }

    def _ports_json(self) -> dict[str, Any]:
        """Named inputs and several outputs, where the spec has them."""
        net, out = self.network, {}
        if net is None:
            return out
        if net.inputs:
            out["inputs"] = {i.name: {"shape": list(i.shape), "dtype": i.dtype}
                             for i in net.inputs}
        if net.outputs:
            out["returns"] = net.returns
            out["outputs"] = {o.key: {"from": o.source, "training_only": o.training_only,
                                      "shape": list(o.shape) if o.shape else None}
                              for o in net.outputs}
        return out

    def _inputs_text(self) -> str:
        net = self.network
        if not net.inputs:
            return f"input {fmt(net.input_shape)}" + (
                f" ({net.input_dtype})" if net.input_dtype != "float32" else "")
        return "inputs " + ", ".join(
            f"{i.name} {fmt(i.shape)}" + (f" ({i.dtype})" if i.dtype != "float32" else "")
            for i in net.inputs)

    def _outputs_text(self) -> str:
        net = self.network
        if not net.outputs:
            return "output " + (fmt(self.output_shape) if self.output_shape is not None else "?")
        shown = []
        for o in net.outputs:
            key = "" if net.returns == "tuple" and o.key.isdigit() else f"{o.key}="
            shape = "?" if o.shape is None else fmt(o.shape) if not o.batch_dim else \
                fmt(o.shape[:o.batch_dim] + ("N",) + o.shape[o.batch_dim:])  # h_n: 2×N×64
            shown.append(f"{key}{o.source} {shape}"
                         + (" (training only)" if o.training_only else ""))
        return f"outputs ({net.returns}) " + ", ".join(shown)

    def table(self, depth: int | None = None) -> str:
        """The human summary printed by ``netspec check``: every layer, groups and blocks
        indented under their name, ``depth`` levels deep (1: the top-level entries; all by
        default)."""
        net = self.network
        if net is None:  # the document did not load or validate: its messages are all there is
            return "\n".join(d.format() for d in self.diagnostics)
        rows = [("#", "name", "type", "output", "params")]
        for top in self.layers:
            for level, r in top.walk():
                if depth is not None and level >= depth:
                    continue
                rows.append(
                    (
                        str(r.index) if level == 0 else "",
                        "  " * level + r.name,
                        r.type,
                        _shape_text(r),
                        f"{r.params:,}" if r.params is not None else "?",
                    )
                )
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = [f"{self.file}: {net.name}, {self._inputs_text()}"]
        for i, row in enumerate(rows):
            cells = [
                row[c].ljust(widths[c]) if c < 3 else row[c].rjust(widths[c]) for c in range(5)
            ]
            lines.append("  " + "  ".join(cells).rstrip())
            if i == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        lines.append(f"{self._outputs_text()}, {self.total_params:,} parameters")
        return "\n".join(lines)


def _shape_text(node: Node) -> str:
    """A node's output shape in tables; an op giving several tensors shows each
    ("4×4, 4×4"), or their count where they are many and alike ("12 × 4×4")."""
    if node.output_shape is None:
        return "?"
    if not node.outputs:
        return fmt(node.output_shape)
    shapes = [fmt(s) for _, s in node.outputs]
    if len(shapes) > 3 and len(set(shapes)) == 1:
        return f"{len(shapes)} × {shapes[0]}"
    return ", ".join(shapes)


def _unexplained(doc: Document, results: list[Node]) -> list[Diagnostic]:
    """An error for each top-level entry whose shape is unknown although nothing was
    reported: ok must mean that every command can work on the network."""
    return [
        doc.diagnostic(("layers", top.index), f"layer {top.index}: its output shape could not "
                       "be worked out and no reason was found (a netspec bug; please report "
                       "it with this spec)")
        for top in results
        if any(r.output_shape is None for _, r in top.walk())
    ]


_SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def _meant_as_a_file(source: str) -> bool:
    """A string that can only be a file's name: one line (no line break, no NUL, no longer
    than a path can be) ending .yaml/.yml/.json, or without a colon (as YAML it would be a
    bare string, never a spec); not a flow mapping or a comment."""
    text = source.strip()
    if not text or "\n" in source or "\r" in source or "\0" in source or len(text) > 4096:
        return False
    return (text.lower().endswith(_SPEC_SUFFIXES) or ":" not in text) and text[0] not in "{[#"


def _names_a_file(source: str) -> bool:
    """Whether a string given to ``load`` is the path of a file (else it is YAML text).
    A one-line spec (JSON, or a flow mapping) is also a valid path string: probing it must
    not fail on a name too long for the file system, a NUL, or a directory in the way."""
    if "\n" in source or "\r" in source:
        return False
    try:
        return Path(source).is_file()
    except (OSError, ValueError):
        return False


def load(source: str | os.PathLike) -> Spec:
    """A spec from a file path or from YAML text.  Raises SpecError if the YAML is unreadable,
    FileNotFoundError for a file name that names no file ("tudui.yml": one line ending .yaml,
    .yml or .json, or without a colon), and OSError if a file cannot be read."""
    if isinstance(source, os.PathLike) or _names_a_file(source):
        return Spec(read_file(source))
    if _meant_as_a_file(source):
        raise FileNotFoundError(2, "no such file", source)
    return Spec(load_text(source))


def check(
    spec: Spec | str | os.PathLike, input_shape: tuple[int, ...] | None = None
) -> CheckResult:
    """Validate a spec (a file path, YAML text, or a loaded ``Spec``) and infer every
    shape, without importing torch; ``input_shape`` checks the network on another input.
    Never raises for a bad spec: see ``.ok`` and ``.errors``.  A file that does not exist
    or cannot be read raises FileNotFoundError / OSError, as ``open`` does."""
    if not isinstance(spec, Spec):
        try:
            spec = load(spec)
        except SpecError as exc:
            file = str(spec) if isinstance(spec, os.PathLike) or _names_a_file(spec) else "<spec>"
            return CheckResult(
                exc.diagnostics[0].file if exc.diagnostics else file, exc.diagnostics
            )
    doc = spec.doc
    if isinstance(doc.data, dict) and ("base" in doc.data or "edits" in doc.data):
        from netspec.importer.edits import expand_base  # base: imports the model (and torch)

        doc, problems = expand_base(doc)
        if problems:
            return CheckResult(doc.file, problems)
    arithmetic_problems = fold_arithmetic(doc)
    validation = validate(doc)
    # said once, not again as "got '64/0'"
    computed = {(d.line, d.col) for d in arithmetic_problems}
    diagnostics = arithmetic_problems + [d for d in validation.diagnostics
                                         if (d.line, d.col) not in computed]
    if validation.fatal:
        return CheckResult(doc.file, diagnostics)
    network = resolve(doc)
    if input_shape is not None:
        network.input_shape = tuple(input_shape)
    results, problems = infer(doc, network, validation.broken)
    diagnostics += problems
    if not results and not any(d.severity == "error" for d in diagnostics):
        # as for 'layers: []': summary, build and the rest need a layer to work on
        diagnostics.append(doc.diagnostic(("layers",), "layers: every entry is left out by "
                                          "its if:, so the network has no layers"))
    if not any(d.severity == "error" for d in diagnostics):
        diagnostics += _unexplained(doc, results)
    diagnostics.sort(key=lambda d: (d.line, d.col))
    return CheckResult(doc.file, diagnostics, results, network, doc)


def as_spec(source: Any) -> Spec:
    """A Spec from a Spec, a path, or YAML text (more than one line); a missing file is an
    OSError, not a one-line YAML document."""
    if isinstance(source, Spec):
        return source
    if isinstance(source, os.PathLike) or "\n" not in str(source):
        if Path(source).is_dir():
            raise IsADirectoryError(21, "is a directory", str(source))
        return Spec(read_file(source))
    return load(source)
