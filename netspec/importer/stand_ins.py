"""Methods of library modules read as module ops (netspec.ops.declare.StandIn): timm's
SwinTransformerBlock._attn folds its windows into the batch, which no spec can say, around
its child attn (WindowAttention), which takes those windows; the op SwinBlockAttention is the
method and the child together, its state_dict the child's.  So is BlockGridAttention for
timm's MaxViT (PartitionAttentionCl._partition_attn around its AttentionCl).

While a host's forward is traced, its method calls the child, so the trace records a call
of the child, which the importer then reads as the op (its arguments read off the host)."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from torch import nn

from netspec.ops import REGISTRY, LayerType

# ops standing for a method, by the dotted path of the class that has it
_BY_HOST = {op.torch.stands_for.host: op for op in REGISTRY.values()
            if op.torch.stands_for is not None}
# the children of traced hosts: child -> (the op it is, its host), weakly (the model's)
_STANDING_IN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def stand_in(m: nn.Module) -> tuple[LayerType, nn.Module] | None:
    """(the op, its host) where m is the child of a traced host whose method is the op."""
    return _STANDING_IN.get(m)


@contextlib.contextmanager
def calls_child(m: nn.Module) -> Iterator[None]:
    """While tracing m: where m's class is a host, its method is a call of its child."""
    op = _BY_HOST.get(_class_path(type(m)))
    if op is None:
        yield
        return
    spec = op.torch.stands_for
    child = getattr(m, spec.child, None)
    if not isinstance(child, nn.Module) or _class_path(type(child)) != spec.child_class:
        yield  # another child than the library's: its forward is read as it is
        return
    _STANDING_IN[child] = (op, m)
    # an instance attribute hides the class's method; the child's call is a leaf's
    m.__dict__[spec.method] = lambda x: child(x)
    try:
        yield
    finally:
        del m.__dict__[spec.method]


def host_method(m: nn.Module) -> Callable[..., Any] | None:
    """For a child standing in: its host's method itself, which the model runs where the
    traced forward calls the child; None for any other module."""
    standing = _STANDING_IN.get(m)
    if standing is None:
        return None
    op, host = standing
    return getattr(type(host), op.torch.stands_for.method).__get__(host)
