"""Merge operations for branching networks: Add, Mul, Sub, Concat, CropTo.

They take ``from: [a, b, ...]``; the rule gets the list of incoming sample shapes.  In a
built model they are plain functions in forward (``x + identity``, ``torch.cat``), as in
torchvision, so they add no modules, parameters or state_dict keys."""

from __future__ import annotations

from netspec.ops.declare import (
    Arg,
    Args,
    Code,
    Dim,
    Draw,
    FxCall,
    Port,
    Shape,
    ShapeError,
    Torch,
    batched_dim,
    layer,
)

# One tensor list or several tensors of any dtype (they must agree) and any rank
_TENSORS = (Port("tensors", dtype="any", min_rank=0, variadic=2),)
_ALPHA = (("alpha", 1),)


def _broadcast(a: Args, shapes: list[Shape], verb: str) -> Shape:
    first = shapes[0]
    for shape in shapes[1:]:
        if len(shape) != len(first) or any(
            p != q and p != 1 and q != 1 for p, q in zip(first, shape, strict=True)
        ):
            raise ShapeError(f"cannot {verb} {a.describe(0)} and {a.describe(shapes.index(shape))}"
                             " (shapes must be equal, or 1 where they differ)")
    return tuple(max(dims) for dims in zip(*shapes, strict=True))


@layer("Add", family="merge", inputs=_TENSORS,
       torch=Torch("operator.add", module=False, inputs="fold", inplace="operator.iadd"),
       code=Code(infix=" + "), draw=Draw(symbol="+"), verb="adds",
       fx=(FxCall("add", _ALPHA), FxCall("iadd", _ALPHA), FxCall("add_", _ALPHA)))
def add(a: Args, shapes: list[Shape]) -> Shape:
    """Elementwise sum of the inputs (a residual shortcut)."""
    return _broadcast(a, shapes, "add")


@layer("Mul", family="merge", inputs=_TENSORS,
       torch=Torch("operator.mul", module=False, inputs="fold", inplace="operator.imul"),
       code=Code(infix=" * "), draw=Draw(symbol="×"), verb="multiplies",
       fx=(FxCall("mul", _ALPHA), FxCall("imul", _ALPHA), FxCall("mul_", _ALPHA)))
def mul(a: Args, shapes: list[Shape]) -> Shape:
    """Elementwise product of the inputs (gating, squeeze-and-excitation)."""
    return _broadcast(a, shapes, "multiply")


@layer("Sub", family="merge",
       inputs=(Port(dtype="any", min_rank=0, doc="what to subtract from"),
               Port("other", dtype="any", min_rank=0, doc="what to subtract")),
       torch=Torch("operator.sub", module=False, inputs="fold", inplace="operator.isub"),
       code=Code(infix=" - "), draw=Draw(symbol="−"), verb="subtracts",
       fx=(FxCall("sub", _ALPHA), FxCall("isub", _ALPHA), FxCall("sub_", _ALPHA)))
def sub(a: Args, shapes: list[Shape]) -> Shape:
    """Elementwise difference of two inputs, the first minus the second."""
    return _broadcast(a, shapes, "subtract")


@layer("Concat", Arg("dim", Dim, 1), family="merge", inputs=_TENSORS,
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


# crop_to as generated files define it; netspec.ops.torch_side.crop_to is the same source
# (tests/pipeline/test_branching.py holds them equal).
CROP_TO = '''def crop_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Center-crop every spatial dim of x (dims 2..) to the size of like's."""
    for dim in range(2, x.dim()):
        start = (x.size(dim) - like.size(dim)) // 2
        x = x.narrow(dim, start, like.size(dim))
    return x'''


@layer("CropTo", family="merge",
       inputs=(Port(dtype="any", doc="what to crop"),
               Port("like", dtype="any", doc="the shape to crop to")),
       torch=Torch("netspec.ops.torch_side.crop_to", module=False),
       code=Code(call="crop_to", helper=CROP_TO))
def crop_to(a: Args, shapes: list[Shape]) -> Shape:
    """Center-crop the first input's spatial dims to the second's (U-Net's copy and crop)."""
    x, like = shapes
    if len(x) != len(like) or any(p < q for p, q in zip(x[1:], like[1:], strict=True)):
        raise ShapeError(f"cannot crop {a.describe(0)} to the spatial size of {a.describe(1)}")
    return (x[0], *like[1:])
