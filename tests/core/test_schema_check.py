"""The compiled schema check (netspec/schema_check.py) gives jsonschema's verdict, as netspec
configures jsonschema, on every spec, every layer entry, drawn documents and fuzz mutants;
and `check` of a valid spec does not import jsonschema at all (issue 11, part 6)."""

from __future__ import annotations

import copy
import json
import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from netspec.core.diagnostics import SpecError
from netspec.core.document import load_text
from netspec.core.schema_check import UnsupportedSchema, compile_schema
from netspec.ops import REGISTRY
from netspec.ops.declare import REQUIRED
from netspec.pipeline import schema as schema_module
from netspec.pipeline.validate import validator_class

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILES = sorted(ROOT.glob("specs/**/*.yaml"))
SCHEMA = schema_module.load()
ENTRY_SCHEMA = {"$defs": SCHEMA["$defs"], "$ref": "#/$defs/entry"}  # as validate_entry


def first_schema(type_name: str) -> dict:
    """As validate_first: the mapping form of a layer's arguments, none required."""
    keywords = schema_module.layer_schema(REGISTRY[type_name])["allOf"][0]["then"]
    return {k: v for k, v in keywords.items() if k != "required"}


class Both:
    """One schema compiled eagerly and lazily, and jsonschema's validator for it."""

    def __init__(self, schema: dict):
        self.eager = compile_schema(schema)
        self.lazy = compile_schema(schema, lazy=True)
        self.slow = validator_class()(schema)
        self.seen = {True: 0, False: 0, "raises": 0}

    def agree(self, instance: Any) -> bool:
        try:
            expected = self.slow.is_valid(instance)
        except Exception:  # jsonschema crashes: the fast path must hand it back to jsonschema
            self.seen["raises"] += 1
            expected = False
        else:
            self.seen[expected] += 1
        assert self.eager(instance) is expected, (expected, instance)
        assert self.lazy(instance) is expected, (expected, instance)
        return expected


DOCUMENT = Both(SCHEMA)
ENTRY = Both(ENTRY_SCHEMA)
FIRST: dict[str, Both] = {}


def first_both(type_name: str) -> Both:
    if type_name not in FIRST:
        FIRST[type_name] = Both(first_schema(type_name))
    return FIRST[type_name]


def entries_of(data: Any) -> list[Any]:
    """Every layer entry: the top-level list, block bodies, groups, as deep as they go."""
    found: list[Any] = []

    def walk(entries: Any) -> None:
        if not isinstance(entries, list):
            return
        for entry in entries:
            found.append(entry)
            if isinstance(entry, dict):
                walk(entry.get("layers"))

    if isinstance(data, dict):
        walk(data.get("layers"))
        blocks = data.get("blocks")
        if isinstance(blocks, dict):
            for body in blocks.values():
                if isinstance(body, dict):
                    walk(body.get("layers"))
    return found


def agree_everywhere(data: Any, most: int | None = None) -> None:
    """The document, each entry (with and without its group's children, as validate_entry
    sees it) and each first: against the type it repeats; ``most``: a sample of entries."""
    DOCUMENT.agree(data)
    entries = entries_of(data)
    if most is not None and len(entries) > most:
        entries = random.Random(len(entries)).sample(entries, most)
    for entry in entries:
        ENTRY.agree(entry)
        if isinstance(entry, dict):
            if "layers" in entry:
                ENTRY.agree({k: v for k, v in entry.items() if k != "layers"})
            types = [k for k in entry if isinstance(k, str) and k in REGISTRY]
            if len(types) == 1 and "first" in entry:
                first_both(types[0]).agree(entry["first"])


def loaded(text: str, file: str = "<spec>") -> Any:
    """What validate sees (the loader's data; None when the loader refuses the text)."""
    try:
        return load_text(text, file).data
    except SpecError:
        return None


# ------------------------------------------------------------------ the schema compiles


def test_every_keyword_netspec_uses_is_compiled():
    compile_schema(SCHEMA)  # eagerly: an unknown keyword raises here
    compile_schema(schema_module.generate())
    compile_schema(ENTRY_SCHEMA)
    for type_name in REGISTRY:
        compile_schema(first_schema(type_name))


@pytest.mark.parametrize(
    "schema",
    [
        {"anyOf": [{"type": "integer"}]},
        {"format": "email"},
        {"$id": "https://example.com/x"},
        {"$ref": "https://example.com/x"},
        {"$ref": "#/$defs/missing"},
        {"type": "decimal"},
        {"items": [{"type": "integer"}]},
        {"properties": {"a": {"uniqueItems": True}}},
    ],
)
def test_an_unknown_keyword_raises_when_compiled(schema):
    with pytest.raises(UnsupportedSchema):
        compile_schema(schema)


def test_lazily_compiled_unknown_keyword_never_passes():
    check = compile_schema({"properties": {"a": {"uniqueItems": True}}}, lazy=True)
    assert check({"b": [1, 1]})
    assert not check({"a": [1, 2]})  # the keyword cannot be checked: not valid, never a pass


# ------------------------------------------------------------------ specs and edge values


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_spec_gets_jsonschemas_verdict(path):
    text = path.read_text(encoding="utf-8")
    data = loaded(text, str(path))
    if data is not None:
        agree_everywhere(data)
    try:
        raw = yaml.safe_load(text)  # integer keys and all, which the loader refuses
    except yaml.YAMLError:
        return
    agree_everywhere(raw)


def test_specs_cover_both_verdicts():
    data = [d for d in (loaded(p.read_text(encoding="utf-8")) for p in SPEC_FILES) if d]
    verdicts = [DOCUMENT.agree(d) for d in data]
    assert verdicts.count(True) >= 20 and verdicts.count(False) >= 5, verdicts


BASE = {"netspec": 1, "name": "Net", "input": [3, 8, 8], "layers": [{"Conv2d": {}}]}


def with_entry(entry: Any) -> dict:
    return {**BASE, "layers": [entry]}


@pytest.mark.parametrize(
    "entry",
    [
        {"Conv2d": {"in_channels": 3, "out_channels": 8, "kernel_size": 3}},
        {"Conv2d": {"out_channels": 8, "kernel_size": True}},  # a bool is no integer
        {"Conv2d": {"out_channels": 8, "kernel_size": 2.0}},  # nor is 2.0, here
        {"Conv2d": {"out_channels": 8, "kernel_size": [3, 3]}},
        {"Conv2d": {"out_channels": 8, "kernel_size": []}},
        {"Conv2d": {"out_channels": 8, "kernel_size": 3, "padding": "same"}},
        {"Conv2d": {"out_channels": 8, "kernel_size": 3, "padding": "same\n"}},
        {"Conv2d": [3, 8, 3]},
        {"Conv2d": [3, 8, 3, 1, 0, 1, 1, True, "zeros", None, None, None]},
        {"Dropout": math.nan},
        {"Dropout": math.inf},
        {"Dropout": 0.5},
        {"Dropout": 1},
        {"LeakyReLU": {"negative_slope": -math.inf}},
        {"Linear": {"out_features": 2**31}},
        {"Linear": {"out_features": 2**31 - 1}},
        {"Linear": 10, "name": "fc1"},
        {"Linear": 10, "name": "fc1\n"},
        {"Linear": 10, "name": ""},
        {"Linear": 10, "repeat": 2.0},
        {"Linear": 10, "repeat": {"count": 3, "name": "x{n}"}},
        {"Linear": 10, "repeat": {"count": True}},
        {"Linear": 10, "from": ["a", "b\n"]},
        {"Linear": 10, "from": []},
        {"Linear": 10, "if": 1},
        {"Block": {"width": 3}},
        {"Block\n": {"width": 3}},
        {"layers": []},
        {"layers": [{"ReLU": None}], "name": "g"},
        {},
        "ReLU",
        "ReLU\n",
        "relu",
        3,
        {1: "ReLU"},  # jsonschema raises (a pattern over an integer key)
        {"ReLU": {}, 1: 2},
        {"ReLU": {1: 2}},
        {"Flatten": {"start_dim": -1, "end_dim": 1.5}},
    ],
    ids=repr,
)
def test_edge_values(entry):
    DOCUMENT.agree(with_entry(entry))
    ENTRY.agree(entry)


def test_a_crash_in_jsonschema_is_not_valid_here():
    with pytest.raises(TypeError):
        ENTRY.slow.is_valid({1: "ReLU"})
    assert ENTRY.eager({1: "ReLU"}) is False


def test_a_final_dollar_is_the_end_of_the_string():
    # both sides share ecma_pattern, so the meaning is pinned here on its own
    assert compile_schema({"pattern": "^a$"})("a") and not compile_schema({"pattern": "^a$"})("a\n")
    assert compile_schema({"pattern": "^a\\$"})("a$")
    for entry in ({"Linear": 10, "name": "fc1\n"}, {"Conv2d": [3, 8, 3, 1, "same\n"]}):
        assert DOCUMENT.agree(with_entry(entry)) is False


def test_enum_uses_json_equality():
    check = compile_schema({"enum": [1, "a", [1, {"b": False}]]})
    assert check(1) and check(1.0) and check("a") and check([1.0, {"b": False}])
    assert not check(True) and not check([True, {"b": False}]) and not check([1, {"b": 0}])
    assert not check("a\n")
    assert compile_schema({"const": False})(False) and not compile_schema({"const": False})(0)


def test_nesting_as_deep_as_the_loader_allows():
    entry: Any = {"ReLU": None}
    for _ in range(48):  # 2 YAML levels a group; the loader stops at 100
        entry = {"layers": [entry]}
    agree_everywhere(with_entry(entry))


# ------------------------------------------------------------------ drawn documents

IDENTIFIERS = ["conv1", "conv1\n", "Conv1", "_x", "1a", "", "a b", "é", "a.b:C", "a.b:C\n"]
AWKWARD = [
    True, False, 0, 1, -1, 2, 2.0, 0.5, -0.0, math.nan, math.inf, -math.inf, 2**31, 2**63,
    "", "a", "a\n", "same", "same\n", "valid", "Conv2d", None, [], {}, [1], [1, 2], [[1]],
    [True], {"a": 1}, {1: 2}, {"count": 2},
]


def harvest(node: Any, out: list) -> list:
    """Values taken from the schema itself: its enum members (and each with a trailing
    newline), its bounds and their neighbours, lists as long as its length limits."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "enum":
                out += value + [v + "\n" for v in value if isinstance(v, str)]
            elif key in ("minimum", "maximum", "exclusiveMinimum"):
                out += [value, value - 1, value + 1, float(value), value + 0.5]
            elif key in ("minItems", "maxItems") and value < 8:
                out += [[1] * value, [1] * (value + 1), [2.0] * value]
            harvest(value, out)
    elif isinstance(node, list):
        for value in node:
            harvest(value, out)
    return out


PIECES = harvest(SCHEMA, [])


def resolve(piece: Any) -> Any:
    while isinstance(piece, dict) and "$ref" in piece:
        piece = SCHEMA["$defs"][piece["$ref"].split("/")[-1]]
    return piece


class Draw:
    """A seeded source of choices; ``wild``: how often a value is pushed off its schema."""

    def __init__(self, rng: random.Random, wild: float | None = None):
        self.rng = rng
        self.wild = rng.choice([0.0, 0.0, 0.03, 0.1, 0.3]) if wild is None else wild

    def off(self) -> bool:
        return self.rng.random() < self.wild


def value_for(piece: Any, d: Draw, depth: int = 0) -> Any:
    """A value for a schema piece: one it might accept, or (``d.off()``) one just beside it."""
    rng = d.rng
    piece = resolve(piece)
    if depth > 4 or not isinstance(piece, dict) or d.off():
        return copy.deepcopy(rng.choice(AWKWARD + PIECES if rng.random() < 0.5 else AWKWARD))
    if "if" in piece:  # an entry: a bare 'Type', or a mapping
        branch = piece["then"] if rng.random() < 0.2 else piece.get("else", {})
        piece = {**{k: v for k, v in piece.items() if k not in ("if", "then", "else")},
                 **branch, "type": "string" if branch is piece["then"] else "object"}
    if "allOf" in piece and "type" not in piece:  # a layer's forms: mapping, list, scalar
        piece = rng.choice(piece["allOf"])["then"]
    if "enum" in piece and not d.off():
        return rng.choice(piece["enum"])
    types = piece.get("type", ["integer", "string", "array", "object"])
    kind = rng.choice([types] if isinstance(types, str) else types)
    if kind in ("integer", "number"):
        low, high = piece.get("minimum", -3), piece.get("maximum", 64)
        low = max(low, piece.get("exclusiveMinimum", low - 1) + 1)
        pick = rng.randint(low, min(high, low + 64)) if kind == "integer" else rng.uniform(
            low, min(high, low + 64))
        return rng.choice([low - 1, high + 1, float(pick), math.nan]) if d.off() else pick
    if kind == "string":
        if "pattern" in piece:
            good = ["conv1", "Conv1", "_x", "same", "valid", "ReLU", "Block", "a.b:C"]
            return rng.choice(IDENTIFIERS if d.off() else good)
        return rng.choice(["x", "same", "n * 2", "Block", "", "a\n"])
    if kind == "array":
        prefix = piece.get("prefixItems", [])
        low = piece.get("minItems", 0)
        high = piece.get("maxItems", max(low, len(prefix)) + 2)
        n = rng.choice([max(0, low - 1), high + 1]) if d.off() else rng.randint(low, high)
        items = piece.get("items", True)
        return [value_for(prefix[i] if i < len(prefix) else items, d, depth + 1)
                for i in range(n)]
    if kind == "object":
        return object_for(piece, d, depth)
    return {"boolean": rng.random() < 0.5, "null": None}.get(kind)


def object_for(piece: dict, d: Draw, depth: int) -> dict:
    rng = d.rng
    properties = piece.get("properties", {})
    required = piece.get("required", [])
    types = [k for k in properties if k[:1].isupper()]
    keys = [k for k in properties if k in required or rng.random() < 0.3]
    if len(types) > 12:  # an entry: one layer type and a few entry keys
        keys = [k for k in keys if k not in types and k != "layers"][:2] + [rng.choice(types)]
        if d.off():
            keys.append(rng.choice(["Block", "Unknown_key", "layers"]))
    out: dict[Any, Any] = {}
    for key in keys:
        if key in REGISTRY:
            out[key] = layer_arguments(key, d, depth)
        elif key in properties:
            out[key] = value_for(properties[key], d, depth + 1)
        else:
            out[key] = value_for(True, d, depth + 1)
    if d.off():
        out[rng.choice(["extra", 1, "Extra\n"])] = 1
    if out and d.off():
        del out[rng.choice(list(out))]
    return out


def layer_arguments(type_name: str, d: Draw, depth: int) -> Any:
    """A layer's arguments in one of its three forms, each value drawn from its ArgType."""
    layer = REGISTRY[type_name]
    form = d.rng.random()
    required = [a for a in layer.positional if a.default is REQUIRED]
    if form < 0.1:
        return None
    if form < 0.3 and layer.positional:
        return value_for(layer.positional[0].type.schema, d, depth + 1)
    if form < 0.45:
        count = d.rng.randint(len(required), len(layer.positional))
        if d.off():
            count = d.rng.randint(0, len(layer.positional) + 1)
        return [value_for(a.type.schema, d, depth + 1) for a in layer.positional[:count]]
    return {
        arg.name: value_for(arg.type.schema, d, depth + 1)
        for arg in layer.args
        if (arg.default is REQUIRED and not d.off()) or d.rng.random() < 0.3
    }


def document_for(d: Draw) -> Any:
    if d.rng.random() < 0.5:
        return value_for(SCHEMA, d)
    base = copy.deepcopy(d.rng.choice(SPEC_DATA))  # a real spec, one part redrawn
    lists = [e for e in [base.get("layers")] + [
        entry.get("layers") for entry in entries_of(base) if isinstance(entry, dict)]
        if isinstance(e, list)]
    if lists:
        target = d.rng.choice(lists)
        where = d.rng.randint(0, len(target))
        target[where:where] = [value_for(ENTRY_SCHEMA, d, 1)]
    return base


SPEC_DATA = [
    d for d in (loaded(p.read_text(encoding="utf-8")) for p in SPEC_FILES) if isinstance(d, dict)
]


@settings(max_examples=300)
@given(st.randoms(use_true_random=False))
def test_drawn_documents(rng):
    agree_everywhere(document_for(Draw(rng)))


@settings(max_examples=400)
@given(st.sampled_from(sorted(REGISTRY)), st.randoms(use_true_random=False))
def test_drawn_layer_arguments(type_name, rng):
    entry = {type_name: layer_arguments(type_name, Draw(rng), 0)}
    ENTRY.agree(entry)
    DOCUMENT.agree(with_entry(entry))
    if isinstance(entry[type_name], dict):
        first_both(type_name).agree(entry[type_name])


def test_drawing_reaches_both_verdicts():
    both = Both(SCHEMA)
    for seed in range(300):
        both.agree(document_for(Draw(random.Random(seed))))
    entries = Both(ENTRY_SCHEMA)
    for seed in range(600):
        rng = random.Random(seed)
        type_name = rng.choice(sorted(REGISTRY))
        entries.agree({type_name: layer_arguments(type_name, Draw(rng), 0)})
    for seen in (both.seen, entries.seen):
        assert seen[True] >= 0.1 * sum(seen.values()), seen
        assert seen[False] >= 0.1 * sum(seen.values()), seen


# ------------------------------------------------------------------ the fuzzer's mutants

fuzz_specs = pytest.importorskip("fuzz_specs") if (ROOT / "tests/fuzz_specs.py").exists() else None


@pytest.mark.skipif(fuzz_specs is None, reason="tests/fuzz_specs.py is not there")
@pytest.mark.parametrize("seed", [1, 2])
def test_fuzz_mutants(seed):
    for index in range(150):
        text = fuzz_specs.mutant(index, seed).text
        data = loaded(text)
        if data is not None:
            agree_everywhere(data, most=12)
        try:
            raw = yaml.safe_load(text)  # integer keys and all, which the loader refuses
        except (yaml.YAMLError, RecursionError, ValueError):
            continue
        DOCUMENT.agree(raw)


# ------------------------------------------------------------------ start-up

IMPORTED = """
import json
import sys
from netspec.cli import main
status = main(sys.argv[1:])
print(json.dumps(sorted(sys.modules)))
sys.exit(status)
"""


def modules_after(*argv: str) -> tuple[int, list[str]]:
    run = subprocess.run(
        [sys.executable, "-c", IMPORTED, *argv],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    return run.returncode, json.loads(run.stdout.strip().splitlines()[-1])


def test_check_of_a_valid_spec_does_not_import_jsonschema():
    status, modules = modules_after("check", "-q", "specs/vgg16.yaml")
    assert status == 0
    assert "netspec.pipeline.validate" in modules  # the check ran
    assert not [m for m in modules if m.split(".")[0] in ("jsonschema", "referencing", "torch")]


def test_check_of_an_invalid_spec_explains_with_jsonschema():
    status, modules = modules_after("check", "-q", "specs/broken/bad_name.yaml")
    assert status == 1
    assert "jsonschema" in modules
