"""The JSON Schema of a spec, generated from the layer registry.

``schemas/netspec.schema.json`` is this schema written out (``netspec schema --write``);
the validator reads that file, and a test keeps it equal to what the registry generates,
so editors, CI tools and netspec itself all use one schema.  The package ships it as
``netspec/schemas/netspec.schema.json`` (in a clone, ``netspec/schemas`` links to
``schemas/``; a wheel holds the file itself)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from netspec.ops import REGISTRY, LayerType
from netspec.ops.declare import MAX_DIM, REQUIRED

# resolved through the clone's link, so that messages name the file git tracks
SCHEMA_FILE = (Path(__file__).resolve().parents[1] / "schemas" / "netspec.schema.json").resolve()
VERSION = 1
DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32")
DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4}
IDENTIFIER = {
    "type": "string",
    "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
    "description": "a Python identifier (ASCII letters, digits, _)",
}
SHAPE = {
    "type": "array",
    "minItems": 1,
    "maxItems": 8,
    "items": {"type": "integer", "minimum": 1, "maximum": MAX_DIM},
    "description": "one sample's shape, batch dimension excluded",
}
IDENT_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$"
# an entry's name (netspec.core.names.MODULE_NAME): identifiers, '-' between them (block1-0)
# or one module of a ModuleList by its key path (convs.3, fuse_layers.1.0)
NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*(\\.(0|[1-9][0-9]*))*$"
# from: an entry's name, or one output of an entry that gives several (halves.0, lstm.h_n)
SOURCE_PATTERN = ("^[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*(\\.(0|[1-9][0-9]*))*"
                  "(\\.[A-Za-z0-9_]+)?$")
SOURCE_NAME = {
    "type": "string",
    "pattern": SOURCE_PATTERN,
    "description": "an earlier entry's name, or name.output for one of its outputs "
                   "(halves.0)",
}
# from: also takes an entry left unnamed, by its number as a string: '3' (a ModuleList's
# module taking the previous one's output besides another tensor), or one of its outputs: '3.0'
FROM_PATTERN = ("^([A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*"
                "(\\.(0|[1-9][0-9]*))*|0|[1-9][0-9]*)"
                "(\\.[A-Za-z0-9_]+)?$")
FROM_NAME = SOURCE_NAME | {"pattern": FROM_PATTERN}
ENTRY_NAME = {
    "type": "string",
    "pattern": NAME_PATTERN,
    "description": "a module name: a Python identifier, or identifiers joined by '-' "
                   "(block1-0); or a ModuleList's module by its key path (convs.3)",
}
TYPE_PATTERN = "^[A-Z][A-Za-z0-9_]*$"  # layer types and block names are CamelCase
# lowercase keys an entry may carry besides its layer type
ENTRY_KEYS = ("name", "from", "repeat", "first", "if", "layers", "branches", "tie", "inputs",
              "outputs")
RESERVED_KEYS: tuple[str, ...] = ()
MAX_REPEAT = 10_000
TARGET_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
# a block's or a group's named inputs and its outputs (forward(self, x, shortcut) -> a, b)
PORT_INPUTS = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "string", "pattern": IDENT_PATTERN},
    "description": "named inputs, forward's arguments in this order; the first flows into "
                   "the first entry, the others are taken by from:; the caller gives them "
                   "with from: [a, b]",
}
# an output of a body may be an entry it leaves unnamed, by its number (a backbone's stage 4)
PORT_SOURCE = SOURCE_NAME | {
    "pattern": FROM_PATTERN}
PORT_OUTPUTS = {
    "type": ["array", "object"],
    "minItems": 1,
    "minProperties": 1,
    "items": PORT_SOURCE,
    "propertyNames": {"pattern": IDENT_PATTERN},
    "additionalProperties": PORT_SOURCE,
    "description": "what its forward returns: entries of its layers (or inputs) by name, a "
                   "list (a tuple; one: the tensor itself) or key: name (a dict); the "
                   "caller takes one as from: name.0 or name.key",
}
MODULE_PATH = {"type": "string", "description": "a module path as in state_dict keys, e.g. "
               "classifier.6"}
EDIT = {
    "description": "one change to the base model: replace, insert_after, insert_before or "
    "append (each with with:), or delete",
    "type": "object",
    "properties": {
        "replace": MODULE_PATH,
        "insert_after": MODULE_PATH,
        "insert_before": MODULE_PATH,
        "append": MODULE_PATH | {"description": "a group's path, or '.' for the top level"},
        "delete": MODULE_PATH,
        "with": {"$ref": "#/$defs/entry"},
    },
    "minProperties": 1,
    "maxProperties": 2,
    "additionalProperties": False,
}


def layer_schema(lt: LayerType) -> dict[str, Any]:
    """Arguments as a mapping (keywords), a list (positional) or a scalar (first positional)."""
    keywords: dict[str, Any] = {
        "type": "object",
        "properties": {a.name: a.type.schema for a in lt.args},
        "additionalProperties": False,
    }
    required = [a.name for a in lt.args if a.required]
    if required:
        keywords["required"] = required
    positional = lt.positional
    # In the list form inferable arguments come first, as in PyTorch, and must be written.
    needed = max((i + 1 for i, a in enumerate(positional) if a.default is REQUIRED), default=0)
    array = {"type": "array", "items": False, "minItems": needed}
    if positional:  # an empty prefixItems is not valid JSON Schema (editors reject the file)
        array["prefixItems"] = [a.type.schema for a in positional]
    if lt.list_arg is not None:  # Permute: [0, 2, 1] is dims
        array = lt.list_arg.type.schema
    scalar = positional[0].type.schema if positional else False
    return {
        "description": lt.doc or f"torch.nn.{lt.name}",
        "allOf": [
            {"if": {"type": "object"}, "then": keywords},
            {"if": {"type": "array"}, "then": array},
            {"if": {"type": ["string", "number", "boolean"]}, "then": scalar},
        ],
    }


def entry_schema(layer_names: list[str]) -> dict[str, Any]:
    """One entry of a layers list: a layer, a block call, or a group of layers."""
    properties: dict[str, Any] = {
        "name": ENTRY_NAME,
        "from": {
            "type": ["string", "array"],
            "pattern": FROM_PATTERN,
            "items": FROM_NAME,
            "minItems": 1,
            "description": "input(s): earlier entries of this list by name (name.0 for one "
                           "output of an entry giving several), or 'input'",
        },
        "repeat": {
            "type": ["integer", "string", "object"],
            "minimum": 1,
            "maximum": MAX_REPEAT,
            "properties": {
                "count": {"type": ["integer", "string"], "minimum": 1, "maximum": MAX_REPEAT},
                "name": {"type": "string", "description": "child names, e.g. denselayer{n}"},
            },
            "required": ["count"],
            "additionalProperties": False,
            "description": "stack N copies as an nn.Sequential (children 0..N-1)",
        },
        "first": {"type": "object", "description": "arguments that differ in the first copy"},
        "tie": {
            "type": "object",
            "propertyNames": {"pattern": IDENT_PATTERN},
            "additionalProperties": {"type": "string", "pattern": SOURCE_PATTERN},
            "description": "parameters shared with an earlier entry's: {weight: embed.weight} "
                           "(a language model's head tied to its embedding)",
        },
        "if": {
            "type": ["boolean", "string"],
            "description": "keep this entry only when true (an expression over block parameters)",
        },
        "layers": {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/$defs/entry"},
            "description": "a group: these layers as an nn.Sequential child",
        },
        "branches": {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/$defs/entry"},
            "description": "entries side by side, each on this entry's input, as an "
                           "nn.ModuleList (children 0..N-1); gives N tensors: from: name.0, "
                           "or all of them to Concat (from: name)",
        },
        "inputs": PORT_INPUTS,
        "outputs": PORT_OUTPUTS,
    }
    properties.update({name: layer_schema(REGISTRY[name]) for name in layer_names})
    return {
        "description": "a layer 'Type', {Type: arguments, name: ...}, a block call, or a group",
        "type": ["string", "object"],
        "if": {"type": "string"},
        "then": {"pattern": TYPE_PATTERN},
        "else": {
            "minProperties": 1,
            "properties": properties,
            # block names are the user's: any other CamelCase key is checked against blocks:
            "patternProperties": {TYPE_PATTERN: {}},
            "additionalProperties": False,
        },
    }


def block_entry_schema() -> dict[str, Any]:
    """One entry of a block's body: an entry, except that a layer's arguments may be
    expressions over the block's parameters (checked, against the layer schemas, where the
    block is used and they have values)."""
    entry = entry_schema([])  # every CamelCase key: a layer or a block, its arguments open
    layers = entry["else"]["properties"]["layers"]
    entry["else"]["properties"]["layers"] = layers | {"items": {"$ref": "#/$defs/block_entry"}}
    branches = entry["else"]["properties"]["branches"]
    entry["else"]["properties"]["branches"] = branches | {
        "items": {"$ref": "#/$defs/block_entry"}}
    return entry


def generate() -> dict[str, Any]:
    layer_names = sorted(REGISTRY)
    block = {
        "type": "object",
        "required": ["layers"],
        "additionalProperties": False,
        "properties": {
            "description": {"type": "string"},
            "params": {
                "type": "object",
                "propertyNames": {"pattern": IDENT_PATTERN},
                "description": "parameter: default value, or 'required'",
            },
            "inputs": PORT_INPUTS,
            "outputs": PORT_OUTPUTS,
            "layers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/block_entry"}},
        },
    }
    one_input = {
        "type": ["array", "object"],
        **{k: v for k, v in SHAPE.items() if k != "type"},
        "properties": {"shape": SHAPE, "dtype": {"enum": list(DTYPES)}},
        "required": ["shape"],
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"netspec network spec, version {VERSION}",
        "type": "object",
        "required": ["netspec"],
        # input: unless the inputs are named; layers: unless they come from a base model
        # (netspec.edits) ('then' after 'required' in the sorted file: missing keys are
        # reported in order)
        "allOf": [{"if": {"not": {"required": ["inputs"]}}, "then": {"required": ["input"]}},
                  {"if": {"not": {"required": ["base"]}}, "then": {"required": ["layers"]}}],
        "additionalProperties": False,
        "$defs": {"entry": entry_schema(layer_names), "block_entry": block_entry_schema(),
                  "edit": EDIT},
        "properties": {
            "netspec": {"enum": [VERSION], "description": "spec format version"},
            "name": IDENTIFIER | {"description": "class name for generated code"},
            "input": one_input,
            "inputs": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": IDENT_PATTERN},
                "additionalProperties": one_input,
                "description": "named inputs, forward's arguments in this order: name: shape "
                               "or {shape, dtype}",
            },
            "outputs": {
                "type": ["array", "object"],
                "minItems": 1,
                "minProperties": 1,
                "items": SOURCE_NAME,
                "propertyNames": {"pattern": IDENT_PATTERN},
                "additionalProperties": {
                    "type": ["string", "object"],
                    "pattern": SOURCE_PATTERN,
                    "properties": {"from": SOURCE_NAME, "training_only": {"type": "boolean"}},
                    "required": ["from"],
                    "additionalProperties": False,
                },
                "description": "what forward returns: a list of entry names (a tuple), or "
                               "key: name (a dict); {from: name, training_only: true} is "
                               "computed and returned only in training",
            },
            "returns": {
                "enum": ["tuple", "dict", "namedtuple"],
                "description": "how several outputs are returned (default: a tuple for a "
                               "list of outputs, a dict for a mapping)",
            },
            "blocks": {
                "type": "object",
                "propertyNames": {"pattern": TYPE_PATTERN},
                "additionalProperties": block,
                "description": "reusable parametrised sub-networks, used like layers",
            },
            "layers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/entry"}},
            "train": {"type": "object", "description": "training configuration (netspec train)"},
            "base": {
                "type": "string",
                "pattern": TARGET_PATTERN,
                "description": "start from an existing model: module:callable, e.g. "
                "torchvision:vgg16 (imports it with torch)",
            },
            "base_kwargs": {"type": "object", "description": "keyword arguments for base"},
            "edits": {
                "type": "array",
                "items": {"$ref": "#/$defs/edit"},
                "description": "changes to the base model, applied in order",
            },
        },
    }


def dumps(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


@lru_cache(maxsize=1)
def load() -> dict[str, Any]:
    """The schema file the validator uses (generated in memory where it is not installed)."""
    if SCHEMA_FILE.is_file():
        return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return generate()  # pragma: no cover - only in a copy of the package without its schema
