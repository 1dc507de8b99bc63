"""netspec's JSON Schema compiled once into plain Python checks that answer one question:
is this document valid?  The answer is jsonschema's (Draft 2020-12, as netspec configures it
in validate.py), without importing jsonschema, which costs more start-up than the rest of
`netspec check`.  Only a document that fails here goes on to jsonschema for its messages.

Exactly the keywords netspec's schema uses are compiled; any other raises
UnsupportedSchema at compile time, so a new keyword can never be silently accepted.
netspec's two departures from jsonschema's defaults hold here too: an integer is an int
and not a bool (2.0 is not an integer), and a `pattern` ending in `$` means the end of the
string (ECMA-262), not "before a final newline" as in Python.

Checks run in jsonschema's order and stop where its is_valid stops, so a document on which
jsonschema would raise (a pattern over a non-string key) raises here too; the compiled
check then answers False and the slow path reproduces today's behaviour."""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Check = Callable[[Any], bool]

# Keywords that say nothing about validity (then/else are read by `if`; $defs by $ref).
ANNOTATIONS = frozenset(
    {"$schema", "$comment", "$defs", "title", "description", "default", "examples",
     "deprecated", "readOnly", "writeOnly", "then", "else"}
)


class UnsupportedSchema(ValueError):
    """The schema uses something this compiler does not reproduce exactly."""


def ecma_pattern(pattern: str) -> str:
    """JSON Schema's final `$` (the end of the string) in Python's terms: Python's `$`
    also matches before a final newline, which let "conv1\\n" pass."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + r"\Z"
    return pattern


def compile_schema(schema: dict | bool, lazy: bool = False) -> Check:
    """``check(instance) -> bool``: jsonschema's verdict on ``instance``.  Compile once
    and keep the result.

    ``lazy``: compile a property's subschema (netspec's are mostly one per layer type) when
    a document first has that property; compiling all of netspec's schema costs as much as
    a bare Python start-up.  A keyword not compiled then raises inside the check, which
    answers False (never a silent pass); the tests compile the schema eagerly."""
    check = _Compiler(schema, lazy).compile(schema)

    def is_valid(instance: Any) -> bool:
        try:
            return check(instance)
        except Exception:  # jsonschema raises here too (TypeError, RecursionError): not valid
            return False

    return is_valid


def _true(instance: Any) -> bool:
    return True


def _false(instance: Any) -> bool:
    return False


def _is_number(value: Any) -> bool:
    kind = type(value)
    if kind is int or kind is float:  # the common case, before the slower ABC check
        return True
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


TYPES: dict[str, Check] = {
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "integer": _is_integer,
    "null": lambda v: v is None,
    "number": _is_number,
    "object": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
}


def json_equal(one: Any, two: Any) -> bool:
    """jsonschema's `equal` (enum, const): true is not 1, lists and mappings compare
    item by item with the same rule."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return one == two
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(json_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(
            key in two and json_equal(value, two[key]) for key, value in one.items()
        )
    if isinstance(one, bool) or isinstance(two, bool):
        return isinstance(one, bool) and isinstance(two, bool) and one == two
    return one == two


def _all(checks: list[Check]) -> Check:
    """Every check in order, stopping at the first that fails (as is_valid does)."""
    if not checks:
        return _true
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)

    def check(v: Any) -> bool:
        for each in checks:
            if not each(v):
                return False
        return True

    return check


class _Compiler:
    def __init__(self, root: dict | bool, lazy: bool):
        self.root = root
        self.lazy = lazy
        self.refs: dict[str, Check] = {}
        self.done: dict[int, Check] = {}  # by id: a schema built in memory shares subschemas

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _true
        if schema is False:
            return _false
        if not isinstance(schema, dict):
            raise UnsupportedSchema(f"a schema must be a mapping or a boolean: {schema!r}")
        if id(schema) not in self.done:
            checks = []
            for keyword, value in schema.items():
                if keyword in ANNOTATIONS:
                    continue
                make = self.ref if keyword == "$ref" else getattr(self, f"k_{keyword}", None)
                if make is None:
                    raise UnsupportedSchema(f"keyword {keyword!r} is not compiled")
                checks.append(make(value, schema))
            self.done[id(schema)] = _all([c for c in checks if c is not _true])
        return self.done[id(schema)]

    # --- type and value -------------------------------------------------------------

    def k_type(self, types: Any, schema: dict) -> Check:
        names = [types] if isinstance(types, str) else list(types)
        unknown = [t for t in names if t not in TYPES]
        if unknown:
            raise UnsupportedSchema(f"unknown type {unknown[0]!r}")
        if len(names) == 1:
            return TYPES[names[0]]
        if len(names) == 2:
            first, second = (TYPES[t] for t in names)
            return lambda v: first(v) or second(v)
        checks = [TYPES[t] for t in names]
        return lambda v: any(each(v) for each in checks)

    def k_enum(self, values: list, schema: dict) -> Check:
        if values and all(isinstance(each, str) for each in values):
            strings = frozenset(values)  # `equal` of a string and a string is ==
            return lambda v: (v in strings) if isinstance(v, str) else any(
                json_equal(each, v) for each in values
            )
        return lambda v: any(json_equal(each, v) for each in values)

    def k_const(self, value: Any, schema: dict) -> Check:
        return lambda v: json_equal(v, value)

    def k_minimum(self, bound: Any, schema: dict) -> Check:
        return lambda v: not _is_number(v) or not v < bound

    def k_maximum(self, bound: Any, schema: dict) -> Check:
        return lambda v: not _is_number(v) or not v > bound

    def k_exclusiveMinimum(self, bound: Any, schema: dict) -> Check:
        return lambda v: not _is_number(v) or not v <= bound

    def k_exclusiveMaximum(self, bound: Any, schema: dict) -> Check:
        return lambda v: not _is_number(v) or not v >= bound

    def k_pattern(self, pattern: str, schema: dict) -> Check:
        search = re.compile(ecma_pattern(pattern)).search
        return lambda v: not isinstance(v, str) or search(v) is not None

    def k_minLength(self, n: int, schema: dict) -> Check:
        return lambda v: not isinstance(v, str) or len(v) >= n

    def k_maxLength(self, n: int, schema: dict) -> Check:
        return lambda v: not isinstance(v, str) or len(v) <= n

    # --- arrays ---------------------------------------------------------------------

    def k_items(self, items: Any, schema: dict) -> Check:
        prefix = len(schema.get("prefixItems", []))
        if items is True:
            return _true
        if items is False:
            return lambda v: not isinstance(v, list) or len(v) <= prefix
        if not isinstance(items, dict):
            raise UnsupportedSchema("2020-12 'items' is one schema, not a list")
        item = self.compile(items)

        def check(v: Any) -> bool:
            if isinstance(v, list):
                for index in range(prefix, len(v)):
                    if not item(v[index]):
                        return False
            return True

        return check

    def k_prefixItems(self, schemas: list, schema: dict) -> Check:
        checks = [self.compile(each) for each in schemas]

        def check(v: Any) -> bool:
            if isinstance(v, list):
                for value, each in zip(v, checks, strict=False):
                    if not each(value):
                        return False
            return True

        return check

    def k_minItems(self, n: int, schema: dict) -> Check:
        return lambda v: not isinstance(v, list) or len(v) >= n

    def k_maxItems(self, n: int, schema: dict) -> Check:
        return lambda v: not isinstance(v, list) or len(v) <= n

    # --- objects --------------------------------------------------------------------

    def k_properties(self, properties: dict, schema: dict) -> Check:
        names = list(properties)
        order = {name: i for i, name in enumerate(names)}
        subschemas = list(properties.values())
        checks: list[Check | None] = [None] * len(names)
        if not self.lazy:
            checks = [self.compile(each) for each in subschemas]

        def check(v: Any) -> bool:
            if isinstance(v, dict):
                # the properties present, in the schema's order (jsonschema's)
                for i in sorted(order[k] for k in v if k in order):
                    each = checks[i]
                    if each is None:
                        each = checks[i] = self.compile(subschemas[i])
                    if not each(v[names[i]]):
                        return False
            return True

        return check

    def k_patternProperties(self, patterns: dict, schema: dict) -> Check:
        # plain re.search, as jsonschema does here (only `pattern` is netspec's own)
        checks = [(re.compile(p).search, self.compile(each)) for p, each in patterns.items()]

        def check(v: Any) -> bool:
            if isinstance(v, dict):
                for search, each in checks:
                    for key, value in v.items():
                        if search(key) and not each(value):
                            return False
            return True

        return check

    def k_additionalProperties(self, extra: Any, schema: dict) -> Check:
        known = schema.get("properties", {})
        joined = "|".join(schema.get("patternProperties", {}))
        search = re.compile(joined).search if joined else None
        if extra is not True and extra is not False and not isinstance(extra, dict):
            raise UnsupportedSchema(f"additionalProperties: {extra!r}")
        each = self.compile(extra)

        def check(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            # computed in full whatever `extra` is, as jsonschema does (it may raise)
            extras = {k for k in v if k not in known and not (search and search(k))}
            if extra is False:
                return not extras
            return all(each(v[k]) for k in extras)

        return check

    def k_propertyNames(self, names: Any, schema: dict) -> Check:
        each = self.compile(names)
        return lambda v: not isinstance(v, dict) or all(each(k) for k in v)

    def k_required(self, names: list, schema: dict) -> Check:
        return lambda v: not isinstance(v, dict) or all(name in v for name in names)

    def k_minProperties(self, n: int, schema: dict) -> Check:
        return lambda v: not isinstance(v, dict) or len(v) >= n

    def k_maxProperties(self, n: int, schema: dict) -> Check:
        return lambda v: not isinstance(v, dict) or len(v) <= n

    # --- combinators ----------------------------------------------------------------

    def k_allOf(self, schemas: list, schema: dict) -> Check:
        return _all([self.compile(each) for each in schemas])

    def k_not(self, inner: Any, schema: dict) -> Check:
        each = self.compile(inner)
        return lambda v: not each(v)

    def k_if(self, condition: Any, schema: dict) -> Check:
        test = self.compile(condition)
        then = self.compile(schema.get("then", True))
        otherwise = self.compile(schema.get("else", True))
        return lambda v: then(v) if test(v) else otherwise(v)

    def ref(self, ref: str, schema: dict) -> Check:
        if ref not in self.refs:
            cell: list[Check] = []
            self.refs[ref] = lambda v: cell[0](v)  # filled below; refs may recurse
            cell.append(self.compile(self.resolve(ref)))
        return self.refs[ref]

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise UnsupportedSchema(f"only local references are compiled: {ref!r}")
        from urllib.parse import unquote

        node = self.root
        for part in filter(None, unquote(ref[1:]).split("/")):
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and part.isdigit():
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise UnsupportedSchema(f"unresolvable reference {ref!r}")
        return node
