"""Layers that move elements around: Flatten, Unflatten, Upsample, Interpolate, PixelShuffle,
ChannelShuffle, Unfold."""

from __future__ import annotations

import math

from netspec.ops.declare import (
    MAX_DIM,
    REQUIRED,
    Arg,
    Args,
    ArgType,
    Bool,
    Code,
    Dim,
    Draw,
    Enum,
    FxCall,
    Int,
    Port,
    Shape,
    ShapeError,
    Size,
    Torch,
    batched_dim,
    fmt,
    layer,
    numel,
    spelled,
    torch_side_source,
)


@layer("Flatten", Arg("start_dim", Dim, 1), Arg("end_dim", Dim, -1), family="shape", min_rank=0,
       input_dtype="any", origin="flattened",
       # x.view(x.size(0), -1) is a Flatten too: Reshape and View (ops/tensor.py) say so
       fx=(FxCall("flatten", (("start_dim", 0), ("end_dim", -1))),))
def flatten(a: Args, x: Shape) -> Shape:
    start = batched_dim(a.start_dim, len(x), "start_dim")
    end = batched_dim(a.end_dim, len(x), "end_dim")
    if start > end:
        raise ShapeError(f"start_dim {a.start_dim} comes after end_dim {a.end_dim}", "start_dim")
    if start == -1 and end > -1:
        merged = x[:end + 1]
        k = len(merged)
        if numel(merged) != 1:
            raise ShapeError(f"start_dim {a.start_dim} would merge the batch dimension with the "
                             f"sample's first {k} dimension{'s' if k > 1 else ''} "
                             f"({fmt(merged)}), changing the batch size; use start_dim: 1",
                             "start_dim")
        # Only size-1 dimensions join the batch: the batch stays whole and they disappear.
        a.warn(f"start_dim {a.start_dim} merges the batch dimension with the sample's first {k} "
               f"dimension{'s' if k > 1 else ''}; the batch stays whole only because "
               f"{'they have' if k > 1 else 'it has'} size 1 (dropped: {fmt(x)} becomes "
               f"{fmt(x[end + 1:])}); use start_dim: 1", "start_dim")
        return x[end + 1:]
    if start == -1:
        return x
    return (*x[:start], math.prod(x[start:end + 1]), *x[end + 1:])


UNFLATTENED = ArgType({"type": "array", "minItems": 1,
                       "items": {"type": "integer", "minimum": -1, "maximum": MAX_DIM}},
                      "a list of integers (one may be -1)", tuple_for_torch=True)


@layer("Unflatten", Arg("dim", Dim), Arg("unflattened_size", UNFLATTENED), family="shape",
       min_rank=1, input_dtype="any")
def unflatten(a: Args, x: Shape) -> Shape:
    d = batched_dim(a.dim, len(x))
    sizes = list(a.unflattened_size)
    if d == -1:
        # The batch may only stay whole: [-1] or [-1, 1, ...] adds unit dims to the sample.
        if sizes[0] == -1 and all(s == 1 for s in sizes[1:]):
            return (*sizes[1:], *x)
        raise ShapeError(f"Unflatten of dim {a.dim} splits the batch dimension into {sizes}; "
                         f"the batch size is not part of the spec (only [-1] or [-1, 1, ...] "
                         f"keep it whole)", "dim")
    if 0 in sizes:
        raise ShapeError(f"unflattened_size {sizes} has a 0", "unflattened_size")
    if sizes.count(-1) > 1:
        raise ShapeError(f"unflattened_size {sizes} may contain at most one -1", "unflattened_size")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if x[d] % known:
            raise ShapeError(f"cannot unflatten size {x[d]} into {sizes}: {x[d]} is not divisible "
                             f"by {known}", "unflattened_size")
        sizes[sizes.index(-1)] = x[d] // known
    elif known != x[d]:
        raise ShapeError(f"unflattened_size {fmt(sizes)} has {known} elements, but dim {a.dim} has "
                         f"{x[d]}", "unflattened_size")
    return (*x[:d], *sizes, *x[d + 1:])


def _unflatten_as_key(kw: dict) -> str:
    return (f"dim {kw.get('dim', '?')} as like's dims "
            f"{kw.get('start_dim', '?')}..{kw.get('end_dim', '?')}")


@layer("UnflattenAs", Arg("dim", Dim), Arg("start_dim", Dim), Arg("end_dim", Dim),
       family="shape",
       inputs=(Port(dtype="any", min_rank=1, doc="what to unflatten"),
               Port("like", dtype="any", min_rank=1, doc="the tensor whose sizes to take")),
       torch=Torch("netspec.ops.torch_side.unflatten_as", module=False,
                   call_args=("dim", "start_dim", "end_dim")),
       code=Code(call="unflatten_as", helper=torch_side_source("unflatten_as")),
       dtype=lambda a, dtypes: dtypes[0],  # like's is not used
       draw=Draw(key_args=_unflatten_as_key), origin="unflattened")
def unflatten_as(a: Args, shapes: list[Shape]) -> Shape:
    """x.unflatten(dim, like.shape[start_dim:end_dim + 1]): dim of the first input split
    into the sizes the second has at its dims start_dim to end_dim (all counting the batch),
    read when the model runs: tokens N×C put back on the H×W grid of the map they came from
    at any image size (timm's PVT v2 passes the map's H, W beside its tokens)."""
    x, like = shapes
    d = batched_dim(a.dim, len(x))
    start = batched_dim(a.start_dim, len(like), "start_dim")
    end = batched_dim(a.end_dim, len(like), "end_dim")
    if start > end:
        raise ShapeError(f"start_dim {a.start_dim} comes after end_dim {a.end_dim} in "
                         f"{a.describe(1)}", "start_dim")
    if d == -1 and start == -1 and all(n == 1 for n in like[:end + 1]):
        return (*like[:end + 1], *x)  # the batch into like's (the same) and dims of 1
    if d == -1:
        raise ShapeError(f"dim {a.dim} is the batch dimension, which a spec splits only into "
                         "like's batch and dims of size 1 (the batch size is not part of "
                         "the spec)", "dim")
    if start == -1:
        raise ShapeError(f"start_dim {a.start_dim} is the batch dimension of "
                         f"{a.describe(1)}, whose size is not part of the spec; its sizes to "
                         "take start at dim 1 or later", "start_dim")
    sizes = like[start:end + 1]
    if math.prod(sizes) != x[d]:
        raise ShapeError(f"cannot unflatten dim {a.dim} of {a.describe(0)} (size {x[d]}) "
                         f"into {fmt(sizes)}, the sizes of {a.describe(1)} at dims "
                         f"{a.start_dim}..{a.end_dim}: they hold {math.prod(sizes)} elements")
    return (*x[:d], *sizes, *x[d + 1:])


SIZE_ANY = ArgType({"type": ["integer", "array", "null"], "minimum": 1, "maximum": MAX_DIM,
                    "items": {"type": "integer", "minimum": 1, "maximum": MAX_DIM},
                    "minItems": 1, "maxItems": 3},
                   "an integer or a list of integers", tuple_for_torch=True)
SCALE = ArgType({"type": ["number", "array", "null"], "exclusiveMinimum": 0,
                 "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 1, "maxItems": 3},
                "a positive number or a list of them", tuple_for_torch=True)
MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
MODE_RANK = {"linear": 2, "bilinear": 3, "bicubic": 3, "trilinear": 4}  # sample rank (C + spatial)
INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")


def upsample_output(x: Shape, size, scale, mode: str, align_corners,
                    recompute_scale_factor=None) -> Shape:
    if mode in MODE_RANK and len(x) != MODE_RANK[mode]:
        layout = {2: "C×L", 3: "C×H×W", 4: "C×D×H×W"}[MODE_RANK[mode]]
        raise ShapeError(f"mode '{mode}' needs a {layout} sample, got {fmt(x)}", "mode")
    if align_corners is not None and mode not in INTERPOLATING:
        raise ShapeError(f"align_corners can only be set with the interpolating modes "
                         f"{', '.join(INTERPOLATING)} (mode is '{mode}')", "align_corners")
    n = len(x) - 1
    if size is None and scale is None:
        raise ShapeError("either size or scale_factor must be given", "size")
    if size is not None and scale is not None:
        raise ShapeError("give only one of size and scale_factor", "scale_factor")
    if size is not None and recompute_scale_factor:
        raise ShapeError("recompute_scale_factor only applies to scale_factor; with an explicit "
                         f"size {size} it has no meaning (PyTorch refuses it)",
                         "recompute_scale_factor")
    if size is not None:
        sizes = tuple(size) if isinstance(size, (list, tuple)) else (size,) * n
        if len(sizes) != n:
            raise ShapeError(f"size has {len(sizes)} entries for {n} spatial dimensions "
                             f"(input {fmt(x)})", "size")
        out = sizes
    else:
        scales = tuple(scale) if isinstance(scale, (list, tuple)) else (scale,) * n
        if len(scales) != n:
            raise ShapeError(f"scale_factor has {len(scales)} entries for {n} spatial dimensions "
                             f"(input {fmt(x)})", "scale_factor")
        out = tuple(math.floor(float(L) * float(s)) for L, s in zip(x[1:], scales, strict=True))
        if any(o < 1 for o in out):
            raise ShapeError(f"output would be {fmt(out)}: input {fmt(x[1:])}, scale_factor "
                             f"{scale}", "scale_factor")
    return (x[0], *out)


UPSAMPLE_RANKS = {2: "C×L", 3: "C×H×W", 4: "C×D×H×W"}


@layer("Upsample", Arg("size", SIZE_ANY, None), Arg("scale_factor", SCALE, None),
       Arg("mode", Enum(*MODES), "nearest"), Arg("align_corners", Bool.nullable(), None),
       Arg("recompute_scale_factor", Bool.nullable(), None), family="shape", ranks=UPSAMPLE_RANKS)
def upsample(a: Args, x: Shape) -> Shape:
    return upsample_output(x, a.size, a.scale_factor, a.mode, a.align_corners,
                           a.recompute_scale_factor)


@layer("UpsamplingNearest2d", Arg("size", SIZE_ANY, None), Arg("scale_factor", SCALE, None),
       family="shape", ranks={3: "C×H×W"})
def upsampling_nearest2d(a: Args, x: Shape) -> Shape:
    return upsample_output(x, a.size, a.scale_factor, "nearest", None)


@layer("UpsamplingBilinear2d", Arg("size", SIZE_ANY, None), Arg("scale_factor", SCALE, None),
       family="shape", ranks={3: "C×H×W"})
def upsampling_bilinear2d(a: Args, x: Shape) -> Shape:
    return upsample_output(x, a.size, a.scale_factor, "bilinear", True)


INTERPOLATE_MODES = (*MODES, "lanczos")
# the batched rank each interpolating mode needs (nearest, nearest-exact, area: 3 to 5)
INTERPOLATE_RANK = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5, "lanczos": 4}
ANTIALIASED = ("bilinear", "bicubic", "lanczos")
_SPATIAL = {2: "L", 3: "H×W", 4: "D×H×W"}


def _interpolate_mode(a: Args, x: Shape) -> None:
    """What F.interpolate checks of mode, align_corners and antialias before any size."""
    if a.mode in ("nearest", "area", "nearest-exact") and a.align_corners is not None:
        raise ShapeError(f"align_corners can only be set with the interpolating modes "
                         f"{', '.join(INTERPOLATING)} (mode is '{a.mode}')", "align_corners")
    rank = INTERPOLATE_RANK.get(a.mode)
    if rank is not None and len(x) + 1 != rank:
        layout = UPSAMPLE_RANKS[rank - 1]
        raise ShapeError(f"mode '{a.mode}' needs a {layout} sample, got {fmt(x)}", "mode")
    if a.antialias and a.mode not in ANTIALIASED:
        raise ShapeError(f"antialias works with the modes {', '.join(ANTIALIASED)} only "
                         f"(mode is '{a.mode}')", "antialias")
    if a.mode == "lanczos" and not a.antialias:
        raise ShapeError("mode 'lanczos' needs antialias: true", "antialias")
    if a.mode == "lanczos" and a.align_corners:
        raise ShapeError("mode 'lanczos' does not take align_corners: true", "align_corners")


def _interpolated_size(a: Args, x: Shape, like: Shape | None) -> tuple[int, ...]:
    """The output's spatial size: size (written, or like's spatial size) or scale_factor."""
    n = len(x) - 1
    size = tuple(like[1:]) if like is not None else a.size
    if like is not None and (a.size is not None or a.scale_factor is not None):
        given = "size" if a.size is not None else "scale_factor"
        raise ShapeError(f"the size comes from the second input ({a.describe(1)}); give "
                         f"{given} or a second input, not both", given)
    if size is None and a.scale_factor is None:
        raise ShapeError("give size, scale_factor, or a second input whose spatial size to "
                         "take (from: [x, like])", "size")
    if size is not None and a.scale_factor is not None:
        raise ShapeError("give only one of size and scale_factor", "scale_factor")
    if size is not None and a.recompute_scale_factor:
        raise ShapeError("recompute_scale_factor only applies to scale_factor; with a size "
                         "it has no meaning (PyTorch refuses it)", "recompute_scale_factor")
    if size is not None:
        sizes = tuple(size) if isinstance(size, (list, tuple)) else (size,) * n
        if len(sizes) != n:
            where = (f"{a.describe(1)} has the spatial size {fmt(sizes)}" if like is not None
                     else f"size has {len(sizes)} entries")
            raise ShapeError(f"{where}, but the input ({fmt(x)}) has {n} spatial dimensions",
                             None if like is not None else "size")
        return sizes
    scales = a.scale_factor if isinstance(a.scale_factor, (list, tuple)) else \
        (a.scale_factor,) * n
    if len(scales) != n:
        raise ShapeError(f"scale_factor has {len(scales)} entries, but the input ({fmt(x)}) "
                         f"has {n} spatial dimensions", "scale_factor")
    return tuple(math.floor(float(s) * float(f)) for s, f in zip(x[1:], scales, strict=True))


def _interpolated_dtype(a: Args, dtypes: list[str]) -> str:
    """The input's dtype (like's does not matter): floats only, and antialiasing on the CPU
    takes float32 and float64 only."""
    dtype = dtypes[0]
    if dtype in ("int32", "int64"):
        raise ShapeError(f"F.interpolate needs a floating-point input, but gets {dtype}")
    if a.antialias and dtype in ("float16", "bfloat16"):
        raise ShapeError(f"antialias on {dtype} is not implemented in torch on the CPU (use "
                         "float32)", "antialias")
    return dtype


@layer("Interpolate", Arg("size", SIZE_ANY, None), Arg("scale_factor", SCALE, None),
       Arg("mode", Enum(*INTERPOLATE_MODES), "nearest"),
       Arg("align_corners", Bool.nullable(), None),
       Arg("recompute_scale_factor", Bool.nullable(), None), Arg("antialias", Bool, False),
       family="shape",
       inputs=(Port(dtype="any", ranks=UPSAMPLE_RANKS, doc="what to resample"),
               Port("like", dtype="any", min_rank=0, optional=True, size_of="size",
                    doc="the tensor whose spatial size to take")),
       torch=Torch("torch.nn.functional.interpolate", module=False,
                   keywords=("size", "scale_factor", "mode", "align_corners",
                             "recompute_scale_factor", "antialias")),
       code=Code(call="nn.functional.interpolate"), dtype=_interpolated_dtype,
       fx=(FxCall("interpolate", (("size", None), ("scale_factor", None), ("mode", "nearest"),
                                  ("align_corners", None), ("recompute_scale_factor", None),
                                  ("antialias", False))),))
def interpolate(a: Args, shapes: list[Shape]) -> Shape:
    """F.interpolate: resample the spatial dims to size, by scale_factor, or to the spatial
    size of a second input read at run time (F.interpolate(x, size=like.shape[2:]))."""
    x, like = shapes[0], (shapes[1] if len(shapes) > 1 else None)
    _interpolate_mode(a, x)
    out = _interpolated_size(a, x, like)
    if any(o < 1 for o in out):
        raise ShapeError(f"the output would be {fmt(out)} ({_SPATIAL[len(x)]} of {fmt(x[1:])} "
                         f"by scale_factor {a.scale_factor}); sizes must be at least 1",
                         "scale_factor")
    return (x[0], *out)


@layer("PixelShuffle", Arg("upscale_factor", Int()), family="shape", min_rank=3)
def pixel_shuffle(a: Args, x: Shape) -> Shape:
    r = a.upscale_factor
    *lead, c, h, w = x
    if c % (r * r):
        raise ShapeError(f"channels {c} are not divisible by upscale_factor² = {r * r}",
                         "upscale_factor")
    return (*lead, c // (r * r), h * r, w * r)


@layer("PixelUnshuffle", Arg("downscale_factor", Int()), family="shape", min_rank=3)
def pixel_unshuffle(a: Args, x: Shape) -> Shape:
    r = a.downscale_factor
    *lead, c, h, w = x
    if h % r or w % r:
        raise ShapeError(f"height and width {h}×{w} must be divisible by downscale_factor {r}",
                         "downscale_factor")
    return (*lead, c * r * r, h // r, w // r)


def _pair(value: int | list[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


@layer("Unfold", Arg("kernel_size", Size(2)), Arg("dilation", Size(2), 1),
       Arg("padding", Size(2, minimum=0), 0), Arg("stride", Size(2), 1), family="shape",
       ranks={3: "C×H×W"})
def unfold(a: Args, x: Shape) -> Shape:
    """nn.Unfold: each sliding kernel_size block of the C×H×W input as a column, C·kh·kw ×
    L, L the blocks along H times those along W (torch's im2col)."""
    k, d = _pair(a.kernel_size), _pair(a.dilation)
    p, s = _pair(a.padding), _pair(a.stride)
    c, *spatial = x
    blocks = tuple((size + 2 * pi - di * (ki - 1) - 1) // si + 1
                   for size, ki, di, pi, si in zip(spatial, k, d, p, s, strict=True))
    if any(b < 1 for b in blocks):
        raise ShapeError(f"input {fmt(tuple(spatial))} with padding {fmt(p)} holds no "
                         f"{fmt(k)} block at dilation {fmt(d)}: the blocks would be "
                         f"{fmt(blocks)}", "kernel_size")
    return (c * k[0] * k[1], blocks[0] * blocks[1])


@layer("ChannelShuffle", Arg("groups", Int()), family="shape", min_rank=2)
def channel_shuffle(a: Args, x: Shape) -> Shape:
    if x[0] % a.groups:
        raise ShapeError(f"channels {x[0]} are not divisible by groups {a.groups}", "groups")
    return x


spelled({
    "PixelShuffle": (FxCall("pixel_shuffle", (("upscale_factor", REQUIRED),)),),
    "PixelUnshuffle": (FxCall("pixel_unshuffle", (("downscale_factor", REQUIRED),)),),
    # torchvision's ShuffleNetV2 shuffles with a function of its own (x.view(b, groups, c //
    # groups, h, w), transpose, view back): torch's channel_shuffle on 4-d inputs, where
    # both refuse channels not divisible by groups (tests/ops/test_op_channel_shuffle.py)
    "ChannelShuffle": (FxCall("channel_shuffle", (("groups", REQUIRED),)),
                       FxCall("channel_shuffle", (("groups", REQUIRED),),
                              module="torchvision.models.shufflenetv2")),
})
