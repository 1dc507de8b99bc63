"""Specs that start from an existing model: ``base:`` plus ``edits:``.

    base: torchvision:vgg16            # module:callable, as for `netspec import`
    base_kwargs: {num_classes: 1000}   # optional keyword arguments (YAML values)
    edits:
      - replace: classifier.6          # a module path, as in state_dict keys
        with: {Linear: {out_features: 10}}
      - append: classifier             # a group's path, or '.' for the top level
        with: {Linear: {out_features: 10}, name: add_linear}
      - insert_after: features.30      # also insert_before
        with: Dropout
      - delete: classifier.5

The base model (torchvision's builders, or a module trusted in NETSPEC_TRUSTED_MODULES:
netspec.trust) is imported (netspec.importer: this is where torch gets imported, and
the base's module runs) into the document's ``layers``, the edits are applied in order,
and the result goes through the normal pipeline, so ``check`` validates it.  Everything an
edit brings in keeps the position it was written at, so errors in it point at the edit;
errors in the base's own layers point at ``base:``."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from netspec.core.diagnostics import Diagnostic, did_you_mean
from netspec.core.document import Document

OPS = ("replace", "insert_after", "insert_before", "append", "delete")
EDIT_KEYS = (*OPS, "with")
_cache: dict[str, dict[str, Any]] = {}


class _Failed(Exception):
    pass


def expand_base(doc: Document) -> tuple[Document, list[Diagnostic]]:
    """The document with the base model's layers in place and the edits applied, or the
    problems (then the spec cannot be checked further)."""
    data = doc.data
    if not isinstance(data, dict) or ("base" not in data and "edits" not in data):
        return doc, []
    problems: list[Diagnostic] = []

    def fail(path: tuple, message: str, at_key: bool = False) -> _Failed:
        problems.append(doc.diagnostic(path, message, at_key=at_key))
        return _Failed()

    try:
        if "base" not in data:
            raise fail(("edits",), "edits: change a base model: add base: (e.g. base: "
                       "torchvision:vgg16), or write the change into layers:", at_key=True)
        if "layers" in data:
            raise fail(("layers",), "a spec with base: takes its layers from the base model; "
                       "change them with edits: (replace, insert_after, insert_before, append, "
                       "delete), or drop base:", at_key=True)
        base = _import_base(doc, fail)
        edited = _Edited(doc, copy.deepcopy(base["layers"]))
        edits = data.get("edits")
        if edits is not None and not isinstance(edits, list):
            raise fail(("edits",), "edits must be a list, e.g. '- replace: classifier.6' with "
                       "'with: {Linear: {out_features: 10}}'")
        for i, edit in enumerate(edits or []):
            edited.apply(i, edit, fail)
    except _Failed:
        return doc, problems
    new = {k: v for k, v in data.items() if k != "edits"}
    new["layers"] = edited.layers
    new.setdefault("name", base["name"])
    return edited.document(new), []


def _key(target: str, kwargs: dict) -> str:
    return json.dumps([target, kwargs], sort_keys=True, default=str)


def _import_base(doc: Document, fail) -> dict[str, Any]:
    """The base model imported as spec data (cached: share it, copy what you change)."""
    data = doc.data
    target, kwargs = data["base"], data.get("base_kwargs")
    if not isinstance(target, str):
        raise fail(("base",), "base must be a target such as torchvision:vgg16 (a module, ':', "
                   "a function or nn.Module class that builds the model)")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise fail(("base_kwargs",), "base_kwargs must be a mapping of keyword arguments, e.g. "
                   "{num_classes: 10}")
    try:
        from netspec.importer.fx import ImportProblem, TargetError, make_model, model_to_spec
        from netspec.importer.trust import base_problem

        problem = base_problem(target.strip(), kwargs)  # before the cache: trust may change
    except ImportError as exc:  # pragma: no cover - torch missing
        raise fail(("base",), f"base: needs torch to import the model ({exc})") from None
    if problem:
        raise fail(*problem)
    key = _key(target, kwargs)
    if key not in _cache:
        try:
            imported = model_to_spec(make_model(target, kwargs))
        except TargetError as exc:
            raise fail(("base",), f"base: {exc}") from None
        except ImportProblem as exc:
            raise fail(("base",), f"base: cannot express {target} as a spec: {exc}") from None
        _cache[key] = imported.data
    return _cache[key]


def _path_parts(text: str) -> list[str | int] | None:
    """'classifier.6' -> ['classifier', '6']; Python's 'classifier[6]' and
    'features[0][-1]' -> ['classifier', 6], ['features', 0, -1] (positions); None if
    it is neither."""
    parts: list[str | int] = []
    for dotted in text.split("."):
        match = _PART.fullmatch(dotted)
        if match is None or not (match["name"] or match["indexes"]):
            return None
        if match["name"]:
            parts.append(match["name"])
        parts.extend(int(i) for i in _INDEX.findall(match["indexes"] or ""))
    return parts


_PART = re.compile(r"(?P<name>[^.\[\]]*)(?P<indexes>(\[\s*-?\d+\s*\])*)")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")


class _Edited:
    """The layers being edited, and where each brought-in entry was written."""

    def __init__(self, doc: Document, layers: list):
        self.doc = doc
        self.layers = layers
        self.origins: dict[int, tuple] = {}  # id(entry) -> its path in the document

    # -------------------------------------------------------------- finding modules

    def find(self, text: Any, path: tuple, fail, group: bool = False) -> tuple[list, int]:
        """(the list holding the module, its index); for group=True, the group's own list
        as (list, -1).  '.' is the top level (append only)."""
        base = self.doc.data.get("base")
        if not isinstance(text, str) or not text.strip():
            raise fail(path, "a module path such as classifier.6 (as in state_dict keys)")
        if group and text.strip() == ".":
            return self.layers, -1
        parts = _path_parts(text.strip())
        if parts is None:
            raise fail(path, f"'{text}' is not a module path: write it as in state_dict keys "
                       "(classifier.6) or as Python indexes it (classifier[6])")
        entries, seen = self.layers, []
        for depth, part in enumerate(parts):
            names = [_name(e, i) for i, e in enumerate(entries)]
            if isinstance(part, int):  # classifier[6]: a position, as nn.Sequential indexes
                if not -len(entries) <= part < len(entries):
                    where = ".".join(seen) or "the top level"
                    raise fail(path, f"index {part} is out of range: {where} has "
                               f"{len(entries)} modules ({_names(names)})")
                part = names[part]
            if part not in names:
                where = ".".join(seen) or "the top level"
                shown = _names(names)
                raise fail(path, f"no module '{'.'.join(seen + [part])}' in {base}"
                           f"{did_you_mean(part, names)}; {where} has {shown}")
            index = names.index(part)
            seen.append(part)
            last = depth == len(parts) - 1
            if last and not group:
                return entries, index
            entry = entries[index]
            if not isinstance(entry, dict) or "layers" not in entry:
                if last:
                    raise fail(path, f"'{text}' is a layer, not a group: append adds to a "
                               "group (use insert_after to add after a layer)")
                raise fail(path, f"'{'.'.join(seen)}' is a layer ({_type(entry)}), it has no "
                           f"module '{parts[depth + 1]}'")
            entries = entry["layers"]
        return entries, -1

    # -------------------------------------------------------------- applying edits

    def apply(self, i: int, edit: Any, fail) -> None:
        at = ("edits", i)
        if not isinstance(edit, dict):
            raise fail(at, "an edit is a mapping such as {replace: classifier.6, with: "
                       "{Linear: {out_features: 10}}}; the operations are " + ", ".join(OPS))
        for key in edit:
            if key not in EDIT_KEYS:
                raise fail(at + (key,), f"unknown key '{key}' in an edit"
                           f"{did_you_mean(str(key), list(EDIT_KEYS))}; an edit has one of "
                           f"{', '.join(OPS)}, and with: for what comes in", at_key=True)
        ops = [k for k in edit if k in OPS]
        if len(ops) != 1:
            raise fail(at, f"an edit has exactly one of {', '.join(OPS)}, got "
                       f"{' and '.join(ops) if ops else 'none'}")
        op = ops[0]
        if op == "delete":
            if "with" in edit:
                raise fail(at + ("with",), "delete takes no with:", at_key=True)
            entries, index = self.find(edit[op], at + (op,), fail)
            del entries[index]
            return
        if "with" not in edit:
            raise fail(at, f"{op} needs with: (the layer, block or group to put in), e.g. "
                       "with: {Linear: {out_features: 10}}")
        new = edit["with"]
        if not isinstance(new, (str, dict)):
            raise fail(at + ("with",), "with: is a layer entry, as in layers: ('ReLU', or "
                       "{Linear: {out_features: 10}, name: fc2})")
        new = copy.deepcopy(new)
        if isinstance(new, str):
            new = {new: None}
        self.origins[id(new)] = at + ("with",)
        if op == "append":
            entries, _ = self.find(edit[op], at + (op,), fail, group=True)
            entries.append(new)
            return
        entries, index = self.find(edit[op], at + (op,), fail)
        if op == "replace":
            old = entries[index]
            if "name" not in new and isinstance(old, dict) and isinstance(old.get("name"), str):
                new["name"] = old["name"]  # the replacement takes the module's place and name
            if isinstance(old, dict) and "from" in old and "from" not in new:
                new["from"] = old["from"]
            entries[index] = new
        elif op == "insert_after":
            entries.insert(index + 1, new)
        else:
            entries.insert(index, new)

    # -------------------------------------------------------------- positions

    def document(self, data: dict) -> Document:
        doc = self.doc
        positions, keys, raw = dict(doc.positions), dict(doc.keys), dict(doc.raw)
        base_at = doc.where(("base",))
        positions[("layers",)] = base_at
        keys[("layers",)] = doc.keys.get(("base",), base_at)
        origins = self.origins

        def walk(entries: list, path: tuple) -> None:
            for index, entry in enumerate(entries):
                here = path + (index,)
                source = origins.get(id(entry))
                if source is not None:
                    _copy(doc, source, here, positions, keys, raw)
                    continue  # everything inside came with the edit
                if isinstance(entry, dict) and isinstance(entry.get("layers"), list):
                    walk(entry["layers"], here + ("layers",))

        walk(data["layers"], ("layers",))
        return Document(data, doc.file, doc.text, positions, raw, keys)


def _copy(doc: Document, source: tuple, target: tuple, positions, keys, raw) -> None:
    n = len(source)
    for table, into in ((doc.positions, positions), (doc.keys, keys), (doc.raw, raw)):
        for path, value in table.items():
            if path[:n] == source:
                into[target + path[n:]] = value
    positions.setdefault(target, doc.where(source))


def _name(entry: Any, index: int) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return name if isinstance(name, str) else str(index)


def _names(names: list[str]) -> str:
    if not names:
        return "nothing"
    if len(names) > 12:
        return ", ".join(names[:6]) + f", ... ({len(names)} in all)"
    if all(n.isdigit() for n in names):
        return f"{names[0]}–{names[-1]}" if len(names) > 1 else names[0]
    return ", ".join(names)


def _type(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        return next((k for k in entry if k[:1].isupper()), "?")
    return "?"
