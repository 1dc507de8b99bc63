"""Stage 3, resolve: a validated document -> the network as plain records.

Each entry's arguments are brought to one form (keywords), whether the user wrote a
mapping, PyTorch's positional list, a scalar or nothing, and each argument remembers
where it was written so later errors can point at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import Diagnostic
from .layers import REGISTRY, LayerType
from .loader import Document
from .validate import entry_type, layer_info, layer_label


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

    @property
    def type_name(self) -> str:
        return self.type.name if self.type else "?"

    @property
    def label(self) -> str:
        return layer_label(self.index, self.name, self.type.name if self.type else None)

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


def resolve(doc: Document, broken: set[int]) -> tuple[Network, list[Diagnostic]]:
    """Assumes ``validate(doc)`` found no fatal error; ``broken`` layers it flagged are kept
    as placeholders so that indices and the rest of the network stay as written."""
    data = doc.data
    spec_input = data["input"]
    if isinstance(spec_input, dict):
        shape, dtype = tuple(spec_input["shape"]), spec_input.get("dtype", "float32")
    else:
        shape, dtype = tuple(spec_input), "float32"
    diagnostics: list[Diagnostic] = []
    entries = []
    for index, raw in enumerate(data["layers"]):
        if index in broken:
            type_name = entry_type(raw)
            name = raw.get("name") if isinstance(raw, dict) else None
            entries.append(
                LayerEntry(
                    index,
                    name if isinstance(name, str) else str(index),
                    REGISTRY.get(type_name or ""),
                    {},
                    ("layers", index),
                    broken=True,
                )
            )
            continue
        entries.append(_entry(doc, index, raw, diagnostics))
    return Network(data.get("name", "Net"), shape, dtype, entries), diagnostics


def _entry(doc: Document, index: int, raw: Any, diagnostics: list[Diagnostic]) -> LayerEntry:
    type_name = entry_type(raw)
    lt = REGISTRY[type_name]
    name = raw.get("name") if isinstance(raw, dict) else None
    name = name if isinstance(name, str) else str(index)
    path = ("layers", index)
    args = raw.get(type_name) if isinstance(raw, dict) else None
    args_path = path + (type_name,)
    entry = LayerEntry(index, name, lt, {}, path)
    if isinstance(args, dict):
        entry.given = dict(args)
        entry.arg_paths = {k: args_path + (k,) for k in args}
    elif isinstance(args, list):
        entry.form = "positional"
        for i, value in enumerate(args):
            arg = lt.positional[i].name
            entry.given[arg] = value
            entry.arg_paths[arg] = args_path + (i,)
    elif args is not None:
        entry.form = "scalar"
        first = lt.positional[0]
        entry.given[first.name] = args
        entry.arg_paths[first.name] = args_path
    else:
        entry.form = "none"
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
