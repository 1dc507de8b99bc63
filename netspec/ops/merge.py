"""Merge operations for branching networks: Add, Mul, Sub, Div, Pow, Matmul, Concat, Stack,
CropTo.

They take ``from: [a, b, ...]``; the rule gets the list of incoming sample shapes.  In a
built model they are plain functions in forward (``x + identity``, ``torch.cat``), as in
torchvision, so they add no modules, parameters or state_dict keys.  The elementwise ones
also take one tensor and a number, as torch's ``other: Tensor | Number`` (``x * 0.125``,
``x ** 2``), and their output dtype is torch's type promotion of the operands."""

from __future__ import annotations

import math
from dataclasses import replace

from netspec.ops.declare import (
    DEFAULT_FLOAT,
    INT_DTYPES,
    Arg,
    Args,
    Code,
    Dim,
    Draw,
    Enum,
    FxCall,
    Number,
    Port,
    Shape,
    ShapeError,
    Torch,
    batched_dim,
    fmt,
    layer,
    numel,
    result_type,
    torch_side_source,
)

# One tensor list or several tensors of any dtype (they must agree) and any rank
_TENSORS = (Port("tensors", dtype="any", min_rank=0, variadic=2),)
_ALPHA = (("alpha", 1),)
# the number that may stand in for the second tensor (x * 2)
_OTHER = Arg("other", Number.nullable(), None)
# ...the variadic tensors of Add and Mul: one tensor and the number
_TENSORS_OR_NUMBER = (Port("tensors", dtype="any", min_rank=0, variadic=2, scalar="other"),)


def _broadcast(a: Args, shapes: list[Shape], verb: str) -> Shape:
    """Equal ranks, each dim equal or 1; ``verb`` says what could not be done to inputs {0}
    and {1} ("add {0} and {1}")."""
    if len(shapes) == 1:  # one tensor and a number: the tensor's shape
        return shapes[0]
    first = shapes[0]
    for shape in shapes[1:]:
        if len(shape) != len(first) or any(
            p != q and p != 1 and q != 1 for p, q in zip(first, shape, strict=True)
        ):
            what = verb.format(a.describe(0), a.describe(shapes.index(shape)))
            raise ShapeError(f"cannot {what} (shapes must be equal, or 1 where they differ)")
    return tuple(max(dims) for dims in zip(*shapes, strict=True))


def _promoted(a: Args, dtypes: list[str]) -> str:
    """torch's type promotion of the tensors and the number (int tensor * 0.5 is float32)."""
    return result_type(dtypes, a.values.get("other"))


_INT_BITS = {"int32": 32, "int64": 64}


def _divided(a: Args, dtypes: list[str]) -> str:
    """True division gives a float (int / int is float32); rounding keeps the promoted type.
    An integer divisor torch converts to the int dtype (wrapping), and refuses it if that
    makes it 0."""
    out = result_type(dtypes, a.other)
    if a.rounding_mode is None:
        return DEFAULT_FLOAT if out in INT_DTYPES else out
    if out in INT_DTYPES and isinstance(a.other, int) and a.other % 2 ** _INT_BITS[out] == 0:
        wrapped = "" if a.other == 0 else f" ({a.other} wraps to 0 in {out})"
        raise ShapeError(f"rounding_mode '{a.rounding_mode}' divides {out} by the integer "
                         f"{a.other}{wrapped}: torch raises ZeroDivisionError", "other")
    return out


add_fx = (FxCall("add", _ALPHA), FxCall("iadd", _ALPHA), FxCall("add_", _ALPHA))


@layer("Add", _OTHER, family="merge", inputs=_TENSORS_OR_NUMBER,
       torch=Torch("operator.add", module=False, inputs="fold", inplace="operator.iadd",
                   commutative=True),
       code=Code(infix=" + "), draw=Draw(symbol="+"), verb="adds", dtype=_promoted, fx=add_fx)
def add(a: Args, shapes: list[Shape]) -> Shape:
    """Elementwise sum of the inputs (a residual shortcut), or of one input and other."""
    return _broadcast(a, shapes, "add {0} and {1}")


@layer("Mul", _OTHER, family="merge", inputs=_TENSORS_OR_NUMBER,
       torch=Torch("operator.mul", module=False, inputs="fold", inplace="operator.imul",
                   commutative=True),
       code=Code(infix=" * "), draw=Draw(symbol="×"), verb="multiplies", dtype=_promoted,
       fx=(FxCall("mul", _ALPHA), FxCall("imul", _ALPHA), FxCall("mul_", _ALPHA)))
def mul(a: Args, shapes: list[Shape]) -> Shape:
    """Elementwise product of the inputs (gating, squeeze-and-excitation), or of one input
    and other (attention's q * scale)."""
    return _broadcast(a, shapes, "multiply {0} and {1}")


@layer("Sub", _OTHER, family="merge",
       inputs=(Port(dtype="any", min_rank=0, doc="what to subtract from"),
               Port("other", dtype="any", min_rank=0, doc="what to subtract", scalar="other")),
       torch=Torch("operator.sub", module=False, inputs="fold", inplace="operator.isub"),
       code=Code(infix=" - "), draw=Draw(symbol="−"), verb="subtracts", dtype=_promoted,
       fx=(FxCall("sub", _ALPHA), FxCall("isub", _ALPHA), FxCall("sub_", _ALPHA)))
def sub(a: Args, shapes: list[Shape]) -> Shape:
    """Elementwise difference of two inputs, the first minus the second (or other)."""
    return _broadcast(a, shapes, "subtract {0} and {1}")


_ROUNDING = (("rounding_mode", None),)


@layer("Div", _OTHER, Arg("rounding_mode", Enum("trunc", "floor").nullable(), None,
                          keyword_only=True), family="merge",
       inputs=(Port(dtype="any", min_rank=0, doc="the dividend"),
               Port("other", dtype="any", min_rank=0, doc="the divisor", scalar="other")),
       torch=Torch("torch.div", module=False, keywords=("rounding_mode",), broadcasts=True),
       code=Code(call="torch.div", infix=" / "), draw=Draw(symbol="÷"), verb="divides",
       dtype=_divided,
       fx=(FxCall("div", _ROUNDING), FxCall("truediv"), FxCall("div_", _ROUNDING),
           FxCall("itruediv"), FxCall("true_divide"),
           FxCall("floordiv", sets=(("rounding_mode", "floor"),)),
           FxCall("floor_divide", sets=(("rounding_mode", "floor"),))))
def div(a: Args, shapes: list[Shape]) -> Shape:
    """torch.div: the first input divided by the second (or by other), elementwise; true
    division unless rounding_mode is 'trunc' or 'floor'."""
    return _broadcast(a, shapes, "divide {0} by {1}")


# the largest finite value of a float dtype torch converts a pow exponent to; float32 and
# float64 take any Python number
_FLOAT_MAX = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38}
_INT_MAX = {"int32": 2**31 - 1, "int64": 2**63 - 1}


def _powered(a: Args, dtypes: list[str]) -> str:
    """The promoted dtype; a number exponent must fit the base's dtype, and an int base
    takes no negative int exponent."""
    out = result_type(dtypes, a.exponent)
    e = a.exponent
    if e is None or (isinstance(e, float) and math.isnan(e)):  # a tensor exponent, or nan
        return out
    if out in INT_DTYPES and e < 0:
        raise ShapeError(f"exponent {e}: torch does not raise {out} to a negative integer "
                         "power (write exponent as a float, e.g. -1.0, for a float result)",
                         "exponent")
    limit = _INT_MAX.get(out, _FLOAT_MAX.get(out))
    if limit is not None and not math.isinf(e) and abs(e) > limit:
        raise ShapeError(f"exponent {e} does not fit {out} (at most {limit:g}); torch "
                         "converts it to the input's dtype", "exponent")
    return out


@layer("Pow", Arg("exponent", Number.nullable(), None), family="merge",
       inputs=(Port(dtype="any", min_rank=0, doc="the base"),
               Port("exponent", dtype="any", min_rank=0, doc="the exponent",
                    scalar="exponent")),
       torch=Torch("torch.pow", module=False, broadcasts=True), code=Code(infix=" ** "),
       draw=Draw(symbol="^"), verb="raises", dtype=_powered,
       fx=(FxCall("pow"), FxCall("ipow"), FxCall("pow_")))
def pow_(a: Args, shapes: list[Shape]) -> Shape:
    """torch.pow: the first input to the power of the second (or of exponent),
    elementwise."""
    return _broadcast(a, shapes, "raise {0} to the power {1}")


def _matmul_macs(a: Args, shapes: list[Shape], y: Shape) -> int:
    """Per sample: every output element sums k products (FlopCounterMode counts 2 flops
    for each, broadcast batch dims included)."""
    if not isinstance(shapes, list) or y is None:
        return 0
    return numel(y) * shapes[0][-1]


@layer("Matmul", family="merge",
       inputs=(Port(dtype="any", min_rank=0, doc="the left matrices"),
               Port("other", dtype="any", min_rank=0, doc="the right matrices")),
       torch=Torch("torch.matmul", module=False), code=Code(call="torch.matmul", infix=" @ "),
       verb="multiplies", macs=_matmul_macs,
       fx=(FxCall("matmul"), FxCall("bmm")))
def matmul(a: Args, shapes: list[Shape]) -> Shape:
    """torch.matmul (x @ y) of two samples of the same rank, at least 2: a batch of n×k
    matrices times k×m; the dims before the last two broadcast (equal, or 1)."""
    x, y = shapes
    for i, shape in enumerate(shapes):
        if len(shape) < 2:
            raise ShapeError(f"{a.describe(i)} is not a matrix: Matmul needs samples of at "
                             "least 2 dims (n×k and k×m, batch excluded); with its batch a "
                             f"{len(shape)}-d sample is a {len(shape) + 1}-d tensor, which "
                             "torch.matmul would multiply across the batch")
    if len(x) != len(y):
        raise ShapeError(f"cannot multiply {a.describe(0)} by {a.describe(1)}: samples of "
                         f"{len(x)} and {len(y)} dims; torch.matmul would broadcast the "
                         "batch of the smaller against a dim of the other's sample (give "
                         "both the same rank)")
    if x[-1] != y[-2]:
        raise ShapeError(f"cannot multiply {a.describe(0)} by {a.describe(1)}: the left "
                         f"matrices have {x[-1]} columns, the right ones {y[-2]} rows")
    lead = []
    for p, q in zip(x[:-2], y[:-2], strict=True):
        if p != q and 1 not in (p, q):
            raise ShapeError(f"cannot multiply {a.describe(0)} by {a.describe(1)}: their "
                             f"batches of matrices, {fmt(x[:-2])} and {fmt(y[:-2])}, do not "
                             "broadcast (sizes must be equal, or 1 where they differ)")
        lead.append(max(p, q))
    return (*lead, x[-2], y[-1])


def _concat_whole(a: Args, shapes: list[Shape]) -> Shape:
    """torch.cat of tensors without a batch dimension (Parameters, buffers: timm's BEiT
    joins its query, key and value biases, torch.cat((q_bias, k_bias, v_bias))): dim counts
    their own dims, and the result has no batch either."""
    rank = len(shapes[0])
    for i, shape in enumerate(shapes[1:], 1):
        if len(shape) != rank:
            raise ShapeError(f"cannot concatenate {a.describe(0)} and {a.describe(i)}: "
                             "different numbers of dimensions")
    if rank == 0:
        raise ShapeError(f"cannot concatenate {a.describe(0)}: a zero-dimensional tensor "
                         "has no dim to join along")
    if not -rank <= a.dim < rank:
        raise ShapeError(f"dim {a.dim} is out of range for tensors of {rank} dims without a "
                         f"batch; expected a value in [{-rank}, {rank - 1}]", "dim")
    d = a.dim % rank
    for i, shape in enumerate(shapes[1:], 1):
        if any(p != q for k, (p, q) in enumerate(zip(shapes[0], shape, strict=True)) if k != d):
            raise ShapeError(f"cannot concatenate {a.describe(0)} and {a.describe(i)} along dim "
                             f"{a.dim}: all other dimensions must match", "dim")
    return (*shapes[0][:d], sum(s[d] for s in shapes), *shapes[0][d + 1:])


@layer("Concat", Arg("dim", Dim, 1), family="merge",
       inputs=(replace(_TENSORS[0], whole_rule=_concat_whole),),
       torch=Torch("torch.cat", module=False, inputs="list", call_args=("dim",)),
       code=Code(call="torch.cat"), draw=Draw(key_args=lambda kw: f"dim {kw.get('dim', 1)}"),
       fx=tuple(FxCall(n, (("dim", 0),)) for n in ("cat", "concat", "concatenate")))
def concat(a: Args, shapes: list[Shape]) -> Shape:
    """torch.cat of the inputs along dim (default 1, the channels)."""
    rank = len(shapes[0])
    for i, shape in enumerate(shapes[1:], 1):
        if len(shape) != rank:
            raise ShapeError(f"cannot concatenate {a.describe(0)} and {a.describe(i)}: "
                             "different numbers of dimensions")
    d = batched_dim(a.dim, rank)
    if d == -1:
        raise ShapeError("Concat along dim 0 would join batches, not samples; use dim: 1 for "
                         "channels", "dim")
    for i, shape in enumerate(shapes[1:], 1):
        if any(p != q for k, (p, q) in enumerate(zip(shapes[0], shape, strict=True)) if k != d):
            raise ShapeError(f"cannot concatenate {a.describe(0)} and {a.describe(i)} along dim "
                             f"{a.dim}: all other dimensions must match", "dim")
    return (*shapes[0][:d], sum(s[d] for s in shapes), *shapes[0][d + 1 :])


@layer("Stack", Arg("dim", Dim, 1), family="merge", inputs=_TENSORS,
       torch=Torch("torch.stack", module=False, inputs="list", call_args=("dim",)),
       code=Code(call="torch.stack"), draw=Draw(key_args=lambda kw: f"dim {kw.get('dim', 1)}"),
       dtype=lambda a, dtypes: result_type(dtypes), fx=(FxCall("stack", (("dim", 0),)),))
def stack(a: Args, shapes: list[Shape]) -> Shape:
    """torch.stack of equal-shaped inputs along a new dim (default 1: after the batch);
    dtypes promote as torch's do."""
    for i, shape in enumerate(shapes[1:], 1):
        if shape != shapes[0]:
            raise ShapeError(f"cannot stack {a.describe(0)} and {a.describe(i)}: stacked "
                             "inputs must have equal shapes")
    rank = len(shapes[0]) + 2  # the output's, batch included
    if not -rank <= a.dim < rank:
        raise ShapeError(f"dim {a.dim} is out of range for stacking into a {rank}-d output "
                         f"(batch included); expected a value in [{-rank}, {rank - 1}]", "dim")
    d = a.dim % rank
    if d == 0:
        raise ShapeError(f"Stack along dim {a.dim} would put the new dim before the batch, "
                         "so the batch size would change; use dim: 1 or later", "dim")
    return (*shapes[0][:d - 1], len(shapes), *shapes[0][d - 1:])




@layer("CropTo", family="merge",
       inputs=(Port(dtype="any", doc="what to crop"),
               Port("like", dtype="any", doc="the shape to crop to")),
       torch=Torch("netspec.ops.torch_side.crop_to", module=False),
       code=Code(call="crop_to", helper=torch_side_source("crop_to")))
def crop_to(a: Args, shapes: list[Shape]) -> Shape:
    """Center-crop the first input's spatial dims to the second's (U-Net's copy and crop)."""
    x, like = shapes
    if len(x) != len(like) or any(p < q for p, q in zip(x[1:], like[1:], strict=True)):
        raise ShapeError(f"cannot crop {a.describe(0)} to the spatial size of {a.describe(1)}")
    return (x[0], *like[1:])
