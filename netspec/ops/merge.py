"""Merge operations for branching networks: Add, Mul, Concat, CropTo.

They take ``from: [a, b, ...]``; the rule gets the list of incoming sample shapes.  In a
built model they are plain functions in forward (``x + identity``, ``torch.cat``), as in
torchvision, so they add no modules, parameters or state_dict keys."""

from __future__ import annotations

from netspec.ops.declare import Arg, Args, Dim, Shape, ShapeError, batched_dim, layer


def _broadcast(a: Args, shapes: list[Shape], verb: str) -> Shape:
    first = shapes[0]
    for shape in shapes[1:]:
        if len(shape) != len(first) or any(
            p != q and p != 1 and q != 1 for p, q in zip(first, shape, strict=True)
        ):
            raise ShapeError(f"cannot {verb} {a.describe(0)} and {a.describe(shapes.index(shape))}"
                             " (shapes must be equal, or 1 where they differ)")
    return tuple(max(dims) for dims in zip(*shapes, strict=True))


@layer("Add", family="merge", merge=True, min_rank=0, input_dtype="any")
def add(a: Args, shapes: list[Shape]) -> Shape:
    """Elementwise sum of the inputs (a residual shortcut)."""
    return _broadcast(a, shapes, "add")


@layer("Mul", family="merge", merge=True, min_rank=0, input_dtype="any")
def mul(a: Args, shapes: list[Shape]) -> Shape:
    """Elementwise product of the inputs (gating, squeeze-and-excitation)."""
    return _broadcast(a, shapes, "multiply")


@layer("Concat", Arg("dim", Dim, 1), family="merge", merge=True, min_rank=0, input_dtype="any")
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


@layer("CropTo", family="merge", merge=True, min_rank=1, input_dtype="any")
def crop_to(a: Args, shapes: list[Shape]) -> Shape:
    """Center-crop the first input's spatial dims to the second's (U-Net's copy and crop)."""
    if len(shapes) != 2:
        raise ShapeError(f"CropTo takes two inputs (what to crop, and the shape to crop to), "
                         f"got {len(shapes)}")
    x, like = shapes
    if len(x) != len(like) or any(p < q for p, q in zip(x[1:], like[1:], strict=True)):
        raise ShapeError(f"cannot crop {a.describe(0)} to the spatial size of {a.describe(1)}")
    return (x[0], *like[1:])
