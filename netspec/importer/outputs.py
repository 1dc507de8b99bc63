"""The model's outputs (a spec's ``outputs:``), where its forward returns several tensors:
torchvision's segmentation models return ``{"out": ...}`` (a dict), GoogLeNet and Inception
v3 return ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)`` in training and the logits
in eval.  What a forward returns, read off its fx graph, and the spec's ``outputs:`` and
``returns:``; fx.convert_model reads the aux heads from the training forward."""

from __future__ import annotations

from typing import Any

from torch import fx

from netspec.core.names import IDENTIFIER


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


def outputs_data(converted: Any) -> dict[str, Any]:
    """returns: and outputs: of the spec for fx.Converted's outputs (nothing for a forward
    returning one tensor)."""
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
