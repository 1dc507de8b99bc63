"""Forwards rewritten, before they are read, as the same computation in calls netspec
spells (each rewrite exact, value for value):

- ``x[:, ::2, ::2]``, slices of several dims at once, is one slice after another
  (``x[:, ::2][:, :, ::2]``): slices of different dims commute (timm's LeViT Subsample);
- ``bn(x.flatten(0, 1)).reshape_as(x)`` with ``bn`` a BatchNorm1d and x a B×N×C batch is
  ``bn(x.transpose(1, 2)).transpose(1, 2)``: a BatchNorm1d normalises each channel over
  every other element, of B·N rows or of B×N positions alike (timm's LeViT LinearNorm;
  flattening the batch is no sample's operation)."""

from __future__ import annotations

import operator
from typing import Any

from torch import fx, nn


def rewrite(graph: fx.Graph, m: nn.Module) -> None:
    _split_slices(graph)
    _norm_over_tokens(graph, m)


def _split_slices(graph: fx.Graph) -> None:
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target is not operator.getitem or \
                len(node.args) != 2 or not isinstance(node.args[1], tuple):
            continue
        index = node.args[1]
        if not all(isinstance(v, slice) and not _holds_node(v) for v in index):
            continue  # ints, None, '...' or tensors move the dims: left as written
        cut = [i for i, v in enumerate(index) if v != slice(None)]
        if len(cut) < 2:
            continue
        current = node.args[0]
        with graph.inserting_before(node):
            for i in cut:
                current = graph.call_function(
                    operator.getitem, (current, (*(slice(None),) * i, index[i])))
        node.replace_all_uses_with(current)
        graph.erase_node(node)


def _holds_node(item: slice) -> bool:
    return any(isinstance(v, fx.Node) for v in (item.start, item.stop, item.step))


def _norm_over_tokens(graph: fx.Graph, m: nn.Module) -> None:
    for node in list(graph.nodes):
        found = _flattened_norm(node, m)
        if found is None:
            continue
        flatten, norm, back = found
        x = flatten.args[0]
        with graph.inserting_before(flatten):
            channels_first = graph.call_method("transpose", (x, 1, 2))
        norm.args = (channels_first,)
        with graph.inserting_after(norm):
            restored = graph.call_method("transpose", (norm, 1, 2))
        back.replace_all_uses_with(restored)
        graph.erase_node(back)
        graph.erase_node(flatten)


def _flattened_norm(node: fx.Node, m: nn.Module) -> tuple[fx.Node, fx.Node, fx.Node] | None:
    """(x.flatten(0, 1), bn(...), .reshape_as(x)) where bn is a BatchNorm1d child, else None.
    (x is B×N×C where BatchNorm1d takes the flattened x; a 4-d x would leave the rewritten
    BatchNorm1d a 4-d input, which the check refuses by name.)"""
    if node.op != "call_method" or node.target != "flatten" or node.kwargs or \
            tuple(node.args[1:]) != (0, 1) or len(node.users) != 1:
        return None
    norm = next(iter(node.users))
    if norm.op != "call_module" or norm.args != (node,) or norm.kwargs or \
            not isinstance(_submodule(m, str(norm.target)), nn.BatchNorm1d) or \
            len(norm.users) != 1:
        return None
    back = next(iter(norm.users))
    if back.op != "call_method" or back.target != "reshape_as" or back.kwargs or \
            back.args != (norm, node.args[0]):
        return None
    return node, norm, back


def _submodule(m: nn.Module, target: str) -> Any:
    try:
        return m.get_submodule(target)
    except AttributeError:
        return None
