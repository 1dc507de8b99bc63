"""Buffers a module's forward reads, and tables it indexes with them.

A buffer (register_buffer: an index table, state that is not learnt) becomes the entry of
the op that makes it (LayerType.read_buffer: the arguments that give these contents), under
the buffer's name, so its state_dict key stays, persistent or not as the module registered
it.  ``table[:, index]`` with such a tensor becomes the op that gathers so
(LayerType.tensor_index).  Contents are compared value for value: an op is written only
where it makes exactly the buffer the module holds."""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn

from netspec.ops import REGISTRY, LayerType
from netspec.ops.declare import TENSOR_INDEX

# buffers larger than this are not read value by value (no op makes such a table)
MAX_READ = 1 << 22


class ValuesNeeded(Exception):
    """A buffer's contents are needed, but the model was made on the meta device."""


def buffer_op(m: nn.Module, name: str) -> tuple[LayerType, dict[str, Any]] | str:
    """(the op, its arguments) that make m's buffer ``name``, or why there is none."""
    tensor = m._buffers[name]
    persistent = name not in m._non_persistent_buffers_set
    what = (f"its {'' if persistent else 'non-persistent '}buffer '{name}' "
            f"({'×'.join(map(str, tensor.shape)) or 'a scalar'}, {str(tensor.dtype)[6:]})")
    readers = [op for op in REGISTRY.values() if op.read_buffer is not None and
               op.outputs[0].dtype == str(tensor.dtype)[6:]]
    if readers and tensor.numel() <= MAX_READ:
        values = contents(tensor)
        for op in readers:
            args = op.read_buffer(values, persistent)
            if args is not None:
                return op, args
    makers = ", ".join(sorted(op.name for op in REGISTRY.values() if op.read_buffer)) or "none"
    return (f"{what} holds values that no netspec op makes (ops that make buffers: "
            f"{makers}); netspec modules compute only their own buffers")


def contents(tensor: torch.Tensor) -> Any:
    """The tensor's values as nested lists; ValuesNeeded where it has none (meta)."""
    if tensor.is_meta:
        raise ValuesNeeded
    return tensor.detach().cpu().tolist()


def tensor_index(m: nn.Module, index: Any, index_node: fx.Node, value: Any
                 ) -> tuple[LayerType, dict[str, Any]] | None:
    """(the op, its arguments) that x[index] is, with ``index_node`` (whose tensor is
    ``value``) in the subscript; None where no op is."""
    subscript = index if isinstance(index, tuple) else (index,)
    subscript = tuple(TENSOR_INDEX if v is index_node else v for v in subscript)
    if not isinstance(value, torch.Tensor) or value.numel() > MAX_READ:
        return None
    values = contents(value)
    for op in REGISTRY.values():
        if op.tensor_index is not None:
            args = op.tensor_index(subscript, values)
            if args is not None:
                return op, args
    return None


def index_tensors(index: Any) -> list[fx.Node]:
    """The fx nodes in a subscript (x[:, idx]: idx)."""
    subscript = index if isinstance(index, tuple) else (index,)
    return [v for v in subscript if isinstance(v, fx.Node)]
