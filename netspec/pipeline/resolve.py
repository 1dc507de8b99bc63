"""Stage 3, resolve: a validated document -> the network as a graph of nodes.

Blocks, repeats, ``if:``, ``first:`` and ``from:`` are expanded here, and each layer
entry's arguments are brought to one form (keywords), whether the user wrote a mapping,
PyTorch's positional list, a scalar or nothing; each argument remembers where it was
written so later errors can point at it."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from netspec.core.diagnostics import Diagnostic, closest, did_you_mean
from netspec.core.document import Document
from netspec.core.expr import ExprError, evaluate, is_expression
from netspec.core.graph import Node
from netspec.core.names import ENTRY_NAME, MODULE_NAME, split_source
from netspec.ops import REGISTRY, Args, LayerType, fmt
from netspec.pipeline.schema import ENTRY_KEYS, MAX_REPEAT
from netspec.pipeline.validate import (
    entry_label,
    entry_type,
    identifier_problem,
    layer_info,
    layer_label,
    lookup,
    name_problem,
    validate_entry,
    validate_first,
)


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
class Input:
    """One input of the network: forward's argument ``name`` (``x`` for a lone input:)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass
class Output:
    """One tensor forward returns: ``key`` (its place in a tuple, or its dict key) and the
    entry (or entry.output) that gives it; a training_only one is computed and returned
    only in training (GoogLeNet's aux heads)."""

    key: str
    source: str
    training_only: bool = False
    path: tuple = ()  # where it is written, for messages
    shape: tuple[int, ...] | None = None  # inferred (None: unknown, or an error)
    dtype: str | None = None
    batch_dim: int = 0  # 1: a recurrent state (h_n), its batch between layers and hidden


@dataclass
class Network:
    name: str
    input_shape: tuple[int, ...]
    input_dtype: str
    layers: list[LayerEntry]
    # block name -> its declared parameters and their defaults ("required": none)
    blocks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # named inputs (inputs:), in forward's order; empty for input: (one input, x)
    inputs: list[Input] = field(default_factory=list)
    # outputs: as written; empty: forward returns the last entry's output
    outputs: list[Output] = field(default_factory=list)
    returns: str = "tensor"  # tensor | tuple | dict | namedtuple

    @property
    def all_inputs(self) -> list[Input]:
        """Every input, a lone input: as one named x."""
        return self.inputs or [Input("x", self.input_shape, self.input_dtype)]


def _input(value: Any) -> tuple[tuple[int, ...], str]:
    if isinstance(value, dict):
        return tuple(value["shape"]), value.get("dtype", "float32")
    return tuple(value), "float32"


def _outputs(data: dict) -> tuple[list[Output], str]:
    written = data.get("outputs")
    if written is None:
        return [], "tensor"
    if isinstance(written, list):
        outputs = [Output(str(i), name, path=("outputs", i)) for i, name in enumerate(written)]
        default = "tuple"
    else:
        outputs = [Output(key, value["from"], bool(value.get("training_only")),
                          ("outputs", key, "from")) if isinstance(value, dict)
                   else Output(key, value, path=("outputs", key))
                   for key, value in written.items()]
        default = "dict"
    return outputs, data.get("returns", default)


def resolve(doc: Document) -> Network:
    """The network's name, inputs and outputs; its layers are resolved entry by entry as
    they are walked (a block's arguments depend on its parameters)."""
    data = doc.data
    inputs = [Input(name, *_input(value)) for name, value in (data.get("inputs") or {}).items()]
    shape, dtype = (inputs[0].shape, inputs[0].dtype) if inputs else _input(data["input"])
    # a block whose params are not a mapping has been reported by validation (not fatal)
    blocks = {name: dict(body["params"]) if isinstance(body, dict)
              and isinstance(body.get("params"), dict) else {}
              for name, body in (data.get("blocks") or {}).items()}
    outputs, returns = _outputs(data)
    return Network(data.get("name", "Net"), shape, dtype, [], blocks, inputs, outputs, returns)


@dataclass
class BodyPorts:
    """A group's or a block's inputs: and outputs: (none: one tensor in, one out)."""

    inputs: list[str]
    outputs: list[Output]
    returns: str  # tensor (one output) | tuple | dict


def body_ports(definition: Any, path: tuple) -> BodyPorts:
    """The inputs: and outputs: a block definition or a group entry at ``path`` declares
    (schema-valid): a list of outputs is a tuple (one: the tensor itself), a mapping a
    dict."""
    if not isinstance(definition, dict):
        return BodyPorts([], [], "tensor")
    declared = definition.get("inputs")
    # inputs: that is no list (true) is validation's to report; a repeat asks before that
    inputs = [str(n) for n in declared] if isinstance(declared, list) else []
    written = definition.get("outputs")
    if isinstance(written, list):
        outputs = [Output(str(i), str(source), path=path + ("outputs", i))
                   for i, source in enumerate(written)]
        returns = "tuple" if len(outputs) > 1 else "tensor"
    elif isinstance(written, dict):
        outputs = [Output(str(key), str(source), path=path + ("outputs", key))
                   for key, source in written.items()]
        returns = "dict"
    else:
        outputs, returns = [], "tensor"
    return BodyPorts(inputs, outputs, returns)


def keyword_form(lt: Any, args: Any, args_path: tuple = ()) -> tuple[str, dict, dict]:
    """A layer's arguments as written (a mapping, a positional list, one scalar for the
    first positional argument, or nothing) -> (form, {argument: value}, {argument: the
    YAML path of its value})."""
    if isinstance(args, dict):
        return "keywords", dict(args), {k: args_path + (k,) for k in args}
    if isinstance(args, list) and lt.list_arg is not None:  # PyTorch's *dims
        return "list", {lt.list_arg.name: list(args)}, {lt.list_arg.name: args_path}
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


def as_written(message: str, arg: str, value: Any, text: str) -> str:
    """A message about an argument written as arithmetic names the arithmetic too:
    'in_features 1600 does not match' -> 'in_features 64*5*5 = 1600 does not match'."""
    plain = f"{arg} {value}"
    if plain in message:
        return message.replace(plain, f"{arg} {text} = {value}", 1)
    return f"{message} ({arg} is {text} = {value})"


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


# ---------------------------------------------------------------------------- expansion
#
# Resolve expands the network entry by entry: blocks into their bodies, repeats into their
# copies (first: merged into the first), if: into kept or left-out entries, from: into the
# flows an entry takes.  It hands each resolved layer to infer before going on, because
# what comes next can depend on a shape: `in_channels` (the channels coming in) is a
# parameter of every block and of every if: and repeat: expression.


@dataclass
class Scope:
    """One layers list being expanded: the top level, a group, or a block's body."""

    path: tuple  # where the list is in the document
    prefix: str  # qualified-name prefix of its entries ("" or "layer2.0.")
    params: dict[str, Any] | None = None  # block parameters (None outside blocks)
    block: str | None = None
    depth: int = 0


@dataclass
class Flow:
    """A tensor flowing between entries: its shape (None: unknown), dtype and provenance."""

    shape: tuple[int, ...] | None
    dtype: str
    origin: str
    node: str  # the entry (in its scope) that produced it, or "input"
    batched: bool = True  # False: a Parameter's tensor, its shape the whole shape
    # the outputs an entry gives besides (or, for Split, instead of) this one, by name:
    # Split's parts, an LSTM's h_n and c_n (from: lstm.h_n)
    parts: dict[str, Flow] | None = None
    whole: bool = True  # False: the entry gives several tensors, one must be named
    batch_dim: int = 0  # 1: a recurrent state (layers × batch × hidden)
    # what an entry left out by if: passes on (its input): a part of it (halves.0 of a
    # Chunk left out) is that input too, as the entry itself is
    left_out: bool = False


MAX_DEPTH = 32  # blocks using blocks: deeper than this is a runaway recursion
# entries after repeats and blocks are expanded: repeats multiply (10,000 copies of a block
# that repeats a layer 10,000 times is 10^8 layers, hours of checking); 100,000 checks in
# about 10 s and is far beyond any real network (DenseNet-121 expands to about 700)
MAX_EXPANDED = 100_000

# infer's half of the walk: a resolved layer entry and the flows into it -> its node and
# the flow out of it
InferLayer = Callable[[LayerEntry, bool, list[Flow]], tuple[Node, Flow]]


class Diagnostics:
    """What resolve and infer report, in order; a mistake in a block's body once, however
    often the block is used."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.found: list[Diagnostic] = []
        self.seen_in_blocks: set[tuple] = set()

    def report(
        self, entry: LayerEntry, message: str, arg: str | None = None, severity: str = "error"
    ) -> None:
        path = entry.arg_path(arg)
        if arg is not None and tuple(path) in self.doc.folded:
            message = as_written(message, arg, entry.given.get(arg), self.doc.folded[tuple(path)])
        self.add(
            self.doc.diagnostic(path, f"{entry.label}: {message}", severity=severity,
                                layer=entry.info),
            in_block=entry.block is not None,
        )
    def add(self, diagnostic: Diagnostic, in_block: bool = False) -> None:
        if in_block:  # a block used 16 times reports a mistake in its body once
            key = (diagnostic.line, diagnostic.col, diagnostic.severity,
                   diagnostic.message.split(": ", 1)[-1])
            if key in self.seen_in_blocks:
                return
            self.seen_in_blocks.add(key)
        self.found.append(diagnostic)
    def error_at(self, path: tuple, message: str, in_block: bool, at_key: bool = False,
                 severity: str = "error") -> None:
        self.add(self.doc.diagnostic(path, message, severity=severity, at_key=at_key),
                 in_block=in_block)


def _weights(node: Node) -> dict[str, tuple[int, ...]] | None:
    """A checked layer's parameters by name with their shapes (None: its op does not
    declare them, or it is not a layer)."""
    lt = REGISTRY.get(node.type) if node.kind == "layer" else None
    if lt is None or lt.weights is None:
        return None
    return lt.weights(Args.filled(lt, node.kwargs))


def failed(index: int, name: str, raw: Any, qualname: str, inputs: list[Flow]) -> tuple[Node, Flow]:
    """The node of an entry whose output is unknown (its error is reported)."""
    return (Node(index, name, entry_type(raw) or "?", inputs[0].shape, None, None,
                 qualname=qualname), Flow(None, inputs[0].dtype, "", name))


def unchecked(index: int, name: str, raw: Any, qualname: str, previous: Flow
              ) -> tuple[Node, Flow]:
    """The node of an entry not checked: its input is unknown, or the entry is broken."""
    return (Node(index, name, entry_type(raw) or "?", None, None, None, qualname=qualname),
            Flow(None, previous.dtype, "", name))


def _not_a_branch(node: Node) -> str | None:
    """Why a layer cannot be a branch, the module of an nn.ModuleList called on its input:
    a function op (called in forward), a tensor, an op taking several inputs; else None."""
    op = REGISTRY.get(node.type) if node.kind in ("layer", "merge") else None
    if op is None:
        return None
    wrap = "; put it in a group: - layers: [...]"
    if op.takes_none:
        return f"a branch is a module run on the entry's input, and {op.name} is a tensor"
    if not op.torch.module:
        return (f"a branch is a module, as an nn.ModuleList holds, and {op.name} is a "
                f"function called in forward ({op.torch.target})" + wrap)
    if node.kind == "merge" or op.takes_several:
        return f"{op.name} takes several inputs, and a branch takes the entry's one input"
    return None


def takes_all_parts(raw: Any) -> bool:
    """The entry's op takes its tensors as one list (Concat, Stack: torch.cat(tensors)):
    from: naming an entry that gives several (branches) gives it all of them, in order."""
    lt = REGISTRY.get(entry_type(raw) or "")
    return lt is not None and lt.torch.inputs == "list"


class Expander:
    def __init__(self, doc: Document, broken: set[tuple], report: Diagnostics,
                 infer_layer: InferLayer):
        self.doc = doc
        self.broken = broken
        self.diagnostics = report
        self.infer_layer = infer_layer
        data = doc.data
        self.blocks: dict[str, Any] = data.get("blocks") or {} if isinstance(data, dict) else {}
        # a block body entry, its parameters substituted, checked against the schema once per
        # distinct value: DenseNet-121's 58 dense layers are 13 distinct entries
        self.entry_problems: dict[tuple, list[Diagnostic]] = {}
        self.expanded = 0  # entries walked so far, repeats and blocks expanded
        self.top_env: dict[str, Flow] = {}  # the top-level names, once walked
        self.last_env: dict[str, Flow] = {}  # the names of the list walked last

    def add(self, diagnostic: Diagnostic, in_block: bool = False) -> None:
        self.diagnostics.add(diagnostic, in_block)

    def error_at(self, path: tuple, message: str, scope: Scope, at_key: bool = False,
                 severity: str = "error") -> None:
        self.diagnostics.error_at(path, message, scope.block is not None, at_key, severity)

    def run(self, flows: dict[str, Flow]) -> tuple[list[Node], dict[str, Flow]]:
        """The top-level list on the network's inputs (one named 'input', or named ones):
        its nodes, and every name it ends with (for outputs:)."""
        first = next(iter(flows.values()))
        nodes, last = self.scope(Scope(("layers",), ""), self.doc.data["layers"], first,
                                 named=flows if "input" not in flows else None)
        return nodes, {**self.top_env, "": last}

    def scope(self, scope: Scope, entries: list, flow: Flow,
              named: dict[str, Flow] | None = None) -> tuple[list[Node], Flow]:
        """Walk one layers list; returns its results and the flow out of its last entry.
        ``named``: the network's named inputs (the first is ``flow``)."""
        if named is None:
            flow = replace(flow, node="input")  # named as seen inside
            env: dict[str, Flow] = {"input": flow}
        else:
            env = dict(named)
        later = {e["name"]: i for i, e in enumerate(entries)
                 if isinstance(e, dict) and isinstance(e.get("name"), str)}
        results: list[Node] = []
        previous = flow
        failed_at: tuple[int, str] | None = None  # (index, qualified name)
        skipped: list[tuple[tuple, str]] = []
        active = 0
        for index, raw in enumerate(entries):
            path = scope.path + (index,)
            if not self.condition(scope, raw, path, flow):
                # an entry left out by if: passes its input on, so from: can still name it
                name = raw.get("name") if isinstance(raw, dict) else None
                if isinstance(name, str):
                    flows, ok = self.sources(scope, raw, path, env, later, index, previous)
                    env[name] = replace(flows[0], left_out=True) if ok else \
                        Flow(None, previous.dtype, "", name)
                continue
            name = raw.get("name") if isinstance(raw, dict) else None
            name = name if isinstance(name, str) else str(active)
            active += 1
            qualname = scope.prefix + name
            inputs, ok = self.sources(scope, raw, path, env, later, index, previous)
            broken = path in self.broken or not ok
            if not broken and any(f.shape is None for f in inputs):
                skipped.append((path, qualname))
                result, out = unchecked(index, name, raw, qualname, previous)
            elif broken:
                if not skipped:  # the note names the last error before the unchecked run
                    failed_at = (index, qualname)
                result, out = unchecked(index, name, raw, qualname, previous)
            else:
                result, out = self.entry(scope, raw, path, index, name, qualname, inputs)
                if out.shape is None and not skipped:
                    failed_at = (index, qualname)
            if isinstance(raw, dict) and "from" in raw:
                result.sources = [f.node for f in inputs]
            result.path, result.written, result.block = path, raw, scope.block
            if isinstance(raw, dict) and "tie" in raw and result.output_shape is not None:
                self.tie(scope, raw, path, result, results)
            result.output_dtype = out.dtype
            results.append(result)
            env[name] = replace(out, node=name)
            previous = env[name]
        if skipped and failed_at is not None:
            self.note_unchecked(scope, skipped, failed_at)
        if results and results[-1].kind == "branches" and not previous.whole:
            previous = self.branches_last(scope, results[-1], previous)
        if scope.path == ("layers",):
            self.top_env = env
        self.last_env = env  # a body's names, for its outputs: (read at once, before another)
        return results, previous

    def note_unchecked(self, scope: Scope, skipped: list[tuple[tuple, str]],
                       failed_at: tuple[int, str]) -> None:
        """'layers 5–6 not shape-checked': a note at the first entry after an error whose
        input shape is unknown."""
        first, last = skipped[0], skipped[-1]
        if scope.path == ("layers",):
            span = (f"layer {first[0][-1]}" if first is last
                    else f"layers {first[0][-1]}–{last[0][-1]}")
            after = f"layer {failed_at[0]}"
        else:
            span = first[1] if first is last else f"{first[1]} to {last[1]}"
            after = failed_at[1]
        self.error_at(first[0], f"{span} not shape-checked: the shape coming out of "
                      f"{after} is unknown after its error", scope, severity="note")

    def condition(self, scope: Scope, raw: Any, path: tuple, flow: Flow) -> bool:
        if not isinstance(raw, dict) or "if" not in raw:
            return True
        value = raw["if"]
        if isinstance(value, bool):
            return value
        env = self.expression_env(scope, flow)
        try:
            result = evaluate(str(value), env)
        except ExprError as exc:
            self.error_at(path + ("if",), f"if: {exc}", scope)
            self.broken.add(path)
            return True
        return bool(result)

    def expression_env(self, scope: Scope, flow: Flow) -> dict[str, Any]:
        env = dict(scope.params or {})
        if flow.shape:
            env.setdefault("in_channels", flow.shape[0])
        return env

    def sources(self, scope, raw, path, env, later, index, previous) -> tuple[list[Flow], bool]:
        """The flows an entry takes: from: names, or the previous entry's output."""
        if not isinstance(raw, dict) or "from" not in raw:
            op = REGISTRY.get(entry_type(raw) or "")
            if not previous.whole and not (op is not None and op.takes_none):
                # a Parameter takes nothing: after branches (CrossViT's cls_token_0) too
                self.whole_parts(scope, path, path, previous)
                return [previous], False
            return [previous], True
        names = raw["from"] if isinstance(raw["from"], list) else [raw["from"]]
        flows, ok = [], bool(names)  # from: [] is validation's to report
        takes_list = takes_all_parts(raw)
        for i, name in enumerate(names):
            where = path + ("from",) + ((i,) if isinstance(raw["from"], list) else ())
            if isinstance(name, str) and name in env:
                if not env[name].whole and takes_list:  # torch.cat(res): every part, in order
                    flows.extend(env[name].parts.values())
                    continue
                if not env[name].whole:
                    self.whole_parts(scope, path, where, env[name])
                    ok = False
                flows.append(env[name])
                continue
            if isinstance(name, str) and "." in name and name not in later and \
                    name != raw.get("name"):  # not an entry named by a key path (convs.3)
                part = self.part(scope, path, where, env, name)
                if part is not None:
                    flows.append(part)
                    continue
                ok = False
                continue
            ok = False
            if not (isinstance(name, str) and ENTRY_NAME.fullmatch(name)):
                continue  # validation has said it is not a name
            if name == raw.get("name"):
                why = "an entry cannot take its own output"
            elif name in later and later[name] > index:
                there = scope.path + (later[name],)
                other = lookup(self.doc.data, there)
                back = other.get("from") if isinstance(other, dict) else None
                cycle = raw.get("name") in (back if isinstance(back, list) else [back])
                what = "layer" if scope.path == ("layers",) else "entry"
                why = (f"'{name}' comes later ({what} {later[name]}, line "
                       f"{self.doc.where(there)[0]})"
                       + (" and takes this entry's output: a cycle" if cycle
                          else ": move this entry below it")
                       + "; from: refers to earlier entries only, so a network has no cycles")
            else:
                known = [n for n in env if n != "input"]
                extra = ["input"] if "input" in env else []
                why = (f"no earlier entry here is named '{name}'"
                       f"{did_you_mean(str(name), known + extra)}; names here: "
                       f"{', '.join(known) or '(none yet)'}"
                       + (", and 'input'" if extra else ""))
            self.error_at(where, f"{entry_label(self.doc.data, path)}: from: {why}", scope)
        return flows, ok

    def tie(self, scope: Scope, raw: dict, path: tuple, node: Node, earlier: list[Node]
            ) -> None:
        """tie: {weight: embed.weight}: the entry's parameter is an earlier entry's of the
        same list, of the same shape (both must be ops that declare their weights)."""
        label = entry_label(self.doc.data, path)
        by_name = {n.name: n for n in earlier}
        own = _weights(node)
        for param, target in raw["tie"].items():
            where = path + ("tie", param)
            base, other_param = split_source(target, by_name)
            other = by_name.get(base)
            theirs = _weights(other) if other is not None else None
            if own is None or param not in own:
                problem = (f"{node.type} has no parameter '{param}' to tie"
                           + (f"; it has {', '.join(own)}" if own else ""))
            elif other is None:
                problem = (f"no earlier entry here is named '{base}'"
                           f"{did_you_mean(base, list(by_name))}")
            elif theirs is None or other_param not in theirs:
                problem = (f"'{base}' ({other.type}) has no parameter '{other_param}'"
                           + (f"; it has {', '.join(theirs)}" if theirs else ""))
            elif own[param] != theirs[other_param]:
                problem = (f"{param} is {fmt(own[param])} but {target} is "
                           f"{fmt(theirs[other_param])}: tied weights must have one shape")
            else:
                node.ties[param] = f"{other.qualname or other.name}.{other_param}"
                node.params = (node.params or 0) - math.prod(own[param])
                continue
            self.error_at(where, f"{label}: tie: {param}: {problem}", scope)

    def whole_parts(self, scope: Scope, path: tuple, where: tuple, flow: Flow) -> None:
        """An entry takes the output of an op that gives several tensors, without naming one."""
        names = list(flow.parts)
        shown = " or ".join(f"{flow.node}.{n}" for n in names[:3]) + \
            (f" ... {flow.node}.{names[-1]}" if len(names) > 3 else "")
        shapes = ", ".join(fmt(f.shape) for f in flow.parts.values())
        if len(names) == 1:  # outputs: {out: x}, one branch: Concat and Stack take two
            self.error_at(where, f"{entry_label(self.doc.data, path)}: '{flow.node}' gives "
                          f"one tensor ({shapes}) as its part '{names[0]}'; take it so: "
                          f"from: {flow.node}.{names[0]}", scope)
            return
        self.error_at(where, f"{entry_label(self.doc.data, path)}: '{flow.node}' gives "
                      f"{len(names)} tensors ({shapes}); take one by name: from: {shown}; "
                      f"Concat or Stack takes them all: from: {flow.node}", scope)

    def part(self, scope: Scope, path: tuple, where: tuple, env: dict, name: str) -> Flow | None:
        """from: halves.0, one output of an earlier entry; None after saying why not."""
        base, key = split_source(name, env)
        label = entry_label(self.doc.data, path)
        if base not in env:
            known = [n for n in env if n != "input"]
            if any(n.startswith(base + ".") for n in known):  # convs.0 is, convs.5 is not
                base = name
            self.error_at(where, f"{label}: from: no earlier entry here is named '{base}'"
                          f"{did_you_mean(base, known)}", scope)
            return None
        flow = env[base]
        if flow.left_out:  # left out by if: what it would have taken, whichever part
            return flow
        if flow.parts is None and flow.shape is None:  # unknown after an error
            return replace(flow, node=name)
        if flow.parts is None:
            # a number is taken as a string: from: 1 would be an int
            how = f"write from: '{base}'" if base.isdigit() else f"write from: {base}"
            self.error_at(where, f"{label}: from: '{base}' gives one tensor, not several: "
                          f"{how}", scope)
            return None
        if key not in flow.parts:
            names = list(flow.parts)
            self.error_at(where, f"{label}: from: '{base}' has no output '{key}'"
                          f"{did_you_mean(key, names)}; it gives {len(names)}: "
                          f"{', '.join(f'{base}.{n}' for n in names)}", scope)
            return None
        return flow.parts[key]

    def entry(self, scope, raw, path, index, name, qualname, inputs) -> tuple[Node, Flow]:
        self.expanded += 1
        if self.expanded > MAX_EXPANDED:
            if self.expanded == MAX_EXPANDED + 1:
                self.error_at(path, f"{entry_label(self.doc.data, path)}: the network expands "
                              f"to more than {MAX_EXPANDED:,} layers here (repeats multiply, "
                              "blocks add their layers); make a repeat smaller", scope)
            return failed(index, name, raw, qualname, inputs)
        if isinstance(raw, dict) and "repeat" in raw:
            return self.repeat(scope, raw, path, index, name, qualname, inputs)
        if isinstance(raw, dict) and "branches" in raw:
            return self.branches(scope, raw, path, index, name, qualname, inputs)
        if isinstance(raw, dict) and "layers" in raw:
            child = Scope(path + ("layers",), qualname + ".", scope.params, scope.block,
                          scope.depth)
            return self.body(scope, child, raw, path, index, name, qualname, inputs, "group",
                             "group")
        type_name = entry_type(raw)
        if type_name in self.blocks:
            args = raw.get(type_name) if isinstance(raw, dict) else None
            return self.call(scope, type_name, args, path, index, name, qualname, inputs)
        return self.layer_entry(scope, raw, path, index, name, qualname, inputs)

    def container(self, index, name, type_name, kind, qualname, inputs, children, out):
        known = all(c.params is not None for c in children) and out.shape is not None
        return Node(
            index, name, type_name, inputs[0].shape, out.shape,
            sum(c.params or 0 for c in children) if known else None,
            kind=kind, qualname=qualname, output=out.node, children=children,
        )

    def layer_entry(self, scope, raw, path, index, name, qualname, inputs):
        if scope.params is not None:  # a block body: substitute parameters, then check
            try:
                env = self.expression_env(scope, inputs[0])
                # only the layer's arguments: name:/from: 'squeeze' stay names (a Fire block
                # with a parameter squeeze names its squeeze conv 'squeeze')
                raw = ({k: v if k in ENTRY_KEYS else substitute(v, env) for k, v in raw.items()}
                       if isinstance(raw, dict) else substitute(raw, env))
            except ExprError as exc:
                self.error_at(path, f"{entry_label(self.doc.data, path)}: {exc}", scope)
                return failed(index, name, raw, qualname, inputs)
            key = (path, json.dumps(raw, sort_keys=True, default=repr))
            if key not in self.entry_problems:
                self.entry_problems[key] = validate_entry(self.doc, path, raw)
            problems = self.entry_problems[key]
            if problems:
                for d in problems:
                    self.add(d, in_block=True)
                return failed(index, name, raw, qualname, inputs)
        problems: list[Diagnostic] = []
        entry = resolve_entry(self.doc, path, index, raw, problems, name=name, qualname=qualname,
                              block=scope.block)
        for d in problems:
            self.add(d, in_block=scope.block is not None)
        if entry.broken:
            return failed(index, name, raw, qualname, inputs)
        return self.infer_layer(entry, isinstance(raw, dict) and "from" in raw, inputs)

    def call(self, scope, block_name, args, path, index, name, qualname, inputs):
        """A block used like a layer: bind its parameters, walk its body."""
        flow = inputs[0]
        label = entry_label(self.doc.data, path)
        if scope.depth >= MAX_DEPTH:
            self.error_at(path, f"{label}: blocks nest more than {MAX_DEPTH} deep (a block "
                          "that uses itself?)", scope)
            return failed(index, name, {block_name: args}, qualname, inputs)
        if ("blocks", block_name) in self.broken:
            return failed(index, name, {block_name: args}, qualname, inputs)
        definition = self.blocks[block_name]
        declared = definition.get("params") or {}
        if scope.params is not None:
            try:
                args = substitute(args, self.expression_env(scope, flow))
            except ExprError as exc:
                self.error_at(path, f"{label}: {exc}", scope)
                return failed(index, name, {block_name: args}, qualname, inputs)
        if args is None:
            args = {}
        args_path = path + (block_name,)
        if not isinstance(args, dict):
            self.error_at(args_path, f"{label}: block {block_name} takes its parameters as a "
                          f"mapping, e.g. {block_name}: {{{', '.join(declared) or '...'}}}", scope)
            return failed(index, name, {block_name: args}, qualname, inputs)
        params = self.bind(scope, block_name, declared, args, path, label)
        if params is None:
            return failed(index, name, {block_name: args}, qualname, inputs)
        if flow.shape:
            params.setdefault("in_channels", flow.shape[0])
        body = Scope(("blocks", block_name, "layers"), qualname + ".", params, block_name,
                     scope.depth + 1)
        return self.body(scope, body, definition, path, index, name, qualname, inputs,
                         block_name, "block")

    # ---------------------------------------------------------- inputs: and outputs:

    def body(self, scope: Scope, child: Scope, definition: dict, path: tuple, index: int,
             name: str, qualname: str, inputs: list[Flow], type_name: str, kind: str
             ) -> tuple[Node, Flow]:
        """A group's or a block's layers walked on the flows it is given: one (the previous
        entry's, or from:'s) or, with inputs:, one per named input; its outputs: are what
        it hands on (several: parts taken as from: name.0, name.key)."""
        ports = body_ports(definition, child.path[:-1])
        what = f"block {type_name}" if kind == "block" else "the group"
        wanted = ports.inputs or ["input"]
        if len(inputs) != len(wanted):
            label = entry_label(self.doc.data, path)
            where = path + ("from",) if isinstance(self.raw_at(path), dict) and \
                "from" in self.raw_at(path) else path
            takes = (f"{len(wanted)} inputs ({', '.join(wanted)})" if ports.inputs
                     else "one input (it declares no inputs:)")
            how = (f"; write from: [{', '.join(wanted)}] with the entries that give them"
                   if len(inputs) < len(wanted) else "")
            self.error_at(where, f"{label}: {what} takes {takes}, given {len(inputs)}{how}",
                          scope)
            return failed(index, name, definition if kind == "group" else {type_name: None},
                          qualname, inputs)
        named = ({n: replace(f, node=n) for n, f in zip(ports.inputs, inputs, strict=True)}
                 if ports.inputs else None)
        first = named[ports.inputs[0]] if named else inputs[0]
        children, last = self.scope(child, definition["layers"], first, named=named)
        env = self.last_env
        node = self.container(index, name, type_name, kind, qualname, inputs, children, last)
        node.port_inputs = list(ports.inputs)
        if not ports.outputs:
            return node, last
        flows = [self.port_flow(child, env, output, what) for output in ports.outputs]
        # an output naming an entry left out by if: is what that entry would have taken
        node.port_outputs = [(o.key, f.node if f is not None and f.left_out else o.source)
                             for o, f in zip(ports.outputs, flows, strict=True)]
        node.returns = ports.returns
        node.output = None
        node.input_shapes = [f.shape for f in inputs]
        if any(f is None or f.shape is None for f in flows):
            node.output_shape = node.params = None
            return node, Flow(None, inputs[0].dtype, "", name)
        node.output_shape = flows[0].shape
        if ports.returns == "tensor":
            return node, replace(flows[0], node=name, parts=None, whole=True)
        label = f"{kind} {qualname or name}" if kind == "group" else f"{type_name} '{name}'"
        parts = {o.key: replace(f, node=f"{name}.{o.key}", origin=f"output {o.key} of {label}, "
                                f"{fmt(f.shape)}", parts=None, whole=True)
                 for o, f in zip(ports.outputs, flows, strict=True)}
        node.outputs = [(key, f.shape) for key, f in parts.items()]
        return node, Flow(flows[0].shape, flows[0].dtype, "", name, parts=parts, whole=False)

    def raw_at(self, path: tuple) -> Any:
        return lookup(self.doc.data, path)

    def port_flow(self, child: Scope, env: dict[str, Flow], output: Output, what: str
                  ) -> Flow | None:
        """The flow one outputs: item of a body names; None after saying why there is none."""
        base, part = split_source(output.source, env)
        known = [n for n in env if n != "input"]
        flow = env.get(base)
        problem = None
        if flow is None:
            problem = (f"no entry of its layers (or input) is named '{base}'"
                       f"{did_you_mean(base, known)}; names: {', '.join(known) or '(none)'}")
        elif part and flow.left_out:
            return flow
        elif part and flow.parts is None and flow.shape is not None:
            problem = f"'{base}' gives one tensor, not several: write {base}"
        elif part and flow.parts is not None and part not in flow.parts:
            problem = (f"'{base}' has no output '{part}'{did_you_mean(part, list(flow.parts))}"
                       f"; it gives {', '.join(f'{base}.{n}' for n in flow.parts)}")
        elif not part and not flow.whole:
            problem = (f"'{base}' gives {len(flow.parts)} tensors; name one: "
                       f"{', '.join(f'{base}.{n}' for n in flow.parts)}")
        if problem:
            self.error_at(output.path, f"{what}: outputs: {output.key}: {problem}", child)
            return None
        if part and flow.parts is not None:
            return flow.parts[part]
        return flow

    def bind(self, scope: Scope, block_name: str, declared: dict, args: dict, path: tuple,
             label: str) -> dict[str, Any] | None:
        """A block's parameters from the arguments of one use and the declared defaults;
        None after reporting unknown or missing ones."""
        args_path = path + (block_name,)
        ok = True
        missing = [k for k, d in declared.items() if k not in args and d == "required"]
        unknown = [k for k in args if k not in declared]
        meant = set()  # required parameters an unknown key stands for: reported once, there
        for key in unknown:
            ok = False
            hint = did_you_mean(str(key), list(declared))
            guess = closest(str(key), list(declared))
            if guess is None and len(unknown) == 1 and len(missing) == 1:
                guess = missing[0]
                hint = f" (is it '{guess}', the required parameter that is missing?)"
            meant.add(guess)
            self.error_at(args_path + (key,), f"{label}: unknown parameter '{key}' for block "
                          f"{block_name}{hint}; it takes "
                          f"{', '.join(declared) or 'no parameters'}", scope, at_key=True)
        params: dict[str, Any] = {}
        for key, default in declared.items():
            if key in args:
                params[key] = args[key]
            elif key in meant:
                pass
            elif default == "required":
                ok = False
                self.error_at(args_path if args else path, f"{label}: block {block_name} needs "
                              f"parameter '{key}'", scope)
            else:
                params[key] = default
        return params if ok else None

    def repeat(self, scope, raw, path, index, name, qualname, inputs):
        """N copies as an nn.Sequential named 0..N-1 (or by repeat.name)."""
        spec = raw["repeat"]
        count = spec.get("count") if isinstance(spec, dict) else spec
        pattern = spec.get("name") if isinstance(spec, dict) else None
        where = path + ("repeat",) + (("count",) if isinstance(spec, dict) else ())
        label = entry_label(self.doc.data, path)
        if isinstance(count, str):
            try:
                count = evaluate(count, self.expression_env(scope, inputs[0]))
            except ExprError as exc:
                known = ", ".join(scope.params or {})
                self.error_at(where, f"{label}: repeat: {exc}; repeat takes a whole number of "
                              "copies, or an expression over " + (f"the block's parameters "
                              f"({known})" if known else "block parameters, and there are none "
                              "outside blocks"), scope)
                return failed(index, name, raw, qualname, inputs)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            self.error_at(where, f"{label}: repeat must be a positive whole number, got "
                          f"{count!r}", scope)
            return failed(index, name, raw, qualname, inputs)
        if count > MAX_REPEAT:  # a literal is the schema's to refuse; expressions are not
            self.error_at(where, f"{label}: repeat {count:,} is absurdly large (at most "
                          f"{MAX_REPEAT:,})", scope)
            return failed(index, name, raw, qualname, inputs)
        # names that cannot be used are reported; the shapes go on (as for a bad name:)
        child_names = self.child_names(scope, path, label, pattern, count) or \
            [str(k) for k in range(count)]
        base = {k: v for k, v in raw.items() if k not in ("repeat", "first", "name")}
        type_name = entry_type(base)
        ports = body_ports(self.blocks.get(type_name) if type_name else base, path)
        if len(ports.inputs) > 1 or ports.returns != "tensor":
            what = f"block {type_name}" if type_name else "the group"
            self.error_at(path + ("repeat",), f"{label}: repeat: passes one tensor from copy "
                          f"to copy, and {what} takes {len(ports.inputs) or 1} and gives "
                          f"{len(ports.outputs) or 1}; write the copies out, each taking "
                          "the one before's outputs (from: [a.0, a.1])", scope)
            return failed(index, name, raw, qualname, inputs)
        first = raw.get("first")
        if first is not None and not self.first_ok(scope, path, label, type_name, base, first,
                                                   inputs[0]):
            return failed(index, name, raw, qualname, inputs)
        children: list[Node] = []
        flow = inputs[0]
        for k in range(count):
            if k == 2 and self.too_many(children, count, path, label, scope):
                return failed(index, name, raw, qualname, inputs)
            copy = dict(base)
            if k == 0 and first:
                copy[type_name] = {**(copy.get(type_name) or {}), **first}
            child_name = child_names[k]
            child_qual = f"{qualname}.{child_name}"
            result, flow = self.entry(scope, copy, path, k, child_name, child_qual, [flow])
            result.path, result.written, result.block, result.copy = path, copy, scope.block, k
            result.output_dtype = flow.dtype
            children.append(result)
            if flow.shape is None:
                break
        repeated = f"{type_name or 'group'}×{count}"
        return self.container(index, name, repeated, "repeat", qualname, inputs, children,
                              flow), replace(flow, node=name)

    def too_many(self, children: list[Node], count: int, path: tuple, label: str,
                 scope: Scope) -> bool:
        """After two copies, whether all ``count`` would pass MAX_EXPANDED: said at once,
        rather than after expanding (and checking) the copies up to the limit (a block of
        40 layers repeated 2,500 times is 100,000 layers, seconds of work to reach)."""
        per_copy = sum(1 for _, n in children[-1].walk())
        if self.expanded + per_copy * (count - 2) <= MAX_EXPANDED:
            return False
        self.expanded = MAX_EXPANDED + 1  # the limit is reported once
        self.error_at(path, f"{label}: the network expands to more than {MAX_EXPANDED:,} "
                      f"layers here ({count:,} copies of about {per_copy:,} "
                      f"layer{'s' if per_copy != 1 else ''}; repeats "
                      "multiply, blocks add their layers); make a repeat smaller", scope)
        return True

    def child_names(self, scope, path, label, pattern, count) -> list[str] | None:
        """The names of a repeat's copies (0..N-1, or repeat.name with {n} and {i} filled
        in); None after reporting names that would not be distinct module names."""
        if pattern is None:
            return [str(k) for k in range(count)]
        where = path + ("repeat", "name")
        if not isinstance(pattern, str):
            return None  # validation has said it is not a string
        names = [pattern.replace("{n}", str(k + 1)).replace("{i}", str(k)) for k in range(count)]
        seen: dict[str, int] = {}
        for k, child in enumerate(names):
            if child in seen:
                self.error_at(where, f"{label}: repeat: name {json.dumps(pattern)} names copies "
                              f"{seen[child]} and {k} both '{child}'; put {{n}} (1, 2, ...) or "
                              f"{{i}} (0, 1, ...) in it, as in '{pattern}{{n}}'", scope)
                return None
            seen[child] = k
        for child in names:
            if child.isdigit() and child.isascii():  # as the copies are named by default
                continue
            if not MODULE_NAME.fullmatch(child):
                why = identifier_problem(child)
            else:
                why = name_problem(child)
                why = why and why.replace(f"name '{child}' ", "it ", 1)
            if why:
                self.error_at(where, f"{label}: repeat: name {json.dumps(pattern)} makes the "
                              f"child name {json.dumps(child)}, which cannot name a module: "
                              f"{why}", scope)
                return None
        return names

    def first_ok(self, scope, path, label, type_name, base, first, flow) -> bool:
        """Whether first: fits the repeated entry; reports why not."""
        where = path + ("first",)
        if not isinstance(first, dict):
            return False  # validation has said it is not a mapping
        if not first:
            return True
        if not type_name:
            self.error_at(where, f"{label}: first: overrides the arguments of a repeated "
                          "layer or block", scope)
            return False
        if not isinstance(base.get(type_name) or {}, dict):
            self.error_at(where, f"{label}: first: needs the repeated arguments as a mapping",
                          scope)
            return False
        if type_name in self.blocks:
            definition = self.blocks[type_name]
            declared = list(definition.get("params") or {}) \
                if isinstance(definition, dict) else []
            unknown = [k for k in first if k not in declared]
            for key in unknown:
                self.error_at(where + (key,), f"{label}: first: unknown parameter '{key}' for "
                              f"block {type_name}{did_you_mean(str(key), declared)}; it takes "
                              f"{', '.join(declared) or 'no parameters'}", scope, at_key=True)
            return not unknown
        values = first
        if scope.params is not None:
            try:
                values = substitute(first, self.expression_env(scope, flow))
            except ExprError as exc:
                self.error_at(where, f"{label}: first: {exc}", scope)
                return False
        problems = validate_first(self.doc, path, type_name, values)
        for d in problems:
            self.add(d, in_block=scope.block is not None)
        return not problems


    # ------------------------------------------------------------------------- branches

    def branches(self, scope, raw, path, index, name, qualname, inputs):
        """branches: [a, b, ...]: each entry on this entry's input (or, given as many
        tensors as branches, each on its own), side by side, as the modules of an
        nn.ModuleList (named 0..N-1, its state_dict keys); it gives their N outputs, taken
        one by one (from: name.0) or all at once, in order, by an op that takes a list of
        tensors (Concat: {dim: 1}, from: name)."""
        flow = inputs[0]
        label = entry_label(self.doc.data, path)
        count = len(raw["branches"])
        if len(inputs) > 1 and len(inputs) != count:
            self.error_at(path + ("from",), f"{label}: from: gives {len(inputs)} tensors to "
                          f"{count} branches; give one (each branch on it) or one per branch "
                          "(branch k on the k-th)", scope)
            return failed(index, name, raw, qualname, inputs)
        children: list[Node] = []
        parts: dict[str, Flow] = {}
        for k, branch in enumerate(raw["branches"]):
            # from: [a, b]: branch k on the k-th, as [m(t) for m, t in zip(self.convs, xs)]
            flow = inputs[k] if len(inputs) > 1 else inputs[0]
            where = path + ("branches", k)
            child_qual = f"{qualname}.{k}"
            if where in self.broken:
                result, out = unchecked(k, str(k), branch, child_qual, flow)
            else:
                result, out = self.entry(scope, branch, where, k, str(k), child_qual, [flow])
            result.path, result.written, result.block = where, branch, scope.block
            result.output_dtype = out.dtype
            children.append(result)
            problem = _not_a_branch(result) if out.shape is not None else None
            if problem:
                self.error_at(where, f"{entry_label(self.doc.data, where)}: {problem}", scope)
                out = Flow(None, out.dtype, "", str(k))
            elif not out.whole:  # a branch is one module giving one tensor, as torch's list
                self.error_at(where, f"{entry_label(self.doc.data, where)}: gives "
                              f"{len(out.parts)} tensors, where a branch gives one (the "
                              f"output {name}.{k} of {label})", scope)
                out = Flow(None, out.dtype, "", str(k))
            shown = fmt(out.shape) if out.shape is not None else "?"
            parts[str(k)] = Flow(out.shape, out.dtype, f"branch {k} of {label}, {shown}",
                                 f"{name}.{k}", batched=out.batched)
        known = all(p.shape is not None for p in parts.values())
        node = self.container(index, name, "branches", "branches", qualname, inputs, children,
                              Flow(children[0].output_shape if known else None, flow.dtype,
                                   "", name))
        if not known:
            return node, Flow(None, flow.dtype, "", name)
        node.outputs = [(k, p.shape) for k, p in parts.items()]
        first = parts["0"]
        return node, Flow(first.shape, first.dtype, first.origin, name, parts=parts,
                          whole=False)

    def branches_last(self, scope: Scope, node: Node, flow: Flow) -> Flow:
        """A list ends with a branches entry: its output would be several tensors, where a
        group's, a block's or the network's (without outputs:) is one; after saying so, the
        list's output is unknown."""
        if scope.path == ("layers",) and isinstance(self.doc.data, dict) and \
                self.doc.data.get("outputs") is not None:
            return flow  # outputs: names the tensors the network returns
        count = len(node.outputs)
        self.error_at(node.path, f"{entry_label(self.doc.data, node.path)}: its {count} "
                      "branches give a tensor each, and the last entry of a list gives its "
                      "output, one tensor; join them after it (- Concat: {dim: 1}, from: "
                      f"{node.name}) or take one (from: {node.name}.0)", scope)
        return Flow(None, flow.dtype, "", flow.node)
