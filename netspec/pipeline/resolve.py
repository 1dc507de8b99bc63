"""Stage 3, resolve: a validated document -> the network as plain records.

Each entry's arguments are brought to one form (keywords), whether the user wrote a
mapping, PyTorch's positional list, a scalar or nothing, and each argument remembers
where it was written so later errors can point at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netspec.core.diagnostics import Diagnostic
from netspec.core.document import Document
from netspec.core.expr import evaluate, is_expression
from netspec.ops import REGISTRY, LayerType
from netspec.pipeline.validate import entry_type, layer_info, layer_label


@dataclass
class LayerEntry:
    index: int
    name: str
    type: LayerType | None  # None: the entry is broken (already reported)
    given: dict[str, Any]  # keyword form of what the user wrote
    path: tuple  # the entry in the document
    arg_paths: dict[str, tuple] = field(default_factory=dict)
    form: str = "keywords"  # keywords | positional | scalar | none
    broken: bool = False  # reported already; its output shape is unknown
    qualname: str = ""  # dotted module path, e.g. layer2.0.conv1 ("" at the top level)
    block: str | None = None  # the block whose definition this entry comes from

    @property
    def type_name(self) -> str:
        return self.type.name if self.type else "?"

    @property
    def label(self) -> str:
        type_name = self.type.name if self.type else None
        if not self.qualname or ("." not in self.qualname and self.block is None):
            return layer_label(self.index, self.name, type_name)
        where = f", in block {self.block}" if self.block else ""
        return f"layer {self.qualname} ({type_name or '?'}{where})"

    @property
    def info(self) -> dict[str, Any]:
        return layer_info(self.index, self.name, self.type.name if self.type else None)

    def arg_path(self, arg: str | None) -> tuple:
        return self.arg_paths.get(arg, self.path + (self.type.name,)) if arg else self.path


@dataclass
class Network:
    name: str
    input_shape: tuple[int, ...]
    input_dtype: str
    layers: list[LayerEntry]


def resolve(doc: Document) -> Network:
    """The network's name and input; its layers are resolved entry by entry as they are
    walked (a block's arguments depend on its parameters)."""
    data = doc.data
    spec_input = data["input"]
    if isinstance(spec_input, dict):
        shape, dtype = tuple(spec_input["shape"]), spec_input.get("dtype", "float32")
    else:
        shape, dtype = tuple(spec_input), "float32"
    return Network(data.get("name", "Net"), shape, dtype, [])


def keyword_form(lt: Any, args: Any, args_path: tuple = ()) -> tuple[str, dict, dict]:
    """A layer's arguments as written (a mapping, a positional list, one scalar for the
    first positional argument, or nothing) -> (form, {argument: value}, {argument: the
    YAML path of its value})."""
    if isinstance(args, dict):
        return "keywords", dict(args), {k: args_path + (k,) for k in args}
    if isinstance(args, list):
        names = [lt.positional[i].name for i in range(len(args))]
        return ("positional", dict(zip(names, args, strict=True)),
                {n: args_path + (i,) for i, n in enumerate(names)})
    if args is not None:
        first = lt.positional[0].name
        return "scalar", {first: args}, {first: args_path}
    return "none", {}, {}


def resolve_entry(
    doc: Document,
    path: tuple,
    index: int,
    raw: Any,
    diagnostics: list[Diagnostic],
    name: str | None = None,
    qualname: str = "",
    block: str | None = None,
) -> LayerEntry:
    """One layer entry (already schema-valid, parameters substituted) in keyword form."""
    type_name = entry_type(raw)
    lt = REGISTRY[type_name]
    if name is None:
        name = raw.get("name") if isinstance(raw, dict) else None
        name = name if isinstance(name, str) else str(index)
    args = raw.get(type_name) if isinstance(raw, dict) else None
    args_path = path + (type_name,)
    entry = LayerEntry(index, name, lt, {}, path, qualname=qualname, block=block)
    entry.form, entry.given, entry.arg_paths = keyword_form(lt, args, args_path)
    missing = [a.name for a in lt.args if a.required and a.name not in entry.given]
    for arg in missing:
        hint = ""
        if entry.form == "scalar" and lt.positional[0].infer is not None:
            first = lt.positional[0].name
            hint = (
                f"; a scalar is the first positional argument, so this sets {first} (which "
                f"netspec infers): write {lt.name}: {{{arg}: {doc.raw.get(args_path, args)}}}"
            )
        elif entry.form == "none":
            hint = f": write {lt.name}: {{{arg}: ...}}"
        diagnostics.append(
            doc.diagnostic(
                args_path if args is not None else path,
                f"{entry.label}: missing required argument '{arg}'{hint}",
                layer=entry.info,
            )
        )
        entry.broken = True
    return entry


def substitute(value: Any, params: dict[str, Any]) -> Any:
    """Block arguments with parameter expressions evaluated ('planes * 4' -> 256).

    A string becomes a value only when it is an expression whose every name is a
    parameter; 'same', 'bilinear' and other strings stay strings."""
    if isinstance(value, str) and is_expression(value, params.keys()):
        return evaluate(value, params)
    if isinstance(value, list):
        return [substitute(v, params) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, params) for k, v in value.items()}
    return value
