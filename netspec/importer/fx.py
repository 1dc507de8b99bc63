"""`netspec import`: an existing ``nn.Module`` -> a spec, weight for weight.

Every module that is not a netspec layer type (the model, its ``nn.Sequential``\\ s, its own
classes) is traced on its own with ``torch.fx`` -- its direct children left as calls -- and
becomes a group whose entries are its forward graph: children in the order they are called,
``from:`` where the data flow is not the previous entry, and the functions netspec knows
(``+``, ``*``, ``torch.cat``, ``torch.flatten``, ``F.relu``, ...) as merges or parameterless
layers.  So module paths, and with them ``state_dict`` keys, are the original's.  Leaf
modules become layer entries whose arguments are read off the module's attributes, in the
layer type's declared argument list (or by the op's ``read_module``); each is checked by
rebuilding it and comparing its repr and state.  A leaf taking several tensors
(``attn(q, k, v)[0]``) is an entry with ``from:`` naming them.  Whatever cannot be
expressed raises ``ImportProblem`` naming the module and the operation.

This module imports torch; only ``netspec import`` and specs with ``base:`` use it.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import logging
import math
import operator
import re
import sys
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from netspec.core.names import IDENTIFIER, MODULE_ATTRIBUTES, MODULE_NAME, list_place
from netspec.importer.buffers import (
    BUFFER_ENTRY,
    OP_ARGUMENTS,
    ValuesNeeded,
    buffer_op,
    index_tensors,
    spell_out_chains,
    tensor_index,
)
from netspec.importer.outputs import namedtuple_call, outputs_data, returned_values
from netspec.importer.regroup import regrouping
from netspec.importer.rewrites import rewrite
from netspec.importer.sizes import (
    SIZE_ARGUMENTS,
    SizesOf,
    pass_size_sources,
    read_sizes_from,
    size_read,
)
from netspec.importer.stand_ins import calls_child, host_method, stand_in
from netspec.importer.subclass import (
    base_call,
    layer_base,
    overrides_nothing,
    own_tensors,
    probe,
    same_forward,
)
from netspec.ops import REGISTRY, LayerType
from netspec.ops.declare import REQUIRED, SPELLINGS, FxCall

DEFAULT_INPUT = (3, 224, 224)
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
TARGET = re.compile(rf"({_IDENT}(?:\.{_IDENT})*):({_IDENT})")
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


# a forward's parameter its caller passes a tensor (forward(self, x, shortcut)): traced as
# an input, not fixed to a constant
TENSOR = object()


class ImportProblem(Exception):
    """The model (or one of its modules or operations) cannot be written as a spec."""


class MetaValuesNeeded(ImportProblem):
    """The import reads a tensor's values (a buffer's), and the model was made on the meta
    device: it is made again with its tensors (import_target does)."""


class TargetError(Exception):
    """The target is not an importable ``module:callable`` that makes a model.  ``status``:
    the exit status of ``netspec import``."""

    status = 2


class TargetExited(TargetError):
    """The target (or importing its module) raised SystemExit or another BaseException
    instead of returning a model."""

    status = 1


def _exited(what: str, exc: BaseException) -> TargetExited:
    if isinstance(exc, SystemExit):
        how = f"tried to end the program (sys.exit({exc.code!r}))"
    else:
        how = f"raised {type(exc).__name__}"
    return TargetExited(f"{what} {how} instead of returning a model")


# ----------------------------------------------------------------------------- targets


def resolve_target(text: str) -> Any:
    """``module:callable`` -> the callable.  ``torchvision:NAME`` is torchvision.models.NAME.

    Only a class derived from ``nn.Module`` or a plain Python function not declared to
    return anything else is accepted (never a builtin, never a loader such as
    ``torch.hub.load``: netspec.trust.factory_problem), never from the standard library,
    never a private name: a target names a model factory, nothing else."""
    match = TARGET.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise TargetError(f"'{text}' is not a target such as torchvision:resnet18 or "
                          "my_package.models:make_net (a dotted module, ':', a callable's name)")
    module_name, attr = match.groups()
    if module_name == "torchvision":
        module_name = "torchvision.models"
    parts = module_name.split(".") + [attr]
    if any(p.startswith("_") for p in parts):
        raise TargetError(f"'{text}': private names (starting with '_') are not model factories")
    top = parts[0]
    if top in sys.stdlib_module_names:
        raise TargetError(f"'{text}': {top} is a Python standard-library module, not a "
                          "model; give module:callable of a function or nn.Module class "
                          "that builds a model")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetError(f"cannot import '{module_name}' (from '{text}'): {exc}") from None
    except Exception as exc:  # the module's own code failed while importing
        raise TargetError(f"importing '{module_name}' (from '{text}') failed: "
                          f"{type(exc).__name__}: {exc}") from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit: a script, not a library
        raise _exited(f"importing '{module_name}'", exc) from None
    obj = getattr(module, attr, None)
    if obj is None:
        known = _factories(module_name, module)
        from netspec.core.diagnostics import did_you_mean

        raise TargetError(f"'{module_name}' has no '{attr}'{did_you_mean(attr, known)}")
    from netspec.importer.trust import factory_problem

    problem = factory_problem(text, module_name, obj)
    if problem:
        raise TargetError(problem)
    return obj


def _factories(module_name: str, module: Any) -> list[str]:
    if module_name == "torchvision.models":
        try:
            return list(module.list_models())
        except Exception:  # pragma: no cover - old torchvision
            pass
    return [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """--kwargs '{"num_classes": 10}': JSON (never evaluated), a mapping of names."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TargetError(f"--kwargs is not JSON ({exc.msg} at column {exc.colno}); write e.g. "
                          "'{\"num_classes\": 10}'") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise TargetError("--kwargs must be a JSON object of keyword arguments, e.g. "
                          "'{\"num_classes\": 10}'")
    return value


def make_model(target: str, kwargs: dict[str, Any] | None = None, meta: bool = True) -> nn.Module:
    """Call the target's factory (on the meta device: no memory, no weight initialisation)."""
    factory = resolve_target(target)
    kwargs = kwargs or {}
    model = None
    call = f"{target}({kwargs_text(kwargs)})"
    # what the factory prints goes to stderr: stdout is the spec (netspec import)
    with contextlib.redirect_stdout(sys.stderr):
        if meta:
            try:
                with torch.device("meta"):
                    model = factory(**kwargs)
            except TypeError as exc:
                raise TargetError(f"{call} failed: {exc}") from None
            except Exception:
                model = None  # some factories need real tensors: build it normally
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                raise _exited(call, exc) from None
        if model is None:
            try:
                model = factory(**kwargs)
            except Exception as exc:
                raise TargetError(f"{call} failed: {type(exc).__name__}: {exc}") from None
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                raise _exited(call, exc) from None
    if not isinstance(model, nn.Module):
        raise TargetError(f"{call} returned a value of type {type(model).__name__}, not an "
                          "nn.Module")
    return model


def kwargs_text(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


# ----------------------------------------------------------------------------- leaf layers


def plain_value(v: Any) -> Any:
    """A module attribute as YAML data: tuples become lists."""
    if isinstance(v, (tuple, list)):
        return [plain_value(x) for x in v]
    if isinstance(v, torch.Size):
        return list(v)
    return v


def collapse_arg(arg, v: Any) -> Any:
    """(3, 3) -> 3 where the argument takes an int for 'the same in every dimension': an
    int or a list of at most so many (a kernel size; not a list of dims or of shifts, whose
    int is one dim)."""
    types = arg.type.schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if isinstance(v, list) and v and "integer" in types and "maxItems" in arg.type.schema and all(
            isinstance(x, int) and not isinstance(x, bool) and x == v[0] for x in v):
        return v[0]
    return v


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b)


# module ops by the name of the torch class they build
_MODULE_OPS = {lt.torch.target.rpartition(".")[2]: lt for lt in REGISTRY.values()
               if lt.torch.module}


def op_of_class(cls: type) -> LayerType | None:
    """The module op whose torch module is a ``cls`` (None: netspec has none)."""
    return _MODULE_OPS.get(cls.__name__)


def layer_type_of(m: nn.Module) -> LayerType | None:
    """The netspec layer type a module is (None: not a torch.nn layer netspec has, nor the
    class of a module op from outside torch, such as torchvision's StochasticDepth, nor a
    subclass of one that overrides none of its methods, such as torchvision's Conv3DSimple,
    nor a class whose forward is one's, such as timm's LayerNorm2d)."""
    if isinstance(m, CONTAINERS):
        return None
    standing = stand_in(m)
    if standing is not None:  # timm's Swin block's attn: its block's _attn is the op
        return standing[0]
    lt = _layer_class(type(m))
    if lt is not None:
        return lt
    base = layer_base(type(m), _layer_class)
    if base is not None and overrides_nothing(type(m), base[0]):
        return base[1]
    if m not in _LOOK_ALIKES:
        _LOOK_ALIKES[m] = _look_alike(m, base[0] if base is not None else None)
    return _LOOK_ALIKES[m]


# modules whose forward is a layer class's, by module (weakly: the model's modules)
_LOOK_ALIKES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _look_alike(m: nn.Module, base: type | None) -> LayerType | None:
    """The op whose own class has m's name or derives from m's torch.nn layer base, and whose
    forward m's forward is, node for node, on m's state (timm's LayerNorm2d is torchvision's
    LayerNorm2d); None when there is none."""
    cls = type(m)
    for lt, other in _op_classes():
        if other is not cls and (other.__name__ == cls.__name__ or
                                 (base is not None and issubclass(other, base))) and \
                same_forward(m, other, _trace_or_none):
            return lt
    return None


_OP_CLASSES: list[tuple[LayerType, type]] = []


def _op_classes() -> list[tuple[LayerType, type]]:
    """(op, the class it builds) for every module op."""
    if not _OP_CLASSES:
        from netspec.ops.torch_side import torch_class

        _OP_CLASSES.extend((lt, torch_class(lt.name)) for lt in REGISTRY.values()
                           if lt.torch.module)
    return _OP_CLASSES


def _layer_class(cls: type) -> LayerType | None:
    """The op whose own class ``cls`` is (torch.nn's, or a module op's from outside)."""
    lt = op_of_class(cls)
    if lt is None or not (cls.__module__.startswith("torch.nn") or cls is _foreign_class(lt)):
        return None
    return lt


def _foreign_class(lt: LayerType) -> type | None:
    """The class of a module op from outside torch.nn (torchvision.ops.StochasticDepth)."""
    if lt.torch.target.startswith("torch.nn."):
        return None
    from netspec.ops.torch_side import torch_class

    return torch_class(lt.name)


def leaf_args(m: nn.Module, lt: LayerType, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(arguments to write: non-default, not inferable; inferable values to expect)."""
    values = _module_values(m, lt, where)
    write, expect = {}, {}
    for arg in lt.args:
        if arg.name not in values:
            continue
        v = collapse_arg(arg, values[arg.name])
        if arg.infer is not None:
            expect[arg.name] = v
        elif arg.default is REQUIRED or not same_value(v, arg.default):
            write[arg.name] = v
    _drop_kernel_stride(lt, write)
    # rebuilt with the values as the module keeps them ((1, 1), not 1: the same layer, but
    # another repr), leaving out what the spec leaves out; where only the spelling of a
    # left-out default differs (s3d's MaxPool3d keeps padding=(0, 0, 0), torch's default is
    # 0), the module rebuilt from every value it keeps must be it
    try:
        _verify_leaf(m, lt, {k: values[k] for k in [*expect, *write]}, where)
    except ImportProblem:
        _verify_leaf(m, lt, values, where)
    return write, expect


def _module_values(m: nn.Module, lt: LayerType, where: str) -> dict[str, Any]:
    """The op's arguments as the module keeps them: by the op's own reader where it declares
    one, else attribute by attribute."""
    if lt.read_module is None:
        return _attribute_values(m, lt, where)
    standing = stand_in(m)
    values = lt.read_module(m if standing is None else standing[1])
    if isinstance(values, str):
        raise ImportProblem(f"{where}: {values}")
    return values


def _attribute_values(m: nn.Module, lt: LayerType, where: str) -> dict[str, Any]:
    """Each argument read off the module's attribute of the same name (a tensor standing for
    a boolean argument such as bias: whether it is there)."""
    values = {}
    for arg in lt.args:
        if not hasattr(m, arg.name):
            if arg.default is REQUIRED:
                raise ImportProblem(f"{where}: cannot read argument '{arg.name}' of "
                                    f"{lt.name} from the module")
            continue  # not kept by the module (PReLU's init): the default
        v = getattr(m, arg.name)
        if isinstance(v, torch.Tensor) or (v is None and arg.name == "bias"):
            if arg.type.schema.get("type") != "boolean":
                raise ImportProblem(f"{where}: argument '{arg.name}' of {lt.name} is a tensor")
            if v is None and any(getattr(m, k, True) is False
                                 for k in ("affine", "elementwise_affine")):
                continue  # no affine parameters at all: bias says nothing
            v = v is not None
        values[arg.name] = plain_value(v)
    return values


def _drop_kernel_stride(lt: LayerType, write: dict[str, Any]) -> None:
    """Pools: stride None means the kernel size, so a stride equal to it is left out."""
    stride = lt.arg_by_name.get("stride")
    if stride is not None and stride.default is None and write.get("stride") is not None and \
            same_value(write["stride"], write.get("kernel_size")):
        del write["stride"]


def _verify_leaf(m: nn.Module, lt: LayerType, kwargs: dict[str, Any], where: str) -> None:
    """Rebuild the layer from what the spec will say; it must be the same module."""
    from netspec.ops.torch_side import torch_class

    try:
        with torch.device("meta"):
            ours = torch_class(lt.name)(**{k: lt.arg_by_name[k].type.to_torch(v)
                                           for k, v in kwargs.items()})
    except Exception as exc:
        raise ImportProblem(f"{where}: rebuilding it as {lt.name}({kwargs_text(kwargs)}) "
                            f"fails: {exc}") from None
    theirs = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    mine = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    if ours.extra_repr() != m.extra_repr() or theirs != mine:
        raise ImportProblem(f"{where}: rebuilt from its attributes it would be "
                            f"{lt.name}({ours.extra_repr()}), not {lt.name}({m.extra_repr()})")


# ----------------------------------------------------------------------------- functions

# Each op declares its torch.fx spellings (FxCall: the function or method name, the
# parameters after the tensors with torch's defaults); those parameters that are not op
# arguments must keep their defaults ('training', '_stacklevel' are ignored: in a spec,
# Dropout follows the model's train/eval mode).
IGNORED = ("training", "_stacklevel")
TORCH_MODULES = ("torch", "torch.nn.functional", "torch._C._nn", "torch._C._VariableFunctions",
                 "_operator", "operator", "builtins", "torch.functional")


# functions outside torch that ops are spelled as (torchvision.ops.stochastic_depth): the
# modules that define them are read as torch's are, and tracing records their calls
FOREIGN_SPELLINGS = {(c.module, c.name) for op in REGISTRY.values() for c in op.fx if c.module}


def _foreign_functions() -> tuple[Any, ...]:
    """The functions of FOREIGN_SPELLINGS, for fx.Tracer(autowrap_functions=...)."""
    return tuple(getattr(importlib.import_module(module), name)
                 for module, name in sorted(FOREIGN_SPELLINGS))


def _spelling(name: str | None) -> tuple[LayerType, FxCall] | None:
    """The op a call_function/call_method name is, and how (None: no op is spelled so)."""
    if name not in SPELLINGS:
        return None
    op = REGISTRY[SPELLINGS[name]]
    return op, next(c for c in op.fx if c.name == name)


ALIASES = ("contiguous", "clone")
# operator.* functions fx records for `a + b`, `a - b`, `x[i]`: only those an op declares
# as its torch target (operator.concat is list concatenation, not torch.cat)
OPERATOR_NAMES = frozenset(
    {c.name for op in REGISTRY.values()
     if op.torch.target.startswith("operator.") or op.code.infix for c in op.fx} | {"getitem"}
)


def _op_name(node: fx.Node) -> tuple[str | None, str]:
    """(the name netspec looks up, how to name the operation in a message)."""
    if node.op == "call_method":
        return str(node.target), f"Tensor.{node.target}"
    target = node.target
    name = getattr(target, "__name__", None) or str(target)
    module = getattr(target, "__module__", None) or ""
    shown = f"{'operator' if module == '_operator' else module}.{name}".lstrip(".")
    if module not in TORCH_MODULES and (module, name) not in FOREIGN_SPELLINGS:
        return None, shown
    if module in ("_operator", "operator") and name not in OPERATOR_NAMES:
        return None, shown
    return name, shown


def _call_values(call: FxCall, args: list, kwargs: dict) -> dict[str, Any]:
    """The parameters after the tensor list of f([a, b], dim), torch's defaults filled in."""
    return {k: args[i + 1] if len(args) > i + 1 else kwargs.get(k, default)
            for i, (k, default) in enumerate(call.params)}


def _non_default(op: LayerType, values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not same_value(v, op.arg_by_name[k].default)}


def _list_join(node: fx.Node) -> dict[str, Any] | None:
    """The entry of an op that joins a list of tensors as ``node`` does (torch.cat(xs, 1):
    a Concat), or None when ``node`` is no such call."""
    spelling = _spelling(_op_name(node)[0]) if node.op == "call_function" else None
    if spelling is None or spelling[0].torch.inputs != "list":
        return None
    op, call = spelling
    return {op.name: _non_default(op, _call_values(call, list(node.args), node.kwargs)) or None}


def _tensor_arguments(op: LayerType, args: list, kwargs: dict) -> tuple[list, list, dict]:
    """(the tensors, one per port, given positionally or by the port's name; the arguments
    after them; the other keywords).  A trailing optional port given None (sdpa's
    attn_mask=None) is left out."""
    ports = [p.name for p in op.inputs] if not op.inputs[-1].variadic else ["input", "other"]
    tensors, rest, kwargs = list(args[:len(ports)]), list(args[len(ports):]), dict(kwargs)
    for name in ports[len(tensors):]:
        if name not in kwargs:
            break
        tensors.append(kwargs.pop(name))
    while len(tensors) > op.min_inputs and tensors[-1] is None:
        tensors.pop()
    return tensors, rest, kwargs


def _shape_source(size: fx.Node) -> fx.Node | None:
    """The tensor x of x.shape[2:], x.size()[2:] or x.shape[-k:] (a tensor's spatial size,
    which a check with ranks that differ refuses), else None."""
    if size.op != "call_function" or getattr(size.target, "__name__", "") != "getitem":
        return None
    shape, index = size.args
    if not isinstance(index, slice) or index.stop is not None or index.step is not None or \
            not isinstance(index.start, int) or not (index.start == 2 or index.start < 0):
        return None
    if isinstance(shape, fx.Node) and len(shape.args) >= 1 and (
            (shape.op == "call_method" and shape.target == "size" and len(shape.args) == 1)
            or (shape.op == "call_function" and shape.target is getattr
                and shape.args[1:] == ("shape",))):
        return shape.args[0]
    return None


def _holds_node(value: Any) -> bool:
    """A value that is, or holds, an fx node (a size written (x.shape[2], 4))."""
    if isinstance(value, dict):
        return any(_holds_node(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_node(v) for v in value)
    return isinstance(value, fx.Node)


def _tensors(value: Any) -> list[fx.Node]:
    """The tensors an argument passes: itself, or the elements of a list or tuple of them
    (DLA's children); [] for anything else."""
    if isinstance(value, fx.Node):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, fx.Node) for v in value):
        return list(value)
    return []


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ----------------------------------------------------------------------------- scopes


@dataclass
class Item:
    """One entry of a layers list being built."""

    data: dict[str, Any]  # the entry without name/from
    ref: str  # how later entries refer to it (its name, or its index as a default name)
    named: bool  # write name: (False: the default name, its index, is the module's)
    sources: list[str]
    node: fx.Node | None = None
    stateful: bool = False


@dataclass
class Converted:
    entries: list[dict[str, Any]]
    # the module takes a list of tensors and joins them first (forward(self, features) with
    # torch.cat(features, 1)): the entry that joins them, for its caller to write
    input_join: dict[str, Any] | None = None
    # the model's forward returns several tensors (a dict, a namedtuple, a tuple): each
    # output's key and the entry holding it (training_only marked later), how returned
    outputs: list[tuple[str, str]] | None = None
    returns: str = "tensor"
    # a module taking several tensors (forward(self, x, shortcut), or a dict of them): the
    # names of its group's inputs:, in the order its caller gives them
    inputs: list[str] | None = None


@dataclass
class Importer:
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)  # inferable, by qualname
    notes: list[str] = field(default_factory=list)
    # groups whose forward returns a module's tuple (return self.lstm(x)), by qualname: the
    # op of that module, so the caller takes the element that flows on
    returned_tuples: dict[str, LayerType] = field(default_factory=dict)
    # the model and the spec's input, to run it on when sizes read in forward need it
    model: nn.Module | None = None
    input_shape: tuple[int, ...] = ()
    _inputs: dict[int, tuple] | None = None

    @property
    def inputs(self) -> dict[int, tuple]:
        """The input each module is first called with in a run of the model at the spec's
        input (record_inputs, on the first need: most models never need it), for sizes read
        in forward; empty where it does not run."""
        if self._inputs is None:
            self._inputs = {} if self.model is None else \
                record_inputs(self.model, self.input_shape)
        return self._inputs
    # groups whose forward returns a dict (or tuple) of one tensor (torchvision's
    # IntermediateLayerGetter: {"out": x}), by qualname: its key, which the caller takes
    returned_keys: dict[str, Any] = field(default_factory=dict)
    # groups returning several tensors (a tuple, a dict: IntermediateLayerGetter's {"low",
    # "high"}), by qualname: their keys and how returned, for the caller to take them
    ported: dict[str, tuple[list[str], str]] = field(default_factory=dict)
    # modules called with several tensors, by qualname: which of them its forward uses
    taken_inputs: dict[str, list[bool]] = field(default_factory=dict)
    # modules given sizes of a tensor beside their input (SizesOf), by id: the (shape,
    # dtype) of that tensor in their caller's run, by parameter, for their own run
    sized_inputs: dict[int, dict[str, tuple]] = field(default_factory=dict)
    # and their input and those tensors in the caller's runs at other sizes (its variants):
    # the sizes they are given change with their input, as in the model
    sized_variants: dict[int, list[tuple[tuple, dict[str, tuple]]]] = field(
        default_factory=dict)

    def where(self, qual: str, m: nn.Module) -> str:
        kind = type(m).__name__
        return f"module '{qual}' ({kind})" if qual else f"the model ({kind})"

    def trace(self, m: nn.Module, qual: str, given: dict[str, Any] | None = None) -> fx.Graph:
        """m's forward (_traced), or an ImportProblem naming why fx cannot trace it."""
        try:
            return _traced(m, given)
        except ValuesNeeded:  # a chain's index buffer read (spell_out_chains)
            raise MetaValuesNeeded(f"{self.where(qual, m)}: its index buffer was made on the "
                                   "meta device, without values to read") from None
        except Exception as exc:
            why = str(exc).splitlines()[0] if str(exc) else ""
            known = self.inputs.get(id(m))
            if known is not None:
                with contextlib.suppress(Exception):
                    graph = _traced(m, given, known[0])
                    self.notes.append(f"{self.where(qual, m)}: its forward branches on its "
                                      "input's size; traced at the spec's input, "
                                      f"{'×'.join(map(str, known[0][1:]))}")
                    return graph
            raise ImportProblem(f"{self.where(qual, m)}: torch.fx cannot trace its forward "
                                f"({type(exc).__name__}: {why});"
                                " netspec imports models whose forward has no data-dependent "
                                "control flow") from None

    def convert(self, m: nn.Module, qual: str, given: dict[str, Any] | None = None,
                graph: fx.Graph | None = None, packed: list[str] | None = None) -> Converted:
        """A non-leaf module -> the entries of its group (or of the whole spec, qual '');
        ``given``: the constants its caller passes after the tensor; ``packed``: the keys of
        the dict of tensors it is called with (LRASPPHead(features))."""
        return _Scope(self, m, qual, graph, given=given, packed=packed).convert()

    def inlined(self, m: nn.Module, qual: str) -> _Scope | None:
        """A torch.nn layer subclass with a forward of its own (timm's BatchNormAct2d, an
        nn.BatchNorm2d calling its activation after the norm): the entries of that forward,
        the layer's own call among them as the layer, which takes the module's name; None for
        any other module."""
        found = None if isinstance(m, CONTAINERS) or layer_type_of(m) is not None else \
            layer_base(type(m), _layer_class)
        if found is None:
            return None
        base, op = found
        where = self.where(qual, m)
        holding = [f"'{n}' ({type(c).__name__})" for n, c in m.named_children() if _has_state(c)]
        if holding:
            raise ImportProblem(f"{where}: a torch.nn.{base.__name__} whose child "
                                f"{', '.join(holding)} has parameters of its own; a spec entry "
                                f"is the {op.name} (its weights '{qual}.weight', ...) or a "
                                "group of entries, not both")
        graph = self.trace(m, qual)
        call = base_call(m, base, graph)
        if isinstance(call, str):
            raise ImportProblem(f"{where}: {call}")
        scope = _Scope(self, m, qual, graph, (call, op))
        scope.convert()
        return scope

    def child_entry(self, child: nn.Module, qual: str, given: dict[str, Any] | None = None,
                    packed: list[str] | None = None) -> tuple[dict[str, Any], dict | None]:
        """A child's entry (a layer, or a group of its own forward's entries, traced with the
        constants ``given`` by its call), and the entry that joins its input when it takes a
        list of tensors."""
        scope = self.inlined(child, qual)
        if scope is not None:
            if len(scope.items) > 1:
                kinds = ", ".join(next(iter(i.data)) for i in scope.items)
                raise ImportProblem(f"{self.where(qual, child)}: its forward is {kinds}, "
                                    "entries written in its place only where it is a child "
                                    "its parent's forward calls, not in a chain over a "
                                    "ModuleList")
            return scope.items[0].data, None
        lt = layer_type_of(child)
        if lt is not None:
            write, expect = leaf_args(child, lt, self.where(qual, child))
            if expect:
                self.expected[qual] = expect
            return {lt.name: write or None}, None
        if type(child).__module__.startswith("torch.nn") and not isinstance(child, CONTAINERS):
            raise ImportProblem(f"{self.where(qual, child)}: torch.nn.{type(child).__name__} "
                                "is not a netspec layer type (see `netspec layers`)")
        converted = self.convert(child, qual, given, packed=packed)
        data: dict[str, Any] = {"layers": converted.entries}
        if converted.inputs:
            data["inputs"] = converted.inputs
        if converted.outputs is not None:  # forward returns (a, b) or {"low": a, ...}
            keys = [key for key, _ in converted.outputs]
            data["outputs"] = ({key: ref for key, ref in converted.outputs}
                               if converted.returns == "dict"
                               else [ref for _, ref in converted.outputs])
            self.ported[qual] = (keys if converted.returns == "dict"
                                 else [str(i) for i in range(len(keys))], converted.returns)
        return data, converted.input_join


class _Scope:
    """One module's forward, node by node, becoming the entries of its group: which entry
    (or 'input') holds each node's value, and the entries so far."""

    def __init__(self, importer: Importer, m: nn.Module, qual: str,
                 graph: fx.Graph | None = None, base: tuple[fx.Node, LayerType] | None = None,
                 given: dict[str, Any] | None = None, packed: list[str] | None = None):
        self.importer, self.module, self.qual = importer, m, qual
        self.given = given or {}  # the constants its caller passes after its input
        self.where = importer.where(qual, m)
        self.graph = graph if graph is not None else importer.trace(m, qual, given)
        # a layer subclass's forward (Importer.inlined): the call that is the layer's own,
        # which becomes the layer's entry, and that entry
        self.base, self.base_item = base, None
        self.children = dict(m.named_children())
        self.state = {name: _has_state(c) for name, c in self.children.items()}
        self.used_names = set(self.children)
        self.items: list[Item] = []
        self.refs: dict[fx.Node, str] = {}  # node -> the entry (or 'input') that holds its value
        # sizes read in forward, to spell a reshape: x.size(1), x.shape[1] -> (x, 1); x.shape,
        # x.size() -> (x, None); arithmetic on them (h * w) -> (None, None)
        self.helpers: dict[fx.Node, tuple[fx.Node | None, int | None]] = {}
        self.calls: dict[str, int] = {}  # how many times the forward calls each child
        self.live = _live(self.graph)
        self.consumed: set[fx.Node] = set()  # calls taken into a ModuleList's group
        self.parted: set[fx.Node] = set()  # calls of ops giving parts (x.chunk(2, 1))
        # an element of a module's tuple that is itself a tuple of named outputs (an LSTM's
        # (h_n, c_n)): (the module's entry, its op, the element's path)
        self.state_tuples: dict[fx.Node, tuple[str, LayerType, tuple[int, ...]]] = {}
        self.states: set[fx.Node] = set()  # recurrent states (layers × batch × hidden)
        self.input_join: dict[str, Any] | None = None
        self.output: Any = None
        self._values: dict[fx.Node, Any] | None = None  # the forward's values (values())
        self._variants: list[dict[fx.Node, Any]] | None = None  # at other sizes
        # calls of library functions returning a tensor they were given with numbers
        # (passes_through): the entry holding it, and where it is in the tuple
        self.passed: dict[fx.Node, tuple[str, int]] = {}
        # the model's own forward may return several tensors (a spec's outputs:)
        self.top = qual == "" and base is None
        self.several: tuple[list[tuple[str, fx.Node]], str] | None = None
        # a child's several outputs this forward returns as they are: (key, entry.key), how
        self.passed_on: tuple[list[tuple[str, str]], str] | None = None
        self.dicts: dict[fx.Node, Any] = {}  # calls returning {key: tensor}, by their key
        self.branch_counts: dict[str, int] = {}  # branches entries: how many outputs each
        # the keys of the dict of tensors this forward is called with (input["low"])
        self.packed = packed
        self.port_inputs: list[str] = []  # its inputs: where it takes several tensors
        # calls of children returning several tensors: (their entry, keys, how returned)
        self.multi: dict[fx.Node, tuple[str, list[str], str]] = {}
        # reads of a child layer's own tensor (self.qkv.weight), by the child's name: its
        # function called with them in forward is the child (child_function)
        self.child_tensors: dict[fx.Node, str] = {}
        if base is not None:  # the module's own tensors are the layer's, read by its call
            self.consumed.update(n for n in base[0].all_input_nodes if n.op == "get_attr")

    def convert(self) -> Converted:
        _inputs_first(self.graph, [name for name, c in self.children.items()
                                   if isinstance(c, (nn.ModuleList, nn.Sequential))])
        first_input = next((n for n in self.graph.nodes if n.op == "placeholder"), None)
        self.name_inputs(first_input)
        for node in self.graph.nodes:
            if node in self.consumed:
                continue
            if node.op == "placeholder":
                self.placeholder(node, node is first_input)
            elif node.op == "output":
                self.output = self.returned(node)
            elif node in self.refs:  # absorbed already (the join of a list input)
                continue
            elif self.base is not None and node is self.base[0]:
                self.base_layer(node)
            elif node.op == "get_attr":
                self.tensor_attribute(node)
            elif node.op == "call_module":
                self.call_module(node)
            elif node in self.live and not (self.top and _builds_outputs(node)):
                self.function(node)  # else computed and never used (x.size() for a print)
        return self.finish()

    # -------------------------------------------------------------- entries and references

    def fresh(self, base: str) -> str:
        """A new entry name from ``base``, taken by no child and no entry."""
        name = _safe_name(base)
        k = 0
        candidate = name
        while candidate in self.used_names:
            k += 1
            candidate = f"{name}_{k}"
        self.used_names.add(candidate)
        return candidate

    def ref(self, value: Any, node: fx.Node, what: str) -> str:
        """The entry holding ``value``, a tensor that ``node`` (described as ``what``) takes."""
        if not isinstance(value, fx.Node):
            raise ImportProblem(f"{self.where}: {what} (fx node '{node.name}') takes "
                                f"{value!r} where netspec needs a tensor")
        if value in self.helpers or value not in self.refs:
            raise ImportProblem(f"{self.where}: {what} (fx node '{node.name}') uses "
                                f"'{value.name}', which is not a tensor netspec follows")
        if value in self.multi:
            raise ImportProblem(f"{self.where}: {what} (fx node '{node.name}') uses the "
                                f"{self.multi[value][2]} of tensors '{value.name}' returns as "
                                "one tensor; a spec takes them one by one")
        if value in self.dicts:
            raise ImportProblem(f"{self.where}: {what} (fx node '{node.name}') uses the "
                                f"dict '{value.name}' returns as a tensor; netspec takes its "
                                f"one tensor, {value.name}[{self.dicts[value]!r}]")
        return self.refs[value]

    def add(self, data: dict, name: str | None, sources: list[str], node: fx.Node | None,
            stateful: bool = False) -> str:
        """A new entry (named ``name``, or by its index), taking ``sources``: its reference."""
        item = Item(data, name or str(len(self.items)), name is not None, sources, node,
                    stateful)
        self.items.append(item)
        return item.ref

    # -------------------------------------------------------------- inputs, output, tensors

    def name_inputs(self, first: fx.Node | None) -> None:
        """A module called with several tensors (forward(self, x, shortcut), the tensors
        its caller passes besides the first) or with a dict of them (input["low"]): its
        group's inputs:, named after its forward's arguments or the dict's keys."""
        if first is None or self.top:
            return
        if self.packed is not None:
            taken = {}
            for user in first.users:
                key = user.args[1] if user.op == "call_function" and \
                    user.target is operator.getitem else None
                if key not in self.packed:
                    raise ImportProblem(f"{self.where}: it is called with a dict of tensors "
                                        f"({', '.join(self.packed)}) and its forward uses it "
                                        f"otherwise than by key (fx node '{user.name}')")
                taken[user] = key
            names = {key: self.fresh(key) for key in self.packed}
            self.port_inputs = list(names.values())
            self.refs[first] = self.port_inputs[0]
            for user, key in taken.items():
                self.refs[user] = names[key]
            return
        # the tensors its caller gives, in order: the first, those of forward's arguments
        # given a tensor, each of a list of them (children_1, children_2); the ones its
        # forward uses are its inputs (DLA's tree computes its own shortcut)
        lists = {k for k, v in self.given.items() if isinstance(v, list) and TENSOR in v}
        tensors = list(dict.fromkeys([first] + [
            n for n in self.graph.nodes if n.op == "placeholder" and (
                self.given.get(n.target) is TENSOR or isinstance(self.given.get(n.target), SizesOf)
                or str(n.target).rpartition("_")[0] in lists)]))
        used = [n is first or n in self.live for n in tensors]
        self.importer.taken_inputs[self.qual] = used
        if sum(used) > 1:
            for node in (n for n, u in zip(tensors, used, strict=True) if u):
                self.refs[node] = self.fresh(str(node.target))
                self.port_inputs.append(self.refs[node])

    def placeholder(self, node: fx.Node, first: bool) -> None:
        """The forward's tensor (or the list of tensors it joins first); the others named
        already (name_inputs)."""
        if node in self.refs:
            return
        if first:
            self.refs[node] = "input"
            users = list(node.users)
            join = _list_join(users[0]) if len(users) == 1 else None
            if join is not None and users[0].args[0] is node:
                self.input_join = join  # forward(features: list) -> torch.cat(features, 1)
                self.refs[users[0]] = "input"
        elif node in self.live:  # not a parameter fixed by fx's concrete_args (its asserts)
            raise ImportProblem(f"{self.where}: its forward takes more than one input "
                                f"('{node.target}'); netspec modules take one tensor")

    def returned(self, node: fx.Node) -> fx.Node | None:
        output = node.args[0]
        values, returns = returned_values(output)
        if values is not None and self.top:  # the model's outputs: (a dict, a namedtuple)
            self.several = (values, returns)
            return None
        if values is not None and len(values) == 1 and returns == "dict":
            self.importer.returned_keys[self.qual] = values[0][0]  # the caller takes "out"
            return values[0][1]
        if values is not None and returns in ("dict", "tuple"):  # a group's outputs:
            self.several = (values, returns)
            return None
        if not self.top and output in self.multi:  # a child's several outputs, passed on
            entry, keys, returns = self.multi[output]
            self.passed_on = ([(key, f"{entry}.{key}") for key in keys], returns)
            return None
        if not isinstance(output, fx.Node):
            raise ImportProblem(f"{self.where}: its forward returns {type(output).__name__} "
                                "of several values; netspec modules return one tensor"
                                f"{_aux_hint(self.module)}")
        return output

    def tensor_attribute(self, node: fx.Node) -> None:
        """A get_attr: a parameter of this module used by its forward (a class token, a
        position embedding, a layer scale) becomes a Parameter entry of the same name, so
        its state_dict key stays; buffers and other modules' tensors are refused."""
        if not node.users:
            return
        target = str(node.target)
        tensor = self.module._parameters.get(target) if "." not in target else None
        op = next((lt for lt in REGISTRY.values()
                   if lt.torch.parameter and not lt.torch.buffer), None)
        if tensor is not None and op is not None and _nameable(target) and \
                target not in self.children:
            args: dict[str, Any] = {"shape": list(tensor.shape)}
            if not tensor.requires_grad:
                args["requires_grad"] = False
            if tensor.dtype != torch.float32:
                raise ImportProblem(f"{self.where}: its parameter '{target}' is "
                                    f"{tensor.dtype}; netspec makes float32 parameters")
            self.used_names.add(target)
            self.refs[node] = self.add({op.name: args}, target, [], node, True)
            return
        if "." not in target and self.module._buffers.get(target) is not None and \
                target not in self.children:
            self.buffer(node, target)
            return
        head, _, rest = target.partition(".")
        if head in self.children and "." not in rest and rest in own_tensors(
                self.children[head]) and all(OP_ARGUMENTS in u.meta for u in node.users):
            self.child_tensors[node] = head  # the op a rewrite made of its child's tensors
            return
        head, _, rest = target.partition(".")
        child = self.children.get(head)
        if child is not None and "." not in rest and layer_type_of(child) is not None and \
                rest in own_tensors(child):
            self.child_tensors[node] = head  # read where its function is called
            return
        if node.users:
            raise ImportProblem(f"{self.where}: its forward uses the tensor "
                                f"'{self.qual + '.' if self.qual else ''}{node.target}' "
                                f"directly (fx node '{node.name}'); netspec layers own their "
                                "parameters")

    def buffer(self, node: fx.Node, target: str) -> None:
        """A buffer of this module read in forward (an index table): the entry of the op
        that makes it, named as the buffer (its state_dict key where it is persistent)."""
        if BUFFER_ENTRY in node.meta:  # read by the rewrite that took it (spell_out_chains)
            name, args = node.meta[BUFFER_ENTRY]
            self.used_names.add(target)
            self.refs[node] = self.add({name: args}, target, [], node, True)
            return
        try:
            found = buffer_op(self.module, target)
        except ValuesNeeded:
            raise MetaValuesNeeded(f"{self.where}: its buffer '{target}' was made on the meta "
                                   "device, without values to read") from None
        if isinstance(found, str):
            raise ImportProblem(f"{self.where}: {found}")
        if not _nameable(target):
            raise ImportProblem(f"{self.where}: its buffer's name '{target}' cannot name a "
                                "spec entry")
        op, args = found
        self.used_names.add(target)
        self.refs[node] = self.add({op.name: args}, target, [], node, True)

    def tensor_index(self, node: fx.Node, source: Any, index: Any) -> bool:
        """table[:, idx] with idx a tensor netspec follows (an index buffer): the entry of
        the op that gathers so (LayerType.tensor_index), where one does."""
        tensors = index_tensors(index)
        if len(tensors) != 1 or tensors[0] not in self.refs or tensors[0] in self.helpers or \
                not isinstance(source, fx.Node):
            return False
        (index_node,) = tensors
        value = self.module._buffers.get(str(index_node.target)) \
            if index_node.op == "get_attr" else self.values().get(index_node)
        try:
            found = tensor_index(self.module, index, index_node, value)
        except ValuesNeeded:
            raise MetaValuesNeeded(f"{self.where}: the index '{index_node.name}' was made on "
                                   "the meta device, without values to read") from None
        if found is None:
            return False
        op, args = found
        what = f"the index (fx node '{node.name}')"
        sources = [self.ref(source, node, what), self.ref(index_node, node, what)]
        self.refs[node] = self.add({op.name: args}, self.fresh(op.code.call or node.name),
                                   sources, node)
        return True

    def child_function(self, node: fx.Node, what: str) -> None:
        """F.linear(x, self.qkv.weight, bias) (timm's BEiT: a bias made in forward): the
        child's own function on its own tensors, as its forward calls it, but with a bias
        where the child has none: the child's entry, then an Add of the bias (F.linear adds
        it over the last dim, as Add broadcasts it).  Any other use of a child's tensors is
        refused."""
        heads = {self.child_tensors[a] for a in node.all_input_nodes if a in self.child_tensors}
        head = heads.pop()
        if OP_ARGUMENTS in node.meta and not heads:
            self.child_group(node, head, what)
            return
        child = self.children[head]
        child_where = self.importer.where(self.child_qual(head), child)
        expected = probe(child, type(child))
        refused = ImportProblem(f"{self.where}: {what} uses the tensors of {child_where} "
                                "directly; netspec layers own their parameters and are called "
                                "as their forward calls them")
        if heads or isinstance(expected, str) or node.op != "call_function" or \
                expected[0] is not torch.nn.functional.linear or \
                node.target is not torch.nn.functional.linear or head in self.calls:
            raise refused
        names = ("input", "weight", "bias")
        bound = {**dict(zip(names, node.args, strict=False)), **node.kwargs}
        if set(bound) - set(names) or len(node.args) > 3:
            raise refused
        weight, bias = bound.get("weight"), bound.get("bias")
        if child.bias is not None or expected[1][2:] != (None,) or \
                self.child_tensors.get(weight) != head or str(weight.target) != f"{head}.weight" \
                or not isinstance(bias, fx.Node) or bias in self.child_tensors:
            raise refused
        self.calls[head] = 1
        data, _ = self.importer.child_entry(child, self.child_qual(head))
        entry = self.add(data, head, [self.ref(bound["input"], node, what)], node, True)
        add = next(op for op in REGISTRY.values() if op.torch.target == "operator.add")
        self.refs[node] = self.add({add.name: None}, self.fresh(f"{head}_bias"),
                                   [entry, self.ref(bias, node, what)], node)

    def child_group(self, node: fx.Node, head: str, what: str) -> None:
        """An op a rewrite made of a child's own tensors (timm's RelPosBias, whose get_bias()
        its parent calls): a group named as the child, its tensors' entries under their
        names (its state_dict keys) and the op's entry, the group's output."""
        child = self.children[head]
        child_where = self.importer.where(self.child_qual(head), child)
        inputs = node.all_input_nodes
        names = [str(a.target).partition(".")[2] for a in inputs]
        if head in self.calls or set(names) != set(own_tensors(child)) or \
                any(_has_state(c) for c in child.children()):
            raise ImportProblem(f"{self.where}: {what} uses the tensors of {child_where} "
                                "directly, and the child holds others besides; netspec "
                                "layers own their parameters")
        parameter = next(lt for lt in REGISTRY.values()
                         if lt.torch.parameter and not lt.torch.buffer)
        layers = []
        for source, name in zip(inputs, names, strict=True):
            if BUFFER_ENTRY in source.meta:
                kind, args = source.meta[BUFFER_ENTRY]
            else:
                tensor = child._parameters.get(name)
                if tensor is None or tensor.dtype != torch.float32:
                    raise ImportProblem(f"{child_where}: its tensor '{name}' is read by "
                                        f"{what}; netspec makes float32 parameters")
                kind, args = parameter.name, {"shape": list(tensor.shape)}
                if not tensor.requires_grad:
                    args["requires_grad"] = False
            layers.append(_order({kind: args, "name": name}))
        op, call = _spelling(_op_name(node)[0])
        written = self.written_params(op, call, [], dict(node.meta[OP_ARGUMENTS]), what)
        layers.append(_order({op.name: written or None, "from": names}))
        self.calls[head] = 1
        self.refs[node] = self.add({"layers": layers}, head, [], node, True)

    # -------------------------------------------------------------- calls of children

    def call_module(self, node: fx.Node) -> None:
        target = str(node.target)
        if "." in target:
            self.container_call(node, target)
        else:
            self.child_call(node, target)

    def container_call(self, node: fx.Node, target: str) -> None:
        """A call of a module inside a child (a ModuleList's): the chain of them, a group."""
        if target in self.children:  # a ModuleList's module called on its own (one_by_one)
            self.child_call(node, target)
            return
        head = target.split(".", 1)[0]
        if target.count(".") > 1 and head not in self.calls and self.one_by_one(node, head):
            return
        if head in self.calls:
            raise ImportProblem(f"{self.where}: its forward calls the modules of "
                                f"'{head}' in more than one run")
        self.calls[head] = 1
        if len(node.args) > 1 and not node.kwargs and \
                all(isinstance(a, fx.Node) for a in node.args):
            self.tuple_chain(node, head)
            return
        listed = node.args[0] if len(node.args) == 1 and not node.kwargs else None
        if isinstance(listed, (list, tuple)) and len(listed) > 1 and \
                all(isinstance(a, fx.Node) for a in listed):  # CrossViT: xs = blk(xs)
            self.tuple_chain(node, head)
            return
        run = self.container_run(node, head, self.children.get(head))
        beside = self.side_by_side(run, head)
        if beside:
            self.branches(beside, head)
            return
        names = [str(n.target).split(".", 1)[1] for n in run]
        # where a group of the run would not do: a module with state left out, or one that is
        # not where its number says (HRNet's transition2.2 alone, the Identity ones skipped)
        broken = any(n not in names and _has_state(c)
                     for n, c in self.children[head].named_children()) or \
            any(n.isdigit() and int(n) != i for i, n in enumerate(names))
        if broken:
            self.refuse_broken_chain(run)  # a chain handing on more than its tensor (MViT)
            if self.one_by_one(node, head):
                return
        self.consumed.update(run[1:])
        data = {"layers": self.run_entries(run, self.children[head], head)}
        self.refs[run[-1]] = self.add(data, head, [self.ref(node.args[0], node, f"'{target}'")],
                                      node, True)

    def one_by_one(self, node: fx.Node, head: str) -> bool:
        """sp = self.convs[i](sp + spx[i]) (Res2Net), y = y + self.fuse_layers[i][j](x[j])
        (HRNet): a ModuleList's modules (or its ModuleLists' modules) each called once on one
        tensor, each where its own input is. Each becomes an entry named by its key path
        (convs.3), as a child called on its own; False where some module of the list is not
        called exactly once, or a parameterless one not called at all (written as an entry
        its first call's input flows into, unused: a spec's ModuleList is numbered without a
        gap)."""
        container = self.children.get(head)
        calls = [n for n in self.graph.nodes if n.op == "call_module"
                 and str(n.target).startswith(head + ".")]
        targets = [str(n.target) for n in calls]
        depth = targets[0].count(".")
        # each on one tensor only: what a chain passes beside it (MViT's sizes, x, thw =
        # block(x, thw)) is the chain's to read or refuse
        if not isinstance(container, (nn.ModuleList, nn.Sequential)) or \
                len(set(targets)) != len(targets) or \
                any(t.count(".") != depth for t in targets) or not _nameable(head) or \
                any(len(n.args) != 1 or n.kwargs or not isinstance(n.args[0], fx.Node)
                    for n in calls):
            return False
        places: list[tuple[str, nn.Module]] = [(head, container)]
        for _ in range(depth):  # the modules at the calls' depth, every one of them
            if not all(isinstance(m, (nn.ModuleList, nn.Sequential)) for _, m in places):
                return False
            places = [(f"{name}.{k}", m) for name, parent in places
                      for k, m in parent.named_children()]
        uncalled = [(name, m) for name, m in places if name not in targets]
        if not set(targets) <= {name for name, _ in places} or \
                any(list_place(name) is None for name, _ in places) or \
                any(_has_state(m) for _, m in uncalled):
            return False
        for name, module in places:
            self.children[name] = module
            self.state[name] = _has_state(module)
            self.used_names.add(name)
        self.calls[head] = 1
        for name, module in uncalled:  # HRNet's transition2.0, an Identity it skips
            data, _ = self.importer.child_entry(module, self.child_qual(name))
            self.calls[name] = 1
            self.add(data, name, [self.ref(node.args[0], node, f"'{node.target}'")], None)
        self.child_call(node, str(node.target))
        return True

    def tuple_chain(self, node: fx.Node, head: str) -> None:
        """for blk in self.blocks: x, y = blk(x, y) (timm's TNT): a chain whose modules take
        several tensors and return as many, each the previous one's: a group with inputs:
        and outputs:, its entries taking from: ['0.0', '0.1']."""
        # called with a list of tensors (xs = blk(xs)): its elements, in its one argument
        listed = len(node.args) == 1

        def tensors_of(call: fx.Node) -> list:
            return list(call.args[0]) if listed and isinstance(call.args[0], (list, tuple)) \
                else list(call.args)

        container, width = self.children.get(head), len(tensors_of(node))
        if not isinstance(container, (nn.ModuleList, nn.Sequential)):
            raise ImportProblem(f"{self.where}: its forward calls '{node.target}', a module "
                                "inside a child, directly")
        carried = self.carried_run(node, head)
        if carried is not None:
            self.carry_chain(carried[0], carried[1], head)
            return
        run, current, between = [node], node, []
        while True:
            users = list(current.users)
            whole = users[0] if len(users) == 1 and users[0].op == "call_module" else None
            if listed and whole is not None and whole.args == (current,) and \
                    not whole.kwargs and str(whole.target).startswith(head + "."):
                run.append(whole)  # xs = blk(xs): the list it returned, passed on whole
                current = whole
                continue
            parts = {u.args[1]: u for u in users if u.op == "call_function"
                     and u.target is operator.getitem and isinstance(u.args[1], int)}
            if len(parts) != len(users) or sorted(parts) != list(range(width)):
                break
            nexts = {n for p in parts.values() for n in p.users}
            after = next(iter(nexts)) if len(nexts) == 1 else None
            if after is None or after.op != "call_module" or after.kwargs or \
                    not str(after.target).startswith(head + ".") or \
                    tensors_of(after) != [parts[i] for i in range(width)]:
                break
            between.extend(parts.values())
            run.append(after)
            current = after
        group_qual = self.child_qual(head)
        names = [str(n.target).split(".", 1)[1] for n in run]
        missing = [n for n, c in container.named_children() if n not in names and _has_state(c)]
        if missing or len(set(names)) != len(names):
            raise ImportProblem(f"{self.where}: its forward calls the modules of '{head}' as "
                                f"{' -> '.join(names)}; a spec group calls each of its "
                                "modules once, in a chain")
        inputs = _input_names(container.get_submodule(names[0]), 1 if listed else width)
        if listed:  # its list's elements, as name_inputs names them: x_1, x_2
            inputs = [f"{inputs[0]}_{k + 1}" for k in range(width)]
        entries, previous = [], inputs
        for i, (n, call) in enumerate(zip(names, run, strict=True)):
            if (n.isdigit() and int(n) != i) or (not n.isdigit() and not _nameable(n)):
                raise ImportProblem(f"{self.where}: calls '{head}.{n}' as the {i}th module of "
                                    f"'{head}'; an entry without a name is named by its "
                                    "position")
            module, qual = container.get_submodule(n), f"{group_qual}.{n}"
            given = self.sizes_given(call, module, self.call_constants(call, module, self.where))
            given = {k: TENSOR if isinstance(v, fx.Node) else v for k, v in given.items()}
            if listed:  # traced with the list's elements, an input each
                given[next(iter(inspect.signature(module.forward).parameters))] = \
                    [TENSOR] * width
            data, _ = self.importer.child_entry(module, qual, given)
            keys, returns = self.importer.ported.get(qual, ([], "tensor"))
            if returns != "tuple" or len(keys) != width:
                raise ImportProblem(f"{self.where}: '{head}.{n}' is called with {width} "
                                    f"tensors and returns other than {width} (a chain over "
                                    f"'{head}' passes its outputs on as the next one's inputs)")
            used = self.importer.taken_inputs.get(qual, [True] * width)
            entry = {**data, "from": [s for s, u in zip(previous, used, strict=False) if u]}
            if not n.isdigit():
                entry["name"] = n
            entries.append(_order(entry))
            previous = [f"{n}.{k}" for k in keys]
        data = {"inputs": inputs, "outputs": previous, "layers": entries}
        keys = [str(k) for k in range(width)]
        self.importer.ported[group_qual] = (keys, "tuple")
        self.consumed.update([*run[1:], *between])
        self.refs[run[-1]] = self.add(data, head, [self.ref(a, node, f"'{node.target}'")
                                                   for a in tensors_of(node)], node, True)
        self.multi[run[-1]] = (self.refs[run[-1]], keys, "tuple")

    def carried_run(self, node: fx.Node, head: str) -> tuple[list[fx.Node], int] | None:
        """for blk in self.blocks_token_only: cls = blk(x, cls) (timm's CaiT): the calls of
        the container's modules each taking the previous one's output in one place and the
        first call's tensors in the others, and that place; None where it is no such run."""
        run, place = [node], None
        while len(node.args) > 1:
            current = run[-1]
            users = list(current.users)
            after = users[0] if len(users) == 1 else None
            if after is None or after.op != "call_module" or after.kwargs or \
                    not str(after.target).startswith(head + ".") or \
                    len(after.args) != len(node.args):
                break
            places = [i for i, a in enumerate(after.args) if a is current]
            if len(places) != 1 or (place is not None and places[0] != place) or any(
                    a is not b for i, (a, b) in enumerate(zip(after.args, node.args,
                                                              strict=True)) if i != places[0]):
                break
            place = places[0]
            run.append(after)
        return (run, place) if place is not None else None

    def carry_chain(self, run: list[fx.Node], place: int, head: str) -> None:
        """A run of carried_run: a group with inputs: (named after the first module's
        forward), each entry taking them, the previous entry's output in the carried place
        (from: [x, '0'])."""
        node, width = run[0], len(run[0].args)
        container = self.children[head]
        group_qual = self.child_qual(head)
        names = [str(n.target).split(".", 1)[1] for n in run]
        missing = [n for n, c in container.named_children() if n not in names and _has_state(c)]
        if missing or names != [str(i) for i in range(len(names))]:
            raise ImportProblem(f"{self.where}: its forward calls the modules of '{head}' as "
                                f"{' -> '.join(names)}; a spec group calls each of its "
                                "modules once, in order")
        inputs = _input_names(container.get_submodule(names[0]), width)
        entries = []
        for i, (n, call) in enumerate(zip(names, run, strict=True)):
            module, qual = container.get_submodule(n), f"{group_qual}.{n}"
            given = self.sizes_given(call, module, self.call_constants(call, module, self.where))
            given = {k: TENSOR if isinstance(v, fx.Node) else v for k, v in given.items()}
            data, _ = self.importer.child_entry(module, qual, given)
            if qual in self.importer.ported:
                raise ImportProblem(f"{self.where}: '{head}.{n}' returns several tensors where "
                                    f"the chain over '{head}' passes one on")
            sources = [str(i - 1) if k == place and i else s for k, s in enumerate(inputs)]
            used = self.importer.taken_inputs.get(qual, [True] * width)
            taken = [s for s, u in zip(sources, used, strict=False) if u]
            entries.append(_order({**data, "from": taken if len(taken) > 1 else taken[0]}))
        data = {"inputs": inputs, "layers": entries}
        self.consumed.update(run[1:])
        self.refs[run[-1]] = self.add(data, head, [self.ref(a, node, f"'{node.target}'")
                                                   for a in node.args], node, True)

    def side_by_side(self, run: list[fx.Node], head: str) -> list[fx.Node] | None:
        """for m in self.convs: outs.append(m(x)) (DeepLabV3's ASPP): the calls of the
        modules of a container each on one input, in the forward's order; None where the
        container's modules run in a chain."""
        beside = [n for n in self.graph.nodes if n.op == "call_module" and n is not run[0]
                  and str(n.target).startswith(head + ".") and n.args[:1] == run[0].args[:1]]
        if len(run) == 1 and beside:
            return [run[0], *beside]
        return self.each_on_its_own(run, head) if len(run) == 1 else None

    def each_on_its_own(self, run: list[fx.Node], head: str) -> list[fx.Node] | None:
        """for x_, blk in zip(xs, self.blocks): blk(x_) (HRNet's branches, CrossViT's
        patch_embed): the container's modules each called once on a tensor of its own, none
        on what another gives; None where they are not."""
        found = _each_on_its_own(self.graph, head)
        return found[0] if found is not None else None

    def branches(self, calls: list[fx.Node], head: str) -> None:
        """The container's modules called side by side: a branches entry named after it,
        its entries named by position as the container's modules are (convs.0, ...), each
        call's value one of its outputs (from: convs.0; torch.cat(outs): from: convs)."""
        container = self.children[head]
        group_qual = self.child_qual(head)
        names = [str(n.target).split(".", 1)[1] for n in calls]
        expected = [str(i) for i in range(len(container))] if \
            isinstance(container, (nn.ModuleList, nn.Sequential)) else None
        if names != expected:
            raise ImportProblem(f"{self.where}: its forward calls the modules of '{head}' "
                                f"side by side on one input as {', '.join(names)}; a spec's "
                                "branches are a ModuleList's (or Sequential's) modules, each "
                                "called once, in order")
        if not _nameable(head):
            raise ImportProblem(f"{self.where}: the name '{group_qual}' cannot name a spec "
                                "entry (a Python identifier, not an nn.Module attribute)")
        entries = []
        for i, (n, call) in enumerate(zip(names, calls, strict=True)):
            module = container.get_submodule(n)
            self.check_run_call(call, i, n, head, group_qual, module)
            scope = self.importer.inlined(module, f"{group_qual}.{n}")
            if scope is not None and len(scope.items) > 1:
                raise ImportProblem(f"{self.where}: '{call.target}' is a layer with a forward "
                                    "of its own, entries that a branch cannot hold beside "
                                    "its layer's name")
            data, join = self.importer.child_entry(
                module, f"{group_qual}.{n}",
                self.call_constants(call, module, self.where) if scope is None else None)
            if join is not None:
                raise ImportProblem(f"{self.where}: '{call.target}' takes a list of tensors")
            entries.append(data)
        given = [call.args[0] for call in calls]
        missing = [c for c, v in zip(calls, given, strict=True) if v not in self.refs]
        if missing:
            raise ImportProblem(f"{self.where}: its forward computes the input of "
                                f"'{missing[0].target}' after calling '{calls[0].target}'; a "
                                f"spec's branches run side by side, their inputs computed "
                                "before them")
        sources = [self.ref(v, c, f"'{c.target}'") for c, v in zip(calls, given, strict=True)]
        if len(set(sources)) == 1:
            sources = sources[:1]  # all on one input: ASPP's
        ref = self.add({"branches": [_order(e) for e in entries]}, head, sources, calls[0],
                       True)
        self.branch_counts[ref] = len(calls)
        for i, call in enumerate(calls):
            self.refs[call] = f"{ref}.{i}"
        self.consumed.update(calls[1:])

    def base_layer(self, node: fx.Node) -> None:
        """The layer subclass's own call of its layer: the layer's entry, the module's
        arguments read as for the layer itself."""
        op = self.base[1]
        write, expect = leaf_args(self.module, op, self.where)
        if expect:
            self.importer.expected[self.qual] = expect
        self.refs[node] = self.add({op.name: write or None}, self.fresh("layer"),
                                   [self.ref(node.args[0], node, "its layer's call")], node, True)
        self.base_item = self.items[-1]

    def child_call(self, node: fx.Node, target: str) -> None:
        """A call of a direct child: its entry, named after it (or after the call)."""
        child = self.children[target]
        child_qual = self.child_qual(target)
        child_where = self.importer.where(child_qual, child)
        if self.inlined and isinstance(child, nn.Identity):
            self.calls[target] = 1  # timm's BatchNormAct2d's drop: nothing to write
            self.refs[node] = self.one_input(node, target, child_where, None)[0]
            return
        scope = self.importer.inlined(child, child_qual)
        if scope is not None:
            self.splice(node, target, child_where, scope)
            return
        name = self.call_name(target, child_where)
        given = self.call_constants(node, child, child_where)
        # tensors besides the first (forward(self, x, shortcut)): inputs of its group
        tensors = [t for v in given.values() for t in _tensors(v)]
        given = self.sizes_given(node, child, given)
        given = {k: TENSOR if isinstance(v, fx.Node) else [TENSOR] * len(v) if _tensors(v)
                 else v for k, v in given.items()}
        packed = self.packed_keys(node)
        listed = self.listed_parts(node, child)
        if listed is not None:  # traced with a list of inputs in its first argument's place
            given = {**given, listed[0]: [TENSOR] * len(listed[1])}
        elements = self.list_elements(node, child, given)
        if elements is not None:  # features([x]): a list it does not join, an input each
            given = {**given, elements[0]: [TENSOR] * len(elements[1])}
            tensors = [*elements[1], *tensors]
        data, join = self.importer.child_entry(child, child_qual, given, packed)
        op = layer_type_of(child)
        if op is not None and (op.takes_several or (op.takes_state and (
                len(node.args) > 1 or node.kwargs))):  # an RNN given its initial state
            sources = self.module_inputs(node, op, target, child_where)
        elif packed is not None:  # self.classifier(features): each of the dict's tensors
            sources = [f"{self.multi[node.args[0]][0]}.{key}" for key in packed]
        elif listed is not None:  # block(previous_block(x)): each of the tuple's it uses
            used = self.importer.taken_inputs.get(child_qual, [])
            sources = [f"{self.multi[node.args[0]][0]}.{key}"
                       for key, u in zip(listed[1], used, strict=False) if u]
        elif elements is not None:  # those its forward uses (name_inputs)
            used = self.importer.taken_inputs.get(child_qual, [])
            sources = [self.ref(v, node, f"the call of '{target}'")
                       for v, u in zip(tensors, used, strict=False) if u]
        else:
            sources = self.one_input(node, target, child_where, join, bool(given))
            if tensors:  # those its forward uses (name_inputs)
                used = self.importer.taken_inputs.get(child_qual, [])
                sources += [self.ref(v, node, f"the call of '{target}'")
                            for v, u in zip(tensors, used[1:], strict=False) if u]
        if not name.isdigit() and not _nameable(name):
            raise ImportProblem(f"{child_where}: its name '{name}' cannot name a spec entry (a "
                                "Python identifier that is not an nn.Module attribute or "
                                "keyword, not starting with '_')")
        self.refs[node] = self.add(data, None if name.isdigit() else name, sources, node,
                                   self.state[target])
        if child_qual in self.importer.returned_keys:
            self.dicts[node] = self.importer.returned_keys[child_qual]
        if child_qual in self.importer.ported:  # its outputs are taken as from: name.key
            self.multi[node] = (self.refs[node], *self.importer.ported[child_qual])
        if name.isdigit() and self.refs[node] != name:
            raise ImportProblem(f"{child_where}: in a spec, an entry without a name is named "
                                f"by its position, but '{name}' would be entry "
                                f"{self.refs[node]} of {self.where}")

    def packed_keys(self, node: fx.Node) -> list[str] | None:
        """The keys of a child's dict of outputs that this call passes whole, as its one
        argument (LRASPP's self.classifier(self.backbone(x))); None for any other call."""
        arg = node.args[0] if len(node.args) == 1 and not node.kwargs else None
        if arg in self.multi and self.multi[arg][2] == "dict":
            return list(self.multi[arg][1])
        return None

    def listed_parts(self, node: fx.Node, child: nn.Module) -> tuple[str, list[str]] | None:
        """A child's tuple of outputs passed whole to a module (not a layer) as its one
        argument (timm's SelecSLS blocks pass [out, skip] on): the name of the module's first
        argument and the tuple's keys; None for any other call."""
        arg = node.args[0] if len(node.args) == 1 and not node.kwargs else None
        if arg not in self.multi or self.multi[arg][2] != "tuple" or \
                layer_type_of(child) is not None:
            return None
        try:
            first = next(iter(inspect.signature(child.forward).parameters.values()))
        except (TypeError, ValueError, StopIteration):
            return None
        return first.name, list(self.multi[arg][1])

    def list_elements(self, node: fx.Node, child: nn.Module, given: dict[str, Any]
                      ) -> tuple[str, list[fx.Node]] | None:
        """A list of tensors as the first argument of a module (not a layer) that does not
        join it first (timm's SelecSLS: self.features([x]), its blocks index it): the name
        of that argument and the tensors; None for any other call (DenseNet's layers
        concatenate the list they are given: an entry joining them, as before)."""
        arg = node.args[0] if node.args else None
        if not isinstance(arg, (list, tuple)) or not _tensors(arg) or \
                layer_type_of(child) is not None:
            return None
        try:
            first = next(iter(inspect.signature(child.forward).parameters.values()))
            # traced with the list's elements (x[i] = branch(x[i]) assigns into the list)
            graph = _traced(child, {**given, first.name: [TENSOR] * len(arg)})
        except Exception:
            return None  # one_input says why not
        placeholder = next((n for n in graph.nodes if n.op == "placeholder"), None)
        users = list(placeholder.users) if placeholder is not None else []
        if len(users) == 1 and _list_join(users[0]) is not None:
            return None
        return first.name, list(arg)

    @property
    def inlined(self) -> bool:
        return self.base is not None

    def splice(self, node: fx.Node, target: str, child_where: str, scope: _Scope) -> None:
        """A layer subclass's entries (Importer.inlined) written in place of its call: the
        layer named as the module (its state_dict keys), the others after it by its name
        (bn1_act), which hold no parameters."""
        name = self.call_name(target, child_where)
        if not name.isdigit() and not _nameable(name):
            raise ImportProblem(f"{child_where}: its name '{name}' cannot name a spec entry")
        refs = {"input": self.one_input(node, target, child_where, None)[0]}
        for item in scope.items:
            own = None if name.isdigit() else name
            entry = own if item is scope.base_item else self.fresh(f"{name}_{item.ref}")
            refs[item.ref] = self.add(item.data, entry, [refs[s] for s in item.sources], node,
                                      item.stateful)
            if item is scope.base_item and name.isdigit() and refs[item.ref] != name:
                raise ImportProblem(f"{child_where}: its forward is "
                                    f"{', '.join(next(iter(i.data)) for i in scope.items)}; "
                                    f"in a spec, an entry without a name is named by its "
                                    f"position, and its {next(iter(item.data))} would be "
                                    f"entry {refs[item.ref]} of {self.where}, not {name}")
        self.refs[node] = refs[scope.refs[scope.output]]

    def call_name(self, target: str, child_where: str) -> str:
        """The entry name of this call of child ``target``: its own for the first call; a
        parameterless child called again (a shared ReLU) is another entry, act_1."""
        self.calls[target] = self.calls.get(target, 0) + 1
        if self.calls[target] == 1:
            return target
        if self.state[target]:
            raise ImportProblem(f"{child_where} is called {self.calls[target]} times in the "
                                f"forward of {self.where.replace('module ', '')}: shared "
                                "weights, which a spec cannot express")
        return self.fresh(f"{target}_{self.calls[target] - 1}")

    def call_constants(self, node: fx.Node, child: nn.Module, child_where: str
                       ) -> dict[str, Any]:
        """The constants a call of a child that is not a layer passes after its tensor
        (self.head(x, pre_logits=True), blk(x, None)), by its forward's parameter names: its
        forward is traced with them.  A tensor among them is refused."""
        if (len(node.args) <= 1 and not node.kwargs) or layer_type_of(child) is not None:
            return {}
        try:
            signature = inspect.signature(child.forward)
            bound = signature.bind(*node.args, **node.kwargs).arguments
        except (TypeError, ValueError):
            return {}  # one_input names the call
        first, *rest = signature.parameters.values()
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in rest):
            return {}
        given = {k: v for k, v in bound.items() if k != first.name}
        for k, v in given.items():  # sizes not passed as their tensor (pass_size_sources)
            reads = [size_read(a) for a in v] if isinstance(v, (list, tuple)) else []
            if any(reads):
                sources = ", ".join(dict.fromkeys(f"'{r[0].name}'" if r else "other values"
                                                  for r in reads))
                raise ImportProblem(f"{child_where} is called with {k!r}, sizes read from "
                                    f"{sources}; a spec passes sizes as the one tensor they "
                                    "are read from (its group's input), at constant dims")
        # a tensor, or a list of them (DLA's children), gives inputs of the child's group; a
        # dict of them, or tensors among constants, do not
        held = [k for k, v in given.items() if _holds_node(v) and not _tensors(v)]
        if held:
            raise ImportProblem(f"{child_where} is called with "
                                f"{' and '.join(repr(t) for t in held)}, holding tensors, "
                                "besides its input; a spec passes tensors one by one")
        return given

    def sizes_given(self, call: fx.Node, child: nn.Module, given: dict[str, Any]
                    ) -> dict[str, Any]:
        """call_constants' values with the tensors given in place of sizes of them
        (pass_size_sources) as SizesOf, the child traced with them so; the shape each has in
        this forward's run is kept for the child's own run (Importer.sized_inputs)."""
        marks = call.meta.get(SIZE_ARGUMENTS)
        if not marks:
            return given
        try:
            names = list(inspect.signature(child.forward).parameters)
        except (TypeError, ValueError):
            return given
        by_name = {names[k] if isinstance(k, int) and k < len(names) else k: mark
                   for k, mark in marks.items()}
        given = dict(given)
        sized = {k: given[k] for k in by_name if isinstance(given.get(k), fx.Node)}
        runs = []
        for values in [self.values(), *self.variant_values()]:
            tensors = [values.get(call.args[0]), *(values.get(t) for t in sized.values())]
            if all(isinstance(t, torch.Tensor) for t in tensors):
                runs.append(((tuple(tensors[0].shape), tensors[0].dtype),
                             {k: (tuple(t.shape), t.dtype)
                              for k, t in zip(sized, tensors[1:], strict=True)}))
        if runs and runs[0][0][0] == self.importer.inputs.get(id(child), ((),))[0]:
            self.importer.sized_inputs[id(child)] = runs[0][1]
            self.importer.sized_variants[id(child)] = runs[1:]
        return {**given, **{k: by_name[k] for k in sized}}

    def one_input(self, node: fx.Node, target: str, child_where: str,
                  join: dict | None, fixed: bool = False) -> list[str]:
        """The entries a child taking one tensor is given (a list it joins: the entry that
        joins them, written before it); ``fixed``: its other arguments are constants, traced
        with (call_constants)."""
        if not node.args or (not fixed and (len(node.args) != 1 or node.kwargs)):
            raise ImportProblem(f"{child_where} is called with "
                                f"{len(node.args) + len(node.kwargs)} arguments; "
                                "netspec modules take one tensor")
        arg, what = node.args[0], f"the call of '{target}'"
        if not isinstance(arg, (list, tuple)):
            if join is not None:
                raise ImportProblem(f"{child_where} concatenates its input as a list of "
                                    "tensors, but is given one tensor")
            return [self.ref(arg, node, what)]
        if join is None:
            raise ImportProblem(f"{child_where} takes a list of tensors; netspec modules "
                                "take one tensor")
        sources = [self.ref(a, node, what) for a in arg]
        if len(sources) > 1:
            return [self.add(join, self.fresh(f"cat_{target}"), sources, None)]
        return sources

    def module_inputs(self, node: fx.Node, op: LayerType, target: str,
                      child_where: str) -> list[str]:
        """The entries a child taking several tensors (attention(q, k, v)) is given, port by
        port, without the trailing ones its ports default to in a spec; its other arguments
        must be what the spec means."""
        bound = _bind_module_call(node, op, child_where)
        # a spec's port defaults are its own: torch's forward takes every port but those it
        # may go without (a cell's state)
        missing = [p.doc or p.name for p in op.inputs if p.name not in bound and not p.optional]
        if missing:
            raise ImportProblem(f"{child_where} is called without its {' and '.join(missing)}"
                                f" (its forward takes {', '.join(_forward_names(op))})")
        given = [p for p in op.inputs if p.name in bound]
        if given != list(op.inputs[:len(given)]):
            raise ImportProblem(f"{child_where} is given its {given[-1].doc or given[-1].name} "
                                "but not the inputs before it, which a spec cannot say")
        sources = [self.ref(bound[p.name], node, f"the call of '{target}'") for p in given]
        return op.given_inputs(sources)

    # -------------------------------------------------------------- ModuleList chains

    def container_run(self, node, head, container) -> list[fx.Node]:
        """``for layer in self.layers: x = layer(x)`` over a ModuleList or ModuleDict: the
        chain of calls, which becomes a group named after the container."""
        target = str(node.target)
        if not isinstance(container, (nn.ModuleList, nn.ModuleDict, nn.Sequential)) or \
                target.count(".") != 1:
            raise ImportProblem(f"{self.where}: its forward calls '{target}', a module inside "
                                "a child, directly; netspec expresses calls of direct "
                                "children and chains over a ModuleList or ModuleDict")
        run, current = [node], node
        while len(current.users) == 1:
            user = next(iter(current.users))
            if user.op != "call_module" or not str(user.target).startswith(head + ".") or \
                    user.args[:1] != (current,) or _holds_node([user.args[1:], user.kwargs]):
                break
            run.append(user)
            current = user
        return run

    def run_entries(self, run, container, head) -> list[dict[str, Any]]:
        """The group's entries: each module of the container once, in order."""
        group_qual = self.child_qual(head)
        names = [str(n.target).split(".", 1)[1] for n in run]
        missing = [n for n, c in container.named_children() if n not in names and _has_state(c)]
        if missing:
            self.refuse_broken_chain(run)
        apart = [n for n in self.graph.nodes if n.op == "call_module" and n not in run
                 and str(n.target).startswith(head + ".")]
        if missing and apart:  # Res2Net's convs[i](sp), CrossViT's patch_embed, HRNet's
            calls = [*run, *apart]
            shown = ", ".join(f"{c.target} on '{c.args[0].name}'" if c.args and
                              isinstance(c.args[0], fx.Node) else str(c.target)
                              for c in calls[:4]) + (", ..." if len(calls) > 4 else "")
            raise ImportProblem(f"{self.where}: its forward calls the modules of '{head}' one "
                                f"by one on different tensors ({shown}); a spec calls a "
                                "ModuleList's modules in a chain (a group) or side by side "
                                "on one input (branches:), not each where its own input is")
        if missing or len(set(names)) != len(names):
            raise ImportProblem(f"{self.where}: its forward calls the modules of '{head}' as "
                                f"{' -> '.join(names)}; a spec group calls each of its "
                                "modules once, in a chain")
        entries: list[dict[str, Any]] = []
        for n, call in zip(names, run, strict=True):
            module = container.get_submodule(n)
            self.check_run_call(call, len(entries), n, head, group_qual, module)
            scope = self.importer.inlined(module, f"{group_qual}.{n}")
            if scope is not None and len(scope.items) > 1:
                entries.extend(_chain_entries(scope, n, len(entries), self.where))
                continue
            data, join = self.importer.child_entry(
                module, f"{group_qual}.{n}",
                self.call_constants(call, module, self.where) if scope is None else None)
            if join is not None:
                raise ImportProblem(f"{self.where}: '{call.target}' takes a list of tensors")
            entries.append(_order({**data, **({} if n.isdigit() else {"name": n})}))
        return entries

    def refuse_broken_chain(self, run: list[fx.Node]) -> None:
        """Why a chain over a container stops before its last module, where a call passes
        more than its tensor: sizes computed in forward given besides it (timm's PVT v2:
        blk(x, feat_size)), or a tuple returned and taken apart (torchvision's MViT:
        x, thw = block(x, thw))."""
        last = run[-1]
        extra = {k: v for k, v in enumerate([*run[0].args[1:], *run[0].kwargs.values()])
                 if _holds_node(v)}
        if extra:
            shown = ", ".join(str(v) for v in extra.values())
            raise ImportProblem(f"{self.where}: its forward calls '{run[0].target}' with "
                                f"{shown} besides its input, values computed in forward "
                                "(sizes of a tensor), which a spec entry is not given: netspec "
                                "modules take one tensor")
        parts = [u for u in last.users if u.op == "call_function" and u.target is
                 operator.getitem]
        if parts and len(parts) == len(last.users):
            raise ImportProblem(f"{self.where}: '{last.target}' returns a tuple whose "
                                f"{len(parts)} elements its forward takes apart (fx nodes "
                                f"{', '.join(p.name for p in parts)}), passing more than its "
                                "tensor to the next module (its sizes); a chain of spec entries "
                                "passes one tensor")

    def check_run_call(self, call: fx.Node, i: int, n: str, head: str, group_qual: str,
                       module: nn.Module):
        """A call of a chain, of the container's module ``n``, can be its entry i: one tensor,
        and constants only where the module is not a layer (call_constants)."""
        extra = len(call.args) > 1 or call.kwargs
        if not call.args or not isinstance(call.args[0], fx.Node) or \
                _holds_node([call.args[1:], call.kwargs]) or \
                (extra and layer_type_of(module) is not None):
            raise ImportProblem(f"{self.where}: '{call.target}' is not called with one tensor")
        if n.isdigit() and int(n) != i:
            raise ImportProblem(f"{self.where}: calls '{head}.{n}' as the {i}th module of "
                                f"'{head}'; an entry without a name is named by its "
                                "position")
        if not n.isdigit() and not _nameable(n):
            raise ImportProblem(f"{self.where}: the name '{group_qual}.{n}' cannot name a spec "
                                "entry (a Python identifier, not an nn.Module attribute)")

    # -------------------------------------------------------------- functions and methods

    def function(self, node: fx.Node) -> None:
        """A call_function or call_method: an op netspec declares a spelling of, or a value
        that only helps spell one (x.size(0)), or an alias of its input (x.contiguous())."""
        name, shown = _op_name(node)
        what = f"operation {shown} (fx node '{node.name}')"
        # with the op arguments a rewrite read off the model (spell_out_chains)
        args, kwargs = list(node.args), {**node.meta.get(OP_ARGUMENTS, {}), **node.kwargs}
        if any(a in self.child_tensors for a in node.all_input_nodes):
            self.child_function(node, what)
            return
        size = _size_read(node, name, args, self.helpers)
        if size is not None:
            self.helpers[node] = size
        elif name == "getitem":
            self.getitem(node, args, what)
        elif name in ALIASES and node.op == "call_method" and len(args) == 1 and not kwargs:
            self.refs[node] = self.ref(args[0], node, what)
        elif name is None and self.passes_through(node):
            pass
        elif not self.spelled_op(node, _spelling(name), args, kwargs, what):
            raise ImportProblem(f"{self.where}: {what} has no netspec equivalent (netspec "
                                "expresses torch.nn layers, the operators and tensor "
                                "functions of `netspec layers` (+, -, *, /, **, @, cat, stack, "
                                "reshape/view, permute, transpose, squeeze, expand, roll, "
                                "mean/sum/amax/amin, indexing, narrow, pad, interpolate) and the "
                                "torch.nn.functional forms of its layers)")

    def passes_through(self, node: fx.Node) -> bool:
        """A library function fx records as one call (torchvision's _unsqueeze(x, 5, 2),
        which adds a dim only to an input of another rank) that in every run of the module,
        at the spec's input and at other sizes, returns its one tensor argument itself, or a
        tuple of it and numbers: that tensor, its numbers sizes (False where it is not)."""
        tensors = [a for a in node.all_input_nodes if a in self.refs and a not in self.helpers]
        if node.op != "call_function" or len(tensors) != 1 or \
                len(node.all_input_nodes) != len(tensors) + sum(
                    a in self.helpers for a in node.all_input_nodes):
            return False
        found = set()
        for values in [self.values(), *self.variant_values()]:
            out, x = values.get(node), values.get(tensors[0])
            if not isinstance(x, torch.Tensor):
                return False
            if out is x:
                found.add(None)
            elif isinstance(out, tuple) and sum(o is x for o in out) == 1 and all(
                    o is x or (isinstance(o, int) and not isinstance(o, bool)) for o in out):
                found.add(next(i for i, o in enumerate(out) if o is x))
            else:
                return False
        if len(found) != 1:
            return False
        at = found.pop()
        if at is None:
            self.refs[node] = self.refs[tensors[0]]
        else:
            self.passed[node] = (self.refs[tensors[0]], at)
        return True

    def getitem(self, node: fx.Node, args: list, what: str) -> None:
        """x[i]: the element of a module's tuple that flows on (an LSTM's (output, state)[0]),
        or an op that spells getitem (x[:, 0]); nothing else."""
        source = args[0]
        if source in self.passed:  # (x, x.dim()) of a function passing x through
            ref, at = self.passed[source]
            if args[1] == at:
                self.refs[node] = ref
            else:
                self.helpers[node] = (None, None)
            return
        if source in self.parted:
            self.part(node, source, args[1], what)
            return
        if source in self.states and isinstance(args[1], int) and \
                not isinstance(args[1], bool):  # h_n[-1]: a layer's state, dim 0 of h_n
            reader = next(op for op in REGISTRY.values()
                          if op.inputs and op.inputs[0].state_item is not None)
            self.refs[node] = self.add({reader.name: reader.inputs[0].state_item(args[1])},
                                       None, [self.refs[source]], node)
            return
        if source in self.state_tuples:  # (h_n, c_n)[1]: c_n
            entry, op, path = self.state_tuples[source]
            if not self.named_output(node, entry, op, (*path, args[1])):
                raise ImportProblem(f"{self.where}: {what} takes no output of '{entry}'")
            return
        if source in self.multi:  # backbone["low"], halves[1]: one of a group's outputs
            entry, keys, returns = self.multi[source]
            key = args[1]
            if returns == "tuple" and isinstance(key, int) and not isinstance(key, bool):
                key = str(key + len(keys) if key < 0 else key)
            if key not in keys:
                raise ImportProblem(f"{self.where}: {what} takes {args[1]!r} of what "
                                    f"'{entry}' returns, which gives {', '.join(keys)}")
            self.refs[node] = f"{entry}.{key}"
            return
        if source in self.dicts and self.dicts[source] == args[1]:
            self.refs[node] = self.refs[source]  # features["out"]: the one tensor it holds
            return
        if isinstance(source, fx.Node) and source.op == "call_module" and source in self.refs:
            flows = self.flow_index(source)
            if args[1] == flows:
                self.refs[node] = self.refs[source]  # its output flows on
                return
            # a layer's own tuple (not a group's that returns one): its state by name
            op = layer_type_of(self.module.get_submodule(str(source.target))) \
                if flows is not None else None
            if op is not None and self.named_output(node, self.refs[source], op, (args[1],)):
                return
            if flows is not None and isinstance(args[1], int):
                raise ImportProblem(self.other_element(node, source, args[1]))
        if self.tensor_index(node, source, args[1]):
            return
        if not self.spelled_op(node, _spelling("getitem"), args, {}, what):
            raise ImportProblem(f"{self.where}: {what}: indexing is not expressible in a spec")

    def named_output(self, node: fx.Node, entry: str, op: LayerType,
                     path: tuple[int, ...]) -> bool:
        """An output besides the flowing one that an entry names (an RNN's h_n, from:
        rnn.h_n), where ``path`` is in the module's tuple, or a tuple of them (an LSTM's
        (h_n, c_n)); False where it is neither."""
        if not isinstance(path[-1], int) or isinstance(path[-1], bool):
            return False
        for output in op.extra_outputs:
            if output.at == path:
                self.refs[node] = f"{entry}.{output.name}"
                if output.batch_dim == 1:  # its dim 0 is the layers: h_n[-1] selects one
                    self.states.add(node)
                return True
        if any(output.at[:len(path)] == path for output in op.extra_outputs):
            self.state_tuples[node] = (entry, op, path)
            return True
        return False

    def part(self, node: fx.Node, source: fx.Node, index: Any, what: str) -> None:
        """halves[0] of halves = x.chunk(2, 1): the part an entry takes by name (from:
        chunk.0); spx[-1] is the last part where the parts do not depend on the input's size
        (_part_count)."""
        if isinstance(index, int) and not isinstance(index, bool) and index < 0:
            index += self.part_count(source) or 0
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ImportProblem(f"{self.where}: {what} takes part {index!r} of "
                                f"'{source.name}'; a spec takes a part by its number from 0 "
                                "(how many there are depends on the input)")
        self.refs[node] = f"{self.refs[source]}.{index}"

    def part_count(self, source: fx.Node) -> int | None:
        """How many parts x.chunk(n, d) / x.split(sizes, d) gives in the model's run at the
        spec's input, where every input the spec checks at gives as many: a list of sizes
        (which must add up), n chunks of a sample dim n divides (a check at a size it does
        not divide refuses the part named), or parts of a size along a dim that runs with
        each input dim doubled leave as it is; None otherwise."""
        value = self.values().get(source)
        if not isinstance(value, (tuple, list)) or not value:
            return None
        op = _spelling(_op_name(source)[0])
        if op is None:
            return None
        whole = source.args[0]
        tensor = self.values().get(whole)
        if not isinstance(tensor, torch.Tensor):
            return None
        values = _bind(op[1].params, list(source.args[1:]), dict(source.kwargs),
                       "the split", self.where)
        dim = values.get("dim", 0)
        chunks = values.get("chunks")
        if isinstance(chunks, int) and isinstance(dim, int) and dim != 0 and \
                tensor.shape[dim] % chunks == 0:
            return len(value)
        sections = values.get("split_size_or_sections")
        if isinstance(sections, (list, tuple)):
            return len(value)
        # torch.split(out, width, 1) of a dim the module's weights fix (Res2Net's channels):
        # as many parts in every run at the spec's input with a dim doubled
        if isinstance(sections, int) and all(
                isinstance(run.get(source), (tuple, list)) and len(run[source]) == len(value)
                for run in self.variant_values()):
            return len(value)
        return None

    def tuple_op(self, call: fx.Node) -> LayerType | None:
        """The op whose tuple a module call returns (an LSTM's (output, state)): the leaf's
        own, or the one a group's forward returns; None for a single tensor."""
        target = str(call.target)
        op = layer_type_of(self.module.get_submodule(target))
        if op is None:
            return self.importer.returned_tuples.get(self.child_qual(target))
        return op if op.torch.returns is not None else None

    def flow_index(self, call: fx.Node) -> int | None:
        """The tuple element of a module call that flows on (an LSTM's output: 0), or None
        when the module returns one tensor."""
        op = self.tuple_op(call)
        return op.flow_index if op is not None else None

    def other_element(self, node: fx.Node, call: fx.Node, index: int) -> str:
        """Why the forward may not use an element of a module's tuple that does not flow on
        (attention's attn_weights, an LSTM's state)."""
        target = str(call.target)
        op = self.tuple_op(call)
        returns = op.torch.returns
        named = 0 <= index < len(returns) and returns[index] is not None
        element = returns[index] if named else f"element {index}"
        child = self.module.get_submodule(target)
        return (f"{self.importer.where(self.child_qual(target), child)} returns a tuple, and "
                f"the forward of {self.where.replace('module ', '')} uses its {element} (fx "
                f"node '{node.name}'); a spec carries on only its {op.flows}")

    def child_qual(self, target: str) -> str:
        return f"{self.qual}.{target}" if self.qual else target

    def spelled_op(self, node: fx.Node, spelling: tuple[LayerType, FxCall] | None, args: list,
                   kwargs: dict, what: str) -> bool:
        """The entry of a call spelling an op, if this call of it is one (else False)."""
        if spelling is None:
            return False
        op, call = spelling
        if op.takes_several and call.match is None:
            self.merge(node, op, args, kwargs, what)
            self.in_place(node)
            return True
        if call.match is not None:
            written = call.match(args[1:], kwargs, self.size_of(args[0]))
            like = self.whole_shape_of(args[1:], kwargs) if isinstance(written, str) and \
                call.shaped_like else None
            if like is not None:  # x.reshape(*y.shape), sizes read one by one
                op = REGISTRY[call.shaped_like]
                self.refs[node] = self.add({op.name: None}, self.fresh(node.name),
                                           [self.ref(args[0], node, what),
                                            self.ref(like, node, what)], node)
                return True
            if isinstance(written, str) and call.regroups:
                why = self.regroup(node, args[0], what)
                if why is None:
                    return True
                written = (f"is neither flattens and unflattens of its input ({why}) nor a "
                           f"Reshape: it {written}")
            if isinstance(written, str):
                raise ImportProblem(f"{self.where}: {what} {written}")
            if isinstance(written, tuple):  # the call is another op (a view that flattens)
                op, written = REGISTRY[written[0]], written[1]
        elif call.sets:
            if len(args) != 1 or kwargs:
                return False
            written = dict(call.sets)
        elif call.from_sizes is not None and _holds_node([args[1:], kwargs]):
            op, written = self.from_sizes(node, call, args, kwargs, what)
        else:
            written = self.written_params(op, call, args[1:], kwargs, what)
        sources = [self.ref(args[0], node, what), *self.batch_source(op, args, kwargs, what)]
        self.refs[node] = self.add({op.name: written or None}, self.fresh(node.name),
                                   sources, node)
        if op.parts:
            self.parted.add(node)
        self.in_place(node)
        return True

    def whole_shape_of(self, sizes: list, kwargs: dict) -> fx.Node | None:
        """The tensor whose every size, in order, a reshape's sizes read (timm's Swin block:
        B, H, W, C = x.shape, then y.reshape(B, H, W, C), which is y.reshape_as(x)), else
        None."""
        if kwargs or not sizes:
            return None
        if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
            sizes = list(sizes[0])
        reads = [self.helpers.get(v) if isinstance(v, fx.Node) else None for v in sizes]
        if any(read is None for read in reads) or len({source for source, _ in reads}) != 1:
            return None
        source = reads[0][0]
        value = self.values().get(source)
        if not isinstance(source, fx.Node) or not isinstance(value, torch.Tensor) or \
                [dim for _, dim in reads] != list(range(value.dim())):
            return None
        return source

    def in_place(self, node: fx.Node) -> None:
        """x.add_(y) changes x itself: later uses of x take the call's entry (torchvision
        MViT v1's positional encoding returns x after x.add_(pos)), where x is a tensor the
        forward made that is no view of another in the model's run at the spec's input."""
        if node.op != "call_method" or not _in_place(str(node.target)):
            return
        x = node.args[0]
        value = self.values().get(x) if isinstance(x, fx.Node) else None
        if isinstance(value, torch.Tensor) and x.op != "placeholder" and value._base is None:
            self.refs[x] = self.refs[node]

    def size_of(self, tensor: Any):
        """_size_of for a call on ``tensor``: a size another tensor has at some dim is read
        from ``tensor`` at that dim where, in the model's run at the spec's input, the two
        have that size in common there (timm's x.transpose(1, 2).reshape(B, N, C) with N =
        x.shape[1] of the block's input: the same tokens)."""
        plain = _size_of(tensor, self.helpers)

        def size_of(value: Any) -> int | str | None:
            read = plain(value)
            source, dim = self.helpers.get(value, (None, None)) if isinstance(
                value, fx.Node) else (None, None)
            if read != "computed" or source is None or not isinstance(dim, int) or dim <= 0:
                return read
            values = self.values()
            mine, theirs = values.get(tensor), values.get(source)
            if isinstance(mine, torch.Tensor) and isinstance(theirs, torch.Tensor) and \
                    dim < min(mine.dim(), theirs.dim()) and mine.shape[dim] == theirs.shape[dim]:
                return dim
            return read

        return size_of

    def from_sizes(self, node: fx.Node, call: FxCall, args: list, kwargs: dict, what: str
                   ) -> tuple[LayerType, dict[str, Any]]:
        """The op a call is whose arguments are sizes computed in forward from its input's
        (FxCall.from_sizes: F.pad by (7 - W % 7) % 7 is a PadToMultiple), and its arguments."""
        tensor = self.values().get(args[0])
        if not isinstance(tensor, torch.Tensor):
            raise ImportProblem(f"{self.where}: {what} takes arguments computed in forward, "
                                "and the module does not run at the spec's input to show "
                                "what they are")
        found = call.from_sizes(args[1:], kwargs, tuple(tensor.shape[1:]),
                                lambda value, sizes: self.value_at(value, args[0], sizes))
        if isinstance(found, str):
            raise ImportProblem(f"{self.where}: {what} {found}")
        op, written = REGISTRY[found[0]], found[1]
        return op, _non_default(op, written)

    def value_at(self, value: Any, tensor: fx.Node, sizes: tuple[int, ...]) -> Any:
        """``value`` as the forward would compute it were ``tensor``'s sample sizes ``sizes``:
        a size read of ``tensor``, or of a tensor of the same shape in the model's run (x
        rolled), is read from ``sizes``; another size stays what it was in that run, and
        arithmetic and functions on sizes (torchvision's _compute_pad_size_3d) are computed
        again.  None where a value is no size."""
        values = self.values()
        shape = values.get(tensor)
        memo: dict[fx.Node, Any] = {}

        def read(source: Any) -> tuple[int, ...] | None:
            seen = values.get(source)
            if not isinstance(seen, torch.Tensor) or not isinstance(shape, torch.Tensor):
                return None
            if source is tensor or tuple(seen.shape) == tuple(shape.shape):
                return (shape.shape[0], *sizes)
            return tuple(seen.shape)

        def compute(v: Any) -> Any:
            if isinstance(v, (list, tuple)):
                return type(v)(compute(a) for a in v)
            if isinstance(v, dict):
                return {k: compute(a) for k, a in v.items()}
            if not isinstance(v, fx.Node):
                return v
            if v not in memo:
                memo[v] = evaluate(v)
            return memo[v]

        def evaluate(v: fx.Node) -> Any:
            if v.op == "call_method" and v.target == "size":
                whole = read(v.args[0])
                dim = v.args[1] if len(v.args) > 1 else v.kwargs.get("dim")
                return None if whole is None else whole if dim is None else whole[dim]
            if v.op == "call_function" and v.target is getattr and v.args[1:] == ("shape",):
                return read(v.args[0])
            if v.op != "call_function" or v not in self.helpers:
                raise _NoSize
            return v.target(*compute(v.args), **compute(v.kwargs))

        try:
            return compute(value)
        except Exception:  # not a size, or the computation refuses these sizes
            return None

    def regroup(self, node: fx.Node, source: Any, what: str) -> str | None:
        """A reshape of ``source`` as the Flatten and Unflatten entries it is in every run of
        the module (netspec/importer/regroup.py): None once they are written, else why there
        are none."""
        runs = []
        for values in [self.values(), *self.variant_values()]:
            before, after = values.get(source), values.get(node)
            if isinstance(before, torch.Tensor) and isinstance(after, torch.Tensor):
                runs.append((tuple(before.shape), tuple(after.shape)))
            elif not runs:
                return "the module does not run at the spec's input to show its sizes"
        read = self.sizes_read(node)
        steps = regrouping(runs, frozenset(read))
        if isinstance(steps, str):
            return steps
        taken = []  # the tensor and its dims each split into sizes read from one takes
        for kind, arguments in steps:
            if kind == "split_read":
                tensors = {read[k][0] for k in arguments["dims"]}
                dims = [read[k][1] for k in arguments["dims"]]
                if len(tensors) > 1 or dims != list(range(dims[0], dims[0] + len(dims))):
                    # no UnflattenAs: a split with one size following the input (-1) may do
                    plain = regrouping(runs, frozenset())
                    if isinstance(plain, str):
                        return (f"it splits dim {arguments['dim']} into sizes read from "
                                f"{' and '.join(sorted(t.name for t in tensors))} at dims "
                                f"{dims}, not one tensor's consecutive dims")
                    steps, taken = plain, []
                    break
                taken.append((tensors.pop(), dims))
        ref = self.ref(source, node, what)
        call = _spelling(_op_name(node)[0])[1]
        for kind, arguments in steps:
            if kind == "split_read":
                tensor, dims = taken.pop(0)
                op = next(lt for lt in REGISTRY.values()
                          if [p.name for p in lt.inputs] == ["input", "like"] and
                          lt.torch.call_args == ("dim", "start_dim", "end_dim"))
                ref = self.add({op.name: {"dim": arguments["dim"], "start_dim": dims[0],
                                          "end_dim": dims[-1]}},
                               self.fresh(node.name), [ref, self.ref(tensor, node, what)], node)
                continue
            op = REGISTRY[call.regroups[kind == "split"]]
            ref = self.add({op.name: _non_default(op, arguments) or None},
                           self.fresh(node.name), [ref], node)
        self.refs[node] = ref
        return None

    def sizes_read(self, node: fx.Node) -> dict[int, tuple[fx.Node, int]]:
        """The sizes of a reshape's output (x.reshape(B, H, W, -1)) read from a tensor this
        forward follows, by output dim (the batch's aside): (that tensor, the dim read, not
        negative)."""
        args = list(node.args[1:]) or list(node.kwargs.values())
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            args = list(args[0])
        values, read = self.values(), {}
        for k, v in enumerate(args):
            source, dim = self.helpers.get(v, (None, None)) if isinstance(v, fx.Node) \
                else (None, None)
            tensor = values.get(source)
            if k == 0 or source is None or not isinstance(dim, int) or \
                    source not in self.refs or source in self.helpers or \
                    not isinstance(tensor, torch.Tensor) or not -tensor.dim() <= dim < \
                    tensor.dim() or dim % tensor.dim() == 0:
                continue
            read[k] = (source, dim % tensor.dim())
        return read

    def variant_values(self) -> list[dict[fx.Node, Any]]:
        """values() at other sizes of the module's input, shapes only (fake tensors): its
        batch 2, then each of its other dims twice the size, each run where the module runs
        so."""
        if self._variants is None and id(self.module) in self.importer.sized_inputs:
            # given sizes of a tensor: the caller's runs at other sizes, where they change
            # with the input as in the model
            self._variants = [values for values in (
                _run_values(self.module, self.graph, given, self.given, shapes_only=True,
                            tensors=tensors)
                for given, tensors in self.importer.sized_variants.get(id(self.module), []))
                if values]
        if self._variants is None:
            self._variants = []
            given = self.importer.inputs.get(id(self.module))
            for k in range(len(given[0]) if given is not None else 0):
                shape = list(given[0])
                shape[k] = 2 * shape[k] if shape[k] else 2
                values = _run_values(self.module, self.graph, (tuple(shape), given[1]),
                                     self.given, shapes_only=True,
                                     tensors=self.importer.sized_inputs.get(id(self.module)))
                if values:
                    self._variants.append(values)
        return self._variants

    def values(self) -> dict[fx.Node, Any]:
        """The value of each node of the forward when the module runs on the input it had in
        the model's run (Importer.inputs); empty when it had none."""
        if self._values is None:
            self._values = _run_values(self.module, self.graph,
                                       self.importer.inputs.get(id(self.module)), self.given,
                                       tensors=self.importer.sized_inputs.get(id(self.module)))
        return self._values

    def batch_source(self, op: LayerType, args: list, kwargs: dict, what: str) -> list[str]:
        """A parameter repeated over another tensor's batch (Port.batch_size_at):
        self.class_token.expand(n, -1, -1) with n = x.shape[0] takes x as its second input."""
        port = op.batch_port(len(op.inputs))
        if port is None or getattr(args[0], "op", None) != "get_attr":
            return []
        sizes = list(args[1:]) or list(kwargs.values())
        if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
            sizes = list(sizes[0])
        at = op.inputs[port].batch_size_at
        value = sizes[at] if len(sizes) > at else None
        if not isinstance(value, fx.Node):
            return []
        source, dim = self.helpers.get(value, (None, None))
        return [self.ref(source, args[0], what)] if source is not None and dim == 0 else []

    def written_params(self, op: LayerType, call: FxCall, args: list, kwargs: dict,
                       what: str) -> dict[str, Any]:
        """The op arguments a call passes (non-default); its other parameters must keep
        torch's defaults."""
        values = _bind(call.params, args, kwargs, what, self.where)
        write = {}
        for pname, default in call.params:
            v = plain_value(values[pname])
            if pname in op.arg_by_name:
                arg = op.arg_by_name[pname]
                v = collapse_arg(arg, v)
                if arg.default is REQUIRED or not same_value(v, arg.default):
                    write[pname] = v
            elif pname not in IGNORED and not same_value(v, default):
                raise ImportProblem(f"{self.where}: {what} has {pname}={v!r}, which "
                                    f"{op.name} cannot express")
        _drop_kernel_stride(op, write)
        return write

    def merge(self, node: fx.Node, op: LayerType, args: list, kwargs: dict, what: str) -> None:
        """A function op taking several tensors: f([a, b], dim), f(a, b), f(x, 0.5) (a number
        in place of the second tensor) or f(x, size=like.shape[2:])."""
        call = next(c for c in op.fx if c.name == _op_name(node)[0])
        if op.torch.inputs == "list":
            tensors = args[0] if args else kwargs.get("tensors")
            values = _call_values(call, args, kwargs)
            if not isinstance(tensors, (list, tuple)) or \
                    not all(isinstance(v, int) for v in values.values()):
                raise ImportProblem(f"{self.where}: {what}: netspec concatenates a list of "
                                    "tensors along a fixed dim")
            sources = [self.ref(t, node, what) for t in tensors]
            if len(sources) == 1:
                self.refs[node] = sources[0]
                return
            written = _non_default(op, values)
        elif any(p.size_of for p in op.inputs):
            sources, written = self.sized(node, op, call, args, kwargs, what)
        else:
            sources, written = self.operands(node, op, call, args, kwargs, what)
        self.refs[node] = self.add({op.name: written or None}, self.fresh(node.name), sources,
                                   node)

    def operands(self, node: fx.Node, op: LayerType, call: FxCall, args: list, kwargs: dict,
                 what: str) -> tuple[list[str], dict[str, Any]]:
        """The tensors of f(a, b, ...) as sources, a number in place of the last one as the
        port's argument (x * 0.5: other), and the arguments written."""
        tensors, rest, kwargs = _tensor_arguments(op, args, kwargs)
        if len(tensors) < 2:
            raise ImportProblem(f"{self.where}: {what} with arguments other than two tensors")
        written = {**self.written_params(op, call, rest, kwargs, what), **dict(call.sets)}
        if not isinstance(tensors[0], fx.Node) and op.torch.commutative:
            tensors.reverse()  # 2 * x is x * 2
        scalar = op.inputs[-1].scalar
        if isinstance(tensors[0], fx.Node) and _is_number(tensors[1]) and scalar:
            written[scalar] = tensors[1]
            tensors = tensors[:1]
        constant = next((a for a in tensors if not isinstance(a, fx.Node)), None)
        if constant is not None and scalar:
            raise ImportProblem(f"{self.where}: {what} with the constant {constant!r} first; "
                                f"{op.name} takes a number only in place of its second "
                                f"operand ({scalar}:)")
        if constant is not None:
            raise ImportProblem(f"{self.where}: {what} with the constant {constant!r}; netspec "
                                f"{op.verb} tensors only")
        return [self.ref(a, node, what) for a in tensors], written

    def sized(self, node: fx.Node, op: LayerType, call: FxCall, args: list, kwargs: dict,
              what: str) -> tuple[list[str], dict[str, Any]]:
        """An op taking a tensor's spatial size (F.interpolate(x, size=like.shape[2:])): the
        tensor whose shape is sliced is its second input; a constant size stays one."""
        port = next(p for p in op.inputs if p.size_of)
        values = dict(zip([name for name, _ in call.params], args[1:], strict=False)) | kwargs
        sources = [self.ref(args[0], node, what)]
        size = values.get(port.size_of)
        if isinstance(size, fx.Node):
            like = _shape_source(size)
            if like is None:
                raise ImportProblem(f"{self.where}: {what} takes its {port.size_of} from "
                                    f"'{size.name}'; netspec reads a size from another "
                                    "tensor as like.shape[2:] (or like.shape[-2:])")
            sources.append(self.ref(like, node, what))
            del values[port.size_of]
        return sources, self.written_params(op, call, [], values, what)

    # -------------------------------------------------------------- the end of the forward

    def finish(self) -> Converted:
        """The entries, once the forward returned the last one; every child with parameters
        called."""
        if self.several is not None:
            return self.several_outputs(*self.several)
        if self.passed_on is not None:
            self.check_children_called()
            return Converted(self.entries(), self.input_join, *self.passed_on,
                             self.port_inputs or None)
        if self.output is None or self.output not in self.refs:
            raise ImportProblem(f"{self.where}: its forward returns nothing netspec follows")
        out = self.refs[self.output]
        items = self.items
        # entries after the output that nothing uses and that hold no state can go
        while items and items[-1].ref != out and not items[-1].stateful and \
                items[-1].node is not None and items[-1].node not in self.live:
            items.pop()
        if out == "input":
            self.add({op_of_class(nn.Identity).name: None}, self.fresh("identity"), ["input"],
                     None)
        elif not items or items[-1].ref != out:
            raise ImportProblem(f"{self.where}: its output ('{out}') is not the last thing its "
                                "forward computes; a netspec list returns its last entry")
        if self.output.op == "call_module" and self.tuple_op(self.output) is not None:
            self.importer.returned_tuples[self.qual] = self.tuple_op(self.output)
        self.check_children_called()
        return Converted(self.entries(), self.input_join, inputs=self.port_inputs or None)

    def several_outputs(self, values: list[tuple[str, fx.Node]], returns: str) -> Converted:
        """The model's entries and its outputs, each an entry's name."""
        outputs = []
        for key, node in values:
            ref = self.ref(node, node, f"its output '{key}'")
            if self.top and (ref == "input" or ref.isdigit() or "." in ref):
                raise ImportProblem(f"{self.where}: its output '{key}' is "
                                    f"{'its input' if ref == 'input' else f'entry {ref}'}; a "
                                    "spec's outputs name entries")
            outputs.append((key, ref))
        self.check_children_called()
        return Converted(self.entries(), self.input_join, outputs, returns,
                         self.port_inputs or None)

    def check_children_called(self) -> None:
        """Children with parameters the forward does not call are an error; others a note."""
        uncalled = [n for n in self.children if n not in self.calls and self.state[n]]
        if uncalled:
            prefix = self.qual + "." if self.qual else ""
            names = ", ".join(f"'{prefix}{n}' ({type(self.children[n]).__name__})"
                              for n in uncalled)
            one = len(uncalled) == 1
            raise ImportProblem(f"{self.where}: {names} ha{'s' if one else 've'} "
                                "parameters but the forward (in eval mode) does not use "
                                f"{'it' if one else 'them'}; a spec has only "
                                f"modules that data flows through{_aux_hint(self.module)}")
        unused = [n for n in self.children if n not in self.calls and not self.state[n]]
        if unused:
            self.importer.notes.append(f"{self.where}: unused parameterless module(s) left "
                                       "out: " + ", ".join(unused))

    def entries(self) -> list[dict[str, Any]]:
        """The items as entries: name: where not the index, from: where the data does not
        come from the entry before."""
        self.name_taken_by_position()
        out = []
        previous = first = self.port_inputs[0] if self.port_inputs else "input"
        before: Item | None = None
        for item in self.items:
            entry = dict(item.data)
            if item.named:
                entry["name"] = item.ref
            if not item.sources and "layers" in entry and before is not None and (
                    before.node in self.parted or before.ref in self.branch_counts):
                # a group of entries taking no tensor (a bias from its own table and
                # index) would take the parts before it: it takes the module's input
                entry["from"] = first
            if item.sources and item.sources != [previous]:
                for s in item.sources:
                    if s.isdigit():
                        raise ImportProblem(f"{self.where}: entry {s} (a child named '{s}') "
                                            "is used out of order, and from: can only name "
                                            "entries with identifier names")
                entry["from"] = item.sources[0] if len(item.sources) == 1 else list(item.sources)
                every = self.every_part(item)
                if every is not None:  # torch.cat(outs, 1) of every branch: from: convs
                    entry["from"] = every
            out.append(_order(entry))
            previous, before = item.ref, item
        return out


    def name_taken_by_position(self) -> None:
        """An entry named by its position (a Sequential's child '3') that a later entry
        takes besides the one before it (ASPPPooling's interpolate of its last module's
        output to its input's size) is given a name when it holds no parameters (a ReLU):
        from: names entries by identifier, and a module without state has no state_dict key
        to keep."""
        previous = "input"
        renamed: dict[str, str] = {}
        for item in self.items:
            sources = [renamed.get(s, s) for s in item.sources]
            item.sources = sources
            if sources and sources != [previous]:
                for s in sources:
                    owner = next((i for i in self.items if i.ref == s), None)
                    if s.isdigit() and owner is not None and not owner.stateful and \
                            not self.state.get(s, False):
                        kind = next(iter(owner.data), "entry")
                        owner.ref = renamed[s] = self.fresh(kind.lower())
                        owner.named = True
                item.sources = [renamed.get(s, s) for s in item.sources]
            previous = item.ref

    def every_part(self, item: Item) -> str | None:
        """The branches entry whose every output, in order, ``item`` takes, where its op
        takes them as one list (Concat): that entry's name; else None."""
        base = item.sources[0].partition(".")[0]
        count = self.branch_counts.get(base)
        op = REGISTRY.get(next(iter(item.data), ""))
        if count is None or op is None or op.torch.inputs != "list" or \
                item.sources != [f"{base}.{i}" for i in range(count)]:
            return None
        return base


def _each_on_its_own(graph: fx.Graph, head: str) -> tuple[list[fx.Node], set[fx.Node]] | None:
    """The calls of the modules of container ``head`` where each takes one tensor that no
    call of them computes, and the nodes those tensors come from; None where they are not
    (a chain, Res2Net's convs[i](sp + spx[i]))."""
    calls = [n for n in graph.nodes if n.op == "call_module"
             and str(n.target).startswith(head + ".")]
    if len(calls) < 2 or any(len(c.args) != 1 or c.kwargs or not isinstance(c.args[0], fx.Node)
                             for c in calls):
        return None
    upstream: set[fx.Node] = set()
    pending = [c.args[0] for c in calls]
    while pending:
        value = pending.pop()
        if value not in upstream:
            upstream.add(value)
            pending.extend(value.all_input_nodes)
    return None if upstream & set(calls) else (calls, upstream)


def _inputs_first(graph: fx.Graph, containers: list[str]) -> None:
    """Each container whose modules are each called on a tensor of its own: what those
    tensors are computed from moved before the first call (CrossViT resizes the image for
    patch_embed.1 after calling patch_embed.0), so one branches entry there can take them."""
    for head in containers:
        found = _each_on_its_own(graph, head)
        if found is None:
            continue
        calls, upstream = found
        order = {n: i for i, n in enumerate(graph.nodes)}
        for value in sorted(upstream, key=order.__getitem__):
            if order[value] > order[calls[0]]:
                calls[0].prepend(value)


def _input_names(first: nn.Module, width: int) -> list[str]:
    """A chain's group's inputs: named after its first module's forward's arguments."""
    try:
        params = list(inspect.signature(first.forward).parameters)[:width]
    except (TypeError, ValueError):
        params = []
    inputs = list(dict.fromkeys(_safe_name(p) for p in params))
    return inputs if len(inputs) == width else [f"input{k}" for k in range(width)]


def _chain_entries(scope: _Scope, name: str, position: int, where: str) -> list[dict[str, Any]]:
    """A layer subclass's entries (Importer.inlined) in a chain over a container, in place of
    its module ``name`` at ``position``: the layer under its name, the others after it by
    its name (norm_permute); they must follow one another."""
    entries, previous = [], "input"
    for item in scope.items:
        if item.sources != [previous]:
            raise ImportProblem(f"{scope.where}: its forward is not a chain of entries, which "
                                f"a chain over a container needs ({where})")
        if item is scope.base_item and name.isdigit() and str(position + len(entries)) != name:
            raise ImportProblem(f"{scope.where}: its {next(iter(item.data))} would be entry "
                                f"{position + len(entries)} of its chain, not {name}")
        entry = name if item is scope.base_item else _safe_name(f"{name}_{item.ref}")
        entries.append(_order({**item.data, **({} if entry.isdigit() else {"name": entry})}))
        previous = item.ref
    return entries


class _NoSize(Exception):
    """A value the forward computes that is not a size (a tensor)."""


class _SizedInput(fx.Proxy):
    """The forward's input with its sample sizes known (sizes: batch 1 and the sample): its
    shape / size() give them as ints and the batch as the traced x.shape[0], so a forward
    branching on its input's size (timm's ConvMlp: if x.shape[-2] < 7) traces at them."""

    sizes: tuple[int, ...] = ()

    @property
    def shape(self) -> tuple:
        whole = self.tracer.create_proxy("call_function", getattr, (self, "shape"), {})
        batch = self.tracer.create_proxy("call_function", operator.getitem, (whole, 0), {})
        return (batch, *self.sizes[1:])

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return len(self.sizes)


def _traced(m: nn.Module, given: dict[str, Any] | None = None,
            sizes: tuple[int, ...] | None = None) -> fx.Graph:
    """m's forward with its children as calls; its parameters after the input fixed to the
    constants its caller ``given`` (self.head(x, pre_logits=True)) or their defaults (timm's
    pre_logits=False, attn_mask=None), as fx's concrete_args; with ``sizes``, its input's
    sample sizes read as those constants (_SizedInput)."""
    class Children(fx.Tracer):
        first = True

        def is_leaf_module(self, module: nn.Module, name: str) -> bool:
            return module is not m

        def proxy(self, node: fx.Node) -> fx.Proxy:
            if sizes is None or node.op != "placeholder" or not self.first:
                return super().proxy(node)
            self.first = False
            proxy = _SizedInput(node, self)
            proxy.sizes = sizes
            return proxy

    # calls of functions ops are spelled as are recorded, not traced through
    with calls_child(m):
        graph = Children(autowrap_functions=_foreign_functions()).trace(
            m, concrete_args=_fixed_arguments(m, given or {}))
    _unflatten_output(graph)
    _spell_out(graph)
    spell_out_chains(graph, m)
    rewrite(graph, m)
    read_sizes_from(graph, given or {})
    pass_size_sources(graph, m, lambda child: layer_type_of(child) is None and
                      not isinstance(child, CONTAINERS))
    return graph


def _unflatten_output(graph: fx.Graph) -> None:
    """A forward traced with a list of inputs (DLA's children: fx.PH each) returns its
    outputs flattened, [x]: the tensor itself where it returns one."""
    info = getattr(graph._codegen, "pytree_info", None)
    spec = getattr(info, "out_spec", None)
    output = next(n for n in graph.nodes if n.op == "output")
    if spec is not None and spec.is_leaf() and isinstance(output.args[0], (list, tuple)) \
            and len(output.args[0]) == 1:
        output.args = (output.args[0][0],)


def _trace_or_none(m: nn.Module) -> fx.Graph | None:
    try:
        return _traced(m)
    except Exception:  # a forward fx cannot follow is no layer's forward
        return None


def _spell_out(graph: fx.Graph) -> None:
    """Functions that are compositions of ones netspec spells, rewritten as them in place:
    torch.addcmul(a, b, c, value=v) is a + b * c (* v) (resmlp's Affine); the parts of
    x.unbind(d) are x.select(d, i) (_spell_out_unbind)."""
    _spell_out_addcmul(graph)
    _spell_out_unbind(graph)
    _spell_out_einsum(graph)
    _spell_out_stack_mean(graph)


def _spell_out_stack_mean(graph: fx.Graph) -> None:
    """torch.mean(torch.stack(xs), dim=0) (CrossViT's head: the mean of its branches'
    logits) stacks before the batch, which a spec cannot; the same mean of a stack along
    dim 1 is the same tensor."""
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target is not torch.stack or len(node.users) != 1:
            continue
        values = {"dim": 0, **dict(zip(("tensors", "dim"), node.args, strict=False)),
                  **node.kwargs}
        mean = next(iter(node.users))
        taken = mean.op == "call_function" and mean.target is torch.mean and \
            mean.args[:1] == (node,)
        reduced = {"keepdim": False, **dict(zip(("input", "dim", "keepdim"), mean.args,
                                                strict=False)), **mean.kwargs} if taken else {}
        over_stack = reduced.get("dim") in (0, (0,), [0]) and reduced.get("keepdim") is False
        if not taken or set(values) != {"tensors", "dim"} or values["dim"] != 0 or \
                set(reduced) != {"input", "dim", "keepdim"} or not over_stack:
            continue
        node.args, node.kwargs = (values["tensors"],), {"dim": 1}
        mean.args, mean.kwargs = (node,), {"dim": 1}


def _spell_out_addcmul(graph: fx.Graph) -> None:
    for node in list(graph.nodes):
        method = node.op == "call_method" and node.target == "addcmul"
        if not (method or (node.op == "call_function" and node.target is torch.addcmul)):
            continue
        parameters = ("input", "tensor1", "tensor2", "value")
        values = {"value": 1, **dict(zip(parameters, node.args, strict=False)), **node.kwargs}
        if set(values) != set(parameters):
            continue  # out=, or arguments given otherwise: named as they are
        with graph.inserting_before(node):
            product = graph.call_function(operator.mul, (values["tensor1"], values["tensor2"]))
            if not (_is_number(values["value"]) and values["value"] == 1):
                product = graph.call_function(operator.mul, (product, values["value"]))
            total = graph.call_function(operator.add, (values["input"], product))
        node.replace_all_uses_with(total)
        graph.erase_node(node)


def _einsum_matmul(equation: str) -> tuple[bool, bool, bool] | None:
    """A two-operand einsum equation that is a batched matrix product ("bhid,bhjd->bhij":
    the same leading dims in both operands and the output, one index summed over their last
    two): whether the first operand, the second and the product are transposed in their
    last two dims; None for any other equation."""
    text = equation.replace(" ", "")
    match = re.fullmatch(r"([A-Za-z]+),([A-Za-z]+)->([A-Za-z]+)", text)
    if match is None:
        return None
    a, b, out = match.groups()
    if len({len(a), len(b), len(out)}) != 1 or len(a) < 2 or \
            any(len(set(t)) != len(t) for t in (a, b, out)):
        return None
    lead = a[:-2]
    if b[:-2] != lead or out[:-2] != lead:
        return None
    summed = set(a[-2:]) & set(b[-2:])
    if len(summed) != 1:
        return None
    (c,) = summed
    i, k = a[-2:].replace(c, ""), b[-2:].replace(c, "")
    if not i or not k or i == k or set(lead) & {i, k, c} or sorted(out[-2:]) != sorted(i + k):
        return None
    return a[-2] == c, b[-1] == c, out[-2:] == k + i


def _spell_out_einsum(graph: fx.Graph) -> None:
    """torch.einsum of two tensors that is a batched matrix product (torchvision's MaxViT:
    "B G H I D, B G H J D -> B G H I J") is their matmul, each transposed in its last two
    dims where the equation says so."""
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in (torch.einsum,) or node.kwargs or \
                not node.args or not isinstance(node.args[0], str):
            continue
        operands = list(node.args[1:])
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = list(operands[0])
        how = _einsum_matmul(node.args[0])
        if how is None or len(operands) != 2 or \
                not all(isinstance(t, fx.Node) for t in operands):
            continue
        with graph.inserting_before(node):
            left, right = (graph.call_method("transpose", (t, -2, -1)) if flip else t
                           for t, flip in zip(operands, how[:2], strict=True))
            product = graph.call_function(torch.matmul, (left, right))
            if how[2]:
                product = graph.call_method("transpose", (product, -2, -1))
        node.replace_all_uses_with(product)
        graph.erase_node(node)


def _unbind_dim(node: fx.Node) -> int | None:
    """d of x.unbind(d) / torch.unbind(x, d) whose every use is a part by a constant index
    (q, k, v = qkv.unbind(0)), else None."""
    method = node.op == "call_method" and node.target == "unbind"
    if not (method or (node.op == "call_function" and node.target is torch.unbind)):
        return None
    values = {"dim": 0, **dict(zip(("input", "dim"), node.args, strict=False)), **node.kwargs}
    if set(values) != {"input", "dim"} or not isinstance(values["dim"], int) or \
            not isinstance(values["input"], fx.Node):
        return None
    return values["dim"] if _parts_taken(node) else None


def _parts_taken(node: fx.Node) -> bool:
    """Every use of ``node`` is x[i] by a constant int (timm's cait: q, k, v = qkv[0],
    qkv[1], qkv[2] after a permute)."""
    return bool(node.users) and all(
        u.op == "call_function" and u.target is operator.getitem and u.args[0] is node and
        isinstance(u.args[1], int) and not isinstance(u.args[1], bool) for u in node.users)


def _unbind_of(graph: fx.Graph, node: fx.Node) -> fx.Node:
    """``node``'s parts x[i] taken from a new x.unbind(0) instead: the same tensors."""
    with graph.inserting_after(node):
        unbound = graph.call_method("unbind", (node, 0))
    for part in list(node.users):
        if part is not unbound:
            part.replace_input_with(node, unbound)
    return unbound


def _permutation(node: fx.Node) -> list[int] | None:
    """The dims of x.permute(*dims) / torch.permute(x, dims) when all are non-negative
    constants, else None."""
    method = node.op == "call_method" and node.target == "permute"
    if not (method or (node.op == "call_function" and node.target is torch.permute)) or \
            node.kwargs:
        return None
    dims = list(node.args[1:])
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = list(dims[0])
    if not dims or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                           for d in dims) or sorted(dims) != list(range(len(dims))):
        return None
    return dims


def _spell_out_unbind(graph: fx.Graph) -> None:
    """Part i of x.unbind(d) is x.select(d, i).  Where x is y.permute(p) used by the unbind
    alone and d is 0 (timm's qkv.reshape(B, N, 3, H, D).permute(2, 0, 3, 1, 4).unbind(0),
    whose permute moves the batch), part i is y.select(p[0], i).permute(the rest of p), so
    the batch stays first wherever p[1] is 0."""
    for node in list(graph.nodes):
        dim = _unbind_dim(node)
        if dim is None and _permutation(node) is not None and _parts_taken(node):
            dim, node = 0, _unbind_of(graph, node)  # qkv[0], qkv[1]: unbind(0)'s parts
        if dim is None:
            continue
        source = node.args[0] if node.args else node.kwargs["input"]
        perm = _permutation(source) if dim == 0 and len(source.users) == 1 else None
        if perm is not None:
            source, dim = source.args[0], perm[0]
            rest = [d - (d > perm[0]) for d in perm[1:]]
        for part in list(node.users):
            with graph.inserting_before(part):
                value = graph.call_method("select", (source, dim, part.args[1]))
                if perm is not None and rest != sorted(rest):
                    value = graph.call_method("permute", (value, *rest))
            part.replace_all_uses_with(value)
            graph.erase_node(part)
        removed = node.args[0] if node.args else node.kwargs["input"]
        graph.erase_node(node)
        if removed is not source and not removed.users:
            graph.erase_node(removed)


def _fixed_arguments(m: nn.Module, given: dict[str, Any]) -> dict[str, Any]:
    """fx's concrete_args for m's forward: every parameter after the input that its caller
    gives a constant (``given``) or that has a default, at that value (a netspec model is
    called with its input alone)."""
    try:
        parameters = list(inspect.signature(m.forward).parameters.values())
    except (TypeError, ValueError):
        return {}
    fixed = {}
    if parameters and isinstance(given.get(parameters[0].name), list):  # a list of inputs
        fixed[parameters[0].name] = [fx.PH] * len(given[parameters[0].name])
    for p in parameters[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or given.get(p.name) is TENSOR or \
                isinstance(given.get(p.name), SizesOf):  # traced as an input
            continue
        if isinstance(given.get(p.name), list) and TENSOR in given[p.name]:
            fixed[p.name] = [fx.PH] * len(given[p.name])  # a list of inputs (children_1, ...)
        elif p.name in given:
            fixed[p.name] = given[p.name]
        elif p.default is not p.empty:
            fixed[p.name] = p.default
    return fixed


def record_inputs(model: nn.Module, input_shape) -> dict[int, tuple]:
    """The input each module is first called with (its shape and dtype, by the module's id)
    when the model runs on zeros of the spec's input at batch 1; empty when it does not run
    so."""
    seen: dict[int, tuple] = {}

    def record(module, args):
        if args and isinstance(args[0], torch.Tensor) and id(module) not in seen:
            seen[id(module)] = (tuple(args[0].shape), args[0].dtype)

    from torch._subclasses.fake_tensor import FakeTensorMode

    hooks = [m.register_forward_pre_hook(record) for m in model.modules()]
    device = next((t.device for t in [*model.parameters(), *model.buffers()]), None)
    try:
        # shapes only: fake tensors (no arithmetic), or where an op has no fake kernel, a
        # real run
        for mode in (lambda: FakeTensorMode(allow_non_fake_inputs=True),
                     contextlib.nullcontext):
            seen.clear()
            try:
                with torch.no_grad(), mode():
                    model(torch.zeros(1, *input_shape, device=device or "cpu"))
                break
            except Exception:
                seen.clear()  # a model that does not run at this input: no sizes to compare
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def _run_values(m: nn.Module, graph: fx.Graph, given: tuple | None,
                constants: dict[str, Any] | None = None, shapes_only: bool = False,
                tensors: dict[str, tuple] | None = None) -> dict:
    """Each node's value in m's traced forward run on zeros of ``given``'s (shape, dtype),
    on the device of m's tensors, its other parameters at the constants it was traced with
    (``constants``: its caller's, else their defaults) or zeros of ``tensors``' (shape,
    dtype) by name (tensors its caller gives in place of sizes of them); empty where there
    is none or it does not run."""
    if given is None:
        return {}
    fixed = _fixed_arguments(m, constants or {})
    try:
        later = [p.name for p in list(inspect.signature(m.forward).parameters.values())[1:]
                 if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    except (TypeError, ValueError):
        later = []
    # fx's placeholders for the parameters fixed by concrete_args (*args, **kwargs aside)
    placeholders = sum(n.op == "placeholder" and not str(n.target).startswith("*")
                       for n in graph.nodes) - 1
    tensors = tensors or {}
    if placeholders > len(later) or any(k not in fixed and k not in tensors
                                        for k in later[:placeholders]):
        return {}
    device = next((t.device for t in [*m.parameters(), *m.buffers()]), torch.device("cpu"))
    rest = [fixed[k] if k in fixed else torch.zeros(tensors[k][0], dtype=tensors[k][1],
                                                     device=device)
            for k in later[:placeholders]]
    values: dict[fx.Node, Any] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            marks = n.meta.get(SIZE_ARGUMENTS) if n.op == "call_module" else None
            if marks:  # the child is given the sizes, as in torch, not their tensor
                args, kwargs = self.fetch_args_kwargs_from_env(n)
                args = [marks[i].kind(a.shape[d] for d in marks[i].dims) if i in marks else a
                        for i, a in enumerate(args)]
                kwargs = {k: marks[k].kind(a.shape[d] for d in marks[k].dims) if k in marks
                          else a for k, a in kwargs.items()}
                values[n] = self.call_module(n.target, tuple(args), kwargs)
            elif n.op == "get_attr" and BUFFER_ENTRY in n.meta:
                values[n] = self.made(n, super().run_node(n))
            else:
                values[n] = super().run_node(n)
            return values[n]

        def call_module(self, target: Any, args: tuple, kwargs: dict) -> Any:
            method = host_method(self.fetch_attr(target))  # the child standing for it
            if method is not None:
                return method(*args, **kwargs)
            return super().call_module(target, args, kwargs)

        def made(self, n: fx.Node, held: Any) -> Any:
            """An index buffer a rewrite reads as its op's (spell_out_chains): as that op
            makes it where the module holds it in another shape (timm's RelPosBias keeps
            its index flattened), so the op's function runs on it as in the spec."""
            from netspec.ops import torch_side

            name, args = n.meta[BUFFER_ENTRY]
            made = torch_side.make_buffer(name, args)
            if not isinstance(held, torch.Tensor) or tuple(held.shape) == tuple(made.shape) \
                    or held.numel() != made.numel():
                return held
            return held.reshape(made.shape)

    from torch._subclasses.fake_tensor import FakeTensorMode

    # shapes only: fake tensors, no arithmetic (sizes and which tensor is which stay)
    mode = FakeTensorMode(allow_non_fake_inputs=True) if shapes_only else \
        contextlib.nullcontext()
    quiet = logging.getLogger("torch._subclasses.fake_tensor")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # a module that refuses these sizes is no news
    try:
        with torch.no_grad(), mode:
            Recorder(fx.GraphModule(m, graph)).run(torch.zeros(given[0], dtype=given[1],
                                                               device=device), *rest)
    except Exception:
        return {}
    finally:
        quiet.setLevel(level)
    return values


def _forward_names(op: LayerType) -> list[str]:
    """The parameters of the forward of a module taking several tensors: one per port, or
    per group of ports passed as one (LSTMCell's hx), then Torch.forward_params."""
    ports = [op.inputs[k] for k, _ in op.grouped(list(op.inputs))]
    return [p.param or p.name for p in ports] + [k for k, _ in op.torch.forward_params]


def _port_values(op: LayerType, bound: dict[str, Any], where: str) -> dict[str, Any]:
    """The tensors a bound call gives its ports: a parameter passing several ports unpacked
    (hx = (h, c)), an optional one left out when it is None or not given."""
    values = {}
    for k, _ in op.grouped(list(op.inputs)):
        ports = op.members(op.inputs[k])
        name = ports[0].param or ports[0].name
        value = bound.get(name)
        if name not in bound or (value is None and ports[0].optional):
            continue
        if len(ports) == 1:
            values[ports[0].name] = value
        elif isinstance(value, (tuple, list)) and len(value) == len(ports):
            values.update(zip([p.name for p in ports], value, strict=True))
        else:
            raise ImportProblem(f"{where} is given {name}={value!r}; a spec passes {name} as "
                                f"a tuple of {len(ports)} tensors "
                                f"({', '.join(p.name for p in ports)})")
    return values


def _bind_module_call(node: fx.Node, op: LayerType, where: str) -> dict[str, Any]:
    """A call of a module taking several tensors, bound to its forward's parameters: the
    tensors of its ports, by port name; the other parameters set to anything a spec does not
    mean are refused."""
    spec = op.torch
    names = _forward_names(op)
    if len(node.args) > len(names):
        raise ImportProblem(f"{where} is called with {len(node.args)} positional arguments; "
                            f"its forward takes {', '.join(names)}")
    bound = dict(zip(names, node.args, strict=False))
    for key, value in node.kwargs.items():
        if key not in names:
            raise ImportProblem(f"{where} is called with the argument '{key}', which netspec "
                                "cannot express")
        bound[key] = value
    for key, default in spec.forward_params:
        value = bound.get(key, default)
        if isinstance(value, fx.Node) or (key not in spec.free_params and
                                          not same_value(value, default)):
            shown = f"a tensor (fx node '{value.name}')" if isinstance(value, fx.Node) else \
                repr(value)
            raise ImportProblem(f"{where} is called with {key}={shown}, which a spec cannot "
                                f"express (a spec calls it with {key}={default!r})")
    return _port_values(op, bound, where)


def _size_read(node: fx.Node, name: str | None, args: list, helpers: dict
               ) -> tuple[fx.Node | None, int | None] | None:
    """What a node reads of a tensor's size (see ``_Scope.helpers``), or None: no size."""
    if node.op == "call_method" and name == "size" and isinstance(args[0], fx.Node):
        dim = args[1] if len(args) > 1 else node.kwargs.get("dim")
        return args[0], dim if isinstance(dim, int) else None
    if name == "getattr" and len(args) == 2 and args[1] == "shape":
        return args[0], None
    if name == "getitem" and args[0] in helpers:
        source, dim = helpers[args[0]]
        whole = dim is None and source is not None and isinstance(args[1], int)
        return (source, args[1]) if whole else (None, None)
    nodes = [a for a in node.args if isinstance(a, fx.Node)]
    module = getattr(node.target, "__module__", "") if node.op == "call_function" else ""
    if module in ("_operator", "operator") and nodes and all(a in helpers for a in nodes):
        return None, None  # h * w, c // groups: arithmetic on sizes
    inputs = node.all_input_nodes
    if node.op == "call_function" and module not in TORCH_MODULES and inputs and \
            all(a in helpers for a in inputs):
        return None, None  # a library's function of sizes (_compute_pad_size_3d((t, h, w)))
    return None


def _size_of(tensor: Any, helpers: dict) -> Any:
    """size_of for FxCall.match: the dim of ``tensor`` whose size a value reads at run time
    (the batch size, dim 0, of any tensor: every tensor netspec follows is batch first),
    "computed" for another value computed in forward, None for a constant."""

    def size_of(value: Any) -> int | str | None:
        if not isinstance(value, fx.Node):
            return None
        source, dim = helpers.get(value, (None, None))
        if source is not None and isinstance(dim, int) and (source is tensor or dim == 0):
            return dim
        return "computed"

    return size_of


def _bind(params, args, kwargs, what, where) -> dict[str, Any]:
    names = [p for p, _ in params]
    if len(args) > len(names):
        raise ImportProblem(f"{where}: {what} has more arguments than netspec knows")
    values = dict(params)
    values.update(zip(names, args, strict=False))
    for k, v in kwargs.items():
        if k not in values:
            raise ImportProblem(f"{where}: {what} has the argument '{k}', which netspec "
                                "cannot express")
        values[k] = v
    for k, v in values.items():
        if v is REQUIRED:
            raise ImportProblem(f"{where}: {what} lacks '{k}'")
        if _holds_node(v):
            raise ImportProblem(f"{where}: {what} takes its '{k}' from a tensor computed in "
                                "forward; netspec arguments are constants")
    return values


def _order(entry: dict[str, Any]) -> dict[str, Any]:
    """Keys in the zoo's order: the type (or for a group, name, from, layers or branches),
    name, from."""
    keys = sorted(entry, key=lambda k: {"name": 1, "from": 2, "layers": 3}.get(k, 0))
    if "layers" in entry or "branches" in entry:
        keys = [k for k in ("name", "from", "inputs", "outputs", "layers", "branches")
                if k in entry]
    return {k: entry[k] for k in keys}


def _aux_hint(m: nn.Module) -> str:
    """Said only of a model with auxiliary heads switched on (GoogLeNet, Inception v3)."""
    if getattr(m, "aux_logits", False) is True:
        return (f" ({type(m).__name__} has aux_logits=True: its auxiliary heads; pass "
                "aux_logits=False)")
    return ""


def _nameable(name: str) -> bool:
    """Whether a child's name can be an entry's (block1-0 can: core.names.MODULE_NAME; a
    ModuleList's module by its key path, convs.3, where the list's name can)."""
    place = list_place(name)
    if place is not None:
        return _nameable(place[0])
    plain = name.replace("-", "_")
    return bool(MODULE_NAME.fullmatch(name)) and _safe_name(plain) == plain


def _safe_name(name: str) -> str:
    import keyword

    name = re.sub(r"[^A-Za-z0-9_]", "_", name).lstrip("_") or "op"
    if name[0].isdigit() or keyword.iskeyword(name) or keyword.issoftkeyword(name) or \
            name in MODULE_ATTRIBUTES or name == "input" or not IDENTIFIER.fullmatch(name):
        name = f"{name}_op" if not name[0].isdigit() else f"op_{name}"
    return name


def _builds_outputs(node: fx.Node) -> bool:
    """The namedtuple of the model's outputs (outputs.returned_values reads it)."""
    return namedtuple_call(node) and all(u.op == "output" for u in node.users)


def _has_state(m: nn.Module) -> bool:
    return any(True for _ in m.parameters()) or any(True for _ in m.buffers())


def _live(graph: fx.Graph) -> set[fx.Node]:
    """The nodes the output needs, with the in-place calls that change a tensor it needs
    (x.add_(pos), its result unused: it changes x)."""
    out = next(n for n in graph.nodes if n.op == "output")
    live, stack = set(), [out]
    while stack:
        while stack:
            n = stack.pop()
            if n in live:
                continue
            live.add(n)
            stack.extend(n.all_input_nodes)
        stack = [n for n in graph.nodes if n not in live and n.op == "call_method" and
                 _in_place(str(n.target)) and n.args and _viewed(n.args[0]) in live]
    return live


# what may return a view of its tensor: a change made through it changes that tensor
VIEWING = frozenset({"view", "reshape", "transpose", "permute", "narrow", "select", "expand",
                     "flatten", "unflatten", "unsqueeze", "squeeze", "contiguous", "getitem",
                     "view_as", "reshape_as", "t", "swapdims", "chunk", "split", "unbind",
                     "detach", "movedim", "diagonal", "as_strided"})


def _viewed(value: Any) -> Any:
    """The tensor ``value`` may be a view of, through calls that may return views."""
    while isinstance(value, fx.Node) and value.op in ("call_method", "call_function") and \
            value.args and isinstance(value.args[0], fx.Node) and \
            (value.target if value.op == "call_method" else
             getattr(value.target, "__name__", "")) in VIEWING:
        value = value.args[0]
    return value


def _in_place(method: str) -> bool:
    """A Tensor method that changes its tensor (add_, mul_), not a dunder."""
    return method.endswith("_") and not method.endswith("__")


# ----------------------------------------------------------------------------- the spec


def convert_model(model: nn.Module, input_shape: tuple[int, ...]
                  ) -> tuple[Importer, Converted]:
    """The model's entries (model in eval mode).  Where its eval forward leaves modules with
    parameters out (GoogLeNet's and Inception v3's aux heads), the model's own forward is
    traced again with the model (not its children) in training: the outputs it returns there
    besides the eval forward's become training_only, provided the eval forward is exactly
    the training one without what feeds only them (netspec/importer/outputs.py reads what a
    forward returns)."""
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


@dataclass
class Imported:
    data: dict[str, Any]  # the spec as YAML data
    expected: dict[str, dict[str, Any]]  # inferable arguments, by module path
    notes: list[str]
    model: nn.Module


def model_to_spec(model: nn.Module, input_shape=DEFAULT_INPUT, name: str | None = None) -> Imported:
    """A model -> spec data (netspec, name, input, layers).  Raises ImportProblem."""
    was_training = model.training
    model.eval()  # torchvision's aux heads and training-only branches stay out
    try:
        _refuse_single_layer(model)
        importer, converted = convert_model(model, tuple(input_shape))
        if converted.input_join is not None:
            raise ImportProblem("the model takes a list of tensors; netspec models take one")
    finally:
        model.train(was_training)
    spec_name = name or type(model).__name__
    if not IDENTIFIER.fullmatch(spec_name):
        spec_name = _safe_name(spec_name)
    data = {"netspec": 1, "name": spec_name, "input": list(input_shape),
            **outputs_data(converted), "layers": converted.entries}
    return Imported(data, importer.expected, importer.notes, model)


def _refuse_single_layer(model: nn.Module) -> None:
    op = layer_type_of(model)
    if op is not None:
        wrapper = "a module whose forward calls it" if op.takes_several else "nn.Sequential"
        raise ImportProblem(f"the model is a single {type(model).__name__} layer; wrap it in "
                            f"{wrapper} to import it")


# ----------------------------------------------------------------------------- YAML


def _flow(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=2**31 - 1,
                          allow_unicode=True).strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")].strip()
    return text


def _entry_lines(entry: dict[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for i, (key, value) in enumerate(entry.items()):
        lead = pad + ("- " if i == 0 else "  ")
        if key in ("layers", "branches"):
            lines.append(f"{lead}{key}:")
            for child in value:
                lines.extend(_entry_lines(child, indent + 4))
        elif value is None and key[:1].isupper():
            lines.append(f"{lead}{key}" + (":" if len(entry) > 1 else ""))
        else:
            lines.append(f"{lead}{key}: {_flow(value)}")
    return lines


def dumps(data: dict[str, Any], header: str = "") -> str:
    """Spec data as YAML laid out like the zoo's specs."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    for key in ("netspec", "name", "input", "returns"):
        if key in data:
            lines.append(f"{key}: {_flow(data[key])}")
    if isinstance(data.get("outputs"), dict):
        lines.append("outputs:")
        lines.extend(f"  {key}: {_flow(value)}" for key, value in data["outputs"].items())
    elif "outputs" in data:
        lines.append(f"outputs: {_flow(data['outputs'])}")
    lines.append("")
    lines.append("layers:")
    for entry in data["layers"]:
        lines.extend(_entry_lines(entry, 2))
    return "\n".join(lines) + "\n"
