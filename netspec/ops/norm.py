"""Normalisation: BatchNorm/InstanceNorm 1d/2d/3d, LayerNorm, torchvision's LayerNorm2d,
RMSNorm, GroupNorm, LocalResponseNorm."""

from __future__ import annotations

import math

from netspec.ops.declare import (
    REQUIRED,
    Arg,
    Args,
    Bool,
    Code,
    Draw,
    Float,
    FxCall,
    Int,
    IntList,
    Shape,
    ShapeError,
    Torch,
    fmt,
    layer,
    spatial_name,
    spelled,
)

MOMENTUM = Float().nullable()
HALF = ("float16", "bfloat16")  # PyTorch's CPU norms take these with float32 parameters


def _channels(x: Shape) -> int:
    return x[0]


# PyTorch >= 2.x: a keyword-only bias (after device and dtype); only matters with affine.
BIAS = Arg("bias", Bool, True, keyword_only=True)


def _affine_params(a: Args, x: Shape) -> int:
    return (2 if a.bias else 1) * a.num_features if a.affine else 0


def _running_stats(a: Args, x: Shape) -> dict[str, int]:
    # running_mean and running_var (float32) and num_batches_tracked (one int64)
    return {"float32": 2 * a.num_features, "int64": 1} if a.track_running_stats else {}


def _register(n: int) -> None:
    common = [Arg("eps", Float(), 1e-5), Arg("momentum", MOMENTUM, 0.1)]
    # Without affine weights or running statistics nothing uses num_features: PyTorch
    # accepts any value (InstanceNorm warns), so a mismatch is a warning then.
    features = Arg(
        "num_features",
        Int(),
        infer=_channels,
        noun="channels",
        lenient_if=lambda a: not (a.affine or a.track_running_stats),
    )
    # BatchNorm1d normalises (N, C) or (N, C, L); 2d and 3d need the full batched rank.
    bn_ranks = {1: "C", 2: "C×L"} if n == 1 else {n + 1: f"C×{spatial_name(n)}"}
    layer(
        f"BatchNorm{n}d",
        features,
        *common,
        Arg("affine", Bool, True),
        Arg("track_running_stats", Bool, True),
        BIAS,
        family="norm",
        torch=Torch(f"torch.nn.BatchNorm{n}d", owns_output=True),
        draw=Draw(abbrev="BN"),
        code=Code(attribute="bn"),
        mixed_dtypes=HALF,
        ranks=bn_ranks,
        params=_affine_params,
        buffers=_running_stats,
    )(lambda a, x: x)

    def instance_rule(a: Args, x: Shape) -> Shape:
        spatial = x[1:]
        if math.prod(spatial) == 1:
            raise ShapeError(
                f"instance norm needs more than one spatial element to train (got {fmt(spatial)})"
            )
        return x

    layer(
        f"InstanceNorm{n}d",
        features,
        *common,
        Arg("affine", Bool, False),
        Arg("track_running_stats", Bool, False),
        BIAS,
        family="norm",
        draw=Draw(abbrev="IN"),
        mixed_dtypes=HALF,
        ranks={n + 1: f"C×{spatial_name(n)}"},
        params=_affine_params,
        buffers=_running_stats,
    )(instance_rule)


for _n in (1, 2, 3):
    _register(_n)


def _trailing(x: Shape) -> int:
    return x[-1]


def _normalized(a: Args, x: Shape) -> tuple[int, ...]:
    ns = a.normalized_shape
    ns = tuple(ns) if isinstance(ns, (list, tuple)) else (ns,)
    if len(ns) > len(x) or tuple(x[len(x) - len(ns) :]) != ns:
        raise ShapeError(
            f"normalized_shape {fmt(ns)} does not match the trailing dimensions "
            f"of the input {fmt(x)}",
            "normalized_shape",
        )
    return ns


def _layer_norm_params(a: Args, x: Shape) -> int:
    return math.prod(_normalized(a, x)) * (2 if a.bias else 1) if a.elementwise_affine else 0


@layer(
    "LayerNorm",
    Arg("normalized_shape", IntList(), infer=_trailing),
    Arg("eps", Float(), 1e-5),
    Arg("elementwise_affine", Bool, True),
    Arg("bias", Bool, True),
    family="norm",
    draw=Draw(abbrev="LN"),
    mixed_dtypes=HALF,
    params=_layer_norm_params,
)
def layer_norm(a: Args, x: Shape) -> Shape:
    _normalized(a, x)
    return x


# torchvision's class, as generated code defines it (torchvision.models.convnext.LayerNorm2d
# is not a public name to import)
LAYER_NORM_2D = '''class LayerNorm2d(nn.LayerNorm):
    """nn.LayerNorm over the channels of an N×C×H×W tensor (torchvision's ConvNeXt)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)'''


@layer(
    "LayerNorm2d",
    Arg("normalized_shape", IntList(), infer=_channels),
    Arg("eps", Float(), 1e-5),
    Arg("elementwise_affine", Bool, True),
    Arg("bias", Bool, True),
    family="norm",
    ranks={3: "C×H×W"},
    torch=Torch("torchvision.models.convnext.LayerNorm2d"),
    code=Code(call="LayerNorm2d", helper=LAYER_NORM_2D),
    draw=Draw(abbrev="LN"),
    mixed_dtypes=HALF,
    params=lambda a, x: _layer_norm_params(a, (*x[1:], x[0])),
)
def layer_norm_2d(a: Args, x: Shape) -> Shape:
    """torchvision's LayerNorm2d, nn.LayerNorm's arguments: x.permute(0, 2, 3, 1), layer
    norm over the trailing dims (the channels), permuted back; its state_dict keys are
    LayerNorm's (weight, bias).  ConvNeXt's stem, downsampling layers and classifier."""
    permuted = (*x[1:], x[0])
    try:
        _normalized(a, permuted)
    except ShapeError as exc:
        raise ShapeError(f"{exc.message} (LayerNorm2d's C×H×W input {fmt(x)} permuted to "
                         "H×W×C)", exc.arg) from None
    return x


@layer(
    "RMSNorm",
    Arg("normalized_shape", IntList(), infer=_trailing),
    Arg("eps", Float().nullable(), None),
    Arg("elementwise_affine", Bool, True),
    family="norm",
    mixed_dtypes=(*HALF, "float64"),
    params=lambda a, x: math.prod(_normalized(a, x)) if a.elementwise_affine else 0,
)
def rms_norm(a: Args, x: Shape) -> Shape:
    _normalized(a, x)
    return x


# Without affine weights num_channels is only checked for divisibility: a mismatch is a warning.
@layer(
    "GroupNorm",
    Arg("num_groups", Int()),
    Arg("num_channels", Int(), infer=_channels, noun="channels", lenient_if=lambda a: not a.affine),
    Arg("eps", Float(), 1e-5),
    Arg("affine", Bool, True),
    BIAS,
    family="norm",
    draw=Draw(abbrev="GN"),
    mixed_dtypes=HALF,
    params=lambda a, x: (2 if a.bias else 1) * a.num_channels if a.affine else 0,
)
def group_norm(a: Args, x: Shape) -> Shape:
    if a.num_channels % a.num_groups:
        raise ShapeError(
            f"num_channels {a.num_channels} is not divisible by num_groups {a.num_groups}",
            "num_groups",
        )
    if x[0] % a.num_groups:
        raise ShapeError(
            f"the {x[0]} channels coming in are not divisible by num_groups {a.num_groups}",
            "num_groups",
        )
    return x


@layer(
    "LocalResponseNorm",
    Arg("size", Int()),
    Arg("alpha", Float(), 1e-4),
    Arg("beta", Float(), 0.75),
    Arg("k", Float(), 1.0),
    family="norm",
    min_rank=2,
)
def local_response_norm(a: Args, x: Shape) -> Shape:
    return x


spelled({"LocalResponseNorm": (FxCall("local_response_norm", (("size", REQUIRED), ("alpha", 1e-4),
                                                              ("beta", 0.75), ("k", 1.0))),)})
