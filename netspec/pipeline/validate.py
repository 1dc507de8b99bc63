"""Stage 2, validate: the JSON Schema plus the checks a schema cannot say, as positioned,
readable diagnostics (jsonschema's own messages are for machines)."""

from __future__ import annotations

import ast
import json
import keyword
import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Any

from netspec.core.diagnostics import Diagnostic, closest, did_you_mean
from netspec.core.document import Document
from netspec.core.names import (
    ENTRY_NAME,
    GRAPH_MODULE_ATTRIBUTES,
    IDENTIFIER,
    MODULE_ATTRIBUTES,
    list_place,
)
from netspec.core.schema_check import compile_schema, ecma_pattern
from netspec.ops import REGISTRY
from netspec.pipeline import schema as schema_module
from netspec.pipeline.arithmetic import is_arithmetic

_validator_classes: list = []


def validator_class() -> Any:
    """jsonschema's Draft 2020-12 validator as netspec reads its schema.  jsonschema costs
    more start-up than the rest of `check`, so it is imported only to explain a document
    that the compiled check (schema_check) found invalid."""
    if not _validator_classes:
        from jsonschema import Draft202012Validator, ValidationError, validators

        # A YAML 2.0 or true is not an integer here (jsonschema counts 2.0 as one by default).
        types = Draft202012Validator.TYPE_CHECKER.redefine(
            "integer", lambda checker, v: isinstance(v, int) and not isinstance(v, bool)
        )

        def pattern(validator, pattern, instance, schema):
            """`pattern` with JSON Schema's (ECMA-262) meaning of a final `$`."""
            if not validator.is_type(instance, "string"):
                return
            pattern = ecma_pattern(pattern)
            if not re.search(pattern, instance):
                yield ValidationError(f"{instance!r} does not match {pattern!r}")

        _validator_classes.append(validators.extend(
            Draft202012Validator, validators={"pattern": pattern}, type_checker=types
        ))
    return _validator_classes[0]


class _Schema:
    """A schema checked by compiled Python first; jsonschema lists the errors only when
    that check fails, so a valid document never imports it."""

    def __init__(self, schema: dict):
        self.schema = schema
        self.is_valid = compile_schema(schema, lazy=True)
        self.validator: Any = None

    def errors(self, instance: Any) -> Any:
        if self.is_valid(instance):
            return ()
        if self.validator is None:
            self.validator = validator_class()(self.schema)
        return self.validator.iter_errors(instance)


TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}
TOP_KEYS = ("netspec", "name", "input", "inputs", "outputs", "returns", "layers", "base",
            "base_kwargs", "edits", "train")
# What people write for a dtype, from NumPy, C and torch.Tensor methods.
DTYPE_ALIASES = {
    "long": "int64",
    "int": "int64",
    "integer": "int64",
    "float": "float32",
    "double": "float64",
    "half": "float16",
    "single": "float32",
    "bf16": "bfloat16",
    "fp32": "float32",
    "fp16": "float16",
    "fp64": "float64",
    "i64": "int64",
    "i32": "int32",
    "torch.long": "int64",
    "torch.float": "float32",
}
PY_TYPE_WORDS = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    type(None): "nothing",
    list: "a list",
    dict: "a mapping",
}

_validator_cache: list = []


def _validator() -> Any:
    if not _validator_cache:
        _validator_cache.append(_Schema(schema_module.load()))
    return _validator_cache[0]


def describe_value(value: Any, raw: str | None) -> str:
    if value is None and raw == "":
        return "nothing (an empty value, which YAML reads as null)"
    shown = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    if raw is not None and isinstance(value, (int, float)) and is_arithmetic(raw):
        return f"{raw.strip()} = {shown}"
    if raw is not None and raw != shown and isinstance(value, (bool, type(None), float)):
        return f"'{raw}' (YAML reads it as {shown})"
    return shown


def _python_tuple_hint(value: Any) -> str:
    """``Conv2d: (3, 32, 5, 1, 2)`` written as in Python: YAML reads a string."""
    text = value.strip() if isinstance(value, str) else ""
    if not (text.startswith("(") and text.endswith(")")) or len(text) > 200:
        return ""
    try:
        items = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return ""
    if isinstance(items, tuple):
        return (f" (YAML has no tuples: the Python {text} is the list "
                f"{json.dumps(list(items))} in YAML)")
    if isinstance(items, (int, float)):
        return f" (write {items!r}, without the parentheses)"
    return ""


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def layer_label(index: int, name: str | None, type_name: str | None) -> str:
    """'layer 6 'fc1' (Linear)' or 'layer 6 (Linear)'."""
    label = f"layer {index}"
    if isinstance(name, str) and name != str(index) and ENTRY_NAME.fullmatch(name):
        label += f" '{name}'"
    if type_name:
        label += f" ({type_name})"
    return label


def layer_info(index: int, name: str | None, type_name: str | None) -> dict[str, Any]:
    return {"index": index, "name": name if name is not None else str(index), "type": type_name}


def identifier_problem(name: str) -> str:
    """Why ``name`` is not an ASCII Python identifier, and a name that would do."""
    for ch in name:
        if ord(ch) > 127:
            what = unicodedata.name(ch, "")
            return (
                f"it contains '{ch}' (U+{ord(ch):04X}{' ' + what if what else ''}), which "
                "is not ASCII"
            )
    if not name:
        return "it is empty"
    if "\n" in name or "\r" in name:
        return "it contains a line break"
    if name[0].isdigit():
        return "it starts with a digit"
    bad = next(ch for ch in name if not (ch.isalnum() or ch == "_"))
    fixed = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]+", "_", name)).strip("_")
    hint = f"; try '{fixed}'" if fixed and IDENTIFIER.fullmatch(fixed) else ""
    return f"it contains {json.dumps(bad)}{hint}"


def module_name_problem(name: str) -> str:
    """Why ``name`` cannot name an entry's module (core.names.MODULE_NAME), and one that
    would do."""
    if name.startswith("-") or name.endswith("-") or "--" in name:
        return "a '-' may only join two parts, as in block1-0"
    return identifier_problem(name.replace("-", "_"))


def entry_type(entry: Any) -> str | None:
    """The layer type an entry names (None when it names none or several)."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        types = [k for k in entry if isinstance(k, str) and k not in schema_module.ENTRY_KEYS]
        if len(types) == 1:
            return types[0]
    return None


def entry_index(path: tuple) -> int | None:
    """Where in ``path`` the innermost layer entry's index is (None: not in a layers list).

    Entries live in the top-level 'layers', in a block's 'layers', and in a group's
    'layers' inside an entry, as deep as groups nest."""
    if path[:1] == ("layers",):
        start = 1
    elif len(path) >= 3 and path[0] == "blocks" and path[2] == "layers":
        start = 3
    else:
        return None
    if len(path) <= start or not isinstance(path[start], int):
        return None
    found, j = start, start + 1
    while j + 1 < len(path) and path[j] in ("layers", "branches") and \
            isinstance(path[j + 1], int):
        found, j = j + 1, j + 2
    return found


def lookup(data: Any, path: tuple, overrides: dict[tuple, Any] | None = None) -> Any:
    if overrides and tuple(path) in overrides:
        return overrides[tuple(path)]
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def entry_label(
    data: Any, path: tuple, overrides: dict | None = None, with_type: bool = True
) -> str:
    """'layer 6 'fc1' (Linear)' at the top level; 'layer features.3 (Conv2d)' in a group;
    'layer conv1 (Conv2d, in block BasicBlock)' in a block definition."""
    entry = lookup(data, path, overrides)
    type_name = entry_type(entry) if with_type else None
    known = type_name if type_name in REGISTRY or (with_type and type_name) else None
    if len(path) == 2 and path[0] == "layers":
        name = entry.get("name") if isinstance(entry, dict) else None
        return layer_label(path[1], name if isinstance(name, str) else None, known)
    parts, block = [], None
    start = 1 if path[0] == "layers" else 3
    if path[0] == "blocks":
        block = path[1]
    for i in range(start, len(path), 2):
        node = lookup(data, path[: i + 1], overrides)
        name = node.get("name") if isinstance(node, dict) else None
        parts.append(name if isinstance(name, str) and ENTRY_NAME.fullmatch(name)
                     else str(path[i]))
    details = ", ".join(filter(None, [known, f"in block {block}" if block else None]))
    return f"layer {'.'.join(parts)}" + (f" ({details})" if details else "")


def unknown_layer_message(name: str, block_names: list[str]) -> str:
    return f"unknown layer '{name}'{did_you_mean(name, sorted(REGISTRY) + block_names)}"


def block_names(data: Any) -> list[str]:
    blocks = data.get("blocks") if isinstance(data, dict) else None
    return sorted(k for k in blocks if isinstance(k, str)) if isinstance(blocks, dict) else []


class _Translator:
    """jsonschema ValidationError -> Diagnostic with a message a person can act on."""

    def __init__(self, doc: Document, overrides: dict[tuple, Any] | None = None):
        self.doc = doc
        self.overrides = overrides or {}  # block entries with their parameters substituted
        self.block_names = block_names(doc.data)

    def layer_context(self, path: tuple) -> tuple[str, dict | None, str | None, str | None]:
        """(prefix, layer info, type name, argument name) for a path into a layers list."""
        at = entry_index(path)
        if at is None:
            return "", None, None, None
        entry = lookup(self.doc.data, path[: at + 1], self.overrides)
        index = path[at]
        type_name = entry_type(entry)
        name = entry.get("name") if isinstance(entry, dict) else None
        name = name if isinstance(name, str) else None
        known = type_name if type_name in REGISTRY else None
        arg = None
        rel = path[at + 1 :]
        if len(rel) >= 2 and rel[0] == type_name and known:
            key = rel[1]
            if isinstance(key, int) and REGISTRY[known].list_arg is not None:
                arg = REGISTRY[known].list_arg.name  # an item of Permute: [0, 2, 1]
            elif isinstance(key, int):
                positional = REGISTRY[known].positional
                arg = positional[key].name if key < len(positional) else None
            else:
                arg = key
        elif len(rel) >= 2 and rel[0] == "first" and known and isinstance(rel[1], str):
            arg = rel[1]  # first: {stride: 2} overrides the repeated layer's stride
        elif len(rel) == 1 and rel[0] == type_name and known and \
                REGISTRY[known].list_arg is not None and isinstance(entry[type_name], list):
            arg = REGISTRY[known].list_arg.name  # Permute: [] is dims
        elif (
            len(rel) == 1
            and rel[0] == type_name
            and known
            and not isinstance(entry[type_name], (dict, list))
        ):
            arg = REGISTRY[known].positional[0].name if REGISTRY[known].positional else None
        label = entry_label(self.doc.data, path[: at + 1], self.overrides)
        return (label + ": ", layer_info(index, name, known), known, arg)

    def misplaced_argument(self, path: tuple, entry: dict, key: str) -> str | None:
        """An argument of the entry's layer type written at the entry's own column (the
        argument block not indented under the type): say where it goes."""
        types = [k for k in entry if isinstance(k, str) and k in REGISTRY]
        if len(types) != 1 or key in schema_module.ENTRY_KEYS:
            return None
        type_name = types[0]
        names = [a.name for a in REGISTRY[type_name].args]
        line, col = self.doc.keys.get(path + (type_name,), (0, 0))
        where = f"indent it to column {col + 2}, under {type_name}: (line {line})"
        if key in names:
            return f"{key} is an argument of {type_name}, so it belongs under it: {where}"
        close = closest(key, names)
        if close:
            return (f"unknown key '{key}' in a layer entry; did you mean {type_name}'s "
                    f"argument '{close}'? Arguments go under the type: {where}")
        return None

    def what(self, path: tuple, arg: str | None) -> str:
        if arg is not None:
            # the argument itself, or an item of a list argument
            at = entry_index(path) or 1
            depth_of_arg = at + 3 if len(path) >= at + 3 else at + 2
            extra = "".join(f"[{p}]" for p in path[depth_of_arg:])
            return arg + extra
        if path[:1] == ("input",):
            return "input" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[1:])
        if path and path[-1] == "name":
            return "name"
        if path == ("layers",):
            return "layers"
        at = entry_index(path)
        if at == len(path) - 1:
            return "layer entry"
        if at is not None and path[at + 1] in schema_module.ENTRY_KEYS:  # repeat, repeat.count
            return ".".join(str(p) for p in path[at + 1 :])
        return ".".join(str(p) for p in path) or "the spec"

    def expected(self, type_name: str | None, arg: str | None, path: tuple, schema: dict) -> str:
        if type_name and arg and arg in REGISTRY[type_name].arg_by_name:
            at = entry_index(path) or 1
            depth_of_arg = at + 3 if len(path) >= at + 3 else at + 2
            if len(path) <= depth_of_arg:
                return REGISTRY[type_name].arg_by_name[arg].type.describe
        at = entry_index(path)
        if at is not None and path[at + 1 : at + 2] == ("repeat",):
            return "a whole number of copies"
        types = schema.get("type")
        types = [types] if isinstance(types, str) else types or []
        return " or ".join(TYPE_WORDS.get(t, t) for t in types)

    def type_hint(self, path: tuple, inst: Any, error: Any) -> str:
        """A likely fix for a value of the wrong type, or ''."""
        types = error.schema.get("type")
        types = [types] if isinstance(types, str) else types or []
        if isinstance(inst, float) and inst.is_integer() and "integer" in types:
            return f" (write {int(inst)}, without the decimal point)"
        tuple_hint = _python_tuple_hint(inst)
        if tuple_hint:
            return tuple_hint
        at = entry_index(path)
        if at is not None and path[at + 1 : at + 2] == ("repeat",):
            return (' (repeat: 3, or {count: 3, name: "layer{n}"}; a string is an expression '
                    'over block parameters)')
        if path == ("layers",) and isinstance(inst, str) and inst.startswith("-"):
            return " (a list item needs a space after the '-': '- ReLU')"
        if path == ("layers",) and isinstance(inst, dict):
            return " (start each layer on its own line with '- ', as in '  - ReLU')"
        if path == ("inputs",) and isinstance(inst, list):
            return (" (inputs: names each input, as src: [20]; for one input write input: "
                    f"{json.dumps(inst)})")
        if path == ("input",) and isinstance(inst, str):
            dims = [d for d in re.split(r"[x×*,\s]+", inst.strip("[]() ")) if d]
            if dims and all(d.isdigit() for d in dims):
                return f" (write input: [{', '.join(dims)}])"
        if (
            len(path) == 2
            and path[0] == "layers"
            and isinstance(inst, list)
            and inst
            and isinstance(inst[0], str)
            and inst[0] in REGISTRY
        ):
            rest = inst[1:]
            args = "" if not rest else f" {json.dumps(rest[0] if len(rest) == 1 else rest)}"
            return f" (write '- {inst[0]}:{args}')"
        return ""

    def __call__(self, error: Any) -> list[Diagnostic]:
        failure = self.failure(error)
        translate = _BY_KEYWORD.get(failure.kind)
        found = translate(self, failure) if translate is not None else None
        if found is not None:
            return found
        if failure.path[-2:-1] == ("from",):
            return self.not_a_source_name(failure)
        return _BY_KEYWORD_ELSEWHERE.get(failure.kind, _Translator.other)(self, failure)

    def failure(self, error: Any) -> _Failure:
        path = tuple(error.absolute_path)
        prefix, info, type_name, arg = self.layer_context(path)
        return _Failure(
            self.doc, error, path, prefix, info, type_name, arg,
            kind=error.validator, value=error.validator_value, inst=error.instance,
            raw=self.doc.raw.get(path), what=self.what(path, arg),
        )  # fmt: skip

    def wrong_type(self, f: _Failure) -> list[Diagnostic]:
        if f.path == ():
            got = PY_TYPE_WORDS.get(type(f.inst), "a value")
            if isinstance(f.inst, (str, int, float)) and not isinstance(f.inst, bool):
                got += f", {describe_value(f.inst, f.raw)}"
            return [
                f.here(
                    "a spec must be a mapping with the keys netspec, input and layers "
                    f"(each 'key: value' on its own line), got {got}"
                )
            ]
        expected = self.expected(f.type_name, f.arg, f.path, f.error.schema)
        return [
            f.here(
                f"{f.what} must be {expected}, "
                f"got {describe_value(f.inst, f.raw)}{self.type_hint(f.path, f.inst, f.error)}"
            )
        ]

    def below_minimum(self, f: _Failure) -> list[Diagnostic]:
        return [f.here(f"{f.what} must be at least {f.value}, got {describe_value(f.inst, f.raw)}")]

    def above_maximum(self, f: _Failure) -> list[Diagnostic]:
        return [f.here(f"{f.what} {f.inst:,} is absurdly large (at most {f.value:,})")]

    def not_above_minimum(self, f: _Failure) -> list[Diagnostic]:
        return [
            f.here(f"{f.what} must be greater than {f.value}, got {describe_value(f.inst, f.raw)}")
        ]

    def wrong_item_count(self, f: _Failure) -> list[Diagnostic]:
        return self.items_count(f.error, f.here, f.what, f.type_name, f.path, f.inst)

    def extra_items(self, f: _Failure) -> list[Diagnostic] | None:
        """items: false is a tuple given too many items; other items errors are not ours."""
        return self.wrong_item_count(f) if f.value is False else None

    def not_a_choice(self, f: _Failure) -> list[Diagnostic]:
        return [self.enum(f.here, f.what, f.path, f.value, f.inst, f.raw)]

    def pattern_mismatch(self, f: _Failure) -> list[Diagnostic]:
        """A string of the wrong form: a layer type, a block or parameter name, a from:, a
        name, or a padding word."""
        path, inst, here = f.path, f.inst, f.here
        if entry_index(path) == len(path) - 1 and isinstance(inst, str):
            if " - " in inst:  # '- A' and an over-indented '- B'
                return [
                    here(
                        f"unknown layer '{inst}': two list items run together, because a "
                        "'- ' line is indented further than the item above it"
                    )
                ]
            return [here(unknown_layer_message(inst, self.block_names))]
        if "propertyNames" in f.error.schema_path:
            shown = json.dumps(inst, ensure_ascii=False)
            if path[-1:] == ("blocks",):
                if IDENTIFIER.fullmatch(inst):
                    return [here(f"block name {shown} must start with a capital letter "
                                 "(CamelCase, like a layer type)")]
                return [here(f"block name {shown} is not a CamelCase Python identifier: "
                             f"{identifier_problem(inst)}")]
            return [here(f"parameter name {shown} is not a Python identifier (ASCII "
                         f"letters, digits and _, not starting with a digit): "
                         f"{identifier_problem(inst)}")]
        if path[-1:] == ("from",) or path[-2:-1] == ("from",):
            return self.not_a_source_name(f)
        if f.what.endswith("name") and len(path) > 1 and path[-1] == "name":
            return [here(f"{f.what} {json.dumps(inst, ensure_ascii=False)} is not a module name "
                         "(ASCII letters, digits and _, not starting with a digit; '-' may join "
                         f"such parts, as in block1-0): {module_name_problem(inst)}")]
        if f.what.endswith("name"):
            return [
                here(
                    f"{f.what} {json.dumps(inst, ensure_ascii=False)} is not a Python "
                    "identifier (ASCII letters, digits and _, not starting with a "
                    f"digit): {identifier_problem(inst)}"
                )
            ]
        choices = ["same", "valid"]
        return [
            here(
                f"{f.what} must be 'same' or 'valid' when it is a string, got "
                f"{json.dumps(inst)}{did_you_mean(str(inst), choices)}"
            )
        ]

    def not_a_source_name(self, f: _Failure) -> list[Diagnostic]:
        return [
            f.here(
                f"from: {json.dumps(f.inst, ensure_ascii=False)} is not a name: from: takes "
                "the name of an earlier entry, 'input', or a list of them"
            )
        ]

    def unknown_key(self, f: _Failure) -> list[Diagnostic]:
        return self.unknown_keys(f.error, f.here, f.path, f.type_name, f.inst)

    def missing_key(self, f: _Failure) -> list[Diagnostic]:
        inst, here = f.inst, f.here
        # the top level's required keys are in if/then parts: its properties are the root's
        schema = schema_module.load() if f.path == () else f.error.schema
        missing = [
            k
            for k in f.value
            if isinstance(inst, dict)
            and k not in inst
            and not self.misspelled(k, inst, schema)
        ]
        if not missing:
            return []  # the unknown key that misspells it says so
        if f.path == ():
            return [here(f"missing '{k}': a spec needs netspec, input and layers") for k in missing]
        if f.path == ("input",):
            return [here("input mapping needs 'shape', e.g. {shape: [128], dtype: int64}")]
        return [here(f"missing required argument '{k}'") for k in missing]

    def empty_entry(self, f: _Failure) -> list[Diagnostic]:
        return [f.here("empty layer entry: write a layer type such as ReLU or Conv2d: {...}")]

    def other(self, f: _Failure) -> list[Diagnostic]:
        if f.kind is None or f.value is False or f.error.schema is False:
            return [
                f.here(
                    f"{f.type_name or 'this layer'} takes no arguments, got "
                    f"{describe_value(f.inst, f.raw)}"
                )
            ]
        # every keyword the schema uses is translated above
        return [f.here(f.error.message)]  # pragma: no cover

    def misspelled(self, key: str, inst: dict, schema: dict) -> bool:
        """Whether ``inst`` has an unknown key that the did-you-mean would turn into ``key``."""
        allowed = list(schema.get("properties", {}))
        return any(
            k not in allowed and isinstance(k, str) and closest(k, allowed) == key for k in inst
        )

    def items_count(self, error, here, what, type_name, path, inst) -> list[Diagnostic]:
        at = entry_index(path)
        if type_name and at is not None and path[at + 1 :] == (type_name,) and \
                REGISTRY[type_name].list_arg is None:  # a list of positional arguments
            names = [a.name for a in REGISTRY[type_name].positional]
            if len(inst) > len(names):
                hint = ""
                first = REGISTRY[type_name].positional[0] if names else None
                if len(names) == 1 and "array" in str(first.type.schema.get("type")):
                    hint = (
                        f"; to give {names[0]} as a list write {{{names[0]}: {json.dumps(inst)}}}"
                    )
                most = _count(len(names), "positional argument")
                return [
                    here(
                        f"{type_name} takes at most {most}"
                        f"{' (' + ', '.join(names) + ')' if names else ''}, got "
                        f"{len(inst)}{hint}"
                    )
                ]
            needed = error.validator_value if error.validator == "minItems" else len(names)
            return [
                here(
                    f"{type_name} needs at least {_count(needed, 'positional argument')} "
                    f"({', '.join(names[:needed])}), got {len(inst)}"
                )
            ]
        schema = error.schema
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        if lo == hi:
            count = f"exactly {lo} entr{'y' if lo == 1 else 'ies'}"
        elif error.validator == "minItems":
            count = f"at least {lo} entr{'y' if lo == 1 else 'ies'}"
        else:
            count = f"at most {hi} entries"
        return [here(f"{what} must have {count}, got {len(inst)}")]

    def enum(self, here, what, path, value, inst, raw) -> Diagnostic:
        if path == ("netspec",):
            return here(
                f"unsupported netspec version {describe_value(inst, raw)}; this netspec "
                f"reads version {schema_module.VERSION} ('netspec:' is the version of the "
                "spec format, not of your model)"
            )
        if path == ("input", "dtype") and isinstance(inst, str):
            alias = DTYPE_ALIASES.get(inst.lower()) or closest(inst, [str(v) for v in value])
            hint = f" (did you mean '{alias}'?)" if alias else ""
            return here(
                f"{what} must be one of {', '.join(str(v) for v in value)}, got "
                f"{describe_value(inst, raw)}{hint}"
            )
        if entry_index(path) == len(path) - 1:
            if isinstance(inst, str) and " - " in inst:  # '- A' and an over-indented '- B'
                return here(
                    f"unknown layer '{inst}': two list items run together, because a "
                    "'- ' line is indented further than the item above it"
                )
            return here(f"unknown layer '{inst}'{did_you_mean(str(inst), sorted(REGISTRY))}")
        choices = [v for v in value if v is not None]
        suggestion = (
            did_you_mean(str(inst), [str(c) for c in choices]) if isinstance(inst, str) else ""
        )
        return here(
            f"{what} must be one of {', '.join(json.dumps(c) for c in choices)}, got "
            f"{describe_value(inst, raw)}{suggestion}"
        )

    def unknown_keys(self, error, here, path, type_name, inst) -> list[Diagnostic]:
        allowed = list(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))  # block calls: CamelCase
        out = []
        for key in inst:
            if key in allowed or any(re.search(p, str(key)) for p in patterns):
                continue
            key_path = path + (key,)
            if path == ():
                msg = f"unknown top-level key '{key}'{did_you_mean(str(key), list(TOP_KEYS))}"
            elif path == ("input",):
                msg = f"unknown key '{key}' in input{did_you_mean(str(key), ['shape', 'dtype'])}"
            elif entry_index(path) == len(path) - 1:
                name = inst.get("name") if isinstance(inst.get("name"), str) else None
                label = entry_label(self.doc.data, path, self.overrides, with_type=False)
                layer_type = closest(str(key), sorted(REGISTRY))
                if key in schema_module.RESERVED_KEYS:
                    msg = (
                        f"'{key}' is reserved for branching networks, which spec version "
                        f"{schema_module.VERSION} does not have"
                    )
                elif str(key)[:1].isupper() or (
                    layer_type and closest(str(key), list(schema_module.ENTRY_KEYS)) is None
                ):
                    msg = f"unknown layer '{key}'{did_you_mean(str(key), sorted(REGISTRY))}"
                else:
                    msg = self.misplaced_argument(path, inst, str(key)) or (
                        f"unknown key '{key}' in a layer entry"
                        + (did_you_mean(str(key), list(schema_module.ENTRY_KEYS))
                           or "; layer types are CamelCase, as in torch.nn"))
                out.append(
                    self.doc.diagnostic(
                        key_path,
                        f"{label}: {msg}",
                        at_key=True,
                        layer=layer_info(path[-1], name, None),
                    )
                )
                continue
            elif type_name:
                msg = f"unknown argument '{key}' for {type_name}{did_you_mean(str(key), allowed)}"
            else:
                msg = f"unknown key '{key}'"
            out.append(here(msg, at_key=True, p=key_path))
        return out


@dataclass
class _Failure:
    """One schema error and what the messages need to know about where it is."""

    doc: Document
    error: Any
    path: tuple
    prefix: str  # 'layer 3 (Conv2d): ' inside a layers list
    info: dict | None
    type_name: str | None
    arg: str | None
    kind: str | None  # the schema keyword that failed
    value: Any  # that keyword's value in the schema
    inst: Any  # the value in the spec
    raw: str | None  # its source text
    what: str

    def here(self, msg: str, at_key: bool = False, p: tuple | None = None) -> Diagnostic:
        return self.doc.diagnostic(
            self.path if p is None else p, self.prefix + msg, layer=self.info, at_key=at_key
        )


# The translation of each schema keyword; a translator returning None leaves the error to
# the from: check and then to _BY_KEYWORD_ELSEWHERE (the order of the original if-chain).
_BY_KEYWORD = {
    "type": _Translator.wrong_type,
    "minimum": _Translator.below_minimum,
    "maximum": _Translator.above_maximum,
    "exclusiveMinimum": _Translator.not_above_minimum,
    "minItems": _Translator.wrong_item_count,
    "maxItems": _Translator.wrong_item_count,
    "items": _Translator.extra_items,
    "enum": _Translator.not_a_choice,
    "pattern": _Translator.pattern_mismatch,
}
_BY_KEYWORD_ELSEWHERE = {
    "additionalProperties": _Translator.unknown_key,
    "required": _Translator.missing_key,
    "minProperties": _Translator.empty_entry,
}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass
class Validation:
    diagnostics: list[Diagnostic]
    broken: set[tuple]  # paths of entries (and blocks) that are invalid: not resolvable
    fatal: bool  # the spec as a whole (input, layers list, ...) is invalid: nothing to infer


def _schema_diagnostics(doc: Document, broken: set[tuple]) -> tuple[list[Diagnostic], bool]:
    """(the schema errors in words, whether the spec as a whole is invalid); the entries
    and blocks they make invalid are added to ``broken``."""
    translate = _Translator(doc)
    diagnostics: list[Diagnostic] = []
    fatal = False
    # layers is required only without base: (an if/then): reported after netspec and input
    ordered = sorted(_validator().errors(doc.data),
                     key=lambda e: list(e.relative_schema_path)[:1] == ["then"])
    for error in ordered:
        path = tuple(error.absolute_path)
        at = entry_index(path)
        if at is not None:
            # a bad 'name' is reported but does not stop the shapes flowing through
            if path[at + 1 :] != ("name",):
                broken.add(path[: at + 1])
        elif path[:1] == ("blocks",) and len(path) >= 2:
            broken.add(path[:2])
        else:
            fatal = True
        diagnostics.extend(translate(error))
    return diagnostics, fatal


def validate(doc: Document) -> Validation:
    """Schema errors, then the semantic checks on names and entries."""
    broken: set[tuple] = set()
    diagnostics, fatal = _schema_diagnostics(doc, broken)
    data = doc.data
    if isinstance(data, dict) and isinstance(data.get("name"), str) and keyword.iskeyword(
        data["name"]
    ):
        diagnostics.append(
            doc.diagnostic(
                ("name",), f"name '{data['name']}' is a Python keyword, which cannot name a class"
            )
        )
    blocks = block_names(data)
    if isinstance(data, dict):
        diagnostics.extend(_check_ports(doc, data))
    if isinstance(data, dict) and isinstance(data.get("layers"), list):
        diagnostics.extend(_check_scope(doc, ("layers",), data["layers"], broken, blocks,
                                        ports="inputs" in data or "outputs" in data))
    for block in blocks:
        body = data["blocks"][block]
        if block in REGISTRY:
            diagnostics.append(
                doc.diagnostic(
                    ("blocks", block),
                    f"block name '{block}' is a torch.nn layer type; choose another",
                    at_key=True,
                )
            )
            broken.add(("blocks", block))
        if isinstance(body, dict) and isinstance(body.get("layers"), list):
            path = ("blocks", block, "layers")
            diagnostics.extend(_check_scope(doc, path, body["layers"], broken, blocks,
                                            ports="inputs" in body or "outputs" in body))
            diagnostics.extend(_check_body_ports(doc, ("blocks", block), body,
                                                 f"block {block}", broken))
    # jsonschema yields one 'required' error per missing key; each is translated once
    unique: dict[tuple, Diagnostic] = {}
    for d in diagnostics:
        unique.setdefault((d.line, d.col, d.severity, d.message), d)
    diagnostics = list(unique.values())
    diagnostics.sort(key=lambda d: (d.line, d.col, _missing_rank(d.message)))
    return Validation(diagnostics, broken, fatal)


def _check_ports(doc: Document, data: dict) -> list[Diagnostic]:
    """input: or inputs:, not both; named inputs are forward's arguments (no keyword, not
    self) and names of the top-level list (no entry may take one)."""
    out = []
    inputs = data.get("inputs")
    if "input" in data and "inputs" in data:
        out.append(doc.diagnostic(("inputs",), "give input: (one input) or inputs: (named "
                                  "inputs), not both", at_key=True))
    if not isinstance(inputs, dict):
        return out
    for name in inputs:
        if isinstance(name, str) and (keyword.iskeyword(name) or name == "self"):
            out.append(doc.diagnostic(("inputs", name), f"input name '{name}' cannot be an "
                                      "argument of forward; choose another", at_key=True))
    layers = data.get("layers")
    for index, entry in enumerate(layers if isinstance(layers, list) else []):
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name in inputs:
            out.append(doc.diagnostic(("layers", index, "name"), f"layer {index}: name "
                                      f"'{name}' is already an input (inputs:); choose another"))
    outputs = data.get("outputs")
    if "returns" in data and isinstance(outputs, list) and data["returns"] != "tuple":
        out.append(doc.diagnostic(("returns",), f"returns: {data['returns']} needs a key for "
                                  "each output: write outputs: as a mapping, key: entry"))
    if isinstance(outputs, dict) and outputs and all(
            isinstance(v, dict) and v.get("training_only") for v in outputs.values()):
        out.append(doc.diagnostic(("outputs",), "every output is training_only, so forward "
                                  "would return nothing in eval; keep one for eval",
                                  at_key=True))
    if data.get("returns") == "namedtuple" and isinstance(outputs, dict):
        for key in outputs:
            if isinstance(key, str) and (key.startswith("_") or keyword.iskeyword(key)):
                out.append(doc.diagnostic(("outputs", key), f"output '{key}' cannot be a "
                                          "namedtuple field (no keyword, no leading _)",
                                          at_key=True))
    if "returns" in data and outputs is None:
        out.append(doc.diagnostic(("returns",), "returns: says how several outputs are "
                                  "returned, but there is no outputs:"))
    return out


def _missing_rank(message: str) -> int:
    """Missing top-level keys in the order a spec is written: netspec, input, layers."""
    key = message.removeprefix("missing '").partition("'")[0]
    return TOP_KEYS.index(key) if message.startswith("missing '") and key in TOP_KEYS else 0


def _check_scope(
    doc: Document, list_path: tuple, entries: list, broken: set[tuple], blocks: list[str],
    ports: bool = False,
) -> list[Diagnostic]:
    """Entries of one layers list: layer types known, one per entry, names unique here.
    ``ports``: the list is the body of a group or block declaring inputs: or outputs:."""
    out: list[Diagnostic] = []
    seen: dict[str, int] = {}
    # a list that branches, or a body with inputs:/outputs:, is built as a torch.fx
    # GraphModule (build.scope_module, build.body_module)
    branching = ports or any(
        isinstance(e, dict) and ("from" in e or _builds_graph(entry_type(e))
                                 or list_place(str(e.get("name", ""))) is not None)
        for e in entries
    )
    for index, entry in enumerate(entries):
        path = list_path + (index,)
        if not isinstance(entry, dict):
            out.extend(_check_unkeyed_entry(doc, path, entry, broken, blocks))
            continue
        types = [k for k in entry if isinstance(k, str) and k[:1].isupper()]
        name = entry.get("name")
        label = entry_label(doc.data, path, with_type=len(types) == 1)
        info = layer_info(
            index, name if isinstance(name, str) else None, types[0] if len(types) == 1 else None
        )
        out.extend(_check_entry_types(doc, path, entry, types, label, info, broken, blocks))
        if isinstance(name, str) and ENTRY_NAME.fullmatch(name):
            out.extend(_check_name(doc, path, name, label, info, seen, list_path, branching))
        if "layers" in entry and isinstance(entry["layers"], list):
            out.extend(_check_scope(doc, path + ("layers",), entry["layers"], broken, blocks,
                                    ports="inputs" in entry or "outputs" in entry))
            out.extend(_check_body_ports(doc, path, entry, label, broken))
        elif "inputs" in entry or "outputs" in entry:
            key = "inputs" if "inputs" in entry else "outputs"
            out.append(doc.diagnostic(path + (key,), f"{label}: {key}: belongs to a group "
                                      "(layers: [...]) or a block's definition, which take "
                                      "named inputs and return outputs; a layer's inputs are "
                                      "given with from:", at_key=True, layer=info))
        if "branches" in entry and isinstance(entry["branches"], list):
            out.extend(_check_branches(doc, path, entry["branches"], broken, blocks))
    out.extend(_check_list_places(doc, list_path, entries, seen))
    return out


def _check_list_places(doc: Document, list_path: tuple, entries: list, seen: dict[str, int]
                       ) -> list[Diagnostic]:
    """Entries named by a key path (convs.0, convs.1) are the modules of one nn.ModuleList
    each: modules (not calls in forward), always there, numbered from 0 without a gap, one
    depth per list, and no other entry of the list is named as the ModuleList."""
    out: list[Diagnostic] = []
    places: dict[str, list[tuple[tuple[int, ...], int]]] = {}
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        place = list_place(name) if isinstance(name, str) else None
        if place is None:
            continue
        head, numbers = place
        path = list_path + (index,)
        label = entry_label(doc.data, path, with_type=entry_type(entry) is not None)
        type_name = entry_type(entry)
        op = REGISTRY.get(type_name) if isinstance(type_name, str) else None
        if op is not None and (not op.torch.module or op.torch.parameter):
            what = "a learnable tensor" if op.torch.parameter else "a call in forward"
            out.append(doc.diagnostic(path + ("name",), f"{label}: name '{name}' puts it in "
                                      f"the nn.ModuleList '{head}', but {type_name} is "
                                      f"{what}, not a module; give it a plain name"))
            continue
        if "if" in entry:
            out.append(doc.diagnostic(path + ("if",), f"{label}: if: a module of the "
                                      f"nn.ModuleList '{head}' is always there (leaving it "
                                      "out would leave a gap in its numbering)", at_key=True))
        if head in seen:
            out.append(doc.diagnostic(path + ("name",), f"{label}: name '{name}' puts it in "
                                      f"the nn.ModuleList '{head}', but layer {seen[head]} "
                                      f"(line {doc.where(list_path + (seen[head],))[0]}) is "
                                      f"named '{head}'; rename one"))
            continue
        places.setdefault(head, []).append((numbers, index))
    for head, found in places.items():
        problem = _numbering_problem(head, [numbers for numbers, _ in found])
        if problem is not None:  # said at the list's last module
            path = list_path + (found[-1][1],)
            out.append(doc.diagnostic(path + ("name",), f"{entry_label(doc.data, path)}: "
                                      f"{problem}"))
    return out


def _numbering_problem(head: str, numbers: list[tuple[int, ...]]) -> str | None:
    """Why the key paths of a ModuleList's modules do not number it from 0 without a gap,
    at one depth; None where they do."""
    depths = {len(n) for n in numbers}
    if len(depths) > 1:
        return (f"the modules of the nn.ModuleList '{head}' are named at different depths "
                f"({', '.join(sorted({head + '.' + '.'.join(map(str, n)) for n in numbers}))})"
                "; a ModuleList holds modules or ModuleLists, not both")
    have = set(numbers)

    def missing(prefix: tuple[int, ...], depth: int) -> tuple[int, ...] | None:
        under = sorted({n[len(prefix)] for n in have if n[:len(prefix)] == prefix})
        gap = next((k for k, v in enumerate(under) if k != v), None)
        if gap is not None:
            return (*prefix, gap)
        if len(prefix) + 1 == depth:
            return None
        return next((m for k in under if (m := missing((*prefix, k), depth)) is not None),
                    None)

    gap = missing((), depths.pop())
    if gap is None:
        return None
    shown = head + "." + ".".join(map(str, gap))
    return (f"the nn.ModuleList '{head}' has no module '{shown}': its modules are numbered "
            "from 0 without a gap, as torch numbers them")


# what a branch cannot have: it takes the branches entry's input, is named by its position
# (an nn.ModuleList's), and is always there (a list's positions would shift)
_NOT_IN_BRANCH = {"from": "takes the branches entry's input", "name": "is named by its "
                  "position, as an nn.ModuleList's modules are", "if": "is always there (a "
                  "left-out branch would shift the positions of the others)",
                  "tie": "cannot tie its parameters"}


def _check_branches(
    doc: Document, path: tuple, branches: list, broken: set[tuple], blocks: list[str]
) -> list[Diagnostic]:
    """The entries of a branches: list: each one checked as an entry of a list, without the
    keys that make no sense side by side."""
    out = _check_scope(doc, path + ("branches",), branches, broken, blocks)
    for k, branch in enumerate(branches):
        if not isinstance(branch, dict):
            continue
        where = path + ("branches", k)
        label = entry_label(doc.data, where, with_type=entry_type(branch) is not None)
        for key, why in _NOT_IN_BRANCH.items():
            if key in branch:
                out.append(doc.diagnostic(where + (key,), f"{label}: {key}: a branch {why}",
                                          at_key=True))
                broken.add(where)
    return out


def _check_body_ports(doc: Document, path: tuple, body: dict, what: str, broken: set[tuple]
                      ) -> list[Diagnostic]:
    """A group's or block's inputs: are forward's arguments: distinct, no keyword and not
    self, and no entry of its layers takes one's name (from: would not know which)."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        return []
    out = []
    seen: set[str] = set()
    for i, name in enumerate(inputs):
        if not isinstance(name, str):
            continue  # the schema's to report
        problem = None
        if keyword.iskeyword(name) or name == "self":
            problem = f"input name '{name}' cannot be an argument of forward; choose another"
        elif name in seen:
            problem = f"input '{name}' is named twice; each input needs its own name"
        seen.add(name)
        if problem:
            out.append(doc.diagnostic(path + ("inputs", i), f"{what}: {problem}"))
    layers = body.get("layers")
    for index, entry in enumerate(layers if isinstance(layers, list) else []):
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name in seen:
            out.append(doc.diagnostic(path + ("layers", index, "name"), f"{what}: entry "
                                      f"{index}: name '{name}' is already an input (inputs:); "
                                      "choose another"))
    if out:
        broken.add(path)
    return out


def _builds_graph(type_name: Any) -> bool:
    """A merge or a function op (Torch(module=False)): its list is built as a GraphModule."""
    lt = REGISTRY.get(type_name) if isinstance(type_name, str) else None
    return lt is not None and (lt.takes_several or not lt.torch.module)


def _check_unkeyed_entry(
    doc: Document, path: tuple, entry: Any, broken: set[tuple], blocks: list[str]
) -> list[Diagnostic]:
    """An entry that is not a mapping: a known layer type or block name, else an error."""
    info = layer_info(path[-1], None, None)
    if isinstance(entry, str):
        if entry not in REGISTRY and entry not in blocks and path not in broken:
            broken.add(path)
            return [doc.diagnostic(path, f"{entry_label(doc.data, path, with_type=False)}"
                                   f": {unknown_layer_message(entry, blocks)}", layer=info)]
        return []
    if path not in broken:
        broken.add(path)
        return [doc.diagnostic(path, f"{entry_label(doc.data, path, with_type=False)}"
                               ": a layer entry is 'Type' or a mapping such as "
                               "{Conv2d: {...}, name: conv1}", layer=info)]
    return []


def _check_entry_types(
    doc: Document, path: tuple, entry: dict, types: list[str], label: str, info: dict,
    broken: set[tuple], blocks: list[str],
) -> list[Diagnostic]:
    """A mapping entry holds exactly one known layer type or block, or is a group."""
    out: list[Diagnostic] = []
    unknown = [t for t in types if t not in REGISTRY and t not in blocks]
    for t in unknown:
        out.append(
            doc.diagnostic(
                path + (t,),
                f"{entry_label(doc.data, path, with_type=False)}: "
                f"{unknown_layer_message(t, blocks)}",
                at_key=True,
                layer=info,
            )
        )
    group = "layers" in entry or "branches" in entry
    if "first" in entry and "repeat" not in entry:  # nothing would read it
        out.append(doc.diagnostic(path + ("first",), f"{label}: first: sets arguments of "
                                  "the first copy of a repeat, and this entry has no "
                                  "repeat:", at_key=True, layer=info))
    if len(types) > 1:
        out.append(
            doc.diagnostic(
                path,
                f"{label}: an entry holds one layer, found {' and '.join(types)}; write each "
                "as its own list item",
                layer=info,
            )
        )
    elif group and types:
        out.append(
            doc.diagnostic(
                path,
                f"{label}: an entry is a layer or a group (layers: [...] or branches: "
                "[...]), not both",
                layer=info,
            )
        )
    elif "repeat" in entry and "branches" in entry:
        out.append(doc.diagnostic(path + ("repeat",), f"{label}: repeat: runs copies in a "
                                  "chain, each on the one tensor the copy before gives, and "
                                  "branches give several; repeat an entry inside a branch "
                                  "instead", at_key=True, layer=info))
    elif "layers" in entry and "branches" in entry:
        out.append(doc.diagnostic(path, f"{label}: an entry is a group of layers in a chain "
                                  "(layers: [...]) or side by side (branches: [...]), not both",
                                  layer=info))
    elif not types and not group and entry and path not in broken:
        out.append(
            doc.diagnostic(
                path,
                f"{label}: entry has no layer type (a CamelCase torch.nn name such as Conv2d)",
                layer=info,
            )
        )
    if unknown or (len(types) != 1 and not group) or (group and types) or \
            ("branches" in entry and ("layers" in entry or "repeat" in entry)):
        broken.add(path)
    return out


def name_problem(name: str, branching: bool = False) -> str | None:
    """Why an identifier cannot name a child module, or None.  ``branching``: the list is
    built as a torch.fx GraphModule, whose own attributes are taken too."""
    if keyword.iskeyword(name):
        return f"name '{name}' is a Python keyword"
    if name.startswith("_"):
        return (
            f"name '{name}' starts with '_', which nn.Module keeps for its internals "
            "(_modules, _parameters, ...); choose another"
        )
    if keyword.issoftkeyword(name):
        return f"name '{name}' is a Python soft keyword; choose another"
    if name in MODULE_ATTRIBUTES:
        return f"name '{name}' is taken by nn.Module itself (nn.Module.{name}); choose another"
    if branching and name in GRAPH_MODULE_ATTRIBUTES:
        return (f"name '{name}' is taken by torch.fx.GraphModule (GraphModule.{name}): a list "
                "with from: or merge layers is built as one; choose another")
    if name == "self":
        return ("name 'self' would shadow forward's self in code written from the model "
                "(torch.fx, netspec codegen); choose another")
    if name == "input":
        return "name 'input' is reserved: from: input means the input of this list"
    return None


def _check_name(doc, path, name, label, info, seen, list_path, branching) -> list[Diagnostic]:
    name_path = path + ("name",)
    label = label.replace(f" '{name}'", "")
    message = name_problem(name.split(".")[0], branching)  # convs.3: its ModuleList's name
    if message is None and name in seen:
        first = seen[name]
        message = (
            f"name '{name}' is already used by layer {first} (line "
            f"{doc.where(list_path + (first,))[0]}); layer names must be unique"
        )
    elif message is None:
        seen[name] = path[-1]
        return []
    return [doc.diagnostic(name_path, f"{label}: {message}", layer=info)]


_entry_validator_cache: list = []


def validate_entry(doc: Document, path: tuple, entry: Any) -> list[Diagnostic]:
    """Check one block entry, its parameters substituted, against the layer schemas
    (block bodies are only checked structurally until a use gives the parameters)."""
    if not _entry_validator_cache:
        full = schema_module.load()
        _entry_validator_cache.append(_Schema({"$defs": full["$defs"], "$ref": "#/$defs/entry"}))
    if isinstance(entry, dict) and ("layers" in entry or "branches" in entry):
        # children: checked one by one
        entry = {k: v for k, v in entry.items() if k not in ("layers", "branches")}
    translate = _Translator(doc, overrides={tuple(path): entry})
    out: list[Diagnostic] = []
    for error in _entry_validator_cache[0].errors(entry):
        error.relative_path.extendleft(reversed(path))
        out.extend(translate(error))
    return out


_first_validators: dict[str, Any] = {}


def validate_first(doc: Document, path: tuple, type_name: str, first: dict) -> list[Diagnostic]:
    """first: of a repeated layer (parameters substituted in a block body): argument names
    of ``type_name`` with values of their types.  Nothing is required here: the repeated
    entry gives the rest."""
    if type_name not in _first_validators:
        keywords = schema_module.layer_schema(REGISTRY[type_name])["allOf"][0]["then"]
        _first_validators[type_name] = _Schema(
            {k: v for k, v in keywords.items() if k != "required"}
        )
    translate = _Translator(doc)
    prefix = translate.layer_context(path + ("first",))[0]  # 'layer 0 (Conv2d): '
    out: list[Diagnostic] = []
    for error in _first_validators[type_name].errors(first):
        error.relative_path.extendleft(reversed(path + ("first",)))
        out.extend(
            replace(d, message=prefix + "first: " + d.message.removeprefix(prefix))
            for d in translate(error)
        )
    return out
