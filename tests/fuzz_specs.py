"""The seeded mutation fuzzer: every spec under specs/ mutated structurally, and the
invariants every mutant must hold (issue 10, "Proof").

Mutant ``i`` of seed ``S`` comes from ``random.Random(f"{S}:{i}")`` alone, so any one of them
can be rebuilt and rerun by itself::

    NETSPEC_FUZZ_SEED=S .venv/bin/python -m tests.fuzz_specs I     # text, ops, verdict

Invariants, held through the Python API in process:

- ``netspec.check`` on the mutant's text never raises; every diagnostic is one line with no
  raw control characters; ``--json`` and the table can be written;
- render's DOT text and the HTML report are made for every mutant (error specs are drawn
  too); a sample goes through Graphviz's ``dot``;
- when check is ok: ``summary`` works, and codegen in every style either writes source that
  compiles or refuses with a clean StyleError/CodegenError (never a plain SpecError: check
  said the spec is fine);
- for a sample of cheap ok mutants: ``netspec.build`` agrees with check (output shape,
  parameters), and the generated module, imported from a file, has the same state_dict keys
  and shapes (or, where its docstring says it gives or gives up names, the same shapes in
  the same order, loaded by position) and gives the same outputs with the same weights;
- through the command line (``netspec.cli.main`` in process, and a few subprocesses): exit
  status 0, 1 or 2, no traceback, no raw control characters on the terminal.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import random
import re
import signal
import sys
import tempfile
import threading
import traceback
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from generated import BY_POSITION

ROOT = Path(__file__).resolve().parent.parent
SPEC_FILES = sorted(ROOT.glob("specs/**/*.yaml"))
DEFAULT_SEED = 10
SEED = int(os.environ.get("NETSPEC_FUZZ_SEED", DEFAULT_SEED))
MUTANTS = int(os.environ.get("NETSPEC_FUZZ_MUTANTS", "2000"))
# a mutant that takes longer than this (check + summary + render + report + codegen) hangs;
# the largest valid mutants (100,000 layers) take seconds, more on a loaded machine
TIMEOUT = float(os.environ.get("NETSPEC_FUZZ_TIMEOUT", "60"))


# ------------------------------------------------------------------ the sources


@dataclass(frozen=True)
class Source:
    path: str  # relative to the repository
    text: str
    data: Any  # None where the text is not loadable YAML (specs/broken/indentation.yaml)


def _load_sources() -> list[Source]:
    out = []
    for file in SPEC_FILES:
        text = file.read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None
        out.append(Source(str(file.relative_to(ROOT)), text, data))
    return out


SOURCES = _load_sources()


# ------------------------------------------------------------------ interesting values


class Digits(str):
    """An integer too long for int's str() (4,300 digits), dumped as a plain YAML int."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    Digits, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:int", str(value)))

INTS = [0, 1, 2, 3, 4, 7, 16, 64, 255, 1000, -1, -2, -7, 2**31 - 1, 2**31, 2**62, 2**63,
        -(2**63), 10**30, 2**20]
HUGE_INTS = [Digits("1" + "0" * 400), Digits("1" + "0" * 4400 + "7")]
FLOATS = [0.5, 2.0, -0.0, 1.5, 1e308, 5e-324, math.inf, -math.inf, math.nan, 3.0]
CONTROL = ["\x1b[2J\x1b]0;pwned\x07", "a\nb", "a\rb", "a\x00b", "\x07", "\t", "x\x7fy",
           "\x85", "line\u2028sep", "\x1b[31mred\x1b[0m", "\x08\x08\x08"]
UNICODE = ["é", "名前", "𝔘𝔫𝔦", "\u202eevil", "ﬁ", "Ω", "👾", "café", "İ", "ǅ"]
STRINGS = ["", " ", "x", "yes", "null", "~", "'", '"', "{", "[1", "\\", "%s", "{n}",
           "${x}", "2**20", "1e3", "0x10", "planes * 4", "in_channels // 0", "c + p ** 2",
           "-p", "p ** -1", "1/0", "__import__('os').system('id')", "stride != 1 or x",
           "</title><script>alert(1)</script>", '<a> [URL="javascript:alert(1)"]; <b>',
           "a" * 300, "b" * 5000, "input", "same", "Conv2d", "torch.nn.Conv2d",
           "os:system", "torchvision:resnet18", "64*4*4", "64*4*4/3", "64/0", "3.0", "0.1",
           "convs.0"]
NAMES = ["code", "graph", "meta", "recompile", "training", "forward", "self", "a.b", "input",
         "x", "out", "out2", "torch", "nn", "super", "_private", "__init__", "class", "def",
         "None", "True", "0", "1", "01", "-1", "name with space", "Blk", "café", "名前",
         "features", "layers", "add_module", "state_dict", "OrderedDict", "crop_to", "match",
         "type", "print", "in_channels", "x_", "ResNet18", "Sequential", "a" * 300, "",
         "\x1b[31mred", "a\nb", "BasicBlock", "Bottleneck", "DenseLayer", "Fire", "Inception",
         "float", "getattr", "annotations", "collections"]
TYPES = ["Conv2d", "Linear", "ReLU", "BatchNorm2d", "MaxPool2d", "Flatten", "Dropout",
         "LSTM", "Embedding", "Add", "Concat", "Mul", "CropTo", "Identity", "Conv1d",
         "AdaptiveAvgPool2d", "LayerNorm", "TransformerEncoderLayer", "Softmax", "GELU",
         "Upsample", "ConvTranspose2d", "GroupNorm", "Nope", "conv2d", "Blk"]
KEYS = ["name", "from", "repeat", "first", "if", "layers", "blocks", "params", "input",
        "netspec", "base", "edits", "base_kwargs", "dtype", "shape", "count", "train",
        "out_channels", "kernel_size", "in_features", "zzz", "branches", "inputs",
        "outputs"]


def scalar(rng: random.Random) -> Any:
    kind = rng.randrange(9)
    if kind == 0:
        return rng.choice(INTS)
    if kind == 1:
        return rng.choice(FLOATS)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.choice(CONTROL)
    if kind == 4:
        return rng.choice(UNICODE)
    if kind == 5:
        return rng.choice(NAMES)
    if kind == 6 and rng.random() < 0.3:
        return rng.choice(HUGE_INTS)
    return rng.choice(STRINGS)


def value(rng: random.Random, depth: int = 0) -> Any:
    """A value of any type: scalars, lists and dicts (integer and odd keys included)."""
    kind = rng.randrange(10)
    if kind < 6 or depth > 2:
        return scalar(rng)
    if kind < 8:
        return [value(rng, depth + 1) for _ in range(rng.choice([0, 1, 2, 3]))]
    keys = [rng.choice([*KEYS, 0, 1, None, True, 2.5, "a.b", "\x1b", "名"])
            for _ in range(rng.choice([0, 1, 2]))]
    return {k: value(rng, depth + 1) for k in keys}


def other_type(rng: random.Random, old: Any) -> Any:
    """``old`` as another type, or near it: int -> str/float/bool/list/dict/None/huge."""
    if isinstance(old, bool):
        return rng.choice([int(old), str(old).lower(), "yes", None, [old]])
    if isinstance(old, int):
        return rng.choice([str(old), float(old), bool(old), [old], {"value": old}, None,
                           -old, 0, old * 1000, old + 2**31, -(2**63), rng.choice(HUGE_INTS),
                           old - 1, old + 1, f"{old} * 2", str(old) + "\x1b"])
    if isinstance(old, float):
        return rng.choice([int(old) if math.isfinite(old) else 0, str(old), math.nan, -old])
    if isinstance(old, str):
        return rng.choice([old + rng.choice(CONTROL), rng.choice(UNICODE) + old, old * 50,
                           old.upper(), old[:-1], 1, None, [old], {old: 1}, old + ".x",
                           old + " " + old, rng.choice(NAMES), rng.choice(STRINGS)])
    if isinstance(old, list):
        return rng.choice([{}, None, 3, "list", [old], old[:1], old * 2 if len(old) < 50
                           else old, [*old, value(rng)], old[::-1]])
    if isinstance(old, dict):
        return rng.choice([[], None, 1, "dict", [old], {}, dict(list(old.items())[:1])])
    return value(rng)


def brief(v: Any, width: int = 60) -> str:
    """repr, cut short (a 4,400-digit integer has no repr at all)."""
    try:
        text = repr(v)
    except ValueError:
        text = f"<an integer of {v.bit_length()} bits>"
    return text if len(text) <= width else text[:width] + "..."


# ------------------------------------------------------------------ walking the data


def containers(data: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key or index) slot in the data, once each (aliases and cycles
    visited once)."""
    seen: set[int] = set()
    stack = [data]
    while stack:
        node = stack.pop()
        if not isinstance(node, (dict, list)) or id(node) in seen:
            continue
        seen.add(id(node))
        slots = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, child in slots:
            yield node, key
            stack.append(child)


def entry_lists(data: Any, branches: bool = True) -> list[list]:
    """The lists that hold entries: layers:, groups' layers:, blocks' bodies and (unless
    ``branches`` is False) the branches: of side-by-side entries."""
    out: list[list] = []
    seen: set[int] = set()

    def visit(entries: Any) -> None:
        if not isinstance(entries, list) or id(entries) in seen:
            return
        seen.add(id(entries))
        out.append(entries)
        for e in entries:
            if isinstance(e, dict) and isinstance(e.get("layers"), list):
                visit(e["layers"])
            if branches and isinstance(e, dict) and isinstance(e.get("branches"), list):
                visit(e["branches"])

    if isinstance(data, dict):
        visit(data.get("layers"))
        blocks = data.get("blocks")
        if isinstance(blocks, dict):
            for b in blocks.values():
                if isinstance(b, dict):
                    visit(b.get("layers"))
    return out


def block_names(data: Any) -> list[str]:
    blocks = data.get("blocks") if isinstance(data, dict) else None
    return [k for k in blocks if isinstance(k, str)] if isinstance(blocks, dict) else []


def entry_name(entry: Any, index: int) -> str:
    return entry["name"] if isinstance(entry, dict) and isinstance(entry.get("name"), str) \
        else str(index)


def entry_type(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        keys = [k for k in entry if isinstance(k, str) and k[:1].isupper()]
        return keys[0] if keys else None
    return None


# ------------------------------------------------------------------ mutations
#
# Every op takes (data, rng, gentle) and changes data in place.  Gentle ops keep the spec
# likely to check (valid names that collide with what generated code and torch use, chain
# groups, repeats of shape-keeping layers, blocks with arithmetic over negative
# parameters, aliases of equal nodes), so that summary, codegen and build see many
# mutants; harsh ones break it every way there is.

Op = Callable[[dict, random.Random, bool], str]
OPS: dict[str, Op] = {}
GENTLE: dict[str, Op] = {}


def op(weight: int, gentle: int = 0) -> Callable[[Op], Op]:
    def register(fn: Op) -> Op:
        name = fn.__name__.removeprefix("op_")
        fn.weight = weight  # type: ignore[attr-defined]
        fn.gentle_weight = gentle  # type: ignore[attr-defined]
        OPS[name] = fn
        if gentle:
            GENTLE[name] = fn
        return fn

    return register


# valid names that collide with something: nn.Module / GraphModule attributes, builtins
# and the generated file's own names, block class names, keywords of forward
CODE_NAMES = ["code", "graph", "meta", "recompile", "training", "forward", "self", "x", "out",
              "out2", "torch", "nn", "super", "type", "print", "match", "case", "in_channels",
              "float", "getattr", "OrderedDict", "crop_to", "x_", "input_", "Blk", "Net",
              "state_dict", "add_module", "modules", "children", "cuda", "half", "to",
              "register_buffer", "T_destination", "dump_patches", "call_super_init", "a",
              "layer1", "Sequential", "annotations", "collections", "result", "var", "_"]
SHAPE_KEEPING = [{"ReLU": None}, {"Identity": None}, {"Dropout": 0.5}, {"GELU": None},
                 {"ReLU": {"inplace": True}}, {"Tanh": None}, {"Sigmoid": None}]


def _pick_entry(data: dict, rng: random.Random, gentle: bool = False) -> tuple[list, int] | None:
    """An entry list and a position in it; gently never a branches: list (a branch has no
    name, from: or if:, and one more branch changes what a Concat of them gives)."""
    lists = [e for e in entry_lists(data, branches=not gentle) if e]
    if not lists:
        return None
    entries = rng.choice(lists)
    return entries, rng.randrange(len(entries))


def _as_dict_entry(entries: list, i: int) -> dict:
    entry = entries[i]
    if not isinstance(entry, dict):
        entry = {entry: None} if isinstance(entry, str) else {"Identity": None}
        entries[i] = entry
    return entry


def _outputs_of(data: dict, entries: list) -> Any:
    """The outputs: of whatever ``entries`` is the body of: the network, a block, a group."""
    owners = [data] + [n[k] for n, k in containers(data) if isinstance(n[k], dict)]
    return next((o.get("outputs") for o in owners if o.get("layers") is entries), None)


def _references(data: dict, entries: list) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) slot that names an entry of ``entries``: the from: of those
    entries and the outputs: of what they are the body of."""
    for e in entries:
        if isinstance(e, dict) and isinstance(e.get("from"), str):
            yield e, "from"
        elif isinstance(e, dict) and isinstance(e.get("from"), list):
            yield from ((e["from"], k) for k in range(len(e["from"])))
    outputs = _outputs_of(data, entries)
    if isinstance(outputs, (list, dict)):
        yield from ((outputs, k) for k in (range(len(outputs)) if isinstance(outputs, list)
                                           else list(outputs)))


def _read(data: dict, entries: list, start: int) -> set[str]:
    """The names that entries from ``start`` on (or the outputs: of the body) take from:
    each reference whole and its entry's part before a '.' (convs.1: convs)."""
    refs: list[Any] = []
    for e in entries[start:]:
        sources = e.get("from") if isinstance(e, dict) else None
        refs += sources if isinstance(sources, list) else [sources]
    outputs = _outputs_of(data, entries)
    refs += list(outputs.values()) if isinstance(outputs, dict) else \
        outputs if isinstance(outputs, list) else [outputs]
    return {part for r in refs if isinstance(r, str) for part in (r, r.split(".")[0])}


_NUMBER_REF = re.compile(r"(0|[1-9][0-9]*)(\.[^.]+)?")


def _renumber(data: dict, entries: list, start: int, delta: int) -> None:
    """The entries of ``entries`` from ``start`` on are about to move ``delta`` places: the
    from: (and outputs:) that take an unnamed one by its number ('3', '3.0') follow it."""
    named = {e["name"] for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)}
    for node, key in list(_references(data, entries)):
        ref = node[key]
        match = _NUMBER_REF.fullmatch(ref) if isinstance(ref, str) else None
        if match and int(match.group(1)) >= start and match.group(1) not in named:
            node[key] = f"{int(match.group(1)) + delta}{match.group(2) or ''}"


def _numbered(entries: list, at: int) -> bool:
    """Whether an unnamed entry put at ``at`` is taken by that number: entries are numbered
    as built, so an if: before it (maybe false, leaving no module) may shift it."""
    return not any(isinstance(e, dict) and "if" in e for e in entries[:at])


def _ref_to(data: dict, entries: list, i: int) -> str:
    """How a later entry of ``entries`` takes entry ``i``: by its name, by its number, or
    (where an if: before it may shift the number) by a name given to it."""
    entry = entries[i]
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        return entry["name"]
    if _numbered(entries, i) or str(i) in _read(data, entries, 0):
        return str(i)
    entry = _as_dict_entry(entries, i)
    entry["name"] = _fresh("named", {entry_name(e, k) for k, e in enumerate(entries)})
    return entry["name"]


def _insert(data: dict, entries: list, at: int, new: list) -> None:
    """``new`` put into ``entries`` at ``at``, numbered references kept on what they took."""
    _renumber(data, entries, at, len(new))
    entries[at:at] = new


@op(6)
def op_value(data: dict, rng: random.Random, gentle: bool) -> str:
    """Any slot: its value as another type (or an interesting value)."""
    slots = list(containers(data))
    if not slots:
        return "no slot"
    node, key = rng.choice(slots)
    node[key] = other_type(rng, node[key]) if rng.random() < 0.7 else value(rng)
    return f"value[{key!r}]"


@op(4, gentle=3)
def op_number(data: dict, rng: random.Random, gentle: bool) -> str:
    """A number somewhere: negative, zero, huge, float, string, expression; gently, another
    small positive one."""
    slots = [(n, k) for n, k in containers(data)
             if isinstance(n[k], (int, float)) and not isinstance(n[k], bool)]
    if not slots:
        return "no number"
    node, key = rng.choice(slots)
    old = node[key]
    if gentle:
        node[key] = rng.choice([1, 2, 3, 4, 5, 7, 8, 16]) if isinstance(old, int) else old
    else:
        node[key] = rng.choice([*INTS, *FLOATS, -old, old * 2, old + 1, f"{old} + 0",
                                rng.choice(HUGE_INTS), str(old), [old]])
    return f"number[{key!r}] {brief(old)} -> {brief(node[key])}"


@op(4)
def op_key(data: dict, rng: random.Random, gentle: bool) -> str:
    """A mapping: add, delete or rename a key (integer and odd keys included)."""
    dicts = [n for n, _ in containers(data) if isinstance(n, dict)] + [data]
    node = rng.choice(dicts)
    action = rng.randrange(3)
    if action == 0 or not node:
        key = rng.choice([*KEYS, *TYPES, 0, 1, None, True, "\x1b[2J", "名", "a.b", "Name"])
        node[key] = value(rng)
        return f"add key {key!r}"
    key = rng.choice(list(node))
    if action == 1:
        del node[key]
        return f"delete key {key!r}"
    new = rng.choice([0, 1, None, str(key).upper(), str(key) + "s", str(key)[:-1],
                      str(key) + "\x07", rng.choice(KEYS)])
    if new not in node:
        node[new] = node.pop(key)
    return f"rename key {key!r} -> {new!r}"


@op(3)
def op_list(data: dict, rng: random.Random, gentle: bool) -> str:
    """A list: drop, duplicate (a copy or the same object: an alias), swap, empty."""
    lists = [n for n, _ in containers(data) if isinstance(n, list) and n]
    if not lists:
        return "no list"
    node = rng.choice(lists)
    action = rng.randrange(5)
    i = rng.randrange(len(node))
    if action == 0:
        del node[i]
        return "list drop"
    if action == 1:
        node.insert(i, copy.deepcopy(node[i]))
        return "list duplicate"
    if action == 2:
        node.insert(i, node[i])  # the same object twice: an alias in the YAML
        return "list alias"
    if action == 3:
        j = rng.randrange(len(node))
        node[i], node[j] = node[j], node[i]
        return "list swap"
    node.clear()
    return "list empty"


@op(6, gentle=6)
def op_name(data: dict, rng: random.Random, gentle: bool) -> str:
    """An entry's name: reserved, module attributes, block names, duplicates, odd text."""
    picked = _pick_entry(data, rng, gentle)
    if picked is None:
        return "no entry"
    entries, i = picked
    entry = _as_dict_entry(entries, i)
    taken = {entry_name(e, j) for j, e in enumerate(entries)}
    if gentle:
        free = [n for n in [*CODE_NAMES, *block_names(data), str(data.get("name"))]
                if n not in taken]
        name = rng.choice(free or ["fresh"])
        if any(isinstance(e, dict) and e.get("from") == entry.get("name") for e in entries):
            return "name kept (read by from:)"
    else:
        siblings = sorted(taken - {entry_name(entry, i)})
        name = rng.choice([*NAMES, *block_names(data), *siblings[:3], *CONTROL[:3],
                           *UNICODE[:3], rng.choice(NAMES) + "{n}", str(data.get("name"))])
        name = name if rng.random() < 0.9 else other_type(rng, name)
    old = entry.get("name")
    entry["name"] = name
    for e in entries:  # keep from: pointing at the renamed entry
        if isinstance(e, dict) and isinstance(old, str):
            if e.get("from") == old:
                e["from"] = name
            elif isinstance(e.get("from"), list):
                e["from"] = [name if f == old else f for f in e["from"]]
    return f"name={name!r}"


@op(6, gentle=1)
def op_from(data: dict, rng: random.Random, gentle: bool) -> str:
    """from: empty, unknown, itself, a dict, later names, input, lists of those."""
    picked = _pick_entry(data, rng, gentle)
    if picked is None:
        return "no entry"
    entries, i = picked
    entry = _as_dict_entry(entries, i)
    names = [entry_name(e, j) for j, e in enumerate(entries)]
    earlier = names[:i] or ["input"]
    later = names[i + 1:] or ["zzz"]
    own = entry.get("name") if isinstance(entry.get("name"), str) else names[i]
    if gentle:  # the previous entry, named: the same network, written with from:
        choice = _ref_to(data, entries, i - 1) if i else "input"
    else:
        choice = rng.choice([
            [], "input", ["input"], "zzz", own, [own], {"a": 1}, [{"a": 1}], rng.choice(later),
            [rng.choice(later)], rng.choice(earlier), [rng.choice(earlier), rng.choice(earlier)],
            [rng.choice(earlier), "input"], 0, [0], None, "input.x", [own, rng.choice(earlier)],
            ["input", "input", "input"], "not a name", [rng.choice(earlier), "not a name"],
            # an unnamed entry by its number, as a string: itself, later, a part of one
            str(i), str(i + 1), f"{i - 1}.0", f"{i - 1}.9", f"{i - 1}.0.0", "0", "-1", "00",
            " 0", "1e0", "+1", "1_0", float(i), f"{i - 1}.x", [str(i - 1), str(i - 1)],
        ])
    entry["from"] = choice
    return f"from={choice!r}"


@op(5, gentle=4)
def op_repeat(data: dict, rng: random.Random, gentle: bool) -> str:
    """repeat: odd counts, expressions, name patterns; with or without first:.  Gently: a
    shape-keeping layer repeated, under a name pattern."""
    picked = _pick_entry(data, rng, gentle)
    if picked is None:
        return "no entry"
    entries, i = picked
    if gentle:
        layer = copy.deepcopy(rng.choice(SHAPE_KEEPING))
        count = rng.choice([1, 2, 3])
        pattern = rng.choice([None, "x{n}", "b{n}", "code{n}", "layer{n}", "{n}"])
        layer["repeat"] = count if pattern is None else {"count": count, "name": pattern}
        layer["name"] = rng.choice(["rep", "code", "graph", "r", "training"])
        if layer["name"] in {entry_name(e, j) for j, e in enumerate(entries)}:
            layer["name"] += "_r"
        _insert(data, entries, i + 1, [layer])
        return f"repeat {layer!r}"
    entry = _as_dict_entry(entries, i)
    count = rng.choice([0, 1, 2, 3, 2, 3, -1, 2500, 10000, 10001, "2**20", "2", 2.0, True,
                        2**31, None, [], "n", 20])
    form = rng.randrange(4)
    if form == 0:
        repeat: Any = count
    else:
        name = rng.choice(["same", "x{n}", "a.{n}", "{n}", "{n}{n}", "b{n}", "{m}", "{}",
                           "{n!r}", "{n:>5}", "layer{n}", 3, "code{n}", "\x1b{n}"])
        repeat = {"count": count, "name": name}
        if form == 2:
            repeat[rng.choice(["zzz", "first", "Count"])] = 1
    entry["repeat"] = repeat
    if rng.random() < 0.4:
        entry["first"] = rng.choice(["x", {"zzz": 1}, {"stride": 2}, {}, [], None, 3,
                                     {"out_channels": -1}, {"planes": 8}, {"stride": "2"}])
    return f"repeat={repeat!r}" + (f" first={entry.get('first')!r}" if "first" in entry else "")


@op(3)
def op_first(data: dict, rng: random.Random, gentle: bool) -> str:
    picked = _pick_entry(data, rng, gentle)
    if picked is None:
        return "no entry"
    entries, i = picked
    entry = _as_dict_entry(entries, i)
    entry["first"] = rng.choice(["x", {"zzz": 1}, {"stride": 2}, {}, [], None,
                                 {"out_channels": 3}, {"name": "a"}, {"repeat": 2}])
    return f"first={entry['first']!r}"


@op(4, gentle=2)
def op_if(data: dict, rng: random.Random, gentle: bool) -> str:
    picked = _pick_entry(data, rng, gentle)
    if picked is None:
        return "no entry"
    entries, i = picked
    if gentle:  # a shape-keeping entry that is there or not
        layer = {**copy.deepcopy(rng.choice(SHAPE_KEEPING)), "name": "maybe",
                 "if": rng.choice([False, True, "1 > 2", "2 > 1"])}
        _insert(data, entries, i + 1, [layer])
        return f"if={layer['if']!r}"
    entry = _as_dict_entry(entries, i)
    cond = rng.choice([False, True, "stride != 1", "in_channels > 3", "planes", "1/0", "zzz",
                       "in_channels ** 99", "", "not", 0, [], "__import__('os')", "p > 0",
                       "stride == 1 and in_channels == planes", None, "x.y", "2**99999"])
    entry["if"] = cond
    if rng.random() < 0.3:  # and from: itself (a block entry that may vanish)
        entry["from"] = entry.get("name", str(i))
    return f"if={cond!r}"


@op(3, gentle=4)
def op_group(data: dict, rng: random.Random, gentle: bool) -> str:
    """Wrap entries in groups nested ``depth`` deep; names may equal block names."""
    picked = _pick_entry(data, rng, gentle)
    if picked is None:
        return "no entry"
    entries, i = picked
    j = rng.randrange(i, len(entries)) + 1
    if gentle:  # no entry outside the new group may lose what its from: names
        inside = {entry_name(e, k) for k, e in enumerate(entries[i:j], i)}
        if inside & _read(data, entries, j):
            j = i + 1
    depth = rng.choice([1, 1, 2, 3, 5, 20, 40, 49, 49, 60])
    inner: Any = entries[i:j]
    names = [*block_names(data), "Blk", "g", "features", "code", "x", "Sequential", "Net",
             str(data.get("name"))]
    used = {entry_name(e, k) for k, e in enumerate(entries)} - {
        entry_name(e, k) for k, e in enumerate(entries[i:j], i)}
    for level in range(depth):
        name = rng.choice(names) if rng.random() < 0.5 else f"g{level}"
        if level == depth - 1 and name in used:
            name = f"g{level}"
        g: dict[str, Any] = {"name": name, "layers": inner}
        if not gentle and rng.random() < 0.05:
            g[rng.choice(["from", "if", "repeat"])] = rng.choice(["input", True, 2])
        inner = [g]
    _renumber(data, entries, j, 1 - (j - i))
    entries[i:j] = inner
    return f"group depth {depth} around {j - i} entries"


@op(3, gentle=2)
def op_merge(data: dict, rng: random.Random, gentle: bool) -> str:
    picked = _pick_entry(data, rng, gentle)
    if picked is None:
        return "no entry"
    entries, i = picked
    names = [entry_name(e, j) for j, e in enumerate(entries[:i + 1])] + ["input"]
    if gentle:  # x + x, x * x: shapes agree
        merge, args = rng.choice(["Add", "Mul"]), None
        source = _ref_to(data, entries, i)
        entry = {merge: args, "from": [source, source]}
        _insert(data, entries, i + 1, [entry])
        for e in entries[i + 2:]:  # whoever read the source reads the merge now
            if isinstance(e, dict) and e.get("from") == source:
                return f"merge {merge} from {entry['from']!r}"
        return f"merge {merge} from {entry['from']!r}"
    merge = rng.choice(["Add", "Mul", "Concat", "CropTo"])
    args = rng.choice([None, {"dim": rng.choice([0, 1, -1, 2, 5, "1"])}, {"zzz": 1}, 3])
    entry = {merge: args, "from": rng.sample(names, k=min(len(names), rng.choice([1, 2, 2, 3])))}
    if rng.random() < 0.5:
        entry["name"] = rng.choice(["m", "add", "merge", *NAMES[:8]])
    entries.insert(i + 1, entry)
    return f"merge {merge} from {entry['from']!r}"


BAD_ENTRIES = [{}, "not a name", [], 3, None, {"Conv2d": 3, "ReLU": None}, "ReLU",
               {"name": "x"}, {"layers": []}, {"Nope": {}}, {0: "x"}, {"ReLU": {0: "x"}},
               {"ReLU": None, 0: "x"}, {"name": {"a": 1}}, {"ReLU": None, "name": {"a": 1}},
               {"ReLU": None, "from": [{"a": 1}]}, {"layers": [{}]}, {"name": "g", "layers": {}},
               {"ReLU": None, "if": False, "from": "self_ref"}, {"Identity": None, "from": []},
               "Identity", {"Identity": []}, {"Identity": {}}]


@op(5)
def op_bad_entry(data: dict, rng: random.Random, gentle: bool) -> str:
    """An odd entry, in layers:, a group or a block body."""
    lists = entry_lists(data)
    if not lists:
        return "no list"
    entries = rng.choice(lists)
    bad = copy.deepcopy(rng.choice(BAD_ENTRIES))
    if isinstance(bad, dict) and bad.get("from") == "self_ref":
        bad["name"] = "self_ref"
    entries.insert(rng.randrange(len(entries) + 1), bad)
    return f"bad entry {bad!r}"


@op(5)
def op_args(data: dict, rng: random.Random, gentle: bool) -> str:
    """A layer's arguments: a value changed, an unknown one added, another form."""
    picked = _pick_entry(data, rng, gentle)
    if picked is None:
        return "no entry"
    entries, i = picked
    entry = _as_dict_entry(entries, i)
    t = entry_type(entry)
    if t is None:
        entry["ReLU"] = None
        return "args: made a ReLU"
    args = entry[t]
    if isinstance(args, dict) and args and rng.random() < 0.7:
        key = rng.choice(list(args))
        args[key] = other_type(rng, args[key]) if rng.random() < 0.7 else scalar(rng)
        return f"args {t}.{key}"
    if isinstance(args, dict) and rng.random() < 0.5:
        args[rng.choice(["zzz", "in_channels", "out_features", "bias", "dim", "inplace",
                         0, "kernel_size", "padding_mode", "dtype", "device"])] = scalar(rng)
        return f"args {t} extra"
    entry[t] = other_type(rng, args) if args is not None else value(rng)
    return f"args {t} as {type(entry[t]).__name__}"


@op(4, gentle=1)
def op_block_body(data: dict, rng: random.Random, gentle: bool) -> str:
    """A block: its parameters, defaults, body; or a use with odd arguments."""
    blocks = data.get("blocks")
    if not isinstance(blocks, dict) or not blocks or gentle:
        return op_new_block(data, rng, gentle)
    name = rng.choice(list(blocks))
    block = blocks[name]
    if not isinstance(block, dict):
        blocks[name] = {"params": {}, "layers": [{"Identity": None}]}
        return f"block {name!r} made plain"
    action = rng.randrange(6)
    params = block.get("params")
    if action == 0 and isinstance(params, dict) and params:
        p = rng.choice(list(params))
        params[p] = rng.choice([-2, -1, 0, "required", "p * 2", [1], {"a": 1}, None, 2**40,
                                "in_channels", 0.5, True])
        return f"block {name}.params.{p}={params[p]!r}"
    if action == 1:
        block["params"] = rng.choice([{}, None, [], "x", {"in_channels": 3}, {"0": 1},
                                      {"self": 1}, {"c": -2}, {"x y": 1}])
        return f"block {name}.params={block['params']!r}"
    if action == 2:
        block["layers"] = rng.choice([[], None, [{}], "x", [{name: None}],
                                      [{"Identity": None, "repeat": 3, "first": "x"}],
                                      [{"Identity": None, "from": []}]])
        return f"block {name}.layers={block['layers']!r}"
    if action == 3:  # a use of the block with odd arguments
        picked = _pick_entry(data, rng, gentle)
        if picked is None:
            return "no entry"
        entries, i = picked
        args = {p: rng.choice([-2, -1, 0, 1, 3, "x", None, 2**31])
                for p in (params if isinstance(params, dict) else {})}
        if rng.random() < 0.3:
            args["zzz"] = 1
        entries.insert(i, {name: args, "name": rng.choice(["u", name, "code", *NAMES[:5]])})
        return f"use {name} {args!r}"
    if action == 4:
        blocks[rng.choice(["Blk", name + "2", "conv", "Conv2d", "0", "a b"])] = \
            copy.deepcopy(block)
        return "block copied"
    return op_new_block(data, rng, gentle)


def _layer_for(data: dict, out: str) -> dict:
    """A layer that takes the spec's input shape, with ``out`` output channels/features."""
    shape = data.get("input")
    if isinstance(shape, dict):
        shape = shape.get("shape")
    rank = len(shape) if isinstance(shape, list) else 3
    if rank == 3:
        return {"Conv2d": {"out_channels": out, "kernel_size": 1}}
    if rank == 2:
        return {"Conv1d": {"out_channels": out, "kernel_size": 1}}
    if rank == 4:
        return {"Conv3d": {"out_channels": out, "kernel_size": 1}}
    return {"Linear": {"out_features": out}}


EXPRESSIONS = ["c + p ** 2", "c - p", "c * -p", "-p + c", "c // -p + 8", "(c + p) ** 2",
               "c + p * p", "c - -p", "2 ** c", "c + p ** 3 + 30", "c + (-p) ** 2",
               "-p * -p + c", "c + p ** 2 // 1", "c + abs", "c % p + 1"]


@op(4, gentle=5)
def op_new_block(data: dict, rng: random.Random, gentle: bool) -> str:
    """A new block with arithmetic over (possibly negative) parameters, used up front:
    ``c + p ** 2`` with p: -2.  It ends where it began (in_channels back), so the rest of
    the network still fits."""
    blocks = data.get("blocks")
    if not isinstance(blocks, dict):
        blocks = data["blocks"] = {}
    name = rng.choice(["Blk", "Unit", "Net2", "Blk"] if gentle else ["Blk", "code", "a.b"])
    if name in blocks and gentle:
        name += "X"
    expr = rng.choice(EXPRESSIONS[:-2] if gentle else EXPRESSIONS)
    back = _layer_for(data, "in_channels")
    body = [{**_layer_for(data, expr), "name": "conv"}, {"ReLU": None, "name": "act"},
            {**back, "name": "back"}]
    blocks[name] = {"params": {"c": rng.choice([4, 3, 8, "required"]),
                               "p": rng.choice([-2, -3, 2, -1, 0])},
                    "layers": body}
    if rng.random() < 0.4:  # a group inside, maybe named like the block (its class)
        inner = rng.choice(["inner", name, "Blk", "code"])
        body.insert(2, {"name": inner, "layers": [{"Identity": None}, {"ReLU": None}]})
    layers = data.get("layers")
    if not isinstance(layers, list):
        return f"block {name} (unused)"
    top = {entry_name(e, j) for j, e in enumerate(layers)}
    first_name = rng.choice(["b0", name, "code", "u", "Blk"])
    uses = [{name: {"p": rng.choice([-2, -3, -2, 1]), "c": rng.choice([4, 5])},
             "name": first_name if first_name not in top else "b0_"}]
    if rng.random() < 0.6:  # a second use with other values: the class takes parameters
        p = uses[0][name]["p"] if rng.random() < 0.5 else rng.choice([-1, -4, 2, -2])
        uses.append({name: {"p": p, "c": rng.choice([5, 6])},
                     "name": "b1" if "b1" not in top else "b1_"})
    if rng.random() < 0.3 and gentle:  # a third, as a repeat
        uses.append({name: {"p": -2, "c": 3}, "name": "b2", "repeat": 2})
    _insert(data, layers, 0, uses)
    return f"new block {name}: {expr}, uses {[u[name] for u in uses]}"


@op(2, gentle=2)
def op_deep_blocks(data: dict, rng: random.Random, gentle: bool) -> str:
    """Blocks that use blocks ``depth`` deep (through repeats, groups): module nesting the
    YAML does not show; harshly, past the limit, or a block that uses itself."""
    blocks = data.get("blocks")
    if not isinstance(blocks, dict):
        blocks = data["blocks"] = {}
    depth = rng.choice([3, 8, 16, 31] if gentle else [2, 31, 32, 33, 50])
    how = rng.choice(["plain", "repeat", "group", "named"])
    blocks["D0"] = {"params": {}, "layers": [copy.deepcopy(rng.choice(SHAPE_KEEPING))]}
    for k in range(1, depth):
        use: dict[str, Any] = {f"D{k - 1}": None}
        if how == "repeat":
            use["repeat"] = rng.choice([1, 2]) if k % 4 == 0 else 1
        if how == "named":
            use["name"] = f"d{k}"
        body = [{"name": f"g{k}", "layers": [use]}] if how == "group" else [use]
        blocks[f"D{k}"] = {"params": {}, "layers": body}
    if not gentle and rng.random() < 0.3:  # a cycle: D0 uses the last one
        blocks["D0"]["layers"].append({f"D{depth - 1}": None})
    layers = data.get("layers")
    if isinstance(layers, list):
        _insert(data, layers, 0, [{f"D{depth - 1}": None, "name": "deep"}])
    return f"blocks {depth} deep ({how})"


@op(2, gentle=2)
def op_alias(data: dict, rng: random.Random, gentle: bool) -> str:
    """One node placed in two places (a YAML anchor and alias; rarely a cycle).  Gently,
    only where the two were equal: the same spec, written with an alias."""
    slots = [(n, k) for n, k in containers(data)]
    if gentle:
        pairs = [(n, k, m[j]) for n, k in slots for m, j in slots
                 if isinstance(n[k], (dict, list)) and n[k] is not m[j] and n[k] == m[j]]
        if not pairs:
            return "no equal nodes"
        node, key, other = rng.choice(pairs)
        node[key] = other
        return f"alias of an equal node at {key!r}"
    nodes = [n[k] for n, k in slots if isinstance(n[k], (dict, list))]
    if not slots or not nodes:
        return "no node"
    node, key = rng.choice(slots)
    node[key] = rng.choice(nodes)
    return f"alias at {key!r}"


@op(3, gentle=1)
def op_top(data: dict, rng: random.Random, gentle: bool) -> str:
    """The document's own keys: version, name, input."""
    if gentle:
        data["name"] = rng.choice([*CODE_NAMES, *block_names(data), "ResNet_18", "N"])
        return f"top name={data['name']!r}"
    key = rng.choice(["netspec", "name", "input", "input", "layers", "blocks", "train"])
    options = {
        "netspec": [2, "1", None, 1.0, True, 0],
        "name": [*NAMES, *block_names(data), "Net", 3, None, "torch", "ResNet 18"],
        "input": [[3, 100000, 100000], [], [0], [-1], {"shape": [4], "dtype": "int64"},
                  "3,32,32", [3.0, 32, 32], [3, 8, 8], [1, 1, 1], [2**31, 1, 1], [3, 32],
                  [3, 32, 32, 32], {"shape": [3, 32, 32], "dtype": "float16"},
                  {"shape": [8], "dtype": "int32"}, {"shape": [3, 2, 2]}, None, [[3]]],
        "layers": [[], None, {}, "x", [None]],
        "blocks": [{}, None, [], {"X": {}}, {"Blk": {"params": {}, "layers": []}}],
        "train": [{}, {"epochs": -1}, "x"],
    }[key]
    data[key] = copy.deepcopy(rng.choice(options))
    return f"top {key}={data[key]!r}"


BASE_TARGETS = ["torchvision:resnet18", "torchvision:resnet18", "torchvision:squeezenet1_1",
                "os:system", "torch.hub:load", "torchvision:../x", "torchvision:nope",
                "builtins:eval", 3, "", "torchvision", "pip:main"]
EDIT_PATHS = {"torchvision:resnet18": ["fc", "layer1.0.conv1", "layer4", "avgpool", "conv1",
                                       "layer2.1.bn2", ".", "zzz", "layer1.0.downsample"],
              "torchvision:squeezenet1_1": ["classifier.1", "features.0", "features.3",
                                            "classifier", ".", "features.3.squeeze", "zzz"]}
WITH = [{"Linear": {"out_features": 10}}, {"Linear": {"out_features": 10}, "name": "head"},
        {"ReLU": None}, "Dropout", {"Conv2d": {"out_channels": 7, "kernel_size": 1}},
        {"Identity": None}, {}, None, {"Linear": {"out_features": -1}}, "Nope",
        {"name": "g", "layers": [{"Identity": None}]}]
GENTLE_EDITS = {
    "torchvision:resnet18": [
        {"replace": "fc", "with": {"Linear": {"out_features": 10}}},
        {"insert_after": "layer1.0.relu", "with": {"Identity": None}},
        {"append": ".", "with": {"ReLU": None, "name": "extra"}},
        {"replace": "layer4.1.bn2", "with": {"BatchNorm2d": None}},
        {"insert_before": "avgpool", "with": "Dropout"}],
    "torchvision:squeezenet1_1": [
        {"replace": "classifier.1", "with": {"Conv2d": {"out_channels": 10, "kernel_size": 1}}},
        {"delete": "classifier.0"},
        {"append": "classifier", "with": {"Identity": None, "name": "tail"}}],
}


@op(1, gentle=1)
def op_base(data: dict, rng: random.Random, gentle: bool) -> str:
    """The spec becomes a base: spec with edits (the README's form, and odd ones)."""
    if gentle:
        target = rng.choice(list(GENTLE_EDITS))
        edits = copy.deepcopy(rng.sample(GENTLE_EDITS[target], k=rng.choice([1, 1, 2])))
        data.clear()
        data.update({"netspec": 1, "base": target, "input": [3, 64, 64], "edits": edits})
        return f"base {target!r} with {edits!r}"
    target = rng.choice(BASE_TARGETS)
    paths = EDIT_PATHS.get(target, ["fc", "zzz"])
    edits = []
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        kind = rng.choice(["replace", "replace", "insert_after", "insert_before", "append",
                           "delete", "zzz"])
        edit: dict[str, Any] = {kind: rng.choice(paths)}
        if kind != "delete" or rng.random() < 0.1:
            edit["with"] = copy.deepcopy(rng.choice(WITH))
        edits.append(edit)
    if target == "torchvision:resnet18" and rng.random() < 0.5:
        edits.insert(0, {"replace": "fc", "with": {"Linear": {"out_features": 10}}})
    data.clear()
    data.update({"netspec": 1, "base": target, "input": rng.choice([[3, 64, 64], [3, 32, 32],
                                                                    [3, 224, 224]]),
                 "edits": edits})
    if rng.random() < 0.15:
        data[rng.choice(["layers", "base_kwargs", "name"])] = rng.choice(
            [[{"ReLU": None}], {"num_classes": 10}, {"weights": "DEFAULT"}, "Net", [1]])
    return f"base {target!r} with {len(edits)} edits"


# ------------------------------------------------------------------ the newer language
#
# branches: (entries side by side on one input, an nn.ModuleList's modules), inputs: and
# outputs: on groups and blocks (a forward of several tensors, returning a tuple, a dict
# or a tensor), the network's own outputs:, entries taken by their number ('3', '3.0')
# and arithmetic where a number goes (64*4*4).

BRANCH_NAMES = ["convs", "paths", "heads", "x", "branches", "input_", "Blk", "code",
                "training", "forward"]  # the last ones are refused where the list branches
PORT_NAMES = ["x", "a", "b", "shortcut", "skip", "h", "out", "code", "training", "input_"]


def _fresh(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    return name


def _shape_keeping(rng: random.Random) -> Any:
    layer = copy.deepcopy(rng.choice(SHAPE_KEEPING))
    if rng.random() < 0.3 and all(v is None for v in layer.values()):
        return next(iter(layer))  # - ReLU, the bare form
    return layer


def _branch_bodies(rng: random.Random, count: int) -> list:
    """``count`` branches that keep their input's shape: a layer, a chain, a repeat."""
    out = []
    for _ in range(count):
        form = rng.randrange(3)
        branch = _shape_keeping(rng)
        if form == 1:
            branch = {"layers": [branch, _shape_keeping(rng)]}
        elif form == 2 and isinstance(branch, dict):
            branch["repeat"] = rng.choice([1, 2, "1+1"])
        out.append(branch)
    return out


def _join(rng: random.Random, ref: str, parts: list[str], at: int, numbered: bool = True
          ) -> list:
    """Entries, to stand at ``at`` on, that take the same-shaped tensors of ``ref`` (its
    ``parts``) and give one tensor of that shape: Stack or Concat taking them all, Add or
    Mul of each by name, or one of them.  ``numbered``: a Chunk there is taken by number."""
    form = rng.randrange(4) if len(parts) > 1 else 3  # Concat and Stack take two or more
    form = 0 if form == 1 and not numbered else form
    if form == 0:  # Stack whole, reduced over the new dimension
        return [{"Stack": {"dim": 1}, "from": ref},
                {rng.choice(["Sum", "Mean", "Amax"]): {"dim": 1}}]
    if form == 1:  # Concat whole, split back, a piece taken by the Chunk's number
        return [{"Concat": {"dim": 1}, "from": ref},
                {"Chunk": {"chunks": len(parts), "dim": 1}},
                {"Identity": None, "from": f"{at + 1}.{rng.randrange(len(parts))}"}]
    if form == 2 and len(parts) > 1:
        return [{rng.choice(["Add", "Mul"]): None, "from": [f"{ref}.{p}" for p in parts]}]
    return [{"Identity": None, "from": f"{ref}.{rng.choice(parts)}"}]


BAD_BRANCHES = [[], None, "ReLU", {}, [[]], 3, [None], {"ReLU": None}, [{}], ["Nope"],
                [{"branches": []}], [{"branches": ["ReLU", "Tanh"]}], [{"Mul": 0.5}],
                [{"Parameter": {"shape": [4]}}], [{"Chunk": {"chunks": 2, "dim": 1}}],
                [{"layers": [{"Chunk": {"chunks": 2, "dim": 1}}]}], [{"Add": None}],
                [{"Concat": None}], [{"MultiheadAttention": {"embed_dim": 12, "num_heads": 1}}],
                [{"layers": []}], [{"name": "g", "layers": ["ReLU"]}], ["ReLU"] * 3,
                [{"Identity": None, "if": False}], [{"ReLU": None, "from": "input"}],
                [{"ReLU": None, "name": "second"}], [{"ReLU": None, "repeat": 0}],
                [{"Linear": {"out_features": "2*3"}}, {"Linear": {"out_features": "6/4"}}]]
BAD_BRANCH_KEYS = {"repeat": [2, 0, "1+1"], "layers": [["ReLU"], []], "if": [False, True],
                   "first": [{}, {"stride": 2}], "inputs": [["a"], ["a", "b"]],
                   "outputs": [["0"], {"a": "0"}, []], "from": [[], "zzz", ["input"] * 5]}


@op(4, gentle=4)
def op_branches(data: dict, rng: random.Random, gentle: bool) -> str:
    """A branches: entry and its tensors taken: whole (Concat, Stack), by position
    (convs.1, and '3.0' where it has no name), a tensor given to each branch (from: [a,
    a]).  Gently, shape-keeping branches joined back into one tensor of their input's
    shape; harshly, every way of writing them wrong."""
    picked = _pick_entry(data, rng, gentle)
    if picked is None:
        return "no entry"
    entries, i = picked
    taken = {entry_name(e, j) for j, e in enumerate(entries)}
    count = rng.choice([1, 2, 2, 3, 4] if gentle or rng.random() < 0.9 else [40, 300])
    at = i + 1
    unnamed = rng.random() < 0.3 and (_numbered(entries, at) or not gentle)
    name = None if unnamed else _fresh(rng.choice(BRANCH_NAMES[:-3] if gentle else
                                                  BRANCH_NAMES), taken)
    entry: dict[str, Any] = {"name": name} if name else {}
    entry["branches"] = _branch_bodies(rng, count)
    ref = name or str(at)
    parts = [str(k) for k in range(count)]
    if count > 1 and rng.random() < 0.25:  # branch k on the k-th tensor
        entry["from"] = [_ref_to(data, entries, i)] * count
    what = f"branches ×{count} {'named ' + name if name else 'by number'}"
    if gentle:
        tail = _join(rng, ref, parts, at + 1, _numbered(entries, at))
        _insert(data, entries, at, [entry, *tail])
        return f"{what}, then {tail!r}"
    action = rng.randrange(7)
    tail = []
    if action == 0:  # no list of entries, or entries no branch can be
        entry["branches"] = copy.deepcopy(rng.choice(BAD_BRANCHES))
        tail = _join(rng, ref, parts, at + 1)
        what += f" as {entry['branches']!r}"
    elif action == 1:  # a key a branches entry cannot have
        key = rng.choice(list(BAD_BRANCH_KEYS))
        entry[key] = copy.deepcopy(rng.choice(BAD_BRANCH_KEYS[key]))
        tail = _join(rng, ref, parts, at + 1)
        what += f" with {key}: {entry[key]!r}"
    elif action == 2:  # taken wrong: whole by one-tensor layers, by a part it lacks
        wrong = rng.choice([ref, f"{ref}.{count}", f"{ref}.-1", f"{ref}.0.0", f"{ref}.x",
                            f"{ref}.01", f"{ref}.", f"{ref}.{count - 1}.0", [ref, ref],
                            f"{ref}.+0", f"{ref}.0 ", str(at + 1), f"{at - 1}.0"])
        tail = [{rng.choice(["ReLU", "Add", "Linear", "Flatten", "Concat", "Stack", "Mul"]):
                 None, "from": wrong}]
        what += f", taken from: {wrong!r}"
    elif action == 3:  # joined along a dimension that is not there, or not at all
        tail = rng.choice([[{"Concat": {"dim": rng.choice([0, 5, -9, "1"])}, "from": ref}],
                           [{"Stack": {"dim": rng.choice([0, 9, -9])}, "from": ref}], [],
                           [{"ReLU": None}]])
        what += f", then {tail!r}"
    elif action == 4:  # tensors given to the branches in odd numbers
        entry["from"] = rng.choice([[entry_name(entries[i], i)] * (count + 1), [],
                                    ["input", "zzz"][:count], [ref] * count,
                                    [str(at)] * count, [f"{ref}.0"] * count])
        tail = _join(rng, ref, parts, at + 1)
        what += f" from {entry['from']!r}"
    elif action == 5:  # nested: branches whose branch is a group with branches inside
        inner = {"name": "inner", "branches": _branch_bodies(rng, 2)}
        entry["branches"].append({"layers": [inner, *_join(rng, "inner", ["0", "1"], 1)]})
        parts.append(str(count))
        tail = _join(rng, ref, parts, at + 1)
        what += " with branches in a branch"
    else:  # at the end of a list: a block body or group giving several tensors
        _insert(data, entries, len(entries), [entry])
        return f"{what} ending the list"
    _insert(data, entries, at, [entry, *tail])
    return what


BAD_INPUTS = [[], ["x", "x"], ["input"], ["class"], ["self"], [""], "x", {"a": 1}, [1],
              ["a.b"], ["a b"], ["名前"], [None], [["x"]], ["x", "y", "z"], ["forward"],
              ["0"], ["1.0"], ["x\x1b"], None, True, ["training"], ["torch"], ["nn"],
              ["F"], ["super"], ["x"] * 40]


def _bad_outputs(rng: random.Random, last: str) -> Any:
    return copy.deepcopy(rng.choice([
        [], ["zzz"], {"": last}, {"a.b": last}, {"0": last}, last, 3, [last, last],
        {"class": last}, {"x": "input"}, ["input"], [f"{last}.0"], {"k": [last]}, [None],
        {"self": last}, {"training": last}, {"x\n": last}, ["0"], ["1.0"], [last] * 100,
        {"forward": last}, {"a": "zzz"}, [[last]], {}, None, {"名前": last}, [1]]))


@op(3, gentle=3)
def op_ports(data: dict, rng: random.Random, gentle: bool) -> str:
    """inputs: and outputs: on groups and blocks (forward(self, a, b), returning a tuple
    for a list, a dict for a mapping, a tensor for one) and on the network.  Gently: a
    group or block taking the entry before twice, joining the two and giving one, two
    or named tensors that the entries after take back into one; a chain wrapped in a group
    with one input and one output; the network's outputs named.  Harshly: odd names,
    counts and places."""
    picked = _pick_entry(data, rng, gentle)
    if picked is None:
        return "no entry"
    entries, i = picked
    if not gentle:
        return _bad_ports(data, entries, i, rng)
    form = rng.randrange(4)
    if form == 0:
        return _ports_around(data, entries, i, rng)
    if form == 3:
        return _network_outputs(data, rng)
    taken = {entry_name(e, j) for j, e in enumerate(entries)}
    a, b = rng.sample(PORT_NAMES, 2)
    body = [{rng.choice(["Add", "Mul"]): None, "from": [a, b], "name": "joined"},
            {**copy.deepcopy(rng.choice(SHAPE_KEEPING)), "name": "act"}]
    outputs = rng.choice([["act"], ["joined", "act"], {"low": "joined", "high": "act"},
                          {"main": "act"}, None])
    parts = [str(k) for k in range(len(outputs))] if isinstance(outputs, list) else \
        list(outputs) if isinstance(outputs, dict) else []
    ports: dict[str, Any] = {"inputs": [a, b]}
    if outputs is not None:
        ports["outputs"] = outputs
    source = _ref_to(data, entries, i)
    at = i + 1
    name = None if rng.random() < 0.3 and _numbered(entries, at) else \
        _fresh(rng.choice(["pair", "mix", "x", "joined"]), taken)
    if form == 1:  # a group
        entry: dict[str, Any] = {"name": name} if name else {}
        entry.update({"from": [source, source], **ports, "layers": body})
        what = f"group with {ports!r}"
    else:  # a block, used here
        blocks = data.get("blocks")
        if not isinstance(blocks, dict):
            blocks = data["blocks"] = {}
        block = _fresh(rng.choice(["Mix", "Pair", "Blk"]), set(blocks))
        blocks[block] = {"params": {}, **ports, "layers": body}
        entry = {block: None, "from": [source, source]}
        if name:
            entry["name"] = name
        what = f"block {block} with {ports!r}"
    ref = name or str(at)
    one = outputs is None or (len(parts) == 1 and isinstance(outputs, list))
    tail = [] if one else _join(rng, ref, parts, at + 1, _numbered(entries, at))
    _insert(data, entries, at, [entry, *tail])
    return what + (f", then {tail!r}" if tail else "")


def _ports_around(data: dict, entries: list, i: int, rng: random.Random) -> str:
    """Entries i..j-1 in a group with inputs: [one] and outputs: [its last] (a tensor) or
    {name: its last} taken by name after."""
    j = rng.randrange(i, len(entries)) + 1
    inner = copy.deepcopy(entries[i:j])
    inside = {entry_name(e, k) for k, e in enumerate(inner)}
    if inside & _read(data, entries, j) or not _read(data, inner, 0) <= inside | {"input"}:
        return "ports around: names read across"
    x = rng.choice(PORT_NAMES)
    for node, key in list(_references(data, inner)):
        if node[key] == "input":
            node[key] = x
    _renumber(data, inner, i, -i)
    last = inner[-1] = _as_dict_entry(inner, len(inner) - 1)
    if not isinstance(last.get("name"), str):
        last["name"] = _fresh("last", inside)
    name = _fresh(rng.choice(["g", "stage", "x", "features"]),
                  {entry_name(e, k) for k, e in enumerate(entries)})
    keyed = rng.random() < 0.5
    group = {"name": name, "inputs": [x],
             "outputs": {"out": last["name"]} if keyed else [last["name"]], "layers": inner}
    tail = [{"Identity": None, "from": f"{name}.out"}] if keyed else []
    _renumber(data, entries, j, 1 + len(tail) - (j - i))
    entries[i:j] = [group, *tail]
    return f"group {name} with inputs: [{x}] around {j - i} entries"


def _network_outputs(data: dict, rng: random.Random) -> str:
    """The network's outputs: its last entry, as a list of one or by a name, with another
    plain layer's now and then."""
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers or "outputs" in data or "inputs" in data:
        return "no network outputs"
    n = len(layers) - 1
    last = _as_dict_entry(layers, n)
    if not isinstance(last.get("name"), str):
        if str(n) in _read(data, layers, 0):
            return "last entry read by its number"
        last["name"] = _fresh("logits", {entry_name(e, k) for k, e in enumerate(layers)})
    plain = [e["name"] for e in layers[:-1] if isinstance(e, dict) and isinstance(
        e.get("name"), str) and entry_type(e) in TYPES and "repeat" not in e and "if" not in e]
    other = rng.choice(plain) if plain and rng.random() < 0.3 else None
    data["outputs"] = rng.choice([[last["name"]], {"logits": last["name"]}]) if other is None \
        else rng.choice([[last["name"], other], {"logits": last["name"], "aux": other}])
    return f"network outputs {data['outputs']!r}"


def _bad_ports(data: dict, entries: list, i: int, rng: random.Random) -> str:
    entry = _as_dict_entry(entries, i)
    last = entry_name(entries[-1], len(entries) - 1)
    action = rng.randrange(5)
    if action == 0:
        entry["inputs"] = copy.deepcopy(rng.choice(BAD_INPUTS))
        return f"inputs: {entry['inputs']!r}"
    if action == 1:
        entry["outputs"] = _bad_outputs(rng, last)
        return f"outputs: {entry['outputs']!r}"
    if action == 2:
        blocks = data.get("blocks")
        if not isinstance(blocks, dict) or not blocks:
            return "no block"
        block = blocks[rng.choice(list(blocks))]
        if not isinstance(block, dict):
            return "no block body"
        key = rng.choice(["inputs", "outputs"])
        block[key] = copy.deepcopy(rng.choice(BAD_INPUTS)) if key == "inputs" else \
            _bad_outputs(rng, rng.choice(["conv", "act", "0", "1", "input", "zzz"]))
        return f"block {key}: {block[key]!r}"
    if action == 3:
        data["outputs"] = _bad_outputs(rng, entry_name(entry, i))
        return f"network outputs: {data['outputs']!r}"
    # a group of two inputs given other counts, repeated, maybe absent, taken whole
    group = {"name": "pair", "inputs": ["a", "b"], "outputs": ["s", "t"],
             "from": rng.choice([[], "input", ["input"], ["input"] * 3, ["input", "zzz"]]),
             "layers": [{"Add": None, "from": ["a", "b"], "name": "s"},
                        {"ReLU": None, "name": "t"}]}
    extra = rng.choice([{}, {"repeat": 2}, {"if": False}, {"repeat": {"count": 2, "name": "p{n}"}}])
    group.update(extra)
    wrong = rng.choice(["pair", "pair.2", "pair.s", "pair.-1", ["pair.0", "pair.1"], "pair.0"])
    entries.insert(i + 1, group)
    entries.insert(i + 2, {rng.choice(["ReLU", "Add", "Concat"]): None, "from": wrong})
    return f"group of 2 inputs from {group['from']!r} {extra!r}, taken {wrong!r}"


def _arithmetic(rng: random.Random, n: int) -> str:
    """Arithmetic over numbers that equals ``n``: 64*4*4 for 1024, 2**5, (n + 2) - 2."""
    forms = [f"{n}*1", f"({n} + 2) - 2", f"{2 * n}//2", f"{n}/1", f"{n + 7} - 7",
             f"-(-{n})" if n >= 0 else f"-{-n}*1"]
    factors = [(a, n // a) for a in range(2, min(n, 65)) if n % a == 0 and a * a <= n]
    if factors:
        a, b = rng.choice(factors)
        forms += [f"{a}*{b}", f"{b} * {a}"]
    if n > 1 and n & (n - 1) == 0:
        forms.append(f"2**{n.bit_length() - 1}")
    if n >= 16 and n % 16 == 0:
        forms.append(f"{n // 16}*4*4")
    return rng.choice(forms)


def _number_slots(data: dict) -> list[tuple[Any, Any]]:
    """Integers where a number goes: in input:, the layers and the blocks."""
    return [(n, k) for part in ("input", "layers", "blocks")
            for n, k in containers(data.get(part))
            if isinstance(n[k], int) and not isinstance(n[k], bool)]


BAD_ARITHMETIC = ["{n}*4*4/3", "{n}/0", "{n}//0", "{n} % 0", "2**99999", "{n}**64", "({n}",
                  "{n}*", "1e400*1", "{n}*1.5", "{n} + True", "{n} * -1", "{n}" + "*1" * 100,
                  "0x10*1", "1_000*1", "{n} if 1 else 2", "[{n}]*1", "not {n}", "{n} < 3",
                  "{n} and 1", "-{n}", "{n}-{n}", "{n}*0.5", "(2**63)*1", "-(2**63)*1",
                  "2**62*2", "{n}/3", "10**30*1", "{n} * * 2", "{n}**-1", "(-{n})**0.5"]


@op(3, gentle=3)
def op_arithmetic(data: dict, rng: random.Random, gentle: bool) -> str:
    """A number written as arithmetic (Linear: [64*4*4, 64]): gently arithmetic that
    equals it; harshly division by zero, fractions, huge powers, what is not arithmetic."""
    slots = _number_slots(data)
    if not slots:
        return "no number"
    node, key = rng.choice(slots)
    old = node[key]
    if gentle:
        for node, key in rng.sample(slots, k=min(len(slots), rng.choice([1, 1, 3]))):
            node[key] = _arithmetic(rng, node[key])
        return f"arithmetic[{key!r}] {old} -> {node[key]!r}"
    node[key] = rng.choice(BAD_ARITHMETIC).replace("{n}", str(old))
    return f"arithmetic[{key!r}] {brief(old)} -> {brief(node[key])}"


# ------------------------------------------------------------------ text mutations

SNIPPETS = ["\x1b", "\x07", "\x00", "\t", ":", "- ", "&a ", "*a", "{", "[", "'", '"', "\n",
            "%YAML 1.1\n", "!!python/object/apply:os.system ['id'] ", "<<: *a\n", "\ufeff",
            "\x85", "  ", "#", "? ", "|\n", ">-\n", "!!binary ", "9" * 5000, "---\n", "...\n"]


def mutate_text(text: str, rng: random.Random) -> tuple[str, str]:
    lines = text.split("\n")
    action = rng.randrange(6)
    if action == 0 and text:
        at = rng.randrange(len(text))
        snippet = rng.choice(SNIPPETS)
        return text[:at] + snippet + text[at:], f"text insert {snippet[:20]!r}"
    if action == 1 and text:
        at = rng.randrange(len(text))
        return text[:at] + text[at + rng.randrange(1, 40):], "text delete span"
    if action == 2 and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        return "\n".join(lines), "text duplicate line"
    if action == 3 and lines:
        i = rng.randrange(len(lines))
        lines[i] = " " * rng.choice([1, 2, 3]) + lines[i]
        return "\n".join(lines), "text indent line"
    if action == 4:
        return text[: rng.randrange(len(text) + 1)], "text truncate"
    return "x: &a [1, *a]\n" + text if rng.random() < 0.5 else text.replace(
        "\n", "\r\n"), "text prefix/crlf"


# ------------------------------------------------------------------ mutants


@dataclass
class Mutant:
    index: int
    source: str
    ops: list[str]
    text: str

    def describe(self, limit: int = 4000) -> str:
        text = self.text if len(self.text) <= limit else \
            self.text[:limit] + f"\n... ({len(self.text):,} characters in all)"
        return (f"mutant #{self.index} of seed {SEED} (from {self.source}; "
                f"{'; '.join(self.ops)}):\n" + _indent(ascii_safe(text)))


def ascii_safe(text: str) -> str:
    """The text with control characters visible (a failure report must not drive the
    terminal), lines kept."""
    return "\n".join(repr(line)[1:-1] if _has_control(line) else line
                     for line in text.split("\n"))


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.split("\n"))


def serialize(data: Any, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.06:  # one line of JSON: netspec.load(text) must not take it for a path
        try:
            return json.dumps(data, ensure_ascii=rng.random() < 0.5)
        except (TypeError, ValueError):  # integer keys, a cycle
            pass
    flow = None if style < 0.3 else False
    try:
        return yaml.dump(data, Dumper=_Dumper, default_flow_style=flow, sort_keys=False,
                         allow_unicode=rng.random() < 0.7, width=rng.choice([80, 4096]))
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return f"netspec: 1\n# not dumpable: {type(exc).__name__}\n"


OK_SOURCES = [s for s in SOURCES if not s.path.startswith("specs/broken/")]


def mutant(index: int, seed: int | None = None) -> Mutant:
    """Mutant ``index`` of ``seed``: a function of the two alone.  Odd indices are gentle
    (a spec that checks, changed in ways that often keep it checking); even ones take every
    spec in turn, broken ones included, and change it every way."""
    seed = SEED if seed is None else seed
    rng = random.Random(f"{seed}:{index}")
    gentle = index % 2 == 1
    pool = OK_SOURCES if gentle else SOURCES
    source = pool[(index // 2) % len(pool)]  # every spec in turn
    ops: list[str] = []
    if not gentle and (not isinstance(source.data, dict) or rng.random() < 0.07):
        text, what = mutate_text(source.text, rng)
        return Mutant(index, source.path, [what], text)
    data = copy.deepcopy(source.data)
    table = GENTLE if gentle else OPS
    names = list(table)
    weights = [table[n].gentle_weight if gentle else table[n].weight  # type: ignore[attr-defined]
               for n in names]
    for _ in range(rng.choice([1, 1, 2]) if gentle else rng.choice([1, 1, 1, 2, 2, 3, 4])):
        name = rng.choices(names, weights)[0]
        ops.append(f"{name}: {table[name](data, rng, gentle)}")
    text = serialize(data, rng)
    if not gentle and rng.random() < 0.04:
        text, what = mutate_text(text, rng)
        ops.append(what)
    return Mutant(index, source.path, ops, text)


# ------------------------------------------------------------------ invariants


class Hang(BaseException):
    """Raised by the per-mutant guard (a BaseException: netspec's own handlers, which catch
    Exception, must not swallow it)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise Hang after ``seconds`` (SIGALRM; without it, in a thread other than the main
    one, no guard)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or seconds <= 0:
        yield
        return

    def expire(signum, frame):
        raise Hang(f"took longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Failure:
    kind: str  # what broke, where in netspec: failures of one kind share it
    detail: str
    mutant: Mutant


# line and paragraph separators, bidirectional overrides and isolates
_INVISIBLE = frozenset("\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" or c in _INVISIBLE for c in text)


def _where(exc: BaseException) -> str:
    """The innermost netspec frame of a traceback: file:line (function)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/netspec/" in f.filename.replace("\\", "/")] or frames
    if not ours:
        return "?"
    f = ours[-1]
    return f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno} ({f.name})"


def _first_line(text: str, width: int = 160) -> str:
    line = ascii_safe(str(text).split("\n")[0])
    return line if len(line) <= width else line[:width] + "..."


class Recorder:
    """Collects the failures of one mutant: ``with rec.stage("check"):`` reports any
    exception of that stage as a failure of kind 'STAGE raised TYPE at FILE:LINE'."""

    def __init__(self, m: Mutant):
        self.mutant = m
        self.failures: list[Failure] = []

    def fail(self, kind: str, detail: str = "") -> None:
        self.failures.append(Failure(kind, detail, self.mutant))

    @contextlib.contextmanager
    def stage(self, name: str, allowed: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
        try:
            yield
        except Hang:
            raise
        except allowed:
            pass
        except Exception as exc:  # the invariant: nothing else escapes
            self.fail(f"{name} raised {type(exc).__name__} at {_where(exc)}",
                      _first_line(f"{type(exc).__name__}: {exc}"))

    def diagnostics(self, where: str, diagnostics: Iterable[Any]) -> None:
        for d in diagnostics:
            text = d.format()
            if _has_control(d.message) or _has_control(text):
                self.fail(f"{where}: a diagnostic carries a raw control character or a line "
                          "break", _first_line(repr(text)))
                return
            if not (isinstance(d.line, int) and isinstance(d.col, int) and d.line >= 1
                    and d.col >= 1):
                self.fail(f"{where}: a diagnostic without a position", _first_line(text))
                return


def _no_dot():
    """Patch the report's layout step so that it does not run Graphviz (the DOT text is
    still built and the page written: what the report does without dot)."""
    import graphviz

    from netspec.emit import report

    def missing(g, fmt_):
        raise graphviz.ExecutableNotFound(("dot",))

    return _patched(report, "layout", missing)


@contextlib.contextmanager
def _patched(module: Any, name: str, replacement: Any) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield
    finally:
        setattr(module, name, old)


def _html_problems(html_text: str) -> str | None:
    """A link, script or event handler the spec put into the report, or None."""
    import re

    lowered = html_text.lower()
    for bad in ("<script", "xlink:href", " href=", "<iframe", "<object", "<embed",
                "<foreignobject"):
        if bad in lowered:
            return bad
    # inside a tag; in text (an error message quoting the spec, escaped) it is no link
    match = re.search(r"<[^>]*(\son[a-z]+\s*=|javascript:)", lowered)
    return match.group(0)[:40] if match else None


def api_invariants(m: Mutant, with_dot: bool | None = None) -> list[Failure]:
    """Every API invariant for one mutant; the failures found (empty: it held)."""
    import netspec
    from netspec.emit import codegen, render, report, summary

    rec = Recorder(m)
    rng = random.Random(f"{SEED}:{m.index}:checks")
    with_dot = rng.random() < 0.03 if with_dot is None else with_dot
    try:
        with deadline(TIMEOUT):
            result = None
            # a text that can only be a file's name ('netsp', a truncated spec) names a
            # missing file, as netspec.load says it raises
            from netspec.pipeline.check import _meant_as_a_file

            missing = (FileNotFoundError,) if _meant_as_a_file(m.text) else ()
            with rec.stage("check", allowed=missing):
                result = netspec.check(m.text)
            if result is None:
                return rec.failures
            rec.diagnostics("check", result.diagnostics)
            with rec.stage("check --json"):
                json.dumps(result.as_json(), ensure_ascii=False)
            if result.ok and result.layers:
                with rec.stage("check table"):
                    result.table()
            options = rng.choice([{}, {"depth": 1}, {"compact": True}, {"depth": 2}])
            # from the text (check again, diagnostics placed in the YAML) or the result
            source = m.text if rng.random() < 0.25 else result
            with rec.stage(f"render.to_dot{options or ''}"):
                render.to_dot(source, **options)
            with rec.stage("report (without dot)"), _no_dot():
                report.html_report(result, **options)
            if with_dot:
                # render() lays out at a depth dot can manage (a 10,000-copy repeat: depth 1);
                # graph() + layout() of the full diagram is refused, not laid out for minutes
                with rec.stage("render with dot", allowed=(render.DiagramTooLarge,)):
                    with tempfile.TemporaryDirectory() as tmp:
                        render.render(m.text, Path(tmp) / "net.svg", **options)
                with rec.stage("dot on graph()", allowed=(render.DiagramTooLarge,)):
                    render.layout(render.graph(m.text, **options), "svg")
                with rec.stage("report with dot"):
                    page = report.html_report(m.text, **options)[0]
                    bad = _html_problems(page)
                    if bad:
                        rec.fail("report carries a link, script or handler from the spec", bad)
            if not result.ok:
                with rec.stage("summary of a failing spec", allowed=(netspec.SpecError,)):
                    summary.summarize(result)
                    rec.fail("summary accepted a spec check refuses")
                with rec.stage("codegen of a failing spec", allowed=(netspec.SpecError,)):
                    codegen.generate(result, "class")
                    rec.fail("codegen accepted a spec check refuses")
                return rec.failures
            with rec.stage("summary"):
                s = summary.summarize(result)
                s.table()
                s.table(depth=1)
                json.dumps(s.as_json(), ensure_ascii=False)
            for style in codegen.STYLES:
                codegen_invariant(rec, result, style)
    except Hang as exc:
        rec.fail(f"hang: {exc}")
    return rec.failures


def codegen_invariant(rec: Recorder, spec: Any, style: str) -> str | None:
    """The generated source (which must compile), or None for a clean refusal."""
    from netspec import SpecError
    from netspec.emit import codegen

    source = None
    try:
        source = codegen.generate(spec, style)
    except (codegen.StyleError, codegen.CodegenError) as exc:
        rec.diagnostics(f"codegen --style {style} refusal", exc.diagnostics)
        return None
    except SpecError as exc:
        rec.fail(f"codegen --style {style} refused a spec check accepts",
                 _first_line(exc.diagnostics[0].message if exc.diagnostics else str(exc)))
        return None
    except Hang:
        raise
    except Exception as exc:
        rec.fail(f"codegen --style {style} raised {type(exc).__name__} at {_where(exc)}",
                 _first_line(f"{type(exc).__name__}: {exc}"))
        return None
    try:
        compile(source, f"<codegen {style}>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        rec.fail(f"codegen --style {style} wrote code that does not compile "
                 f"({type(exc).__name__})", _first_line(str(exc)))
        return None
    return source


# ------------------------------------------------------------------ build against codegen

MAX_BUILD_PARAMS = 8_000_000  # MobileNetV2, SqueezeNet, GoogLeNet, DenseNet-121 fit
MAX_BUILD_BYTES = 16 * 2**20  # activations of one forward pass at batch 2
MAX_BUILD_MACS = 5 * 10**7
SMALL_SIDES = (32, 48, 64, 96)  # images tried, smallest first, when the spec's own is costly


def cheap(m: Mutant) -> Any:
    """The check of an ok mutant that is cheap to build and run (at a smaller image than
    its own where that checks too: the modules do not depend on it), else None."""
    import netspec
    from netspec.emit import summary

    def affordable(result: Any) -> bool:
        if not result.ok or not result.layers:
            return False
        s = summary.summarize(result, batch=2)
        return s.params <= MAX_BUILD_PARAMS and s.activation_bytes <= MAX_BUILD_BYTES and \
            s.macs <= MAX_BUILD_MACS and len(s.rows) <= 300

    try:
        result = netspec.check(m.text)
        if not result.ok or not result.layers:
            return None
        if affordable(result):
            return result
        shape = result.network.input_shape
        if len(shape) != 3 or result.network.input_dtype != "float32":
            return None
        for side in SMALL_SIDES:
            if side < shape[1]:
                smaller = netspec.check(m.text, (shape[0], side, side))
                if smaller.ok and affordable(smaller):
                    return smaller
    except Exception:  # the API invariants report this
        return None
    return None


def build_invariants(m: Mutant, result: Any, workdir: Path) -> list[Failure]:
    """build agrees with check; every generated module equals build, weight for weight."""
    import importlib.util

    import torch

    import netspec
    from netspec.emit import codegen
    from netspec.emit.export import flat_outputs

    rec = Recorder(m)
    try:
        with deadline(TIMEOUT * 2):
            model = None
            with rec.stage("build"):
                model = netspec.build(result).eval()
            if model is None:
                return rec.failures
            net = result.network
            torch.manual_seed(0)
            xs = []  # every input, by position (a seq2seq model's source and target)
            for spec_input in net.all_inputs:
                dtype = getattr(torch, spec_input.dtype)
                shape = (2, *spec_input.shape)
                xs.append(torch.zeros(shape, dtype=dtype) if not dtype.is_floating_point
                          else torch.randn(shape).to(dtype))
            want = None
            with rec.stage("build forward"), torch.no_grad():
                want = flat_outputs(model(*[x.clone() for x in xs]))
            if want is None:
                return rec.failures
            params = sum(p.numel() for p in model.parameters())
            kept = [o for o in net.outputs if not o.training_only]  # eval's outputs
            expected = [(*o.shape[:o.batch_dim], 2, *o.shape[o.batch_dim:]) for o in kept] \
                or [(2, *result.output_shape)]
            shapes = [tuple(w.shape) for w in want]
            if shapes != expected or params != result.total_params:
                rec.fail("build disagrees with check",
                         f"output {shapes} vs {expected}, params "
                         f"{params:,} vs {result.total_params:,}")
            state = model.state_dict()
            for style in codegen.STYLES:
                source = codegen_invariant(rec, result, style)
                if source is None:
                    continue
                file = workdir / f"gen_{m.index}_{style.replace('-', '_')}.py"
                file.write_text(source, encoding="utf-8")
                with rec.stage(f"generated {style} module"):
                    spec = importlib.util.spec_from_file_location(file.stem, file)
                    module = importlib.util.module_from_spec(spec)
                    spec.loader.exec_module(module)
                    generated = getattr(module, net.name)().eval()
                    got_keys = {k: tuple(v.shape) for k, v in generated.state_dict().items()}
                    want_keys = {k: tuple(v.shape) for k, v in state.items()}
                    # build's keys, or (names given or given up, as the file says) build's
                    # shapes in build's order, loaded by position
                    by_position = BY_POSITION in source and list(got_keys.values()) == \
                        list(want_keys.values())
                    if (list(got_keys) != list(want_keys) or got_keys != want_keys) \
                            and not by_position:
                        rec.fail(f"codegen --style {style}: other state_dict keys or shapes "
                                 "than build", _first_line(str(sorted(
                                     set(got_keys.items()) ^ set(want_keys.items())))))
                        continue
                    generated.load_state_dict(
                        state if list(got_keys) == list(want_keys)
                        else dict(zip(got_keys, state.values(), strict=True)), strict=True)
                    with torch.no_grad():
                        got = flat_outputs(generated(*[x.clone() for x in xs]))
                    if [g.shape for g in got] != [w.shape for w in want] or not all(
                            torch.allclose(g.float(), w.float(), rtol=1e-4, atol=1e-5,
                                           equal_nan=True) for g, w in zip(got, want, strict=True)):
                        rec.fail(f"codegen --style {style}: other outputs than build",
                                 f"shape {[tuple(g.shape) for g in got]} vs {shapes}")
    except Hang as exc:
        rec.fail(f"hang (build): {exc}")
    return rec.failures


# ------------------------------------------------------------------ the command line


def _cli_commands(m: Mutant, spec: str, out: Path, rng: random.Random) -> list[list[str]]:
    from netspec.emit.codegen import STYLES

    every = [["check", spec], ["check", "--json", spec], ["summary", spec],
             ["summary", "--json", "--depth", "1", spec],
             ["render", spec, "-o", str(out / "net.dot")],
             ["codegen", spec, "--style", rng.choice(STYLES)],
             ["codegen", spec, "-o", str(out / "net.py")],
             ["check", "--input", "3,16,16", spec]]
    commands = rng.sample(every, k=4)
    if m.index % 10 == 0:  # dot's layout and torch's dry run cost more: now and then
        commands.append(["report", spec, "-o", str(out / "report.html")])
        if cheap(m) is not None:
            commands.append(["build", spec])
    return commands


def cli_invariants(m: Mutant, workdir: Path) -> list[Failure]:
    """A few commands on the mutant's file through netspec.cli.main, in process."""
    from netspec.cli import main

    rec = Recorder(m)
    rng = random.Random(f"{SEED}:{m.index}:cli")
    spec = workdir / f"mutant_{m.index}.yaml"
    try:
        spec.write_text(m.text, encoding="utf-8")
    except (UnicodeEncodeError, OSError):
        return []
    try:
        with deadline(TIMEOUT):
            for argv in _cli_commands(m, str(spec), workdir, rng):
                out, err = io.StringIO(), io.StringIO()
                status: Any = None
                command = " ".join(argv[:1] + [a for a in argv[1:] if a.startswith("-")])
                with rec.stage(f"netspec {command}"), contextlib.redirect_stdout(out), \
                        contextlib.redirect_stderr(err):
                    try:
                        status = main(argv)
                    except SystemExit as exc:  # argparse
                        status = exc.code
                if status is None:
                    continue  # raised: recorded
                cli_output(rec, f"netspec {command}", status, out.getvalue(), err.getvalue())
    except Hang as exc:
        rec.fail(f"hang (cli): {exc}")
    return rec.failures


def cli_output(rec: Recorder, command: str, status: Any, out: str, err: str) -> None:
    if status not in (0, 1, 2):
        rec.fail(f"{command}: exit status {status!r}", _first_line(err[-300:]))
    if "Traceback" in out or "Traceback" in err:
        rec.fail(f"{command}: printed a traceback", _first_line(err[err.find("Traceback"):]
                                                                [-300:]))
    terminal = err + (out if "codegen" not in command else "")
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in terminal):
        rec.fail(f"{command}: raw control characters on the terminal",
                 _first_line(repr(terminal[:200])))


def cli_subprocess_invariants(m: Mutant, workdir: Path) -> list[Failure]:
    """``python -m netspec check`` and one other command on the mutant, in a fresh
    process."""
    import subprocess

    rec = Recorder(m)
    spec = workdir / f"mutant_{m.index}.yaml"
    try:
        spec.write_text(m.text, encoding="utf-8")
    except (UnicodeEncodeError, OSError):
        return []
    other = [["codegen", str(spec)], ["summary", str(spec)],
             ["render", str(spec), "-o", str(workdir / "net.dot")]][m.index % 3]
    for argv in (["check", str(spec)], other):
        try:
            done = subprocess.run([sys.executable, "-m", "netspec", *argv], cwd=ROOT,
                                  capture_output=True, text=True, timeout=TIMEOUT * 2,
                                  errors="replace")
        except subprocess.TimeoutExpired:
            rec.fail(f"hang (netspec {argv[0]} subprocess)")
            continue
        cli_output(rec, f"netspec {argv[0]} (subprocess)", done.returncode, done.stdout,
                   done.stderr)
    return rec.failures


# ------------------------------------------------------------------ running and reporting


def run(indices: Iterable[int], check: Callable[[Mutant], list[Failure]]) -> tuple[int,
                                                                                  list[Failure]]:
    """(mutants run, failures) for the mutants ``indices`` under ``check``."""
    count, failures = 0, []
    for i in indices:
        count += 1
        failures += check(mutant(i))
    return count, failures


def report(failures: list[Failure], count: int, what: str) -> str:
    """The failure message: by kind, each with its count and its shortest mutant."""
    kinds: dict[str, list[Failure]] = {}
    for f in failures:
        kinds.setdefault(f.kind, []).append(f)
    lines = [f"mutation fuzzer ({what}): {len({f.mutant.index for f in failures})} of {count} "
             f"mutants broke an invariant, {len(kinds)} kinds (NETSPEC_FUZZ_SEED={SEED}); "
             "rerun one with NETSPEC_FUZZ_SEED=<seed> .venv/bin/python -m tests.fuzz_specs "
             "<index>"]
    for kind, group in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        smallest = min(group, key=lambda f: len(f.mutant.text))
        lines.append(f"\n[{len(group)}x] {kind}")
        if smallest.detail:
            lines.append(f"  {smallest.detail}")
        lines.append(_indent(smallest.mutant.describe(limit=2500)))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``python -m tests.fuzz_specs INDEX...``: show each mutant and what it breaks."""
    import tempfile

    if not argv:
        print(__doc__)
        return 2
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for arg in argv:
            m = mutant(int(arg))
            print(m.describe(limit=10**6))
            failures = api_invariants(m, with_dot=True) + cli_invariants(m, Path(tmp))
            result = cheap(m)
            if result is not None:
                failures += build_invariants(m, result, Path(tmp))
            for f in failures:
                print(f"  BROKEN: {f.kind}" + (f": {f.detail}" if f.detail else ""))
            print("  held every invariant" if not failures else "")
            status = status or bool(failures)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
