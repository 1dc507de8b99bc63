"""Pooling: Max/Avg/LP pools and the adaptive pools, 1d/2d/3d."""

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
    Draw,
    Float,
    FxCall,
    Int,
    Shape,
    ShapeError,
    Size,
    fmt,
    layer,
    spatial_name,
    spelled,
)
from netspec.ops.text import adaptive_pool_key_args, pool_key_args


def pool_length(size: int, k: int, p: int, s: int, d: int, ceil: bool) -> int:
    """PyTorch's pooling_output_shape_pad_lr, including the last-window rule for ceil_mode."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1  # the last window would start inside the right padding: PyTorch drops it
    return out


def pool_output(
    a: Args,
    x: Shape,
    n: int,
    dilation: bool = True,
    padding: bool = True,
    kernel_within_input: bool = False,
) -> Shape:
    k = a.tuple("kernel_size", n)
    s = a.tuple("stride", n) if a.stride is not None else k
    p = a.tuple("padding", n) if padding else (0,) * n
    d = a.tuple("dilation", n) if dilation else (1,) * n
    spatial = x[len(x) - n :]
    if any(pi > ki // 2 for pi, ki in zip(p, k, strict=True)):
        raise ShapeError(
            f"padding {fmt(p)} must be at most half the kernel size {fmt(k)}", "padding"
        )
    if kernel_within_input and any(si < ki for si, ki in zip(spatial, k, strict=True)):
        raise ShapeError(f"input {fmt(spatial)} is smaller than the kernel {fmt(k)}", "kernel_size")
    out = tuple(
        pool_length(L, ki, pi, si, di, a.ceil_mode)
        for L, ki, pi, si, di in zip(spatial, k, p, s, d, strict=True)
    )
    if any(o < 1 for o in out):
        detail = f"input {fmt(spatial)}, kernel {fmt(k)}, stride {fmt(s)}"
        if any(p):
            detail += f", padding {fmt(p)}"
        if any(di != 1 for di in d):
            detail += f", dilation {fmt(d)}"
        raise ShapeError(f"output would be {fmt(out)}: {detail}", "kernel_size")
    return (*x[: len(x) - n], *out)


def _no_indices(a: Args) -> None:
    if a.return_indices:
        raise ShapeError(
            "return_indices=true makes the layer return (output, indices), which the "
            "next layer cannot take; netspec has no MaxUnpool",
            "return_indices",
        )


def AdaptiveSize(n: int) -> ArgType:
    """An int, or n entries each an int or null (null keeps that input size).

    AdaptiveAvgPool1d/AdaptiveMaxPool1d pass the list straight to the op, which takes no
    null: there it is an int or a list of one int."""
    if n == 1:
        return Size(1)
    item = {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_DIM}
    schema = {
        "type": ["integer", "array"],
        "minimum": 1,
        "maximum": MAX_DIM,
        "items": item,
        "minItems": n,
        "maxItems": n,
    }
    return ArgType(schema, f"an integer or a list of {n} integers or nulls", tuple_for_torch=True)


def adaptive_output(a: Args, x: Shape, n: int) -> Shape:
    spatial = x[len(x) - n :]
    size = a.tuple("output_size", n)
    out = tuple(s if o is None else o for s, o in zip(spatial, size, strict=True))
    return (*x[: len(x) - n], *out)


def _lp_rule(a: Args, x: Shape, n: int) -> Shape:
    p = a.norm_type
    if p == 0:
        raise ShapeError(
            "norm_type must not be 0: the power mean takes the 1/norm_type-th root", "norm_type"
        )
    if math.isinf(p):
        # PyTorch computes norm_type ±inf as a max pool (of |x|): max pooling's rules
        return pool_output(a, x, n, dilation=False, padding=False)
    if n == 1 and isinstance(a.kernel_size, list):
        raise ShapeError(
            f"LPPool1d's kernel_size must be an integer, not a list "
            f"{a.kernel_size}: PyTorch multiplies the pooled values by it",
            "kernel_size",
        )
    return pool_output(a, x, n, dilation=False, padding=False, kernel_within_input=(n == 3))


def _ranks(n: int) -> dict[int, str]:
    # (C, *spatial) is the batched form; (*spatial) alone is PyTorch's unbatched form,
    # which is per-sample pooling with the batch read as channels: same result, accepted.
    return {n: spatial_name(n), n + 1: f"C×{spatial_name(n)}"}


def _stride(n: int) -> Arg:
    return Arg("stride", Size(n).nullable(), None)


def _register_max(n: int) -> None:
    def max_rule(a: Args, x: Shape) -> Shape:
        _no_indices(a)
        return pool_output(a, x, n)

    layer(
        f"MaxPool{n}d",
        Arg("kernel_size", Size(n)),
        _stride(n),
        Arg("padding", Size(n, minimum=0), 0),
        Arg("dilation", Size(n), 1),
        Arg("return_indices", Bool, False),
        Arg("ceil_mode", Bool, False),
        family="pool",
        ranks=_ranks(n),
        draw=Draw(key_args=pool_key_args(n)),
        code=Code(attribute="pool"),  # the tutorials' self.pool = nn.MaxPool2d(2, 2)
    )(max_rule)


def _register_avg(n: int) -> None:
    avg_args = [
        Arg("kernel_size", Size(n)),
        _stride(n),
        Arg("padding", Size(n, minimum=0), 0),
        Arg("ceil_mode", Bool, False),
        Arg("count_include_pad", Bool, True),
    ]
    if n > 1:  # AvgPool1d has no divisor_override
        avg_args.append(Arg("divisor_override", Int(minimum=None).nullable(), None))

    def avg_rule(a: Args, x: Shape) -> Shape:
        if a.values.get("divisor_override") == 0:
            raise ShapeError("divisor_override must not be zero", "divisor_override")
        return pool_output(a, x, n, dilation=False, kernel_within_input=(n == 3))

    layer(f"AvgPool{n}d", *avg_args, family="pool", ranks=_ranks(n),
          draw=Draw(key_args=pool_key_args(n)))(avg_rule)


def _register_lp(n: int) -> None:
    layer(
        f"LPPool{n}d",
        Arg("norm_type", Float()),
        Arg("kernel_size", Size(n)),
        _stride(n),
        Arg("ceil_mode", Bool, False),
        family="pool",
        ranks=_ranks(n),
        draw=Draw(key_args=pool_key_args(n)),
    )(lambda a, x: _lp_rule(a, x, n))


def _register_adaptive_avg(n: int) -> None:
    ranks = _ranks(n)

    def adaptive_avg_rule(a: Args, x: Shape) -> Shape:
        out = adaptive_output(a, x, n)
        if len(x) > n + 1 and any(o != 1 for o in out[-n:]):
            layouts = " or ".join(ranks[r] for r in sorted(ranks, reverse=True))
            raise ShapeError(
                f"expects a {layouts} sample (batch excluded), got {fmt(x)}; "
                "PyTorch takes more leading dims only for output_size 1 (a global "
                f"average), and output_size {fmt(out[-n:])} is not that"
            )
        return out

    # For output_size 1, AdaptiveAvgPool2d/3d is a mean over the last n dims of any input
    # (PyTorch skips its rank check there): more leading dims are accepted then.
    avg_ranks = {"ranks": ranks} if n == 1 else {"ranks": None, "min_rank": n}
    layer(f"AdaptiveAvgPool{n}d", Arg("output_size", AdaptiveSize(n)), family="pool",
          draw=Draw(key_args=adaptive_pool_key_args(n)), **avg_ranks)(adaptive_avg_rule)


def _register_adaptive_max(n: int) -> None:
    def adaptive_max_rule(a: Args, x: Shape) -> Shape:
        _no_indices(a)
        return adaptive_output(a, x, n)

    layer(
        f"AdaptiveMaxPool{n}d",
        Arg("output_size", AdaptiveSize(n)),
        Arg("return_indices", Bool, False),
        family="pool",
        ranks=_ranks(n),
        draw=Draw(key_args=adaptive_pool_key_args(n)),
    )(adaptive_max_rule)


for _n in (1, 2, 3):  # in this order: the registry's order is the JSON Schema's
    for _register in (_register_max, _register_avg, _register_lp, _register_adaptive_avg,
                      _register_adaptive_max):
        _register(_n)

_MAX_PARAMS = (("kernel_size", REQUIRED), ("stride", None), ("padding", 0), ("dilation", 1),
               ("ceil_mode", False), ("return_indices", False))
_AVG_PARAMS = (("kernel_size", REQUIRED), ("stride", None), ("padding", 0), ("ceil_mode", False),
               ("count_include_pad", True))
spelled({
    "AvgPool1d": (FxCall("avg_pool1d", _AVG_PARAMS),),
    **{f"AvgPool{d}d": (FxCall(f"avg_pool{d}d", (*_AVG_PARAMS, ("divisor_override", None))),)
       for d in (2, 3)},
    **{f"MaxPool{d}d": (FxCall(f"max_pool{d}d", _MAX_PARAMS),) for d in (1, 2, 3)},
    **{f"AdaptiveAvgPool{d}d": (FxCall(f"adaptive_avg_pool{d}d", (("output_size", REQUIRED),)),)
       for d in (1, 2, 3)},
    **{f"AdaptiveMaxPool{d}d": (FxCall(f"adaptive_max_pool{d}d", (("output_size", REQUIRED),
                                                                   ("return_indices", False))),)
       for d in (1, 2, 3)},
})
