"""Convolutions: Conv1d/2d/3d and ConvTranspose1d/2d/3d."""

from __future__ import annotations

import math

from netspec.ops.declare import (
    Arg,
    Args,
    Bool,
    ConvPadding,
    Draw,
    Enum,
    Int,
    Shape,
    ShapeError,
    Size,
    Torch,
    fmt,
    layer,
    spatial_name,
)
from netspec.ops.padding import check_mode_padding
from netspec.ops.text import conv_key_args

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _channels(x: Shape) -> int:
    return x[0]


def _check_groups(a: Args) -> None:
    for arg in ("in_channels", "out_channels"):
        if a.values[arg] % a.groups:
            raise ShapeError(
                f"{arg} {a.values[arg]} is not divisible by groups {a.groups}", "groups"
            )


def _conv_params(a: Args, x: Shape, n: int) -> int:
    k = math.prod(a.tuple("kernel_size", n))
    weight = a.out_channels * (a.in_channels // a.groups) * k
    return weight + (a.out_channels if a.bias else 0)


def _conv_transpose_params(a: Args, x: Shape, n: int) -> int:
    k = math.prod(a.tuple("kernel_size", n))
    weight = a.in_channels * (a.out_channels // a.groups) * k
    return weight + (a.out_channels if a.bias else 0)


def _conv_macs(a: Args, x: Shape, y: Shape, n: int) -> int:
    # every output element: a dot product over in_channels/groups × the kernel (bias apart)
    k = math.prod(a.tuple("kernel_size", n))
    return math.prod(y) * (a.in_channels // a.groups) * k


def _conv_transpose_macs(a: Args, x: Shape, y: Shape, n: int) -> int:
    # every input element is scattered over out_channels/groups × the kernel
    k = math.prod(a.tuple("kernel_size", n))
    return math.prod(x) * (a.out_channels // a.groups) * k


def conv_output(a: Args, x: Shape, n: int) -> Shape:
    _check_groups(a)
    k, s, d = a.tuple("kernel_size", n), a.tuple("stride", n), a.tuple("dilation", n)
    spatial = x[1:]
    if isinstance(a.padding, str):
        if a.padding == "same" and any(si != 1 for si in s):
            raise ShapeError(
                f"padding='same' is not supported for strided convolutions (stride {fmt(s)})",
                "padding",
            )
        if a.padding == "same":
            # PyTorch pads d*(k-1) in total, the extra element on the right
            total = [di * (ki - 1) for di, ki in zip(d, k, strict=True)]
            sides = [(t // 2, t - t // 2) for t in total]
        else:
            sides = [(0, 0)] * n
    else:
        sides = [(p, p) for p in a.tuple("padding", n)]
    mode = a.values.get("padding_mode", "zeros")  # ScaledStdConv2d has none
    if mode != "zeros":
        check_mode_padding(mode, spatial, sides, arg="padding")
    padded = tuple(L + lo + hi for L, (lo, hi) in zip(spatial, sides, strict=True))
    effective = tuple(di * (ki - 1) + 1 for di, ki in zip(d, k, strict=True))
    if any(p < e for p, e in zip(padded, effective, strict=True)):
        dil = f" (dilated to {fmt(effective)})" if effective != k else ""
        raise ShapeError(
            f"kernel {fmt(k)}{dil} is larger than the padded input {fmt(padded)} "
            f"(input {fmt(spatial)})",
            "kernel_size",
        )
    out = tuple((p - e) // si + 1 for p, e, si in zip(padded, effective, s, strict=True))
    return (a.out_channels, *out)


def conv_transpose_output(a: Args, x: Shape, n: int) -> Shape:
    _check_groups(a)
    if a.padding_mode != "zeros":
        raise ShapeError(
            f'only "zeros" padding_mode is supported for ConvTranspose{n}d', "padding_mode"
        )
    k, s, d = a.tuple("kernel_size", n), a.tuple("stride", n), a.tuple("dilation", n)
    p, op = a.tuple("padding", n), a.tuple("output_padding", n)
    for opi, si, di in zip(op, s, d, strict=True):
        if not (opi < si or opi < di):
            raise ShapeError(
                f"output_padding {fmt(op)} must be smaller than either stride "
                f"{fmt(s)} or dilation {fmt(d)}",
                "output_padding",
            )
    spatial = x[1:]
    out = tuple(
        (L - 1) * si - 2 * pi + di * (ki - 1) + opi + 1
        for L, si, pi, di, ki, opi in zip(spatial, s, p, d, k, op, strict=True)
    )
    if any(o < 1 for o in out):
        raise ShapeError(
            f"output would be {fmt(out)}: input {fmt(spatial)}, kernel {fmt(k)}, "
            f"stride {fmt(s)}, padding {fmt(p)}",
            "padding",
        )
    return (a.out_channels, *out)


def _register(n: int) -> None:
    rank = {n + 1: f"C×{spatial_name(n)}"}
    in_ch = Arg("in_channels", Int(), infer=_channels, noun="channels")

    layer(
        f"Conv{n}d",
        in_ch,
        Arg("out_channels", Int()),
        Arg("kernel_size", Size(n)),
        Arg("stride", Size(n), 1),
        Arg("padding", ConvPadding(n), 0),
        Arg("dilation", Size(n), 1),
        Arg("groups", Int(), 1),
        Arg("bias", Bool, True),
        Arg("padding_mode", Enum(*PADDING_MODES), "zeros"),
        family="conv",
        ranks=rank,
        torch=Torch(f"torch.nn.Conv{n}d", owns_output=True),
        draw=Draw(key_args=conv_key_args(n)),
        params=lambda a, x: _conv_params(a, x, n),
        macs=lambda a, x, y: _conv_macs(a, x, y, n),
    )(lambda a, x: conv_output(a, x, n))

    layer(
        f"ConvTranspose{n}d",
        in_ch,
        Arg("out_channels", Int()),
        Arg("kernel_size", Size(n)),
        Arg("stride", Size(n), 1),
        Arg("padding", Size(n, minimum=0), 0),
        Arg("output_padding", Size(n, minimum=0), 0),
        Arg("groups", Int(), 1),
        Arg("bias", Bool, True),
        Arg("dilation", Size(n), 1),
        Arg("padding_mode", Enum(*PADDING_MODES), "zeros"),
        family="conv",
        ranks=rank,
        torch=Torch(f"torch.nn.ConvTranspose{n}d", owns_output=True),
        draw=Draw(key_args=conv_key_args(n)),
        params=lambda a, x: _conv_transpose_params(a, x, n),
        macs=lambda a, x, y: _conv_transpose_macs(a, x, y, n),
    )(lambda a, x: conv_transpose_output(a, x, n))


for _n in (1, 2, 3):
    _register(_n)
