"""A buffer of one value (state that is not learnt): timm's BEiT keeps the key's bias as a
non-persistent buffer of zeros between the learnt query and value biases
(torch.cat((q_bias, k_bias, v_bias))).

Like a Parameter it takes no input and has no batch dimension; ``shape`` is its whole
shape.  persistent: whether it is in the state_dict (register_buffer's persistent)."""

from __future__ import annotations

import math
from typing import Any

from netspec.ops.declare import Arg, Args, Bool, Code, Draw, Float, Output, Shape, Torch, layer
from netspec.ops.parameter import SHAPE


def _shape_of(values: Any) -> list[int] | None:
    """The shape of a nested list of numbers (None where it is ragged or empty)."""
    if not isinstance(values, list):
        return []
    if not values:
        return None
    shapes = [_shape_of(v) for v in values]
    if shapes[0] is None or any(s != shapes[0] for s in shapes):
        return None
    return [len(values), *shapes[0]]


def _flat(values: Any) -> list:
    return [x for v in values for x in _flat(v)] if isinstance(values, list) else [values]


def _read(values: Any, persistent: bool) -> dict[str, Any] | None:
    """A buffer holding one value everywhere: its shape and that value."""
    shape = _shape_of(values)
    if not shape:  # a scalar buffer, or ragged
        return None
    flat = _flat(values)
    first = flat[0]
    if not isinstance(first, float) or math.isnan(first) or any(v != first for v in flat) or \
            math.copysign(1.0, first) != math.copysign(1.0, flat[-1]):
        return None
    args: dict[str, Any] = {"shape": shape}
    if first != 0.0 or math.copysign(1.0, first) < 0:
        args["value"] = first
    if not persistent:
        args["persistent"] = False
    return args


def _source(kwargs: dict) -> str:
    shape = "(" + ", ".join(str(int(s)) for s in kwargs["shape"]) + \
        ("," if len(kwargs["shape"]) == 1 else "") + ")"
    value = float(kwargs.get("value", 0.0))
    return f"torch.zeros({shape})" if value == 0.0 and math.copysign(1.0, value) > 0 else \
        f"torch.full({shape}, {value!r})"


@layer("ConstantBuffer", Arg("shape", SHAPE), Arg("value", Float(), 0.0),
       Arg("persistent", Bool, True),
       family="parameter", inputs=(), outputs=(Output(dtype="float32", batched=False),),
       torch=Torch("torch.full", module=False, parameter=True, buffer=True,
                   persistent="persistent",
                   arguments=lambda values, x: (tuple(values["shape"]),
                                                float(values["value"]))),
       buffers=lambda a, shapes: {"float32": math.prod(a.shape)},
       code=Code(tensor=_source),
       draw=Draw(key_args=lambda kw: f"value {kw.get('value', 0.0):g}"), read_buffer=_read)
def constant_buffer(a: Args, shapes: list) -> Shape:
    """A float32 buffer of the given shape, every element ``value`` (torch.full), not
    learnt: BEiT's k_bias (zeros, not persistent)."""
    return tuple(a.shape)
