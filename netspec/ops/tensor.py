"""Tensor functions that rearrange a sample without modules or state: Permute.

In a built model they are plain functions in forward (``torch.permute(x, dims)``), so they
add no modules, parameters or state_dict keys, and a chain holding one is not an
nn.Sequential."""

from __future__ import annotations

from netspec.ops.declare import (
    Arg,
    Args,
    ArgType,
    Code,
    Draw,
    FxCall,
    Port,
    Shape,
    ShapeError,
    Torch,
    fmt,
    layer,
)

DIMS = ArgType({"type": "array", "minItems": 1,
                "items": {"type": "integer", "minimum": -65, "maximum": 64}},
               "a list of dimension indices (the batch included)", tuple_for_torch=True)


def permute_dims(sizes: list, kwargs: dict, is_batch_size) -> dict | str:
    """x.permute(0, 2, 1), x.permute((0, 2, 1)), torch.permute(x, (0, 2, 1)), dims=..."""
    if kwargs:
        if sizes or set(kwargs) != {"dims"}:
            return f"has the arguments {sorted(kwargs)}; netspec knows only dims"
        sizes = [kwargs["dims"]]
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
        sizes = list(sizes[0])
    if not sizes or not all(isinstance(d, int) and not isinstance(d, bool) for d in sizes):
        return f"permutes by {sizes}; netspec permutes by a constant list of dims"
    return {"dims": list(sizes)}


@layer("Permute", Arg("dims", DIMS, varargs=True), family="shape",
       inputs=(Port(dtype="any", min_rank=0),),
       torch=Torch("torch.permute", module=False, call_args=("dims",)),
       code=Code(call="torch.permute"),
       draw=Draw(key_args=lambda kw: f"dims {tuple(kw.get('dims', ()))}"),
       origin="permuted", fx=(FxCall("permute", match=permute_dims),))
def permute(a: Args, x: Shape) -> Shape:
    """torch.permute: reorder the dimensions; dims counts the batch (dims[0] stays 0)."""
    dims = list(a.dims)
    rank = len(x) + 1
    if len(dims) != rank:
        raise ShapeError(f"dims {dims} has {len(dims)} entries, but the input has {rank} "
                         f"dimensions (batch included: N×{fmt(x)})", "dims")
    for d in dims:
        if not -rank <= d < rank:
            raise ShapeError(f"dims {dims}: {d} is out of range for a {rank}-d input (batch "
                             f"included); expected values in [{-rank}, {rank - 1}]", "dims")
    wrapped = [d % rank for d in dims]
    repeated = sorted({d for d in wrapped if wrapped.count(d) > 1})
    if repeated:
        raise ShapeError(f"dims {dims} names dimension {repeated[0]} more than once; a "
                         "permutation names each dimension once", "dims")
    if wrapped[0] != 0:
        raise ShapeError(f"dims {dims} moves the batch dimension (dims[0] is {dims[0]}); the "
                         "batch size is not part of the spec, so dims[0] must be 0 (or "
                         f"{-rank}) and the others permute the sample", "dims")
    return tuple(x[d - 1] for d in wrapped[1:])
