"""The model's outputs (a spec's ``outputs:``), where its forward returns several tensors:
torchvision's segmentation models return ``{"out": ...}`` (a dict), GoogLeNet and Inception
v3 return ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)`` in training and the logits
in eval.  Their auxiliary heads run only in training: the model's own forward is traced a
second time with the model (not its children) in training mode, and the outputs it returns
there besides the eval forward's become ``training_only`` outputs, provided the eval forward
is exactly the training one without what feeds only them."""

from __future__ import annotations

from typing import Any

from torch import fx, nn

from netspec.core.names import IDENTIFIER
from netspec.importer.fx import (
    Converted,
    Importer,
    ImportProblem,
    _Scope,
    _traced,
)


def returned_values(output: Any) -> tuple[list[tuple[str, fx.Node]] | None, str]:
    """The tensors a forward returns, by key, and how ('dict', 'namedtuple', 'tuple'); (None,
    'tensor') for one tensor or anything holding other values (an aux head's None)."""
    if isinstance(output, fx.Node) and namedtuple_call(output):
        output = _namedtuple_values(output)
    if isinstance(output, dict):
        values, returns = [(k, v) for k, v in output.items()], "dict"
    elif isinstance(output, tuple) and hasattr(output, "_fields"):
        values, returns = list(zip(output._fields, output, strict=True)), "namedtuple"
    elif isinstance(output, (tuple, list)) and len(output) > 1:
        values, returns = [(f"output{i}", v) for i, v in enumerate(output)], "tuple"
    else:
        return None, "tensor"
    if not all(isinstance(k, str) and IDENTIFIER.fullmatch(k) and isinstance(v, fx.Node)
               for k, v in values):
        return None, "tensor"
    return values, returns


def several_outputs(scope: _Scope, values: list[tuple[str, fx.Node]], returns: str
                    ) -> Converted:
    """The model's entries and its outputs, each an entry's name."""
    outputs = []
    for key, node in values:
        ref = scope.ref(node, node, f"its output '{key}'")
        if ref == "input" or ref.isdigit() or "." in ref:
            raise ImportProblem(f"{scope.where}: its output '{key}' is "
                                f"{'its input' if ref == 'input' else f'entry {ref}'}; a "
                                "spec's outputs name entries")
        outputs.append((key, ref))
    scope.check_children_called()
    return Converted(scope.entries(), scope.input_join, outputs, returns)


def convert_model(model: nn.Module, input_shape: tuple[int, ...]
                  ) -> tuple[Importer, Converted]:
    """The model's entries (model in eval mode); where its eval forward leaves modules with
    parameters out (aux heads) and its training forward returns them, the training forward's
    entries with those outputs training_only."""
    importer = Importer(model=model, input_shape=input_shape)
    try:
        return importer, importer.convert(model, "")
    except ImportProblem as problem:
        training = _training_graph(model)
        if training is None:
            raise
        evaluate = _traced(model)
        if _lineage(training, _output_nodes(training)) == \
                _lineage(evaluate, _output_nodes(evaluate)):
            raise  # the same forward in training: nothing more to read there
        importer = Importer(model=model, input_shape=input_shape)
        converted = importer.convert(model, "", graph=training)
        if converted.outputs is None:
            raise problem from None
        converted.outputs = _mark_training_only(importer.where("", model), converted,
                                                training, evaluate)
        return importer, converted


def _training_graph(model: nn.Module) -> fx.Graph | None:
    """The model's forward traced with the model in training mode (its children stay in
    eval: their own forwards are traced as in eval), or None where fx cannot."""
    model.training = True
    try:
        return _traced(model)
    except Exception:
        return None
    finally:
        model.training = False


def _output_nodes(graph: fx.Graph) -> list[tuple[str | None, fx.Node]]:
    output = next(n for n in graph.nodes if n.op == "output").args[0]
    values, _ = returned_values(output)
    if values is not None:
        return list(values)
    return [(None, output)] if isinstance(output, fx.Node) else []


def _lineage(graph: fx.Graph, outputs: list[tuple[Any, fx.Node]]) -> list[tuple]:
    """What computes ``outputs``, node by node in graph order: (op, target, arguments with
    nodes by position), comparable between two traces."""
    needed, stack = set(), [node for _, node in outputs]
    while stack:
        node = stack.pop()
        if node not in needed:
            needed.add(node)
            stack.extend(node.all_input_nodes)
    order = [n for n in graph.nodes if n in needed]
    position = {n: i for i, n in enumerate(order)}

    def plain(value: Any) -> Any:
        return fx.node.map_arg(value, lambda n: f"%{position[n]}")

    return [(n.op, str(n.target), repr(plain(n.args)), repr(plain(n.kwargs))) for n in order]


def _mark_training_only(where: str, converted: Converted, training: fx.Graph,
                        evaluate: fx.Graph) -> list[tuple[str, str, bool]]:
    """(key, entry, training_only) per output: those the eval forward returns too (the same
    call) stay; the eval forward must be the training one computing only them."""
    evaluated = _output_nodes(evaluate)
    signatures = {(n.op, str(n.target)) for _, n in evaluated}
    nodes = dict(_output_nodes(training))
    kept = [k for k, _ in converted.outputs if (nodes[k].op, str(nodes[k].target)) in signatures]
    if len(kept) != len(evaluated) or \
            _lineage(training, [(k, nodes[k]) for k in kept]) != _lineage(evaluate, evaluated):
        raise ImportProblem(f"{where}: its forward in training returns "
                            f"{', '.join(k for k, _ in converted.outputs)}, and in eval "
                            "computes otherwise than the training forward without the outputs "
                            "it leaves out; a spec's eval forward is its training forward "
                            "less the training_only outputs")
    return [(k, ref, k not in kept) for k, ref in converted.outputs]


def outputs_data(converted: Converted) -> dict[str, Any]:
    """returns: and outputs: of the spec (nothing for a forward returning one tensor)."""
    if converted.outputs is None:
        return {}
    outputs = [o if len(o) == 3 else (*o, False) for o in converted.outputs]
    written = {key: {"from": ref, "training_only": True} if only else ref
               for key, ref, only in outputs}
    if converted.returns == "dict":
        return {"outputs": written}
    if converted.returns == "tuple" and not any(only for *_, only in outputs):
        return {"outputs": [ref for _, ref, _ in outputs]}
    return {"returns": converted.returns, "outputs": written}


def namedtuple_call(node: fx.Node) -> bool:
    """A call building a namedtuple (GoogLeNetOutputs(x, aux2, aux1)), which fx records."""
    target = node.target
    return node.op == "call_function" and isinstance(target, type) and \
        issubclass(target, tuple) and hasattr(target, "_fields")


def _namedtuple_values(node: fx.Node) -> Any:
    """The namedtuple a recorded call builds, holding its argument nodes."""
    try:
        return node.target(*node.args, **node.kwargs)
    except TypeError:
        return None
