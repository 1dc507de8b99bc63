"""Tensor functions that rearrange a sample without modules or state: Permute, Reshape,
View.

In a built model they are plain functions in forward (``torch.permute(x, dims)``,
``x.reshape(x.shape[0], 8, -1)``), so they add no modules, parameters or state_dict keys,
and a chain holding one is not an nn.Sequential.  Every dim and shape argument counts the
batch, as torch code does (dim 1 is the channels); one that would move, reduce or reshape
the batch away is refused, since the batch size is not part of a spec."""

from __future__ import annotations

import math

from netspec.ops.declare import (
    MAX_DIM,
    Arg,
    Args,
    ArgType,
    Code,
    Draw,
    FxCall,
    InputSize,
    Port,
    Shape,
    ShapeError,
    Torch,
    fmt,
    layer,
    numel,
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


# ---------------------------------------------------------------- Reshape, View

SHAPE = ArgType({"type": "array", "minItems": 1, "maxItems": 64,
                 "items": {"type": "integer", "minimum": -1, "maximum": MAX_DIM}},
                "a list of sizes counting the batch (0: the size as it comes in, -1: inferred)",
                tuple_for_torch=True)


def _reshaped(shape: list, x: Shape) -> Shape:
    """The sample shape after x.reshape(shape); shape counts the batch, 0 keeps the size the
    input has at that position (ONNX Reshape's convention) and -1 is inferred."""
    rank = len(x) + 1
    if shape.count(-1) > 1:
        raise ShapeError(f"shape {shape} has {shape.count(-1)} entries -1; only one size "
                         "can be inferred", "shape")
    beyond = [i for i, s in enumerate(shape) if s == 0 and i >= rank]
    if beyond:
        raise ShapeError(f"shape {shape}: shape[{beyond[0]}] is 0 (the size of dim "
                         f"{beyond[0]} as it comes in), but the input has {rank} dimensions "
                         f"(batch included: N×{fmt(x)})", "shape")
    if shape[0] > 0:
        raise ShapeError(f"shape {shape}: shape[0] is {shape[0]}, a fixed batch size; the "
                         "batch size is not part of the spec, so shape[0] is 0 (the batch as "
                         "it comes in) or -1", "shape")
    sample = [x[i - 1] if s == 0 else s for i, s in enumerate(shape) if i > 0]
    elements = numel(x)
    if shape[0] == -1:
        if math.prod(sample) != elements:
            raise ShapeError(f"shape {shape} infers the batch (shape[0] is -1) from the "
                             f"element count, but {fmt(sample)} holds {math.prod(sample)} "
                             f"elements and a sample of {fmt(x)} {elements}: torch would make "
                             f"the batch N×{elements}/{math.prod(sample)}; write shape[0] as 0",
                             "shape")
        return tuple(sample)
    known = math.prod(s for s in sample if s != -1)
    if -1 in sample:
        if elements % known:
            raise ShapeError(f"shape {shape}: a sample of {fmt(x)} has {elements} elements, "
                             f"not divisible by the {known} of the known sizes, so -1 cannot be "
                             "inferred", "shape")
        sample[sample.index(-1)] = elements // known
    elif known != elements:
        raise ShapeError(f"shape {shape} holds {known} elements per sample, but the input "
                         f"N×{fmt(x)} has {elements}", "shape")
    return tuple(sample)


def _reshape_arguments(values: dict, rank: int) -> tuple:
    """x.reshape(x.shape[0], x.shape[1], 8, -1): the kept sizes read when the model runs."""
    return tuple(InputSize(i) if s == 0 else s for i, s in enumerate(values["shape"]))


def reshape_match(sizes: list, kwargs: dict, size_of) -> dict | tuple | str:
    """x.view(x.size(0), 8, -1), x.reshape((b, n, -1)), torch.reshape(x, shape): a size read
    from the input at its own position is 0, one size computed in forward (h * w) is -1,
    and x.view(x.size(0), -1) is a Flatten."""
    if kwargs:
        if sizes or len(kwargs) != 1 or not {"shape", "size"} & set(kwargs):
            return f"has the arguments {sorted(kwargs)}; netspec knows only the shape"
        sizes = [next(iter(kwargs.values()))]
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
        sizes = list(sizes[0])
    shape = []
    for i, v in enumerate(sizes):
        read = size_of(v)
        if isinstance(v, int) and not isinstance(v, bool) and v >= -1 and v != 0:
            shape.append(v)
        elif read == i:
            shape.append(0)
        elif read == "computed" and i > 0:
            shape.append("computed")
        else:
            return (f"reshapes to {sizes}; netspec reshapes to constant sizes, the sizes the "
                    "input has at the same positions, and one size computed in forward")
    if shape.count("computed") > 1 or ("computed" in shape and -1 in shape):
        return (f"reshapes to {sizes}, computing more than one size in forward; netspec "
                "infers one (-1) and reads the others from the input at the same positions")
    shape = [-1 if s == "computed" else s for s in shape]
    return ("Flatten", {}) if shape == [0, -1] else {"shape": shape}


def _shape_key(kw: dict) -> str:
    return f"shape {tuple(kw.get('shape', ()))}".replace(",)", ")")


@layer("Reshape", Arg("shape", SHAPE, varargs=True), family="shape",
       inputs=(Port(dtype="any", min_rank=0),),
       torch=Torch("torch.Tensor.reshape", module=False, method=True,
                   arguments=_reshape_arguments),
       code=Code(method="reshape"), draw=Draw(key_args=_shape_key),
       origin="reshaped", fx=(FxCall("reshape", match=reshape_match),))
def reshape(a: Args, x: Shape) -> Shape:
    """x.reshape(shape): shape counts the batch; 0 keeps the size the input has at that
    position (shape[0] is 0, or -1 when the other sizes hold exactly one sample), -1 is
    inferred.  Kept sizes are read from the tensor when the model runs."""
    return _reshaped(list(a.shape), x)


@layer("View", Arg("shape", SHAPE, varargs=True), family="shape",
       inputs=(Port(dtype="any", min_rank=0),),
       torch=Torch("torch.Tensor.view", module=False, method=True,
                   arguments=_reshape_arguments),
       code=Code(method="view"), draw=Draw(key_args=_shape_key),
       origin="reshaped", fx=(FxCall("view", match=reshape_match),))
def view(a: Args, x: Shape) -> Shape:
    """x.view(shape), shapes as Reshape's.  torch also refuses a view of a tensor whose
    strides it cannot view (after a transpose or permute); netspec does not track strides,
    so that refusal is not checked: use Reshape where the input may not be contiguous."""
    return _reshaped(list(a.shape), x)
