"""Stage 2, validate: the JSON Schema plus the checks a schema cannot say, as positioned,
readable diagnostics (jsonschema's own messages are for machines)."""

from __future__ import annotations

import json
import keyword
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, validators

from . import schema as schema_module
from .errors import Diagnostic, did_you_mean
from .layers import REGISTRY
from .loader import Document

# A YAML 2.0 or true is not an integer here (jsonschema counts 2.0 as one by default).
_types = Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda checker, v: isinstance(v, int) and not isinstance(v, bool))
_Validator = validators.extend(Draft202012Validator, type_checker=_types)

TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string",
              "boolean": "true or false", "array": "a list", "object": "a mapping",
              "null": "null"}
TOP_KEYS = ("netspec", "name", "input", "layers")

# Attributes every nn.Module has: a child with one of these names cannot be added
# (PyTorch raises KeyError "attribute ... already exists").  tests/test_names.py keeps this
# list equal to dir(torch.nn.Sequential) so it cannot drift.
MODULE_ATTRIBUTES = frozenset("""
T_destination call_super_init dump_patches extra_repr forward training append extend insert pop
add_module apply bfloat16 buffers children compile cpu cuda double eval float get_buffer
get_extra_state get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
named_children named_modules named_parameters parameters register_backward_hook register_buffer
register_forward_hook register_forward_pre_hook register_full_backward_hook
register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter
register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
set_submodule share_memory state_dict to to_empty train type xpu zero_grad
""".split())


_validator_cache: list = []


def _validator() -> Any:
    if not _validator_cache:
        _validator_cache.append(_Validator(schema_module.load()))
    return _validator_cache[0]


def describe_value(value: Any, raw: str | None) -> str:
    shown = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    if raw is not None and raw != shown and isinstance(value, (bool, type(None), float)):
        return f"'{raw}' (YAML reads it as {shown})"
    return shown


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def layer_label(index: int, name: str | None, type_name: str | None) -> str:
    """'layer 6 'fc1' (Linear)' or 'layer 6 (Linear)'."""
    label = f"layer {index}"
    if name is not None and name != str(index):
        label += f" '{name}'"
    if type_name:
        label += f" ({type_name})"
    return label


def layer_info(index: int, name: str | None, type_name: str | None) -> dict[str, Any]:
    return {"index": index, "name": name if name is not None else str(index), "type": type_name}


def entry_type(entry: Any) -> str | None:
    """The layer type an entry names (None when it names none or several)."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        types = [k for k in entry if isinstance(k, str) and k not in schema_module.ENTRY_KEYS]
        if len(types) == 1:
            return types[0]
    return None


class _Translator:
    """jsonschema ValidationError -> Diagnostic with a message a person can act on."""

    def __init__(self, doc: Document):
        self.doc = doc
        layers = doc.data.get("layers") if isinstance(doc.data, dict) else None
        self.layers = layers if isinstance(layers, list) else []

    def layer_context(self, path: tuple) -> tuple[str, dict | None, str | None, str | None]:
        """(prefix, layer info, type name, argument name) for a path into layers."""
        if len(path) < 2 or path[0] != "layers" or not isinstance(path[1], int):
            return "", None, None, None
        index = path[1]
        entry = self.layers[index] if index < len(self.layers) else None
        type_name = entry_type(entry)
        name = entry.get("name") if isinstance(entry, dict) else None
        name = name if isinstance(name, str) else None
        known = type_name if type_name in REGISTRY else None
        arg = None
        if len(path) >= 4 and path[2] == type_name and known:
            key = path[3]
            if isinstance(key, int):
                positional = REGISTRY[known].positional
                arg = positional[key].name if key < len(positional) else None
            else:
                arg = key
        elif len(path) == 3 and path[2] == type_name and known and not isinstance(
                entry[type_name], (dict, list)):
            arg = REGISTRY[known].positional[0].name if REGISTRY[known].positional else None
        return (layer_label(index, name, known) + ": ", layer_info(index, name, known),
                known, arg)

    def what(self, path: tuple, arg: str | None) -> str:
        if arg is not None:
            # the argument itself, or an item of a list argument
            depth_of_arg = 4 if len(path) >= 4 else 3
            extra = "".join(f"[{p}]" for p in path[depth_of_arg:])
            return arg + extra
        if path[:1] == ("input",):
            return "input" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[1:])
        if path and path[-1] == "name":
            return "name"
        if path == ("layers",):
            return "layers"
        if path and path[0] == "layers" and len(path) == 2:
            return "layer entry"
        return ".".join(str(p) for p in path) or "the spec"

    def expected(self, type_name: str | None, arg: str | None, path: tuple, schema: dict) -> str:
        if type_name and arg and arg in REGISTRY[type_name].arg_by_name:
            depth_of_arg = 4 if len(path) >= 4 else 3
            if len(path) <= depth_of_arg:
                return REGISTRY[type_name].arg_by_name[arg].type.describe
        types = schema.get("type")
        types = [types] if isinstance(types, str) else types or []
        return " or ".join(TYPE_WORDS.get(t, t) for t in types)

    def __call__(self, error: Any) -> list[Diagnostic]:
        path = tuple(error.absolute_path)
        prefix, info, type_name, arg = self.layer_context(path)
        kind, value, inst = error.validator, error.validator_value, error.instance
        raw = self.doc.raw.get(path)
        what = self.what(path, arg)
        here = lambda msg, at_key=False, p=path: self.doc.diagnostic(  # noqa: E731
            p, prefix + msg, layer=info, at_key=at_key)

        if kind == "type":
            if path == ():
                return [here("a spec must be a mapping with the keys netspec, input and layers, "
                             f"got {TYPE_WORDS.get(type(inst).__name__, 'a ' + type(inst).__name__)}"
                             if not isinstance(inst, list) else
                             "a spec must be a mapping with the keys netspec, input and layers, "
                             "got a list")]
            return [here(f"{what} must be {self.expected(type_name, arg, path, error.schema)}, "
                         f"got {describe_value(inst, raw)}")]
        if kind == "minimum":
            return [here(f"{what} must be at least {value}, got {describe_value(inst, raw)}")]
        if kind == "maximum":
            return [here(f"{what} {inst:,} is absurdly large (at most {value:,})")]
        if kind == "exclusiveMinimum":
            return [here(f"{what} must be greater than {value}, got {describe_value(inst, raw)}")]
        if kind in ("minItems", "maxItems"):
            return self.items_count(error, here, what, type_name, path, inst)
        if kind == "items" and value is False:
            return self.items_count(error, here, what, type_name, path, inst)
        if kind == "enum":
            return [self.enum(here, what, path, value, inst, raw)]
        if kind == "pattern":
            if what.endswith("name"):
                return [here(f"{what} {json.dumps(inst, ensure_ascii=False)} is not a Python "
                             "identifier (ASCII letters, digits and _, not starting with a digit)")]
            choices = ["same", "valid"]
            return [here(f"{what} must be 'same' or 'valid' when it is a string, got "
                         f"{json.dumps(inst)}{did_you_mean(str(inst), choices)}")]
        if kind == "additionalProperties":
            return self.unknown_keys(error, here, path, type_name, inst)
        if kind == "required":
            missing = [k for k in value if isinstance(inst, dict) and k not in inst]
            if path == ():
                return [here(f"missing '{k}': a spec needs netspec, input and layers")
                        for k in missing]
            if path == ("input",):
                return [here("input mapping needs 'shape', e.g. {shape: [128], dtype: int64}")]
            return [here(f"missing required argument '{k}'") for k in missing]
        if kind == "minProperties":
            return [here("empty layer entry: write a layer type such as ReLU or Conv2d: {...}")]
        if kind is None or value is False or error.schema is False:
            return [here(f"{type_name or 'this layer'} takes no arguments, got "
                         f"{describe_value(inst, raw)}")]
        return [here(error.message)]  # pragma: no cover - every keyword the schema uses is above

    def items_count(self, error, here, what, type_name, path, inst) -> list[Diagnostic]:
        if type_name and len(path) == 3:  # the positional list of a layer
            names = [a.name for a in REGISTRY[type_name].positional]
            if len(inst) > len(names):
                hint = ""
                if len(names) == 1:
                    hint = (f"; to give {names[0]} as a list write {{{names[0]}: "
                            f"{json.dumps(inst)}}}")
                return [here(f"{type_name} takes at most {len(names)} positional arguments "
                             f"({', '.join(names)}), got {len(inst)}{hint}")]
            needed = error.validator_value if error.validator == "minItems" else len(names)
            return [here(f"{type_name} needs at least {needed} positional arguments "
                         f"({', '.join(names[:needed])}), got {len(inst)}")]
        schema = error.schema
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        if lo == hi:
            count = f"exactly {lo} entries"
        elif error.validator == "minItems":
            count = f"at least {lo} entr{'y' if lo == 1 else 'ies'}"
        else:
            count = f"at most {hi} entries"
        return [here(f"{what} must have {count}, got {len(inst)}")]

    def enum(self, here, what, path, value, inst, raw) -> Diagnostic:
        if path == ("netspec",):
            return here(f"unsupported netspec version {describe_value(inst, raw)}; this netspec "
                        f"reads version {schema_module.VERSION}")
        if path[:1] == ("layers",) and len(path) == 2:
            return here(f"unknown layer '{inst}'{did_you_mean(str(inst), sorted(REGISTRY))}")
        choices = [v for v in value if v is not None]
        suggestion = did_you_mean(str(inst), [str(c) for c in choices]) if isinstance(
            inst, str) else ""
        return here(f"{what} must be one of {', '.join(json.dumps(c) for c in choices)}, got "
                    f"{describe_value(inst, raw)}{suggestion}")

    def unknown_keys(self, error, here, path, type_name, inst) -> list[Diagnostic]:
        allowed = list(error.schema.get("properties", {}))
        out = []
        for key in inst:
            if key in allowed:
                continue
            key_path = path + (key,)
            if path == ():
                msg = f"unknown top-level key '{key}'{did_you_mean(str(key), list(TOP_KEYS))}"
            elif path == ("input",):
                msg = f"unknown key '{key}' in input{did_you_mean(str(key), ['shape', 'dtype'])}"
            elif len(path) == 2 and path[0] == "layers":
                if key in schema_module.RESERVED_KEYS:
                    msg = (f"'{key}' is reserved for branching networks, which spec version "
                           f"{schema_module.VERSION} does not have")
                elif str(key)[:1].isupper():
                    msg = f"unknown layer '{key}'{did_you_mean(str(key), sorted(REGISTRY))}"
                else:
                    msg = (f"unknown key '{key}' in a layer entry"
                           f"{did_you_mean(str(key), list(schema_module.ENTRY_KEYS))}; layer "
                           "types are CamelCase, as in torch.nn")
                out.append(self.doc.diagnostic(key_path, msg, at_key=True,
                                               layer=layer_info(path[1], None, None)))
                continue
            elif type_name:
                msg = (f"unknown argument '{key}' for {type_name}"
                       f"{did_you_mean(str(key), allowed)}")
            else:
                msg = f"unknown key '{key}'"
            out.append(here(msg, at_key=True, p=key_path))
        return out


@dataclass
class Validation:
    diagnostics: list[Diagnostic]
    broken: set[int]  # layers whose entry or arguments are invalid: not resolvable
    fatal: bool  # the spec as a whole (input, layers list, ...) is invalid: nothing to infer


def validate(doc: Document) -> Validation:
    """Schema errors, then the semantic checks on names and entries."""
    translate = _Translator(doc)
    diagnostics: list[Diagnostic] = []
    broken: set[int] = set()
    fatal = False
    for error in _validator().iter_errors(doc.data):
        path = tuple(error.absolute_path)
        if len(path) >= 2 and path[0] == "layers" and isinstance(path[1], int):
            # a bad 'name' is reported but does not stop the shapes flowing through
            if path[2:] != ("name",):
                broken.add(path[1])
        else:
            fatal = True
        diagnostics.extend(translate(error))
    if isinstance(doc.data, dict) and isinstance(doc.data.get("layers"), list):
        diagnostics.extend(_check_entries(doc, doc.data["layers"], broken))
    diagnostics.sort(key=lambda d: (d.line, d.col))
    return Validation(diagnostics, broken, fatal)


def _check_entries(doc: Document, layers: list, broken: set[int]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(layers):
        if not isinstance(entry, dict):
            continue
        types = [k for k in entry if isinstance(k, str) and k[:1].isupper()]
        name = entry.get("name")
        label = layer_label(index, name if isinstance(name, str) else None,
                            types[0] if len(types) == 1 else None)
        info = layer_info(index, name if isinstance(name, str) else None,
                          types[0] if len(types) == 1 else None)
        if len(types) != 1:
            broken.add(index)
        if len(types) > 1:
            out.append(doc.diagnostic(("layers", index), f"{label}: an entry holds one layer, "
                                      f"found {' and '.join(types)}; write each as its own list "
                                      "item", layer=info))
        elif not types and entry:
            out.append(doc.diagnostic(("layers", index), f"{label}: entry has no layer type "
                                      "(a CamelCase torch.nn name such as Conv2d)", layer=info))
        if isinstance(name, str) and name.isidentifier():
            path = ("layers", index, "name")
            if keyword.iskeyword(name) or keyword.issoftkeyword(name):
                out.append(doc.diagnostic(path, f"{label}: name '{name}' is a Python keyword",
                                          layer=info))
            elif name in MODULE_ATTRIBUTES:
                out.append(doc.diagnostic(path, f"{label}: name '{name}' is taken by nn.Module "
                                          f"itself (nn.Module.{name}); choose another", layer=info))
            elif name in seen:
                out.append(doc.diagnostic(path, f"{label}: duplicate name '{name}' (also layer "
                                          f"{seen[name]})", layer=info))
            else:
                seen[name] = index
    return out
