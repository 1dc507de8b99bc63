"""Stage 4, infer: for each layer resolve hands on, fill in the arguments read off the
incoming shape, apply its shape and dtype rule, count its parameters.  Pure Python: nothing
here imports torch."""

from __future__ import annotations

import math
from dataclasses import replace

from netspec.core.diagnostics import Diagnostic, did_you_mean, number_text
from netspec.core.document import Document
from netspec.core.graph import Node
from netspec.core.names import split_source
from netspec.ops import Args, ShapeError, fmt
from netspec.pipeline.resolve import Diagnostics, Expander, Flow, LayerEntry, Network
from netspec.pipeline.schema import DTYPE_BYTES

INT_DTYPES = ("int64", "int32")


_COUNTS = {2: "two", 3: "three", 4: "four"}


def _takes(lt, given: dict | None = None) -> str:
    """'Sub takes two inputs (what to subtract from, and what to subtract)', from the ports;
    a variadic port takes two or more; with its number given, the op takes one input."""
    scalar = lt.scalar_given(given or {})
    if scalar:
        return f"{lt.name} with {scalar}: {given[scalar]!r} (a number) takes one input"
    if lt.max_inputs is None:
        return f"{lt.name} takes two or more inputs"
    docs = [p.doc or p.name for p in lt.inputs]
    what = ", ".join(docs[:-1]) + ", and " + docs[-1]
    n = len(lt.inputs)
    return f"{lt.name} takes {_COUNTS.get(n, n)} inputs ({what})"


def _how_to_give(lt) -> str:
    """What to write for the inputs: from: [a, b], or the number the last port may take."""
    scalar = lt.inputs[-1].scalar
    return "write from: [a, b]" + (f", or {scalar}: a number" if scalar else "")


def _arity_error(lt, count: int, given: dict) -> str | None:
    """An op with several ports given the wrong number of inputs (variadic ports are checked
    before, where from: is)."""
    param = lt.split_param(count) if lt.max_inputs is not None else None
    if param is not None:  # LSTMCell given h without c
        docs = [p.doc or p.name for p in lt.inputs if p.param == param]
        return (f"{_takes(lt)}, got {count}: {' and '.join(docs)} go together (torch takes "
                f"them as one tuple, {param})")
    least, most = lt.input_range(given)
    if least <= count <= (most if most is not None else count):
        return None
    return f"{_takes(lt, given)}, got {count}"


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


def _shown(flow: Flow) -> str:
    """A flow's shape as messages show it: a recurrent state with its batch, 2×N×64."""
    if flow.shape is None or not flow.batch_dim:
        return fmt(flow.shape) if flow.shape is not None else "?"
    return fmt(flow.shape[:flow.batch_dim] + ("N",) + flow.shape[flow.batch_dim:])


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


class Inference:
    """Shapes, dtypes and parameter counts, one resolved layer at a time."""

    def __init__(self, network: Network, diagnostics: Diagnostics):
        self.network = network
        self.diagnostics = diagnostics
        self.dtype_from_input = True  # only dtype-agnostic layers (Flatten, ...) so far
        self.at_input = True  # no layer has run yet

    def report(
        self, entry: LayerEntry, message: str, arg: str | None = None, severity: str = "error"
    ) -> None:
        self.diagnostics.report(entry, message, arg, severity)

    def unknown(self, entry: LayerEntry, inputs: list[Flow]) -> tuple[Node, Flow]:
        return (Node(entry.index, entry.name, entry.type.name, inputs[0].shape, None, None,
                     qualname=entry.qualname), Flow(None, inputs[0].dtype, "", entry.name))

    def node(self, entry: LayerEntry, has_from: bool, inputs: list[Flow]) -> tuple[Node, Flow]:
        """A resolved layer entry and the flows into it -> its node and the flow out."""
        lt = entry.type
        if lt.takes_none:
            return self.tensor(entry, has_from, inputs)
        several = lt.takes_several or (lt.takes_state and len(inputs) > 1)
        if (stopped := self.states_in(entry, inputs)) is not None:
            return stopped
        if len(inputs) == 1 and not inputs[0].batched and lt.inputs[0].whole_rule is not None:
            return self.whole(entry, inputs[0])
        if several and all(not f.batched and f.shape is not None for f in inputs) and \
                lt.inputs[-1].variadic and lt.inputs[-1].whole_rule is not None:
            return self.whole_merge(entry, inputs)
        if lt.takes_whole or any(not f.batched for f in inputs):
            inputs = self.without_batch(entry, inputs)
            if inputs is None:
                return self.unknown(entry, [Flow(None, "float32", "", entry.name)])
        if several:
            least, most = lt.input_range(entry.given)
            if (most is None and len(inputs) < least) or (least > 1 and not has_from):
                self.report(entry, f"{_takes(lt)}: {_how_to_give(lt)}")
                return self.unknown(entry, inputs)
            out, kwargs, params, dtype = self.merge(entry, inputs)
        else:
            if len(inputs) != 1:
                self.report(entry, f"{lt.name} takes one input, from: names {len(inputs)}")
                return self.unknown(entry, inputs)
            flow = inputs[0]
            out, kwargs, params, dtype = self.layer(entry, flow.shape, flow.dtype, flow.origin)
            self.at_input = False
            if lt.inputs[0].dtype != "any" or lt.outputs[lt.flow_index].dtype or lt.dtype:
                self.dtype_from_input = False
        parts = None
        if lt.parts and out is not None:  # one shape per part; the first stands for them
            parts, out = [tuple(p) for p in out], tuple(out[0])
        problem = None
        if out is not None:
            problem = (impossible_size("has", params or 0, PARAM_DTYPE, "parameters")
                       or impossible_size(f"its output, {fmt(out)}, has", math.prod(out), dtype))
        if problem:
            self.report(entry, problem)
            out, params = None, None
        result = Node(entry.index, entry.name, lt.name, inputs[0].shape, out, params, kwargs,
                      kind="merge" if several else "layer", qualname=entry.qualname)
        if several:
            result.input_shapes = lt.fill_inputs([f.shape for f in inputs])
        if parts is not None:
            result.outputs = [(str(i), p) for i, p in enumerate(parts)]
        if out is None:
            origin = ""
        elif lt.origin and out != inputs[0].shape:
            where = (f"layer {entry.index}" if "." not in entry.qualname else entry.qualname)
            origin = f"{fmt(inputs[0].shape)} {lt.origin} at {where}"
        else:
            origin = f"output of {entry.label}, {fmt(out)}"
        flow = Flow(out, dtype, origin, entry.name, batched=lt.outputs[lt.flow_index].batched)
        if parts is not None:
            flow.parts = {name: Flow(shape, dtype, f"part {name} of {entry.label}, "
                                     f"{fmt(shape)}", f"{entry.name}.{name}")
                          for name, shape in result.outputs}
            flow.whole = False
        elif lt.extra_outputs and out is not None:  # an LSTM's h_n, c_n
            flow.parts = self.extra_outputs(entry, inputs[0].shape, dtype)
            result.states = [(name, f.shape) for name, f in flow.parts.items()]
        return result, flow

    def extra_outputs(self, entry: LayerEntry, x: tuple[int, ...], dtype: str
                      ) -> dict[str, Flow]:
        """The outputs besides the one that flows on, by name (an LSTM's h_n)."""
        a = Args.filled(entry.type, entry.given)
        out = {}
        for output in entry.type.extra_outputs:
            shape = tuple(output.shape(a, x))
            shown = fmt(shape[:output.batch_dim] + ("N",) + shape[output.batch_dim:]) \
                if output.batch_dim else fmt(shape)
            out[output.name] = Flow(shape, output.dtype or dtype,
                                    f"{output.name} of {entry.label}, {shown}",
                                    f"{entry.name}.{output.name}", batch_dim=output.batch_dim)
        return out

    def states_in(self, entry: LayerEntry, inputs: list[Flow]) -> tuple[Node, Flow] | None:
        """Recurrent states among the inputs: into an op's state ports (an RNN's h_0), else
        into an op that reads one (Select dim 0: h_n[-1]); None where the inputs go on."""
        if entry.type.takes_state and len(inputs) > 1:
            problem = self.state_ports(entry, inputs)
            if problem:
                self.report(entry, problem)
                return self.unknown(entry, inputs)
            return None
        return self.state(entry, inputs) if any(f.batch_dim for f in inputs) else None

    def state_ports(self, entry: LayerEntry, inputs: list[Flow]) -> str | None:
        """An op given a recurrent state (an RNN's h_0): the state ports take states
        (layers × batch × hidden, as from: encoder.h_n), the input port none; else why not."""
        ports = entry.type.inputs
        if len(inputs) > len(ports):
            return f"{entry.type.name} takes at most {len(ports)} inputs " \
                   f"({', '.join(p.doc or p.name for p in ports)}), got {len(inputs)}"
        for port, flow in zip(ports, inputs, strict=False):
            if flow.shape is None or bool(flow.batch_dim) == port.state:
                continue
            if port.state:
                return (f"{port.doc or port.name} takes a recurrent state, layers × batch × "
                        f"hidden (its batch at dim 1, as another RNN's: from: encoder.h_n), "
                        f"but '{flow.node}' is a batch of samples ({fmt(flow.shape)} each)")
            full = fmt(flow.shape[:flow.batch_dim] + ("N",) + flow.shape[flow.batch_dim:])
            return (f"'{flow.node}' is a recurrent state, {full} (layers × batch × hidden), "
                    f"not {port.doc or port.name}; the state goes after it: "
                    f"from: [x, {flow.node}]")
        return None

    def state(self, entry: LayerEntry, inputs: list[Flow]) -> tuple[Node, Flow]:
        """A recurrent state (an LSTM's h_n: layers × batch × hidden) into an op: only one
        that declares how it reads it (Select dim 0: h_n[-1], the last layer's)."""
        lt = entry.type
        state = next(f for f in inputs if f.batch_dim)
        rule = lt.inputs[0].state_rule if len(inputs) == 1 else None
        full = fmt(state.shape[:state.batch_dim] + ("N",) + state.shape[state.batch_dim:])
        if rule is None:
            self.report(entry, f"'{state.node}' is a recurrent state, {full} (layers × batch "
                        f"× hidden: its batch is dim {state.batch_dim}); take one layer's "
                        "first, as h_n[-1]: Select: {dim: 0, index: -1}")
            return self.unknown(entry, [Flow(None, state.dtype, "", entry.name)])
        a = Args.filled(lt, entry.given)
        try:
            out = tuple(rule(a, state.shape))
        except ShapeError as exc:
            self.report(entry, exc.message.replace("{state}", f"'{state.node}' ({full})"),
                        exc.arg)
            return self.unknown(entry, [Flow(None, state.dtype, "", entry.name)])
        node = Node(entry.index, entry.name, lt.name, state.shape, out, 0, dict(entry.given),
                    qualname=entry.qualname)
        return node, Flow(out, state.dtype, f"output of {entry.label}, {fmt(out)}",
                          entry.name)

    def whole(self, entry: LayerEntry, flow: Flow) -> tuple[Node, Flow]:
        """A tensor without a batch dimension (a Parameter) into an op that declares how it
        reads one (Port.whole_rule: Reshape, View): a tensor without one out."""
        lt = entry.type
        a = Args.filled(lt, entry.given)
        try:
            out = tuple(lt.inputs[0].whole_rule(a, flow.shape))
        except ShapeError as exc:
            self.report(entry, exc.message, exc.arg)
            return self.unknown(entry, [Flow(None, flow.dtype, "", entry.name)])
        node = Node(entry.index, entry.name, lt.name, flow.shape, out, 0, dict(entry.given),
                    qualname=entry.qualname)
        return node, Flow(out, flow.dtype, f"output of {entry.label}, {fmt(out)}", entry.name,
                          batched=False)

    def whole_merge(self, entry: LayerEntry, inputs: list[Flow]) -> tuple[Node, Flow]:
        """Tensors without a batch dimension (Parameters, buffers) into an op taking several
        that declares how it reads them (its variadic Port.whole_rule, given their shapes:
        Concat): a tensor without one out."""
        lt = entry.type
        sources = [f"{_shown(f)} from '{f.node}'" for f in inputs]
        a = Args.filled(lt, entry.given, sources)
        dtypes = [f.dtype for f in inputs]
        try:
            if lt.dtype is None and len(set(dtypes)) > 1:
                raise ShapeError(f"{lt.name} takes tensors of one dtype, got "
                                 f"{', '.join(dtypes)}")
            dtype = lt.dtype(a, dtypes) if lt.dtype is not None else dtypes[0]
            out = tuple(lt.inputs[-1].whole_rule(a, [f.shape for f in inputs]))
        except ShapeError as exc:
            self.report(entry, exc.message, exc.arg)
            return self.unknown(entry, [Flow(None, inputs[0].dtype, "", entry.name)])
        node = Node(entry.index, entry.name, lt.name, inputs[0].shape, out, 0,
                    dict(entry.given), kind="merge", qualname=entry.qualname)
        node.input_shapes = [f.shape for f in inputs]
        return node, Flow(out, dtype, f"output of {entry.label}, {fmt(out)}", entry.name,
                          batched=False)

    def tensor(self, entry: LayerEntry, has_from: bool, inputs: list[Flow]
               ) -> tuple[Node, Flow]:
        """An op that takes no input (a Parameter): its tensor, with no batch dimension."""
        lt = entry.type
        if has_from:
            self.report(entry, f"{lt.name} takes no input, so from: has nothing to give it")
            return self.unknown(entry, inputs)
        a = Args.filled(lt, entry.given)
        output = lt.outputs[lt.flow_index]
        dtype = output.dtype or PARAM_DTYPE
        try:
            out, params = tuple(lt.rule(a, [])), lt.params(a, [])
            problem = impossible_size(f"its tensor, {fmt(out)}, has", math.prod(out), dtype)
            if problem:
                raise ShapeError(problem)
        except ShapeError as exc:
            self.report(entry, exc.message, exc.arg)
            return self.unknown(entry, inputs)
        node = Node(entry.index, entry.name, lt.name, None, out, params, dict(entry.given),
                    qualname=entry.qualname)
        return node, Flow(out, dtype, f"{entry.label}, {fmt(out)}", entry.name,
                          batched=output.batched)

    def without_batch(self, entry: LayerEntry, inputs: list[Flow]) -> list[Flow] | None:
        """Inputs that are not all batches: an op that takes tensors without a batch whole
        (Port.whole: a relative position bias from its table and index) takes them as they
        are and refuses a batch; the others broadcast them against the batch (batched)."""
        lt = entry.type
        if not lt.takes_whole:
            return self.batched(entry, inputs)
        batch = next((f for f in inputs if f.batched), None)
        if batch is None:
            return inputs
        self.report(entry, f"{lt.name} takes tensors without a batch dimension (a Parameter, "
                    f"a buffer) whole, but '{batch.node}' is a batch of {fmt(batch.shape)}")
        return None

    def batched(self, entry: LayerEntry, inputs: list[Flow]) -> list[Flow] | None:
        """Inputs without a batch dimension (Parameters) as the per-sample shapes torch
        broadcasts them to against the batch; None after saying why they cannot meet it."""
        lt = entry.type
        tensors = [f for f in inputs if f.batched and f.shape is not None]
        plain = next(f for f in inputs if not f.batched)
        port = lt.batch_port(len(inputs))
        if port is not None and inputs[port].batched:  # the batch of another input
            return self.given_batch(entry, inputs)
        if not lt.broadcasts or not tensors:
            hint = (f"give the tensor whose batch to take: from: [{plain.node}, x]"
                    if lt.batch_port(len(lt.inputs)) is not None and plain is inputs[0]
                    else "combine it with the batch first, as x + parameter or x * "
                    "parameter do")
            self.report(entry, f"{lt.name} takes a batch of samples, but '{plain.node}' has no "
                        f"batch dimension (a Parameter, {fmt(plain.shape)}); {hint}")
            return None
        rank = max(len(f.shape) for f in tensors) + 1  # the batch included
        out = []
        for f in inputs:
            if f.batched or f.shape is None:
                out.append(f)
                continue
            if len(f.shape) > rank:
                self.report(entry, f"'{f.node}' ({fmt(f.shape)}) has more dimensions than "
                            f"the batch it meets (N×{fmt(tensors[0].shape)})")
                return None
            full = (1,) * (rank - len(f.shape)) + tuple(f.shape)
            if full[0] != 1:
                self.report(entry, f"'{f.node}' ({fmt(f.shape)}) meets the batch dimension "
                            f"with size {full[0]}, which torch broadcasts only for a batch of "
                            f"exactly {full[0]}; give it a leading 1: {fmt((1, *full[1:]))}")
                return None
            out.append(replace(f, shape=full[1:], batched=True))
        return out

    def given_batch(self, entry: LayerEntry, inputs: list[Flow]) -> list[Flow] | None:
        """Inputs without a batch dimension, for an op that takes the batch size of another
        (Port.batch_size_at): aligned to the end of the op's list argument (Expand's sizes,
        as torch aligns a tensor to them), the dim at the batch's place, which must be 1,
        becomes the batch (class_token 1×1×768 -> N×1×768)."""
        listed = entry.type.list_arg
        sizes = entry.given.get(listed.name) if listed is not None else None
        out = []
        for f in inputs:
            if f.batched or f.shape is None:
                out.append(f)
                continue
            rank = len(sizes) if isinstance(sizes, list) else len(f.shape)
            full = (1,) * (rank - len(f.shape)) + tuple(f.shape)
            kept = [i for i in range(1, rank - len(f.shape)) if sizes[i] == -1]
            if kept:  # -1 keeps a size, and a new dim has none (as torch refuses it)
                self.report(entry, f"{listed.name} {sizes}: -1 at dimension {kept[0]}, a new "
                            f"dimension before the {len(f.shape)} of '{f.node}' "
                            f"({fmt(f.shape)}), has no size to keep; give it a size",
                            listed.name)
                return None
            if full[0] != 1:
                self.report(entry, f"'{f.node}' ({fmt(f.shape)}) meets the batch dimension "
                            f"with size {full[0]}, and only a size of 1 is repeated over a "
                            f"batch; give it a leading 1: {fmt((1, *f.shape))}")
                return None
            out.append(replace(f, shape=full[1:], batched=True))
        return out

    def merge(self, entry: LayerEntry, inputs: list[Flow]):
        lt = entry.type
        sources = [f"{_shown(f)} from '{f.node}'" for f in inputs]
        a = Args.filled(lt, entry.given, lt.fill_inputs(sources))
        kwargs = dict(entry.given)
        params = 0
        try:
            arity = _arity_error(lt, len(inputs), entry.given)
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
        dtype = self.merged_dtype(entry, a, inputs)
        if len({f.dtype for f in inputs}) == 1 and not (
                lt.inputs[0].dtype == "float" and inputs[0].dtype in INT_DTYPES):
            self.check_parameter_dtype(entry, a, params, dtype)
        for message, arg in a.warnings:
            self.report(entry, message, arg, severity="warning")
        return out, kwargs, params, dtype

    def merged_dtype(self, entry: LayerEntry, a: Args, inputs: list[Flow]) -> str:
        """The dtype out of an op taking several inputs: its declared rule (torch's type
        promotion), else the one dtype all inputs share."""
        lt = entry.type
        if lt.dtype is not None:
            try:
                return lt.dtype(a, [f.dtype for f in inputs])
            except ShapeError as exc:
                self.report(entry, exc.message, exc.arg)
                return inputs[0].dtype
        dtypes = {f.dtype for f in inputs}
        if len(dtypes) > 1:
            self.report(entry, f"inputs have different dtypes: {', '.join(sorted(dtypes))}")
        elif lt.inputs[0].dtype == "float" and inputs[0].dtype in INT_DTYPES:
            self.report(entry, f"needs floating-point inputs, but gets {inputs[0].dtype}")
        return inputs[0].dtype

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

    def check_parameter_dtype(self, entry: LayerEntry, a: Args, params: int | None,
                              dtype: str) -> None:
        """netspec builds float32 parameters; PyTorch refuses to mix them with other floats
        (except in the ops that declare mixed_dtypes)."""
        # running statistics are float32 state too, like parameters
        if (params or a.values.get("track_running_stats")) and dtype not in INT_DTYPES \
                and dtype != "float32" and dtype not in entry.type.mixed_dtypes:
            self.report(
                entry,
                f"has float32 parameters but gets {dtype} input; netspec builds "
                f"float32 models (use float32 input, or convert the built model "
                f"with .to(torch.{dtype}) yourself)",
            )

    def layer(self, entry: LayerEntry, x: tuple[int, ...], dtype: str, origin: str):
        """A one-input layer on a ``dtype`` sample of shape ``x``: (output shape, torch
        arguments, parameters, output dtype)."""
        lt = entry.type
        port, output = lt.inputs[0], lt.outputs[lt.flow_index]
        self.check_input_dtype(entry, dtype, origin)
        out_dtype = output.dtype or (
            dtype if port.dtype == "any" or dtype not in INT_DTYPES else "float32"
        )
        if lt.dtype is not None:  # the op's own rule (Sum of int32 is int64)
            try:
                out_dtype = lt.dtype(Args.filled(lt, entry.given), [dtype])
            except ShapeError as exc:
                self.report(entry, exc.message, exc.arg)
        problem = _rank_error(entry, x)
        if problem and self.batch_in_input(entry, x):
            return None, {}, None, out_dtype
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
        self.check_parameter_dtype(entry, a, params, dtype)
        for message, arg in a.warnings:
            self.report(entry, message, arg, severity="warning")
        return out, kwargs, params, out_dtype

    def batch_in_input(self, entry: LayerEntry, x: tuple[int, ...]) -> bool:
        """``input: [64, 3, 32, 32]`` written as the tutorial's ``torch.ones(64, 3, 32, 32)``:
        the first layer refuses it, and it would take it without the first dimension. Said at
        input:, where the mistake is."""
        ranks = entry.type.inputs[0].ranks
        doc = self.diagnostics.doc
        if not (self.at_input and ranks and len(x) - 1 in ranks
                and isinstance(doc.data, dict) and "input" in doc.data):
            return False
        written = ", ".join(map(str, x))
        self.diagnostics.add(doc.diagnostic(("input",), (
            f"input: [{written}] has a batch dimension in it, as torch.ones({written}) has; "
            f"netspec's input is one sample, the batch is implied: write input: "
            f"[{', '.join(map(str, x[1:]))}]; {entry.label} takes a "
            f"{ranks[len(x) - 1]} sample, got {fmt(x)}")))
        return True

    def check_input_dtype(self, entry: LayerEntry, dtype: str, origin: str) -> None:
        """Token ids into a layer that takes floats, or floats into an Embedding."""
        lt = entry.type
        port = lt.inputs[0]
        if port.dtype == "int" and dtype not in INT_DTYPES:
            if self.dtype_from_input:
                shape = ", ".join(map(str, self.network.input_shape))
                self.report(entry, f"takes integer indices (token ids), but the network input "
                            f"is {dtype}; declare input: {{shape: [{shape}], dtype: int64}}")
            else:
                self.report(entry, f"takes integer indices (token ids), but gets {dtype} "
                            f"({origin}); put the {lt.name} first, on the token ids")
        elif port.dtype == "float" and dtype in INT_DTYPES:
            self.report(entry, f"needs a floating-point input, but gets {dtype} (integer token "
                        "ids go through an Embedding first)")


def infer(
    doc: Document, network: Network, broken: set[tuple]
) -> tuple[list[Node], list[Diagnostic]]:
    """The network's graph, expanded by resolve and inferred here, and what was found."""
    diagnostics = Diagnostics(doc)
    flows = {}
    for spec_input in network.all_inputs:
        named = bool(network.inputs)
        where = ("inputs", spec_input.name) if named else ("input",)
        what = f"input '{spec_input.name}'" if named else "the network input"
        flow = Flow(spec_input.shape, spec_input.dtype, f"{what}, {fmt(spec_input.shape)}",
                    spec_input.name if named else "input")
        problem = impossible_size(f"{where[0]}: one sample of {fmt(spec_input.shape)} has",
                                  math.prod(spec_input.shape), spec_input.dtype)
        if problem:
            diagnostics.found.append(doc.diagnostic(where, problem))
            flow.shape = None
        flows[flow.node] = flow
    expander = Expander(doc, broken, diagnostics, Inference(network, diagnostics).node)
    nodes, names = expander.run(flows)
    for output in network.outputs:
        flow = _output_flow(doc, diagnostics, output, names)
        if flow is not None and flow.left_out:  # an entry left out by if: passes its input
            output.source = flow.node
        if flow is not None:
            output.shape, output.dtype = flow.shape, flow.dtype
            output.batch_dim = flow.batch_dim
    return nodes, diagnostics.found


def _output_flow(doc: Document, diagnostics: Diagnostics, output, names: dict) -> Flow | None:
    """The flow an outputs: item names; None after saying why there is none."""
    base, part = split_source(output.source, names)
    known = [n for n in names if n]
    flow = names.get(base)
    problem = None
    if flow is None:
        problem = (f"no entry of layers: (or input) is named '{base}'"
                   f"{did_you_mean(base, known)}; names: {', '.join(known) or '(none)'}")
    elif part and flow.parts is None and flow.shape is None:
        return flow  # unknown after an error (said there)
    elif part and flow.parts is None:
        problem = f"'{base}' gives one tensor, not several: write {base}"
    elif part and part not in flow.parts:
        problem = (f"'{base}' has no output '{part}'{did_you_mean(part, list(flow.parts))}; "
                   f"it gives {', '.join(f'{base}.{n}' for n in flow.parts)}")
    elif not part and not flow.whole:
        problem = (f"'{base}' gives {len(flow.parts)} tensors; name one: "
                   f"{', '.join(f'{base}.{n}' for n in flow.parts)}")
    if problem:
        diagnostics.error_at(output.path, f"outputs: {output.key}: {problem}", False)
        return None
    return flow.parts[part] if part else flow
