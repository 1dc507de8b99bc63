"""Subclasses of torch.nn layers, as libraries write them: timm's BatchNormAct2d is an
``nn.BatchNorm2d`` that also holds a dropout and an activation and calls them in its own
forward; torchvision's Conv3DSimple is an ``nn.Conv3d`` with nothing of its own but a
static method.

A subclass that overrides none of its layer's methods is that layer, and so is a class whose
forward is, op for op, the forward of a layer's own class run on its state (timm's
LayerNorm2d is torchvision's, which netspec builds).  One whose forward is
its own is read from that forward: the one call in it that takes the module's own tensors
must be the call the layer's forward makes, with the same function and the same arguments
(found by running the layer's forward under a TorchFunctionMode that stops at that call, so
nothing is computed); the rest of the forward (the activation after it, the permutes
around a channels-first LayerNorm) is imported as any other.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

# methods a subclass may define without changing what the layer computes
INITIALISERS = frozenset({"__init__", "reset_parameters", "_reset_parameters"})
# ranks the probe input tries, most common first: the layer's forward may check its input's
# rank before it calls its function (BatchNorm2d's _check_input_dim)
PROBE_RANKS = (4, 3, 2, 5, 1)


def layer_base(cls: type, layer_class: Callable[[type], Any]) -> tuple[type, Any] | None:
    """(the nearest base class of ``cls`` that is a netspec layer, what ``layer_class`` says of
    it), or None; ``layer_class(c)`` is None for a class that is none."""
    for base in cls.__mro__[1:]:
        if base is nn.Module:
            return None
        found = layer_class(base)
        if found is not None:
            return base, found
    return None


def overrides_nothing(cls: type, base: type) -> bool:
    """Whether ``cls`` computes what ``base`` does: it (and the classes between them) define
    none of ``base``'s methods but initialisers."""
    own = set()
    for c in cls.__mro__[:cls.__mro__.index(base)]:
        own.update(k for k, v in vars(c).items() if callable(v) or isinstance(
            v, (staticmethod, classmethod, property)))
    return not {k for k in own if hasattr(base, k)} - INITIALISERS


def same_forward(m: nn.Module, other: type, trace: Callable[[nn.Module], fx.Graph | None]
                 ) -> bool:
    """Whether ``m``'s forward traces, node for node, as ``other``'s forward run on ``m``'s
    state does (``trace``: a module's graph, None where it cannot be traced)."""
    mine = trace(m)
    if mine is None:
        return False
    twin = object.__new__(other)
    twin.__dict__.update(vars(m))
    theirs = trace(twin)
    return theirs is not None and _signature(mine) == _signature(theirs)


def _signature(graph: fx.Graph) -> list[tuple]:
    """The graph as data: each node's kind, target and arguments, nodes by position
    (placeholders by position only: the parameter's name does not matter)."""
    position: dict[fx.Node, int] = {}

    def value(v: Any) -> Any:
        return ("node", position[v]) if isinstance(v, fx.Node) else v

    found = []
    for node in graph.nodes:
        position[node] = len(position)
        target = None if node.op == "placeholder" else node.target
        found.append((node.op, target, pytree.tree_map(value, node.args),
                      pytree.tree_map(value, node.kwargs)))
    return found


def own_tensors(m: nn.Module) -> dict[str, torch.Tensor]:
    """The module's own parameters and buffers (not its children's), by attribute name."""
    found = {**m._parameters, **m._buffers}
    return {k: v for k, v in found.items() if v is not None}


def base_call(m: nn.Module, base: type, graph: fx.Graph) -> fx.Node | str:
    """The node of ``graph`` (``m``'s own forward) that is ``base``'s forward on its first
    argument, or why there is none."""
    own = own_tensors(m)
    reads = [n for n in graph.nodes if n.op == "get_attr" and n.target in own and n.users]
    users = {u for n in reads for u in n.users}
    layer = f"torch.nn.{base.__name__}"
    if len(users) != 1:
        names = ", ".join(sorted(u.name for u in users)) or "nothing"
        return (f"its forward uses its own tensors in {names} (fx nodes), not in one call as "
                f"{layer}'s forward does")
    call = users.pop()
    expected = probe(m, base)
    if isinstance(expected, str):
        return expected
    func, args, kwargs = expected
    if call.op != "call_function" or not _same_function(call.target, func) or \
            _canonical(func, call.args, call.kwargs, _fx_value(call, own)) != \
            _canonical(func, args, kwargs, _recorded_value(own)):
        return (f"its forward calls {_name(call.target)} (fx node '{call.name}') with "
                f"its own tensors differently from {layer}'s forward, which calls "
                f"{_name(func)}")
    return call


class _Found(Exception):
    pass


class _FirstOwnCall(TorchFunctionMode):
    """Records the first torch function called with one of ``own`` and stops there."""

    def __init__(self, own: dict[str, torch.Tensor]):
        super().__init__()
        self.ids = {id(t) for t in own.values()}
        self.call: tuple[Any, tuple, dict] | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if any(isinstance(v, torch.Tensor) and id(v) in self.ids
               for v in pytree.tree_leaves((args, kwargs))):
            self.call = (func, args, kwargs)
            raise _Found
        return func(*args, **kwargs)


PROBE = "the probe input"


def probe(m: nn.Module, base: type) -> tuple[Any, tuple, dict] | str:
    """(function, args, kwargs) that ``base``'s forward calls with ``m``'s own tensors, on an
    input of no memory (the probe tensor in args stands for the input); or why not found."""
    twin = object.__new__(base)  # m's state under base's methods (base's own _conv_forward)
    twin.__dict__.update(vars(m))
    for rank in PROBE_RANKS:
        x = torch.empty((2,) * rank, device="meta")
        recorder = _FirstOwnCall(own_tensors(m))
        try:
            with recorder:
                base.forward(twin, x)
        except _Found:
            func, args, kwargs = recorder.call
            return func, *pytree.tree_map(_standing_for(x), (args, kwargs))
        except Exception:  # this rank is not the layer's: try another
            continue
    return f"torch.nn.{base.__name__}'s forward could not be followed to its call"


def _standing_for(x: torch.Tensor) -> Callable[[Any], Any]:
    return lambda v: PROBE if v is x else v


def _same_function(a: Any, b: Any) -> bool:
    return a is b or (getattr(a, "__name__", a) == getattr(b, "__name__", b) and
                      _module(a) == _module(b))


def _module(f: Any) -> str:
    module = getattr(f, "__module__", None) or ""
    return "torch" if module.startswith("torch._C") else module


def _name(f: Any) -> str:
    return f"{_module(f)}.{getattr(f, '__name__', f)}".lstrip(".")


def _fx_value(call: fx.Node, own: dict[str, torch.Tensor]) -> Callable[[Any], Any]:
    """An fx argument as comparable data: the call's first tensor is the input, a read of an
    own tensor its name; any other node stays a node (and so differs)."""

    def value(v: Any) -> Any:
        if isinstance(v, fx.Node):
            if v is call.args[0]:
                return PROBE
            if v.op == "get_attr" and v.target in own:
                return ("own", v.target)
        return v

    return value


def _recorded_value(own: dict[str, torch.Tensor]) -> Callable[[Any], Any]:
    names = {id(t): k for k, t in own.items()}

    def value(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return ("own", names[id(v)]) if id(v) in names else ("tensor", id(v))
        return v

    return value


def _canonical(func: Any, args: tuple, kwargs: dict, value: Callable[[Any], Any]) -> Any:
    """The call's arguments by parameter name where the function has a signature (else as
    given), each as comparable data: tuples and lists alike."""
    args, kwargs = tuple(_plain(a, value) for a in args), \
        {k: _plain(v, value) for k, v in kwargs.items()}
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return args, sorted(kwargs.items())
    bound.apply_defaults()
    return sorted(bound.arguments.items())


def _plain(v: Any, value: Callable[[Any], Any]) -> Any:
    if isinstance(v, (tuple, list, torch.Size)):
        return tuple(_plain(x, value) for x in v)
    return value(v)
