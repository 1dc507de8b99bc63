"""Stage 4, infer: walk the network, fill in inferable arguments, apply each layer's shape
rule and parameter count.  Pure Python: nothing here imports torch."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from netspec.core.diagnostics import Diagnostic, closest, did_you_mean, number_text
from netspec.core.document import Document
from netspec.core.expr import ExprError, evaluate
from netspec.ops import Args, ShapeError, fmt
from netspec.pipeline.resolve import LayerEntry, Network, resolve_entry, substitute
from netspec.pipeline.schema import DTYPE_BYTES, ENTRY_KEYS, MAX_REPEAT
from netspec.pipeline.validate import (
    IDENTIFIER,
    entry_label,
    entry_type,
    identifier_problem,
    lookup,
    name_problem,
    validate_entry,
    validate_first,
)

INT_DTYPES = ("int64", "int32")


@dataclass
class LayerResult:
    index: int
    name: str
    type: str  # layer type, block name, or "group" / "repeat"
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None  # None: not known (an error here or before)
    params: int | None
    kwargs: dict[str, Any] = field(default_factory=dict)  # what the torch constructor gets
    kind: str = "layer"  # layer | merge | group | block | repeat
    qualname: str = ""  # dotted module path, as in state_dict keys
    sources: list[str] = field(default_factory=list)  # inputs: names in this list or "input"
    output: str | None = None  # group/block/repeat: the child whose output is the result
    children: list[LayerResult] = field(default_factory=list)
    output_dtype: str | None = None  # the dtype it hands on (summary's memory counts)
    # an op taking several inputs: the shape at each port (optional ports filled in)
    input_shapes: list = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = {
            "index": self.index,
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "params": self.params,
        }
        if self.kind != "layer":
            out["kind"] = self.kind
        if self.sources:
            out["from"] = self.sources
        if self.children:
            out["children"] = [c.as_json() for c in self.children]
        return out

    def walk(self, depth: int = 0):
        """(depth, result) for this result and everything nested in it."""
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)


_COUNTS = {2: "two", 3: "three", 4: "four"}


def _takes(lt) -> str:
    """'Sub takes two inputs (what to subtract from, and what to subtract)', from the ports;
    a variadic port takes two or more."""
    if lt.max_inputs is None:
        return f"{lt.name} takes two or more inputs"
    docs = [p.doc or p.name for p in lt.inputs]
    what = ", ".join(docs[:-1]) + ", and " + docs[-1]
    n = len(lt.inputs)
    return f"{lt.name} takes {_COUNTS.get(n, n)} inputs ({what})"


def _arity_error(lt, count: int) -> str | None:
    """An op with several ports given the wrong number of inputs (variadic ports are checked
    before, where from: is)."""
    if lt.max_inputs is None or lt.min_inputs <= count <= len(lt.inputs):
        return None
    return f"{_takes(lt)}, got {count}"


def _rank_error(entry: LayerEntry, x: tuple[int, ...]) -> str | None:
    port = entry.type.inputs[0]
    if port.ranks is not None:
        if len(x) in port.ranks:
            return None
        layouts = " or ".join(port.ranks[r] for r in sorted(port.ranks, reverse=True))
        return f"expects a {layouts} sample (batch excluded), got {fmt(x)}"
    if len(x) < port.min_rank:
        return (
            f"expects a sample with at least {port.min_rank} dimension"
            f"{'s' if port.min_rank > 1 else ''} (batch excluded), got {fmt(x)}"
        )
    return None


@dataclass
class Scope:
    """One layers list being walked: the top level, a group, or a block's body."""

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


MAX_DEPTH = 32  # blocks using blocks: deeper than this is a runaway recursion
# PyTorch sizes a tensor's storage in int64 bytes: a larger tensor cannot be made at all
# ("Storage size calculation overflowed"), on any machine
MAX_TENSOR_BYTES = 2**63 - 1
PARAM_DTYPE = "float32"  # netspec builds float32 parameters


def impossible_size(what: str, count: int, dtype: str, noun: str = "elements") -> str | None:
    """Why ``count`` values of ``dtype`` cannot exist in PyTorch, or None."""
    size = count * DTYPE_BYTES[dtype]
    if size <= MAX_TENSOR_BYTES:
        return None
    return (f"{what} {number_text(count)} {noun} ({number_text(size)} bytes of {dtype}), more "
            f"than PyTorch can allocate (a tensor holds at most 2**63-1 = "
            f"{MAX_TENSOR_BYTES:,} bytes)")
# entries after repeats and blocks are expanded: repeats multiply (10,000 copies of a block
# that repeats a layer 10,000 times is 10^8 layers, hours of checking); 100,000 checks in
# about 10 s and is far beyond any real network (DenseNet-121 expands to about 700)
MAX_EXPANDED = 100_000


class _Walker:
    def __init__(self, doc: Document, network: Network, broken: set[tuple]):
        self.doc = doc
        self.diagnostics: list[Diagnostic] = []
        self.network = network
        self.broken = broken
        data = doc.data
        self.blocks: dict[str, Any] = data.get("blocks") or {} if isinstance(data, dict) else {}
        self.dtype_from_input = True  # only dtype-agnostic layers (Flatten, ...) so far
        self.at_input = True  # no layer has run yet
        self.seen_in_blocks: set[tuple] = set()  # block-body errors are reported once
        # a block body entry, its parameters substituted, checked against the schema once per
        # distinct value: DenseNet-121's 58 dense layers are 13 distinct entries
        self.entry_problems: dict[tuple, list[Diagnostic]] = {}
        self.expanded = 0  # entries walked so far, repeats and blocks expanded

    def report(
        self, entry: LayerEntry, message: str, arg: str | None = None, severity: str = "error"
    ) -> None:
        self.add(
            self.doc.diagnostic(
                entry.arg_path(arg), f"{entry.label}: {message}", severity=severity,
                layer=entry.info,
            ),
            in_block=entry.block is not None,
        )

    def add(self, diagnostic: Diagnostic, in_block: bool = False) -> None:
        if in_block:  # a block used 16 times reports a mistake in its body once
            key = (diagnostic.line, diagnostic.col, diagnostic.severity,
                   diagnostic.message.split(": ", 1)[-1])
            if key in self.seen_in_blocks:
                return
            self.seen_in_blocks.add(key)
        self.diagnostics.append(diagnostic)

    def error_at(
        self, path: tuple, message: str, scope: Scope, at_key: bool = False, severity="error"
    ) -> None:
        self.add(
            self.doc.diagnostic(path, message, severity=severity, at_key=at_key),
            in_block=scope.block is not None,
        )

    # ------------------------------------------------------------------ scopes

    def run(self) -> list[LayerResult]:
        net = self.network
        flow = Flow(net.input_shape, net.input_dtype, f"the network input, {fmt(net.input_shape)}",
                    "input")
        problem = impossible_size(f"input: one sample of {fmt(net.input_shape)} has",
                                  math.prod(net.input_shape), net.input_dtype)
        if problem:
            self.diagnostics.append(self.doc.diagnostic(("input",), problem))
            flow.shape = None
        results, _ = self.scope(Scope(("layers",), ""), self.doc.data["layers"], flow)
        return results

    def scope(self, scope: Scope, entries: list, flow: Flow) -> tuple[list[LayerResult], Flow]:
        """Walk one layers list; returns its results and the flow out of its last entry."""
        flow = Flow(flow.shape, flow.dtype, flow.origin, "input")  # named as seen inside
        env: dict[str, Flow] = {"input": flow}
        later = {e["name"]: i for i, e in enumerate(entries)
                 if isinstance(e, dict) and isinstance(e.get("name"), str)}
        results: list[LayerResult] = []
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
                    env[name] = flows[0] if ok else Flow(None, previous.dtype, "", name)
                continue
            name = raw.get("name") if isinstance(raw, dict) else None
            name = name if isinstance(name, str) else str(active)
            active += 1
            qualname = scope.prefix + name
            inputs, ok = self.sources(scope, raw, path, env, later, index, previous)
            broken = path in self.broken or not ok
            if not broken and any(f.shape is None for f in inputs):
                skipped.append((path, qualname))
                result = LayerResult(index, name, entry_type(raw) or "?", None, None, None,
                                     qualname=qualname)
                out = Flow(None, previous.dtype, "", name)
            elif broken:
                if not skipped:  # the note names the last error before the unchecked run
                    failed_at = (index, qualname)
                result = LayerResult(index, name, entry_type(raw) or "?", None, None, None,
                                     qualname=qualname)
                out = Flow(None, previous.dtype, "", name)
            else:
                result, out = self.entry(scope, raw, path, index, name, qualname, inputs)
                if out.shape is None and not skipped:
                    failed_at = (index, qualname)
            if isinstance(raw, dict) and "from" in raw:
                result.sources = [f.node for f in inputs]
            result.output_dtype = out.dtype
            results.append(result)
            env[name] = Flow(out.shape, out.dtype, out.origin, name)
            previous = env[name]
        if skipped and failed_at is not None:
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
        return results, previous

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
            return [previous], True
        names = raw["from"] if isinstance(raw["from"], list) else [raw["from"]]
        flows, ok = [], bool(names)  # from: [] is validation's to report
        for i, name in enumerate(names):
            where = path + ("from",) + ((i,) if isinstance(raw["from"], list) else ())
            if isinstance(name, str) and name in env:
                flows.append(env[name])
                continue
            ok = False
            if not (isinstance(name, str) and IDENTIFIER.fullmatch(name)):
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
                why = (f"no earlier entry here is named '{name}'"
                       f"{did_you_mean(str(name), known + ['input'])}; names here: "
                       f"{', '.join(known) or '(none yet)'}, and 'input'")
            self.error_at(where, f"{entry_label(self.doc.data, path)}: from: {why}", scope)
        return flows, ok

    # ------------------------------------------------------------------ entries

    def entry(self, scope, raw, path, index, name, qualname, inputs) -> tuple[LayerResult, Flow]:
        self.expanded += 1
        if self.expanded > MAX_EXPANDED:
            if self.expanded == MAX_EXPANDED + 1:
                self.error_at(path, f"{entry_label(self.doc.data, path)}: the network expands "
                              f"to more than {MAX_EXPANDED:,} layers here (repeats multiply, "
                              "blocks add their layers); make a repeat smaller", scope)
            return self.failed(index, name, raw, qualname, inputs)
        if isinstance(raw, dict) and "repeat" in raw:
            return self.repeat(scope, raw, path, index, name, qualname, inputs)
        if isinstance(raw, dict) and "layers" in raw:
            child = Scope(path + ("layers",), qualname + ".", scope.params, scope.block,
                          scope.depth)
            children, out = self.scope(child, raw["layers"], self.single(inputs))
            return self.container(index, name, "group", "group", qualname, inputs, children,
                                  out), out
        type_name = entry_type(raw)
        if type_name in self.blocks:
            args = raw.get(type_name) if isinstance(raw, dict) else None
            return self.call(scope, type_name, args, path, index, name, qualname, inputs)
        return self.layer_entry(scope, raw, path, index, name, qualname, inputs)

    def single(self, inputs: list[Flow]) -> Flow:
        return inputs[0]

    def container(self, index, name, type_name, kind, qualname, inputs, children, out):
        known = all(c.params is not None for c in children) and out.shape is not None
        return LayerResult(
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
                return self.failed(index, name, raw, qualname, inputs)
            key = (path, json.dumps(raw, sort_keys=True, default=repr))
            if key not in self.entry_problems:
                self.entry_problems[key] = validate_entry(self.doc, path, raw)
            problems = self.entry_problems[key]
            if problems:
                for d in problems:
                    self.add(d, in_block=True)
                return self.failed(index, name, raw, qualname, inputs)
        problems: list[Diagnostic] = []
        entry = resolve_entry(self.doc, path, index, raw, problems, name=name, qualname=qualname,
                              block=scope.block)
        for d in problems:
            self.add(d, in_block=scope.block is not None)
        if entry.broken:
            return self.failed(index, name, raw, qualname, inputs)
        lt = entry.type
        if lt.takes_several:
            variadic = lt.inputs[-1].variadic
            if (variadic and len(inputs) < lt.min_inputs) or (lt.min_inputs > 1 and (
                    not isinstance(raw, dict) or "from" not in raw)):
                self.report(entry, f"{_takes(lt)}: write from: [a, b]")
                return self.failed(index, name, raw, qualname, inputs)
            out, kwargs, params, dtype = self.merge(entry, inputs)
        else:
            if len(inputs) != 1:
                self.report(entry, f"{lt.name} takes one input, from: names {len(inputs)}")
                return self.failed(index, name, raw, qualname, inputs)
            flow = inputs[0]
            out, kwargs, params, dtype = self.layer(entry, flow.shape, flow.dtype, flow.origin)
            self.at_input = False
            if lt.inputs[0].dtype != "any" or lt.outputs[lt.flow_index].dtype:
                self.dtype_from_input = False
        problem = None
        if out is not None:
            problem = (impossible_size("has", params or 0, PARAM_DTYPE, "parameters")
                       or impossible_size(f"its output, {fmt(out)}, has", math.prod(out), dtype))
        if problem:
            self.report(entry, problem)
            out, params = None, None
        result = LayerResult(index, name, lt.name, inputs[0].shape, out, params, kwargs,
                             kind="merge" if lt.takes_several else "layer", qualname=qualname)
        if lt.takes_several:
            result.input_shapes = lt.fill_inputs([f.shape for f in inputs])
        if out is None:
            origin = ""
        elif lt.origin and out != inputs[0].shape:
            where = f"layer {index}" if not qualname or "." not in qualname else qualname
            origin = f"{fmt(inputs[0].shape)} {lt.origin} at {where}"
        else:
            origin = f"output of {entry.label}, {fmt(out)}"
        return result, Flow(out, dtype, origin, name)

    def failed(self, index, name, raw, qualname, inputs):
        return (LayerResult(index, name, entry_type(raw) or "?", inputs[0].shape, None, None,
                            qualname=qualname), Flow(None, inputs[0].dtype, "", name))

    def merge(self, entry: LayerEntry, inputs: list[Flow]):
        lt = entry.type
        sources = [f"{fmt(f.shape)} from '{f.node}'" for f in inputs]
        a = Args.filled(lt, entry.given, lt.fill_inputs(sources))
        kwargs = dict(entry.given)
        params = 0
        try:
            arity = _arity_error(lt, len(inputs))
            if arity:
                raise ShapeError(arity)
            shapes = lt.fill_inputs([f.shape for f in inputs])
            for port, shape in zip(lt.inputs, shapes, strict=False):
                if port.ranks is not None and len(shape) not in port.ranks:
                    layouts = " or ".join(port.ranks[r] for r in sorted(port.ranks, reverse=True))
                    raise ShapeError(f"expects a {layouts} {port.name} (batch excluded), got "
                                     f"{fmt(shape)}")
            self.infer_args(entry, a, kwargs, shapes[0], inputs[0].origin)
            out = tuple(lt.rule(a, shapes))
            params = lt.params(a, shapes)
        except ShapeError as exc:
            self.report(entry, exc.message, exc.arg)
            out = None
        dtypes = {f.dtype for f in inputs}
        if len(dtypes) > 1:
            self.report(entry, f"inputs have different dtypes: {', '.join(sorted(dtypes))}")
        elif lt.inputs[0].dtype == "float" and inputs[0].dtype in INT_DTYPES:
            self.report(entry, f"needs floating-point inputs, but gets {inputs[0].dtype}")
        for message, arg in a.warnings:
            self.report(entry, message, arg, severity="warning")
        return out, kwargs, params, inputs[0].dtype

    def call(self, scope, block_name, args, path, index, name, qualname, inputs):
        """A block used like a layer: bind its parameters, walk its body."""
        flow = self.single(inputs)
        label = entry_label(self.doc.data, path)
        if scope.depth >= MAX_DEPTH:
            self.error_at(path, f"{label}: blocks nest more than {MAX_DEPTH} deep (a block "
                          "that uses itself?)", scope)
            return self.failed(index, name, {block_name: args}, qualname, inputs)
        if ("blocks", block_name) in self.broken:
            return self.failed(index, name, {block_name: args}, qualname, inputs)
        definition = self.blocks[block_name]
        declared = definition.get("params") or {}
        if scope.params is not None:
            try:
                args = substitute(args, self.expression_env(scope, flow))
            except ExprError as exc:
                self.error_at(path, f"{label}: {exc}", scope)
                return self.failed(index, name, {block_name: args}, qualname, inputs)
        if args is None:
            args = {}
        args_path = path + (block_name,)
        if not isinstance(args, dict):
            self.error_at(args_path, f"{label}: block {block_name} takes its parameters as a "
                          f"mapping, e.g. {block_name}: {{{', '.join(declared) or '...'}}}", scope)
            return self.failed(index, name, {block_name: args}, qualname, inputs)
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
        if not ok:
            return self.failed(index, name, {block_name: args}, qualname, inputs)
        if flow.shape:
            params.setdefault("in_channels", flow.shape[0])
        body = Scope(("blocks", block_name, "layers"), qualname + ".", params, block_name,
                     scope.depth + 1)
        children, out = self.scope(body, definition["layers"], flow)
        return self.container(index, name, block_name, "block", qualname, inputs, children,
                              out), out

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
                return self.failed(index, name, raw, qualname, inputs)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            self.error_at(where, f"{label}: repeat must be a positive whole number, got "
                          f"{count!r}", scope)
            return self.failed(index, name, raw, qualname, inputs)
        if count > MAX_REPEAT:  # a literal is the schema's to refuse; expressions are not
            self.error_at(where, f"{label}: repeat {count:,} is absurdly large (at most "
                          f"{MAX_REPEAT:,})", scope)
            return self.failed(index, name, raw, qualname, inputs)
        # names that cannot be used are reported; the shapes go on (as for a bad name:)
        child_names = self.child_names(scope, path, label, pattern, count) or \
            [str(k) for k in range(count)]
        base = {k: v for k, v in raw.items() if k not in ("repeat", "first", "name")}
        type_name = entry_type(base)
        first = raw.get("first")
        if first is not None and not self.first_ok(scope, path, label, type_name, base, first,
                                                   inputs[0]):
            return self.failed(index, name, raw, qualname, inputs)
        children: list[LayerResult] = []
        flow = self.single(inputs)
        for k in range(count):
            copy = dict(base)
            if k == 0 and first:
                copy[type_name] = {**(copy.get(type_name) or {}), **first}
            child_name = child_names[k]
            child_qual = f"{qualname}.{child_name}"
            result, flow = self.entry(scope, copy, path, k, child_name, child_qual, [flow])
            result.output_dtype = flow.dtype
            children.append(result)
            if flow.shape is None:
                break
        repeated = f"{type_name or 'group'}×{count}"
        return self.container(index, name, repeated, "repeat", qualname, inputs, children,
                              flow), Flow(flow.shape, flow.dtype, flow.origin, name)

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
            if not IDENTIFIER.fullmatch(child):
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

    def infer_args(self, entry: LayerEntry, a: Args, kwargs: dict, x: tuple[int, ...],
                   origin: str) -> None:
        """Fill the arguments read off the input shape ``x`` into ``a`` and ``kwargs``;
        report written ones that disagree."""
        lt = entry.type
        values = a.values  # inferred arguments go in here too
        for arg in lt.args:
            if arg.infer is None:
                continue
            actual = arg.infer(x)
            if arg.name not in entry.given:
                values[arg.name] = kwargs[arg.name] = actual
                continue
            written = entry.given[arg.name]
            if arg.noun and written != actual:
                if arg.lenient_if is not None and arg.lenient_if(a):
                    self.report(
                        entry,
                        f"{arg.name} {written} does not match the {actual} "
                        f"{arg.noun} coming in ({origin}); PyTorch ignores it "
                        "here (nothing in the layer uses it)",
                        arg.name,
                        severity="warning",
                    )
                    continue
                self.report(
                    entry,
                    f"{arg.name} {written} does not match the {actual} "
                    f"{arg.noun} coming in ({origin})",
                    arg.name,
                )
                values[arg.name] = kwargs[arg.name] = actual  # go on with what flows in

    def layer(self, entry: LayerEntry, x: tuple[int, ...], dtype: str, origin: str):
        lt = entry.type
        port, output = lt.inputs[0], lt.outputs[lt.flow_index]
        if port.dtype == "int" and dtype not in INT_DTYPES:
            if self.dtype_from_input:
                shape = ", ".join(map(str, self.network.input_shape))
                self.report(
                    entry,
                    f"takes integer indices (token ids), but the network input "
                    f"is {dtype}; declare input: {{shape: [{shape}], dtype: int64}}",
                )
            else:
                self.report(
                    entry,
                    f"takes integer indices (token ids), but gets {dtype} "
                    f"({origin}); put the {lt.name} first, on the token ids",
                )
        elif port.dtype == "float" and dtype in INT_DTYPES:
            self.report(
                entry,
                f"needs a floating-point input, but gets {dtype} (integer token "
                "ids go through an Embedding first)",
            )
        out_dtype = output.dtype or (
            dtype if port.dtype == "any" or dtype not in INT_DTYPES else "float32"
        )
        problem = _rank_error(entry, x)
        if problem:
            layouts = list((port.ranks or {}).values())
            if self.at_input and any(
                lay.startswith("C×") and lay.count("×") == len(x) for lay in layouts
            ):
                shape = ", ".join(map(str, (1, *x)))
                problem += f"; for one channel, write input: [{shape}]"
            self.report(entry, problem)
            return None, {}, None, out_dtype
        kwargs = dict(entry.given)
        a = Args.filled(lt, entry.given)
        self.infer_args(entry, a, kwargs, x, origin)
        try:
            out = tuple(lt.rule(a, x))
            params = lt.params(a, x)
        except ShapeError as exc:
            self.report(entry, exc.message, exc.arg)
            out, params = None, None
        # running statistics are float32 state too, like parameters
        has_state = params or a.values.get("track_running_stats")
        if (
            has_state
            and dtype not in INT_DTYPES
            and dtype != "float32"
            and dtype not in lt.mixed_dtypes
        ):
            # netspec builds float32 parameters; PyTorch refuses to mix them with other floats
            self.report(
                entry,
                f"has float32 parameters but gets {dtype} input; netspec builds "
                f"float32 models (use float32 input, or convert the built model "
                f"with .to(torch.{dtype}) yourself)",
            )
        for message, arg in a.warnings:
            self.report(entry, message, arg, severity="warning")
        return out, kwargs, params, out_dtype


def infer(
    doc: Document, network: Network, broken: set[tuple]
) -> tuple[list[LayerResult], list[Diagnostic]]:
    walker = _Walker(doc, network, broken)
    results = walker.run()
    return results, walker.diagnostics
