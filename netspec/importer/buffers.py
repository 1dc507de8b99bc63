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

# node.meta key: the op arguments a rewrite read off the model, which the call itself does
# not take (the window of a relative position bias)
OP_ARGUMENTS = "netspec_op_arguments"

# node.meta key of an index buffer a rewrite read: (its op's name, the op's arguments)
BUFFER_ENTRY = "netspec_buffer_entry"

# buffers larger than this are not read value by value (no op makes such a table)
MAX_READ = 1 << 22


class ValuesNeeded(Exception):
    """A buffer's contents are needed, but the model was made on the meta device."""


def buffer_op(m: nn.Module, name: str, shape: tuple | None = None
              ) -> tuple[LayerType, dict[str, Any]] | str:
    """(the op, its arguments) that make m's buffer ``name`` (read as ``shape``: a flat
    index read as the table it flattens), or why there is none."""
    tensor = m._buffers[name]
    if shape is not None:
        tensor = tensor.reshape(shape)
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


def spell_out_chains(graph: fx.Graph, m: nn.Module) -> None:
    """Chains of calls that compute an op (LayerType.read_chain: timm's Swin and BEiT
    relative position bias, table[index.view(-1)].view(n, n, -1).permute(2, 0, 1)
    .contiguous().unsqueeze(0)) on m's own table and an index buffer that an op makes: one
    call of the op's function, with the op's arguments read off the buffer (node.meta
    OP_ARGUMENTS)."""
    ops = [op for op in REGISTRY.values() if op.read_chain is not None]
    for node in list(graph.nodes):
        for op in ops:
            if _spell_out(graph, m, op, node):
                break


def _spell_out(graph: fx.Graph, m: nn.Module, op: LayerType, node: fx.Node) -> bool:
    from netspec.ops import torch_side

    found = op.read_chain(node)
    if found is None:
        return False
    table, flat, chain, shape, columns = found
    owner, table_name = _owned(m, table)
    if owner is None or table_name not in owner._parameters or \
            columns not in (-1, owner._parameters[table_name].shape[-1]):
        return False
    name = _flat_buffer(flat, owner, _owned(m, flat)[0] is owner)
    buffer = owner._buffers[name] if name is not None else None
    if buffer is not None and buffer.is_meta:
        raise ValuesNeeded(f"the index buffer '{name}' was made on the meta device")
    if buffer is None or buffer.numel() != shape[0] * shape[1] or \
            (buffer.dim() == 1 and name not in owner._non_persistent_buffers_set):
        return False  # read as it is written: the importer names what it cannot follow
    made = buffer_op(owner, name, tuple(shape))
    if isinstance(made, str):
        return False
    kwargs = {k: v for k, v in made[1].items() if k in op.arg_by_name}
    prefix = str(table.target)[:-len(table_name)]
    last = chain[-1]
    with graph.inserting_after(last):
        index = graph.get_attr(prefix + name)
    with graph.inserting_after(index):
        call = graph.call_function(torch_side.function(op), (table, index))
    call.meta[OP_ARGUMENTS] = kwargs
    index.meta[BUFFER_ENTRY] = (made[0].name, made[1])
    last.replace_all_uses_with(call)
    for dead in reversed(chain):
        graph.erase_node(dead)
    while flat is not None and not flat.users:  # index.view(-1), the index
        source = flat.args[0] if flat.op == "call_method" else None
        graph.erase_node(flat)
        flat = source if isinstance(source, fx.Node) else None
    return True


def _owned(m: nn.Module, node: fx.Node) -> tuple[nn.Module | None, str]:
    """(the module holding a get_attr's tensor: m, or a direct child of it, and the
    tensor's name there), or (None, '')."""
    if node.op != "get_attr":
        return None, ""
    head, _, rest = str(node.target).rpartition(".")
    if "." in head:
        return None, ""
    owner = m if not head else dict(m.named_children()).get(head)
    return owner, rest


def _flat_buffer(flat: fx.Node, m: nn.Module, owned: bool) -> str | None:
    """The name of m's own buffer that ``flat`` is flattened, or None: index.view(-1) of a
    buffer read in forward, a 1-d buffer itself (``owned``: flat reads m's tensor), or the
    constant fx made of index.view(-1) (a buffer's view is no buffer that fx knows: it
    records the flattened tensor itself, sharing the buffer's memory)."""
    if flat.op == "call_method" and flat.target in ("view", "reshape") and \
            flat.args[1:] in ((-1,), ((-1,),)):
        index = flat.args[0]
        name = str(index.target).rpartition(".")[2] if isinstance(index, fx.Node) else ""
        if isinstance(index, fx.Node) and index.op == "get_attr" and \
                m._buffers.get(name) is not None:
            return name
        return None
    name = str(flat.target).rpartition(".")[2]
    if owned and m._buffers.get(name) is not None:
        return name if m._buffers[name].dim() == 1 else None
    constant = getattr(m, str(flat.target), None) if flat.op == "get_attr" else None
    if not isinstance(constant, torch.Tensor) or constant.dim() != 1 or constant.is_meta:
        return None
    return next((k for k, b in m._buffers.items() if b is not None and b.dim() == 2 and
                 b.is_contiguous() and b.numel() == constant.numel() and
                 b.dtype == constant.dtype and b.data_ptr() == constant.data_ptr()), None)
