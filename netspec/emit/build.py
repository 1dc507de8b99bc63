"""Stage 5, emit as torch modules: a checked spec -> nn.Sequential, or an fx GraphModule
whose forward is straight-line generated code where the data flow branches."""

from __future__ import annotations

import operator
import os
from collections import OrderedDict
from typing import Any

from netspec.core.diagnostics import SpecError
from netspec.core.graph import Node
from netspec.core.names import list_place, split_source
from netspec.ops import REGISTRY, Args
from netspec.ops.declare import InputSize
from netspec.pipeline.check import CheckResult, Spec, check


def constructor_kwargs(result: Node) -> dict[str, Any]:
    """A checked layer's constructor arguments as torch takes them (YAML lists -> tuples)."""
    lt = REGISTRY[result.type]
    return {k: lt.arg_by_name[k].type.to_torch(v) for k, v in result.kwargs.items()}


def construct(result: Node, raw: bool = False) -> Any:
    """One torch module from a checked layer (its inferred arguments filled in); ``raw``:
    the torch class itself, returning all its outputs (an LSTM whose h_n is read), not the
    subclass that returns the one that flows on."""
    from netspec.ops.torch_side import torch_class

    return torch_class(result.type, raw)(**constructor_kwargs(result))


def calls_function(result: Node) -> bool:
    """The entry is a function op (a merge, Permute): a call in forward, not a module."""
    return result.kind in ("layer", "merge") and not REGISTRY[result.type].torch.module


def is_parameter(result: Node) -> bool:
    """The entry is a learnable tensor (a Parameter), not a module or a call."""
    return result.kind == "layer" and REGISTRY[result.type].torch.parameter


def is_chain(children: list[Node]) -> bool:
    """Each entry is a module taking the previous one's output: an nn.Sequential expresses
    it (a function op, Torch(module=False), needs a forward that calls it)."""
    return all(not c.sources and not calls_function(c) and c.kind not in ("merge", "branches")
               and list_place(c.name) is None for c in children)


def module_for(result: Node) -> Any:
    from torch import nn

    if result.kind in ("layer", "merge"):  # a merge here is a module op (MultiheadAttention)
        # an RNN given its initial state (a merge) returns its tuple, read in forward
        return construct(result, raw=result.kind == "merge")
    if result.kind == "repeat":
        return nn.Sequential(OrderedDict((c.name, module_for(c)) for c in result.children))
    if result.kind == "branches":  # called one by one in its parent's forward
        return nn.ModuleList([module_for(c) for c in result.children])
    class_name = result.type if result.kind == "block" else "Sequential"
    if result.port_inputs or result.port_outputs:
        return body_module(result, class_name)
    return scope_module(result.children, class_name, result.output)


def body_module(result: Node, class_name: str) -> Any:
    """A group or block declaring inputs:/outputs:: forward takes its inputs in order and
    returns its outputs (a tuple, a dict, or the one tensor)."""
    sources = [source for _, source in result.port_outputs] or None
    module = scope_module(result.children, class_name, result.output,
                          result.port_inputs or None, sources)
    if sources is not None:
        return_as(module, result.returns, [key for key, _ in result.port_outputs])
    return module


def return_as(module: Any, returns: str, keys: list[str]) -> None:
    """A GraphModule returning a tuple of outputs made to return them as a dict {key:
    value} or, for "tensor", its one value."""
    if returns not in ("dict", "tensor"):
        return
    output = next(n for n in module.graph.nodes if n.op == "output")
    values = output.args[0]
    output.args = ({k: v for k, v in zip(keys, values, strict=True)} if returns == "dict"
                   else values[0],)
    module.recompile()


def part_path(node: Node, key: str) -> tuple:
    """Where output ``key`` of an entry giving several is in what it returns: an op's
    declared place (Split's index, an LSTM's h_n (1, 0)); a group's or block's outputs:
    its index in the tuple, or its key in the dict."""
    if node.kind in ("layer", "merge"):
        return REGISTRY[node.type].output_path(key)
    # branches: an nn.ModuleList's outputs by position, as a tuple's
    return (int(key),) if node.kind == "branches" or node.returns == "tuple" else (key,)


# An op whose output is a new tensor that autograd does not save for backward (Torch.
# owns_output): an Add or Mul that is its only user may accumulate into it in place, as
# torchvision's `out += identity` after bn2 does (an out-of-place add allocates a fresh
# feature map per block, a few % of ResNet's CPU forward time at batch 32).
def owns_output(result: Node) -> bool:
    if result.kind == "layer":
        return REGISTRY[result.type].torch.owns_output
    inner = {c.name: c for c in result.children}.get(result.output or "")
    return result.kind != "merge" and inner is not None and owns_output(inner)


class _Values(dict):
    """The graph's value of each name: entries, inputs, and one output of an entry that
    gives several (halves.0, lstm.h_n: getitems of what torch returned, made where first
    used)."""

    def __init__(self, graph: Any, entries: dict[str, Node]):
        super().__init__()
        self.graph, self.entries = graph, entries
        self.returned: dict[str, Any] = {}  # entry -> the tuple torch returned, if kept

    def __missing__(self, name: str) -> Any:
        base, key = split_source(name, self.entries)
        node = self.returned.get(base, self[base])
        for index in part_path(self.entries[base], key):
            node = self.graph.call_function(operator.getitem, (node, index))
        self[name] = node
        return node


def states_taken(children: list[Node], outputs: list[str] | None) -> set[str]:
    """The entries whose outputs besides the flowing one are taken (from: lstm.h_n)."""
    names = [s for c in children for s in c.sources] + list(outputs or [])
    entries = [c.name for c in children]
    return {base for base, key in (split_source(s, entries) for s in names) if key}


def scope_module(children: list[Node], class_name: str, output: str | None,
                 inputs: list[str] | None = None, outputs: list[str] | None = None,
                 skip: set[str] = frozenset(), reuse: Any = None) -> Any:
    """A list of entries as a module: Sequential for a chain, else an fx GraphModule.
    ``inputs``: the network's named inputs (forward's arguments; else one, x);
    ``outputs``: the names whose values forward returns as a tuple (else ``output``'s, or
    the last entry's); ``skip``: entries left out (computed only in training); ``reuse``: a
    module whose children (and parameters) are taken instead of made anew."""
    from torch import fx, nn

    last = children[-1].name if children else None
    if is_chain(children) and output in (last, None) and inputs is outputs is None:
        return nn.Sequential(OrderedDict((c.name, module_for(c)) for c in children))
    children = [c for c in children if c.name not in skip]
    first = inputs[0] if inputs else "input"
    uses: dict[str, int] = {}  # how many entries (and the output) take each entry's output
    before = first
    for child in children:
        for s in child.sources or [before]:
            uses[s] = uses.get(s, 0) + 1
        before = child.name
    for s in outputs or [output or before]:
        uses[s] = uses.get(s, 0) + 1
    by_name = {c.name: c for c in children}
    root = nn.Module()
    graph = fx.Graph()
    nodes = _Values(graph, by_name)
    taken = states_taken(children, outputs)
    for name in inputs or ["x"]:
        nodes[name] = graph.placeholder(name)
    if not inputs:
        nodes["input"] = nodes["x"]
    previous = nodes[first]
    for child in children:
        inputs = [nodes[s] for s in child.sources] if child.sources else [previous]
        if child.kind == "branches":  # self.convs[k](x) for each k: values convs.0, ...
            place_module(root, child.name, reuse.get_submodule(child.name)
                         if reuse is not None else module_for(child))
            for k, part in enumerate(child.children):  # one input, or one per branch
                nodes[f"{child.name}.{part.name}"] = graph.call_module(
                    f"{child.name}.{part.name}", (inputs[k] if len(inputs) > 1 else inputs[0],))
            node = nodes[f"{child.name}.0"]
        elif is_parameter(child):  # registered here under its name, read as self.<name>
            _register_tensor(root, child, reuse)
            node = graph.get_attr(child.name)
        elif calls_function(child):
            node = _call_function(graph, REGISTRY[child.type], child, inputs, by_name, uses)
        else:
            op = REGISTRY.get(child.type) if child.kind in ("layer", "merge") else None
            # h_n is read: the module returns all it returns (so does the one reused)
            keep_tuple = bool(child.states) and child.name in taken
            module = (reuse.get_submodule(child.name) if reuse is not None
                      else construct(child, raw=True) if keep_tuple else module_for(child))
            if reuse is not None and child.states:
                from netspec.ops.torch_side import torch_class

                keep_tuple = type(module) is torch_class(child.type, raw=True)
            place_module(root, child.name, module)
            keywords = dict(op.torch.call_with) if op is not None else {}
            if keep_tuple:
                nodes.returned[child.name] = graph.call_module(child.name,
                                                               tuple(op.call_inputs(inputs)),
                                                               keywords)
                node = graph.call_function(operator.getitem, (nodes.returned[child.name],
                                                              op.flow_index))
            elif child.kind != "merge":
                node = graph.call_module(child.name, tuple(inputs))
            else:  # a module taking several tensors: optional ports filled in, (h, c) as one
                node = graph.call_module(child.name, tuple(op.call_inputs(inputs)), keywords)
                if op.torch.returns is not None:  # a tuple: the output that flows on
                    node = graph.call_function(operator.getitem, (node, op.flow_index))
        nodes[child.name] = node
        previous = node
    if outputs is not None:
        graph.output(tuple(nodes[s] for s in outputs))
    else:
        graph.output(nodes.get(output, previous) if output else previous)
    module = fx.GraphModule(root, graph, class_name=class_name)
    for child in children:  # fx copies convs.0, convs.1 into a plain Module: the ModuleList
        if child.kind == "branches" and list_place(child.name) is None:
            setattr(module, child.name, root.get_submodule(child.name))
    for head in dict.fromkeys(p[0] for p in map(list_place, by_name) if p is not None):
        setattr(module, head, root.get_submodule(head))  # so are entries convs.0, convs.1
    return module


def place_module(root: Any, name: str, module: Any) -> None:
    """``module`` as ``root``'s child ``name``; an entry named by a key path (convs.3,
    fuse_layers.1.0) in its place in the nn.ModuleList(s) it names, made as needed (its
    modules are numbered without a gap, validate says, so every place gets filled)."""
    from torch import nn

    place = list_place(name)
    if place is None:
        root.add_module(name, module)
        return
    head, numbers = place
    if head not in root._modules:
        root.add_module(head, nn.ModuleList())
    parent = root._modules[head]
    for depth, number in enumerate(numbers):
        slots = parent._modules  # a ModuleList's modules, by their position as a string
        last = depth == len(numbers) - 1
        if last or str(number) not in slots:
            slots[str(number)] = module if last else nn.ModuleList()
            ordered = sorted(slots.items(), key=lambda item: int(item[0]))
            slots.clear()  # in order of position: what indexing and iterating read
            slots.update(ordered)
        parent = slots[str(number)]


def _register_tensor(root: Any, child: Node, reuse: Any) -> None:
    """A Parameter entry's tensor on ``root`` under its name, or a buffer's (Torch.buffer:
    state made from the arguments); ``reuse``'s own where a built module is reused."""
    from netspec.ops.torch_side import make_buffer, make_parameter

    spec = REGISTRY[child.type].torch
    if spec.buffer:
        persistent = child.kwargs.get(spec.persistent, True) if spec.persistent else True
        root.register_buffer(child.name, make_buffer(child.type, child.kwargs)
                             if reuse is None else reuse.get_buffer(child.name),
                             persistent=persistent)
    else:
        root.register_parameter(child.name, make_parameter(child.kwargs)
                                if reuse is None else reuse.get_parameter(child.name))


def _call_function(graph: Any, op: Any, child: Node, inputs: list, by_name: dict,
                   uses: dict[str, int]) -> Any:
    """A function op in the forward graph: f(a, b), f([a, b]), or folded f(f(a, b), c)."""
    from netspec.ops import torch_side

    spec = op.torch
    values = Args.filled(op, child.kwargs).values
    if spec.arguments is not None:  # positional, some read from the input when it runs
        x = inputs[0]
        args = [graph.call_method("size", (x, a.dim)) if isinstance(a, InputSize) else a
                for a in spec.arguments(values, child.input_shape)]
        port = op.batch_port(len(inputs))
        if port is not None:  # another tensor's batch size: class_token.expand(n, -1, -1)
            args[op.inputs[port].batch_size_at] = graph.call_method("size", (inputs[port], 0))
        if spec.method:
            return graph.call_method(spec.target.rpartition(".")[2], (x, *args))
        return graph.call_function(torch_side.function(op), (x, *args))
    kwargs = {k: op.arg_by_name[k].type.to_torch(values[k]) for k in spec.call_args}
    kwargs.update(op.keyword_values(values))
    sized = {i for i, p in enumerate(op.inputs) if p.size_of and i < len(inputs)}
    for i in sized:  # its spatial size, read at run time: like.size()[2:]
        size = graph.call_method("size", (inputs[i],))
        kwargs[op.inputs[i].size_of] = graph.call_function(operator.getitem,
                                                           (size, slice(2, None)))
    inputs = [n for i, n in enumerate(inputs) if i not in sized]
    scalar = op.scalar_given(values)
    if scalar:  # a number in place of the last tensor (x * 2)
        inputs = [*inputs, values[scalar]]
    if spec.inputs == "list":
        return graph.call_function(torch_side.function(op), (inputs,), kwargs)
    if spec.inputs == "args" and spec.method:  # a Tensor method of the others: x.reshape_as(y)
        return graph.call_method(spec.target.rpartition(".")[2], tuple(inputs), kwargs)
    if spec.inputs == "args":
        return graph.call_function(torch_side.function(op), tuple(inputs), kwargs)
    first = by_name.get(child.sources[0]) if child.sources else None
    # in place only where the result is what the first input holds: its shape and dtype
    in_place = (spec.inplace is not None and first is not None and uses[first.name] == 1
                and owns_output(first) and child.input_shape == child.output_shape
                and first.output_dtype == child.output_dtype)
    fn = torch_side.inplace_function(op) if in_place else torch_side.function(op)
    node = inputs[0]
    for other in inputs[1:]:
        node = graph.call_function(fn, (node, other), kwargs)
    return node


def build(spec: Spec | CheckResult | str | os.PathLike,
          input_shape: tuple[int, ...] | None = None, *, ignore_memory: bool = False) -> Any:
    """The model: an nn.Sequential for a chain, a GraphModule for a branching network.
    Children are named as in the spec, so state_dict keys are predictable.  A CheckResult
    (what ``check`` returned) is built as it is, without checking the spec again.

    Raises SpecError (every error) if the spec does not check, and
    netspec.memory.NotEnoughMemory, before allocating anything, if its parameters and
    buffers need more memory than is available (``ignore_memory=True`` builds anyway)."""
    if isinstance(spec, CheckResult):
        if input_shape is not None:
            raise ValueError("a CheckResult is built at the input it was checked at")
        result = spec
    else:
        result = check(spec, input_shape)
    if not result.ok:
        raise SpecError(result.errors)
    from netspec.emit.memory import guard

    guard(result, ignore=ignore_memory)
    model = network_module(result)
    tie_weights(model, result.layers)
    return model


def tie_weights(model: Any, nodes: list[Node]) -> None:
    """tie: {weight: embed.weight}: the entry's parameter becomes the earlier entry's, one
    Parameter under both names (as lm_head.weight = wte.weight in GPT-2); state_dict keeps
    both keys, parameters() counts it once."""
    for top in nodes:
        for _, node in top.walk():
            for param, target in node.ties.items():
                owner, _, name = target.rpartition(".")
                setattr(model.get_submodule(node.qualname or node.name), param,
                        model.get_submodule(owner).get_parameter(name))


def network_module(result: CheckResult) -> Any:
    """The checked network as one module: its named inputs are forward's arguments, its
    outputs: returned as written (a tuple, a dict or a namedtuple; training_only ones only
    in training)."""
    net = result.network
    inputs = [i.name for i in net.inputs] or None
    last = result.layers[-1].name if result.layers else None
    if not net.outputs:
        return scope_module(result.layers, net.name, last, inputs)
    sources = [o.source for o in net.outputs]
    full = scope_module(result.layers, net.name, None, inputs, sources)
    if net.returns in ("tuple", "dict") and not any(o.training_only for o in net.outputs):
        return_as(full, net.returns, [o.key for o in net.outputs])  # {key: value}, as written
        return full
    from netspec.emit.modules import NetworkOutputs

    kept = [o for o in net.outputs if not o.training_only]
    evaluate = scope_module(result.layers, net.name, None, inputs, [o.source for o in kept],
                            skip=result.training_only(), reuse=full)
    return NetworkOutputs.wrap(full, evaluate, net.name, net.returns,
                               [o.key for o in net.outputs], [o.key for o in kept])
