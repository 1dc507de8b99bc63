"""Tensor functions that rearrange a sample without modules or state: Permute, Transpose,
Reshape, View, ReshapeAs, Squeeze, Unsqueeze, Expand, Roll.

In a built model they are plain functions in forward (``torch.permute(x, dims)``,
``x.reshape(x.shape[0], 8, -1)``), so they add no modules, parameters or state_dict keys,
and a chain holding one is not an nn.Sequential.  Every dim and shape argument counts the
batch, as torch code does (dim 1 is the channels); one that would move, reduce or reshape
the batch away is refused, since the batch size is not part of a spec."""

from __future__ import annotations

import math

from netspec.ops.declare import (
    MAX_DIM,
    REQUIRED,
    Arg,
    Args,
    ArgType,
    Code,
    Dim,
    Draw,
    FxCall,
    InputSize,
    Port,
    Shape,
    ShapeError,
    Torch,
    batched_dim,
    fmt,
    layer,
    numel,
)

DIMS = ArgType({"type": "array", "minItems": 1,
                "items": {"type": "integer", "minimum": -65, "maximum": 64}},
               "a list of dimension indices (the batch included)", tuple_for_torch=True)
# torch's `int or tuple of ints` dim (Squeeze, and the reductions of ops/reduce.py)
DIM_OR_DIMS = ArgType({"type": ["integer", "array"], "minimum": -65, "maximum": 64,
                       "items": {"type": "integer", "minimum": -65, "maximum": 64}},
                      "a dimension index or a list of them (the batch included)",
                      tuple_for_torch=True)


def sample_dims(dim, x: Shape, what: str = "dim") -> list[int]:
    """dim (an int or a list, counting the batch, as torch takes it) as sample indices; out
    of range as torch refuses it, the batch (-1 here) left for the caller to refuse."""
    dims = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    wrapped = []
    for d in dims:
        try:
            wrapped.append(batched_dim(d, len(x), what))
        except ShapeError as exc:
            shown = f"{what} {dim}: " if isinstance(dim, (list, tuple)) else ""
            raise ShapeError(shown + exc.message, what) from None
    return wrapped


def refuse_repeats(dim, wrapped: list[int], what: str = "dim") -> None:
    repeated = sorted({d + 1 for d in wrapped if wrapped.count(d) > 1})
    if repeated:
        raise ShapeError(f"{what} {dim} names dimension {repeated[0]} more than once", what)


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


def reshaped_whole(a: Args, x: Shape) -> Shape:
    """x.reshape(shape) of a tensor without a batch dimension (a Parameter): shape is the
    whole shape, 0 keeps the size x has at that position, -1 is inferred, as torch."""
    shape = list(a.shape)
    if shape.count(-1) > 1:
        raise ShapeError(f"shape {shape} has {shape.count(-1)} entries -1; only one size "
                         "can be inferred", "shape")
    beyond = [i for i, s in enumerate(shape) if s == 0 and i >= len(x)]
    if beyond:
        raise ShapeError(f"shape {shape}: shape[{beyond[0]}] is 0 (the size of dim "
                         f"{beyond[0]} as it comes in), but the tensor is {fmt(x)}, "
                         f"{len(x)} dimensions without a batch", "shape")
    sizes = [x[i] if s == 0 else s for i, s in enumerate(shape)]
    elements, known = numel(x), math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if known == 0 or elements % known:
            raise ShapeError(f"shape {shape}: the tensor {fmt(x)} has {elements} elements, "
                             f"not divisible by the {known} of the known sizes, so -1 cannot "
                             "be inferred", "shape")
        sizes[sizes.index(-1)] = elements // known
    elif known != elements:
        raise ShapeError(f"shape {shape} holds {known} elements, but the tensor {fmt(x)} "
                         f"has {elements}", "shape")
    return tuple(sizes)


def _reshape_arguments(values: dict, x: Shape) -> tuple:
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
        elif read == "computed":  # timm's TNT: x.reshape(B * self.num_patches, C, 16, 16)
            return (f"reshapes to {sizes}, computing the batch size in forward: it folds "
                    "other dimensions into the batch (or the batch into them), which a spec "
                    "cannot write: its shapes are a sample's, the batch passed on as it "
                    "comes in")
        else:
            return (f"reshapes to {sizes}; netspec reshapes to constant sizes, the sizes the "
                    "input has at the same positions, and one size computed in forward")
    if shape.count("computed") > 1 or ("computed" in shape and -1 in shape):
        return (f"reshapes to {sizes}, computing more than one size in forward; netspec "
                "infers one (-1) and reads the others from the input at the same positions")
    shape = [-1 if s == "computed" else s for s in shape]
    return ("Flatten", {}) if shape == [0, -1] else {"shape": shape}


# a reshape computing more than one size in forward, as the importer may write it
REGROUPS = ("Flatten", "Unflatten")


def _shape_key(kw: dict) -> str:
    return f"shape {tuple(kw.get('shape', ()))}".replace(",)", ")")


@layer("Reshape", Arg("shape", SHAPE, varargs=True), family="shape",
       inputs=(Port(dtype="any", min_rank=0, whole_rule=reshaped_whole),),
       torch=Torch("torch.Tensor.reshape", module=False, method=True,
                   arguments=_reshape_arguments),
       code=Code(method="reshape"), draw=Draw(key_args=_shape_key),
       origin="reshaped", fx=(FxCall("reshape", match=reshape_match, regroups=REGROUPS,
                                       shaped_like="ReshapeAs"),))
def reshape(a: Args, x: Shape) -> Shape:
    """x.reshape(shape): shape counts the batch; 0 keeps the size the input has at that
    position (shape[0] is 0, or -1 when the other sizes hold exactly one sample), -1 is
    inferred.  Kept sizes are read from the tensor when the model runs."""
    return _reshaped(list(a.shape), x)


@layer("View", Arg("shape", SHAPE, varargs=True), family="shape",
       inputs=(Port(dtype="any", min_rank=0, whole_rule=reshaped_whole),),
       torch=Torch("torch.Tensor.view", module=False, method=True,
                   arguments=_reshape_arguments),
       code=Code(method="view"), draw=Draw(key_args=_shape_key),
       origin="reshaped", fx=(FxCall("view", match=reshape_match, regroups=REGROUPS,
                                       shaped_like="ReshapeAs"),))
def view(a: Args, x: Shape) -> Shape:
    """x.view(shape), shapes as Reshape's.  torch also refuses a view of a tensor whose
    strides it cannot view (after a transpose or permute); netspec does not track strides,
    so that refusal is not checked: use Reshape where the input may not be contiguous."""
    return _reshaped(list(a.shape), x)


@layer("ReshapeAs", family="shape",
       inputs=(Port(dtype="any", min_rank=0, doc="what to reshape"),
               Port("other", dtype="any", min_rank=0, doc="the tensor whose shape to take")),
       torch=Torch("torch.Tensor.reshape_as", module=False, method=True),
       code=Code(method="reshape_as"), dtype=lambda a, dtypes: dtypes[0],  # other's unused
       draw=Draw(key_args=lambda kw: ""), origin="reshaped", fx=(FxCall("reshape_as"),))
def reshape_as(a: Args, shapes: list[Shape]) -> Shape:
    """x.reshape_as(other): x's elements in other's shape, read from other when the model
    runs (tokens back on the H×W grid of the feature map they came from, at any image
    size).  Both have the batch, so a sample of x must hold as many elements as other's."""
    x, other = shapes
    if numel(x) != numel(other):
        raise ShapeError(f"cannot reshape {a.describe(0)} as {a.describe(1)}: a sample holds "
                         f"{numel(x)} elements, and {fmt(other)} holds {numel(other)}")
    return tuple(other)


# ---------------------------------------------------------------- Transpose


def _swapaxes(args: list, kwargs: dict, size_of) -> dict | str:
    """torch.swapaxes(x, axis0, axis1) (numpy's names for transpose's dims; torchvision's
    MaxViT SwapAxes): Transpose's dim0 and dim1."""
    names = ("axis0", "axis1")
    values = {**dict(zip(names, args, strict=False)), **kwargs}
    if len(args) > 2 or set(values) != set(names) or \
            not all(isinstance(v, int) and not isinstance(v, bool) for v in values.values()):
        return "takes two constant axes, axis0 and axis1"
    return {"dim0": values["axis0"], "dim1": values["axis1"]}


@layer("Transpose", Arg("dim0", Dim), Arg("dim1", Dim), family="shape",
       inputs=(Port(dtype="any", min_rank=0),),
       torch=Torch("torch.transpose", module=False, call_args=("dim0", "dim1")),
       code=Code(call="torch.transpose"),
       draw=Draw(key_args=lambda kw: f"dims {kw.get('dim0', '?')}, {kw.get('dim1', '?')}"),
       origin="transposed",
       fx=(FxCall("transpose", (("dim0", REQUIRED), ("dim1", REQUIRED))),
           FxCall("swapdims", (("dim0", REQUIRED), ("dim1", REQUIRED))),
           FxCall("swapaxes", match=_swapaxes)))
def transpose(a: Args, x: Shape) -> Shape:
    """torch.transpose(x, dim0, dim1): swap two dimensions, counting the batch (dim 0 stays)."""
    d0 = batched_dim(a.dim0, len(x), "dim0")
    d1 = batched_dim(a.dim1, len(x), "dim1")
    if d0 != d1 and -1 in (d0, d1):
        which = "dim0" if d0 == -1 else "dim1"
        raise ShapeError(f"{which} {getattr(a, which)} is the batch dimension: transposing it "
                         "with dim " f"{a.dim1 if which == 'dim0' else a.dim0} moves the batch, "
                         "which is not part of the spec", which)
    out = list(x)
    if d0 != d1:
        out[d0], out[d1] = out[d1], out[d0]
    return tuple(out)


# ---------------------------------------------------------------- Squeeze, Unsqueeze


def _squeeze_arguments(values: dict, x: Shape) -> tuple:
    """Without dim, the sample's size-1 dims by number: torch.squeeze(x) would drop the
    batch too when it has one sample."""
    dim = values["dim"]
    if dim is None:
        return (tuple(i + 1 for i, n in enumerate(x) if n == 1),)
    return (tuple(dim) if isinstance(dim, list) else dim,)


@layer("Squeeze", Arg("dim", DIM_OR_DIMS.nullable(), None), family="shape",
       inputs=(Port(dtype="any", min_rank=0),),
       torch=Torch("torch.squeeze", module=False, arguments=_squeeze_arguments),
       code=Code(call="torch.squeeze"),
       draw=Draw(key_args=lambda kw: f"dim {kw['dim']}" if kw.get("dim") is not None else ""),
       origin="squeezed", fx=(FxCall("squeeze", (("dim", None),)),))
def squeeze(a: Args, x: Shape) -> Shape:
    """torch.squeeze(x, dim): drop the size-1 dims among dim (an int or a list, counting the
    batch); without dim every size-1 dim of the sample (never the batch: the built model
    names them, as torch.squeeze(x) drops a batch of one)."""
    if a.dim is None:
        return tuple(n for n in x if n != 1)
    wrapped = sample_dims(a.dim, x)
    refuse_repeats(a.dim, wrapped)
    if -1 in wrapped:
        raise ShapeError(f"dim {a.dim} names the batch dimension: squeezing it would drop "
                         "the batch when it has one sample (the batch size is not part of "
                         "the spec)", "dim")
    return tuple(n for i, n in enumerate(x) if not (i in wrapped and n == 1))


@layer("Unsqueeze", Arg("dim", Dim), family="shape", inputs=(Port(dtype="any", min_rank=0),),
       torch=Torch("torch.unsqueeze", module=False, call_args=("dim",)),
       code=Code(call="torch.unsqueeze"), draw=Draw(key_args=lambda kw: f"dim {kw.get('dim')}"),
       origin="unsqueezed", fx=(FxCall("unsqueeze", (("dim", REQUIRED),)),))
def unsqueeze(a: Args, x: Shape) -> Shape:
    """torch.unsqueeze(x, dim): a size-1 dim inserted at dim (counting the batch; negative
    counts from the end of the output)."""
    rank = len(x) + 2  # of the output, batch included
    if not -rank <= a.dim < rank:
        raise ShapeError(f"dim {a.dim} is out of range for the {rank}-d output (batch "
                         f"included); expected a value in [{-rank}, {rank - 1}]", "dim")
    at = a.dim % rank
    if at == 0:
        raise ShapeError(f"dim {a.dim} inserts the new dimension before the batch, which "
                         "then is no longer first; use dim 1 or later", "dim")
    return (*x[:at - 1], 1, *x[at - 1:])


# ---------------------------------------------------------------- Expand

SIZES = ArgType({"type": "array", "minItems": 1, "maxItems": 64,
                 "items": {"type": "integer", "minimum": -1, "maximum": MAX_DIM}},
                "a list of sizes counting the batch (-1: as it comes in)", tuple_for_torch=True)


def expand_match(sizes: list, kwargs: dict, size_of) -> dict | str:
    """x.expand(-1, 4, 5), x.expand((b, 4, 5)), sizes read from the input at their own
    positions (b = x.shape[0]) kept as -1."""
    if kwargs:
        if sizes or set(kwargs) != {"size"}:
            return f"has the arguments {sorted(kwargs)}; netspec knows only the sizes"
        sizes = [kwargs["size"]]
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
        sizes = list(sizes[0])
    out = []
    for i, v in enumerate(sizes):
        if size_of(v) == i:
            out.append(-1)
        elif isinstance(v, int) and not isinstance(v, bool):
            out.append(v)
        else:
            return (f"expands to {sizes}; netspec expands to constant sizes and the sizes "
                    "the input has at the same positions")
    return {"sizes": out}


@layer("Expand", Arg("sizes", SIZES, varargs=True), family="shape",
       inputs=(Port(dtype="any", min_rank=0, doc="what to expand"),
               Port("like", dtype="any", min_rank=0, optional=True, batch_size_at=0,
                    doc="the tensor whose batch size to take")),
       torch=Torch("torch.Tensor.expand", module=False, method=True,
                   arguments=lambda values, x: tuple(values["sizes"])),
       code=Code(method="expand"), dtype=lambda a, dtypes: dtypes[0],  # like's is not used
       draw=Draw(key_args=lambda kw: f"sizes {tuple(kw.get('sizes', ()))}".replace(",)", ")")),
       origin="expanded", fx=(FxCall("expand", match=expand_match),))
def expand(a: Args, shapes: list[Shape]) -> Shape:
    """x.expand(*sizes): size-1 dims repeated to the size given (a view, no copy); sizes
    count the batch, -1 keeps a size (sizes[0] is -1: the batch as it comes in).  With
    from: [class_token, x], a tensor without a batch dimension (a Parameter, its dim 0 of
    size 1) is repeated over x's batch: class_token.expand(x.shape[0], -1, -1)."""
    x = shapes[0]
    sizes = list(a.sizes)
    rank = len(x) + 1
    if len(sizes) < rank:
        raise ShapeError(f"sizes {sizes} has {len(sizes)} entries, fewer than the {rank} "
                         f"dimensions of the input (batch included: N×{fmt(x)})", "sizes")
    if len(sizes) > rank:
        raise ShapeError(f"sizes {sizes} has {len(sizes)} entries for a {rank}-d input (batch "
                         f"included: N×{fmt(x)}): the new leading dims would come before the "
                         "batch", "sizes")
    if sizes[0] != -1:
        raise ShapeError(f"sizes {sizes}: sizes[0] is {sizes[0]}, a fixed batch size; the "
                         "batch size is not part of the spec, so sizes[0] is -1", "sizes")
    out = []
    for i, (n, s) in enumerate(zip(x, sizes[1:], strict=True), 1):
        if s == -1 or s == n:
            out.append(n)
        elif n != 1:
            raise ShapeError(f"sizes {sizes}: the expanded size {s} must match the existing "
                             f"size {n} at non-singleton dimension {i} (input N×{fmt(x)})",
                             "sizes")
        elif s == 0:
            raise ShapeError(f"sizes {sizes}: size 0 at dimension {i} leaves the output "
                             "empty", "sizes")
        else:
            out.append(s)
    return tuple(out)


# ---------------------------------------------------------------- Roll

SHIFTS = ArgType({"type": ["integer", "array"], "minimum": -MAX_DIM, "maximum": MAX_DIM,
                  "items": {"type": "integer", "minimum": -MAX_DIM, "maximum": MAX_DIM}},
                 "an integer or a list of them", tuple_for_torch=True)


def _roll_key(kw: dict) -> str:
    return f"shifts {kw.get('shifts', '?')}, dims {kw.get('dims')}"


@layer("Roll", Arg("shifts", SHIFTS), Arg("dims", DIM_OR_DIMS.nullable(), None),
       family="shape", inputs=(Port(dtype="any", min_rank=0),),
       torch=Torch("torch.roll", module=False, call_args=("shifts", "dims")),
       code=Code(call="torch.roll"), draw=Draw(key_args=_roll_key),
       fx=(FxCall("roll", (("shifts", REQUIRED), ("dims", None))),))
def roll(a: Args, x: Shape) -> Shape:
    """torch.roll(x, shifts, dims): shift elements along dims (counting the batch) with
    wrap-around (Swin's shifted windows); the shape is unchanged."""
    shifts = list(a.shifts) if isinstance(a.shifts, (list, tuple)) else [a.shifts]
    dims = list(a.dims) if isinstance(a.dims, (list, tuple)) else [a.dims]
    if a.dims is None or not dims:
        raise ShapeError(f"without dims (dims is {a.dims}) torch rolls the flattened tensor, "
                         "moving elements from one sample to the next; give dims (1 or "
                         "later)", "dims")
    if not shifts:
        raise ShapeError("shifts is empty; torch needs a shift per dim", "shifts")
    if len(shifts) != len(dims):
        raise ShapeError(f"shifts {a.shifts} and dims {a.dims} do not align: {len(shifts)} "
                         f"shift{'s' if len(shifts) > 1 else ''} for {len(dims)} "
                         f"dim{'s' if len(dims) > 1 else ''}", "shifts")
    if -1 in sample_dims(a.dims, x, "dims"):
        raise ShapeError(f"dims {a.dims} names the batch dimension: rolling it moves "
                         "samples, and the batch size is not part of the spec", "dims")
    return x
