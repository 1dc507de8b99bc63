"""Learnable tensors used in forward: a class token, a position embedding, a layer scale.

A Parameter entry takes no input.  Its output is the tensor itself, with no batch
dimension: ``shape`` is the whole shape torch stores (as in the state_dict), and
elementwise ops broadcast it against a batch exactly as torch does
(``x + self.pos_embedding``, ``self.layer_scale * x``).  It is registered on the module
that holds its list, under its name, so its state_dict key is the reference's
(``encoder.pos_embedding``)."""

from __future__ import annotations

import math

from netspec.ops.declare import (
    MAX_DIM,
    Arg,
    Args,
    ArgType,
    Bool,
    Code,
    Draw,
    Enum,
    Float,
    Output,
    Shape,
    ShapeError,
    Torch,
    layer,
)

SHAPE = ArgType({"type": "array", "minItems": 1, "maxItems": 8,
                 "items": {"type": "integer", "minimum": 1, "maximum": MAX_DIM}},
                "a list of sizes (the tensor's whole shape, as torch stores it)",
                tuple_for_torch=True)
# how the tensor starts (torch.nn.init's functions of the same names, trailing _ left off)
INITS = ("zeros", "ones", "normal", "trunc_normal", "uniform", "constant")
_USES = {"normal": ("mean", "std"), "trunc_normal": ("mean", "std", "a", "b"),
         "uniform": ("a", "b"), "constant": ("value",)}


def _params(a: Args, shapes: list) -> int:
    return math.prod(a.shape)


def _key_args(kwargs: dict) -> str:
    """'normal, std 0.02': how it starts (its shape is on the box already)."""
    init = kwargs.get("init", "zeros")
    used = [f"{k} {kwargs[k]}" for k in _USES.get(init, ()) if k in kwargs]
    return ", ".join([init, *used])


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else repr(int(value))


def tensor_source(kwargs: dict) -> str:
    """The expression generated code makes the tensor with, as torchvision writes it:
    torch.zeros((1, 1, 768)), torch.empty((1, 197, 768)).normal_(std=0.02)."""
    shape = "(" + ", ".join(str(int(s)) for s in kwargs["shape"]) + \
        ("," if len(kwargs["shape"]) == 1 else "") + ")"
    init = kwargs.get("init", "zeros")
    if init in ("zeros", "ones"):
        return f"torch.{init}({shape})"
    if init == "constant":
        return f"torch.full({shape}, {_number(kwargs.get('value', 0.0))})"
    if init == "uniform":  # Tensor.uniform_(from=0, to=1): positional, as from is a keyword
        low, high = kwargs.get("a"), kwargs.get("b")
        return (f"torch.empty({shape}).uniform_({_number(0 if low is None else low)}, "
                f"{_number(1 if high is None else high)})")
    defaults = {"mean": 0.0, "std": 1.0, "a": None, "b": None}
    used = [k for k in _USES[init] if kwargs.get(k, defaults[k]) != defaults[k]]
    args = ", ".join(f"{k}={_number(kwargs[k])}" for k in used)
    if init == "trunc_normal":
        return f"nn.init.trunc_normal_(torch.empty({shape}){', ' + args if args else ''})"
    return f"torch.empty({shape}).{init}_({args})"


@layer("Parameter", Arg("shape", SHAPE), Arg("init", Enum(*INITS), "zeros"),
       Arg("mean", Float(), 0.0), Arg("std", Float(minimum=0), 1.0),
       Arg("a", Float().nullable(), None), Arg("b", Float().nullable(), None),
       Arg("value", Float(), 0.0), Arg("requires_grad", Bool, True),
       family="parameter", inputs=(), outputs=(Output(dtype="float32", batched=False),),
       torch=Torch("torch.nn.Parameter", module=False, parameter=True), params=_params,
       code=Code(tensor=tensor_source), draw=Draw(key_args=_key_args))
def parameter(a: Args, shapes: list) -> Shape:
    """nn.Parameter: a learnable tensor of the given shape, initialised by init."""
    unused = [k for k in ("mean", "std", "a", "b", "value")
              if k in a.given and k not in _USES.get(a.init, ())]
    if unused:
        raise ShapeError(f"{unused[0]} is not used by init {a.init!r} (it uses "
                         f"{', '.join(_USES.get(a.init, ())) or 'nothing'})", unused[0])
    if a.init == "uniform" and a.values.get("a") is not None and a.values.get("b") is not None \
            and a.a > a.b:
        raise ShapeError(f"uniform needs a <= b, got a {a.a} and b {a.b}", "a")
    return tuple(a.shape)
