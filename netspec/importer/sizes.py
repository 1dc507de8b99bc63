"""Sizes a module passes to a child beside its tensor, passed as the tensor they are read from.

timm's PVT v2 reads a map's H, W once per stage (``B, H, W, C = x.shape``) and calls each
block as ``blk(tokens, (H, W))``; the blocks hand (H, W) on to their attention and MLP,
which put the N×C tokens back on the H×W grid with them.  A spec's entries take tensors,
not numbers, so a call whose argument is a tuple (or list) of sizes read from one tensor
at fixed dims is written as a call given that tensor (the child's group takes it as
another input), and the child is traced with that parameter read as those sizes of it:
``feat_size[k]`` becomes ``feat_size.shape[dims[k]]``.  The sizes are then read when the
model runs, as torch reads them, at every input size; no entry holds parameters, so the
state_dict keys stay the module's.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import fx, nn

# fx node meta of a call given tensors in place of sizes: {argument position or keyword:
# SizesOf}
SIZE_ARGUMENTS = "netspec_size_arguments"


@dataclass(frozen=True)
class SizesOf:
    """A forward parameter its caller gives sizes of a tensor, read at the tensor's
    ``dims`` (counting the batch), as a ``kind`` (tuple or list): traced as an input, the
    tensor, its uses reading those sizes of it."""

    dims: tuple[int, ...]
    kind: type = tuple


def size_read(node: Any) -> tuple[fx.Node, int] | None:
    """(tensor, dim) where ``node`` is x.shape[d], x.size()[d] or x.size(d) with d a
    non-negative constant; else None."""
    if not isinstance(node, fx.Node) or node.op not in ("call_function", "call_method"):
        return None
    if node.op == "call_method" and node.target == "size" and len(node.args) == 2 and \
            isinstance(node.args[0], fx.Node) and _dim(node.args[1]):
        return node.args[0], node.args[1]
    if node.target is not operator.getitem or not _dim(node.args[1]):
        return None
    whole = node.args[0]
    if not isinstance(whole, fx.Node) or not isinstance(whole.args[0] if whole.args else None,
                                                        fx.Node):
        return None
    if (whole.op == "call_function" and whole.target is getattr and
            whole.args[1:] == ("shape",)) or (whole.op == "call_method" and
                                              whole.target == "size" and len(whole.args) == 1
                                              and not whole.kwargs):
        return whole.args[0], node.args[1]
    return None


def _dim(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def passed_sizes(value: Any) -> tuple[fx.Node, tuple[int, ...]] | None:
    """(tensor, dims) where ``value`` is a tuple or list of sizes read from one tensor, in
    order; else None."""
    if not isinstance(value, (tuple, list)) or not value:
        return None
    reads = [size_read(v) for v in value]
    if any(r is None for r in reads) or len({r[0] for r in reads}) != 1:
        return None
    return reads[0][0], tuple(r[1] for r in reads)


def pass_size_sources(graph: fx.Graph, m: nn.Module, takes_sizes: Callable[[nn.Module], bool]
                      ) -> None:
    """Each call of a child module (one ``takes_sizes`` says may be traced with sizes: not a
    layer) whose argument after the first is sizes read from one tensor (passed_sizes) is
    given that tensor there; node.meta[SIZE_ARGUMENTS] says which sizes of it."""
    for node in graph.nodes:
        if node.op != "call_module":
            continue
        try:
            child = m.get_submodule(str(node.target))
        except AttributeError:
            continue
        if not takes_sizes(child):
            continue
        marks: dict[int | str, SizesOf] = {}
        args = list(node.args)
        for i, value in enumerate(args[1:], 1):
            found = passed_sizes(value)
            if found is not None:
                args[i] = found[0]
                marks[i] = SizesOf(found[1], type(value))
        kwargs = dict(node.kwargs)
        for key, value in kwargs.items():
            found = passed_sizes(value)
            if found is not None:
                kwargs[key] = found[0]
                marks[key] = SizesOf(found[1], type(value))
        if marks:
            node.args, node.kwargs = tuple(args), kwargs
            node.meta[SIZE_ARGUMENTS] = marks


def read_sizes_from(graph: fx.Graph, given: dict[str, Any]) -> None:
    """The forward's parameters its caller gives as sizes of a tensor (``given``'s SizesOf),
    traced as inputs: become that tensor, each use of the parameter reading its sizes
    (feat_size[1] is feat_size.shape[dims[1]]; a call passing it on passes those sizes)."""
    sized = {name: mark for name, mark in given.items() if isinstance(mark, SizesOf)}
    if not sized:
        return
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    for p in placeholders:
        mark = sized.get(str(p.target))
        if mark is None:
            continue
        p.type = None  # a tensor now, where forward's annotation says sizes
        with graph.inserting_after(placeholders[-1]):
            shape = graph.call_function(getattr, (p, "shape"))
        reads = []
        for d in reversed(mark.dims):
            with graph.inserting_after(shape):
                reads.insert(0, graph.call_function(operator.getitem, (shape, d)))
        for user in list(p.users):
            if user is shape:
                continue
            k = user.args[1] if user.op == "call_function" and \
                user.target is operator.getitem and len(user.args) == 2 else None
            if isinstance(k, int) and not isinstance(k, bool) and \
                    -len(reads) <= k < len(reads):
                user.replace_all_uses_with(reads[k])
                graph.erase_node(user)
                continue
            user.args = _passing(user.args, p, mark.kind(reads))
            user.kwargs = _passing(user.kwargs, p, mark.kind(reads))
        for read in reads:
            if not read.users:
                graph.erase_node(read)
        if not shape.users:
            graph.erase_node(shape)


def _passing(arguments: Any, p: fx.Node, whole: Any) -> Any:
    """A call's arguments with ``whole`` in place of the node ``p``."""
    return fx.node.map_arg(arguments, lambda n: whole if n is p else n)
