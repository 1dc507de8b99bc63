"""`netspec import`: an existing ``nn.Module`` -> a spec, weight for weight.

Every module that is not a netspec layer type (the model, its ``nn.Sequential``\\ s, its own
classes) is traced on its own with ``torch.fx`` -- its direct children left as calls -- and
becomes a group whose entries are its forward graph: children in the order they are called,
``from:`` where the data flow is not the previous entry, and the functions netspec knows
(``+``, ``*``, ``torch.cat``, ``torch.flatten``, ``F.relu``, ...) as merges or parameterless
layers.  So module paths, and with them ``state_dict`` keys, are the original's.  Leaf
modules become layer entries whose arguments are read off the module's attributes, in the
layer type's declared argument list; each is checked by rebuilding it and comparing its
repr and state.  Whatever cannot be expressed raises ``ImportProblem`` naming the module
and the operation.

This module imports torch; only ``netspec import`` and specs with ``base:`` use it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from netspec.core.names import IDENTIFIER, MODULE_ATTRIBUTES
from netspec.ops import REGISTRY, LayerType
from netspec.ops.declare import REQUIRED, SPELLINGS, FxCall

DEFAULT_INPUT = (3, 224, 224)
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
TARGET = re.compile(rf"({_IDENT}(?:\.{_IDENT})*):({_IDENT})")
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class ImportProblem(Exception):
    """The model (or one of its modules or operations) cannot be written as a spec."""


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
    """(3, 3) -> 3 where the argument takes an int for 'the same in every dimension'."""
    types = arg.type.schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if isinstance(v, list) and v and "integer" in types and all(
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


def _transformer_args(m: nn.Module) -> dict[str, Any]:
    activation = getattr(m, "activation", None)
    name = {torch.nn.functional.relu: "relu", torch.nn.functional.gelu: "gelu"}.get(activation)
    if name is None:
        raise ImportProblem("its activation is not 'relu' or 'gelu'")
    return {"d_model": m.self_attn.embed_dim, "nhead": m.self_attn.num_heads,
            "dim_feedforward": m.linear1.out_features, "dropout": m.dropout.p,
            "activation": name, "layer_norm_eps": m.norm1.eps,
            "batch_first": m.self_attn.batch_first, "norm_first": m.norm_first,
            "bias": m.linear1.bias is not None}


SPECIAL_ARGS = {"TransformerEncoderLayer": _transformer_args}


def layer_type_of(m: nn.Module) -> LayerType | None:
    """The netspec layer type a torch.nn module is (None: not a torch.nn layer netspec has)."""
    cls = type(m)
    if not cls.__module__.startswith("torch.nn") or isinstance(m, CONTAINERS):
        return None
    lt = _MODULE_OPS.get(cls.__name__)
    return lt if lt is not None and not lt.takes_several else None


# module ops by the name of the torch class they build
_MODULE_OPS = {lt.torch.target.rpartition(".")[2]: lt for lt in REGISTRY.values()
               if lt.torch.module}


def leaf_args(m: nn.Module, lt: LayerType, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(arguments to write: non-default, not inferable; inferable values to expect)."""
    if lt.name in SPECIAL_ARGS:
        try:
            values = SPECIAL_ARGS[lt.name](m)
        except ImportProblem as exc:
            raise ImportProblem(f"{where}: {exc}") from None
    else:
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
    write, expect = {}, {}
    for arg in lt.args:
        if arg.name not in values:
            continue
        v = collapse_arg(arg, values[arg.name])
        if arg.infer is not None:
            expect[arg.name] = v
            continue
        if arg.default is not REQUIRED and same_value(v, arg.default):
            continue
        write[arg.name] = v
    _drop_kernel_stride(lt, write)
    # rebuilt with the values as the module keeps them ((1, 1), not 1: the same layer, but
    # another repr), leaving out what the spec leaves out
    _verify_leaf(m, lt, {k: values[k] for k in [*expect, *write]}, where)
    return write, expect


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
    {c.name for op in REGISTRY.values() if op.torch and op.torch.target.startswith("operator.")
     for c in op.fx} | {"getitem"}
)


def _op_name(node: fx.Node) -> tuple[str | None, str]:
    """(the name netspec looks up, how to name the operation in a message)."""
    if node.op == "call_method":
        return str(node.target), f"Tensor.{node.target}"
    target = node.target
    name = getattr(target, "__name__", None) or str(target)
    module = getattr(target, "__module__", None) or ""
    shown = f"{'operator' if module == '_operator' else module}.{name}".lstrip(".")
    if module not in TORCH_MODULES:
        return None, shown
    if module in ("_operator", "operator") and name not in OPERATOR_NAMES:
        return None, shown
    return name, shown


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
    input_cat_dim: int | None = None  # the input is a list of tensors concatenated on this dim


@dataclass
class Importer:
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)  # inferable, by qualname
    notes: list[str] = field(default_factory=list)

    def where(self, qual: str, m: nn.Module) -> str:
        kind = type(m).__name__
        return f"module '{qual}' ({kind})" if qual else f"the model ({kind})"

    def trace(self, m: nn.Module, qual: str) -> fx.Graph:
        class Children(fx.Tracer):
            def is_leaf_module(self, module: nn.Module, name: str) -> bool:
                return module is not m

        try:
            return Children().trace(m)
        except Exception as exc:
            why = str(exc).splitlines()[0] if str(exc) else ""
            raise ImportProblem(f"{self.where(qual, m)}: torch.fx cannot trace its forward "
                                f"({type(exc).__name__}: {why});"
                                " netspec imports models whose forward has no data-dependent "
                                "control flow") from None

    def convert(self, m: nn.Module, qual: str) -> Converted:
        """A non-leaf module -> the entries of its group (or of the whole spec)."""
        where = self.where(qual, m)
        graph = self.trace(m, qual)
        children = dict(m.named_children())
        state = {name: _has_state(c) for name, c in children.items()}
        used_names = set(children)
        items: list[Item] = []
        refs: dict[fx.Node, str] = {}  # node -> the entry (or 'input') that holds its value
        helpers: set[fx.Node] = set()  # x.size(0), x.shape: only to spell a flatten
        calls: dict[str, int] = {}
        live = _live(graph)
        input_cat_dim = None
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        output = None

        def fresh(base: str) -> str:
            name = _safe_name(base)
            k = 0
            candidate = name
            while candidate in used_names:
                k += 1
                candidate = f"{name}_{k}"
            used_names.add(candidate)
            return candidate

        def ref(value: Any, node: fx.Node, what: str) -> str:
            if not isinstance(value, fx.Node):
                raise ImportProblem(f"{where}: {what} (fx node '{node.name}') takes "
                                    f"{value!r} where netspec needs a tensor")
            if value in helpers or value not in refs:
                raise ImportProblem(f"{where}: {what} (fx node '{node.name}') uses "
                                    f"'{value.name}', which is not a tensor netspec follows")
            return refs[value]

        def add(data: dict, name: str | None, sources: list[str], node, stateful=False) -> str:
            digit = str(len(items))
            item = Item(data, name or digit, name is not None, sources, node, stateful)
            items.append(item)
            return item.ref

        consumed: set[fx.Node] = set()  # calls taken into a ModuleList's group
        for node in graph.nodes:
            if node in consumed:
                continue
            if node.op == "placeholder":
                if node is placeholders[0]:
                    refs[node] = "input"
                    users = list(node.users)
                    if len(users) == 1 and _is_cat(users[0]) and users[0].args[0] is node:
                        input_cat_dim = _cat_dim(users[0])  # forward(features: list) -> cat
                        refs[users[0]] = "input"
                elif node.users:
                    raise ImportProblem(f"{where}: its forward takes more than one input "
                                        f"('{node.target}'); netspec modules take one tensor")
                continue
            if node.op == "output":
                output = node.args[0]
                if not isinstance(output, fx.Node):
                    raise ImportProblem(f"{where}: its forward returns {type(output).__name__} "
                                        "of several values; netspec modules return one tensor "
                                        "(for GoogLeNet, pass aux_logits=False)")
                continue
            if node in refs:  # absorbed already (the cat of a list input)
                continue
            if node.op == "get_attr":
                if node.users:
                    raise ImportProblem(f"{where}: its forward uses the tensor "
                                        f"'{qual + '.' if qual else ''}{node.target}' directly "
                                        f"(fx node '{node.name}'); netspec layers own their "
                                        "parameters")
                continue
            if node.op == "call_module":
                target = str(node.target)
                if "." in target:
                    head = target.split(".", 1)[0]
                    if head in calls:
                        raise ImportProblem(f"{where}: its forward calls the modules of "
                                            f"'{head}' in more than one run")
                    calls[head] = 1
                    run = self.container_run(node, head, children.get(head), qual, where)
                    consumed.update(run[1:])
                    data = {"layers": self.run_entries(run, children[head], head, qual, where)}
                    refs[run[-1]] = add(data, head, [ref(node.args[0], node, f"'{target}'")],
                                        node, True)
                    continue
                child = children[target]
                child_qual = f"{qual}.{target}" if qual else target
                calls[target] = calls.get(target, 0) + 1
                if calls[target] > 1:
                    if state[target]:
                        raise ImportProblem(f"{self.where(child_qual, child)} is called "
                                            f"{calls[target]} times in the forward of "
                                            f"{where.replace('module ', '')}: shared weights, "
                                            "which a spec cannot express")
                    name = fresh(f"{target}_{calls[target] - 1}")
                else:
                    name = target
                data, cat_dim = self.child_entry(child, child_qual)
                if len(node.args) != 1 or node.kwargs:
                    raise ImportProblem(f"{self.where(child_qual, child)} is called with "
                                        f"{len(node.args) + len(node.kwargs)} arguments; "
                                        "netspec modules take one tensor")
                arg = node.args[0]
                if isinstance(arg, (list, tuple)):
                    if cat_dim is None:
                        raise ImportProblem(f"{self.where(child_qual, child)} takes a list of "
                                            "tensors; netspec modules take one tensor")
                    sources = [ref(a, node, f"the call of '{target}'") for a in arg]
                    if len(sources) > 1:
                        cat = add({"Concat": {"dim": cat_dim} if cat_dim != 1 else None},
                                  fresh(f"cat_{target}"), sources, None)
                        sources = [cat]
                else:
                    if cat_dim is not None:
                        raise ImportProblem(f"{self.where(child_qual, child)} concatenates its "
                                            "input as a list of tensors, but is given one tensor")
                    sources = [ref(arg, node, f"the call of '{target}'")]
                if not name.isdigit() and _safe_name(name) != name:
                    raise ImportProblem(f"{self.where(child_qual, child)}: its name '{name}' "
                                        "cannot name a spec entry (a Python identifier that "
                                        "is not an nn.Module attribute or keyword, not "
                                        "starting with '_')")
                refs[node] = add(data, None if name.isdigit() else name, sources, node,
                                 state[target])
                if name.isdigit() and refs[node] != name:
                    raise ImportProblem(f"{self.where(child_qual, child)}: in a spec, an entry "
                                        f"without a name is named by its position, but '{name}' "
                                        f"would be entry {refs[node]} of {where}")
                continue
            # call_function / call_method
            if node not in live:
                continue  # a value computed and never used (x.size() for a print, ...)
            self.function(node, where, refs, helpers, add, fresh, ref)

        if output is None or output not in refs:
            raise ImportProblem(f"{where}: its forward returns nothing netspec follows")
        out = refs[output]
        # entries after the output that nothing uses and that hold no state can go
        while items and items[-1].ref != out and not items[-1].stateful and \
                items[-1].node is not None and items[-1].node not in live:
            items.pop()
        if out == "input":
            add({"Identity": None}, fresh("identity"), ["input"], None)
        elif not items or items[-1].ref != out:
            raise ImportProblem(f"{where}: its output ('{out}') is not the last thing its "
                                "forward computes; a netspec list returns its last entry")
        uncalled = [n for n, c in children.items() if n not in calls and state[n]]
        if uncalled:
            names = ", ".join(f"'{qual + '.' if qual else ''}{n}' ({type(children[n]).__name__})"
                              for n in uncalled)
            raise ImportProblem(f"{where}: {names} ha{'s' if len(uncalled) == 1 else 've'} "
                                "parameters but the forward (in eval mode) does not use "
                                f"{'it' if len(uncalled) == 1 else 'them'}; a spec has only "
                                "modules that data flows through (for GoogLeNet, pass "
                                "aux_logits=False)")
        unused = [n for n, c in children.items() if n not in calls and not state[n]]
        if unused:
            self.notes.append(f"{where}: unused parameterless module(s) left out: "
                              + ", ".join(unused))
        return Converted(self.entries(items, where), input_cat_dim)

    def container_run(self, node, head, container, qual, where) -> list[fx.Node]:
        """``for layer in self.layers: x = layer(x)`` over a ModuleList or ModuleDict: the
        chain of calls, which becomes a group named after the container."""
        target = str(node.target)
        if not isinstance(container, (nn.ModuleList, nn.ModuleDict, nn.Sequential)) or \
                target.count(".") != 1:
            raise ImportProblem(f"{where}: its forward calls '{target}', a module inside a "
                                "child, directly; netspec expresses calls of direct children "
                                "and chains over a ModuleList or ModuleDict")
        run, current = [node], node
        while len(current.users) == 1:
            user = next(iter(current.users))
            if user.op != "call_module" or not str(user.target).startswith(head + ".") or \
                    user.args != (current,) or user.kwargs:
                break
            run.append(user)
            current = user
        return run

    def run_entries(self, run, container, head, qual, where) -> list[dict[str, Any]]:
        group_qual = f"{qual}.{head}" if qual else head
        names = [str(n.target).split(".", 1)[1] for n in run]
        missing = [n for n, c in container.named_children() if n not in names and _has_state(c)]
        if missing or len(set(names)) != len(names):
            raise ImportProblem(f"{where}: its forward calls the modules of '{head}' as "
                                f"{' -> '.join(names)}; a spec group calls each of its "
                                "modules once, in a chain")
        entries = []
        for i, (n, call) in enumerate(zip(names, run, strict=True)):
            if len(call.args) != 1 or not isinstance(call.args[0], fx.Node):
                raise ImportProblem(f"{where}: '{call.target}' is not called with one tensor")
            if n.isdigit() and int(n) != i:
                raise ImportProblem(f"{where}: calls '{head}.{n}' as the {i}th module of "
                                    f"'{head}'; an entry without a name is named by its "
                                    "position")
            if not n.isdigit() and _safe_name(n) != n:
                raise ImportProblem(f"{where}: the name '{group_qual}.{n}' cannot name a spec "
                                    "entry (a Python identifier, not an nn.Module attribute)")
            data, cat_dim = self.child_entry(container.get_submodule(n), f"{group_qual}.{n}")
            if cat_dim is not None:
                raise ImportProblem(f"{where}: '{call.target}' takes a list of tensors")
            entries.append(_order({**data, **({} if n.isdigit() else {"name": n})}))
        return entries

    def child_entry(self, child: nn.Module, qual: str) -> tuple[dict[str, Any], int | None]:
        lt = layer_type_of(child)
        if lt is not None:
            write, expect = leaf_args(child, lt, self.where(qual, child))
            if expect:
                self.expected[qual] = expect
            return {lt.name: write or None}, None
        if type(child).__module__.startswith("torch.nn") and not isinstance(child, CONTAINERS):
            raise ImportProblem(f"{self.where(qual, child)}: torch.nn.{type(child).__name__} "
                                "is not a netspec layer type (see `netspec layers`)")
        converted = self.convert(child, qual)
        return {"layers": converted.entries}, converted.input_cat_dim

    def entries(self, items: list[Item], where: str) -> list[dict[str, Any]]:
        out = []
        previous = "input"
        for item in items:
            entry = dict(item.data)
            if item.named:
                entry["name"] = item.ref
            op = REGISTRY.get(next(iter(item.data)))
            merge = op is not None and op.takes_several
            if merge or item.sources != [previous]:
                for s in item.sources:
                    if s.isdigit():
                        raise ImportProblem(f"{where}: entry {s} (a child named '{s}') is used "
                                            "out of order, and from: can only name entries "
                                            "with identifier names")
                entry["from"] = item.sources[0] if len(item.sources) == 1 else list(item.sources)
            out.append(_order(entry))
            previous = item.ref
        return out

    def function(self, node, where, refs, helpers, add, fresh, ref) -> None:
        name, shown = _op_name(node)
        what = f"operation {shown} (fx node '{node.name}')"
        args, kwargs = list(node.args), dict(node.kwargs)
        if (node.op == "call_method" and name == "size") or (
                name == "getattr" and len(args) == 2 and args[1] == "shape"):
            helpers.add(node)
            return
        if name == "getitem":
            source = args[0]
            if source in helpers:
                helpers.add(node)
                return
            if isinstance(source, fx.Node) and source.op == "call_module" and \
                    source in refs and args[1] == _flow_index(source):
                refs[node] = refs[source]  # (output, state)[0] of an LSTM: its output flows on
                return
            raise ImportProblem(f"{where}: {what}: indexing is not expressible in a spec")
        if name in ALIASES and node.op == "call_method" and len(args) == 1 and not kwargs:
            refs[node] = ref(args[0], node, what)
            return
        spelling = _spelling(name)
        if spelling is None:
            pass
        elif spelling[0].takes_several:
            self.merge(node, spelling[0], args, kwargs, where, what, refs, add, fresh, ref)
            return
        elif spelling[1].match is not None:
            written = spelling[1].match(args[1:], kwargs, lambda v: v in helpers)
            if isinstance(written, str):
                raise ImportProblem(f"{where}: {what} {written}")
            refs[node] = add({spelling[0].name: written or None}, fresh(node.name),
                             [ref(args[0], node, what)], node)
            return
        elif spelling[1].sets:
            if len(args) == 1 and not kwargs:
                refs[node] = add({spelling[0].name: dict(spelling[1].sets)}, fresh(node.name),
                                 [ref(args[0], node, what)], node)
                return
        else:
            lt, params = spelling[0], list(spelling[1].params)
            values = _bind(params, args[1:], kwargs, what, where)
            write = {}
            for pname, default in params:
                v = plain_value(values[pname])
                if pname in lt.arg_by_name:
                    arg = lt.arg_by_name[pname]
                    v = collapse_arg(arg, v)
                    if arg.default is REQUIRED or not same_value(v, arg.default):
                        write[pname] = v
                elif pname not in IGNORED and not same_value(v, default):
                    raise ImportProblem(f"{where}: {what} has {pname}={v!r}, which "
                                        f"{lt.name} cannot express")
            _drop_kernel_stride(lt, write)
            refs[node] = add({lt.name: write or None}, fresh(node.name),
                             [ref(args[0], node, what)], node)
            return
        raise ImportProblem(f"{where}: {what} has no netspec equivalent (netspec expresses "
                            "torch.nn layers, +, *, torch.cat, flatten/view and the "
                            "torch.nn.functional forms of its layers)")

    def merge(self, node, op, args, kwargs, where, what, refs, add, fresh, ref) -> None:
        if op.torch.inputs == "list":  # f([a, b], dim): one tensor list, then call_args
            call = next(c for c in op.fx if c.name == _op_name(node)[0])
            tensors = args[0] if args else kwargs.get("tensors")
            values = {k: args[i + 1] if len(args) > i + 1 else kwargs.get(k, default)
                      for i, (k, default) in enumerate(call.params)}
            if not isinstance(tensors, (list, tuple)) or \
                    not all(isinstance(v, int) for v in values.values()):
                raise ImportProblem(f"{where}: {what}: netspec concatenates a list of tensors "
                                    "along a fixed dim")
            sources = [ref(t, node, what) for t in tensors]
            if len(sources) == 1:
                refs[node] = sources[0]
                return
            write = {k: v for k, v in values.items()
                     if not same_value(v, op.arg_by_name[k].default)}
            refs[node] = add({op.name: write or None}, fresh(node.name), sources, node)
            return
        call = next(c for c in op.fx if c.name == _op_name(node)[0])
        defaults = dict(call.params)
        if len(args) != 2 or any(k not in defaults or v != defaults[k]
                                 for k, v in kwargs.items()):
            raise ImportProblem(f"{where}: {what} with arguments other than two tensors")
        if not all(isinstance(a, fx.Node) for a in args):
            constant = next(a for a in args if not isinstance(a, fx.Node))
            raise ImportProblem(f"{where}: {what} with the constant {constant!r}; netspec "
                                f"{op.verb} tensors only")
        sources = [ref(a, node, what) for a in args]
        refs[node] = add({op.name: None}, fresh(node.name), sources, node)


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
        if isinstance(v, fx.Node):
            raise ImportProblem(f"{where}: {what} takes its '{k}' from a tensor computed in "
                                "forward; netspec arguments are constants")
    return values


def _order(entry: dict[str, Any]) -> dict[str, Any]:
    """Keys in the zoo's order: the type (or for a group, name, from, layers), name, from."""
    keys = sorted(entry, key=lambda k: {"name": 1, "from": 2, "layers": 3}.get(k, 0))
    if "layers" in entry:
        keys = [k for k in ("name", "from", "layers") if k in entry]
    return {k: entry[k] for k in keys}


def _safe_name(name: str) -> str:
    import keyword

    name = re.sub(r"[^A-Za-z0-9_]", "_", name).lstrip("_") or "op"
    if name[0].isdigit() or keyword.iskeyword(name) or keyword.issoftkeyword(name) or \
            name in MODULE_ATTRIBUTES or name == "input" or not IDENTIFIER.fullmatch(name):
        name = f"{name}_op" if not name[0].isdigit() else f"op_{name}"
    return name


def _has_state(m: nn.Module) -> bool:
    return any(True for _ in m.parameters()) or any(True for _ in m.buffers())


def _live(graph: fx.Graph) -> set[fx.Node]:
    out = next(n for n in graph.nodes if n.op == "output")
    live, stack = set(), [out]
    while stack:
        n = stack.pop()
        if n in live:
            continue
        live.add(n)
        stack.extend(n.all_input_nodes)
    return live


def _is_cat(node: fx.Node) -> bool:
    return node.op == "call_function" and getattr(node.target, "__name__", "") in (
        "cat", "concat", "concatenate")


def _cat_dim(node: fx.Node) -> int:
    return node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)


def _flow_index(node: fx.Node) -> int | None:
    """The tuple element of a module call that flows on (an LSTM's output: 0), or None when
    the module returns one tensor."""
    module = node.graph.owning_module
    try:
        child = module.get_submodule(str(node.target)) if module is not None else None
    except AttributeError:
        child = None
    if child is None:
        return 0
    lt = layer_type_of(child)
    return lt.flow_index if lt is not None and lt.torch.returns is not None else None


# ----------------------------------------------------------------------------- the spec


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
    importer = Importer()
    try:
        if layer_type_of(model) is not None:
            raise ImportProblem(f"the model is a single {type(model).__name__} layer; wrap it "
                                "in nn.Sequential to import it")
        converted = importer.convert(model, "")
        if converted.input_cat_dim is not None:
            raise ImportProblem("the model takes a list of tensors; netspec models take one")
        entries = converted.entries
    finally:
        model.train(was_training)
    spec_name = name or type(model).__name__
    if not IDENTIFIER.fullmatch(spec_name):
        spec_name = _safe_name(spec_name)
    data = {"netspec": 1, "name": spec_name, "input": list(input_shape), "layers": entries}
    return Imported(data, importer.expected, importer.notes, model)


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
        if key == "layers":
            lines.append(f"{lead}layers:")
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
    for key in ("netspec", "name", "input"):
        if key in data:
            lines.append(f"{key}: {_flow(data[key])}")
    lines.append("")
    lines.append("layers:")
    for entry in data["layers"]:
        lines.extend(_entry_lines(entry, 2))
    return "\n".join(lines) + "\n"
